// DC-tier objects (`mistore put --tier dc`, PutCommit.dc_tier): an entry
// POP's PopCore and the DC's stand-in PopCore (replica 0, as
// dc-backend/standin.cc opens it) wired to each other by this fixture, which
// also plays the DC's catalog and the gateways, on a fake clock.
//  - the oid names the DC as primary and backup; the chunks go on to the DC
//    as they are uploaded; the lock and the commit are at the DC, which
//    reports the version to the catalog; nobody places fragments;
//  - a catalog refusal of the random DC-tier oid is retried with another,
//    at most kDcTierClaimsMax times;
//  - the tier is fixed when the object is created: --tier dc on a POP-tier
//    name is refused before any lock or chunk moves.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/core/oid.h"
#include "shared/wire/envelope.h"
#include "tests/pop-server/pop_core_test_util.h"

namespace mistore {
namespace {

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

constexpr uint32_t kGw = 1001;
constexpr uint64_t kEpoch = 3;

Bytes ChunkId(int i) { return pop_test::TestChunkId(i, 0xdc); }

class DcTierWorld : public ::testing::Test {
 protected:
  void SetUp() override {
    PopParams e;
    e.pop_id = 1;
    e.region = "r1";
    e.k = 1;
    e.m = 1;
    entry_ = std::make_unique<PopCore>(e, &entry_store_, 11);
    PopParams d;  // as StandIn::Open
    d.pop_id = kDcReplica;
    d.region = "dc";
    d.k = 1;
    d.m = 1;
    d.cache_bytes_max = UINT64_MAX;
    d.place_fragments = false;
    dc_ = std::make_unique<PopCore>(d, &dc_store_, 12);
    map_ = pop_test::MapOfUpPops(kEpoch, {1, 2});
    entry_->OnClusterMap(now_, map_);
    dc_->OnClusterMap(now_, map_);
    for (uint32_t g = 1001; g <= 1003; g++)
      entry_->OnGatewayUp(now_, GatewayState{g, "s", 1u << 30, true});
    Pump();
  }

  // Moves both outboxes until neither has work.
  void Pump() {
    for (int round = 0; round < 10000; round++) {
      Outbox e = entry_->TakeOutbox();
      Outbox d = dc_->TakeOutbox();
      if (e.empty() && d.empty()) return;
      FromEntry(std::move(e));
      FromDc(std::move(d));
    }
    ADD_FAILURE() << "outboxes never drained";
  }

  void FromEntry(Outbox out) {
    for (auto& r : out.replies) client_replies_.push_back(r);
    for (auto& j : out.jobs) {
      j.run();
      entry_->OnJobDone(now_, j.token);
    }
    for (auto& c : out.calls) {
      if (c.to.kind == Dest::kDc && PopCore::IsStandInMessage(c.msg)) {
        to_dc_.push_back(c.msg.body_case());
        if (c.msg.has_store_chunk() && !committed_) forwarded_before_commit_++;
        pb::Envelope env = c.msg;
        env.set_request_id(++request_id_);
        pending_[request_id_] = c.token;
        dc_->OnRequest(now_, Peer{1, pb::ROLE_POP, 1, ""}, env);
      } else if (c.to.kind == Dest::kDc) {
        entry_->OnCallDone(now_, c.token, CatalogAnswer(c.msg, 1));
      } else {
        Other(c, 1);
        entry_->OnCallDone(now_, c.token, Unavailable("not in this test"));
      }
    }
  }

  void FromDc(Outbox out) {
    for (auto& r : out.replies) {
      auto it = pending_.find(r.request_id);
      ASSERT_NE(it, pending_.end());
      Token t = it->second;
      pending_.erase(it);
      Status st = ResponseStatus(r.msg);
      if (st.ok())
        entry_->OnCallDone(now_, t, r.msg);
      else
        entry_->OnCallDone(now_, t, st);
    }
    for (auto& j : out.jobs) {
      j.run();
      dc_->OnJobDone(now_, j.token);
    }
    for (auto& c : out.calls) {
      if (c.to.kind == Dest::kDc) {
        dc_->OnCallDone(now_, c.token, CatalogAnswer(c.msg, kDcReplica));
      } else {
        Other(c, kDcReplica);
        dc_->OnCallDone(now_, c.token, Unavailable("not in this test"));
      }
    }
  }

  void Other(const OutCall& c, uint32_t from) {
    if (c.to.kind == Dest::kGateway && c.msg.has_store_fragment()) fragments_stored_++;
    if (c.to.kind == Dest::kPop) pop_calls_.push_back({from, c.to.id});
  }

  // The DC's catalog: names, reports.
  Result<pb::Envelope> CatalogAnswer(const pb::Envelope& m, uint32_t from) {
    pb::Envelope r;
    if (m.has_lookup_name()) {
      auto it = names_.find(m.lookup_name().name_key());
      if (it == names_.end()) return NotFound("no object of that name");
      r.mutable_claim_name_reply()->set_oid(Str(it->second));
      return r;
    }
    if (m.has_claim_name()) {
      claims_.push_back(B(m.claim_name().proposed_oid()));
      if (claim_refusals_left_ > 0) {
        claim_refusals_left_--;
        return Status(Code::kAborted, "DC-tier oid in use; propose another");
      }
      auto [it, created] = names_.try_emplace(m.claim_name().name_key(), claims_.back());
      r.mutable_claim_name_reply()->set_oid(Str(it->second));
      r.mutable_claim_name_reply()->set_created(created);
      return r;
    }
    if (m.has_report_version()) reports_.push_back({from, m.report_version().info()});
    r.mutable_empty();
    return r;
  }

  void Request(pb::Envelope e) {
    e.set_request_id(++client_request_id_);
    entry_->OnRequest(now_, Peer{10, pb::ROLE_GATEWAY, kGw, "s"}, e);
    Pump();
  }

  void Announce(int chunks, bool dc_tier) {
    pb::Envelope e;
    e.mutable_have_chunks()->set_subscriber("s");
    e.mutable_have_chunks()->set_name_key(std::string(32, 'n'));
    e.mutable_have_chunks()->set_dc_tier(dc_tier);
    for (int i = 0; i < chunks; i++) e.mutable_have_chunks()->add_chunk_ids(Str(ChunkId(i)));
    Request(e);
  }

  void Upload(int chunks, char fill = 'a') {
    for (int i = 0; i < chunks; i++) {
      pb::Envelope e;
      e.mutable_put_chunk()->set_subscriber("s");
      e.mutable_put_chunk()->set_chunk_id(Str(ChunkId(i)));
      e.mutable_put_chunk()->set_data(std::string(1500, char(fill + i)));
      Request(e);
    }
  }

  // The commit's reply: put_reply, or the error.
  pb::Envelope Commit(int chunks, bool dc_tier, const std::string& write_id) {
    pb::Envelope e;
    auto* c = e.mutable_put_commit();
    c->set_subscriber("s");
    c->set_name_key(std::string(32, 'n'));
    c->set_name_sealed("sealed");
    c->set_size_bytes(1500 * uint64_t(chunks));
    c->set_manifest_sealed("manifest");
    for (int i = 0; i < chunks; i++) c->add_chunk_ids(Str(ChunkId(i)));
    c->set_write_id(write_id);
    c->set_dc_tier(dc_tier);
    committed_ = true;
    Request(e);
    for (auto& r : client_replies_)
      if (r.request_id == client_request_id_) return r.msg;
    ADD_FAILURE() << "the commit was not answered";
    return pb::Envelope();
  }

  // A full DC-tier write of `chunks` chunks; returns the put reply.
  pb::PutReply WriteDcTier(int chunks, const std::string& write_id, char fill = 'a') {
    committed_ = false;
    Announce(chunks, true);
    Upload(chunks, fill);
    pb::Envelope r = Commit(chunks, true, write_id);
    EXPECT_TRUE(r.has_put_reply()) << r.error().message();
    return r.put_reply();
  }

  size_t ToDc(pb::Envelope::BodyCase type) const {
    return size_t(std::count(to_dc_.begin(), to_dc_.end(), type));
  }

  uint64_t now_ = 5000;
  pb::ClusterMap map_;
  MemPopStore entry_store_, dc_store_;
  std::unique_ptr<PopCore> entry_, dc_;
  uint64_t request_id_ = 0, client_request_id_ = 0;
  std::map<uint64_t, Token> pending_;  // request id at the DC -> the entry POP's call
  std::vector<OutReply> client_replies_;
  std::vector<pb::Envelope::BodyCase> to_dc_;  // stand-in messages from the entry POP
  bool committed_ = false;
  int forwarded_before_commit_ = 0;
  int fragments_stored_ = 0;
  std::vector<std::pair<uint32_t, uint32_t>> pop_calls_;  // (from, to)
  std::map<std::string, Bytes> names_;
  std::vector<Bytes> claims_;
  int claim_refusals_left_ = 0;
  std::vector<std::pair<uint32_t, pb::VersionInfo>> reports_;  // (reporter, version)
};

TEST_F(DcTierWorld, TheEntryPopRelaysAWriteToTheDcAlone) {
  pb::PutReply put = WriteDcTier(3, "w1");
  auto oid = Oid::Decode(put.oid());
  ASSERT_TRUE(oid.ok());
  EXPECT_TRUE(IsDcTier(*oid)) << oid->Hex();
  EXPECT_EQ(oid->gateway, kGw);
  EXPECT_EQ(put.version(), 1u);
  EXPECT_EQ((put.primary_pop()), kDcReplica);
  // The chunks went on to the DC while they were uploaded, the lock and the
  // commit were taken there, and nothing went to another POP.
  EXPECT_EQ(forwarded_before_commit_, 3);
  EXPECT_EQ(ToDc(pb::Envelope::kAcquireLock), 1u);
  EXPECT_EQ(ToDc(pb::Envelope::kCommitVersion), 1u);
  EXPECT_EQ(ToDc(pb::Envelope::kReleaseLock), 1u);
  EXPECT_TRUE(pop_calls_.empty()) << "a call to POP " << pop_calls_[0].second;
  // The DC holds the committed version and the chunks; the entry POP no
  // version; the DC reported it to the catalog (the entry POP did not).
  EXPECT_EQ(dc_store_.LatestVersion(oid->Encode()), 1u);
  EXPECT_EQ(dc_store_.PreparedVersion(oid->Encode()), 0u);
  EXPECT_EQ(entry_store_.LatestVersion(oid->Encode()), 0u);
  for (int i = 0; i < 3; i++) {
    auto ci = dc_store_.GetChunkInfo(ChunkKey{"s", ChunkId(i)});
    ASSERT_TRUE(ci.ok() && ci->has_data) << "chunk " << i;
  }
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_EQ(reports_[0].first, kDcReplica);
  EXPECT_EQ(reports_[0].second.version(), 1u);
  // Nobody places a DC-tier object's chunks on gateways, now or later.
  now_ += 60000;
  entry_->OnTick(now_);
  dc_->OnTick(now_);
  Pump();
  EXPECT_EQ(fragments_stored_, 0);
}

TEST_F(DcTierWorld, ASecondVersionAndAReadGoToTheDc) {
  pb::PutReply v1 = WriteDcTier(2, "w1");
  pb::PutReply v2 = WriteDcTier(3, "w2", 'k');
  EXPECT_EQ(v2.oid(), v1.oid());
  EXPECT_EQ(v2.version(), 2u);
  EXPECT_EQ(ToDc(pb::Envelope::kAcquireLock), 2u);
  // A retry of the second write (same write id) is answered with its version.
  pb::Envelope again = Commit(3, true, "w2");
  ASSERT_TRUE(again.has_put_reply()) << again.error().message();
  EXPECT_EQ(again.put_reply().version(), 2u);
  // An atomic read through the entry POP: the version record and a chunk
  // come from the DC.
  pb::Envelope g;
  g.mutable_get_version()->set_subscriber("s");
  g.mutable_get_version()->set_name_key(std::string(32, 'n'));
  g.mutable_get_version()->set_mode(pb::READ_ATOMIC);
  Request(g);
  ASSERT_TRUE(client_replies_.back().msg.has_version_info())
      << client_replies_.back().msg.error().message();
  EXPECT_EQ(client_replies_.back().msg.version_info().version(), 2u);
  EXPECT_EQ(client_replies_.back().msg.version_info().served_by(), kDcReplica);
  // The entry POP kept no chunk it must keep: drop its copies, then read.
  for (int i = 0; i < 3; i++) (void)entry_store_.DeleteChunk(ChunkKey{"s", ChunkId(i)});
  pb::Envelope c;
  c.mutable_get_chunk()->set_subscriber("s");
  c.mutable_get_chunk()->set_oid(v1.oid());
  c.mutable_get_chunk()->set_chunk_id(Str(ChunkId(2)));
  Request(c);
  ASSERT_TRUE(client_replies_.back().msg.has_chunk_data())
      << client_replies_.back().msg.error().message();
  EXPECT_EQ(client_replies_.back().msg.chunk_data().data(), std::string(1500, char('k' + 2)));
  EXPECT_GE(ToDc(pb::Envelope::kFetchChunk), 1u);
  EXPECT_TRUE(pop_calls_.empty());
}

TEST_F(DcTierWorld, ARefusedOidIsDrawnAgain) {
  claim_refusals_left_ = 2;
  pb::PutReply put = WriteDcTier(1, "w1");
  ASSERT_EQ(claims_.size(), 3u);
  EXPECT_EQ(std::set<Bytes>(claims_.begin(), claims_.end()).size(), 3u)
      << "the same oid proposed again";
  for (auto& c : claims_) {
    auto o = Oid::Decode(c);
    ASSERT_TRUE(o.ok());
    EXPECT_TRUE(IsDcTier(*o)) << o->Hex();
  }
  EXPECT_EQ(put.oid(), Str(claims_.back()));
}

TEST_F(DcTierWorld, RefusalsAreBounded) {
  claim_refusals_left_ = 1000;
  Announce(1, true);
  Upload(1);
  pb::Envelope r = Commit(1, true, "w1");
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(Code(r.error().code()), Code::kAborted);
  EXPECT_EQ(claims_.size(), size_t(kDcTierClaimsMax));
  EXPECT_EQ(ToDc(pb::Envelope::kAcquireLock), 0u);
}

TEST_F(DcTierWorld, TheTierIsFixedWhenTheObjectIsCreated) {
  Oid pop_tier{1, 2, kGw, 1};
  names_[std::string(32, 'n')] = pop_tier.Encode();
  Announce(2, true);
  Upload(2);
  pb::Envelope r = Commit(2, true, "w1");
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(Code(r.error().code()), Code::kInvalidArgument);
  EXPECT_NE(r.error().message().find("fixed when it is created"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(ToDc(pb::Envelope::kAcquireLock), 0u);
  EXPECT_EQ(ToDc(pb::Envelope::kCommitVersion), 0u);
  EXPECT_EQ(entry_store_.LatestVersion(pop_tier.Encode()), 0u);
  EXPECT_EQ(dc_store_.LatestVersion(pop_tier.Encode()), 0u);
}

}  // namespace
}  // namespace mistore
