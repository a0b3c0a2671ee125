#include "pop-server/lock_table.h"

namespace mistore {

bool LockTable::Compatible(const Object& o, LockType type) const {
  if (o.held.empty()) return true;
  if (type == LockType::kWrite) return false;
  for (auto& [id, h] : o.held)
    if (h.type == LockType::kWrite) return false;
  return true;
}

LockGrant LockTable::Grant(const Bytes& oid, Object& o, LockType type, uint64_t lease_ms,
                           uint64_t now_ms) {
  if (type == LockType::kWrite) o.epoch = std::max(o.epoch + 1, token_floor_);
  LockGrant g{next_lock_id_++, o.epoch, LeaseEnd(lease_ms, now_ms), type};
  o.held[g.lock_id] = Held{type, g.expires_ms, g.token, lease_ms};
  dirty_.insert(oid);
  changes_++;
  return g;
}

Result<LockGrant> LockTable::Acquire(const Bytes& oid, LockType type, uint64_t lease_ms,
                                     uint64_t now_ms, uint64_t tag) {
  if (lease_limit_ms_ <= now_ms)
    return Status(Code::kAborted, "lease limit passed: this POP's cluster map may be stale");
  Object& o = objects_[oid];
  if (o.held.size() >= held_max_)
    return ResourceExhausted("too many locks held on this object");
  // Waiters go first (FIFO): a reader may not overtake a queued writer.
  if (o.waiters.empty() && Compatible(o, type)) return Grant(oid, o, type, lease_ms, now_ms);
  if (o.waiters.size() >= waiters_max_)
    return ResourceExhausted("too many lock requests waiting for this object");
  o.waiters.push_back(Waiter{tag, type, lease_ms});
  return Unavailable("queued");
}

Status LockTable::Renew(const Bytes& oid, uint64_t lock_id, uint64_t lease_ms, uint64_t now_ms) {
  auto it = objects_.find(oid);
  if (it == objects_.end()) return Status(Code::kAborted, "lock not held");
  auto h = it->second.held.find(lock_id);
  if (h == it->second.held.end() || h->second.expires_ms <= now_ms)
    return Status(Code::kAborted, "lock lease expired");
  if (h->second.expires_ms == kDormant)
    return Status(Code::kAborted, "lock is a backup copy here (not the acting primary)");
  if (lease_limit_ms_ <= now_ms)
    return Status(Code::kAborted, "lease limit passed: this POP's cluster map may be stale");
  h->second.expires_ms = LeaseEnd(lease_ms, now_ms);
  h->second.lease_ms = lease_ms;
  changes_++;
  return Status::Ok();
}

void LockTable::GrantWaiters(const Bytes& oid, Object& o, uint64_t now_ms,
                             std::vector<LockDecision>* out) {
  if (lease_limit_ms_ <= now_ms) return;  // they wait for the limit to move on
  while (!o.waiters.empty() && Compatible(o, o.waiters.front().type)) {
    Waiter w = o.waiters.front();
    o.waiters.pop_front();
    out->push_back(LockDecision{w.tag, Grant(oid, o, w.type, w.lease_ms, now_ms)});
  }
}

void LockTable::Forget(const Bytes& oid) {
  auto it = objects_.find(oid);
  // The epoch must survive: keep objects whose epoch moved (fencing tokens
  // only grow), and remembered releases until they age out. Objects never
  // write-locked carry nothing else worth keeping.
  if (it != objects_.end() && it->second.held.empty() && it->second.waiters.empty() &&
      it->second.epoch == 0 && it->second.released.empty())
    objects_.erase(it);
}

bool LockTable::WasReleased(const Object& o, uint64_t lock_id) {
  for (auto& r : o.released)
    if (r.lock_id == lock_id) return true;
  return false;
}

void LockTable::Remember(Object& o, uint64_t lock_id, uint64_t now_ms) {
  if (WasReleased(o, lock_id)) return;
  if (o.released.size() >= kReleasedPerObjectMax) o.released.pop_front();
  o.released.push_back(Released{lock_id, now_ms});
}

bool LockTable::DropOldReleases(Object& o, uint64_t now_ms) {
  bool dropped = false;
  while (!o.released.empty() && o.released.front().at_ms + released_keep_ms_ <= now_ms) {
    o.released.pop_front();
    dropped = true;
  }
  return dropped;
}

bool LockTable::IsDormant(const Bytes& oid, uint64_t lock_id) const {
  auto it = objects_.find(oid);
  if (it == objects_.end()) return false;
  auto h = it->second.held.find(lock_id);
  return h != it->second.held.end() && h->second.expires_ms == kDormant;
}

size_t LockTable::released_remembered(const Bytes& oid) const {
  auto it = objects_.find(oid);
  return it == objects_.end() ? 0 : it->second.released.size();
}

std::vector<LockDecision> LockTable::Release(const Bytes& oid, uint64_t lock_id, uint64_t now_ms) {
  std::vector<LockDecision> out;
  // Remembered even when unknown here: the lock may still arrive in a
  // snapshot sent before this release (a crossing FetchLocks reply).
  auto it = objects_.try_emplace(oid).first;
  Remember(it->second, lock_id, now_ms);
  if (it->second.held.erase(lock_id)) {
    dirty_.insert(oid);
    changes_++;
  }
  GrantWaiters(oid, it->second, now_ms, &out);
  Forget(oid);
  return out;
}

std::vector<LockDecision> LockTable::Expire(uint64_t now_ms, std::vector<uint64_t>* expired_writes) {
  std::vector<LockDecision> out;
  std::vector<Bytes> touched;
  for (auto& [oid, o] : objects_) {
    if (DropOldReleases(o, now_ms) && o.held.empty()) touched.push_back(oid);
    bool changed = false;
    for (auto h = o.held.begin(); h != o.held.end();) {
      if (h->second.expires_ms <= now_ms) {
        if (h->second.type == LockType::kWrite && expired_writes) expired_writes->push_back(h->first);
        h = o.held.erase(h);
        expired_total_++;
        changed = true;
      } else {
        ++h;
      }
    }
    if (changed) {
      dirty_.insert(oid);
      changes_++;
      GrantWaiters(oid, o, now_ms, &out);
      touched.push_back(oid);
    } else if (!o.waiters.empty()) {
      GrantWaiters(oid, o, now_ms, &out);  // left queued while the lease limit had passed
    }
  }
  for (auto& oid : touched) Forget(oid);
  return out;
}

Status LockTable::CheckWrite(const Bytes& oid, uint64_t lock_id, uint64_t token, uint64_t now_ms) const {
  auto it = objects_.find(oid);
  if (it == objects_.end()) return Status(Code::kAborted, "write lock not held");
  auto h = it->second.held.find(lock_id);
  if (h == it->second.held.end() || h->second.type != LockType::kWrite)
    return Status(Code::kAborted, "write lock not held");
  if (h->second.token != token || token != it->second.epoch)
    return Status(Code::kAborted, "stale fencing token");
  if (h->second.expires_ms <= now_ms) return Status(Code::kAborted, "write lock lease expired");
  if (h->second.expires_ms == kDormant)
    return Status(Code::kAborted, "write lock is a backup copy here (its lease has not started)");
  return Status::Ok();
}

std::vector<LockDecision> LockTable::Cancel(const Bytes& oid, uint64_t tag, uint64_t now_ms) {
  std::vector<LockDecision> out;
  auto it = objects_.find(oid);
  if (it == objects_.end()) return out;
  auto& w = it->second.waiters;
  for (auto i = w.begin(); i != w.end(); ++i)
    if (i->tag == tag) {
      w.erase(i);
      break;
    }
  GrantWaiters(oid, it->second, now_ms, &out);
  Forget(oid);
  return out;
}

std::vector<Bytes> LockTable::TakeDirty(size_t max) {
  std::vector<Bytes> out;
  while (!dirty_.empty() && out.size() < max) {
    out.push_back(*dirty_.begin());
    dirty_.erase(dirty_.begin());
  }
  return out;
}

void LockTable::MarkAllHeldDirty() {
  for (auto& [oid, o] : objects_)
    if (!o.held.empty()) dirty_.insert(oid);
}

ObjectLocks LockTable::Snapshot(const Bytes& oid) const {
  ObjectLocks s;
  auto it = objects_.find(oid);
  if (it == objects_.end()) return s;
  s.epoch = it->second.epoch;
  for (auto& [id, h] : it->second.held) s.held.push_back(LockRecord{id, h.type, h.token, h.lease_ms});
  return s;
}

Status LockTable::Install(const Bytes& oid, const ObjectLocks& s) {
  auto it = objects_.find(oid);
  if (it != objects_.end()) {
    if (!it->second.waiters.empty())
      return Status(Code::kAborted, "object has lock requests waiting here");
    for (auto& [id, h] : it->second.held)
      if (h.expires_ms != kDormant)
        return Status(Code::kAborted, "object has active locks here");
  }
  if (s.held.size() > held_max_) return ResourceExhausted("too many locks in a lock snapshot");
  if (s.held.empty() && s.epoch == 0) {
    if (it != objects_.end() && !it->second.held.empty()) changes_++;
    if (it != objects_.end() && it->second.epoch == 0 && it->second.released.empty())
      objects_.erase(it);
    else if (it != objects_.end()) it->second.held.clear();
    return Status::Ok();
  }
  // The epoch is kept even when nothing is held: the next grant here must
  // exceed every token the sender issued (regression: sim seed 5349).
  Object& o = objects_[oid];
  o.epoch = std::max(o.epoch, s.epoch);
  o.held.clear();
  for (auto& r : s.held)
    if (!WasReleased(o, r.lock_id)) o.held[r.lock_id] = Held{r.type, kDormant, r.token, r.lease_ms};
  changes_++;
  return Status::Ok();
}

size_t LockTable::StartLeases(const Bytes& oid, uint64_t now_ms) {
  auto it = objects_.find(oid);
  if (it == objects_.end()) return 0;
  size_t n = 0;
  for (auto& [id, h] : it->second.held)
    if (h.expires_ms == kDormant) {
      h.expires_ms = LeaseEnd(h.lease_ms, now_ms);
      n++;
    }
  if (n) {
    changes_++;
    dirty_.insert(oid);  // the new backup learns them from this primary
  }
  return n;
}

std::vector<LockDecision> LockTable::Deactivate(const Bytes& oid) {
  std::vector<LockDecision> out;
  auto it = objects_.find(oid);
  if (it == objects_.end()) return out;
  for (auto& w : it->second.waiters)
    out.push_back(LockDecision{w.tag, Status(Code::kAborted, "no longer the object's acting primary")});
  it->second.waiters.clear();
  for (auto& [id, h] : it->second.held)
    if (h.expires_ms != kDormant) {
      h.expires_ms = kDormant;
      changes_++;
    }
  dirty_.erase(oid);
  Forget(oid);
  return out;
}

void LockTable::Drop(const Bytes& oid) {
  auto it = objects_.find(oid);
  if (it == objects_.end() || !it->second.waiters.empty()) return;
  for (auto& [id, h] : it->second.held)
    if (h.expires_ms != kDormant) return;
  if (!it->second.held.empty()) changes_++;
  objects_.erase(it);
}

std::vector<Bytes> LockTable::ObjectIds() const {
  std::vector<Bytes> out;
  for (auto& [oid, o] : objects_) out.push_back(oid);
  return out;
}

std::vector<ActiveLock> LockTable::ActiveLocks() const {
  std::vector<ActiveLock> out;
  for (auto& [oid, o] : objects_)
    for (auto& [id, h] : o.held)
      if (h.expires_ms != kDormant) out.push_back(ActiveLock{oid, id, h.type, h.token, h.expires_ms});
  return out;
}

uint64_t LockTable::epoch(const Bytes& oid) const {
  auto it = objects_.find(oid);
  return it == objects_.end() ? 0 : it->second.epoch;
}

size_t LockTable::held(const Bytes& oid) const {
  auto it = objects_.find(oid);
  return it == objects_.end() ? 0 : it->second.held.size();
}

size_t LockTable::waiting(const Bytes& oid) const {
  auto it = objects_.find(oid);
  return it == objects_.end() ? 0 : it->second.waiters.size();
}

}  // namespace mistore
