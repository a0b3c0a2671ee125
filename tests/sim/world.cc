#include "tests/sim/world.h"

#include <cstdio>
#include <cstdlib>

#include "shared/erasure/fragment.h"
#include "shared/wire/envelope.h"

namespace mistore::sim {

namespace {
constexpr const char* kSubscriber = "alice";
constexpr uint64_t kClientConnBase = 100000;

std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

uint64_t Fnv(uint64_t h, const void* data, size_t n) {
  auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// 32 deterministic bytes standing in for a keyed BLAKE2b (the simulator
// needs distinct ids, not secrecy).
Bytes Id32(const std::string& domain, const Bytes& data) {
  Bytes out(32);
  uint64_t h = Fnv(Fnv(1469598103934665603ull, domain.data(), domain.size()), data.data(), data.size());
  for (int i = 0; i < 4; i++) {
    h = Fnv(h, &i, sizeof i);
    PutLe64(out.data() + 8 * i, h);
  }
  return out;
}

Bytes Digest(const std::vector<Bytes>& chunks) {
  uint64_t h = 1469598103934665603ull;
  for (auto& c : chunks) {
    uint64_t n = c.size();
    h = Fnv(h, &n, sizeof n);
    h = Fnv(h, c.data(), c.size());
  }
  Bytes out(8);
  PutLe64(out.data(), h);
  return out;
}
}  // namespace

PopParams SimWorld::ParamsFor(uint32_t pop_id) const {
  PopParams params;
  params.pop_id = pop_id;
  params.region = pop_id == kDcReplica ? "dc" : "r" + std::to_string(pop_id);
  params.k = cfg_.k;
  params.m = cfg_.m;
  params.cache_bytes_max = pop_id == kDcReplica ? UINT64_MAX : cfg_.pop_cache_bytes_max;
  params.place_fragments = pop_id != kDcReplica;
  params.read_primary_first = cfg_.read_primary_first;
  params.forward_chunks_in_flight_max = size_t(cfg_.forward_chunks_in_flight_max);
  params.placement_bytes_per_gateway_max = cfg_.placement_bytes_per_gateway_max;
  params.staged_keep_ms = cfg_.staged_keep_ms;
  params.upload_pin_ms = cfg_.upload_pin_ms;
  // The DC's stand-in is the DC: it needs no lease on the DC's map.
  params.map_lease_ms =
      pop_id == kDcReplica || cfg_.map_refresh_ms == 0 ? 0 : cfg_.map_lease_ms;
  return params;
}

SimWorld::SimWorld(uint64_t seed, SimConfig cfg) : cfg_(cfg), rng_(seed) {
  map_.set_epoch(1);
  for (int p = 1; p <= cfg_.pops; p++) {
    auto* info = map_.add_pops();
    info->set_pop_id(uint32_t(p));
    info->set_region("r" + std::to_string(p));
    info->set_addr("sim:" + std::to_string(p));
    info->set_up(true);
  }
  // POP 0 is the DC standing in as a replica (full copies, no gateways).
  for (int p = 0; p <= cfg_.pops; p++) {
    auto node = std::make_unique<PopNode>();
    node->id = uint32_t(p);
    node->store = std::make_unique<MemPopStore>();
    node->core = std::make_unique<PopCore>(ParamsFor(uint32_t(p)), node->store.get(), rng_());
    if (cfg_.clock_drift_ppm_max > 0)
      node->drift_ppm = int64_t(rng_() % (2 * cfg_.clock_drift_ppm_max + 1)) -
                        int64_t(cfg_.clock_drift_ppm_max);
    node->core->OnClusterMap(0, map_);
    for (int g = 1; p > 0 && g <= cfg_.gateways_per_pop; g++) {
      uint32_t gid = uint32_t(p * 1000 + g);
      gateways_[gid] = Gateway{gid, uint32_t(p)};
      node->core->OnGatewayUp(0, GatewayState{gid, kSubscriber, 1ull << 30, true});
    }
    pops_[uint32_t(p)] = std::move(node);
  }
  for (auto& [id, node] : pops_) {
    uint32_t pid = id;
    auto tick = std::make_shared<std::function<void()>>();
    *tick = [this, pid, tick] {
      // No tick while hung: the next one after it resumes runs as usual.
      if (pops_.at(pid)->core && !pops_.at(pid)->hung) {
        pops_.at(pid)->core->OnTick(PopNow(pid));
        Flush(pid);
      }
      Schedule(now_ms_ + cfg_.tick_ms, *tick);
    };
    Schedule(cfg_.tick_ms + id, *tick);
    if (cfg_.map_refresh_ms == 0 || id == kDcReplica) continue;
    // The daemon's map refresh (pop_main.cc): each reply from the DC is
    // OnDcContact + OnClusterMap. None while hung, cut off or the DC is down.
    auto refresh = std::make_shared<std::function<void()>>();
    *refresh = [this, pid, refresh] {
      PopNode& n = *pops_.at(pid);
      if (n.core && !n.hung && LinkedToDc(pid)) MapRefresh(pid);
      Schedule(now_ms_ + cfg_.map_refresh_ms, *refresh);
    };
    Schedule(cfg_.map_refresh_ms + 3 * id, *refresh);
  }
  if (cfg_.map_refresh_ms > 0) {
    auto silence = std::make_shared<std::function<void()>>();
    *silence = [this, silence] {
      CheckSilence();
      Schedule(now_ms_ + cfg_.map_refresh_ms, *silence);
    };
    Schedule(cfg_.map_refresh_ms + 2, *silence);
  }
}

void SimWorld::AtPop(uint32_t pop_id, std::function<void()> fn) {
  PopNode& node = *pops_.at(pop_id);
  if (node.hung && node.core) {
    node.held.push_back(std::move(fn));
    return;
  }
  fn();
}

bool SimWorld::PopUpInMap(uint32_t pop_id) const {
  for (auto& p : map_.pops())
    if (p.pop_id() == pop_id) return p.up();
  return false;
}

void SimWorld::MapRefresh(uint32_t pop_id) {
  PopNode& node = *pops_.at(pop_id);
  node.dc_heard_ms = now_ms_;
  if (silenced_.erase(pop_id)) {
    // The DC hears from a POP it marked down for silence: up again, a new
    // epoch to everyone (as when a POP reconnects).
    Trace("dc hears pop" + std::to_string(pop_id) + " again: marks it up");
    for (auto& p : *map_.mutable_pops())
      if (p.pop_id() == pop_id) p.set_up(true);
    PushMap();
  }
  node.core->OnDcContact(PopNow(pop_id));
  node.core->OnClusterMap(PopNow(pop_id), map_);
  Flush(pop_id);
}

void SimWorld::CheckSilence() {
  if (dc_down_) return;
  bool changed = false;
  for (auto& [id, node] : pops_) {
    if (id == kDcReplica || !node->core || !PopUpInMap(id)) continue;
    if (now_ms_ - node->dc_heard_ms <= cfg_.pop_silence_ms) continue;
    Trace("dc marks silent pop" + std::to_string(id) + " down");
    for (auto& p : *map_.mutable_pops())
      if (p.pop_id() == id) p.set_up(false);
    silenced_.insert(id);
    changed = true;
  }
  if (changed) PushMap();
}

void SimWorld::SetPopCutOff(uint32_t pop_id, bool cut_off) {
  Trace("pop" + std::to_string(pop_id) +
        (cut_off ? " cut off from the dc" : " reaches the dc again"));
  pops_.at(pop_id)->cut_off = cut_off;
}

void SimWorld::SetPopHung(uint32_t pop_id, bool hung) {
  PopNode& node = *pops_.at(pop_id);
  Trace("pop" + std::to_string(pop_id) + (hung ? " hangs" : " resumes"));
  node.hung = hung;
  if (hung || !node.core) return;
  // Worst case for its lease: the DC's reply is the first thing it reads,
  // so its clock never shows the silence (only the epoch gap does).
  if (cfg_.map_refresh_ms > 0 && LinkedToDc(pop_id)) MapRefresh(pop_id);
  auto held = std::move(node.held);
  node.held.clear();
  for (auto& fn : held) fn();
}

bool SimWorld::Alive(uint32_t pop_id, uint64_t inc) const {
  auto it = pops_.find(pop_id);
  return it != pops_.end() && it->second->core && it->second->incarnation == inc;
}

void SimWorld::PushMap() {
  map_.set_epoch(map_.epoch() + 1);
  DeliverMap();
}

void SimWorld::DeliverMap() {
  for (auto& [id, node] : pops_) {
    if (!node->core || node->cut_off)
      continue;  // a POP cut off from the DC misses it
    uint32_t pid = id;
    uint64_t inc = node->incarnation;
    pb::ClusterMap map = map_;
    auto deliver = [this, pid, inc, map] {
      if (!Alive(pid, inc)) return;
      pops_.at(pid)->core->OnClusterMap(PopNow(pid), map);
      Flush(pid);
    };
    // The DC's own stand-in replica learns a new map at once.
    if (cfg_.map_delay_max_ms == 0 || id == kDcReplica) {
      AtPop(pid, deliver);
      continue;
    }
    Schedule(now_ms_ + Delay(0, cfg_.map_delay_max_ms),
             [this, pid, inc, map, deliver] {
               if (!Alive(pid, inc) || pops_.at(pid)->cut_off) return;
               Trace("map epoch " + std::to_string(map.epoch()) +
                     " reaches pop" + std::to_string(pid));
               AtPop(pid, deliver);
             });
  }
}

uint64_t SimWorld::PopNow(uint32_t pop_id) const { return PopTime(pop_id, now_ms_); }

uint64_t SimWorld::PopTime(uint32_t pop_id, uint64_t true_ms) const {
  int64_t drift = pops_.at(pop_id)->drift_ppm;
  return uint64_t(int64_t(true_ms) + int64_t(true_ms) * drift / 1000000);
}

uint64_t SimWorld::TrueTime(uint32_t pop_id, uint64_t pop_ms) const {
  if (pop_ms == UINT64_MAX) return UINT64_MAX;
  int64_t drift = pops_.at(pop_id)->drift_ppm;
  uint64_t t = uint64_t((unsigned __int128)pop_ms * 1000000 / uint64_t(1000000 + drift));
  while (t > 0 && PopTime(pop_id, t - 1) >= pop_ms) t--;
  while (PopTime(pop_id, t) < pop_ms) t++;
  return t;
}

// After every event a POP handled: which write locks its table holds with a
// running lease. A lock is valid from when it is first seen until it is
// released, expires (by that POP's clock), turns dormant, or the POP crashes.
void SimWorld::ObserveLocks(uint32_t pop_id) {
  PopNode& node = *pops_.at(pop_id);
  if (!node.core) return;
  const LockTable& t = node.core->locks();
  auto seen = lock_changes_seen_.find(pop_id);
  if (seen != lock_changes_seen_.end() && seen->second == t.changes()) return;
  lock_changes_seen_[pop_id] = t.changes();
  std::set<std::pair<Bytes, uint64_t>> now_held;
  uint64_t pop_now = PopNow(pop_id);
  for (auto& l : t.ActiveLocks()) {
    // Lapsed (by this POP's clock) but not dropped yet, or started with a
    // lease its map lease had already ended (bug 11): not valid.
    if (l.type != LockType::kWrite || l.expires_ms <= pop_now) continue;
    now_held.insert({l.oid, l.lock_id});
    auto key = std::make_tuple(pop_id, l.oid, l.lock_id);
    auto it = open_locks_.find(key);
    uint64_t ends = TrueTime(pop_id, l.expires_ms);
    if (it == open_locks_.end()) {
      open_locks_[key] = OpenLock{now_ms_, l.token, ends};
    } else {
      it->second.ends_ms = ends;  // renewed (a lapsed lease cannot be renewed)
    }
  }
  for (auto it = open_locks_.lower_bound(std::make_tuple(pop_id, Bytes(), uint64_t(0)));
       it != open_locks_.end() && std::get<0>(it->first) == pop_id;) {
    if (now_held.count({std::get<1>(it->first), std::get<2>(it->first)})) {
      ++it;
      continue;
    }
    lock_history_.push_back(LockInterval{std::get<1>(it->first), std::get<2>(it->first),
                                         it->second.token, pop_id, it->second.from_ms,
                                         std::min(now_ms_, it->second.ends_ms)});
    it = open_locks_.erase(it);
  }
}

void SimWorld::CloseLocks(uint32_t pop_id) {
  for (auto it = open_locks_.lower_bound(std::make_tuple(pop_id, Bytes(), uint64_t(0)));
       it != open_locks_.end() && std::get<0>(it->first) == pop_id;) {
    lock_history_.push_back(LockInterval{std::get<1>(it->first), std::get<2>(it->first),
                                         it->second.token, pop_id, it->second.from_ms,
                                         std::min(now_ms_, it->second.ends_ms)});
    it = open_locks_.erase(it);
  }
  lock_changes_seen_.erase(pop_id);
}

uint64_t SimWorld::locks_inherited() const {
  uint64_t n = locks_inherited_dead_;
  for (auto& [id, node] : pops_)
    if (node->core) n += node->core->locks_inherited_total();
  return n;
}

uint64_t SimWorld::staged_fragments_swept() const {
  uint64_t n = staged_swept_dead_;
  for (auto& [id, node] : pops_)
    if (node->core) n += node->core->staged_chunks_dropped_total();
  return n;
}

std::vector<LockInterval> SimWorld::LockHistory() const {
  std::vector<LockInterval> out = lock_history_;
  for (auto& [key, l] : open_locks_)
    out.push_back(LockInterval{std::get<1>(key), std::get<2>(key), l.token, std::get<0>(key),
                               l.from_ms, std::min(now_ms_, l.ends_ms)});
  return out;
}

void SimWorld::SetDcDown(bool down) {
  Trace(down ? "dc down" : "dc up");
  dc_down_ = down;
  // The DC back: it times POPs' silence from now on (their refreshes failed
  // while it was down, through no fault of theirs).
  if (!down)
    for (auto& [id, node] : pops_) node->dc_heard_ms = now_ms_;
}

void SimWorld::SetDiskFailing(uint32_t pop_id, bool failing) {
  Trace("pop" + std::to_string(pop_id) + (failing ? " disk failing" : " disk healthy"));
  pops_.at(pop_id)->store->fail_writes = failing;
}

void SimWorld::CrashPop(uint32_t pop_id) {
  PopNode& node = *pops_.at(pop_id);
  if (!node.core) return;
  Trace("crash pop" + std::to_string(pop_id));
  CloseLocks(pop_id);
  locks_inherited_dead_ += node.core->locks_inherited_total();
  staged_swept_dead_ += node.core->staged_chunks_dropped_total();
  node.core.reset();
  const uint64_t dead_conn = (uint64_t(node.incarnation) << 32) | pop_id;
  node.incarnation++;
  // The other POPs see its connections close.
  node.hung = false;
  node.held.clear();
  for (auto& [id, other] : pops_)
    if (other->core) {
      uint32_t oid = id;
      uint64_t oinc = other->incarnation;
      AtPop(oid, [this, oid, oinc, dead_conn] {
        if (!Alive(oid, oinc)) return;
        pops_.at(oid)->core->OnConnectionClosed(PopNow(oid), dead_conn);
        Flush(oid);
      });
    }
  // Connections to it break: requests it had not answered fail.
  for (auto it = awaiting_.begin(); it != awaiting_.end();) {
    if (std::get<0>(it->first) == pop_id) {
      auto answer = std::move(it->second);
      it = awaiting_.erase(it);
      answer(ErrorResponse(0, Unavailable("connection to pop" + std::to_string(pop_id) + " lost")));
    } else {
      ++it;
    }
  }
  for (auto& p : *map_.mutable_pops())
    if (p.pop_id() == pop_id) p.set_up(false);
  PushMap();
}

void SimWorld::RestartPop(uint32_t pop_id) {
  PopNode& node = *pops_.at(pop_id);
  if (node.core) return;
  Trace("restart pop" + std::to_string(pop_id));
  node.incarnation++;
  node.core = std::make_unique<PopCore>(ParamsFor(pop_id), node.store.get(), rng_());
  // The DC marks it up under a new epoch and the restarted POP starts from
  // that map (it fetches it on connecting); the others get it as pushed.
  // (Before, it got the new map's content under the old epoch number: two
  // different maps with one epoch, which let it grant locks in the epoch
  // its stand-in had granted in — seed 5349.)
  for (auto& p : *map_.mutable_pops())
    if (p.pop_id() == pop_id) p.set_up(true);
  silenced_.erase(pop_id);
  node.dc_heard_ms = now_ms_;
  map_.set_epoch(map_.epoch() + 1);
  node.core->OnClusterMap(PopNow(pop_id), map_);
  for (auto& [gid, g] : gateways_)
    if (g.pop == pop_id && g.alive)
      node.core->OnGatewayUp(PopNow(pop_id), GatewayState{gid, kSubscriber, 1ull << 30, true});
  DeliverMap();
}

SimWorld::~SimWorld() = default;

void SimWorld::Schedule(uint64_t at_ms, std::function<void()> fn) {
  events_.emplace(std::make_pair(std::max(at_ms, now_ms_), seq_++), std::move(fn));
}

uint64_t SimWorld::Delay(uint64_t lo, uint64_t hi) {
  return hi <= lo ? lo : lo + rng_() % (hi - lo + 1);
}

// FIFO channels: a message never overtakes an earlier one on its channel.
uint64_t SimWorld::ChannelTime(const std::string& channel, uint64_t delay_ms) {
  uint64_t& last = channel_last_ms_[channel];
  uint64_t at = std::max(now_ms_ + delay_ms, last);
  last = at;
  return at;
}

void SimWorld::Trace(const std::string& line) {
  std::string l = std::to_string(now_ms_) + " " + line;
  hash_state_ = Fnv(hash_state_, l.data(), l.size());
  // MISTORE_SIM_TRACE_FILE=F writes the whole trace to F (for debugging
  // one seed; the run is the same with or without it).
  static FILE* trace_file = [] {
    const char* f = std::getenv("MISTORE_SIM_TRACE_FILE");
    // F = "-": standard error, where the trace interleaves in order with
    // the POPs' log lines (MISTORE_SIM_LOG=info).
    if (f && std::string(f) == "-") return stderr;
    return f ? std::fopen(f, "w") : nullptr;
  }();
  if (trace_file) std::fprintf(trace_file, "%s\n", l.c_str());
  trace_.push_back(l);
  if (trace_.size() > 400) trace_.erase(trace_.begin(), trace_.begin() + 200);
}

std::string SimWorld::HistoryHash() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)hash_state_);
  return buf;
}

std::vector<std::string> SimWorld::trace_tail(size_t n) const {
  size_t from = trace_.size() > n ? trace_.size() - n : 0;
  return std::vector<std::string>(trace_.begin() + long(from), trace_.end());
}

void SimWorld::RunUntil(uint64_t until_ms) {
  while (!events_.empty() && events_.begin()->first.first <= until_ms) {
    auto it = events_.begin();
    now_ms_ = it->first.first;
    auto fn = std::move(it->second);
    events_.erase(it);
    fn();
  }
  now_ms_ = std::max(now_ms_, until_ms);
}

bool SimWorld::RunUntilTrue(const std::function<bool()>& pred, uint64_t limit_ms) {
  uint64_t end = now_ms_ + limit_ms;
  while (!pred()) {
    if (events_.empty() || events_.begin()->first.first > end) return pred();
    auto it = events_.begin();
    now_ms_ = it->first.first;
    auto fn = std::move(it->second);
    events_.erase(it);
    fn();
  }
  return true;
}

void SimWorld::CrashGateway(uint32_t gateway_id) {
  Gateway& g = gateways_.at(gateway_id);
  g.alive = false;
  g.fragments.clear();  // fail-stop: its disk is gone with it
  Trace("crash gw" + std::to_string(gateway_id));
  if (pops_.at(g.pop)->core) {
    uint32_t pid = g.pop;
    uint64_t inc = pops_.at(pid)->incarnation;
    AtPop(pid, [this, pid, inc, gateway_id] {
      if (!Alive(pid, inc)) return;
      pops_.at(pid)->core->OnGatewayDown(PopNow(pid), gateway_id);
      Flush(pid);
    });
  }
}

bool SimWorld::AllPlaced() {
  for (auto& [id, node] : pops_) {
    if (!node->core) continue;
    if (!node->store->UnplacedChunks(1).empty()) return false;
    if (node->core->placements_in_flight() || node->core->placement_queue_size()) return false;
  }
  return true;
}

size_t SimWorld::fragments_on_gateways() const {
  size_t n = 0;
  for (auto& [id, g] : gateways_) n += g.fragments.size();
  return n;
}

// ---------------------------------------------------------------------------
// moving PopCore outboxes

void SimWorld::Flush(uint32_t pop_id) {
  PopNode& node = *pops_.at(pop_id);
  for (;;) {
    if (!node.core) return;
    Outbox out = node.core->TakeOutbox();
    if (out.empty()) {
      ObserveLocks(pop_id);
      break;
    }
    for (auto& r : out.replies) {
      auto key = std::make_tuple(pop_id, r.conn_id, r.request_id);
      auto it = awaiting_.find(key);
      MS_ASSERT(it != awaiting_.end());
      auto answer = std::move(it->second);
      awaiting_.erase(it);
      answer(std::move(r.msg));
    }
    for (auto& c : out.calls) DeliverCall(pop_id, c);
    for (auto& j : out.jobs) {
      Token t = j.token;
      auto run = std::move(j.run);
      uint64_t inc = node.incarnation;
      Schedule(now_ms_ + cfg_.job_delay_ms, [this, pop_id, t, run, inc] {
        AtPop(pop_id, [this, pop_id, t, run, inc] {
          if (!Alive(pop_id, inc)) return;
          run();
          Trace("job done pop" + std::to_string(pop_id));
          pops_.at(pop_id)->core->OnJobDone(PopNow(pop_id), t);
          Flush(pop_id);
        });
      });
    }
  }
}

// `inc` is the caller's incarnation when it made the call: a reply never
// reaches a later life of a POP that crashed meanwhile.
void SimWorld::CompleteCall(uint32_t pop_id, uint64_t inc, Token token, Result<pb::Envelope> reply,
                            uint64_t delay_ms, const std::string& channel) {
  uint64_t at = ChannelTime(channel, delay_ms);
  auto shared = std::make_shared<Result<pb::Envelope>>(std::move(reply));
  Schedule(at, [this, pop_id, token, shared, channel, inc] {
    AtPop(pop_id, [this, pop_id, token, shared, channel, inc] {
      if (!Alive(pop_id, inc)) return;  // the caller crashed meanwhile
      Trace("reply " + channel + (shared->ok() ? "" : " error"));
      pops_.at(pop_id)->core->OnCallDone(PopNow(pop_id), token,
                                         std::move(*shared));
      Flush(pop_id);
    });
  });
}

void SimWorld::DeliverCall(uint32_t from_pop, const OutCall& call, bool via_dc) {
  const uint64_t caller_inc = pops_.at(from_pop)->incarnation;
  switch (call.to.kind) {
    case Dest::kDc: return DeliverToDc(from_pop, call);
    case Dest::kGateway: return DeliverToGateway(from_pop, call);
    case Dest::kPop: break;
  }
  uint32_t to = call.to.id;
  if (to == kDcReplica && !via_dc) {
    // As in the daemons: the DC is reached as Dest::kDc, never as a POP.
    std::string back = "pop0>pop" + std::to_string(from_pop);
    return CompleteCall(from_pop, caller_inc, call.token, Unavailable("POP 0 is not in the cluster map"),
                        0, back);
  }
  std::string there = "pop" + std::to_string(from_pop) + ">pop" + std::to_string(to);
  std::string back = "pop" + std::to_string(to) + ">pop" + std::to_string(from_pop);
  uint64_t d = Delay(cfg_.pop_pop_delay_min_ms, cfg_.pop_pop_delay_max_ms);
  // The DC's stand-in cannot reach a POP cut off from the DC.
  bool cut = from_pop == kDcReplica && pops_.count(to) && pops_.at(to)->cut_off;
  if (!pops_.count(to) || !pops_.at(to)->core || cut) {
    return CompleteCall(from_pop, caller_inc, call.token, Unavailable("POP " + std::to_string(to) + " unreachable"),
                        d, back);
  }
  uint64_t rid = next_request_id_++;
  Token token = call.token;
  // One connection per (caller, incarnation): a restarted POP's requests
  // arrive on a new connection, as with the daemons.
  const uint64_t conn = (uint64_t(caller_inc) << 32) | from_pop;
  awaiting_[std::make_tuple(to, conn, rid)] = [this, from_pop, caller_inc, token, back](pb::Envelope r) {
    CompleteCall(from_pop, caller_inc, token, std::move(r),
                 Delay(cfg_.pop_pop_delay_min_ms, cfg_.pop_pop_delay_max_ms), back);
  };
  pb::Envelope env = call.msg;
  env.set_request_id(rid);
  uint64_t to_inc = pops_.at(to)->incarnation;
  Schedule(ChannelTime(there, d),
           [this, from_pop, to, env, there, to_inc, conn] {
             AtPop(to, [this, from_pop, to, env, there, to_inc, conn] {
               if (!Alive(to, to_inc)) return;  // CrashPop answered it already
               Trace("deliver " + there +
                     " type=" + std::to_string(int(env.body_case())));
               Peer peer{conn, pb::ROLE_POP, from_pop, ""};
               pops_.at(to)->core->OnRequest(PopNow(to), peer, env);
               Flush(to);
             });
           });
}

void SimWorld::DeliverToDc(uint32_t from_pop, const OutCall& call) {
  const uint64_t caller_inc = pops_.at(from_pop)->incarnation;
  if (!LinkedToDc(from_pop)) {
    return CompleteCall(from_pop, caller_inc, call.token, Unavailable("the DC is not connected"),
                        Delay(cfg_.pop_dc_delay_min_ms, cfg_.pop_dc_delay_max_ms),
                        "dc>pop" + std::to_string(from_pop));
  }
  if (PopCore::IsStandInMessage(call.msg)) {  // the DC standing in as a replica
    OutCall as_pop = call;
    as_pop.to = Dest{Dest::kPop, kDcReplica};
    return DeliverCall(from_pop, as_pop, true);
  }
  std::string there = "pop" + std::to_string(from_pop) + ">dc";
  std::string back = "dc>pop" + std::to_string(from_pop);
  uint64_t d = Delay(cfg_.pop_dc_delay_min_ms, cfg_.pop_dc_delay_max_ms);
  pb::Envelope env = call.msg;
  Token token = call.token;
  Schedule(ChannelTime(there, d), [this, from_pop, caller_inc, env, token, there, back] {
    Trace("deliver " + there + " type=" + std::to_string(int(env.body_case())));
    pb::Envelope reply = DcHandle(env);
    CompleteCall(from_pop, caller_inc, token, std::move(reply),
                 Delay(cfg_.pop_dc_delay_min_ms, cfg_.pop_dc_delay_max_ms), back);
  });
}

pb::Envelope SimWorld::DcHandle(const pb::Envelope& req) {
  pb::Envelope r;
  r.set_is_response(true);
  switch (req.body_case()) {
    case pb::Envelope::kLookupName: {
      auto it = names_.find({req.lookup_name().subscriber(), ToBytes(req.lookup_name().name_key())});
      if (it == names_.end()) return ErrorResponse(0, NotFound("no object of that name"));
      r.mutable_claim_name_reply()->set_oid(ToStr(it->second));
      return r;
    }
    case pb::Envelope::kClaimName: {
      auto key = std::make_pair(req.claim_name().subscriber(), ToBytes(req.claim_name().name_key()));
      Bytes proposed = ToBytes(req.claim_name().proposed_oid());
      // As the catalog: a DC-tier oid (random counter) in use is refused.
      auto o = Oid::Decode(proposed);
      if (o.ok() && IsDcTier(*o) && !names_.count(key))
        for (auto& [k, oid] : names_)
          if (oid == proposed)
            return ErrorResponse(0, Status(Code::kAborted, "DC-tier oid in use"));
      auto [it, created] = names_.try_emplace(key, proposed);
      r.mutable_claim_name_reply()->set_oid(ToStr(it->second));
      r.mutable_claim_name_reply()->set_created(created);
      return r;
    }
    case pb::Envelope::kGetClusterMap:
      *r.mutable_cluster_map() = map_;
      return r;
    case pb::Envelope::kReportVersion:
    case pb::Envelope::kHello:
      r.mutable_empty();
      return r;
    default:
      return ErrorResponse(0, ProtocolError("sim DC does not serve this"));
  }
}

void SimWorld::DeliverToGateway(uint32_t from_pop, const OutCall& call) {
  const uint64_t caller_inc = pops_.at(from_pop)->incarnation;
  uint32_t gid = call.to.id;
  std::string there = "pop" + std::to_string(from_pop) + ">gw" + std::to_string(gid);
  std::string back = "gw" + std::to_string(gid) + ">pop" + std::to_string(from_pop);
  uint64_t d = Delay(cfg_.pop_gw_delay_min_ms, cfg_.pop_gw_delay_max_ms);
  auto git = gateways_.find(gid);
  if (git == gateways_.end() || !git->second.alive) {
    // As in the daemon: a gateway that is not connected fails the call at once.
    return CompleteCall(from_pop, caller_inc, call.token, Unavailable("gateway not connected"), 0, back);
  }
  pb::Envelope env = call.msg;
  Token token = call.token;
  Schedule(ChannelTime(there, d), [this, from_pop, caller_inc, gid, env, token, there, back] {
    Trace("deliver " + there + " type=" + std::to_string(int(env.body_case())));
    Gateway& g = gateways_.at(gid);
    pb::Envelope reply;
    reply.set_is_response(true);
    if (!g.alive) {
      reply = ErrorResponse(0, Unavailable("gateway crashed"));
    } else if (env.has_store_fragment()) {
      const std::string& f = env.store_fragment().fragment();
      // Any fragment format version the parser knows (v1: 100-byte header,
      // v2: 72 bytes); a short or unknown one is refused as corrupt.
      auto hdr = ParseFragmentHeader(reinterpret_cast<const uint8_t*>(f.data()), f.size());
      if (!hdr.ok()) {
        reply = ErrorResponse(0, Corrupt("bad fragment: " + hdr.status().ToString()));
      } else {
        g.fragments[{hdr->chunk_id, uint8_t(hdr->index)}] = ToBytes(f);
        reply.mutable_empty();
      }
    } else if (env.has_fetch_fragment()) {
      auto it = g.fragments.find({ToBytes(env.fetch_fragment().chunk_id()), env.fetch_fragment().index()});
      if (it == g.fragments.end()) {
        reply = ErrorResponse(0, NotFound("no such fragment"));
      } else {
        reply.mutable_fragment_data()->set_fragment(ToStr(it->second));
      }
    } else {
      reply = ErrorResponse(0, ProtocolError("gateway does not serve this"));
    }
    CompleteCall(from_pop, caller_inc, token, std::move(reply),
                 Delay(cfg_.pop_gw_delay_min_ms, cfg_.pop_gw_delay_max_ms), back);
  });
}

// ---------------------------------------------------------------------------
// clients

void SimWorld::ClientCall(uint32_t entry_pop, pb::Envelope req,
                          std::function<void(Result<pb::Envelope>)> done) {
  uint32_t gw = entry_pop * 1000 + 1;
  uint64_t conn = kClientConnBase + gw;
  uint64_t rid = next_request_id_++;
  req.set_request_id(rid);
  std::string there = "gw" + std::to_string(gw) + ">pop" + std::to_string(entry_pop);
  std::string back = "pop" + std::to_string(entry_pop) + ">gw" + std::to_string(gw);
  awaiting_[std::make_tuple(entry_pop, conn, rid)] = [this, done, back](pb::Envelope r) {
    uint64_t at = ChannelTime(back, Delay(cfg_.pop_gw_delay_min_ms, cfg_.pop_gw_delay_max_ms));
    auto shared = std::make_shared<pb::Envelope>(std::move(r));
    Schedule(at, [this, done, shared, back] {
      Status st = ResponseStatus(*shared);
      Trace("client reply " + back + (st.ok() ? "" : " error"));
      if (!st.ok()) return done(st);
      done(std::move(*shared));
    });
  };
  uint64_t at = ChannelTime(there, Delay(cfg_.pop_gw_delay_min_ms, cfg_.pop_gw_delay_max_ms));
  if (!pops_.at(entry_pop)->core) {
    auto answer = std::move(awaiting_[std::make_tuple(entry_pop, conn, rid)]);
    awaiting_.erase(std::make_tuple(entry_pop, conn, rid));
    return answer(ErrorResponse(0, Unavailable("the gateway's POP is down")));
  }
  uint64_t inc = pops_.at(entry_pop)->incarnation;
  Schedule(at, [this, entry_pop, gw, conn, req, there, inc] {
    AtPop(entry_pop, [this, entry_pop, gw, conn, req, there, inc] {
      if (!Alive(entry_pop, inc)) return;
      Trace("deliver " + there +
            " type=" + std::to_string(int(req.body_case())));
      Peer peer{conn, pb::ROLE_GATEWAY, gw, kSubscriber};
      pops_.at(entry_pop)->core->OnRequest(PopNow(entry_pop), peer, req);
      Flush(entry_pop);
    });
  });
}

void SimWorld::Put(uint32_t entry_pop, const std::string& name, std::vector<Bytes> chunks,
                   std::function<void(Status, uint64_t)> done, int client, bool dc_tier) {
  auto rec = std::make_shared<OpRecord>();
  rec->kind = OpRecord::kPut;
  rec->client = client;
  rec->name = name;
  rec->start_ms = now_ms_;
  rec->content_digest = Digest(chunks);
  auto finish = [this, rec, done](Status st, uint64_t v) {
    rec->end_ms = now_ms_;
    rec->status = st;
    rec->version = v;
    history_.push_back(*rec);
    done(st, v);
  };
  auto ids = std::make_shared<std::vector<Bytes>>();
  for (auto& c : chunks) ids->push_back(Id32("chunk", c));
  auto data = std::make_shared<std::vector<Bytes>>(std::move(chunks));
  auto present = std::make_shared<std::set<Bytes>>();  // held by the entry POP already
  auto send = std::make_shared<std::function<void(size_t)>>();
  *send = [this, entry_pop, name, ids, data, present, send, finish, rec, dc_tier](size_t i) {
    while (i < data->size() && present->count((*ids)[i])) i++;
    if (i == data->size()) {
      rec->start_ms = now_ms_;
      pb::Envelope commit;
      auto* c = commit.mutable_put_commit();
      c->set_subscriber(kSubscriber);
      c->set_name_key(ToStr(Id32("name", ToBytes(name))));
      c->set_name_sealed(name);
      uint64_t size = 0;
      for (auto& d : *data) size += d.size();
      c->set_size_bytes(size);
      c->set_manifest_sealed("manifest:" + name);
      c->set_dc_tier(dc_tier);
      for (auto& id : *ids) c->add_chunk_ids(ToStr(id));
      c->set_gateway_id(entry_pop * 1000 + 1);
      c->set_write_id(ToStr(Id32("write", Bytes{uint8_t(seq_), uint8_t(seq_ >> 8), uint8_t(seq_ >> 16)})));
      ClientCall(entry_pop, commit, [finish, send](Result<pb::Envelope> r) {
        *send = nullptr;
        if (!r.ok()) return finish(r.status(), 0);
        finish(Status::Ok(), r->put_reply().version());
      });
      return;
    }
    pb::Envelope pc;
    pc.mutable_put_chunk()->set_subscriber(kSubscriber);
    pc.mutable_put_chunk()->set_chunk_id(ToStr((*ids)[i]));
    pc.mutable_put_chunk()->set_data(ToStr((*data)[i]));
    ClientCall(entry_pop, pc, [send, finish, i](Result<pb::Envelope> r) {
      if (!r.ok()) {
        *send = nullptr;
        return finish(r.status(), 0);
      }
      (*send)(i + 1);
    });
  };
  if (!cfg_.client_names_uploads) return (*send)(0);
  pb::Envelope q;
  q.mutable_have_chunks()->set_subscriber(kSubscriber);
  q.mutable_have_chunks()->set_name_key(ToStr(Id32("name", ToBytes(name))));
  q.mutable_have_chunks()->set_dc_tier(dc_tier);
  for (auto& id : *ids) q.mutable_have_chunks()->add_chunk_ids(ToStr(id));
  ClientCall(entry_pop, q, [send, present, finish](Result<pb::Envelope> r) {
    if (!r.ok()) {
      *send = nullptr;
      return finish(r.status(), 0);
    }
    for (auto& id : r->have_chunks_reply().present()) present->insert(ToBytes(id));
    (*send)(0);
  });
}

void SimWorld::Get(uint32_t entry_pop, const std::string& name, uint64_t version,
                   std::function<void(Status, uint64_t, std::vector<Bytes>)> done,
                   pb::ReadMode mode, uint64_t min_version, int client) {
  auto rec = std::make_shared<OpRecord>();
  rec->kind = OpRecord::kGet;
  rec->client = client;
  rec->mode = mode;
  rec->min_version = min_version;
  rec->name = name;
  rec->start_ms = now_ms_;
  rec->asked_version = version;
  auto finish = [this, rec, done](Status st, uint64_t v, std::vector<Bytes> chunks) {
    rec->end_ms = now_ms_;
    rec->status = st;
    rec->version = v;
    rec->content_digest = Digest(chunks);
    history_.push_back(*rec);
    done(st, v, std::move(chunks));
  };
  pb::Envelope gv;
  gv.mutable_get_version()->set_subscriber(kSubscriber);
  gv.mutable_get_version()->set_name_key(ToStr(Id32("name", ToBytes(name))));
  gv.mutable_get_version()->set_version(version);
  gv.mutable_get_version()->set_mode(mode);
  gv.mutable_get_version()->set_min_version(min_version);
  ClientCall(entry_pop, gv, [this, entry_pop, finish](Result<pb::Envelope> r) {
    if (!r.ok()) return finish(r.status(), 0, {});
    auto info = std::make_shared<pb::VersionInfo>(r->version_info());
    auto got = std::make_shared<std::vector<Bytes>>();
    auto next = std::make_shared<std::function<void(size_t)>>();
    *next = [this, entry_pop, info, got, next, finish](size_t i) {
      if (i == size_t(info->chunk_ids_size())) {
        auto fin = finish;  // clearing *next destroys this lambda's captures
        auto result = std::move(*got);
        uint64_t v = info->version();
        if (info->lock_id()) {
          pb::Envelope rel;
          rel.mutable_release_lock()->set_oid(info->oid());
          rel.mutable_release_lock()->set_lock_id(info->lock_id());
          rel.mutable_release_lock()->set_subscriber(kSubscriber);
          ClientCall(entry_pop, rel, [](Result<pb::Envelope>) {});
        }
        *next = nullptr;
        return fin(Status::Ok(), v, std::move(result));
      }
      pb::Envelope gc;
      gc.mutable_get_chunk()->set_subscriber(kSubscriber);
      gc.mutable_get_chunk()->set_oid(info->oid());
      gc.mutable_get_chunk()->set_chunk_id(info->chunk_ids(int(i)));
      gc.mutable_get_chunk()->set_lock_id(info->lock_id());
      ClientCall(entry_pop, gc, [info, got, next, finish, i](Result<pb::Envelope> r) {
        if (!r.ok()) {
          *next = nullptr;
          return finish(r.status(), info->version(), {});
        }
        got->push_back(ToBytes(r->chunk_data().data()));
        (*next)(i + 1);
      });
    };
    (*next)(0);
  });
}

}  // namespace mistore::sim
