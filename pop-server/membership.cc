#include "pop-server/membership.h"

#include <algorithm>

#include "shared/core/status.h"

namespace mistore {

const char* GwStateName(GwState s) {
  switch (s) {
    case GwState::kAlive: return "alive";
    case GwState::kSuspected: return "suspected";
    case GwState::kLost: return "lost";
  }
  return "?";
}

double GatewayRecord::availability() const {
  constexpr double kPriorMs = 3600e3;
  return (double(alive_ms) + kPriorMs) / (double(alive_ms) + double(down_ms) + kPriorMs);
}

void GatewayTable::Account(uint64_t now_ms, GatewayRecord& g) {
  uint64_t dt = now_ms > g.state_since_ms ? now_ms - g.state_since_ms : 0;
  if (g.state == GwState::kAlive)
    g.alive_ms += dt;
  else
    g.down_ms += dt;
  g.state_since_ms = std::max(now_ms, g.state_since_ms);
}

void GatewayTable::SetState(uint64_t now_ms, GatewayRecord& g, GwState s) {
  Account(now_ms, g);
  g.state = s;
}

GatewayRecord& GatewayTable::Touch(uint64_t now_ms, uint32_t id, const std::string& subscriber,
                                   std::vector<MembershipEvent>* ev) {
  auto [it, fresh] = gws_.try_emplace(id);
  GatewayRecord& g = it->second;
  if (fresh) {
    g.id = id;
    g.timeout_ms = p_.suspect_after_ms;
    g.state_since_ms = now_ms;
    g.state = GwState::kAlive;
  } else if (g.state == GwState::kLost) {
    SetState(now_ms, g, GwState::kAlive);
    ev->push_back({MembershipEvent::kReturned, id});
  } else if (g.state == GwState::kSuspected) {
    // A suspicion is false when the gateway was still connected: only its
    // heartbeats were late. Be more patient with it from now on.
    if (g.suspected_silent && g.connected) {
      g.false_suspicions++;
      g.timeout_ms = std::min(p_.suspect_after_max_ms, g.timeout_ms * 2);
    }
    SetState(now_ms, g, GwState::kAlive);
    ev->push_back({MembershipEvent::kRecovered, id});
  }
  g.suspected_silent = false;
  if (!subscriber.empty()) g.subscriber = subscriber;
  g.last_heard_ms = now_ms;
  if (fresh) Bound();
  return gws_.at(id);
}

std::vector<MembershipEvent> GatewayTable::OnConnect(uint64_t now_ms, uint32_t id,
                                                     const std::string& subscriber,
                                                     uint64_t store_bytes_free) {
  std::vector<MembershipEvent> ev;
  auto it = gws_.find(id);
  // A new connection is not evidence against a silent suspicion's falseness.
  if (it != gws_.end()) it->second.connected = false;
  GatewayRecord& g = Touch(now_ms, id, subscriber, &ev);
  g.connected = true;
  g.heartbeats = false;
  g.store_bytes_free = store_bytes_free;
  return ev;
}

std::vector<MembershipEvent> GatewayTable::OnDisconnect(uint64_t now_ms, uint32_t id) {
  std::vector<MembershipEvent> ev;
  auto it = gws_.find(id);
  if (it == gws_.end()) return ev;
  GatewayRecord& g = it->second;
  g.connected = false;
  g.heartbeats = false;
  g.last_heard_ms = std::max(g.last_heard_ms, now_ms);  // connected until now
  if (g.state == GwState::kAlive) {
    SetState(now_ms, g, GwState::kSuspected);
    g.suspected_silent = false;
    ev.push_back({MembershipEvent::kSuspected, id});
  }
  return ev;
}

std::vector<MembershipEvent> GatewayTable::OnHeartbeat(uint64_t now_ms, uint32_t id,
                                                       const std::string& subscriber,
                                                       const pb::GatewayHeartbeat& hb) {
  std::vector<MembershipEvent> ev;
  GatewayRecord& g = Touch(now_ms, id, subscriber, &ev);
  g.connected = true;
  g.heartbeats = true;
  g.store_bytes_max = hb.store_bytes_max();
  g.store_bytes_free = hb.store_bytes_free();
  g.load_permille = hb.load_permille();
  g.inventory_digest = Bytes(hb.inventory_digest().begin(), hb.inventory_digest().end());
  g.fragment_count = hb.fragment_count();
  g.failure_domains.clear();
  for (auto& d : hb.failure_domains()) {
    if (g.failure_domains.size() >= p_.failure_domains_max) break;
    if (d.size() <= 128) g.failure_domains.push_back(d);
  }
  return ev;
}

std::vector<MembershipEvent> GatewayTable::Tick(uint64_t now_ms) {
  std::vector<MembershipEvent> ev;
  for (auto& [id, g] : gws_) {
    uint64_t silent = now_ms > g.last_heard_ms ? now_ms - g.last_heard_ms : 0;
    if (g.state == GwState::kAlive && g.heartbeats && silent > g.timeout_ms) {
      SetState(now_ms, g, GwState::kSuspected);
      g.suspected_silent = true;
      ev.push_back({MembershipEvent::kSuspected, id});
    }
    if (g.state == GwState::kSuspected && silent >= p_.grace_ms) {
      SetState(now_ms, g, GwState::kLost);
      ev.push_back({MembershipEvent::kLost, id});
    }
    Account(now_ms, g);
  }
  return ev;
}

void GatewayTable::Expect(uint64_t now_ms, uint32_t id) {
  if (gws_.count(id)) return;
  GatewayRecord& g = gws_[id];
  g.id = id;
  g.timeout_ms = p_.suspect_after_ms;
  g.state = GwState::kSuspected;
  g.last_heard_ms = now_ms;
  g.state_since_ms = now_ms;
  Bound();
}

const GatewayRecord* GatewayTable::Find(uint32_t id) const {
  auto it = gws_.find(id);
  return it == gws_.end() ? nullptr : &it->second;
}

bool GatewayTable::IsLive(uint32_t id) const {
  auto g = Find(id);
  return g && g->connected && g->state == GwState::kAlive;
}

bool GatewayTable::IsLost(uint32_t id) const {
  auto g = Find(id);
  return !g || g->state == GwState::kLost;
}

size_t GatewayTable::Count(GwState s) const {
  size_t n = 0;
  for (auto& [id, g] : gws_) n += g.state == s;
  return n;
}

void GatewayTable::Bound() {
  while (gws_.size() > p_.gateways_max) {
    auto oldest = gws_.end();
    for (auto it = gws_.begin(); it != gws_.end(); ++it)
      if (it->second.state == GwState::kLost &&
          (oldest == gws_.end() || it->second.last_heard_ms < oldest->second.last_heard_ms))
        oldest = it;
    if (oldest == gws_.end()) return;  // all present: over the bound until some are lost
    gws_.erase(oldest);
  }
}

// ---------------------------------------------------------------------------
// placement

namespace {
double Uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * (1.0 / 9007199254740992.0); }
}  // namespace

std::vector<uint32_t> ChoosePlacement(const std::vector<PlacementCandidate>& candidates, int n,
                                      const std::set<std::string>& taken_domains,
                                      uint64_t bytes_needed,
                                      std::mt19937_64& rng) {
  std::vector<uint32_t> out;
  std::vector<bool> used(candidates.size(), false);
  std::map<std::string, int> taken;  // label -> fragments of this chunk in it
  for (auto& d : taken_domains) taken[d] = 1;
  while (int(out.size()) < n) {
    // Tier: (lacks space, shared domain labels); lower is better.
    std::pair<int, int> best{INT32_MAX, INT32_MAX};
    std::vector<size_t> tier;
    for (size_t i = 0; i < candidates.size(); i++) {
      if (used[i]) continue;
      const auto& c = candidates[i];
      int shared = 0;
      for (auto& d : c.failure_domains) {
        auto t = taken.find(d);
        if (t != taken.end()) shared += t->second;
      }
      std::pair<int, int> key{c.store_bytes_free < bytes_needed ? 1 : 0, shared};
      if (key < best) {
        best = key;
        tier.clear();
      }
      if (key == best) tier.push_back(i);
    }
    if (tier.empty()) break;
    double total = 0;
    std::vector<double> w(tier.size());
    for (size_t j = 0; j < tier.size(); j++) {
      const auto& c = candidates[tier[j]];
      double a = std::clamp(c.availability, 0.01, 1.0);
      w[j] = (double(c.store_bytes_free) / double(1 << 20) + 1.0) * a * a;
      total += w[j];
    }
    double x = Uniform01(rng) * total;
    size_t pick = tier.size() - 1;
    for (size_t j = 0; j < tier.size(); j++) {
      if (x < w[j]) {
        pick = j;
        break;
      }
      x -= w[j];
    }
    size_t i = tier[pick];
    used[i] = true;
    out.push_back(candidates[i].id);
    for (auto& d : candidates[i].failure_domains) taken[d]++;
  }
  return out;
}

std::vector<PlacementCandidate> PlacementCandidates(const GatewayTable& t,
                                                    const std::set<uint32_t>& exclude) {
  std::vector<PlacementCandidate> out;
  for (auto& [id, g] : t.all()) {
    if (!t.IsLive(id) || exclude.count(id)) continue;
    out.push_back(PlacementCandidate{id, g.store_bytes_free, g.availability(), g.failure_domains});
  }
  return out;
}

}  // namespace mistore
