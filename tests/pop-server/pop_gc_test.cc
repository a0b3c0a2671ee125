// PopCore's garbage collection and cold tier (pop-server/pop_gc.cc, issue 7):
// which versions and chunks a GC task drops, what it keeps (still named by a
// version here, pinned by an upload, fragments on a gateway that is away),
// that fragments are deleted on their gateways before the chunk record goes,
// that the DC hears of it only when done, and that an unread object goes
// cold and comes back warm. Driven with a fake clock through the outbox.
#include <gtest/gtest.h>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"

namespace mistore {
namespace {

Bytes Id(char c) { return Bytes(32, uint8_t(c)); }
std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }

class PopGcTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kPop = 1, kOther = 2;
  const std::string sub_ = "alice";

  void SetUp() override {
    Bytes o = Oid{kPop, kOther, 11, 1}.Encode();
    oid_ = S(o);
    Bytes p = Oid{kPop, kOther, 11, 2}.Encode();
    other_oid_ = S(p);
    // Object 1: v1 {a, b}, v2 {b, c}; object 2: v1 {x}. Everything placed
    // on gateways 11, 12, 13 (k=2, m=1).
    for (char c : {'a', 'b', 'c', 'x'}) {
      ChunkKey key{sub_, Id(c)};
      ASSERT_TRUE(store_.PutChunk(key, Bytes(1000, uint8_t(c)), ChunkState::kReplica).ok());
      ASSERT_TRUE(store_.SetChunkState(key, ChunkState::kPlaced).ok());
      for (uint32_t i = 0; i < 3; i++) ASSERT_TRUE(store_.RecordFragment(key, i, 11 + i).ok());
    }
    ASSERT_TRUE(store_.PutVersion(Version(oid_, 1, {'a', 'b'})).ok());
    ASSERT_TRUE(store_.PutVersion(Version(oid_, 2, {'b', 'c'})).ok());
    ASSERT_TRUE(store_.PutVersion(Version(other_oid_, 1, {'x'})).ok());
  }

  pb::VersionInfo Version(const std::string& oid, uint64_t v, std::vector<char> chunks) {
    pb::VersionInfo info;
    info.set_oid(oid);
    info.set_version(v);
    info.set_subscriber(sub_);
    for (char c : chunks) info.add_chunk_ids(S(Id(c)));
    return info;
  }

  static PopParams GcParams() {
    PopParams p;
    p.gc_poll_ms = 1000;  // off by default (the simulator); the daemon's knob sets it
    return p;
  }

  void Start(PopParams p) {
    p.pop_id = kPop;
    p.k = 2;
    p.m = 1;
    core_ = std::make_unique<PopCore>(p, &store_, 7);
    pb::ClusterMap map;
    map.set_epoch(3);
    for (uint32_t id : {kPop, kOther}) {
      auto* e = map.add_pops();
      e->set_pop_id(id);
      e->set_up(true);
    }
    core_->OnClusterMap(now_, map);
    for (uint32_t g : {11u, 12u, 13u}) core_->OnGatewayUp(now_, GatewayState{g, sub_, 1 << 30, true});
    Drain();
  }

  // Collects the outbox; answers nothing.
  void Drain() {
    Outbox out = core_->TakeOutbox();
    for (auto& c : out.calls) calls_.push_back(std::move(c));
    for (auto& r : out.replies) replies_.push_back(std::move(r));
    for (auto& j : out.jobs) {
      j.run();
      core_->OnJobDone(now_, j.token);
      Drain();
    }
  }

  // The first outstanding call with this body, removed from the list.
  std::optional<OutCall> Take(pb::Envelope::BodyCase body) {
    for (auto it = calls_.begin(); it != calls_.end(); ++it) {
      if (it->msg.body_case() != body) continue;
      OutCall c = std::move(*it);
      calls_.erase(it);
      return c;
    }
    return std::nullopt;
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

  pb::GcTask Task(uint64_t id, std::vector<uint64_t> versions, std::vector<char> chunks) {
    pb::GcTask t;
    t.set_task_id(id);
    t.set_oid(oid_);
    t.set_subscriber(sub_);
    for (auto v : versions) t.add_versions(v);
    for (char c : chunks) t.add_chunk_ids(S(Id(c)));
    return t;
  }

  // Ticks until the POP polls, and answers the poll with these tasks.
  void Poll(std::vector<pb::GcTask> tasks) {
    now_ += 6000;
    core_->OnTick(now_);
    Drain();
    auto fetch = Take(pb::Envelope::kGcFetch);
    ASSERT_TRUE(fetch.has_value()) << "the POP did not ask the DC for GC work";
    EXPECT_EQ(fetch->to.kind, Dest::kDc);
    pb::Envelope work;
    auto* w = work.mutable_gc_work();
    for (auto& t : tasks) *w->add_tasks() = t;
    Answer(*fetch, work);
  }

  // Acknowledges every DeleteFragments call; returns the fragments named.
  size_t AckDeletes() {
    size_t n = 0;
    while (auto d = Take(pb::Envelope::kDeleteFragments)) {
      EXPECT_EQ(d->to.kind, Dest::kGateway);
      n += size_t(d->msg.delete_fragments().fragments_size());
      for (auto& f : d->msg.delete_fragments().fragments())
        deleted_.insert(f.chunk_id().substr(0, 1) + std::to_string(d->to.id));
      Answer(*d, Empty());
    }
    return n;
  }

  bool Has(char c) { return store_.GetChunkInfo(ChunkKey{sub_, Id(c)}).ok(); }

  uint64_t now_ = 1000;
  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  std::vector<OutCall> calls_;
  std::vector<OutReply> replies_;
  std::set<std::string> deleted_;  // first byte of chunk id + gateway id
  std::string oid_, other_oid_;
};

TEST_F(PopGcTest, DropsCollectedVersionsAndUnreferencedChunksOnly) {
  Start(GcParams());
  // The DC says a, b and x are free; b is still in v2 here and x in the other
  // object's version (the DC may not know of it yet): only a may go.
  Poll({Task(41, {1}, {'a', 'b', 'x'})});
  EXPECT_FALSE(Take(pb::Envelope::kGcDone).has_value()) << "acknowledged before the gateways";
  EXPECT_EQ(AckDeletes(), 3u);
  EXPECT_EQ(deleted_, (std::set<std::string>{"a11", "a12", "a13"}));
  auto done = Take(pb::Envelope::kGcDone);
  ASSERT_TRUE(done.has_value());
  ASSERT_EQ(done->msg.gc_done().results_size(), 1);
  const pb::GcResult& r = done->msg.gc_done().results(0);
  EXPECT_EQ(r.task_id(), 41u);
  EXPECT_EQ(r.versions_dropped(), 1u);
  EXPECT_EQ(r.chunks_dropped(), 1u);
  EXPECT_EQ(r.chunk_bytes_dropped(), 1000u);
  EXPECT_EQ(r.fragments_deleted(), 3u);
  EXPECT_EQ(r.chunks_kept(), 2u);
  Answer(*done, Empty());
  EXPECT_FALSE(store_.GetVersion(Bytes(oid_.begin(), oid_.end()), 1).ok());
  EXPECT_TRUE(store_.GetVersion(Bytes(oid_.begin(), oid_.end()), 2).ok());
  EXPECT_FALSE(Has('a'));
  EXPECT_TRUE(Has('b') && Has('c') && Has('x'));
  EXPECT_EQ(store_.Fragments(ChunkKey{sub_, Id('b')}).size(), 3u);
  EXPECT_EQ(core_->gc_stats().chunks_dropped_total, 1u);

  // The same task again (its acknowledgement was lost): nothing more to do,
  // acknowledged at once.
  Poll({Task(41, {1}, {'a', 'b', 'x'})});
  EXPECT_EQ(AckDeletes(), 0u);
  done = Take(pb::Envelope::kGcDone);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->msg.gc_done().results(0).chunks_dropped(), 0u);
  EXPECT_EQ(done->msg.gc_done().results(0).versions_dropped(), 0u);
}

TEST_F(PopGcTest, NeverDropsTheLatestVersion) {
  Start(GcParams());
  Poll({Task(5, {2}, {'c'})});
  AckDeletes();
  EXPECT_TRUE(store_.GetVersion(Bytes(oid_.begin(), oid_.end()), 2).ok());
  EXPECT_TRUE(Has('c'));  // still named by v2
}

TEST_F(PopGcTest, AChunkPinnedByAnUploadDefersTheTask) {
  Start(GcParams());
  // A client uploads chunk a again for a commit still to come.
  pb::Envelope put;
  put.set_request_id(9);
  put.mutable_put_chunk()->set_subscriber(sub_);
  put.mutable_put_chunk()->set_chunk_id(S(Id('a')));
  put.mutable_put_chunk()->set_data(std::string(1000, 'a'));
  core_->OnRequest(now_, Peer{77, pb::ROLE_GATEWAY, 11, sub_}, put);
  Drain();
  Poll({Task(6, {1}, {'a'})});
  EXPECT_EQ(AckDeletes(), 0u);
  EXPECT_TRUE(Has('a'));
  auto done = Take(pb::Envelope::kGcDone);
  EXPECT_FALSE(done.has_value()) << "a deferred task must not be acknowledged";
}

TEST_F(PopGcTest, AGatewayAwayDefersUntilItIsBack) {
  Start(GcParams());
  core_->OnGatewayDown(now_, 12);
  Drain();
  Poll({Task(7, {1}, {'a'})});
  EXPECT_EQ(AckDeletes(), 0u);
  EXPECT_TRUE(Has('a'));
  EXPECT_FALSE(Take(pb::Envelope::kGcDone).has_value());
  core_->OnGatewayUp(now_, GatewayState{12, sub_, 1 << 30, true});
  Drain();
  calls_.clear();
  Poll({Task(7, {1}, {'a'})});
  EXPECT_EQ(AckDeletes(), 3u);
  EXPECT_FALSE(Has('a'));
  auto done = Take(pb::Envelope::kGcDone);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->msg.gc_done().results(0).task_id(), 7u);
}

TEST_F(PopGcTest, AFailedFragmentDeleteKeepsTheRecordsForTheRetry) {
  Start(GcParams());
  Poll({Task(8, {1}, {'a'})});
  auto d = Take(pb::Envelope::kDeleteFragments);
  ASSERT_TRUE(d.has_value());
  Answer(*d, Unavailable("gateway busy"));
  AckDeletes();
  EXPECT_TRUE(Has('a'));
  EXPECT_EQ(store_.Fragments(ChunkKey{sub_, Id('a')}).size(), 3u);
  EXPECT_FALSE(Take(pb::Envelope::kGcDone).has_value());
}

TEST_F(PopGcTest, UnreadObjectGoesColdAndAReadWarmsIt) {
  PopParams p;
  p.cold_after_ms = 5000;
  p.gc_poll_ms = 0;
  Start(p);
  pb::Envelope get;
  get.set_request_id(1);
  get.mutable_get_chunk()->set_subscriber(sub_);
  get.mutable_get_chunk()->set_oid(oid_);
  get.mutable_get_chunk()->set_chunk_id(S(Id('b')));
  core_->OnRequest(now_, Peer{77, pb::ROLE_GATEWAY, 11, sub_}, get);
  Drain();
  ASSERT_EQ(replies_.size(), 1u);
  EXPECT_TRUE(replies_[0].msg.has_chunk_data());  // served from the POP's copy
  now_ += 4000;
  core_->OnTick(now_);
  Drain();
  EXPECT_TRUE(store_.GetChunkInfo(ChunkKey{sub_, Id('b')})->has_data) << "cold too early";
  now_ += 2000;
  core_->OnTick(now_);
  Drain();
  // Both chunks of the latest version left the POP's disk; fragments stay.
  EXPECT_FALSE(store_.GetChunkInfo(ChunkKey{sub_, Id('b')})->has_data);
  EXPECT_FALSE(store_.GetChunkInfo(ChunkKey{sub_, Id('c')})->has_data);
  EXPECT_EQ(store_.Fragments(ChunkKey{sub_, Id('b')}).size(), 3u);
  EXPECT_TRUE(store_.GetChunkInfo(ChunkKey{sub_, Id('x')})->has_data);  // another object
  auto cold = Take(pb::Envelope::kObjectTemperature);
  ASSERT_TRUE(cold.has_value());
  EXPECT_TRUE(cold->msg.object_temperature().cold());
  EXPECT_EQ(core_->gc_stats().objects_cold, 1u);
  // A read: reported warm, and the chunk is rebuilt from its fragments.
  get.set_request_id(2);
  core_->OnRequest(now_, Peer{77, pb::ROLE_GATEWAY, 11, sub_}, get);
  Drain();
  auto warm = Take(pb::Envelope::kObjectTemperature);
  ASSERT_TRUE(warm.has_value());
  EXPECT_FALSE(warm->msg.object_temperature().cold());
  EXPECT_TRUE(Take(pb::Envelope::kFetchFragment).has_value());
  EXPECT_EQ(core_->gc_stats().objects_cold, 0u);
  EXPECT_EQ(core_->gc_stats().objects_warmed_total, 1u);
}

TEST_F(PopGcTest, AReadNobodyCanServeFallsBackToTheDcBackup) {
  Start(GcParams());
  // A chunk this POP has no copy and no fragments of, of an object it is not
  // a replica of: the other replica fails, then the DC's backup answers.
  Bytes foreign = Oid{3, 4, 11, 9}.Encode();
  pb::Envelope get;
  get.set_request_id(3);
  get.mutable_get_chunk()->set_subscriber(sub_);
  get.mutable_get_chunk()->set_oid(S(foreign));
  get.mutable_get_chunk()->set_chunk_id(S(Id('q')));
  core_->OnRequest(now_, Peer{77, pb::ROLE_GATEWAY, 11, sub_}, get);
  Drain();
  while (auto f = Take(pb::Envelope::kFetchChunk)) Answer(*f, Unavailable("POP down"));
  auto b = Take(pb::Envelope::kFetchBackupChunk);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->to.kind, Dest::kDc);
  pb::Envelope data;
  data.mutable_chunk_data()->set_data("ciphertext");
  Answer(*b, data);
  ASSERT_EQ(replies_.size(), 1u);
  EXPECT_EQ(replies_[0].msg.chunk_data().data(), "ciphertext");
  EXPECT_TRUE(store_.GetChunkInfo(ChunkKey{sub_, Id('q')})->has_data);  // cached
  EXPECT_EQ(core_->gc_stats().backup_reads_total, 1u);
}

}  // namespace
}  // namespace mistore
