// mistore-sim: runs the seeded simulator over many seeds and checks every
// history. Exit status 1 on the first violation (its seed and the tail of
// its trace are printed), 2 on a usage error.
//   mistore-sim [--seeds K] [--start-seed S] [--ops N] [--print-history-hash]
//               [--map-delay-ms D] [--drift-ppm P] [--dc-outages N]
//               [--disk-faults N] [--pop-cutoffs N] [--pop-hangs N]
//               [--map-lease-ms L] [--all-clients-at-hung-pops] [--calm]
//               [--unnamed-uploads]
// A failing seed's report ends with the command that reproduces it (the
// options given included).
// By default every fault the simulator knows is on: POP crashes, gateway
// crashes, cluster maps that reach POPs up to 300 ms apart, clocks drifting
// by up to 0.2 %, one DC outage, one failing POP disk, one POP cut off from
// the DC and one hung POP per run (each for 2..25 s; past the DC's 10 s
// silence threshold it is marked down, then up again). POPs refresh their
// map every 1 s with a 5 s map lease (--map-lease-ms 0: off). Cut-offs found
// bug 11 (write locks still valid at the cut-off POP after the DC failed it
// over; fixed: leases end with the map lease) and were off by default until
// its fix (--pop-cutoffs 0: the previous default mix).
// Only one client may wait at a hung POP, the others write elsewhere
// meanwhile (that is how bug 12 was found; fixed); --all-clients-at-hung-pops
// lets every client queue there (the mix before bug 12's fix;
// --avoid-hung-pops, the old name of the default, is still accepted).
// Clients name the object in their HaveChunks before uploading, so entry
// POPs forward the chunks to the replicas during the upload (issue 11,
// pop_forward.cc); --unnamed-uploads: every chunk moves with the commit's
// push only (the mix before forwarding); --forwards-in-flight 0: clients
// name their uploads but POPs do not forward. Replicas place chunks as
// they arrive (pop_place_early.cc); --staged-keep-ms and --upload-pin-ms
// (short) make them delete the staged chunks (and their fragments) whose
// commit did not come within the run (the default 24 h is never reached).
// --calm turns off the map delay, drift, DC outages, failing disks, cut-off
// and hung POPs (the faults of the first simulator version).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shared/core/log.h"
#include "tests/sim/workload.h"

int main(int argc, char** argv) {
  using namespace mistore::sim;
  uint64_t seeds = 100, start = 1;
  WorkloadOptions opts;
  opts.dc_outages = 1;
  opts.disk_faults = 1;
  opts.pop_hangs = 1;
  opts.pop_cutoffs = 1;
  opts.clients_avoid_hung_pops = true;
  SimConfig cfg;
  cfg.pop_cache_bytes_max = 0;  // reads exercise fragments
  cfg.map_delay_max_ms = 300;
  cfg.clock_drift_ppm_max = 2000;
  bool print_hash = false;
  std::string options;  // every option but the seed range, for the reproduce line
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a != "--seeds" && a != "--start-seed" && a != "--ops" && a != "--print-history-hash") {
      options += " " + a;
      if (i + 1 < argc && a != "--avoid-hung-pops" && a != "--all-clients-at-hung-pops" &&
          a != "--calm" && a != "--unnamed-uploads")
        options += " " + std::string(argv[i + 1]);
    }
    auto value = [&]() -> uint64_t {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mistore-sim: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::strtoull(argv[++i], nullptr, 10);
    };
    if (a == "--seeds") seeds = value();
    else if (a == "--start-seed") start = value();
    else if (a == "--ops") opts.ops = int(value());
    else if (a == "--print-history-hash") print_hash = true;
    else if (a == "--map-delay-ms") cfg.map_delay_max_ms = value();
    else if (a == "--drift-ppm") cfg.clock_drift_ppm_max = value();
    else if (a == "--dc-outages") opts.dc_outages = int(value());
    else if (a == "--dc-tier-names")
      opts.dc_tier_names = int(value());
    else if (a == "--disk-faults") opts.disk_faults = int(value());
    else if (a == "--pop-cutoffs")
      opts.pop_cutoffs = int(value());
    else if (a == "--pop-hangs")
      opts.pop_hangs = int(value());
    else if (a == "--avoid-hung-pops")
      opts.clients_avoid_hung_pops = true;
    else if (a == "--all-clients-at-hung-pops")
      opts.clients_avoid_hung_pops = false;
    else if (a == "--map-lease-ms")
      cfg.map_lease_ms = value();
    else if (a == "--forwards-in-flight")
      cfg.forward_chunks_in_flight_max = value();
    else if (a == "--staged-keep-ms")
      cfg.staged_keep_ms = value();
    else if (a == "--upload-pin-ms")
      cfg.upload_pin_ms = value();
    else if (a == "--unnamed-uploads")
      cfg.client_names_uploads = false;
    else if (a == "--calm") {
      cfg.map_delay_max_ms = 0;
      cfg.clock_drift_ppm_max = 0;
      opts.dc_outages = 0;
      opts.disk_faults = 0;
      opts.pop_cutoffs = 0;
      opts.pop_hangs = 0;
    } else {
      std::fprintf(stderr,
                   "usage: mistore-sim [--seeds K] [--start-seed S] [--ops N] "
                   "[--print-history-hash]\n"
                   "                   [--map-delay-ms D] [--drift-ppm P] "
                   "[--dc-outages N]\n"
                   "                   [--disk-faults N] [--pop-cutoffs N] "
                   "[--pop-hangs N]\n"
                   "                   [--map-lease-ms L] [--all-clients-at-hung-pops] "
                   "[--calm] [--unnamed-uploads]\n"
                   "                   [--forwards-in-flight N] [--staged-keep-ms MS] "
                   "[--upload-pin-ms MS]\n"
                   "                   [--dc-tier-names N]\n");
      return 2;
    }
  }
  // MISTORE_SIM_LOG=debug shows the POPs' own log lines (wall-clock stamped).
  const char* sim_log = std::getenv("MISTORE_SIM_LOG");
  mistore::SetLogLevel(sim_log && std::string(sim_log) == "debug" ? mistore::LogLevel::kDebug
                       : sim_log && std::string(sim_log) == "info" ? mistore::LogLevel::kInfo
                                                                    : mistore::LogLevel::kError);
  uint64_t ops_total = 0;
  uint64_t inherited_total = 0;
  uint64_t swept_total = 0;
  for (uint64_t s = start; s < start + seeds; s++) {
    RunResult r = RunWorkload(s, cfg, opts);
    ops_total += uint64_t(r.ops_done);
    inherited_total += r.locks_inherited;
    swept_total += r.staged_swept;
    if (print_hash) std::printf("seed %llu history %s\n", (unsigned long long)s, r.history_hash.c_str());
    if (!r.violations.empty()) {
      std::printf("seed %llu FAILED (%zu violations)\n", (unsigned long long)s, r.violations.size());
      for (auto& v : r.violations) std::printf("  violation: %s\n", v.c_str());
      std::printf("  last events:\n");
      for (auto& t : r.trace_tail) std::printf("    %s\n", t.c_str());
      std::printf("reproduce: mistore-sim --seeds 1 --start-seed %llu --ops %d%s\n",
                  (unsigned long long)s, opts.ops, options.c_str());
      return 1;
    }
  }
  std::printf("%llu seeds clean (%llu..%llu), %llu operations, %llu locks inherited by new acting primaries, "
              "%llu staged chunks deleted\n",
              (unsigned long long)seeds, (unsigned long long)start, (unsigned long long)(start + seeds - 1),
              (unsigned long long)ops_total, (unsigned long long)inherited_total,
              (unsigned long long)swept_total);
  return 0;
}
