#include "gateway-agent/background_io.h"

#include <gtest/gtest.h>

namespace mistore {
namespace {

TEST(TokenBucketTest, BurstThenDebtThenRefill) {
  TokenBucket b(1000, 500, 10'000);  // 1000 B/s, 500 B burst
  EXPECT_EQ(b.WaitMs(10'000), 0u);
  EXPECT_TRUE(b.TryTake(10'000, 300));
  EXPECT_TRUE(b.TryTake(10'000, 300));  // overdraws: 500 - 600 = -100
  EXPECT_FALSE(b.TryTake(10'000, 1));
  EXPECT_EQ(b.WaitMs(10'000), 100u);  // 100 B at 1 B/ms
  EXPECT_EQ(b.WaitMs(10'050), 50u);
  EXPECT_FALSE(b.TryTake(10'099, 1));
  EXPECT_TRUE(b.TryTake(10'100, 1));
  EXPECT_EQ(b.taken_total(), 601u);
  // A long idle period refills only up to the burst.
  EXPECT_TRUE(b.TryTake(1'000'000, 500));
  EXPECT_FALSE(b.TryTake(1'000'000, 1) && b.TryTake(1'000'000, 1));
}

TEST(TokenBucketTest, OneTakeLargerThanTheBurstIsPaidBack) {
  TokenBucket b(4096, 1024, 0);
  EXPECT_TRUE(b.TryTake(0, 1 << 20));  // a 1 MiB fragment with a 1 KiB burst
  uint64_t wait = b.WaitMs(0);
  EXPECT_FALSE(b.TryTake(1, 1));
  // (1 MiB - 1 KiB) at 4096 B/s: 255.75 s.
  EXPECT_EQ(wait, 255'750u);
  EXPECT_FALSE(b.TryTake(wait - 1, 1));
  EXPECT_TRUE(b.TryTake(wait, 1));
}

TEST(TokenBucketTest, LongRunRateHolds) {
  const uint64_t rate = 100'000, burst = 20'000, item = 4096;
  TokenBucket b(rate, burst, 0);
  uint64_t taken = 0;
  for (uint64_t now = 0; now <= 10'000; now++)  // 10 s, greedy taker every ms
    while (b.TryTake(now, item)) taken += item;
  // rate x 10 s + burst, give or take the one item that may overdraw.
  EXPECT_LE(taken, rate * 10 + burst + item);
  EXPECT_GE(taken, rate * 10 + burst - item);
}

TEST(TokenBucketTest, ClockGoingBackwardsDoesNotMint) {
  TokenBucket b(1000, 100, 5000);
  EXPECT_TRUE(b.TryTake(5000, 200));
  EXPECT_FALSE(b.TryTake(4000, 1));
  EXPECT_EQ(b.WaitMs(4000), 100u);
}

TEST(ScrubPacerTest, SpreadsAPassOverThePeriod) {
  ScrubPacer p(1000, 50);
  EXPECT_EQ(p.NextDueMs(50), 50u);  // first pass: at once
  ASSERT_TRUE(p.MaybeStartPass(50, 1000));
  EXPECT_EQ(p.pass_start_ms(), 50u);
  EXPECT_TRUE(p.ReadDue(50));
  p.Done(100);  // 10% done at t=0: ahead of schedule
  EXPECT_FALSE(p.ReadDue(50));
  EXPECT_EQ(p.NextDueMs(50), 150u);  // 10% of the period
  EXPECT_FALSE(p.ReadDue(149));
  EXPECT_TRUE(p.ReadDue(150));
  p.Done(900);
  EXPECT_EQ(p.NextDueMs(150), 1050u);  // done == total: due when the period ends
  EXPECT_FALSE(p.EndPass(900));        // finished within its period
  EXPECT_EQ(p.passes_total(), 1u);
  EXPECT_FALSE(p.in_pass());
  EXPECT_FALSE(p.MaybeStartPass(1049, 1000));
  EXPECT_EQ(p.NextDueMs(900), 1050u);
  ASSERT_TRUE(p.MaybeStartPass(1060, 2000));  // next pass, the store grew
  EXPECT_EQ(p.pass_start_ms(), 1060u);
  EXPECT_EQ(p.done_bytes(), 0u);
}

TEST(ScrubPacerTest, LatePassRunsFlatOutAndIsReported) {
  ScrubPacer p(1000, 0);
  ASSERT_TRUE(p.MaybeStartPass(0, 100));
  p.Done(100);
  p.Done(5000);  // the store grew during the pass
  EXPECT_FALSE(p.ReadDue(999));
  EXPECT_TRUE(p.ReadDue(1000));  // past its period: no more pacing
  EXPECT_TRUE(p.EndPass(1500));  // late
  EXPECT_TRUE(p.MaybeStartPass(1500, 0));
  EXPECT_TRUE(p.ReadDue(1500));  // empty store: due, ends at once
}

TEST(ScrubPacerTest, HugeStoreDoesNotOverflow) {
  ScrubPacer p(uint64_t(30) * 24 * 3600 * 1000, 0);
  ASSERT_TRUE(p.MaybeStartPass(0, uint64_t(1) << 50));
  p.Done(uint64_t(1) << 49);
  EXPECT_EQ(p.NextDueMs(0), uint64_t(15) * 24 * 3600 * 1000);
}

TEST(ScrubPacerTest, ExactBeyondSixtyFourBitProducts) {
  // done * period = 3e24 and total * elapsed both overflow 64 bits.
  const uint64_t total = 3'000'000'000'000'000, done = 1'000'000'000'000'000;
  const uint64_t period = 3'000'000'000;
  ScrubPacer p(period, 0);
  ASSERT_TRUE(p.MaybeStartPass(0, total));
  p.Done(done);
  EXPECT_EQ(p.NextDueMs(0), 1'000'000'000u);
  EXPECT_FALSE(p.ReadDue(999'999'999));
  EXPECT_TRUE(p.ReadDue(1'000'000'000));
  p.Done(1);  // one byte more: due one millisecond later
  EXPECT_EQ(p.NextDueMs(0), 1'000'000'001u);
}

}  // namespace
}  // namespace mistore
