// PopEventBuffer (pop-server/pop_report.h): bounded (drop-oldest, counted),
// batches of at most batch_max with ages, a failed batch is re-sent and an
// acknowledged one leaves; and PopCore's role-change events from new maps.
#include "pop-server/pop_report.h"

#include <gtest/gtest.h>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"

namespace mistore {
namespace {

TEST(PopEventBuffer, BatchesAreBoundedAndResentUntilAcked) {
  PopEventBuffer b(100, 3);
  pb::PopEventReport r;
  EXPECT_FALSE(b.NextBatch(0, &r)) << "nothing to send";
  for (uint32_t i = 1; i <= 5; i++)
    b.Add(1000 * i, pb::POP_EVENT_GATEWAY_LOST, 1000 + i, 0, i, 0, "lost");
  ASSERT_TRUE(b.NextBatch(6000, &r));
  ASSERT_EQ(r.events_size(), 3);
  EXPECT_EQ(r.events(0).seq(), 1u);
  EXPECT_EQ(r.events(0).age_ms(), 5000u);
  EXPECT_EQ(r.events(0).gateway_id(), 1001u);
  EXPECT_EQ(r.events(2).age_ms(), 3000u);
  pb::PopEventReport again;
  EXPECT_FALSE(b.NextBatch(6000, &again)) << "one batch in flight";
  b.Failed();  // DC unreachable: the same events go again, older now
  ASSERT_TRUE(b.NextBatch(9000, &again));
  ASSERT_EQ(again.events_size(), 3);
  EXPECT_EQ(again.events(0).seq(), 1u);
  EXPECT_EQ(again.events(0).age_ms(), 8000u);
  b.Acked();
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.acked_total(), 3u);
  ASSERT_TRUE(b.NextBatch(9000, &r));
  ASSERT_EQ(r.events_size(), 2);
  EXPECT_EQ(r.events(0).seq(), 4u);
  b.Acked();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_FALSE(b.NextBatch(9000, &r));
}

TEST(PopEventBuffer, FullBufferDropsTheOldestAndCountsThem) {
  PopEventBuffer b(4, 2);
  for (uint32_t i = 1; i <= 10; i++) b.Add(i, pb::POP_EVENT_FRAGMENTS_BAD, i, 0, 1, 0, "");
  EXPECT_EQ(b.size(), 4u);
  EXPECT_EQ(b.dropped_total(), 6u);
  EXPECT_EQ(b.added_total(), 10u);
  pb::PopEventReport r;
  ASSERT_TRUE(b.NextBatch(10, &r));
  EXPECT_EQ(r.events(0).seq(), 7u);  // the newest four remain
  EXPECT_EQ(r.dropped_total(), 6u);
  // Events keep coming while the batch is in flight and overflow it: the
  // acknowledgement removes only what is still there of the batch.
  for (uint32_t i = 11; i <= 14; i++) b.Add(i, pb::POP_EVENT_FRAGMENTS_BAD, i, 0, 1, 0, "");
  EXPECT_EQ(b.size(), 4u);
  b.Acked();
  EXPECT_EQ(b.size(), 4u);  // seqs 11-14: the batch (7, 8) was already dropped
  ASSERT_TRUE(b.NextBatch(20, &r));
  EXPECT_EQ(r.events(0).seq(), 11u);
  // Details are bounded.
  PopEventBuffer d(2, 2);
  d.Add(0, pb::POP_EVENT_ROLE_CHANGE, 0, 2, 0, 0, std::string(10000, 'x'));
  ASSERT_TRUE(d.NextBatch(0, &r));
  EXPECT_EQ(r.events(0).detail().size(), kPopEventDetailBytesMax);
}

pb::ClusterMap Map(uint64_t epoch, bool pop2_up) {
  pb::ClusterMap m;
  m.set_epoch(epoch);
  for (uint32_t id : {1u, 2u}) {
    auto* p = m.add_pops();
    p->set_pop_id(id);
    p->set_region("r" + std::to_string(id));
    p->set_addr("127.0.0.1:" + std::to_string(7100 + id));
    p->set_up(id == 1 || pop2_up);
  }
  return m;
}

TEST(PopCoreEvents, RoleChangesFromNewMapsBecomeEvents) {
  MemPopStore store;
  PopParams p;
  p.pop_id = 1;
  p.region = "r1";
  PopCore core(p, &store, 7);
  core.OnClusterMap(1, Map(5, true));
  EXPECT_EQ(core.events().size(), 0u) << "the first map is no change";
  core.OnClusterMap(2, Map(6, false));
  core.OnClusterMap(3, Map(7, true));
  core.OnClusterMap(4, Map(7, true));  // same map again: nothing
  pb::PopEventReport r;
  ASSERT_TRUE(core.events().NextBatch(10, &r));
  ASSERT_EQ(r.events_size(), 2);
  EXPECT_EQ(r.events(0).kind(), pb::POP_EVENT_ROLE_CHANGE);
  EXPECT_EQ(r.events(0).pop_id(), 2u);
  EXPECT_EQ(r.events(0).count(), 6u);  // the epoch
  EXPECT_NE(r.events(0).detail().find("this POP acts as primary"), std::string::npos);
  EXPECT_NE(r.events(1).detail().find("is back"), std::string::npos);
  EXPECT_STREQ(PopEventKindName(r.events(0).kind()), "role_change");
}

TEST(PopCoreEvents, ALostGatewayIsReportedWithItsRepair) {
  MemPopStore store;
  PopParams p;
  p.pop_id = 1;
  p.region = "r1";
  p.k = 2;
  p.m = 1;
  p.gateway_grace_ms = 10000;
  p.gateway_suspect_ms = 1000;
  PopCore core(p, &store, 11);
  core.OnClusterMap(0, Map(1, true));
  for (uint32_t gw = 1001; gw <= 1004; gw++) core.OnGatewayUp(0, GatewayState{gw, "s", 1 << 30, true});
  core.OnGatewayDown(100, 1003);
  core.OnTick(200);
  core.OnTick(10300);  // past the grace period
  core.OnTick(10800);
  std::vector<std::string> kinds;
  pb::PopEventReport r;
  while (core.events().NextBatch(11000, &r)) {
    for (auto& e : r.events())
      if (e.gateway_id() == 1003) kinds.push_back(PopEventKindName(e.kind()));
    core.events().Acked();
  }
  // It held no fragments: lost, and nothing to repair.
  EXPECT_EQ(kinds, (std::vector<std::string>{"gateway_suspected", "gateway_lost"}));
  pb::MonitorPopSummary s;
  core.FillRepairSummary(&s);
  EXPECT_EQ(s.gateways_lost(), 1u);
  EXPECT_EQ(s.repair_queue_chunks(), 0u);
}

}  // namespace
}  // namespace mistore
