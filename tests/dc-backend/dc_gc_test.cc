// DcGc (dc-backend/dc_gc.h): the DC's side of garbage collection and
// backups, on a real SQLite catalog and file backup store, with the POPs
// played by a fake CallPop that answers from a table (no sockets, no clock:
// ticks carry the time).
#include "dc-backend/dc_gc.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "shared/core/oid.h"

namespace mistore {
namespace {

std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string Id(char c) { return std::string(32, c); }

class DcGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "dc_gc_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    auto c = OpenSqliteCatalog(dir_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = std::move(c).value();
    auto b = OpenFileBackupStore(dir_ + "/backup", {});
    ASSERT_TRUE(b.ok());
    store_ = std::move(b).value();
    DcGcParams p;
    p.retention_interval_ms = 0;
    gc_ = std::make_unique<DcGc>(catalog_.get(), store_.get(), p,
                                 [this](uint32_t pop, pb::Envelope req, uint64_t,
                                        std::function<void(Result<pb::Envelope>)> done) {
                                   done(Serve(pop, req));
                                 });
    Bytes o = Oid{1, 2, 7, 1}.Encode();
    oid_ = S(o);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The POPs: versions and chunks they hold; a POP in down_ fails.
  Result<pb::Envelope> Serve(uint32_t pop, const pb::Envelope& req) {
    calls_++;
    if (down_.count(pop)) return Unavailable("POP down");
    pb::Envelope r;
    if (req.has_fetch_version()) {
      auto it = versions_.find(req.fetch_version().version());
      if (it == versions_.end()) return NotFound("no such version");
      *r.mutable_version_info() = it->second;
    } else if (req.has_fetch_chunk()) {
      auto it = chunks_.find(req.fetch_chunk().chunk_id());
      if (it == chunks_.end()) return NotFound("no such chunk");
      r.mutable_chunk_data()->set_data(it->second);
      chunk_fetches_++;
    } else {
      return ProtocolError("unexpected");
    }
    return r;
  }

  void Commit(uint64_t v, std::vector<char> chunks, int64_t now) {
    pb::VersionInfo info;
    info.set_oid(oid_);
    info.set_version(v);
    info.set_subscriber("alice");
    info.set_size_bytes(100 * chunks.size());
    info.set_manifest_sealed("sealed manifest " + std::to_string(v));
    info.set_name_sealed("sealed name");
    for (char c : chunks) {
      info.add_chunk_ids(Id(c));
      chunks_[Id(c)] = std::string(100, c);
    }
    versions_[v] = info;
    Status st = catalog_->ReportVersion(info, now);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  bool HasChunk(char c) { return store_->Exists(BackupChunkKey("alice", B(Id(c)))).value(); }
  bool HasVersion(uint64_t v) { return store_->Exists(BackupVersionKey(B(oid_), v)).value(); }

  std::string dir_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<BackupStore> store_;
  std::unique_ptr<DcGc> gc_;
  std::string oid_;
  std::map<uint64_t, pb::VersionInfo> versions_;
  std::map<std::string, std::string> chunks_;
  std::set<uint32_t> down_;
  int calls_ = 0, chunk_fetches_ = 0;
};

TEST_F(DcGcTest, CopiesVersionsAsPopsHoldThemAndChunksOnce) {
  ASSERT_TRUE(catalog_->SetBackupMode("alice", Catalog::BackupMode::kAll).ok());
  Commit(1, {'a', 'b'}, 1);
  Commit(2, {'b', 'c'}, 2);
  down_ = {1};  // the primary is down: copied from the backup POP
  for (int i = 0; i < 4; i++) gc_->Tick(1000 * (i + 1));
  EXPECT_TRUE(HasVersion(1) && HasVersion(2));
  EXPECT_TRUE(HasChunk('a') && HasChunk('b') && HasChunk('c'));
  EXPECT_EQ(chunk_fetches_, 3) << "chunk b is content-addressed: fetched once";
  auto rec = store_->Get(BackupVersionKey(B(oid_), 2));
  ASSERT_TRUE(rec.ok());
  pb::VersionInfo info;
  ASSERT_TRUE(info.ParseFromArray(rec->data(), int(rec->size())));
  EXPECT_EQ(info.manifest_sealed(), "sealed manifest 2");
  EXPECT_EQ(store_->Get(BackupChunkKey("alice", B(Id('c')))).value(), B(std::string(100, 'c')));
  EXPECT_EQ(catalog_->BackedUpVersions(B(oid_)).value(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(gc_->backups_done_total(), 2u);
  // Served back to a POP that lost it.
  pb::FetchBackupChunk f;
  f.set_subscriber("alice");
  f.set_oid(oid_);
  f.set_chunk_id(Id('a'));
  pb::Envelope reply;
  ASSERT_TRUE(gc_->HandleFetchBackupChunk(f, &reply).ok());
  EXPECT_EQ(reply.chunk_data().data(), std::string(100, 'a'));
  f.set_chunk_id(Id('z'));
  EXPECT_EQ(gc_->HandleFetchBackupChunk(f, &reply).code(), Code::kNotFound);
}

TEST_F(DcGcTest, BothPopsDownRetriesLater) {
  ASSERT_TRUE(catalog_->SetBackupMode("alice", Catalog::BackupMode::kAll).ok());
  Commit(1, {'a'}, 1);
  down_ = {1, 2};
  gc_->Tick(1000);
  EXPECT_FALSE(HasVersion(1));
  down_.clear();
  int before = calls_;
  gc_->Tick(2000);  // within backup_retry_ms: not tried again yet
  EXPECT_EQ(calls_, before);
  gc_->Tick(1000 + int64_t(DcGcParams().backup_retry_ms));
  EXPECT_TRUE(HasVersion(1));
  EXPECT_TRUE(HasChunk('a'));
}

TEST_F(DcGcTest, LatestPolicyDropsTheSupersededCopyButSharedChunks) {
  ASSERT_TRUE(catalog_->SetBackupMode("alice", Catalog::BackupMode::kLatest).ok());
  Commit(1, {'a', 'b'}, 1);
  gc_->Tick(1000);
  ASSERT_TRUE(HasVersion(1));
  Commit(2, {'b', 'c'}, 2);
  gc_->Tick(2000);
  EXPECT_TRUE(HasVersion(2));
  EXPECT_FALSE(HasVersion(1));
  EXPECT_FALSE(HasChunk('a'));
  EXPECT_TRUE(HasChunk('b')) << "still in the kept copy of v2";
  EXPECT_TRUE(HasChunk('c'));
}

TEST_F(DcGcTest, CollectedVersionsLeaveTheBackupStoreAndPopsGetTheirTasks) {
  ASSERT_TRUE(catalog_->SetBackupMode("alice", Catalog::BackupMode::kAll).ok());
  Commit(1, {'a', 'b'}, 1);
  Commit(2, {'b', 'c'}, 2);
  Commit(3, {'c'}, 3);
  for (int i = 0; i < 3; i++) gc_->Tick(1000 * (i + 1));
  ASSERT_TRUE(HasVersion(1) && HasVersion(2) && HasVersion(3));
  ASSERT_TRUE(catalog_->CollectVersions(B(oid_), {1, 2}).ok());
  uint64_t before = store_->used_bytes();
  gc_->Tick(10000);
  EXPECT_FALSE(HasVersion(1));
  EXPECT_FALSE(HasVersion(2));
  EXPECT_TRUE(HasVersion(3));
  EXPECT_FALSE(HasChunk('a'));
  EXPECT_FALSE(HasChunk('b'));
  EXPECT_TRUE(HasChunk('c')) << "v3 still uses it";
  EXPECT_EQ(gc_->stats().reclaimed.chunk_bytes, before - store_->used_bytes());
  EXPECT_EQ(gc_->stats().reclaimed.versions, 2u);

  // POP 1 (primary) pulls its task and acknowledges it once.
  pb::GcFetch fetch;
  fetch.set_tasks_max(10);
  pb::Envelope work;
  ASSERT_TRUE(gc_->HandleGcFetch(1, fetch, &work).ok());
  ASSERT_EQ(work.gc_work().tasks_size(), 1);
  const pb::GcTask& t = work.gc_work().tasks(0);
  EXPECT_EQ(t.oid(), oid_);
  EXPECT_EQ(std::vector<uint64_t>(t.versions().begin(), t.versions().end()),
            (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(t.chunk_ids_size(), 2);  // a and b
  pb::GcDone done;
  auto* r = done.add_results();
  r->set_task_id(t.task_id());
  r->set_chunk_bytes_dropped(200);
  r->set_fragments_deleted(6);
  r->set_fragment_bytes_deleted(450);
  pb::Envelope ack;
  ASSERT_TRUE(gc_->HandleGcDone(1, done, &ack).ok());
  ASSERT_TRUE(gc_->HandleGcDone(1, done, &ack).ok());  // a repeat counts nothing
  EXPECT_EQ(gc_->stats().reclaimed.fragments, 6u);
  EXPECT_EQ(gc_->stats().reclaimed.fragment_bytes, 450u);
  EXPECT_EQ(gc_->stats().tasks_pending, 1u);  // POP 2's
  work.Clear();
  ASSERT_TRUE(gc_->HandleGcFetch(1, fetch, &work).ok());
  EXPECT_EQ(work.gc_work().tasks_size(), 0);
  // Bounded: more results than one fetch can hand out is refused.
  pb::GcDone big;
  for (size_t i = 0; i <= Catalog::kGcTasksMax; i++) big.add_results()->set_task_id(i + 1000);
  EXPECT_EQ(gc_->HandleGcDone(1, big, &ack).code(), Code::kResourceExhausted);
}

TEST_F(DcGcTest, TemperatureReportsMarkTheCatalog) {
  pb::ObjectTemperature m;
  m.set_oid(oid_);
  m.set_cold(true);
  pb::Envelope reply;
  ASSERT_TRUE(gc_->HandleObjectTemperature(1, m, 5, &reply).ok());
  EXPECT_TRUE(catalog_->IsCold(B(oid_)).value());
  m.set_cold(false);
  ASSERT_TRUE(gc_->HandleObjectTemperature(2, m, 6, &reply).ok());
  EXPECT_FALSE(catalog_->IsCold(B(oid_)).value());
  m.set_oid("short");
  EXPECT_EQ(gc_->HandleObjectTemperature(2, m, 7, &reply).code(), Code::kInvalidArgument);
}

TEST_F(DcGcTest, RetentionRunsOnItsInterval) {
  DcGcParams p;
  p.retention_interval_ms = 60000;
  DcGc gc(catalog_.get(), store_.get(), p,
          [](uint32_t, pb::Envelope, uint64_t, std::function<void(Result<pb::Envelope>)> done) {
            done(Unavailable("no POPs"));
          });
  RetentionPolicy policy;
  policy.keep_last = 1;
  policy.daily_days = 0;
  policy.weekly_weeks = 0;
  ASSERT_TRUE(catalog_->SetRetention("alice", policy).ok());
  Commit(1, {'a'}, 1);
  Commit(2, {'b'}, 2);
  gc.Tick(100000);
  EXPECT_EQ(gc.stats().versions_collected, 1u);
  Commit(3, {'c'}, 3);
  gc.Tick(100000 + 30000);  // not yet
  EXPECT_EQ(gc.stats().versions_collected, 1u);
  gc.Tick(100000 + 60000);
  EXPECT_EQ(gc.stats().versions_collected, 2u);
}

// Regression (CI at d644714): an automatic pass at start collected every
// volume under the default keep_last=10, one without a set policy too, and
// acknowledged versions disappeared. Only volumes with a set policy are
// collected automatically now.
TEST_F(DcGcTest, AutomaticRetentionSparesVolumesWithoutASetPolicy) {
  DcGcParams p;
  p.retention_interval_ms = 60000;
  DcGc gc(catalog_.get(), store_.get(), p,
          [](uint32_t, pb::Envelope, uint64_t, std::function<void(Result<pb::Envelope>)> done) {
            done(Unavailable("no POPs"));
          });
  // alice: no policy set, 12 versions (more than the default keep_last=10).
  for (uint64_t v = 1; v <= 12; v++) Commit(v, {char('a' + v)}, int64_t(v));
  // bob: an explicit policy keeping the newest 2 of 5.
  pb::VersionInfo info;
  std::string bob_oid = S(Oid{1, 2, 8, 1}.Encode());
  for (uint64_t v = 1; v <= 5; v++) {
    info.set_oid(bob_oid);
    info.set_version(v);
    info.set_subscriber("bob");
    info.set_size_bytes(10);
    info.set_manifest_sealed("sealed manifest " + std::to_string(v));
    info.set_name_sealed("sealed name");
    info.clear_chunk_ids();
    info.add_chunk_ids(std::string(32, char('A' + v)));
    Status st = catalog_->ReportVersion(info, int64_t(v));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  RetentionPolicy policy;
  policy.keep_last = 2;
  policy.daily_days = 0;
  policy.weekly_weeks = 0;
  ASSERT_TRUE(catalog_->SetRetention("bob", policy).ok());
  EXPECT_EQ(catalog_->ListRetentionVolumes(10).value(), (std::vector<std::string>{"bob"}));

  gc.Tick(100000);  // the first pass runs at once, as at daemon start
  gc.Tick(100000 + 60000);
  auto alice = catalog_->ListVersions(B(oid_), 100);
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->size(), 12u);
  for (auto& v : *alice) EXPECT_FALSE(v.collected) << "alice v" << v.version;
  auto bob = catalog_->ListVersions(B(bob_oid), 100);
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 5u);
  for (auto& v : *bob) EXPECT_EQ(v.collected, v.version <= 3) << "bob v" << v.version;
  EXPECT_EQ(gc.stats().versions_collected, 3u);
}

// The stand-in replica's copies go with the backup store's tasks: the task
// reaches the replica GC hook, stays pending while the stand-in defers it,
// and is acknowledged once, with both sides' reclaimed space, when done.
TEST_F(DcGcTest, BackupStoreTasksAlsoCollectTheStandInCopies) {
  std::vector<Catalog::GcTask> seen;
  bool standin_done = false;
  gc_->set_replica_gc([&](const Catalog::GcTask& t,
                          std::function<void(bool, Catalog::GcReclaimed)> done) {
    seen.push_back(t);
    done(standin_done, Catalog::GcReclaimed{1, 2, 300, 0, 0});
  });
  Commit(1, {'a', 'b'}, 1);
  Commit(2, {'b', 'c'}, 2);
  ASSERT_TRUE(catalog_->CollectVersions(B(oid_), {1}).ok());
  uint64_t pending = catalog_->GetGcStats()->tasks_pending;  // POPs 1, 2 and the DC's
  gc_->Tick(1000);  // the stand-in has a chunk in use: not acknowledged
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].oid, B(oid_));
  EXPECT_EQ(seen[0].versions, (std::vector<uint64_t>{1}));
  EXPECT_EQ(seen[0].chunk_ids, (std::vector<Bytes>{B(Id('a'))}));
  EXPECT_EQ(gc_->stats().tasks_pending, pending);
  standin_done = true;
  gc_->Tick(2000);  // retried, now done
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(gc_->stats().tasks_pending, pending - 1);
  EXPECT_EQ(gc_->stats().reclaimed.chunk_bytes, 300u);
  EXPECT_EQ(gc_->stats().reclaimed.versions, 1u);
  gc_->Tick(3000);
  EXPECT_EQ(seen.size(), 2u) << "an acknowledged task is not run again";
}

}  // namespace
}  // namespace mistore
