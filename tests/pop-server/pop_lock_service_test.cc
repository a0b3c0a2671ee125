// PopCore's lock service as a primary, driven by hand: a lock request left
// waiting by a connection that closed must not be granted to nobody (that
// grant would block the object for a whole lease — the cause of the 5 s
// contended p99 in mistore-lockbench).
#include <gtest/gtest.h>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/core/oid.h"

namespace mistore {
namespace {

constexpr uint64_t kEpoch = 7;

class PopLockService : public ::testing::Test {
 protected:
  void SetUp() override {
    PopParams p;
    p.pop_id = 1;
    p.region = "r1";
    p.lease_ms = 5000;
    core_ = std::make_unique<PopCore>(p, &store_, 42);
    pb::ClusterMap map;
    map.set_epoch(kEpoch);
    for (uint32_t id : {1u, 2u}) {
      auto* pi = map.add_pops();
      pi->set_pop_id(id);
      pi->set_region("r" + std::to_string(id));
      pi->set_up(true);
    }
    core_->OnClusterMap(now_, map);
    (void)core_->TakeOutbox();
    Oid o{1, 2, 7, 1};
    for (uint8_t b : o.Encode()) oid_.push_back(char(b));
  }

  // Sends AcquireLock from POP 2 on connection `conn`; answers the catch-up
  // FetchVersion the first use of the object triggers ("nothing there").
  void Acquire(uint64_t conn, uint64_t request_id) {
    pb::Envelope e;
    e.set_request_id(request_id);
    e.mutable_acquire_lock()->set_oid(oid_);
    e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
    e.mutable_acquire_lock()->set_lease_ms(5000);
    e.set_map_epoch(kEpoch);
    core_->OnRequest(now_, Peer{conn, pb::ROLE_POP, 2, ""}, e);
    Pump();
  }

  void Release(uint64_t conn, uint64_t request_id, uint64_t lock_id) {
    pb::Envelope e;
    e.set_request_id(request_id);
    e.mutable_release_lock()->set_oid(oid_);
    e.mutable_release_lock()->set_lock_id(lock_id);
    core_->OnRequest(now_, Peer{conn, pb::ROLE_POP, 2, ""}, e);
    Pump();
  }

  void Pump() {
    for (;;) {
      Outbox out = core_->TakeOutbox();
      if (out.empty()) return;
      for (auto& r : out.replies) replies_.push_back(r);
      for (auto& c : out.calls) {
        if (c.msg.has_fetch_locks() || c.msg.has_lock_sync()) {  // the backup holds nothing
          pb::Envelope r;
          r.mutable_lock_sync();
          core_->OnCallDone(now_, c.token, r);
          continue;
        }
        ASSERT_TRUE(c.msg.has_fetch_version()) << "unexpected call " << c.msg.body_case();
        core_->OnCallDone(now_, c.token, NotFound("no such object"));
      }
    }
  }

  // The grant sent on `conn`, or 0.
  uint64_t GrantOn(uint64_t conn) {
    for (auto& r : replies_)
      if (r.conn_id == conn && r.msg.has_lock_grant()) return r.msg.lock_grant().lock_id();
    return 0;
  }

  uint64_t now_ = 1000;
  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  std::string oid_;
  std::vector<OutReply> replies_;
};

TEST_F(PopLockService, WaiterOfAClosedConnectionIsDropped) {
  Acquire(/*conn=*/10, 1);
  uint64_t held = GrantOn(10);
  ASSERT_NE(held, 0u);
  Acquire(/*conn=*/11, 2);  // waits behind conn 10
  EXPECT_EQ(GrantOn(11), 0u);
  core_->OnConnectionClosed(now_, 11);
  Pump();
  Acquire(/*conn=*/12, 3);  // waits behind conn 10
  Release(10, 4, held);
  EXPECT_EQ(GrantOn(11), 0u) << "granted to a closed connection";
  EXPECT_NE(GrantOn(12), 0u) << "the live waiter was not granted on release";
}

TEST_F(PopLockService, RequestCatchingUpWhenItsConnectionClosesIsNotGranted) {
  pb::Envelope e;
  e.set_request_id(1);
  e.mutable_acquire_lock()->set_oid(oid_);
  e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
  e.mutable_acquire_lock()->set_lease_ms(5000);
  e.set_map_epoch(kEpoch);
  core_->OnRequest(now_, Peer{20, pb::ROLE_POP, 2, ""}, e);
  Outbox out = core_->TakeOutbox();
  ASSERT_EQ(out.calls.size(), 1u);  // the catch-up fetch from the backup
  core_->OnConnectionClosed(now_, 20);
  core_->OnCallDone(now_, out.calls[0].token, NotFound("no such object"));
  Pump();
  EXPECT_EQ(GrantOn(20), 0u);
  Acquire(/*conn=*/21, 2);
  EXPECT_NE(GrantOn(21), 0u) << "the object stayed locked by a requester that left";
}

}  // namespace
}  // namespace mistore

namespace mistore {
namespace {

// Role-dependent requests are served only within one cluster-map epoch: a
// sender behind is refused; a receiver behind refuses and fetches the map.
TEST_F(PopLockService, LockRequestFromAnotherEpochIsRefused) {
  for (uint64_t epoch : {kEpoch - 1, uint64_t(0)}) {
    pb::Envelope e;
    e.set_request_id(50 + epoch);
    e.mutable_acquire_lock()->set_oid(oid_);
    e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
    e.mutable_acquire_lock()->set_lease_ms(5000);
    e.set_map_epoch(epoch);
    core_->OnRequest(now_, Peer{30, pb::ROLE_POP, 2, ""}, e);
    Outbox out = core_->TakeOutbox();
    ASSERT_EQ(out.replies.size(), 1u);
    EXPECT_TRUE(out.replies[0].msg.has_error()) << "epoch " << epoch << " was served";
    EXPECT_TRUE(out.calls.empty()) << "a sender behind must not make us fetch the map";
  }
  pb::Envelope e;
  e.set_request_id(60);
  e.mutable_acquire_lock()->set_oid(oid_);
  e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
  e.mutable_acquire_lock()->set_lease_ms(5000);
  e.set_map_epoch(kEpoch + 1);
  core_->OnRequest(now_, Peer{31, pb::ROLE_POP, 2, ""}, e);
  Outbox out = core_->TakeOutbox();
  ASSERT_EQ(out.replies.size(), 1u);
  EXPECT_TRUE(out.replies[0].msg.has_error());
  ASSERT_EQ(out.calls.size(), 1u);
  EXPECT_TRUE(out.calls[0].msg.has_get_cluster_map());
  EXPECT_EQ(out.calls[0].to.kind, Dest::kDc);
  EXPECT_EQ(core_->epoch_refusals_total(), 3u);
  // Gateways' and clients' requests carry no epoch and are not refused.
  pb::Envelope fetch;
  fetch.set_request_id(61);
  fetch.mutable_fetch_version()->set_oid(oid_);
  core_->OnRequest(now_, Peer{32, pb::ROLE_POP, 2, ""}, fetch);
  EXPECT_EQ(core_->epoch_refusals_total(), 3u) << "a read was refused for its epoch";
}

}  // namespace
}  // namespace mistore
