// AgentCore: the gateway agent's side of region durability (issue 6) as a
// state machine. It serves the POP's fragment requests (StoreFragment,
// FetchFragment, GetInventory, DeleteFragments) from the FragmentStore, sends
// heartbeats every heartbeat_ms, a full GatewayInventory on every
// (re)registration, FragmentsBad when a fragment fails its check, and runs
// the scrubber under the background I/O limit.
//
// No sockets, clock or timers of its own: inputs are OnRegistered / OnPopLost
// / OnPopRequest / OnCallDone / OnTick with now_ms; outputs are an Outbox of
// calls to the POP (each with a token) and replies (each tagged with the
// connection generation it belongs to), plus NextWakeMs() for the adapter's
// timer. Like PopCore and its PopStore, it calls its FragmentStore
// synchronously (small files). The relay of the subscriber's requests is not
// here (agent_main.cc), but the results kept for it are: commit results the
// POP delivers after the agent (or its link) went away mid-commit, and those
// whose client went away before the relay's answer came (HeldReply /
// HoldReply; issue 6, paper section VII) — a client's retry of the same
// write id is answered from them.
//
// Ownership: the adapter (agent_main.cc) owns the AgentCore; the AgentCore
// borrows the FragmentStore. Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "gateway-agent/background_io.h"
#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"
#include "shared/store/fragment_store.h"

namespace mistore {

struct AgentParams {
  uint64_t heartbeat_ms = 3000;
  uint64_t scrub_period_ms = 7ull * 24 * 3600 * 1000;
  uint64_t background_io_bytes_per_s = 1 << 20;
  uint64_t background_io_burst_bytes = 1 << 20;
  std::vector<std::string> failure_domains;  // "key=value"
  size_t bad_report_max = 1000;              // FragmentRefs per FragmentsBad
  size_t background_fetch_queue_max = 64;    // queued repair reads
  size_t scrub_reads_per_tick_max = 16;      // keeps the loop responsive
  std::string subscriber;                    // the owner: others' kept results are ignored
  size_t held_results_max = 256;             // commit results kept for retries
  uint64_t held_results_ms = 3600000;        // how long each is kept
};

// "cabinet=c12,power=p3" -> {"cabinet=c12", "power=p3"}; every item must be
// key=value with non-empty key and value, no spaces.
Result<std::vector<std::string>> ParseFailureDomains(const std::string& list);

struct AgentOutbox {
  struct Call {
    uint64_t token;
    pb::Envelope msg;
  };
  struct Reply {
    uint64_t conn;  // the generation passed with the request
    uint64_t request_id;
    Status error;      // not ok: reply with this error
    pb::Envelope msg;  // else this body
  };
  std::vector<Call> calls;
  std::vector<Reply> replies;
};

struct AgentStats {
  uint64_t fragments_stored = 0, fragment_bytes_stored = 0;
  uint64_t fragments_served = 0, fragment_bytes_served = 0;
  uint64_t fragment_check_failures = 0;  // on read (FetchFragment)
  uint64_t fragments_deleted = 0;
  uint64_t heartbeats_sent = 0, heartbeats_acked = 0;
  uint64_t inventories_sent = 0;
  uint64_t bad_reported = 0;
  uint64_t scrub_fragments = 0, scrub_bytes = 0, scrub_bad = 0;
  uint64_t scrub_late_passes = 0;
  uint64_t background_fetches_refused = 0;
  uint64_t results_received = 0;  // kept commit results the POP delivered
  uint64_t results_answered = 0;  // client retries answered from kept results
  uint64_t maps_applied = 0;      // cluster maps newer than the one held
  uint64_t maps_stale = 0;        // older than the one held: ignored
};

// A POP of the agent's region as the newest cluster map lists it.
struct RegionPop {
  uint32_t pop_id = 0;
  std::string addr;
  bool up = false;
  bool operator==(const RegionPop&) const = default;
};

class AgentCore {
 public:
  AgentCore(AgentParams p, FragmentStore* store, uint64_t now_ms);

  // Registered with the POP `pop_id` on connection generation `conn`: sends
  // the full inventory and a heartbeat.
  void OnRegistered(uint64_t now_ms, uint64_t conn, uint32_t pop_id = 0);
  // Cluster map (issue 7), from the HelloReply at registration or pushed by
  // the POP (a ClusterMap request, answered here) on every epoch change.
  // The newest epoch is kept and never goes back: an older map is ignored
  // and counted (maps_stale), one of the same epoch changes nothing. Of a
  // newer one the POPs of via_pop's region are kept (every POP it lists
  // when via_pop is not in it; at most kRegionPopsMax). Returns whether it
  // was applied.
  static constexpr size_t kRegionPopsMax = 16;
  bool OnClusterMap(uint64_t now_ms, const pb::ClusterMap& map, uint32_t via_pop);
  uint64_t map_epoch() const { return map_epoch_; }
  const std::vector<RegionPop>& region_pops() const { return region_pops_; }
  // Addresses of the region's POPs that are up, in map order: candidates
  // for PopSelector::SetLearned.
  std::vector<std::string> UpPopAddrs() const;
  void OnPopLost(uint64_t now_ms);
  void OnPopRequest(uint64_t now_ms, uint64_t conn, const pb::Envelope& req);
  void OnCallDone(uint64_t now_ms, uint64_t token, const Result<pb::Envelope>& reply);
  // Heartbeats, scrub reads, queued background fetches, bad reports.
  void OnTick(uint64_t now_ms);
  // When OnTick next has work (>= now_ms).
  uint64_t NextWakeMs(uint64_t now_ms) const;

  AgentOutbox TakeOutbox();
  bool IsPopRequest(const pb::Envelope& req) const;

  // Kept commit results (issue 6): the reply to write_id if one is kept
  // (counts as a retry answered), and keeping one whose client went away.
  const pb::PutReply* HeldReply(uint64_t now_ms, const std::string& write_id);
  void HoldReply(uint64_t now_ms, const std::string& write_id, const pb::PutReply& reply);
  size_t held_replies() const { return held_.size(); }

  const AgentStats& stats() const { return stats_; }
  uint64_t scrub_passes_total() const { return scrub_.passes_total(); }
  uint64_t background_bytes_total() const { return bucket_.taken_total(); }
  size_t background_fetches_queued() const { return bg_fetches_.size(); }
  uint32_t load_permille() const { return load_permille_; }
  bool registered() const { return registered_; }

 private:
  enum class CallKind { kHeartbeat, kInventory, kBad };
  struct Pending {
    CallKind kind;
    std::vector<std::string> names;  // kBad / kInventory: the bad names sent
  };
  struct BgFetch {
    uint64_t conn, request_id;
    Bytes chunk_id;
    uint32_t index;
  };

  void Call(CallKind kind, pb::Envelope msg, std::vector<std::string> names = {});
  void ReplyOk(uint64_t conn, uint64_t id, pb::Envelope msg);
  void ReplyError(uint64_t conn, uint64_t id, Status st);
  void SendHeartbeat(uint64_t now_ms);
  void SendInventory();
  void FillInventory(pb::GatewayInventory* inv, std::vector<std::string>* bad_taken);
  void MaybeReportBad();
  void ScrubSome(uint64_t now_ms);
  void ServeBackgroundFetches(uint64_t now_ms);
  void ServeFetch(uint64_t conn, uint64_t id, const Bytes& chunk_id, uint32_t index);
  void NoteUnhandled(CallKind kind, const Status& st);

  AgentParams p_;
  FragmentStore* store_;
  TokenBucket bucket_;
  ScrubPacer scrub_;
  std::string scrub_cursor_;  // last name scrubbed in this pass
  std::deque<BgFetch> bg_fetches_;

  bool registered_ = false;
  uint64_t conn_ = 0;
  uint64_t next_heartbeat_ms_ = 0;
  bool heartbeat_in_flight_ = false;
  bool bad_in_flight_ = false;
  uint64_t load_window_start_ms_;
  uint64_t load_window_bytes_at_start_ = 0;
  uint32_t load_permille_ = 0;
  std::map<CallKind, bool> unhandled_logged_;
  struct Held {
    pb::PutReply reply;
    uint64_t expires_ms;
    uint64_t seq;
  };
  std::map<std::string, Held> held_;          // write id -> kept reply
  std::map<uint64_t, std::string> held_order_;  // seq -> write id, oldest first
  uint64_t held_seq_ = 0;

  uint32_t pop_id_ = 0;  // the POP registered with (0: unknown)
  uint64_t map_epoch_ = 0;
  std::vector<RegionPop> region_pops_;

  uint64_t next_token_ = 1;
  std::map<uint64_t, Pending> pending_;
  AgentOutbox out_;
  AgentStats stats_;
};

}  // namespace mistore
