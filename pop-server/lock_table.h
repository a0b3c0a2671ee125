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
// Pure and deterministic: time is an argument, nothing is scheduled; the
// owner (PopCore) calls Expire(now) on its ticks. Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

enum class LockType { kRead = 1, kWrite = 2 };

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
  explicit LockTable(size_t waiters_per_object_max = 64, uint64_t lock_id_base = 1)
      : waiters_max_(waiters_per_object_max), next_lock_id_(lock_id_base | 1) {}

  // Grants at once when possible. Otherwise queues the request (its answer
  // comes later from Release/Expire as a LockDecision carrying `tag`) and
  // returns kUnavailable with message "queued"; kResourceExhausted when the
  // object's queue is full.
  Result<LockGrant> Acquire(const Bytes& oid, LockType type, uint64_t lease_ms, uint64_t now_ms,
                            uint64_t tag);
  // Extends a held lock's lease. kAborted if it expired or is unknown.
  Status Renew(const Bytes& oid, uint64_t lock_id, uint64_t lease_ms, uint64_t now_ms);
  // Releases a held lock (unknown ids are ignored: releases are idempotent).
  std::vector<LockDecision> Release(const Bytes& oid, uint64_t lock_id, uint64_t now_ms);
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

  uint64_t epoch(const Bytes& oid) const;
  size_t held(const Bytes& oid) const;  // read + write locks held
  size_t waiting(const Bytes& oid) const;
  uint64_t expired_total() const { return expired_total_; }  // leases run out, ever
  // Number of objects with any lock state (for bounds and metrics).
  size_t objects() const { return objects_.size(); }

 private:
  struct Held {
    LockType type;
    uint64_t expires_ms;
    uint64_t token;
  };
  struct Waiter {
    uint64_t tag;
    LockType type;
    uint64_t lease_ms;
  };
  struct Object {
    uint64_t epoch = 0;
    std::map<uint64_t, Held> held;  // lock id -> lock
    std::deque<Waiter> waiters;
  };
  bool Compatible(const Object& o, LockType type) const;
  LockGrant Grant(Object& o, LockType type, uint64_t lease_ms, uint64_t now_ms);
  void GrantWaiters(Object& o, uint64_t now_ms, std::vector<LockDecision>* out);
  void Forget(const Bytes& oid);

  size_t waiters_max_;
  uint64_t expired_total_ = 0;
  uint64_t next_lock_id_;
  std::map<Bytes, Object> objects_;
};

}  // namespace mistore
