// Repair: the RepairQueue state machine (order, pace, retries, bounds) and
// PopCore's repair duties end to end against an in-memory region of
// gateways on a fake clock (lost gateway, no cached copy, bad fragments,
// inventories, surplus deletion).
#include "pop-server/repair.h"

#include <gtest/gtest.h>

#include <random>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/fragment.h"
#include "tests/pop-server/fake_region.h"

namespace mistore {
namespace {

ChunkKey Key(int i) { return ChunkKey{"s", Bytes(32, uint8_t(i))}; }

RepairParams QP(uint64_t rate = 1ull << 40) {
  RepairParams p;
  p.repair_bytes_per_s = rate;
  p.in_flight_max = 100;
  p.retry_ms = 1000;
  return p;
}

TEST(RepairQueue, MostEndangeredFirstThenOldest) {
  RepairQueue q(QP());
  ASSERT_TRUE(q.Add(0, Key(1), 10, 100));
  ASSERT_TRUE(q.Add(0, Key(2), 9, 100));
  ASSERT_TRUE(q.Add(0, Key(3), 11, 100));
  ASSERT_TRUE(q.Add(0, Key(4), 10, 100));
  ASSERT_TRUE(q.Add(0, Key(3), 8, 100));  // lost another fragment: moves up
  std::vector<ChunkKey> order;
  while (auto k = q.Next(0)) order.push_back(*k);
  EXPECT_EQ(order, (std::vector<ChunkKey>{Key(3), Key(2), Key(1), Key(4)}));
  EXPECT_EQ(q.stats().in_flight_chunks, 4u);
  EXPECT_EQ(q.stats().queued_chunks, 0u);
}

TEST(RepairQueue, PacedByTheBandwidthBudget) {
  const uint64_t rate = 10000;  // bytes per second
  RepairQueue q(QP(rate));
  for (int i = 0; i < 100; i++) ASSERT_TRUE(q.Add(0, Key(i), 5, 1000));
  EXPECT_EQ(q.stats().queued_bytes, 100000u);
  EXPECT_DOUBLE_EQ(q.stats().eta_s, 10.0);
  uint64_t now = 0, last = 0;
  int done = 0;
  while (done < 100) {
    while (auto k = q.Next(now)) {
      q.Done(now, *k, true, 1, 1000);
      done++;
      last = now;
    }
    now += 10;
  }
  // 100 KB at 10 KB/s with a one-second burst: ~9 s.
  EXPECT_GE(last, 8900u);
  EXPECT_LE(last, 9100u);
  EXPECT_EQ(q.stats().repaired_chunks_total, 100u);
  EXPECT_EQ(q.stats().bytes_total, 100000u);
  EXPECT_EQ(q.stats().queued_bytes, 0u);
}

TEST(RepairQueue, FailedRepairsWaitThenRetry) {
  RepairQueue q(QP());
  ASSERT_TRUE(q.Add(0, Key(1), 5, 10));
  auto k = q.Next(0);
  ASSERT_TRUE(k);
  EXPECT_TRUE(q.InFlight(Key(1)));
  q.Done(0, *k, false, 0, 0);
  EXPECT_TRUE(q.Contains(Key(1)));
  EXPECT_FALSE(q.Next(999));
  EXPECT_EQ(q.Next(1000), Key(1));
  q.Done(1000, Key(1), true, 2, 20);
  EXPECT_FALSE(q.Contains(Key(1)));
  EXPECT_EQ(q.stats().failed_total, 1u);
  EXPECT_EQ(q.stats().repaired_fragments_total, 2u);
}

TEST(RepairQueue, BoundedAndRemovable) {
  RepairParams p = QP();
  p.queue_chunks_max = 2;
  p.in_flight_max = 1;
  RepairQueue q(p);
  EXPECT_TRUE(q.Add(0, Key(1), 5, 10));
  EXPECT_TRUE(q.Add(0, Key(2), 5, 10));
  EXPECT_FALSE(q.Add(0, Key(3), 5, 10));
  EXPECT_TRUE(q.overflowed());
  EXPECT_TRUE(q.Add(0, Key(2), 4, 10));  // already queued: accepted
  q.Remove(Key(2));
  EXPECT_FALSE(q.Contains(Key(2)));
  EXPECT_EQ(q.Next(0), Key(1));
  EXPECT_FALSE(q.Next(0));  // in-flight limit
}

// ---------------------------------------------------------------------------
// PopCore against an in-memory region.

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

class RepairCore : public ::testing::Test {
 protected:
  void Start(uint64_t cache_bytes_max, uint32_t gateways = 9) {
    key_ = ChunkKey{"s", Bytes(32, 0xab)};
    data_ = pop_test::PutRandomReplicaChunk(&store_, key_, 5);
    PopParams p = pop_test::RegionPopParams(60000);
    p.cache_bytes_max = cache_bytes_max;
    core_ = std::make_unique<PopCore>(p, &store_, 99);
    for (uint32_t id = 1; id <= gateways; id++)
      core_->OnGatewayUp(0, GatewayState{id, "s", 1u << 30, true});
    region_.Drive(*core_, 0);
    core_->OnTick(1);  // placement retries once enough gateways are up
    region_.Drive(*core_, 1);
    ASSERT_EQ(store_.GetChunkInfo(key_)->state, ChunkState::kPlaced);
    ASSERT_EQ(store_.Fragments(key_).size(), 6u);
  }

  // Every fragment recorded is on a distinct live gateway, is intact, and
  // the six decode back to the chunk.
  void ExpectFullRedundancy() {
    auto locs = store_.Fragments(key_);
    ASSERT_EQ(locs.size(), 6u);
    std::set<uint32_t> gws;
    std::vector<Bytes> blobs;
    for (auto& l : locs) {
      EXPECT_FALSE(region_.down.count(l.gateway_id)) << "fragment on a dead gateway";
      gws.insert(l.gateway_id);
      auto& disk = region_.disks[l.gateway_id];
      auto it = disk.find({key_.chunk_id, l.index});
      ASSERT_NE(it, disk.end()) << "recorded fragment not on its gateway";
      ASSERT_TRUE(ParseFragment(it->second.data(), it->second.size()).ok());
      blobs.push_back(it->second);
    }
    EXPECT_EQ(gws.size(), 6u);
    auto decoded = DecodeChunkFromFragments(key_.chunk_id, blobs, 4, 2, data_.size());
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded.value(), data_);
  }

  uint32_t HolderOf(uint32_t index) {
    for (auto& l : store_.Fragments(key_))
      if (l.index == index) return l.gateway_id;
    return 0;
  }

  void Tick(uint64_t now) {
    core_->OnTick(now);
    region_.Drive(*core_, now);
  }

  // Another POP asks for the chunk (no forwarding) at `now`; the reply lands
  // in region_.replies.
  void FetchChunkAsPop(uint64_t now) {
    pb::Envelope env;
    env.set_request_id(9);
    Oid oid{1, 2, 3, 4};
    env.mutable_fetch_chunk()->set_subscriber("s");
    env.mutable_fetch_chunk()->set_oid(Str(oid.Encode()));
    env.mutable_fetch_chunk()->set_chunk_id(Str(key_.chunk_id));
    env.mutable_fetch_chunk()->set_no_forward(true);
    core_->OnRequest(now, Peer{1, pb::ROLE_POP, 2, ""}, env);
    region_.Drive(*core_, now);
  }

  MemPopStore store_;
  pop_test::FakeRegion region_;
  std::unique_ptr<PopCore> core_;
  Bytes data_;
  ChunkKey key_;
};

TEST_F(RepairCore, LostGatewayIsRepairedAfterGraceAndItsSurplusDeletedWhenItReturns) {
  Start(1u << 30);
  uint32_t g = HolderOf(2);
  region_.down.insert(g);
  core_->OnGatewayDown(1000, g);
  region_.Drive(*core_, 1000);
  Tick(30000);
  EXPECT_EQ(core_->chunks_below_redundancy(), 1u);
  EXPECT_EQ(HolderOf(2), g);  // a reboot is tolerated: nothing moves yet
  EXPECT_EQ(core_->repair_stats().repaired_chunks_total, 0u);
  Tick(61000);
  EXPECT_EQ(core_->members().Find(g)->state, GwState::kLost);
  EXPECT_NE(HolderOf(2), g);
  EXPECT_EQ(core_->repair_stats().repaired_chunks_total, 1u);
  EXPECT_EQ(core_->repair_stats().repaired_fragments_total, 1u);
  ExpectFullRedundancy();
  Tick(70000);
  EXPECT_EQ(core_->chunks_below_redundancy(), 0u);
  // It comes back with the old fragment: deleted after its inventory.
  region_.down.erase(g);
  core_->OnGatewayUp(80000, GatewayState{g, "s", 1u << 30, true});
  region_.Drive(*core_, 80000);
  EXPECT_EQ(region_.deletes, 1);
  EXPECT_TRUE(region_.disks[g].empty());
  EXPECT_EQ(core_->fragments_deleted_total(), 1u);
  ExpectFullRedundancy();
}

TEST_F(RepairCore, AfterAPopRestartARecordedGatewayThatNeverReturnsIsRepaired) {
  Start(1u << 30);
  uint32_t g = HolderOf(2);
  region_.down.insert(g);
  // The POP restarts: a new PopCore over the same store; g never reconnects.
  core_ = std::make_unique<PopCore>(PopParams{.pop_id = 1, .region = "r", .k = 4, .m = 2,
                                              .gateway_grace_ms = 60000},
                                    &store_, 100);
  for (uint32_t id = 1; id <= 9; id++)
    if (id != g) core_->OnGatewayUp(1000, GatewayState{id, "s", 1u << 30, true});
  Tick(2000);
  EXPECT_EQ(core_->members().Find(g)->state, GwState::kSuspected);
  Tick(61999);
  EXPECT_EQ(HolderOf(2), g);
  Tick(62000);
  EXPECT_EQ(core_->members().Find(g)->state, GwState::kLost);
  EXPECT_NE(HolderOf(2), g);
  ExpectFullRedundancy();
}

TEST_F(RepairCore, WithoutACopyRebuildsFromKSurvivorsAndDropsTheCopyAfter) {
  Start(0);
  ASSERT_FALSE(store_.GetChunkInfo(key_)->has_data);
  uint32_t g1 = HolderOf(0), g2 = HolderOf(5);
  for (uint32_t g : {g1, g2}) {
    region_.down.insert(g);
    core_->OnGatewayDown(1000, g);
  }
  Tick(61001);
  EXPECT_EQ(core_->repair_stats().repaired_fragments_total, 2u);
  EXPECT_EQ(region_.fetches, 4);  // the k live fragments, read as background I/O
  EXPECT_EQ(region_.background_fetches, 4);
  EXPECT_EQ(region_.outside_calls, 0) << "repair read from outside the region";
  ExpectFullRedundancy();
  EXPECT_FALSE(store_.GetChunkInfo(key_)->has_data);
}

// Repair reads do not fill the cache: a rebuilt chunk was written durably
// as a cached copy (and, with a small cache, evicted again) on the POP's
// loop thread, which serialised a 1 GB repair behind fsyncs.
TEST_F(RepairCore, RepairFromFragmentsLeavesNoCachedCopy) {
  Start(1u << 30);
  ASSERT_TRUE(store_.DropChunkData(key_).ok());
  uint32_t g = HolderOf(1);
  region_.down.insert(g);
  core_->OnGatewayDown(1000, g);
  Tick(61001);
  EXPECT_EQ(core_->repair_stats().repaired_fragments_total, 1u);
  ExpectFullRedundancy();
  EXPECT_FALSE(store_.GetChunkInfo(key_)->has_data) << "repair left a cached copy";
  EXPECT_EQ(store_.CachedBytes(), 0u);
}

// Regression (issue 6): the memory of fragments rebuilt elsewhere (moved_)
// lived only in PopCore, so a gateway returning after a POP restart kept
// its surplus fragments forever. The records say where each fragment is.
TEST_F(RepairCore, AfterAPopRestartAReturningGatewaysSurplusIsDeleted) {
  Start(1u << 30);
  uint32_t g = HolderOf(2);
  region_.down.insert(g);
  core_->OnGatewayDown(1000, g);
  Tick(61000);
  ASSERT_NE(HolderOf(2), g);
  ASSERT_TRUE(region_.disks[g].count({key_.chunk_id, 2}));
  core_ = std::make_unique<PopCore>(PopParams{.pop_id = 1, .region = "r", .k = 4, .m = 2,
                                              .gateway_grace_ms = 60000},
                                    &store_, 101);
  for (uint32_t id = 1; id <= 9; id++)
    if (id != g) core_->OnGatewayUp(62000, GatewayState{id, "s", 1u << 30, true});
  region_.Drive(*core_, 62000);
  region_.down.erase(g);
  core_->OnGatewayUp(63000, GatewayState{g, "s", 1u << 30, true});
  // The agent sends its full inventory on registration.
  pb::Envelope inv;
  inv.set_request_id(4);
  for (auto& [ref, blob] : region_.disks[g]) {
    auto* f = inv.mutable_gateway_inventory()->add_fragments();
    f->set_chunk_id(Str(ref.first));
    f->set_index(ref.second);
  }
  core_->OnRequest(63000, Peer{1, pb::ROLE_GATEWAY, g, "s"}, inv);
  region_.Drive(*core_, 63000);
  Tick(64000);
  EXPECT_FALSE(region_.disks[g].count({key_.chunk_id, 2})) << "surplus fragment kept";
  EXPECT_EQ(core_->fragments_deleted_total(), 1u);
  ExpectFullRedundancy();
}

// A held fragment recorded elsewhere on a gateway that is itself lost is
// not surplus: it may be the only copy left.
TEST_F(RepairCore, FragmentRecordedOnALostGatewayIsNotDeletedFromItsOldHolder) {
  Start(1u << 30);
  uint32_t g = HolderOf(2);
  Bytes old = region_.disks[g][{key_.chunk_id, 2}];
  uint32_t other = HolderOf(3);
  // g also holds (chunk, 2)'s twin as index 3 would be: put a copy of
  // index 3 on g, whose recorded holder is then lost.
  region_.disks[g][{key_.chunk_id, 3}] = region_.disks[other][{key_.chunk_id, 3}];
  region_.down.insert(other);
  core_->OnGatewayDown(1000, other);
  pb::Envelope env;
  env.set_request_id(3);
  env.mutable_gateway_inventory();
  for (uint32_t idx : {2u, 3u}) {
    auto* f = env.mutable_gateway_inventory()->add_fragments();
    f->set_chunk_id(Str(key_.chunk_id));
    f->set_index(idx);
  }
  core_->OnRequest(2000, Peer{1, pb::ROLE_GATEWAY, g, "s"}, env);
  region_.Drive(*core_, 2000);
  EXPECT_EQ(region_.deletes, 0);
  EXPECT_TRUE(region_.disks[g].count({key_.chunk_id, 3}));
  EXPECT_EQ((region_.disks[g][{key_.chunk_id, 2}]), old);
}

TEST_F(RepairCore, FragmentsReportedBadAreRebuiltElsewhereAndDeleted) {
  Start(1u << 30);
  uint32_t g = HolderOf(3);
  pb::Envelope env;
  env.set_request_id(7);
  auto* f = env.mutable_fragments_bad()->add_fragments();
  f->set_chunk_id(Str(key_.chunk_id));
  f->set_index(3);
  core_->OnRequest(100, Peer{1, pb::ROLE_GATEWAY, g, "s"}, env);
  region_.Drive(*core_, 100);
  ASSERT_EQ(region_.replies.size(), 1u);
  EXPECT_TRUE(region_.replies[0].msg.has_empty());
  EXPECT_NE(HolderOf(3), g);
  EXPECT_FALSE(region_.disks[g].count({key_.chunk_id, 3}));
  ExpectFullRedundancy();
}

TEST_F(RepairCore, WithNoOtherGatewayABadFragmentIsRebuiltInPlace) {
  Start(0, 6);  // exactly k+m gateways
  uint32_t g = HolderOf(0);
  Bytes good = region_.disks[g][{key_.chunk_id, 0}];
  region_.disks[g].erase({key_.chunk_id, 0});  // the agent dropped its torn copy
  pb::Envelope env;
  env.set_request_id(1);
  auto* f = env.mutable_fragments_bad()->add_fragments();
  f->set_chunk_id(Str(key_.chunk_id));
  f->set_index(0);
  core_->OnRequest(100, Peer{1, pb::ROLE_GATEWAY, g, "s"}, env);
  region_.Drive(*core_, 100);
  EXPECT_EQ(HolderOf(0), g);
  EXPECT_EQ((region_.disks[g][{key_.chunk_id, 0}]), good);  // not deleted after the store
  EXPECT_EQ(core_->repair_stats().repaired_fragments_total, 1u);
  ExpectFullRedundancy();
}

TEST_F(RepairCore, CorruptFragmentIsDetectedOnReadAndRepaired) {
  Start(0);
  uint32_t g = HolderOf(1);
  Bytes& blob = region_.disks[g][{key_.chunk_id, 1}];
  blob[blob.size() - 10] ^= 0x40;
  FetchChunkAsPop(100);
  ASSERT_EQ(region_.replies.size(), 1u);
  ASSERT_TRUE(region_.replies[0].msg.has_chunk_data());
  EXPECT_EQ(B(region_.replies[0].msg.chunk_data().data()), data_);
  Tick(200);
  EXPECT_NE(HolderOf(1), g);
  ExpectFullRedundancy();
}

// A gateway returns a forged fragment: payload changed and its check
// recomputed, so it parses as good. The read still returns the right bytes
// (the spare fragments outvote it), the forged index is named and counted,
// and the repair path re-places it on another gateway.
TEST_F(RepairCore, ForgedFragmentIsLocatedOnReadNamedAndReplaced) {
  Start(0);
  uint32_t g = HolderOf(2);
  Bytes& blob = region_.disks[g][{key_.chunk_id, 2}];
  auto parsed = ParseFragment(blob.data(), blob.size());
  ASSERT_TRUE(parsed.ok());
  Bytes payload(parsed->second.begin(), parsed->second.end());
  payload[7] ^= 0x5a;
  blob = EncodeFragment(parsed->first, payload.data(), payload.size());
  ASSERT_TRUE(ParseFragment(blob.data(), blob.size()).ok());
  const uint64_t bad_before = core_->fragments_bad_total();
  FetchChunkAsPop(100);
  ASSERT_EQ(region_.replies.size(), 1u);
  ASSERT_TRUE(region_.replies[0].msg.has_chunk_data());
  EXPECT_EQ(B(region_.replies[0].msg.chunk_data().data()), data_);
  EXPECT_EQ(core_->fragments_forged_total(), 1u);
  EXPECT_EQ(core_->fragments_bad_total(), bad_before + 1);
  Tick(200);
  EXPECT_NE(HolderOf(2), g);
  ExpectFullRedundancy();
}

// Issue 3: a client's GetChunkFragments gets every recorded fragment with
// its index and gateway; its ReportForgedFragments marks only (index,
// gateway) pairs the POP recorded, is bounded, goes only to a replica, and
// what it marks is counted and re-placed.
TEST_F(RepairCore, ClientFetchesFragmentsAndItsForgeryReportIsCheckedCountedAndRepaired) {
  Start(0);
  const Peer gw{1, pb::ROLE_GATEWAY, 7, "s"};
  const Oid oid{1, 2, 3, 4};
  pb::Envelope get;
  get.set_request_id(9);
  get.mutable_get_chunk_fragments()->set_subscriber("s");
  get.mutable_get_chunk_fragments()->set_oid(Str(oid.Encode()));
  get.mutable_get_chunk_fragments()->set_chunk_id(Str(key_.chunk_id));
  core_->OnRequest(100, gw, get);
  region_.Drive(*core_, 100);
  ASSERT_EQ(region_.replies.size(), 1u);
  ASSERT_TRUE(region_.replies[0].msg.has_chunk_fragments()) << region_.replies[0].msg.error().message();
  const pb::ChunkFragments& cf = region_.replies[0].msg.chunk_fragments();
  EXPECT_EQ(cf.pop_id(), 1u);
  EXPECT_EQ(cf.k(), 4u);
  EXPECT_EQ(cf.m(), 2u);
  ASSERT_EQ(cf.fragments_size(), 6);
  for (int i = 0; i < 6; i++) {
    EXPECT_EQ(cf.fragments(i).index(), uint32_t(i)) << "ascending index";
    EXPECT_EQ(cf.fragments(i).gateway_id(), HolderOf(uint32_t(i)));
    const Bytes& on_disk = region_.disks[HolderOf(uint32_t(i))][std::make_pair(key_.chunk_id, uint32_t(i))];
    EXPECT_EQ(B(cf.fragments(i).fragment()), on_disk);
  }
  auto report = [&](uint32_t pop, std::vector<std::pair<uint32_t, uint32_t>> forged) {
    region_.replies.clear();
    pb::Envelope r;
    r.set_request_id(10);
    auto* rf = r.mutable_report_forged_fragments();
    rf->set_subscriber("s");
    rf->set_oid(Str(oid.Encode()));
    rf->set_chunk_id(Str(key_.chunk_id));
    rf->set_pop_id(pop);
    for (auto [index, g] : forged) {
      auto* f = rf->add_forged();
      f->set_index(index);
      f->set_gateway_id(g);
    }
    core_->OnRequest(200, gw, r);
    region_.Drive(*core_, 200);
    EXPECT_EQ(region_.replies.size(), 1u);
    return region_.replies.empty() ? pb::Envelope() : region_.replies[0].msg;
  };
  const uint32_t g2 = HolderOf(2);
  // A pair the POP never recorded: ignored.
  EXPECT_TRUE(report(1, {{2, g2 + 100}}).has_empty());
  EXPECT_EQ(core_->fragments_bad_total(), 0u);
  // Too many entries, or a POP that is not a replica: refused.
  EXPECT_EQ(Code(report(1, std::vector<std::pair<uint32_t, uint32_t>>(49, {2, g2})).error().code()),
            Code::kResourceExhausted);
  EXPECT_EQ(Code(report(5, {{2, g2}}).error().code()), Code::kInvalidArgument);
  EXPECT_EQ(core_->fragments_bad_total(), 0u);
  // The real one: counted once (a repeat is not), marked bad, re-placed.
  EXPECT_TRUE(report(1, {{2, g2}}).has_empty());
  EXPECT_TRUE(report(1, {{2, g2}}).has_empty());
  EXPECT_EQ(core_->fragments_forged_reported_total(), 1u);
  EXPECT_EQ(core_->fragments_forged_total(), 1u);
  EXPECT_EQ(core_->fragments_bad_total(), 1u);
  Tick(300);
  EXPECT_NE(HolderOf(2), g2);
  ExpectFullRedundancy();
}

// The payload hashes of fetched fragments are checked with the decode, off
// the loop: with exactly k reachable and one of them corrupt the decode
// fails, and the corrupt one is still named and marked bad.
TEST_F(RepairCore, CorruptFragmentAmongExactlyKIsMarkedBad) {
  Start(0);
  uint32_t g = HolderOf(1);
  for (uint32_t i : {4u, 5u}) {
    region_.down.insert(HolderOf(i));
    core_->OnGatewayDown(50, HolderOf(i));
  }
  Bytes& blob = region_.disks[g][{key_.chunk_id, 1}];
  blob[blob.size() - 10] ^= 0x40;
  FetchChunkAsPop(100);
  ASSERT_EQ(region_.replies.size(), 1u);
  EXPECT_FALSE(region_.replies[0].msg.has_chunk_data()) << "decoded from a corrupt fragment";
  EXPECT_EQ(core_->fragments_bad_total(), 1u) << "the corrupt fragment was not marked bad";
}

// Issue 6 (session 4): the below-redundancy recount asked the store about
// every fragment of a lost gateway on every recount, and recounted after
// each finished repair: O(fragments^2) SQLite queries on the loop over one
// repair. Chunks already queued are now counted without asking.
class CountingStore : public MemPopStore {
 public:
  Result<ChunkInfo> GetChunkInfo(const ChunkKey& key) override {
    info_calls++;
    return MemPopStore::GetChunkInfo(key);
  }
  uint64_t info_calls = 0;
};

TEST(RepairRecount, QueuedChunksAreCountedWithoutAskingTheStore) {
  CountingStore store;
  pop_test::FakeRegion region;
  const int kChunks = 40;
  for (int i = 0; i < kChunks; i++)
    ASSERT_TRUE(store.PutChunk(Key(i), Bytes(4000, uint8_t(i)), ChunkState::kReplica).ok());
  PopParams p;
  p.pop_id = 1;
  p.region = "r";
  p.k = 4;
  p.m = 2;
  p.cache_bytes_max = 0;
  p.gateway_grace_ms = 1000;
  p.repair_bytes_per_s = 1;  // one repair starts, the rest stay queued
  PopCore core(p, &store, 7);
  for (uint32_t id = 1; id <= 7; id++) core.OnGatewayUp(0, GatewayState{id, "s", 1u << 30, true});
  region.Drive(core, 0);
  core.OnTick(1);
  region.Drive(core, 1);
  size_t on_g = store.FragmentsOnGateway(1, 1000).size();
  ASSERT_GE(on_g, 20u) << "placement put too little on gateway 1 for the test";
  region.down.insert(1);
  core.OnGatewayDown(10, 1);
  region.Drive(core, 10);
  core.OnTick(5000);  // lost: its chunks are queued
  region.Drive(core, 5000);
  // At most the one repair the budget let through has finished.
  ASSERT_GE(core.repair_stats().queued_chunks, on_g - 1);
  // (A repair finishing after the recount of this tick is counted next time.)
  EXPECT_NEAR(double(core.chunks_below_redundancy()),
              double(on_g - core.repair_stats().repaired_chunks_total), 1.0);
  store.info_calls = 0;
  core.OnTick(8000);  // a recount is due (kRecountMs)
  region.Drive(core, 8000);
  // The budget lets a repair through now and then; the rest are counted.
  // (A repair finishing after the recount of this tick is counted next time.)
  EXPECT_NEAR(double(core.chunks_below_redundancy()),
              double(on_g - core.repair_stats().repaired_chunks_total), 1.0);
  EXPECT_LT(store.info_calls, on_g / 2) << "the recount asked the store about queued chunks";
}

TEST_F(RepairCore, HeartbeatCountMismatchFetchesInventoryAndRepairsWhatIsMissing) {
  Start(1u << 30);
  uint32_t g = HolderOf(4);
  region_.disks[g].clear();  // the gateway lost its files (disk swapped)
  pb::Envelope env;
  env.set_request_id(3);
  env.mutable_gateway_heartbeat()->set_fragment_count(0);
  env.mutable_gateway_heartbeat()->set_store_bytes_free(1u << 30);
  core_->OnRequest(100, Peer{1, pb::ROLE_GATEWAY, g, "s"}, env);
  region_.Drive(*core_, 100);
  ASSERT_EQ(region_.replies.size(), 1u);
  EXPECT_TRUE(region_.replies[0].msg.has_empty());
  EXPECT_NE(HolderOf(4), g);
  ExpectFullRedundancy();
  // A heartbeat that matches causes no inventory request.
  Outbox none;
  env.mutable_gateway_heartbeat()->set_fragment_count(0);
  core_->OnRequest(5000, Peer{1, pb::ROLE_GATEWAY, g, "s"}, env);
  Outbox out = core_->TakeOutbox();
  EXPECT_TRUE(out.calls.empty());
}

}  // namespace
}  // namespace mistore
