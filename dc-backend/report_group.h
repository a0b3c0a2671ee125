// ReportGroup: the DC's group commit of POP version reports (issue 7).
//
// Each POP version report must be durable in the catalog before the POP gets
// its reply (POPs re-report until acknowledged). One commit per report is
// bound by the disk's fsync (100-160 reports/s); instead mistore-dc collects
// the reports that arrive in one loop turn (Add), commits them together
// (Flush: one Catalog::ReportVersions transaction, one fsync) and only then
// answers each request: ok when the group committed. Nothing is acknowledged
// that is not durable.
//
// A failed group commit: if the status says the whole database is down
// (IsWholeDatabaseFailure: kUnavailable), every request of the group gets that
// error (the POPs re-report). Any other error may come from one report's data
// (a poison report: a constraint violation, a value the catalog rejects); so
// that it cannot fail the other POPs' reports on every re-send, the group's
// reports are then committed once more one at a time, each in its own
// transaction, and each request gets its own commit's status. Bound: a group
// is retried singly at most once (at most 1 + n commits for n reports), and
// the singles stop at the first whole-database failure, which then answers
// the rest without committing them.
//
// Bounded: at most group_max reports wait (knob report_group_max); Add says
// when the group is full so that the caller flushes at once, and refuses a
// report beyond the bound. Pure: no loop, no clock, no catalog. The daemon
// (dc_main.cc) schedules Flush at the end of the loop turn and gives the
// commit function. Loop thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

class ReportGroup {
 public:
  // How a request is answered once its group's fate is known.
  using Done = std::function<void(const Status&)>;
  // Commits the group in one transaction, all or nothing.
  using Commit = std::function<Status(const std::vector<pb::VersionInfo>&)>;

  // group_max: 1 .. Catalog::kReportBatchMax (checked by the caller's knob).
  explicit ReportGroup(size_t group_max);

  // Queues one report with its answer. ResourceExhausted (done not kept)
  // when group_max reports already wait.
  [[nodiscard]] Status Add(pb::VersionInfo info, Done done);
  bool full() const { return infos_.size() >= group_max_; }
  size_t pending() const { return infos_.size(); }
  size_t group_max() const { return group_max_; }

  // Commits everything waiting as one group, then answers each of its
  // requests in arrival order: with the group commit's status, or, after a
  // failed group commit that is not a whole-database failure, with the
  // status of the report's own single commit. Returns Ok when every request
  // was answered ok, else the first error answered. Nothing waiting: no
  // commit, Ok. Reports added from inside a Done go to the next group.
  Status Flush(const Commit& commit);

  // True when `st` says the database itself is down (no commit can succeed
  // now), as opposed to an error that may come from the batch's data. The
  // catalog's drivers give kUnavailable when the database cannot be reached.
  static bool IsWholeDatabaseFailure(const Status& st);

 private:
  // After a failed group commit: each report in its own commit.
  static Status CommitSingly(const Commit& commit, std::vector<pb::VersionInfo>& infos,
                             std::vector<Done>& done);

  size_t group_max_;
  std::vector<pb::VersionInfo> infos_;
  std::vector<Done> done_;
};

}  // namespace mistore
