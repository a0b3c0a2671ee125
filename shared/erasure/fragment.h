// Fragment format: how one erasure-coded fragment of a chunk is stored on
// disk and sent on the wire. An explicitly little-endian, versioned header
// followed by the payload (one ReedSolomon fragment). Version 2 is written;
// versions 1 and 2 are read (gateways hold version-1 fragments written
// before version 2 existed).
//
// Header, version 2 (72 bytes; all integers little-endian, offsets in bytes):
//
//   offset  size  field
//        0     4  magic "MSFR" (0x4d 0x53 0x46 0x52)
//        4     2  format version, u16 = 2
//        6     2  header length, u16 = 72
//        8    32  chunk id
//       40     1  fragment index, u8, < k + m (index < k: data, else parity)
//       41     1  k, u8, 1..32
//       42     1  m, u8, 1..16
//       43     1  reserved, u8 = 0
//       44     4  reserved, 4 bytes = 0 (keeps the u64 fields 8-aligned)
//       48     8  chunk length, u64 (bytes of the whole chunk)
//       56     8  payload length, u64 = FragmentSize(chunk length, k)
//                 (ReedSolomon), at most 64 MiB
//       64     4  payload check: CRC32C of the payload, u32
//       68     4  header check: CRC32C of bytes [0, 68) of the header, u32
//       72        payload (payload length bytes); nothing may follow it
//
// Version 1 (100 bytes) is the same up to offset 64, then:
//       64    32  payload hash: BLAKE2b-256 of the payload, unkeyed
//       96     4  header check: the first 4 bytes of BLAKE2b-256 over
//                 bytes [0, 96) of the header (equivalently: u32 LE of them)
//      100        payload
//
// What the checks are for: accidental damage (bit rot, torn or truncated
// writes, a fragment filed under the wrong name). Neither version's check
// stops a malicious holder, who can rewrite the payload and recompute the
// check beside it; forged fragments are caught by the code's redundancy
// (chunk_codec.h: DecodeChunkChecked) and, end to end, by the client's AEAD
// (docs/architecture.md, "Forged fragments"). CRC32C detects every error
// burst of up to 32 bits and misses other random damage with probability
// 2^-32, at a tenth of BLAKE2b's cost (docs/benchmarks.md), which matters on
// a 1 GHz gateway core.
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

// The version EncodeFragment writes by default.
inline constexpr uint16_t kFragmentFormatVersion = 2;
inline constexpr uint16_t kFragmentFormatV1 = 1;
inline constexpr size_t kFragmentHeaderSizeV1 = 100;
inline constexpr size_t kFragmentHeaderSizeV2 = 72;
// The largest header of any readable version: enough to parse any header.
inline constexpr size_t kFragmentHeaderSizeMax = 100;
inline constexpr size_t kChunkIdSize = 32;
inline constexpr size_t kMaxFragmentPayload = ReedSolomon::kMaxFragmentSize;

// Header bytes of a format version (1 or 2; asserted).
size_t FragmentHeaderSize(uint16_t version);

struct FragmentHeader {
  uint16_t version = kFragmentFormatVersion;  // 1 or 2
  Bytes chunk_id;                             // exactly kChunkIdSize bytes
  uint8_t index = 0;
  uint8_t k = 0;
  uint8_t m = 0;
  uint64_t chunk_len = 0;
  uint64_t payload_len = 0;
  std::array<uint8_t, 32> payload_hash{};  // version 1 only
  uint32_t payload_crc32c = 0;             // version 2 only

  size_t header_len() const { return FragmentHeaderSize(version); }
};

// Header + payload, in format header.version (1 or 2). Sets payload_len and
// the payload check itself (the values in `header` are ignored). The header
// must describe a fragment ParseFragment accepts (chunk_id of 32 bytes, valid
// k/m/index, len == ReedSolomon::FragmentSize(chunk_len, k) <=
// kMaxFragmentPayload): anything else is a programming error and fails an
// MS_ASSERT.
Bytes EncodeFragment(const FragmentHeader& header, const uint8_t* payload,
                     size_t len);

// Builds a fragment in place: `blob` holds header.header_len() bytes of
// space followed by the len-byte payload, already written there. Fills in the
// header (payload_len and payload_hash from the payload, as EncodeFragment);
// the same preconditions, asserted.
void FinishFragmentInPlace(const FragmentHeader& header, uint8_t* blob,
                           size_t len);

// Parses and validates the header at `data` (version 1: 100 bytes, version
// 2: 72; len may be larger; the payload is not looked at, so its check is
// not verified). kCorrupt, with a message starting "fragment ...", on:
// truncated (shorter than the header), bad magic, unknown format version,
// bad header length, bad header check, payload too large (> 64 MiB),
// inconsistent header (reserved bytes, k, m, index, chunk length, payload
// length vs FragmentSize(chunk length, k)).
Result<FragmentHeader> ParseFragmentHeader(const uint8_t* data, size_t len);

// ParseFragmentHeader, then: the buffer must be exactly header + payload
// ("fragment truncated" if shorter, "fragment has N trailing bytes" if
// longer) and the payload must match its check ("fragment payload hash
// mismatch" for version 1, "fragment payload crc32c mismatch" for version 2).
// All errors are kCorrupt. The span points into `data`.
Result<std::pair<FragmentHeader, std::span<const uint8_t>>> ParseFragment(
    const uint8_t* data, size_t len);

}  // namespace mistore
