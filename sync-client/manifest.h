// Version manifest decoding and validation (client-private: a manifest is
// sealed under the object key before it leaves the client; see
// docs/architecture.md). The message is pb::Manifest (shared/proto).
//
// Format 1: name, size, mtime, mode, ordered chunk ids with their plaintext
// lengths, put time, tombstone flag.
// Format 2 (issue 3) adds, for the chunks the client sealed in that put, the
// seal's nonce and the keyed tags of the chunk's fragments (fragment_tags.h)
// for the erasure code (fragment_k, fragment_m) recorded once per manifest.
// Format 2 is written; formats 1 and 2 are read.
//
// DecodeManifest rejects (kCorrupt "manifest ..."): bytes that do not parse,
// an unknown format, a format-1 manifest carrying format-2 fields, a
// format-2 manifest whose chunks carry tags without a valid (k, m), whose
// tag string is not exactly (k + m) x 16 bytes, whose nonce is not 24 bytes,
// or which has one of nonce / tags without the other; chunk ids not 32
// bytes; chunk lengths that do not add up to size_bytes (or overflow).
//
// Threads: pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

inline constexpr uint32_t kManifestFormat = 2;  // written
inline constexpr uint32_t kManifestFormatV1 = 1;

// Validates a parsed manifest as described above.
[[nodiscard]] Status ValidateManifest(const pb::Manifest& m);

// Parses (after the object key's AEAD opened it) and validates.
Result<pb::Manifest> DecodeManifest(const uint8_t* data, size_t len);

// Whether chunk `i` of a valid manifest carries fragment tags.
inline bool ChunkHasTags(const pb::Manifest& m, int i) {
  return !m.chunks(i).fragment_tags().empty();
}

}  // namespace mistore
