#include "pop-server/repair.h"

#include <algorithm>

#include "shared/core/assert.h"

namespace mistore {

bool RepairQueue::Add(uint64_t now_ms, const ChunkKey& key, int live, uint64_t bytes_est) {
  Refill(now_ms);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    Entry& e = it->second;
    if (e.in_flight || e.not_before_ms > now_ms) {
      e.live = std::min(e.live, live);
      return true;
    }
    if (live < e.live) {  // more endangered now: move up
      ready_.erase(Rank(e));
      e.live = live;
      ready_[Rank(e)] = key;
    }
    return true;
  }
  if (entries_.size() >= p_.queue_chunks_max) {
    overflowed_ = true;
    return false;
  }
  Entry e{live, seq_++, bytes_est, 0, false};
  entries_[key] = e;
  ready_[Rank(e)] = key;
  queued_bytes_ += bytes_est;
  return true;
}

void RepairQueue::Refill(uint64_t now_ms) {
  if (!started_) {
    started_ = true;
    refilled_ms_ = now_ms;
    tokens_ = double(p_.repair_bytes_per_s);
    return;
  }
  if (now_ms <= refilled_ms_) return;
  tokens_ += double(p_.repair_bytes_per_s) * double(now_ms - refilled_ms_) / 1000.0;
  tokens_ = std::min(tokens_, double(p_.repair_bytes_per_s));
  refilled_ms_ = now_ms;
}

std::optional<ChunkKey> RepairQueue::Next(uint64_t now_ms) {
  Refill(now_ms);
  while (!waiting_.empty() && waiting_.begin()->first <= now_ms) {
    ChunkKey key = waiting_.begin()->second;
    waiting_.erase(waiting_.begin());
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.in_flight) continue;
    it->second.not_before_ms = 0;
    ready_[Rank(it->second)] = key;
  }
  if (ready_.empty() || in_flight_ >= p_.in_flight_max) return std::nullopt;
  // A repair may start while the bucket is positive; its cost may take it
  // below zero (one chunk's burst), which delays the next one.
  if (tokens_ <= 0) return std::nullopt;
  ChunkKey key = ready_.begin()->second;
  ready_.erase(ready_.begin());
  Entry& e = entries_.at(key);
  e.in_flight = true;
  in_flight_++;
  tokens_ -= double(e.bytes_est);
  return key;
}

void RepairQueue::Done(uint64_t now_ms, const ChunkKey& key, bool ok, int fragments,
                       uint64_t bytes) {
  Refill(now_ms);
  auto it = entries_.find(key);
  MS_ASSERT(it != entries_.end() && it->second.in_flight);
  Entry& e = it->second;
  e.in_flight = false;
  in_flight_--;
  tokens_ += double(e.bytes_est) - double(bytes);
  totals_.bytes_total += bytes;
  totals_.repaired_fragments_total += uint64_t(std::max(fragments, 0));
  if (ok) {
    totals_.repaired_chunks_total += fragments > 0;
    queued_bytes_ -= std::min(queued_bytes_, e.bytes_est);
    entries_.erase(it);
    return;
  }
  totals_.failed_total++;
  e.not_before_ms = now_ms + p_.retry_ms;
  waiting_.emplace(e.not_before_ms, key);
}

void RepairQueue::Remove(const ChunkKey& key) {
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.in_flight) return;
  ready_.erase(Rank(it->second));  // a waiting entry is skipped when its time comes
  queued_bytes_ -= std::min(queued_bytes_, it->second.bytes_est);
  entries_.erase(it);
}

bool RepairQueue::InFlight(const ChunkKey& key) const {
  auto it = entries_.find(key);
  return it != entries_.end() && it->second.in_flight;
}

RepairStats RepairQueue::stats() const {
  RepairStats s = totals_;
  s.in_flight_chunks = in_flight_;
  s.queued_chunks = entries_.size() - in_flight_;
  s.queued_bytes = queued_bytes_;
  s.eta_s = p_.repair_bytes_per_s ? double(queued_bytes_) / double(p_.repair_bytes_per_s) : 0;
  return s;
}

}  // namespace mistore
