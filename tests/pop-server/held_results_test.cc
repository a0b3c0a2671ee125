// Issue 6, POP side of two session-3 pieces, on a fake clock:
//  - results kept for a gateway that went away (HeldResults, and PopCore's
//    commit path: a commit finishing after its gateway's connection closed
//    is kept, pushed to the gateway when it registers again, and a retry of
//    the same write id is answered with the original (oid, version) — even
//    after another writer's commit — instead of creating a second version;
//    a retry arriving while the original runs joins it);
//  - chunks kept until both regions placed them (placement waits answered
//    by PlacedChunks between the object's POPs).
#include "pop-server/held_results.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <random>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "pop-server/sqlite_pop_store.h"
#include "shared/core/oid.h"
#include "shared/erasure/fragment.h"
#include "tests/pop-server/pop_core_test_util.h"

namespace mistore {
namespace {

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

pb::PutReply Reply(uint64_t version) {
  pb::PutReply r;
  r.set_oid(std::string(16, 'o'));
  r.set_version(version);
  return r;
}

// ---------------------------------------------------------------------------
// HeldResults alone.

TEST(HeldResults, FindsByWriteIdUntilExpiry) {
  HeldResults h(HeldResultsParams{.keep_ms = 1000});
  h.Put(0, 7, "s", "w1", Reply(3), false);
  ASSERT_NE(h.Find(999, "s", "w1"), nullptr);
  EXPECT_EQ(h.Find(999, "s", "w1")->version(), 3u);
  EXPECT_EQ(h.Find(999, "other", "w1"), nullptr) << "another subscriber's write id matched";
  EXPECT_EQ(h.Find(1000, "s", "w1"), nullptr) << "kept past keep_ms";
  EXPECT_EQ(h.stats().held, 0u);
  EXPECT_EQ(h.stats().answered_total, 2u);
}

TEST(HeldResults, NoWriteIdNothingKept) {
  HeldResults h(HeldResultsParams{});
  h.Put(0, 7, "s", "", Reply(1), true);
  EXPECT_EQ(h.stats().held, 0u);
}

TEST(HeldResults, UndeliveredOnlyForItsGatewayAndAckedOnce) {
  HeldResults h(HeldResultsParams{.keep_ms = 1000});
  h.Put(0, 7, "s", "w1", Reply(1), true);
  h.Put(0, 7, "s", "w2", Reply(2), false);  // its requester got it
  h.Put(0, 8, "s", "w3", Reply(3), true);
  EXPECT_EQ(h.stats().undelivered, 2u);
  pb::HeldResults m = h.Undelivered(10, 7);
  ASSERT_EQ(m.results_size(), 1);
  EXPECT_EQ(m.results(0).write_id(), "w1");
  EXPECT_EQ(m.results(0).subscriber(), "s");
  EXPECT_EQ(m.results(0).put_reply().version(), 1u);
  h.MarkDelivered(8, m);  // the wrong gateway's ack changes nothing
  EXPECT_EQ(h.stats().undelivered, 2u);
  h.MarkDelivered(7, m);
  h.MarkDelivered(7, m);
  EXPECT_EQ(h.stats().undelivered, 1u);
  EXPECT_EQ(h.stats().delivered_total, 1u);
  EXPECT_EQ(h.Undelivered(10, 7).results_size(), 0);
  EXPECT_NE(h.Find(10, "s", "w1"), nullptr) << "a delivered result still answers retries";
  EXPECT_EQ(h.Undelivered(1000, 8).results_size(), 0) << "expired result offered";
}

TEST(HeldResults, BoundedPerGatewayAndInTotalOldestDropped) {
  HeldResults h(HeldResultsParams{.keep_ms = 1000000, .per_gateway_max = 3, .total_max = 5,
                                  .push_max = 2});
  for (int i = 0; i < 5; i++) h.Put(i, 1, "s", "a" + std::to_string(i), Reply(i), true);
  EXPECT_EQ(h.stats().held, 3u);
  EXPECT_EQ(h.Find(10, "s", "a1"), nullptr);
  EXPECT_NE(h.Find(10, "s", "a2"), nullptr);
  EXPECT_EQ(h.stats().undelivered, 3u);
  EXPECT_EQ(h.Undelivered(10, 1).results_size(), 2) << "push_max not applied";
  for (int i = 0; i < 3; i++) h.Put(10 + i, 2, "s", "b" + std::to_string(i), Reply(i), false);
  EXPECT_EQ(h.stats().held, 5u);
  EXPECT_EQ(h.Find(20, "s", "a2"), nullptr) << "total bound did not drop the oldest";
  EXPECT_EQ(h.stats().dropped_total, 3u);
  EXPECT_EQ(h.stats().undelivered, 2u);
  h.Expire(1000010);
  EXPECT_EQ(h.stats().held, 2u);  // b1, b2 (put at 11, 12)
  h.Expire(2000000);
  EXPECT_EQ(h.stats().held, 0u);
  EXPECT_EQ(h.stats().undelivered, 0u);
}

TEST(HeldResults, SameWriteAgainReplacesTheOldResult) {
  HeldResults h(HeldResultsParams{});
  h.Put(0, 1, "s", "w", Reply(1), true);
  h.Put(5, 2, "s", "w", Reply(1), false);
  EXPECT_EQ(h.stats().held, 1u);
  EXPECT_EQ(h.stats().undelivered, 0u);
  EXPECT_EQ(h.Undelivered(6, 1).results_size(), 0);
}

// Durability: every change is reported once by TakeChanges; Load takes
// stored records back under the same expiry and bounds.
TEST(HeldResults, ChangesNameEveryPutDeliveryDropAndExpiry) {
  HeldResults h(HeldResultsParams{.keep_ms = 1000, .per_gateway_max = 2});
  h.Put(0, 7, "s", "w1", Reply(1), true);
  h.Put(1, 7, "s", "w2", Reply(2), true);
  HeldResultsChanges c = h.TakeChanges();
  ASSERT_EQ(c.put.size(), 2u);
  EXPECT_TRUE(c.erase.empty());
  EXPECT_EQ(c.put[0].write_id, "w1");
  EXPECT_EQ(c.put[0].gateway_id, 7u);
  EXPECT_TRUE(c.put[0].undelivered);
  EXPECT_EQ(c.put[1].reply.version(), 2u);
  EXPECT_TRUE(h.TakeChanges().empty()) << "changes reported twice";

  h.MarkDelivered(7, h.Undelivered(2, 7));
  c = h.TakeChanges();
  ASSERT_EQ(c.put.size(), 2u);
  EXPECT_FALSE(c.put[0].undelivered) << "delivery not reported";

  h.Put(3, 7, "s", "w3", Reply(3), false);  // per-gateway bound drops w1
  c = h.TakeChanges();
  ASSERT_EQ(c.erase.size(), 1u);
  EXPECT_EQ(c.erase[0], (std::pair<std::string, std::string>{"s", "w1"}));
  ASSERT_EQ(c.put.size(), 1u);

  h.Expire(1001);  // w2 (put at 1) expires; w3 stays
  c = h.TakeChanges();
  ASSERT_EQ(c.erase.size(), 1u);
  EXPECT_EQ(c.erase[0].second, "w2");
  EXPECT_TRUE(c.put.empty());
  EXPECT_EQ(h.Find(1003, "s", "w3"), nullptr);  // expired on Find
  c = h.TakeChanges();
  ASSERT_EQ(c.erase.size(), 1u);
  EXPECT_EQ(c.erase[0].second, "w3");
}

TEST(HeldResults, LoadKeepsLiveResultsAndDropsExpiredAndOverBound) {
  HeldResults h(HeldResultsParams{.keep_ms = 1000, .per_gateway_max = 2});
  std::vector<HeldResultRecord> stored;
  for (int i = 0; i < 4; i++)
    stored.push_back(HeldResultRecord{"s", "w" + std::to_string(i), 7, uint64_t(100 * i), true,
                                      Reply(i)});
  // now 1150: w0 (at 0) and w1 (at 100) are expired; bound 2 keeps w2, w3.
  h.Load(1150, stored);
  EXPECT_EQ(h.stats().held, 2u);
  EXPECT_EQ(h.stats().undelivered, 2u);
  ASSERT_NE(h.Find(1150, "s", "w3"), nullptr);
  EXPECT_EQ(h.Find(1150, "s", "w3")->version(), 3u);
  EXPECT_EQ(h.Undelivered(1150, 7).results_size(), 2);
  HeldResultsChanges c = h.TakeChanges();
  EXPECT_TRUE(c.put.empty()) << "loaded records written back unchanged";
  std::set<std::string> erased;
  for (auto& [sub, w] : c.erase) erased.insert(w);
  EXPECT_EQ(erased, (std::set<std::string>{"w0", "w1"}));
  // Loaded ones keep their age: w2 (at 200) expires at 1200.
  h.Expire(1200);
  EXPECT_EQ(h.stats().held, 1u);
}

// ---------------------------------------------------------------------------
// PopCore: entry POP 1 (region r1, 6 gateways) whose objects' backup is POP
// 2; the DC and POP 2 are answered by this fixture.

constexpr uint64_t kEpoch = 3;
constexpr uint32_t kGw = 1001, kOtherGw = 1002;

class World : public ::testing::Test {
 protected:
  void Start(uint32_t pop_id = 1, uint64_t cache_bytes_max = 1u << 30) {
    PopParams p;
    p.pop_id = pop_id;
    p.region = "r1";
    p.k = 2;
    p.m = 1;
    p.cache_bytes_max = cache_bytes_max;
    p.placed_confirm_interval_ms = 1000;
    p.held_results_ms = held_results_ms_;
    core_ = std::make_unique<PopCore>(p, sql_ ? static_cast<PopStore*>(sql_.get()) : &store_, 11);
    if (wall_ms_) core_->LoadHeldResults(now_, wall_ms_);
    core_->OnClusterMap(now_, pop_test::MapOfUpPops(kEpoch, {1, 2, 3}));
    for (uint32_t g = 1001; g <= 1006; g++) core_->OnGatewayUp(now_, GatewayState{g, "s", 1u << 30, true});
    Drive();
  }

  // Answers every call the core makes; calls whose body is in hold_ wait in
  // held_calls_ until Release().
  void Drive() {
    pop_test::DrainOutbox(*core_, now_, &replies_,
                          [&](const OutCall& c) -> std::optional<Result<pb::Envelope>> {
                            calls_seen_.push_back(c);
                            if (hold_.count(c.msg.body_case())) {
                              held_calls_.push_back(c);
                              return std::nullopt;
                            }
                            return Answer(c);
                          });
  }

  void Release() {
    auto calls = std::move(held_calls_);
    held_calls_.clear();
    hold_.clear();
    for (auto& c : calls) core_->OnCallDone(now_, c.token, Answer(c));
    Drive();
  }

  Result<pb::Envelope> Answer(const OutCall& c) {
    pb::Envelope r;
    const pb::Envelope& m = c.msg;
    if (c.to.kind == Dest::kDc) {
      if (m.has_lookup_name()) {
        auto it = names_.find(m.lookup_name().name_key());
        if (it == names_.end()) return NotFound("no such name");
        r.mutable_claim_name_reply()->set_oid(it->second);
      } else if (m.has_claim_name()) {
        auto [it, fresh] = names_.try_emplace(m.claim_name().name_key(), m.claim_name().proposed_oid());
        r.mutable_claim_name_reply()->set_oid(it->second);
        r.mutable_claim_name_reply()->set_created(fresh);
      } else {
        r.mutable_empty();  // reports
      }
      return r;
    }
    if (c.to.kind == Dest::kPop) {
      pop_calls_++;
      if (m.has_fetch_version()) return NotFound("nothing there");
      if (m.has_commit_version()) {
        r.mutable_commit_reply()->set_version(m.commit_version().info().version());
        return r;
      }
      if (m.has_placed_chunks()) {
        placed_asks_.push_back(m.placed_chunks());
        for (auto& id : m.placed_chunks().chunk_ids())
          if (peer_placed_) r.mutable_placed_chunks_reply()->add_placed(id);
        r.mutable_placed_chunks_reply();
        return r;
      }
      r.mutable_empty();  // StoreChunk, FinalizeVersion
      return r;
    }
    // a gateway
    if (m.has_held_results()) {
      delivered_.push_back({c.to.id, m.held_results()});
      r.mutable_empty();
      return r;
    }
    if (m.has_store_fragment()) {
      fragments_stored_++;
      r.mutable_empty();
      return r;
    }
    if (m.has_get_inventory()) {
      r.mutable_gateway_inventory();
      return r;
    }
    return Unavailable("not modelled");
  }

  void Request(uint64_t conn, uint32_t gateway, pb::Envelope e) {
    e.set_request_id(++request_id_);
    core_->OnRequest(now_, Peer{conn, pb::ROLE_GATEWAY, gateway, "s"}, e);
    Drive();
  }

  void Upload(uint64_t conn, uint32_t gateway, const Bytes& chunk_id) {
    pb::Envelope e;
    e.mutable_put_chunk()->set_subscriber("s");
    e.mutable_put_chunk()->set_chunk_id(Str(chunk_id));
    e.mutable_put_chunk()->set_data(std::string(3000, char(chunk_id[0])));
    Request(conn, gateway, e);
  }

  void Commit(uint64_t conn, uint32_t gateway, const std::string& write_id, const Bytes& chunk_id) {
    pb::Envelope e;
    auto* c = e.mutable_put_commit();
    c->set_subscriber("s");
    c->set_name_key(std::string(32, 'n'));
    c->set_name_sealed("sealed name");
    c->set_size_bytes(3000);
    c->set_manifest_sealed("manifest " + write_id);
    c->add_chunk_ids(Str(chunk_id));
    c->set_write_id(write_id);
    Request(conn, gateway, e);
  }

  // The put_reply (or error) last sent on conn.
  const OutReply* LastReplyOn(uint64_t conn) {
    for (auto it = replies_.rbegin(); it != replies_.rend(); ++it)
      if (it->conn_id == conn) return &*it;
    return nullptr;
  }

  Bytes oid() { return B(names_.at(std::string(32, 'n'))); }

  // A POP on SQLite that can be restarted: the store is reopened from disk.
  void UseSqlite() {
    char tmpl[] = "/tmp/mistore_held_results_test.XXXXXX";
    char* d = mkdtemp(tmpl);
    ASSERT_NE(d, nullptr);
    sql_dir_ = d;
    ReopenSqlite();
  }
  void ReopenSqlite() {
    core_.reset();
    sql_.reset();
    auto s = SqlitePopStore::Open(sql_dir_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sql_ = std::move(s).value();
  }
  void TearDown() override {
    core_.reset();
    sql_.reset();
    std::error_code ec;
    if (!sql_dir_.empty()) std::filesystem::remove_all(sql_dir_, ec);
  }

  uint64_t now_ = 1000;
  uint64_t wall_ms_ = 0;  // 0: LoadHeldResults not called (as in the simulator)
  uint64_t held_results_ms_ = 3600000;
  uint64_t request_id_ = 0;
  std::string sql_dir_;
  std::unique_ptr<SqlitePopStore> sql_;
  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  std::map<std::string, std::string> names_;  // name key -> oid
  std::set<int> hold_;
  std::vector<OutCall> held_calls_, calls_seen_;
  std::vector<OutReply> replies_;
  std::vector<std::pair<uint32_t, pb::HeldResults>> delivered_;
  std::vector<pb::PlacedChunks> placed_asks_;
  bool peer_placed_ = false;
  int pop_calls_ = 0;
  int fragments_stored_ = 0;
};

const Bytes kChunkA(32, 0xa1), kChunkB(32, 0xb2);

TEST_F(World, CommitFinishingAfterItsGatewayLeftIsDeliveredOnReturnAndAnswersTheRetry) {
  Start();
  Upload(10, kGw, kChunkA);
  hold_ = {pb::Envelope::kCommitVersion};  // the backup is slow to prepare
  Commit(10, kGw, "write-1", kChunkA);
  ASSERT_EQ(held_calls_.size(), 1u) << "the commit never reached the backup";
  // The gateway's link drops mid-commit (agent killed), then the commit ends.
  core_->OnConnectionClosed(now_, 10);
  core_->OnGatewayDown(now_, kGw);
  Drive();
  Release();
  EXPECT_EQ(store_.LatestVersion(oid()), 1u);
  EXPECT_EQ(core_->held_results_stats().undelivered, 1u);
  EXPECT_TRUE(delivered_.empty()) << "delivered to a gateway that is away";

  // It registers again: the kept result is pushed to it.
  now_ += 5000;
  core_->OnGatewayUp(now_, GatewayState{kGw, "s", 1u << 30, true});
  Drive();
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].first, kGw);
  ASSERT_EQ(delivered_[0].second.results_size(), 1);
  EXPECT_EQ(delivered_[0].second.results(0).write_id(), "write-1");
  EXPECT_EQ(delivered_[0].second.results(0).put_reply().version(), 1u);
  EXPECT_EQ(B(delivered_[0].second.results(0).put_reply().oid()), oid());
  EXPECT_EQ(core_->held_results_stats().undelivered, 0u);
  EXPECT_EQ(core_->held_results_stats().delivered_total, 1u);
  // Registering again does not push it twice.
  core_->OnGatewayUp(now_, GatewayState{kGw, "s", 1u << 30, true});
  Drive();
  EXPECT_EQ(delivered_.size(), 1u);

  // Another device commits a new version of the same object meanwhile.
  Upload(11, kOtherGw, kChunkB);
  Commit(11, kOtherGw, "write-2", kChunkB);
  ASSERT_TRUE(LastReplyOn(11)->msg.has_put_reply());
  EXPECT_EQ(LastReplyOn(11)->msg.put_reply().version(), 2u);

  // The first client retries write-1 (a new connection): the original
  // result, no third version, nothing asked of the DC or the backup.
  size_t calls_before = calls_seen_.size();
  Commit(12, kGw, "write-1", kChunkA);
  const OutReply* r = LastReplyOn(12);
  ASSERT_NE(r, nullptr);
  ASSERT_TRUE(r->msg.has_put_reply()) << r->msg.error().message();
  EXPECT_EQ(r->msg.put_reply().version(), 1u);
  EXPECT_EQ(B(r->msg.put_reply().oid()), oid());
  EXPECT_EQ(store_.LatestVersion(oid()), 2u) << "the retry made a duplicate version";
  EXPECT_EQ(calls_seen_.size(), calls_before);
  EXPECT_EQ(core_->held_results_stats().answered_total, 1u);
}

// Issue 6: the kept result survives a restart of the POP (SQLite store
// reopened, new PopCore, monotonic clock started again near zero); the
// returning gateway gets it and the retry is answered with the original
// version, not a second one.
TEST_F(World, KeptResultSurvivesAPopRestartAndIsDeliveredOnReturn) {
  UseSqlite();
  wall_ms_ = 1'700'000'000'000;
  Start();
  Upload(10, kGw, kChunkA);
  hold_ = {pb::Envelope::kCommitVersion};
  Commit(10, kGw, "write-1", kChunkA);
  ASSERT_EQ(held_calls_.size(), 1u);
  core_->OnConnectionClosed(now_, 10);
  core_->OnGatewayDown(now_, kGw);
  Drive();
  Release();
  ASSERT_EQ(core_->held_results_stats().undelivered, 1u);
  ASSERT_EQ(sql_->LoadHeldResults(10).size(), 1u) << "the kept result is not in the store";

  // The POP restarts 60 s later (wall clock); its monotonic clock restarts.
  ReopenSqlite();
  wall_ms_ += 60'000;
  now_ = 5;
  ASSERT_TRUE(delivered_.empty());
  Start();  // loads the kept results, then its gateways register (kGw among them)
  EXPECT_EQ(core_->held_results_stats().held, 1u) << "kept result lost by the restart";
  ASSERT_EQ(delivered_.size(), 1u) << "not delivered to the returning gateway";
  EXPECT_EQ(delivered_[0].first, kGw);
  EXPECT_EQ(core_->held_results_stats().undelivered, 0u);
  ASSERT_EQ(delivered_[0].second.results_size(), 1);
  EXPECT_EQ(delivered_[0].second.results(0).write_id(), "write-1");
  EXPECT_EQ(delivered_[0].second.results(0).put_reply().version(), 1u);
  auto stored = sql_->LoadHeldResults(10);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_FALSE(stored[0].undelivered) << "the delivery was not stored";

  Commit(12, kGw, "write-1", kChunkA);
  const OutReply* r = LastReplyOn(12);
  ASSERT_NE(r, nullptr);
  ASSERT_TRUE(r->msg.has_put_reply()) << r->msg.error().message();
  EXPECT_EQ(r->msg.put_reply().version(), 1u);
  EXPECT_EQ(sql_->LatestVersion(oid()), 1u) << "the retry made a second version";
  EXPECT_EQ(core_->held_results_stats().answered_total, 1u);
}

// A result older than held_results_s at restart is not loaded, and is
// deleted from the store.
TEST_F(World, KeptResultExpiredAcrossARestartIsDeleted) {
  UseSqlite();
  held_results_ms_ = 10'000;
  wall_ms_ = 1'700'000'000'000;
  Start();
  Upload(10, kGw, kChunkA);
  hold_ = {pb::Envelope::kCommitVersion};
  Commit(10, kGw, "write-1", kChunkA);
  core_->OnConnectionClosed(now_, 10);
  Drive();
  Release();
  ASSERT_EQ(sql_->LoadHeldResults(10).size(), 1u);

  ReopenSqlite();
  wall_ms_ += 10'000;  // exactly its life: expired
  now_ = 5;
  Start();
  EXPECT_EQ(core_->held_results_stats().held, 0u);
  EXPECT_TRUE(sql_->LoadHeldResults(10).empty()) << "expired result left in the store";
}

TEST_F(World, RetryWhileTheOriginalRunsJoinsIt) {
  Start();
  Upload(10, kGw, kChunkA);
  hold_ = {pb::Envelope::kCommitVersion};
  Commit(10, kGw, "write-1", kChunkA);
  ASSERT_EQ(held_calls_.size(), 1u);
  core_->OnConnectionClosed(now_, 10);
  size_t calls_before = calls_seen_.size();
  Commit(20, kGw, "write-1", kChunkA);  // the agent came back and the client retried
  EXPECT_EQ(calls_seen_.size(), calls_before) << "the retry ran the write a second time";
  EXPECT_EQ(LastReplyOn(20), nullptr);
  Release();
  ASSERT_NE(LastReplyOn(20), nullptr);
  ASSERT_TRUE(LastReplyOn(20)->msg.has_put_reply());
  EXPECT_EQ(LastReplyOn(20)->msg.put_reply().version(), 1u);
  EXPECT_EQ(store_.LatestVersion(oid()), 1u);
  // The joined retry received it: nothing is left undelivered.
  EXPECT_EQ(core_->held_results_stats().undelivered, 0u);
}

TEST_F(World, RetriesJoiningOneWriteAreBounded) {
  Start();
  Upload(10, kGw, kChunkA);
  hold_ = {pb::Envelope::kCommitVersion};
  Commit(10, kGw, "write-1", kChunkA);
  for (uint64_t conn = 100; conn < 109; conn++) Commit(conn, kGw, "write-1", kChunkA);
  // 8 joined; the ninth is refused at once with a retryable error.
  ASSERT_NE(LastReplyOn(108), nullptr);
  EXPECT_EQ(LastReplyOn(108)->msg.error().code(), uint32_t(Code::kUnavailable));
  EXPECT_EQ(LastReplyOn(107), nullptr);
  Release();
  for (uint64_t conn = 100; conn < 108; conn++) {
    ASSERT_NE(LastReplyOn(conn), nullptr);
    EXPECT_EQ(LastReplyOn(conn)->msg.put_reply().version(), 1u);
  }
}

TEST_F(World, FailedCommitIsNotKeptSoTheRetryRunsAgain) {
  Start();
  Upload(10, kGw, kChunkA);
  Commit(10, kGw, "write-1", std::vector<uint8_t>(32, 0xee));  // chunk never uploaded
  ASSERT_TRUE(LastReplyOn(10)->msg.has_error());
  EXPECT_EQ(core_->held_results_stats().held, 0u);
  Commit(11, kGw, "write-1", kChunkA);
  ASSERT_TRUE(LastReplyOn(11)->msg.has_put_reply()) << LastReplyOn(11)->msg.error().message();
  EXPECT_EQ(LastReplyOn(11)->msg.put_reply().version(), 1u);
}

// ---------------------------------------------------------------------------
// Chunks kept until both regions placed them.

TEST_F(World, PrimaryKeepsItsCopyUntilTheBackupRegionConfirmsPlacement) {
  Start(/*pop_id=*/1, /*cache_bytes_max=*/0);
  Upload(10, kGw, kChunkA);
  Commit(10, kGw, "write-1", kChunkA);
  ASSERT_TRUE(LastReplyOn(10)->msg.has_put_reply());
  now_ += 10;
  core_->OnTick(now_);  // placement runs
  Drive();
  ChunkKey key{"s", kChunkA};
  EXPECT_EQ(store_.GetChunkInfo(key)->state, ChunkState::kPlaced);
  EXPECT_EQ(fragments_stored_, 3);
  EXPECT_TRUE(store_.GetChunkInfo(key)->has_data)
      << "copy dropped before the backup's region placed the chunk";
  // The backup has not placed it yet: still kept, however often asked.
  for (int i = 0; i < 3; i++) {
    now_ += 1000;
    core_->OnTick(now_);
    Drive();
  }
  ASSERT_FALSE(placed_asks_.empty());
  EXPECT_TRUE(placed_asks_.back().sender_placed());
  EXPECT_EQ(placed_asks_.back().subscriber(), "s");
  EXPECT_EQ(B(placed_asks_.back().chunk_ids(0)), kChunkA);
  EXPECT_TRUE(store_.GetChunkInfo(key)->has_data);
  // Now it has: the next round clears the wait and the copy goes.
  peer_placed_ = true;
  now_ += 1000;
  core_->OnTick(now_);
  Drive();
  EXPECT_FALSE(store_.GetChunkInfo(key)->has_data);
  EXPECT_TRUE(store_.PlacementWaits(0, 10).empty());
}

TEST_F(World, WaitsSurviveARestartOfThePop) {
  Start(1, 0);
  Upload(10, kGw, kChunkA);
  Commit(10, kGw, "write-1", kChunkA);
  ASSERT_TRUE(store_.GetChunkInfo(ChunkKey{"s", kChunkA})->has_data);
  Start(1, 0);  // a new PopCore over the same store
  peer_placed_ = true;
  now_ += 5000;
  core_->OnTick(now_);
  Drive();
  EXPECT_FALSE(store_.GetChunkInfo(ChunkKey{"s", kChunkA})->has_data);
}

TEST_F(World, PlacedChunksAnswersPlacedUnknownOrNothingAndTheSendersPlacementEndsWaits) {
  Start(2, 0);  // this POP is the backup of an object whose primary is POP 1
  ChunkKey placed{"s", Bytes(32, 1)}, replica{"s", Bytes(32, 2)}, cached{"s", Bytes(32, 3)};
  ASSERT_TRUE(store_.PutChunk(placed, Bytes(10, 1), ChunkState::kPlaced).ok());
  ASSERT_TRUE(store_.PutChunk(replica, Bytes(10, 2), ChunkState::kReplica).ok());
  ASSERT_TRUE(store_.PutChunk(cached, Bytes(10, 3), ChunkState::kCached).ok());
  ASSERT_TRUE(store_.AddPlacementWaits({placed, replica}, 1).ok());
  pb::Envelope e;
  e.set_request_id(5);
  auto* pc = e.mutable_placed_chunks();
  pc->set_subscriber("s");
  for (auto* k : {&placed, &replica, &cached}) pc->add_chunk_ids(Str(k->chunk_id));
  pc->add_chunk_ids(std::string(32, 9));  // never heard of
  pc->set_sender_placed(false);
  core_->OnRequest(now_, Peer{30, pb::ROLE_POP, 1, ""}, e);
  Drive();
  ASSERT_NE(LastReplyOn(30), nullptr);
  const auto& r = LastReplyOn(30)->msg.placed_chunks_reply();
  ASSERT_EQ(r.placed_size(), 1);
  EXPECT_EQ(B(r.placed(0)), placed.chunk_id);
  ASSERT_EQ(r.unknown_size(), 2);
  EXPECT_EQ(store_.PlacementWaits(0, 10).size(), 2u) << "waits cleared by a sender that had not placed";
  pc->set_sender_placed(true);
  core_->OnRequest(now_, Peer{30, pb::ROLE_POP, 1, ""}, e);
  Drive();
  EXPECT_TRUE(store_.PlacementWaits(0, 10).empty());
  // From a gateway: refused.
  core_->OnRequest(now_, Peer{31, pb::ROLE_GATEWAY, kGw, "s"}, e);
  Drive();
  EXPECT_TRUE(LastReplyOn(31)->msg.has_error());
  // More than 1024 ids: refused.
  for (int i = 0; i < 1100; i++) pc->add_chunk_ids(std::string(32, 'x'));
  core_->OnRequest(now_, Peer{32, pb::ROLE_POP, 1, ""}, e);
  Drive();
  EXPECT_EQ(LastReplyOn(32)->msg.error().code(), uint32_t(Code::kInvalidArgument));
}

}  // namespace
}  // namespace mistore
