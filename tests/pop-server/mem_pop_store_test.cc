// MemPopStore keeps CachedBytes and EvictionCandidates as running indexes
// (the simulator calls them after every placement); they must equal what a
// scan of its chunks gives: bytes of chunks holding data, and placed or
// cached chunks with data, least recently used first, none a placement
// wait holds.
#include "pop-server/mem_pop_store.h"

#include <gtest/gtest.h>

namespace mistore {
namespace {

ChunkKey Key(uint8_t b) { return ChunkKey{"alice", Bytes(32, b)}; }

TEST(MemPopStoreIndex, CachedBytesAndEvictionOrderFollowEveryChange) {
  MemPopStore s;
  ASSERT_TRUE(s.PutChunk(Key(1), Bytes(100, 1), ChunkState::kCached).ok());
  ASSERT_TRUE(s.PutChunk(Key(2), Bytes(200, 2), ChunkState::kStaged).ok());
  ASSERT_TRUE(s.PutChunk(Key(3), Bytes(300, 3), ChunkState::kPlaced).ok());
  EXPECT_EQ(s.CachedBytes(), 600u);
  auto c = s.EvictionCandidates(10);
  ASSERT_EQ(c.size(), 2u);  // the staged chunk is not evictable
  EXPECT_EQ(c[0].first, Key(1));
  EXPECT_EQ(c[1].first, Key(3));
  EXPECT_EQ(c[1].second, 300u);
  ASSERT_TRUE(s.GetChunk(Key(1)).ok());  // now the most recently used
  c = s.EvictionCandidates(10);
  EXPECT_EQ(c[0].first, Key(3));
  EXPECT_EQ(s.EvictionCandidates(1).size(), 1u);
  ASSERT_TRUE(s.SetChunkState(Key(2), ChunkState::kPlaced).ok());
  EXPECT_EQ(s.EvictionCandidates(10).size(), 3u);
  ASSERT_TRUE(s.AddPlacementWaits({Key(3)}, 2).ok());
  c = s.EvictionCandidates(10);
  ASSERT_EQ(c.size(), 2u) << "a chunk a placement wait holds was offered";
  ASSERT_TRUE(s.DropChunkData(Key(1)).ok());
  EXPECT_EQ(s.CachedBytes(), 500u);
  EXPECT_EQ(s.EvictionCandidates(10).size(), 1u);
  ASSERT_TRUE(s.PutChunk(Key(1), Bytes(50, 1), ChunkState::kCached).ok());  // back, smaller
  EXPECT_EQ(s.CachedBytes(), 550u);
  ASSERT_TRUE(s.DeleteChunk(Key(2)).ok());
  EXPECT_EQ(s.CachedBytes(), 350u);
  c = s.EvictionCandidates(10);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].first, Key(1));
  EXPECT_EQ(c[0].second, 50u);
}

// UnplacedChunks is a running index too: replica chunks in the order they
// were first stored, leaving it when placed or deleted.
TEST(MemPopStoreIndex, UnplacedChunksFollowEveryChange) {
  MemPopStore s;
  ASSERT_TRUE(s.PutChunk(Key(3), Bytes(10, 3), ChunkState::kReplica).ok());
  ASSERT_TRUE(s.PutChunk(Key(1), Bytes(10, 1), ChunkState::kCached).ok());
  ASSERT_TRUE(s.PutChunk(Key(2), Bytes(10, 2), ChunkState::kReplica).ok());
  ASSERT_TRUE(s.PutChunk(Key(1), Bytes(10, 1), ChunkState::kReplica).ok());  // cached -> replica
  // Key(1) keeps the place of its first store.
  EXPECT_EQ(s.UnplacedChunks(10), (std::vector<ChunkKey>{Key(3), Key(1), Key(2)}));
  EXPECT_EQ(s.UnplacedChunks(2), (std::vector<ChunkKey>{Key(3), Key(1)}));
  ASSERT_TRUE(s.SetChunkState(Key(3), ChunkState::kPlaced).ok());
  ASSERT_TRUE(s.DeleteChunk(Key(2)).ok());
  ASSERT_TRUE(s.DropChunkData(Key(1)).ok());  // no data, still not placed
  EXPECT_EQ(s.UnplacedChunks(10), (std::vector<ChunkKey>{Key(1)}));
  ASSERT_TRUE(s.SetChunkState(Key(1), ChunkState::kPlaced).ok());
  EXPECT_TRUE(s.UnplacedChunks(10).empty());
}

// StagedChunks: staged chunks only, oldest first, up to the limit.
TEST(MemPopStoreIndex, StagedChunksOldestFirst) {
  MemPopStore s;
  ASSERT_TRUE(s.PutChunk(Key(4), Bytes(4, 4), ChunkState::kStaged).ok());
  ASSERT_TRUE(s.PutChunk(Key(2), Bytes(2, 2), ChunkState::kReplica).ok());
  ASSERT_TRUE(s.PutChunk(Key(1), Bytes(1, 1), ChunkState::kStaged).ok());
  EXPECT_EQ(s.StagedChunks(10), (std::vector<ChunkKey>{Key(4), Key(1)}));
  EXPECT_EQ(s.StagedChunks(1), (std::vector<ChunkKey>{Key(4)}));
  ASSERT_TRUE(s.SetChunkState(Key(4), ChunkState::kReplica).ok());
  EXPECT_EQ(s.StagedChunks(10), (std::vector<ChunkKey>{Key(1)}));
}

}  // namespace
}  // namespace mistore
