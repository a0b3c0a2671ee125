#include "dc-backend/retention.h"

#include <algorithm>
#include <map>
#include <set>

#include "shared/core/assert.h"

namespace mistore {

std::vector<uint64_t> VersionsToKeep(const std::vector<VersionMeta>& versions,
                                     const RetentionPolicy& policy, int64_t now_ms) {
  if (versions.empty()) return {};
  std::vector<VersionMeta> v = versions;  // newest first
  std::sort(v.begin(), v.end(),
            [](const VersionMeta& a, const VersionMeta& b) { return a.version > b.version; });
  for (size_t i = 1; i < v.size(); i++) MS_ASSERT(v[i].version != v[i - 1].version);

  std::set<uint64_t> keep;
  keep.insert(v[0].version);
  for (size_t i = 0; i < v.size() && i < policy.keep_last; i++) keep.insert(v[i].version);
  // Newest version in each bucket: bucket b covers (now - (b+1)*len, now - b*len].
  auto per_bucket = [&](int64_t len_ms, uint64_t buckets) {
    std::set<uint64_t> seen;
    for (const auto& x : v) {  // newest first: the first in a bucket wins
      if (x.created_ms > now_ms) continue;  // from the future: not in any bucket
      uint64_t b = uint64_t((now_ms - x.created_ms) / len_ms);
      if (b >= buckets || !seen.insert(b).second) continue;
      keep.insert(x.version);
    }
  };
  per_bucket(kDayMs, policy.daily_days);
  per_bucket(kWeekMs, policy.weekly_weeks);

  if (policy.history_bytes_max > 0) {
    uint64_t history = 0;
    for (const auto& x : v)
      if (x.version != v[0].version && keep.count(x.version)) history += x.size_bytes;
    for (auto it = v.rbegin(); it != v.rend() && history > policy.history_bytes_max; ++it) {
      if (it->version == v[0].version || !keep.count(it->version)) continue;
      keep.erase(it->version);
      history -= it->size_bytes;
    }
  }
  return std::vector<uint64_t>(keep.begin(), keep.end());
}

Status ParseRetentionPolicy(const std::vector<std::string>& args, RetentionPolicy* policy) {
  for (const auto& a : args) {
    std::string s = a;
    if (s.rfind("--", 0) == 0) s = s.substr(2);
    auto eq = s.find('=');
    if (eq == std::string::npos) return InvalidArgument("expected name=value, got " + a);
    std::string name = s.substr(0, eq), value = s.substr(eq + 1);
    std::replace(name.begin(), name.end(), '-', '_');
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
      return InvalidArgument("not a non-negative integer: " + a);
    uint64_t n = std::stoull(value);
    if (name == "keep_last") {
      if (n == 0) return InvalidArgument("keep_last must be at least 1");
      policy->keep_last = n;
    } else if (name == "daily_days") {
      policy->daily_days = n;
    } else if (name == "weekly_weeks") {
      policy->weekly_weeks = n;
    } else if (name == "history_bytes_max") {
      policy->history_bytes_max = n;
    } else {
      return InvalidArgument("unknown retention setting " + name +
                             " (keep_last, daily_days, weekly_weeks, history_bytes_max)");
    }
  }
  return Status::Ok();
}

std::string RetentionPolicyJson(const std::string& volume, const RetentionPolicy& p) {
  std::string v;
  for (char c : volume) {
    if (c == '"' || c == '\\') v += '\\';
    if (uint8_t(c) >= 0x20) v += c;
  }
  return "{\"volume\":\"" + v + "\",\"keep_last\":" + std::to_string(p.keep_last) +
         ",\"daily_days\":" + std::to_string(p.daily_days) +
         ",\"weekly_weeks\":" + std::to_string(p.weekly_weeks) +
         ",\"history_bytes_max\":" + std::to_string(p.history_bytes_max) + "}";
}

}  // namespace mistore
