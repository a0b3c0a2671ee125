#include "shared/erasure/fragment.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "shared/core/assert.h"

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
constexpr size_t kOffPayloadHash = 64;
constexpr size_t kOffHeaderCheck = 96;
static_assert(kOffHeaderCheck + 4 == kFragmentHeaderSize);
static_assert(kOffPayloadHash + crypto_generichash_BYTES == kOffHeaderCheck);

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

void FinishFragmentInPlace(const FragmentHeader& header, uint8_t* blob,
                           size_t len) {
  MS_ASSERT(header.chunk_id.size() == kChunkIdSize);
  MS_ASSERT(blob != nullptr);
  MS_ASSERT(len <= kMaxFragmentPayload);
  MS_ASSERT(
      Inconsistency(header.index, header.k, header.m, header.chunk_len, len)
          .empty());

  uint8_t* h = blob;
  std::memcpy(h + kOffMagic, kMagic, sizeof(kMagic));
  PutLe16(h + kOffVersion, kFragmentFormatVersion);
  PutLe16(h + kOffHeaderLen, uint16_t(kFragmentHeaderSize));
  std::memcpy(h + kOffChunkId, header.chunk_id.data(), kChunkIdSize);
  h[kOffIndex] = header.index;
  h[kOffK] = header.k;
  h[kOffM] = header.m;
  h[kOffReserved8] = 0;
  PutLe32(h + kOffReserved32, 0);
  PutLe64(h + kOffChunkLen, header.chunk_len);
  PutLe64(h + kOffPayloadLen, uint64_t(len));
  const std::array<uint8_t, 32> ph = Blake2b256(blob + kFragmentHeaderSize, len);
  std::memcpy(h + kOffPayloadHash, ph.data(), ph.size());
  PutLe32(h + kOffHeaderCheck, HeaderCheck(h));
}

Bytes EncodeFragment(const FragmentHeader& header, const uint8_t* payload,
                     size_t len) {
  MS_ASSERT(payload != nullptr || len == 0);
  MS_ASSERT(len <= kMaxFragmentPayload);
  Bytes out(kFragmentHeaderSize + len);
  if (len > 0) std::memcpy(out.data() + kFragmentHeaderSize, payload, len);
  FinishFragmentInPlace(header, out.data(), len);
  return out;
}

Result<FragmentHeader> ParseFragmentHeader(const uint8_t* data, size_t len) {
  if (data == nullptr || len < kFragmentHeaderSize) {
    return Bad("truncated: " + std::to_string(data == nullptr ? 0 : len) +
               " bytes, header needs " + std::to_string(kFragmentHeaderSize));
  }
  if (std::memcmp(data + kOffMagic, kMagic, sizeof(kMagic)) != 0) {
    return Bad("bad magic " + ToHex(data + kOffMagic, 4) + ", expected " +
               ToHex(kMagic, 4) + " (\"MSFR\")");
  }
  const uint16_t version = GetLe16(data + kOffVersion);
  if (version != kFragmentFormatVersion) {
    return Bad("unknown format version " + std::to_string(version) +
               " (supported: " + std::to_string(kFragmentFormatVersion) + ")");
  }
  const uint16_t header_len = GetLe16(data + kOffHeaderLen);
  if (header_len != kFragmentHeaderSize) {
    return Bad("bad header length " + std::to_string(header_len) +
               " for version 1 (expected " +
               std::to_string(kFragmentHeaderSize) + ")");
  }
  const uint32_t stored_check = GetLe32(data + kOffHeaderCheck);
  const uint32_t computed_check = HeaderCheck(data);
  if (stored_check != computed_check) {
    return Bad("bad header check: stored " + std::to_string(stored_check) +
               ", computed " + std::to_string(computed_check));
  }

  FragmentHeader h;
  h.chunk_id.assign(data + kOffChunkId, data + kOffChunkId + kChunkIdSize);
  h.index = data[kOffIndex];
  h.k = data[kOffK];
  h.m = data[kOffM];
  h.chunk_len = GetLe64(data + kOffChunkLen);
  h.payload_len = GetLe64(data + kOffPayloadLen);
  std::memcpy(h.payload_hash.data(), data + kOffPayloadHash,
              h.payload_hash.size());

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
  const size_t have = len - kFragmentHeaderSize;  // len >= header: checked
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
  const uint8_t* payload = data + kFragmentHeaderSize;
  const std::array<uint8_t, 32> hash = Blake2b256(payload, want);
  if (sodium_memcmp(hash.data(), h.payload_hash.data(), hash.size()) != 0) {
    return Bad("payload hash mismatch (index " + std::to_string(h.index) + ")");
  }
  return std::make_pair(std::move(h), std::span<const uint8_t>(payload, want));
}

}  // namespace mistore
