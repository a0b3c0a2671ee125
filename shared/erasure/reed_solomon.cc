#include "shared/erasure/reed_solomon.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <utility>

// Jerasure 2 headers are C; they carry their own extern "C" guards.
// jerasure.h includes "galois.h", which lives in <include>/jerasure/, so that
// directory must be on the include path (shared/erasure/CMakeLists.txt).
// galois.h pulls in gf_complete.h, which has no extern "C" guard; we never
// call gf_* directly, so that does not matter here.
#include <jerasure.h>
#include <jerasure/reed_sol.h>

namespace mistore {
namespace {

constexpr int kW = 8;  // GF(2^8): one byte per symbol, k + m <= 256.

// gf-complete's SSE region multiply (used by jerasure_matrix_encode/decode
// for w = 8) requires source and destination to be congruent modulo 16 and
// calls exit(1) otherwise. We give Jerasure only 16-byte aligned regions.
constexpr uintptr_t kRegionAlign = 16;
// Scratch slots are spaced and aligned more generously (cache lines).
constexpr size_t kScratchAlign = 64;

bool IsAligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kRegionAlign == 0;
}

// Jerasure 2 builds its GF tables lazily, on first use, in a global array and
// without a lock: two threads racing through the first encode can both
// allocate and initialise gfp_array[w]. w = 8 is the field we code in; w = 32
// is used by galois_region_xor() (the XOR step inside every dot product) for
// regions of 16 bytes or more. Initialise both exactly once, up front.
Status InitGaloisFields() {
  static std::once_flag once;
  static int rc8 = 0;
  static int rc32 = 0;
  std::call_once(once, [] {
    rc8 = galois_init_default_field(8);
    rc32 = galois_init_default_field(32);
  });
  if (rc8 != 0 || rc32 != 0) {
    return Internal("jerasure: galois_init_default_field failed (w=8: " +
                    std::to_string(rc8) + ", w=32: " + std::to_string(rc32) +
                    ")");
  }
  return Status::Ok();
}

struct AlignedFree {
  void operator()(uint8_t* p) const {
    ::operator delete(p, std::align_val_t(kScratchAlign));
  }
};
using ScratchBuffer = std::unique_ptr<uint8_t, AlignedFree>;

// The k+m buffers Jerasure works on. A slot uses the caller's buffer directly
// when it is suitably aligned; otherwise (or when there is no buffer) it gets
// a slot in one aligned scratch area, and the caller copies in / out.
struct Regions {
  std::vector<char*> ptrs;
  std::vector<bool> in_scratch;
  ScratchBuffer scratch;
};

Regions PlaceRegions(const std::vector<uint8_t*>& bufs, size_t fragment_size,
                     bool force_scratch) {
  const size_t stride =
      (fragment_size + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
  Regions r;
  r.ptrs.resize(bufs.size());
  r.in_scratch.resize(bufs.size());
  size_t slots = 0;
  for (size_t i = 0; i < bufs.size(); i++) {
    r.in_scratch[i] =
        force_scratch || bufs[i] == nullptr || !IsAligned(bufs[i]);
    if (r.in_scratch[i]) slots++;
  }
  if (slots > 0) {
    r.scratch.reset(static_cast<uint8_t*>(
        ::operator new(slots* stride, std::align_val_t(kScratchAlign))));
    std::memset(r.scratch.get(), 0, slots * stride);
  }
  size_t next = 0;
  for (size_t i = 0; i < bufs.size(); i++) {
    uint8_t* p = r.in_scratch[i] ? r.scratch.get() + stride * next++ : bufs[i];
    MS_ASSERT(IsAligned(p));
    r.ptrs[i] = reinterpret_cast<char*>(p);
  }
  return r;
}

// Fragment i holds chunk bytes [i*fs, (i+1)*fs) clipped to chunk_len; the
// rest of it is zero padding.
size_t ShareOffset(int i, size_t fs) { return size_t(i) * fs; }
size_t ShareLength(int i, size_t fs, size_t chunk_len) {
  const size_t begin = ShareOffset(i, fs);
  return begin >= chunk_len ? 0 : std::min(fs, chunk_len - begin);
}

}  // namespace

ReedSolomon::ReedSolomon(int k, int m, int* matrix, bool row_k_ones)
    : k_(k), m_(m), matrix_(matrix), row_k_ones_(row_k_ones) {}

Result<ReedSolomon> ReedSolomon::Create(int k, int m) {
  if (k < 1 || k > kMaxK) {
    return InvalidArgument("reed-solomon: k=" + std::to_string(k) +
                           " out of range 1.." + std::to_string(kMaxK));
  }
  if (m < 1 || m > kMaxM) {
    return InvalidArgument("reed-solomon: m=" + std::to_string(m) +
                           " out of range 1.." + std::to_string(kMaxM));
  }
  MS_RETURN_IF_ERROR(InitGaloisFields());
  int* matrix = reed_sol_vandermonde_coding_matrix(k, m, kW);
  if (matrix == nullptr) {
    return Internal("reed-solomon: reed_sol_vandermonde_coding_matrix(" +
                    std::to_string(k) + ", " + std::to_string(m) +
                    ", 8) failed");
  }
  // Jerasure's Vandermonde matrix has an all-ones first parity row; confirm
  // rather than assume, since jerasure_matrix_decode takes it as a hint to
  // rebuild one data fragment by plain XOR.
  bool row_k_ones = true;
  for (int j = 0; j < k; j++) row_k_ones = row_k_ones && matrix[j] == 1;
  return ReedSolomon(k, m, matrix, row_k_ones);
}

size_t ReedSolomon::FragmentSize(size_t chunk_len, int k) {
  MS_ASSERT(k >= 1);
  size_t per = chunk_len / size_t(k) + (chunk_len % size_t(k) != 0 ? 1 : 0);
  if (per > SIZE_MAX - 7) return SIZE_MAX & ~size_t{7};  // saturate
  per = (per + 7) & ~size_t{7};
  return per == 0 ? 8 : per;
}

Status ReedSolomon::Encode(const uint8_t* chunk, size_t chunk_len,
                           std::vector<Bytes>* fragments) const {
  MS_ASSERT(matrix_ != nullptr);  // not a moved-from object
  if (fragments == nullptr) {
    return InvalidArgument("reed-solomon encode: fragments is null");
  }
  if (chunk == nullptr && chunk_len != 0) {
    return InvalidArgument("reed-solomon encode: chunk is null");
  }
  if (chunk_len > MaxChunkLen()) {
    return InvalidArgument("reed-solomon encode: chunk of " +
                           std::to_string(chunk_len) + " bytes exceeds " +
                           std::to_string(MaxChunkLen()) +
                           " for k=" + std::to_string(k_));
  }
  const size_t fs = FragmentSize(chunk_len, k_);
  const int n = k_ + m_;
  std::vector<Bytes> out(n);
  std::vector<uint8_t*> bufs(n);
  for (int i = 0; i < n; i++) {
    out[i].assign(fs, 0);
    bufs[i] = out[i].data();
  }
  for (int i = 0; i < k_; i++) {
    const size_t len = ShareLength(i, fs, chunk_len);
    if (len > 0) std::memcpy(out[i].data(), chunk + ShareOffset(i, fs), len);
  }

  Regions r = PlaceRegions(bufs, fs, force_scratch_);
  for (int i = 0; i < k_; i++) {
    if (r.in_scratch[i]) std::memcpy(r.ptrs[i], out[i].data(), fs);
  }
  jerasure_matrix_encode(k_, m_, kW, matrix_.get(), r.ptrs.data(),
                         r.ptrs.data() + k_, static_cast<int>(fs));
  for (int i = k_; i < n; i++) {
    if (r.in_scratch[i]) std::memcpy(out[i].data(), r.ptrs[i], fs);
  }
  *fragments = std::move(out);
  return Status::Ok();
}

Result<Bytes> ReedSolomon::Decode(std::vector<std::optional<Bytes>>& fragments,
                                  size_t chunk_len) const {
  MS_ASSERT(matrix_ != nullptr);  // not a moved-from object
  const int n = k_ + m_;
  if (fragments.size() != size_t(n)) {
    return InvalidArgument(
        "reed-solomon decode: got " + std::to_string(fragments.size()) +
        " fragment slots, expected k+m=" + std::to_string(n));
  }
  if (chunk_len > MaxChunkLen()) {
    return InvalidArgument("reed-solomon decode: chunk length " +
                           std::to_string(chunk_len) + " exceeds " +
                           std::to_string(MaxChunkLen()) +
                           " for k=" + std::to_string(k_));
  }
  const size_t fs = FragmentSize(chunk_len, k_);
  int present = 0;
  bool data_erased = false;
  for (int i = 0; i < n; i++) {
    if (!fragments[i].has_value()) {
      data_erased = data_erased || i < k_;
      continue;
    }
    if (fragments[i]->size() != fs) {
      return InvalidArgument(
          "reed-solomon decode: fragment " + std::to_string(i) + " has " +
          std::to_string(fragments[i]->size()) + " bytes, expected " +
          std::to_string(fs) + " for chunk length " +
          std::to_string(chunk_len) + " and k=" + std::to_string(k_));
    }
    present++;
  }
  if (present < k_) {
    return Corrupt("reed-solomon decode: only " + std::to_string(present) +
                   " of " + std::to_string(n) + " fragments present, need " +
                   std::to_string(k_));
  }

  // Reconstructed data fragments, for the erased data slots only.
  std::vector<Bytes> rebuilt(k_);
  if (data_erased) {
    std::vector<uint8_t*> bufs(n, nullptr);
    std::vector<int> erasures;
    for (int i = 0; i < n; i++) {
      if (fragments[i].has_value()) {
        bufs[i] =
            fragments[i]->data();  // read only: Jerasure writes erased slots
      } else {
        erasures.push_back(i);
        if (i < k_) {
          rebuilt[i].assign(fs, 0);
          bufs[i] = rebuilt[i].data();
        }
        // Erased parity: Jerasure recomputes it anyway; it lands in scratch
        // and is dropped (callers wanting parity can Encode the chunk).
      }
    }
    erasures.push_back(-1);  // Jerasure's terminator
    Regions r = PlaceRegions(bufs, fs, force_scratch_);
    for (int i = 0; i < n; i++) {
      if (r.in_scratch[i] && fragments[i].has_value()) {
        std::memcpy(r.ptrs[i], fragments[i]->data(), fs);
      }
    }
    const int rc = jerasure_matrix_decode(
        k_, m_, kW, matrix_.get(), row_k_ones_ ? 1 : 0, erasures.data(),
        r.ptrs.data(), r.ptrs.data() + k_, static_cast<int>(fs));
    if (rc != 0) {
      // Cannot happen with <= m erasures and an MDS matrix; never guess.
      return Internal("reed-solomon decode: jerasure_matrix_decode failed (" +
                      std::to_string(rc) + ")");
    }
    for (int i = 0; i < k_; i++) {
      if (!fragments[i].has_value() && r.in_scratch[i]) {
        std::memcpy(rebuilt[i].data(), r.ptrs[i], fs);
      }
    }
  }

  Bytes chunk(chunk_len);
  for (int i = 0; i < k_; i++) {
    const size_t len = ShareLength(i, fs, chunk_len);
    if (len == 0) continue;
    const uint8_t* src =
        fragments[i].has_value() ? fragments[i]->data() : rebuilt[i].data();
    std::memcpy(chunk.data() + ShareOffset(i, fs), src, len);
  }
  for (int i = 0; i < k_; i++) {
    if (!fragments[i].has_value()) fragments[i] = std::move(rebuilt[i]);
  }
  return chunk;
}

}  // namespace mistore
