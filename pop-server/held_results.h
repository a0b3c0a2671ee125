// HeldResults: the outcomes of writes that a POP's gateways relayed (issue 6;
// paper section VII, "the results of the pending requests of a lost HG are
// cached in the POP in its region ... when the HG recovers, acknowledgments
// are sent to the HG for write requests").
//
// What it means here: a client's PutCommit carries a random write id that
// its retries reuse. When the entry POP completes a commit it remembers the
// (oid, version) it acknowledged, keyed by (subscriber, write id), for
// keep_ms. A retry of the same write id is answered from here instead of
// running again (which, after another writer's commit, would create a
// second version of the same write). A result whose requesting gateway
// connection was already gone when it completed is "undelivered": when that
// gateway registers again, PopCore pushes it (HeldResults message) and the
// agent answers the client's retry itself. Read results need no such list:
// a chunk rebuilt for a read stays in the POP's cache (kCached) and the
// retry is served from it.
//
// Bounds: per_gateway_max results per gateway and total_max overall (the
// oldest are dropped and counted), keep_ms of life each. Pure data
// structure, time as now_ms arguments; owned by PopCore, loop thread only.
//
// Durability: every change (a result put, marked delivered, dropped or
// expired) marks its key; TakeChanges hands the marked records (or their
// removal) to the owner, which writes them to its PopStore after each call
// that may change something, so the marks never outlive one input. On
// start the owner gives the stored records back to Load (their at_ms
// already moved onto its clock); the bounds apply to them again.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pop-server/pop_store.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

struct HeldResultsParams {
  uint64_t keep_ms = 3600000;    // life of a result
  size_t per_gateway_max = 256;  // results kept per gateway
  size_t total_max = 100000;     // results kept in all
  size_t push_max = 64;          // results per HeldResults message
};

// What changed since the last TakeChanges: records to write (at_ms on the
// owner's clock given to Put/Load) and (subscriber, write id) to remove.
struct HeldResultsChanges {
  std::vector<HeldResultRecord> put;
  std::vector<std::pair<std::string, std::string>> erase;
  bool empty() const { return put.empty() && erase.empty(); }
};

struct HeldResultsStats {
  size_t held = 0;
  size_t undelivered = 0;
  uint64_t answered_total = 0;   // retries answered from here
  uint64_t delivered_total = 0;  // pushed to a returning gateway and acknowledged
  uint64_t dropped_total = 0;    // pushed out by a bound before they expired
};

class HeldResults {
 public:
  explicit HeldResults(HeldResultsParams p) : p_(p) {}

  // Remembers the reply to a commit relayed by gateway_id. undelivered:
  // the requester's connection was closed when it completed.
  void Put(uint64_t now_ms, uint32_t gateway_id, const std::string& subscriber,
           const std::string& write_id, const pb::PutReply& reply, bool undelivered);
  // The reply remembered for this write, if any (and not expired); counts
  // as a retry answered.
  const pb::PutReply* Find(uint64_t now_ms, const std::string& subscriber,
                           const std::string& write_id);
  // A HeldResults message of this gateway's undelivered results (at most
  // push_max), empty when there are none.
  pb::HeldResults Undelivered(uint64_t now_ms, uint32_t gateway_id) const;
  // The gateway acknowledged these (from a message built by Undelivered).
  void MarkDelivered(uint32_t gateway_id, const pb::HeldResults& sent);
  void Expire(uint64_t now_ms);
  // Takes back results kept before a restart (oldest first; at_ms on this
  // clock). Expired ones are dropped and the bounds apply, as for Put;
  // what is dropped shows up in TakeChanges.
  void Load(uint64_t now_ms, const std::vector<HeldResultRecord>& records);
  // The changes since the last call (and forgets them).
  HeldResultsChanges TakeChanges();

  HeldResultsStats stats() const;
  const HeldResultsParams& params() const { return p_; }

 private:
  using Key = std::pair<std::string, std::string>;  // (subscriber, write id)
  struct Entry {
    uint32_t gateway_id;
    uint64_t seq;
    uint64_t at_ms;
    bool undelivered;
    pb::PutReply reply;
  };
  void Erase(const Key& key);
  void Insert(const Key& key, const Entry& e);

  HeldResultsParams p_;
  std::map<Key, Entry> entries_;
  std::map<uint64_t, Key> order_;                         // seq -> key, oldest first
  std::map<uint32_t, std::map<uint64_t, Key>> by_gateway_;  // gateway -> seq -> key
  std::set<Key> dirty_;  // changed since TakeChanges; drained by the owner per input
  uint64_t seq_ = 0;
  size_t undelivered_ = 0;
  uint64_t answered_total_ = 0;
  uint64_t delivered_total_ = 0;
  uint64_t dropped_total_ = 0;
};

}  // namespace mistore
