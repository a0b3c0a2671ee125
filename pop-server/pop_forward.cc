// PopCore, forwarding during the upload (issue 11, "writes pay a
// store-and-forward pass after the upload"). Before it uploads, the client
// asks its entry POP which chunks it holds (HaveChunks, pop_dedup.cc) and
// names the object (name_key). The entry POP then resolves the object's
// replica POPs in the background (the DC's catalog; for a new name it
// chooses now the backup it will propose at the commit) and plans each
// chunk the client will upload: as a PutChunk arrives and is stored here,
// the chunk is sent on to those replicas (StoreChunk) while the rest of
// the upload still travels on the gateway link. With one of the object's
// POPs down, the DC's stand-in is its acting backup and is sent the chunks
// the same way (it used to get them all from the commit's push, after the
// upload: ~80 ms more for a 10 MB write on the emulated network). At the commit, the pushes
// of pop_write.cc wait for the forwards still in flight and then ask the
// replica what it holds (HaveChunks), so they send only what forwarding
// missed.
//
// Best effort, never a condition of correctness: a lost, refused or
// skipped forward means the commit's push sends the chunk, as it did before
// forwarding existed, and the durability rule (every chunk acknowledged on
// stable storage before the backup prepares) stays the push's. What a
// replica receives ahead of a commit is staged and pinned there like any
// pushed chunk.
//
// Bounds: plans (forward_plan_entries_max, each expiring after
// upload_pin_ms), queued forwards (the same), StoreChunks in flight
// (forward_chunks_in_flight_max, each holding one chunk; 0 turns
// forwarding off), proposed backups (kProposedBackupsMax).
// Runs on the daemon's loop thread (or the simulator's), like the rest of
// PopCore.
#include <algorithm>

#include "pop-server/pop_core.h"
#include "shared/core/log.h"

namespace mistore {

namespace {
constexpr size_t kForwardNameKeyBytes = 32;
Bytes FwdBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string FwdStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
}  // namespace

void PopCore::PlanForwarding(const std::string& subscriber, const std::string& name_key,
                             std::vector<std::string> ids, bool dc_tier) {
  if ((p_.forward_chunks_in_flight_max == 0 && !p_.place_before_commit) || ids.empty()) return;
  if (name_key.size() != kForwardNameKeyBytes) return;
  pb::Envelope look;
  look.mutable_lookup_name()->set_subscriber(subscriber);
  look.mutable_lookup_name()->set_name_key(name_key);
  Call(Dest{Dest::kDc, 0}, look,
       [this, subscriber, name_key, dc_tier, ids = std::move(ids)](Result<pb::Envelope> r) {
         std::vector<uint32_t> targets;
         bool place_here = false;  // this POP is (or will be) a replica
         if (r.ok()) {
           auto o = Oid::Decode(r->claim_name_reply().oid());
           if (!o.ok()) return;
           for (uint32_t pop : {ActingPrimary(*o), ActingBackup(*o)}) {
             if (pop == p_.pop_id) place_here = true;
             if (pop != p_.pop_id && pop != kNoPop && PopUp(pop) &&  // the DC's stand-in too
                 std::find(targets.begin(), targets.end(), pop) == targets.end())
               targets.push_back(pop);  // once (a DC-tier object: the DC is both)
           }
         } else if (r.status().code() == Code::kNotFound && dc_tier) {
           targets.push_back(kDcReplica);  // a new DC-tier object (PutCommit.dc_tier)
         } else if (r.status().code() == Code::kNotFound) {
           // A new name: this POP will propose itself as primary and this
           // backup (ResolveOidForWrite takes the proposal).
           uint32_t backup = ProposeBackup(subscriber, name_key);
           if (backup != kNoPop) targets.push_back(backup);
           place_here = PopUp(p_.pop_id);
         }
         if (p_.forward_chunks_in_flight_max == 0) targets.clear();
         place_here = place_here && p_.place_before_commit;
         if (!targets.empty() || place_here) AddForwardPlan(subscriber, ids, targets, place_here);
       });
}

uint32_t PopCore::ProposeBackup(const std::string& subscriber, const std::string& name_key) {
  auto key = std::make_pair(subscriber, name_key);
  auto it = proposed_backups_.find(key);
  if (it != proposed_backups_.end() && it->second.first != p_.pop_id && PopUp(it->second.first)) {
    it->second.second = now_ms_ + p_.upload_pin_ms;
    return it->second.first;
  }
  if (!PopUp(p_.pop_id)) return kNoPop;
  std::vector<uint32_t> candidates;
  for (auto& p : map_.pops())
    if (p.up() && p.pop_id() != p_.pop_id) candidates.push_back(p.pop_id());
  if (candidates.empty()) return kNoPop;
  if (proposed_backups_.size() >= kProposedBackupsMax && !proposed_backups_.count(key))
    return kNoPop;
  uint32_t backup = candidates[rng_() % candidates.size()];
  proposed_backups_[key] = {backup, now_ms_ + p_.upload_pin_ms};
  return backup;
}

uint32_t PopCore::TakeProposedBackup(const std::string& subscriber, const std::string& name_key) {
  auto it = proposed_backups_.find(std::make_pair(subscriber, name_key));
  if (it == proposed_backups_.end()) return kNoPop;
  uint32_t pop = it->second.first;
  proposed_backups_.erase(it);
  return pop != p_.pop_id && PopUp(pop) ? pop : kNoPop;
}

void PopCore::AddForwardPlan(const std::string& subscriber, const std::vector<std::string>& ids,
                             const std::vector<uint32_t>& targets, bool place_here) {
  for (const std::string& id : ids) {
    ChunkKey key{subscriber, FwdBytes(id)};
    auto info = store_->GetChunkInfo(key);
    if (info.ok() && info->has_data) {  // uploaded before the plan was ready
      for (uint32_t pop : targets) QueueForward(pop, key);
      if (place_here) PlaceBeforeCommit(key);
      continue;
    }
    if (forward_plans_.size() >= p_.forward_plan_entries_max && !forward_plans_.count(key)) {
      forward_plans_skipped_total_++;
      continue;  // the commit's push sends it
    }
    forward_plans_[key] = ForwardPlan{targets, now_ms_ + p_.upload_pin_ms, place_here};
  }
  PumpForwards();
}

void PopCore::ForwardUploaded(const ChunkKey& key) {
  auto it = forward_plans_.find(key);
  if (it == forward_plans_.end()) return;
  for (uint32_t pop : it->second.pops) QueueForward(pop, key);
  bool place_here = it->second.place_here;
  forward_plans_.erase(it);
  if (place_here) PlaceBeforeCommit(key);
  PumpForwards();
}

void PopCore::QueueForward(uint32_t pop, const ChunkKey& key) {
  if (!PopUp(pop) || pop == p_.pop_id) return;
  auto item = std::make_pair(pop, key);
  if (forward_queued_.count(item)) return;
  if (forward_queue_.size() >= p_.forward_plan_entries_max) {
    forward_plans_skipped_total_++;
    return;
  }
  forward_queued_.insert(item);
  forward_queue_.push_back(std::move(item));
}

void PopCore::PumpForwards() {
  while (forwards_in_flight_ < p_.forward_chunks_in_flight_max && !forward_queue_.empty()) {
    auto item = std::move(forward_queue_.front());
    forward_queue_.pop_front();
    if (!forward_queued_.erase(item)) continue;  // taken over by a push
    const auto& [pop, key] = item;
    if (!PopUp(pop)) continue;
    auto data = store_->GetChunk(key);
    if (!data.ok()) continue;  // gone meanwhile: the push will tell
    pb::Envelope req;
    auto* sc = req.mutable_store_chunk();
    sc->set_subscriber(key.subscriber);
    sc->set_chunk_id(FwdStr(key.chunk_id));
    sc->set_data(FwdStr(data.value()));
    forwards_in_flight_++;
    forwarding_[item]++;
    Call(ReplicaDest(pop), std::move(req), [this, item](Result<pb::Envelope> r) {
      forwards_in_flight_--;
      if (--forwarding_[item] == 0) forwarding_.erase(item);
      if (r.ok())
        chunks_forwarded_total_++;
      else
        chunk_forwards_failed_total_++;
      WakeForwardWaiters();
      PumpForwards();
    });
  }
}

// A push to `pop` of these chunks takes over their queued forwards and
// waits for the ones in flight, so its HaveChunks query sees them arrived.
bool PopCore::WaitForForwards(uint32_t pop, const std::string& subscriber,
                              const std::vector<std::string>& ids, std::function<void()> then) {
  std::set<ChunkKey> waiting;
  for (const std::string& id : ids) {
    auto item = std::make_pair(pop, ChunkKey{subscriber, FwdBytes(id)});
    forward_queued_.erase(item);
    if (forwarding_.count(item)) waiting.insert(item.second);
  }
  if (waiting.empty()) return false;
  forward_waiters_.push_back(ForwardWaiter{pop, std::move(waiting), std::move(then)});
  return true;
}

void PopCore::WakeForwardWaiters() {
  std::vector<std::function<void()>> ready;
  for (auto it = forward_waiters_.begin(); it != forward_waiters_.end();) {
    for (auto k = it->keys.begin(); k != it->keys.end();)
      k = forwarding_.count(std::make_pair(it->pop, *k)) ? std::next(k) : it->keys.erase(k);
    if (it->keys.empty()) {
      ready.push_back(std::move(it->then));
      it = forward_waiters_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& f : ready) f();
}

void PopCore::TickForwarding() {
  for (auto it = forward_plans_.begin(); it != forward_plans_.end();)
    it = it->second.expires_ms <= now_ms_ ? forward_plans_.erase(it) : std::next(it);
  for (auto it = proposed_backups_.begin(); it != proposed_backups_.end();)
    it = it->second.second <= now_ms_ ? proposed_backups_.erase(it) : std::next(it);
  PumpForwards();
}

}  // namespace mistore
