// ChunkCache: the home gateway's cache of its subscriber's sealed chunks
// (issue 11: "a read served from the home gateway's cache"). The agent
// keeps a copy of every chunk its subscriber's devices read (GetChunk
// answers) or wrote (PutChunk once the POP acknowledged it), as the client
// sealed it (ciphertext: the gateway never sees plaintext), named by chunk
// id. A GetChunk for a cached id is answered here instead of being relayed
// to the POP. Chunk ids name their content (keyed hash of the plaintext),
// so an entry never goes stale: the same id is always the same bytes.
//
// Bounds: bytes_max bytes and entries_max entries; least recently used
// entries are evicted first; a chunk larger than bytes_max is not kept.
// bytes_max 0 turns the cache off (nothing on disk).
//
// Storage: one file per chunk in `dir` (<64 hex of the chunk id>), written
// without fsync. Not persisted: Open empties `dir` and the index lives in
// memory only, so a restart (or a power cut) costs the cache's contents but
// can never index a torn file. A file that cannot be read back or no longer
// matches the CRC32C recorded when it was written is dropped and counted
// (corrupt_total): that read is a miss, relayed to the POP as before.
//
// Ownership: the agent (agent_main.cc) owns its one ChunkCache. Blocking
// file I/O on the agent's loop thread (chunks are at most 4 MiB); not
// thread-safe.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "shared/core/status.h"

namespace mistore {

struct ChunkCacheStats {
  uint64_t hits_total = 0;
  uint64_t misses_total = 0;
  uint64_t inserts_total = 0;
  uint64_t evictions_total = 0;
  uint64_t corrupt_total = 0;       // entries dropped on a failed read-back
  uint64_t write_errors_total = 0;  // copies not kept (disk full, I/O error)
  uint64_t too_large_total = 0;     // chunks larger than bytes_max: not kept
};

class ChunkCache {
 public:
  // Chunk ids are 32 bytes (keyed BLAKE2b-256 of the plaintext).
  static constexpr size_t kChunkIdBytes = 32;

  // Creates `dir` if needed and deletes every file in it. bytes_max 0: off
  // (dir is left alone).
  static Result<std::unique_ptr<ChunkCache>> Open(const std::string& dir,
                                                  uint64_t bytes_max,
                                                  size_t entries_max);

  // The sealed chunk, counted as a hit (and made most recently used), or
  // nullopt counted as a miss: not held, or held but unreadable/corrupt
  // (then dropped).
  std::optional<std::string> Get(const std::string& chunk_id);
  // Keeps a copy unless off, the id is malformed, the chunk is larger than
  // bytes_max, or it is held already (then only made most recently used).
  // Evicts least recently used entries until both bounds hold.
  void Put(const std::string& chunk_id, const std::string& sealed);

  bool enabled() const { return bytes_max_ > 0; }
  uint64_t bytes() const { return bytes_; }
  size_t entries() const { return index_.size(); }
  uint64_t bytes_max() const { return bytes_max_; }
  const ChunkCacheStats& stats() const { return stats_; }

 private:
  ChunkCache(std::string dir, uint64_t bytes_max, size_t entries_max)
      : dir_(std::move(dir)),
        bytes_max_(bytes_max),
        entries_max_(entries_max) {}
  struct Entry {
    uint64_t size;
    uint32_t crc;
    std::list<std::string>::iterator
        lru;  // position in lru_ (front: most recent)
  };
  std::string PathOf(const std::string& chunk_id) const;
  void Drop(const std::string& chunk_id);
  void EvictUntil(uint64_t incoming_bytes);

  std::string dir_;
  uint64_t bytes_max_;
  size_t entries_max_;
  uint64_t bytes_ = 0;
  std::list<std::string> lru_;
  std::unordered_map<std::string, Entry> index_;
  ChunkCacheStats stats_;
};

}  // namespace mistore
