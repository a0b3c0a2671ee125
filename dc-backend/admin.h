// DcAdmin: the DC's operators' view. An HTTP admin API (JSON, GET only,
// `Authorization: Bearer <admin token>` on every /api/ request) and the web
// dashboard (dc-backend/dashboard/, compiled into the binary; no CDN) on
// their own listener (knob admin_listen).
//
// What it knows: the catalog (cluster map, objects, names, per-subscriber
// usage), the summaries POPs send every monitor_report_ms
// (pb::MonitorPopSummary: their gateways and whether each is connected,
// placement backlog, locks, request totals, the region's repair state) and
// the events POPs report (pb::PopEventReport). It keeps the event log
// (EventLog, event_log.h: persistent, capped by event_log_max) of what the
// POPs reported and of what the DC saw and published itself (POPs joining,
// failing, coming back; epochs), time series for the dashboard's plots, and
// DC-level metrics in the daemon's registry. docs/operations.md documents
// the endpoints and event kinds for operators.
//
//   GET /api/overview                 hierarchy at a glance (gateway lists
//                                     only for regions up to 256 gateways)
//   GET /api/pops/{id}[?offset=&limit=&state=up|lost]   one POP, its gateways
//   GET /api/gateways/{id}            one gateway
//   GET /api/objects/{32 hex digits}  one object: replicas, versions
//   GET /api/subscribers[?limit=]     usage per subscriber
//   GET /api/repairs[/{pop id}]       redundancy and repair queue per region
//   GET /api/events[?since=MS&after=SEQ&kind=K1,K2&pop=&gateway=&limit=]
//                                     the event log, newest first
//   GET /api/history                  time series for the plots
//   GET /api/monitor[?pop=&from=&to=&limit=]  stored POP summaries over a
//                                     wall-clock range (the catalog keeps
//                                     them for monitor_retention_ms)
//   GET /, /app.js, /app.css          the dashboard (no token: no data)
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dc-backend/catalog.h"
#include "dc-backend/event_log.h"
#include "shared/core/config.h"
#include "shared/core/metrics.h"
#include "shared/uvio/http.h"

namespace mistore {

struct AdminOptions {
  HttpLimits limits;
  size_t events_max = 2000;  // the in-memory log used until Start/UseEventLog
  uint64_t sample_period_ms = 2000;  // history resolution
  size_t history_max = 900;          // 30 minutes at 2 s
  uint64_t pop_stale_ms = 5000;      // a POP's report older than this is stale
  size_t overview_gateways_max = 256;
};

class DcAdmin {
 public:
  DcAdmin(EventLoop* loop, Catalog* catalog, MetricsRegistry* metrics,
          AdminOptions opts = AdminOptions());
  ~DcAdmin();
  DcAdmin(const DcAdmin&) = delete;
  DcAdmin& operator=(const DcAdmin&) = delete;

  // Reads the DC's knobs admin_listen ("off": no listener), admin_token_file
  // (empty: data_dir/admin.token) and serves the API and dashboard. Returns
  // the bound address, or "off".
  Result<std::string> Start(const Config& cfg);
  // The same with explicit values (tests).
  Result<std::string> Serve(const std::string& addr, const std::string& token);
  void Close();
  // Replaces the event log (Start opens the configured one); what the
  // previous one held is copied over first.
  Status UseEventLog(std::unique_ptr<EventLog> log);

  // The DC published a new cluster map: log the role changes now.
  void OnMapPublished() { WatchMap(); }

  // A POP's summary (Envelope body monitor_pop_summary); conn_pop_id is the
  // id its connection said Hello with. Fills an Empty reply.
  Status OnPopSummary(uint32_t conn_pop_id, const pb::MonitorPopSummary& s, pb::Envelope* reply);
  // A POP's batch of events (Envelope body pop_event_report); stored in the
  // event log before the Empty reply, so the POP drops them only once kept.
  Status OnPopEvents(uint32_t conn_pop_id, const pb::PopEventReport& r, pb::Envelope* reply);

  // One request (what the listener calls; public for tests).
  HttpResponse Handle(const HttpRequest& req);

  // The token in path: read it, or create it (32 random bytes, hex, mode
  // 0600) when the file does not exist. Tokens shorter than 16 characters
  // are refused.
  static Result<std::string> LoadOrCreateToken(const std::string& path);

 private:
  struct Sample {
    int64_t t_ms = 0;  // wall clock
    double requests_per_s = 0, errors_per_s = 0, latency_ms = 0;
    double received_bytes_per_s = 0, sent_bytes_per_s = 0;
    uint64_t gateways_up = 0, gateways_lost = 0, pops_up = 0;
    uint64_t free_bytes = 0, placement_queue = 0;
  };
  struct PopView {
    uint32_t pop_id = 0;
    std::string region, addr;
    bool in_map = false, up = false;
    bool has_summary = false;
    uint64_t summary_at_ms = 0;  // loop clock
    pb::MonitorPopSummary summary;
    std::map<uint32_t, bool> gateway_connected;  // as of the last summary
    // Counters at the previous sample, for rates.
    bool sampled = false;
    uint64_t s_requests = 0, s_errors = 0, s_received = 0, s_sent = 0;
    double s_seconds = 0;
    std::deque<Sample> history;
    // The current repair episode (queue non-empty since), for its progress.
    bool repairing = false;
    int64_t repair_since_ms = 0;    // wall clock
    uint64_t repair_base_bytes = 0; // repair_bytes_total when it began
    // Events: the POP process (boot id) and its drop counter last seen.
    uint64_t events_boot = 0, events_dropped = 0;
  };

  void Tick();
  void WatchMap();
  void AddEvent(const std::string& kind, uint32_t pop, uint32_t gateway, const std::string& detail,
                uint32_t about_pop = 0, uint64_t count = 0);
  void StoreEvents(const std::vector<EventRecord>& events);
  void TrackRepair(PopView& p);
  template <typename J>
  void RepairJson(J& j, const PopView& p) const;  // a region's repair fields
  bool Fresh(const PopView& p) const;
  std::string PopHealth(const PopView& p) const;
  std::string RegionRedundancy(const PopView& p) const;
  std::string GatewayState(const PopView& p, uint32_t gw) const;

  HttpResponse Api(const HttpRequest& req);
  std::string OverviewJson();
  HttpResponse PopJson(uint32_t id, const HttpRequest& req);
  HttpResponse GatewayJson(uint32_t id);
  HttpResponse ObjectJson(const std::string& hex);
  HttpResponse SubscribersJson(const HttpRequest& req);
  HttpResponse RepairsJson(uint32_t only_pop);
  HttpResponse EventsJson(const HttpRequest& req);
  std::string HistoryJson();
  HttpResponse MonitorJson(const HttpRequest& req);

  EventLoop* loop_;
  Catalog* catalog_;
  MetricsRegistry* metrics_;
  AdminOptions opts_;
  std::string token_;
  std::unique_ptr<HttpServer> http_;
  uint64_t started_ms_;
  TimerId tick_timer_ = 0;
  TimerId map_timer_ = 0;
  uint64_t map_epoch_ = 0;
  std::map<uint32_t, PopView> pops_;
  std::map<uint32_t, uint32_t> gateway_pop_;  // gateway id -> the POP that reported it last
  std::unique_ptr<EventLog> events_;
  uint64_t last_event_seq_ = 0;
  Counter* event_store_errors_ = nullptr;
  std::deque<Sample> history_;
  Catalog::Totals totals_;
  // Metrics.
  std::map<std::string, Counter*> event_counters_;
  std::map<std::string, Counter*> api_results_;
  Counter* summaries_ = nullptr;
  uint64_t last_refusal_log_ms_ = 0;
  uint64_t refused_since_log_ = 0;
};

}  // namespace mistore
