// Fuzz target: the fragment parser (shared/erasure/fragment.h).
//
// Input: one mode byte, then the candidate fragment. Mode bit 0 recomputes
// the payload check over whatever follows the header, bit 1 recomputes the
// header check after that, in the layout of the version the input claims
// (version 1: BLAKE2b at [64, 96) and [96, 100), 100-byte header; version 2:
// CRC32C at [64, 68) and [68, 72), 72-byte header), so that mutations reach
// the field checks behind the checks instead of dying at them. Mode 0 feeds
// the bytes as they are. The seeds (make_seeds.cc) hold both versions.
//
// Properties: ParseFragmentHeader and ParseFragment never read outside the
// buffer (ASan) and fail only with kCorrupt "fragment ..."; a header they
// accept is in range and self-consistent; a fragment ParseFragment accepts
// re-encodes (EncodeFragment) to exactly the input bytes, so the format has
// one encoding per fragment.
#include <sodium.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "shared/core/assert.h"
#include "shared/core/bytes.h"
#include "shared/erasure/crc32c.h"
#include "shared/erasure/fragment.h"
#include "shared/erasure/reed_solomon.h"

namespace {

using namespace mistore;

void CheckError(const Status& st) {
  MS_ASSERT(st.code() == Code::kCorrupt);
  MS_ASSERT(st.message().rfind("fragment ", 0) == 0);
}

void CheckHeader(const FragmentHeader& h) {
  MS_ASSERT(h.chunk_id.size() == kChunkIdSize);
  MS_ASSERT(h.k >= 1 && h.k <= ReedSolomon::kMaxK);
  MS_ASSERT(h.m >= 1 && h.m <= ReedSolomon::kMaxM);
  MS_ASSERT(int(h.index) < int(h.k) + int(h.m));
  MS_ASSERT(h.payload_len <= kMaxFragmentPayload);
  MS_ASSERT(h.payload_len == ReedSolomon::FragmentSize(size_t(h.chunk_len), h.k));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  MS_ASSERT(sodium_init() >= 0);
  const uint8_t mode = data[0];
  Bytes in(data + 1, data + size);
  // Mode bits recompute the checks after the fuzzer's edits, so mutations
  // reach the field checks behind them: bit 0 the payload check, bit 1 the
  // header check, in the layout of the version the input claims.
  const bool v1 = in.size() >= 6 && in[4] == 1 && in[5] == 0;
  const bool v2 = in.size() >= 6 && in[4] == 2 && in[5] == 0;
  if (v1 && in.size() >= kFragmentHeaderSizeV1) {
    if (mode & 1) {
      crypto_generichash(in.data() + 64, 32, in.data() + kFragmentHeaderSizeV1,
                         in.size() - kFragmentHeaderSizeV1, nullptr, 0);
    }
    if (mode & 2) {
      uint8_t h[32];
      crypto_generichash(h, sizeof h, in.data(), 96, nullptr, 0);
      std::memcpy(in.data() + 96, h, 4);
    }
  }
  if (v2 && in.size() >= kFragmentHeaderSizeV2) {
    if (mode & 1) {
      PutLe32(in.data() + 64, Crc32c(in.data() + kFragmentHeaderSizeV2,
                                     in.size() - kFragmentHeaderSizeV2));
    }
    if (mode & 2) PutLe32(in.data() + 68, Crc32c(in.data(), 68));
  }
  // Exact-size heap copy so ASan sees any read past the end.
  const uint8_t* p = in.empty() ? nullptr : in.data();

  Result<FragmentHeader> header = ParseFragmentHeader(p, in.size());
  if (header.ok()) {
    CheckHeader(header.value());
  } else {
    CheckError(header.status());
  }

  auto parsed = ParseFragment(p, in.size());
  if (!parsed.ok()) {
    CheckError(parsed.status());
    return 0;
  }
  MS_ASSERT(header.ok());
  const FragmentHeader& h = parsed->first;
  const std::span<const uint8_t> payload = parsed->second;
  CheckHeader(h);
  MS_ASSERT(h.version == 1 || h.version == 2);
  MS_ASSERT(payload.data() == p + h.header_len());
  MS_ASSERT(payload.size() == in.size() - h.header_len());
  MS_ASSERT(h.payload_len == payload.size());
  const Bytes again = EncodeFragment(h, payload.data(), payload.size());
  MS_ASSERT(again == in);
  return 0;
}
