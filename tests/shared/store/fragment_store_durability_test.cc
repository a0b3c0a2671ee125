// FragmentStore for region durability (issue 6): names, the inventory digest
// shared with the POP, header-only open, scrub verification, deletes, the
// fragment-count limit and the bad-fragment report queue.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "shared/erasure/chunk_codec.h"
#include "shared/store/file_util.h"
#include "shared/store/fragment_store.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::FilesUnder;
using store_test::RandomBytes;
using store_test::SeedTrace;
using store_test::TempDir;
using store_test::TestSeed;

constexpr uint64_t kBig = uint64_t(1) << 40;

std::vector<Bytes> Encode(const Bytes& id, const Bytes& data, int k, int m) {
  auto r = EncodeChunkToFragments(id, data.data(), data.size(), k, m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : std::vector<Bytes>{};
}

std::string PathOf(const std::string& dir, const std::string& name) {
  return dir + "/" + name.substr(0, 2) + "/" + name;
}

void WriteRaw(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

TEST(FragmentNameTest, RoundTripAndRejects) {
  Bytes id(32);
  for (size_t i = 0; i < id.size(); i++) id[i] = uint8_t(i * 7 + 1);
  std::string n = FragmentName(id, 11);
  EXPECT_EQ(n, ToHex(id) + ".11");
  Bytes got;
  uint32_t index = 0;
  ASSERT_TRUE(ParseFragmentName(n, &got, &index));
  EXPECT_EQ(got, id);
  EXPECT_EQ(index, 11u);
  ASSERT_TRUE(ParseFragmentName(FragmentName(id, 4294967295u), &got, &index));
  EXPECT_EQ(index, 4294967295u);
  std::string hex = ToHex(id);
  for (const std::string& bad :
       {std::string(""), hex, hex + ".", hex + ".x", hex + ".01", hex + ".4294967296",
        hex + ".1.tmp", hex.substr(1) + ".1", std::string(64, 'A') + ".1",
        std::string(64, 'g') + ".1", hex + "-1"})
    EXPECT_FALSE(ParseFragmentName(bad, &got, &index)) << bad;
}

// Fixed vectors, computed independently (Python hashlib.blake2b,
// digest_size=32), so that the POP and any other implementation agree.
TEST(InventoryDigestTest, MatchesPublishedDefinition) {
  EXPECT_EQ(ToHex(InventoryDigest({})),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  std::string a = std::string(64, '0') + ".0";
  std::string b10, b2;
  for (int i = 0; i < 32; i++) b10 += "ab";
  b2 = b10 + ".2";
  b10 += ".10";
  const std::string want = "59dda43ba25e2ee80c2d83655619812320d837d8dc16c4239a3bd64d44f47ca1";
  // Order and duplicates of the input do not matter; byte-wise sort puts
  // ".10" before ".2".
  EXPECT_EQ(ToHex(InventoryDigest({b2, a, b10})), want);
  EXPECT_EQ(ToHex(InventoryDigest({b10, b2, a, b2})), want);
  InventoryDigestBuilder inc;
  inc.Add(a);
  inc.Add(b10);
  inc.Add(b2);
  EXPECT_EQ(ToHex(inc.Final()), want);
  EXPECT_NE(ToHex(InventoryDigest({a, b2})), want);
}

class FragmentStoreDurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = TestSeed();
    rng_.seed(seed_);
  }
  std::string Dir() const { return tmp_.path() + "/frags"; }
  struct Chunk {
    Bytes id;
    std::vector<Bytes> blobs;
  };
  Chunk Make(size_t len, int k, int m) {
    Chunk c;
    c.id = RandomBytes(rng_, 32);
    c.blobs = Encode(c.id, RandomBytes(rng_, len), k, m);
    return c;
  }
  FragmentStore Open(const FragmentStoreOptions& o) {
    auto s = FragmentStore::Open(Dir(), o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return std::move(s).value();
  }
  static FragmentStoreOptions Opts(bool verify_payloads = true) {
    FragmentStoreOptions o;
    o.store_bytes_max = kBig;
    o.verify_payloads_at_open = verify_payloads;
    return o;
  }
  uint32_t seed_ = 0;
  std::mt19937 rng_;
  TempDir tmp_;
};

TEST_F(FragmentStoreDurabilityTest, DigestFollowsTheServedSet) {
  SCOPED_TRACE(SeedTrace(seed_));
  FragmentStore s = Open(Opts());
  EXPECT_EQ(s.digest(), InventoryDigest({}));
  Chunk a = Make(3000, 2, 2), b = Make(100, 1, 1);
  std::vector<std::string> names;
  for (auto* c : {&a, &b})
    for (uint32_t i = 0; i < c->blobs.size(); i++) {
      ASSERT_TRUE(s.Put(c->blobs[i]).ok());
      names.push_back(FragmentName(c->id, i));
      EXPECT_EQ(s.digest(), InventoryDigest(names)) << "after " << names.size();
    }
  ASSERT_TRUE(s.Delete(names[1]).ok());
  EXPECT_FALSE(FileExists(PathOf(Dir(), names[1])));
  names.erase(names.begin() + 1);
  EXPECT_EQ(s.digest(), InventoryDigest(names));
  EXPECT_EQ(s.fragment_count(), names.size());
  // Deleting what is not held is fine and changes nothing.
  ASSERT_TRUE(s.Delete(FragmentName(b.id, 9)).ok());
  EXPECT_EQ(s.digest(), InventoryDigest(names));
  EXPECT_EQ(s.Delete("nonsense").code(), Code::kInvalidArgument);
  // Reopen: same served set, same digest; NextAfter walks it in order.
  FragmentStore again = Open(Opts(false));
  EXPECT_EQ(again.digest(), InventoryDigest(names));
  std::vector<std::string> walked;
  for (auto n = again.NextAfter(""); n; n = again.NextAfter(*n)) walked.push_back(*n);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(walked, names);
}

TEST_F(FragmentStoreDurabilityTest, HeaderOnlyOpenCatchesTornFilesAndScrubCatchesRot) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = Make(20000, 4, 2);
  {
    FragmentStore s = Open(Opts());
    for (auto& b : c.blobs) ASSERT_TRUE(s.Put(b).ok());
  }
  const std::string torn = FragmentName(c.id, 1), rot = FragmentName(c.id, 3);
  ASSERT_EQ(truncate(PathOf(Dir(), torn).c_str(), off_t(c.blobs[1].size() - 7)), 0);
  Bytes damaged = c.blobs[3];
  damaged[100 + rng_() % (damaged.size() - 100)] ^= 0x10;
  WriteRaw(PathOf(Dir(), rot), damaged);
  // A stray file that is not a fragment name is left alone, not indexed.
  WriteRaw(Dir() + "/" + torn.substr(0, 2) + "/README", Bytes{1, 2, 3});

  FragmentStore s = Open(Opts(/*verify_payloads=*/false));
  EXPECT_EQ(s.corrupt_at_open(), 1u);  // the torn one, by its length
  EXPECT_FALSE(s.Has(torn));
  EXPECT_FALSE(FileExists(PathOf(Dir(), torn)));  // removed: never served
  EXPECT_TRUE(s.Has(rot));                        // bit rot needs a payload read
  EXPECT_EQ(s.fragment_count(), 5u);
  EXPECT_EQ(s.bad_unreported(), std::set<std::string>{torn});
  // The scrubber's read finds it, takes it out and queues it.
  uint64_t read = 0;
  for (uint32_t i : {0u, 2u, 4u, 5u}) {
    ASSERT_TRUE(s.Verify(FragmentName(c.id, i), &read).ok()) << i;
    EXPECT_EQ(read, c.blobs[i].size());
  }
  Status st = s.Verify(rot, &read);
  EXPECT_EQ(st.code(), Code::kCorrupt) << st.ToString();
  EXPECT_EQ(read, c.blobs[3].size());
  EXPECT_FALSE(s.Has(rot));
  EXPECT_EQ(s.Get(c.id, 3).status().code(), Code::kNotFound);
  EXPECT_EQ(s.Verify(rot, &read).code(), Code::kNotFound);
  EXPECT_EQ(s.bad_unreported(), (std::set<std::string>{torn, rot}));
  EXPECT_EQ(s.bad_total(), 2u);
  EXPECT_TRUE(FileExists(Dir() + "/" + torn.substr(0, 2) + "/README"));
  // Full-verify open of the same directory agrees with what is left.
  FragmentStore full = Open(Opts(true));
  EXPECT_EQ(full.corrupt_at_open(), 0u);
  EXPECT_EQ(full.fragment_count(), 4u);
  EXPECT_EQ(full.digest(), s.digest());
}

TEST_F(FragmentStoreDurabilityTest, BadQueueTakeRequeueAndBound) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = Make(5000, 3, 3);
  FragmentStoreOptions o = Opts();
  o.bad_queue_max = 4;
  {
    FragmentStore s = Open(o);
    for (auto& b : c.blobs) ASSERT_TRUE(s.Put(b).ok());
  }
  for (uint32_t i = 0; i < 6; i++)
    ASSERT_EQ(truncate(PathOf(Dir(), FragmentName(c.id, i)).c_str(), 50), 0);
  FragmentStore s = Open(o);
  EXPECT_EQ(s.corrupt_at_open(), 6u);
  EXPECT_EQ(s.bad_total(), 6u);
  EXPECT_EQ(s.bad_unreported().size(), 4u);  // bounded
  auto taken = s.TakeBad(3);
  EXPECT_EQ(taken.size(), 3u);
  EXPECT_EQ(s.bad_unreported().size(), 1u);
  s.RequeueBad(taken);
  EXPECT_EQ(s.bad_unreported().size(), 4u);
  // A good copy stored again clears its report and is not requeued.
  std::string n0 = *s.bad_unreported().begin();
  Bytes id;
  uint32_t index = 0;
  ASSERT_TRUE(ParseFragmentName(n0, &id, &index));
  ASSERT_TRUE(s.Put(c.blobs[index]).ok());
  EXPECT_EQ(s.bad_unreported().count(n0), 0u);
  s.RequeueBad({n0});
  EXPECT_EQ(s.bad_unreported().count(n0), 0u);
}

TEST_F(FragmentStoreDurabilityTest, FragmentCountLimitIsExhausted) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = Make(999, 2, 2);
  FragmentStoreOptions o = Opts();
  o.fragments_max = 3;
  FragmentStore s = Open(o);
  for (int i = 0; i < 3; i++) ASSERT_TRUE(s.Put(c.blobs[i]).ok());
  Status st = s.Put(c.blobs[3]);
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.ToString();
  EXPECT_FALSE(s.Has(FragmentName(c.id, 3)));
  EXPECT_EQ(FilesUnder(Dir()).size(), 3u);
  EXPECT_TRUE(s.Put(c.blobs[0]).ok());  // replacing is not a new entry
  ASSERT_TRUE(s.Delete(FragmentName(c.id, 0)).ok());
  EXPECT_TRUE(s.Put(c.blobs[3]).ok());
}

// A fragment whose file is replaced by a valid blob of another fragment is
// caught at header-only open by its name.
TEST_F(FragmentStoreDurabilityTest, MisplacedFileIsBadAtOpen) {
  SCOPED_TRACE(SeedTrace(seed_));
  Chunk c = Make(700, 2, 1);
  {
    FragmentStore s = Open(Opts());
    for (auto& b : c.blobs) ASSERT_TRUE(s.Put(b).ok());
  }
  WriteRaw(PathOf(Dir(), FragmentName(c.id, 2)), c.blobs[0]);  // same length
  FragmentStore s = Open(Opts(false));
  EXPECT_EQ(s.corrupt_at_open(), 1u);
  EXPECT_FALSE(s.Has(FragmentName(c.id, 2)));
  EXPECT_EQ(s.fragment_count(), 2u);
}

}  // namespace
}  // namespace mistore
