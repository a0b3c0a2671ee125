// EventLog: the DC's event log for operators (issue 8) — what the POPs
// reported (gateways suspected / lost / returned, repairs started and
// finished, bad fragments, role changes they saw; pb::PopEventReport) and
// what the DC itself saw and published (POPs joining, failing and coming
// back, epochs). One table, dc_events, through the DC's SQL layer
// (sql_driver.h: SQLite or PostgreSQL), so the log survives a DC restart.
//
// Bounded: after each append the oldest rows beyond events_max (knob
// event_log_max) are deleted. An event may carry an origin key (a POP's
// "pop/boot/seq"): appending one already stored does nothing, so a batch
// re-sent after a lost acknowledgement is not logged twice.
//
// Owns its driver (its own connection: data_dir/events.sqlite, or the
// catalog's PostgreSQL database). Time comes in as arguments (wall-clock
// ms); no clock read. Not thread-safe: the DC's loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dc-backend/sql_driver.h"
#include "shared/core/config.h"
#include "shared/core/status.h"

namespace mistore {

struct EventRecord {
  uint64_t seq = 0;        // assigned by the log, grows (newest is largest)
  int64_t t_ms = 0;        // wall clock when it happened
  std::string kind;        // "gateway_lost", "pop_down", ... (docs/operations.md)
  std::string source;      // "dc" or "pop"
  uint32_t pop = 0;        // the POP that reported it, or that it is about
  uint32_t gateway = 0;    // 0: none
  uint32_t about_pop = 0;  // another POP it is about (role changes); 0: none
  std::string region;
  uint64_t count = 0;      // chunks or fragments concerned
  uint64_t bytes = 0;
  std::string detail;
  std::string origin;      // dedup key ("" for none); not returned by Query
};

struct EventQuery {
  int64_t since_ms = 0;            // t_ms >= since_ms
  uint64_t after_seq = 0;          // seq > after_seq
  std::vector<std::string> kinds;  // any of these (empty: every kind)
  uint32_t pop = 0;                // 0: any
  uint32_t gateway = 0;            // 0: any
  size_t limit = 200;              // at most kQueryLimitMax
};

class EventLog {
 public:
  static constexpr size_t kQueryLimitMax = 5000;
  static constexpr size_t kKindsMax = 16;           // kinds in one query
  static constexpr size_t kDetailBytesMax = 512;    // longer details are cut
  static constexpr size_t kAppendBatchMax = 1000;   // events in one Append

  // Creates the table if missing. events_max >= 1.
  static Result<std::unique_ptr<EventLog>> Open(std::unique_ptr<SqlDriver> db, size_t events_max);

  // Appends events (one transaction; at most kAppendBatchMax), then drops
  // the oldest beyond events_max. Returns how many were new (not already
  // stored under their origin); *is_new (if given) says which.
  Result<size_t> Append(const std::vector<EventRecord>& events, std::vector<bool>* is_new = nullptr);
  // Newest first.
  Result<std::vector<EventRecord>> Query(const EventQuery& q);
  // Largest seq stored (0: empty).
  Result<uint64_t> LastSeq();
  Result<uint64_t> Count();
  size_t events_max() const { return events_max_; }
  uint64_t pruned_total() const { return pruned_total_; }

 private:
  EventLog(std::unique_ptr<SqlDriver> db, size_t events_max)
      : db_(std::move(db)), events_max_(events_max) {}
  std::unique_ptr<SqlDriver> db_;
  size_t events_max_;
  uint64_t pruned_total_ = 0;
};

// The log the DC's configuration names: catalog_backend=sqlite ->
// data_dir/events.sqlite; postgres -> a table in catalog_pg_conninfo's
// database. Capped by event_log_max.
Result<std::unique_ptr<EventLog>> OpenConfiguredEventLog(const Config& cfg);

}  // namespace mistore
