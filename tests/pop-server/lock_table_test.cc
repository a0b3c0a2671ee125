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

}  // namespace
}  // namespace mistore
