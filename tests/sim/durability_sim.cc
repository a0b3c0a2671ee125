// mistore-durability-sim: one region of gateways under churn for simulated
// days, driven by the POP's own GatewayTable (failure detector),
// ChoosePlacement and RepairQueue (issue 6) on a fake clock.
//
// World: `gateways` gateways in failure domains (cabinet = id / 25, power
// feed = id % 13); `chunks` chunks of k+m fragments placed at the start.
// Churn per gateway: reboots (down 1-20 min, under the grace period), long
// outages (1-4 h, over it: the gateway is declared lost, its fragments
// rebuilt, and the surplus deleted when it returns), and permanent losses
// (disk gone; a fresh gateway with a new id joins). Heartbeats every
// heartbeat period; the detector ticks every minute; repairs are paced by
// the RepairQueue's bandwidth budget and finish one tick after they start
// when k fragments are on reachable gateways.
//
// Checks: a chunk may only become unrecoverable (fewer than k fragments left
// on gateways that still have their disks) if more than m of its fragment
// holders died permanently since its last full redundancy ("excused");
// anything else is a bug. At the end churn stops for a day, and every chunk
// must be back at k+m fragments on distinct live gateways, no two sharing a
// cabinet, and no gateway may hold a fragment not recorded on it.
//
// Single-threaded; everything from one seed. Exit status 1 on a violation.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "pop-server/membership.h"
#include "pop-server/repair.h"
#include "shared/core/assert.h"

namespace mistore {
namespace {

constexpr uint64_t kMinute = 60000, kHour = 60 * kMinute, kDay = 24 * kHour;

struct Opts {
  uint64_t seeds = 3, start_seed = 1, days = 30;
  int gateways = 1000, chunks = 5000, k = 8, m = 4;
  double reboots_per_day = 0.2;     // per gateway
  double outages_per_day = 0.01;    // per gateway, longer than the grace period
  double losses_per_day = 0.003;    // per gateway (about one a year)
  uint64_t repair_bytes_per_s = 4u << 20;
  uint64_t fragment_bytes = 128u << 10;
  bool verbose = false;
};

struct Gw {
  uint32_t id;
  bool up = true;
  bool dead = false;  // disk gone for good
  uint64_t back_at = 0;
  uint64_t next_hb = 0;
  std::set<std::pair<uint32_t, uint32_t>> holds;  // (chunk, index)
  std::vector<std::string> domains;
  pb::GatewayHeartbeat hb;
};

struct SimResult {
  uint64_t lost_excused = 0, lost_bug = 0, repairs = 0, fragments_rebuilt = 0;
  uint64_t permanent_losses = 0, declared_lost = 0, returned = 0, surplus_deleted = 0;
  uint64_t end_violations = 0, max_queue = 0;
};

class World {
 public:
  World(const Opts& o, uint64_t seed)
      : o_(o),
        rng_(seed),
        table_(MembershipParams{.suspect_after_ms = 15 * kMinute,
                                .suspect_after_max_ms = 2 * kHour,
                                .grace_ms = 45 * kMinute}),
        repair_(RepairParams{.repair_bytes_per_s = o.repair_bytes_per_s,
                             .queue_chunks_max = size_t(o.chunks) + 1,
                             .in_flight_max = 64,
                             .retry_ms = 5 * kMinute}) {}

  SimResult Run() {
    for (int i = 0; i < o_.gateways; i++) AddGateway(0);
    placement_.assign(size_t(o_.chunks), std::vector<uint32_t>(size_t(n()), 0));
    deaths_since_full_.assign(size_t(o_.chunks), 0);
    for (uint32_t c = 0; c < uint32_t(o_.chunks); c++) {
      auto picks = ChoosePlacement(PlacementCandidates(table_, {}), n(), {}, o_.fragment_bytes, rng_);
      MS_ASSERT(int(picks.size()) == n());
      for (uint32_t i = 0; i < uint32_t(n()); i++) Put(c, i, picks[i]);
    }
    uint64_t end = o_.days * kDay, quiet = end + kDay;
    for (now_ = 0; now_ <= quiet; now_ += kMinute) {
      if (now_ == end) EndChurn();
      Churn(now_ < end);
      Heartbeats();
      for (auto& e : table_.Tick(now_)) OnEvent(e);
      FinishRepairs();
      StartRepairs();
      res_.max_queue = std::max<uint64_t>(res_.max_queue, repair_.stats().queued_chunks);
    }
    CheckEnd();
    return res_;
  }

 private:
  int n() const { return o_.k + o_.m; }
  ChunkKey Key(uint32_t c) const { return ChunkKey{"sim", Bytes{uint8_t(c >> 24), uint8_t(c >> 16), uint8_t(c >> 8), uint8_t(c)}}; }
  uint32_t ChunkOf(const ChunkKey& k) const {
    return uint32_t(k.chunk_id[0]) << 24 | uint32_t(k.chunk_id[1]) << 16 | uint32_t(k.chunk_id[2]) << 8 | k.chunk_id[3];
  }
  double U() { return double(rng_() >> 11) * (1.0 / 9007199254740992.0); }

  void AddGateway(uint64_t now) {
    uint32_t id = next_id_++;
    Gw g;
    g.id = id;
    g.domains = {"cabinet=" + std::to_string(id / 25), "power=" + std::to_string(id % 13)};
    g.next_hb = now + rng_() % (5 * kMinute);
    gws_[id] = g;
    (void)table_.OnConnect(now, id, "sim", 1ull << 40);
    Heartbeat(gws_[id]);
  }

  void Heartbeat(Gw& g) {
    pb::GatewayHeartbeat& hb = g.hb;
    if (hb.failure_domains_size() == 0)
      for (auto& d : g.domains) hb.add_failure_domains(d);
    hb.set_store_bytes_free((1ull << 40) - g.holds.size() * o_.fragment_bytes);
    hb.set_fragment_count(g.holds.size());
    for (auto& e : table_.OnHeartbeat(now_, g.id, "sim", hb)) OnEvent(e);
    g.next_hb = now_ + 5 * kMinute;
  }

  void Put(uint32_t c, uint32_t i, uint32_t gw) {
    placement_[c][i] = gw;
    gws_.at(gw).holds.insert({c, i});
  }

  // Returns gateways whose downtime is over; with failures, draws new ones.
  void Churn(bool failures) {
    double per_min = 1.0 / 1440.0;
    for (auto it = gws_.begin(); it != gws_.end(); ++it) {  // Kill adds at the end: fine
      uint32_t id = it->first;
      Gw& g = it->second;
      if (g.dead) continue;
      if (!g.up) {
        if (now_ >= g.back_at) {
          g.up = true;
          for (auto& e : table_.OnConnect(now_, id, "sim", 1ull << 40)) OnEvent(e);
          Heartbeat(g);
        }
        continue;
      }
      if (!failures) continue;
      double x = U();
      if (x < o_.losses_per_day * per_min) {
        Kill(g);
      } else if (x < (o_.losses_per_day + o_.outages_per_day) * per_min) {
        Down(g, kHour + rng_() % (3 * kHour));
      } else if (x < (o_.losses_per_day + o_.outages_per_day + o_.reboots_per_day) * per_min) {
        Down(g, kMinute + rng_() % (19 * kMinute));
      }
    }
  }

  void Down(Gw& g, uint64_t for_ms) {
    g.up = false;
    g.back_at = now_ + for_ms;
    for (auto& e : table_.OnDisconnect(now_, g.id)) OnEvent(e);
  }

  void Kill(Gw& g) {
    if (g.up) Down(g, UINT64_MAX / 2);
    g.dead = true;
    res_.permanent_losses++;
    std::set<uint32_t> chunks;
    for (auto& [c, i] : g.holds)
      if (placement_[c][i] == g.id) chunks.insert(c);
    for (uint32_t c : chunks) {
      deaths_since_full_[c]++;
      CheckRecoverable(c);
    }
    // g.holds stays: the POP's records still point there until repair.
    AddGateway(now_);  // the subscriber gets a new box
  }

  void EndChurn() {
    for (auto& [id, g] : gws_)
      if (!g.dead && !g.up) g.back_at = now_;
  }

  // Fragments of c whose disks still exist.
  int Surviving(uint32_t c) const {
    int s = 0;
    for (uint32_t i = 0; i < uint32_t(n()); i++) {
      auto& g = gws_.at(placement_[c][i]);
      s += !g.dead && g.holds.count({c, i});
    }
    return s;
  }

  void CheckRecoverable(uint32_t c) {
    if (lost_.count(c) || Surviving(c) >= o_.k) return;
    lost_.insert(c);
    if (deaths_since_full_[c] > o_.m) {
      res_.lost_excused++;
    if (o_.verbose) {
      int live = 0;
      auto miss = Missing(c, &live);
      std::fprintf(stderr, "t=%.2fd chunk %u lost: deaths since full %d, missing %zu, queued %d, in flight %d\n",
                   double(now_) / kDay, c, deaths_since_full_[c], miss.size(),
                   int(repair_.Contains(Key(c))), int(repair_.InFlight(Key(c))));
    }
    } else {
      res_.lost_bug++;
      std::fprintf(stderr, "BUG: chunk %u unrecoverable with only %d permanent losses since full\n",
                   c, deaths_since_full_[c]);
    }
  }

  void OnEvent(const MembershipEvent& e) {
    if (e.kind == MembershipEvent::kLost) {
      res_.declared_lost++;
      auto& g = gws_.at(e.gateway_id);
      for (auto& [c, i] : g.holds)
        if (placement_[c][i] == g.id) Enqueue(c);
    } else if (e.kind == MembershipEvent::kReturned) {
      res_.returned++;
      // Inventory reconciliation: fragments rebuilt elsewhere are surplus.
      auto& g = gws_.at(e.gateway_id);
      for (auto it = g.holds.begin(); it != g.holds.end();) {
        if (placement_[it->first][it->second] != g.id) {
          it = g.holds.erase(it);
          res_.surplus_deleted++;
        } else {
          ++it;
        }
      }
    }
  }

  std::vector<uint32_t> Missing(uint32_t c, int* live) const {
    std::vector<uint32_t> out;
    *live = 0;
    for (uint32_t i = 0; i < uint32_t(n()); i++) {
      uint32_t gw = placement_[c][i];
      if (table_.IsLost(gw) || gws_.at(gw).dead)
        out.push_back(i);
      else
        ++*live;
    }
    return out;
  }

  void Enqueue(uint32_t c) {
    if (lost_.count(c)) return;
    int live = 0;
    auto miss = Missing(c, &live);
    if (miss.empty()) return;
    uint64_t est = o_.fragment_bytes * (miss.size() + size_t(o_.k));
    MS_ASSERT(repair_.Add(now_, Key(c), live, est));
  }

  void StartRepairs() {
    while (auto key = repair_.Next(now_)) running_.push_back(*key);
  }

  void FinishRepairs() {
    auto running = std::move(running_);
    running_.clear();
    for (auto& key : running) {
      uint32_t c = ChunkOf(key);
      int live = 0;
      auto miss = Missing(c, &live);
      int reachable = 0;
      std::set<uint32_t> exclude;
      std::set<std::string> taken;
      for (uint32_t i = 0; i < uint32_t(n()); i++) {
        auto& g = gws_.at(placement_[c][i]);
        exclude.insert(g.id);
        bool missing = std::find(miss.begin(), miss.end(), i) != miss.end();
        if (!missing) taken.insert(g.domains.begin(), g.domains.end());
        reachable += !missing && g.up && !g.dead && g.holds.count({c, i});
      }
      if (lost_.count(c) || miss.empty()) {
        repair_.Done(now_, key, true, 0, 0);
        continue;
      }
      auto picks = ChoosePlacement(PlacementCandidates(table_, exclude), int(miss.size()), taken,
                                   o_.fragment_bytes, rng_);
      if (reachable < o_.k || picks.size() < miss.size()) {
        repair_.Done(now_, key, false, 0, 0);
        continue;
      }
      for (size_t j = 0; j < miss.size(); j++) Put(c, miss[j], picks[j]);
      repair_.Done(now_, key, true, int(miss.size()),
                   o_.fragment_bytes * (miss.size() + size_t(o_.k)));
      res_.repairs++;
      res_.fragments_rebuilt += miss.size();
      int l2 = 0;
      if (Missing(c, &l2).empty()) deaths_since_full_[c] = 0;
      else Enqueue(c);
    }
  }

  void Heartbeats() {
    for (auto& [id, g] : gws_)
      if (g.up && !g.dead && now_ >= g.next_hb) Heartbeat(g);
  }

  void CheckEnd() {
    for (uint32_t c = 0; c < uint32_t(o_.chunks); c++) {
      if (lost_.count(c)) continue;
      std::set<uint32_t> ids;
      std::set<std::string> cabinets;
      bool ok = true;
      for (uint32_t i = 0; i < uint32_t(n()); i++) {
        auto& g = gws_.at(placement_[c][i]);
        ok = ok && g.up && !g.dead && g.holds.count({c, i}) && table_.IsLive(g.id);
        ids.insert(g.id);
        cabinets.insert(g.domains[0]);
      }
      if (!ok || int(ids.size()) != n() || int(cabinets.size()) != n()) {
        res_.end_violations++;
        if (res_.end_violations <= 5)
          std::fprintf(stderr, "END: chunk %u not at full redundancy (ok=%d gws=%zu cabinets=%zu)\n",
                       c, ok, ids.size(), cabinets.size());
      }
    }
    for (auto& [id, g] : gws_)
      for (auto& [c, i] : g.holds)
        if (placement_[c][i] != id && !g.dead) {
          res_.end_violations++;
          if (res_.end_violations <= 5)
            std::fprintf(stderr, "END: gateway %u holds surplus fragment %u.%u\n", id, c, i);
        }
  }

  Opts o_;
  std::mt19937_64 rng_;
  GatewayTable table_;
  RepairQueue repair_;
  uint64_t now_ = 0;
  uint32_t next_id_ = 1;
  std::map<uint32_t, Gw> gws_;
  std::vector<std::vector<uint32_t>> placement_;  // chunk -> index -> gateway
  std::vector<int> deaths_since_full_;
  std::set<uint32_t> lost_;
  std::vector<ChunkKey> running_;
  SimResult res_;
};

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  Opts o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto num = [&](const char* flag) -> const char* {
      if (a == flag && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (auto v = num("--seeds")) o.seeds = std::strtoull(v, nullptr, 10);
    else if (auto v = num("--start-seed")) o.start_seed = std::strtoull(v, nullptr, 10);
    else if (auto v = num("--days")) o.days = std::strtoull(v, nullptr, 10);
    else if (auto v = num("--gateways")) o.gateways = std::atoi(v);
    else if (auto v = num("--chunks")) o.chunks = std::atoi(v);
    else if (auto v = num("--k")) o.k = std::atoi(v);
    else if (auto v = num("--m")) o.m = std::atoi(v);
    else if (auto v = num("--losses-per-day")) o.losses_per_day = std::atof(v);
    else if (auto v = num("--outages-per-day")) o.outages_per_day = std::atof(v);
    else if (auto v = num("--reboots-per-day")) o.reboots_per_day = std::atof(v);
    else if (auto v = num("--repair-bytes-per-s")) o.repair_bytes_per_s = std::strtoull(v, nullptr, 10);
    else if (a == "-v") o.verbose = true;
    else {
      std::fprintf(stderr,
                   "usage: mistore-durability-sim [--seeds N] [--start-seed S] [--days D] "
                   "[--gateways G] [--chunks C] [--k K] [--m M] [--losses-per-day X] "
                   "[--outages-per-day X] [--reboots-per-day X] [--repair-bytes-per-s B]\n");
      return 2;
    }
  }
  if (o.k < 1 || o.m < 0 || o.gateways < 2 * (o.k + o.m) || o.chunks < 1 || o.chunks > (1 << 24)) {
    std::fprintf(stderr, "mistore-durability-sim: bad parameters\n");
    return 2;
  }
  uint64_t clean = 0, bugs = 0;
  for (uint64_t s = o.start_seed; s < o.start_seed + o.seeds; s++) {
    World w(o, s);
    SimResult r = w.Run();
    bool ok = r.lost_bug == 0 && r.end_violations == 0;
    clean += ok;
    bugs += !ok;
    std::printf("seed %" PRIu64 ": %s  days=%" PRIu64 " gateways=%d chunks=%d k=%d m=%d  "
                "permanent_losses=%" PRIu64 " declared_lost=%" PRIu64 " returned=%" PRIu64
                " repairs=%" PRIu64 " fragments_rebuilt=%" PRIu64 " surplus_deleted=%" PRIu64
                " max_queue=%" PRIu64 " chunks_lost_excused=%" PRIu64 " chunks_lost_bug=%" PRIu64
                " end_violations=%" PRIu64 "\n",
                s, ok ? "clean" : "FAILED", o.days, o.gateways, o.chunks, o.k, o.m,
                r.permanent_losses, r.declared_lost, r.returned, r.repairs, r.fragments_rebuilt,
                r.surplus_deleted, r.max_queue, r.lost_excused, r.lost_bug, r.end_violations);
    std::fflush(stdout);
  }
  std::printf("%" PRIu64 " seeds clean, %" PRIu64 " failed, %" PRIu64 " simulated days each\n",
              clean, bugs, o.days);
  return bugs ? 1 : 0;
}
