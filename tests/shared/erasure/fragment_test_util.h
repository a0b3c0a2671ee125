// Helpers shared by the fragment format tests (fragment_test.cc for format
// version 1, fragment_v2_test.cc for version 2): a fixed chunk id, headers,
// and the checks that a damaged blob is refused as corrupt with a given
// message. Test-only, single-threaded.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "shared/erasure/fragment.h"

namespace mistore::fragment_test {

inline Bytes TestChunkId() {
  Bytes id(32);
  for (int i = 0; i < 32; i++) id[i] = uint8_t(i);
  return id;
}

inline FragmentHeader MakeHeader(uint16_t version, uint8_t index, uint8_t k, uint8_t m,
                                 uint64_t chunk_len) {
  FragmentHeader h;
  h.version = version;
  h.chunk_id = TestChunkId();
  h.index = index;
  h.k = k;
  h.m = m;
  h.chunk_len = chunk_len;
  return h;
}

inline Status ParseStatus(const Bytes& blob) {
  auto r = ParseFragment(blob.data(), blob.size());
  return r.ok() ? Status::Ok() : r.status();
}

inline void ExpectCorrupt(const Bytes& blob, const std::string& what) {
  Status st = ParseStatus(blob);
  ASSERT_FALSE(st.ok()) << "expected: " << what;
  EXPECT_EQ(st.code(), Code::kCorrupt) << st.ToString();
  EXPECT_THAT(st.message(), ::testing::StartsWith("fragment "));
  EXPECT_THAT(st.message(), ::testing::HasSubstr(what));
}

// Every single-bit flip in the first `header_bytes` bytes of `good` is
// refused: in the magic (bytes 0-3), the version (4-5), the header length
// (6-7), and past those by the header check, whose message is `check_message`.
inline void ExpectEveryHeaderBitFlipRejected(const Bytes& good, size_t header_bytes,
                                             const std::string& check_message) {
  for (size_t off = 0; off < header_bytes; off++) {
    for (int bit = 0; bit < 8; bit++) {
      SCOPED_TRACE("offset " + std::to_string(off) + " bit " + std::to_string(bit));
      Bytes b = good;
      b[off] ^= uint8_t(1 << bit);
      const std::string expected = off < 4   ? "bad magic"
                                   : off < 6 ? "unknown format version"
                                   : off < 8 ? "bad header length"
                                             : check_message;
      ExpectCorrupt(b, expected);
    }
  }
}

// Flipping `mask` in any payload byte (from `header_bytes` on) is refused
// with `message`, while the header alone still parses: only ParseFragment
// checks the payload.
inline void ExpectEveryPayloadFlipRejected(const Bytes& good, size_t header_bytes, uint8_t mask,
                                           const std::string& message) {
  for (size_t off = header_bytes; off < good.size(); off++) {
    SCOPED_TRACE("offset " + std::to_string(off));
    Bytes b = good;
    b[off] ^= mask;
    ExpectCorrupt(b, message);
    EXPECT_TRUE(ParseFragmentHeader(b.data(), b.size()).ok());
  }
}

}  // namespace mistore::fragment_test
