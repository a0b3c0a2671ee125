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
  // POP outages: crash at a random op, restart pop_down_ops later.
  std::map<int, int> pop_events;  // op index -> +pop (crash) / -pop (restart)
  for (int i = 0; i < opts.pop_crashes; i++) {
    int at = int(rng() % uint64_t(std::max(1, opts.ops - opts.pop_down_ops)));
    bool overlaps = false;
    for (auto& [k, v] : pop_events) overlaps |= (at >= k - opts.pop_down_ops - 5 && at <= k + opts.pop_down_ops + 5);
    if (overlaps) continue;
    int pop = 1 + int(rng() % uint64_t(cfg.pops));
    pop_events[at] = pop;
    pop_events[at + opts.pop_down_ops] = -pop;
  }
  std::vector<std::pair<uint64_t, uint64_t>> outages;
  // POPs cut off from the DC or hung: on at a random op, healed after a
  // random simulated time (not an op count: a hung POP's clients wait).
  std::map<int, std::vector<bool>> isolation_at;  // op index -> hang?
  for (int i = 0; i < opts.pop_cutoffs + opts.pop_hangs; i++)
    isolation_at[int(rng() % uint64_t(std::max(1, opts.ops - 20)))].push_back(
        i >= opts.pop_cutoffs);
  uint32_t isolated = 0;  // the POP cut off or hung now
  bool isolated_hung = false;
  uint64_t isolated_since_ms = 0;
  bool any_isolation = false;
  auto heal = [&] {
    if (isolated == 0) return;
    if (isolated_hung) {
      w.SetPopHung(isolated, false);
    } else {
      w.SetPopCutOff(isolated, false);
    }
    isolated = 0;
    // The DC marks it up at its next refresh: a role change, 3 s to settle.
    outages.push_back(
        {isolated_since_ms, w.now_ms() + cfg.map_refresh_ms + 3000});
  };
  auto isolation_event = [&](int op_index) {
    auto it = isolation_at.find(op_index);
    if (it == isolation_at.end()) return;
    for (bool hang : it->second) {
      uint32_t pop = 1 + uint32_t(rng() % uint64_t(cfg.pops));
      uint64_t span = opts.isolation_ms_max > opts.isolation_ms_min
                          ? opts.isolation_ms_max - opts.isolation_ms_min
                          : 0;
      uint64_t for_ms = opts.isolation_ms_min + rng() % (span + 1);
      bool all_up = true;
      for (int p = 1; p <= cfg.pops; p++)
        all_up &= w.PopIsUp(uint32_t(p)) && w.PopUpInMap(uint32_t(p));
      if (isolated != 0 || !all_up) continue;
      isolated = pop;
      isolated_hung = hang;
      isolated_since_ms = w.now_ms();
      any_isolation = true;
      if (hang) {
        w.SetPopHung(pop, true);
      } else {
        w.SetPopCutOff(pop, true);
      }
      uint64_t since = isolated_since_ms;
      w.At(w.now_ms() + for_ms, [&, pop, since] {
        if (isolated == pop && isolated_since_ms == since) heal();
      });
    }
  };
  auto pop_event = [&](int op_index) {
    auto it = pop_events.find(op_index);
    if (it == pop_events.end()) return;
    // Operations overlapping a role change (3 s after a crash or a
    // restart) may fail; any other failure is a violation.
    if (it->second > 0) {
      if (isolated != 0)
        return;  // one POP out at a time (its restart is a no-op)
      w.CrashPop(uint32_t(it->second));
    } else {
      w.RestartPop(uint32_t(-it->second));
    }
    outages.push_back({w.now_ms(), w.now_ms() + 3000});
  };
  // DC outages and failing disks: on at a random op, off fault_ops later.
  // Operations running meanwhile (and 3 s after) may fail — not a
  // violation; none may lose an acknowledged write or return wrong bytes.
  struct FaultEvent {
    int fault;  // index into fault_on_ms
    bool on;
    std::function<void()> apply;
  };
  std::map<int, std::vector<FaultEvent>> fault_events;  // op index -> events
  std::vector<uint64_t> fault_on_ms;
  auto add_fault = [&](std::function<void()> on, std::function<void()> off) {
    int at = int(rng() % uint64_t(std::max(1, opts.ops - opts.fault_ops)));
    int id = int(fault_on_ms.size());
    fault_on_ms.push_back(0);
    fault_events[at].push_back({id, true, std::move(on)});
    fault_events[at + opts.fault_ops].push_back({id, false, std::move(off)});
  };
  for (int i = 0; i < opts.dc_outages; i++)
    add_fault([&] { w.SetDcDown(true); }, [&] { w.SetDcDown(false); });
  for (int i = 0; i < opts.disk_faults; i++) {
    uint32_t pop = 1 + uint32_t(rng() % uint64_t(cfg.pops));
    add_fault([&w, pop] { w.SetDiskFailing(pop, true); },
              [&w, pop] { w.SetDiskFailing(pop, false); });
  }
  auto fault_event = [&](int op_index) {
    auto it = fault_events.find(op_index);
    if (it == fault_events.end()) return;
    for (auto& e : it->second) {
      e.apply();
      if (e.on) {
        fault_on_ms[size_t(e.fault)] = w.now_ms();
      } else {
        outages.push_back({fault_on_ms[size_t(e.fault)], w.now_ms() + 3000});
      }
    }
  };
  // opts.clients_avoid_hung_pops: only client 0 may enter at a hung POP (and
  // wait there), so the others keep writing through the other POPs.
  auto live_entry = [&](int client) {
    for (;;) {
      uint32_t p = 1 + uint32_t(rng() % uint64_t(cfg.pops));
      if (!w.PopIsUp(p)) continue;
      if (opts.clients_avoid_hung_pops && client != 0 && w.PopIsHung(p))
        continue;
      return p;
    }
  };
  std::function<void(int)> issue = [&](int client) {
    if (started >= opts.ops) return;
    int index = started++;
    maybe_crash(index);
    pop_event(index);
    fault_event(index);
    isolation_event(index);
    const int name_index = int(rng() % opts.names);
    std::string name = "obj" + std::to_string(name_index);
    uint32_t entry = live_entry(client);
    auto& mine = seen[size_t(client)];
    if (rng() % 3 == 0) {
      w.Put(
          entry, name, random_chunks(),
          [&, client, name](Status st, uint64_t v) {
            if (st.ok()) seen[size_t(client)][name] = std::max(seen[size_t(client)][name], v);
            finished++;
            issue(client);
          },
          client, name_index < opts.dc_tier_names);
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
  heal();
  for (int p = 1; p <= cfg.pops; p++)
    if (!w.PopIsUp(uint32_t(p))) {
      w.RestartPop(uint32_t(p));
      outages.push_back({w.now_ms(), w.now_ms() + 3000});
    }
  // A healed POP is marked up at its next refresh; the map then reaches
  // every POP (up to map_delay_max_ms later).
  if (any_isolation) {
    w.RunUntilTrue(
        [&] {
          for (int p = 1; p <= cfg.pops; p++)
            if (!w.PopUpInMap(uint32_t(p))) return false;
          return true;
        },
        60ull * 1000);
    w.RunUntil(w.now_ms() + cfg.map_delay_max_ms + 1000);
  }
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
  CheckOptions check;
  check.outages = outages;
  r.violations = CheckHistory(w.history(), check);
  for (auto& v : CheckLocks(w.LockHistory())) r.violations.push_back(v);
  // The final reads (every name through every POP, all POPs up) must all
  // succeed: nothing acknowledged may be lost to an outage.
  size_t history_reads = 0;
  for (auto it = w.history().rbegin(); it != w.history().rend() && history_reads < size_t(reads); ++it, ++history_reads) {
    if (!it->status.ok() && it->status.code() != Code::kNotFound)
      r.violations.push_back("final read of " + it->name + " failed: " + it->status.ToString());
  }
  if (finished != opts.ops) r.violations.push_back("workload did not finish: " +
                                                   std::to_string(finished) + " of " +
                                                   std::to_string(opts.ops) + " operations");
  if (reads_done != reads) r.violations.push_back("final reads did not finish");
  r.history_hash = w.HistoryHash();
  r.ops_done = finished + reads_done;
  r.simulated_ms = w.now_ms();
  r.locks_inherited = w.locks_inherited();
  r.staged_swept = w.staged_fragments_swept();
  if (!r.violations.empty()) r.trace_tail = w.trace_tail(60);
  return r;
}

}  // namespace mistore::sim
