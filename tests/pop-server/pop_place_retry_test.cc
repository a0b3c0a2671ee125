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
#include "tests/pop-server/fake_region.h"

namespace mistore {
namespace {

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }

constexpr uint32_t kGateways = 9;
constexpr uint32_t kFragments = 6;  // k=4, m=2

class PlaceRetry : public ::testing::Test {
 protected:
  void SetUp() override {
    region_.inventory_digests = true;  // as real agents answer
    key_ = ChunkKey{"s", Bytes(32, 0xcd)};
    data_ = pop_test::PutRandomReplicaChunk(&store_, key_, 17);
    // Nobody is declared lost in these tests.
    core_ = std::make_unique<PopCore>(pop_test::RegionPopParams(600000), &store_, 23);
    for (uint32_t id = 1; id <= kGateways; id++)
      core_->OnGatewayUp(0, GatewayState{id, "s", 1u << 30, true});
    Drive(0);  // placement tried as gateways came up: too few until the sixth
    region_.stores.clear();
  }

  void Drive(uint64_t now_ms) { region_.Drive(*core_, now_ms); }

  // The gateway's heartbeat, with the digest of what its disk holds.
  void Heartbeat(uint64_t now_ms, uint32_t gw) {
    pb::Envelope env;
    env.set_request_id(++request_id_);
    auto* hb = env.mutable_gateway_heartbeat();
    hb->set_store_bytes_free(1u << 30);
    std::vector<std::string> names;
    for (auto& [ref, blob] : region_.disks[gw]) names.push_back(FragmentName(ref.first, ref.second));
    hb->set_fragment_count(names.size());
    hb->set_inventory_digest(Str(InventoryDigest(std::move(names))));
    core_->OnRequest(now_ms, Peer{100 + gw, pb::ROLE_GATEWAY, gw, "s"}, env);
    Drive(now_ms);
  }

  // First attempt, at 1 ms: the stores of `failing` indices fail.
  void FirstAttempt(std::set<uint32_t> failing) {
    region_.fail_indices = std::move(failing);
    core_->OnTick(1);
    Drive(1);
    ASSERT_EQ(region_.stores.size(), kFragments);
    ASSERT_NE(store_.GetChunkInfo(key_)->state, ChunkState::kPlaced);
    ASSERT_EQ(store_.Fragments(key_).size(), kFragments - region_.fail_indices.size());
    region_.fail_indices.clear();
    region_.stores.clear();
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
      EXPECT_FALSE(region_.down.count(l.gateway_id)) << "index " << l.index << " on a gateway that is away";
      auto& disk = region_.disks[l.gateway_id];
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

  MemPopStore store_;
  std::unique_ptr<PopCore> core_;
  Bytes data_;
  ChunkKey key_;
  pop_test::FakeRegion region_;
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
  ASSERT_EQ(region_.stores.size(), 2u) << "the retry sent fragments already stored";
  std::set<uint32_t> sent_indices, targets;
  for (auto& s : region_.stores) {
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
  EXPECT_EQ(region_.FragmentsHeld(), kFragments) << "orphan fragments left on gateways";
  for (uint32_t id = 1; id <= kGateways; id++) EXPECT_EQ(core_->placement_bytes_to(id), 0u);
}

// (b) A gateway holding a stored fragment went away between the attempts:
// its index is sent again with the failed one, never to that gateway, and
// the chunk ends placed on live gateways only.
TEST_F(PlaceRetry, FragmentOnAGatewayThatWentAwayIsSentAgain) {
  FirstAttempt({5});
  std::map<uint32_t, uint32_t> before = Recorded();
  const uint32_t gone = before.at(2);
  region_.down.insert(gone);
  core_->OnGatewayDown(1000, gone);
  Drive(1000);
  Retry(2000);
  ASSERT_EQ(region_.stores.size(), 2u);
  std::set<uint32_t> sent_indices;
  for (auto& s : region_.stores) {
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
  EXPECT_TRUE(region_.inventories_asked.empty());
  region_.down.insert(old);
  core_->OnGatewayDown(1000, old);
  Drive(1000);
  Retry(2000);
  ASSERT_NE(Recorded().at(1), old);
  ExpectFullyPlaced();
  EXPECT_TRUE(region_.disks[old].count({key_.chunk_id, 1}));  // away: kept until it is back
  region_.down.erase(old);
  core_->OnGatewayUp(3000, GatewayState{old, "s", 1u << 30, true});
  Drive(3000);
  Heartbeat(4000, old);
  EXPECT_EQ(region_.inventories_asked, (std::vector<uint32_t>{old}))
      << "the old gateway's heartbeat matched a stale cached digest";
  EXPECT_FALSE(region_.disks[old].count({key_.chunk_id, 1})) << "orphan fragment kept";
  EXPECT_EQ(core_->fragments_deleted_total(), 1u);
  EXPECT_EQ(region_.FragmentsHeld(), kFragments);
  ExpectFullyPlaced();
}

// A store whose answer was lost (a timeout) but which landed: that copy is
// recorded nowhere. The gateway's next inventory deletes it; before, the
// inventory took it for a copy being recorded and cached the gateway's
// digest, and once the retry had placed the index elsewhere nothing looked
// at that gateway again: the copy stayed for good.
TEST_F(PlaceRetry, AStoreThatLandedAfterItsTimeoutLeavesNoCopyBehind) {
  region_.lost_answers = {5};
  core_->OnTick(1);
  Drive(1);
  ASSERT_EQ(store_.Fragments(key_).size(), kFragments - 1);
  uint32_t landed = 0;
  for (auto& st : region_.stores)
    if (st.index == 5) landed = st.gateway_id;
  ASSERT_NE(landed, 0u);
  ASSERT_TRUE(region_.disks[landed].count({key_.chunk_id, 5}));
  region_.lost_answers.clear();
  Heartbeat(500, landed);
  // Away during the retry, so the index goes to another gateway.
  region_.down.insert(landed);
  core_->OnGatewayDown(1000, landed);
  Drive(1000);
  Retry(2000);
  ASSERT_NE(Recorded().at(5), landed);
  region_.down.erase(landed);
  core_->OnGatewayUp(3000, GatewayState{landed, "s", 1u << 30, true});
  Drive(3000);
  Heartbeat(4000, landed);
  EXPECT_FALSE(region_.disks[landed].count({key_.chunk_id, 5})) << "the copy that landed was kept";
  EXPECT_EQ(region_.FragmentsHeld(), kFragments);
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
  for (auto& s : region_.stores) sent_indices.insert(s.index);
  EXPECT_EQ(sent_indices, (std::set<uint32_t>{0, 3}));
  EXPECT_EQ(region_.stores.size(), 2u);
  EXPECT_NE(Recorded().at(3), holder);
  EXPECT_FALSE(region_.disks[holder].count({key_.chunk_id, 3})) << "bad copy kept";
  ExpectFullyPlaced();
  EXPECT_EQ(region_.FragmentsHeld(), kFragments);
}

}  // namespace
}  // namespace mistore
