// Fragment format: how one erasure-coded fragment of a chunk is stored on
// disk and sent on the wire. A fixed 100-byte, explicitly little-endian,
// versioned header followed by the payload (one ReedSolomon fragment).
//
// Header, version 1 (all integers little-endian, offsets in bytes):
//
//   offset  size  field
//        0     4  magic "MSFR" (0x4d 0x53 0x46 0x52)
//        4     2  format version, u16 = 1
//        6     2  header length, u16 = 100
//        8    32  chunk id
//       40     1  fragment index, u8, < k + m (index < k: data, else parity)
//       41     1  k, u8, 1..32
//       42     1  m, u8, 1..16
//       43     1  reserved, u8 = 0
//       44     4  reserved, 4 bytes = 0 (keeps the u64 fields 8-aligned)
//       48     8  chunk length, u64 (bytes of the whole chunk)
//       56     8  payload length, u64 = FragmentSize(chunk length, k)
//                 (ReedSolomon), at most 64 MiB
//       64    32  payload hash: BLAKE2b-256 of the payload, unkeyed
//                 (libsodium crypto_generichash, 32-byte output)
//       96     4  header check: the first 4 bytes of BLAKE2b-256 over
//                 bytes [0, 96) of the header, stored as they come out of
//                 the hash (equivalently: u32 LE of those bytes)
//      100        payload (payload length bytes); nothing may follow it
//
// Ownership: EncodeFragment returns a fresh buffer; the parsers never copy
// the payload, ParseFragment returns a span into the caller's buffer (valid
// as long as that buffer is). Parsers never read outside [data, data + len).
//
// Threads: pure functions, any thread (libsodium is initialised once,
// thread-safely, on first use).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/erasure/reed_solomon.h"

namespace mistore {

inline constexpr uint16_t kFragmentFormatVersion = 1;
inline constexpr size_t kFragmentHeaderSize = 100;
inline constexpr size_t kChunkIdSize = 32;
inline constexpr size_t kMaxFragmentPayload = ReedSolomon::kMaxFragmentSize;

struct FragmentHeader {
  Bytes chunk_id;  // exactly kChunkIdSize bytes
  uint8_t index = 0;
  uint8_t k = 0;
  uint8_t m = 0;
  uint64_t chunk_len = 0;
  uint64_t payload_len = 0;
  std::array<uint8_t, 32> payload_hash{};
};

// Header + payload. Sets payload_len and payload_hash itself (the values in
// `header` are ignored). The header must describe a fragment ParseFragment
// accepts (chunk_id of 32 bytes, valid k/m/index, len ==
// ReedSolomon::FragmentSize(chunk_len, k) <= kMaxFragmentPayload): anything
// else is a programming error and fails an MS_ASSERT.
Bytes EncodeFragment(const FragmentHeader& header, const uint8_t* payload,
                     size_t len);

// Builds a fragment in place: `blob` holds kFragmentHeaderSize bytes of
// space followed by the len-byte payload, already written there. Fills in the
// header (payload_len and payload_hash from the payload, as EncodeFragment);
// the same preconditions, asserted.
void FinishFragmentInPlace(const FragmentHeader& header, uint8_t* blob,
                           size_t len);

// Parses and validates the 100-byte header at `data` (len may be larger; the
// payload is not looked at, so payload_hash is not verified). kCorrupt, with
// a message starting "fragment ...", on: truncated (len < 100), bad magic,
// unknown format version, bad header length, bad header check, payload too
// large (> 64 MiB), inconsistent header (reserved bytes, k, m, index, chunk
// length, payload length vs FragmentSize(chunk length, k)).
Result<FragmentHeader> ParseFragmentHeader(const uint8_t* data, size_t len);

// ParseFragmentHeader, then: the buffer must be exactly header + payload
// ("fragment truncated" if shorter, "fragment has N trailing bytes" if
// longer) and the payload must hash to payload_hash ("fragment payload hash
// mismatch"). All errors are kCorrupt. The span points into `data`.
Result<std::pair<FragmentHeader, std::span<const uint8_t>>> ParseFragment(
    const uint8_t* data, size_t len);

}  // namespace mistore
