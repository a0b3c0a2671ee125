#include <gtest/gtest.h>

#include "shared/core/log.h"
#include "tests/sim/checker.h"
#include "tests/sim/workload.h"

namespace mistore::sim {
namespace {

class Quiet : public ::testing::Environment {
 public:
  void SetUp() override { SetLogLevel(LogLevel::kError); }
};
const auto* const kQuiet = ::testing::AddGlobalTestEnvironment(new Quiet);

TEST(SimTest, SameSeedSameHistory) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  WorkloadOptions opts;
  opts.ops = 60;
  RunResult a = RunWorkload(7, cfg, opts);
  RunResult b = RunWorkload(7, cfg, opts);
  RunResult c = RunWorkload(8, cfg, opts);
  EXPECT_EQ(a.history_hash, b.history_hash);
  EXPECT_NE(a.history_hash, c.history_hash);
}

TEST(SimTest, RandomWorkloadsAreClean) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  WorkloadOptions opts;
  opts.ops = 100;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RunResult r = RunWorkload(seed, cfg, opts);
    for (auto& v : r.violations) ADD_FAILURE() << v;
    if (!r.violations.empty()) {
      for (auto& t : r.trace_tail) std::printf("  %s\n", t.c_str());
      break;
    }
  }
}

// Regression: with no POP cache, the primary placed a chunk (and evicted its
// copy) before pushing it to the backup, and the put failed with "chunk not
// held here". Slow POP links and fast gateways make that order certain.
TEST(SimTest, PlacementBeforeBackupPushDoesNotLoseTheChunk) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  cfg.client_names_uploads = false;  // the commit's push alone, as when it was found
  cfg.placement_bytes_per_gateway_max = 0;
  cfg.pop_pop_delay_min_ms = 200;
  cfg.pop_pop_delay_max_ms = 300;
  cfg.pop_gw_delay_min_ms = 1;
  cfg.pop_gw_delay_max_ms = 2;
  SimWorld w(3, cfg);
  std::vector<Bytes> chunks = {Bytes(1000, 1), Bytes(2000, 2), Bytes(3000, 3)};
  Status put_status = Internal("not done");
  uint64_t version = 0;
  w.Put(1, "doc", chunks, [&](Status st, uint64_t v) {
    put_status = st;
    version = v;
  });
  ASSERT_TRUE(w.RunUntilTrue([&] { return put_status.code() != Code::kInternal; }, 600000));
  ASSERT_TRUE(put_status.ok()) << put_status.ToString();
  EXPECT_EQ(version, 1u);
  ASSERT_TRUE(w.RunUntilTrue([&] { return w.AllPlaced(); }, 600000));
  bool done = false;
  w.Get(2, "doc", 1, [&](Status st, uint64_t v, std::vector<Bytes> got) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(got, chunks);
    done = true;
  });
  ASSERT_TRUE(w.RunUntilTrue([&] { return done; }, 600000));
}

// Regression: a chunk uploaded again (here the empty chunk) kept its
// "placed" state and, with no POP cache, was evicted before its commit
// arrived ("not uploaded before commit"). Seeds 48 and 327 hit it.
TEST(SimTest, ReuploadedChunkSurvivesUntilItsCommit) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  cfg.client_names_uploads = false;  // the seeds' traces as when they were found
  cfg.placement_bytes_per_gateway_max = 0;
  WorkloadOptions opts;
  opts.ops = 1000;
  for (uint64_t seed : {48, 327}) {
    RunResult r = RunWorkload(seed, cfg, opts);
    for (auto& v : r.violations) ADD_FAILURE() << "seed " << seed << ": " << v;
  }
}

TEST(SimTest, ReadsSurviveMGatewayCrashesPerRegion) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  SimWorld w(11, cfg);
  std::vector<Bytes> chunks = {Bytes(5000, 9), Bytes(10, 8)};
  bool put_done = false;
  w.Put(1, "x", chunks, [&](Status st, uint64_t) {
    ASSERT_TRUE(st.ok()) << st.ToString();
    put_done = true;
  });
  ASSERT_TRUE(w.RunUntilTrue([&] { return put_done; }, 600000));
  ASSERT_TRUE(w.RunUntilTrue([&] { return w.AllPlaced(); }, 600000));
  EXPECT_EQ(w.fragments_on_gateways(), 2u * 2u * 6u);  // 2 chunks x 2 regions x (k+m)
  for (int p = 1; p <= 3; p++) {
    w.CrashGateway(uint32_t(p * 1000 + 2));
    w.CrashGateway(uint32_t(p * 1000 + 5));
  }
  for (uint32_t entry = 1; entry <= 3; entry++) {
    bool done = false;
    w.Get(entry, "x", 0, [&](Status st, uint64_t v, std::vector<Bytes> got) {
      EXPECT_TRUE(st.ok()) << "entry pop " << entry << ": " << st.ToString();
      EXPECT_EQ(got, chunks);
      done = true;
    });
    ASSERT_TRUE(w.RunUntilTrue([&] { return done; }, 600000));
  }
}

// Issue 11. Writes an object of 12 chunks through POP 1, waits until its
// fragments are placed and both replicas dropped their copies (cache 0),
// then reads it through the POP that is neither replica. Returns the
// chunk requests each replica served (its cache misses: every one rebuilds
// from fragments) and the chunks the entry POP wrote meanwhile.
struct ReplicaReads {
  uint64_t primary = 0, backup = 0;
  uint64_t entry_chunk_puts = 0;  // chunks the entry POP wrote to its store
};
ReplicaReads ReadThroughThirdPop(SimConfig cfg, uint64_t seed) {
  SimWorld w(seed, cfg);
  std::vector<Bytes> chunks;
  for (int i = 0; i < 12; i++) chunks.push_back(Bytes(3000 + i, uint8_t(i)));
  bool put_done = false;
  w.Put(1, "obj", chunks, [&](Status st, uint64_t) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    put_done = true;
  });
  EXPECT_TRUE(w.RunUntilTrue([&] { return put_done; }, 600000));
  EXPECT_TRUE(w.RunUntilTrue([&] { return w.AllPlaced(); }, 600000));
  w.RunUntil(w.now_ms() + 10000);  // the replicas confirm each other's placement
  std::vector<uint32_t> replicas;
  uint32_t entry = 0;
  for (uint32_t p = 1; p <= 3; p++) {
    if (w.pop_store(p).SubscriberVersions("alice", 10).empty())
      entry = p;
    else
      replicas.push_back(p);
  }
  EXPECT_EQ(replicas.size(), 2u);
  EXPECT_NE(entry, 0u);
  if (replicas.size() != 2 || entry == 0) return {};
  auto version = w.pop_store(replicas[0]).SubscriberVersions("alice", 10)[0];
  auto oid = Oid::Decode(version.oid());
  EXPECT_TRUE(oid.ok());
  if (!oid.ok()) return {};
  uint32_t primary = oid->primary_pop, backup = oid->backup_pop;
  uint64_t p0 = w.pop(primary).cache_misses_total(), b0 = w.pop(backup).cache_misses_total();
  uint64_t e0 = w.pop_store(entry).chunk_puts;
  bool done = false;
  w.Get(entry, "obj", 0, [&](Status st, uint64_t, std::vector<Bytes> got) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(got, chunks);
    done = true;
  });
  EXPECT_TRUE(w.RunUntilTrue([&] { return done; }, 600000));
  ReplicaReads r;
  r.primary = w.pop(primary).cache_misses_total() - p0;
  r.backup = w.pop(backup).cache_misses_total() - b0;
  r.entry_chunk_puts = w.pop_store(entry).chunk_puts - e0;
  return r;
}

TEST(SimTest, ReadsAskPrimaryOrBackupAtRandomByDefault) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  ReplicaReads r = ReadThroughThirdPop(cfg, 21);
  EXPECT_EQ(r.primary + r.backup, 12u) << "each chunk rebuilt by one replica";
  EXPECT_GT(r.primary, 0u);
  EXPECT_GT(r.backup, 0u) << "a read is spread over both replica regions";
}

TEST(SimTest, ReadPrimaryFirstReadsFromTheActingPrimaryOnly) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  cfg.read_primary_first = true;
  ReplicaReads r = ReadThroughThirdPop(cfg, 21);
  EXPECT_EQ(r.primary, 12u);
  EXPECT_EQ(r.backup, 0u) << "one replica region serves the whole read";
}

// With no cache an entry POP keeps no copy of the chunks it relays (it used
// to write each one durably and evict it at once).
TEST(SimTest, EntryPopWithoutCacheKeepsNoCopyOfAReadChunk) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  EXPECT_EQ(ReadThroughThirdPop(cfg, 22).entry_chunk_puts, 0u);
  cfg.pop_cache_bytes_max = 1ull << 20;
  EXPECT_EQ(ReadThroughThirdPop(cfg, 22).entry_chunk_puts, 12u) << "with a cache it does";
}

// Issue 5 / bug 10: a POP alive but isolated from the DC (cut off, or hung
// and resumed) is marked down after the DC's pop_silence_ms while the other
// replica commits newer versions; it must never serve its stale latest
// version, neither while isolated (map lease) nor once back (epoch gap).
struct Isolation {
  uint32_t pop;
  bool hang;
};
class IsolatedPopTest : public ::testing::TestWithParam<Isolation> {};

TEST_P(IsolatedPopTest, NeverServesAStaleLatestVersion) {
  const Isolation iso = GetParam();
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  SimWorld w(21, cfg);
  auto put = [&](uint32_t entry, uint8_t fill) {
    bool done = false;
    Status st;
    uint64_t version = 0;
    w.Put(entry, "doc", {Bytes(100, fill)}, [&](Status s, uint64_t v) {
      st = s;
      version = v;
      done = true;
    });
    EXPECT_TRUE(w.RunUntilTrue([&] { return done; }, 600000));
    EXPECT_TRUE(st.ok()) << st.ToString();
    return version;
  };
  auto read = [&](uint32_t entry, Status* st) {
    bool done = false;
    uint64_t version = 0;
    w.Get(
        entry, "doc", 0,
        [&](Status s, uint64_t v, std::vector<Bytes>) {
          *st = s;
          version = v;
          done = true;
        },
        pb::READ_ATOMIC);
    EXPECT_TRUE(w.RunUntilTrue([&] { return done; }, 600000));
    return version;
  };
  ASSERT_EQ(put(iso.pop, 1), 1u);  // the entry POP's region: it is the primary
  Status st;
  ASSERT_EQ(read(iso.pop, &st), 1u);  // caught up
  ASSERT_TRUE(w.RunUntilTrue([&] { return w.AllPlaced(); }, 600000));
  if (iso.hang) {
    w.SetPopHung(iso.pop, true);
  } else {
    w.SetPopCutOff(iso.pop, true);
  }
  w.RunUntil(w.now_ms() + cfg.pop_silence_ms + 2 * cfg.map_refresh_ms);
  EXPECT_FALSE(w.PopUpInMap(iso.pop));  // the DC marked it down
  EXPECT_TRUE(w.PopIsUp(iso.pop));      // yet it runs
  const uint32_t other = iso.pop % 3 + 1;
  ASSERT_EQ(put(other, 2), 2u);  // committed by the acting primary
  if (!iso.hang) {
    // Cut off, it cannot resolve names. Healed just after a refresh would
    // have run, it resolves them at once but gets its new map only at the
    // next refresh (1 s later): a read in between must not be stale (it no
    // longer trusts its old map and asks the other replica first).
    w.RunUntil(w.now_ms() + cfg.map_refresh_ms -
               w.now_ms() % cfg.map_refresh_ms + 10);
    w.SetPopCutOff(iso.pop, false);
    uint64_t v = read(iso.pop, &st);
    EXPECT_FALSE(w.PopUpInMap(iso.pop));  // the read ran before the refresh
    if (st.ok())
      EXPECT_EQ(v, 2u);
    else
      std::printf("read while healing: %s\n", st.ToString().c_str());
  } else {
    w.SetPopHung(iso.pop, false);
  }
  w.RunUntil(w.now_ms() + 2 * cfg.map_refresh_ms);
  EXPECT_TRUE(w.PopUpInMap(iso.pop));  // marked up again
  w.RunUntil(w.now_ms() + 4000);       // the role change settles
  EXPECT_EQ(read(iso.pop, &st), 2u);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

INSTANTIATE_TEST_SUITE_P(CutOffOrHung, IsolatedPopTest,
                         ::testing::Values(Isolation{1, false},
                                           Isolation{2, true}),
                         [](const ::testing::TestParamInfo<Isolation>& i) {
                           return std::string(i.param.hang ? "Hung"
                                                           : "CutOff") +
                                  "Pop" + std::to_string(i.param.pop);
                         });

TEST(SimTest, WorkloadsWithCutOffAndHungPopsAreClean) {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  WorkloadOptions opts;
  opts.ops = 300;
  opts.pop_cutoffs = 1;
  opts.pop_hangs = 1;
  opts.isolation_ms_min = 11000;  // past the DC's silence threshold
  for (uint64_t seed = 1; seed <= 6; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RunResult r = RunWorkload(seed, cfg, opts);
    for (auto& v : r.violations) ADD_FAILURE() << v;
    if (!r.violations.empty()) break;
  }
}

// The simulator's settings and fault mix in which bugs 11 and 12 were found
// (`mistore-sim`'s defaults of the time, 1,000 operations; each regression
// adds its own faults on top).
SimConfig RegressionConfig() {
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;
  cfg.map_delay_max_ms = 300;
  cfg.clock_drift_ppm_max = 2000;
  cfg.client_names_uploads = false;  // before forwarding during the upload
  cfg.placement_bytes_per_gateway_max = 0;  // before the placement budget
  return cfg;
}
WorkloadOptions RegressionFaults() {
  WorkloadOptions opts;
  opts.ops = 1000;
  opts.dc_outages = 1;
  opts.disk_faults = 1;
  opts.pop_hangs = 1;
  return opts;
}

// Regression (bug 12, session 5): an entry POP hung for just under the DC's
// silence threshold while holding an object's write lock; it resumed and
// sent its commit a few ms before the lease ran out at the primary, which
// checked the lock, prepared version v, and while the backup prepared, the
// lease expired, the next writer prepared its own v in place, and the first
// commit then committed — and acknowledged — the other write's v. The
// primary now re-checks the lock before it commits. Same options as
// `mistore-sim --seeds 1 --start-seed 157 --ops 1000 --avoid-hung-pops`.
TEST(SimTest, ACommitWhoseLockLapsedWhileTheBackupPreparedIsNotAcknowledged) {
  SimConfig cfg = RegressionConfig();
  WorkloadOptions opts = RegressionFaults();
  opts.clients_avoid_hung_pops = true;
  RunResult r = RunWorkload(157, cfg, opts);
  for (auto& v : r.violations) ADD_FAILURE() << "seed 157: " << v;
}

// Bug 11: a primary cut off from the DC kept its write locks valid past the
// DC's failover, so two write locks of one object were valid at once (one at
// the cut-off old primary, one at the new acting primary). Seed 50 of the
// default mix with a cut-off: pop1's lock [125993, 136012) ms overlapped
// six grants at pop2 from 130777 ms on; seed 20 without hangs: pop1 started
// an inherited lock's lease at 26971 ms, after its map lease had ended.
// Every lease now ends by the primary's last DC contact + map_lease_ms.
// Same options as `mistore-sim --seeds 1 --start-seed 50 --ops 1000
// --pop-cutoffs 1` and `... --start-seed 20 ... --pop-cutoffs 1 --pop-hangs 0`.
TEST(SimTest, NoWriteLockOfACutOffPrimaryOutlivesItsFailover) {
  SimConfig cfg = RegressionConfig();
  WorkloadOptions opts = RegressionFaults();
  opts.pop_cutoffs = 1;
  opts.clients_avoid_hung_pops = true;
  RunResult r50 = RunWorkload(50, cfg, opts);
  for (auto& v : r50.violations) ADD_FAILURE() << "seed 50: " << v;
  opts.pop_hangs = 0;
  RunResult r20 = RunWorkload(20, cfg, opts);
  for (auto& v : r20.violations) ADD_FAILURE() << "seed 20: " << v;
  EXPECT_GT(r50.ops_done, 900);
  EXPECT_GT(r20.ops_done, 900);
}

// Bug 13 (found when clients began naming their uploads, session 7): a
// POP that resumed after a hang re-synced an object from the primary while
// the DC still had it marked down (the DC stood in as backup, so the
// primary went on committing without it); the DC's map marking it up
// arrived mid-sync and cleared its synced set, but the sync, which had
// learned the primary's latest version (58) before version 59 committed,
// finished after that and marked the object synced: the POP then served
// version 58 to atomic reads for 10 s. A sync now counts only if nothing
// made the POP forget its synced objects while it ran. Same options as
// `mistore-sim --seeds 1 --start-seed 254 --ops 1000` (the default mix).
TEST(SimTest, ASyncOverlappingAMapChangeDoesNotMarkTheObjectCaughtUp) {
  SimConfig cfg = RegressionConfig();
  cfg.client_names_uploads = true;
  WorkloadOptions opts = RegressionFaults();
  opts.pop_cutoffs = 1;
  opts.clients_avoid_hung_pops = true;
  RunResult r = RunWorkload(254, cfg, opts);
  for (auto& v : r.violations) ADD_FAILURE() << "seed 254: " << v;
}

TEST(CheckerTest, CatchesStaleAndWrongReads) {
  std::vector<OpRecord> h;
  OpRecord put1{OpRecord::kPut, "a", 0, 10, Status::Ok(), 1, 0, Bytes{1}};
  OpRecord put2{OpRecord::kPut, "a", 20, 30, Status::Ok(), 2, 0, Bytes{2}};
  OpRecord stale{OpRecord::kGet, "a", 40, 50, Status::Ok(), 1, 0, Bytes{1}};
  OpRecord wrong{OpRecord::kGet, "a", 40, 50, Status::Ok(), 2, 0, Bytes{9}};
  OpRecord good{OpRecord::kGet, "a", 40, 50, Status::Ok(), 2, 0, Bytes{2}};
  OpRecord v1{OpRecord::kGet, "a", 40, 50, Status::Ok(), 1, 1, Bytes{1}};
  OpRecord dup{OpRecord::kPut, "a", 60, 70, Status::Ok(), 2, 0, Bytes{3}};
  EXPECT_TRUE(CheckHistory({put1, put2, good, v1}, {}).empty());
  EXPECT_EQ(CheckHistory({put1, put2, stale}, {}).size(), 1u);
  EXPECT_EQ(CheckHistory({put1, put2, wrong}, {}).size(), 1u);
  EXPECT_EQ(CheckHistory({put1, put2, dup}, {}).size(), 1u);
  OpRecord failed{OpRecord::kGet, "a", 40, 50, Unavailable("x"), 0, 0, Bytes{}};
  EXPECT_EQ(CheckHistory({put1, failed}, {}).size(), 1u);
  EXPECT_TRUE(CheckHistory({put1, failed}, CheckOptions{false}).empty());
}

TEST(CheckerTest, CatchesOverlappingWriteLocksAndTokensGoingBack) {
  const Bytes x = {1}, y = {2};
  // Lock 7 granted by pop1, inherited by pop2 after pop1 crashed: the same
  // lock may be valid at both; lock 8 follows it.
  std::vector<LockInterval> ok = {{x, 7, 10, 1, 0, 500},    {x, 7, 10, 2, 400, 900},
                                  {x, 8, 11, 2, 900, 1200}, {y, 9, 5, 1, 100, 1100},
                                  {x, 6, 3, 1, 0, 0}};  // never valid
  EXPECT_TRUE(CheckLocks(ok).empty());
  auto overlap = ok;
  overlap.push_back({x, 12, 12, 3, 1100, 1300});  // while lock 8 is valid at pop2
  EXPECT_EQ(CheckLocks(overlap).size(), 1u);
  auto back = ok;
  back.push_back({x, 13, 4, 1, 1300, 1400});  // token below lock 8's
  EXPECT_EQ(CheckLocks(back).size(), 1u);
}

}  // namespace
}  // namespace mistore::sim
