// Fuzz target: the version manifest decoder (sync-client/manifest.h), what
// the client runs on a manifest after the object key's AEAD opened it.
//
// Input: the manifest bytes as they are (protobuf, formats 1 and 2; the
// seeds in corpus/manifest are written by make_seeds.cc with the real
// message and cover both formats, tagged and untagged chunks, and each
// inconsistency the decoder rejects).
//
// Properties: DecodeManifest fails only with kCorrupt "manifest ..."; a
// manifest it accepts has a known format, 32-byte chunk ids whose lengths
// add up to its size, and on every tagged chunk a 24-byte nonce and exactly
// (k + m) x 16 bytes of tags for a valid (k, m); serialised again it
// decodes to the same message.
#include <cstdint>
#include <string>

#include "shared/core/assert.h"
#include "shared/erasure/reed_solomon.h"
#include "sync-client/fragment_tags.h"
#include "sync-client/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mistore;
  auto m = DecodeManifest(data, size);
  if (!m.ok()) {
    MS_ASSERT(m.status().code() == Code::kCorrupt);
    MS_ASSERT(m.status().message().rfind("manifest", 0) == 0);
    return 0;
  }
  MS_ASSERT(m->format() == kManifestFormatV1 || m->format() == kManifestFormatV2 ||
            m->format() == kManifestFormatV3);
  uint64_t total = 0;
  for (int i = 0; i < m->chunks_size(); i++) {
    const pb::ManifestChunk& c = m->chunks(i);
    MS_ASSERT(c.id().size() == 32);
    MS_ASSERT(c.seal_key().size() == (m->format() >= kManifestFormatV3 ? 32u : 0u));
    total += c.plain_len();
    if (!ChunkHasTags(*m, i)) {
      MS_ASSERT(c.seal_nonce().empty());
      continue;
    }
    MS_ASSERT(m->format() >= kManifestFormatV2);
    MS_ASSERT(m->fragment_k() >= 1 &&
              m->fragment_k() <= uint32_t(ReedSolomon::kMaxK));
    MS_ASSERT(m->fragment_m() >= 1 &&
              m->fragment_m() <= uint32_t(ReedSolomon::kMaxM));
    MS_ASSERT(c.seal_nonce().size() == 24);
    MS_ASSERT(c.fragment_tags().size() ==
              size_t(m->fragment_k() + m->fragment_m()) * kFragmentTagBytes);
  }
  MS_ASSERT(total == m->size_bytes());
  const std::string again = m->SerializeAsString();
  auto m2 = DecodeManifest(reinterpret_cast<const uint8_t*>(again.data()),
                           again.size());
  MS_ASSERT(m2.ok());
  MS_ASSERT(m2->SerializeAsString() == again);
  return 0;
}
