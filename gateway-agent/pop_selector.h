// PopSelector: which of its POPs the gateway agent dials, and when. A pure
// state machine (time arrives as an argument; what to do leaves as a
// PopStep), owned by the agent's libuv adapter (agent_main.cc) and driven on
// its loop thread; no sockets, clock or randomness of its own.
//
// The agent is configured with its region's POPs in order of preference
// (`pops`, or the single `pop`). Following design §3 (a failed POP's role
// passes to another; when it recovers it takes its role back):
//  - a round dials the POPs in order and keeps the first that registers;
//  - a POP lost while registered starts a new round after retry_ms (a POP
//    that restarts quickly keeps its gateways);
//  - a round in which every POP failed is followed by a wait that doubles
//    from retry_ms up to retry_max_ms, then another round; registering
//    resets the wait;
//  - while registered with a POP other than the first, the ones before it
//    are probed (a TCP connect, nothing sent) every failback_ms; when one
//    answers, the agent leaves its current POP and starts a round, which
//    registers with the preferred POP again (full inventory on
//    registration, as after any reconnection);
//  - the POPs of the region learned from the cluster map (SetLearned; the
//    agent's POP pushes the map on every epoch change) follow the configured
//    ones as further candidates, so a gateway configured with one POP fails
//    over to the others of its region. The list is replaced only between
//    steps (no dial or probe outstanding), and the POP being dialled or used
//    stays on it until it is left or lost, so indices reported back always
//    name the address they were given for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shared/core/status.h"

namespace mistore {

struct PopSelectorParams {
  std::vector<std::string> addrs;  // in order of preference; not empty
  uint64_t retry_ms = 1000;        // after a lost POP; first wait after a failed round
  uint64_t retry_max_ms = 30000;   // the wait after failed rounds doubles up to this
  uint64_t failback_ms = 60000;    // probe period of preferred POPs while on another
};

struct PopStep {
  enum Kind {
    kNothing,  // nothing to do now: wake up at next_wake_ms()
    kDial,     // dial addrs[index] and say Hello; report with OnDialFailed / OnRegistered
    kProbe,    // connect to addrs[index] and close; report with OnProbeResult
    kLeave,    // close the current POP connection (a preferred POP is back); then OnLost
  };
  Kind kind = kNothing;
  size_t index = 0;
};

// Parses a comma-separated list of HOST:PORT (spaces around items allowed).
// At most kPopsMax; empty items, an empty list and an address listed twice
// are kInvalidArgument.
Result<std::vector<std::string>> ParsePopList(const std::string& list);

class PopSelector {
 public:
  static constexpr size_t kPopsMax = 16;

  PopSelector(PopSelectorParams params, uint64_t now_ms);

  // The next thing to do at now_ms; call again until kNothing.
  PopStep Poll(uint64_t now_ms);
  // When Poll may next return something (UINT64_MAX: only after an event).
  uint64_t next_wake_ms() const;

  void OnDialFailed(uint64_t now_ms, size_t index);  // connect or Hello failed
  void OnRegistered(uint64_t now_ms, size_t index);
  void OnLost(uint64_t now_ms);  // the registered connection closed (or was left)
  void OnProbeResult(uint64_t now_ms, size_t index, bool reachable);
  // The region's POPs from the newest cluster map (in map order; the
  // configured ones and duplicates are skipped; at most kPopsMax in all).
  // Takes effect at the next Poll with nothing outstanding.
  void SetLearned(const std::vector<std::string>& addrs);

  // For logs and metrics.
  bool registered() const { return state_ == State::kRegistered; }
  size_t current() const { return index_; }
  uint64_t wait_ms() const { return backoff_ms_; }
  uint64_t failed_rounds() const { return failed_rounds_; }
  const std::vector<std::string>& addrs() const { return p_.addrs; }
  size_t configured() const { return configured_; }

 private:
  enum class State { kWaiting, kDialing, kRegistered, kLeaving };
  void ApplyLearned();

  PopSelectorParams p_;  // addrs: the configured ones, then the learned ones
  size_t configured_;
  bool learned_pending_ = false;
  std::vector<std::string> learned_;
  State state_ = State::kWaiting;
  size_t index_ = 0;           // the POP dialled or registered with
  bool dial_in_flight_ = false;
  uint64_t wait_until_ms_ = 0;  // kWaiting: start a round then
  uint64_t backoff_ms_;         // the next wait after a failed round
  uint64_t failed_rounds_ = 0;
  // Probing preferred POPs while registered with addrs[index_ > 0].
  uint64_t probe_due_ms_ = 0;
  size_t probe_index_ = 0;
  bool probe_in_flight_ = false;
  bool leave_told_ = false;  // kLeaving: kLeave returned once
};

}  // namespace mistore
