// What a POP reports to the DC for the operators' view (issue 8), beyond its
// request counters:
//   - PopEventBuffer: the events it saw (gateways suspected / recovered /
//     lost / returned, repair of a lost gateway started / finished, bad
//     fragments found, role changes from a new cluster map), held in a
//     bounded buffer that drops its oldest events when full (counted), and
//     sent as batches of at most kPopEventBatchMax; a batch stays in the
//     buffer until the DC acknowledges it, so a DC outage delays events but
//     loses none beyond the buffer's bound.
//   - the repair fields of pb::MonitorPopSummary (PopCore::FillRepairSummary,
//     pop_report.cc).
// Pure state machine: time arrives as now_ms arguments. PopCore owns the
// buffer and adds to it (pop_report.cc); the adapter (pop_main.cc) takes
// batches and says whether the DC took them. POP loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "shared/proto/mistore.pb.h"

namespace mistore {

constexpr size_t kPopEventBatchMax = 256;        // events per PopEventReport (the DC refuses more)
constexpr size_t kPopEventDetailBytesMax = 256;  // longer details are cut

// Name of an event kind as the DC's event log and the admin API show it
// ("gateway_lost"); "unknown" for values this build does not know.
const char* PopEventKindName(pb::PopEventKind kind);

class PopEventBuffer {
 public:
  explicit PopEventBuffer(size_t buffer_max = 4096, size_t batch_max = kPopEventBatchMax);

  // Appends an event that happened at now_ms. When the buffer is full its
  // oldest event is dropped (dropped_total()), in flight or not.
  void Add(uint64_t now_ms, pb::PopEventKind kind, uint32_t gateway_id, uint32_t pop_id,
           uint64_t count, uint64_t bytes, std::string detail);

  // Fills *out with the oldest events (at most batch_max; ages relative to
  // now_ms) and marks them in flight. False when there is nothing to send
  // or a batch is already in flight. pop_id and boot_id are the caller's.
  bool NextBatch(uint64_t now_ms, pb::PopEventReport* out);
  // The DC stored the batch in flight: its events leave the buffer.
  void Acked();
  // It did not (DC down, timeout, error): they stay, and go again first.
  void Failed();

  size_t size() const { return q_.size(); }
  bool in_flight() const { return in_flight_; }
  uint64_t added_total() const { return next_seq_ - 1; }
  uint64_t dropped_total() const { return dropped_total_; }
  uint64_t acked_total() const { return acked_total_; }
  size_t buffer_max() const { return buffer_max_; }

 private:
  struct Item {
    uint64_t t_ms;
    pb::PopEvent ev;  // seq set; age_ms filled when sent
  };
  size_t buffer_max_, batch_max_;
  std::deque<Item> q_;
  uint64_t next_seq_ = 1;
  bool in_flight_ = false;
  uint64_t in_flight_last_seq_ = 0;
  uint64_t dropped_total_ = 0;
  uint64_t acked_total_ = 0;
};

}  // namespace mistore
