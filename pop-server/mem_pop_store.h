// MemPopStore: PopStore held in memory, for the simulator and tests. Same
// semantics as SqlitePopStore (durable = "survives a simulated crash": the
// simulator keeps the object and hands it to the restarted PopCore). Can be
// told to refuse writes, to model a failing disk. Single-threaded.
#pragma once

#include <map>
#include <set>

#include "pop-server/pop_store.h"

namespace mistore {

class MemPopStore : public PopStore {
 public:
  bool fail_writes = false;  // every mutating call returns kIo while set
  uint64_t chunk_puts = 0;    // PutChunk calls (tests: what a read writes)

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
  struct Chunk {
    uint64_t seq;  // insertion order
    ChunkState state;
    bool has_data = false;
    Bytes data;
    uint64_t size = 0;
    uint64_t last_used = 0;
    std::map<uint32_t, uint32_t> fragments;  // index -> gateway
  };
  struct Version {
    pb::VersionInfo info;
    bool reported = false;
  };
  Status CheckWritable() const;
  bool Waiting(const ChunkKey& key) const;  // a placement wait holds its data
  // Kept in step with chunks_ so that CachedBytes and EvictionCandidates
  // need no scan (the simulator calls them after every placement): bytes
  // of chunks holding data, and (last_used, key) of those eviction may take;
  // likewise (seq, key) of the chunks not yet placed (UnplacedChunks, which
  // PopCore calls on every tick with nothing queued).
  static bool Evictable(const Chunk& c);
  void Unindex(const ChunkKey& key, const Chunk& c);
  void Index(const ChunkKey& key, const Chunk& c);
  uint64_t cached_bytes_ = 0;
  std::set<std::pair<uint64_t, ChunkKey>> evictable_;
  std::set<std::pair<uint64_t, ChunkKey>> unplaced_;
  uint64_t clock_ = 0;
  std::map<ChunkKey, Chunk> chunks_;
  std::map<std::pair<Bytes, uint64_t>, Version> versions_;
  std::map<Bytes, uint64_t> latest_;
  std::map<uint32_t, uint32_t> counters_;
  std::map<std::pair<ChunkKey, uint32_t>, uint64_t> waits_;  // (chunk, pop) -> seq
  uint64_t wait_seq_ = 0;
  // (subscriber, write id) -> (write seq, record): kept commit results
  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, HeldResultRecord>> held_;
  uint64_t held_seq_ = 0;
  std::map<Bytes, ObjectUse> uses_;  // cold tier: oid -> last use
};

}  // namespace mistore
