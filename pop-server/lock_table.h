// LockTable: the per-object lock service a primary POP runs (paper, figs.
// 2–4). Read locks are shared and counted; the write lock is exclusive and
// excludes readers (single writer, many readers). Every grant carries a
// lease (expiry = now + lease_ms) that its holder renews while its operation
// runs, and a fencing token: the object's lock epoch, incremented at every
// write-lock grant, which the commit path checks so that a writer whose lease
// ran out can never commit. Requests that cannot be granted wait in a
// bounded FIFO per object and are granted in order as locks are released or
// expire.
//
// Primary-backup (paper, section V and VII): the object's backup keeps a
// *dormant* copy of the primary's held locks (no lease clock: leases tick
// on the primary only, and renewals are not sent to the backup). The
// primary's table marks an object dirty whenever its set of held locks
// changes (grant, release, expiry — not renewal); the owner sends
// Snapshot()s of dirty objects to the backup, which Install()s them. When
// the backup takes over, StartLeases() gives every inherited lock a full
// lease from that moment; when it hands the role back, Deactivate() turns
// its locks dormant again and refuses its waiters. Fencing tokens never go
// below the table's token floor, which the owner sets from the cluster-map
// epoch (epoch << 32): a takeover or give-back always comes with a newer
// epoch, so tokens stay strictly monotonic per object across role changes
// even when the last grants never reached the backup.
//
// Releases are remembered (per object, the last kReleasedPerObjectMax lock
// ids, each for released_keep_ms): a snapshot that left its sender before a
// release reached this table — a FetchLocks reply crossing the release on
// another connection — cannot bring the released lock back (Install skips
// it). The owner sets released_keep_ms to at least its call timeout, the
// longest a stale reply can still arrive.
//
// Lease limit (bug 11): the owner may act as an object's primary only while
// its cluster map is known to be current, i.e. until its last DC contact plus
// its map lease; after that the DC may have failed it over and another POP
// may grant. SetLeaseLimit(t) makes every lease granted, renewed or started
// end no later than t, and once t has passed nothing is granted, renewed or
// started here (waiters stay queued until the limit moves on). So no lock
// of this table stays valid past the moment its owner stops knowing it is
// the primary.
//
// Pure and deterministic: time is an argument, nothing is scheduled; the
// owner (PopCore) calls Expire(now) on its ticks. Loop thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

enum class LockType { kRead = 1, kWrite = 2 };

// A held lock as the backup keeps it: no expiry, the lease length granted.
struct LockRecord {
  uint64_t lock_id = 0;
  LockType type = LockType::kRead;
  uint64_t token = 0;
  uint64_t lease_ms = 0;
};

// One object's lock state as sent to its backup.
struct ObjectLocks {
  uint64_t epoch = 0;  // last fencing token issued
  std::vector<LockRecord> held;
};

// An active (lease ticking) held lock, for views and the simulator's checker.
struct ActiveLock {
  Bytes oid;
  uint64_t lock_id;
  LockType type;
  uint64_t token;
  uint64_t expires_ms;
};

struct LockGrant {
  uint64_t lock_id = 0;
  uint64_t token = 0;       // write: the new lock epoch; read: the current one
  uint64_t expires_ms = 0;
  LockType type = LockType::kRead;
};

// A request that had to wait, now granted (or refused); `tag` is the
// caller's handle for whom to answer.
struct LockDecision {
  uint64_t tag;
  Result<LockGrant> grant;
};

class LockTable {
 public:
  // Lock ids start at `lock_id_base` (random per process start) so that a
  // lock id from before a restart never matches a lock granted after it.
  explicit LockTable(size_t waiters_per_object_max = 64, uint64_t lock_id_base = 1,
                     size_t held_per_object_max = 4096)
      : waiters_max_(waiters_per_object_max),
        held_max_(held_per_object_max),
        next_lock_id_(lock_id_base | 1) {}

  // Grants at once when possible. Otherwise queues the request (its answer
  // comes later from Release/Expire as a LockDecision carrying `tag`) and
  // returns kUnavailable with message "queued"; kResourceExhausted when the
  // object's queue is full or it already holds held_per_object_max locks;
  // kAborted when the lease limit has passed. The grant's expires_ms is
  // min(now + lease_ms, lease limit).
  Result<LockGrant> Acquire(const Bytes& oid, LockType type, uint64_t lease_ms, uint64_t now_ms,
                            uint64_t tag);
  // Extends a held lock's lease to min(now + lease_ms, lease limit).
  // kAborted if it expired, is unknown or is dormant (this table is not the
  // object's acting primary), or the lease limit has passed.
  Status Renew(const Bytes& oid, uint64_t lock_id, uint64_t lease_ms, uint64_t now_ms);
  // Releases a held lock (unknown ids are ignored: releases are idempotent)
  // and remembers the id as released, held here or not.
  std::vector<LockDecision> Release(const Bytes& oid, uint64_t lock_id, uint64_t now_ms);
  // True when `lock_id` is held here as a dormant (backup) copy.
  bool IsDormant(const Bytes& oid, uint64_t lock_id) const;
  // Drops expired locks and grants waiters; `expired_writes` gets the lock
  // ids of write locks that expired (their writes must abort).
  std::vector<LockDecision> Expire(uint64_t now_ms, std::vector<uint64_t>* expired_writes);
  // Fencing check for a commit: the write lock `lock_id` is held with
  // `token` and its lease has not run out.
  Status CheckWrite(const Bytes& oid, uint64_t lock_id, uint64_t token, uint64_t now_ms) const;
  // Removes a waiter (its requester gave up). No-op when unknown. Waiters
  // queued behind it that are now compatible with the held locks (readers
  // behind a cancelled writer) are granted and returned.
  [[nodiscard]] std::vector<LockDecision> Cancel(const Bytes& oid, uint64_t tag, uint64_t now_ms);

  // Leases end no later than `limit_ms` (UINT64_MAX: no limit, the default).
  // The owner moves it forward at every DC contact (see the header comment).
  void SetLeaseLimit(uint64_t limit_ms) { lease_limit_ms_ = limit_ms; }
  uint64_t lease_limit_ms() const { return lease_limit_ms_; }

  // ---- primary-backup replication of the table
  // New write grants get tokens >= floor (the owner sets epoch << 32).
  void SetTokenFloor(uint64_t floor) { token_floor_ = std::max(token_floor_, floor); }
  uint64_t token_floor() const { return token_floor_; }
  // How long a release is remembered against stale snapshots.
  void SetReleasedKeepMs(uint64_t ms) { released_keep_ms_ = ms; }
  static constexpr size_t kReleasedPerObjectMax = 64;
  // Objects whose held locks changed since the last call (at most `max`;
  // the rest stay marked).
  std::vector<Bytes> TakeDirty(size_t max);
  void MarkDirty(const Bytes& oid) { dirty_.insert(oid); }
  // Marks every object holding locks dirty (the backup changed: resend all).
  void MarkAllHeldDirty();
  size_t dirty() const { return dirty_.size(); }
  // The object's held locks (active or dormant) and epoch.
  ObjectLocks Snapshot(const Bytes& oid) const;
  // Backup: replaces the object's held locks with dormant copies of `s`
  // (the epoch only grows; locks released here lately are left out). Refused (kAborted) when the object
  // has active locks or waiters here: this table is acting as its primary.
  Status Install(const Bytes& oid, const ObjectLocks& s);
  // Takeover: dormant locks of the object get a full lease (their granted
  // length) from now, cut at the lease limit (already over when the limit
  // has passed: they expire at the next Expire). Returns how many.
  size_t StartLeases(const Bytes& oid, uint64_t now_ms);
  // Give-back: the object's locks turn dormant; its waiters are refused
  // (kAborted) and returned.
  std::vector<LockDecision> Deactivate(const Bytes& oid);
  // A replica that is neither primary nor backup any more forgets its
  // dormant copy (no-op if the object has active locks or waiters here).
  void Drop(const Bytes& oid);
  std::vector<Bytes> ObjectIds() const;
  // Active locks (all objects), and a counter bumped by every change to
  // them (grant, release, expiry, renewal, activation): a cheap "changed?".
  std::vector<ActiveLock> ActiveLocks() const;
  uint64_t changes() const { return changes_; }

  uint64_t epoch(const Bytes& oid) const;
  size_t held(const Bytes& oid) const;  // read + write locks held
  size_t waiting(const Bytes& oid) const;
  uint64_t expired_total() const { return expired_total_; }  // leases run out, ever
  size_t released_remembered(const Bytes& oid) const;
  // Number of objects with any lock state (for bounds and metrics).
  size_t objects() const { return objects_.size(); }

 private:
  static constexpr uint64_t kDormant = UINT64_MAX;  // expires_ms of a backup's copy
  struct Held {
    LockType type;
    uint64_t expires_ms;  // kDormant: no lease clock here (backup copy)
    uint64_t token;
    uint64_t lease_ms;
  };
  struct Waiter {
    uint64_t tag;
    LockType type;
    uint64_t lease_ms;
  };
  struct Released {
    uint64_t lock_id;
    uint64_t at_ms;
  };
  struct Object {
    uint64_t epoch = 0;
    std::map<uint64_t, Held> held;  // lock id -> lock
    std::deque<Waiter> waiters;
    std::deque<Released> released;  // oldest first, at most kReleasedPerObjectMax
  };
  static bool WasReleased(const Object& o, uint64_t lock_id);
  void Remember(Object& o, uint64_t lock_id, uint64_t now_ms);
  bool DropOldReleases(Object& o, uint64_t now_ms);
  bool Compatible(const Object& o, LockType type) const;
  uint64_t LeaseEnd(uint64_t lease_ms, uint64_t now_ms) const {
    return std::min(now_ms + lease_ms, lease_limit_ms_);
  }
  LockGrant Grant(const Bytes& oid, Object& o, LockType type, uint64_t lease_ms, uint64_t now_ms);
  void GrantWaiters(const Bytes& oid, Object& o, uint64_t now_ms, std::vector<LockDecision>* out);
  void Forget(const Bytes& oid);

  size_t waiters_max_;
  size_t held_max_;
  uint64_t token_floor_ = 0;
  uint64_t lease_limit_ms_ = UINT64_MAX;
  uint64_t released_keep_ms_ = 30000;
  uint64_t changes_ = 0;
  std::set<Bytes> dirty_;
  uint64_t expired_total_ = 0;
  uint64_t next_lock_id_;
  std::map<Bytes, Object> objects_;
};

}  // namespace mistore
