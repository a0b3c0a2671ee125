#include "pop-server/lock_table.h"

namespace mistore {

bool LockTable::Compatible(const Object& o, LockType type) const {
  if (o.held.empty()) return true;
  if (type == LockType::kWrite) return false;
  for (auto& [id, h] : o.held)
    if (h.type == LockType::kWrite) return false;
  return true;
}

LockGrant LockTable::Grant(Object& o, LockType type, uint64_t lease_ms, uint64_t now_ms) {
  if (type == LockType::kWrite) o.epoch++;
  LockGrant g{next_lock_id_++, o.epoch, now_ms + lease_ms, type};
  o.held[g.lock_id] = Held{type, g.expires_ms, g.token};
  return g;
}

Result<LockGrant> LockTable::Acquire(const Bytes& oid, LockType type, uint64_t lease_ms,
                                     uint64_t now_ms, uint64_t tag) {
  Object& o = objects_[oid];
  // Waiters go first (FIFO): a reader may not overtake a queued writer.
  if (o.waiters.empty() && Compatible(o, type)) return Grant(o, type, lease_ms, now_ms);
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
  h->second.expires_ms = now_ms + lease_ms;
  return Status::Ok();
}

void LockTable::GrantWaiters(Object& o, uint64_t now_ms, std::vector<LockDecision>* out) {
  while (!o.waiters.empty() && Compatible(o, o.waiters.front().type)) {
    Waiter w = o.waiters.front();
    o.waiters.pop_front();
    out->push_back(LockDecision{w.tag, Grant(o, w.type, w.lease_ms, now_ms)});
  }
}

void LockTable::Forget(const Bytes& oid) {
  auto it = objects_.find(oid);
  // The epoch must survive: keep objects whose epoch moved (fencing tokens
  // only grow). Objects never write-locked carry nothing worth keeping.
  if (it != objects_.end() && it->second.held.empty() && it->second.waiters.empty() &&
      it->second.epoch == 0)
    objects_.erase(it);
}

std::vector<LockDecision> LockTable::Release(const Bytes& oid, uint64_t lock_id, uint64_t now_ms) {
  std::vector<LockDecision> out;
  auto it = objects_.find(oid);
  if (it == objects_.end()) return out;
  it->second.held.erase(lock_id);
  GrantWaiters(it->second, now_ms, &out);
  Forget(oid);
  return out;
}

std::vector<LockDecision> LockTable::Expire(uint64_t now_ms, std::vector<uint64_t>* expired_writes) {
  std::vector<LockDecision> out;
  std::vector<Bytes> touched;
  for (auto& [oid, o] : objects_) {
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
      GrantWaiters(o, now_ms, &out);
      touched.push_back(oid);
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
  GrantWaiters(it->second, now_ms, &out);
  Forget(oid);
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
