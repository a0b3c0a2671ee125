// Version retention (issue 7): which versions of one object a volume's
// policy keeps. A pure function: the versions (number, time, size) and the
// current time come in, the versions to keep go out; no clock, no I/O. The
// DC's garbage collection (catalog.h: Catalog::CollectVersions) acts on the
// complement. Plain values; any thread.
//
// Policy (per volume; a volume is a subscriber's namespace):
//   - the newest keep_last versions are kept (the newest one always);
//   - plus, for each of the last daily_days days (UTC days counted back from
//     now), the newest version written that day;
//   - plus, for each of the last weekly_weeks weeks (7-day periods counted
//     back from now), the newest version written that week;
//   - then history_bytes_max bounds the bytes of every kept version except
//     the newest: the oldest kept versions are dropped until the rest fits
//     (0: no bound). The newest version is never dropped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shared/core/status.h"

namespace mistore {

struct RetentionPolicy {
  uint64_t keep_last = 10;
  uint64_t daily_days = 7;
  uint64_t weekly_weeks = 4;
  uint64_t history_bytes_max = 0;  // 0: unbounded
  bool operator==(const RetentionPolicy&) const = default;
};

struct VersionMeta {
  uint64_t version = 0;
  int64_t created_ms = 0;  // wall clock when the DC learned of it
  uint64_t size_bytes = 0;
};

constexpr int64_t kDayMs = 24LL * 3600 * 1000;
constexpr int64_t kWeekMs = 7 * kDayMs;

// Returns the version numbers to keep, ascending. Input in any order;
// duplicate version numbers are an invariant violation.
std::vector<uint64_t> VersionsToKeep(const std::vector<VersionMeta>& versions,
                                     const RetentionPolicy& policy, int64_t now_ms);

// "keep_last=N daily_days=D weekly_weeks=W history_bytes_max=Q" (any subset;
// the rest keep their values in *policy).
Status ParseRetentionPolicy(const std::vector<std::string>& args, RetentionPolicy* policy);
std::string RetentionPolicyJson(const std::string& volume, const RetentionPolicy& p);

}  // namespace mistore
