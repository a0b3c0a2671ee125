#include "shared/erasure/fragment.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "shared/core/assert.h"
#include "shared/erasure/crc32c.h"

namespace mistore {
namespace {

// Byte offsets of the version-1 header (see fragment.h).
constexpr size_t kOffMagic = 0;
constexpr size_t kOffVersion = 4;
constexpr size_t kOffHeaderLen = 6;
constexpr size_t kOffChunkId = 8;
constexpr size_t kOffIndex = 40;
constexpr size_t kOffK = 41;
constexpr size_t kOffM = 42;
constexpr size_t kOffReserved8 = 43;
constexpr size_t kOffReserved32 = 44;
constexpr size_t kOffChunkLen = 48;
constexpr size_t kOffPayloadLen = 56;
// Version 1.
constexpr size_t kOffPayloadHash = 64;
constexpr size_t kOffHeaderCheck = 96;
static_assert(kOffHeaderCheck + 4 == kFragmentHeaderSizeV1);
static_assert(kOffPayloadHash + crypto_generichash_BYTES == kOffHeaderCheck);
// Version 2.
constexpr size_t kOffPayloadCrc = 64;
constexpr size_t kOffHeaderCrc = 68;
static_assert(kOffHeaderCrc + 4 == kFragmentHeaderSizeV2);
static_assert(kFragmentHeaderSizeMax >= kFragmentHeaderSizeV1 &&
              kFragmentHeaderSizeMax >= kFragmentHeaderSizeV2);
// Enough to read magic, version and header length.
constexpr size_t kPrefixSize = 8;

constexpr uint8_t kMagic[4] = {'M', 'S', 'F', 'R'};

void EnsureSodium() {
  static const int rc = sodium_init();  // thread-safe, idempotent
  if (rc < 0) FatalExit("libsodium", "sodium_init failed");
}

std::array<uint8_t, 32> Blake2b256(const uint8_t* data, size_t len) {
  static_assert(crypto_generichash_BYTES == 32);
  EnsureSodium();
  std::array<uint8_t, 32> out;
  // Fails only for invalid output/key sizes; ours are fixed and valid.
  const int rc =
      crypto_generichash(out.data(), out.size(), data, len, nullptr, 0);
  MS_ASSERT(rc == 0);
  return out;
}

uint32_t HeaderCheck(const uint8_t* header) {
  const std::array<uint8_t, 32> h = Blake2b256(header, kOffHeaderCheck);
  return GetLe32(h.data());
}

Status Bad(const std::string& what) { return Corrupt("fragment " + what); }

// Field checks shared by ParseFragmentHeader and EncodeFragment's asserts.
// Returns an empty string when consistent, else what is wrong.
std::string Inconsistency(uint8_t index, uint8_t k, uint8_t m,
                          uint64_t chunk_len, uint64_t payload_len) {
  if (k < 1 || k > ReedSolomon::kMaxK) {
    return "k=" + std::to_string(k) + " out of range 1.." +
           std::to_string(ReedSolomon::kMaxK);
  }
  if (m < 1 || m > ReedSolomon::kMaxM) {
    return "m=" + std::to_string(m) + " out of range 1.." +
           std::to_string(ReedSolomon::kMaxM);
  }
  if (int(index) >= int(k) + int(m)) {
    return "index " + std::to_string(index) +
           " >= k+m=" + std::to_string(int(k) + int(m));
  }
  // Compare in u64 before anything is narrowed to size_t (32-bit hosts).
  if (chunk_len > uint64_t{k} * kMaxFragmentPayload) {
    return "chunk length " + std::to_string(chunk_len) +
           " too large for k=" + std::to_string(k);
  }
  const size_t want = ReedSolomon::FragmentSize(size_t(chunk_len), k);
  if (payload_len != want) {
    return "payload length " + std::to_string(payload_len) +
           " does not match fragment size " + std::to_string(want) +
           " for chunk length " + std::to_string(chunk_len) +
           " and k=" + std::to_string(k);
  }
  return "";
}

}  // namespace

size_t FragmentHeaderSize(uint16_t version) {
  MS_ASSERT(version == kFragmentFormatV1 || version == kFragmentFormatVersion);
  return version == kFragmentFormatV1 ? kFragmentHeaderSizeV1
                                      : kFragmentHeaderSizeV2;
}

void FinishFragmentInPlace(const FragmentHeader& header, uint8_t* blob,
                           size_t len) {
  MS_ASSERT(header.chunk_id.size() == kChunkIdSize);
  MS_ASSERT(blob != nullptr);
  MS_ASSERT(len <= kMaxFragmentPayload);
  MS_ASSERT(
      Inconsistency(header.index, header.k, header.m, header.chunk_len, len)
          .empty());
  const size_t header_len = FragmentHeaderSize(header.version);

  uint8_t* h = blob;
  std::memcpy(h + kOffMagic, kMagic, sizeof(kMagic));
  PutLe16(h + kOffVersion, header.version);
  PutLe16(h + kOffHeaderLen, uint16_t(header_len));
  std::memcpy(h + kOffChunkId, header.chunk_id.data(), kChunkIdSize);
  h[kOffIndex] = header.index;
  h[kOffK] = header.k;
  h[kOffM] = header.m;
  h[kOffReserved8] = 0;
  PutLe32(h + kOffReserved32, 0);
  PutLe64(h + kOffChunkLen, header.chunk_len);
  PutLe64(h + kOffPayloadLen, uint64_t(len));
  const uint8_t* payload = blob + header_len;
  if (header.version == kFragmentFormatV1) {
    const std::array<uint8_t, 32> ph = Blake2b256(payload, len);
    std::memcpy(h + kOffPayloadHash, ph.data(), ph.size());
    PutLe32(h + kOffHeaderCheck, HeaderCheck(h));
  } else {
    PutLe32(h + kOffPayloadCrc, Crc32c(payload, len));
    PutLe32(h + kOffHeaderCrc, Crc32c(h, kOffHeaderCrc));
  }
}

Bytes EncodeFragment(const FragmentHeader& header, const uint8_t* payload,
                     size_t len) {
  MS_ASSERT(payload != nullptr || len == 0);
  MS_ASSERT(len <= kMaxFragmentPayload);
  const size_t header_len = FragmentHeaderSize(header.version);
  Bytes out(header_len + len);
  if (len > 0) std::memcpy(out.data() + header_len, payload, len);
  FinishFragmentInPlace(header, out.data(), len);
  return out;
}

Result<FragmentHeader> ParseFragmentHeader(const uint8_t* data, size_t len) {
  if (data == nullptr) len = 0;
  if (len < kPrefixSize) {
    return Bad("truncated: " + std::to_string(len) +
               " bytes, a header needs at least " +
               std::to_string(kFragmentHeaderSizeV2));
  }
  if (std::memcmp(data + kOffMagic, kMagic, sizeof(kMagic)) != 0) {
    return Bad("bad magic " + ToHex(data + kOffMagic, 4) + ", expected " +
               ToHex(kMagic, 4) + " (\"MSFR\")");
  }
  const uint16_t version = GetLe16(data + kOffVersion);
  if (version != kFragmentFormatV1 && version != kFragmentFormatVersion) {
    return Bad("unknown format version " + std::to_string(version) +
               " (supported: 1, 2)");
  }
  const size_t want_header = FragmentHeaderSize(version);
  if (len < want_header) {
    return Bad("truncated: " + std::to_string(len) + " bytes, header needs " +
               std::to_string(want_header));
  }
  const uint16_t header_len = GetLe16(data + kOffHeaderLen);
  if (header_len != want_header) {
    return Bad("bad header length " + std::to_string(header_len) +
               " for version " + std::to_string(version) + " (expected " +
               std::to_string(want_header) + ")");
  }
  if (version == kFragmentFormatV1) {
    const uint32_t stored_check = GetLe32(data + kOffHeaderCheck);
    const uint32_t computed_check = HeaderCheck(data);
    if (stored_check != computed_check) {
      return Bad("bad header check: stored " + std::to_string(stored_check) +
                 ", computed " + std::to_string(computed_check));
    }
  } else {
    const uint32_t stored_check = GetLe32(data + kOffHeaderCrc);
    const uint32_t computed_check = Crc32c(data, kOffHeaderCrc);
    if (stored_check != computed_check) {
      return Bad("bad header check (crc32c): stored " +
                 std::to_string(stored_check) + ", computed " +
                 std::to_string(computed_check));
    }
  }

  FragmentHeader h;
  h.chunk_id.assign(data + kOffChunkId, data + kOffChunkId + kChunkIdSize);
  h.index = data[kOffIndex];
  h.k = data[kOffK];
  h.m = data[kOffM];
  h.chunk_len = GetLe64(data + kOffChunkLen);
  h.payload_len = GetLe64(data + kOffPayloadLen);
  h.version = version;
  if (version == kFragmentFormatV1) {
    std::memcpy(h.payload_hash.data(), data + kOffPayloadHash,
                h.payload_hash.size());
  } else {
    h.payload_crc32c = GetLe32(data + kOffPayloadCrc);
  }

  if (h.payload_len > kMaxFragmentPayload) {
    return Bad("payload too large: header claims " +
               std::to_string(h.payload_len) + " bytes, max " +
               std::to_string(kMaxFragmentPayload));
  }
  if (data[kOffReserved8] != 0 || GetLe32(data + kOffReserved32) != 0) {
    return Bad("inconsistent header: reserved bytes not zero");
  }
  const std::string why =
      Inconsistency(h.index, h.k, h.m, h.chunk_len, h.payload_len);
  if (!why.empty()) return Bad("inconsistent header: " + why);
  return h;
}

Result<std::pair<FragmentHeader, std::span<const uint8_t>>> ParseFragment(
    const uint8_t* data, size_t len) {
  MS_ASSIGN_OR_RETURN(FragmentHeader h, ParseFragmentHeader(data, len));
  const size_t header_len = h.header_len();
  const size_t have = len - header_len;  // len >= header: checked
  // payload_len <= 64 MiB was checked, so it fits size_t.
  const size_t want = size_t(h.payload_len);
  if (have < want) {
    return Bad("truncated: payload has " + std::to_string(have) +
               " bytes, header says " + std::to_string(want));
  }
  if (have > want) {
    return Bad("has " + std::to_string(have - want) +
               " trailing bytes after the payload");
  }
  const uint8_t* payload = data + header_len;
  if (h.version == kFragmentFormatV1) {
    const std::array<uint8_t, 32> hash = Blake2b256(payload, want);
    if (sodium_memcmp(hash.data(), h.payload_hash.data(), hash.size()) != 0) {
      return Bad("payload hash mismatch (index " + std::to_string(h.index) +
                 ")");
    }
  } else if (Crc32c(payload, want) != h.payload_crc32c) {
    return Bad("payload crc32c mismatch (index " + std::to_string(h.index) +
               ")");
  }
  return std::make_pair(std::move(h), std::span<const uint8_t>(payload, want));
}

}  // namespace mistore
