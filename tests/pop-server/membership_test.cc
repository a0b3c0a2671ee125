// GatewayTable: the POP's failure detector for its gateways, on a fake clock.
#include "pop-server/membership.h"

#include <gtest/gtest.h>

namespace mistore {
namespace {

using E = MembershipEvent;

MembershipParams Params() {
  MembershipParams p;
  p.suspect_after_ms = 10000;
  p.suspect_after_max_ms = 40000;
  p.grace_ms = 60000;
  return p;
}

pb::GatewayHeartbeat Hb(uint64_t free = 1000) {
  pb::GatewayHeartbeat hb;
  hb.set_store_bytes_free(free);
  hb.set_store_bytes_max(5000);
  hb.set_fragment_count(7);
  return hb;
}

TEST(Membership, DisconnectIsSuspectedThenLostOnlyAfterGrace) {
  GatewayTable t(Params());
  EXPECT_TRUE(t.OnConnect(0, 1, "s", 100).empty());
  EXPECT_TRUE(t.IsLive(1));
  EXPECT_EQ(t.OnDisconnect(1000, 1), (std::vector<E>{{E::kSuspected, 1}}));
  EXPECT_FALSE(t.IsLive(1));
  EXPECT_FALSE(t.IsLost(1));
  EXPECT_TRUE(t.Tick(60999).empty());  // heard at 1000 (connect at 0)... grace counts from last heard
  EXPECT_EQ(t.Find(1)->state, GwState::kSuspected);
  EXPECT_EQ(t.Tick(61000), (std::vector<E>{{E::kLost, 1}}));
  EXPECT_TRUE(t.IsLost(1));
  EXPECT_TRUE(t.Tick(70000).empty());  // reported once
  EXPECT_EQ(t.OnConnect(80000, 1, "s", 100), (std::vector<E>{{E::kReturned, 1}}));
  EXPECT_TRUE(t.IsLive(1));
  EXPECT_FALSE(t.IsLost(1));
}

TEST(Membership, RebootWithinGraceIsNotLostAndNotAFalseSuspicion) {
  GatewayTable t(Params());
  (void)t.OnConnect(0, 1, "s", 100);
  (void)t.OnHeartbeat(100, 1, "s", Hb());
  (void)t.OnDisconnect(5000, 1);
  EXPECT_TRUE(t.Tick(30000).empty());
  EXPECT_EQ(t.OnConnect(40000, 1, "s", 100), (std::vector<E>{{E::kRecovered, 1}}));
  EXPECT_TRUE(t.Tick(200000).empty());  // connected, no heartbeat yet: not judged by silence
  EXPECT_EQ(t.Find(1)->false_suspicions, 0u);
  EXPECT_EQ(t.Find(1)->timeout_ms, 10000u);
}

TEST(Membership, MissedHeartbeatTimeoutGrowsAfterFalseSuspicions) {
  GatewayTable t(Params());
  (void)t.OnConnect(0, 1, "s", 100);
  (void)t.OnHeartbeat(0, 1, "s", Hb());
  EXPECT_TRUE(t.Tick(10000).empty());
  EXPECT_EQ(t.Tick(10001), (std::vector<E>{{E::kSuspected, 1}}));
  EXPECT_FALSE(t.IsLive(1));
  // The heartbeat was only late: a false suspicion, so the timeout doubles.
  EXPECT_EQ(t.OnHeartbeat(12000, 1, "s", Hb()), (std::vector<E>{{E::kRecovered, 1}}));
  EXPECT_EQ(t.Find(1)->false_suspicions, 1u);
  EXPECT_EQ(t.Find(1)->timeout_ms, 20000u);
  EXPECT_TRUE(t.Tick(32000).empty());
  EXPECT_EQ(t.Tick(32001), (std::vector<E>{{E::kSuspected, 1}}));
  (void)t.OnHeartbeat(33000, 1, "s", Hb());
  EXPECT_EQ(t.Find(1)->timeout_ms, 40000u);
  (void)t.Tick(73001);
  (void)t.OnHeartbeat(74000, 1, "s", Hb());
  EXPECT_EQ(t.Find(1)->timeout_ms, 40000u);  // capped
  EXPECT_EQ(t.Find(1)->false_suspicions, 3u);
  // Silent for the whole grace period: lost, even though still connected.
  EXPECT_EQ(t.Tick(74000 + 40001), (std::vector<E>{{E::kSuspected, 1}}));
  EXPECT_EQ(t.Tick(74000 + 60000), (std::vector<E>{{E::kLost, 1}}));
}

TEST(Membership, ExpectedGatewaysAreLostIfTheyNeverComeBack) {
  GatewayTable t(Params());
  t.Expect(1000, 1);  // known from records after a POP restart
  t.Expect(1000, 2);
  EXPECT_EQ(t.Find(1)->state, GwState::kSuspected);
  EXPECT_FALSE(t.IsLive(1));
  EXPECT_EQ(t.OnConnect(5000, 2, "s", 10), (std::vector<E>{{E::kRecovered, 2}}));
  t.Expect(6000, 2);  // already known: unchanged
  EXPECT_TRUE(t.IsLive(2));
  EXPECT_TRUE(t.Tick(60999).empty());
  EXPECT_EQ(t.Tick(61000), (std::vector<E>{{E::kLost, 1}}));
}

TEST(Membership, HeartbeatRecordsCapacityAndBoundedDomains) {
  MembershipParams p = Params();
  p.failure_domains_max = 2;
  GatewayTable t(p);
  pb::GatewayHeartbeat hb = Hb(4321);
  hb.add_failure_domains("cabinet=c1");
  hb.add_failure_domains("power=p1");
  hb.add_failure_domains("street=x");
  (void)t.OnHeartbeat(5, 9, "s", hb);
  const GatewayRecord* g = t.Find(9);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->store_bytes_free, 4321u);
  EXPECT_EQ(g->fragment_count, 7u);
  EXPECT_EQ(g->failure_domains, (std::vector<std::string>{"cabinet=c1", "power=p1"}));
  EXPECT_TRUE(t.IsLive(9));
}

TEST(Membership, AvailabilityFollowsObservedDowntime) {
  GatewayTable t(Params());
  (void)t.OnConnect(0, 1, "s", 100);
  (void)t.OnConnect(0, 2, "s", 100);
  const uint64_t hour = 3600000;
  for (uint64_t h = 0; h < 10; h++) {  // gateway 2 is off half of every hour
    (void)t.OnDisconnect(h * hour, 2);
    (void)t.Tick(h * hour + hour / 4);
    (void)t.OnConnect(h * hour + hour / 2, 2, "s", 100);
    (void)t.Tick(h * hour + hour * 3 / 4);
  }
  (void)t.Tick(10 * hour);
  EXPECT_NEAR(t.Find(1)->availability(), 1.0, 1e-9);
  EXPECT_NEAR(t.Find(2)->availability(), (5.0 + 1) / (10.0 + 1), 0.01);
  EXPECT_EQ(t.Count(GwState::kAlive), 2u);
}

TEST(Membership, TableIsBoundedByForgettingTheLongestLost) {
  MembershipParams p = Params();
  p.gateways_max = 3;
  GatewayTable t(p);
  for (uint32_t id = 1; id <= 3; id++) (void)t.OnConnect(0, id, "s", 1);
  (void)t.OnDisconnect(0, 2);
  (void)t.Tick(100000);
  ASSERT_TRUE(t.IsLost(2));
  (void)t.OnConnect(100001, 4, "s", 1);
  EXPECT_EQ(t.all().size(), 3u);
  EXPECT_EQ(t.Find(2), nullptr);
  EXPECT_NE(t.Find(4), nullptr);
  // Nobody lost: the table stays over its bound rather than forget a live one.
  (void)t.OnConnect(100002, 5, "s", 1);
  EXPECT_EQ(t.all().size(), 4u);
}

}  // namespace
}  // namespace mistore
