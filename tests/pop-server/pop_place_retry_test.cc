// A placement that partly failed, retried: only the fragment indices not
// recorded on a live, usable gateway are sent again, to gateways holding no
// fragment of the chunk, and a copy whose record moved elsewhere is deleted
// from its old gateway (its next heartbeat leads to an inventory). One
// PopCore driven by hand over MemPopStore, with gateways faked in memory;
// time is passed in, nothing sleeps. Test-only, single-threaded.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/fragment.h"
#include "shared/store/fragment_store.h"
#include "tests/pop-server/pop_core_test_util.h"

namespace mistore {
namespace {

using pop_test::DrainOutbox;

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }

constexpr uint32_t kGateways = 9;
constexpr uint32_t kFragments = 6;  // k=4, m=2

class PlaceRetry : public ::testing::Test {
 protected:
  struct Store {
    uint32_t gateway_id;
    uint32_t index;
  };

  void SetUp() override {
    std::mt19937_64 rng(17);
    data_.resize(20000);
    for (auto& b : data_) b = uint8_t(rng());
    key_ = ChunkKey{"s", Bytes(32, 0xcd)};
    ASSERT_TRUE(store_.PutChunk(key_, data_, ChunkState::kReplica).ok());
    PopParams p;
    p.pop_id = 1;
    p.region = "r";
    p.k = 4;
    p.m = 2;
    p.gateway_grace_ms = 600000;  // nobody is declared lost in these tests
    p.inventory_interval_ms = 1000;
    core_ = std::make_unique<PopCore>(p, &store_, 23);
    for (uint32_t id = 1; id <= kGateways; id++)
      core_->OnGatewayUp(0, GatewayState{id, "s", 1u << 30, true});
    Drive(0);  // placement tried as gateways came up: too few until the sixth
    stores_.clear();
  }

  // Answers the core's calls from the fake gateways until nothing is left.
  void Drive(uint64_t now_ms) {
    DrainOutbox(*core_, now_ms, &replies_, [this](const OutCall& c) { return Answer(c); });
  }

  std::optional<Result<pb::Envelope>> Answer(const OutCall& c) {
    if (c.to.kind != Dest::kGateway || down_.count(c.to.id)) return Unavailable("unreachable");
    auto& disk = disks_[c.to.id];
    pb::Envelope r;
    if (c.msg.has_store_fragment()) {
      Bytes blob = B(c.msg.store_fragment().fragment());
      auto h = ParseFragmentHeader(blob.data(), blob.size());
      if (!h.ok()) return h.status();
      stores_.push_back(Store{c.to.id, h->index});
      if (fail_indices_.count(h->index)) return Unavailable("store timed out");
      disk[{h->chunk_id, h->index}] = blob;
      r.mutable_empty();
    } else if (c.msg.has_get_inventory()) {
      inventories_asked_.push_back(c.to.id);
      auto* inv = r.mutable_gateway_inventory();
      std::vector<std::string> names;
      for (auto& [ref, blob] : disk) {
        auto* f = inv->add_fragments();
        f->set_chunk_id(Str(ref.first));
        f->set_index(ref.second);
        names.push_back(FragmentName(ref.first, ref.second));
      }
      inv->set_inventory_digest(Str(InventoryDigest(std::move(names))));
    } else if (c.msg.has_delete_fragments()) {
      for (auto& f : c.msg.delete_fragments().fragments())
        deletes_ += int(disk.erase({B(f.chunk_id()), f.index()}));
      r.mutable_empty();
    } else {
      return Unavailable("not modelled");
    }
    return r;
  }

  // The gateway's heartbeat, with the digest of what its disk holds.
  void Heartbeat(uint64_t now_ms, uint32_t gw) {
    pb::Envelope env;
    env.set_request_id(++request_id_);
    auto* hb = env.mutable_gateway_heartbeat();
    hb->set_store_bytes_free(1u << 30);
    std::vector<std::string> names;
    for (auto& [ref, blob] : disks_[gw]) names.push_back(FragmentName(ref.first, ref.second));
    hb->set_fragment_count(names.size());
    hb->set_inventory_digest(Str(InventoryDigest(std::move(names))));
    core_->OnRequest(now_ms, Peer{100 + gw, pb::ROLE_GATEWAY, gw, "s"}, env);
    Drive(now_ms);
  }

  // First attempt, at 1 ms: the stores of `failing` indices fail.
  void FirstAttempt(std::set<uint32_t> failing) {
    fail_indices_ = std::move(failing);
    core_->OnTick(1);
    Drive(1);
    ASSERT_EQ(stores_.size(), kFragments);
    ASSERT_NE(store_.GetChunkInfo(key_)->state, ChunkState::kPlaced);
    ASSERT_EQ(store_.Fragments(key_).size(), kFragments - fail_indices_.size());
    fail_indices_.clear();
    stores_.clear();
  }

  // The retry, at `now_ms`.
  void Retry(uint64_t now_ms) {
    core_->OnTick(now_ms);
    Drive(now_ms);
  }

  std::map<uint32_t, uint32_t> Recorded() {  // index -> gateway
    std::map<uint32_t, uint32_t> at;
    for (auto& l : store_.Fragments(key_)) at[l.index] = l.gateway_id;
    return at;
  }

  // Every index recorded exactly once, on distinct gateways that hold it,
  // and the six decode back to the chunk.
  void ExpectFullyPlaced() {
    auto locs = store_.Fragments(key_);
    ASSERT_EQ(locs.size(), kFragments);
    std::set<uint32_t> indices, gws;
    std::vector<Bytes> blobs;
    for (auto& l : locs) {
      indices.insert(l.index);
      gws.insert(l.gateway_id);
      EXPECT_FALSE(down_.count(l.gateway_id)) << "index " << l.index << " on a gateway that is away";
      auto& disk = disks_[l.gateway_id];
      auto it = disk.find({key_.chunk_id, l.index});
      ASSERT_NE(it, disk.end()) << "recorded fragment not on its gateway";
      blobs.push_back(it->second);
    }
    EXPECT_EQ(indices.size(), kFragments);
    EXPECT_EQ(gws.size(), kFragments) << "two fragments of the chunk on one gateway";
    EXPECT_EQ(store_.GetChunkInfo(key_)->state, ChunkState::kPlaced);
    auto decoded = DecodeChunkFromFragments(key_.chunk_id, blobs, 4, 2, data_.size());
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded.value(), data_);
  }

  // Fragments of the chunk held by gateways, over all of them.
  size_t FragmentsHeld() {
    size_t n = 0;
    for (auto& [gw, disk] : disks_) n += disk.size();
    return n;
  }

  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  Bytes data_;
  ChunkKey key_;
  std::map<uint32_t, std::map<std::pair<Bytes, uint32_t>, Bytes>> disks_;
  std::set<uint32_t> down_;
  std::set<uint32_t> fail_indices_;
  std::vector<Store> stores_;
  std::vector<uint32_t> inventories_asked_;
  std::vector<OutReply> replies_;
  int deletes_ = 0;
  uint64_t request_id_ = 0;
};

// (a) Two of six stores fail; the retry sends only those two indices, to
// gateways holding no fragment of the chunk, and leaves no orphan.
TEST_F(PlaceRetry, RetrySendsOnlyTheMissingIndicesToOtherGateways) {
  FirstAttempt({4, 5});
  std::map<uint32_t, uint32_t> before = Recorded();
  std::set<uint32_t> holders;
  for (auto& [idx, gw] : before) holders.insert(gw);
  ASSERT_EQ(holders.size(), 4u);
  Retry(2000);
  ASSERT_EQ(stores_.size(), 2u) << "the retry sent fragments already stored";
  std::set<uint32_t> sent_indices, targets;
  for (auto& s : stores_) {
    sent_indices.insert(s.index);
    targets.insert(s.gateway_id);
    EXPECT_FALSE(holders.count(s.gateway_id))
        << "index " << s.index << " sent to gateway " << s.gateway_id
        << " which already holds a fragment of the chunk";
  }
  EXPECT_EQ(sent_indices, (std::set<uint32_t>{4, 5}));
  EXPECT_EQ(targets.size(), 2u);
  std::map<uint32_t, uint32_t> after = Recorded();
  for (uint32_t i = 0; i < 4; i++) EXPECT_EQ(after[i], before[i]) << "index " << i << " moved";
  ExpectFullyPlaced();
  EXPECT_EQ(FragmentsHeld(), kFragments) << "orphan fragments left on gateways";
  for (uint32_t id = 1; id <= kGateways; id++) EXPECT_EQ(core_->placement_bytes_to(id), 0u);
}

// (b) A gateway holding a stored fragment went away between the attempts:
// its index is sent again with the failed one, never to that gateway, and
// the chunk ends placed on live gateways only.
TEST_F(PlaceRetry, FragmentOnAGatewayThatWentAwayIsSentAgain) {
  FirstAttempt({5});
  std::map<uint32_t, uint32_t> before = Recorded();
  const uint32_t gone = before.at(2);
  down_.insert(gone);
  core_->OnGatewayDown(1000, gone);
  Drive(1000);
  Retry(2000);
  ASSERT_EQ(stores_.size(), 2u);
  std::set<uint32_t> sent_indices;
  for (auto& s : stores_) {
    sent_indices.insert(s.index);
    for (auto& [idx, gw] : before)
      EXPECT_NE(s.gateway_id, gw) << "sent to a gateway already holding index " << idx;
  }
  EXPECT_EQ(sent_indices, (std::set<uint32_t>{2, 5}));
  EXPECT_NE(Recorded().at(2), gone);
  ExpectFullyPlaced();
}

// (c) The replaced record's old gateway comes back with its copy: its next
// heartbeat leads to an inventory, and the copy nothing refers to is
// deleted. Before the retry its heartbeat matched (the digest was cached).
TEST_F(PlaceRetry, OldGatewayOfAReplacedRecordIsReconciledAndItsCopyDeleted) {
  FirstAttempt({4});
  const uint32_t old = Recorded().at(1);
  Heartbeat(500, old);  // caches old's expected digest: it matches
  EXPECT_TRUE(inventories_asked_.empty());
  down_.insert(old);
  core_->OnGatewayDown(1000, old);
  Drive(1000);
  Retry(2000);
  ASSERT_NE(Recorded().at(1), old);
  ExpectFullyPlaced();
  EXPECT_TRUE(disks_[old].count({key_.chunk_id, 1}));  // away: kept until it is back
  down_.erase(old);
  core_->OnGatewayUp(3000, GatewayState{old, "s", 1u << 30, true});
  Drive(3000);
  Heartbeat(4000, old);
  EXPECT_EQ(inventories_asked_, (std::vector<uint32_t>{old}))
      << "the old gateway's heartbeat matched a stale cached digest";
  EXPECT_FALSE(disks_[old].count({key_.chunk_id, 1})) << "orphan fragment kept";
  EXPECT_EQ(core_->fragments_deleted_total(), 1u);
  EXPECT_EQ(FragmentsHeld(), kFragments);
  ExpectFullyPlaced();
}

// A stored fragment reported bad before the retry is re-sent elsewhere, and
// the bad copy on its (live) gateway is deleted.
TEST_F(PlaceRetry, FragmentReportedBadIsSentAgainAndTheBadCopyDeleted) {
  FirstAttempt({0});
  const uint32_t holder = Recorded().at(3);
  pb::Envelope env;
  env.set_request_id(++request_id_);
  auto* f = env.mutable_fragments_bad()->add_fragments();
  f->set_chunk_id(Str(key_.chunk_id));
  f->set_index(3);
  core_->OnRequest(500, Peer{100 + holder, pb::ROLE_GATEWAY, holder, "s"}, env);
  Drive(500);
  Retry(2000);
  std::set<uint32_t> sent_indices;
  for (auto& s : stores_) sent_indices.insert(s.index);
  EXPECT_EQ(sent_indices, (std::set<uint32_t>{0, 3}));
  EXPECT_EQ(stores_.size(), 2u);
  EXPECT_NE(Recorded().at(3), holder);
  EXPECT_FALSE(disks_[holder].count({key_.chunk_id, 3})) << "bad copy kept";
  ExpectFullyPlaced();
  EXPECT_EQ(FragmentsHeld(), kFragments);
}

}  // namespace
}  // namespace mistore
