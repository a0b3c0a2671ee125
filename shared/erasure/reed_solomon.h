// ReedSolomon: systematic Reed-Solomon erasure coding over GF(2^8) with
// Jerasure 2's generator matrix (reed_sol_vandermonde_coding_matrix, w = 8,
// polynomial 0x11d). Two backends compute the same bytes with it: Jerasure's
// region arithmetic (everywhere) and ISA-L's ec_encode_data (where the build
// found ISA-L: x86-64 native builds; about 3x faster here), fed the same
// matrix rows through ec_init_tables. The default is ISA-L where built in;
// reed_solomon_test.cc checks both give byte-identical fragments and decodes.
// After each ISA-L call a vzeroupper clears the upper AVX state ISA-L's
// AVX-512/AVX2 kernels leave dirty (it slowed libsodium's AES-GCM by 40%).
//
// A chunk of chunk_len bytes is cut into k data fragments of FragmentSize()
// bytes each (the last one zero-padded) and m parity fragments of the same
// size are computed. Any k of the k+m fragments give the chunk back. This
// layer does erasure decoding only: it cannot tell a corrupted fragment from a
// good one, so callers must drop fragments that fail their integrity check
// (fragment.h carries a checksum per fragment; chunk_codec.h drops those and
// also cross-checks redundant fragments against each other).
//
// The exact coding matrix is part of the stored format: parity bytes written
// today must decode with the library used tomorrow (reed_solomon_test.cc pins
// known parity bytes).
//
// Two interfaces: the region interface (EncodeRegions / ComputeRegions) works
// on caller-owned buffers and allocates nothing in the steady state, so a
// fragment can be built in place inside its blob; the vector interface
// (Encode / Decode) is the convenient one for tests and small callers.
//
// Decode matrices (the rows that compute any set of fragments from any k
// survivors: generator rows times the inverse of the survivors' rows) are
// built once per (survivors, targets) pattern and cached in the object
// (at most kPatternCacheMax patterns; beyond that they are rebuilt per call).
//
// Ownership: a ReedSolomon owns its k*m coding matrix and its pattern cache;
// it is movable, not copyable. Shared() hands out one process-wide instance
// per (k, m) that lives until exit. No call keeps pointers to its arguments.
//
// Threads: Encode/Decode/EncodeRegions/ComputeRegions are const and may run
// concurrently on the same or different objects (the pattern cache is behind
// a mutex). Jerasure's lazily built GF tables are built exactly once under
// std::call_once before any other Jerasure call, so its unsynchronised lazy
// init is never raced. Jerasure also bumps unsynchronised global statistics
// counters (jerasure_total_*_bytes) in every dot product: lost updates to
// numbers nobody reads, harmless, but a ThreadSanitizer run against an
// instrumented Jerasure would flag them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
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
  // Decode patterns cached per object (each k*|targets| bytes plus tables).
  static constexpr size_t kPatternCacheMax = 256;

  enum class Backend { kJerasure, kIsal };
  // Whether this build has ISA-L; the backend Create and Shared use.
  static bool HasIsal();
  static Backend DefaultBackend() {
    return HasIsal() ? Backend::kIsal : Backend::kJerasure;
  }
  static const char* BackendName(Backend b) {
    return b == Backend::kIsal ? "isa-l" : "jerasure";
  }

  // 1 <= k <= kMaxK, 1 <= m <= kMaxM, else kInvalidArgument (also for
  // Backend::kIsal in a build without ISA-L).
  static Result<ReedSolomon> Create(int k, int m,
                                    Backend backend = DefaultBackend());

  // The process-wide instance for (k, m), created on first use and never
  // freed (at most kMaxK * kMaxM of them). Errors as Create.
  static Result<const ReedSolomon*> Shared(int k, int m);

  ReedSolomon(ReedSolomon&&) noexcept;
  ReedSolomon& operator=(ReedSolomon&&) noexcept;
  ReedSolomon(const ReedSolomon&) = delete;
  ReedSolomon& operator=(const ReedSolomon&) = delete;
  ~ReedSolomon();

  int k() const { return k_; }
  int m() const { return m_; }
  Backend backend() const { return backend_; }

  // Bytes per fragment for a chunk of chunk_len bytes: ceil(chunk_len / k)
  // rounded up to a multiple of 8 (Jerasure needs a multiple of sizeof(long)),
  // and at least 8, also for chunk_len 0. Requires k >= 1. Never overflows:
  // absurd chunk_len values give a result above kMaxFragmentSize.
  static size_t FragmentSize(size_t chunk_len, int k);

  // Largest chunk_len this code accepts: k * kMaxFragmentSize.
  size_t MaxChunkLen() const { return size_t(k_) * kMaxFragmentSize; }

  // Bytes of data fragment i that come from a chunk of chunk_len bytes (the
  // rest of its fs bytes are zero padding); it starts at chunk offset i * fs.
  static size_t ShareLength(int i, size_t fs, size_t chunk_len);

  // Region interface. data[0..k) are k readable regions of fs bytes,
  // parity[0..m) are m writable regions of fs bytes (distinct from the data);
  // writes the m parity fragments. fs must be a positive multiple of 8 and at
  // most kMaxFragmentSize (asserted). Regions may have any alignment.
  void EncodeRegions(const uint8_t* const* data, uint8_t* const* parity,
                     size_t fs) const;

  // Computes fragments from exactly k others: `from` lists k distinct
  // indexes (< k+m) with their regions in `src`; `to` lists indexes (any,
  // data or parity, not in `from`) with writable regions in `dst`. All
  // regions are fs bytes (as EncodeRegions). kInvalidArgument for bad index
  // lists; never fails otherwise (the code is MDS: any k rows invert).
  Status ComputeRegions(const std::vector<int>& from, const uint8_t* const* src,
                        const std::vector<int>& to, uint8_t* const* dst,
                        size_t fs) const;

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
  // gives a wrong chunk, which is why fragments carry checksums.
  Result<Bytes> Decode(std::vector<std::optional<Bytes>>& fragments,
                       size_t chunk_len) const;

  // Testing only: route every region through a 16-byte aligned scratch area
  // even when the caller's regions could be used directly (the fallback is
  // otherwise taken when the regions are not congruent modulo 16, which
  // gf-complete's SIMD region multiply requires).
  void set_force_scratch_for_testing(bool force) { force_scratch_ = force; }

  // Decode patterns currently cached (tests).
  size_t cached_patterns_for_testing() const;

 private:
  struct FreeDeleter {
    void operator()(int* p) const { std::free(p); }
  };
  // Rows computing `to` from `from` (|to| x k, row-major, GF(2^8) elements
  // as Jerasure ints).
  struct Pattern {
    std::vector<int> rows;
    std::vector<uint8_t> isal_tables;  // ec_init_tables of rows (ISA-L only)
  };
  struct PatternCache {
    std::mutex mu;
    std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<const Pattern>>
        patterns;  // (from mask, to mask) -> rows
  };

  ReedSolomon(int k, int m, int* matrix, Backend backend);

  // Generator row r (k+m rows: identity, then the coding matrix), element j.
  int GeneratorAt(int r, int j) const;
  Result<std::shared_ptr<const Pattern>> GetPattern(
      const std::vector<int>& from, const std::vector<int>& to) const;
  // dst[t] = sum_j rows[t][j] * src[j], t < n_rows, over fs bytes;
  // isal_tables are the rows' ec_init_tables (ISA-L backend).
  void MultiplyRegions(const int* rows, const uint8_t* isal_tables, int n_rows,
                       const uint8_t* const* src, uint8_t* const* dst,
                       size_t fs) const;

  int k_ = 0;
  int m_ = 0;
  std::unique_ptr<int, FreeDeleter> matrix_;  // m_ x k_, row-major
  std::unique_ptr<PatternCache> cache_;
  std::vector<uint8_t> encode_tables_;  // ISA-L: ec_init_tables of matrix_
  Backend backend_ = Backend::kJerasure;
  bool force_scratch_ = false;
};

}  // namespace mistore
