#include "shared/erasure/chunk_codec.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "shared/erasure/fragment.h"
#include "shared/erasure/reed_solomon.h"

namespace mistore {

Result<std::vector<Bytes>> EncodeChunkToFragments(const Bytes& chunk_id,
                                                  const uint8_t* chunk,
                                                  size_t len, int k, int m) {
  if (chunk_id.size() != kChunkIdSize) {
    return InvalidArgument("chunk encode: chunk id has " +
                           std::to_string(chunk_id.size()) +
                           " bytes, expected " + std::to_string(kChunkIdSize));
  }
  MS_ASSIGN_OR_RETURN(const ReedSolomon* rs, ReedSolomon::Shared(k, m));
  if (chunk == nullptr && len != 0) {
    return InvalidArgument("chunk encode: chunk is null");
  }
  if (len > rs->MaxChunkLen()) {
    return InvalidArgument(
        "chunk encode: chunk of " + std::to_string(len) + " bytes exceeds " +
        std::to_string(rs->MaxChunkLen()) + " for k=" + std::to_string(k));
  }
  // Each blob is allocated once (header + payload); data slices are copied
  // into their blobs once, parity is computed straight into its blobs, and
  // the header is written last, over the payload in place.
  const size_t fs = ReedSolomon::FragmentSize(len, k);
  const int n = k + m;
  std::vector<Bytes> blobs(n);
  std::vector<const uint8_t*> data(k);
  std::vector<uint8_t*> parity(m);
  for (int i = 0; i < n; i++) {
    blobs[i].resize(kFragmentHeaderSizeV2 + fs);
    uint8_t* payload = blobs[i].data() + kFragmentHeaderSizeV2;
    if (i < k) {
      const size_t share = ReedSolomon::ShareLength(i, fs, len);
      if (share > 0) std::memcpy(payload, chunk + size_t(i) * fs, share);
      data[i] = payload;
    } else {
      parity[i - k] = payload;
    }
  }
  rs->EncodeRegions(data.data(), parity.data(), fs);

  FragmentHeader header;
  header.chunk_id = chunk_id;
  header.k = uint8_t(k);
  header.m = uint8_t(m);
  header.chunk_len = uint64_t(len);
  for (int i = 0; i < n; i++) {
    header.index = uint8_t(i);
    FinishFragmentInPlace(header, blobs[i].data(), fs);
  }
  return blobs;
}

namespace {

// Rebuilds from the good fragments `good` (ascending indexes, payloads in
// `payload`) minus `excluded`, and checks every remaining good fragment
// against the rebuilt code word. On success the k data fragments are in
// data[] (pointing into payloads or into scratch).
class Reconstructor {
 public:
  Reconstructor(const ReedSolomon& rs, const std::vector<int>& good,
                const std::vector<std::span<const uint8_t>>& payload, size_t fs)
      : rs_(rs),
        good_(good),
        payload_(payload),
        fs_(fs),
        scratch_(size_t(rs.k() + rs.m()) * fs) {}

  // excluded: bit mask of indexes left out. Returns whether consistent;
  // *checked = fragments compared beyond the k used.
  Result<bool> TryWithout(uint64_t excluded, int* checked) {
    const int k = rs_.k();
    std::vector<int> from, to;
    std::vector<const uint8_t*> src;
    std::vector<int> verify;
    for (int i : good_) {
      if (excluded >> i & 1) continue;
      if (int(from.size()) < k) {
        from.push_back(i);
        src.push_back(payload_[i].data());
      } else {
        verify.push_back(i);
      }
    }
    const uint64_t from_mask = Mask(from);
    for (int i = 0; i < k; i++)
      if (!(from_mask >> i & 1)) to.push_back(i);
    for (int i : verify)
      to.push_back(i);  // parity only: every good data index is in `from`
    std::vector<uint8_t*> dst;
    for (int i : to) dst.push_back(scratch_.data() + size_t(i) * fs_);
    MS_RETURN_IF_ERROR(
        rs_.ComputeRegions(from, src.data(), to, dst.data(), fs_));
    for (int i : verify) {
      if (std::memcmp(scratch_.data() + size_t(i) * fs_, payload_[i].data(),
                      fs_) != 0)
        return false;
    }
    *checked = int(verify.size());
    data_.assign(k, nullptr);
    for (int i = 0; i < k; i++) {
      data_[i] = (from_mask >> i & 1) ? payload_[i].data()
                                      : scratch_.data() + size_t(i) * fs_;
    }
    return true;
  }

  const std::vector<const uint8_t*>& data() const { return data_; }

 private:
  static uint64_t Mask(const std::vector<int>& v) {
    uint64_t m = 0;
    for (int i : v) m |= uint64_t{1} << i;
    return m;
  }
  const ReedSolomon& rs_;
  const std::vector<int>& good_;
  const std::vector<std::span<const uint8_t>>& payload_;
  size_t fs_;
  Bytes scratch_;
  std::vector<const uint8_t*> data_;
};

}  // namespace

Result<Bytes> DecodeChunkFromFragments(const Bytes& chunk_id,
                                       const std::vector<Bytes>& blobs, int k,
                                       int m, size_t chunk_len) {
  MS_ASSIGN_OR_RETURN(CheckedChunk c,
                      DecodeChunkChecked(chunk_id, blobs, k, m, chunk_len));
  return std::move(c.chunk);
}

Result<CheckedChunk> DecodeChunkChecked(const Bytes& chunk_id,
                                        const std::vector<Bytes>& blobs, int k,
                                        int m, size_t chunk_len) {
  if (chunk_id.size() != kChunkIdSize) {
    return InvalidArgument("chunk decode: chunk id has " +
                           std::to_string(chunk_id.size()) +
                           " bytes, expected " + std::to_string(kChunkIdSize));
  }
  MS_ASSIGN_OR_RETURN(const ReedSolomon* rs, ReedSolomon::Shared(k, m));
  if (chunk_len > rs->MaxChunkLen()) {
    return InvalidArgument("chunk decode: chunk length " +
                           std::to_string(chunk_len) + " exceeds " +
                           std::to_string(rs->MaxChunkLen()) +
                           " for k=" + std::to_string(k));
  }

  const int n = k + m;
  std::vector<std::span<const uint8_t>> payload(n);
  std::vector<bool> seen(n, false);
  std::vector<bool> conflict(n, false);
  int damaged = 0;     // does not parse, bad check or hash
  int mismatched = 0;  // another chunk id, k, m or chunk length
  std::string first_damage;
  for (const Bytes& blob : blobs) {
    auto parsed = ParseFragment(blob.data(), blob.size());
    if (!parsed.ok()) {
      if (damaged++ == 0) first_damage = parsed.status().message();
      continue;
    }
    const FragmentHeader& h = parsed->first;
    if (h.chunk_id != chunk_id || h.k != k || h.m != m ||
        h.chunk_len != uint64_t(chunk_len)) {
      mismatched++;
      continue;
    }
    const int i = h.index;  // < k+m: ParseFragment checked it against h.k/h.m
    const std::span<const uint8_t> p = parsed->second;
    if (seen[i]) {
      if (!std::equal(p.begin(), p.end(), payload[i].begin(),
                      payload[i].end())) {
        conflict[i] = true;
      }
      continue;
    }
    seen[i] = true;
    payload[i] = p;
  }

  int good = 0;
  int conflicts = 0;
  for (int i = 0; i < n; i++) {
    if (conflict[i]) conflicts++;
    if (seen[i] && !conflict[i]) good++;
  }
  if (good < k) {
    std::string msg = "chunk decode: found " + std::to_string(good) +
                      " good fragments among " + std::to_string(blobs.size()) +
                      " blobs, need k=" + std::to_string(k) + " (" +
                      std::to_string(damaged) + " damaged, " +
                      std::to_string(mismatched) +
                      " for another chunk or layout, " +
                      std::to_string(conflicts) + " conflicting indices)";
    if (!first_damage.empty()) msg += "; first damage: " + first_damage;
    return Corrupt(std::move(msg));
  }

  // Rebuild from the k lowest good indices (data fragments first, so an
  // intact set of data fragments needs GF arithmetic only for the check),
  // recomputing the other good fragments to compare.
  const size_t fs = ReedSolomon::FragmentSize(chunk_len, k);
  std::vector<int> good_idx;
  for (int i = 0; i < n; i++)
    if (seen[i] && !conflict[i]) good_idx.push_back(i);
  Reconstructor rec(*rs, good_idx, payload, fs);
  CheckedChunk result;
  MS_ASSIGN_OR_RETURN(bool consistent,
                      rec.TryWithout(0, &result.cross_checked));
  if (!consistent) {
    // Locate: the smallest set of at most t_max fragments whose removal
    // leaves a consistent set; singles first, then pairs.
    const int p = int(good_idx.size());
    const int t_max = std::min(2, (p - k) / 2);
    bool found = false;
    for (int a = 0; a < p && t_max >= 1 && !found; a++) {
      MS_ASSIGN_OR_RETURN(found, rec.TryWithout(uint64_t{1} << good_idx[a],
                                                &result.cross_checked));
      if (found) result.forged = {good_idx[a]};
    }
    for (int a = 0; a < p && t_max >= 2 && !found; a++) {
      for (int b = a + 1; b < p && !found; b++) {
        const uint64_t ex = uint64_t{1} << good_idx[a] | uint64_t{1}
                                                             << good_idx[b];
        MS_ASSIGN_OR_RETURN(found, rec.TryWithout(ex, &result.cross_checked));
        if (found) result.forged = {good_idx[a], good_idx[b]};
      }
    }
    if (!found) {
      return Corrupt("chunk decode: the " + std::to_string(p) +
                     " good fragments are inconsistent (forged fragments) and "
                     "no set of at most " +
                     std::to_string(t_max) +
                     " explains it; need k=" + std::to_string(k));
    }
  }

  result.chunk.resize(chunk_len);
  for (int i = 0; i < k; i++) {
    const size_t share = ReedSolomon::ShareLength(i, fs, chunk_len);
    if (share > 0)
      std::memcpy(result.chunk.data() + size_t(i) * fs, rec.data()[i], share);
  }
  return result;
}

}  // namespace mistore
