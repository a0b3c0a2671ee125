// Issue 11 (writes on the emulated ISP network): how a version's chunks move
// to a replica POP on commit (PopCore::PushChunks, pop_write.cc). POP 1 is
// the primary of a new object written through its own gateway, POP 2 the
// backup; this fixture plays the DC, POP 2 and the gateways, on a fake
// clock, and holds POP 2's StoreChunk answers to look at what is in flight.
//  - at most push_chunks_in_flight_max StoreChunks are outstanding, more
//    than one at a time, and the commit reaches the backup only after the
//    last chunk is acknowledged (durability rule unchanged);
//  - chunks the backup reports holding (HaveChunks) are not sent (the
//    delta write: a new version sharing most chunks with the old one);
//  - a refused HaveChunks means every chunk is sent;
//  - a failed StoreChunk fails the write once, with no version left behind.
// And forwarding during the upload (pop_forward.cc): chunks announced by a
// HaveChunks naming the object go on to the replicas as they are uploaded,
// before the commit, which then finds them there. And placement before the
// commit (pop_place_early.cc): a replica places a chunk as it arrives, the
// commit does not place it again, and a chunk whose commit never comes is
// deleted with its fragments after staged_keep_ms.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/core/oid.h"
#include "tests/pop-server/pop_core_test_util.h"

namespace mistore {
namespace {

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

constexpr uint32_t kGw = 1001;

Bytes ChunkId(int i) { return pop_test::TestChunkId(i, 0x5c); }

class PushWorld : public ::testing::Test {
 protected:
  void Start(size_t window, std::vector<uint32_t> pops = {1, 2}, size_t forward_window = 8,
             size_t forward_plans_max = 65536) {
    PopParams p;
    p.pop_id = 1;
    p.region = "r1";
    p.k = 1;
    p.m = 1;
    p.push_chunks_in_flight_max = window;
    p.forward_chunks_in_flight_max = forward_window;
    p.forward_plan_entries_max = forward_plans_max;
    p.placement_bytes_per_gateway_max = placement_budget_;
    p.place_before_commit = place_before_commit_;
    p.staged_keep_ms = staged_keep_ms_;
    p.staged_placements_max = staged_placements_max_;
    params_ = p;
    core_ = std::make_unique<PopCore>(p, &store_, 7);
    // {1, 2}: POP 2 is the only possible backup.
    core_->OnClusterMap(now_, pop_test::MapOfUpPops(3, pops));
    for (uint32_t g = 1001; g <= 1003; g++)
      core_->OnGatewayUp(now_, GatewayState{g, "s", 1u << 30, true});
    Drive();
  }

  // Answers every call, except StoreChunks to POPs and to the DC's stand-in
  // (kDcReplica in stored_to_ and held_by_), which wait in held_.
  void Drive() {
    pop_test::DrainOutbox(
        *core_, now_, &replies_, [&](const OutCall& c) -> std::optional<Result<pb::Envelope>> {
          order_.push_back(c.msg.body_case());
          if (c.to.kind == Dest::kPop && c.msg.has_commit_version())
            commit_to_.push_back({c.to.id, held_.size()});
          if (hold_deletes_ && c.to.kind == Dest::kGateway && c.msg.has_delete_fragments()) {
            held_deletes_.push_back(c);
            return std::nullopt;
          }
          if (hold_fragments_ && c.to.kind == Dest::kGateway && c.msg.has_store_fragment()) {
            held_frags_.push_back(c);
            uint64_t& b = frag_bytes_to_[c.to.id];
            b += c.msg.store_fragment().fragment().size();
            max_frag_bytes_to_ = std::max(max_frag_bytes_to_, b);
            return std::nullopt;
          }
          if ((c.to.kind == Dest::kPop || c.to.kind == Dest::kDc) && c.msg.has_store_chunk()) {
            stored_to_[c.to.kind == Dest::kDc ? kDcReplica : c.to.id]++;
            stored_.push_back(B(c.msg.store_chunk().chunk_id()));
            held_.push_back(c);
            max_in_flight_ = std::max(max_in_flight_, held_.size());
            return std::nullopt;
          }
          return Answer(c);
        });
  }

  // Acknowledges the oldest held StoreChunk (or fails it).
  void AnswerOneStore(Status st = Status::Ok()) {
    ASSERT_FALSE(held_.empty());
    OutCall c = held_.front();
    held_.erase(held_.begin());
    if (st.ok()) {
      held_by_[c.to.kind == Dest::kDc ? kDcReplica : c.to.id].insert(
          B(c.msg.store_chunk().chunk_id()));
      pb::Envelope r;
      r.mutable_empty();
      core_->OnCallDone(now_, c.token, r);
    } else {
      core_->OnCallDone(now_, c.token, st);
    }
    Drive();
  }

  Result<pb::Envelope> Answer(const OutCall& c) {
    pb::Envelope r;
    const pb::Envelope& m = c.msg;
    if (m.has_have_chunks()) {  // a replica POP's or the DC's stand-in's answer
      uint32_t replica = c.to.kind == Dest::kDc ? kDcReplica : c.to.id;
      have_asked_.insert(replica);
      if (!have_status_.ok()) return have_status_;
      auto* rep = r.mutable_have_chunks_reply();
      for (auto& id : m.have_chunks().chunk_ids())
        if (backup_has_.count(B(id)) || held_by_[replica].count(B(id))) rep->add_present(id);
      return r;
    }
    if (c.to.kind == Dest::kDc) {
      if (m.has_lookup_name()) {
        if (existing_oid_.empty()) return NotFound("no such name");
        oid_ = existing_oid_;
        r.mutable_claim_name_reply()->set_oid(Str(existing_oid_));
        return r;
      }
      if (m.has_claim_name()) {
        oid_ = B(m.claim_name().proposed_oid());
        r.mutable_claim_name_reply()->set_oid(m.claim_name().proposed_oid());
        r.mutable_claim_name_reply()->set_created(true);
        return r;
      }
      r.mutable_empty();
      return r;
    }
    if (c.to.kind == Dest::kPop) {
      if (m.has_acquire_lock()) {
        r.mutable_lock_grant()->set_lock_id(77);
        r.mutable_lock_grant()->set_token(5);
        return r;
      }
      if (m.has_commit_version()) {
        backup_commit_after_stores_ = stored_.size();
        backup_commit_held_ = held_.size();
        r.mutable_commit_reply()->set_version(m.commit_version().info().version());
        return r;
      }
      if (m.has_finalize_version()) finalized_commit_.push_back(m.finalize_version().commit());
      if (m.has_fetch_version()) return NotFound("nothing there");
      r.mutable_empty();
      return r;
    }
    if (m.has_get_inventory()) {
      r.mutable_gateway_inventory();
      return r;
    }
    r.mutable_empty();  // StoreFragment and the rest
    return r;
  }

  void Request(pb::Envelope e) {
    e.set_request_id(++request_id_);
    core_->OnRequest(now_, Peer{10, pb::ROLE_GATEWAY, kGw, "s"}, e);
    Drive();
  }

  // Acknowledges the oldest held StoreFragment.
  void AnswerOneFragment() {
    ASSERT_FALSE(held_frags_.empty());
    OutCall c = held_frags_.front();
    held_frags_.erase(held_frags_.begin());
    frag_bytes_to_[c.to.id] -= c.msg.store_fragment().fragment().size();
    pb::Envelope r;
    r.mutable_empty();
    core_->OnCallDone(now_, c.token, r);
    Drive();
  }

  void Upload(int chunks, size_t bytes = 2000) {
    for (int i = 0; i < chunks; i++) {
      pb::Envelope e;
      e.mutable_put_chunk()->set_subscriber("s");
      e.mutable_put_chunk()->set_chunk_id(Str(ChunkId(i)));
      e.mutable_put_chunk()->set_data(std::string(bytes, char('a' + i)));
      Request(e);
    }
  }

  // The DC's answer to LookupName from now on: an existing object with these
  // replica POPs.
  void NameExistsWithReplicas(uint32_t primary, uint32_t backup) {
    Oid o;
    o.primary_pop = primary;
    o.backup_pop = backup;
    o.gateway = 2001;
    o.counter = 1;
    existing_oid_ = o.Encode();
  }

  // The client's query before its upload; named: with the object's name key.
  void Announce(int chunks, bool named = true) {
    pb::Envelope e;
    e.mutable_have_chunks()->set_subscriber("s");
    if (named) e.mutable_have_chunks()->set_name_key(std::string(32, 'n'));
    for (int i = 0; i < chunks; i++) e.mutable_have_chunks()->add_chunk_ids(Str(ChunkId(i)));
    Request(e);
  }

  void Commit(int chunks) {
    pb::Envelope e;
    auto* c = e.mutable_put_commit();
    c->set_subscriber("s");
    c->set_name_key(std::string(32, 'n'));
    c->set_name_sealed("sealed");
    c->set_size_bytes(2000 * uint64_t(chunks));
    c->set_manifest_sealed("manifest");
    for (int i = 0; i < chunks; i++) c->add_chunk_ids(Str(ChunkId(i)));
    c->add_chunk_ids(Str(ChunkId(0)));  // a chunk repeated in the file: pushed once
    c->set_write_id("w1");
    Request(e);
    commit_rid_ = request_id_;
  }

  // Replies to the commit (put_reply or error).
  std::vector<const OutReply*> CommitReplies() const {
    std::vector<const OutReply*> out;
    for (auto& r : replies_)
      if (r.request_id == commit_rid_) out.push_back(&r);
    return out;
  }

  // Commits `chunks`, answers every StoreChunk it sends, and checks the
  // write succeeded.
  void CommitAndAnswer(int chunks) {
    Commit(chunks);
    while (!held_.empty()) AnswerOneStore();
    auto rs = CommitReplies();
    ASSERT_EQ(rs.size(), 1u);
    ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
  }

  size_t Sent(pb::Envelope::BodyCase type) const {
    return size_t(std::count(order_.begin(), order_.end(), int(type)));
  }

  ChunkState StateOf(int i) {
    auto ci = store_.GetChunkInfo(ChunkKey{"s", ChunkId(i)});
    EXPECT_TRUE(ci.ok()) << "chunk " << i;
    return ci.ok() ? ci->state : ChunkState::kCached;
  }

  // Restarts POP 1 on the same store (a crash: nothing in memory survives).
  void Restart() {
    core_ = std::make_unique<PopCore>(params_, &store_, 8);
    core_->OnClusterMap(now_, pop_test::MapOfUpPops(3, {1, 2}));
    for (uint32_t g = 1001; g <= 1003; g++)
      core_->OnGatewayUp(now_, GatewayState{g, "s", 1u << 30, true});
    Drive();
  }

  void Tick(uint64_t advance_ms) {
    now_ += advance_ms;
    core_->OnTick(now_);
    Drive();
  }

  uint64_t now_ = 1000;
  uint64_t request_id_ = 0, commit_rid_ = 0;
  PopParams params_;
  bool place_before_commit_ = true;
  uint64_t staged_keep_ms_ = 3600000;
  size_t staged_placements_max_ = 65536;
  bool hold_deletes_ = false;
  std::vector<OutCall> held_deletes_;
  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  Bytes oid_;
  std::vector<OutCall> held_;
  std::vector<Bytes> stored_;
  std::vector<int> order_;
  std::vector<OutReply> replies_;
  std::set<Bytes> backup_has_;
  std::map<uint32_t, std::set<Bytes>> held_by_;  // POP -> chunks it acknowledged
  uint64_t placement_budget_ = 8u << 20;
  bool hold_fragments_ = false;
  std::vector<OutCall> held_frags_;
  std::map<uint32_t, uint64_t> frag_bytes_to_;  // gateway -> held fragment bytes
  uint64_t max_frag_bytes_to_ = 0;
  Status have_status_;
  size_t max_in_flight_ = 0;
  size_t backup_commit_after_stores_ = SIZE_MAX, backup_commit_held_ = SIZE_MAX;
  std::vector<bool> finalized_commit_;
  Bytes existing_oid_;                 // the DC's answer to LookupName (empty: a new name)
  std::map<uint32_t, int> stored_to_;  // POP -> StoreChunks sent to it
  std::set<uint32_t> have_asked_;
  std::vector<std::pair<uint32_t, size_t>> commit_to_;  // (POP, StoreChunks held then)
};

TEST_F(PushWorld, WindowBoundsStoreChunksInFlightAndCommitWaitsForTheLastAck) {
  Start(/*window=*/3);
  Upload(10);
  Commit(10);
  // The window is full at once: 3 outstanding, not 1 (one at a time) and
  // not 10 (unbounded).
  EXPECT_EQ(held_.size(), 3u);
  EXPECT_EQ(backup_commit_after_stores_, SIZE_MAX) << "commit sent before the chunks";
  while (!held_.empty()) {
    AnswerOneStore();
    EXPECT_LE(held_.size(), 3u);
  }
  EXPECT_EQ(max_in_flight_, 3u);
  EXPECT_EQ(stored_.size(), 10u) << "a chunk pushed twice or left out (repeat in the version)";
  EXPECT_EQ(std::set<Bytes>(stored_.begin(), stored_.end()).size(), 10u);
  EXPECT_EQ(backup_commit_after_stores_, 10u);
  EXPECT_EQ(backup_commit_held_, 0u) << "backup asked to prepare with chunks unacknowledged";
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
  EXPECT_EQ(rs[0]->msg.put_reply().version(), 1u);
  EXPECT_EQ(store_.LatestVersion(oid_), 1u);
  EXPECT_EQ(core_->chunks_pushed_total(), 10u);
  EXPECT_EQ(core_->chunks_push_skipped_total(), 0u);
}

TEST_F(PushWorld, ChunksTheBackupHoldsAreNotSent) {
  Start(8);
  Upload(10);
  for (int i = 0; i < 10; i++)
    if (i != 4) backup_has_.insert(ChunkId(i));  // a delta write: one chunk changed
  Commit(10);
  ASSERT_EQ(held_.size(), 1u);
  EXPECT_EQ(stored_[0], ChunkId(4));
  AnswerOneStore();
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
  EXPECT_EQ(core_->chunks_pushed_total(), 1u);
  EXPECT_EQ(core_->chunks_push_skipped_total(), 9u);
  EXPECT_EQ(store_.LatestVersion(oid_), 1u);
}

TEST_F(PushWorld, RefusedQueryMeansEveryChunkIsSent) {
  Start(4);
  Upload(6);
  backup_has_.insert(ChunkId(1));
  have_status_ = Status(Code::kInvalidArgument, "unknown message");
  Commit(6);
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(stored_.size(), 6u);
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0]->msg.has_put_reply());
}

TEST_F(PushWorld, FailedStoreFailsTheWriteOnceAndLeavesNoVersion) {
  Start(4);
  Upload(8);
  Commit(8);
  ASSERT_EQ(held_.size(), 4u);
  AnswerOneStore(Unavailable("backup went away"));
  // The others in flight come back later: ignored, nothing more is sent.
  size_t sent = stored_.size();
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(stored_.size(), sent) << "kept pushing after the write failed";
  EXPECT_EQ(backup_commit_after_stores_, SIZE_MAX) << "backup asked to prepare";
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u) << "the write answered more than once";
  EXPECT_TRUE(rs[0]->msg.has_error());
  EXPECT_EQ(store_.LatestVersion(oid_), 0u);
  EXPECT_EQ(store_.PreparedVersion(oid_), 0u) << "a prepared version left behind";
}

// Written through a third region's POP: the chunks go to the primary and the
// backup at the same time, and the commit goes to the primary once both
// pushes are acknowledged (the primary's own push to the backup then finds
// them there).
TEST_F(PushWorld, EntryPopPushesToPrimaryAndBackupAtOnce) {
  NameExistsWithReplicas(2, 3);
  Start(2, {1, 2, 3});
  Upload(5);
  Commit(5);
  // Both destinations have their window full at once.
  EXPECT_EQ(held_.size(), 4u);
  EXPECT_EQ(stored_to_[2], 2);
  EXPECT_EQ(stored_to_[3], 2);
  EXPECT_TRUE(have_asked_.count(2) && have_asked_.count(3));
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(stored_to_[2], 5);
  EXPECT_EQ(stored_to_[3], 5);
  ASSERT_EQ(commit_to_.size(), 1u);
  EXPECT_EQ(commit_to_[0].first, 2u) << "commit not sent to the primary";
  EXPECT_EQ(commit_to_[0].second, 0u) << "commit sent with chunks unacknowledged";
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
}

// Forwarding during the upload: a new name, written through its primary.
// Each chunk goes on to the backup this POP will propose as soon as it is
// stored here; the commit's push then sends nothing, and the object's
// backup is the POP the chunks went to.
TEST_F(PushWorld, AnnouncedChunksGoToTheBackupAsTheyArriveAndTheCommitSendsNone) {
  Start(8, {1, 2, 3});
  Announce(5);
  EXPECT_TRUE(stored_.empty()) << "a chunk forwarded before it arrived";
  Upload(5);
  ASSERT_EQ(held_.size(), 5u) << "uploaded chunks not forwarded before the commit";
  const uint32_t backup = held_[0].to.id;
  EXPECT_NE(backup, 1u);
  for (auto& c : held_) EXPECT_EQ(c.to.id, backup) << "forwarded to two POPs";
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(core_->chunks_forwarded_total(), 5u);
  Commit(5);
  EXPECT_EQ(stored_.size(), 5u) << "the commit sent chunks the backup had";
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
  EXPECT_EQ(rs[0]->msg.put_reply().backup_pop(), backup) << "proposed another backup";
  EXPECT_EQ(rs[0]->msg.put_reply().primary_pop(), 1u);
  EXPECT_EQ(core_->chunks_pushed_total(), 0u);
  EXPECT_EQ(core_->chunks_push_skipped_total(), 5u);
  EXPECT_EQ(store_.LatestVersion(oid_), 1u);
  EXPECT_EQ(core_->forward_plans(), 0u);
}

// A commit arriving while forwards are in flight waits for them before it
// asks the backup what it holds: no chunk travels twice, and the backup is
// asked to prepare only once every chunk is acknowledged.
TEST_F(PushWorld, CommitWaitsForForwardsInFlightInsteadOfSendingThemAgain) {
  Start(8);
  Announce(4);
  Upload(4);
  ASSERT_EQ(held_.size(), 4u);
  Commit(4);
  EXPECT_EQ(held_.size(), 4u) << "the commit's push sent chunks being forwarded";
  EXPECT_FALSE(have_asked_.count(2)) << "asked the backup before the forwards arrived";
  EXPECT_EQ(backup_commit_after_stores_, SIZE_MAX);
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(stored_.size(), 4u);
  EXPECT_TRUE(have_asked_.count(2));
  EXPECT_EQ(backup_commit_held_, 0u);
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
  EXPECT_EQ(core_->chunks_pushed_total(), 0u);
}

// At most forward_chunks_in_flight_max forwards are outstanding; a failed
// one is counted and its chunk is sent by the commit's push.
TEST_F(PushWorld, ForwardsAreBoundedAndAFailedOneIsLeftToThePush) {
  Start(8, {1, 2}, /*forward_window=*/2);
  Announce(5);
  Upload(5);
  EXPECT_EQ(held_.size(), 2u);
  AnswerOneStore(Unavailable("link reset"));  // ChunkId(0)
  EXPECT_EQ(core_->chunk_forwards_failed_total(), 1u);
  while (!held_.empty()) {
    EXPECT_LE(held_.size(), 2u);
    AnswerOneStore();
  }
  EXPECT_EQ(max_in_flight_, 2u);
  EXPECT_EQ(core_->chunks_forwarded_total(), 4u);
  Commit(5);
  ASSERT_EQ(held_.size(), 1u);
  EXPECT_EQ(B(held_[0].msg.store_chunk().chunk_id()), ChunkId(0));
  AnswerOneStore();
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
  EXPECT_EQ(core_->chunks_pushed_total(), 1u);
}

// Without a name in the query (an older client, or a POP's own query)
// nothing is forwarded: the commit's push moves every chunk.
TEST_F(PushWorld, AnUnnamedQueryForwardsNothing) {
  Start(8);
  Announce(3, /*named=*/false);
  Upload(3);
  EXPECT_TRUE(stored_.empty());
  EXPECT_EQ(core_->forward_plans(), 0u);
  Commit(3);
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(core_->chunks_pushed_total(), 3u);
  EXPECT_EQ(core_->chunks_forwarded_total(), 0u);
}

// Plans are bounded: beyond forward_plan_entries_max a chunk is not planned
// (counted) and the commit's push sends it.
TEST_F(PushWorld, PlansBeyondTheirBoundAreLeftToThePush) {
  Start(8, {1, 2}, 8, /*forward_plans_max=*/2);
  Announce(5);
  EXPECT_EQ(core_->forward_plans(), 2u);
  EXPECT_EQ(core_->forward_plans_skipped_total(), 3u);
  Upload(5);
  EXPECT_EQ(held_.size(), 2u);
  while (!held_.empty()) AnswerOneStore();
  Commit(5);
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(core_->chunks_forwarded_total(), 2u);
  EXPECT_EQ(core_->chunks_pushed_total(), 3u);
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0]->msg.has_put_reply());
}

// An existing object written from a third region: the entry POP forwards to
// its primary and its backup, and the commit moves nothing more.
TEST_F(PushWorld, AThirdRegionForwardsToPrimaryAndBackup) {
  NameExistsWithReplicas(2, 3);
  Start(8, {1, 2, 3});
  Announce(3);
  Upload(3);
  EXPECT_EQ(stored_to_[2], 3);
  EXPECT_EQ(stored_to_[3], 3);
  while (!held_.empty()) AnswerOneStore();
  Commit(3);
  EXPECT_EQ(stored_to_[2], 3);
  EXPECT_EQ(stored_to_[3], 3);
  ASSERT_EQ(commit_to_.size(), 1u);
  EXPECT_EQ(commit_to_[0].first, 2u);
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
}

// With the object's primary down, the DC's stand-in is its acting backup:
// the chunks go on to it during the upload as to the acting primary, and
// the commit's push asks it what it holds instead of sending them again
// (it used to send the stand-in every chunk after the upload).
TEST_F(PushWorld, WithThePrimaryDownChunksGoToTheDcStandInDuringTheUpload) {
  NameExistsWithReplicas(2, 3);
  Start(8, {1, 3});  // POP 2, the primary, is down
  Announce(3);
  Upload(3);
  EXPECT_EQ(stored_to_[3], 3) << "not forwarded to the acting primary";
  EXPECT_EQ(stored_to_[kDcReplica], 3) << "not forwarded to the DC's stand-in";
  while (!held_.empty()) AnswerOneStore();
  Commit(3);
  EXPECT_TRUE(have_asked_.count(kDcReplica)) << "the push did not ask the stand-in";
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(stored_to_[kDcReplica], 3) << "the commit sent the stand-in chunks it had";
  EXPECT_EQ(stored_to_[3], 3);
  EXPECT_EQ(core_->chunks_pushed_total(), 0u);
  ASSERT_EQ(commit_to_.size(), 1u);
  EXPECT_EQ(commit_to_[0].first, 3u);
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
}

// An older DC refuses the stand-in query: the push sends every chunk.
TEST_F(PushWorld, ADcThatRefusesTheQueryIsSentEveryChunk) {
  NameExistsWithReplicas(2, 3);
  Start(8, {1, 3});
  have_status_ = Status(Code::kInvalidArgument, "the DC serves POPs");
  Upload(3);
  EXPECT_TRUE(stored_.empty()) << "forwarded without a named query";
  Commit(3);
  while (!held_.empty()) AnswerOneStore();
  EXPECT_EQ(stored_to_[kDcReplica], 3);
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
}

// Placement keeps at most placement_bytes_per_gateway_max of fragments
// unacknowledged per gateway (a gateway's link also carries its devices'
// answers), whatever placements_in_flight_max allows, and places every
// chunk in the end. k=1 m=1, three gateways, fragments of ~20 KB against a
// budget of 50 KB: two per gateway at most, so two or three chunks at a time.
TEST_F(PushWorld, PlacementKeepsEachGatewaysUnacknowledgedBytesUnderItsBudget) {
  placement_budget_ = 50000;
  hold_fragments_ = true;
  Start(8);
  Upload(8, 20000);
  Commit(8);
  while (!held_.empty()) AnswerOneStore();
  auto rs = CommitReplies();
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_TRUE(rs[0]->msg.has_put_reply()) << rs[0]->msg.error().message();
  core_->OnTick(now_);  // placement runs from the tick
  Drive();
  // 2 or 3 chunks, as the (random) picks fill the gateways; not all 8.
  EXPECT_GE(core_->placements_in_flight(), 2u);
  EXPECT_LE(core_->placements_in_flight(), 3u)
      << "placements_in_flight_max (16) not bounded by bytes";
  EXPECT_EQ(held_frags_.size(), 2 * core_->placements_in_flight());
  size_t answered = 0;
  while (!held_frags_.empty()) {
    for (uint32_t g = 1001; g <= 1003; g++) {
      EXPECT_LE(frag_bytes_to_[g], 50000u) << "gateway " << g;
      EXPECT_LE(core_->placement_bytes_to(g), 50000u) << "gateway " << g;
      EXPECT_EQ(core_->placement_bytes_to(g) > 0, frag_bytes_to_[g] > 0) << "gateway " << g;
    }
    AnswerOneFragment();
    answered++;
  }
  EXPECT_EQ(answered, 16u) << "every chunk's two fragments";
  EXPECT_GT(max_frag_bytes_to_, 20000u) << "never more than one fragment at a gateway";
  EXPECT_LE(max_frag_bytes_to_, 50000u);
  EXPECT_EQ(core_->placements_in_flight(), 0u);
  EXPECT_EQ(core_->placement_queue_size(), 0u);
  for (uint32_t g = 1001; g <= 1003; g++) EXPECT_EQ(core_->placement_bytes_to(g), 0u);
  for (int i = 0; i < 8; i++) {
    auto ci = store_.GetChunkInfo(ChunkKey{"s", ChunkId(i)});
    ASSERT_TRUE(ci.ok());
    EXPECT_EQ(ci->state, ChunkState::kPlaced) << "chunk " << i;
  }
}

// Placement before the commit: written through its primary, each announced
// chunk is placed on POP 1's gateways as it arrives (k=1 m=1: two
// fragments), staying staged; the commit marks them placed without placing
// them again.
TEST_F(PushWorld, AnnouncedChunksArePlacedAsTheyArriveAndNotAgainAtTheCommit) {
  Start(8);
  Announce(4);
  Upload(4);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 8u) << "not placed before the commit";
  EXPECT_EQ(core_->chunks_placed_before_commit_total(), 4u);
  EXPECT_EQ(core_->staged_chunks_placed(), 4u);
  for (int i = 0; i < 4; i++) {
    EXPECT_EQ(StateOf(i), ChunkState::kStaged) << "chunk " << i << " placed before its commit";
    EXPECT_EQ(store_.Fragments(ChunkKey{"s", ChunkId(i)}).size(), 2u) << "chunk " << i;
  }
  while (!held_.empty()) AnswerOneStore();  // the forwards to the backup
  ASSERT_NO_FATAL_FAILURE(CommitAndAnswer(4));
  Tick(1000);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 8u) << "placed again after the commit";
  for (int i = 0; i < 4; i++) EXPECT_EQ(StateOf(i), ChunkState::kPlaced) << "chunk " << i;
  EXPECT_EQ(core_->staged_chunks_placed(), 0u);
}

// place_before_commit false: nothing goes to the gateways before the commit.
TEST_F(PushWorld, WithoutPlacementBeforeTheCommitChunksWaitForIt) {
  place_before_commit_ = false;
  Start(8);
  Announce(4);
  Upload(4);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 0u);
  while (!held_.empty()) AnswerOneStore();
  ASSERT_NO_FATAL_FAILURE(CommitAndAnswer(4));
  Tick(1000);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 8u);
  for (int i = 0; i < 4; i++) EXPECT_EQ(StateOf(i), ChunkState::kPlaced) << "chunk " << i;
  EXPECT_EQ(core_->chunks_placed_before_commit_total(), 0u);
}

// A chunk another POP sends (it only sends to a replica) is placed on
// arrival; an unannounced upload by a client is not (this POP does not
// know it is a replica).
TEST_F(PushWorld, AChunkAnotherPopSendsIsPlacedOnArrival) {
  Start(8);
  Upload(1);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 0u) << "placed without knowing the object";
  pb::Envelope e;
  e.set_request_id(++request_id_);
  e.set_map_epoch(pop_test::MapOfUpPops(3, {1, 2}).epoch());
  e.mutable_store_chunk()->set_subscriber("s");
  e.mutable_store_chunk()->set_chunk_id(Str(ChunkId(7)));
  e.mutable_store_chunk()->set_data(std::string(3000, 'z'));
  core_->OnRequest(now_, Peer{11, pb::ROLE_POP, 2, ""}, e);
  Drive();
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 2u);
  EXPECT_EQ(StateOf(7), ChunkState::kStaged);
  EXPECT_EQ(store_.Fragments(ChunkKey{"s", ChunkId(7)}).size(), 2u);
}

// At most staged_placements_max chunks are placed ahead of their commit;
// the others are placed at the commit.
TEST_F(PushWorld, StagedPlacementsAreBounded) {
  staged_placements_max_ = 2;
  Start(8);
  Announce(5);
  Upload(5);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 4u);
  EXPECT_EQ(core_->staged_chunks_placed(), 2u);
  while (!held_.empty()) AnswerOneStore();
  ASSERT_NO_FATAL_FAILURE(CommitAndAnswer(5));
  Tick(1000);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 10u);
  for (int i = 0; i < 5; i++) EXPECT_EQ(StateOf(i), ChunkState::kPlaced) << "chunk " << i;
}

// A version that never commits: once staged_keep_ms has passed (and the
// upload's pins lapsed), the chunks' fragments are deleted from the
// gateways, and then the chunks themselves.
TEST_F(PushWorld, FragmentsOfChunksWhoseCommitNeverCameAreDeleted) {
  staged_keep_ms_ = 60000;
  Start(8);
  Announce(3);
  Upload(3);
  while (!held_.empty()) AnswerOneStore();
  ASSERT_EQ(Sent(pb::Envelope::kStoreFragment), 6u);
  Tick(30000);
  EXPECT_EQ(Sent(pb::Envelope::kDeleteFragments), 0u) << "deleted before their time";
  Tick(40000);
  EXPECT_EQ(Sent(pb::Envelope::kDeleteFragments), 0u) << "an upload's pin ignored";
  Tick(600000);  // upload_pin_ms lapsed
  EXPECT_GT(Sent(pb::Envelope::kDeleteFragments), 0u);
  EXPECT_EQ(core_->staged_fragments_swept_total(), 3u);
  EXPECT_EQ(core_->staged_chunks_dropped_total(), 3u);
  EXPECT_EQ(core_->staged_bytes_dropped_total(), 3 * 2000u);
  for (int i = 0; i < 3; i++) {
    ChunkKey key{"s", ChunkId(i)};
    EXPECT_TRUE(store_.Fragments(key).empty()) << "chunk " << i;
    EXPECT_FALSE(store_.GetChunkInfo(key).ok()) << "chunk " << i << " kept";
  }
  EXPECT_EQ(core_->staged_chunks_placed(), 0u);
  EXPECT_EQ(core_->staged_chunks_tracked(), 0u);
}

// The same for chunks never placed (an unnamed upload, or an entry POP
// that is no replica): the staged payload does not stay forever. A chunk
// uploaded again meanwhile is timed from its new arrival.
TEST_F(PushWorld, StagedChunksWhoseCommitNeverCameAreDeleted) {
  staged_keep_ms_ = 700000;
  Start(8);
  Upload(2);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 0u);
  EXPECT_EQ(core_->staged_chunks_tracked(), 2u);
  Tick(400000);
  Upload(1);  // chunk 0 again
  Tick(310000);  // chunk 1 due, chunk 0 not yet
  EXPECT_EQ(core_->staged_chunks_dropped_total(), 1u);
  EXPECT_TRUE(store_.GetChunkInfo(ChunkKey{"s", ChunkId(0)}).ok());
  EXPECT_FALSE(store_.GetChunkInfo(ChunkKey{"s", ChunkId(1)}).ok());
  EXPECT_EQ(Sent(pb::Envelope::kDeleteFragments), 0u) << "no fragments to delete";
  Tick(400000);
  EXPECT_EQ(core_->staged_chunks_dropped_total(), 2u);
  EXPECT_FALSE(store_.GetChunkInfo(ChunkKey{"s", ChunkId(0)}).ok());
  EXPECT_EQ(core_->staged_bytes_dropped_total(), 2 * 2000u);
}

// A staged chunk that a version record here names after all (its state
// change failed, on a failing disk) is not deleted: it becomes a replica
// chunk and is placed.
TEST_F(PushWorld, AStagedChunkAVersionNamesIsPlacedInsteadOfDeleted) {
  staged_keep_ms_ = 60000;
  Start(8);
  Upload(1);
  pb::VersionInfo v;
  Oid o;
  o.primary_pop = 1;
  o.backup_pop = 2;
  o.gateway = kGw;
  o.counter = 9;
  v.set_oid(Str(o.Encode()));
  v.set_version(1);
  v.set_subscriber("s");
  v.add_chunk_ids(Str(ChunkId(0)));
  ASSERT_TRUE(store_.PutVersion(v).ok());
  Tick(700000);
  EXPECT_EQ(core_->staged_chunks_dropped_total(), 0u);
  EXPECT_EQ(StateOf(0), ChunkState::kPlaced);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), 2u);
}

// A restart forgets when each staged chunk arrived: the store's staged
// chunks are due staged_keep_ms after it.
TEST_F(PushWorld, ARestartedPopStillDeletesFragmentsOfChunksNeverCommitted) {
  staged_keep_ms_ = 60000;
  Start(8);
  Announce(3);
  Upload(3);
  while (!held_.empty()) AnswerOneStore();
  Tick(30000);
  Restart();
  Tick(1000);  // reloads them, due from now
  EXPECT_EQ(core_->staged_chunks_tracked(), 3u);
  Tick(30000);
  EXPECT_EQ(Sent(pb::Envelope::kDeleteFragments), 0u) << "deleted before their time";
  Tick(31000);
  EXPECT_GT(Sent(pb::Envelope::kDeleteFragments), 0u);
  EXPECT_EQ(core_->staged_fragments_swept_total(), 3u);
  EXPECT_EQ(core_->staged_chunks_dropped_total(), 3u);
  for (int i = 0; i < 3; i++)
    EXPECT_FALSE(store_.GetChunkInfo(ChunkKey{"s", ChunkId(i)}).ok()) << "chunk " << i;
}

// A commit that arrives while a swept chunk's fragments are being deleted
// neither finds the chunk placed nor places it before the deletes are
// answered (a late delete would remove the new fragment); it is placed
// afresh afterwards.
TEST_F(PushWorld, ACommitDuringTheSweepPlacesTheChunkAfreshAfterTheDeletes) {
  staged_keep_ms_ = 60000;
  hold_deletes_ = true;
  Start(8);
  Announce(2);
  Upload(2);
  while (!held_.empty()) AnswerOneStore();
  Tick(700000);
  ASSERT_FALSE(held_deletes_.empty());
  size_t placed_before = Sent(pb::Envelope::kStoreFragment);
  ASSERT_NO_FATAL_FAILURE(CommitAndAnswer(2));
  Tick(1000);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), placed_before) << "placed during the deletes";
  for (int i = 0; i < 2; i++) EXPECT_EQ(StateOf(i), ChunkState::kReplica) << "chunk " << i;
  hold_deletes_ = false;
  while (!held_deletes_.empty()) {
    OutCall c = held_deletes_.front();
    held_deletes_.erase(held_deletes_.begin());
    pb::Envelope r;
    r.mutable_empty();
    core_->OnCallDone(now_, c.token, r);
    Drive();
  }
  Tick(1000);
  EXPECT_EQ(Sent(pb::Envelope::kStoreFragment), placed_before + 4);
  for (int i = 0; i < 2; i++) {
    EXPECT_EQ(StateOf(i), ChunkState::kPlaced) << "chunk " << i;
    EXPECT_EQ(store_.Fragments(ChunkKey{"s", ChunkId(i)}).size(), 2u) << "chunk " << i;
  }
}

}  // namespace
}  // namespace mistore
