#include "pop-server/sqlite_pop_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "shared/store/file_util.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::FilesUnder;
using store_test::RandomBytes;
using store_test::SeedTrace;
using store_test::TempDir;
using store_test::TestSeed;

Bytes Id(uint8_t fill) { return Bytes(32, fill); }
ChunkKey Key(const std::string& sub, uint8_t fill) { return ChunkKey{sub, Id(fill)}; }

pb::VersionInfo Version(const Bytes& oid, uint64_t v, uint64_t size, const std::string& sub) {
  pb::VersionInfo info;
  info.set_oid(std::string(oid.begin(), oid.end()));
  info.set_version(v);
  info.set_size_bytes(size);
  info.set_subscriber(sub);
  info.set_manifest_sealed("manifest-" + std::to_string(v));
  info.set_name_sealed("name-" + std::to_string(v));
  info.add_chunk_ids(std::string(32, char('a' + v % 26)));
  return info;
}

class PopStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = TestSeed();
    rng_.seed(seed_);
    Reopen();
  }
  void Reopen() {
    store_.reset();
    auto s = SqlitePopStore::Open(dir());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  std::string dir() const { return tmp_.path() + "/pop"; }
  std::vector<ChunkKey> EvictionKeys(size_t limit = 100) {
    std::vector<ChunkKey> out;
    for (auto& [k, size] : store_->EvictionCandidates(limit)) out.push_back(k);
    return out;
  }
  ChunkState StateOf(const ChunkKey& k) {
    auto info = store_->GetChunkInfo(k);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? info->state : ChunkState(-1);
  }

  TempDir tmp_;
  uint32_t seed_ = 0;
  std::mt19937 rng_;
  std::unique_ptr<SqlitePopStore> store_;
};

TEST_F(PopStoreTest, PutGetChunkAndInfo) {
  SCOPED_TRACE(SeedTrace(seed_));
  const ChunkKey k = Key("alice", 1);
  const Bytes data = RandomBytes(rng_, 5000 + rng_() % 1000);
  ASSERT_TRUE(store_->PutChunk(k, data, ChunkState::kCached).ok());
  auto got = store_->GetChunk(k);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, data);
  auto info = store_->GetChunkInfo(k);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, ChunkState::kCached);
  EXPECT_TRUE(info->has_data);
  EXPECT_EQ(info->size_bytes, data.size());
  EXPECT_EQ(store_->CachedBytes(), data.size());
}

TEST_F(PopStoreTest, UnknownChunksAreNotFound) {
  EXPECT_EQ(store_->GetChunk(Key("alice", 9)).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetChunkInfo(Key("alice", 9)).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->SetChunkState(Key("alice", 9), ChunkState::kPlaced).code(), Code::kNotFound);
  EXPECT_EQ(store_->DropChunkData(Key("alice", 9)).code(), Code::kNotFound);
  EXPECT_EQ(store_->CachedBytes(), 0u);
}

TEST_F(PopStoreTest, ChunksAreKeyedBySubscriber) {
  SCOPED_TRACE(SeedTrace(seed_));
  const Bytes a = RandomBytes(rng_, 100), b = RandomBytes(rng_, 200);
  ASSERT_TRUE(store_->PutChunk(Key("alice", 5), a, ChunkState::kCached).ok());
  EXPECT_EQ(store_->GetChunk(Key("bob", 5)).status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->PutChunk(Key("bob", 5), b, ChunkState::kCached).ok());
  EXPECT_EQ(store_->GetChunk(Key("alice", 5)).value(), a);
  EXPECT_EQ(store_->GetChunk(Key("bob", 5)).value(), b);
  EXPECT_EQ(store_->CachedBytes(), 300u);
}

TEST_F(PopStoreTest, StagedThenReplicaIsUnplaced) {
  const ChunkKey k = Key("alice", 1);
  ASSERT_TRUE(store_->PutChunk(k, Bytes(10, 1), ChunkState::kStaged).ok());
  EXPECT_EQ(StateOf(k), ChunkState::kStaged);
  EXPECT_TRUE(store_->UnplacedChunks(10).empty());
  EXPECT_TRUE(store_->EvictionCandidates(10).empty());
  ASSERT_TRUE(store_->SetChunkState(k, ChunkState::kReplica).ok());
  EXPECT_EQ(StateOf(k), ChunkState::kReplica);
  EXPECT_EQ(store_->UnplacedChunks(10), std::vector<ChunkKey>{k});
  EXPECT_TRUE(store_->EvictionCandidates(10).empty());
  ASSERT_TRUE(store_->SetChunkState(k, ChunkState::kPlaced).ok());
  EXPECT_TRUE(store_->UnplacedChunks(10).empty());
  auto ev = store_->EvictionCandidates(10);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].first, k);
  EXPECT_EQ(ev[0].second, 10u);
}

TEST_F(PopStoreTest, UnplacedOldestFirstWithLimit) {
  for (uint8_t i = 1; i <= 5; i++)
    ASSERT_TRUE(store_->PutChunk(Key("s", i), Bytes(i, i), ChunkState::kReplica).ok());
  ASSERT_TRUE(store_->PutChunk(Key("s", 6), Bytes(6, 6), ChunkState::kStaged).ok());
  EXPECT_EQ(store_->UnplacedChunks(100),
            (std::vector<ChunkKey>{Key("s", 1), Key("s", 2), Key("s", 3), Key("s", 4),
                                   Key("s", 5)}));
  EXPECT_EQ(store_->UnplacedChunks(2), (std::vector<ChunkKey>{Key("s", 1), Key("s", 2)}));
}

// Staged chunks (pop_place_early.cc times them after a restart): only
// those, oldest first, up to the limit, surviving a reopen.
TEST_F(PopStoreTest, StagedChunksOldestFirstWithLimit) {
  ASSERT_TRUE(store_->PutChunk(Key("s", 1), Bytes(1, 1), ChunkState::kStaged).ok());
  ASSERT_TRUE(store_->PutChunk(Key("s", 2), Bytes(2, 2), ChunkState::kReplica).ok());
  ASSERT_TRUE(store_->PutChunk(Key("t", 3), Bytes(3, 3), ChunkState::kStaged).ok());
  ASSERT_TRUE(store_->PutChunk(Key("s", 4), Bytes(4, 4), ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(Key("s", 5), Bytes(5, 5), ChunkState::kStaged).ok());
  ASSERT_TRUE(store_->SetChunkState(Key("s", 5), ChunkState::kPlaced).ok());
  Reopen();
  EXPECT_EQ(store_->StagedChunks(100), (std::vector<ChunkKey>{Key("s", 1), Key("t", 3)}));
  EXPECT_EQ(store_->StagedChunks(1), (std::vector<ChunkKey>{Key("s", 1)}));
  ASSERT_TRUE(store_->DeleteChunk(Key("s", 1)).ok());
  EXPECT_EQ(store_->StagedChunks(100), (std::vector<ChunkKey>{Key("t", 3)}));
}

// kPlaced and kCached chunks with data are evictable, least recently used
// first (a read counts as use); kStaged and kReplica never are.
TEST_F(PopStoreTest, EvictionCandidatesInLruOrder) {
  const ChunkKey a = Key("s", 1), b = Key("s", 2), c = Key("s", 3), d = Key("s", 4);
  const ChunkKey staged = Key("s", 5), replica = Key("s", 6);
  ASSERT_TRUE(store_->PutChunk(a, Bytes(11, 1), ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(staged, Bytes(50, 5), ChunkState::kStaged).ok());
  ASSERT_TRUE(store_->PutChunk(b, Bytes(22, 2), ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(replica, Bytes(60, 6), ChunkState::kReplica).ok());
  ASSERT_TRUE(store_->PutChunk(c, Bytes(33, 3), ChunkState::kReplica).ok());
  ASSERT_TRUE(store_->SetChunkState(c, ChunkState::kPlaced).ok());
  ASSERT_TRUE(store_->PutChunk(d, Bytes(44, 4), ChunkState::kCached).ok());
  EXPECT_EQ(EvictionKeys(), (std::vector<ChunkKey>{a, b, c, d}));
  // Reading a makes it the most recently used.
  ASSERT_TRUE(store_->GetChunk(a).ok());
  EXPECT_EQ(EvictionKeys(), (std::vector<ChunkKey>{b, c, d, a}));
  ASSERT_TRUE(store_->GetChunk(c).ok());
  ASSERT_TRUE(store_->GetChunk(staged).ok());
  ASSERT_TRUE(store_->GetChunk(replica).ok());
  EXPECT_EQ(EvictionKeys(), (std::vector<ChunkKey>{b, d, a, c}));
  EXPECT_EQ(EvictionKeys(2), (std::vector<ChunkKey>{b, d}));
  auto ev = store_->EvictionCandidates(100);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].second, 22u);
  EXPECT_EQ(ev[1].second, 44u);
  EXPECT_EQ(ev[2].second, 11u);
  EXPECT_EQ(ev[3].second, 33u);
}

TEST_F(PopStoreTest, RandomisedEvictionOrderMatchesModel) {
  SCOPED_TRACE(SeedTrace(seed_));
  std::vector<ChunkKey> lru;  // model, evictable only, oldest first
  std::vector<ChunkKey> all;
  for (int step = 0; step < 200; step++) {
    if (all.empty() || rng_() % 3 == 0) {
      ChunkKey k{"s" + std::to_string(rng_() % 3), RandomBytes(rng_, 32)};
      ChunkState st = ChunkState(rng_() % 4);
      ASSERT_TRUE(store_->PutChunk(k, RandomBytes(rng_, 1 + rng_() % 64), st).ok());
      all.push_back(k);
      if (st == ChunkState::kPlaced || st == ChunkState::kCached) lru.push_back(k);
    } else {
      const ChunkKey& k = all[rng_() % all.size()];
      ASSERT_TRUE(store_->GetChunk(k).ok());
      auto it = std::find(lru.begin(), lru.end(), k);
      if (it != lru.end()) {
        ChunkKey moved = *it;
        lru.erase(it);
        lru.push_back(moved);
      }
    }
  }
  ASSERT_EQ(EvictionKeys(1000), lru);
}

TEST_F(PopStoreTest, PutChunkKeepsTheStrongerState) {
  const ChunkKey k = Key("s", 1);
  ASSERT_TRUE(store_->PutChunk(k, Bytes(8, 1), ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(k, Bytes(8, 1), ChunkState::kReplica).ok());
  EXPECT_EQ(StateOf(k), ChunkState::kReplica);
  ASSERT_TRUE(store_->PutChunk(k, Bytes(8, 1), ChunkState::kCached).ok());
  EXPECT_EQ(StateOf(k), ChunkState::kReplica);  // a cache fill does not demote
  ASSERT_TRUE(store_->SetChunkState(k, ChunkState::kPlaced).ok());
  ASSERT_TRUE(store_->PutChunk(k, Bytes(8, 1), ChunkState::kReplica).ok());
  EXPECT_EQ(StateOf(k), ChunkState::kPlaced);
  ASSERT_TRUE(store_->PutChunk(k, Bytes(8, 1), ChunkState::kStaged).ok());
  EXPECT_EQ(StateOf(k), ChunkState::kPlaced);
  EXPECT_EQ(store_->GetChunk(k).value(), Bytes(8, 1));
}

// Putting a chunk that is already held, with a payload of another length
// (a client re-using a chunk id, or a retry after the client re-chunked),
// must leave the chunk readable: either payload, with the recorded size
// matching what is served. It must never leave metadata describing bytes
// that were not written.
TEST_F(PopStoreTest, RePutWithDifferentPayloadStaysReadable) {
  SCOPED_TRACE(SeedTrace(seed_));
  const ChunkKey k = Key("alice", 1);
  const Bytes first = RandomBytes(rng_, 100), second = RandomBytes(rng_, 60);
  ASSERT_TRUE(store_->PutChunk(k, first, ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(k, second, ChunkState::kCached).ok());
  auto got = store_->GetChunk(k);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == first || *got == second);
  auto info = store_->GetChunkInfo(k);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size_bytes, got->size());
  EXPECT_EQ(store_->CachedBytes(), got->size());
}

TEST_F(PopStoreTest, DropChunkDataReleasesBytes) {
  SCOPED_TRACE(SeedTrace(seed_));
  const ChunkKey a = Key("s", 1), b = Key("s", 2);
  const Bytes da = RandomBytes(rng_, 1000), db = RandomBytes(rng_, 300);
  ASSERT_TRUE(store_->PutChunk(a, da, ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(b, db, ChunkState::kCached).ok());
  EXPECT_EQ(store_->CachedBytes(), 1300u);
  EXPECT_EQ(FilesUnder(dir() + "/chunks").size(), 2u);
  ASSERT_TRUE(store_->DropChunkData(a).ok());
  EXPECT_EQ(store_->GetChunk(a).status().code(), Code::kNotFound);
  auto info = store_->GetChunkInfo(a);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->has_data);
  EXPECT_EQ(store_->CachedBytes(), 300u);
  EXPECT_EQ(EvictionKeys(), std::vector<ChunkKey>{b});
  EXPECT_EQ(FilesUnder(dir() + "/chunks").size(), 1u);  // payload file removed
  EXPECT_EQ(store_->GetChunk(b).value(), db);
  // Fetched again later: held again.
  ASSERT_TRUE(store_->PutChunk(a, da, ChunkState::kCached).ok());
  EXPECT_EQ(store_->GetChunk(a).value(), da);
  EXPECT_EQ(store_->CachedBytes(), 1300u);
}

TEST_F(PopStoreTest, VersionsLatestAndByNumber) {
  const Bytes oid = Bytes(16, 0x42);
  EXPECT_EQ(store_->LatestVersion(oid), 0u);
  EXPECT_EQ(store_->GetVersion(oid, 0).status().code(), Code::kNotFound);
  ASSERT_TRUE(store_->PutVersion(Version(oid, 1, 100, "alice")).ok());
  ASSERT_TRUE(store_->PutVersion(Version(oid, 3, 300, "alice")).ok());
  ASSERT_TRUE(store_->PutVersion(Version(oid, 2, 200, "alice")).ok());  // late arrival
  EXPECT_EQ(store_->LatestVersion(oid), 3u);
  auto latest = store_->GetVersion(oid, 0);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  EXPECT_EQ(latest->version(), 3u);
  EXPECT_EQ(latest->size_bytes(), 300u);
  EXPECT_EQ(latest->manifest_sealed(), "manifest-3");
  EXPECT_EQ(latest->subscriber(), "alice");
  ASSERT_EQ(latest->chunk_ids_size(), 1);
  auto v2 = store_->GetVersion(oid, 2);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->size_bytes(), 200u);
  EXPECT_EQ(v2->name_sealed(), "name-2");
  EXPECT_EQ(store_->GetVersion(oid, 4).status().code(), Code::kNotFound);
  // Another object is independent.
  const Bytes other = Bytes(16, 0x43);
  EXPECT_EQ(store_->LatestVersion(other), 0u);
  ASSERT_TRUE(store_->PutVersion(Version(other, 7, 1, "bob")).ok());
  EXPECT_EQ(store_->LatestVersion(other), 7u);
  EXPECT_EQ(store_->LatestVersion(oid), 3u);
}

TEST_F(PopStoreTest, UnreportedUntilMarked) {
  const Bytes o1 = Bytes(16, 1), o2 = Bytes(16, 2);
  ASSERT_TRUE(store_->PutVersion(Version(o1, 1, 10, "a")).ok());
  ASSERT_TRUE(store_->PutVersion(Version(o1, 2, 20, "a")).ok());
  ASSERT_TRUE(store_->PutVersion(Version(o2, 1, 30, "b")).ok());
  auto pending = store_->UnreportedVersions(100);
  EXPECT_EQ(pending.size(), 3u);
  EXPECT_EQ(store_->UnreportedVersions(2).size(), 2u);
  ASSERT_TRUE(store_->MarkReported(o1, 2).ok());
  pending = store_->UnreportedVersions(100);
  ASSERT_EQ(pending.size(), 2u);
  for (auto& v : pending)
    EXPECT_FALSE(v.oid() == std::string(16, '\1') && v.version() == 2) << "reported one is listed";
  ASSERT_TRUE(store_->MarkReported(o1, 1).ok());
  ASSERT_TRUE(store_->MarkReported(o2, 1).ok());
  EXPECT_TRUE(store_->UnreportedVersions(100).empty());
  EXPECT_EQ(store_->MarkReported(Bytes(16, 9), 1).code(), Code::kNotFound);
}

TEST_F(PopStoreTest, RecordFragmentAndList) {
  const ChunkKey k = Key("s", 1);
  EXPECT_EQ(store_->RecordFragment(k, 0, 100).code(), Code::kNotFound);
  EXPECT_TRUE(store_->Fragments(k).empty());
  ASSERT_TRUE(store_->PutChunk(k, Bytes(4, 4), ChunkState::kReplica).ok());
  ASSERT_TRUE(store_->RecordFragment(k, 2, 102).ok());
  ASSERT_TRUE(store_->RecordFragment(k, 0, 100).ok());
  ASSERT_TRUE(store_->RecordFragment(k, 1, 101).ok());
  ASSERT_TRUE(store_->RecordFragment(k, 1, 111).ok());  // moved to another gateway
  auto f = store_->Fragments(k);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].index, 0u);
  EXPECT_EQ(f[0].gateway_id, 100u);
  EXPECT_EQ(f[1].index, 1u);
  EXPECT_EQ(f[1].gateway_id, 111u);
  EXPECT_EQ(f[2].index, 2u);
  EXPECT_EQ(f[2].gateway_id, 102u);
  EXPECT_TRUE(store_->Fragments(Key("other", 1)).empty());
}

TEST_F(PopStoreTest, NextCounterPerGatewayAndSurvivesReopen) {
  EXPECT_EQ(store_->NextCounter(7).value(), 1u);
  EXPECT_EQ(store_->NextCounter(7).value(), 2u);
  EXPECT_EQ(store_->NextCounter(8).value(), 1u);
  EXPECT_EQ(store_->NextCounter(7).value(), 3u);
  Reopen();
  EXPECT_EQ(store_->NextCounter(7).value(), 4u);
  EXPECT_EQ(store_->NextCounter(8).value(), 2u);
  EXPECT_EQ(store_->NextCounter(9).value(), 1u);
}

TEST_F(PopStoreTest, EverythingSurvivesReopen) {
  SCOPED_TRACE(SeedTrace(seed_));
  const ChunkKey cached = Key("alice", 1), replica = Key("alice", 2), placed = Key("bob", 3),
                 staged = Key("bob", 4), dropped = Key("bob", 5);
  const Bytes d1 = RandomBytes(rng_, 1111), d2 = RandomBytes(rng_, 2222), d3 = RandomBytes(rng_, 3333),
              d4 = RandomBytes(rng_, 444), d5 = RandomBytes(rng_, 555);
  ASSERT_TRUE(store_->PutChunk(cached, d1, ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(replica, d2, ChunkState::kReplica).ok());
  ASSERT_TRUE(store_->PutChunk(placed, d3, ChunkState::kReplica).ok());
  ASSERT_TRUE(store_->SetChunkState(placed, ChunkState::kPlaced).ok());
  ASSERT_TRUE(store_->PutChunk(staged, d4, ChunkState::kStaged).ok());
  ASSERT_TRUE(store_->PutChunk(dropped, d5, ChunkState::kCached).ok());
  ASSERT_TRUE(store_->DropChunkData(dropped).ok());
  ASSERT_TRUE(store_->RecordFragment(placed, 0, 50).ok());
  ASSERT_TRUE(store_->RecordFragment(placed, 1, 51).ok());
  const Bytes oid = Bytes(16, 0x77);
  ASSERT_TRUE(store_->PutVersion(Version(oid, 1, 10, "alice")).ok());
  ASSERT_TRUE(store_->PutVersion(Version(oid, 2, 20, "alice")).ok());
  ASSERT_TRUE(store_->MarkReported(oid, 1).ok());
  ASSERT_EQ(store_->NextCounter(3).value(), 1u);
  const uint64_t cached_bytes = store_->CachedBytes();
  EXPECT_EQ(cached_bytes, 1111u + 2222u + 3333u + 444u);

  Reopen();

  EXPECT_EQ(store_->GetChunk(cached).value(), d1);
  EXPECT_EQ(store_->GetChunk(replica).value(), d2);
  EXPECT_EQ(store_->GetChunk(placed).value(), d3);
  EXPECT_EQ(store_->GetChunk(staged).value(), d4);
  EXPECT_EQ(store_->GetChunk(dropped).status().code(), Code::kNotFound);
  EXPECT_EQ(StateOf(cached), ChunkState::kCached);
  EXPECT_EQ(StateOf(replica), ChunkState::kReplica);
  EXPECT_EQ(StateOf(placed), ChunkState::kPlaced);
  EXPECT_EQ(StateOf(staged), ChunkState::kStaged);
  EXPECT_EQ(store_->CachedBytes(), cached_bytes);
  EXPECT_EQ(store_->UnplacedChunks(10), std::vector<ChunkKey>{replica});
  auto f = store_->Fragments(placed);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[1].gateway_id, 51u);
  EXPECT_EQ(store_->LatestVersion(oid), 2u);
  EXPECT_EQ(store_->GetVersion(oid, 0).value().size_bytes(), 20u);
  EXPECT_EQ(store_->GetVersion(oid, 1).value().size_bytes(), 10u);
  auto pending = store_->UnreportedVersions(10);
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].version(), 2u);
  EXPECT_EQ(store_->NextCounter(3).value(), 2u);
}

// The LRU clock continues after a reopen: a chunk read after restarting is
// newer than everything used before it.
TEST_F(PopStoreTest, LruOrderContinuesAcrossReopen) {
  const ChunkKey a = Key("s", 1), b = Key("s", 2), c = Key("s", 3);
  ASSERT_TRUE(store_->PutChunk(a, Bytes(1, 1), ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(b, Bytes(2, 2), ChunkState::kCached).ok());
  ASSERT_TRUE(store_->PutChunk(c, Bytes(3, 3), ChunkState::kPlaced).ok());
  ASSERT_TRUE(store_->GetChunk(b).ok());
  EXPECT_EQ(EvictionKeys(), (std::vector<ChunkKey>{a, c, b}));
  Reopen();
  EXPECT_EQ(EvictionKeys(), (std::vector<ChunkKey>{a, c, b}));
  ASSERT_TRUE(store_->GetChunk(a).ok());
  EXPECT_EQ(EvictionKeys(), (std::vector<ChunkKey>{c, b, a}));
}

TEST_F(PopStoreTest, PutLeavesNoTemporaryFiles) {
  ASSERT_TRUE(store_->PutChunk(Key("s", 1), Bytes(100, 1), ChunkState::kCached).ok());
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir() + "/chunks", ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    EXPECT_EQ(it->path().extension(), "") << it->path();
}

// Kept commit results (issue 6): stored, replaced, removed, and read back
// oldest first after the store is reopened.
TEST_F(PopStoreTest, HeldResultsSurviveReopenOldestFirst) {
  auto rec = [](const std::string& w, uint64_t at_ms, bool undelivered, uint64_t version) {
    HeldResultRecord r{"alice", w, 1001, at_ms, undelivered, {}};
    r.reply.set_oid(std::string(16, 'o'));
    r.reply.set_version(version);
    return r;
  };
  ASSERT_TRUE(store_->SaveHeldResults({rec("w2", 200, true, 2), rec("w1", 100, true, 1),
                                       rec("w3", 300, false, 3)}, {}).ok());
  ASSERT_TRUE(store_->SaveHeldResults({rec("w2", 200, false, 2)}, {{"alice", "w3"}}).ok());
  ASSERT_TRUE(store_->SaveHeldResults({}, {{"alice", "absent"}}).ok());
  Reopen();
  auto got = store_->LoadHeldResults(10);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].write_id, "w1");
  EXPECT_EQ(got[0].at_ms, 100u);
  EXPECT_TRUE(got[0].undelivered);
  EXPECT_EQ(got[0].gateway_id, 1001u);
  EXPECT_EQ(got[0].subscriber, "alice");
  EXPECT_EQ(got[0].reply.version(), 1u);
  EXPECT_EQ(got[1].write_id, "w2");
  EXPECT_FALSE(got[1].undelivered) << "the replacing record was not kept";
  EXPECT_EQ(store_->LoadHeldResults(1).size(), 1u) << "limit not applied";
}

}  // namespace
}  // namespace mistore
