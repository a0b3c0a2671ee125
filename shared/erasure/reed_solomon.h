// ReedSolomon: systematic Reed-Solomon erasure coding over GF(2^8), a thin
// safe wrapper around Jerasure 2 (reed_sol_vandermonde_coding_matrix +
// jerasure_matrix_encode / jerasure_matrix_decode, w = 8).
//
// A chunk of chunk_len bytes is cut into k data fragments of FragmentSize()
// bytes each (the last one zero-padded) and m parity fragments of the same
// size are computed. Any k of the k+m fragments give the chunk back. This
// layer does erasure decoding only: it cannot tell a corrupted fragment from a
// good one, so callers must drop fragments that fail their integrity check
// (fragment.h carries a BLAKE2b hash per fragment; chunk_codec.h does that).
//
// The exact coding matrix is part of the stored format: parity bytes written
// today must decode with the library used tomorrow (reed_solomon_test.cc pins
// known parity bytes).
//
// Ownership: a ReedSolomon owns its k*m coding matrix (allocated by Jerasure
// with malloc, freed in the destructor); it is movable, not copyable. Encode
// and Decode never keep pointers to their arguments.
//
// Threads: pure functions, any thread. Encode/Decode are const and may run
// concurrently on the same or different objects. The one piece of shared state
// is inside Jerasure itself (its lazily built GF(2^8)/GF(2^32) tables);
// Create() builds those exactly once under std::call_once before any other
// Jerasure call, so the library's unsynchronised lazy init is never raced.
// Jerasure also bumps unsynchronised global statistics counters
// (jerasure_total_*_bytes) in every dot product: lost updates to numbers
// nobody reads, harmless, but a ThreadSanitizer run against an instrumented
// Jerasure would flag them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

class ReedSolomon {
 public:
  static constexpr int kMaxK = 32;  // data fragments
  static constexpr int kMaxM = 16;  // parity fragments
  // Largest fragment Encode/Decode accept (and the fragment format's payload
  // cap). Also keeps sizes within Jerasure's `int size` parameter.
  static constexpr size_t kMaxFragmentSize = size_t{64} << 20;  // 64 MiB

  // 1 <= k <= kMaxK, 1 <= m <= kMaxM, else kInvalidArgument.
  static Result<ReedSolomon> Create(int k, int m);

  ReedSolomon(ReedSolomon&&) noexcept = default;
  ReedSolomon& operator=(ReedSolomon&&) noexcept = default;
  ReedSolomon(const ReedSolomon&) = delete;
  ReedSolomon& operator=(const ReedSolomon&) = delete;
  ~ReedSolomon() = default;  // matrix_ frees the Jerasure matrix

  int k() const { return k_; }
  int m() const { return m_; }

  // Bytes per fragment for a chunk of chunk_len bytes: ceil(chunk_len / k)
  // rounded up to a multiple of 8 (Jerasure needs a multiple of sizeof(long)),
  // and at least 8, also for chunk_len 0. Requires k >= 1. Never overflows:
  // absurd chunk_len values give a result above kMaxFragmentSize.
  static size_t FragmentSize(size_t chunk_len, int k);

  // Largest chunk_len this code accepts: k * kMaxFragmentSize.
  size_t MaxChunkLen() const { return size_t(k_) * kMaxFragmentSize; }

  // Replaces *fragments with k+m fragments of FragmentSize(chunk_len, k)
  // bytes: [0, k) are the chunk's bytes in order (zero-padded at the end),
  // [k, k+m) are parity. `chunk` may be null only when chunk_len is 0.
  // kInvalidArgument if chunk_len > MaxChunkLen(); *fragments is then
  // untouched.
  Status Encode(const uint8_t* chunk, size_t chunk_len,
                std::vector<Bytes>* fragments) const;

  // Rebuilds the chunk from any k of its fragments. `fragments` must have
  // k+m entries, indexed like Encode's output; std::nullopt marks an erased
  // fragment. Every present fragment must be FragmentSize(chunk_len, k) bytes.
  // Returns exactly chunk_len bytes.
  //
  // On success, erased data entries (index < k) are filled in place with the
  // reconstructed fragments (so a repair can reuse them); present entries and
  // erased parity entries are left as they were. On error `fragments` is
  // unchanged.
  //
  // Errors: kInvalidArgument for a wrong entry count, wrong fragment sizes or
  // chunk_len > MaxChunkLen(); kCorrupt when fewer than k fragments are
  // present. Present fragments are trusted: a silently corrupted fragment
  // gives a wrong chunk, which is why fragments carry hashes.
  Result<Bytes> Decode(std::vector<std::optional<Bytes>>& fragments,
                       size_t chunk_len) const;

  // Testing only: route every buffer through the aligned scratch area even
  // when the caller's buffers are already suitably aligned (the fallback is
  // otherwise only taken on platforms whose operator new aligns < 16 bytes).
  void set_force_scratch_for_testing(bool force) { force_scratch_ = force; }

 private:
  struct FreeDeleter {
    void operator()(int* p) const { std::free(p); }
  };

  ReedSolomon(int k, int m, int* matrix, bool row_k_ones);

  int k_ = 0;
  int m_ = 0;
  std::unique_ptr<int, FreeDeleter>
      matrix_;               // m_ x k_, row-major, from Jerasure
  bool row_k_ones_ = false;  // first parity row is all ones (lets Jerasure XOR)
  bool force_scratch_ = false;
};

}  // namespace mistore
