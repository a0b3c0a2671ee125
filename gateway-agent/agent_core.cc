#include "gateway-agent/agent_core.h"

#include <algorithm>

#include "shared/core/log.h"
#include "shared/erasure/fragment.h"

namespace mistore {

namespace {
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

void AddRef(const std::string& name, google::protobuf::RepeatedPtrField<pb::FragmentRef>* out) {
  Bytes id;
  uint32_t index = 0;
  if (!ParseFragmentName(name, &id, &index)) return;
  auto* r = out->Add();
  r->set_chunk_id(ToStr(id));
  r->set_index(index);
}

const char* KindName(int kind) {
  switch (kind) {
    case 0:
      return "GatewayHeartbeat";
    case 1:
      return "GatewayInventory";
    default:
      return "FragmentsBad";
  }
}
}  // namespace

Result<std::vector<std::string>> ParseFailureDomains(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size() && !list.empty()) {
    size_t comma = list.find(',', start);
    std::string item =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size() ||
        item.find_first_of(" \t=", eq + 1) != std::string::npos ||
        item.find_first_of(" \t") != std::string::npos)
      return InvalidArgument("failure_domains: \"" + item + "\" is not key=value");
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

AgentCore::AgentCore(AgentParams p, FragmentStore* store, uint64_t now_ms)
    : p_(std::move(p)),
      store_(store),
      bucket_(p_.background_io_bytes_per_s, p_.background_io_burst_bytes, now_ms),
      scrub_(p_.scrub_period_ms, now_ms),
      load_window_start_ms_(now_ms) {
  MS_ASSERT(p_.heartbeat_ms > 0 && p_.scrub_period_ms > 0);
}

AgentOutbox AgentCore::TakeOutbox() {
  AgentOutbox o = std::move(out_);
  out_ = AgentOutbox{};
  return o;
}

void AgentCore::Call(CallKind kind, pb::Envelope msg, std::vector<std::string> names) {
  uint64_t token = next_token_++;
  pending_[token] = Pending{kind, std::move(names)};
  out_.calls.push_back({token, std::move(msg)});
}

void AgentCore::ReplyOk(uint64_t conn, uint64_t id, pb::Envelope msg) {
  out_.replies.push_back({conn, id, Status::Ok(), std::move(msg)});
}

void AgentCore::ReplyError(uint64_t conn, uint64_t id, Status st) {
  out_.replies.push_back({conn, id, std::move(st), pb::Envelope{}});
}

// ---- registration, heartbeats, inventory, bad reports ----

void AgentCore::OnRegistered(uint64_t now_ms, uint64_t conn, uint32_t pop_id) {
  registered_ = true;
  conn_ = conn;
  pop_id_ = pop_id;
  SendInventory();
  SendHeartbeat(now_ms);
}

void AgentCore::OnPopLost(uint64_t /*now_ms*/) {
  registered_ = false;
  // Queued repair reads belong to the lost connection: nobody to answer.
  bg_fetches_.clear();
}

void AgentCore::FillInventory(pb::GatewayInventory* inv, std::vector<std::string>* bad_taken) {
  for (auto& [name, size] : store_->index()) AddRef(name, inv->mutable_fragments());
  *bad_taken = store_->TakeBad(SIZE_MAX);
  for (auto& n : *bad_taken) AddRef(n, inv->mutable_bad());
  inv->set_inventory_digest(ToStr(store_->digest()));
}

void AgentCore::SendInventory() {
  pb::Envelope e;
  std::vector<std::string> bad;
  FillInventory(e.mutable_gateway_inventory(), &bad);
  stats_.inventories_sent++;
  Call(CallKind::kInventory, std::move(e), std::move(bad));
}

void AgentCore::SendHeartbeat(uint64_t now_ms) {
  // Background I/O share used since the last heartbeat.
  uint64_t window_ms = now_ms - load_window_start_ms_;
  if (window_ms > 0) {
    uint64_t bytes = bucket_.taken_total() - load_window_bytes_at_start_;
    double allowed = double(p_.background_io_bytes_per_s) * double(window_ms) / 1000.0;
    load_permille_ = uint32_t(std::min(1000.0, double(bytes) * 1000.0 / std::max(allowed, 1.0)));
  }
  load_window_start_ms_ = now_ms;
  load_window_bytes_at_start_ = bucket_.taken_total();
  next_heartbeat_ms_ = now_ms + p_.heartbeat_ms;
  if (!registered_ || heartbeat_in_flight_) return;
  pb::Envelope e;
  auto* h = e.mutable_gateway_heartbeat();
  h->set_store_bytes_max(store_->store_bytes_max());
  h->set_store_bytes_free(store_->free_bytes());
  h->set_load_permille(load_permille_);
  h->set_inventory_digest(ToStr(store_->digest()));
  h->set_fragment_count(store_->fragment_count());
  for (auto& d : p_.failure_domains) h->add_failure_domains(d);
  h->set_scrub_passes_total(scrub_.passes_total());
  heartbeat_in_flight_ = true;
  stats_.heartbeats_sent++;
  Call(CallKind::kHeartbeat, std::move(e));
}

void AgentCore::MaybeReportBad() {
  if (!registered_ || bad_in_flight_ || store_->bad_unreported().empty()) return;
  std::vector<std::string> names = store_->TakeBad(p_.bad_report_max);
  pb::Envelope e;
  for (auto& n : names) AddRef(n, e.mutable_fragments_bad()->mutable_fragments());
  MS_INFO("agent", "reporting bad fragments to the POP", "count=" + std::to_string(names.size()));
  bad_in_flight_ = true;
  Call(CallKind::kBad, std::move(e), std::move(names));
}

void AgentCore::NoteUnhandled(CallKind kind, const Status& st) {
  // A POP without the issue-6 handlers answers with an error: tolerated,
  // logged once per message type.
  if (unhandled_logged_[kind]) return;
  unhandled_logged_[kind] = true;
  MS_DEBUG("agent", "POP refused a durability message; going on without it",
           std::string("type=") + KindName(int(kind)) + " error=\"" + st.ToString() + "\"");
}

void AgentCore::OnCallDone(uint64_t /*now_ms*/, uint64_t token, const Result<pb::Envelope>& r) {
  auto it = pending_.find(token);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  const bool delivered = r.ok();  // the POP got it (it may still have refused it)
  Status refusal;
  if (r.ok() && r->has_error()) refusal = Status(Code(r->error().code()), r->error().message());
  switch (p.kind) {
    case CallKind::kHeartbeat:
      heartbeat_in_flight_ = false;
      if (delivered && refusal.ok()) stats_.heartbeats_acked++;
      break;
    case CallKind::kInventory:
    case CallKind::kBad:
      if (p.kind == CallKind::kBad) bad_in_flight_ = false;
      if (!delivered) {
        store_->RequeueBad(p.names);  // lost with the connection: next time
      } else if (refusal.ok()) {
        if (p.kind == CallKind::kBad) stats_.bad_reported += p.names.size();
      }
      break;
  }
  if (delivered && !refusal.ok()) NoteUnhandled(p.kind, refusal);
}

// ---- requests from the POP ----

bool AgentCore::IsPopRequest(const pb::Envelope& req) const {
  switch (req.body_case()) {
    case pb::Envelope::kStoreFragment:
    case pb::Envelope::kFetchFragment:
    case pb::Envelope::kGetInventory:
    case pb::Envelope::kDeleteFragments:
    case pb::Envelope::kHeldResults:
    case pb::Envelope::kClusterMap:
      return true;
    default:
      return false;
  }
}

void AgentCore::ServeFetch(uint64_t conn, uint64_t id, const Bytes& chunk_id, uint32_t index) {
  auto blob = store_->Get(chunk_id, index);
  if (!blob.ok()) {
    if (blob.status().code() == Code::kCorrupt) {
      MS_WARN("agent", "fragment failed its check; not served",
              "error=\"" + blob.status().message() + "\"");
      stats_.fragment_check_failures++;
    }
    return ReplyError(conn, id, blob.status());
  }
  pb::Envelope r;
  r.mutable_fragment_data()->set_fragment(ToStr(blob.value()));
  stats_.fragments_served++;
  stats_.fragment_bytes_served += blob->size();
  ReplyOk(conn, id, std::move(r));
}

void AgentCore::OnPopRequest(uint64_t now_ms, uint64_t conn, const pb::Envelope& req) {
  const uint64_t id = req.request_id();
  switch (req.body_case()) {
    case pb::Envelope::kStoreFragment: {
      const std::string& f = req.store_fragment().fragment();
      Status st = store_->Put(ToBytes(f));
      if (!st.ok()) {
        MS_WARN("agent", "fragment refused", "error=\"" + st.ToString() + "\"");
        ReplyError(conn, id, st);
        break;
      }
      stats_.fragments_stored++;
      stats_.fragment_bytes_stored += f.size();
      pb::Envelope r;
      r.mutable_empty();
      ReplyOk(conn, id, std::move(r));
      break;
    }
    case pb::Envelope::kFetchFragment: {
      const auto& m = req.fetch_fragment();
      if (!m.background()) {
        ServeFetch(conn, id, ToBytes(m.chunk_id()), m.index());
        break;
      }
      if (bg_fetches_.size() >= p_.background_fetch_queue_max) {
        stats_.background_fetches_refused++;
        ReplyError(conn, id,
                   ResourceExhausted("background read queue full (" +
                                     std::to_string(bg_fetches_.size()) + ")"));
        break;
      }
      bg_fetches_.push_back({conn, id, ToBytes(m.chunk_id()), m.index()});
      ServeBackgroundFetches(now_ms);
      break;
    }
    case pb::Envelope::kGetInventory: {
      pb::Envelope r;
      std::vector<std::string> bad;
      FillInventory(r.mutable_gateway_inventory(), &bad);
      stats_.inventories_sent++;
      ReplyOk(conn, id, std::move(r));
      break;
    }
    case pb::Envelope::kDeleteFragments: {
      Status first;
      size_t n = 0;
      for (auto& ref : req.delete_fragments().fragments()) {
        if (ref.chunk_id().size() != kChunkIdSize) {
          if (first.ok()) first = InvalidArgument("chunk id must be 32 bytes");
          continue;
        }
        std::string name = FragmentName(ToBytes(ref.chunk_id()), ref.index());
        bool had = store_->Has(name);
        Status st = store_->Delete(name);
        if (!st.ok() && first.ok()) first = st;
        if (st.ok() && had) n++;
      }
      stats_.fragments_deleted += n;
      if (n)
        MS_INFO("agent", "deleted fragments at the POP's request", "count=" + std::to_string(n));
      if (!first.ok()) {
        ReplyError(conn, id, first);
      } else {
        pb::Envelope r;
        r.mutable_empty();
        ReplyOk(conn, id, std::move(r));
      }
      break;
    }
    case pb::Envelope::kHeldResults: {
      const std::string& me = p_.subscriber;
      for (auto& r : req.held_results().results()) {
        if (!me.empty() && r.subscriber() != me) continue;  // not ours: never handed out
        HoldReply(now_ms, r.write_id(), r.put_reply());
        stats_.results_received++;
      }
      MS_INFO("agent", "POP delivered results kept while this gateway was away",
              "count=" + std::to_string(req.held_results().results_size()));
      pb::Envelope r;
      r.mutable_empty();
      ReplyOk(conn, id, std::move(r));
      break;
    }
    case pb::Envelope::kClusterMap: {
      OnClusterMap(now_ms, req.cluster_map(), pop_id_);
      pb::Envelope r;
      r.mutable_empty();
      ReplyOk(conn, id, std::move(r));
      break;
    }
    default:
      ReplyError(conn, id, ProtocolError("agent does not serve this message from a POP"));
  }
  MaybeReportBad();
}

const pb::PutReply* AgentCore::HeldReply(uint64_t now_ms, const std::string& write_id) {
  auto it = held_.find(write_id);
  if (it == held_.end()) return nullptr;
  if (now_ms >= it->second.expires_ms) {
    held_order_.erase(it->second.seq);
    held_.erase(it);
    return nullptr;
  }
  stats_.results_answered++;
  return &it->second.reply;
}

void AgentCore::HoldReply(uint64_t now_ms, const std::string& write_id, const pb::PutReply& reply) {
  if (write_id.empty() || p_.held_results_max == 0) return;
  auto old = held_.find(write_id);
  if (old != held_.end()) {
    held_order_.erase(old->second.seq);
    held_.erase(old);
  }
  // Oldest first out: expired ones, then beyond the bound.
  while (!held_order_.empty() &&
         (held_.size() >= p_.held_results_max ||
          held_.at(held_order_.begin()->second).expires_ms <= now_ms)) {
    held_.erase(held_order_.begin()->second);
    held_order_.erase(held_order_.begin());
  }
  uint64_t seq = ++held_seq_;
  held_[write_id] = Held{reply, now_ms + p_.held_results_ms, seq};
  held_order_[seq] = write_id;
}

// ---- background work ----

void AgentCore::ServeBackgroundFetches(uint64_t now_ms) {
  while (!bg_fetches_.empty()) {
    BgFetch& f = bg_fetches_.front();
    const std::string name =
        f.chunk_id.size() == kChunkIdSize ? FragmentName(f.chunk_id, f.index) : "";
    auto it = store_->index().find(name);
    uint64_t bytes = it == store_->index().end() ? 0 : it->second;
    if (bytes && !bucket_.TryTake(now_ms, bytes)) return;
    BgFetch done = std::move(f);
    bg_fetches_.pop_front();
    ServeFetch(done.conn, done.request_id, done.chunk_id, done.index);
  }
}

void AgentCore::ScrubSome(uint64_t now_ms) {
  for (size_t n = 0; n < p_.scrub_reads_per_tick_max; n++) {
    if (!scrub_.MaybeStartPass(now_ms, store_->used_bytes())) return;
    auto next = store_->NextAfter(scrub_cursor_);
    if (!next) {
      if (scrub_.EndPass(now_ms)) {
        stats_.scrub_late_passes++;
        MS_WARN("agent",
                "scrub pass took longer than scrub_period_s; raise background_io_bytes_per_s",
                "fragments=" + std::to_string(store_->fragment_count()));
      }
      scrub_cursor_.clear();
      return;
    }
    if (!scrub_.ReadDue(now_ms)) return;
    uint64_t bytes = store_->index().at(*next);
    if (!bucket_.TryTake(now_ms, bytes)) return;
    uint64_t read = 0;
    Status st = store_->Verify(*next, &read);
    scrub_cursor_ = *next;
    scrub_.Done(read);
    stats_.scrub_fragments++;
    stats_.scrub_bytes += read;
    if (st.code() == Code::kCorrupt || st.code() == Code::kIo) {
      stats_.scrub_bad++;
      MS_WARN("agent", "scrub found a bad fragment; not served any more",
              "fragment=" + next->substr(0, 12) + " error=\"" + st.message() + "\"");
    }
  }
}

void AgentCore::OnTick(uint64_t now_ms) {
  if (now_ms >= next_heartbeat_ms_) SendHeartbeat(now_ms);
  ServeBackgroundFetches(now_ms);
  if (bg_fetches_.empty()) ScrubSome(now_ms);  // repair reads first
  MaybeReportBad();
}

uint64_t AgentCore::NextWakeMs(uint64_t now_ms) const {
  uint64_t t = std::max(now_ms, next_heartbeat_ms_);
  uint64_t io_ready = now_ms + bucket_.WaitMs(now_ms);
  if (!bg_fetches_.empty()) return std::min(t, io_ready);
  uint64_t scrub = scrub_.NextDueMs(now_ms);
  return std::min(t, std::max(scrub, io_ready));
}

// ---- cluster map (issue 7) ----

bool AgentCore::OnClusterMap(uint64_t /*now_ms*/, const pb::ClusterMap& map, uint32_t via_pop) {
  if (map.epoch() < map_epoch_) {
    stats_.maps_stale++;
    return false;
  }
  if (map.epoch() == map_epoch_) return false;
  const pb::PopInfo* via = nullptr;
  for (const auto& p : map.pops())
    if (via_pop != 0 && p.pop_id() == via_pop) via = &p;
  std::vector<RegionPop> pops;
  for (const auto& p : map.pops()) {
    if (via && p.region() != via->region()) continue;
    if (pops.size() >= kRegionPopsMax) break;
    pops.push_back({p.pop_id(), p.addr(), p.up()});
  }
  MS_INFO("agent", "cluster map",
          "epoch=" + std::to_string(map.epoch()) + " was=" + std::to_string(map_epoch_) +
              " region_pops=" + std::to_string(pops.size()));
  map_epoch_ = map.epoch();
  region_pops_ = std::move(pops);
  stats_.maps_applied++;
  return true;
}

std::vector<std::string> AgentCore::UpPopAddrs() const {
  std::vector<std::string> out;
  for (const auto& p : region_pops_)
    if (p.up && !p.addr.empty()) out.push_back(p.addr);
  return out;
}

}  // namespace mistore
