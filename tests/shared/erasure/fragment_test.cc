#include "shared/erasure/fragment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "shared/erasure/reed_solomon.h"
#include "tests/shared/erasure/fragment_test_util.h"

namespace mistore {
namespace {

using ::testing::HasSubstr;
using fragment_test::ExpectCorrupt;
using fragment_test::ParseStatus;
using fragment_test::TestChunkId;

FragmentHeader MakeHeader(uint8_t index, uint8_t k, uint8_t m, uint64_t chunk_len) {
  return fragment_test::MakeHeader(kFragmentFormatV1, index, k, m, chunk_len);  // format 1 here
}

std::array<uint8_t, 32> Blake2b256(const uint8_t* p, size_t n) {
  std::array<uint8_t, 32> out;
  EXPECT_EQ(crypto_generichash(out.data(), 32, p, n, nullptr, 0), 0);
  return out;
}

// A valid fragment: chunk_len 10, k=2, m=1 -> 8-byte payload, 108 bytes.
Bytes SmallFragment() {
  const Bytes payload = {1, 2, 3, 4, 5, 0, 0, 0};
  return EncodeFragment(MakeHeader(1, 2, 1, 10), payload.data(),
                        payload.size());
}

// Recomputes the header check after a test edits header fields, so the edit
// reaches the field checks instead of stopping at "bad header check".
void Reseal(Bytes* blob) {
  const auto h = Blake2b256(blob->data(), 96);
  std::memcpy(blob->data() + 96, h.data(), 4);
}

// Known-answer test of the byte layout. Fails on any format change and on a
// host that would write integers in its native (big-endian) order.
TEST(FragmentTest, HeaderLayoutKnownAnswer) {
  const uint64_t chunk_len = 0x1234;  // 4660 -> FragmentSize(4660, 4) = 1168
  const size_t plen = ReedSolomon::FragmentSize(chunk_len, 4);
  ASSERT_EQ(plen, 0x490u);
  Bytes payload(plen);
  for (size_t i = 0; i < plen; i++) payload[i] = uint8_t(i * 7);
  const Bytes b = EncodeFragment(MakeHeader(5, 4, 2, chunk_len), payload.data(),
                                 payload.size());
  ASSERT_EQ(b.size(), 100 + plen);

  EXPECT_EQ(ToHex(b.data() + 0, 4), "4d534652");  // "MSFR"
  EXPECT_EQ(ToHex(b.data() + 4, 2), "0100");      // version 1, LE
  EXPECT_EQ(ToHex(b.data() + 6, 2), "6400");      // header length 100, LE
  EXPECT_EQ(ToHex(b.data() + 8, 32), ToHex(TestChunkId()));
  EXPECT_EQ(b[40], 5);                                     // index
  EXPECT_EQ(b[41], 4);                                     // k
  EXPECT_EQ(b[42], 2);                                     // m
  EXPECT_EQ(b[43], 0);                                     // reserved
  EXPECT_EQ(ToHex(b.data() + 44, 4), "00000000");          // reserved
  EXPECT_EQ(ToHex(b.data() + 48, 8), "3412000000000000");  // chunk length LE
  EXPECT_EQ(ToHex(b.data() + 56, 8), "9004000000000000");  // payload length LE
  const auto ph = Blake2b256(payload.data(), payload.size());
  EXPECT_EQ(ToHex(b.data() + 64, 32), ToHex(ph.data(), 32));
  const auto hc = Blake2b256(b.data(), 96);
  EXPECT_EQ(ToHex(b.data() + 96, 4), ToHex(hc.data(), 4));
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), b.begin() + 100));
}

// A complete golden fragment (hashes cross-checked with Python's
// hashlib.blake2b(digest_size=32)), for other implementations of the format.
TEST(FragmentTest, GoldenFragment) {
  const Bytes b = SmallFragment();
  EXPECT_EQ(ToHex(b),
            "4d53465201006400"  // magic, version 1, header length 100
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
            "0102010000000000"  // index 1, k 2, m 1, reserved
            "0a00000000000000"  // chunk length 10
            "0800000000000000"  // payload length 8
            "e42417206c266c7edaeb0d4735d562e47899f2f6df5f235cd85ff4eaf79401ae"
            "734c817f"            // header check
            "0102030405000000");  // payload
}

TEST(FragmentTest, RoundTrip) {
  const Bytes payload = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0};
  const Bytes b = EncodeFragment(MakeHeader(3, 3, 2, 45), payload.data(),
                                 payload.size());  // FragmentSize(45,3) = 16
  auto r = ParseFragment(b.data(), b.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const FragmentHeader& h = r->first;
  EXPECT_EQ(h.chunk_id, TestChunkId());
  EXPECT_EQ(h.index, 3);
  EXPECT_EQ(h.k, 3);
  EXPECT_EQ(h.m, 2);
  EXPECT_EQ(h.chunk_len, 45u);
  EXPECT_EQ(h.payload_len, 16u);
  EXPECT_EQ(h.payload_hash, Blake2b256(payload.data(), payload.size()));
  EXPECT_EQ(r->second.data(), b.data() + 100);  // a view, not a copy
  EXPECT_EQ(Bytes(r->second.begin(), r->second.end()), payload);

  // The header alone parses (no payload needed, none verified).
  auto hdr = ParseFragmentHeader(b.data(), 100);
  ASSERT_TRUE(hdr.ok()) << hdr.status().ToString();
  EXPECT_EQ(hdr->payload_hash, h.payload_hash);
  EXPECT_EQ(hdr->index, 3);
}

TEST(FragmentTest, LargestKAndMAndEmptyChunk) {
  const size_t plen = ReedSolomon::FragmentSize(0, 32);
  const Bytes payload(plen, 0);
  const Bytes b =
      EncodeFragment(MakeHeader(47, 32, 16, 0), payload.data(), plen);
  auto r = ParseFragment(b.data(), b.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first.index, 47);
  EXPECT_EQ(r->first.chunk_len, 0u);
  EXPECT_EQ(r->second.size(), 8u);
}

TEST(FragmentTest, RejectsTruncationAtEveryLength) {
  const Bytes b = SmallFragment();
  ASSERT_EQ(b.size(), 108u);
  ASSERT_TRUE(ParseStatus(b).ok());
  for (size_t len = 0; len < b.size(); len++) {
    SCOPED_TRACE("len " + std::to_string(len));
    // A copy of exactly `len` bytes, so ASan catches any read past the end.
    const Bytes cut(b.begin(), b.begin() + len);
    ExpectCorrupt(cut, "fragment truncated");
    if (len < 100) {
      auto h = ParseFragmentHeader(cut.data(), cut.size());
      ASSERT_FALSE(h.ok());
      EXPECT_THAT(h.status().message(), HasSubstr("truncated"));
    }
  }
  auto r = ParseFragment(nullptr, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("truncated"));
}

TEST(FragmentTest, RejectsTrailingBytes) {
  Bytes b = SmallFragment();
  b.push_back(0);
  ExpectCorrupt(b, "1 trailing bytes");
}

// Every single-bit flip in the header is caught, by the right check.
TEST(FragmentTest, RejectsEveryHeaderBitFlip) {
  fragment_test::ExpectEveryHeaderBitFlipRejected(SmallFragment(), 100, "bad header check");
}

TEST(FragmentTest, RejectsPayloadCorruption) {
  fragment_test::ExpectEveryPayloadFlipRejected(SmallFragment(), 100, 0x80,
                                                "payload hash mismatch");
}

TEST(FragmentTest, RejectsWrongMagicVersionAndHeaderLength) {
  Bytes magic = SmallFragment();
  magic[3] = 'X';
  Reseal(&magic);
  ExpectCorrupt(magic, "bad magic 4d534658");

  for (uint16_t v : {0, 3, 256, 65535}) {
    Bytes b = SmallFragment();
    PutLe16(b.data() + 4, v);
    Reseal(&b);
    ExpectCorrupt(b, "unknown format version " + std::to_string(v));
  }

  Bytes hlen = SmallFragment();
  PutLe16(hlen.data() + 6, 96);
  Reseal(&hlen);
  ExpectCorrupt(hlen, "bad header length 96");
}

TEST(FragmentTest, RejectsOversizedPayloadClaims) {
  const uint64_t max = 64ull << 20;
  for (uint64_t claim : {max + 8, uint64_t{1} << 40, UINT64_MAX}) {
    SCOPED_TRACE("claim " + std::to_string(claim));
    Bytes b = SmallFragment();
    PutLe64(b.data() + 56, claim);
    Reseal(&b);
    ExpectCorrupt(b, "payload too large");
    EXPECT_FALSE(ParseFragmentHeader(b.data(), b.size()).ok());
  }
  // Exactly 64 MiB is a legal claim: the header parses, the short buffer is
  // then reported as truncated (and never read past).
  Bytes b = SmallFragment();
  PutLe64(b.data() + 48, max);  // chunk_len 64 MiB, k=2 -> 32 MiB fragments
  PutLe64(b.data() + 56, max / 2);
  Reseal(&b);
  EXPECT_TRUE(ParseFragmentHeader(b.data(), b.size()).ok());
  ExpectCorrupt(b, "fragment truncated: payload has 8 bytes");
}

TEST(FragmentTest, RejectsInconsistentFields) {
  struct Case {
    const char* name;
    void (*edit)(Bytes*);
    const char* expected;
  };
  const Case cases[] = {
      {"index == k+m", [](Bytes* b) { (*b)[40] = 3; }, "index 3 >= k+m=3"},
      {"index 255", [](Bytes* b) { (*b)[40] = 255; }, "index 255 >= k+m=3"},
      {"k 0", [](Bytes* b) { (*b)[41] = 0; }, "k=0 out of range"},
      {"k 33", [](Bytes* b) { (*b)[41] = 33; }, "k=33 out of range"},
      {"m 0", [](Bytes* b) { (*b)[42] = 0; }, "m=0 out of range"},
      {"m 17", [](Bytes* b) { (*b)[42] = 17; }, "m=17 out of range"},
      {"reserved u8", [](Bytes* b) { (*b)[43] = 1; },
       "reserved bytes not zero"},
      {"reserved u32", [](Bytes* b) { (*b)[46] = 1; },
       "reserved bytes not zero"},
      {"payload len vs chunk len",
       [](Bytes* b) { PutLe64(b->data() + 48, 17); },  // needs 16-byte payload
       "payload length 8 does not match fragment size 16"},
      {"k changes fragment size",
       [](Bytes* b) { (*b)[41] = 1; },  // chunk 10, k=1 -> 16
       "payload length 8 does not match fragment size 16"},
      {"huge chunk len",
       [](Bytes* b) { PutLe64(b->data() + 48, uint64_t{1} << 62); },
       "chunk length 4611686018427387904 too large for k=2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Bytes b = SmallFragment();
    c.edit(&b);
    Reseal(&b);
    ExpectCorrupt(b, std::string("inconsistent header: ") + c.expected);
  }
}

// The failure classes have distinct messages (callers log them; tests and
// operators tell them apart).
TEST(FragmentTest, ErrorMessagesAreDistinct) {
  std::vector<std::string> messages;
  auto add = [&](const Bytes& b) {
    messages.push_back(ParseStatus(b).message());
  };
  const Bytes good = SmallFragment();
  add(Bytes(good.begin(), good.begin() + 50));  // truncated
  Bytes b = good;
  b[0] = 'X';
  add(b);  // magic
  b = good;
  b[4] = 3;
  add(b);  // version
  b = good;
  b[6] = 99;
  add(b);  // header length
  b = good;
  b[20] ^= 1;
  add(b);  // header check
  b = good;
  b[41] = 0;
  Reseal(&b);
  add(b);  // inconsistent
  b = good;
  PutLe64(b.data() + 56, uint64_t{1} << 40);
  Reseal(&b);
  add(b);  // too large
  b = good;
  b[105] ^= 1;
  add(b);  // payload hash
  b = good;
  b.push_back(1);
  add(b);  // trailing
  const char* keys[] = {"truncated",
                        "bad magic",
                        "unknown format version",
                        "bad header length",
                        "bad header check",
                        "inconsistent header",
                        "payload too large",
                        "payload hash mismatch",
                        "trailing bytes"};
  ASSERT_EQ(messages.size(), std::size(keys));
  for (size_t i = 0; i < messages.size(); i++) {
    for (size_t j = 0; j < std::size(keys); j++) {
      if (i == j) {
        EXPECT_THAT(messages[i], HasSubstr(keys[j]));
      } else {
        EXPECT_THAT(messages[i], ::testing::Not(HasSubstr(keys[j])))
            << "message " << i << " also matches key " << j;
      }
    }
  }
}

TEST(FragmentDeathTest, EncodeAssertsOnInvalidHeader) {
  const Bytes payload(8, 0);
  FragmentHeader short_id = MakeHeader(0, 2, 1, 10);
  short_id.chunk_id.pop_back();
  EXPECT_DEATH(EncodeFragment(short_id, payload.data(), payload.size()),
               "assertion failed");
  EXPECT_DEATH(
      EncodeFragment(MakeHeader(3, 2, 1, 10), payload.data(), payload.size()),
      "assertion failed");  // index >= k+m
  EXPECT_DEATH(
      EncodeFragment(MakeHeader(0, 2, 1, 100), payload.data(), payload.size()),
      "assertion failed");  // payload too short for chunk_len
}

}  // namespace
}  // namespace mistore
