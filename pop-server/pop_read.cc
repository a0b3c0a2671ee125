// PopCore, read path (paper, figs. 10–13) and the lock service it shares
// with the write path (figs. 2–4). A read names a version (exactly N) or a
// consistency mode for the latest one:
//  - monotonic: any cache holding a version >= the client's newest seen;
//  - atomic: the object's primary or backup, picked at random;
//  - locked: a read lock at the primary fixes the version; any cache
//    holding it may serve; the lock is released by the client (or expires).
// Caches: a replica's own store, and the entry POP's bounded cache of
// version records it fetched.
#include <algorithm>

#include "pop-server/pop_core.h"
#include "shared/core/log.h"

namespace mistore {

namespace {
constexpr size_t kNameKeyBytes = 32;
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
pb::LockType ToPb(LockType t) { return t == LockType::kWrite ? pb::LOCK_WRITE : pb::LOCK_READ; }
}  // namespace

std::vector<uint32_t> PopCore::ReplicaOrder(const Oid& oid) {
  // Atomic reads: primary or backup at random (paper, fig. 11), or the
  // acting primary first (read_primary_first); a replica the cluster map
  // shows down goes last.
  std::vector<uint32_t> order;
  if (IsDcTier(oid)) return {kDcReplica};  // its one replica
  if (uint32_t ap = ActingPrimary(oid); ap != kNoPop) order.push_back(ap);
  order.push_back(ActingBackup(oid));
  if (order.size() == 2 && !p_.read_primary_first && (rng_() & 1)) std::swap(order[0], order[1]);
  return order;
}

// ---------------------------------------------------------------------------
// version cache (entry POP)

void PopCore::CacheVersion(const pb::VersionInfo& info) {
  if (info.prepared() || p_.version_cache_entries_max == 0) return;
  auto key = std::make_pair(ToBytes(info.oid()), info.version());
  if (version_cache_.count(key)) return;
  version_cache_[key] = info;
  version_cache_order_.push_back(key);
  while (version_cache_order_.size() > p_.version_cache_entries_max) {
    version_cache_.erase(version_cache_order_.front());
    version_cache_order_.pop_front();
  }
}

const pb::VersionInfo* PopCore::CachedVersion(const Bytes& oid, uint64_t version, bool at_least) {
  if (!at_least) {
    auto it = version_cache_.find({oid, version});
    return it == version_cache_.end() ? nullptr : &it->second;
  }
  // Newest cached version of oid that is >= version.
  auto it = version_cache_.upper_bound({oid, UINT64_MAX});
  if (it == version_cache_.begin()) return nullptr;
  --it;
  if (it->first.first != oid || it->first.second < version) return nullptr;
  return &it->second;
}

// Local answer of a replica: committed versions only. A backup holding a
// prepared (not yet committed) version of the object cannot tell whether
// the primary has exposed it: it answers kUnavailable so that the caller
// asks the primary.
Result<pb::VersionInfo> PopCore::LocalVersion(const Oid& o, uint64_t version) {
  Bytes oid = o.Encode();
  uint32_t ap = ActingPrimary(o);
  if (ap != p_.pop_id && ap != kNoPop) {
    uint64_t prepared = store_->PreparedVersion(oid);
    if (prepared && (version == 0 || version == prepared))
      return Unavailable("version " + std::to_string(prepared) + " is being committed; ask the primary");
  }
  auto info = store_->GetVersion(oid, version);
  if (!info.ok()) return info.status();
  if (info->prepared()) return NotFound("version " + std::to_string(version) + " is not committed");
  info->set_served_by(p_.pop_id);
  return info;
}

// ---------------------------------------------------------------------------
// catching up: a replica that (re)started or came back up fetches, per object
// and before serving it, the committed versions it missed from the other
// replica. Requests for that carry local_only, so two catching-up replicas
// never wait on each other.

void PopCore::EnsureSynced(const Oid& o, std::function<void(Status)> then) {
  Bytes oid = o.Encode();
  CheckMapLease();  // a request can be handled before the tick that would notice
  if (!IsReplica(o) || synced_.count(oid)) return then(Status::Ok());
  // The DC is a DC-tier object's only replica: nothing to catch up from.
  if (IsDcTier(o)) return then(Status::Ok());
  auto& waiting = syncing_[oid];
  waiting.push_back(std::move(then));
  if (waiting.size() > 1) return;  // a sync of this object is running
  SyncFrom(o, SyncSource(o), 0, sync_generation_);
}

uint32_t PopCore::SyncSource(const Oid& o) const {
  uint32_t source = ActingPrimary(o);
  if (source == p_.pop_id || source == kNoPop) source = ActingBackup(o);
  if (source == p_.pop_id) source = o.primary_pop == p_.pop_id ? o.backup_pop : o.primary_pop;
  return source;
}

void PopCore::ForgetSynced() {
  synced_.clear();
  sync_generation_++;
}

void PopCore::SyncFrom(const Oid& o, uint32_t source, uint64_t upto, uint64_t generation) {
  Bytes oid = o.Encode();
  auto finish = [this, o, oid, source, generation](Status st) {
    // Bug 13 (sim seed 254): a sync that began before this POP forgot what
    // it had synced (a map change, or its map lease lapsing) learned the
    // other replica's latest version under the old state: versions
    // committed since, while this POP was down in the DC's map and the DC
    // stood in, are not in it. Its result must not mark the object synced
    // nor release the waiting requests; it starts again from the other
    // replica's latest now (bounded: the generation changes only with the
    // map or the map lease).
    if (st.ok() && generation != sync_generation_)
      return SyncFrom(o, SyncSource(o), 0, sync_generation_);
    auto complete = [this, oid](Status st) {
      if (st.ok() && !map_stale_) synced_.insert(oid);
      auto waiters = std::move(syncing_[oid]);
      syncing_.erase(oid);
      for (auto& w : waiters) w(st);
    };
    // An acting primary catching up also inherits the other replica's
    // locks (a returning primary: those its stand-in granted). A backup
    // needs not: the acting primary pushes them to it.
    if (!st.ok() || ActingPrimary(o) != p_.pop_id) return complete(st);
    FetchLocksFrom(o, source, complete);
  };
  uint64_t have = store_->LatestVersion(oid);
  if (upto != 0 && have >= upto) return finish(Status::Ok());
  pb::Envelope req;
  req.mutable_fetch_version()->set_oid(ToStr(oid));
  req.mutable_fetch_version()->set_version(upto == 0 ? 0 : have + 1);
  req.mutable_fetch_version()->set_local_only(true);
  Call(ReplicaDest(source), req, [this, o, source, upto, generation, finish](Result<pb::Envelope> r) {
    if (!r.ok()) {
      if (r.status().code() == Code::kNotFound && upto == 0) return finish(Status::Ok());
      return finish(Unavailable("cannot catch up object " + o.Hex() + " from replica " +
                                std::to_string(source) + ": " + r.status().message()));
    }
    pb::VersionInfo info = r->version_info();
    uint64_t remote = info.version();
    if (upto == 0) {  // learned the remote latest; now fetch what is missing
      if (store_->LatestVersion(o.Encode()) >= remote) return finish(Status::Ok());
      return SyncFrom(o, source, remote, generation);
    }
    info.set_prepared(false);
    info.set_lock_id(0);
    info.set_served_by(0);
    Status st = store_->PutVersion(info);
    if (!st.ok()) return finish(st);
    MS_INFO("pop", "caught up a missed version", "oid=" + o.Hex() + " version=" +
                                                      std::to_string(remote));
    SyncFrom(o, source, upto, generation);
  });
}

// When an object's primary goes down, its backup commits the versions it
// holds prepared: the primary may have exposed them before it failed.
void PopCore::TakeOverPrepared(const pb::ClusterMap& old_map) {
  if (p_.pop_id == kDcReplica && old_map.epoch() != map_.epoch()) ForgetSynced();
  for (auto& info : store_->PreparedVersions(1024)) {
    auto oid = Oid::Decode(info.oid());
    if (!oid.ok() || ActingPrimary(oid.value()) != p_.pop_id || oid->primary_pop == p_.pop_id) continue;
    if (store_->CommitPrepared(ToBytes(info.oid()), info.version()).ok())
      MS_INFO("pop", "took over a prepared version", "oid=" + oid->Hex() + " version=" +
                                                         std::to_string(info.version()));
  }
  ApplyLockRoles();
}

// ---------------------------------------------------------------------------
// GetVersion: one handler, one helper per read mode

void PopCore::HandleGetVersion(const Incoming& in, const Peer& from, const pb::GetVersion& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (!st.ok()) return ReplyError(in, st);
  auto serve = [this, in, m](Result<Oid> oid) {
    if (!oid.ok()) return ReplyError(in, oid.status());
    auto reply = [this, in, m](Result<pb::VersionInfo> info) {
      if (!info.ok()) return ReplyError(in, info.status());
      if (info->subscriber() != m.subscriber())
        return ReplyError(in, Status(Code::kPermissionDenied, "object belongs to another subscriber"));
      pb::Envelope r;
      *r.mutable_version_info() = info.value();
      Reply(in, std::move(r));
    };
    const Oid o = oid.value();
    EnsureSynced(o, [this, o, m, reply](Status st) {
      if (!st.ok()) return reply(st);
      if (m.version() > 0) return ReadExactVersion(o, m.version(), reply);
      switch (m.mode()) {
        case pb::READ_LOCKED: return ReadLocked(o, m.subscriber(), reply);
        case pb::READ_ATOMIC: return ReadAtomic(o, reply);
        default: return ReadMonotonic(o, m.min_version(), reply);
      }
    });
  };
  if (!m.oid().empty()) return serve(Oid::Decode(m.oid()));
  if (m.name_key().size() != kNameKeyBytes) return ReplyError(in, InvalidArgument("give a name key or an oid"));
  pb::Envelope look;
  look.mutable_lookup_name()->set_subscriber(m.subscriber());
  look.mutable_lookup_name()->set_name_key(m.name_key());
  Call(Dest{Dest::kDc, 0}, look, [serve](Result<pb::Envelope> r) {
    if (!r.ok()) return serve(r.status());
    serve(Oid::Decode(r->claim_name_reply().oid()));
  });
}

bool PopCore::IsReplica(const Oid& o) const {
  return o.primary_pop == p_.pop_id || o.backup_pop == p_.pop_id || p_.pop_id == kDcReplica;
}

void PopCore::FetchFromReplicas(const Oid& o, uint64_t version, VersionCont done) {
  pb::Envelope req;
  req.mutable_fetch_version()->set_oid(ToStr(o.Encode()));
  req.mutable_fetch_version()->set_version(version);
  CallReplicas(o, req, [this, done](Result<pb::Envelope> r) {
    if (!r.ok()) return done(r.status());
    CacheVersion(r->version_info());
    done(r->version_info());
  });
}

void PopCore::ReadExactVersion(const Oid& o, uint64_t version, VersionCont done) {
  if (IsReplica(o)) {
    auto local = LocalVersion(o, version);
    if (local.ok() || local.status().code() == Code::kNotFound) return done(std::move(local));
  }
  if (auto* cached = CachedVersion(o.Encode(), version, false)) {
    pb::VersionInfo info = *cached;
    info.set_served_by(p_.pop_id);
    return done(info);
  }
  FetchFromReplicas(o, version, done);
}

void PopCore::ReadAtomic(const Oid& o, VersionCont done) {
  if (ActingPrimary(o) == p_.pop_id) return done(LocalVersion(o, 0));
  if (IsReplica(o)) {
    auto local = LocalVersion(o, 0);
    if (local.status().code() != Code::kUnavailable) return done(std::move(local));
  }
  FetchFromReplicas(o, 0, done);
}

void PopCore::ReadMonotonic(const Oid& o, uint64_t min_version, VersionCont done) {
  if (IsReplica(o)) {
    auto local = LocalVersion(o, 0);
    if (local.ok() && local->version() >= min_version) return done(std::move(local));
  }
  if (auto* cached = CachedVersion(o.Encode(), std::max<uint64_t>(min_version, 1), true)) {
    pb::VersionInfo info = *cached;
    info.set_served_by(p_.pop_id);
    return done(info);
  }
  FetchFromReplicas(o, 0, done);
}

void PopCore::ReadLocked(const Oid& o, const std::string& subscriber, VersionCont done) {
  AcquireLockAt(o, LockType::kRead, [this, o, done](Result<pb::LockGrantMsg> g, uint32_t holder) {
    if (!g.ok()) return done(g.status());
    uint64_t lock_id = g->lock_id();
    if (g->version() == 0) {
      ReleaseLockAt(o, holder, lock_id);
      return done(NotFound("object " + o.Hex() + " has no committed version"));
    }
    TrackEntryLock(o, holder, lock_id, LockType::kRead, g->lease_ms());
    ReadExactVersion(o, g->version(), [this, o, holder, lock_id, done](Result<pb::VersionInfo> info) {
      if (!info.ok()) {
        UntrackEntryLock(lock_id);
        ReleaseLockAt(o, holder, lock_id);
        return done(info.status());
      }
      info->set_lock_id(lock_id);
      done(std::move(info));
    });
  });
}

void PopCore::HandleFetchVersion(const Incoming& in, const Peer& from, const pb::FetchVersion& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "FetchVersion is for POPs only"));
  auto oid = Oid::Decode(m.oid());
  if (!oid.ok()) return ReplyError(in, oid.status());
  auto answer = [this, in, m, o = oid.value()](Status st) {
    if (!st.ok()) return ReplyError(in, st);
    Result<pb::VersionInfo> info = Internal("unset");
    if (m.local_only()) {
      info = store_->GetVersion(o.Encode(), m.version());
      if (info.ok() && info->prepared()) info = NotFound("version not committed here");
    } else {
      info = LocalVersion(o, m.version());
    }
    if (!info.ok()) return ReplyError(in, info.status());
    pb::Envelope r;
    *r.mutable_version_info() = info.value();
    Reply(in, std::move(r));
  };
  if (m.local_only()) return answer(Status::Ok());
  EnsureSynced(oid.value(), answer);
}

// ---------------------------------------------------------------------------
// lock service: the primary's LockTable, reached locally or by message

void PopCore::AcquireLockAt(const Oid& o, LockType type, LockCont done) {
  uint32_t ap = ActingPrimary(o);
  if (ap == kNoPop) return done(Unavailable("no replica of object " + o.Hex() + " is up"), ap);
  if (ap == p_.pop_id) return AcquireLocal(o.Encode(), type, p_.lease_ms, done);
  pb::Envelope req;
  req.mutable_acquire_lock()->set_oid(ToStr(o.Encode()));
  req.mutable_acquire_lock()->set_type(ToPb(type));
  req.mutable_acquire_lock()->set_lease_ms(p_.lease_ms);
  Call(
      ReplicaDest(ap), req,
      [done, ap](Result<pb::Envelope> r) {
        if (!r.ok()) return done(r.status(), ap);
        done(r->lock_grant(), ap);
      },
      p_.lock_wait_ms);
}

void PopCore::AcquireLocal(const Bytes& oid_b, LockType type, uint64_t lease_ms, LockCont done,
                           uint64_t requester_conn) {
  auto oid = Oid::Decode(oid_b);
  if (!oid.ok()) return done(oid.status(), p_.pop_id);
  // Grants carry the latest committed version: catch up first.
  EnsureSynced(oid.value(), [this, oid_b, type, lease_ms, done, requester_conn](Status st) {
    if (!st.ok()) return done(st, p_.pop_id);
    if (requester_conn != 0 && closed_conns_.count(requester_conn))
      return done(Unavailable("the requester went away"), p_.pop_id);
    auto o = Oid::Decode(oid_b);
    if (o.ok() && ActingPrimary(o.value()) != p_.pop_id)  // roles moved while catching up
      return done(Status(Code::kAborted, "no longer the acting primary of " + o->Hex()), p_.pop_id);
    AcquireSynced(oid_b, type, lease_ms, done, requester_conn);
  });
}

void PopCore::AcquireSynced(const Bytes& oid, LockType type, uint64_t lease_ms, LockCont done,
                            uint64_t requester_conn) {
  uint64_t tag = next_token_++;
  auto g = locks_.Acquire(oid, type, lease_ms, now_ms_, tag);
  if (g.ok()) return done(GrantMsg(oid, g.value()), p_.pop_id);
  if (g.status().code() == Code::kUnavailable) {  // queued: answered on release/expiry
    lock_waiters_[tag] =
        LockWaiter{oid, now_ms_ + p_.lock_wait_ms, std::move(done), requester_conn};
    return;
  }
  done(g.status(), p_.pop_id);
}

void PopCore::OnConnectionClosed(uint64_t now_ms, uint64_t conn_id) {
  now_ms_ = now_ms;
  if (conn_id == 0) return;
  std::vector<uint64_t> orphans;
  for (auto& [tag, w] : lock_waiters_)
    if (w.requester_conn == conn_id) orphans.push_back(tag);
  for (uint64_t tag : orphans) {
    auto it = lock_waiters_.find(tag);
    if (it == lock_waiters_.end()) continue;
    Bytes oid = it->second.oid;
    lock_waiters_.erase(it);  // nobody to answer: drop without a reply
    AnswerLockDecisions(locks_.Cancel(oid, tag, now_ms_));
  }
  // A request still catching up (EnsureSynced) checks this set before it
  // queues; connection ids are never reused, so the set only needs a bound.
  closed_conns_.insert(conn_id);
  while (closed_conns_.size() > kClosedConnsRemembered) closed_conns_.erase(closed_conns_.begin());
}

// lease_ms is the lease actually granted: what was asked, or less when the
// lease limit (this POP's map lease, bug 11) cuts it.
pb::LockGrantMsg PopCore::GrantMsg(const Bytes& oid, const LockGrant& g) {
  pb::LockGrantMsg m;
  m.set_lock_id(g.lock_id);
  m.set_token(g.token);
  m.set_lease_ms(g.expires_ms > now_ms_ ? g.expires_ms - now_ms_ : 0);
  m.set_version(store_->LatestVersion(oid));
  return m;
}

void PopCore::AnswerLockDecisions(std::vector<LockDecision> decisions) {
  for (auto& d : decisions) {
    auto it = lock_waiters_.find(d.tag);
    if (it == lock_waiters_.end()) continue;  // its requester gave up
    LockWaiter w = std::move(it->second);
    lock_waiters_.erase(it);
    if (!d.grant.ok()) {
      w.done(d.grant.status(), p_.pop_id);
      continue;
    }
    w.done(GrantMsg(w.oid, d.grant.value()), p_.pop_id);
  }
}

// Releases go to whichever POP is the acting primary now: the one that
// granted the lock, or the one that inherited it.
void PopCore::ReleaseLockAt(const Oid& o, uint32_t /*granted_by*/, uint64_t lock_id) {
  uint32_t ap = ActingPrimary(o);
  if (ap == p_.pop_id) return AnswerLockDecisions(locks_.Release(o.Encode(), lock_id, now_ms_));
  if (ap == kNoPop) return;  // its lease runs out
  pb::Envelope req;
  req.mutable_release_lock()->set_oid(ToStr(o.Encode()));
  req.mutable_release_lock()->set_lock_id(lock_id);
  Call(ReplicaDest(ap), req, [](Result<pb::Envelope>) {});
}

void PopCore::HandleAcquireLock(const Incoming& in, const Peer& from, const pb::AcquireLock& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "AcquireLock is for POPs only"));
  auto oid = Oid::Decode(m.oid());
  if (!oid.ok()) return ReplyError(in, oid.status());
  if (ActingPrimary(oid.value()) != p_.pop_id)
    return ReplyError(in, Status(Code::kAborted, "not the acting primary of " + oid->Hex()));
  if (m.type() != pb::LOCK_READ && m.type() != pb::LOCK_WRITE)
    return ReplyError(in, InvalidArgument("unknown lock type"));
  uint64_t lease = std::clamp<uint64_t>(m.lease_ms(), 100, p_.lease_max_ms);
  LockType type = m.type() == pb::LOCK_WRITE ? LockType::kWrite : LockType::kRead;
  AcquireLocal(
      ToBytes(m.oid()), type, lease,
      [this, in](Result<pb::LockGrantMsg> g, uint32_t) {
        if (!g.ok()) return ReplyError(in, g.status());
        pb::Envelope r;
        *r.mutable_lock_grant() = g.value();
        Reply(in, std::move(r));
      },
      in.conn_id);
}

void PopCore::HandleRenewLock(const Incoming& in, const Peer& from, const pb::RenewLock& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "RenewLock is for POPs only"));
  uint64_t lease = std::clamp<uint64_t>(m.lease_ms(), 100, p_.lease_max_ms);
  Status st = locks_.Renew(ToBytes(m.oid()), m.lock_id(), lease, now_ms_);
  if (!st.ok()) return ReplyError(in, st);
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
}

// From another POP (an entry POP releasing at the primary) or from a client
// through its gateway (the end of a locked read).
void PopCore::HandleReleaseLock(const Incoming& in, const Peer& from, const pb::ReleaseLock& m) {
  auto oid = Oid::Decode(m.oid());
  if (!oid.ok()) return ReplyError(in, oid.status());
  if (from.role == pb::ROLE_GATEWAY) {
    Status st = CheckSubscriber(from, m.subscriber());
    auto it = entry_locks_.find(m.lock_id());
    if (st.ok() && (it == entry_locks_.end() || it->second.type != LockType::kRead))
      st = NotFound("no read lock " + std::to_string(m.lock_id()) + " held here");
    if (!st.ok()) return ReplyError(in, st);
    uint32_t holder = it->second.holder;
    UntrackEntryLock(m.lock_id());
    ReleaseLockAt(oid.value(), holder, m.lock_id());
  } else if (from.role == pb::ROLE_POP) {
    // A release sent here by an entry POP on an older map (or forwarded by
    // the other replica): this POP keeps only a dormant copy of the lock, so
    // the acting primary, which may have fetched that copy already, must
    // hear of it too. Each forward erases one copy, so it cannot loop.
    bool copy_only = locks_.IsDormant(ToBytes(m.oid()), m.lock_id());
    AnswerLockDecisions(locks_.Release(ToBytes(m.oid()), m.lock_id(), now_ms_));
    if (copy_only && ActingPrimary(oid.value()) != p_.pop_id)
      ReleaseLockAt(oid.value(), 0, m.lock_id());
  } else {
    return ReplyError(in, Status(Code::kPermissionDenied, "cannot release that lock here"));
  }
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
}

// Locks this POP holds on behalf of its clients, renewed on ticks: write
// locks for as long as the write runs; read locks while the client keeps
// reading (GetChunk with the lock id), so a vanished reader's lock expires.
void PopCore::TrackEntryLock(const Oid& o, uint32_t holder, uint64_t lock_id, LockType type,
                             uint64_t granted_lease_ms) {
  // The first renewal comes before half the granted lease has passed (the
  // primary may have cut it short), later ones every LockRenewEveryMs().
  uint64_t first = std::min(LockRenewEveryMs(), std::max<uint64_t>(1, granted_lease_ms / 2));
  entry_locks_[lock_id] = EntryLock{o, holder, type, now_ms_ + first, now_ms_};
}

void PopCore::UntrackEntryLock(uint64_t lock_id) { entry_locks_.erase(lock_id); }

void PopCore::TouchEntryLock(uint64_t lock_id) {
  auto it = entry_locks_.find(lock_id);
  if (it != entry_locks_.end()) it->second.touched_ms = now_ms_;
}

void PopCore::TickLocks() {
  for (auto& oid : lock_sync_retry_) locks_.MarkDirty(oid);
  lock_sync_retry_.clear();
  std::vector<uint64_t> expired;
  AnswerLockDecisions(locks_.Expire(now_ms_, &expired));
  for (uint64_t id : expired)
    MS_WARN("pop", "write lock lease expired; its write cannot commit", "lock=" + std::to_string(id));
  std::vector<uint64_t> overdue;
  for (auto& [tag, w] : lock_waiters_)
    if (w.deadline_ms <= now_ms_) overdue.push_back(tag);
  for (uint64_t tag : overdue) {
    auto it = lock_waiters_.find(tag);
    if (it == lock_waiters_.end()) continue;  // answered meanwhile
    LockWaiter w = std::move(it->second);
    lock_waiters_.erase(it);
    w.done(Unavailable("timed out waiting for the lock"), p_.pop_id);
    AnswerLockDecisions(locks_.Cancel(w.oid, tag, now_ms_));
  }
  for (auto it = entry_locks_.begin(); it != entry_locks_.end();) {
    EntryLock& l = it->second;
    if (l.type == LockType::kRead && now_ms_ - l.touched_ms > p_.lease_ms) {
      it = entry_locks_.erase(it);  // the reader went quiet: let it expire
      continue;
    }
    if (now_ms_ >= l.renew_at_ms) {
      l.renew_at_ms = now_ms_ + LockRenewEveryMs();
      uint64_t id = it->first;
      // At the acting primary now: after a takeover the new one inherited
      // the lock and keeps its lease running.
      uint32_t ap = ActingPrimary(l.oid);
      if (ap == p_.pop_id) {
        (void)locks_.Renew(l.oid.Encode(), id, p_.lease_ms, now_ms_);
      } else if (ap != kNoPop) {
        pb::Envelope req;
        req.mutable_renew_lock()->set_oid(ToStr(l.oid.Encode()));
        req.mutable_renew_lock()->set_lock_id(id);
        req.mutable_renew_lock()->set_lease_ms(p_.lease_ms);
        Call(ReplicaDest(ap), req, [](Result<pb::Envelope>) {});
      }
    }
    ++it;
  }
}

// ---------------------------------------------------------------------------
// primary-backup lock table (paper, sections V and VII)
//
// Why grants and releases are pushed (batched, asynchronously) rather than
// carried with prepares: the paper's backup "holds" every lock, read locks
// and write locks not yet at their prepare included, and activates their
// leases when it takes over; prepares would tell it only of writers that
// got that far. Why asynchronously: a grant is answered without waiting for
// the backup (no extra round trip per lock), which is safe because fencing
// tokens have the map epoch in their high bits (a takeover always comes with
// a newer epoch) and a lock the backup never heard of simply cannot commit
// there (its holder retries). Renewals are not sent (the paper: leases tick
// on the primary only); the inheritor gives each lock a full lease.

namespace {
pb::ObjectLocksMsg ToMsg(const Bytes& oid, const ObjectLocks& s) {
  pb::ObjectLocksMsg m;
  m.set_oid(ToStr(oid));
  m.set_lock_epoch(s.epoch);
  for (auto& r : s.held) {
    auto* h = m.add_held();
    h->set_lock_id(r.lock_id);
    h->set_type(ToPb(r.type));
    h->set_token(r.token);
    h->set_lease_ms(r.lease_ms);
  }
  return m;
}
}  // namespace

void PopCore::PushLockState() {
  if (locks_.dirty() == 0) return;
  std::map<uint32_t, std::vector<Bytes>> batches;  // backup -> objects
  std::vector<Bytes> later;
  for (auto& oid_b : locks_.TakeDirty(SIZE_MAX)) {
    auto o = Oid::Decode(oid_b);
    // Only the acting primary's changes travel; a backup's copy stays put.
    if (!o.ok() || ActingPrimary(o.value()) != p_.pop_id) continue;
    uint32_t backup = ActingBackup(o.value());
    if (backup == p_.pop_id) continue;  // a DC-tier object at the DC: no other copy
    auto& batch = batches[backup];
    if (lock_sync_in_flight_.count(backup) || batch.size() >= kLockSyncObjectsMax) {
      later.push_back(oid_b);  // after the message in flight is answered
      continue;
    }
    batch.push_back(oid_b);
  }
  for (auto& oid_b : later) locks_.MarkDirty(oid_b);
  for (auto& [backup, oids] : batches) {
    if (oids.empty()) continue;
    pb::Envelope req;
    for (auto& oid_b : oids) *req.mutable_lock_sync()->add_objects() = ToMsg(oid_b, locks_.Snapshot(oid_b));
    lock_sync_in_flight_.insert(backup);
    // Copies: clang 14 cannot capture structured bindings (the fuzz preset).
    Call(ReplicaDest(backup), std::move(req),
         [this, backup = backup, oids = oids](Result<pb::Envelope> r) {
           lock_sync_in_flight_.erase(backup);
           if (r.ok()) return;
           // Refused (another map epoch) or unreachable: resent on the next
           // tick, to whichever POP is then the acting backup.
           for (auto& oid_b : oids) lock_sync_retry_.insert(oid_b);
         });
  }
}

void PopCore::InstallLocks(const Oid& o, const pb::ObjectLocksMsg& m) {
  ObjectLocks s;
  s.epoch = m.lock_epoch();
  for (auto& h : m.held()) {
    if (h.type() != pb::LOCK_READ && h.type() != pb::LOCK_WRITE) continue;
    uint64_t lease = std::clamp<uint64_t>(h.lease_ms(), 100, p_.lease_max_ms);
    s.held.push_back(LockRecord{h.lock_id(), h.type() == pb::LOCK_WRITE ? LockType::kWrite : LockType::kRead,
                                h.token(), lease});
  }
  Status st = locks_.Install(o.Encode(), s);
  if (!st.ok()) MS_WARN("pop", "lock state not installed", "oid=" + o.Hex() + " why=" + st.message());
}

void PopCore::HandleLockSync(const Incoming& in, const Peer& from, const pb::LockSync& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "LockSync is for POPs only"));
  if (size_t(m.objects_size()) > kLockSyncObjectsMax)
    return ReplyError(in, InvalidArgument("too many objects in one LockSync"));
  for (auto& obj : m.objects()) {
    auto o = Oid::Decode(obj.oid());
    if (!o.ok()) return ReplyError(in, o.status());
    // This POP acting as the object's primary keeps its own table.
    if (ActingPrimary(o.value()) == p_.pop_id) continue;
    InstallLocks(o.value(), obj);
  }
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
}

void PopCore::HandleFetchLocks(const Incoming& in, const Peer& from, const pb::FetchLocks& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "FetchLocks is for POPs only"));
  auto o = Oid::Decode(m.oid());
  if (!o.ok()) return ReplyError(in, o.status());
  pb::Envelope r;
  *r.mutable_lock_sync()->add_objects() = ToMsg(o->Encode(), locks_.Snapshot(o->Encode()));
  Reply(in, std::move(r));
}

void PopCore::FetchLocksFrom(const Oid& o, uint32_t source, std::function<void(Status)> done) {
  pb::Envelope req;
  req.mutable_fetch_locks()->set_oid(ToStr(o.Encode()));
  Call(ReplicaDest(source), std::move(req), [this, o, source, done](Result<pb::Envelope> r) {
    if (!r.ok())
      return done(Unavailable("cannot fetch the locks of " + o.Hex() + " from replica " +
                              std::to_string(source) + ": " + r.status().message()));
    if (ActingPrimary(o) != p_.pop_id) return done(Status::Ok());  // roles moved meanwhile
    for (auto& obj : r->lock_sync().objects())
      if (obj.oid() == ToStr(o.Encode())) InstallLocks(o, obj);
    if (size_t n = locks_.StartLeases(o.Encode(), now_ms_)) {
      locks_inherited_total_ += n;
      MS_INFO("pop", "inherited locks from the other replica",
              "oid=" + o.Hex() + " locks=" + std::to_string(n));
    }
    done(Status::Ok());
  });
}

// After every cluster-map change: objects this POP now acts as primary for
// start the leases of the locks it inherited (a full lease from now: they
// ticked on the old primary only); objects it no longer acts for turn
// dormant and their waiters are refused (they ask the new primary). The
// acting backup may have changed: every held lock is sent again.
void PopCore::ApplyLockRoles() {
  locks_.SetTokenFloor(map_.epoch() << 32);
  for (auto& oid_b : locks_.ObjectIds()) {
    auto o = Oid::Decode(oid_b);
    if (!o.ok()) continue;
    if (ActingPrimary(o.value()) == p_.pop_id) {
      if (size_t n = locks_.StartLeases(oid_b, now_ms_)) {
        locks_inherited_total_ += n;
        MS_INFO("pop", "took over the locks of an object", "oid=" + o->Hex() + " locks=" + std::to_string(n));
      }
    } else {
      AnswerLockDecisions(locks_.Deactivate(oid_b));
      // Not its backup either (the DC after the give-back): the copy would
      // only go stale, and a later takeover must not inherit it.
      if (ActingBackup(o.value()) != p_.pop_id) locks_.Drop(oid_b);
    }
  }
  locks_.MarkAllHeldDirty();
}

}  // namespace mistore
