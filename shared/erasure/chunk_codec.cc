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
    return InvalidArgument("chunk encode: chunk of " + std::to_string(len) +
                           " bytes exceeds " +
                           std::to_string(rs->MaxChunkLen()) +
                           " for k=" + std::to_string(k));
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

Result<Bytes> DecodeChunkFromFragments(const Bytes& chunk_id,
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

  // The k lowest good indices: data fragments first, so an intact set of
  // data fragments decodes without any GF arithmetic. Present data slices
  // are copied into the chunk once; erased ones are computed into scratch.
  const size_t fs = ReedSolomon::FragmentSize(chunk_len, k);
  std::vector<int> from;
  std::vector<const uint8_t*> src;
  for (int i = 0; i < n && int(from.size()) < k; i++) {
    if (!seen[i] || conflict[i]) continue;
    from.push_back(i);
    src.push_back(payload[i].data());
  }
  std::vector<int> to;
  for (int i = 0; i < k; i++) {
    if (!seen[i] || conflict[i]) to.push_back(i);
  }
  Bytes rebuilt(to.size() * fs);
  std::vector<uint8_t*> dst;
  for (size_t t = 0; t < to.size(); t++) dst.push_back(rebuilt.data() + t * fs);
  MS_RETURN_IF_ERROR(rs->ComputeRegions(from, src.data(), to, dst.data(), fs));

  Bytes out(chunk_len);
  size_t next_rebuilt = 0;
  for (int i = 0; i < k; i++) {
    const bool erased = !seen[i] || conflict[i];
    const uint8_t* s = erased ? dst[next_rebuilt++] : payload[i].data();
    const size_t share = ReedSolomon::ShareLength(i, fs, chunk_len);
    if (share > 0) std::memcpy(out.data() + size_t(i) * fs, s, share);
  }
  return out;
}

}  // namespace mistore
