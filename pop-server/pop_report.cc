// The POP's reports for the operators' view (issue 8; see pop_report.h):
// the bounded event buffer, and PopCore's side of it — turning failure
// detector events, repairs, bad fragments and cluster-map changes into
// events, and the repair fields of the monitoring summary. Loop thread only.
#include "pop-server/pop_report.h"

#include <set>

#include "pop-server/pop_core.h"
#include "shared/core/assert.h"

namespace mistore {

const char* PopEventKindName(pb::PopEventKind kind) {
  switch (kind) {
    case pb::POP_EVENT_GATEWAY_SUSPECTED: return "gateway_suspected";
    case pb::POP_EVENT_GATEWAY_RECOVERED: return "gateway_recovered";
    case pb::POP_EVENT_GATEWAY_LOST: return "gateway_lost";
    case pb::POP_EVENT_GATEWAY_RETURNED: return "gateway_returned";
    case pb::POP_EVENT_REPAIR_STARTED: return "repair_started";
    case pb::POP_EVENT_REPAIR_FINISHED: return "repair_finished";
    case pb::POP_EVENT_FRAGMENTS_BAD: return "fragments_bad";
    case pb::POP_EVENT_ROLE_CHANGE: return "role_change";
    default: return "unknown";
  }
}

PopEventBuffer::PopEventBuffer(size_t buffer_max, size_t batch_max)
    : buffer_max_(buffer_max), batch_max_(batch_max) {
  MS_ASSERT(buffer_max_ >= 1);
  MS_ASSERT(batch_max_ >= 1 && batch_max_ <= kPopEventBatchMax);
}

void PopEventBuffer::Add(uint64_t now_ms, pb::PopEventKind kind, uint32_t gateway_id,
                         uint32_t pop_id, uint64_t count, uint64_t bytes, std::string detail) {
  if (detail.size() > kPopEventDetailBytesMax) detail.resize(kPopEventDetailBytesMax);
  Item it{now_ms, {}};
  it.ev.set_seq(next_seq_++);
  it.ev.set_kind(kind);
  it.ev.set_gateway_id(gateway_id);
  it.ev.set_pop_id(pop_id);
  it.ev.set_count(count);
  it.ev.set_bytes(bytes);
  it.ev.set_detail(std::move(detail));
  q_.push_back(std::move(it));
  while (q_.size() > buffer_max_) {
    q_.pop_front();
    dropped_total_++;
  }
}

bool PopEventBuffer::NextBatch(uint64_t now_ms, pb::PopEventReport* out) {
  if (in_flight_ || q_.empty()) return false;
  out->clear_events();
  for (size_t i = 0; i < q_.size() && i < batch_max_; i++) {
    pb::PopEvent* e = out->add_events();
    *e = q_[i].ev;
    e->set_age_ms(now_ms >= q_[i].t_ms ? now_ms - q_[i].t_ms : 0);
    in_flight_last_seq_ = e->seq();
  }
  out->set_dropped_total(dropped_total_);
  in_flight_ = true;
  return true;
}

void PopEventBuffer::Acked() {
  if (!in_flight_) return;
  in_flight_ = false;
  while (!q_.empty() && q_.front().ev.seq() <= in_flight_last_seq_) {
    q_.pop_front();
    acked_total_++;
  }
}

void PopEventBuffer::Failed() { in_flight_ = false; }

// ---- PopCore's events ---------------------------------------------------------

void PopCore::NoteEvent(pb::PopEventKind kind, uint32_t gateway_id, uint32_t pop_id,
                        uint64_t count, uint64_t bytes, std::string detail) {
  events_.Add(now_ms_, kind, gateway_id, pop_id, count, bytes, std::move(detail));
}

void PopCore::NoteMembershipEvent(const MembershipEvent& e) {
  switch (e.kind) {
    case MembershipEvent::kSuspected: {
      const GatewayRecord* g = members_.Find(e.gateway_id);
      bool silent = g && g->connected;
      return NoteEvent(pb::POP_EVENT_GATEWAY_SUSPECTED, e.gateway_id, 0, 0, 0,
                       silent ? "heartbeats stopped" : "connection closed");
    }
    case MembershipEvent::kRecovered:
      return NoteEvent(pb::POP_EVENT_GATEWAY_RECOVERED, e.gateway_id, 0, 0, 0,
                       "back within the grace period; nothing to repair");
    case MembershipEvent::kReturned:
      return NoteEvent(pb::POP_EVENT_GATEWAY_RETURNED, e.gateway_id, 0, 0, 0,
                       "reconciling its inventory with what was rebuilt meanwhile");
    case MembershipEvent::kLost: break;
  }
  // Lost: its fragments are rebuilt elsewhere (EnqueueRepairsOn, right after).
  std::set<Bytes> chunks;
  uint64_t fragments = 0;
  for (auto& [key, idx] : store_->FragmentsOnGateway(e.gateway_id, SIZE_MAX)) {
    fragments++;
    chunks.insert(key.chunk_id);
  }
  uint64_t silent_s = p_.gateway_grace_ms / 1000;
  NoteEvent(pb::POP_EVENT_GATEWAY_LOST, e.gateway_id, 0, fragments, 0,
            "silent for the grace period (" + std::to_string(silent_s) + " s); it held " +
                std::to_string(fragments) + " fragments");
  if (chunks.empty()) return;
  NoteEvent(pb::POP_EVENT_REPAIR_STARTED, e.gateway_id, 0, chunks.size(), 0,
            "rebuilding the fragments of " + std::to_string(chunks.size()) +
                " chunks on other gateways of the region");
  if (repair_watch_.size() >= kRepairWatchMax && !repair_watch_.count(e.gateway_id)) return;
  RepairStats s = repair_.stats();
  repair_watch_[e.gateway_id] =
      RepairWatch{now_ms_, s.repaired_chunks_total, s.bytes_total, s.failed_total, chunks.size()};
}

void PopCore::NoteBadFragment(uint32_t gateway_id) {
  if (bad_found_.size() < kRepairWatchMax || bad_found_.count(gateway_id)) bad_found_[gateway_id]++;
}

// A repair "for a lost gateway" is finished when the region's repair queue
// has drained after it started (nothing queued, in flight, waiting for a
// retry, or left over from a full queue).
void PopCore::TrackReportedRepairs() {
  for (auto& [gw, n] : bad_found_)
    NoteEvent(pb::POP_EVENT_FRAGMENTS_BAD, gw, 0, n, 0,
              std::to_string(n) + " fragments found corrupt or missing; queued for repair");
  bad_found_.clear();
  if (repair_watch_.empty()) return;
  RepairStats s = repair_.stats();
  if (s.queued_chunks > 0 || s.in_flight_chunks > 0 || repair_.overflowed()) return;
  for (auto& [gw, w] : repair_watch_) {
    uint64_t chunks = s.repaired_chunks_total - w.chunks_base;
    uint64_t bytes = s.bytes_total - w.bytes_base;
    uint64_t secs = (now_ms_ - w.started_ms) / 1000;
    NoteEvent(pb::POP_EVENT_REPAIR_FINISHED, gw, 0, chunks, bytes,
              "the region's repair queue drained " + std::to_string(secs) + " s after the loss: " +
                  std::to_string(chunks) + " chunks repaired (" + std::to_string(w.chunks_queued) +
                  " were on this gateway), " + std::to_string(bytes) + " bytes of repair traffic, " +
                  std::to_string(s.failed_total - w.failures_base) + " failed attempts retried");
  }
  repair_watch_.clear();
}

// Role changes this POP learns from a new cluster map: a POP going down
// hands its primary role to the backups of its objects (this POP among
// them) and the DC stands in as their backup; a POP coming back resumes.
void PopCore::NoteMapChange(const pb::ClusterMap& old_map) {
  if (old_map.epoch() == 0) return;  // the first map this process sees
  std::map<uint32_t, bool> was;
  for (auto& p : old_map.pops()) was[p.pop_id()] = p.up();
  for (auto& p : map_.pops()) {
    auto it = was.find(p.pop_id());
    bool before = it != was.end() && it->second;
    if (before == p.up()) continue;
    std::string epoch = "epoch " + std::to_string(map_.epoch()) + ": ";
    std::string detail;
    if (p.pop_id() == p_.pop_id)
      detail = epoch + (p.up() ? "this POP is up again; it resumes its roles once synced"
                               : "this POP is marked down; its objects' backups act as primary");
    else if (p.up())
      detail = epoch + "POP " + std::to_string(p.pop_id()) +
               " is back; it is primary again for its objects";
    else
      detail = epoch + "POP " + std::to_string(p.pop_id()) +
               " is down; this POP acts as primary for the objects it backs up from it";
    NoteEvent(pb::POP_EVENT_ROLE_CHANGE, 0, p.pop_id(), map_.epoch(), 0, std::move(detail));
  }
}

void PopCore::FillRepairSummary(pb::MonitorPopSummary* s) const {
  RepairStats r = repair_.stats();
  s->set_chunks_below_redundancy(below_redundancy_);
  s->set_repair_queue_chunks(r.queued_chunks);
  s->set_repair_in_flight_chunks(r.in_flight_chunks);
  s->set_repair_queue_bytes(r.queued_bytes);
  s->set_repair_bytes_total(r.bytes_total);
  s->set_repair_chunks_total(r.repaired_chunks_total);
  s->set_repair_failures_total(r.failed_total);
  s->set_repair_eta_s(r.eta_s);
  s->set_gateways_suspected(members_.Count(GwState::kSuspected));
  s->set_gateways_lost(members_.Count(GwState::kLost));
  s->set_events_dropped_total(events_.dropped_total());
}

}  // namespace mistore
