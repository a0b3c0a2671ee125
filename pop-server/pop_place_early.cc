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
// A version that never commits here (the client gave up, the commit went
// elsewhere) used to leave its staged chunks on the POP's disk for good,
// and now their fragments on the gateways too. Every chunk stored staged
// is timed (staged_due_: deleted from its last arrival +
// staged_keep_ms, 24 h; at most staged_tracked_max are timed, the rest are
// found again at the next restart, when every staged chunk of the store is
// timed from the restart). One still staged then, not in use (an upload's
// or a HaveChunks' pin, a push, a placement, a repair) and named by no
// version record here, has its fragments deleted from the gateways
// (DeleteFragments) and then its record, payload and fragment records
// (DeleteChunk). One that a version record here does name (a state change
// that failed on a failing disk) is made a replica chunk instead and placed.
// While its fragments are being deleted a chunk is not placed (sweeping_;
// EnqueuePlacement defers it, and FinishStagedSweep enqueues it if a commit
// came meanwhile, keeping the chunk), so a late DeleteFragments never
// removes a fragment of a new placement.
//
// Bounds: staged_placements_max chunks placed ahead of their commit at once
// (beyond: placed at the commit), staged_tracked_max chunks timed, and
// kStagedSweepBatch due chunks looked at per tick (soonest first).
// Runs on the daemon's loop thread (or the simulator's), like the rest of
// PopCore.
#include "pop-server/pop_core.h"
#include "shared/core/log.h"

namespace mistore {

namespace {
constexpr size_t kStagedSweepBatch = 64;
constexpr uint64_t kStagedSweepRetryMs = 60000;  // after a gateway did not answer
std::string EarlyStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
}  // namespace

void PopCore::NoteStaged(const ChunkKey& key) {
  auto info = store_->GetChunkInfo(key);
  if (!info.ok() || info->state != ChunkState::kStaged) return;
  if (staged_due_.count(key)) {
    SetStagedDue(key, now_ms_ + p_.staged_keep_ms);  // arrived again: in use
    return;
  }
  if (staged_due_.size() >= p_.staged_tracked_max) {
    if (!staged_untracked_logged_)
      MS_WARN("pop", "too many staged chunks to time; the rest wait for a restart",
              "staged_tracked_max=" + std::to_string(p_.staged_tracked_max));
    staged_untracked_logged_ = true;
    return;
  }
  SetStagedDue(key, now_ms_ + p_.staged_keep_ms);
}

void PopCore::SetStagedDue(const ChunkKey& key, uint64_t due_ms) {
  auto it = staged_due_.find(key);
  if (it != staged_due_.end()) staged_by_due_.erase({it->second, key});
  staged_due_[key] = due_ms;
  staged_by_due_.insert({due_ms, key});
}

void PopCore::PlaceBeforeCommit(const ChunkKey& key) {
  if (!p_.place_before_commit || !p_.place_fragments) return;
  if (placed_early_.count(key) || sweeping_.count(key) || queued_or_placing_.count(key)) return;
  auto info = store_->GetChunkInfo(key);
  if (!info.ok() || info->state != ChunkState::kStaged || !info->has_data) return;
  if (placed_early_.size() >= p_.staged_placements_max) return;  // placed at its commit
  if (FullyPlaced(key)) return;                                  // placed before (sent here again)
  placed_early_.insert(key);
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

void PopCore::ChunkCommitted(const ChunkKey& key) {
  auto it = staged_due_.find(key);
  if (it != staged_due_.end()) {
    staged_by_due_.erase({it->second, key});
    staged_due_.erase(it);
  }
  placed_early_.erase(key);
}

void PopCore::MakeReplicaChunk(const ChunkKey& key, ChunkState was) {
  ChunkCommitted(key);
  if (!p_.place_fragments) {  // the DC's stand-in keeps whole copies instead
    (void)store_->SetChunkState(key, ChunkState::kPlaced);
    return;
  }
  // Placed before the commit: done, or finishing (FinishPlacement then
  // marks it placed).
  bool placed_early = was == ChunkState::kStaged && !queued_or_placing_.count(key) &&
                      !sweeping_.count(key) && FullyPlaced(key);
  if (placed_early) {
    if (store_->SetChunkState(key, ChunkState::kPlaced).ok()) EvictIfNeeded();
  } else if (store_->SetChunkState(key, ChunkState::kReplica).ok()) {
    EnqueuePlacement(key);
  }
}

void PopCore::AdoptNamedStaged(const ChunkKey& key) {
  MakeReplicaChunk(key, ChunkState::kStaged);
  PumpPlacement();
}

void PopCore::SweepStaged() {
  if (!staged_due_loaded_) {  // after a restart: what the store holds, timed from now
    staged_due_loaded_ = true;
    for (auto& key : store_->StagedChunks(p_.staged_tracked_max))
      if (!staged_due_.count(key)) SetStagedDue(key, now_ms_ + p_.staged_keep_ms);
  }
  std::map<std::string, std::set<Bytes>> live;  // subscriber -> chunks its versions name
  std::set<std::string> unknown;                // subscribers with too many versions to tell
  size_t looked = 0;
  while (!staged_by_due_.empty() && staged_by_due_.begin()->first <= now_ms_ &&
         looked < kStagedSweepBatch) {
    looked++;
    const ChunkKey key = staged_by_due_.begin()->second;
    auto info = store_->GetChunkInfo(key);
    if (!info.ok() || info->state != ChunkState::kStaged) {  // committed, or gone
      ChunkCommitted(key);
      continue;
    }
    if (ChunkBusy(key) || sweeping_.count(key)) {  // in use: looked at again later
      SetStagedDue(key, now_ms_ + kStagedSweepRetryMs);
      continue;
    }
    if (!live.count(key.subscriber) && !unknown.count(key.subscriber)) {
      std::set<Bytes> ids;
      if (LiveChunkIds(key.subscriber, &ids))
        live[key.subscriber] = std::move(ids);
      else
        unknown.insert(key.subscriber);
    }
    if (unknown.count(key.subscriber)) {  // cannot tell: keep it, ask again later
      SetStagedDue(key, now_ms_ + p_.staged_keep_ms);
      continue;
    }
    if (live[key.subscriber].count(key.chunk_id)) {
      AdoptNamedStaged(key);
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
    if (!reachable) {  // asked again later
      SetStagedDue(key, now_ms_ + kStagedSweepRetryMs);
      continue;
    }
    ChunkCommitted(key);  // no longer timed: sweeping_ holds it
    sweeping_.insert(key);
    MS_INFO("pop", "deleting a staged chunk whose commit never came",
            "chunk=" + ToHex(key.chunk_id).substr(0, 12) +
                " fragment_gateways=" + std::to_string(by_gateway.size()));
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
  const bool staged = info->state == ChunkState::kStaged;
  // A commit came while the fragments were deleted: a replica chunk is
  // placed afresh now (its placement waited for the deletes); a cached one
  // (an entry POP's) needs no fragments of this region.
  auto committed_meanwhile = [&] {
    if (info->state != ChunkState::kReplica) return;
    EnqueuePlacement(key);
    PumpPlacement();
  };
  if (!all_deleted) {  // some fragments may still be there: records stay
    if (staged)
      SetStagedDue(key, now_ms_ + kStagedSweepRetryMs);
    else
      committed_meanwhile();
    return;
  }
  bool had_fragments = !store_->Fragments(key).empty();
  if (!store_->DropFragmentRecords(key).ok()) {
    if (staged) SetStagedDue(key, now_ms_ + kStagedSweepRetryMs);
    return;
  }
  placed_early_.erase(key);
  if (had_fragments) staged_fragments_swept_total_++;
  if (!staged) return committed_meanwhile();
  std::set<Bytes> live;
  bool known = LiveChunkIds(key.subscriber, &live);
  if (known && live.count(key.chunk_id)) return AdoptNamedStaged(key);
  if (!known || ChunkBusy(key)) {  // cannot tell, or in use again: it stays
    SetStagedDue(key, now_ms_ + p_.staged_keep_ms);
    return;
  }
  uint64_t bytes = info->has_data ? info->size_bytes : 0;
  if (!store_->DeleteChunk(key).ok()) {
    SetStagedDue(key, now_ms_ + kStagedSweepRetryMs);
    return;
  }
  staged_chunks_dropped_total_++;
  staged_bytes_dropped_total_ += bytes;
}

}  // namespace mistore
