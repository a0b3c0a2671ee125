// Chunk codec: one call from a chunk to its k+m self-describing fragment
// blobs (fragment.h header + ReedSolomon payload), and one call back from any
// subset of blobs, in any order, to the chunk.
//
// Decoding trusts nothing it is handed: a blob that does not parse, fails its
// header check or payload hash, belongs to another chunk id, or disagrees on
// k, m or chunk length is treated as an erasure. Two blobs with the same index
// count once if byte-identical; if their payloads differ neither can be
// trusted and the index is treated as erased. Only hash-verified payloads
// reach Reed-Solomon, so with >= k good blobs the result is the original
// chunk, and with fewer the call fails; it never returns wrong bytes because
// of a damaged blob. (Whether chunk_id matches the chunk's content is the
// caller's business: this module treats the id as an opaque 32-byte label.)
//
// Ownership: inputs are borrowed for the call; results are fresh buffers.
// Threads: pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

// k+m blobs, blob i holding fragment i. kInvalidArgument if chunk_id is not
// 32 bytes, k/m are out of range (1..32, 1..16), chunk is null with len > 0,
// or len > k * 64 MiB.
Result<std::vector<Bytes>> EncodeChunkToFragments(const Bytes& chunk_id,
                                                  const uint8_t* chunk,
                                                  size_t len, int k, int m);

// The chunk (exactly chunk_len bytes) from any subset of its blobs, in any
// order. kInvalidArgument for bad parameters (as above); kCorrupt, naming how
// many good fragments were found out of how many blobs, if fewer than k
// good fragments remain.
Result<Bytes> DecodeChunkFromFragments(const Bytes& chunk_id,
                                       const std::vector<Bytes>& blobs, int k,
                                       int m, size_t chunk_len);

}  // namespace mistore
