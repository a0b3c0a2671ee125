// PopCore forwarding the cluster map to its gateways (pop-server/
// pop_map_push.cc, issue 7): the region's part of the map, pushed to every
// connected gateway when the epoch grows, one push in flight per gateway,
// the newest epoch following an answered push. Fake clock, outbox only.
#include <gtest/gtest.h>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"

namespace mistore {
namespace {

pb::ClusterMap Map(uint64_t epoch, bool pop3_up) {
  pb::ClusterMap m;
  m.set_epoch(epoch);
  auto add = [&m](uint32_t id, const char* region, bool up) {
    auto* p = m.add_pops();
    p->set_pop_id(id);
    p->set_region(region);
    p->set_addr("127.0.0." + std::to_string(id) + ":7100");
    p->set_up(up);
  };
  add(1, "eu", true);
  add(2, "us", true);
  add(3, "eu", pop3_up);
  m.add_revoked_node_ids(99);
  return m;
}

class PopMapPushTest : public ::testing::Test {
 protected:
  void Start(bool push) {
    PopParams p;
    p.pop_id = 1;
    p.region = "eu";
    p.push_map_to_gateways = push;
    core_ = std::make_unique<PopCore>(p, &store_, 7);
    core_->OnClusterMap(now_, Map(3, true));
    for (uint32_t g : {11u, 12u}) core_->OnGatewayUp(now_, GatewayState{g, "alice", 1 << 30, true});
    Drain();
  }
  void Drain() {
    Outbox out = core_->TakeOutbox();
    for (auto& c : out.calls)
      if (c.msg.has_cluster_map()) pushes_.push_back(std::move(c));
  }
  void Answer(const OutCall& c, Result<pb::Envelope> r) {
    core_->OnCallDone(now_, c.token, std::move(r));
    Drain();
  }
  static pb::Envelope Empty() {
    pb::Envelope e;
    e.mutable_empty();
    return e;
  }

  uint64_t now_ = 1000;
  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  std::vector<OutCall> pushes_;
};

TEST_F(PopMapPushTest, TheRegionsPartOfTheMap) {
  Start(true);
  pb::ClusterMap m = core_->MapForGateways();
  EXPECT_EQ(m.epoch(), 3u);
  ASSERT_EQ(m.pops_size(), 2);
  EXPECT_EQ(m.pops(0).pop_id(), 1u);
  EXPECT_EQ(m.pops(1).pop_id(), 3u);
  EXPECT_EQ(m.pops(1).addr(), "127.0.0.3:7100");
  ASSERT_EQ(m.revoked_node_ids_size(), 1);
  EXPECT_EQ(m.revoked_node_ids(0), 99u);
}

TEST_F(PopMapPushTest, PushedToConnectedGatewaysWhenTheEpochGrows) {
  Start(true);
  EXPECT_TRUE(pushes_.empty()) << "registration's HelloReply carried epoch 3";
  core_->OnClusterMap(now_, Map(3, true));  // a refresh: same epoch
  Drain();
  EXPECT_TRUE(pushes_.empty());
  core_->OnGatewayDown(now_, 12);
  core_->OnClusterMap(now_, Map(4, false));  // POP 3 went down
  Drain();
  ASSERT_EQ(pushes_.size(), 1u) << "only the connected gateway";
  EXPECT_EQ(pushes_[0].to.kind, Dest::kGateway);
  EXPECT_EQ(pushes_[0].to.id, 11u);
  const pb::ClusterMap& m = pushes_[0].msg.cluster_map();
  EXPECT_EQ(m.epoch(), 4u);
  ASSERT_EQ(m.pops_size(), 2);
  EXPECT_FALSE(m.pops(1).up());
  EXPECT_EQ(core_->maps_pushed_total(), 1u);
  // One in flight per gateway: epoch 5 waits for the answer, then follows.
  core_->OnClusterMap(now_, Map(5, true));
  Drain();
  ASSERT_EQ(pushes_.size(), 1u);
  OutCall first = pushes_[0];
  pushes_.clear();
  Answer(first, Empty());
  ASSERT_EQ(pushes_.size(), 1u);
  EXPECT_EQ(pushes_[0].msg.cluster_map().epoch(), 5u);
  OutCall second = pushes_[0];
  pushes_.clear();
  Answer(second, Empty());
  EXPECT_TRUE(pushes_.empty()) << "the gateway has the newest map";
  // A failed push is not retried: the gateway gets the map on registering.
  core_->OnClusterMap(now_, Map(6, true));
  Drain();
  ASSERT_EQ(pushes_.size(), 1u);
  OutCall third = pushes_[0];
  pushes_.clear();
  Answer(third, Unavailable("gateway gone"));
  EXPECT_TRUE(pushes_.empty());
  // Gateway 12 comes back: its HelloReply has epoch 6; nothing pushed.
  core_->OnGatewayUp(now_, GatewayState{12, "alice", 1 << 30, true});
  Drain();
  EXPECT_TRUE(pushes_.empty());
  EXPECT_EQ(core_->maps_pushed_total(), 3u);
}

TEST_F(PopMapPushTest, OffUnlessTurnedOn) {  // the simulator's gateways serve no maps
  Start(false);
  core_->OnClusterMap(now_, Map(4, false));
  Drain();
  EXPECT_TRUE(pushes_.empty());
}

}  // namespace
}  // namespace mistore
