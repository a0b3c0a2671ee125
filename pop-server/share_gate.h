// ShareGate: the POP's memory of which objects are shared with whom (issue
// 4, read-only sharing; docs/security.md "Sharing"). A gateway (or device)
// of subscriber S may read an object of owner O only while the DC holds a
// share record (O, oid, S); PopCore asks the DC (CheckShare) and keeps the
// answer here, yes or no, for ttl_ms, so an unshare takes effect at every
// POP within ttl_ms and a file's chunks cost one DC round trip, not one
// each. Bounded: at most entries_max answers (the oldest-expiring go first)
// and checks_in_flight_max questions to the DC at once (more: kBusy).
//
// A pure state machine: time comes in as arguments; no I/O. Owned by
// PopCore, on the POP's loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>

namespace mistore {

struct ShareKey {
  std::string owner;
  std::string oid;  // 16 bytes, as on the wire
  std::string grantee;
  auto operator<=>(const ShareKey&) const = default;
};

struct ShareGateParams {
  uint64_t ttl_ms = 5000;
  size_t entries_max = 4096;
  size_t checks_in_flight_max = 64;
};

class ShareGate {
 public:
  enum class Answer {
    kAllowed,  // a fresh "shared" answer
    kRefused,  // a fresh "not shared" answer
    kAsk,   // unknown or stale: ask the DC, then OnAnswer (counted in flight)
    kBusy,  // unknown, and checks_in_flight_max questions are out already
  };

  explicit ShareGate(ShareGateParams p = {}) : p_(p) {}

  Answer Lookup(uint64_t now_ms, const ShareKey& key);
  // The DC's answer to a kAsk (answered = false: the question failed,
  // nothing is remembered).
  void OnAnswer(uint64_t now_ms, const ShareKey& key, bool answered,
                bool shared);

  size_t entries() const { return entries_.size(); }
  size_t checks_in_flight() const { return in_flight_; }
  uint64_t checks_total() const { return checks_total_; }

 private:
  struct Entry {
    bool shared;
    uint64_t expires_ms;
  };
  void Forget(std::map<ShareKey, Entry>::iterator it);

  ShareGateParams p_;
  std::map<ShareKey, Entry> entries_;
  std::set<std::pair<uint64_t, ShareKey>> by_expiry_;
  size_t in_flight_ = 0;
  uint64_t checks_total_ = 0;
};

}  // namespace mistore
