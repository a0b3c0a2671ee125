#include "tests/sim/checker.h"

#include <map>

namespace mistore::sim {

std::vector<std::string> CheckHistory(const std::vector<OpRecord>& history, CheckOptions opts) {
  std::vector<std::string> bad;
  // name -> version -> the acknowledged put.
  std::map<std::string, std::map<uint64_t, const OpRecord*>> acked;
  for (auto& op : history) {
    if (op.kind != OpRecord::kPut || !op.status.ok()) continue;
    auto& versions = acked[op.name];
    if (versions.count(op.version)) {
      bad.push_back("name " + op.name + ": two acknowledged puts got version " +
                    std::to_string(op.version));
      continue;
    }
    versions[op.version] = &op;
  }
  for (auto& op : history) {
    if (op.kind != OpRecord::kGet) continue;
    std::string what = "get of " + op.name + " (asked v" + std::to_string(op.asked_version) +
                       ", started " + std::to_string(op.start_ms) + " ms)";
    uint64_t newest_before = 0;
    for (auto& [v, put] : acked[op.name])
      if (put->end_ms < op.start_ms) newest_before = std::max(newest_before, v);
    bool asked_acked = op.asked_version && acked[op.name].count(op.asked_version) &&
                       acked[op.name][op.asked_version]->end_ms < op.start_ms;
    if (!op.status.ok()) {
      if (opts.require_reads_succeed && (op.asked_version ? asked_acked : newest_before > 0))
        bad.push_back(what + " failed: " + op.status.ToString());
      continue;
    }
    if (op.asked_version && op.version != op.asked_version)
      bad.push_back(what + " returned version " + std::to_string(op.version));
    if (!op.asked_version && op.version < newest_before)
      bad.push_back(what + " returned version " + std::to_string(op.version) +
                    " older than acknowledged version " + std::to_string(newest_before));
    auto it = acked[op.name].find(op.version);
    if (it != acked[op.name].end() && it->second->content_digest != op.content_digest)
      bad.push_back(what + " returned bytes that differ from version " +
                    std::to_string(op.version) + " as put");
  }
  return bad;
}

}  // namespace mistore::sim
