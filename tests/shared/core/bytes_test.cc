#include "shared/core/bytes.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

namespace mistore {
namespace {

// $MISTORE_TEST_SEED replays a failure; otherwise a fresh seed (printed).
uint32_t TestSeed() {
  if (const char* env = std::getenv("MISTORE_TEST_SEED")) return uint32_t(std::strtoul(env, nullptr, 10));
  return std::random_device{}();
}

TEST(BytesTest, PutLe16KnownBytes) {
  uint8_t b[2] = {0, 0};
  PutLe16(b, 0xa1b2);
  EXPECT_EQ(b[0], 0xb2);
  EXPECT_EQ(b[1], 0xa1);
  EXPECT_EQ(GetLe16(b), 0xa1b2);
}

TEST(BytesTest, PutLe32KnownBytes) {
  uint8_t b[4] = {};
  PutLe32(b, 0x01020304u);
  EXPECT_EQ(b[0], 0x04);
  EXPECT_EQ(b[1], 0x03);
  EXPECT_EQ(b[2], 0x02);
  EXPECT_EQ(b[3], 0x01);
  EXPECT_EQ(GetLe32(b), 0x01020304u);
}

TEST(BytesTest, PutLe64KnownBytes) {
  uint8_t b[8] = {};
  PutLe64(b, 0x0102030405060708ull);
  const uint8_t want[8] = {8, 7, 6, 5, 4, 3, 2, 1};
  for (int i = 0; i < 8; i++) EXPECT_EQ(b[i], want[i]) << "byte " << i;
  EXPECT_EQ(GetLe64(b), 0x0102030405060708ull);
}

TEST(BytesTest, GetLeKnownBytesHighBitsSet) {
  const uint8_t b[8] = {0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88};
  EXPECT_EQ(GetLe16(b), 0xeeffu);
  EXPECT_EQ(GetLe32(b), 0xccddeeffu);
  EXPECT_EQ(GetLe64(b), 0x8899aabbccddeeffull);
}

TEST(BytesTest, PutLeDoesNotTouchNeighbours) {
  uint8_t b[6] = {0x55, 0x55, 0x55, 0x55, 0x55, 0x55};
  PutLe32(b + 1, 0);
  EXPECT_EQ(b[0], 0x55);
  EXPECT_EQ(b[5], 0x55);
  EXPECT_EQ(GetLe32(b + 1), 0u);
}

TEST(BytesTest, RoundTripRandom) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with MISTORE_TEST_SEED)");
  std::mt19937 rng(seed);
  for (int i = 0; i < 1000; i++) {
    uint64_t v = (uint64_t(rng()) << 32) | rng();
    uint8_t b[8];
    PutLe64(b, v);
    ASSERT_EQ(GetLe64(b), v);
    PutLe32(b, uint32_t(v));
    ASSERT_EQ(GetLe32(b), uint32_t(v));
    PutLe16(b, uint16_t(v));
    ASSERT_EQ(GetLe16(b), uint16_t(v));
  }
}

TEST(BytesTest, ToHexKnownAnswer) {
  EXPECT_EQ(ToHex(Bytes{}), "");
  EXPECT_EQ(ToHex(Bytes{0x00, 0x01, 0x7f, 0x80, 0xab, 0xff}), "00017f80abff");
  EXPECT_EQ(ToHex(std::string_view("AZ")), "415a");
}

TEST(BytesTest, FromHexKnownAnswer) {
  Bytes out;
  ASSERT_TRUE(FromHex("00017f80abff", &out));
  EXPECT_EQ(out, (Bytes{0x00, 0x01, 0x7f, 0x80, 0xab, 0xff}));
  ASSERT_TRUE(FromHex("ABcdEF", &out));
  EXPECT_EQ(out, (Bytes{0xab, 0xcd, 0xef}));
  ASSERT_TRUE(FromHex("", &out));
  EXPECT_TRUE(out.empty());
}

TEST(BytesTest, FromHexReplacesPreviousContents) {
  Bytes out{1, 2, 3, 4};
  ASSERT_TRUE(FromHex("09", &out));
  EXPECT_EQ(out, Bytes{0x09});
}

TEST(BytesTest, FromHexRejectsOddLength) {
  Bytes out;
  EXPECT_FALSE(FromHex("a", &out));
  EXPECT_FALSE(FromHex("abc", &out));
}

TEST(BytesTest, FromHexRejectsBadDigits) {
  Bytes out;
  for (const char* bad : {"0g", "g0", "zz", "0x12", "1 ", " 1", "-1", "ab:d", "@0", "0G"}) {
    EXPECT_FALSE(FromHex(bad, &out)) << bad;
  }
  // Characters just outside the digit ranges.
  for (char c : {'/', ':', '`', 'g', '@', 'G'}) {
    std::string s = std::string("0") + c;
    EXPECT_FALSE(FromHex(s, &out)) << s;
  }
}

TEST(BytesTest, HexRoundTripRandom) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with MISTORE_TEST_SEED)");
  std::mt19937 rng(seed);
  for (int i = 0; i < 200; i++) {
    Bytes b(rng() % 64);
    for (auto& x : b) x = uint8_t(rng());
    std::string hex = ToHex(b);
    ASSERT_EQ(hex.size(), 2 * b.size());
    Bytes back;
    ASSERT_TRUE(FromHex(hex, &back));
    ASSERT_EQ(back, b);
  }
}

}  // namespace
}  // namespace mistore
