// ChoosePlacement: distinct gateways, weighted by free space and
// availability, spread over failure domains; deterministic per seed.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pop-server/membership.h"

namespace mistore {
namespace {

constexpr uint64_t kMiB = 1 << 20;

std::vector<PlacementCandidate> Grid(int domains, int per_domain, uint64_t free = 100 * kMiB) {
  std::vector<PlacementCandidate> c;
  for (int d = 0; d < domains; d++)
    for (int i = 0; i < per_domain; i++)
      c.push_back({uint32_t(d * 100 + i + 1), free, 1.0,
                   {"cabinet=" + std::to_string(d), "power=" + std::to_string(d % 1000)}});
  return c;
}

TEST(Placement, PicksDistinctGatewaysInDistinctDomainsWhenEnough) {
  for (uint64_t seed = 1; seed <= 50; seed++) {
    std::mt19937_64 rng(seed);
    auto picks = ChoosePlacement(Grid(12, 3), 12, {}, kMiB, rng);
    ASSERT_EQ(picks.size(), 12u);
    std::set<uint32_t> ids(picks.begin(), picks.end());
    EXPECT_EQ(ids.size(), 12u);
    std::set<uint32_t> domains;
    for (uint32_t id : picks) domains.insert(id / 100);
    EXPECT_EQ(domains.size(), 12u) << "seed " << seed;
  }
}

TEST(Placement, SpreadsEvenlyWhenTooFewDomains) {
  std::mt19937_64 rng(7);
  auto picks = ChoosePlacement(Grid(4, 5), 6, {}, kMiB, rng);
  ASSERT_EQ(picks.size(), 6u);
  std::map<uint32_t, int> per_domain;
  for (uint32_t id : picks) per_domain[id / 100]++;
  EXPECT_EQ(per_domain.size(), 4u);
  for (auto& [d, n] : per_domain) EXPECT_LE(n, 2);
}

TEST(Placement, AvoidsDomainsAlreadyHoldingFragments) {
  std::mt19937_64 rng(3);
  std::set<std::string> taken;
  for (int d = 0; d < 10; d++) taken.insert("cabinet=" + std::to_string(d));
  auto picks = ChoosePlacement(Grid(12, 3), 2, taken, kMiB, rng);
  ASSERT_EQ(picks.size(), 2u);
  std::set<uint32_t> domains;
  for (uint32_t id : picks) domains.insert(id / 100);
  EXPECT_EQ(domains, (std::set<uint32_t>{10, 11}));
}

TEST(Placement, ReturnsWhatThereIsWhenTooFewCandidates) {
  std::mt19937_64 rng(1);
  auto picks = ChoosePlacement(Grid(1, 5), 12, {}, kMiB, rng);
  EXPECT_EQ(std::set<uint32_t>(picks.begin(), picks.end()).size(), 5u);
  EXPECT_EQ(picks.size(), 5u);
  EXPECT_TRUE(ChoosePlacement({}, 3, {}, kMiB, rng).empty());
}

TEST(Placement, WeightedByFreeSpaceAndAvailability) {
  std::vector<PlacementCandidate> c = {
      {1, 900 * kMiB, 1.0, {}},  // weight ~ 901
      {2, 100 * kMiB, 1.0, {}},  // ~ 101
      {3, 900 * kMiB, 0.5, {}},  // ~ 225
  };
  std::mt19937_64 rng(11);
  std::map<uint32_t, int> n;
  const int trials = 20000;
  for (int i = 0; i < trials; i++) n[ChoosePlacement(c, 1, {}, kMiB, rng)[0]]++;
  double total = 901 + 101 + 225.25;
  EXPECT_NEAR(n[1] / double(trials), 901 / total, 0.02);
  EXPECT_NEAR(n[2] / double(trials), 101 / total, 0.02);
  EXPECT_NEAR(n[3] / double(trials), 225.25 / total, 0.02);
}

TEST(Placement, FullGatewaysOnlyAsALastResort) {
  std::vector<PlacementCandidate> c = {
      {1, 10, 1.0, {}}, {2, 5 * kMiB, 1.0, {}}, {3, 0, 1.0, {}}, {4, 5 * kMiB, 1.0, {}}};
  for (uint64_t seed = 1; seed <= 20; seed++) {
    std::mt19937_64 rng(seed);
    auto picks = ChoosePlacement(c, 3, {}, kMiB, rng);
    ASSERT_EQ(picks.size(), 3u);
    std::set<uint32_t> first(picks.begin(), picks.begin() + 2);
    EXPECT_EQ(first, (std::set<uint32_t>{2, 4}));
    EXPECT_TRUE(picks[2] == 1 || picks[2] == 3);
  }
}

TEST(Placement, SameSeedSamePicks) {
  std::mt19937_64 a(42), b(42);
  EXPECT_EQ(ChoosePlacement(Grid(30, 2), 12, {}, kMiB, a), ChoosePlacement(Grid(30, 2), 12, {}, kMiB, b));
}

TEST(Placement, CandidatesAreLiveGatewaysNotExcluded) {
  GatewayTable t(MembershipParams{});
  (void)t.OnConnect(0, 1, "s", 10 * kMiB);
  (void)t.OnConnect(0, 2, "s", 10 * kMiB);
  (void)t.OnConnect(0, 3, "s", 10 * kMiB);
  (void)t.OnDisconnect(5, 2);
  auto c = PlacementCandidates(t, {3});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].id, 1u);
  EXPECT_EQ(c[0].store_bytes_free, 10 * kMiB);
}

}  // namespace
}  // namespace mistore
