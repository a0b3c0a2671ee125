#include "shared/erasure/reed_solomon.h"

#include <algorithm>
#include <array>
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

#if defined(MISTORE_HAVE_ISAL)
#include <isa-l/erasure_code.h>
#endif

#include "shared/core/assert.h"

namespace mistore {
namespace {

constexpr int kW = 8;  // GF(2^8): one byte per symbol, k + m <= 256.

// gf-complete's SIMD region multiply (used by jerasure_matrix_dotprod for
// w = 8) requires source and destination to be congruent modulo 16 and
// calls exit(1) otherwise. Regions that are not all congruent go through an
// aligned scratch area.
constexpr uintptr_t kRegionAlign = 16;
constexpr size_t kScratchAlign = 64;

uintptr_t Residue(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kRegionAlign;
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

ScratchBuffer NewScratch(size_t bytes) {
  return ScratchBuffer(static_cast<uint8_t*>(
      ::operator new(bytes, std::align_val_t(kScratchAlign))));
}

uint64_t MaskOf(const std::vector<int>& idx) {
  uint64_t mask = 0;
  for (int i : idx) mask |= uint64_t{1} << i;
  return mask;
}

// Validates an index list: entries in [0, n), distinct, and not in `taken`.
bool ValidIndexes(const std::vector<int>& idx, int n, uint64_t taken) {
  uint64_t seen = taken;
  for (int i : idx) {
    if (i < 0 || i >= n || (seen >> i & 1) != 0) return false;
    seen |= uint64_t{1} << i;
  }
  return true;
}

// Index list sorted ascending together with its regions.
template <typename Ptr>
void SortByIndex(const std::vector<int>& idx, const Ptr* regions,
                 std::vector<int>* sorted_idx, std::vector<Ptr>* sorted) {
  std::vector<std::pair<int, Ptr>> v;
  v.reserve(idx.size());
  for (size_t i = 0; i < idx.size(); i++) v.emplace_back(idx[i], regions[i]);
  std::sort(v.begin(), v.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  sorted_idx->clear();
  sorted->clear();
  for (auto& [i, p] : v) {
    sorted_idx->push_back(i);
    sorted->push_back(p);
  }
}

// ISA-L's AVX2/AVX-512 kernels return with the upper vector state dirty;
// SSE code that follows (libsodium's AES-GCM among it) then pays transition
// penalties. Clear it after every ISA-L call.
[[maybe_unused]] void ZeroUpper() {
#if defined(__x86_64__)
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) __asm__ volatile("vzeroupper" ::: "memory");
#endif
}

#if defined(MISTORE_HAVE_ISAL)
std::vector<uint8_t> IsalTables(const int* rows, int n_rows, int k) {
  std::vector<uint8_t> bytes(size_t(n_rows) * k);
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = uint8_t(rows[i]);
  std::vector<uint8_t> tables(32 * size_t(k) * n_rows);
  ec_init_tables(k, n_rows, bytes.data(), tables.data());
  return tables;
}
#endif

std::mutex& SharedMu() {
  static std::mutex mu;
  return mu;
}

}  // namespace

ReedSolomon::ReedSolomon(int k, int m, int* matrix, Backend backend)
    : k_(k),
      m_(m),
      matrix_(matrix),
      cache_(std::make_unique<PatternCache>()),
      backend_(backend) {
#if defined(MISTORE_HAVE_ISAL)
  if (backend_ == Backend::kIsal) encode_tables_ = IsalTables(matrix, m, k);
#endif
}

bool ReedSolomon::HasIsal() {
#if defined(MISTORE_HAVE_ISAL)
  return true;
#else
  return false;
#endif
}
ReedSolomon::ReedSolomon(ReedSolomon&&) noexcept = default;
ReedSolomon& ReedSolomon::operator=(ReedSolomon&&) noexcept = default;
ReedSolomon::~ReedSolomon() = default;

Result<ReedSolomon> ReedSolomon::Create(int k, int m, Backend backend) {
  if (k < 1 || k > kMaxK) {
    return InvalidArgument("reed-solomon: k=" + std::to_string(k) +
                           " out of range 1.." + std::to_string(kMaxK));
  }
  if (m < 1 || m > kMaxM) {
    return InvalidArgument("reed-solomon: m=" + std::to_string(m) +
                           " out of range 1.." + std::to_string(kMaxM));
  }
  if (backend == Backend::kIsal && !HasIsal()) {
    return InvalidArgument("reed-solomon: built without ISA-L");
  }
  MS_RETURN_IF_ERROR(InitGaloisFields());
  int* matrix = reed_sol_vandermonde_coding_matrix(k, m, kW);
  if (matrix == nullptr) {
    return Internal("reed-solomon: reed_sol_vandermonde_coding_matrix(" +
                    std::to_string(k) + ", " + std::to_string(m) +
                    ", 8) failed");
  }
  return ReedSolomon(k, m, matrix, backend);
}

Result<const ReedSolomon*> ReedSolomon::Shared(int k, int m) {
  static std::map<std::pair<int, int>, std::unique_ptr<ReedSolomon>>*
      instances = new std::map<std::pair<int, int>,
                               std::unique_ptr<ReedSolomon>>();  // never freed
  std::lock_guard<std::mutex> lock(SharedMu());
  auto it = instances->find({k, m});
  if (it != instances->end())
    return static_cast<const ReedSolomon*>(it->second.get());
  MS_ASSIGN_OR_RETURN(ReedSolomon rs, Create(k, m));
  auto owned = std::make_unique<ReedSolomon>(std::move(rs));
  const ReedSolomon* p = owned.get();
  instances->emplace(std::make_pair(k, m), std::move(owned));
  return p;
}

size_t ReedSolomon::FragmentSize(size_t chunk_len, int k) {
  MS_ASSERT(k >= 1);
  size_t per = chunk_len / size_t(k) + (chunk_len % size_t(k) != 0 ? 1 : 0);
  if (per > SIZE_MAX - 7) return SIZE_MAX & ~size_t{7};  // saturate
  per = (per + 7) & ~size_t{7};
  return per == 0 ? 8 : per;
}

size_t ReedSolomon::ShareLength(int i, size_t fs, size_t chunk_len) {
  const size_t begin = size_t(i) * fs;
  return begin >= chunk_len ? 0 : std::min(fs, chunk_len - begin);
}

int ReedSolomon::GeneratorAt(int r, int j) const {
  if (r < k_) return r == j ? 1 : 0;
  return matrix_.get()[(r - k_) * k_ + j];
}

size_t ReedSolomon::cached_patterns_for_testing() const {
  std::lock_guard<std::mutex> lock(cache_->mu);
  return cache_->patterns.size();
}

void ReedSolomon::MultiplyRegions(const int* rows, const uint8_t* isal_tables,
                                  int n_rows, const uint8_t* const* src,
                                  uint8_t* const* dst, size_t fs) const {
  MS_ASSERT(fs > 0 && fs % 8 == 0 && fs <= kMaxFragmentSize);
#if defined(MISTORE_HAVE_ISAL)
  if (backend_ == Backend::kIsal) {
    // Any alignment; ec_encode_data only reads src and writes dst.
    MS_ASSERT(isal_tables != nullptr);
    ec_encode_data(static_cast<int>(fs), k_, n_rows,
                   const_cast<uint8_t*>(isal_tables),
                   const_cast<uint8_t**>(src), const_cast<uint8_t**>(dst));
    ZeroUpper();
    return;
  }
#else
  (void)isal_tables;
#endif
  const uintptr_t r0 = Residue(src[0]);
  bool congruent = !force_scratch_;
  for (int j = 0; j < k_ && congruent; j++) congruent = Residue(src[j]) == r0;
  for (int t = 0; t < n_rows && congruent; t++)
    congruent = Residue(dst[t]) == r0;

  std::array<char*, kMaxK> in{};
  std::array<char*, kMaxK + kMaxM> out{};
  ScratchBuffer scratch;
  const size_t stride =
      (fs + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
  if (congruent) {
    for (int j = 0; j < k_; j++)
      in[j] = reinterpret_cast<char*>(const_cast<uint8_t*>(src[j]));
    for (int t = 0; t < n_rows; t++) out[t] = reinterpret_cast<char*>(dst[t]);
  } else {
    scratch = NewScratch(stride * size_t(k_ + n_rows));
    for (int j = 0; j < k_; j++) {
      in[j] = reinterpret_cast<char*>(scratch.get() + stride * j);
      std::memcpy(in[j], src[j], fs);
    }
    for (int t = 0; t < n_rows; t++)
      out[t] = reinterpret_cast<char*>(scratch.get() + stride * (k_ + t));
  }
  // One dot product per output row, exactly as jerasure_matrix_encode does
  // (it calls jerasure_matrix_dotprod(k, w, row, NULL, k + i, ...)).
  for (int t = 0; t < n_rows; t++) {
    jerasure_matrix_dotprod(k_, kW, const_cast<int*>(rows + t * k_), nullptr,
                            k_ + t, in.data(), out.data(),
                            static_cast<int>(fs));
  }
  if (!congruent) {
    for (int t = 0; t < n_rows; t++) std::memcpy(dst[t], out[t], fs);
  }
}

void ReedSolomon::EncodeRegions(const uint8_t* const* data,
                                uint8_t* const* parity, size_t fs) const {
  MS_ASSERT(matrix_ != nullptr);  // not a moved-from object
  MultiplyRegions(matrix_.get(), encode_tables_.data(), m_, data, parity, fs);
}

Result<std::shared_ptr<const ReedSolomon::Pattern>> ReedSolomon::GetPattern(
    const std::vector<int>& from, const std::vector<int>& to) const {
  const auto key = std::make_pair(MaskOf(from), MaskOf(to));
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->patterns.find(key);
    if (it != cache_->patterns.end()) return it->second;
  }
  // inv(G_from), then rows = G_to * inv(G_from). `from` and `to` ascending.
  std::vector<int> g(size_t(k_) * k_);
  std::vector<int> inv(size_t(k_) * k_);
  for (int a = 0; a < k_; a++)
    for (int j = 0; j < k_; j++) g[a * k_ + j] = GeneratorAt(from[a], j);
  if (jerasure_invert_matrix(g.data(), inv.data(), k_, kW) != 0) {
    return Internal("reed-solomon: generator rows not invertible");  // not MDS?
  }
  auto p = std::make_shared<Pattern>();
  p->rows.assign(to.size() * size_t(k_), 0);
  for (size_t t = 0; t < to.size(); t++) {
    for (int j = 0; j < k_; j++) {
      int acc = 0;
      for (int l = 0; l < k_; l++) {
        const int a = GeneratorAt(to[t], l);
        if (a != 0 && inv[l * k_ + j] != 0)
          acc ^= galois_single_multiply(a, inv[l * k_ + j], kW);
      }
      p->rows[t * k_ + j] = acc;
    }
  }
#if defined(MISTORE_HAVE_ISAL)
  if (backend_ == Backend::kIsal)
    p->isal_tables = IsalTables(p->rows.data(), int(to.size()), k_);
#endif
  std::lock_guard<std::mutex> lock(cache_->mu);
  if (cache_->patterns.size() < kPatternCacheMax)
    cache_->patterns.emplace(key, p);
  return std::shared_ptr<const Pattern>(std::move(p));
}

Status ReedSolomon::ComputeRegions(const std::vector<int>& from,
                                   const uint8_t* const* src,
                                   const std::vector<int>& to,
                                   uint8_t* const* dst, size_t fs) const {
  MS_ASSERT(matrix_ != nullptr);
  const int n = k_ + m_;
  if (from.size() != size_t(k_) || !ValidIndexes(from, n, 0) ||
      !ValidIndexes(to, n, MaskOf(from))) {
    return InvalidArgument("reed-solomon: bad fragment index lists");
  }
  if (to.empty()) return Status::Ok();
  std::vector<int> from_sorted, to_sorted;
  std::vector<const uint8_t*> src_sorted;
  std::vector<uint8_t*> dst_sorted;
  SortByIndex(from, src, &from_sorted, &src_sorted);
  SortByIndex(to, dst, &to_sorted, &dst_sorted);
  MS_ASSIGN_OR_RETURN(std::shared_ptr<const Pattern> p,
                      GetPattern(from_sorted, to_sorted));
  MultiplyRegions(p->rows.data(), p->isal_tables.data(), int(to_sorted.size()),
                  src_sorted.data(), dst_sorted.data(), fs);
  return Status::Ok();
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
  std::vector<const uint8_t*> data(k_);
  std::vector<uint8_t*> parity(m_);
  for (int i = 0; i < n; i++) out[i].resize(fs);
  for (int i = 0; i < k_; i++) {
    const size_t len = ShareLength(i, fs, chunk_len);
    if (len > 0) std::memcpy(out[i].data(), chunk + size_t(i) * fs, len);
    data[i] = out[i].data();
  }
  for (int i = 0; i < m_; i++) parity[i] = out[k_ + i].data();
  EncodeRegions(data.data(), parity.data(), fs);
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
  std::vector<int> from;
  std::vector<const uint8_t*> src;
  int present = 0;
  for (int i = 0; i < n; i++) {
    if (!fragments[i].has_value()) continue;
    if (fragments[i]->size() != fs) {
      return InvalidArgument(
          "reed-solomon decode: fragment " + std::to_string(i) + " has " +
          std::to_string(fragments[i]->size()) + " bytes, expected " +
          std::to_string(fs) + " for chunk length " +
          std::to_string(chunk_len) + " and k=" + std::to_string(k_));
    }
    present++;
    if (int(from.size()) < k_) {
      from.push_back(i);
      src.push_back(fragments[i]->data());
    }
  }
  if (present < k_) {
    return Corrupt("reed-solomon decode: only " + std::to_string(present) +
                   " of " + std::to_string(n) + " fragments present, need " +
                   std::to_string(k_));
  }

  // Reconstructed data fragments, for the erased data slots only.
  std::vector<Bytes> rebuilt(k_);
  std::vector<int> to;
  std::vector<uint8_t*> dst;
  for (int i = 0; i < k_; i++) {
    if (fragments[i].has_value()) continue;
    rebuilt[i].resize(fs);
    to.push_back(i);
    dst.push_back(rebuilt[i].data());
  }
  MS_RETURN_IF_ERROR(ComputeRegions(from, src.data(), to, dst.data(), fs));

  Bytes chunk(chunk_len);
  for (int i = 0; i < k_; i++) {
    const size_t len = ShareLength(i, fs, chunk_len);
    if (len == 0) continue;
    const uint8_t* s =
        fragments[i].has_value() ? fragments[i]->data() : rebuilt[i].data();
    std::memcpy(chunk.data() + size_t(i) * fs, s, len);
  }
  for (int i = 0; i < k_; i++) {
    if (!fragments[i].has_value()) fragments[i] = std::move(rebuilt[i]);
  }
  return chunk;
}

}  // namespace mistore
