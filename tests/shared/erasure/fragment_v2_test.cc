// Fragment format version 2 (CRC32C checks) and reading version 1 beside it.
// fragment_test.cc covers version 1 alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/crc32c.h"
#include "shared/erasure/fragment.h"
#include "shared/erasure/reed_solomon.h"
#include "tests/shared/erasure/fragment_test_util.h"

namespace mistore {
namespace {

using ::testing::HasSubstr;
using fragment_test::ExpectCorrupt;
using fragment_test::MakeHeader;
using fragment_test::ParseStatus;
using fragment_test::TestChunkId;

// chunk_len 10, k=2, m=1 -> 8-byte payload, 80 bytes in version 2.
Bytes SmallFragment() {
  const Bytes payload = {1, 2, 3, 4, 5, 0, 0, 0};
  return EncodeFragment(MakeHeader(2, 1, 2, 1, 10), payload.data(),
                        payload.size());
}

void Reseal(Bytes* blob) {
  PutLe32(blob->data() + 68, Crc32c(blob->data(), 68));
}

Bytes ReadTestData(const std::string& name) {
  const std::string path = std::string(MISTORE_ERASURE_TESTDATA) + "/" + name;
  FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  Bytes out;
  if (f == nullptr) return out;
  uint8_t buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

Bytes KatPayload() {
  Bytes p(0x490);
  for (size_t i = 0; i < p.size(); i++) p[i] = uint8_t(i * 7);
  return p;
}

// Known-answer files (tests/shared/erasure/testdata, written by
// make_fragment_kat.py from the format description, not by this encoder):
// they parse to fixed values, and the encoder reproduces them byte for byte.
TEST(FragmentV2Test, KnownAnswerFiles) {
  const Bytes payload = KatPayload();
  for (uint16_t version : {1, 2}) {
    SCOPED_TRACE("version " + std::to_string(version));
    const Bytes file =
        ReadTestData("fragment_v" + std::to_string(version) + "_kat.bin");
    ASSERT_EQ(file.size(), (version == 1 ? 100u : 72u) + 0x490u);
    auto r = ParseFragment(file.data(), file.size());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const FragmentHeader& h = r->first;
    EXPECT_EQ(h.version, version);
    EXPECT_EQ(h.header_len(), version == 1 ? 100u : 72u);
    EXPECT_EQ(h.chunk_id, TestChunkId());
    EXPECT_EQ(h.index, 5);
    EXPECT_EQ(h.k, 4);
    EXPECT_EQ(h.m, 2);
    EXPECT_EQ(h.chunk_len, 0x1234u);
    EXPECT_EQ(h.payload_len, 0x490u);
    EXPECT_EQ(Bytes(r->second.begin(), r->second.end()), payload);
    if (version == 2) {
      EXPECT_EQ(h.payload_crc32c, 0xdbc32e4fu);
      EXPECT_EQ(
          ToHex(file.data(), 72),
          "4d53465202004800"  // magic, version 2, header length 72
          "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
          "0504020000000000"  // index 5, k 4, m 2, reserved
          "3412000000000000"  // chunk length 0x1234
          "9004000000000000"  // payload length 0x490
          "4f2ec3db"          // payload crc32c
          "40a09bb8");        // header crc32c
    }
    EXPECT_EQ(EncodeFragment(MakeHeader(version, 5, 4, 2, 0x1234),
                             payload.data(), payload.size()),
              file);
  }
}

TEST(FragmentV2Test, WritesVersion2ByDefault) {
  FragmentHeader h;
  EXPECT_EQ(h.version, 2);
  const Bytes chunk(1000, 7);
  auto blobs =
      EncodeChunkToFragments(TestChunkId(), chunk.data(), chunk.size(), 4, 2);
  ASSERT_TRUE(blobs.ok());
  for (const Bytes& b : *blobs) {
    EXPECT_EQ(b.size(), 72u + ReedSolomon::FragmentSize(1000, 4));
    EXPECT_EQ(GetLe16(b.data() + 4), 2);
  }
}

TEST(FragmentV2Test, RejectsTruncationAtEveryLength) {
  const Bytes b = SmallFragment();
  ASSERT_EQ(b.size(), 80u);
  ASSERT_TRUE(ParseStatus(b).ok());
  for (size_t len = 0; len < b.size(); len++) {
    SCOPED_TRACE("len " + std::to_string(len));
    const Bytes cut(b.begin(), b.begin() + len);  // exact size for ASan
    ExpectCorrupt(cut, "fragment truncated");
    if (len < 72) {
      auto h = ParseFragmentHeader(cut.data(), cut.size());
      ASSERT_FALSE(h.ok());
      EXPECT_THAT(h.status().message(), HasSubstr("truncated"));
    }
  }
}

TEST(FragmentV2Test, RejectsEveryHeaderBitFlip) {
  // Version 2 -> 3 (bit 0) is unknown; 2 -> 0 (bit 1) too; no single flip
  // reaches version 1 (whose 100-byte header this 72-byte one could not be).
  fragment_test::ExpectEveryHeaderBitFlipRejected(SmallFragment(), 72,
                                                  "bad header check (crc32c)");
}

TEST(FragmentV2Test, RejectsPayloadCorruption) {
  fragment_test::ExpectEveryPayloadFlipRejected(SmallFragment(), 72, 0x01,
                                                "payload crc32c mismatch (index 1)");
}

// The classes of bad input have distinct messages in version 2 as well.
TEST(FragmentV2Test, ErrorMessagesAreDistinct) {
  const Bytes good = SmallFragment();
  std::vector<std::pair<Bytes, std::string>> cases;
  cases.push_back({Bytes(good.begin(), good.begin() + 50), "truncated"});
  Bytes b = good;
  b[4] = 7;
  cases.push_back({b, "unknown format version 7"});
  b = good;
  PutLe16(b.data() + 6, 100);
  Reseal(&b);
  cases.push_back({b, "bad header length 100 for version 2"});
  b = good;
  b[41] = 0;
  Reseal(&b);
  cases.push_back({b, "inconsistent header: k=0"});
  b = good;
  b[44] = 1;
  Reseal(&b);
  cases.push_back({b, "inconsistent header: reserved bytes not zero"});
  b = good;
  PutLe64(b.data() + 56, uint64_t{1} << 40);
  Reseal(&b);
  cases.push_back({b, "payload too large"});
  b = good;
  b.push_back(0);
  cases.push_back({b, "1 trailing bytes"});
  b = good;
  b[30] ^= 4;
  cases.push_back({b, "bad header check (crc32c)"});
  for (auto& [blob, what] : cases) ExpectCorrupt(blob, what);
}

// The same fragment in both versions: the same header fields and payload;
// the chunk codec decodes from any mix of the two.
TEST(FragmentV2Test, ReadsVersion1AndVersion2Alike) {
  const Bytes chunk = KatPayload();
  auto blobs =
      EncodeChunkToFragments(TestChunkId(), chunk.data(), chunk.size(), 4, 2);
  ASSERT_TRUE(blobs.ok());
  std::vector<Bytes> mixed;
  for (size_t i = 0; i < blobs->size(); i++) {
    auto v2 = ParseFragment((*blobs)[i].data(), (*blobs)[i].size());
    ASSERT_TRUE(v2.ok());
    FragmentHeader h = v2->first;
    h.version = kFragmentFormatV1;
    const Bytes v1 = EncodeFragment(h, v2->second.data(), v2->second.size());
    auto back = ParseFragment(v1.data(), v1.size());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->first.version, 1);
    EXPECT_EQ(back->first.index, h.index);
    EXPECT_EQ(back->first.chunk_len, h.chunk_len);
    EXPECT_TRUE(std::equal(back->second.begin(), back->second.end(),
                           v2->second.begin(), v2->second.end()));
    mixed.push_back(i % 2 ? v1 : (*blobs)[i]);
  }
  mixed.erase(mixed.begin());  // lose data fragment 0 as well
  auto out = DecodeChunkFromFragments(TestChunkId(), mixed, 4, 2, chunk.size());
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, chunk);
}

}  // namespace
}  // namespace mistore
