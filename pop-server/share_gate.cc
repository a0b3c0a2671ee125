#include "pop-server/share_gate.h"

#include "shared/core/assert.h"
#include "shared/core/log.h"

namespace mistore {

void ShareGate::Forget(std::map<ShareKey, Entry>::iterator it) {
  by_expiry_.erase({it->second.expires_ms, it->first});
  entries_.erase(it);
}

ShareGate::Answer ShareGate::Lookup(uint64_t now_ms, const ShareKey& key) {
  // Expired answers leave first (each at most once).
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now_ms)
    Forget(entries_.find(by_expiry_.begin()->second));
  auto it = entries_.find(key);
  if (it != entries_.end())
    return it->second.shared ? Answer::kAllowed : Answer::kRefused;
  if (in_flight_ >= p_.checks_in_flight_max) return Answer::kBusy;
  in_flight_++;
  checks_total_++;
  return Answer::kAsk;
}

void ShareGate::OnAnswer(uint64_t now_ms, const ShareKey& key, bool answered,
                         bool shared) {
  MS_ASSERT(in_flight_ > 0);
  in_flight_--;
  if (!answered || p_.ttl_ms == 0 || p_.entries_max == 0) return;
  if (auto it = entries_.find(key); it != entries_.end()) Forget(it);
  while (entries_.size() >= p_.entries_max)
    Forget(entries_.find(by_expiry_.begin()->second));  // the soonest to expire
  const uint64_t expires = now_ms + p_.ttl_ms;
  entries_[key] = Entry{shared, expires};
  by_expiry_.insert({expires, key});
}

}  // namespace mistore
