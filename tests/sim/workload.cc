#include "tests/sim/workload.h"

#include <map>

#include "tests/sim/checker.h"

namespace mistore::sim {

RunResult RunWorkload(uint64_t seed, const SimConfig& cfg, const WorkloadOptions& opts) {
  SimWorld w(seed, cfg);
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  int started = 0, finished = 0;
  std::map<uint32_t, int> crashes_per_region;
  std::vector<uint32_t> crash_at_ops;
  for (int i = 0; i < opts.gateway_crashes; i++) crash_at_ops.push_back(uint32_t(rng() % std::max(1, opts.ops)));

  auto random_chunks = [&] {
    std::vector<Bytes> chunks(1 + rng() % opts.chunks_max);
    for (auto& c : chunks) {
      c.resize(rng() % (opts.chunk_bytes_max + 1));
      for (auto& b : c) b = uint8_t(rng());
    }
    return chunks;
  };
  auto maybe_crash = [&](int op_index) {
    for (uint32_t at : crash_at_ops) {
      if (int(at) != op_index) continue;
      uint32_t pop = 1 + uint32_t(rng() % cfg.pops);
      if (crashes_per_region[pop] >= cfg.m) continue;
      uint32_t gw = pop * 1000 + 1 + uint32_t(rng() % cfg.gateways_per_pop);
      crashes_per_region[pop]++;
      w.CrashGateway(gw);
    }
  };
  // Per client: newest version seen of each name (read or written), which
  // its monotonic reads send as their floor.
  std::vector<std::map<std::string, uint64_t>> seen(size_t(opts.clients));
  std::function<void(int)> issue = [&](int client) {
    if (started >= opts.ops) return;
    int index = started++;
    maybe_crash(index);
    std::string name = "obj" + std::to_string(rng() % opts.names);
    uint32_t entry = 1 + uint32_t(rng() % cfg.pops);
    auto& mine = seen[size_t(client)];
    if (rng() % 3 == 0) {
      w.Put(entry, name, random_chunks(), [&, client, name](Status st, uint64_t v) {
        if (st.ok()) seen[size_t(client)][name] = std::max(seen[size_t(client)][name], v);
        finished++;
        issue(client);
      }, client);
      return;
    }
    uint64_t version = 0;
    pb::ReadMode mode = pb::READ_MONOTONIC;
    switch (rng() % 4) {
      case 0: version = 1 + rng() % 3; break;
      case 1: mode = pb::READ_ATOMIC; break;
      case 2: mode = pb::READ_LOCKED; break;
      default: break;
    }
    w.Get(entry, name, version, [&, client, name](Status st, uint64_t v, std::vector<Bytes>) {
      if (st.ok()) seen[size_t(client)][name] = std::max(seen[size_t(client)][name], v);
      finished++;
      issue(client);
    }, mode, mine[name], client);
  };
  for (int c = 0; c < opts.clients; c++) issue(c);
  w.RunUntilTrue([&] { return finished == opts.ops; }, 10ull * 60 * 60 * 1000);
  // Let placement settle, then read every name through every POP.
  w.RunUntilTrue([&] { return w.AllPlaced(); }, 60ull * 60 * 1000);
  int reads = 0, reads_done = 0;
  for (int n = 0; n < opts.names; n++)
    for (int p = 1; p <= cfg.pops; p++) {
      reads++;
      w.Get(uint32_t(p), "obj" + std::to_string(n), 0,
            [&](Status, uint64_t, std::vector<Bytes>) { reads_done++; }, pb::READ_ATOMIC);
    }
  w.RunUntilTrue([&] { return reads_done == reads; }, 60ull * 60 * 1000);

  RunResult r;
  r.violations = CheckHistory(w.history(), CheckOptions{});
  if (finished != opts.ops) r.violations.push_back("workload did not finish: " +
                                                   std::to_string(finished) + " of " +
                                                   std::to_string(opts.ops) + " operations");
  if (reads_done != reads) r.violations.push_back("final reads did not finish");
  r.history_hash = w.HistoryHash();
  r.ops_done = finished + reads_done;
  r.simulated_ms = w.now_ms();
  if (!r.violations.empty()) r.trace_tail = w.trace_tail(60);
  return r;
}

}  // namespace mistore::sim
