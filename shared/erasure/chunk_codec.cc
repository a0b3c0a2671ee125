#include "shared/erasure/chunk_codec.h"

#include <algorithm>
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
  MS_ASSIGN_OR_RETURN(ReedSolomon rs, ReedSolomon::Create(k, m));
  std::vector<Bytes> fragments;
  MS_RETURN_IF_ERROR(rs.Encode(chunk, len, &fragments));

  FragmentHeader header;
  header.chunk_id = chunk_id;
  header.k = uint8_t(k);
  header.m = uint8_t(m);
  header.chunk_len = uint64_t(len);
  std::vector<Bytes> blobs;
  blobs.reserve(fragments.size());
  for (size_t i = 0; i < fragments.size(); i++) {
    header.index = uint8_t(i);
    blobs.push_back(
        EncodeFragment(header, fragments[i].data(), fragments[i].size()));
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
  MS_ASSIGN_OR_RETURN(ReedSolomon rs, ReedSolomon::Create(k, m));
  if (chunk_len > rs.MaxChunkLen()) {
    return InvalidArgument("chunk decode: chunk length " +
                           std::to_string(chunk_len) + " exceeds " +
                           std::to_string(rs.MaxChunkLen()) +
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

  // Feed Reed-Solomon the k lowest good indices: data fragments first, so an
  // intact set of data fragments decodes without any GF arithmetic.
  std::vector<std::optional<Bytes>> fragments(n);
  int used = 0;
  for (int i = 0; i < n && used < k; i++) {
    if (!seen[i] || conflict[i]) continue;
    fragments[i] = Bytes(payload[i].begin(), payload[i].end());
    used++;
  }
  return rs.Decode(fragments, chunk_len);
}

}  // namespace mistore
