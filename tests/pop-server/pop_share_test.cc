// Read-only sharing at the POP (issue 4; pop-server/pop_share.cc,
// share_gate.h). POP 1 is the entry POP of gateways 1001 (subscriber
// alice) and 1002 (bob); alice's object lives on POPs 2 and 3, which this
// fixture plays along with the DC and its share records, on a fake clock.
//  - bob's reads of alice's object (GetVersion by oid, GetChunk) are
//    refused without a share record, allowed with one, and refused again
//    once the record is gone and the cached answer's TTL has passed;
//  - one DC question per (owner, oid, grantee) per TTL, not one per chunk;
//  - locked reads, reads by name, writes, locks, listings naming alice stay
//    refused for bob with a share;
//  - every refusal counts once; the DC unreachable: unavailable, nothing kept.
#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "pop-server/share_gate.h"
#include "shared/core/oid.h"
#include "tests/pop-server/pop_core_test_util.h"

namespace mistore {
namespace {

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }

constexpr uint64_t kTtlMs = 5000;

class ShareWorld : public ::testing::Test {
 protected:
  void SetUp() override {
    PopParams p;
    p.pop_id = 1;
    p.region = "r1";
    p.k = 1;
    p.m = 1;
    p.share_cache_ttl_ms = kTtlMs;
    core_ = std::make_unique<PopCore>(p, &store_, 7);
    core_->OnClusterMap(now_, pop_test::MapOfUpPops(3, {1, 2, 3}, "r1"));
    core_->OnGatewayUp(now_, GatewayState{1001, "alice", 1u << 30, true});
    core_->OnGatewayUp(now_, GatewayState{1002, "bob", 1u << 30, true});
    Drive();
  }

  void Drive() {
    pop_test::DrainOutbox(*core_, now_, &replies_, [&](const OutCall& c) { return Answer(c); });
  }

  Result<pb::Envelope> Answer(const OutCall& c) {
    pb::Envelope r;
    const pb::Envelope& m = c.msg;
    if (c.to.kind == Dest::kDc && m.has_check_share()) {
      dc_checks_++;
      if (!dc_up_) return Unavailable("DC unreachable");
      const auto& q = m.check_share();
      r.mutable_check_share_reply()->set_shared(
          shares_.count({q.owner(), q.oid(), q.grantee()}) > 0);
      return r;
    }
    if (c.to.kind == Dest::kPop && m.has_fetch_version()) {
      if (m.fetch_version().oid() != Str(oid_))
        return NotFound("no such object");
      *r.mutable_version_info() = Info();
      return r;
    }
    if (c.to.kind == Dest::kPop && m.has_fetch_chunk()) {
      if (m.fetch_chunk().subscriber() != "alice" ||
          m.fetch_chunk().oid() != Str(oid_))
        return NotFound("no such chunk");
      r.mutable_chunk_data()->set_data("sealed chunk bytes");
      return r;
    }
    if (c.to.kind == Dest::kDc) {
      r.mutable_empty();
      return r;
    }
    return Unavailable("not played by this fixture");
  }

  pb::VersionInfo Info() const {
    pb::VersionInfo i;
    i.set_oid(Str(oid_));
    i.set_version(1);
    i.set_size_bytes(18);
    i.set_subscriber("alice");
    i.set_manifest_sealed("sealed manifest");
    i.add_chunk_ids(std::string(32, 'c'));
    return i;
  }

  Peer Gw(uint32_t id, const std::string& sub) {
    return Peer{.conn_id = id,
                .role = pb::ROLE_GATEWAY,
                .node_id = id,
                .subscriber = sub};
  }

  // Sends one request; the reply to it.
  pb::Envelope Ask(const Peer& from, pb::Envelope req) {
    req.set_request_id(++next_request_);
    core_->OnRequest(now_, from, req);
    Drive();
    for (auto& r : replies_)
      if (r.request_id == next_request_ && r.conn_id == from.conn_id)
        return r.msg;
    ADD_FAILURE() << "no reply";
    return pb::Envelope();
  }

  pb::Envelope ReadVersion(const std::string& reader, const std::string& owner,
                           pb::ReadMode mode = pb::READ_MONOTONIC) {
    pb::Envelope e;
    auto* g = e.mutable_get_version();
    g->set_subscriber(reader);
    g->set_owner(owner);
    g->set_oid(Str(oid_));
    g->set_mode(mode);
    return Ask(Gw(reader == "alice" ? 1001 : 1002, reader), e);
  }
  pb::Envelope ReadChunk(const std::string& reader, const std::string& owner,
                         uint64_t lock = 0) {
    pb::Envelope e;
    auto* g = e.mutable_get_chunk();
    g->set_subscriber(reader);
    g->set_owner(owner);
    g->set_oid(Str(oid_));
    g->set_chunk_id(std::string(32, 'c'));
    g->set_lock_id(lock);
    return Ask(Gw(reader == "alice" ? 1001 : 1002, reader), e);
  }
  static Code CodeOf(const pb::Envelope& e) {
    return e.has_error() ? Code(e.error().code()) : Code::kOk;
  }

  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  uint64_t now_ = 1000;
  uint64_t next_request_ = 0;
  std::vector<OutReply> replies_;
  Bytes oid_ = Oid{2, 3, 1001, 1}.Encode();
  std::set<std::tuple<std::string, std::string, std::string>> shares_;
  bool dc_up_ = true;
  int dc_checks_ = 0;
};

TEST_F(ShareWorld,
       RefusedWithoutAShareAllowedWithOneRefusedAfterUnshareOnceTheTtlPassed) {
  // No share: refused, with the reason, counted.
  pb::Envelope r = ReadVersion("bob", "alice");
  EXPECT_EQ(CodeOf(r), Code::kPermissionDenied);
  EXPECT_NE(r.error().message().find("is not shared with bob"),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(CodeOf(ReadChunk("bob", "alice")), Code::kPermissionDenied);
  EXPECT_EQ(core_->shares_refused_total(), 2u);
  EXPECT_EQ(dc_checks_, 1);  // the "no" is remembered too

  // Shared (the cached "no" expires first).
  shares_.insert({"alice", Str(oid_), "bob"});
  now_ += kTtlMs + 1;
  r = ReadVersion("bob", "alice");
  ASSERT_EQ(CodeOf(r), Code::kOk) << r.error().message();
  EXPECT_EQ(r.version_info().subscriber(), "alice");
  EXPECT_EQ(r.version_info().version(), 1u);
  for (int i = 0; i < 5; i++) {
    r = ReadChunk("bob", "alice");
    ASSERT_EQ(CodeOf(r), Code::kOk) << r.error().message();
    EXPECT_EQ(r.chunk_data().data(), "sealed chunk bytes");
  }
  EXPECT_EQ(dc_checks_, 2);  // one question for the version and all chunks
  EXPECT_EQ(core_->shared_reads_total(), 6u);
  EXPECT_EQ(core_->shares_refused_total(), 2u);

  // Unshared at the DC: served until the answer's TTL passes, then refused.
  shares_.clear();
  now_ += kTtlMs - 10;
  EXPECT_EQ(CodeOf(ReadChunk("bob", "alice")), Code::kOk);
  now_ += 11;
  EXPECT_EQ(CodeOf(ReadChunk("bob", "alice")), Code::kPermissionDenied);
  EXPECT_EQ(CodeOf(ReadVersion("bob", "alice")), Code::kPermissionDenied);
  EXPECT_EQ(dc_checks_, 3);
  EXPECT_EQ(core_->shares_refused_total(), 4u);
}

TEST_F(ShareWorld, ShareIsPerGranteeAndPerObject) {
  shares_.insert({"alice", Str(oid_), "bob"});
  core_->OnGatewayUp(now_, GatewayState{1003, "carol", 1u << 30, true});
  Drive();
  pb::Envelope e;
  auto* g = e.mutable_get_version();
  g->set_subscriber("carol");
  g->set_owner("alice");
  g->set_oid(Str(oid_));
  EXPECT_EQ(CodeOf(Ask(Gw(1003, "carol"), e)), Code::kPermissionDenied);
  // Another object of alice's: not shared with bob.
  oid_ = Oid{2, 3, 1001, 2}.Encode();
  EXPECT_EQ(CodeOf(ReadVersion("bob", "alice")), Code::kPermissionDenied);
  // A gateway cannot claim to be bob when it is carol's.
  g->set_subscriber("bob");
  EXPECT_EQ(CodeOf(Ask(Gw(1003, "carol"), e)), Code::kPermissionDenied);
}

TEST_F(ShareWorld, WritesLocksAndLockedReadsStayRefusedWithAShare) {
  shares_.insert({"alice", Str(oid_), "bob"});
  ASSERT_EQ(CodeOf(ReadVersion("bob", "alice")), Code::kOk);
  const uint64_t refused = core_->shares_refused_total();
  EXPECT_EQ(CodeOf(ReadVersion("bob", "alice", pb::READ_LOCKED)),
            Code::kPermissionDenied);
  EXPECT_EQ(CodeOf(ReadChunk("bob", "alice", /*lock=*/7)),
            Code::kPermissionDenied);
  EXPECT_EQ(core_->shares_refused_total(), refused + 2);
  {  // by name instead of oid
    pb::Envelope e;
    e.mutable_get_version()->set_subscriber("bob");
    e.mutable_get_version()->set_owner("alice");
    e.mutable_get_version()->set_name_key(std::string(32, 'n'));
    EXPECT_EQ(CodeOf(Ask(Gw(1002, "bob"), e)), Code::kPermissionDenied);
  }
  {  // a commit to alice's object
    pb::Envelope e;
    auto* c = e.mutable_put_commit();
    c->set_subscriber("alice");
    c->set_name_key(std::string(32, 'n'));
    c->set_manifest_sealed("m");
    EXPECT_EQ(CodeOf(Ask(Gw(1002, "bob"), e)), Code::kPermissionDenied);
  }
  {  // a chunk upload for alice
    pb::Envelope e;
    e.mutable_put_chunk()->set_subscriber("alice");
    e.mutable_put_chunk()->set_chunk_id(std::string(32, 'c'));
    e.mutable_put_chunk()->set_data("x");
    EXPECT_EQ(CodeOf(Ask(Gw(1002, "bob"), e)), Code::kPermissionDenied);
  }
  {  // a lock on alice's object
    pb::Envelope e;
    e.mutable_acquire_lock()->set_subscriber("alice");
    e.mutable_acquire_lock()->set_oid(Str(oid_));
    EXPECT_EQ(CodeOf(Ask(Gw(1002, "bob"), e)), Code::kPermissionDenied);
  }
  {  // listing alice's objects
    pb::Envelope e;
    e.mutable_list_objects()->set_subscriber("alice");
    EXPECT_EQ(CodeOf(Ask(Gw(1002, "bob"), e)), Code::kPermissionDenied);
  }
  // An unshared-but-cached share still grants nothing beyond reads.
  EXPECT_EQ(CodeOf(ReadChunk("bob", "alice")), Code::kOk);
}

TEST_F(ShareWorld,
       TheOwnerNamingItselfReadsAsUsualAndAnUnreachableDcKeepsNothing) {
  EXPECT_EQ(CodeOf(ReadVersion("alice", "alice")), Code::kOk);
  EXPECT_EQ(dc_checks_, 0);
  dc_up_ = false;
  shares_.insert({"alice", Str(oid_), "bob"});
  EXPECT_EQ(CodeOf(ReadVersion("bob", "alice")), Code::kUnavailable);
  EXPECT_EQ(core_->share_gate().entries(), 0u);
  EXPECT_EQ(core_->share_gate().checks_in_flight(), 0u);
  dc_up_ = true;
  EXPECT_EQ(CodeOf(ReadVersion("bob", "alice")),
            Code::kOk);  // asked again, at once
  EXPECT_EQ(dc_checks_, 2);
  EXPECT_EQ(core_->shares_refused_total(), 0u);
}

TEST(ShareGateTest, AnswersExpireAndAreBounded) {
  ShareGate g(ShareGateParams{
      .ttl_ms = 100, .entries_max = 3, .checks_in_flight_max = 2});
  auto key = [](int i) {
    return ShareKey{"alice", "oid" + std::to_string(i), "bob"};
  };
  EXPECT_EQ(g.Lookup(0, key(1)), ShareGate::Answer::kAsk);
  EXPECT_EQ(g.Lookup(0, key(2)), ShareGate::Answer::kAsk);
  EXPECT_EQ(g.Lookup(0, key(3)),
            ShareGate::Answer::kBusy);  // two questions out
  g.OnAnswer(10, key(1), true, true);
  g.OnAnswer(10, key(2), true, false);
  EXPECT_EQ(g.checks_in_flight(), 0u);
  EXPECT_EQ(g.Lookup(50, key(1)), ShareGate::Answer::kAllowed);
  EXPECT_EQ(g.Lookup(50, key(2)), ShareGate::Answer::kRefused);
  EXPECT_EQ(g.Lookup(110, key(1)),
            ShareGate::Answer::kAsk);     // expired at 10 + 100
  g.OnAnswer(110, key(1), false, false);  // failed: nothing kept
  EXPECT_EQ(g.entries(), 0u);
  // At most entries_max: the soonest to expire leaves first.
  for (int i = 1; i <= 4; i++) {
    ASSERT_EQ(g.Lookup(200 + i, key(i)), ShareGate::Answer::kAsk);
    g.OnAnswer(200 + i, key(i), true, true);
    EXPECT_LE(g.entries(), 3u);
  }
  EXPECT_EQ(g.entries(), 3u);
  EXPECT_EQ(g.Lookup(210, key(4)), ShareGate::Answer::kAllowed);
  EXPECT_EQ(g.Lookup(210, key(1)), ShareGate::Answer::kAsk);  // evicted
  g.OnAnswer(210, key(1), true, true);
  EXPECT_EQ(g.checks_total(), 8u);
}

}  // namespace
}  // namespace mistore
