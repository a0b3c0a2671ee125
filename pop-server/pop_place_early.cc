// PopCore, placement before the commit (issue 11, "writes down to gateways
// start placing only after the commit"). A replica POP used to place a
// chunk's k+m fragments on its region's gateways only once the version
// naming it was prepared or committed here (StoreReplicaChunks), so a write
// "down to the gateways" paid the whole placement after the upload. Now a
// chunk that arrives here as at a replica is placed at once, while it is
// still staged:
//   - uploaded here by a client whose HaveChunks named the object
//     (pop_forward.cc) when this POP is, or will be, its primary or backup;
//   - sent here by another POP (StoreChunk: forwarded during the upload, or
//     pushed by a commit), which only ever sends to a replica.
// The chunk stays staged (its payload is never evicted) and its fragment
// records are kept. At the commit, StoreReplicaChunks marks a chunk whose
// k+m fragments are all recorded placed (no second placement), one still
// being placed replica (FinishPlacement then marks it placed), and any
// other replica as before (placed again from the start).
//
// A version that never commits here leaves staged chunks with fragments on
// the gateways. Each staged chunk placed is remembered with the time its
// fragments are due to go (staged_placed_: placement began +
// staged_fragments_keep_ms; after a restart, the store's staged chunks with
// fragments count from the restart); one still staged then, and not in use
// by an upload, push or placement, has its fragments deleted from the
// gateways (DeleteFragments) and then its records dropped. Its payload
// stays, as any staged payload does: if a commit still comes, the chunk is
// placed then. While its fragments are
// being deleted the chunk is not placed (sweeping_; EnqueuePlacement defers
// it and FinishStagedSweep enqueues it if a commit came meanwhile), so a
// late DeleteFragments never removes a fragment of a new placement.
//
// Bounds: staged_placements_max chunks placed ahead of their commit at once
// (beyond: placed at the commit); the sweep handles at most
// kStagedSweepBatch chunks per tick.
// Runs on the daemon's loop thread (or the simulator's), like the rest of
// PopCore.
#include "pop-server/pop_core.h"
#include "shared/core/log.h"

namespace mistore {

namespace {
constexpr size_t kStagedSweepBatch = 64;
constexpr uint64_t kStagedSweepRetryMs = 60000;  // after a gateway did not answer
constexpr size_t kStagedReloadMax = 1u << 20;
std::string EarlyStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
}  // namespace

void PopCore::PlaceBeforeCommit(const ChunkKey& key) {
  if (!p_.place_before_commit || !p_.place_fragments) return;
  if (staged_placed_.count(key) || sweeping_.count(key) || queued_or_placing_.count(key)) return;
  auto info = store_->GetChunkInfo(key);
  if (!info.ok() || info->state != ChunkState::kStaged || !info->has_data) return;
  if (staged_placed_.size() >= p_.staged_placements_max) return;  // placed at its commit
  staged_placed_[key] = now_ms_ + p_.staged_fragments_keep_ms;
  EnqueuePlacement(key);
  PumpPlacement();
}

bool PopCore::FullyPlaced(const ChunkKey& key) {
  const uint32_t n = uint32_t(p_.k + p_.m);
  std::set<uint32_t> indices;
  for (auto& loc : store_->Fragments(key))
    if (loc.index < n) indices.insert(loc.index);
  return indices.size() == n;
}

void PopCore::SweepStagedFragments() {
  if (!staged_placed_loaded_) {  // after a restart: what the store says, timed from now
    staged_placed_loaded_ = true;
    for (auto& key : store_->StagedChunksWithFragments(kStagedReloadMax))
      staged_placed_.emplace(key, now_ms_ + p_.staged_fragments_keep_ms);
  }
  size_t started = 0;
  for (auto it = staged_placed_.begin();
       it != staged_placed_.end() && started < kStagedSweepBatch;) {
    const ChunkKey key = it->first;
    auto info = store_->GetChunkInfo(key);
    if (!info.ok() || info->state != ChunkState::kStaged) {  // committed, or gone
      it = staged_placed_.erase(it);
      continue;
    }
    if (now_ms_ < it->second || ChunkBusy(key) || sweeping_.count(key)) {
      ++it;
      continue;
    }
    // Every fragment's gateway must answer; a lost gateway's are gone with it.
    std::map<uint32_t, std::vector<uint32_t>> by_gateway;
    bool reachable = true;
    for (auto& loc : store_->Fragments(key)) {
      const GatewayRecord* g = members_.Find(loc.gateway_id);
      if (!IsGatewayConnected(loc.gateway_id)) {
        if (g && g->state == GwState::kLost) continue;
        reachable = false;
        break;
      }
      by_gateway[loc.gateway_id].push_back(loc.index);
    }
    if (!reachable) {  // asked again next tick
      ++it;
      continue;
    }
    started++;
    sweeping_.insert(key);
    it = staged_placed_.erase(it);
    MS_INFO("pop", "deleting fragments of a chunk whose commit never came",
            "chunk=" + ToHex(key.chunk_id).substr(0, 12) +
                " gateways=" + std::to_string(by_gateway.size()));
    if (by_gateway.empty()) {
      FinishStagedSweep(key, true);
      continue;
    }
    auto left = std::make_shared<size_t>(by_gateway.size());
    auto all_ok = std::make_shared<bool>(true);
    for (auto& [gw, indices] : by_gateway) {
      pb::Envelope req;
      for (uint32_t idx : indices) {
        auto* f = req.mutable_delete_fragments()->add_fragments();
        f->set_chunk_id(EarlyStr(key.chunk_id));
        f->set_index(idx);
      }
      Call(Dest{Dest::kGateway, gw}, req, [this, key, left, all_ok](Result<pb::Envelope> r) {
        if (!r.ok()) *all_ok = false;
        if (--*left == 0) FinishStagedSweep(key, *all_ok);
      });
    }
  }
}

void PopCore::FinishStagedSweep(const ChunkKey& key, bool all_deleted) {
  sweeping_.erase(key);
  auto info = store_->GetChunkInfo(key);
  if (!info.ok()) return;
  if (!all_deleted) {
    // Some fragments may still be there: keep the records and try again
    // later (unless a commit came meanwhile: then they serve it).
    if (info->state == ChunkState::kStaged)
      staged_placed_[key] = now_ms_ + kStagedSweepRetryMs;
    else if (info->state == ChunkState::kReplica)
      EnqueuePlacement(key);
    return;
  }
  if (!store_->DropFragmentRecords(key).ok()) {
    if (info->state == ChunkState::kStaged) staged_placed_[key] = now_ms_ + kStagedSweepRetryMs;
    return;
  }
  staged_fragments_swept_total_++;
  // A commit that came while the fragments were deleted set it kReplica
  // and left the placement to us.
  if (info->state == ChunkState::kReplica) EnqueuePlacement(key);
}

}  // namespace mistore
