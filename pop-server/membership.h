// GatewayTable: a POP's view of its region's gateways — the failure detector
// (issue 6) and the inputs of placement (free space, observed availability,
// failure-domain labels). Pure state machine: time arrives as now_ms
// arguments; every input returns the membership events it caused, and the
// owner (PopCore) acts on them (repair on kLost, inventory on kReturned).
//
// Detector (eventually perfect, design §3): a gateway is suspected when its
// connection drops, or — once it has sent heartbeats — when none arrived for
// its timeout; a suspicion proved false by a heartbeat from a still-connected
// gateway doubles that gateway's timeout (up to suspect_after_max_ms). A
// gateway is declared lost only when nothing was heard from it for grace_ms
// (tolerates reboots). A lost gateway that comes back is "returned": what it
// still holds is reconciled against what was rebuilt meanwhile.
//
// ChoosePlacement picks distinct gateways for fragments, weighted by free
// space and availability, spreading over failure domains (seeded RNG passed
// in). Owned by PopCore; runs on the POP's loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

struct MembershipParams {
  uint64_t suspect_after_ms = 15000;      // first missed-heartbeat timeout
  uint64_t suspect_after_max_ms = 600000;  // it doubles after each false suspicion
  uint64_t grace_ms = 900000;             // silence before a gateway is declared lost
  size_t gateways_max = 100000;           // table bound; the longest-lost are forgotten
  size_t failure_domains_max = 8;         // labels kept per gateway
};

enum class GwState { kAlive, kSuspected, kLost };
const char* GwStateName(GwState s);

struct GatewayRecord {
  uint32_t id = 0;
  std::string subscriber;
  GwState state = GwState::kAlive;
  bool connected = false;
  bool heartbeats = false;         // sent at least one heartbeat since connecting
  bool suspected_silent = false;   // suspicion came from a missed heartbeat
  uint64_t last_heard_ms = 0;      // last heartbeat or (re)connection
  uint64_t timeout_ms = 0;         // current missed-heartbeat timeout
  uint64_t false_suspicions = 0;
  uint64_t store_bytes_max = 0;
  uint64_t store_bytes_free = 0;
  uint32_t load_permille = 0;
  std::vector<std::string> failure_domains;
  Bytes inventory_digest;
  uint64_t fragment_count = 0;
  // Availability observed by this POP: time alive vs not, since first seen.
  uint64_t alive_ms = 0;
  uint64_t down_ms = 0;
  uint64_t state_since_ms = 0;     // accounting mark

  // Share of observed time alive, with a prior of one alive hour so a new
  // gateway is neither favoured nor shunned.
  double availability() const;
};

struct MembershipEvent {
  enum Kind {
    kSuspected,  // connection dropped or heartbeats stopped
    kRecovered,  // heard from again before the grace period ran out
    kLost,       // grace period over: its fragments must be rebuilt elsewhere
    kReturned,   // a lost gateway is back: reconcile its inventory
  } kind;
  uint32_t gateway_id;
  auto operator<=>(const MembershipEvent&) const = default;
};

class GatewayTable {
 public:
  explicit GatewayTable(MembershipParams p) : p_(p) {}

  std::vector<MembershipEvent> OnConnect(uint64_t now_ms, uint32_t id, const std::string& subscriber,
                                         uint64_t store_bytes_free);
  std::vector<MembershipEvent> OnDisconnect(uint64_t now_ms, uint32_t id);
  // A heartbeat on the gateway's connection (implies connected).
  std::vector<MembershipEvent> OnHeartbeat(uint64_t now_ms, uint32_t id, const std::string& subscriber,
                                           const pb::GatewayHeartbeat& hb);
  std::vector<MembershipEvent> Tick(uint64_t now_ms);
  // A gateway known from records but not heard from yet (the POP
  // restarted): suspected from now, lost if silent for the grace period.
  void Expect(uint64_t now_ms, uint32_t id);

  const GatewayRecord* Find(uint32_t id) const;
  // Usable for new fragments: connected and not suspected.
  bool IsLive(uint32_t id) const;
  // Declared lost, or never seen: its recorded fragments count as missing.
  bool IsLost(uint32_t id) const;
  size_t Count(GwState s) const;
  const std::map<uint32_t, GatewayRecord>& all() const { return gws_; }
  const MembershipParams& params() const { return p_; }
  void set_grace_ms(uint64_t g) { p_.grace_ms = g; }

 private:
  GatewayRecord& Touch(uint64_t now_ms, uint32_t id, const std::string& subscriber,
                       std::vector<MembershipEvent>* ev);
  void Account(uint64_t now_ms, GatewayRecord& g);
  void SetState(uint64_t now_ms, GatewayRecord& g, GwState s);
  void Bound();

  MembershipParams p_;
  std::map<uint32_t, GatewayRecord> gws_;
};

// ---- placement ----
struct PlacementCandidate {
  uint32_t id;
  uint64_t store_bytes_free;
  double availability;  // 0..1
  std::vector<std::string> failure_domains;
};

// Picks up to n distinct candidates. Each pick is drawn with weight
// free space x availability^2 among the candidates sharing the fewest
// failure-domain labels with `taken_domains` and earlier picks (counted per
// pick) — so no two picks share a domain while enough domains remain, and
// they spread evenly when too few do. Candidates with less
// than bytes_needed free are used only when nothing else is left. Returns
// fewer than n when there are fewer than n candidates. Deterministic for a
// given rng state.
std::vector<uint32_t> ChoosePlacement(const std::vector<PlacementCandidate>& candidates, int n,
                                      const std::set<std::string>& taken_domains,
                                      uint64_t bytes_needed,
                                      std::mt19937_64& rng);

// Candidates from the table: live gateways not in `exclude`.
std::vector<PlacementCandidate> PlacementCandidates(const GatewayTable& t,
                                                    const std::set<uint32_t>& exclude);

}  // namespace mistore
