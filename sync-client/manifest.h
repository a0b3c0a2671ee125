// Version manifest decoding and validation (client-private: a manifest is
// sealed under the object key before it leaves the client; see
// docs/architecture.md). The message is pb::Manifest (shared/proto).
//
// Format 1: name, size, mtime, mode, ordered chunk ids with their plaintext
// lengths, put time, tombstone flag.
// Format 2 (issue 3) adds, for the chunks the client sealed in that put, the
// seal's nonce and the keyed tags of the chunk's fragments (fragment_tags.h)
// for the erasure code (fragment_k, fragment_m) recorded once per manifest.
// Format 3 (issue 4, sharing) adds on every chunk the key it is sealed under
// (ManifestChunk.seal_key, 32 bytes: shared/crypto/share.h ChunkSealKey), so
// the manifest alone opens its chunks for a reader holding the object key;
// its chunk ids are keyed with the format-3 chunk-id key.
// Format 3 is written; formats 1, 2 and 3 are read (1 and 2: chunks under
// the user's chunk key, by their owner only).
//
// DecodeManifest rejects (kCorrupt "manifest ..."): bytes that do not parse,
// an unknown format, a format-1 manifest carrying format-2 fields, a
// format-2 manifest whose chunks carry tags without a valid (k, m), whose
// tag string is not exactly (k + m) x 16 bytes, whose nonce is not 24 bytes,
// or which has one of nonce / tags without the other; a format-3 chunk
// without a 32-byte seal key, or a format 1/2 chunk with one; chunk ids not 32
// bytes; chunk lengths that do not add up to size_bytes (or overflow).
//
// Threads: pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

inline constexpr uint32_t kManifestFormat = 3;  // written
inline constexpr uint32_t kManifestFormatV1 = 1;
inline constexpr uint32_t kManifestFormatV2 = 2;
inline constexpr uint32_t kManifestFormatV3 = 3;

// Whether the manifest's chunks carry their own seal keys (format 3).
inline bool ManifestHasChunkKeys(const pb::Manifest& m) { return m.format() >= kManifestFormatV3; }

// Validates a parsed manifest as described above.
[[nodiscard]] Status ValidateManifest(const pb::Manifest& m);

// Parses (after the object key's AEAD opened it) and validates.
Result<pb::Manifest> DecodeManifest(const uint8_t* data, size_t len);

// Whether chunk `i` of a valid manifest carries fragment tags.
inline bool ChunkHasTags(const pb::Manifest& m, int i) {
  return !m.chunks(i).fragment_tags().empty();
}

}  // namespace mistore
