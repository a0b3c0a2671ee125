// SimWorld: a seeded, deterministic simulator that drives the real PopCore
// state machines (pop-server/pop_core.h) with simulated time, a simulated
// DC catalog, simulated gateways and clients, and message delays. No
// threads, no sockets, no wall clock: one event queue ordered by (time,
// sequence), one RNG seeded by the caller. A seed reproduces a run exactly.
//
// Channels are reliable and FIFO (the paper's assumption): a message on a
// (from, to) channel is never delivered before an earlier one on it.
// Crashed gateways answer nothing (calls to them fail as "not connected").
//
// Single-threaded; owned by the test or the mistore-sim driver.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"

namespace mistore::sim {

struct SimConfig {
  int pops = 3;
  int gateways_per_pop = 8;
  int k = 4;
  int m = 2;
  uint64_t pop_cache_bytes_max = 1ull << 30;
  bool read_primary_first = false;  // PopParams::read_primary_first (issue 11)
  // Message delay ranges (uniform, ms) per kind of link.
  uint64_t pop_pop_delay_min_ms = 1, pop_pop_delay_max_ms = 10;
  uint64_t pop_dc_delay_min_ms = 1, pop_dc_delay_max_ms = 10;
  uint64_t pop_gw_delay_min_ms = 5, pop_gw_delay_max_ms = 80;
  uint64_t job_delay_ms = 1;
  uint64_t tick_ms = 500;
  // Cluster-map changes reach each POP after its own delay in
  // [0, map_delay_max_ms] (0: all at once).
  uint64_t map_delay_max_ms = 0;
  // Each POP's clock runs at its own rate, within +-clock_drift_ppm_max of
  // true time (the paper's leases assume a bounded drift).
  uint64_t clock_drift_ppm_max = 0;
  // Each live POP refreshes its map from the DC every map_refresh_ms (as the
  // daemon does): the reply is PopCore::OnDcContact and OnClusterMap. Its
  // PopParams::map_lease_ms is map_lease_ms. The DC marks a POP it has not
  // heard from for pop_silence_ms down (longer than the lease, as in the
  // daemons), and up again once it hears from it. map_refresh_ms 0: no
  // refreshes, no lease, no silence detection.
  uint64_t map_refresh_ms = 1000;
  uint64_t map_lease_ms = 5000;
  uint64_t pop_silence_ms = 10000;
  // Clients ask HaveChunks naming the object before they upload (as the
  // real client does), skip what the entry POP holds, and so have the POP
  // forward their chunks to the replicas during the upload (pop_forward.cc).
  // false: every chunk is uploaded and moved by the commit's push only (the
  // settings earlier regressions were found in).
  bool client_names_uploads = true;
  uint64_t forward_chunks_in_flight_max = 8;  // PopParams' (0: POPs forward nothing)
  // PopParams::placement_bytes_per_gateway_max, small enough here (the
  // simulated chunks are at most a few KB) that placements wait for room.
  uint64_t placement_bytes_per_gateway_max = 4096;
  // PopParams' (pop_place_early.cc, PinUpload): small values make the POPs
  // delete staged chunks whose commit did not come within a run
  // (--staged-keep-ms).
  uint64_t staged_keep_ms = 24ull * 3600 * 1000;
  uint64_t upload_pin_ms = 600000;
};

// A client-visible operation and its outcome, for the history checker.
struct OpRecord {
  enum Kind { kPut, kGet } kind;
  std::string name;
  uint64_t start_ms, end_ms;
  Status status;
  uint64_t version = 0;     // acknowledged (put) or returned (get)
  uint64_t asked_version = 0;
  Bytes content_digest;     // of the chunks written/read
  int client = 0;
  pb::ReadMode mode = pb::READ_ATOMIC;
  uint64_t min_version = 0;  // monotonic reads: the client's newest seen
};

// A write lock valid at one POP's lock table during [from_ms, to_ms) of
// true (simulated) time: active there (granted, or inherited with its lease
// started) and its lease not run out by that POP's clock. Recorded by
// watching every POP's LockTable after each event it handles.
struct LockInterval {
  Bytes oid;
  uint64_t lock_id = 0;
  uint64_t token = 0;
  uint32_t pop = 0;
  uint64_t from_ms = 0, to_ms = 0;
};

class SimWorld {
 public:
  SimWorld(uint64_t seed, SimConfig cfg);
  ~SimWorld();

  uint64_t now_ms() const { return now_ms_; }
  std::mt19937_64& rng() { return rng_; }

  // Client operations through an entry POP, as if from a gateway of its
  // region; `done` runs when the operation finishes (in simulated time).
  // A put's start_ms in the history is when its commit is sent: uploading
  // chunks beforehand changes nothing a reader can see.
  // dc_tier: a new name is created in the DC tier (PutCommit.dc_tier).
  void Put(uint32_t entry_pop, const std::string& name, std::vector<Bytes> chunks,
           std::function<void(Status, uint64_t version)> done, int client = 0,
           bool dc_tier = false);
  // version > 0 reads exactly that version; else `mode` applies.
  void Get(uint32_t entry_pop, const std::string& name, uint64_t version,
           std::function<void(Status, uint64_t version, std::vector<Bytes>)> done,
           pb::ReadMode mode = pb::READ_ATOMIC, uint64_t min_version = 0, int client = 0);

  // Runs events until none is left before `until_ms` (ticks keep firing).
  void RunUntil(uint64_t until_ms);
  // Runs until `pred` holds or `limit_ms` of simulated time passed.
  bool RunUntilTrue(const std::function<bool()>& pred, uint64_t limit_ms);

  void CrashGateway(uint32_t gateway_id);
  // A POP crashes (its stable storage survives) and restarts: the DC marks
  // it down/up in the cluster map, pushed to every live POP at once.
  void CrashPop(uint32_t pop_id);
  void RestartPop(uint32_t pop_id);
  // The DC (catalog, cluster map, stand-in replica) stops answering; its
  // stable storage is kept. Calls to it fail as "not connected".
  void SetDcDown(bool down);
  // pop_id's disk refuses every write while set (its PopCore sees kIo).
  void SetDiskFailing(uint32_t pop_id, bool failing);
  // pop_id is cut off from the DC: no map refreshes reach it and its calls
  // to the DC (catalog, reports, the stand-in replica) fail as "not
  // connected"; its links with the other POPs and its gateways keep working.
  // Nothing is lost: it did not crash. The DC marks it down after
  // pop_silence_ms and up again at its first refresh after the cut heals.
  void SetPopCutOff(uint32_t pop_id, bool cut_off);
  // pop_id hangs (SIGSTOP): every event addressed to it (requests, replies,
  // finished jobs, maps, gateway news) is held, and no tick or map refresh
  // runs. On resuming it first gets a map refresh's reply (if the DC is
  // reachable) and then the held events, in order; ticks resume.
  void SetPopHung(uint32_t pop_id, bool hung);
  bool PopIsCutOff(uint32_t pop_id) const { return pops_.at(pop_id)->cut_off; }
  bool PopIsHung(uint32_t pop_id) const { return pops_.at(pop_id)->hung; }
  // pop_id is up in the DC's current cluster map.
  bool PopUpInMap(uint32_t pop_id) const;
  // Runs fn at simulated time at_ms (the workload's timed faults).
  void At(uint64_t at_ms, std::function<void()> fn) {
    Schedule(at_ms, std::move(fn));
  }
  bool PopIsUp(uint32_t pop_id) const { return pops_.at(pop_id)->core != nullptr; }
  bool AllPlaced();  // every replica chunk of every POP is placed
  PopCore& pop(uint32_t id) { return *pops_.at(id)->core; }
  MemPopStore& pop_store(uint32_t id) { return *pops_.at(id)->store; }
  size_t fragments_on_gateways() const;

  const std::vector<OpRecord>& history() const { return history_; }
  // Every write lock's validity at every POP so far (open ones end at
  // min(now, their lease's end)).
  std::vector<LockInterval> LockHistory() const;
  // Locks whose lease a POP started on taking an object over (all lives).
  uint64_t locks_inherited() const;
  uint64_t staged_fragments_swept() const;  // staged chunks deleted, over every POP life
  // Digest over every event delivered: equal for equal seeds.
  std::string HistoryHash() const;
  std::vector<std::string> trace_tail(size_t n) const;

 private:
  struct PopNode {
    uint32_t id;
    std::unique_ptr<MemPopStore> store;
    std::unique_ptr<PopCore> core;  // null while crashed
    uint64_t incarnation = 0;       // events of an earlier life are dropped
    int64_t drift_ppm = 0;          // this POP's clock rate error
    bool cut_off = false;           // SetPopCutOff
    bool hung = false;              // SetPopHung
    std::vector<std::function<void()>> held;  // events that reached it hung
    uint64_t dc_heard_ms = 0;  // the DC's last map refresh from it
  };
  // Runs fn (an event addressed to pop_id) now, or holds it while pop_id hangs.
  void AtPop(uint32_t pop_id, std::function<void()> fn);
  // pop_id's map refresh reaches the DC and its reply reaches pop_id.
  void MapRefresh(uint32_t pop_id);
  void CheckSilence();  // the DC marks POPs silent for pop_silence_ms down
  bool LinkedToDc(uint32_t pop_id) const {
    return !dc_down_ && !pops_.at(pop_id)->cut_off;
  }
  std::set<uint32_t> silenced_;  // POPs the DC marked down for silence
  // pop_id's clock: true time scaled by its drift (monotonic).
  uint64_t PopNow(uint32_t pop_id) const;
  bool dc_down_ = false;
  // The true time at which pop_id's clock reaches pop_ms.
  uint64_t TrueTime(uint32_t pop_id, uint64_t pop_ms) const;
  uint64_t PopTime(uint32_t pop_id, uint64_t true_ms) const;
  // Write-lock validity watch (for the checker).
  struct OpenLock {
    uint64_t from_ms;
    uint64_t token;
    uint64_t ends_ms;  // true time its lease runs out at that POP
  };
  void ObserveLocks(uint32_t pop_id);
  void CloseLocks(uint32_t pop_id);  // it crashed
  std::map<std::tuple<uint32_t, Bytes, uint64_t>, OpenLock> open_locks_;
  std::map<uint32_t, uint64_t> lock_changes_seen_;  // pop -> LockTable::changes()
  std::vector<LockInterval> lock_history_;
  uint64_t locks_inherited_dead_ = 0;  // by POP lives that ended
  uint64_t staged_swept_dead_ = 0;     // the same, for staged_fragments_swept
  PopParams ParamsFor(uint32_t pop_id) const;
  void PushMap();     // a new epoch, delivered to every live POP
  void DeliverMap();  // the current map, delivered to every live POP
  // Runs fn now if pop_id is alive in incarnation `inc`.
  bool Alive(uint32_t pop_id, uint64_t inc) const;
  struct Gateway {
    uint32_t id;
    uint32_t pop;
    bool alive = true;
    std::map<std::pair<Bytes, uint32_t>, Bytes> fragments;
  };
  struct PendingCall {  // a call a PopCore made, waiting for its reply
    uint32_t caller_pop;
    Token token;
  };

  void Schedule(uint64_t at_ms, std::function<void()> fn);
  uint64_t Delay(uint64_t lo, uint64_t hi);
  uint64_t ChannelTime(const std::string& channel, uint64_t delay_ms);
  void Trace(const std::string& line);

  void Flush(uint32_t pop_id);
  void DeliverCall(uint32_t from_pop, const OutCall& call, bool via_dc = false);
  void DeliverToDc(uint32_t from_pop, const OutCall& call);
  void DeliverToGateway(uint32_t from_pop, const OutCall& call);
  void CompleteCall(uint32_t pop_id, uint64_t inc, Token token, Result<pb::Envelope> reply, uint64_t at_ms,
                    const std::string& channel);
  pb::Envelope DcHandle(const pb::Envelope& req);

  // Client plumbing: requests from "gateway" gw of the entry POP's region.
  void ClientCall(uint32_t entry_pop, pb::Envelope req,
                  std::function<void(Result<pb::Envelope>)> done);

  SimConfig cfg_;
  std::mt19937_64 rng_;
  uint64_t now_ms_ = 0;
  uint64_t seq_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, std::function<void()>> events_;
  std::map<std::string, uint64_t> channel_last_ms_;
  std::map<uint32_t, std::unique_ptr<PopNode>> pops_;
  std::map<uint32_t, Gateway> gateways_;
  pb::ClusterMap map_;
  // DC catalog.
  std::map<std::pair<std::string, Bytes>, Bytes> names_;
  // In-flight requests: (dest pop, conn id, request id) -> how to answer.
  uint64_t next_request_id_ = 1;
  std::map<std::tuple<uint32_t, uint64_t, uint64_t>, std::function<void(pb::Envelope)>> awaiting_;
  std::vector<OpRecord> history_;
  uint64_t hash_state_ = 1469598103934665603ull;
  std::vector<std::string> trace_;
  bool ticking_ = false;
};

}  // namespace mistore::sim
