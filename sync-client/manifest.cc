#include "sync-client/manifest.h"

#include <string>

#include "shared/erasure/reed_solomon.h"
#include "sync-client/fragment_tags.h"

namespace mistore {

Status ValidateManifest(const pb::Manifest& m) {
  if (m.format() != kManifestFormatV1 && m.format() != kManifestFormatV2 &&
      m.format() != kManifestFormatV3)
    return Corrupt("manifest format " + std::to_string(m.format()) +
                   " is unknown");
  const bool v1 = m.format() == kManifestFormatV1;
  if (v1 && (m.fragment_k() || m.fragment_m()))
    return Corrupt("manifest format 1 carries an erasure code");
  const bool code_ok =
      m.fragment_k() >= 1 && m.fragment_k() <= uint32_t(ReedSolomon::kMaxK) &&
      m.fragment_m() >= 1 && m.fragment_m() <= uint32_t(ReedSolomon::kMaxM);
  const bool code_absent = m.fragment_k() == 0 && m.fragment_m() == 0;
  if (!code_ok && !code_absent)
    return Corrupt("manifest has an invalid erasure code");
  const size_t tags_len =
      code_ok ? size_t(m.fragment_k() + m.fragment_m()) * kFragmentTagBytes : 0;
  uint64_t total = 0;
  for (int i = 0; i < m.chunks_size(); i++) {
    const pb::ManifestChunk& c = m.chunks(i);
    const std::string at = "manifest chunk " + std::to_string(i);
    if (c.id().size() != 32)
      return Corrupt(at + " has an id of " + std::to_string(c.id().size()) +
                     " bytes");
    if (total + c.plain_len() < total)
      return Corrupt(at + ": lengths overflow");
    total += c.plain_len();
    if (m.format() >= kManifestFormatV3 && c.seal_key().size() != 32)
      return Corrupt(at + " has a seal key of " + std::to_string(c.seal_key().size()) +
                     " bytes (format 3: 32)");
    if (m.format() < kManifestFormatV3 && !c.seal_key().empty())
      return Corrupt(at + ": format " + std::to_string(m.format()) + " carries a seal key");
    const bool has_nonce = !c.seal_nonce().empty(),
               has_tags = !c.fragment_tags().empty();
    if (v1 && (has_nonce || has_tags))
      return Corrupt(at + ": format 1 carries fragment tags");
    if (has_nonce != has_tags)
      return Corrupt(at + " has a seal nonce or tags without the other");
    if (!has_tags) continue;
    if (!code_ok)
      return Corrupt(at +
                     " has fragment tags but the manifest no erasure code");
    if (c.seal_nonce().size() != 24)
      return Corrupt(at + " has a seal nonce of " +
                     std::to_string(c.seal_nonce().size()) + " bytes");
    if (c.fragment_tags().size() != tags_len)
      return Corrupt(
          at + " has " + std::to_string(c.fragment_tags().size()) +
          " bytes of fragment tags, not " + std::to_string(tags_len) +
          " (k + m = " + std::to_string(m.fragment_k() + m.fragment_m()) +
          " tags)");
  }
  if (total != m.size_bytes())
    return Corrupt("manifest chunk lengths add up to " + std::to_string(total) +
                   ", not its size " + std::to_string(m.size_bytes()));
  return Status::Ok();
}

Result<pb::Manifest> DecodeManifest(const uint8_t* data, size_t len) {
  pb::Manifest m;
  if (len > size_t(INT32_MAX) || !m.ParseFromArray(data, int(len)))
    return Corrupt("manifest does not parse");
  MS_RETURN_IF_ERROR(ValidateManifest(m));
  return m;
}

}  // namespace mistore
