#include "shared/store/fragment_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/fragment.h"
#include "shared/store/file_util.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::FilesUnder;
using store_test::RandomBytes;
using store_test::SeedTrace;
using store_test::TempDir;
using store_test::TestSeed;

constexpr uint64_t kBig = uint64_t(1) << 40;

struct Chunk {
  Bytes id;
  Bytes data;
  std::vector<Bytes> blobs;
};

Chunk MakeChunk(std::mt19937& rng, size_t len, int k, int m) {
  Chunk c;
  c.id = RandomBytes(rng, 32);
  c.data = RandomBytes(rng, len);
  auto r = EncodeChunkToFragments(c.id, c.data.data(), c.data.size(), k, m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (r.ok()) c.blobs = std::move(r).value();
  return c;
}

std::string FragPath(const std::string& dir, const Bytes& id, uint32_t index) {
  std::string hex = ToHex(id);
  return dir + "/" + hex.substr(0, 2) + "/" + hex + "." + std::to_string(index);
}

FragmentStore OpenOk(const std::string& dir, uint64_t max) {
  auto s = FragmentStore::Open(dir, max);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

void WriteRaw(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

class FragmentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = TestSeed();
    rng_.seed(seed_);
  }
  std::string Dir() const { return tmp_.path() + "/frags"; }
  uint32_t seed_ = 0;
  std::mt19937 rng_;
  TempDir tmp_;
};

TEST_F(FragmentStoreTest, OpenCreatesEmptyStore) {
  auto s = FragmentStore::Open(Dir() + "/nested", 1000);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(FileExists(Dir() + "/nested"));
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_EQ(s->free_bytes(), 1000u);
  EXPECT_EQ(s->fragment_count(), 0u);
  EXPECT_EQ(s->corrupt_at_open(), 0u);
}

TEST_F(FragmentStoreTest, PutGetRoundTripAndDecode) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 10000 + rng_() % 5000, 4, 2);
  ASSERT_EQ(c.blobs.size(), 6u);
  FragmentStore s = OpenOk(Dir(), kBig);
  uint64_t total = 0;
  for (auto& b : c.blobs) {
    Status st = s.Put(b);
    ASSERT_TRUE(st.ok()) << st.ToString();
    total += b.size();
  }
  EXPECT_EQ(s.fragment_count(), 6u);
  EXPECT_EQ(s.used_bytes(), total);
  EXPECT_EQ(s.free_bytes(), kBig - total);
  std::vector<Bytes> got;
  for (uint32_t i = 0; i < 6; i++) {
    auto g = s.Get(c.id, i);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(*g, c.blobs[i]) << "fragment " << i;
    // Laid out as documented: <dir>/<2 hex>/<chunk hex>.<index>.
    EXPECT_TRUE(FileExists(FragPath(Dir(), c.id, i)));
    if (i >= 2) got.push_back(std::move(g).value());  // any 4 of 6
  }
  auto chunk = DecodeChunkFromFragments(c.id, got, 4, 2, c.data.size());
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  EXPECT_EQ(*chunk, c.data);
  for (auto& f : FilesUnder(Dir())) EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
}

TEST_F(FragmentStoreTest, GetMissingAndBadId) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 1000, 2, 1);
  FragmentStore s = OpenOk(Dir(), kBig);
  ASSERT_TRUE(s.Put(c.blobs[0]).ok());
  EXPECT_EQ(s.Get(c.id, 1).status().code(), Code::kNotFound);
  Bytes other = c.id;
  other[31] ^= 1;
  EXPECT_EQ(s.Get(other, 0).status().code(), Code::kNotFound);
  EXPECT_EQ(s.Get(Bytes(31, 0), 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Get(Bytes{}, 0).status().code(), Code::kInvalidArgument);
}

TEST_F(FragmentStoreTest, PutRejectsCorruptBlobsAndWritesNothing) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 3000, 3, 2);
  FragmentStore s = OpenOk(Dir(), kBig);
  const Bytes& good = c.blobs[1];
  std::vector<Bytes> bad;
  Bytes flipped_payload = good;
  flipped_payload[100 + rng_() % (good.size() - 100)] ^= 0x40;
  bad.push_back(flipped_payload);
  Bytes flipped_header = good;
  flipped_header[8] ^= 0x01;  // chunk id byte: header check fails
  bad.push_back(flipped_header);
  bad.push_back(Bytes(good.begin(), good.end() - 1));  // truncated
  Bytes trailing = good;
  trailing.push_back(0);
  bad.push_back(trailing);
  bad.push_back(Bytes(good.begin(), good.begin() + 50));
  bad.push_back(Bytes{});
  bad.push_back(RandomBytes(rng_, good.size()));
  for (size_t i = 0; i < bad.size(); i++) {
    Status st = s.Put(bad[i]);
    EXPECT_EQ(st.code(), Code::kCorrupt) << "case " << i << ": " << st.ToString();
  }
  EXPECT_EQ(s.fragment_count(), 0u);
  EXPECT_EQ(s.used_bytes(), 0u);
  EXPECT_TRUE(FilesUnder(Dir()).empty());
  EXPECT_EQ(s.Get(c.id, 1).status().code(), Code::kNotFound);
}

TEST_F(FragmentStoreTest, PutOverStoreMaxIsExhaustedAndWritesNothing) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 4000, 2, 2);  // 4 blobs, all the same size
  const uint64_t one = c.blobs[0].size();
  const uint64_t max = 2 * one + one / 2;
  FragmentStore s = OpenOk(Dir(), max);
  ASSERT_TRUE(s.Put(c.blobs[0]).ok());
  ASSERT_TRUE(s.Put(c.blobs[1]).ok());
  EXPECT_EQ(s.used_bytes(), 2 * one);
  EXPECT_EQ(s.free_bytes(), max - 2 * one);
  Status st = s.Put(c.blobs[2]);
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
  EXPECT_EQ(s.used_bytes(), 2 * one);
  EXPECT_EQ(s.fragment_count(), 2u);
  EXPECT_FALSE(FileExists(FragPath(Dir(), c.id, 2)));
  EXPECT_EQ(s.Get(c.id, 2).status().code(), Code::kNotFound);
  EXPECT_EQ(FilesUnder(Dir()).size(), 2u);
  // Re-putting a fragment already held replaces it: no extra space needed.
  st = s.Put(c.blobs[1]);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(s.used_bytes(), 2 * one);
  EXPECT_EQ(s.fragment_count(), 2u);
}

TEST_F(FragmentStoreTest, ExactFitIsAllowed) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 999, 3, 1);
  uint64_t total = 0;
  for (auto& b : c.blobs) total += b.size();
  FragmentStore s = OpenOk(Dir(), total);
  for (auto& b : c.blobs) ASSERT_TRUE(s.Put(b).ok());
  EXPECT_EQ(s.used_bytes(), total);
  EXPECT_EQ(s.free_bytes(), 0u);
  Chunk more = MakeChunk(rng_, 10, 1, 1);
  EXPECT_EQ(s.Put(more.blobs[0]).code(), Code::kResourceExhausted);
}

TEST_F(FragmentStoreTest, ReopenRebuildsIndexFromFiles) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk a = MakeChunk(rng_, 5000, 4, 2);
  Chunk b = MakeChunk(rng_, 777, 2, 1);
  uint64_t total = 0;
  {
    FragmentStore s = OpenOk(Dir(), kBig);
    for (auto* c : {&a, &b})
      for (auto& blob : c->blobs) {
        ASSERT_TRUE(s.Put(blob).ok());
        total += blob.size();
      }
    EXPECT_EQ(s.fragment_count(), 9u);
  }
  FragmentStore s = OpenOk(Dir(), kBig);
  EXPECT_EQ(s.fragment_count(), 9u);
  EXPECT_EQ(s.used_bytes(), total);
  EXPECT_EQ(s.corrupt_at_open(), 0u);
  for (uint32_t i = 0; i < 3; i++) {
    auto g = s.Get(b.id, i);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ(*g, b.blobs[i]);
  }
  // The rebuilt index is used for the disk share: replacing counts once.
  ASSERT_TRUE(s.Put(a.blobs[0]).ok());
  EXPECT_EQ(s.used_bytes(), total);
  // And a smaller limit at reopen is enforced against what is on disk.
  FragmentStore tight = OpenOk(Dir(), total);
  EXPECT_EQ(tight.free_bytes(), 0u);
  Chunk c = MakeChunk(rng_, 10, 1, 1);
  EXPECT_EQ(tight.Put(c.blobs[0]).code(), Code::kResourceExhausted);
}

// Gateways hold version-1 fragments (BLAKE2b checks, 100-byte header)
// written before format version 2: the store indexes them at open (header
// scan and full verification), serves them and accepts them in Put, beside
// version-2 ones.
TEST_F(FragmentStoreTest, AcceptsVersion1AndVersion2Fragments) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 3000, 2, 1);
  std::vector<Bytes> v1;
  for (auto& b : c.blobs) {
    auto p = ParseFragment(b.data(), b.size());
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p->first.version, 2);
    FragmentHeader h = p->first;
    h.version = kFragmentFormatV1;
    v1.push_back(EncodeFragment(h, p->second.data(), p->second.size()));
    ASSERT_EQ(v1.back().size(), b.size() + 28);
  }
  {
    FragmentStore s = OpenOk(Dir(), kBig);
    ASSERT_TRUE(s.Put(v1[0]).ok());
    ASSERT_TRUE(s.Put(c.blobs[1]).ok());
  }
  WriteRaw(FragPath(Dir(), c.id, 2), v1[2]);  // left by an older agent
  for (bool verify : {false, true}) {
    SCOPED_TRACE(verify ? "verify at open" : "header scan");
    FragmentStoreOptions o;
    o.store_bytes_max = kBig;
    o.verify_payloads_at_open = verify;
    auto s = FragmentStore::Open(Dir(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->corrupt_at_open(), 0u);
    EXPECT_EQ(s->fragment_count(), 3u);
    EXPECT_EQ(s->used_bytes(), v1[0].size() + c.blobs[1].size() + v1[2].size());
    std::vector<Bytes> got;
    for (uint32_t i = 0; i < 3; i++) {
      auto g = s->Get(c.id, i);
      ASSERT_TRUE(g.ok()) << g.status().ToString();
      EXPECT_EQ(*g, i == 1 ? c.blobs[1] : v1[i]);
      got.push_back(std::move(g).value());
    }
    auto chunk = DecodeChunkFromFragments(c.id, got, 2, 1, c.data.size());
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    EXPECT_EQ(*chunk, c.data);
  }
  // A torn version-1 file (length disagrees with its 100-byte header) is
  // still caught by the header scan.
  Bytes torn = v1[2];
  torn.resize(torn.size() - 8);
  WriteRaw(FragPath(Dir(), c.id, 2), torn);
  FragmentStore s = OpenOk(Dir(), kBig);
  EXPECT_EQ(s.corrupt_at_open(), 1u);
  EXPECT_EQ(s.fragment_count(), 2u);
}

TEST_F(FragmentStoreTest, FlippedPayloadByteIsCorruptNeverServed) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 2048, 2, 1);
  FragmentStore s = OpenOk(Dir(), kBig);
  for (auto& b : c.blobs) ASSERT_TRUE(s.Put(b).ok());
  const std::string path = FragPath(Dir(), c.id, 1);
  auto raw = ReadFileBytes(path, 1 << 20);
  ASSERT_TRUE(raw.ok());
  Bytes damaged = *raw;
  damaged[100 + rng_() % (damaged.size() - 100)] ^= 0x01;
  WriteRaw(path, damaged);
  auto g = s.Get(c.id, 1);
  ASSERT_FALSE(g.ok()) << "served a damaged fragment";
  EXPECT_EQ(g.status().code(), Code::kCorrupt);
  // The others are still served.
  EXPECT_TRUE(s.Get(c.id, 0).ok());
  EXPECT_TRUE(s.Get(c.id, 2).ok());
  // It left the served set, its file is gone and it is queued as bad.
  EXPECT_FALSE(s.Has(FragmentName(c.id, 1)));
  EXPECT_FALSE(FileExists(path));
  EXPECT_EQ(s.fragment_count(), 2u);
  EXPECT_EQ(s.used_bytes(), c.blobs[0].size() + c.blobs[2].size());
  EXPECT_EQ(s.bad_unreported(), std::set<std::string>{FragmentName(c.id, 1)});
  EXPECT_EQ(s.Get(c.id, 1).status().code(), Code::kNotFound);
  // Damaged again on disk between runs: found at reopen, never indexed.
  ASSERT_TRUE(s.Put(c.blobs[1]).ok());
  WriteRaw(path, damaged);
  FragmentStore again = OpenOk(Dir(), kBig);
  EXPECT_EQ(again.corrupt_at_open(), 1u);
  EXPECT_EQ(again.fragment_count(), 2u);
  EXPECT_EQ(again.used_bytes(), c.blobs[0].size() + c.blobs[2].size());
  EXPECT_EQ(again.bad_unreported(), std::set<std::string>{FragmentName(c.id, 1)});
  EXPECT_EQ(again.Get(c.id, 1).status().code(), Code::kNotFound);
}

TEST_F(FragmentStoreTest, FileHoldingAnotherFragmentIsCorrupt) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 600, 2, 1);
  FragmentStore s = OpenOk(Dir(), kBig);
  ASSERT_TRUE(s.Put(c.blobs[0]).ok());
  ASSERT_TRUE(s.Put(c.blobs[1]).ok());
  // Valid fragment 0 copied over the file of fragment 1.
  WriteRaw(FragPath(Dir(), c.id, 1), c.blobs[0]);
  auto g = s.Get(c.id, 1);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kCorrupt);
}

TEST_F(FragmentStoreTest, TruncatedFileCountsAsCorruptAtOpen) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 3333, 3, 2);
  {
    FragmentStore s = OpenOk(Dir(), kBig);
    for (auto& b : c.blobs) ASSERT_TRUE(s.Put(b).ok());
  }
  const std::string path = FragPath(Dir(), c.id, 4);
  ASSERT_EQ(truncate(path.c_str(), off_t(c.blobs[4].size() / 2)), 0);
  // An empty file (torn before any byte landed) is corrupt too.
  ASSERT_EQ(truncate(FragPath(Dir(), c.id, 0).c_str(), 0), 0);
  FragmentStore s = OpenOk(Dir(), kBig);
  EXPECT_EQ(s.corrupt_at_open(), 2u);
  EXPECT_EQ(s.fragment_count(), 3u);
  EXPECT_EQ(s.used_bytes(), c.blobs[1].size() + c.blobs[2].size() + c.blobs[3].size());
  EXPECT_EQ(s.Get(c.id, 4).status().code(), Code::kNotFound);
  EXPECT_EQ(s.Get(c.id, 0).status().code(), Code::kNotFound);
  EXPECT_EQ(s.bad_unreported(),
            (std::set<std::string>{FragmentName(c.id, 0), FragmentName(c.id, 4)}));
  // Repair: putting the good fragment back makes it servable again.
  ASSERT_TRUE(s.Put(c.blobs[4]).ok());
  auto g = s.Get(c.id, 4);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g, c.blobs[4]);
  EXPECT_EQ(s.fragment_count(), 4u);
  EXPECT_EQ(s.bad_unreported(), std::set<std::string>{FragmentName(c.id, 0)});
}

TEST_F(FragmentStoreTest, LeftoverTmpRemovedAtOpenAndNotCounted) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = MakeChunk(rng_, 1500, 2, 1);
  {
    FragmentStore s = OpenOk(Dir(), kBig);
    ASSERT_TRUE(s.Put(c.blobs[0]).ok());
  }
  // An interrupted write of fragment 1 (a complete, valid blob even) and a
  // torn one of fragment 2, both under their temporary names.
  const std::string tmp1 = FragPath(Dir(), c.id, 1) + ".tmp";
  const std::string tmp2 = FragPath(Dir(), c.id, 2) + ".tmp";
  WriteRaw(tmp1, c.blobs[1]);
  WriteRaw(tmp2, Bytes(c.blobs[2].begin(), c.blobs[2].begin() + 40));
  ASSERT_TRUE(FileExists(tmp1));
  FragmentStore s = OpenOk(Dir(), kBig);
  EXPECT_FALSE(FileExists(tmp1));
  EXPECT_FALSE(FileExists(tmp2));
  EXPECT_EQ(s.fragment_count(), 1u);
  EXPECT_EQ(s.used_bytes(), c.blobs[0].size());
  EXPECT_EQ(s.corrupt_at_open(), 0u);
  EXPECT_EQ(s.Get(c.id, 1).status().code(), Code::kNotFound);
  EXPECT_EQ(FilesUnder(Dir()).size(), 1u);
}

// Many chunks spread over many subdirectories, checked against a model.
TEST_F(FragmentStoreTest, RandomisedAgainstModel) {
  SCOPED_TRACE(SeedTrace(seed_));
  std::vector<Chunk> chunks;
  for (int i = 0; i < 12; i++)
    chunks.push_back(MakeChunk(rng_, 1 + rng_() % 4000, 1 + int(rng_() % 4), 1 + int(rng_() % 3)));
  uint64_t total = 0;
  size_t count = 0;
  {
    FragmentStore s = OpenOk(Dir(), kBig);
    for (auto& c : chunks)
      for (auto& b : c.blobs)
        if (rng_() % 3) {
          ASSERT_TRUE(s.Put(b).ok());
          total += b.size();
          count++;
        }
    EXPECT_EQ(s.used_bytes(), total);
    EXPECT_EQ(s.fragment_count(), count);
  }
  FragmentStore s = OpenOk(Dir(), kBig);
  EXPECT_EQ(s.used_bytes(), total);
  EXPECT_EQ(s.fragment_count(), count);
  size_t served = 0;
  for (auto& c : chunks)
    for (uint32_t i = 0; i < c.blobs.size(); i++) {
      auto g = s.Get(c.id, i);
      if (g.ok()) {
        EXPECT_EQ(*g, c.blobs[i]);
        served++;
      } else {
        EXPECT_EQ(g.status().code(), Code::kNotFound);
      }
    }
  EXPECT_EQ(served, count);
}

}  // namespace
}  // namespace mistore
