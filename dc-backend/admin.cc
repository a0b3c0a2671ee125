#include "dc-backend/admin.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "dc-backend/dashboard/assets.h"
#include "pop-server/pop_report.h"  // kPopEventBatchMax, PopEventKindName
#include "shared/core/log.h"
#include "shared/core/oid.h"
#include "shared/uvio/daemon_metrics.h"  // kMistoreVersion

namespace mistore {

namespace {

// ---- a small JSON writer -------------------------------------------------
class Json {
 public:
  Json& Obj() { return Open('{'); }
  Json& EndObj() { return Close('}'); }
  Json& Arr() { return Open('['); }
  Json& EndArr() { return Close(']'); }
  Json& Key(std::string_view k) {
    Sep();
    Quote(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  Json& Str(std::string_view v) {
    Sep();
    Quote(v);
    return *this;
  }
  Json& Num(double v) {
    Sep();
    if (!std::isfinite(v)) {
      out_ += "null";
    } else if (v == std::floor(v) && std::fabs(v) < 9e15) {
      out_ += std::to_string(int64_t(v));
    } else {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.6g", v);
      out_ += buf;
    }
    return *this;
  }
  Json& Uint(uint64_t v) {
    Sep();
    out_ += std::to_string(v);
    return *this;
  }
  Json& Int(int64_t v) {
    Sep();
    out_ += std::to_string(v);
    return *this;
  }
  Json& Bool(bool v) {
    Sep();
    out_ += v ? "true" : "false";
    return *this;
  }
  Json& Null() {
    Sep();
    out_ += "null";
    return *this;
  }
  // key: value shorthands
  Json& KStr(std::string_view k, std::string_view v) { return Key(k).Str(v); }
  Json& KUint(std::string_view k, uint64_t v) { return Key(k).Uint(v); }
  Json& KInt(std::string_view k, int64_t v) { return Key(k).Int(v); }
  Json& KNum(std::string_view k, double v) { return Key(k).Num(v); }
  Json& KBool(std::string_view k, bool v) { return Key(k).Bool(v); }
  std::string Take() { return std::move(out_); }

 private:
  Json& Open(char c) {
    Sep();
    out_ += c;
    first_.push_back(true);
    return *this;
  }
  Json& Close(char c) {
    out_ += c;
    first_.pop_back();
    return *this;
  }
  void Sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
  }
  void Quote(std::string_view s) {
    out_ += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\r': out_ += "\\r"; break;
        case '\t': out_ += "\\t"; break;
        case '<': out_ += "\\u003c"; break;  // never "</script>" in a page
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ += buf;
          } else {
            out_ += char(c);
          }
      }
    }
    out_ += '"';
  }
  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ParseU32(std::string_view s, uint32_t* out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v > 0xffffffffu) return false;
  *out = uint32_t(v);
  return true;
}

uint64_t ParseUintOr(const std::string& s, uint64_t dflt, uint64_t max) {
  if (s.empty() || s.size() > 19) return dflt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return dflt;
    v = v * 10 + uint64_t(c - '0');
  }
  return std::min(v, max);
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); i++) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

HttpResponse JsonResponse(int status, std::string body) { return HttpResponse::Json(status, std::move(body)); }

HttpResponse JsonError(int status, const std::string& message) {
  Json j;
  j.Obj().KStr("error", message).EndObj();
  return JsonResponse(status, j.Take());
}

// Every kind the log holds (docs/operations.md): the DC's own, then the
// POPs' (pb::PopEventKind, named by PopEventKindName).
const char* const kEventKinds[] = {
    "dc_started",        "pop_joined",        "pop_up",          "pop_down",
    "pop_reporting",     "pop_restarted",     "epoch_bump",      "gateway_joined",
    "pop_events_dropped", "gateway_suspected", "gateway_recovered", "gateway_lost",
    "gateway_returned",  "repair_started",    "repair_finished", "fragments_bad",
    "role_change"};

bool KnownKind(const std::string& k) {
  for (const char* x : kEventKinds)
    if (k == x) return true;
  return false;
}
const char* const kApiResults[] = {"ok", "unauthorized", "not_found", "bad_request"};

}  // namespace

// ---- lifecycle ------------------------------------------------------------

DcAdmin::DcAdmin(EventLoop* loop, Catalog* catalog, MetricsRegistry* metrics, AdminOptions opts)
    : loop_(loop), catalog_(catalog), metrics_(metrics), opts_(opts), started_ms_(loop->NowMs()) {
  for (const char* k : kEventKinds)
    event_counters_[k] = &metrics_->AddCounter("mistore_dc_events_total",
                                               "Events in the admin event log, by kind.",
                                               {{"kind", k}});
  for (const char* r : kApiResults)
    api_results_[r] = &metrics_->AddCounter("mistore_admin_requests_total",
                                            "Admin API requests, by result.", {{"result", r}});
  summaries_ = &metrics_->AddCounter("mistore_dc_pop_summaries_total",
                                     "Monitoring summaries received from POPs.");
  event_store_errors_ = &metrics_->AddCounter(
      "mistore_dc_event_log_errors_total", "Events the DC could not store in its event log.");
  metrics_->AddCounterFn("mistore_dc_event_log_pruned_total",
                         "Events dropped from the event log beyond event_log_max.",
                         [this] { return events_ ? double(events_->pruned_total()) : 0.0; });
  {
    auto db = OpenSqliteDriver(":memory:");  // until Start() opens the configured log
    MS_ASSERT(db.ok());
    auto log = EventLog::Open(std::move(db.value()), std::max<size_t>(1, opts_.events_max));
    MS_ASSERT(log.ok());
    events_ = std::move(log.value());
  }
  metrics_->AddGaugeFn("mistore_cluster_map_epoch", "Epoch of the cluster map this node holds.",
                       [this] { return double(map_epoch_); });
  auto count_pops = [this](bool up) {
    size_t n = 0;
    for (auto& [id, p] : pops_) n += (p.in_map && p.up == up) ? 1 : 0;
    return double(n);
  };
  metrics_->AddGaugeFn("mistore_dc_pops", "POPs in the cluster map, by state.",
                       [count_pops] { return count_pops(true); }, {{"state", "up"}});
  metrics_->AddGaugeFn("mistore_dc_pops", "POPs in the cluster map, by state.",
                       [count_pops] { return count_pops(false); }, {{"state", "down"}});
  auto count_gws = [this](bool connected) {
    size_t n = 0;
    for (auto& [id, p] : pops_) {
      if (!Fresh(p)) continue;
      for (auto& [gw, c] : p.gateway_connected) n += c == connected ? 1 : 0;
    }
    return double(n);
  };
  metrics_->AddGaugeFn("mistore_dc_gateways",
                       "Gateways reported by POPs with a fresh summary, by state.",
                       [count_gws] { return count_gws(true); }, {{"state", "connected"}});
  metrics_->AddGaugeFn("mistore_dc_gateways",
                       "Gateways reported by POPs with a fresh summary, by state.",
                       [count_gws] { return count_gws(false); }, {{"state", "lost"}});
  metrics_->AddGaugeFn("mistore_dc_objects", "Objects in the catalog.",
                       [this] { return double(totals_.objects); });
  metrics_->AddGaugeFn("mistore_dc_object_bytes",
                       "Plaintext bytes of the objects' latest versions in the catalog.",
                       [this] { return double(totals_.bytes); });
  metrics_->AddGaugeFn("mistore_dc_subscribers", "Subscribers with objects in the catalog.",
                       [this] { return double(totals_.subscribers); });
  metrics_->AddCounterFn("mistore_http_requests_total", "HTTP requests handled by the listener.",
                         [this] { return http_ ? double(http_->stats().requests) : 0.0; },
                         {{"listener", "admin"}});
  metrics_->AddCounterFn("mistore_http_refused_total",
                         "HTTP requests or connections refused by the listener's limits.",
                         [this] { return http_ ? double(http_->stats().refused) : 0.0; },
                         {{"listener", "admin"}});
  metrics_->AddGaugeFn("mistore_http_connections", "Open HTTP connections.",
                       [this] { return http_ ? double(http_->stats().connections) : 0.0; },
                       {{"listener", "admin"}});
  WatchMap();
  tick_timer_ = loop_->Every(opts_.sample_period_ms, [this] { Tick(); });
  // The map changes on POP hellos and disconnects; watch it closely so the
  // event log and the dashboard follow within a second.
  map_timer_ = loop_->Every(500, [this] { WatchMap(); });
}

DcAdmin::~DcAdmin() {
  loop_->Cancel(tick_timer_);
  loop_->Cancel(map_timer_);
  Close();
}

void DcAdmin::Close() {
  if (http_) http_->Close();
}

Result<std::string> DcAdmin::Start(const Config& cfg) {
  std::string addr = cfg.Str("admin_listen");
  if (addr == "off") return std::string("off");
  std::string path = cfg.Str("admin_token_file");
  if (path.empty()) path = cfg.Str("data_dir") + "/admin.token";
  MS_ASSIGN_OR_RETURN(std::string token, LoadOrCreateToken(path));
  MS_ASSIGN_OR_RETURN(auto log, OpenConfiguredEventLog(cfg));
  MS_RETURN_IF_ERROR(UseEventLog(std::move(log)));
  AddEvent("dc_started", 0, 0,
           "map epoch " + std::to_string(map_epoch_) +
               "; every POP is presumed down until it says Hello again");
  return Serve(addr, token);
}

Status DcAdmin::UseEventLog(std::unique_ptr<EventLog> log) {
  EventQuery q;
  q.limit = EventLog::kQueryLimitMax;
  MS_ASSIGN_OR_RETURN(auto held, events_->Query(q));
  std::vector<EventRecord> oldest_first(held.rbegin(), held.rend());
  for (size_t i = 0; i < oldest_first.size(); i += EventLog::kAppendBatchMax) {
    size_t n = std::min(EventLog::kAppendBatchMax, oldest_first.size() - i);
    MS_RETURN_IF_ERROR(log->Append(std::vector<EventRecord>(oldest_first.begin() + long(i),
                                                            oldest_first.begin() + long(i + n)))
                           .status());
  }
  events_ = std::move(log);
  auto last = events_->LastSeq();
  if (last.ok()) last_event_seq_ = last.value();
  return Status::Ok();
}

Result<std::string> DcAdmin::Serve(const std::string& addr, const std::string& token) {
  if (token.size() < 16) return InvalidArgument("the admin token must have at least 16 characters");
  token_ = token;
  http_ = std::make_unique<HttpServer>(loop_, opts_.limits,
                                       [this](const HttpRequest& r) { return Handle(r); });
  auto bound = http_->Listen(addr);
  if (!bound.ok()) {
    http_.reset();
    return bound.status();
  }
  return bound;
}

Result<std::string> DcAdmin::LoadOrCreateToken(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    unsigned char raw[32];
    int rfd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (rfd < 0 || read(rfd, raw, sizeof raw) != ssize_t(sizeof raw)) {
      if (rfd >= 0) close(rfd);
      return IoError("cannot read /dev/urandom for an admin token");
    }
    close(rfd);
    std::string token = ToHex(raw, sizeof raw);
    int wfd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (wfd < 0) return IoError("cannot create admin token file " + path + ": " + std::strerror(errno));
    std::string line = token + "\n";
    bool ok = write(wfd, line.data(), line.size()) == ssize_t(line.size()) && fsync(wfd) == 0;
    close(wfd);
    if (!ok) return IoError("cannot write admin token file " + path);
    MS_INFO("admin", "created an admin token", "file=" + path);
    return token;
  }
  if (fd < 0) return IoError("cannot open admin token file " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & 0077))
    MS_WARN("admin", "admin token file is readable by others; chmod 600 it", "file=" + path);
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n < 0) return IoError("cannot read admin token file " + path);
  std::string token(buf, size_t(n));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  if (token.size() < 16 || token.size() >= sizeof buf - 1)
    return InvalidArgument("admin token file " + path + " must hold one token of 16 to 510 characters");
  for (char c : token)
    if (c <= ' ' || c == 0x7f) return InvalidArgument("admin token in " + path + " has blanks or control characters");
  return token;
}

// ---- state from the catalog and the POPs' summaries -------------------------

void DcAdmin::AddEvent(const std::string& kind, uint32_t pop, uint32_t gateway,
                       const std::string& detail, uint32_t about_pop, uint64_t count) {
  EventRecord e;
  e.t_ms = WallMs();
  e.kind = kind;
  e.source = "dc";
  e.pop = pop;
  e.gateway = gateway;
  e.about_pop = about_pop;
  e.count = count;
  e.detail = detail;
  if (pop) {
    auto it = pops_.find(pop);
    if (it != pops_.end()) e.region = it->second.region;
  }
  StoreEvents({e});
}

void DcAdmin::StoreEvents(const std::vector<EventRecord>& events) {
  std::vector<bool> is_new;
  auto added = events_->Append(events, &is_new);
  if (!added.ok()) {
    event_store_errors_->Inc(events.size());
    MS_ERROR("admin", "cannot store events", "error=\"" + added.status().ToString() + "\"");
    return;
  }
  for (size_t i = 0; i < events.size(); i++) {
    if (!is_new[i]) continue;  // stored before (a POP's re-sent batch)
    const EventRecord& e = events[i];
    std::string fields = "kind=" + e.kind + " source=" + e.source;
    if (e.pop) fields += " pop=" + std::to_string(e.pop);
    if (e.gateway) fields += " gateway=" + std::to_string(e.gateway);
    if (e.about_pop) fields += " about_pop=" + std::to_string(e.about_pop);
    if (!e.detail.empty()) fields += " detail=\"" + e.detail + "\"";
    MS_INFO("admin", "event", fields);
    auto it = event_counters_.find(e.kind);
    if (it != event_counters_.end()) it->second->Inc();
  }
  auto last = events_->LastSeq();
  if (last.ok()) last_event_seq_ = last.value();
}

Status DcAdmin::OnPopEvents(uint32_t conn_pop_id, const pb::PopEventReport& r,
                            pb::Envelope* reply) {
  if (conn_pop_id == 0 || r.pop_id() != conn_pop_id)
    return Status(Code::kPermissionDenied, "a POP reports only its own events");
  if (size_t(r.events_size()) > kPopEventBatchMax)
    return InvalidArgument("at most " + std::to_string(kPopEventBatchMax) + " events per report");
  PopView& p = pops_[r.pop_id()];
  p.pop_id = r.pop_id();
  int64_t now = WallMs();
  char boot[17];
  std::snprintf(boot, sizeof boot, "%016llx", static_cast<unsigned long long>(r.boot_id()));
  std::vector<EventRecord> out;
  out.reserve(size_t(r.events_size()) + 1);
  for (const pb::PopEvent& e : r.events()) {
    EventRecord x;
    x.t_ms = now - int64_t(std::min<uint64_t>(e.age_ms(), uint64_t(now)));
    x.kind = PopEventKindName(e.kind());
    x.source = "pop";
    x.pop = r.pop_id();
    x.gateway = e.gateway_id();
    x.about_pop = e.pop_id();
    x.region = p.region;
    x.count = e.count();
    x.bytes = e.bytes();
    x.detail = e.detail();
    x.origin = "p" + std::to_string(r.pop_id()) + "/" + boot + "/" + std::to_string(e.seq());
    out.push_back(std::move(x));
  }
  if (p.events_boot != r.boot_id()) {
    p.events_boot = r.boot_id();
    p.events_dropped = 0;
  }
  if (r.dropped_total() > p.events_dropped) {
    EventRecord x;
    x.t_ms = now;
    x.kind = "pop_events_dropped";
    x.source = "dc";
    x.pop = r.pop_id();
    x.region = p.region;
    x.count = r.dropped_total() - p.events_dropped;
    x.detail = "the POP's event buffer was full (DC unreachable too long?): " +
               std::to_string(x.count) + " events lost";
    x.origin = "p" + std::to_string(r.pop_id()) + "/" + boot + "/dropped/" +
               std::to_string(r.dropped_total());
    out.push_back(std::move(x));
    p.events_dropped = r.dropped_total();
  }
  std::vector<bool> is_new;
  auto added = events_->Append(out, &is_new);
  if (!added.ok()) {
    event_store_errors_->Inc(out.size());
    return Unavailable("event log: " + added.status().message());  // the POP re-sends
  }
  for (size_t i = 0; i < out.size(); i++) {
    if (!is_new[i]) continue;
    const EventRecord& e = out[i];
    auto it = event_counters_.find(e.kind);
    if (it != event_counters_.end()) it->second->Inc();
    MS_INFO("admin", "event", "kind=" + e.kind + " source=" + e.source + " pop=" + std::to_string(e.pop) +
                                  (e.gateway ? " gateway=" + std::to_string(e.gateway) : "") +
                                  " detail=\"" + e.detail + "\"");
  }
  auto last = events_->LastSeq();
  if (last.ok()) last_event_seq_ = last.value();
  reply->mutable_empty();
  return Status::Ok();
}

void DcAdmin::WatchMap() {
  auto map = catalog_->Map();
  if (!map.ok()) return;
  if (map->epoch() != map_epoch_ && map_epoch_ != 0)
    AddEvent("epoch_bump", 0, 0,
             "cluster map epoch " + std::to_string(map_epoch_) + " -> " + std::to_string(map->epoch()),
             0, map->epoch());
  map_epoch_ = map->epoch();
  for (const pb::PopInfo& info : map->pops()) {
    PopView& p = pops_[info.pop_id()];
    bool was_in_map = p.in_map, was_up = p.up;
    p.pop_id = info.pop_id();
    p.region = info.region();
    p.addr = info.addr();
    p.in_map = true;
    p.up = info.up();
    if (!was_in_map) {
      if (p.up) AddEvent("pop_joined", p.pop_id, 0, "region " + p.region + " at " + p.addr);
    } else if (p.up != was_up) {
      // The roles the DC publishes with this map (design section 3).
      AddEvent(p.up ? "pop_up" : "pop_down", p.pop_id, 0,
               p.up ? "region " + p.region + ": back; primary again for its objects once synced, "
                          "the DC stops standing in as their backup"
                    : "region " + p.region + ": failed; the backups of its objects act as "
                          "primary and the DC stands in as their backup",
               0, map->epoch());
    }
  }
}

bool DcAdmin::Fresh(const PopView& p) const {
  return p.has_summary && p.up && loop_->NowMs() - p.summary_at_ms <= opts_.pop_stale_ms;
}

Status DcAdmin::OnPopSummary(uint32_t conn_pop_id, const pb::MonitorPopSummary& s,
                             pb::Envelope* reply) {
  if (conn_pop_id == 0 || s.pop_id() != conn_pop_id)
    return Status(Code::kPermissionDenied, "a POP reports only for itself");
  summaries_->Inc();
  PopView& p = pops_[s.pop_id()];
  p.pop_id = s.pop_id();
  if (p.region.empty()) p.region = s.region();
  bool first = !p.has_summary;
  if (!first && s.uptime_ms() < p.summary.uptime_ms())
    AddEvent("pop_restarted", p.pop_id, 0, "uptime " + std::to_string(s.uptime_ms() / 1000) + " s");
  std::map<uint32_t, bool> now;
  size_t connected = 0;
  for (const pb::MonitorGateway& g : s.gateways()) {
    now[g.gateway_id()] = g.connected();
    connected += g.connected() ? 1 : 0;
    gateway_pop_[g.gateway_id()] = p.pop_id;
    if (first) continue;
    // Suspected, lost and returned gateways come from the POP's own
    // failure detector (OnPopEvents); here only newcomers.
    if (!p.gateway_connected.count(g.gateway_id()) && g.connected())
      AddEvent("gateway_joined", p.pop_id, g.gateway_id(), "");
  }
  if (first)
    AddEvent("pop_reporting", p.pop_id, 0,
             "reporting " + std::to_string(connected) + " of " + std::to_string(now.size()) +
                 " gateways connected");
  p.gateway_connected = std::move(now);
  p.summary = s;
  p.has_summary = true;
  p.summary_at_ms = loop_->NowMs();
  TrackRepair(p);
  reply->mutable_empty();
  return Status::Ok();
}

// A repair episode runs while the region's repair queue is not empty; its
// progress is the repair traffic done since it began over that plus what is
// still queued.
void DcAdmin::TrackRepair(PopView& p) {
  const pb::MonitorPopSummary& s = p.summary;
  bool busy = s.repair_queue_chunks() + s.repair_in_flight_chunks() > 0;
  if (busy && !p.repairing) {
    p.repairing = true;
    p.repair_since_ms = WallMs();
    p.repair_base_bytes = s.repair_bytes_total();
  } else if (!busy) {
    p.repairing = false;
  }
  if (s.repair_bytes_total() < p.repair_base_bytes) p.repair_base_bytes = 0;  // POP restarted
}

template <typename J>
void DcAdmin::RepairJson(J& j, const PopView& p) const {
  const pb::MonitorPopSummary& s = p.summary;
  uint64_t done = p.repairing ? s.repair_bytes_total() - p.repair_base_bytes : 0;
  uint64_t todo = s.repair_queue_bytes();
  j.KUint("chunks_below_redundancy", s.chunks_below_redundancy());
  j.Key("repair").Obj()
      .KStr("state", !Fresh(p) ? "unknown"
                     : p.repairing ? "repairing"
                     : s.chunks_below_redundancy() > 0 ? "waiting"
                     : "idle")
      .KUint("queue_chunks", s.repair_queue_chunks())
      .KUint("in_flight_chunks", s.repair_in_flight_chunks())
      .KUint("queue_bytes", todo)
      .KUint("bytes_done", done)
      .KNum("progress", p.repairing && done + todo > 0 ? double(done) / double(done + todo) : 1.0)
      .KNum("eta_s", s.repair_eta_s())
      .KInt("since_ms", p.repairing ? p.repair_since_ms : 0)
      .KUint("repaired_chunks_total", s.repair_chunks_total())
      .KUint("repair_bytes_total", s.repair_bytes_total())
      .KUint("failures_total", s.repair_failures_total())
      .EndObj();
  j.Key("detector").Obj()
      .KUint("suspected", s.gateways_suspected())
      .KUint("lost", s.gateways_lost())
      .EndObj();
}

void DcAdmin::Tick() {
  WatchMap();
  auto totals = catalog_->CountTotals();
  if (totals.ok()) totals_ = totals.value();
  double dt = double(opts_.sample_period_ms) / 1000.0;
  Sample all;
  all.t_ms = WallMs();
  double seconds = 0, requests = 0;
  auto delta = [](uint64_t cur, uint64_t* last) {  // counters restart with their POP
    uint64_t d = cur >= *last ? cur - *last : cur;
    *last = cur;
    return d;
  };
  for (auto& [id, p] : pops_) {
    Sample ps;
    ps.t_ms = all.t_ms;
    if (p.in_map && p.up) all.pops_up++;
    if (Fresh(p) && !p.sampled) {  // the first report: totals since the POP started, no rate yet
      const pb::MonitorPopSummary& s = p.summary;
      p.s_requests = s.requests_total();
      p.s_errors = s.request_errors_total();
      p.s_seconds = s.request_seconds_total();
      p.s_received = s.received_bytes_total();
      p.s_sent = s.sent_bytes_total();
      p.sampled = true;
    }
    if (Fresh(p)) {
      const pb::MonitorPopSummary& s = p.summary;
      uint64_t dr = delta(s.requests_total(), &p.s_requests);
      uint64_t de = delta(s.request_errors_total(), &p.s_errors);
      double ds = s.request_seconds_total() >= p.s_seconds ? s.request_seconds_total() - p.s_seconds
                                                           : s.request_seconds_total();
      p.s_seconds = s.request_seconds_total();
      ps.requests_per_s = double(dr) / dt;
      ps.errors_per_s = double(de) / dt;
      ps.latency_ms = dr ? ds * 1000.0 / double(dr) : 0;
      ps.received_bytes_per_s = double(delta(s.received_bytes_total(), &p.s_received)) / dt;
      ps.sent_bytes_per_s = double(delta(s.sent_bytes_total(), &p.s_sent)) / dt;
      for (const pb::MonitorGateway& g : s.gateways()) {
        if (g.connected()) {
          ps.gateways_up++;
          ps.free_bytes += g.store_bytes_free();
        } else {
          ps.gateways_lost++;
        }
      }
      ps.placement_queue = s.placement_queue();
      ps.pops_up = 1;
      requests += double(dr);
      seconds += ds;
    }
    all.requests_per_s += ps.requests_per_s;
    all.errors_per_s += ps.errors_per_s;
    all.received_bytes_per_s += ps.received_bytes_per_s;
    all.sent_bytes_per_s += ps.sent_bytes_per_s;
    all.gateways_up += ps.gateways_up;
    all.gateways_lost += ps.gateways_lost;
    all.free_bytes += ps.free_bytes;
    all.placement_queue += ps.placement_queue;
    p.history.push_back(ps);
    while (p.history.size() > opts_.history_max / 3) p.history.pop_front();
  }
  all.latency_ms = requests > 0 ? seconds * 1000.0 / requests : 0;
  history_.push_back(all);
  while (history_.size() > opts_.history_max) history_.pop_front();
}

std::string DcAdmin::GatewayState(const PopView& p, uint32_t gw) const {
  if (!Fresh(p)) return "unknown";  // its POP is down or silent
  auto it = p.gateway_connected.find(gw);
  if (it == p.gateway_connected.end()) return "unknown";
  return it->second ? "up" : "lost";
}

std::string DcAdmin::RegionRedundancy(const PopView& p) const {
  if (!Fresh(p)) return "unknown";
  const pb::MonitorPopSummary& s = p.summary;
  size_t up = 0, lost = 0;
  for (auto& [gw, c] : p.gateway_connected) (c ? up : lost)++;
  // Fragments of a chunk sit on k+m distinct gateways of the region: with
  // more than m gateways lost, some chunks may be unreadable from fragments;
  // with fewer than k+m connected, new placements cannot complete.
  // Gateways declared lost whose fragments were rebuilt no longer count:
  // "lost" here is the disconnected ones not yet repaired for.
  bool repairing = s.repair_queue_chunks() + s.repair_in_flight_chunks() > 0;
  if (!repairing) lost -= std::min<size_t>(lost, s.gateways_lost());
  if (lost > s.m() || up < size_t(s.k() + s.m())) return "at_risk";
  // Chunks below k+m being rebuilt, or waiting (gateways only suspected, or
  // disconnected within their grace period).
  if (repairing) return "repairing";
  if (lost > 0 || s.chunks_below_redundancy() > 0) return "degraded";
  if (s.placement_queue() > 0 || s.placements_in_flight() > 0) return "placing";
  return "full";
}

std::string DcAdmin::PopHealth(const PopView& p) const {
  if (!p.in_map) return "unknown";
  if (!p.up) return "down";
  if (!Fresh(p)) return "silent";
  std::string r = RegionRedundancy(p);
  if (r == "at_risk") return "critical";
  if (r == "degraded" || r == "repairing") return "degraded";
  return "ok";
}

// ---- HTTP -------------------------------------------------------------------

HttpResponse DcAdmin::Handle(const HttpRequest& req) {
  if (req.path.rfind("/api/", 0) == 0 || req.path == "/api") {
    const std::string* auth = req.Header("authorization");
    std::string given;
    if (auth && auth->size() > 7 && (auth->compare(0, 7, "Bearer ") == 0 || auth->compare(0, 7, "bearer ") == 0))
      given = auth->substr(7);
    if (token_.empty() || !ConstantTimeEquals(given, token_)) {
      api_results_["unauthorized"]->Inc();
      refused_since_log_++;
      if (last_refusal_log_ms_ == 0 || loop_->NowMs() - last_refusal_log_ms_ >= 10000) {
        // At most one line per 10 s: refusals must not flood the log.
        MS_WARN("admin", "API request without a valid token refused",
                "peer=" + req.peer + " path=" + req.path.substr(0, 64) +
                    " refused_since_last_line=" + std::to_string(refused_since_log_));
        last_refusal_log_ms_ = loop_->NowMs();
        refused_since_log_ = 0;
      }
      HttpResponse r = JsonError(401, "admin token required: Authorization: Bearer <token>");
      r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"mistore-admin\""});
      return r;
    }
    HttpResponse r = Api(req);
    api_results_[r.status == 200 ? "ok" : r.status == 404 ? "not_found" : "bad_request"]->Inc();
    return r;
  }
  std::string path = req.path == "/" ? "/index.html" : req.path;
  const DashboardFile* f = FindDashboardFile(path);
  if (!f) return HttpResponse::Text(404, "not found");
  HttpResponse r;
  r.content_type = f->content_type;
  r.body.assign(reinterpret_cast<const char*>(f->data), f->size);
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"Content-Security-Policy",
                       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  r.headers.push_back({"X-Frame-Options", "DENY"});
  return r;
}

HttpResponse DcAdmin::Api(const HttpRequest& req) {
  std::string_view p = req.path;
  p.remove_prefix(4);  // "/api"
  auto arg = [&](std::string_view prefix, std::string_view* rest) {
    if (p.rfind(prefix, 0) != 0) return false;
    *rest = p.substr(prefix.size());
    return !rest->empty();
  };
  std::string_view rest;
  if (p == "/overview" || p == "/hierarchy") return JsonResponse(200, OverviewJson());
  if (arg("/pops/", &rest)) {
    uint32_t id;
    if (!ParseU32(rest, &id)) return JsonError(400, "POP id must be a number");
    return PopJson(id, req);
  }
  if (arg("/gateways/", &rest)) {
    uint32_t id;
    if (!ParseU32(rest, &id)) return JsonError(400, "gateway id must be a number");
    return GatewayJson(id);
  }
  if (arg("/objects/", &rest)) return ObjectJson(std::string(rest));
  if (p == "/subscribers") return SubscribersJson(req);
  if (p == "/repairs") return RepairsJson(0);
  if (arg("/repairs/", &rest)) {
    uint32_t id;
    if (!ParseU32(rest, &id) || id == 0) return JsonError(400, "POP id must be a number");
    return RepairsJson(id);
  }
  if (p == "/events") return EventsJson(req);
  if (p == "/history") return JsonResponse(200, HistoryJson());
  if (p == "/monitor") return MonitorJson(req);
  return JsonError(404, "no such API endpoint");
}

namespace {
void PopCommon(Json& j, const std::string& health, const std::string& redundancy) {
  j.KStr("health", health).KStr("redundancy", redundancy);
}
}  // namespace

std::string DcAdmin::OverviewJson() {
  Json j;
  uint64_t now = loop_->NowMs();
  size_t gw_up = 0, gw_lost = 0, gw_unknown = 0, pops_up = 0, regions_below = 0;
  uint64_t below_total = 0, repair_queue_total = 0, repair_bytes_total = 0;
  j.Obj();
  j.Key("dc").Obj().KStr("version", kMistoreVersion).KUint("uptime_s", (now - started_ms_) / 1000)
      .KUint("map_epoch", map_epoch_).KInt("time_ms", WallMs()).EndObj();
  j.Key("pops").Arr();
  for (auto& [id, p] : pops_) {
    if (!p.in_map && !p.has_summary) continue;
    size_t up = 0, lost = 0;
    uint64_t free = 0, frags = 0;
    for (const pb::MonitorGateway& g : p.summary.gateways()) {
      if (g.connected()) {
        up++;
        free += g.store_bytes_free();
      } else {
        lost++;
      }
      frags += g.fragments_stored();
    }
    bool fresh = Fresh(p);
    if (p.in_map && p.up) pops_up++;
    if (fresh) {
      gw_up += up;
      gw_lost += lost;
    } else {
      gw_unknown += up + lost;
    }
    j.Obj().KUint("pop_id", p.pop_id).KStr("region", p.region).KStr("addr", p.addr)
        .KBool("up", p.in_map && p.up).KBool("reporting", fresh);
    PopCommon(j, PopHealth(p), RegionRedundancy(p));
    j.KInt("report_age_ms", p.has_summary ? int64_t(now - p.summary_at_ms) : -1);
    const pb::MonitorPopSummary& s = p.summary;
    j.KUint("k", s.k()).KUint("m", s.m());
    j.Key("gateway_counts").Obj().KUint("up", fresh ? up : 0).KUint("lost", fresh ? lost : 0)
        .KUint("unknown", fresh ? 0 : up + lost).KUint("total", up + lost).EndObj();
    j.KUint("store_bytes_free", free).KUint("fragments_placed", frags);
    j.KUint("placement_queue", s.placement_queue()).KUint("placements_in_flight", s.placements_in_flight());
    j.KUint("lock_objects", s.lock_objects()).KUint("entry_locks_held", s.entry_locks_held());
    RepairJson(j, p);
    if (fresh) {
      below_total += s.chunks_below_redundancy();
      repair_queue_total += s.repair_queue_chunks() + s.repair_in_flight_chunks();
      repair_bytes_total += s.repair_queue_bytes();
      if (RegionRedundancy(p) != "full" && RegionRedundancy(p) != "placing") regions_below++;
    }
    if (!p.history.empty())
      j.KNum("requests_per_s", p.history.back().requests_per_s)
          .KNum("latency_ms", p.history.back().latency_ms);
    if (size_t(s.gateways_size()) <= opts_.overview_gateways_max) {
      j.Key("gateways").Arr();
      for (const pb::MonitorGateway& g : s.gateways())
        j.Obj().KUint("id", g.gateway_id()).KStr("state", GatewayState(p, g.gateway_id()))
            .KUint("free", g.store_bytes_free()).EndObj();
      j.EndArr();
    } else {
      j.KBool("gateways_truncated", true);
    }
    j.EndObj();
  }
  j.EndArr();
  j.Key("totals").Obj().KUint("pops", pops_.size()).KUint("pops_up", pops_up)
      .KUint("gateways_up", gw_up).KUint("gateways_lost", gw_lost).KUint("gateways_unknown", gw_unknown)
      .KUint("objects", totals_.objects).KUint("object_bytes", totals_.bytes)
      .KUint("subscribers", totals_.subscribers)
      .KUint("regions_below_redundancy", regions_below).KUint("chunks_below_redundancy", below_total)
      .KUint("repair_queue_chunks", repair_queue_total).KUint("repair_queue_bytes", repair_bytes_total)
      .EndObj();
  j.KUint("last_event", last_event_seq_);
  j.EndObj();
  return j.Take();
}

HttpResponse DcAdmin::PopJson(uint32_t id, const HttpRequest& req) {
  auto it = pops_.find(id);
  if (it == pops_.end()) return JsonError(404, "no such POP");
  const PopView& p = it->second;
  const pb::MonitorPopSummary& s = p.summary;
  uint64_t offset = ParseUintOr(req.QueryParam("offset"), 0, UINT32_MAX);
  uint64_t limit = ParseUintOr(req.QueryParam("limit"), 500, 5000);
  std::string want = req.QueryParam("state");
  Json j;
  j.Obj().KUint("pop_id", p.pop_id).KStr("region", p.region).KStr("addr", p.addr)
      .KBool("up", p.in_map && p.up).KBool("reporting", Fresh(p));
  PopCommon(j, PopHealth(p), RegionRedundancy(p));
  j.KInt("report_age_ms", p.has_summary ? int64_t(loop_->NowMs() - p.summary_at_ms) : -1);
  j.KStr("version", s.version()).KUint("uptime_s", s.uptime_ms() / 1000).KUint("map_epoch", s.map_epoch())
      .KUint("k", s.k()).KUint("m", s.m()).KUint("placement_queue", s.placement_queue())
      .KUint("placements_in_flight", s.placements_in_flight()).KUint("lock_objects", s.lock_objects())
      .KUint("entry_locks_held", s.entry_locks_held()).KUint("jobs_queued", s.jobs_queued())
      .KUint("jobs_in_flight", s.jobs_in_flight()).KUint("requests_total", s.requests_total())
      .KUint("request_errors_total", s.request_errors_total())
      .KUint("received_bytes_total", s.received_bytes_total()).KUint("sent_bytes_total", s.sent_bytes_total());
  RepairJson(j, p);
  size_t matched = 0;
  j.Key("gateways").Arr();
  for (const pb::MonitorGateway& g : s.gateways()) {
    std::string state = GatewayState(p, g.gateway_id());
    if (!want.empty() && state != want) continue;
    if (matched++ < offset || matched > offset + limit) continue;
    j.Obj().KUint("id", g.gateway_id()).KStr("state", state).KStr("subscriber", g.subscriber())
        .KUint("store_bytes_free", g.store_bytes_free()).KUint("state_for_s", g.state_for_ms() / 1000)
        .KUint("fragments_stored", g.fragments_stored())
        .KUint("fragment_bytes_stored", g.fragment_bytes_stored()).EndObj();
  }
  j.EndArr();
  j.KUint("gateways_matched", matched).KUint("offset", offset).KUint("limit", limit);
  j.Key("history").Arr();
  for (const Sample& h : p.history)
    j.Obj().KInt("t", h.t_ms).KNum("rps", h.requests_per_s).KNum("eps", h.errors_per_s)
        .KNum("lat_ms", h.latency_ms).KUint("up", h.gateways_up).KUint("lost", h.gateways_lost)
        .KUint("free", h.free_bytes).KUint("queue", h.placement_queue).EndObj();
  j.EndArr();
  j.EndObj();
  return JsonResponse(200, j.Take());
}

HttpResponse DcAdmin::GatewayJson(uint32_t id) {
  auto g = gateway_pop_.find(id);
  if (g == gateway_pop_.end()) return JsonError(404, "no POP has reported this gateway");
  const PopView& p = pops_[g->second];
  for (const pb::MonitorGateway& m : p.summary.gateways()) {
    if (m.gateway_id() != id) continue;
    Json j;
    j.Obj().KUint("id", id).KStr("state", GatewayState(p, id)).KUint("pop_id", p.pop_id)
        .KStr("region", p.region).KStr("subscriber", m.subscriber())
        .KUint("store_bytes_free", m.store_bytes_free()).KUint("state_for_s", m.state_for_ms() / 1000)
        .KUint("fragments_stored", m.fragments_stored())
        .KUint("fragment_bytes_stored", m.fragment_bytes_stored());
    EventQuery q;
    q.gateway = id;
    q.limit = 50;
    auto evs = events_->Query(q);
    j.Key("events").Arr();
    if (evs.ok())
      for (const EventRecord& e : evs.value())
        j.Obj().KUint("seq", e.seq).KInt("t", e.t_ms).KStr("kind", e.kind)
            .KStr("detail", e.detail).EndObj();
    j.EndArr().EndObj();
    return JsonResponse(200, j.Take());
  }
  return JsonError(404, "no POP has reported this gateway");
}

HttpResponse DcAdmin::ObjectJson(const std::string& hex) {
  auto oid = Oid::FromHex(hex);
  if (!oid.ok()) return JsonError(400, "an object id is 32 hex digits");
  auto rec = catalog_->FindObject(oid->Encode());
  if (!rec.ok() && rec.status().code() != Code::kNotFound)
    return JsonError(500, rec.status().message());
  Json j;
  j.Obj().KStr("oid", oid->Hex()).KBool("in_catalog", rec.ok());
  if (rec.ok())
    j.KStr("subscriber", rec->subscriber).KUint("latest_version", rec->latest_version)
        .KUint("size_bytes", rec->size_bytes).KUint("names", rec->names);
  j.KUint("creating_gateway", oid->gateway).KUint("creation_counter", oid->counter);
  j.Key("replicas").Arr();
  const std::pair<const char*, uint32_t> roles[] = {{"primary", oid->primary_pop},
                                                    {"backup", oid->backup_pop}};
  for (auto& [role, pop] : roles) {
    j.Obj().KStr("role", role).KUint("pop_id", pop);
    auto it = pops_.find(pop);
    if (it != pops_.end()) {
      j.KStr("region", it->second.region).KStr("health", PopHealth(it->second))
          .KStr("redundancy", RegionRedundancy(it->second));
    } else {
      j.KStr("health", "unknown");
    }
    j.EndObj();
  }
  j.EndArr();
  j.Key("versions").Arr();
  if (rec.ok())
    for (uint64_t v = rec->latest_version; v >= 1 && v + 20 > rec->latest_version; v--)
      j.Obj().KUint("version", v).KBool("latest", v == rec->latest_version).EndObj();
  j.EndArr();
  j.KStr("note",
         "each version is kept whole at the primary and backup POPs and as k+m fragments on "
         "gateways of both regions; `mistore placement` lists the fragments");
  j.EndObj();
  if (!rec.ok()) return JsonResponse(404, j.Take());
  return JsonResponse(200, j.Take());
}

HttpResponse DcAdmin::SubscribersJson(const HttpRequest& req) {
  uint64_t limit = ParseUintOr(req.QueryParam("limit"), 100, 1000);
  auto usage = catalog_->UsageBySubscriber(size_t(limit));
  if (!usage.ok()) return JsonError(500, usage.status().message());
  // Gateways per subscriber, from the POPs' reports.
  std::map<std::string, std::pair<size_t, size_t>> gws;  // up, total
  for (auto& [id, p] : pops_)
    for (const pb::MonitorGateway& g : p.summary.gateways()) {
      auto& e = gws[g.subscriber()];
      e.second++;
      if (GatewayState(p, g.gateway_id()) == "up") e.first++;
    }
  Json j;
  j.Obj().Key("subscribers").Arr();
  for (auto& u : usage.value()) {
    auto it = gws.find(u.subscriber);
    j.Obj().KStr("subscriber", u.subscriber).KUint("objects", u.objects).KUint("bytes", u.bytes)
        .KUint("gateways_up", it == gws.end() ? 0 : it->second.first)
        .KUint("gateways", it == gws.end() ? 0 : it->second.second).EndObj();
  }
  j.EndArr().KUint("limit", limit).EndObj();
  return JsonResponse(200, j.Take());
}

// Redundancy and repair per region (one POP's, or all): what the POPs'
// summaries say about chunks below k+m, the repair queue and its progress.
HttpResponse DcAdmin::RepairsJson(uint32_t only_pop) {
  if (only_pop && !pops_.count(only_pop)) return JsonError(404, "no such POP");
  Json j;
  j.Obj().Key("regions").Arr();
  uint64_t below = 0, queued = 0, queued_bytes = 0;
  double eta_max = 0;
  for (auto& [id, p] : pops_) {
    if (only_pop && id != only_pop) continue;
    if (!p.in_map && !p.has_summary) continue;
    size_t lost = 0;
    for (auto& [gw, c] : p.gateway_connected) lost += c ? 0 : 1;
    const pb::MonitorPopSummary& s = p.summary;
    j.Obj().KUint("pop_id", id).KStr("region", p.region).KStr("redundancy", RegionRedundancy(p))
        .KBool("reporting", Fresh(p)).KUint("k", s.k()).KUint("m", s.m());
    RepairJson(j, p);
    j.KUint("placement_queue", s.placement_queue()).KUint("placements_in_flight", s.placements_in_flight())
        .KUint("jobs_queued", s.jobs_queued()).KUint("jobs_in_flight", s.jobs_in_flight())
        .KUint("gateways_disconnected", lost).KUint("gateways", p.gateway_connected.size())
        .KUint("events_dropped_total", s.events_dropped_total()).EndObj();
    if (Fresh(p)) {
      below += s.chunks_below_redundancy();
      queued += s.repair_queue_chunks() + s.repair_in_flight_chunks();
      queued_bytes += s.repair_queue_bytes();
      eta_max = std::max(eta_max, s.repair_eta_s());
    }
  }
  j.EndArr();
  j.Key("totals").Obj().KUint("chunks_below_redundancy", below).KUint("repair_queue_chunks", queued)
      .KUint("repair_queue_bytes", queued_bytes).KNum("repair_eta_s_max", eta_max).EndObj();
  j.KStr("note", "each POP repairs its own region: a gateway silent for the POP's grace period "
                 "(gateway_grace_s) is declared lost and its fragments are rebuilt on other "
                 "gateways, most endangered chunks first, within repair_bytes_per_s");
  j.EndObj();
  return JsonResponse(200, j.Take());
}

// The event log, newest first: ?since=MS (wall clock) &after=SEQ
// &kind=K1,K2 &pop=ID &gateway=ID &limit=N (default 200, at most 5000).
HttpResponse DcAdmin::EventsJson(const HttpRequest& req) {
  EventQuery q;
  auto num = [&](const char* name, uint64_t max, uint64_t* out) {
    std::string v = req.QueryParam(name);
    if (v.empty()) return true;
    uint64_t x = ParseUintOr(v, UINT64_MAX, max);
    if (x == UINT64_MAX) return false;
    *out = x;
    return true;
  };
  uint64_t since = 0, after = 0, pop = 0, gw = 0, limit = 200;
  if (!num("since", INT64_MAX, &since) || !num("after", INT64_MAX, &after) ||
      !num("pop", UINT32_MAX, &pop) || !num("gateway", UINT32_MAX, &gw) ||
      !num("limit", EventLog::kQueryLimitMax, &limit))
    return JsonError(400, "since (ms), after (seq), pop, gateway and limit are numbers");
  q.since_ms = int64_t(since);
  q.after_seq = after;
  q.pop = uint32_t(pop);
  q.gateway = uint32_t(gw);
  q.limit = std::max<uint64_t>(limit, 1);
  std::string kinds = req.QueryParam("kind");
  for (size_t i = 0; !kinds.empty() && i <= kinds.size();) {
    size_t c = kinds.find(',', i);
    if (c == std::string::npos) c = kinds.size();
    std::string k = kinds.substr(i, c - i);
    if (!k.empty()) {
      if (!KnownKind(k)) return JsonError(400, "unknown event kind '" + k.substr(0, 40) + "'");
      if (q.kinds.size() >= EventLog::kKindsMax) return JsonError(400, "too many kinds");
      q.kinds.push_back(k);
    }
    i = c + 1;
  }
  auto evs = events_->Query(q);
  if (!evs.ok()) return JsonError(500, "event log: " + evs.status().message());
  Json j;
  j.Obj().Key("events").Arr();
  for (const EventRecord& e : evs.value()) {
    j.Obj().KUint("seq", e.seq).KInt("t", e.t_ms).KStr("kind", e.kind).KStr("source", e.source);
    if (e.pop) j.KUint("pop", e.pop);
    if (e.gateway) j.KUint("gateway", e.gateway);
    if (e.about_pop) j.KUint("about_pop", e.about_pop);
    if (!e.region.empty()) j.KStr("region", e.region);
    if (e.count) j.KUint("count", e.count);
    if (e.bytes) j.KUint("bytes", e.bytes);
    j.KStr("detail", e.detail).EndObj();
  }
  j.EndArr().KUint("last", last_event_seq_).KUint("limit", q.limit);
  j.Key("kinds").Arr();
  for (const char* k : kEventKinds) j.Str(k);
  j.EndArr().EndObj();
  return JsonResponse(200, j.Take());
}

// Stored POP summaries (issue 7; kept by mistore-dc for monitor_retention_ms)
// over a time range: ?pop=ID (0: all) &from=MS &to=MS (wall clock) &limit=N.
HttpResponse DcAdmin::MonitorJson(const HttpRequest& req) {
  uint64_t pop = ParseUintOr(req.QueryParam("pop"), 0, UINT32_MAX);
  uint64_t from = ParseUintOr(req.QueryParam("from"), 0, INT64_MAX);
  uint64_t to = ParseUintOr(req.QueryParam("to"), INT64_MAX, INT64_MAX);
  uint64_t limit = ParseUintOr(req.QueryParam("limit"), 1000, 10000);
  auto rows = catalog_->PopSummaries(uint32_t(pop), int64_t(from), int64_t(to), size_t(limit));
  if (!rows.ok()) return JsonResponse(500, "{\"error\":\"catalog query failed\"}");
  Json j;
  j.Obj().Key("summaries").Arr();
  for (const auto& r : *rows) {
    uint64_t up = 0;
    for (const auto& g : r.summary.gateways()) up += g.connected() ? 1 : 0;
    j.Obj().KUint("pop", r.pop_id).KInt("t", r.t_ms).KUint("map_epoch", r.summary.map_epoch())
        .KUint("gateways", uint64_t(r.summary.gateways_size())).KUint("gateways_connected", up)
        .KUint("placement_queue", r.summary.placement_queue())
        .KUint("requests_total", r.summary.requests_total())
        .KUint("request_errors_total", r.summary.request_errors_total()).EndObj();
  }
  j.EndArr().EndObj();
  return JsonResponse(200, j.Take());
}

std::string DcAdmin::HistoryJson() {
  Json j;
  j.Obj().KUint("period_ms", opts_.sample_period_ms).Key("samples").Arr();
  for (const Sample& h : history_)
    j.Obj().KInt("t", h.t_ms).KNum("rps", h.requests_per_s).KNum("eps", h.errors_per_s)
        .KNum("lat_ms", h.latency_ms).KNum("rx_bps", h.received_bytes_per_s)
        .KNum("tx_bps", h.sent_bytes_per_s).KUint("up", h.gateways_up).KUint("lost", h.gateways_lost)
        .KUint("pops_up", h.pops_up).KUint("free", h.free_bytes).KUint("queue", h.placement_queue)
        .EndObj();
  j.EndArr().EndObj();
  return j.Take();
}

}  // namespace mistore
