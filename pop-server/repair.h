// RepairQueue: which of a POP's chunks are below full redundancy and in what
// order they are rebuilt (issue 6). Pure state machine, time as now_ms
// arguments; PopCore does the I/O (obtain the chunk from its cache or k
// surviving fragments, encode, store the missing fragments elsewhere).
//
// Order: most endangered first — fewest live fragments, then oldest entry.
// Pace: a token bucket of repair_bytes_per_s (burst: one second's worth or
// one chunk's cost, whichever is larger) charged with each repair's
// estimated traffic (reads of k fragments unless the chunk is cached, plus
// the missing fragments written). Bound: queue_chunks_max entries; beyond it
// Add refuses and sets overflowed(), and the owner rescans its records once
// the queue drains. Failed repairs come back after retry_ms. Owned by
// PopCore; POP loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "pop-server/pop_store.h"

namespace mistore {

struct RepairParams {
  uint64_t repair_bytes_per_s = 50ull << 20;
  size_t queue_chunks_max = 1u << 20;
  size_t in_flight_max = 4;
  uint64_t retry_ms = 5000;
};

struct RepairStats {
  size_t queued_chunks = 0;
  size_t in_flight_chunks = 0;
  uint64_t queued_bytes = 0;        // estimated traffic still to do
  uint64_t repaired_chunks_total = 0;
  uint64_t repaired_fragments_total = 0;
  uint64_t bytes_total = 0;         // traffic charged by finished repairs
  uint64_t failed_total = 0;
  double eta_s = 0;                 // queued_bytes / repair_bytes_per_s
};

class RepairQueue {
 public:
  explicit RepairQueue(RepairParams p) : p_(p) {}

  // Queues (or re-prioritises) a chunk with `live` usable fragments whose
  // repair should cost about `bytes_est`. False when the queue is full.
  bool Add(uint64_t now_ms, const ChunkKey& key, int live, uint64_t bytes_est);
  // The next chunk to repair, if one is due, in-flight room is left and the
  // bandwidth budget allows; it moves to in-flight and its estimate is
  // charged to the bucket.
  std::optional<ChunkKey> Next(uint64_t now_ms);
  // A repair finished. ok=false: back in the queue after retry_ms.
  // fragments: how many were stored; bytes: the traffic it really caused
  // (the bucket is corrected by the difference from the estimate).
  void Done(uint64_t now_ms, const ChunkKey& key, bool ok, int fragments, uint64_t bytes);
  void Remove(const ChunkKey& key);  // no longer needs repair (queued only)

  bool Contains(const ChunkKey& key) const { return entries_.count(key) > 0; }
  bool InFlight(const ChunkKey& key) const;
  bool overflowed() const { return overflowed_; }
  void clear_overflowed() { overflowed_ = false; }
  RepairStats stats() const;
  const RepairParams& params() const { return p_; }
  void set_bytes_per_s(uint64_t r) { p_.repair_bytes_per_s = r; }

 private:
  struct Entry {
    int live;
    uint64_t seq;
    uint64_t bytes_est;
    uint64_t not_before_ms;
    bool in_flight;
  };
  void Refill(uint64_t now_ms);
  std::pair<int, uint64_t> Rank(const Entry& e) const { return {e.live, e.seq}; }

  RepairParams p_;
  std::map<ChunkKey, Entry> entries_;                          // queued + in flight
  std::map<std::pair<int, uint64_t>, ChunkKey> ready_;         // (live, seq) -> key
  std::multimap<uint64_t, ChunkKey> waiting_;                  // retry time -> key
  uint64_t seq_ = 0;
  double tokens_ = 0;
  uint64_t refilled_ms_ = 0;
  bool started_ = false;
  bool overflowed_ = false;
  size_t in_flight_ = 0;
  uint64_t queued_bytes_ = 0;
  RepairStats totals_;
};

}  // namespace mistore
