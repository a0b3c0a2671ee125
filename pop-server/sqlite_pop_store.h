// SqlitePopStore: PopStore on SQLite (metadata, WAL) plus one file per chunk
// payload under <data_dir>/chunks/ (written to a temporary name, fsynced,
// renamed). Integer row ids key every table (random 128-bit keys make batched
// inserts ~17x slower). Loop thread only.
#pragma once

#include <memory>
#include <string>

#include "pop-server/pop_store.h"
#include "shared/store/sqlite.h"

namespace mistore {

class SqlitePopStore : public PopStore {
 public:
  static Result<std::unique_ptr<SqlitePopStore>> Open(const std::string& data_dir);

  Status PutChunk(const ChunkKey& key, const Bytes& data, ChunkState state) override;
  Result<Bytes> GetChunk(const ChunkKey& key) override;
  Result<ChunkInfo> GetChunkInfo(const ChunkKey& key) override;
  Status SetChunkState(const ChunkKey& key, ChunkState state) override;
  Status DropChunkData(const ChunkKey& key) override;
  std::vector<ChunkKey> UnplacedChunks(size_t limit) override;
  std::vector<ChunkKey> StagedChunks(size_t limit) override;
  std::vector<uint32_t> GatewaysWithFragments() override;
  std::vector<std::pair<ChunkKey, uint64_t>> EvictionCandidates(size_t limit) override;
  uint64_t CachedBytes() override;

  Status PutVersion(const pb::VersionInfo& info) override;
  Status CommitPrepared(const Bytes& oid, uint64_t version) override;
  Status DropVersion(const Bytes& oid, uint64_t version) override;
  uint64_t PreparedVersion(const Bytes& oid) override;
  std::vector<pb::VersionInfo> PreparedVersions(size_t limit) override;
  Result<pb::VersionInfo> GetVersion(const Bytes& oid, uint64_t version) override;
  uint64_t LatestVersion(const Bytes& oid) override;
  std::vector<pb::VersionInfo> UnreportedVersions(size_t limit) override;
  Status MarkReported(const Bytes& oid, uint64_t version) override;

  Status RecordFragment(const ChunkKey& key, uint32_t index, uint32_t gateway_id) override;
  std::vector<FragmentLoc> Fragments(const ChunkKey& key) override;
  std::vector<std::pair<ChunkKey, uint32_t>> FragmentsOnGateway(uint32_t gateway_id,
                                                                size_t limit) override;

  Result<uint32_t> NextCounter(uint32_t gateway_id) override;

  Status DeleteVersion(const Bytes& oid, uint64_t version) override;
  std::vector<pb::VersionInfo> SubscriberVersions(const std::string& subscriber,
                                                  size_t limit) override;
  Status DeleteChunk(const ChunkKey& key) override;
  Status DropFragmentRecords(const ChunkKey& key) override;
  Status SaveObjectUses(const std::vector<ObjectUse>& uses) override;  // cold tier (issue 7)
  std::vector<ObjectUse> ObjectUses(size_t limit) override;

  std::vector<std::pair<ChunkKey, FragmentLoc>> FragmentsOfChunkId(const Bytes& chunk_id) override;
  Status AddPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) override;
  Status ClearPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) override;
  std::vector<PlacementWait> PlacementWaits(uint64_t after_seq, size_t limit) override;

  Status SaveHeldResults(const std::vector<HeldResultRecord>& put,
                         const std::vector<std::pair<std::string, std::string>>& erase) override;
  std::vector<HeldResultRecord> LoadHeldResults(size_t limit) override;

 private:
  SqlitePopStore(std::string dir, Db db) : dir_(std::move(dir)), db_(std::move(db)) {}
  Status Init();
  Status InitObjectUses();  // cold tier's table (issue 7)
  std::vector<ChunkKey> ChunksInState(ChunkState state, size_t limit);  // oldest first
  Result<int64_t> ChunkRow(const ChunkKey& key, bool create);
  std::string ChunkPath(int64_t row) const;
  Result<int64_t> ObjectRow(const Bytes& oid, const std::string& subscriber, bool create);

  std::string dir_;
  Db db_;
  uint64_t clock_ = 0;  // LRU order of chunk use
};

}  // namespace mistore
