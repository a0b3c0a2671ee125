#include "pop-server/mem_pop_store.h"

#include <set>

#include <algorithm>

namespace mistore {

Status MemPopStore::CheckWritable() const {
  if (fail_writes) return IoError("simulated disk refuses the write");
  return Status::Ok();
}

Status MemPopStore::PutChunk(const ChunkKey& key, const Bytes& data, ChunkState state) {
  chunk_puts++;
  MS_RETURN_IF_ERROR(CheckWritable());
  auto [it, inserted] = chunks_.try_emplace(key);
  Chunk& c = it->second;
  if (!inserted) Unindex(key, c);
  if (inserted) {
    c.seq = ++clock_;
    c.state = state;
  } else if (c.state == ChunkState::kCached || (c.state == ChunkState::kStaged && state != ChunkState::kCached)) {
    c.state = state;
  }
  if (!c.has_data) {  // as SqlitePopStore: a held payload is never rewritten
    c.has_data = true;
    c.data = data;
    c.size = data.size();
  }
  c.last_used = ++clock_;
  Index(key, c);
  return Status::Ok();
}

Result<Bytes> MemPopStore::GetChunk(const ChunkKey& key) {
  auto it = chunks_.find(key);
  if (it == chunks_.end() || !it->second.has_data) return NotFound("chunk not held here");
  Unindex(key, it->second);
  it->second.last_used = ++clock_;
  Index(key, it->second);
  return it->second.data;
}

Result<ChunkInfo> MemPopStore::GetChunkInfo(const ChunkKey& key) {
  auto it = chunks_.find(key);
  if (it == chunks_.end()) return NotFound("chunk unknown");
  return ChunkInfo{it->second.state, it->second.has_data, it->second.size};
}

Status MemPopStore::SetChunkState(const ChunkKey& key, ChunkState state) {
  MS_RETURN_IF_ERROR(CheckWritable());
  auto it = chunks_.find(key);
  if (it == chunks_.end()) return NotFound("chunk unknown");
  Unindex(key, it->second);
  it->second.state = state;
  Index(key, it->second);
  return Status::Ok();
}

Status MemPopStore::DropChunkData(const ChunkKey& key) {
  auto it = chunks_.find(key);
  if (it == chunks_.end()) return NotFound("chunk unknown");
  Unindex(key, it->second);
  it->second.has_data = false;
  it->second.data.clear();
  Index(key, it->second);  // still unplaced if it was
  return Status::Ok();
}

std::vector<ChunkKey> MemPopStore::UnplacedChunks(size_t limit) {
  std::vector<ChunkKey> out;  // in (seq, key) order, as a sorted scan gave
  for (auto& [s, k] : unplaced_) {
    if (out.size() >= limit) break;
    out.push_back(k);
  }
  return out;
}

std::vector<ChunkKey> MemPopStore::StagedChunks(size_t limit) {
  std::vector<std::pair<uint64_t, ChunkKey>> found;  // (seq, key): oldest first
  for (auto& [key, c] : chunks_)
    if (c.state == ChunkState::kStaged) found.push_back({c.seq, key});
  std::sort(found.begin(), found.end());
  std::vector<ChunkKey> out;
  for (auto& [seq, key] : found) {
    if (out.size() >= limit) break;
    out.push_back(key);
  }
  return out;
}

bool MemPopStore::Waiting(const ChunkKey& key) const {
  auto it = waits_.lower_bound({key, 0});
  return it != waits_.end() && it->first.first == key;
}

bool MemPopStore::Evictable(const Chunk& c) {
  return c.has_data && (c.state == ChunkState::kPlaced || c.state == ChunkState::kCached);
}

void MemPopStore::Unindex(const ChunkKey& key, const Chunk& c) {
  if (c.has_data) cached_bytes_ -= c.size;
  if (Evictable(c)) evictable_.erase({c.last_used, key});
  if (c.state == ChunkState::kReplica) unplaced_.erase({c.seq, key});
}

void MemPopStore::Index(const ChunkKey& key, const Chunk& c) {
  if (c.has_data) cached_bytes_ += c.size;
  if (Evictable(c)) evictable_.insert({c.last_used, key});
  if (c.state == ChunkState::kReplica) unplaced_.insert({c.seq, key});
}

// Least recently used first (last_used values are unique).
std::vector<std::pair<ChunkKey, uint64_t>> MemPopStore::EvictionCandidates(size_t limit) {
  std::vector<std::pair<ChunkKey, uint64_t>> out;
  for (auto& [t, k] : evictable_) {
    if (out.size() >= limit) break;
    if (!Waiting(k)) out.push_back({k, chunks_.at(k).size});
  }
  return out;
}

uint64_t MemPopStore::CachedBytes() { return cached_bytes_; }

Status MemPopStore::PutVersion(const pb::VersionInfo& info) {
  MS_RETURN_IF_ERROR(CheckWritable());
  Bytes oid(info.oid().begin(), info.oid().end());
  versions_[{oid, info.version()}] = Version{info, false};
  if (!info.prepared()) latest_[oid] = std::max(latest_[oid], info.version());
  return Status::Ok();
}

Status MemPopStore::CommitPrepared(const Bytes& oid, uint64_t version) {
  MS_RETURN_IF_ERROR(CheckWritable());
  auto it = versions_.find({oid, version});
  if (it == versions_.end()) return NotFound("version unknown");
  if (!it->second.info.prepared()) return Status::Ok();
  it->second.info.set_prepared(false);
  latest_[oid] = std::max(latest_[oid], version);
  return Status::Ok();
}

Status MemPopStore::DropVersion(const Bytes& oid, uint64_t version) {
  auto it = versions_.find({oid, version});
  if (it != versions_.end() && it->second.info.prepared()) versions_.erase(it);
  return Status::Ok();
}

uint64_t MemPopStore::PreparedVersion(const Bytes& oid) {
  uint64_t v = 0;
  for (auto it = versions_.lower_bound({oid, 0}); it != versions_.end() && it->first.first == oid; ++it)
    if (it->second.info.prepared()) v = std::max(v, it->first.second);
  return v;
}

std::vector<pb::VersionInfo> MemPopStore::PreparedVersions(size_t limit) {
  std::vector<pb::VersionInfo> out;
  for (auto& [k, v] : versions_) {
    if (out.size() >= limit) break;
    if (v.info.prepared()) out.push_back(v.info);
  }
  return out;
}

Result<pb::VersionInfo> MemPopStore::GetVersion(const Bytes& oid, uint64_t version) {
  if (version == 0) version = LatestVersion(oid);
  auto it = versions_.find({oid, version});
  if (it == versions_.end()) return NotFound("version " + std::to_string(version) + " unknown");
  return it->second.info;
}

uint64_t MemPopStore::LatestVersion(const Bytes& oid) {
  auto it = latest_.find(oid);
  return it == latest_.end() ? 0 : it->second;
}

std::vector<pb::VersionInfo> MemPopStore::UnreportedVersions(size_t limit) {
  std::vector<pb::VersionInfo> out;
  for (auto& [k, v] : versions_) {
    if (out.size() >= limit) break;
    if (!v.reported && !v.info.prepared()) out.push_back(v.info);
  }
  return out;
}

Status MemPopStore::MarkReported(const Bytes& oid, uint64_t version) {
  auto it = versions_.find({oid, version});
  if (it == versions_.end()) return NotFound("version unknown");
  it->second.reported = true;
  return Status::Ok();
}

Status MemPopStore::RecordFragment(const ChunkKey& key, uint32_t index, uint32_t gateway_id) {
  MS_RETURN_IF_ERROR(CheckWritable());
  auto it = chunks_.find(key);
  if (it == chunks_.end()) return NotFound("chunk unknown");
  it->second.fragments[index] = gateway_id;
  return Status::Ok();
}

std::vector<FragmentLoc> MemPopStore::Fragments(const ChunkKey& key) {
  std::vector<FragmentLoc> out;
  auto it = chunks_.find(key);
  if (it == chunks_.end()) return out;
  for (auto& [i, g] : it->second.fragments) out.push_back(FragmentLoc{i, g});
  return out;
}

std::vector<std::pair<ChunkKey, uint32_t>> MemPopStore::FragmentsOnGateway(uint32_t gateway_id,
                                                                         size_t limit) {
  std::vector<std::pair<ChunkKey, uint32_t>> out;
  for (auto& [key, c] : chunks_)
    for (auto& [i, g] : c.fragments)
      if (g == gateway_id && out.size() < limit) out.emplace_back(key, i);
  return out;
}

std::vector<uint32_t> MemPopStore::GatewaysWithFragments() {
  std::set<uint32_t> ids;
  for (auto& [key, c] : chunks_)
    for (auto& [i, g] : c.fragments) ids.insert(g);
  return std::vector<uint32_t>(ids.begin(), ids.end());
}

Result<uint32_t> MemPopStore::NextCounter(uint32_t gateway_id) {
  MS_RETURN_IF_ERROR(CheckWritable());
  return ++counters_[gateway_id];
}

std::vector<std::pair<ChunkKey, FragmentLoc>> MemPopStore::FragmentsOfChunkId(const Bytes& chunk_id) {
  std::vector<std::pair<ChunkKey, FragmentLoc>> out;
  for (auto& [key, c] : chunks_)
    if (key.chunk_id == chunk_id)
      for (auto& [i, g] : c.fragments) out.push_back({key, FragmentLoc{i, g}});
  return out;
}

Status MemPopStore::AddPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) {
  MS_RETURN_IF_ERROR(CheckWritable());
  for (auto& key : keys)
    if (chunks_.count(key) && !waits_.count({key, pop_id})) waits_[{key, pop_id}] = ++wait_seq_;
  return Status::Ok();
}

Status MemPopStore::ClearPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) {
  MS_RETURN_IF_ERROR(CheckWritable());
  for (auto& key : keys) waits_.erase({key, pop_id});
  return Status::Ok();
}

std::vector<PlacementWait> MemPopStore::PlacementWaits(uint64_t after_seq, size_t limit) {
  std::vector<PlacementWait> out;
  for (auto& [kp, seq] : waits_)
    if (seq > after_seq) out.push_back(PlacementWait{kp.first, kp.second, seq});
  std::sort(out.begin(), out.end(),
            [](const PlacementWait& a, const PlacementWait& b) { return a.seq < b.seq; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

// ---- garbage collection (issue 7) ----

Status MemPopStore::DeleteVersion(const Bytes& oid, uint64_t version) {
  MS_RETURN_IF_ERROR(CheckWritable());
  versions_.erase({oid, version});
  return Status::Ok();
}

std::vector<pb::VersionInfo> MemPopStore::SubscriberVersions(const std::string& subscriber,
                                                             size_t limit) {
  std::vector<pb::VersionInfo> out;
  for (auto& [k, v] : versions_)
    if (v.info.subscriber() == subscriber && out.size() < limit) out.push_back(v.info);
  return out;
}

Status MemPopStore::DeleteChunk(const ChunkKey& key) {
  MS_RETURN_IF_ERROR(CheckWritable());
  auto it = chunks_.find(key);
  if (it != chunks_.end()) {
    Unindex(key, it->second);
    chunks_.erase(it);
  }
  return Status::Ok();
}

Status MemPopStore::DropFragmentRecords(const ChunkKey& key) {
  MS_RETURN_IF_ERROR(CheckWritable());
  auto it = chunks_.find(key);
  if (it != chunks_.end()) it->second.fragments.clear();
  return Status::Ok();
}

// ---- cold tier (issue 7) ----

Status MemPopStore::SaveObjectUses(const std::vector<ObjectUse>& uses) {
  MS_RETURN_IF_ERROR(CheckWritable());
  for (const auto& u : uses) uses_[u.oid] = u;
  return Status::Ok();
}

std::vector<PopStore::ObjectUse> MemPopStore::ObjectUses(size_t limit) {
  std::vector<ObjectUse> out;
  for (auto it = uses_.begin(); it != uses_.end() && out.size() < limit; ++it)
    out.push_back(it->second);
  return out;
}

// ---- kept commit results (issue 6) ----

Status MemPopStore::SaveHeldResults(const std::vector<HeldResultRecord>& put,
                                    const std::vector<std::pair<std::string, std::string>>& erase) {
  MS_RETURN_IF_ERROR(CheckWritable());
  for (auto& r : put) held_[{r.subscriber, r.write_id}] = {++held_seq_, r};
  for (auto& key : erase) held_.erase(key);
  return Status::Ok();
}

std::vector<HeldResultRecord> MemPopStore::LoadHeldResults(size_t limit) {
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, const HeldResultRecord*>> order;
  for (auto& [key, v] : held_) order.push_back({{v.second.at_ms, v.first}, &v.second});
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<HeldResultRecord> out;
  for (auto& [rank, r] : order) {
    if (out.size() >= limit) break;
    out.push_back(*r);
  }
  return out;
}

}  // namespace mistore
