// Chunk codec: one call from a chunk to its k+m self-describing fragment
// blobs (fragment.h header + ReedSolomon payload), and one call back from any
// subset of blobs, in any order, to the chunk.
//
// Decoding trusts nothing it is handed: a blob that does not parse, fails its
// header check or payload check, belongs to another chunk id, or disagrees on
// k, m or chunk length is treated as an erasure. Two blobs with the same index
// count once if byte-identical; if their payloads differ neither can be
// trusted and the index is treated as erased.
//
// Forgeries: a holder can rewrite a payload and recompute its check, so a
// fragment that passes its check may still be forged. Decoding therefore
// cross-checks the redundancy: with p > k good fragments it rebuilds the
// chunk from k of them and recomputes the other p - k; if one disagrees, it
// looks for the smallest set of at most min(2, (p - k) / 2) fragments whose
// removal leaves a consistent set (singles first, then pairs), decodes from
// the rest and names that set as forged. The code has distance p - k + 1
// over the p fragments, so the set found is the only one of that size when
// the forgeries are that few. With more forgeries it fails (kCorrupt,
// "inconsistent") rather than guess, except that a pattern of more forgeries
// than can be located can look like a smaller one (bounded-distance
// decoding): then wrong bytes are returned and the client's AEAD, which
// binds the chunk id, rejects them (docs/architecture.md, "Forged
// fragments"). With exactly k good fragments nothing can be cross-checked.
// (Whether chunk_id matches the chunk's content is the caller's business:
// this module treats the id as an opaque 32-byte label.)
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

struct CheckedChunk {
  Bytes chunk;              // exactly chunk_len bytes
  std::vector<int> forged;  // fragment indexes located as forged, ascending
  int cross_checked = 0;    // good fragments beyond k that confirmed the chunk
};

// The chunk from any subset of its blobs, in any order, cross-checked as
// described above. kInvalidArgument for bad parameters (as above); kCorrupt,
// naming how many good fragments were found out of how many blobs, if fewer
// than k good fragments remain, and kCorrupt "... inconsistent ..." if the
// good fragments disagree in a way no small enough set of forgeries explains.
Result<CheckedChunk> DecodeChunkChecked(const Bytes& chunk_id,
                                        const std::vector<Bytes>& blobs, int k,
                                        int m, size_t chunk_len);

// DecodeChunkChecked's chunk alone.
Result<Bytes> DecodeChunkFromFragments(const Bytes& chunk_id,
                                       const std::vector<Bytes>& blobs, int k,
                                       int m, size_t chunk_len);

}  // namespace mistore
