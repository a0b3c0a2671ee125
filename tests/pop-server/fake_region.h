// A region of gateways faked in memory for the PopCore unit tests that
// drive one core by hand (repair_test.cc, pop_place_retry_test.cc): each
// gateway's disk of fragments, the gateways that are away, stores made to
// fail by fragment index, and what the core asked. Answers StoreFragment,
// FetchFragment, GetInventory and DeleteFragments; anything else, or any
// call to a POP or the DC, is "unreachable". Test-only, single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pop-server/pop_core.h"
#include "shared/erasure/fragment.h"
#include "shared/store/fragment_store.h"
#include "tests/pop-server/pop_core_test_util.h"

namespace mistore::pop_test {

// 20,000 seeded random bytes stored in `store` as a replica chunk under
// `key` (to be placed); returns them.
inline Bytes PutRandomReplicaChunk(PopStore* store, const ChunkKey& key, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes data(20000);
  for (auto& b : data) b = uint8_t(rng());
  EXPECT_TRUE(store->PutChunk(key, data, ChunkState::kReplica).ok());
  return data;
}

// POP 1 of region "r", placing k=4 m=2, asking inventories at most once a
// second per gateway.
inline PopParams RegionPopParams(uint64_t gateway_grace_ms) {
  PopParams p;
  p.pop_id = 1;
  p.region = "r";
  p.k = 4;
  p.m = 2;
  p.gateway_grace_ms = gateway_grace_ms;
  p.inventory_interval_ms = 1000;
  return p;
}

struct FakeRegion {
  struct Stored {
    uint32_t gateway_id;
    uint32_t index;
  };
  std::map<uint32_t, std::map<std::pair<Bytes, uint32_t>, Bytes>> disks;
  std::set<uint32_t> down;
  std::set<uint32_t> fail_indices;  // StoreFragment of these indices fails (nothing kept)
  std::set<uint32_t> lost_answers;  // ...is kept, but its answer is lost (a timeout)
  bool inventory_digests = false;   // GetInventory answers carry the digest
  std::vector<Stored> stores;       // every StoreFragment asked, failed ones included
  std::vector<uint32_t> inventories_asked;
  std::vector<OutReply> replies;
  int deletes = 0;
  int fetches = 0, background_fetches = 0;
  int outside_calls = 0;  // to POPs or the DC: repair must stay in the region

  static std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
  static Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

  Result<pb::Envelope> Answer(const OutCall& c) {
    if (c.to.kind == Dest::kPop || c.msg.has_fetch_chunk()) outside_calls++;
    if (c.to.kind != Dest::kGateway || down.count(c.to.id)) return Unavailable("unreachable");
    auto& disk = disks[c.to.id];
    pb::Envelope r;
    if (c.msg.has_store_fragment()) {
      Bytes blob = B(c.msg.store_fragment().fragment());
      auto h = ParseFragmentHeader(blob.data(), blob.size());
      if (!h.ok()) return h.status();
      stores.push_back(Stored{c.to.id, h->index});
      if (fail_indices.count(h->index)) return Unavailable("store timed out");
      disk[{h->chunk_id, h->index}] = blob;
      if (lost_answers.count(h->index)) return Unavailable("store timed out");
      r.mutable_empty();
    } else if (c.msg.has_fetch_fragment()) {
      fetches++;
      background_fetches += c.msg.fetch_fragment().background();
      auto it = disk.find({B(c.msg.fetch_fragment().chunk_id()), c.msg.fetch_fragment().index()});
      if (it == disk.end()) return NotFound("no such fragment");
      r.mutable_fragment_data()->set_fragment(Str(it->second));
    } else if (c.msg.has_get_inventory()) {
      inventories_asked.push_back(c.to.id);
      auto* inv = r.mutable_gateway_inventory();
      std::vector<std::string> names;
      for (auto& [ref, blob] : disk) {
        auto* f = inv->add_fragments();
        f->set_chunk_id(Str(ref.first));
        f->set_index(ref.second);
        names.push_back(FragmentName(ref.first, ref.second));
      }
      if (inventory_digests) inv->set_inventory_digest(Str(InventoryDigest(std::move(names))));
    } else if (c.msg.has_delete_fragments()) {
      for (auto& f : c.msg.delete_fragments().fragments())
        deletes += int(disk.erase({B(f.chunk_id()), f.index()}));
      r.mutable_empty();
    } else {
      return Unavailable("not modelled");
    }
    return r;
  }

  // Runs the core's jobs and answers its calls until its outbox is empty.
  void Drive(PopCore& core, uint64_t now_ms) {
    DrainOutbox(core, now_ms, &replies,
                [this](const OutCall& c) -> std::optional<Result<pb::Envelope>> { return Answer(c); });
  }

  // Fragments held over all gateways.
  size_t FragmentsHeld() const {
    size_t n = 0;
    for (auto& [gw, disk] : disks) n += disk.size();
    return n;
  }
};

}  // namespace mistore::pop_test
