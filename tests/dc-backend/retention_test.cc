// VersionsToKeep (dc-backend/retention.h): the pure retention function.
#include "dc-backend/retention.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace mistore {
namespace {

constexpr int64_t kNow = 1000 * kDayMs;  // any fixed "now"
constexpr int64_t kHourMs = 3600 * 1000;

RetentionPolicy Policy(uint64_t last, uint64_t days, uint64_t weeks, uint64_t bytes = 0) {
  RetentionPolicy p;
  p.keep_last = last;
  p.daily_days = days;
  p.weekly_weeks = weeks;
  p.history_bytes_max = bytes;
  return p;
}

// One version every `step_ms`, the newest at now - step_ms/2 (version n is
// the newest).
std::vector<VersionMeta> Every(int64_t step_ms, uint64_t n, uint64_t size = 10) {
  std::vector<VersionMeta> v;
  for (uint64_t i = 1; i <= n; i++)
    v.push_back({i, kNow - step_ms / 2 - int64_t(n - i) * step_ms, size});
  return v;
}

TEST(RetentionTest, EmptyInEmptyOut) {
  EXPECT_TRUE(VersionsToKeep({}, Policy(3, 7, 4), kNow).empty());
}

TEST(RetentionTest, KeepLastOnly) {
  auto keep = VersionsToKeep(Every(kHourMs, 10), Policy(3, 0, 0), kNow);
  EXPECT_EQ(keep, (std::vector<uint64_t>{8, 9, 10}));
}

TEST(RetentionTest, InputOrderDoesNotMatter) {
  auto v = Every(kHourMs, 10);
  std::mt19937 rng(42);
  std::shuffle(v.begin(), v.end(), rng);
  EXPECT_EQ(VersionsToKeep(v, Policy(3, 0, 0), kNow), (std::vector<uint64_t>{8, 9, 10}));
}

TEST(RetentionTest, FewerVersionsThanKeepLastKeepsAll) {
  EXPECT_EQ(VersionsToKeep(Every(kHourMs, 2), Policy(5, 0, 0), kNow),
            (std::vector<uint64_t>{1, 2}));
}

TEST(RetentionTest, OneADayForDDays) {
  // Four versions a day (every 6 h) for 10 days: 40 versions, newest is 40.
  auto v = Every(6 * kHourMs, 40);
  auto keep = VersionsToKeep(v, Policy(1, 3, 0), kNow);
  // Day 0 (newest 40), day 1 (newest 36), day 2 (newest 32).
  EXPECT_EQ(keep, (std::vector<uint64_t>{32, 36, 40}));
}

TEST(RetentionTest, OneAWeekForWWeeks) {
  // One version a day for 30 days; weekly buckets of 7 days back from now.
  auto v = Every(kDayMs, 30);
  auto keep = VersionsToKeep(v, Policy(1, 0, 3), kNow);
  // Version 30 at now-0.5d (week 0), 23 at now-7.5d (week 1), 16 (week 2).
  EXPECT_EQ(keep, (std::vector<uint64_t>{16, 23, 30}));
}

TEST(RetentionTest, DailyAndWeeklyAndLastCombine) {
  auto v = Every(kDayMs, 30);
  auto keep = VersionsToKeep(v, Policy(2, 3, 2), kNow);
  // last 2: 29, 30; days 0..2: 30, 29, 28; weeks 0..1: 30, 23.
  EXPECT_EQ(keep, (std::vector<uint64_t>{23, 28, 29, 30}));
}

TEST(RetentionTest, DaysWithoutVersionsKeepNothingExtra) {
  // Versions only 10 and 11 days ago; 3 daily buckets find nothing.
  std::vector<VersionMeta> v = {{1, kNow - 11 * kDayMs, 5}, {2, kNow - 10 * kDayMs, 5}};
  EXPECT_EQ(VersionsToKeep(v, Policy(1, 3, 0), kNow), (std::vector<uint64_t>{2}));
}

TEST(RetentionTest, ByteBoundDropsOldestHistoryFirstButNeverTheNewest) {
  std::vector<VersionMeta> v = {
      {1, kNow - 5 * kHourMs, 100}, {2, kNow - 4 * kHourMs, 100}, {3, kNow - 3 * kHourMs, 100},
      {4, kNow - 2 * kHourMs, 100}, {5, kNow - kHourMs, 1000}};
  // History = every kept version but the newest: 1..4 = 400 bytes.
  EXPECT_EQ(VersionsToKeep(v, Policy(5, 0, 0, 400), kNow), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(VersionsToKeep(v, Policy(5, 0, 0, 399), kNow), (std::vector<uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(VersionsToKeep(v, Policy(5, 0, 0, 250), kNow), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(VersionsToKeep(v, Policy(5, 0, 0, 150), kNow), (std::vector<uint64_t>{4, 5}));
  // The newest alone exceeds the bound: still kept.
  EXPECT_EQ(VersionsToKeep(v, Policy(5, 0, 0, 1), kNow), (std::vector<uint64_t>{5}));
}

TEST(RetentionTest, ByteBoundAppliesToDailyKeepsToo) {
  auto v = Every(kDayMs, 10, 100);
  // Daily keeps 8, 9, 10 (10 is newest); history 8+9 = 200 > 150: drop 8.
  EXPECT_EQ(VersionsToKeep(v, Policy(1, 3, 0, 150), kNow), (std::vector<uint64_t>{9, 10}));
}

TEST(RetentionTest, FutureVersionsFallInNoBucketButCountForKeepLast) {
  std::vector<VersionMeta> v = {{1, kNow - kHourMs, 1}, {2, kNow + kDayMs, 1}};
  EXPECT_EQ(VersionsToKeep(v, Policy(1, 1, 0), kNow), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(VersionsToKeep(v, Policy(1, 0, 0), kNow), (std::vector<uint64_t>{2}));
}

// Properties over random histories: the newest always kept, the output is a
// subset of the input, keep_last honoured unless the byte bound cut it, and
// the byte bound holds whenever it is set.
TEST(RetentionTest, RandomHistoriesKeepTheInvariants) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 500; round++) {
    std::vector<VersionMeta> v;
    uint64_t n = rng() % 60;
    int64_t t = kNow - int64_t(rng() % (60 * kDayMs));
    for (uint64_t i = 1; i <= n; i++) {
      t += int64_t(rng() % (2 * kDayMs));
      v.push_back({i * 3, std::min(t, kNow), 1 + rng() % 1000});
    }
    RetentionPolicy p = Policy(1 + rng() % 5, rng() % 10, rng() % 6, rng() % 2 ? 0 : rng() % 5000);
    auto keep = VersionsToKeep(v, p, kNow);
    std::set<uint64_t> all, kept(keep.begin(), keep.end());
    for (auto& x : v) all.insert(x.version);
    ASSERT_EQ(kept.size(), keep.size());
    for (auto k : keep) ASSERT_TRUE(all.count(k));
    if (n == 0) {
      ASSERT_TRUE(keep.empty());
      continue;
    }
    ASSERT_TRUE(kept.count(n * 3)) << "newest dropped in round " << round;
    uint64_t history = 0;
    for (auto& x : v)
      if (kept.count(x.version) && x.version != n * 3) history += x.size_bytes;
    if (p.history_bytes_max > 0) {
      ASSERT_LE(history, p.history_bytes_max) << round;
    } else {
      for (uint64_t i = 0; i < std::min<uint64_t>(p.keep_last, n); i++)
        ASSERT_TRUE(kept.count((n - i) * 3)) << round;
    }
  }
}

TEST(RetentionTest, ParsePolicy) {
  RetentionPolicy p;
  ASSERT_TRUE(ParseRetentionPolicy({"keep_last=3", "--daily-days=2"}, &p).ok());
  EXPECT_EQ(p.keep_last, 3u);
  EXPECT_EQ(p.daily_days, 2u);
  EXPECT_EQ(p.weekly_weeks, RetentionPolicy().weekly_weeks);
  EXPECT_FALSE(ParseRetentionPolicy({"keep_last=0"}, &p).ok());
  EXPECT_FALSE(ParseRetentionPolicy({"keep_last=-1"}, &p).ok());
  EXPECT_FALSE(ParseRetentionPolicy({"colour=3"}, &p).ok());
  EXPECT_FALSE(ParseRetentionPolicy({"keep_last"}, &p).ok());
  EXPECT_EQ(p.keep_last, 3u);
  EXPECT_EQ(RetentionPolicyJson("a\"b", p),
            "{\"volume\":\"a\\\"b\",\"keep_last\":3,\"daily_days\":2,\"weekly_weeks\":4,"
            "\"history_bytes_max\":0}");
}

}  // namespace
}  // namespace mistore
