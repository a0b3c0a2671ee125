// Unit tests for LockTable (pop-server/lock_table.h): shared readers,
// exclusive writer, FIFO waiters, leases, fencing tokens, bounds, cancels.
#include "pop-server/lock_table.h"

#include <gtest/gtest.h>

namespace mistore {
namespace {

const Bytes kOid = {1, 2, 3};
const Bytes kOther = {9};

TEST(LockTable, ReadersShareWriterExcludes) {
  LockTable t;
  auto r1 = t.Acquire(kOid, LockType::kRead, 1000, 0, 1);
  auto r2 = t.Acquire(kOid, LockType::kRead, 1000, 0, 2);
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r2.ok());
  EXPECT_NE(r1->lock_id, r2->lock_id);
  EXPECT_EQ(t.held(kOid), 2u);
  auto w = t.Acquire(kOid, LockType::kWrite, 1000, 0, 3);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::kUnavailable);  // queued
  EXPECT_EQ(t.waiting(kOid), 1u);
  EXPECT_TRUE(t.Release(kOid, r1->lock_id, 10).empty());
  auto d = t.Release(kOid, r2->lock_id, 10);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].tag, 3u);
  ASSERT_TRUE(d[0].grant.ok());
  EXPECT_EQ(d[0].grant->type, LockType::kWrite);
  EXPECT_EQ(d[0].grant->expires_ms, 1010u);
}

TEST(LockTable, ReaderCannotOvertakeQueuedWriter) {
  LockTable t;
  auto r1 = t.Acquire(kOid, LockType::kRead, 1000, 0, 1);
  ASSERT_TRUE(r1.ok());
  ASSERT_FALSE(t.Acquire(kOid, LockType::kWrite, 1000, 0, 2).ok());
  auto r2 = t.Acquire(kOid, LockType::kRead, 1000, 0, 3);
  EXPECT_FALSE(r2.ok()) << "a reader overtook a queued writer";
  auto d = t.Release(kOid, r1->lock_id, 1);
  ASSERT_EQ(d.size(), 1u);  // the writer only; the reader waits for it
  EXPECT_EQ(d[0].tag, 2u);
  auto d2 = t.Release(kOid, d[0].grant->lock_id, 2);
  ASSERT_EQ(d2.size(), 1u);
  EXPECT_EQ(d2[0].tag, 3u);
}

TEST(LockTable, EveryWriteGrantRaisesTheFencingToken) {
  LockTable t;
  auto w1 = t.Acquire(kOid, LockType::kWrite, 1000, 0, 1);
  ASSERT_TRUE(w1.ok());
  EXPECT_EQ(w1->token, 1u);
  EXPECT_TRUE(t.CheckWrite(kOid, w1->lock_id, w1->token, 10).ok());
  (void)t.Release(kOid, w1->lock_id, 10);
  EXPECT_FALSE(t.CheckWrite(kOid, w1->lock_id, w1->token, 10).ok());
  auto w2 = t.Acquire(kOid, LockType::kWrite, 1000, 20, 2);
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ(w2->token, 2u);
  EXPECT_EQ(t.epoch(kOid), 2u);
  EXPECT_EQ(t.CheckWrite(kOid, w2->lock_id, w1->token, 30).code(), Code::kAborted);
  auto rd = t.Acquire(kOther, LockType::kRead, 1000, 0, 3);
  ASSERT_TRUE(rd.ok());
  EXPECT_FALSE(t.CheckWrite(kOther, rd->lock_id, rd->token, 1).ok()) << "read lock passed as write";
}

TEST(LockTable, EpochSurvivesWhenTheObjectHasNoLocks) {
  LockTable t;
  auto w = t.Acquire(kOid, LockType::kWrite, 1000, 0, 1);
  ASSERT_TRUE(w.ok());
  (void)t.Release(kOid, w->lock_id, 1);
  EXPECT_EQ(t.epoch(kOid), 1u);
  auto w2 = t.Acquire(kOid, LockType::kWrite, 1000, 2, 2);
  EXPECT_EQ(w2->token, 2u) << "a fencing token went back";
}

TEST(LockTable, LeaseExpiryFencesTheWriterAndGrantsTheNext) {
  LockTable t;
  auto w = t.Acquire(kOid, LockType::kWrite, 100, 0, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_FALSE(t.Acquire(kOid, LockType::kRead, 100, 0, 2).ok());
  EXPECT_TRUE(t.Renew(kOid, w->lock_id, 100, 50).ok());  // now expires at 150
  std::vector<uint64_t> expired;
  EXPECT_TRUE(t.Expire(120, &expired).empty());
  EXPECT_TRUE(expired.empty());
  EXPECT_EQ(t.expired_total(), 0u);
  EXPECT_EQ(t.CheckWrite(kOid, w->lock_id, w->token, 150).code(), Code::kAborted);
  auto d = t.Expire(150, &expired);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0], w->lock_id);
  EXPECT_EQ(t.expired_total(), 1u);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].tag, 2u);
  EXPECT_EQ(t.Renew(kOid, w->lock_id, 100, 151).code(), Code::kAborted);
}

TEST(LockTable, WaitQueueIsBounded) {
  LockTable t(/*waiters_per_object_max=*/2);
  ASSERT_TRUE(t.Acquire(kOid, LockType::kWrite, 100, 0, 1).ok());
  EXPECT_EQ(t.Acquire(kOid, LockType::kWrite, 100, 0, 2).status().code(), Code::kUnavailable);
  EXPECT_EQ(t.Acquire(kOid, LockType::kRead, 100, 0, 3).status().code(), Code::kUnavailable);
  EXPECT_EQ(t.Acquire(kOid, LockType::kRead, 100, 0, 4).status().code(),
            Code::kResourceExhausted);
  EXPECT_EQ(t.waiting(kOid), 2u);
  EXPECT_TRUE(t.Acquire(kOther, LockType::kRead, 100, 0, 5).ok()) << "bound is per object";
}

TEST(LockTable, ReleaseIsIdempotent) {
  LockTable t;
  auto w = t.Acquire(kOid, LockType::kWrite, 100, 0, 1);
  (void)t.Release(kOid, w->lock_id, 1);
  EXPECT_TRUE(t.Release(kOid, w->lock_id, 2).empty());
  EXPECT_TRUE(t.Release(kOid, 12345, 2).empty());
  EXPECT_EQ(t.held(kOid), 0u);
}

// Regression: a cancelled writer at the head of the queue must not keep the
// readers behind it waiting while only readers hold the object.
TEST(LockTable, CancelledWriterLetsTheReadersBehindItIn) {
  LockTable t;
  auto r1 = t.Acquire(kOid, LockType::kRead, 1000, 0, 1);
  ASSERT_TRUE(r1.ok());
  ASSERT_FALSE(t.Acquire(kOid, LockType::kWrite, 1000, 0, 2).ok());
  ASSERT_FALSE(t.Acquire(kOid, LockType::kRead, 1000, 0, 3).ok());
  auto d = t.Cancel(kOid, 2, 5);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].tag, 3u);
  EXPECT_EQ(t.waiting(kOid), 0u);
  EXPECT_EQ(t.held(kOid), 2u);
  EXPECT_TRUE(t.Cancel(kOid, 99, 6).empty());  // unknown tag: no-op
}

TEST(LockTable, LockIdsStartAtTheGivenBase) {
  LockTable t(64, 1000);
  auto g = t.Acquire(kOid, LockType::kRead, 1, 0, 1);
  EXPECT_GE(g->lock_id, 1000u);
}

// ---- primary-backup replication of the table (paper, section VII)

TEST(LockTable, BackupCopyIsDormantUntilTheTakeoverStartsAFullLease) {
  LockTable primary(64, 1), backup(64, 1001);
  auto w = primary.Acquire(kOid, LockType::kWrite, 1000, 0, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(backup.Install(kOid, primary.Snapshot(kOid)).ok());
  EXPECT_EQ(backup.held(kOid), 1u);
  EXPECT_TRUE(backup.ActiveLocks().empty());
  EXPECT_FALSE(backup.CheckWrite(kOid, w->lock_id, w->token, 10).ok()) << "a dormant copy passed the fencing check";
  EXPECT_FALSE(backup.Renew(kOid, w->lock_id, 1000, 10).ok()) << "a dormant copy was renewed";
  std::vector<uint64_t> expired;
  EXPECT_TRUE(backup.Expire(50000, &expired).empty());
  EXPECT_TRUE(expired.empty()) << "a lease ticked on the backup";
  // Takeover at 5000, long after the primary's lease (1000) would have ended.
  EXPECT_EQ(backup.StartLeases(kOid, 5000), 1u);
  EXPECT_TRUE(backup.CheckWrite(kOid, w->lock_id, w->token, 5999).ok());
  EXPECT_FALSE(backup.CheckWrite(kOid, w->lock_id, w->token, 6000).ok()) << "lease longer than granted";
  EXPECT_EQ(backup.StartLeases(kOid, 7000), 0u) << "an active lease was restarted";
  (void)backup.Expire(6000, &expired);
  EXPECT_EQ(expired, std::vector<uint64_t>{w->lock_id});
}

TEST(LockTable, TokenFloorKeepsTokensGrowingAcrossRoleChanges) {
  LockTable primary(64, 1), backup(64, 1001);
  primary.SetTokenFloor(5ull << 32);
  auto w1 = primary.Acquire(kOid, LockType::kWrite, 1000, 0, 1);
  ASSERT_TRUE(w1.ok());
  EXPECT_EQ(w1->token, 5ull << 32);
  (void)primary.Release(kOid, w1->lock_id, 1);
  auto w2 = primary.Acquire(kOid, LockType::kWrite, 1000, 2, 2);
  EXPECT_EQ(w2->token, (5ull << 32) + 1);
  // The backup never heard of w2; the takeover's newer epoch still wins.
  backup.SetTokenFloor(6ull << 32);
  auto w3 = backup.Acquire(kOid, LockType::kWrite, 1000, 3, 3);
  EXPECT_GT(w3->token, w2->token);
  backup.SetTokenFloor(1);  // the floor never goes down
  EXPECT_EQ(backup.token_floor(), 6ull << 32);
  // Give-back to a restarted primary (empty table) inheriting w3.
  LockTable returned(64, 2001);
  (void)backup.Deactivate(kOid);
  ASSERT_TRUE(returned.Install(kOid, backup.Snapshot(kOid)).ok());
  returned.SetTokenFloor(7ull << 32);
  EXPECT_EQ(returned.StartLeases(kOid, 10), 1u);
  EXPECT_TRUE(returned.CheckWrite(kOid, w3->lock_id, w3->token, 11).ok());
  (void)returned.Release(kOid, w3->lock_id, 12);
  auto w4 = returned.Acquire(kOid, LockType::kWrite, 1000, 13, 4);
  EXPECT_GT(w4->token, w3->token);
}

TEST(LockTable, HeldChangesMarkTheObjectDirtyRenewalsDoNot) {
  LockTable t;
  auto r = t.Acquire(kOid, LockType::kRead, 1000, 0, 1);
  EXPECT_EQ(t.TakeDirty(10), std::vector<Bytes>{kOid});
  EXPECT_EQ(t.dirty(), 0u);
  ASSERT_TRUE(t.Renew(kOid, r->lock_id, 1000, 10).ok());
  EXPECT_EQ(t.dirty(), 0u) << "renewals are not sent to the backup";
  (void)t.Release(kOid, r->lock_id, 20);
  EXPECT_EQ(t.dirty(), 1u);
  (void)t.TakeDirty(10);
  auto w = t.Acquire(kOther, LockType::kWrite, 100, 30, 2);
  (void)t.TakeDirty(10);
  std::vector<uint64_t> expired;
  (void)t.Expire(200, &expired);
  EXPECT_EQ(t.TakeDirty(10), std::vector<Bytes>{kOther}) << "an expiry was not marked";
  // TakeDirty is bounded; the rest stays marked.
  (void)t.Acquire(kOid, LockType::kRead, 1000, 300, 3);
  (void)t.Acquire(kOther, LockType::kRead, 1000, 300, 4);
  EXPECT_EQ(t.TakeDirty(1).size(), 1u);
  EXPECT_EQ(t.dirty(), 1u);
  (void)w;
}

TEST(LockTable, DeactivateRefusesWaitersAndTurnsLocksDormant) {
  LockTable t;
  auto w = t.Acquire(kOid, LockType::kWrite, 1000, 0, 1);
  ASSERT_FALSE(t.Acquire(kOid, LockType::kWrite, 1000, 0, 7).ok());  // queued
  EXPECT_FALSE(t.Install(kOid, ObjectLocks{}).ok()) << "a backup copy replaced an acting primary's locks";
  auto d = t.Deactivate(kOid);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].tag, 7u);
  EXPECT_EQ(d[0].grant.status().code(), Code::kAborted);
  EXPECT_EQ(t.waiting(kOid), 0u);
  EXPECT_TRUE(t.ActiveLocks().empty());
  EXPECT_FALSE(t.CheckWrite(kOid, w->lock_id, w->token, 10).ok());
  // Now a backup: copies install; dropped when it is no replica any more.
  EXPECT_TRUE(t.Install(kOid, ObjectLocks{}).ok());
  EXPECT_EQ(t.held(kOid), 0u);
  t.Drop(kOid);
  EXPECT_EQ(t.objects(), 0u);
}

// Regression (sim seed 5349): a returning primary that inherits an object
// with nothing held must still issue tokens above the last one issued.
TEST(LockTable, AnEmptySnapshotStillCarriesTheEpoch) {
  LockTable standin(64, 1), returned(64, 1001);
  standin.SetTokenFloor(2ull << 32);
  auto w = standin.Acquire(kOid, LockType::kWrite, 1000, 0, 1);
  (void)standin.Release(kOid, w->lock_id, 5);
  ASSERT_TRUE(returned.Install(kOid, standin.Snapshot(kOid)).ok());
  returned.SetTokenFloor(2ull << 32);  // same epoch floor
  auto w2 = returned.Acquire(kOid, LockType::kWrite, 1000, 10, 2);
  EXPECT_GT(w2->token, w->token);
}

TEST(LockTable, HeldLocksPerObjectAreBounded) {
  LockTable t(64, 1, 3);
  for (uint64_t i = 0; i < 3; i++) ASSERT_TRUE(t.Acquire(kOid, LockType::kRead, 1000, 0, i).ok());
  auto r = t.Acquire(kOid, LockType::kRead, 1000, 0, 9);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
  ObjectLocks big;
  for (uint64_t i = 0; i < 4; i++) big.held.push_back(LockRecord{100 + i, LockType::kRead, 0, 1000});
  EXPECT_EQ(t.Install(kOther, big).code(), Code::kResourceExhausted);
}

// Regression (the LockSync/FetchLocks crossing): a release that reaches a
// table before a snapshot sent earlier, which still holds the lock, is not
// undone by that snapshot.
TEST(LockTable, AStaleSnapshotDoesNotResurrectAReleasedLock) {
  LockTable standin(64, 1), returned(64, 1001);
  auto w = standin.Acquire(kOid, LockType::kWrite, 1000, 0, 1);
  ASSERT_TRUE(w.ok());
  ObjectLocks stale = standin.Snapshot(kOid);  // in flight, holding w
  EXPECT_TRUE(returned.Release(kOid, w->lock_id, 10).empty());  // unknown here yet
  ASSERT_TRUE(returned.Install(kOid, stale).ok());
  EXPECT_EQ(returned.held(kOid), 0u) << "the stale snapshot brought the released lock back";
  EXPECT_EQ(returned.epoch(kOid), w->token) << "the epoch must still be taken over";
  EXPECT_EQ(returned.StartLeases(kOid, 20), 0u);
  EXPECT_TRUE(returned.Acquire(kOid, LockType::kWrite, 1000, 20, 2).ok());
}

TEST(LockTable, RemembersReleasesForABoundedTimeAndNumber) {
  LockTable t(64, 1);
  t.SetReleasedKeepMs(1000);
  for (uint64_t id = 1; id <= LockTable::kReleasedPerObjectMax + 10; id++) (void)t.Release(kOid, id, 0);
  EXPECT_EQ(t.released_remembered(kOid), LockTable::kReleasedPerObjectMax);
  // The oldest are forgotten first: id 1 may come back, the newest may not.
  ObjectLocks s;
  s.held.push_back(LockRecord{1, LockType::kRead, 0, 1000});
  s.held.push_back(LockRecord{LockTable::kReleasedPerObjectMax + 10, LockType::kRead, 0, 1000});
  ASSERT_TRUE(t.Install(kOid, s).ok());
  EXPECT_EQ(t.held(kOid), 1u);
  EXPECT_TRUE(t.IsDormant(kOid, 1));
  (void)t.Expire(999, nullptr);
  EXPECT_EQ(t.released_remembered(kOid), LockTable::kReleasedPerObjectMax);
  (void)t.Expire(1000, nullptr);
  EXPECT_EQ(t.released_remembered(kOid), 0u);
  // An object that only remembered releases is forgotten with them.
  (void)t.Release(kOther, 5, 2000);
  EXPECT_EQ(t.objects(), 2u);
  (void)t.Expire(3000, nullptr);
  EXPECT_EQ(t.objects(), 1u);
}

// Bug 11: no lease outlives the owner's lease limit (its last DC contact +
// map lease); past the limit nothing is granted, renewed or started, and
// waiters stay queued until the limit moves on.
TEST(LockTable, LeasesEndByTheLeaseLimit) {
  LockTable t;
  EXPECT_EQ(t.lease_limit_ms(), UINT64_MAX);
  t.SetLeaseLimit(5000);
  auto w = t.Acquire(kOid, LockType::kWrite, 10000, 1000, 1);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->expires_ms, 5000u) << "a grant outlived the lease limit";
  EXPECT_TRUE(t.CheckWrite(kOid, w->lock_id, w->token, 4999).ok());
  EXPECT_FALSE(t.CheckWrite(kOid, w->lock_id, w->token, 5000).ok());
  ASSERT_TRUE(t.Renew(kOid, w->lock_id, 10000, 3000).ok());
  EXPECT_FALSE(t.CheckWrite(kOid, w->lock_id, w->token, 5000).ok())
      << "a renewal outlived the limit";
  // The DC answered at 2000 (limit 7000): a renewal reaches up to it.
  t.SetLeaseLimit(7000);
  ASSERT_TRUE(t.Renew(kOid, w->lock_id, 10000, 3500).ok());
  EXPECT_TRUE(t.CheckWrite(kOid, w->lock_id, w->token, 6999).ok());
  EXPECT_FALSE(t.CheckWrite(kOid, w->lock_id, w->token, 7000).ok());
  // A short lease inside the limit is not stretched to it.
  auto r = t.Acquire(kOther, LockType::kRead, 1000, 3500, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->expires_ms, 4500u);
  // Past the limit: no grant, no renewal; a waiter stays queued.
  auto q = t.Acquire(kOid, LockType::kWrite, 10000, 6500, 3);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kUnavailable);  // queued behind w
  std::vector<uint64_t> expired;
  EXPECT_TRUE(t.Expire(7000, &expired).empty())
      << "a waiter was granted past the lease limit";
  EXPECT_EQ(expired, std::vector<uint64_t>{w->lock_id});
  EXPECT_EQ(t.waiting(kOid), 1u);
  auto late = t.Acquire(kOther, LockType::kRead, 1000, 7000, 4);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), Code::kAborted);
  EXPECT_FALSE(t.Renew(kOther, r->lock_id, 1000, 7000).ok());
  // The DC answers again: the waiter is granted on the next Expire.
  t.SetLeaseLimit(12000);
  auto d = t.Expire(7100, &expired);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].tag, 3u);
  ASSERT_TRUE(d[0].grant.ok());
  EXPECT_EQ(d[0].grant->expires_ms, 12000u);
}

// Bug 11: a POP whose map lease has ended cannot start an inherited lease
// (seed 20: a cut-off primary's catch-up installed a write lock from its
// backup and gave it a fresh 10 s lease while the DC was failing it over).
TEST(LockTable, InheritedLeasesStartNoLaterThanTheLeaseLimit) {
  LockTable primary(64, 1), backup(64, 1001);
  auto w = primary.Acquire(kOid, LockType::kWrite, 10000, 0, 1);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(backup.Install(kOid, primary.Snapshot(kOid)).ok());
  backup.SetLeaseLimit(21000);
  EXPECT_EQ(backup.StartLeases(kOid, 20000), 1u);
  EXPECT_TRUE(backup.CheckWrite(kOid, w->lock_id, w->token, 20999).ok());
  EXPECT_FALSE(backup.CheckWrite(kOid, w->lock_id, w->token, 21000).ok())
      << "inherited lease past the limit";
  LockTable stale(64, 2001);
  ASSERT_TRUE(stale.Install(kOid, primary.Snapshot(kOid)).ok());
  stale.SetLeaseLimit(21000);
  EXPECT_EQ(stale.StartLeases(kOid, 26000), 1u);
  EXPECT_FALSE(stale.CheckWrite(kOid, w->lock_id, w->token, 26000).ok())
      << "a lease started after the lease limit is valid";
  std::vector<uint64_t> expired;
  (void)stale.Expire(26000, &expired);
  EXPECT_EQ(expired, std::vector<uint64_t>{w->lock_id});
  EXPECT_EQ(stale.held(kOid), 0u);
}

}  // namespace
}  // namespace mistore
