#include "tests/sim/checker.h"

#include <algorithm>
#include <map>

namespace mistore::sim {

namespace {
std::string Describe(const OpRecord& op) {
  const char* mode = op.asked_version ? "version" :
                     op.mode == pb::READ_LOCKED ? "locked" :
                     op.mode == pb::READ_ATOMIC ? "atomic" : "monotonic";
  return std::string(op.kind == OpRecord::kPut ? "put" : "get") + " of " + op.name + " [" +
         std::to_string(op.start_ms) + "," + std::to_string(op.end_ms) + "] ms" +
         (op.kind == OpRecord::kGet ? std::string(" ") + mode +
                                          (op.asked_version ? " v" + std::to_string(op.asked_version) : "") +
                                          " by client " + std::to_string(op.client)
                                    : "");
}

bool Linearizable(const OpRecord& op) {
  return op.kind == OpRecord::kGet && op.status.ok() && op.asked_version == 0 &&
         (op.mode == pb::READ_ATOMIC || op.mode == pb::READ_LOCKED);
}
}  // namespace

std::vector<std::string> CheckHistory(const std::vector<OpRecord>& history, CheckOptions opts) {
  std::vector<std::string> bad;
  std::map<std::string, std::map<uint64_t, const OpRecord*>> acked;  // name -> version -> put
  for (auto& op : history) {
    if (op.kind != OpRecord::kPut) continue;
    if (!op.status.ok()) {
      bool in_outage = false;
      for (auto& [from, to] : opts.outages)
        if (op.start_ms <= to && op.end_ms >= from) in_outage = true;
      if (opts.require_writes_succeed && !in_outage)
        bad.push_back(Describe(op) + " failed: " + op.status.ToString());
      continue;
    }
    auto& versions = acked[op.name];
    if (versions.count(op.version)) {
      bad.push_back(Describe(op) + ": version " + std::to_string(op.version) +
                    " was acknowledged to another put too");
      continue;
    }
    versions[op.version] = &op;
  }
  for (auto& [name, versions] : acked)
    for (auto& [v1, w1] : versions)
      for (auto& [v2, w2] : versions)
        if (w1->end_ms < w2->start_ms && v1 >= v2)
          bad.push_back(Describe(*w2) + " got version " + std::to_string(v2) + ", not newer than " +
                        std::to_string(v1) + " of an earlier " + Describe(*w1));

  for (auto& op : history) {
    if (op.kind != OpRecord::kGet) continue;
    auto& versions = acked[op.name];
    uint64_t newest_before = 0;
    for (auto& [v, put] : versions)
      if (put->end_ms < op.start_ms) newest_before = std::max(newest_before, v);
    bool asked_acked = op.asked_version && versions.count(op.asked_version) &&
                       versions[op.asked_version]->end_ms < op.start_ms;
    bool in_outage = false;
    for (auto& [from, to] : opts.outages)
      if (op.start_ms <= to && op.end_ms >= from) in_outage = true;
    if (!op.status.ok()) {
      if (opts.require_reads_succeed && !in_outage &&
          (op.asked_version ? asked_acked : newest_before > 0))
        bad.push_back(Describe(op) + " failed: " + op.status.ToString());
      continue;
    }
    auto it = versions.find(op.version);
    if (it != versions.end()) {
      if (it->second->content_digest != op.content_digest)
        bad.push_back(Describe(op) + " returned bytes that differ from version " +
                      std::to_string(op.version) + " as put");
      if (it->second->start_ms > op.end_ms)
        bad.push_back(Describe(op) + " returned version " + std::to_string(op.version) +
                      " of a put that started after it ended");
    }
    if (op.asked_version) {
      if (op.version != op.asked_version)
        bad.push_back(Describe(op) + " returned version " + std::to_string(op.version));
      continue;
    }
    if (op.mode == pb::READ_MONOTONIC) {
      if (op.version < op.min_version)
        bad.push_back(Describe(op) + " returned version " + std::to_string(op.version) +
                      " older than the client's newest seen " + std::to_string(op.min_version));
      continue;
    }
    if (op.version < newest_before)
      bad.push_back(Describe(op) + " returned version " + std::to_string(op.version) +
                    " older than acknowledged version " + std::to_string(newest_before));
  }
  // Real-time order among linearizable reads of one name.
  std::map<std::string, std::vector<const OpRecord*>> reads;
  for (auto& op : history)
    if (Linearizable(op)) reads[op.name].push_back(&op);
  for (auto& [name, rs] : reads)
    for (auto* a : rs)
      for (auto* b : rs)
        if (a->end_ms < b->start_ms && b->version < a->version)
          bad.push_back(Describe(*b) + " returned version " + std::to_string(b->version) +
                        " after an earlier " + Describe(*a) + " returned " + std::to_string(a->version));
  return bad;
}

std::vector<std::string> CheckLocks(std::vector<LockInterval> locks) {
  std::vector<std::string> bad;
  auto describe = [](const LockInterval& l) {
    return "lock " + std::to_string(l.lock_id) + " (token " + std::to_string(l.token) + ") at pop" +
           std::to_string(l.pop) + " valid [" + std::to_string(l.from_ms) + "," + std::to_string(l.to_ms) +
           ") ms";
  };
  std::sort(locks.begin(), locks.end(), [](const LockInterval& a, const LockInterval& b) {
    return std::tie(a.oid, a.from_ms, a.lock_id) < std::tie(b.oid, b.from_ms, b.lock_id);
  });
  for (size_t i = 0; i < locks.size(); i++) {
    const LockInterval& a = locks[i];
    if (a.from_ms >= a.to_ms) continue;  // never valid (e.g. expired before it was seen)
    for (size_t j = i + 1; j < locks.size() && locks[j].oid == a.oid && locks[j].from_ms < a.to_ms; j++) {
      const LockInterval& b = locks[j];
      if (b.lock_id != a.lock_id && b.from_ms < b.to_ms)
        bad.push_back("two write locks of one object valid at once: " + describe(a) + " and " + describe(b));
    }
  }
  // Tokens in order of first validity, per object.
  std::map<std::pair<Bytes, uint64_t>, const LockInterval*> first;  // (oid, lock id) -> earliest
  for (auto& l : locks) first.try_emplace({l.oid, l.lock_id}, &l);  // sorted: first is earliest
  std::map<Bytes, std::vector<const LockInterval*>> by_oid;
  for (auto& [key, l] : first) by_oid[key.first].push_back(l);
  for (auto& [oid, ls] : by_oid) {
    std::sort(ls.begin(), ls.end(), [](auto* a, auto* b) { return a->from_ms < b->from_ms; });
    for (size_t i = 1; i < ls.size(); i++)
      if (ls[i]->token <= ls[i - 1]->token)
        bad.push_back("fencing token went back: " + describe(*ls[i]) + " after " + describe(*ls[i - 1]));
  }
  return bad;
}

}  // namespace mistore::sim
