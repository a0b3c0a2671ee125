// PopStore: the POP's durable state — chunk payloads it holds (as replica or
// as cache), object versions it stores as primary/backup, where its region's
// fragments live, and per-gateway creation counters. PopCore calls it
// synchronously from the loop thread; every mutating call is durable when it
// returns (SQLite WAL + fsync'd files). The real implementation is
// SqlitePopStore; the simulator may substitute an in-memory one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

// Lifecycle of a chunk at a POP.
enum class ChunkState : int {
  kStaged = 0,    // uploaded by a client, its version not committed yet
  kReplica = 1,   // this POP is primary/backup of a version using it; not
                  // yet fully placed on gateways (never evicted)
  kPlaced = 2,    // replica whose k+m fragments are all placed
  kCached = 3,    // a copy kept only to serve reads (evictable)
};

struct ChunkKey {
  std::string subscriber;
  Bytes chunk_id;
  auto operator<=>(const ChunkKey&) const = default;
};

struct FragmentLoc {
  uint32_t index;
  uint32_t gateway_id;
};

// A POP whose placement of a chunk this POP waits for before it may drop
// its copy (issue 6). seq orders the waits (oldest first).
struct PlacementWait {
  ChunkKey key;
  uint32_t pop_id;
  uint64_t seq;
};

// A commit result kept for retries (held_results.h), as the store holds it.
// at_ms is in whatever clock the caller keeps it (PopCore: wall-clock
// milliseconds, so that its age survives a restart).
struct HeldResultRecord {
  std::string subscriber;
  std::string write_id;
  uint32_t gateway_id = 0;
  uint64_t at_ms = 0;
  bool undelivered = false;
  pb::PutReply reply;
};

struct ChunkInfo {
  ChunkState state;
  bool has_data;
  uint64_t size_bytes;
};

class PopStore {
 public:
  virtual ~PopStore() = default;

  // Stores payload; keeps the more durable of the old and new state.
  virtual Status PutChunk(const ChunkKey& key, const Bytes& data, ChunkState state) = 0;
  virtual Result<Bytes> GetChunk(const ChunkKey& key) = 0;  // kNotFound without data
  virtual Result<ChunkInfo> GetChunkInfo(const ChunkKey& key) = 0;
  virtual Status SetChunkState(const ChunkKey& key, ChunkState state) = 0;
  virtual Status DropChunkData(const ChunkKey& key) = 0;
  // Chunks in state kReplica (need placement), oldest first.
  virtual std::vector<ChunkKey> UnplacedChunks(size_t limit) = 0;
  // Chunks still staged (uploaded or sent here, their version not
  // committed here yet; pop_place_early.cc), oldest first.
  virtual std::vector<ChunkKey> StagedChunks(size_t limit) = 0;
  // Chunks whose data may be dropped (kPlaced or kCached), least recently
  // used first, with their sizes.
  virtual std::vector<std::pair<ChunkKey, uint64_t>> EvictionCandidates(size_t limit) = 0;
  virtual uint64_t CachedBytes() = 0;  // payload bytes held on disk

  // Stores a version; info.prepared() versions are invisible to
  // LatestVersion and to GetVersion(oid, 0) until CommitPrepared.
  virtual Status PutVersion(const pb::VersionInfo& info) = 0;
  virtual Status CommitPrepared(const Bytes& oid, uint64_t version) = 0;
  virtual Status DropVersion(const Bytes& oid, uint64_t version) = 0;
  virtual uint64_t PreparedVersion(const Bytes& oid) = 0;  // 0 when none
  virtual std::vector<pb::VersionInfo> PreparedVersions(size_t limit) = 0;
  // version 0: the latest committed one; N: version N, prepared or not
  // (check info.prepared()).
  virtual Result<pb::VersionInfo> GetVersion(const Bytes& oid, uint64_t version) = 0;
  virtual uint64_t LatestVersion(const Bytes& oid) = 0;  // latest committed; 0 when none
  virtual std::vector<pb::VersionInfo> UnreportedVersions(size_t limit) = 0;
  virtual Status MarkReported(const Bytes& oid, uint64_t version) = 0;

  virtual Status RecordFragment(const ChunkKey& key, uint32_t index, uint32_t gateway_id) = 0;
  virtual std::vector<FragmentLoc> Fragments(const ChunkKey& key) = 0;
  // (chunk, index) of the fragments recorded on one gateway, at most limit
  // (issue 6: what to rebuild when it is lost, what its inventory should hold).
  virtual std::vector<std::pair<ChunkKey, uint32_t>> FragmentsOnGateway(uint32_t gateway_id,
                                                                        size_t limit) = 0;
  // Every gateway some fragment is recorded on (a restarted POP expects
  // them back, and declares lost those that stay away).
  virtual std::vector<uint32_t> GatewaysWithFragments() = 0;

  virtual Result<uint32_t> NextCounter(uint32_t gateway_id) = 0;

  // ---- garbage collection (issue 7; pop_gc.cc) ----
  // Removes a version record, committed or prepared (absent: Ok). The
  // caller never removes an object's latest committed version.
  virtual Status DeleteVersion(const Bytes& oid, uint64_t version) = 0;
  // Every version record (committed and prepared) of the subscriber's
  // objects, at most limit: which chunk ids this POP still needs.
  virtual std::vector<pb::VersionInfo> SubscriberVersions(const std::string& subscriber,
                                                          size_t limit) = 0;
  // Removes a chunk: its record, its payload and its fragment records
  // (absent: Ok).
  virtual Status DeleteChunk(const ChunkKey& key) = 0;
  // Forgets where a chunk's fragments are (they were deleted), keeping the
  // chunk and its payload.
  virtual Status DropFragmentRecords(const ChunkKey& key) = 0;

  // ---- cold tier: when objects were last used (issue 7; pop_gc.cc) ----
  // Kept so that a restarted POP knows which objects go cold when. Times
  // are wall-clock ms (the caller converts); chunk_ids are the ones reads
  // noted besides the latest version's. PopCore writes each object at most
  // once per cold_persist_ms (and when it goes cold), in batches.
  struct ObjectUse {
    Bytes oid;
    std::string subscriber;
    int64_t used_wall_ms = 0;
    bool cold = false;  // this POP dropped its copies; the next read warms it
    std::vector<Bytes> chunk_ids;
    bool operator==(const ObjectUse&) const = default;
  };
  // Inserts or replaces each record (by oid), all in one transaction.
  virtual Status SaveObjectUses(const std::vector<ObjectUse>& uses) = 0;
  // At most limit records, by oid.
  virtual std::vector<ObjectUse> ObjectUses(size_t limit) = 0;

  // ---- region durability (issue 6) ----
  // Every fragment record of a chunk id, whoever's chunk it is (an inventory
  // names fragments by chunk id only).
  virtual std::vector<std::pair<ChunkKey, FragmentLoc>> FragmentsOfChunkId(const Bytes& chunk_id) = 0;
  // The POP keeps a chunk's data until the other POPs holding the object
  // (its other replica; both replicas for a non-replica entry POP) have
  // placed it in their regions: EvictionCandidates skips chunks with waits.
  // Adding a wait for a chunk without a record, or twice, does nothing.
  // Each call is one transaction.
  virtual Status AddPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) = 0;
  virtual Status ClearPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) = 0;
  // Waits with seq > after_seq, oldest first, at most limit.
  virtual std::vector<PlacementWait> PlacementWaits(uint64_t after_seq, size_t limit) = 0;

  // ---- kept commit results (issue 6; held_results.h) ----
  // Writes `put` (replacing a record of the same (subscriber, write id))
  // and removes the records named in `erase` (absent: Ok), in one
  // transaction.
  virtual Status SaveHeldResults(
      const std::vector<HeldResultRecord>& put,
      const std::vector<std::pair<std::string, std::string>>& erase) = 0;
  // Kept results, oldest at_ms first, at most limit.
  virtual std::vector<HeldResultRecord> LoadHeldResults(size_t limit) = 0;
};

}  // namespace mistore
