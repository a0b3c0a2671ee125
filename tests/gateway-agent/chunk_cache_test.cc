// ChunkCache (issue 11): the home gateway's LRU of sealed chunks. Bounds in
// bytes and entries, least-recently-used eviction, hit/miss counters, a
// corrupt file read as a miss, nothing kept across Open, off at 0 bytes.
#include "gateway-agent/chunk_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::FilesUnder;
using store_test::TempDir;

std::string Id(int i) { return std::string(32, char('a' + i)); }
std::string Chunk(int i, size_t n) { return std::string(n, char(i)); }

TEST(ChunkCache, MissThenHitCountsAndReturnsTheBytes) {
  TempDir tmp;
  auto c = ChunkCache::Open(tmp.path() + "/cc", 1 << 20, 100);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ChunkCache& cache = **c;
  EXPECT_FALSE(cache.Get(Id(1)).has_value());
  EXPECT_EQ(cache.stats().misses_total, 1u);
  cache.Put(Id(1), Chunk(1, 1000));
  auto got = cache.Get(Id(1));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, Chunk(1, 1000));
  EXPECT_EQ(cache.stats().hits_total, 1u);
  EXPECT_EQ(cache.stats().misses_total, 1u);
  EXPECT_EQ(cache.stats().inserts_total, 1u);
  EXPECT_EQ(cache.bytes(), 1000u);
  EXPECT_EQ(cache.entries(), 1u);
  cache.Put(Id(1), Chunk(1, 1000));  // held already: not written twice
  EXPECT_EQ(cache.stats().inserts_total, 1u);
  EXPECT_EQ(cache.bytes(), 1000u);
}

TEST(ChunkCache, StaysWithinItsByteLimitEvictingLeastRecentlyUsed) {
  TempDir tmp;
  auto c = ChunkCache::Open(tmp.path() + "/cc", 3000, 100);
  ASSERT_TRUE(c.ok());
  ChunkCache& cache = **c;
  cache.Put(Id(1), Chunk(1, 1000));
  cache.Put(Id(2), Chunk(2, 1000));
  cache.Put(Id(3), Chunk(3, 1000));
  ASSERT_TRUE(
      cache.Get(Id(1)).has_value());  // 1 is now the most recent; 2 the least
  cache.Put(Id(4), Chunk(4, 1500));   // needs 1500: evicts 2, then 3
  EXPECT_LE(cache.bytes(), 3000u);
  EXPECT_EQ(cache.bytes(), 2500u);
  EXPECT_EQ(cache.stats().evictions_total, 2u);
  EXPECT_TRUE(cache.Get(Id(1)).has_value());
  EXPECT_TRUE(cache.Get(Id(4)).has_value());
  EXPECT_FALSE(cache.Get(Id(2)).has_value());
  EXPECT_FALSE(cache.Get(Id(3)).has_value());
  EXPECT_EQ(FilesUnder(tmp.path() + "/cc").size(), 2u)
      << "evicted files are deleted";
}

TEST(ChunkCache, StaysWithinItsEntryLimit) {
  TempDir tmp;
  auto c = ChunkCache::Open(tmp.path() + "/cc", 1 << 20, 3);
  ASSERT_TRUE(c.ok());
  ChunkCache& cache = **c;
  for (int i = 0; i < 10; i++) {
    cache.Put(Id(i), Chunk(i, 10));
    EXPECT_LE(cache.entries(), 3u);
  }
  EXPECT_EQ(cache.stats().evictions_total, 7u);
  EXPECT_TRUE(cache.Get(Id(9)).has_value());
  EXPECT_FALSE(cache.Get(Id(6)).has_value());
}

TEST(ChunkCache, RefusesChunksLargerThanTheWholeCacheAndMalformedIds) {
  TempDir tmp;
  auto c = ChunkCache::Open(tmp.path() + "/cc", 1000, 100);
  ASSERT_TRUE(c.ok());
  ChunkCache& cache = **c;
  cache.Put(Id(1), Chunk(1, 800));
  cache.Put(Id(2), Chunk(2, 1001));
  EXPECT_EQ(cache.stats().too_large_total, 1u);
  EXPECT_TRUE(cache.Get(Id(1)).has_value()) << "a refused chunk evicts nothing";
  cache.Put("short", Chunk(3, 10));
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(ChunkCache, ACorruptedFileIsAMissAndIsDropped) {
  TempDir tmp;
  auto c = ChunkCache::Open(tmp.path() + "/cc", 1 << 20, 100);
  ASSERT_TRUE(c.ok());
  ChunkCache& cache = **c;
  cache.Put(Id(1), Chunk(1, 100));
  auto files = FilesUnder(tmp.path() + "/cc");
  ASSERT_EQ(files.size(), 1u);
  {
    std::fstream f(tmp.path() + "/cc/" + files[0],
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(50);
    f.put('X');
  }
  EXPECT_FALSE(cache.Get(Id(1)).has_value());
  EXPECT_EQ(cache.stats().corrupt_total, 1u);
  EXPECT_EQ(cache.stats().misses_total, 1u);
  EXPECT_EQ(cache.entries(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_TRUE(FilesUnder(tmp.path() + "/cc").empty());
}

TEST(ChunkCache, NotPersistedAcrossOpen) {
  TempDir tmp;
  {
    auto c = ChunkCache::Open(tmp.path() + "/cc", 1 << 20, 100);
    ASSERT_TRUE(c.ok());
    (*c)->Put(Id(1), Chunk(1, 100));
  }
  ASSERT_EQ(FilesUnder(tmp.path() + "/cc").size(), 1u);
  auto c = ChunkCache::Open(tmp.path() + "/cc", 1 << 20, 100);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(FilesUnder(tmp.path() + "/cc").empty())
      << "an earlier run's files are removed";
  EXPECT_FALSE((*c)->Get(Id(1)).has_value());
}

TEST(ChunkCache, ZeroBytesIsOff) {
  TempDir tmp;
  auto c = ChunkCache::Open(tmp.path() + "/cc", 0, 100);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE((*c)->enabled());
  (*c)->Put(Id(1), Chunk(1, 10));
  EXPECT_EQ((*c)->entries(), 0u);
  EXPECT_FALSE((*c)->Get(Id(1)).has_value());
  EXPECT_TRUE(FilesUnder(tmp.path()).empty()) << "nothing on disk";
}

}  // namespace
}  // namespace mistore
