// PopCore's region-durability duties (issue 6): the failure detector's
// inputs (heartbeats, connections) and events, repair of chunks below k+m
// usable fragments, reconciliation of gateway inventories (missing
// fragments repaired, surplus ones deleted), and fragments reported bad.
// Which fragments of a chunk are missing, where they go, and how a record
// moves from one gateway to another are shared with placement, whose
// retries send only the missing fragments (pop_core.cc, PlaceChunk).
// The decisions live in GatewayTable (membership.h) and RepairQueue
// (repair.h); this file turns them into calls. Loop thread only.
#include <algorithm>

#include "pop-server/pop_core.h"
#include "shared/core/log.h"
#include "shared/erasure/chunk_codec.h"
#include "shared/store/fragment_store.h"

namespace mistore {

namespace {
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
std::string Short(const Bytes& id) { return ToHex(id).substr(0, 12); }
constexpr size_t kAll = SIZE_MAX;
constexpr uint64_t kRecountMs = 2000;
}  // namespace

void PopCore::HandleGatewayHeartbeat(const Incoming& in, const Peer& from,
                                     const pb::GatewayHeartbeat& m) {
  if (from.role != pb::ROLE_GATEWAY)
    return ReplyError(in, Status(Code::kPermissionDenied, "heartbeats are for gateways"));
  uint32_t id = from.node_id;
  auto ev = members_.OnHeartbeat(now_ms_, id, from.subscriber, m);
  auto gw = gateways_.find(id);
  if (gw != gateways_.end()) gw->second.store_bytes_free = m.store_bytes_free();
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
  OnMembershipEvents(ev);
  auto c = expected_.find(id);
  if (c == expected_.end()) {
    std::vector<std::string> names;
    for (auto& [key, idx] : store_->FragmentsOnGateway(id, kAll))
      names.push_back(FragmentName(key.chunk_id, idx));
    size_t n = names.size();
    c = expected_.emplace(id, std::make_pair(uint64_t(n), InventoryDigest(std::move(names)))).first;
  }
  bool differs = m.inventory_digest().empty()
                     ? m.fragment_count() != c->second.first
                     : ToBytes(m.inventory_digest()) != c->second.second;
  if (differs) AskInventory(id);
}

void PopCore::HandleGatewayInventory(const Incoming& in, const Peer& from,
                                     const pb::GatewayInventory& m) {
  if (from.role != pb::ROLE_GATEWAY)
    return ReplyError(in, Status(Code::kPermissionDenied, "inventories are for gateways"));
  inventory_asked_ms_[from.node_id] = now_ms_;
  ReconcileInventory(from.node_id, m);
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
}

void PopCore::HandleFragmentsBad(const Incoming& in, const Peer& from, const pb::FragmentsBad& m) {
  if (from.role != pb::ROLE_GATEWAY)
    return ReplyError(in, Status(Code::kPermissionDenied, "bad-fragment reports are for gateways"));
  std::set<std::pair<Bytes, uint32_t>> refs;
  for (auto& f : m.fragments()) refs.insert({ToBytes(f.chunk_id()), f.index()});
  std::vector<std::pair<Bytes, uint32_t>> unrecorded(refs.begin(), refs.end());
  for (auto& [key, idx] : store_->FragmentsOnGateway(from.node_id, kAll)) {
    if (!refs.count({key.chunk_id, idx})) continue;
    MS_WARN("pop", "gateway reports fragment bad", "gateway=" + std::to_string(from.node_id) +
                                                       " chunk=" + Short(key.chunk_id) +
                                                       " index=" + std::to_string(idx));
    MarkBad(from.node_id, key, idx);
    std::erase(unrecorded, std::pair<Bytes, uint32_t>{key.chunk_id, idx});
  }
  // Bad files this POP has no record of on that gateway: garbage.
  if (!unrecorded.empty()) DeleteOn(from.node_id, unrecorded);
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
  PumpRepair();
}

void PopCore::OnMembershipEvents(const std::vector<MembershipEvent>& events) {
  for (auto& e : events) {
    NoteMembershipEvent(e);  // for the DC's event log (pop_report.cc)
    std::string gw = "gateway=" + std::to_string(e.gateway_id);
    switch (e.kind) {
      case MembershipEvent::kSuspected:
        MS_INFO("pop", "gateway suspected", gw);
        break;
      case MembershipEvent::kRecovered:
        MS_INFO("pop", "gateway recovered", gw);
        break;
      case MembershipEvent::kLost:
        MS_WARN("pop", "gateway lost; repairing its fragments", gw);
        expected_.erase(e.gateway_id);
        EnqueueRepairsOn(e.gateway_id);
        break;
      case MembershipEvent::kReturned:
        MS_INFO("pop", "lost gateway returned; reconciling its inventory", gw);
        expected_.erase(e.gateway_id);
        inventory_asked_ms_.erase(e.gateway_id);
        AskInventory(e.gateway_id);
        break;
    }
  }
  if (!events.empty()) below_counted_ms_ = 0;  // recount on the next tick
}

void PopCore::AskInventory(uint32_t gateway_id) {
  auto it = inventory_asked_ms_.find(gateway_id);
  if (it != inventory_asked_ms_.end() && now_ms_ < it->second + p_.inventory_interval_ms) return;
  inventory_asked_ms_[gateway_id] = now_ms_;
  pb::Envelope req;
  req.mutable_get_inventory();
  Call(Dest{Dest::kGateway, gateway_id}, req, [this, gateway_id](Result<pb::Envelope> r) {
    if (r.ok() && r->has_gateway_inventory()) ReconcileInventory(gateway_id, r->gateway_inventory());
  });
}

// What the gateway holds vs what this POP recorded there: recorded fragments
// it lacks (or holds torn) are repaired; fragments it holds that were rebuilt
// elsewhere while it was away (or held bad) are deleted from it.
void PopCore::ReconcileInventory(uint32_t gateway_id, const pb::GatewayInventory& inv) {
  std::set<std::pair<Bytes, uint32_t>> have, bad;
  for (auto& f : inv.fragments()) have.insert({ToBytes(f.chunk_id()), f.index()});
  for (auto& f : inv.bad()) bad.insert({ToBytes(f.chunk_id()), f.index()});
  size_t missing = 0;
  auto recorded = store_->FragmentsOnGateway(gateway_id, kAll);
  std::set<std::pair<Bytes, uint32_t>> recorded_refs;
  for (auto& [key, idx] : recorded) {
    std::pair<Bytes, uint32_t> ref{key.chunk_id, idx};
    recorded_refs.insert(ref);
    if (have.count(ref) && !bad.count(ref)) continue;
    missing++;
    MarkBad(gateway_id, key, idx);
  }
  std::vector<std::pair<Bytes, uint32_t>> surplus;
  auto mv = moved_.find(gateway_id);
  if (mv != moved_.end()) {
    for (auto it = mv->second.begin(); it != mv->second.end();) {
      const auto& [key, idx] = *it;
      // Its records are about to change (a store in flight may land here
      // and be recorded): looked at again at the next inventory.
      if (placing_.count(key) || repair_.InFlight(key)) {
        ++it;
        continue;
      }
      std::pair<Bytes, uint32_t> ref{key.chunk_id, idx};
      if ((have.count(ref) || bad.count(ref)) && !recorded_refs.count(ref)) surplus.push_back(ref);
      it = mv->second.erase(it);
      if (moved_count_ > 0) moved_count_--;
    }
    if (mv->second.empty()) moved_.erase(mv);
  }
  for (auto& ref : bad)
    if (!recorded_refs.count(ref) && std::find(surplus.begin(), surplus.end(), ref) == surplus.end())
      surplus.push_back(ref);
  // Held fragments whose (chunk, index) this POP records on another usable
  // gateway are surplus too: derived from the durable records, so this also
  // holds after a POP restart emptied moved_ (regression: a gateway returning
  // after a POP restart kept its rebuilt-elsewhere fragments forever).
  for (auto& ref : have) {
    if (recorded_refs.count(ref) || bad.count(ref)) continue;
    if (std::find(surplus.begin(), surplus.end(), ref) != surplus.end()) continue;
    for (auto& [key, loc] : store_->FragmentsOfChunkId(ref.first)) {
      if (loc.index != ref.second || loc.gateway_id == gateway_id) continue;
      if (placing_.count(key) || repair_.InFlight(key)) continue;  // records about to change
      if (members_.IsLive(loc.gateway_id) && !bad_.count({key.chunk_id, loc.index, loc.gateway_id})) {
        surplus.push_back(ref);
        break;
      }
    }
  }
  // Nothing missing: what it holds is fine (extra fragments are either
  // being recorded or garbage), so its current report is the expected one;
  // not while copies that may be surplus wait (moved_): it is asked again.
  if (missing == 0 && !inv.inventory_digest().empty() && !moved_.count(gateway_id))
    expected_[gateway_id] = {uint64_t(inv.fragments_size()), ToBytes(inv.inventory_digest())};
  else
    expected_.erase(gateway_id);
  MS_INFO("pop", "inventory reconciled",
          "gateway=" + std::to_string(gateway_id) + " held=" + std::to_string(have.size()) +
              " recorded=" + std::to_string(recorded.size()) + " missing=" + std::to_string(missing) +
              " surplus=" + std::to_string(surplus.size()));
  if (!surplus.empty()) DeleteOn(gateway_id, surplus);
  PumpRepair();
}

void PopCore::MarkBad(uint32_t gateway_id, const ChunkKey& key, uint32_t index) {
  if (bad_.insert({key.chunk_id, index, gateway_id}).second) {
    fragments_bad_total_++;
    NoteBadFragment(gateway_id);
  }
  EnqueueRepair(key);
  below_counted_ms_ = 0;
}

void PopCore::EnqueueRepairsOn(uint32_t gateway_id) {
  ChunkKey last;
  for (auto& [key, idx] : store_->FragmentsOnGateway(gateway_id, kAll)) {
    if (key == last) continue;
    last = key;
    EnqueueRepair(key);
  }
  PumpRepair();
}

std::vector<uint32_t> PopCore::MissingFragments(const ChunkKey& key, int* live) {
  *live = 0;
  auto info = store_->GetChunkInfo(key);
  // Chunks not yet placed are the placement loop's; copies are not ours.
  if (!info.ok() || info->state != ChunkState::kPlaced) return {};
  // A suspected gateway's fragments still count: a reboot is tolerated.
  std::vector<uint32_t> missing = UnusableFragments(key, /*require_live=*/false);
  *live = p_.k + p_.m - int(missing.size());
  return missing;
}

std::vector<uint32_t> PopCore::UnusableFragments(const ChunkKey& key, bool require_live) {
  std::vector<uint32_t> missing;
  std::map<uint32_t, uint32_t> at;
  for (auto& loc : store_->Fragments(key)) at[loc.index] = loc.gateway_id;
  for (uint32_t i = 0; i < uint32_t(p_.k + p_.m); i++) {
    auto it = at.find(i);
    bool ok = it != at.end() &&
              (require_live ? members_.IsLive(it->second) : !members_.IsLost(it->second)) &&
              !bad_.count({key.chunk_id, i, it->second});
    if (!ok) missing.push_back(i);
  }
  return missing;
}

void PopCore::EnqueueRepair(const ChunkKey& key) {
  int live = 0;
  auto missing = MissingFragments(key, &live);
  if (missing.empty()) return repair_.Remove(key);
  auto info = store_->GetChunkInfo(key);
  uint64_t frag = (info.ok() ? info->size_bytes : 0) / uint64_t(p_.k) + 128;
  bool cached = info.ok() && info->has_data;
  uint64_t est = frag * missing.size() + (cached ? 0 : frag * uint64_t(p_.k));
  if (!repair_.Add(now_ms_, key, live, est))
    MS_WARN("pop", "repair queue full; rescanning when it drains", "chunk=" + Short(key.chunk_id));
}

void PopCore::PumpRepair() {
  RepairStats s = repair_.stats();
  if (repair_.overflowed() && s.queued_chunks == 0 && s.in_flight_chunks == 0) {
    repair_.clear_overflowed();
    for (auto& [id, g] : members_.all())
      if (g.state == GwState::kLost) EnqueueRepairsOn(id);
    for (auto& [chunk, idx, gw] : std::set<std::tuple<Bytes, uint32_t, uint32_t>>(bad_))
      for (auto& [key, i] : store_->FragmentsOnGateway(gw, kAll))
        if (key.chunk_id == chunk && i == idx) EnqueueRepair(key);
  }
  while (auto key = repair_.Next(now_ms_)) RepairChunk(*key);
}

// Rebuilds the missing fragments of one chunk from this POP's copy, or else
// from k surviving fragments of its region, and stores them on other
// gateways (never one already holding a fragment of the chunk; failure
// domains spread).
void PopCore::RepairChunk(const ChunkKey& key) {
  int live = 0;
  auto missing = MissingFragments(key, &live);
  if (missing.empty()) return FinishRepair(key, true, 0, 0);
  auto encode = [this, key, missing](Bytes data, uint64_t read_bytes) {
    auto blobs = std::make_shared<Result<std::vector<Bytes>>>(Internal("encode did not run"));
    auto chunk = std::make_shared<Bytes>(std::move(data));
    int k = p_.k, m = p_.m;
    Bytes chunk_id = key.chunk_id;
    RunJob([blobs, chunk, chunk_id, k, m] {
      *blobs = EncodeChunkToFragments(chunk_id, chunk->data(), chunk->size(), k, m);
    }, [this, key, blobs, missing, read_bytes] {
      if (!blobs->ok()) {
        MS_ERROR("pop", "erasure encode failed", "error=\"" + blobs->status().ToString() + "\"");
        return FinishRepair(key, false, 0, read_bytes);
      }
      StoreRepairFragments(key, std::make_shared<std::vector<Bytes>>(std::move(blobs->value())),
                           missing, read_bytes);
    });
  };
  auto local = store_->GetChunk(key);
  if (local.ok()) return encode(std::move(local.value()), 0);
  if (live < p_.k) {
    MS_ERROR("pop", "chunk has fewer than k usable fragments in this region and no copy here",
             "chunk=" + Short(key.chunk_id) + " live=" + std::to_string(live));
    return FinishRepair(key, false, 0, 0);
  }
  ReadChunkFromFragments(key, [this, key, encode](Result<Bytes> r) {
    if (!r.ok()) {
      MS_WARN("pop", "repair read failed", "chunk=" + Short(key.chunk_id) + " error=\"" +
                                               r.status().ToString() + "\"");
      return FinishRepair(key, false, 0, 0);
    }
    uint64_t read = (r->size() / uint64_t(p_.k) + 100) * uint64_t(p_.k);
    encode(std::move(r.value()), read);
  }, /*background=*/true);
}

std::vector<uint32_t> PopCore::PickFragmentTargets(const ChunkKey& key,
                                                  const std::vector<uint32_t>& missing,
                                                  const std::set<uint32_t>& exclude,
                                                  uint64_t fragment_bytes,
                                                  std::map<uint32_t, uint32_t>* old_at) {
  old_at->clear();
  std::set<uint32_t> holders = exclude, usable_holders = exclude;
  std::set<std::string> domains;
  for (auto& loc : store_->Fragments(key)) {
    holders.insert(loc.gateway_id);
    (*old_at)[loc.index] = loc.gateway_id;
    bool is_missing = std::find(missing.begin(), missing.end(), loc.index) != missing.end();
    if (is_missing) continue;
    usable_holders.insert(loc.gateway_id);
    if (auto* g = members_.Find(loc.gateway_id))
      domains.insert(g->failure_domains.begin(), g->failure_domains.end());
  }
  auto targets = PickGateways(int(missing.size()), holders, domains, fragment_bytes);
  if (targets.size() < missing.size()) {
    // Too few other gateways: a live gateway whose copy went bad may take
    // the fragment again (never one holding a usable fragment).
    std::set<uint32_t> ex2 = usable_holders;
    ex2.insert(targets.begin(), targets.end());
    for (uint32_t t : targets)
      if (auto* g = members_.Find(t)) domains.insert(g->failure_domains.begin(), g->failure_domains.end());
    auto more = PickGateways(int(missing.size() - targets.size()), ex2, domains, fragment_bytes);
    targets.insert(targets.end(), more.begin(), more.end());
  }
  return targets;
}

void PopCore::NoteMaybeStored(uint32_t gateway_id, const ChunkKey& key, uint32_t index) {
  expected_.erase(gateway_id);
  if (moved_count_ < p_.moved_fragments_max && moved_[gateway_id].insert({key, index}).second)
    moved_count_++;
}

Status PopCore::RecordStoredFragment(const ChunkKey& key, uint32_t index, uint32_t gateway_id,
                                     std::optional<uint32_t> old) {
  expected_.erase(gateway_id);
  MS_RETURN_IF_ERROR(store_->RecordFragment(key, index, gateway_id));
  if (!old) return Status::Ok();
  expected_.erase(*old);  // its next heartbeat is checked against the new records
  bad_.erase({key.chunk_id, index, *old});
  if (*old == gateway_id) return Status::Ok();
  if (members_.IsLive(*old)) {
    DeleteOn(*old, {{key.chunk_id, index}});
  } else if (moved_count_ < p_.moved_fragments_max && moved_[*old].insert({key, index}).second) {
    moved_count_++;
  }
  return Status::Ok();
}

void PopCore::StoreRepairFragments(const ChunkKey& key, std::shared_ptr<std::vector<Bytes>> blobs,
                                   std::vector<uint32_t> missing, uint64_t read_bytes) {
  std::map<uint32_t, uint32_t> old_at;  // index -> gateway recorded before
  auto targets = PickFragmentTargets(key, missing, {}, (*blobs)[0].size(), &old_at);
  if (targets.size() < missing.size()) {
    MS_WARN("pop", "not enough live gateways for repair; will retry",
            "chunk=" + Short(key.chunk_id) + " needed=" + std::to_string(missing.size()) +
                " found=" + std::to_string(targets.size()));
    return FinishRepair(key, false, 0, read_bytes);
  }
  struct Progress {
    size_t left;
    size_t total;
    int stored = 0;
    uint64_t bytes;
  };
  auto prog = std::make_shared<Progress>(Progress{missing.size(), missing.size(), 0, read_bytes});
  for (size_t j = 0; j < missing.size(); j++) {
    uint32_t idx = missing[j], gw = targets[j];
    std::optional<uint32_t> old;
    if (auto it = old_at.find(idx); it != old_at.end()) old = it->second;
    pb::Envelope req;
    req.mutable_store_fragment()->set_fragment(ToStr((*blobs)[idx]));
    uint64_t n = (*blobs)[idx].size();
    Call(Dest{Dest::kGateway, gw}, req,
         [this, key, idx, gw, old, n, prog](Result<pb::Envelope> r) {
           if (r.ok() && RecordStoredFragment(key, idx, gw, old).ok()) {
             prog->stored++;
             prog->bytes += n;
           } else if (!r.ok()) {
             NoteMaybeStored(gw, key, idx);
             MS_WARN("pop", "repair fragment store failed", "gateway=" + std::to_string(gw) +
                                                                " error=\"" +
                                                                r.status().ToString() + "\"");
           }
           if (--prog->left == 0)
             FinishRepair(key, size_t(prog->stored) == prog->total, prog->stored, prog->bytes);
         }, p_.fragment_timeout_ms);
  }
}

void PopCore::FinishRepair(const ChunkKey& key, bool ok, int fragments, uint64_t bytes) {
  repair_.Done(now_ms_, key, ok, fragments, bytes);
  // Recount at once when the repair goes idle; while it runs, every
  // kRecountMs (a recount per finished repair made the loop's work grow
  // with the square of the lost gateway's fragments).
  RepairStats rs = repair_.stats();
  if (rs.queued_chunks == 0 && rs.in_flight_chunks == 0) below_counted_ms_ = 0;
  // Anything still missing (a store failed, or more was lost meanwhile)
  // goes back in the queue at its new priority.
  if (ok) EnqueueRepair(key);
  if (!repair_.Contains(key)) EvictIfNeeded();
  PumpRepair();
}

void PopCore::DeleteOn(uint32_t gateway_id, const std::vector<std::pair<Bytes, uint32_t>>& refs) {
  pb::Envelope req;
  for (auto& [chunk, idx] : refs) {
    auto* f = req.mutable_delete_fragments()->add_fragments();
    f->set_chunk_id(ToStr(chunk));
    f->set_index(idx);
  }
  size_t n = refs.size();
  Call(Dest{Dest::kGateway, gateway_id}, req, [this, gateway_id, n](Result<pb::Envelope> r) {
    if (r.ok()) {
      fragments_deleted_total_ += n;
      expected_.erase(gateway_id);
    }
  });
}

// Chunks below k+m usable fragments: those with a fragment recorded on a
// gateway that is not alive, or reported bad, or waiting for repair.
void PopCore::RecountBelowRedundancy() {
  if (below_counted_ms_ && now_ms_ < below_counted_ms_ + kRecountMs) return;
  below_counted_ms_ = std::max<uint64_t>(now_ms_, 1);
  std::set<Bytes> chunks;
  for (auto& [id, g] : members_.all()) {
    if (g.state == GwState::kAlive && g.connected) continue;
    for (auto& [key, idx] : store_->FragmentsOnGateway(id, kAll)) {
      if (chunks.count(key.chunk_id)) continue;
      // Queued or being repaired: placed and below redundancy, known
      // without asking the store (during a repair that is nearly every
      // fragment of the lost gateway; asking cost O(fragments) SQLite
      // queries per recount on the loop).
      if (repair_.Contains(key)) {
        chunks.insert(key.chunk_id);
        continue;
      }
      auto info = store_->GetChunkInfo(key);
      if (info.ok() && info->state == ChunkState::kPlaced) chunks.insert(key.chunk_id);
    }
  }
  for (auto& [chunk, idx, gw] : bad_) chunks.insert(chunk);
  below_redundancy_ = std::max(chunks.size(), repair_.stats().queued_chunks);
}

std::vector<uint32_t> PopCore::PickGateways(int n, const std::set<uint32_t>& exclude,
                                            const std::set<std::string>& taken_domains,
                                            uint64_t bytes_needed) {
  auto cands = PlacementCandidates(members_, exclude);
  std::erase_if(cands, [this](const PlacementCandidate& c) { return !IsGatewayConnected(c.id); });
  return ChoosePlacement(cands, n, taken_domains, bytes_needed, rng_);
}

// ---------------------------------------------------------------------------
// Results kept for a gateway that went away (held_results.h; paper VII).

bool PopCore::AnswerOrJoinRetry(const Incoming& in, const pb::PutCommit& m) {
  if (m.write_id().empty()) return false;
  const pb::PutReply* held = held_.Find(now_ms_, m.subscriber(), m.write_id());
  SaveHeldResults();  // Find drops an expired one
  if (held) {
    MS_INFO("pop", "retried commit answered with its kept result",
            "gateway=" + std::to_string(m.gateway_id()) + " version=" + std::to_string(held->version()));
    pb::Envelope r;
    *r.mutable_put_reply() = *held;
    Reply(in, std::move(r));
    return true;
  }
  auto [it, fresh] = running_commits_.try_emplace({m.subscriber(), m.write_id()});
  if (fresh) return false;  // this request runs the commit
  if (it->second.size() >= kRetriesJoinedMax) {
    ReplyError(in, Unavailable("too many retries of this write waiting; retry later"));
    return true;
  }
  it->second.push_back(in);  // answered with the running original's outcome
  return true;
}

void PopCore::FinishCommit(const Incoming& in, const pb::PutCommit& m, Result<pb::PutReply> r) {
  std::vector<Incoming> to{in};
  if (!m.write_id().empty()) {
    auto it = running_commits_.find({m.subscriber(), m.write_id()});
    if (it != running_commits_.end()) {
      to.insert(to.end(), it->second.begin(), it->second.end());
      running_commits_.erase(it);
    }
  }
  bool delivered = false;
  for (const Incoming& i : to) {
    if (!closed_conns_.count(i.conn_id)) delivered = true;
    if (!r.ok()) {
      ReplyError(i, r.status());
      continue;
    }
    pb::Envelope e;
    *e.mutable_put_reply() = r.value();
    Reply(i, std::move(e));
  }
  // Only successes are kept: a failed write created no version, so running
  // it again is safe.
  if (!r.ok() || m.write_id().empty()) return;
  held_.Put(now_ms_, m.gateway_id(), m.subscriber(), m.write_id(), r.value(), !delivered);
  SaveHeldResults();
  if (!delivered)
    MS_INFO("pop", "commit finished after its gateway went away; result kept",
            "gateway=" + std::to_string(m.gateway_id()) + " version=" + std::to_string(r->version()));
  // The gateway may be back already, on a new connection.
  if (!delivered && IsGatewayConnected(m.gateway_id())) DeliverHeldResults(m.gateway_id());
}

void PopCore::DeliverHeldResults(uint32_t gateway_id) {
  pb::Envelope req;
  *req.mutable_held_results() = held_.Undelivered(now_ms_, gateway_id);
  if (req.held_results().results_size() == 0) return;
  pb::HeldResults sent = req.held_results();
  Call(Dest{Dest::kGateway, gateway_id}, std::move(req),
       [this, gateway_id, sent](Result<pb::Envelope> r) {
         if (!r.ok()) return;  // kept; offered again when it registers next
         size_t before = held_.stats().undelivered;
         held_.MarkDelivered(gateway_id, sent);
         SaveHeldResults();
         MS_INFO("pop", "kept results delivered to returning gateway",
                 "gateway=" + std::to_string(gateway_id) +
                     " results=" + std::to_string(sent.results_size()));
         if (held_.stats().undelivered < before) DeliverHeldResults(gateway_id);  // the rest
       });
}

void PopCore::SaveHeldResults() {
  HeldResultsChanges c = held_.TakeChanges();
  if (c.empty()) return;
  for (auto& r : c.put) r.at_ms = uint64_t(int64_t(r.at_ms) + held_wall_offset_ms_);
  // On failure the results stay in memory; only a restart would lose them.
  if (Status st = store_->SaveHeldResults(c.put, c.erase); !st.ok())
    MS_WARN("pop", "kept results not stored", "error=\"" + st.ToString() + "\"");
}

void PopCore::LoadHeldResults(uint64_t now_ms, uint64_t wall_ms) {
  now_ms_ = now_ms;
  held_wall_offset_ms_ = int64_t(wall_ms) - int64_t(now_ms);
  std::vector<HeldResultRecord> stored = store_->LoadHeldResults(p_.held_results_max);
  std::vector<HeldResultRecord> live;
  std::vector<std::pair<std::string, std::string>> expired;
  for (auto& r : stored) {
    // A wall clock that went back counts as age 0.
    uint64_t age_ms = wall_ms > r.at_ms ? wall_ms - r.at_ms : 0;
    if (age_ms >= p_.held_results_ms) {
      expired.push_back({r.subscriber, r.write_id});
      continue;
    }
    r.at_ms = now_ms > age_ms ? now_ms - age_ms : 0;  // onto now_ms's clock
    live.push_back(std::move(r));
  }
  if (Status st = store_->SaveHeldResults({}, expired); !st.ok())
    MS_WARN("pop", "expired kept results not removed", "error=\"" + st.ToString() + "\"");
  held_.Load(now_ms, live);
  SaveHeldResults();  // what the bounds dropped
  HeldResultsStats s = held_.stats();
  if (!stored.empty())
    MS_INFO("pop", "kept commit results loaded",
            "kept=" + std::to_string(s.held) + " undelivered=" + std::to_string(s.undelivered) +
                " expired=" + std::to_string(expired.size()));
}

// ---------------------------------------------------------------------------
// Placement confirmed between the POPs holding an object's chunks.

namespace {
constexpr size_t kPlacedChunksIdsMax = 1024;
constexpr size_t kPlacementWaitsPerRound = 4096;
}  // namespace

// Called where this POP takes a copy of a version's chunks: as a replica
// (wait for the other replica) or as a non-replica entry POP after the
// commit (wait for both). The DC standing in keeps whole copies: not waited on.
void PopCore::WaitForPlacementBy(const Oid& o, const std::string& subscriber,
                                 const std::vector<std::string>& chunk_ids) {
  if (p_.pop_id == kDcReplica || !p_.place_fragments) return;
  for (uint32_t pop : {o.primary_pop, o.backup_pop}) {
    if (pop == p_.pop_id || pop == kDcReplica) continue;
    std::vector<ChunkKey> keys;
    for (auto& id : chunk_ids) keys.push_back(ChunkKey{subscriber, ToBytes(id)});
    if (Status st = store_->AddPlacementWaits(keys, pop); !st.ok())
      MS_WARN("pop", "cannot record placement waits", "error=\"" + st.ToString() + "\"");
  }
}

void PopCore::AskPlacedChunks() {
  if (placed_asked_ms_ && now_ms_ < placed_asked_ms_ + p_.placed_confirm_interval_ms) return;
  placed_asked_ms_ = std::max<uint64_t>(now_ms_, 1);
  auto waits = store_->PlacementWaits(placed_cursor_, kPlacementWaitsPerRound);
  placed_cursor_ = waits.size() < kPlacementWaitsPerRound ? 0 : waits.back().seq;
  // (pop, subscriber, placed here) -> chunk ids
  std::map<std::tuple<uint32_t, std::string, bool>, std::vector<Bytes>> groups;
  for (auto& w : waits) {
    if (!PopUp(w.pop_id) || placed_asking_.count({w.pop_id, w.key.subscriber})) continue;
    auto info = store_->GetChunkInfo(w.key);
    bool here = info.ok() && info->state == ChunkState::kPlaced;
    auto& ids = groups[{w.pop_id, w.key.subscriber, here}];
    if (ids.size() < kPlacedChunksIdsMax) ids.push_back(w.key.chunk_id);
  }
  for (auto& [g, ids] : groups) {
    auto [pop, subscriber, here] = g;
    placed_asking_.insert({pop, subscriber});
    pb::Envelope req;
    auto* pc = req.mutable_placed_chunks();
    pc->set_subscriber(subscriber);
    pc->set_sender_placed(here);
    for (auto& id : ids) pc->add_chunk_ids(ToStr(id));
    // Copies: clang 14 cannot capture structured bindings (the fuzz preset).
    Call(Dest{Dest::kPop, pop}, std::move(req),
         [this, pop = pop, subscriber = subscriber](Result<pb::Envelope> r) {
      placed_asking_.erase({pop, subscriber});
      if (!r.ok()) return;  // asked again next round
      std::vector<ChunkKey> done;
      for (auto* list : {&r->placed_chunks_reply().placed(), &r->placed_chunks_reply().unknown()})
        for (auto& id : *list) done.push_back(ChunkKey{subscriber, ToBytes(id)});
      if (!done.empty() && store_->ClearPlacementWaits(done, pop).ok()) EvictIfNeeded();
    });
  }
}

// "Which of these have you placed in your region?" Placed: all k+m
// fragments recorded here (kPlaced). Unknown: no record, or only a cached
// copy (this POP will never place it). Still to come: staged or replica.
// When the sender says it placed them, this POP's waits on it are over.
void PopCore::HandlePlacedChunks(const Incoming& in, const Peer& from, const pb::PlacedChunks& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "PlacedChunks is for POPs only"));
  if (size_t(m.chunk_ids_size()) > kPlacedChunksIdsMax)
    return ReplyError(in, InvalidArgument("at most " + std::to_string(kPlacedChunksIdsMax) +
                                          " chunk ids per PlacedChunks"));
  pb::Envelope r;
  auto* out = r.mutable_placed_chunks_reply();
  std::vector<ChunkKey> sender_placed;
  for (auto& id : m.chunk_ids()) {
    ChunkKey key{m.subscriber(), ToBytes(id)};
    if (m.sender_placed()) sender_placed.push_back(key);
    auto info = store_->GetChunkInfo(key);
    if (!info.ok() || info->state == ChunkState::kCached)
      out->add_unknown(id);
    else if (info->state == ChunkState::kPlaced)
      out->add_placed(id);
  }
  Reply(in, std::move(r));
  if (!sender_placed.empty() && store_->ClearPlacementWaits(sender_placed, from.node_id).ok())
    EvictIfNeeded();
}

}  // namespace mistore
