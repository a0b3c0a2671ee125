// Inherited leases (paper, section VII; design §3/§5): PopCores of an
// object's primary (POP 1), backup (POP 2) and the DC's stand-in replica
// (POP 0), wired by hand, with "POP 3" as the entry POP of a writer. The
// backup learns the primary's grants and releases; when it takes over it
// starts their leases (a full lease from the takeover), so a holder can
// renew and commit through it; a lease that lapses there cannot commit;
// fencing tokens only grow across takeover and give-back.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/core/oid.h"
#include "shared/wire/envelope.h"

namespace mistore {
namespace {

constexpr uint64_t kLeaseMs = 5000;
constexpr uint64_t kEntryConn = 9000;  // requests from the entry POP (POP 3)

class LockTakeover : public ::testing::Test {
 protected:
  void SetUp() override {
    for (uint32_t id : {0u, 1u, 2u}) {
      stores_[id] = std::make_unique<MemPopStore>();
      Start(id);
    }
    SetMap(5, {1, 2, 3});
    Oid o{1, 2, 7, 1};
    oid_ = o.Encode();
  }

  void Start(uint32_t id) {
    PopParams p;
    p.pop_id = id;
    p.region = id == 0 ? "dc" : "r" + std::to_string(id);
    p.lease_ms = kLeaseMs;
    p.place_fragments = id != 0;
    p.cache_bytes_max = id == 0 ? UINT64_MAX : p.cache_bytes_max;
    // A new seed per start, as the daemons draw one: lock ids of a
    // restarted POP start at a new random base.
    cores_[id] = std::make_unique<PopCore>(p, stores_[id].get(), 100 + id + 10 * starts_++);
    if (map_.epoch()) {
      cores_[id]->OnClusterMap(now_, map_);
      Pump();
    }
  }
  void Crash(uint32_t id) { cores_.erase(id); }

  // The DC publishes a map with `up` up; every live core gets it at once,
  // except `hung` (a POP that is stopped, or cut off from the DC).
  void SetMap(uint64_t epoch, std::vector<uint32_t> up, uint32_t hung = UINT32_MAX) {
    map_.Clear();
    map_.set_epoch(epoch);
    for (uint32_t id : {1u, 2u, 3u}) {
      auto* pi = map_.add_pops();
      pi->set_pop_id(id);
      pi->set_region("r" + std::to_string(id));
      pi->set_up(std::find(up.begin(), up.end(), id) != up.end());
    }
    for (auto& [id, core] : cores_)
      if (id != hung) core->OnClusterMap(now_, map_);
    Pump();
  }

  // Delivers every call and reply until nothing moves (FIFO, no delay).
  void Pump() {
    for (bool moved = true; moved;) {
      moved = false;
      for (auto& [id, core] : cores_) {
        Outbox out = core->TakeOutbox();
        if (out.empty()) continue;
        moved = true;
        for (auto& r : out.replies) Answer(id, r);
        for (auto& c : out.calls) queue_.push_back({id, std::move(c)});
      }
      while (!queue_.empty()) {
        moved = true;
        auto [from, call] = std::move(queue_.front());
        queue_.pop_front();
        Deliver(from, call);
      }
    }
  }

  void Deliver(uint32_t from, const OutCall& call) {
    uint32_t to = call.to.id;
    if (call.to.kind == Dest::kDc) {
      switch (call.msg.body_case()) {
        case pb::Envelope::kStoreChunk:
        case pb::Envelope::kCommitVersion:
        case pb::Envelope::kFinalizeVersion:
        case pb::Envelope::kFetchVersion:
        case pb::Envelope::kFetchChunk:
        case pb::Envelope::kLockSync:
        case pb::Envelope::kFetchLocks:
          to = kDcReplica;
          break;
        default: {  // the catalog: reports are taken, the map is served
          pb::Envelope r;
          if (call.msg.has_get_cluster_map()) *r.mutable_cluster_map() = map_;
          else r.mutable_empty();
          return Done(from, call.token, r);
        }
      }
    } else if (call.to.kind == Dest::kGateway) {
      return Done(from, call.token, Unavailable("no gateways here"));
    }
    if (!cores_.count(to)) return Done(from, call.token, Unavailable("pop down"));
    uint64_t rid = next_rid_++;
    pending_[{to, rid}] = {from, call.token};
    if (call.msg.has_fetch_locks()) fetch_locks_calls_.insert({to, rid});
    pb::Envelope env = call.msg;
    env.set_request_id(rid);
    cores_[to]->OnRequest(now_, Peer{1000 + from, pb::ROLE_POP, from, ""}, env);
  }

  void Answer(uint32_t at, const OutReply& r) {
    if (r.conn_id == kEntryConn) {
      entry_answers_[r.request_id] = r.msg;
      return;
    }
    auto it = pending_.find({at, r.request_id});
    ASSERT_NE(it, pending_.end());
    auto [caller, token] = it->second;
    pending_.erase(it);
    if (hold_fetch_locks_replies_ && fetch_locks_calls_.count({at, r.request_id})) {
      held_.push_back({caller, token, r.msg});  // delayed: delivered by DeliverHeld()
      return;
    }
    Done(caller, token, r.msg);
  }

  void Done(uint32_t caller, Token token, Result<pb::Envelope> r) {
    if (!cores_.count(caller)) return;  // it crashed meanwhile
    cores_[caller]->OnCallDone(now_, token, std::move(r));
  }

  // A request from the entry POP (POP 3) to `to`, answered after Pump().
  pb::Envelope Ask(uint32_t to, pb::Envelope req) {
    uint64_t rid = next_rid_++;
    req.set_request_id(rid);
    req.set_map_epoch(map_.epoch());
    cores_.at(to)->OnRequest(now_, Peer{kEntryConn, pb::ROLE_POP, 3, ""}, req);
    Pump();
    auto it = entry_answers_.find(rid);
    if (it == entry_answers_.end()) return pb::Envelope();  // still waiting
    return it->second;
  }

  uint64_t CommittedVersion(uint32_t at, const pb::LockGrantMsg& g, const std::string& write_id) {
    auto v = Commit(at, g, write_id);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v.value() : 0;
  }

  // FetchVersion 0 at `at`: the version, or the error.
  Result<uint64_t> LatestOrStatus(uint32_t at) {
    pb::Envelope e;
    e.mutable_fetch_version()->set_oid(std::string(oid_.begin(), oid_.end()));
    pb::Envelope r = Ask(at, e);
    if (!r.has_version_info()) return ResponseStatus(r);
    return r.version_info().version();
  }

  // The latest version `at` serves (FetchVersion 0), 0 on an error.
  uint64_t Latest(uint32_t at) {
    pb::Envelope e;
    e.mutable_fetch_version()->set_oid(std::string(oid_.begin(), oid_.end()));
    pb::Envelope r = Ask(at, e);
    if (!r.has_version_info()) ADD_FAILURE() << "no version: " << ResponseStatus(r).ToString();
    return r.has_version_info() ? r.version_info().version() : 0;
  }

  pb::LockGrantMsg AcquireWrite(uint32_t at) {
    pb::Envelope e;
    e.mutable_acquire_lock()->set_oid(std::string(oid_.begin(), oid_.end()));
    e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
    e.mutable_acquire_lock()->set_lease_ms(kLeaseMs);
    pb::Envelope r = Ask(at, e);
    EXPECT_TRUE(r.has_lock_grant()) << "no grant: " << r.ShortDebugString();
    return r.lock_grant();
  }

  Status Renew(uint32_t at, uint64_t lock_id) {
    pb::Envelope e;
    e.mutable_renew_lock()->set_oid(std::string(oid_.begin(), oid_.end()));
    e.mutable_renew_lock()->set_lock_id(lock_id);
    e.mutable_renew_lock()->set_lease_ms(kLeaseMs);
    return ResponseStatus(Ask(at, e));
  }

  void Release(uint32_t at, uint64_t lock_id) {
    pb::Envelope e;
    e.mutable_release_lock()->set_oid(std::string(oid_.begin(), oid_.end()));
    e.mutable_release_lock()->set_lock_id(lock_id);
    ASSERT_TRUE(ResponseStatus(Ask(at, e)).ok());
  }

  // CommitVersion of a chunkless version under the lock, at `at`.
  Result<uint64_t> Commit(uint32_t at, const pb::LockGrantMsg& g, const std::string& write_id) {
    pb::Envelope e;
    auto* cv = e.mutable_commit_version();
    auto* info = cv->mutable_info();
    info->set_oid(std::string(oid_.begin(), oid_.end()));
    info->set_subscriber("alice");
    info->set_name_key(std::string(32, 'n'));
    info->set_write_id(write_id);
    cv->set_lock_id(g.lock_id());
    cv->set_token(g.token());
    pb::Envelope r = Ask(at, e);
    Status st = ResponseStatus(r);
    if (!st.ok()) return st;
    if (!r.has_commit_reply()) return Internal("no answer");
    return r.commit_reply().version();
  }

  // Replies to FetchLocks held back, to cross them with other messages (the
  // daemons carry them on another connection than releases).
  void DeliverHeld() {
    hold_fetch_locks_replies_ = false;
    auto held = std::move(held_);
    held_.clear();
    for (auto& h : held) Done(h.caller, h.token, h.msg);
    Pump();
  }
  struct HeldReply {
    uint32_t caller;
    Token token;
    pb::Envelope msg;
  };
  bool hold_fetch_locks_replies_ = false;
  std::set<std::pair<uint32_t, uint64_t>> fetch_locks_calls_;
  std::vector<HeldReply> held_;

  uint64_t now_ = 1000;
  uint64_t starts_ = 0;
  std::map<uint32_t, std::unique_ptr<MemPopStore>> stores_;
  std::map<uint32_t, std::unique_ptr<PopCore>> cores_;
  pb::ClusterMap map_;
  Bytes oid_;
  uint64_t next_rid_ = 1;
  std::deque<std::pair<uint32_t, OutCall>> queue_;
  std::map<std::pair<uint32_t, uint64_t>, std::pair<uint32_t, Token>> pending_;
  std::map<uint64_t, pb::Envelope> entry_answers_;
};

TEST_F(LockTakeover, BackupKeepsADormantCopyOfThePrimarysGrant) {
  pb::LockGrantMsg g = AcquireWrite(1);
  ASSERT_NE(g.lock_id(), 0u);
  EXPECT_EQ(cores_[2]->locks().held(oid_), 1u) << "the backup did not learn the grant";
  EXPECT_TRUE(cores_[2]->locks().ActiveLocks().empty()) << "a lease ticks on the backup";
  EXPECT_FALSE(Renew(2, g.lock_id()).ok()) << "the backup renewed a lock it only keeps a copy of";
  Release(1, g.lock_id());
  EXPECT_EQ(cores_[2]->locks().held(oid_), 0u) << "the backup did not learn the release";
}

TEST_F(LockTakeover, HolderRenewsAndCommitsThroughTheNewPrimaryWithinItsLease) {
  pb::LockGrantMsg g = AcquireWrite(1);
  now_ = 4000;  // the lease at the primary ends at 6000
  Crash(1);
  SetMap(6, {2, 3});  // the backup takes over; the DC stands in as backup
  EXPECT_EQ(cores_[2]->locks_inherited_total(), 1u);
  ASSERT_EQ(cores_[2]->locks().ActiveLocks().size(), 1u);
  EXPECT_EQ(cores_[2]->locks().ActiveLocks()[0].expires_ms, 4000 + kLeaseMs)
      << "the inherited lease must run a full lease from the takeover";
  now_ = 8500;  // past the old primary's lease end, within the new one
  auto v = Commit(2, g, "w1");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v.value(), 1u);
  EXPECT_EQ(stores_[0]->LatestVersion(oid_), 1u) << "the DC standing in does not hold the version";
  // It renews there too, and commits again after the inherited lease's end.
  ASSERT_TRUE(Renew(2, g.lock_id()).ok());
  now_ = 10000;
  auto v2 = Commit(2, g, "w2");
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(v2.value(), 2u);
}

TEST_F(LockTakeover, HolderWhoseLeaseLapsedAtTheNewPrimaryCannotCommit) {
  pb::LockGrantMsg g = AcquireWrite(1);
  now_ = 4000;
  Crash(1);
  SetMap(6, {2, 3});
  now_ = 4000 + kLeaseMs;  // the inherited lease runs out, not renewed
  auto v = Commit(2, g, "w1");
  ASSERT_FALSE(v.ok()) << "committed under a lapsed lease";
  EXPECT_EQ(v.status().code(), Code::kAborted);
  EXPECT_EQ(stores_[2]->LatestVersion(oid_), 0u);
  EXPECT_EQ(stores_[0]->LatestVersion(oid_), 0u);
  // And the object is free for the next writer.
  cores_[2]->OnTick(now_);
  Pump();
  pb::LockGrantMsg g2 = AcquireWrite(2);
  EXPECT_GT(g2.token(), g.token());
}

TEST_F(LockTakeover, FencingTokensGrowAcrossTakeoverAndGiveBack) {
  std::vector<uint64_t> tokens;
  pb::LockGrantMsg g1 = AcquireWrite(1);
  tokens.push_back(g1.token());
  Release(1, g1.lock_id());
  pb::LockGrantMsg g2 = AcquireWrite(1);
  tokens.push_back(g2.token());
  now_ = 3000;
  Crash(1);
  SetMap(6, {2, 3});  // takeover: g2 inherited by POP 2
  Release(2, g2.lock_id());
  pb::LockGrantMsg g3 = AcquireWrite(2);  // granted by the stand-in primary
  tokens.push_back(g3.token());
  now_ = 5000;
  Start(1);  // restarts with its disk, an empty lock table
  SetMap(7, {1, 2, 3});  // gives the role back to POP 1
  EXPECT_TRUE(cores_[2]->locks().ActiveLocks().empty()) << "the old stand-in still runs leases";
  // POP 1 inherits g3 from POP 2 as it catches up: its holder commits there.
  auto v = Commit(1, g3, "w3");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v.value(), 1u);
  EXPECT_EQ(cores_[1]->locks_inherited_total(), 1u);
  // A writer queued behind g3 gets a newer token once g3 is released.
  pb::Envelope e;
  e.mutable_acquire_lock()->set_oid(std::string(oid_.begin(), oid_.end()));
  e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
  e.mutable_acquire_lock()->set_lease_ms(kLeaseMs);
  pb::Envelope early = Ask(1, e);
  EXPECT_FALSE(early.has_lock_grant()) << "granted while the inherited g3 is held";
  EXPECT_FALSE(early.has_error()) << early.ShortDebugString();
  Release(1, g3.lock_id());
  pb::LockGrantMsg g4;
  for (auto& [rid, r] : entry_answers_)
    if (r.has_lock_grant() && r.lock_grant().lock_id() != g1.lock_id() &&
        r.lock_grant().lock_id() != g2.lock_id() && r.lock_grant().lock_id() != g3.lock_id())
      g4 = r.lock_grant();
  ASSERT_NE(g4.lock_id(), 0u) << "the queued writer was not granted";
  tokens.push_back(g4.token());
  for (size_t i = 1; i < tokens.size(); i++)
    EXPECT_GT(tokens[i], tokens[i - 1]) << "token " << i << " did not grow";
  EXPECT_FALSE(Commit(1, g3, "w4").ok()) << "a released lock committed";
}

// Regression (session 5, found by stopping a primary with SIGSTOP in a real
// lab): a POP that was marked down and up again while it hung never saw the
// map marking it down, kept "caught up" flags from before, and served
// version 1 as the latest after its backup had committed version 2. A gap in
// epochs now makes it re-sync before serving.
TEST_F(LockTakeover, APrimaryThatMissedItsDownMapCatchesUpBeforeServing) {
  pb::LockGrantMsg g = AcquireWrite(1);
  ASSERT_EQ(CommittedVersion(1, g, "w1"), 1u);
  Release(1, g.lock_id());
  ASSERT_EQ(Latest(1), 1u);
  now_ = 3000;
  SetMap(6, {2, 3}, /*hung=*/1);  // POP 1 hangs; its backup takes over
  pb::LockGrantMsg g2 = AcquireWrite(2);
  ASSERT_EQ(CommittedVersion(2, g2, "w2"), 2u);
  Release(2, g2.lock_id());
  now_ = 5000;
  SetMap(7, {1, 2, 3});  // POP 1 runs again: it sees epoch 7 after 5
  EXPECT_EQ(Latest(1), 2u) << "the returning primary served a stale latest version";
}

// The same hang seen from inside: POP 1 hears nothing from the DC for longer
// than its map lease (the DC marks a POP down only after a longer silence),
// so it no longer trusts its map and re-syncs before serving — before any
// new map reaches it.
TEST_F(LockTakeover, APrimaryWithoutDcContactForItsMapLeaseReSyncsBeforeServing) {
  PopParams p;
  p.pop_id = 1;
  p.region = "r1";
  p.lease_ms = kLeaseMs;
  p.map_lease_ms = 1500;
  cores_[1] = std::make_unique<PopCore>(p, stores_[1].get(), 77);
  cores_[1]->OnDcContact(now_);
  cores_[1]->OnClusterMap(now_, map_);
  Pump();
  pb::LockGrantMsg g = AcquireWrite(1);
  ASSERT_EQ(CommittedVersion(1, g, "w1"), 1u);
  Release(1, g.lock_id());
  ASSERT_EQ(Latest(1), 1u);
  now_ = 2000;  // within the map lease: still trusted
  cores_[1]->OnDcContact(now_);
  SetMap(6, {2, 3}, /*hung=*/1);
  pb::LockGrantMsg g2 = AcquireWrite(2);
  ASSERT_EQ(CommittedVersion(2, g2, "w2"), 2u);
  Release(2, g2.lock_id());
  now_ = 2000 + 1500 + 1;  // POP 1 resumes: no DC reply for longer than its lease
  // It asks POP 2 first; POP 2, at epoch 6, refuses its epoch-5 lock fetch,
  // so POP 1 answers "unavailable" — never the stale version 1.
  EXPECT_EQ(LatestOrStatus(1).status().code(), Code::kUnavailable)
      << "served with an expired map without checking the other replica";
  // The DC answers again, with the current map: it catches up and serves 2.
  cores_[1]->OnDcContact(now_);
  SetMap(7, {1, 2, 3});
  EXPECT_EQ(Latest(1), 2u) << "did not catch up from the other replica";
}

// Bug 11: a primary cut off from the DC keeps no lock valid past its last
// DC contact + map_lease_ms (the DC fails it over only after the longer
// pop_silence_ms): grants are cut to that and say so, and after it nothing is
// granted, renewed or committed until the DC answers again.
TEST_F(LockTakeover, APrimaryGrantsNoLeaseBeyondItsMapLease) {
  PopParams p;
  p.pop_id = 1;
  p.region = "r1";
  p.lease_ms = kLeaseMs;
  p.map_lease_ms = 1500;
  cores_[1] = std::make_unique<PopCore>(p, stores_[1].get(), 77);
  now_ = 100;
  cores_[1]->OnDcContact(now_);
  cores_[1]->OnClusterMap(now_, map_);
  Pump();
  pb::LockGrantMsg g = AcquireWrite(1);  // asks for kLeaseMs (5000)
  EXPECT_EQ(g.lease_ms(), 1500u) << "the grant does not tell the lease it really got";
  now_ = 1000;
  ASSERT_EQ(CommittedVersion(1, g, "w1"), 1u);
  Release(1, g.lock_id());
  pb::LockGrantMsg g2 = AcquireWrite(1);
  EXPECT_EQ(g2.lease_ms(), 600u);
  ASSERT_TRUE(Renew(1, g2.lock_id()).ok());
  // No DC contact since 100: at 1600 the map lease is over.
  now_ = 1600;
  EXPECT_FALSE(Renew(1, g2.lock_id()).ok()) << "renewed past the map lease";
  EXPECT_FALSE(Commit(1, g2, "w2").ok()) << "committed under a lock past the map lease";
  pb::Envelope e;
  e.mutable_acquire_lock()->set_oid(std::string(oid_.begin(), oid_.end()));
  e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
  e.mutable_acquire_lock()->set_lease_ms(kLeaseMs);
  EXPECT_FALSE(Ask(1, e).has_lock_grant()) << "granted a lock past the map lease";
  for (auto& l : cores_[1]->locks().ActiveLocks())
    EXPECT_LE(l.expires_ms, 1600u) << "a lease runs past the map lease";
  // The DC answers again: locks are granted, up to the new map lease's end.
  now_ = 1700;
  cores_[1]->OnDcContact(now_);
  SetMap(6, {1, 2, 3});
  cores_[1]->OnTick(now_);  // drops g2, whose lease ended at 1600
  Pump();
  pb::LockGrantMsg g3 = AcquireWrite(1);
  EXPECT_EQ(g3.lease_ms(), 1500u);
  EXPECT_EQ(CommittedVersion(1, g3, "w3"), 2u);
}

TEST_F(LockTakeover, AGrantTheBackupNeverHeardOfCannotCommitThere) {
  pb::LockGrantMsg g = AcquireWrite(1);
  // The backup's copy is lost (as if the LockSync never arrived).
  Crash(2);
  Start(2);
  Pump();
  EXPECT_EQ(cores_[2]->locks().held(oid_), 0u);
  now_ = 2000;
  Crash(1);
  SetMap(6, {2, 3});
  auto v = Commit(2, g, "w1");
  EXPECT_FALSE(v.ok()) << "a lock unknown to the new primary committed";
  pb::LockGrantMsg g2 = AcquireWrite(2);
  EXPECT_GT(g2.token(), g.token()) << "the new primary reused a token of the old one";
}

// The lock g3, granted by the stand-in primary (POP 2), is held when POP 1
// returns and, while catching up, fetches POP 2's locks. Sets up the
// return and leaves POP 1's FetchLocks reply (holding g3) in flight, with
// a write-lock request waiting at POP 1 for the catch-up. Returns g3.
class LockSyncCrossing : public LockTakeover {
 protected:
  pb::LockGrantMsg ReturnWithFetchInFlight() {
    now_ = 3000;
    Crash(1);
    SetMap(6, {2, 3});
    pb::LockGrantMsg g3 = AcquireWrite(2);  // granted by the stand-in primary
    now_ = 5000;
    Start(1);
    hold_fetch_locks_replies_ = true;
    SetMap(7, {1, 2, 3});  // gives the role back to POP 1
    pb::Envelope e;
    e.mutable_acquire_lock()->set_oid(std::string(oid_.begin(), oid_.end()));
    e.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
    e.mutable_acquire_lock()->set_lease_ms(kLeaseMs);
    waiting_rid_ = next_rid_;
    EXPECT_FALSE(Ask(1, e).has_lock_grant()) << "granted before catching up";
    EXPECT_EQ(held_.size(), 1u) << "POP 1 did not fetch the locks of the object";
    return g3;
  }
  // The waiting request's answer (empty while it still waits).
  pb::Envelope WaitingAnswer() { return entry_answers_[waiting_rid_]; }
  uint64_t waiting_rid_ = 0;
};

// Regression (the gap documented in session 3): the release of g3 reaches
// the returning primary before the reply to its FetchLocks (which still
// holds g3). Before the fix the reply resurrected g3 and blocked the object
// for a whole lease.
TEST_F(LockSyncCrossing, AReleaseBeforeTheFetchReplyIsNotUndoneByIt) {
  pb::LockGrantMsg g3 = ReturnWithFetchInFlight();
  Release(1, g3.lock_id());  // unknown at POP 1 yet
  DeliverHeld();
  EXPECT_EQ(cores_[1]->locks().held(oid_), 1u) << "expected only the waiting writer's lock";
  pb::Envelope r = WaitingAnswer();
  ASSERT_TRUE(r.has_lock_grant()) << "the waiting writer is blocked by a released lock: "
                                  << r.ShortDebugString();
  EXPECT_GT(r.lock_grant().token(), g3.token());
  EXPECT_FALSE(Commit(1, g3, "w3").ok()) << "a released lock committed";
}

// The same release sent to the old stand-in (an entry POP still on the old
// map) after it answered the FetchLocks: it forwards the release to the
// acting primary, whichever of the two messages arrives first there.
TEST_F(LockSyncCrossing, AReleaseAtTheOldStandInReachesTheNewPrimary) {
  pb::LockGrantMsg g3 = ReturnWithFetchInFlight();
  Release(2, g3.lock_id());  // forwarded to POP 1 before the held reply
  DeliverHeld();
  ASSERT_TRUE(WaitingAnswer().has_lock_grant()) << WaitingAnswer().ShortDebugString();
}

TEST_F(LockSyncCrossing, AReleaseAtTheOldStandInAfterTheFetchReplyReachesTheNewPrimary) {
  pb::LockGrantMsg g3 = ReturnWithFetchInFlight();
  DeliverHeld();
  EXPECT_FALSE(WaitingAnswer().has_lock_grant()) << "granted while g3 is held";
  Release(2, g3.lock_id());
  pb::Envelope r = WaitingAnswer();
  ASSERT_TRUE(r.has_lock_grant()) << r.ShortDebugString();
  EXPECT_EQ(cores_[2]->locks().held(oid_), 1u) << "the backup did not learn the new grant";
}

}  // namespace
}  // namespace mistore
