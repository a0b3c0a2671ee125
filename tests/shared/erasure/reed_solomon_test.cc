#include "shared/erasure/reed_solomon.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "tests/shared/erasure/erasure_test_util.h"

namespace mistore {
namespace {

using erasure_test::RandomBytes;
using erasure_test::RandomInt;
using erasure_test::SeedTrace;
using erasure_test::TestSeed;
using ::testing::HasSubstr;

ReedSolomon MakeRs(int k, int m) {
  auto rs = ReedSolomon::Create(k, m);
  MS_ASSERT(rs.ok());
  return std::move(rs).value();
}

std::vector<Bytes> EncodeOk(const ReedSolomon& rs, const Bytes& chunk) {
  std::vector<Bytes> fragments;
  Status st = rs.Encode(chunk.data(), chunk.size(), &fragments);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return fragments;
}

std::vector<std::optional<Bytes>> AllPresent(const std::vector<Bytes>& f) {
  return std::vector<std::optional<Bytes>>(f.begin(), f.end());
}

TEST(ReedSolomonTest, CreateValidatesParameters) {
  for (auto [k, m] : std::vector<std::pair<int, int>>{
           {0, 1}, {-1, 1}, {33, 1}, {1, 0}, {1, -2}, {1, 17}, {0, 0}}) {
    auto rs = ReedSolomon::Create(k, m);
    ASSERT_FALSE(rs.ok()) << k << "," << m;
    EXPECT_EQ(rs.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(rs.status().message(), HasSubstr("out of range"));
  }
  for (auto [k, m] : std::vector<std::pair<int, int>>{
           {1, 1}, {32, 16}, {1, 16}, {32, 1}, {4, 2}}) {
    auto rs = ReedSolomon::Create(k, m);
    ASSERT_TRUE(rs.ok()) << rs.status().ToString();
    EXPECT_EQ(rs->k(), k);
    EXPECT_EQ(rs->m(), m);
  }
}

TEST(ReedSolomonTest, FragmentSizeRoundsUpToMultipleOfEight) {
  EXPECT_EQ(ReedSolomon::FragmentSize(0, 1), 8u);
  EXPECT_EQ(ReedSolomon::FragmentSize(0, 32), 8u);
  EXPECT_EQ(ReedSolomon::FragmentSize(1, 4), 8u);
  EXPECT_EQ(ReedSolomon::FragmentSize(32, 4), 8u);
  EXPECT_EQ(ReedSolomon::FragmentSize(33, 4), 16u);   // ceil(33/4)=9 -> 16
  EXPECT_EQ(ReedSolomon::FragmentSize(100, 3), 40u);  // ceil=34 -> 40
  EXPECT_EQ(ReedSolomon::FragmentSize(64, 1), 64u);
  EXPECT_EQ(ReedSolomon::FragmentSize(65, 1), 72u);
  EXPECT_EQ(ReedSolomon::FragmentSize(size_t{64} << 20, 1), size_t{64} << 20);
  // No overflow for absurd lengths: the result just exceeds the maximum.
  EXPECT_GT(ReedSolomon::FragmentSize(SIZE_MAX, 1),
            ReedSolomon::kMaxFragmentSize);
  EXPECT_EQ(ReedSolomon::FragmentSize(SIZE_MAX, 1) % 8, 0u);
}

TEST(ReedSolomonTest, EncodeIsSystematicAndZeroPadded) {
  ReedSolomon rs = MakeRs(3, 2);
  Bytes chunk(50);
  for (size_t i = 0; i < chunk.size(); i++) chunk[i] = uint8_t(i + 1);
  std::vector<Bytes> f = EncodeOk(rs, chunk);
  ASSERT_EQ(f.size(), 5u);
  const size_t fs = ReedSolomon::FragmentSize(50, 3);  // ceil(50/3)=17 -> 24
  ASSERT_EQ(fs, 24u);
  for (const Bytes& x : f) EXPECT_EQ(x.size(), fs);
  Bytes concat;
  for (int i = 0; i < 3; i++)
    concat.insert(concat.end(), f[i].begin(), f[i].end());
  Bytes expected = chunk;
  expected.resize(3 * fs, 0);
  EXPECT_EQ(concat, expected);
}

// Multiplication in GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 (0x11d),
// gf-complete's default for w=8; written out here to check Jerasure
// independently.
uint8_t GfMul(uint8_t a, uint8_t b) {
  unsigned r = 0;
  unsigned x = a;
  for (; b != 0; b >>= 1) {
    if (b & 1) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  return uint8_t(r);
}

// The coding matrix is part of the stored format: fragments written today
// must decode after a library upgrade. For k=3, m=2 Jerasure's Vandermonde
// coding matrix is [[1, 1, 1], [1, 245, 244]]; the parity bytes are checked
// against that matrix with the independent GfMul above and pinned as hex.
TEST(ReedSolomonTest, ParityBytesArePinned) {
  ReedSolomon rs = MakeRs(3, 2);
  Bytes chunk(24);
  for (size_t i = 0; i < chunk.size(); i++) chunk[i] = uint8_t(i * i * 31 + 7);
  std::vector<Bytes> f = EncodeOk(rs, chunk);
  ASSERT_EQ(f.size(), 5u);
  Bytes p0(8);
  Bytes p1(8);
  for (int j = 0; j < 8; j++) {
    p0[j] = f[0][j] ^ f[1][j] ^ f[2][j];
    p1[j] = f[0][j] ^ GfMul(245, f[1][j]) ^ GfMul(244, f[2][j]);
  }
  EXPECT_EQ(f[3], p0);
  EXPECT_EQ(f[4], p1);
  EXPECT_EQ(ToHex(f[3]), "c7f6e30ef71e03a6");
  EXPECT_EQ(ToHex(f[4]), "804b804b808b8080");
}

TEST(ReedSolomonTest, EveryPatternOfUpToTwoLossesDecodesK4M2) {
  ReedSolomon rs = MakeRs(4, 2);
  std::mt19937 rng(1234);
  for (size_t len : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{33},
                     size_t{1000}, size_t{4096}, size_t{65537}}) {
    SCOPED_TRACE("len " + std::to_string(len));
    const Bytes chunk = RandomBytes(rng, len);
    const std::vector<Bytes> f = EncodeOk(rs, chunk);
    ASSERT_EQ(f.size(), 6u);
    int patterns = 0;
    for (int mask = 0; mask < (1 << 6); mask++) {
      if (std::popcount(unsigned(mask)) > 2) continue;
      patterns++;
      SCOPED_TRACE("erased mask " + std::to_string(mask));
      auto frags = AllPresent(f);
      for (int i = 0; i < 6; i++) {
        if (mask & (1 << i)) frags[i].reset();
      }
      auto out = rs.Decode(frags, len);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_EQ(*out, chunk);
      // Erased data fragments are rebuilt in place; parity stays erased.
      for (int i = 0; i < 6; i++) {
        if (i < 4 || !(mask & (1 << i))) {
          ASSERT_TRUE(frags[i].has_value()) << i;
          EXPECT_EQ(*frags[i], f[i]) << i;
        } else {
          EXPECT_FALSE(frags[i].has_value()) << i;
        }
      }
    }
    EXPECT_EQ(patterns, 1 + 6 + 15);
  }
}

TEST(ReedSolomonTest, TooFewFragmentsIsAnErrorAndLeavesInputAlone) {
  ReedSolomon rs = MakeRs(4, 2);
  const Bytes chunk(100, 0xab);
  const std::vector<Bytes> f = EncodeOk(rs, chunk);
  for (int mask = 0; mask < (1 << 6); mask++) {
    if (std::popcount(unsigned(mask)) <= 2) continue;
    auto frags = AllPresent(f);
    for (int i = 0; i < 6; i++) {
      if (mask & (1 << i)) frags[i].reset();
    }
    const auto before = frags;
    auto out = rs.Decode(frags, chunk.size());
    ASSERT_FALSE(out.ok()) << mask;
    EXPECT_EQ(out.status().code(), Code::kCorrupt);
    EXPECT_THAT(
        out.status().message(),
        HasSubstr("only " + std::to_string(6 - std::popcount(unsigned(mask))) +
                  " of 6 fragments present, need 4"));
    EXPECT_EQ(frags, before);
  }
}

TEST(ReedSolomonTest, RejectsMalformedInput) {
  ReedSolomon rs = MakeRs(4, 2);
  const Bytes chunk(100, 7);
  const std::vector<Bytes> f = EncodeOk(rs, chunk);

  auto wrong_count = AllPresent(f);
  wrong_count.pop_back();
  auto r1 = rs.Decode(wrong_count, chunk.size());
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(r1.status().message(), HasSubstr("expected k+m=6"));

  auto wrong_size = AllPresent(f);
  wrong_size[2]->push_back(0);
  auto r2 = rs.Decode(wrong_size, chunk.size());
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(r2.status().message(),
              HasSubstr("fragment 2 has 33 bytes, expected 32"));

  // A chunk length that implies another fragment size is caught too.
  auto frags = AllPresent(f);
  auto r3 = rs.Decode(frags, 200);
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().code(), Code::kInvalidArgument);

  auto r4 = rs.Decode(frags, rs.MaxChunkLen() + 1);
  ASSERT_FALSE(r4.ok());
  EXPECT_EQ(r4.status().code(), Code::kInvalidArgument);

  std::vector<Bytes> out;
  EXPECT_EQ(rs.Encode(nullptr, 5, &out).code(), Code::kInvalidArgument);
  EXPECT_EQ(rs.Encode(chunk.data(), chunk.size(), nullptr).code(),
            Code::kInvalidArgument);
  Status big = rs.Encode(chunk.data(), rs.MaxChunkLen() + 1, &out);
  EXPECT_EQ(big.code(), Code::kInvalidArgument);  // checked before reading
  EXPECT_TRUE(out.empty());
}

TEST(ReedSolomonTest, ChunkLengthZeroAndOne) {
  for (int k : {1, 2, 4, 32}) {
    for (int m : {1, 3, 16}) {
      SCOPED_TRACE("k=" + std::to_string(k) + " m=" + std::to_string(m));
      ReedSolomon rs = MakeRs(k, m);
      for (size_t len : {size_t{0}, size_t{1}}) {
        const Bytes chunk(len, 0x5a);
        std::vector<Bytes> f;
        ASSERT_TRUE(rs.Encode(len ? chunk.data() : nullptr, len, &f).ok());
        ASSERT_EQ(f.size(), size_t(k + m));
        for (const Bytes& x : f) EXPECT_EQ(x.size(), 8u);
        if (len == 1) {
          EXPECT_EQ(f[0][0], 0x5a);
        }
        // Lose the first m fragments (all data if m >= k).
        auto frags = AllPresent(f);
        for (int i = 0; i < m; i++) frags[i].reset();
        auto out = rs.Decode(frags, len);
        ASSERT_TRUE(out.ok()) << out.status().ToString();
        EXPECT_EQ(*out, chunk);
      }
    }
  }
}

// Random (k, m, len); random erasures. Up to m lost: exact bytes. More than
// m lost: an error, never bytes.
TEST(ReedSolomonTest, RandomizedRoundTrip) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (int iter = 0; iter < 300; iter++) {
    const int k = RandomInt(rng, 1, ReedSolomon::kMaxK);
    const int m = RandomInt(rng, 1, ReedSolomon::kMaxM);
    const size_t len = RandomInt(rng, 0, 3) == 0
                           ? size_t(RandomInt(rng, 0, 16))
                           : size_t(RandomInt(rng, 0, 20000));
    SCOPED_TRACE("iter " + std::to_string(iter) + " k=" + std::to_string(k) +
                 " m=" + std::to_string(m) + " len=" + std::to_string(len));
    ReedSolomon rs = MakeRs(k, m);
    const Bytes chunk = RandomBytes(rng, len);
    const std::vector<Bytes> f = EncodeOk(rs, chunk);
    ASSERT_EQ(f.size(), size_t(k + m));

    std::vector<int> order(k + m);
    for (int i = 0; i < k + m; i++) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);

    const int lost = RandomInt(rng, 0, m);
    auto frags = AllPresent(f);
    for (int i = 0; i < lost; i++) frags[order[i]].reset();
    auto out = rs.Decode(frags, len);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(*out, chunk);

    const int too_many = RandomInt(rng, m + 1, k + m);
    auto frags2 = AllPresent(f);
    for (int i = 0; i < too_many; i++) frags2[order[i]].reset();
    auto out2 = rs.Decode(frags2, len);
    ASSERT_FALSE(out2.ok());
    EXPECT_EQ(out2.status().code(), Code::kCorrupt);
  }
}

// The aligned-scratch path (taken when a buffer is not 16-byte aligned, e.g.
// on 32-bit ARM) must produce the same bytes as the direct path.
TEST(ReedSolomonTest, ScratchPathMatchesDirectPath) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (int iter = 0; iter < 40; iter++) {
    const int k = RandomInt(rng, 1, 12);
    const int m = RandomInt(rng, 1, 6);
    const size_t len = size_t(RandomInt(rng, 0, 5000));
    SCOPED_TRACE("k=" + std::to_string(k) + " m=" + std::to_string(m) +
                 " len=" + std::to_string(len));
    ReedSolomon direct = MakeRs(k, m);
    ReedSolomon scratch = MakeRs(k, m);
    scratch.set_force_scratch_for_testing(true);
    const Bytes chunk = RandomBytes(rng, len);
    const std::vector<Bytes> f1 = EncodeOk(direct, chunk);
    const std::vector<Bytes> f2 = EncodeOk(scratch, chunk);
    ASSERT_EQ(f1, f2);
    auto frags = AllPresent(f1);
    for (int i = 0; i < std::min(m, k); i++) frags[i].reset();  // data lost
    auto out = scratch.Decode(frags, len);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(*out, chunk);
    for (int i = 0; i < k; i++) EXPECT_EQ(*frags[i], f1[i]);
  }
}

TEST(ReedSolomonTest, MovedObjectKeepsWorking) {
  ReedSolomon a = MakeRs(5, 3);
  ReedSolomon b = std::move(a);
  ReedSolomon c = MakeRs(1, 1);
  c = std::move(b);
  EXPECT_EQ(c.k(), 5);
  EXPECT_EQ(c.m(), 3);
  const Bytes chunk(777, 0x42);
  auto frags = AllPresent(EncodeOk(c, chunk));
  frags[0].reset();
  frags[4].reset();
  frags[6].reset();
  auto out = c.Decode(frags, chunk.size());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, chunk);
}

// Several threads, each with its own object (and a shared one), encoding and
// decoding at once: results must match a single-threaded reference.
TEST(ReedSolomonTest, ConcurrentUse) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  const Bytes chunk = RandomBytes(rng, 50000);
  ReedSolomon shared = MakeRs(6, 3);
  const std::vector<Bytes> reference = EncodeOk(shared, chunk);

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&, t] {
      ReedSolomon own = MakeRs(6, 3);
      for (int iter = 0; iter < 50; iter++) {
        const ReedSolomon& rs = (iter + t) % 2 ? own : shared;
        std::vector<Bytes> f;
        if (!rs.Encode(chunk.data(), chunk.size(), &f).ok() || f != reference) {
          failures++;
          continue;
        }
        auto frags = AllPresent(f);
        frags[(iter + t) % 9].reset();
        frags[(iter + t + 4) % 9].reset();
        frags[(iter * 7 + t) % 9].reset();
        auto out = rs.Decode(frags, chunk.size());
        if (!out.ok() || *out != chunk) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// Regions at different offsets modulo 16 (which gf-complete's SIMD multiply
// cannot take directly) give the same parity as aligned ones.
TEST(ReedSolomonTest, NonCongruentRegionsMatchAligned) {
  ReedSolomon rs = MakeRs(5, 3);
  const size_t fs = 1000;
  std::mt19937 rng(7);
  const Bytes chunk = RandomBytes(rng, 5 * fs);
  std::vector<Bytes> ref;
  ASSERT_TRUE(rs.Encode(chunk.data(), chunk.size(), &ref).ok());
  Bytes arena(8 * (fs + 32));
  std::vector<const uint8_t*> data(5);
  std::vector<uint8_t*> parity(3);
  for (int i = 0; i < 8; i++) {
    uint8_t* p =
        arena.data() + i * (fs + 32) + (i * 3) % 16;  // residues differ
    if (i < 5) {
      std::memcpy(p, chunk.data() + i * fs, fs);
      data[i] = p;
    } else {
      parity[i - 5] = p;
    }
  }
  rs.EncodeRegions(data.data(), parity.data(), fs);
  for (int j = 0; j < 3; j++)
    EXPECT_EQ(Bytes(parity[j], parity[j] + fs), ref[5 + j]) << j;
}

// Decode matrices are built once per erasure pattern and reused.
TEST(ReedSolomonTest, DecodePatternsAreCached) {
  ReedSolomon rs = MakeRs(4, 2);
  const Bytes chunk(4000, 0x5a);
  const std::vector<Bytes> f = EncodeOk(rs, chunk);
  EXPECT_EQ(rs.cached_patterns_for_testing(), 0u);
  for (int round = 0; round < 3; round++) {
    auto frags = AllPresent(f);
    frags[1].reset();
    frags[2].reset();
    auto out = rs.Decode(frags, chunk.size());
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, chunk);
    EXPECT_EQ(rs.cached_patterns_for_testing(), 1u);
  }
  auto frags = AllPresent(f);
  frags[0].reset();
  ASSERT_TRUE(rs.Decode(frags, chunk.size()).ok());
  EXPECT_EQ(rs.cached_patterns_for_testing(), 2u);
}

// ComputeRegions rebuilds parity as well as data, from any k fragments in
// any order.
TEST(ReedSolomonTest, ComputeRegionsRebuildsAnyFragment) {
  ReedSolomon rs = MakeRs(3, 3);
  std::mt19937 rng(11);
  const Bytes chunk = RandomBytes(rng, 3 * 64);
  const std::vector<Bytes> f = EncodeOk(rs, chunk);
  const std::vector<int> from = {5, 1, 3};
  const uint8_t* src[3] = {f[5].data(), f[1].data(), f[3].data()};
  const std::vector<int> to = {4, 0, 2};
  Bytes out(3 * 64);
  uint8_t* dst[3] = {out.data(), out.data() + 64, out.data() + 128};
  ASSERT_TRUE(rs.ComputeRegions(from, src, to, dst, 64).ok());
  EXPECT_EQ(Bytes(dst[0], dst[0] + 64), f[4]);
  EXPECT_EQ(Bytes(dst[1], dst[1] + 64), f[0]);
  EXPECT_EQ(Bytes(dst[2], dst[2] + 64), f[2]);
  EXPECT_FALSE(rs.ComputeRegions({0, 1}, src, to, dst, 64).ok());
  EXPECT_FALSE(rs.ComputeRegions({0, 1, 1}, src, to, dst, 64).ok());
  EXPECT_FALSE(rs.ComputeRegions({0, 1, 2}, src, {2}, dst, 64).ok());
  EXPECT_FALSE(rs.ComputeRegions({0, 1, 6}, src, to, dst, 64).ok());
}

TEST(ReedSolomonTest, SharedIsOnePerKM) {
  auto a = ReedSolomon::Shared(8, 4);
  auto b = ReedSolomon::Shared(8, 4);
  auto c = ReedSolomon::Shared(4, 2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
  EXPECT_EQ((*c)->k(), 4);
  EXPECT_FALSE(ReedSolomon::Shared(33, 1).ok());
}

// The ISA-L backend computes with Jerasure's generator matrix: over random
// k <= 32, m <= 16 and sizes, its fragments are byte-identical to Jerasure's
// and its decodes (random erasures up to m) identical too.
TEST(ReedSolomonTest, IsalMatchesJerasure) {
  if (!ReedSolomon::HasIsal()) GTEST_SKIP() << "built without ISA-L";
  EXPECT_EQ(ReedSolomon::DefaultBackend(), ReedSolomon::Backend::kIsal);
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  for (int iter = 0; iter < 60; iter++) {
    const int k = RandomInt(rng, 1, ReedSolomon::kMaxK);
    const int m = RandomInt(rng, 1, ReedSolomon::kMaxM);
    const size_t len =
        size_t(RandomInt(rng, 0, iter % 4 == 0 ? 300000 : 20000));
    SCOPED_TRACE("k=" + std::to_string(k) + " m=" + std::to_string(m) +
                 " len=" + std::to_string(len));
    auto jer = ReedSolomon::Create(k, m, ReedSolomon::Backend::kJerasure);
    auto isal = ReedSolomon::Create(k, m, ReedSolomon::Backend::kIsal);
    ASSERT_TRUE(jer.ok() && isal.ok());
    ASSERT_EQ(isal->backend(), ReedSolomon::Backend::kIsal);
    const Bytes chunk = RandomBytes(rng, len);
    const std::vector<Bytes> fj = EncodeOk(*jer, chunk);
    const std::vector<Bytes> fi = EncodeOk(*isal, chunk);
    ASSERT_EQ(fj, fi);
    // Same erasures for both; up to m of them, data and parity alike.
    std::vector<int> order(k + m);
    for (int i = 0; i < k + m; i++) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    const int lost = RandomInt(rng, 0, m);
    auto dj = AllPresent(fj);
    auto di = AllPresent(fi);
    for (int i = 0; i < lost; i++) {
      dj[order[i]].reset();
      di[order[i]].reset();
    }
    auto oj = jer->Decode(dj, len);
    auto oi = isal->Decode(di, len);
    ASSERT_TRUE(oj.ok() && oi.ok());
    EXPECT_EQ(*oj, chunk);
    EXPECT_EQ(*oi, chunk);
    for (int i = 0; i < k; i++) EXPECT_EQ(*dj[i], *di[i]) << i;
    // Rebuilding parity from a random k as well.
    std::vector<int> from(order.begin() + (k + m - k), order.end());
    std::vector<int> to(order.begin(), order.begin() + m);
    std::vector<const uint8_t*> src;
    for (int i : from) src.push_back(fj[i].data());
    const size_t fs = fj[0].size();
    Bytes bj(to.size() * fs), bi(to.size() * fs);
    std::vector<uint8_t*> pj, pi;
    for (size_t t = 0; t < to.size(); t++) {
      pj.push_back(bj.data() + t * fs);
      pi.push_back(bi.data() + t * fs);
    }
    ASSERT_TRUE(jer->ComputeRegions(from, src.data(), to, pj.data(), fs).ok());
    ASSERT_TRUE(isal->ComputeRegions(from, src.data(), to, pi.data(), fs).ok());
    EXPECT_EQ(bj, bi);
    for (size_t t = 0; t < to.size(); t++)
      EXPECT_EQ(Bytes(pi[t], pi[t] + fs), fj[to[t]]) << to[t];
  }
}

}  // namespace
}  // namespace mistore
