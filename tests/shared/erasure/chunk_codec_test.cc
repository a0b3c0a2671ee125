#include "shared/erasure/chunk_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "shared/erasure/fragment.h"
#include "shared/erasure/reed_solomon.h"
#include "tests/shared/erasure/erasure_test_util.h"

namespace mistore {
namespace {

using erasure_test::RandomBytes;
using erasure_test::RandomInt;
using erasure_test::SeedTrace;
using erasure_test::TestSeed;
using ::testing::HasSubstr;

Bytes Id(uint8_t fill) { return Bytes(32, fill); }

std::vector<Bytes> EncodeOk(const Bytes& id, const Bytes& chunk, int k, int m) {
  auto r = EncodeChunkToFragments(id, chunk.data(), chunk.size(), k, m);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : std::vector<Bytes>{};
}

TEST(ChunkCodecTest, BlobsAreParseableFragments) {
  const Bytes chunk(1000, 0x33);
  const std::vector<Bytes> blobs = EncodeOk(Id(7), chunk, 4, 2);
  ASSERT_EQ(blobs.size(), 6u);
  for (size_t i = 0; i < blobs.size(); i++) {
    auto p = ParseFragment(blobs[i].data(), blobs[i].size());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->first.index, i);
    EXPECT_EQ(p->first.k, 4);
    EXPECT_EQ(p->first.m, 2);
    EXPECT_EQ(p->first.chunk_len, 1000u);
    EXPECT_EQ(p->first.chunk_id, Id(7));
    EXPECT_EQ(p->second.size(), 256u);  // ceil(1000/4) = 250 -> 256
  }
}

// All subsets of the 6 blobs, in shuffled order: >= 4 decode exactly, fewer
// fail naming the count.
TEST(ChunkCodecTest, AnySubsetInAnyOrderK4M2) {
  std::mt19937 rng(99);
  const Bytes chunk = RandomBytes(rng, 3001);
  const std::vector<Bytes> blobs = EncodeOk(Id(1), chunk, 4, 2);
  for (int mask = 0; mask < (1 << 6); mask++) {
    SCOPED_TRACE("kept mask " + std::to_string(mask));
    std::vector<Bytes> subset;
    for (int i = 0; i < 6; i++) {
      if (mask & (1 << i)) subset.push_back(blobs[i]);
    }
    std::shuffle(subset.begin(), subset.end(), rng);
    auto out = DecodeChunkFromFragments(Id(1), subset, 4, 2, chunk.size());
    if (subset.size() >= 4) {
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, chunk);
    } else {
      ASSERT_FALSE(out.ok());
      EXPECT_EQ(out.status().code(), Code::kCorrupt);
      EXPECT_THAT(
          out.status().message(),
          HasSubstr("found " + std::to_string(subset.size()) +
                    " good fragments among " + std::to_string(subset.size()) +
                    " blobs, need k=4"));
    }
  }
}

TEST(ChunkCodecTest, ChunkLengthZeroAndOne) {
  for (size_t len : {size_t{0}, size_t{1}}) {
    const Bytes chunk(len, 0xee);
    auto blobs =
        EncodeChunkToFragments(Id(2), len ? chunk.data() : nullptr, len, 3, 2);
    ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
    std::vector<Bytes> last3(blobs->begin() + 2,
                             blobs->end());  // 1 data, 2 parity
    auto out = DecodeChunkFromFragments(Id(2), last3, 3, 2, len);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(*out, chunk);
  }
}

TEST(ChunkCodecTest, IgnoresBlobsOfOtherChunksOrLayouts) {
  const Bytes chunk(500, 0x11);
  const std::vector<Bytes> mine = EncodeOk(Id(1), chunk, 4, 2);
  const std::vector<Bytes> other_id = EncodeOk(Id(2), chunk, 4, 2);
  const std::vector<Bytes> other_km = EncodeOk(Id(1), chunk, 3, 3);
  const Bytes longer(501, 0x11);
  const std::vector<Bytes> other_len = EncodeOk(Id(1), longer, 4, 2);

  // 3 of mine plus plenty of impostors for the missing indices: not enough.
  std::vector<Bytes> blobs = {mine[0],     mine[1],      mine[5],
                              other_id[2], other_id[3],  other_km[2],
                              other_km[3], other_len[2], other_len[4]};
  auto out = DecodeChunkFromFragments(Id(1), blobs, 4, 2, chunk.size());
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(),
              HasSubstr("found 3 good fragments among 9 blobs, need k=4 (0 "
                        "damaged, 6 for another chunk or layout"));

  blobs.push_back(mine[3]);
  out = DecodeChunkFromFragments(Id(1), blobs, 4, 2, chunk.size());
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, chunk);
}

TEST(ChunkCodecTest, DuplicateIndices) {
  std::mt19937 rng(5);
  const Bytes chunk = RandomBytes(rng, 800);
  const std::vector<Bytes> blobs = EncodeOk(Id(3), chunk, 4, 2);

  // Identical duplicates count once: 3 distinct good fragments is too few.
  std::vector<Bytes> dup = {blobs[0], blobs[0], blobs[1], blobs[2], blobs[2]};
  auto out = DecodeChunkFromFragments(Id(3), dup, 4, 2, chunk.size());
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(),
              HasSubstr("found 3 good fragments among 5"));
  dup.push_back(blobs[4]);
  out = DecodeChunkFromFragments(Id(3), dup, 4, 2, chunk.size());
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, chunk);

  // A well-formed fragment with the same header but a different payload
  // (hash valid for its own payload) makes the index untrustworthy.
  auto p = ParseFragment(blobs[0].data(), blobs[0].size());
  ASSERT_TRUE(p.ok());
  Bytes forged_payload(p->second.begin(), p->second.end());
  forged_payload[0] ^= 1;
  const Bytes forged =
      EncodeFragment(p->first, forged_payload.data(), forged_payload.size());
  ASSERT_TRUE(ParseFragment(forged.data(), forged.size()).ok());
  for (bool forged_first : {false, true}) {
    std::vector<Bytes> set = {blobs[0], blobs[1], blobs[2], blobs[3]};
    set.insert(forged_first ? set.begin() : set.end(), forged);
    out = DecodeChunkFromFragments(Id(3), set, 4, 2, chunk.size());
    ASSERT_FALSE(out.ok());
    EXPECT_THAT(out.status().message(),
                HasSubstr("found 3 good fragments among 5 blobs, need k=4 (0 "
                          "damaged, 0 for another chunk or layout, 1 "
                          "conflicting indices)"));
    set.push_back(blobs[5]);  // index 5 replaces the distrusted index 0
    out = DecodeChunkFromFragments(Id(3), set, 4, 2, chunk.size());
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(*out, chunk);
  }
}

TEST(ChunkCodecTest, RejectsBadParameters) {
  const Bytes chunk(10, 1);
  EXPECT_EQ(EncodeChunkToFragments(Bytes(31, 0), chunk.data(), 10, 4, 2)
                .status()
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      EncodeChunkToFragments(Id(1), chunk.data(), 10, 0, 2).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(
      EncodeChunkToFragments(Id(1), chunk.data(), 10, 4, 17).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(EncodeChunkToFragments(Id(1), nullptr, 10, 4, 2).status().code(),
            Code::kInvalidArgument);
  const std::vector<Bytes> blobs = EncodeOk(Id(1), chunk, 4, 2);
  EXPECT_EQ(
      DecodeChunkFromFragments(Bytes(33, 1), blobs, 4, 2, 10).status().code(),
      Code::kInvalidArgument);
  EXPECT_EQ(DecodeChunkFromFragments(Id(1), blobs, 33, 2, 10).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(DecodeChunkFromFragments(Id(1), blobs, 4, 2, (size_t{4} << 28) + 1)
                .status()
                .code(),
            Code::kInvalidArgument);
}

// Ways a stored blob goes bad. Every one must be detected.
enum class Damage {
  kBitFlip,
  kHeaderBitFlip,
  kTruncate,
  kAppend,
  kGarbage,
  kOtherChunk,
  kDrop,
  kCount
};

// Random (k, m, len); damage c distinct blobs. c <= m: exact bytes. c > m: an
// error naming the number of good fragments; never bytes.
TEST(ChunkCodecTest, RandomizedDamage) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (int iter = 0; iter < 250; iter++) {
    const int k = RandomInt(rng, 1, 32);
    const int m = RandomInt(rng, 1, 16);
    const size_t len = size_t(RandomInt(rng, 0, 12000));
    const bool too_many = iter % 3 == 2;
    const int bad =
        too_many ? RandomInt(rng, m + 1, k + m) : RandomInt(rng, 0, m);
    SCOPED_TRACE("iter " + std::to_string(iter) + " k=" + std::to_string(k) +
                 " m=" + std::to_string(m) + " len=" + std::to_string(len) +
                 " bad=" + std::to_string(bad));
    const Bytes id = RandomBytes(rng, 32);
    const Bytes chunk = RandomBytes(rng, len);
    const std::vector<Bytes> blobs = EncodeOk(id, chunk, k, m);
    ASSERT_EQ(blobs.size(), size_t(k + m));
    Bytes other_id = id;
    other_id[0] ^= 1;
    const std::vector<Bytes> other = EncodeOk(other_id, chunk, k, m);

    std::vector<int> order(k + m);
    for (int i = 0; i < k + m; i++) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<Bytes> stored;
    for (int j = 0; j < k + m; j++) {
      const int i = order[j];
      Bytes b = blobs[i];
      if (j >= bad) {
        stored.push_back(std::move(b));
        continue;
      }
      const auto d = Damage(RandomInt(rng, 0, int(Damage::kCount) - 1));
      switch (d) {
        case Damage::kBitFlip:
          b[RandomInt(rng, 0, int(b.size()) - 1)] ^=
              uint8_t(1 << RandomInt(rng, 0, 7));
          break;
        case Damage::kHeaderBitFlip:
          b[RandomInt(rng, 0, int(kFragmentHeaderSizeV2) - 1)] ^=  // v2 header
              uint8_t(1 << RandomInt(rng, 0, 7));
          break;
        case Damage::kTruncate:
          b.resize(RandomInt(rng, 0, int(b.size()) - 1));
          break;
        case Damage::kAppend:
          b.resize(b.size() + RandomInt(rng, 1, 9), 0);
          break;
        case Damage::kGarbage:
          b = RandomBytes(rng, b.size());
          break;
        case Damage::kOtherChunk:
          b = other[i];
          break;
        case Damage::kDrop:
        case Damage::kCount:
          continue;
      }
      stored.push_back(std::move(b));
    }
    // Harmless noise: an identical copy of a blob, then any order.
    if (!stored.empty() && RandomInt(rng, 0, 1))
      stored.push_back(stored.back());
    std::shuffle(stored.begin(), stored.end(), rng);

    auto out = DecodeChunkFromFragments(id, stored, k, m, len);
    if (!too_many) {
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      ASSERT_EQ(*out, chunk);
    } else {
      ASSERT_FALSE(out.ok())
          << "decoded with only " << (k + m - bad) << " good fragments";
      EXPECT_EQ(out.status().code(), Code::kCorrupt);
      EXPECT_THAT(out.status().message(),
                  HasSubstr("found " + std::to_string(k + m - bad) +
                            " good fragments"));
    }
  }
}

// Building fragments in place gives exactly the bytes of the straightforward
// composition (ReedSolomon::Encode, then EncodeFragment per fragment).
TEST(ChunkCodecTest, InPlaceEncodeMatchesComposition) {
  std::mt19937 rng(3);
  for (auto [k, m, len] :
       std::vector<std::tuple<int, int, size_t>>{{8, 4, 1 << 16},
                                                 {8, 4, 12345},
                                                 {3, 2, 0},
                                                 {1, 1, 7},
                                                 {32, 16, 99999}}) {
    const Bytes chunk = erasure_test::RandomBytes(rng, len);
    auto blobs = EncodeChunkToFragments(Id(9), chunk.data(), len, k, m);
    ASSERT_TRUE(blobs.ok());
    auto rs = ReedSolomon::Create(k, m);
    ASSERT_TRUE(rs.ok());
    std::vector<Bytes> frags;
    ASSERT_TRUE(rs->Encode(chunk.data(), len, &frags).ok());
    ASSERT_EQ(blobs->size(), frags.size());
    for (size_t i = 0; i < frags.size(); i++) {
      FragmentHeader h;
      h.chunk_id = Id(9);
      h.index = uint8_t(i);
      h.k = uint8_t(k);
      h.m = uint8_t(m);
      h.chunk_len = len;
      EXPECT_EQ((*blobs)[i],
                EncodeFragment(h, frags[i].data(), frags[i].size()))
          << "k=" << k << " m=" << m << " len=" << len << " i=" << i;
    }
  }
}

// A forger's fragment: payload changed AND its check recomputed, as a
// malicious gateway would send it; it parses as good.
Bytes Forge(const Bytes& blob, std::mt19937& rng) {
  auto p = ParseFragment(blob.data(), blob.size());
  EXPECT_TRUE(p.ok());
  Bytes payload(p->second.begin(), p->second.end());
  const size_t n = 1 + rng() % 8;
  for (size_t j = 0; j < n; j++)
    payload[rng() % payload.size()] ^= uint8_t(1 + rng() % 255);
  Bytes forged = EncodeFragment(p->first, payload.data(), payload.size());
  EXPECT_TRUE(ParseFragment(forged.data(), forged.size()).ok());
  return forged;
}

// With all k+m fragments, 1 or 2 forged ones (any indexes, data or parity)
// are named and the right bytes returned; nothing is named when all agree.
TEST(ChunkCodecTest, ForgedFragmentsAreLocatedAndNamed) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (int iter = 0; iter < 60; iter++) {
    const int k = iter < 40 ? 8 : RandomInt(rng, 1, 12);
    const int m = iter < 40 ? 4 : RandomInt(rng, 4, 8);
    const size_t len = size_t(RandomInt(rng, 1, 70000));
    const int forged_n = 1 + iter % 2;
    SCOPED_TRACE("k=" + std::to_string(k) + " m=" + std::to_string(m) +
                 " len=" + std::to_string(len) +
                 " forged=" + std::to_string(forged_n));
    const Bytes chunk = RandomBytes(rng, len);
    std::vector<Bytes> blobs = EncodeOk(Id(4), chunk, k, m);
    auto clean = DecodeChunkChecked(Id(4), blobs, k, m, len);
    ASSERT_TRUE(clean.ok());
    EXPECT_TRUE(clean->forged.empty());
    EXPECT_EQ(clean->cross_checked, m);
    std::vector<int> idx(k + m);
    for (int i = 0; i < k + m; i++) idx[i] = i;
    std::shuffle(idx.begin(), idx.end(), rng);
    std::vector<int> want(idx.begin(), idx.begin() + forged_n);
    std::sort(want.begin(), want.end());
    for (int i : want) blobs[i] = Forge(blobs[i], rng);
    std::shuffle(blobs.begin(), blobs.end(), rng);  // any order
    auto out = DecodeChunkChecked(Id(4), blobs, k, m, len);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->forged, want);
    EXPECT_EQ(out->chunk, chunk);
    auto plain = DecodeChunkFromFragments(Id(4), blobs, k, m, len);
    ASSERT_TRUE(plain.ok());
    EXPECT_EQ(*plain, chunk);
  }
}

// Fewer fragments than k+m: locating needs 2 spare fragments per forgery;
// with one spare a forgery is detected (an error, never wrong bytes) but
// cannot be named; with none nothing can be checked.
TEST(ChunkCodecTest, ForgeryWithFewSpareFragments) {
  std::mt19937 rng(17);
  const Bytes chunk = RandomBytes(rng, 5000);
  const std::vector<Bytes> blobs = EncodeOk(Id(5), chunk, 4, 4);
  // 6 fragments (2 spare), fragment 2 forged: located.
  std::vector<Bytes> six(blobs.begin(), blobs.begin() + 6);
  six[2] = Forge(six[2], rng);
  auto out = DecodeChunkChecked(Id(5), six, 4, 4, chunk.size());
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->forged, std::vector<int>{2});
  EXPECT_EQ(out->chunk, chunk);
  // 5 fragments (1 spare), one forged: detected, not located.
  std::vector<Bytes> five(blobs.begin() + 1, blobs.begin() + 6);
  five[0] = Forge(five[0], rng);
  out = DecodeChunkChecked(Id(5), five, 4, 4, chunk.size());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kCorrupt);
  EXPECT_THAT(out.status().message(), HasSubstr("inconsistent"));
  // All 8, three forged (more than the 2 that can be located): the set is
  // inconsistent; it fails, unless the received words happen to lie within
  // 2 of another code word (bounded-distance decoding; then the client's
  // AEAD rejects the bytes). Either way no single fragment is named.
  std::vector<Bytes> eight = blobs;
  for (int i : {0, 1, 2}) eight[i] = Forge(eight[i], rng);
  out = DecodeChunkChecked(Id(5), eight, 4, 4, chunk.size());
  if (out.ok()) {
    EXPECT_EQ(out->forged.size(), 2u);
  } else {
    EXPECT_THAT(out.status().message(), HasSubstr("inconsistent"));
  }
}

}  // namespace
}  // namespace mistore
