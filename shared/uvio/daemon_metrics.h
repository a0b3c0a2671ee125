// DaemonMetrics: what every Mistore daemon exposes on /metrics, and the
// adapter-level bookkeeping of the messages it serves and sends.
//
// Each daemon declares up front the message types it serves (and, for the
// POP, the types it calls others with); every (type, result) series is
// registered at construction, so label sets stay bounded whatever peers
// send (anything else counts as type="other"). Families:
//   mistore_build_info{daemon,version}                     gauge, 1
//   mistore_requests_total{type,result}                    served requests
//   mistore_request_duration_seconds{type}                 histogram
//   mistore_read_requests_total{mode}                      GetVersion by read mode
//   mistore_calls_total{type,result}                       calls this daemon made
//   mistore_call_duration_seconds{type}                    histogram
//   mistore_received_bytes_total / mistore_sent_bytes_total  envelope bytes
//   mistore_http_*                                         the /metrics listener
//   process_*                                              from /proc/self
// result is "ok" or "error". Loop thread only, except the registry itself
// (see shared/core/metrics.h).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "shared/core/metrics.h"
#include "shared/proto/mistore.pb.h"
#include "shared/uvio/http.h"

namespace mistore {

// snake_case name of an Envelope body ("put_chunk"), "other" if unknown.
std::string MessageTypeName(const pb::Envelope& env);

extern const char* const kMistoreVersion;

class DaemonMetrics {
 public:
  DaemonMetrics(EventLoop* loop, const std::string& daemon, std::vector<std::string> served_types,
                std::vector<std::string> called_types = {});

  MetricsRegistry& registry() { return registry_; }

  // Starts the HTTP listener for GET /metrics. "off" disables it (returns
  // "off"); otherwise returns the bound address.
  Result<std::string> Serve(const std::string& listen);

  using Clock = std::chrono::steady_clock;
  struct Op {
    int type = -1;  // index into the declared types; -1: "other"
    Clock::time_point start;
  };

  // A request arrived (counts its bytes); pass the Op to Replied.
  Op Received(const pb::Envelope& request);
  // The reply for op; reply is null for an error sent without a body.
  void Replied(const Op& op, const pb::Envelope* reply, bool ok);

  // Replies that leave later than the request's handler returns (the POP's
  // outbox): held by (connection, request id), bounded.
  void Hold(uint64_t conn, uint64_t request_id, const Op& op);
  void ReleaseHeld(uint64_t conn, uint64_t request_id, const pb::Envelope& reply);
  void ForgetConnection(uint64_t conn);

  // Calls this daemon makes.
  Op Calling(const pb::Envelope& request);
  void CallDone(const Op& op, const Result<pb::Envelope>& reply);

  // Totals for summaries sent elsewhere (the POP's report to the DC).
  uint64_t requests_total() const;
  uint64_t request_errors_total() const;
  double request_seconds_total() const { return request_seconds_total_; }
  uint64_t received_bytes() const { return received_->value(); }
  uint64_t sent_bytes() const { return sent_->value(); }
  const HttpStats* http_stats() const { return http_ ? &http_->stats() : nullptr; }

 private:
  struct Family {
    std::vector<std::string> types;  // declared, then "other"
    std::vector<Counter*> ok, err;
    std::vector<Histogram*> seconds;
  };
  void Declare(Family* f, const char* prefix, const char* what, std::vector<std::string> types);
  static int IndexOf(const Family& f, const std::string& type);
  void Record(Family& f, const Op& op, bool ok);

  EventLoop* loop_;
  std::string daemon_;
  MetricsRegistry registry_;
  Family served_, called_;
  Counter* received_;
  Counter* sent_;
  std::map<int, Counter*> read_modes_;
  double request_seconds_total_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, Op> held_;
  std::unique_ptr<HttpServer> http_;
  static constexpr size_t kHeldMax = 100000;
};

}  // namespace mistore
