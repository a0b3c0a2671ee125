#include "shared/erasure/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/shared/erasure/erasure_test_util.h"

namespace mistore {
namespace {

uint32_t OfString(const std::string& s) {
  return Crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Known answers: the check value of the CRC-32C catalogue entry and the
// iSCSI test vectors of RFC 3720, appendix B.4.
TEST(Crc32cTest, KnownAnswers) {
  EXPECT_EQ(OfString("123456789"), 0xE3069283u);
  EXPECT_EQ(OfString(""), 0u);
  std::vector<uint8_t> b(32, 0);
  EXPECT_EQ(Crc32c(b.data(), b.size()), 0x8A9136AAu);
  std::fill(b.begin(), b.end(), 0xff);
  EXPECT_EQ(Crc32c(b.data(), b.size()), 0x62A8AB43u);
  for (int i = 0; i < 32; i++) b[i] = uint8_t(i);
  EXPECT_EQ(Crc32c(b.data(), b.size()), 0x46DD794Eu);
  for (int i = 0; i < 32; i++) b[i] = uint8_t(31 - i);
  EXPECT_EQ(Crc32c(b.data(), b.size()), 0x113FDB5Cu);
  EXPECT_EQ(Crc32cPortable(b.data(), b.size()), 0x113FDB5Cu);
}

// Every implementation this build and CPU have agrees with the portable
// table on all lengths 0..300 at every alignment, and chaining works.
TEST(Crc32cTest, ImplementationsAgree) {
  const uint32_t seed = erasure_test::TestSeed();
  SCOPED_TRACE(erasure_test::SeedTrace(seed));
  std::mt19937 rng(seed);
  const Bytes data = erasure_test::RandomBytes(rng, 4096 + 16);
  int available = 0;
  for (const char* name : {"isa-l", "sse4.2", "armv8-crc", "table"}) {
    uint32_t out = 0;
    if (!Crc32cWith(name, data.data(), 9, 0, &out)) continue;
    available++;
    SCOPED_TRACE(name);
    for (size_t off = 0; off < 16; off++) {
      for (size_t len = 0; len <= 300; len++) {
        ASSERT_TRUE(Crc32cWith(name, data.data() + off, len, 0, &out));
        ASSERT_EQ(out, Crc32cPortable(data.data() + off, len))
            << off << " " << len;
      }
    }
    ASSERT_TRUE(Crc32cWith(name, data.data(), 4096, 0, &out));
    uint32_t a = 0, b = 0;
    ASSERT_TRUE(Crc32cWith(name, data.data(), 1000, 0, &a));
    ASSERT_TRUE(Crc32cWith(name, data.data() + 1000, 3096, a, &b));
    EXPECT_EQ(b, out);
  }
  EXPECT_GE(available, 1);
  EXPECT_EQ(Crc32c(data.data(), 4096), Crc32cPortable(data.data(), 4096));
  EXPECT_NE(std::string(Crc32cImplementation()), "");
  uint32_t unused = 0;
  EXPECT_FALSE(Crc32cWith("nonsense", data.data(), 1, 0, &unused));
}

// Any single-bit change of a 64 KiB buffer changes the CRC.
TEST(Crc32cTest, DetectsBitFlips) {
  std::mt19937 rng(5);
  Bytes data = erasure_test::RandomBytes(rng, 65536);
  const uint32_t good = Crc32c(data.data(), data.size());
  for (int i = 0; i < 2000; i++) {
    const size_t bit = rng() % (data.size() * 8);
    data[bit / 8] ^= uint8_t(1 << (bit % 8));
    EXPECT_NE(Crc32c(data.data(), data.size()), good) << bit;
    data[bit / 8] ^= uint8_t(1 << (bit % 8));
  }
}

}  // namespace
}  // namespace mistore
