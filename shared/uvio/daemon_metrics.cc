#include "shared/uvio/daemon_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace mistore {

#ifndef MISTORE_VERSION
#define MISTORE_VERSION "unknown"
#endif
const char* const kMistoreVersion = MISTORE_VERSION;

// Every case of the Envelope's oneof, by its field name; no `default:`, so
// -Wswitch flags a missing one, and tests/shared/uvio/message_type_name_test
// checks each body field of mistore.proto against this table.
std::string MessageTypeName(const pb::Envelope& env) {
  using E = pb::Envelope;
  switch (env.body_case()) {
    case E::kHello: return "hello";
    case E::kHelloReply: return "hello_reply";
    case E::kGetClusterMap: return "get_cluster_map";
    case E::kClusterMap: return "cluster_map";
    case E::kPutChunk: return "put_chunk";
    case E::kPutCommit: return "put_commit";
    case E::kPutReply: return "put_reply";
    case E::kGetVersion: return "get_version";
    case E::kVersionInfo: return "version_info";
    case E::kGetChunk: return "get_chunk";
    case E::kChunkData: return "chunk_data";
    case E::kGetChunkFragments: return "get_chunk_fragments";
    case E::kChunkFragments: return "chunk_fragments";
    case E::kReportForgedFragments: return "report_forged_fragments";
    case E::kPublishShareKey: return "publish_share_key";
    case E::kGetShareKey: return "get_share_key";
    case E::kShareKeyReply: return "share_key_reply";
    case E::kPutShare: return "put_share";
    case E::kPutShareReply: return "put_share_reply";
    case E::kListShares: return "list_shares";
    case E::kShareList: return "share_list";
    case E::kCheckShare: return "check_share";
    case E::kCheckShareReply: return "check_share_reply";
    case E::kListObjects: return "list_objects";
    case E::kObjectList: return "object_list";
    case E::kGetPlacement: return "get_placement";
    case E::kPlacement: return "placement";
    case E::kStoreChunk: return "store_chunk";
    case E::kCommitVersion: return "commit_version";
    case E::kCommitReply: return "commit_reply";
    case E::kFetchVersion: return "fetch_version";
    case E::kFetchChunk: return "fetch_chunk";
    case E::kEmpty: return "empty";
    case E::kClaimName: return "claim_name";
    case E::kClaimNameReply: return "claim_name_reply";
    case E::kLookupName: return "lookup_name";
    case E::kReportVersion: return "report_version";
    case E::kStoreFragment: return "store_fragment";
    case E::kFetchFragment: return "fetch_fragment";
    case E::kFragmentData: return "fragment_data";
    case E::kAcquireLock: return "acquire_lock";
    case E::kLockGrant: return "lock_grant";
    case E::kRenewLock: return "renew_lock";
    case E::kReleaseLock: return "release_lock";
    case E::kLockSync: return "lock_sync";
    case E::kFetchLocks: return "fetch_locks";
    case E::kFinalizeVersion: return "finalize_version";
    case E::kMonitorPopSummary: return "monitor_pop_summary";
    case E::kGatewayHeartbeat: return "gateway_heartbeat";
    case E::kGatewayInventory: return "gateway_inventory";
    case E::kFragmentsBad: return "fragments_bad";
    case E::kDeleteFragments: return "delete_fragments";
    case E::kGetInventory: return "get_inventory";
    case E::kHaveChunks: return "have_chunks";
    case E::kHaveChunksReply: return "have_chunks_reply";
    case E::kPopEventReport: return "pop_event_report";
    case E::kGcFetch: return "gc_fetch";
    case E::kGcWork: return "gc_work";
    case E::kGcDone: return "gc_done";
    case E::kObjectTemperature: return "object_temperature";
    case E::kFetchBackupChunk: return "fetch_backup_chunk";
    case E::kEnrolStart: return "enrol_start";
    case E::kEnrolStartReply: return "enrol_start_reply";
    case E::kEnrolFinish: return "enrol_finish";
    case E::kEnrolFinishReply: return "enrol_finish_reply";
    case E::kClientHello: return "client_hello";
    case E::kPairDevice: return "pair_device";
    case E::kPairDeviceReply: return "pair_device_reply";
    case E::kHeldResults: return "held_results";
    case E::kPlacedChunks: return "placed_chunks";
    case E::kPlacedChunksReply: return "placed_chunks_reply";
    case E::BODY_NOT_SET: return "other";
  }
  return "other";  // a value this build does not know
}

namespace {

// /proc/self/stat fields (1-based as in proc(5)): utime 14, stime 15,
// starttime 22, vsize 23, rss 24.
bool ReadProcStat(double* cpu_s, double* start_ticks, double* vsize, double* rss_pages) {
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (!f) return false;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (!p) return false;
  p += 2;  // now at field 3 (state)
  unsigned long long v[30] = {0};
  int field = 3;
  while (*p && field <= 24) {
    if (field >= 14) v[field - 14] = std::strtoull(p, nullptr, 10);
    while (*p && *p != ' ') p++;
    while (*p == ' ') p++;
    field++;
  }
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) hz = 100;
  *cpu_s = double(v[0] + v[1]) / double(hz);
  *start_ticks = double(v[22 - 14]) / double(hz);
  *vsize = double(v[23 - 14]);
  *rss_pages = double(v[24 - 14]);
  return true;
}

double BootTime() {
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return 0;
  char line[256];
  double bt = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "btime ", 6) == 0) bt = std::strtod(line + 6, nullptr);
  std::fclose(f);
  return bt;
}

double OpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  double n = 0;
  while (struct dirent* e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  // the directory stream itself
}

void AddProcessMetrics(MetricsRegistry& r) {
  r.AddCounterFn("process_cpu_seconds_total", "User and system CPU time spent in seconds.", [] {
    double cpu = 0, st = 0, vs = 0, rss = 0;
    ReadProcStat(&cpu, &st, &vs, &rss);
    return cpu;
  });
  r.AddGaugeFn("process_resident_memory_bytes", "Resident memory size in bytes.", [] {
    double cpu = 0, st = 0, vs = 0, rss = 0;
    ReadProcStat(&cpu, &st, &vs, &rss);
    return rss * double(sysconf(_SC_PAGESIZE));
  });
  r.AddGaugeFn("process_virtual_memory_bytes", "Virtual memory size in bytes.", [] {
    double cpu = 0, st = 0, vs = 0, rss = 0;
    ReadProcStat(&cpu, &st, &vs, &rss);
    return vs;
  });
  double start = 0;
  {
    double cpu = 0, st = 0, vs = 0, rss = 0;
    if (ReadProcStat(&cpu, &st, &vs, &rss)) start = BootTime() + st;
  }
  r.AddGaugeFn("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
               [start] { return start; });
  r.AddGaugeFn("process_open_fds", "Number of open file descriptors.", [] { return OpenFds(); });
}

}  // namespace

DaemonMetrics::DaemonMetrics(EventLoop* loop, const std::string& daemon,
                             std::vector<std::string> served_types,
                             std::vector<std::string> called_types)
    : loop_(loop), daemon_(daemon) {
  registry_.AddGauge("mistore_build_info", "Build of this daemon (value is always 1).",
                     {{"daemon", daemon}, {"version", kMistoreVersion}})
      .Set(1);
  Declare(&served_, "mistore_request", "Requests this daemon served", std::move(served_types));
  if (!called_types.empty())
    Declare(&called_, "mistore_call", "Calls this daemon made to other nodes",
            std::move(called_types));
  received_ = &registry_.AddCounter("mistore_received_bytes_total",
                                    "Envelope bytes received: requests and replies to our calls.");
  sent_ = &registry_.AddCounter("mistore_sent_bytes_total",
                                "Envelope bytes sent: replies and our calls.");
  if (IndexOf(served_, "get_version") >= 0) {
    const std::pair<int, const char*> modes[] = {{pb::READ_MONOTONIC, "monotonic"},
                                                 {pb::READ_ATOMIC, "atomic"},
                                                 {pb::READ_LOCKED, "locked"}};
    for (auto& [mode, name] : modes)
      read_modes_[mode] = &registry_.AddCounter(
          "mistore_read_requests_total", "GetVersion requests served, by consistency mode.",
          {{"mode", name}});
  }
  AddProcessMetrics(registry_);
}

void DaemonMetrics::Declare(Family* f, const char* prefix, const char* what,
                            std::vector<std::string> types) {
  types.push_back("other");
  f->types = std::move(types);
  for (auto& t : f->types) {
    f->ok.push_back(&registry_.AddCounter(std::string(prefix) + "s_total",
                                          std::string(what) + ", by message type and result.",
                                          {{"type", t}, {"result", "ok"}}));
    f->err.push_back(&registry_.AddCounter(std::string(prefix) + "s_total",
                                           std::string(what) + ", by message type and result.",
                                           {{"type", t}, {"result", "error"}}));
  }
  for (auto& t : f->types)
    f->seconds.push_back(&registry_.AddHistogram(
        std::string(prefix) + "_duration_seconds",
        std::string(what) + ": time to the reply, in seconds.", LatencyBuckets(), {{"type", t}}));
}

int DaemonMetrics::IndexOf(const Family& f, const std::string& type) {
  for (size_t i = 0; i + 1 < f.types.size(); i++)
    if (f.types[i] == type) return int(i);
  return -1;
}

void DaemonMetrics::Record(Family& f, const Op& op, bool ok) {
  if (f.types.empty()) return;
  size_t i = op.type >= 0 ? size_t(op.type) : f.types.size() - 1;
  (ok ? f.ok : f.err)[i]->Inc();
  double s = std::chrono::duration<double>(Clock::now() - op.start).count();
  f.seconds[i]->Observe(s);
  if (&f == &served_) request_seconds_total_ += s;
}

DaemonMetrics::Op DaemonMetrics::Received(const pb::Envelope& request) {
  received_->Inc(request.ByteSizeLong());
  if (request.has_get_version()) {
    auto it = read_modes_.find(int(request.get_version().mode()));
    if (it != read_modes_.end()) it->second->Inc();
  }
  return Op{IndexOf(served_, MessageTypeName(request)), Clock::now()};
}

void DaemonMetrics::Replied(const Op& op, const pb::Envelope* reply, bool ok) {
  if (reply) {
    sent_->Inc(reply->ByteSizeLong());
    if (reply->has_error()) ok = false;
  }
  Record(served_, op, ok);
}

void DaemonMetrics::Hold(uint64_t conn, uint64_t request_id, const Op& op) {
  if (held_.size() >= kHeldMax) return;  // beyond the bound: neither timed nor counted
  held_[{conn, request_id}] = op;
}

void DaemonMetrics::ReleaseHeld(uint64_t conn, uint64_t request_id, const pb::Envelope& reply) {
  auto it = held_.find({conn, request_id});
  if (it == held_.end()) {
    sent_->Inc(reply.ByteSizeLong());
    return;
  }
  Op op = it->second;
  held_.erase(it);
  Replied(op, &reply, !reply.has_error());
}

void DaemonMetrics::ForgetConnection(uint64_t conn) {
  auto it = held_.lower_bound({conn, 0});
  while (it != held_.end() && it->first.first == conn) {
    Record(served_, it->second, false);  // the requester went away unanswered
    it = held_.erase(it);
  }
}

DaemonMetrics::Op DaemonMetrics::Calling(const pb::Envelope& request) {
  sent_->Inc(request.ByteSizeLong());
  return Op{IndexOf(called_, MessageTypeName(request)), Clock::now()};
}

void DaemonMetrics::CallDone(const Op& op, const Result<pb::Envelope>& reply) {
  bool ok = reply.ok() && !reply->has_error();
  if (reply.ok()) received_->Inc(reply->ByteSizeLong());
  Record(called_, op, ok);
}

uint64_t DaemonMetrics::requests_total() const {
  uint64_t n = 0;
  for (size_t i = 0; i < served_.ok.size(); i++) n += served_.ok[i]->value() + served_.err[i]->value();
  return n;
}

uint64_t DaemonMetrics::request_errors_total() const {
  uint64_t n = 0;
  for (auto* c : served_.err) n += c->value();
  return n;
}

Result<std::string> DaemonMetrics::Serve(const std::string& listen) {
  if (listen == "off") return std::string("off");
  http_ = std::make_unique<HttpServer>(loop_, HttpLimits{}, [this](const HttpRequest& req) {
    if (req.path == "/metrics") {
      HttpResponse r;
      r.content_type = MetricsRegistry::kContentType;
      r.body = registry_.Exposition();
      return r;
    }
    if (req.path == "/")
      return HttpResponse::Text(200, "mistore-" + daemon_ + " " + kMistoreVersion +
                                         ": Prometheus metrics at /metrics");
    return HttpResponse::Text(404, "not found; metrics are at /metrics");
  });
  auto bound = http_->Listen(listen);
  if (!bound.ok()) {
    http_.reset();
    return bound.status();
  }
  registry_.AddCounterFn("mistore_http_requests_total", "HTTP requests handled by the listener.",
                         [this] { return double(http_->stats().requests); },
                         {{"listener", "metrics"}});
  registry_.AddCounterFn("mistore_http_refused_total",
                         "HTTP requests or connections refused by the listener's limits.",
                         [this] { return double(http_->stats().refused); },
                         {{"listener", "metrics"}});
  registry_.AddGaugeFn("mistore_http_connections", "Open HTTP connections.",
                       [this] { return double(http_->stats().connections); },
                       {{"listener", "metrics"}});
  return bound;
}

}  // namespace mistore
