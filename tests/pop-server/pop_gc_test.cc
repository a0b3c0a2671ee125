// PopCore's garbage collection and cold tier (pop-server/pop_gc.cc, issue 7):
// which versions and chunks a GC task drops, what it keeps (still named by a
// version here, pinned by an upload, fragments on a gateway that is away),
// that fragments are deleted on their gateways before the chunk record goes,
// that the DC hears of it only when done, and that an unread object goes
// cold and comes back warm. Driven with a fake clock through the outbox.
#include <gtest/gtest.h>

#include <filesystem>
#include <optional>

#include "pop-server/mem_pop_store.h"
#include "pop-server/sqlite_pop_store.h"
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

// The DC's stand-in replica (dc-backend/standin.h) is a PopCore with
// replica id 0 keeping whole copies (no fragments). It never polls the DC:
// the DC hands it its backup store's tasks, and it drops the collected
// versions and the chunks no version there names (issue 7: "old versions are
// garbage-collected everywhere").
TEST(StandInGcTest, TasksRunDirectlyDropCollectedVersionsAndFreedChunks) {
  MemPopStore store;
  const std::string sub = "alice";
  std::string oid = S(Oid{1, 2, 11, 1}.Encode());
  for (char c : {'a', 'b', 'c'}) {  // as StoreReplicaChunks leaves them at the DC
    ChunkKey key{sub, Id(c)};
    ASSERT_TRUE(store.PutChunk(key, Bytes(500, uint8_t(c)), ChunkState::kStaged).ok());
    ASSERT_TRUE(store.SetChunkState(key, ChunkState::kPlaced).ok());
  }
  auto version = [&](uint64_t v, std::vector<char> chunks) {
    pb::VersionInfo info;
    info.set_oid(oid);
    info.set_version(v);
    info.set_subscriber(sub);
    for (char c : chunks) info.add_chunk_ids(S(Id(c)));
    return info;
  };
  ASSERT_TRUE(store.PutVersion(version(1, {'a', 'b'})).ok());
  ASSERT_TRUE(store.PutVersion(version(2, {'b', 'c'})).ok());
  PopParams p;
  p.pop_id = kDcReplica;
  p.place_fragments = false;
  p.gc_poll_ms = 1000;  // even so: the stand-in has no DC to poll
  PopCore core(p, &store, 7);
  core.OnTick(10000);
  core.OnTick(20000);
  Outbox out = core.TakeOutbox();
  for (auto& c : out.calls) EXPECT_NE(c.msg.body_case(), pb::Envelope::kGcFetch);

  pb::GcTask t;
  t.set_task_id(17);
  t.set_oid(oid);
  t.set_subscriber(sub);
  t.add_versions(1);
  t.add_chunk_ids(S(Id('a')));
  t.add_chunk_ids(S(Id('b')));
  bool finished = false, done = false;
  pb::GcResult res;
  core.OnGcTask(21000, t, [&](bool d, pb::GcResult r) {
    finished = true;
    done = d;
    res = r;
  });
  ASSERT_TRUE(finished) << "no gateways to wait for: the task finishes at once";
  EXPECT_TRUE(done);
  EXPECT_EQ(res.task_id(), 17u);
  EXPECT_EQ(res.versions_dropped(), 1u);
  EXPECT_EQ(res.chunks_dropped(), 1u);
  EXPECT_EQ(res.chunk_bytes_dropped(), 500u);
  EXPECT_EQ(res.chunks_kept(), 1u);  // b: still in v2
  Bytes ob(oid.begin(), oid.end());
  EXPECT_FALSE(store.GetVersion(ob, 1).ok());
  EXPECT_TRUE(store.GetVersion(ob, 2).ok());
  EXPECT_FALSE(store.GetChunkInfo(ChunkKey{sub, Id('a')}).ok());
  EXPECT_TRUE(store.GetChunkInfo(ChunkKey{sub, Id('b')}).ok());
  EXPECT_TRUE(store.GetChunkInfo(ChunkKey{sub, Id('c')}).ok());
  EXPECT_TRUE(core.TakeOutbox().calls.empty()) << "nothing acknowledged to a DC";
  EXPECT_EQ(core.gc_stats().tasks_done_total, 1u);
}

// Cold tracking survives a restart (issue 7): the last-read times are in the
// POP's SQLite store, reopened by the restarted POP, whose monotonic clock
// has another origin (the wall-clock offset carries the age over).
class ColdPersistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "cold_persist_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    oid_ = S(Oid{1, 2, 11, 1}.Encode());
    Open(1000000);
    for (char c : {'a', 'b'}) {
      ChunkKey key{sub_, Id(c)};
      ASSERT_TRUE(store_->PutChunk(key, Bytes(1000, uint8_t(c)), ChunkState::kReplica).ok());
      ASSERT_TRUE(store_->SetChunkState(key, ChunkState::kPlaced).ok());
      for (uint32_t i = 0; i < 3; i++) ASSERT_TRUE(store_->RecordFragment(key, i, 11 + i).ok());
    }
    pb::VersionInfo info;
    info.set_oid(oid_);
    info.set_version(1);
    info.set_subscriber(sub_);
    info.add_chunk_ids(S(Id('a')));
    info.add_chunk_ids(S(Id('b')));
    ASSERT_TRUE(store_->PutVersion(info).ok());
  }
  void TearDown() override {
    core_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // A (re)started POP: the store reopened, a clock whose zero is at wall
  // time wall_zero_ms.
  void Open(int64_t wall_zero_ms) {
    core_.reset();
    store_.reset();
    auto st = SqlitePopStore::Open(dir_);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(st).value();
    PopParams p;
    p.pop_id = 1;
    p.k = 2;
    p.m = 1;
    p.cold_after_ms = 10000;
    p.cold_persist_ms = 2000;
    p.wall_clock_offset_ms = wall_zero_ms;
    core_ = std::make_unique<PopCore>(p, store_.get(), 7);
    pb::ClusterMap map;
    map.set_epoch(1);
    for (uint32_t id : {1u, 2u}) {
      auto* e = map.add_pops();
      e->set_pop_id(id);
      e->set_up(true);
    }
    core_->OnClusterMap(0, map);
    calls_.clear();
  }
  void Read(uint64_t now) {
    pb::Envelope get;
    get.set_request_id(1);
    get.mutable_get_chunk()->set_subscriber(sub_);
    get.mutable_get_chunk()->set_oid(oid_);
    get.mutable_get_chunk()->set_chunk_id(S(Id('a')));
    core_->OnRequest(now, Peer{77, pb::ROLE_GATEWAY, 11, sub_}, get);
    Drain();
  }
  void Tick(uint64_t now) {
    core_->OnTick(now);
    Drain();
  }
  void Drain() {
    Outbox out = core_->TakeOutbox();
    for (auto& c : out.calls) calls_.push_back(std::move(c));
  }
  bool HasData() { return store_->GetChunkInfo(ChunkKey{sub_, Id('a')})->has_data; }
  std::optional<bool> Temperature() {
    for (auto& c : calls_)
      if (c.msg.has_object_temperature()) return c.msg.object_temperature().cold();
    return std::nullopt;
  }

  std::string dir_, oid_;
  const std::string sub_ = "alice";
  std::unique_ptr<SqlitePopStore> store_;
  std::unique_ptr<PopCore> core_;
  std::vector<OutCall> calls_;
};

TEST_F(ColdPersistTest, LastReadTimesSurviveARestart) {
  // Read at wall time 1,005,000 (clock 5000); the batch is written on a tick.
  Read(5000);
  Tick(8000);
  // Restart: the new process's clock starts at wall time 1,009,000.
  Open(1009000);
  Tick(5000);  // wall 1,014,000: 9 s after the read
  EXPECT_TRUE(HasData()) << "cold before cold_after_ms";
  Tick(6100);  // wall 1,015,100: 10.1 s after the read
  EXPECT_FALSE(HasData()) << "the restarted POP forgot the object was read";
  EXPECT_EQ(Temperature(), std::optional<bool>(true));
  EXPECT_EQ(core_->gc_stats().objects_cold, 1u);
  auto uses = store_->ObjectUses(10);
  ASSERT_EQ(uses.size(), 1u);
  EXPECT_TRUE(uses[0].cold) << "the cold mark is stored";
  // Restart again: the object is still known cold, so a read warms it
  // (reported to the DC) and it is tracked again from that read.
  Open(1020000);
  Read(100);
  EXPECT_EQ(Temperature(), std::optional<bool>(false));
  EXPECT_EQ(core_->gc_stats().objects_warmed_total, 1u);
}

TEST_F(ColdPersistTest, ACleanShutdownWritesTheLatestReads) {
  Read(5000);
  Tick(6000);  // written (the first batch)
  Read(7000);  // within cold_persist_ms: not yet written...
  Tick(7500);
  core_->FlushColdTracking(7600);  // ...until the shutdown
  Open(1009000);
  Tick(7900);  // wall 1,016,900: 9.9 s after the second read
  EXPECT_TRUE(HasData()) << "the restart lost the read flushed at shutdown";
  Tick(9000);  // 11 s after it
  EXPECT_FALSE(HasData());
}

TEST_F(ColdPersistTest, ANewerReadAfterRestartWins) {
  Read(5000);
  Tick(8000);
  Open(1009000);
  Read(4000);  // wall 1,013,000: newer than the stored read
  Tick(9000);  // wall 1,018,000: 10 s after the first read, 5 s after the second
  EXPECT_TRUE(HasData());
  Tick(14100);
  EXPECT_FALSE(HasData());
}

// Bounded write cost: many reads of many objects within one interval are
// one batch, each object once.
class CountingStore : public MemPopStore {
 public:
  Status SaveObjectUses(const std::vector<ObjectUse>& uses) override {
    batches++;
    rows += uses.size();
    return MemPopStore::SaveObjectUses(uses);
  }
  size_t batches = 0, rows = 0;
};

TEST(ColdPersistCostTest, EachObjectWrittenAtMostOncePerInterval) {
  CountingStore store;
  const std::string sub = "alice";
  PopParams p;
  p.pop_id = 1;
  p.cold_after_ms = 3600000;
  p.cold_persist_ms = 60000;
  PopCore core(p, &store, 7);
  auto read = [&](uint64_t now, uint64_t obj) {
    pb::Envelope get;
    get.set_request_id(1);
    get.mutable_get_chunk()->set_subscriber(sub);
    get.mutable_get_chunk()->set_oid(S(Oid{3, 4, 11, obj}.Encode()));
    get.mutable_get_chunk()->set_chunk_id(S(Id('z')));
    core.OnRequest(now, Peer{77, pb::ROLE_GATEWAY, 11, sub}, get);
    (void)core.TakeOutbox();
  };
  core.OnTick(1000);  // the first batch may go at once (nothing dirty yet)
  for (uint64_t t = 1000; t < 60000; t += 100) read(t, 1 + (t / 100) % 5);  // 590 reads, 5 objects
  core.OnTick(30000);
  EXPECT_EQ(store.rows, 0u) << "written before the interval passed";
  core.OnTick(61000);
  EXPECT_EQ(store.batches, 1u);
  EXPECT_EQ(store.rows, 5u);
  core.OnTick(62000);
  core.OnTick(200000);  // nothing read since: nothing written
  EXPECT_EQ(store.rows, 5u);
  EXPECT_EQ(store.ObjectUses(10).size(), 5u);
}

}  // namespace
}  // namespace mistore
