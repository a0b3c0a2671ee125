#include "sync-client/fragment_tags.h"

#include <sodium.h>

#include <cstring>

#include <optional>
#include "shared/core/assert.h"
#include "shared/crypto/aead.h"
#include "shared/crypto/keys.h"
#include "shared/erasure/fragment.h"
#include "shared/erasure/reed_solomon.h"

namespace mistore {

namespace {
constexpr char kFragmentTagContext[] = "msfragtg";
static_assert(sizeof(kFragmentTagContext) == crypto_kdf_CONTEXTBYTES + 1);
static_assert(kFragmentTagBytes == crypto_onetimeauth_BYTES);

// The one-time Poly1305 key of fragment `index` (see the header).
void OneTimeKey(const crypto::SecretBytes& root, const Bytes& chunk_id,
                const uint8_t* nonce, int index, int k, int m,
                uint8_t key[crypto_onetimeauth_KEYBYTES]) {
  MS_ASSERT(chunk_id.size() == 32);
  MS_ASSERT(root.size() >= crypto_generichash_KEYBYTES_MIN);
  uint8_t in[4 + 32 + crypto::kAeadNonceBytes + 3];
  std::memcpy(in, "MSFT", 4);
  std::memcpy(in + 4, chunk_id.data(), 32);
  std::memcpy(in + 36, nonce, crypto::kAeadNonceBytes);
  in[60] = uint8_t(index);
  in[61] = uint8_t(k);
  in[62] = uint8_t(m);
  static_assert(crypto_onetimeauth_KEYBYTES == 32);
  crypto_generichash(key, 32, in, sizeof(in), root.data(), root.size());
}
}  // namespace

crypto::SecretBytes FragmentTagRootKey(const crypto::SecretBytes& master) {
  return crypto::DeriveSubkey(master, crypto::kSingletonSubkeyId,
                              kFragmentTagContext);
}

Bytes FragmentTag(const crypto::SecretBytes& root, const Bytes& chunk_id,
                  const uint8_t* nonce, int index, int k, int m,
                  const uint8_t* payload, size_t len) {
  uint8_t key[crypto_onetimeauth_KEYBYTES];
  OneTimeKey(root, chunk_id, nonce, index, k, m, key);
  Bytes tag(kFragmentTagBytes);
  crypto_onetimeauth(tag.data(), payload, len, key);
  sodium_memzero(key, sizeof(key));
  return tag;
}

Result<Bytes> ComputeFragmentTags(const crypto::SecretBytes& root,
                                  const Bytes& chunk_id, const uint8_t* sealed,
                                  size_t len, int k, int m) {
  if (chunk_id.size() != 32)
    return InvalidArgument("chunk id must be 32 bytes");
  if (len < crypto::kAeadNonceBytes)
    return InvalidArgument("sealed chunk shorter than its nonce");
  MS_ASSIGN_OR_RETURN(const ReedSolomon* rs, ReedSolomon::Shared(k, m));
  if (len > rs->MaxChunkLen())
    return InvalidArgument("sealed chunk too large for the code");
  const size_t fs = ReedSolomon::FragmentSize(len, k);
  // Data fragments are the sealed bytes in place, except those that reach
  // past its end: those are copied zero-padded into `pad` (at most all k of
  // a tiny chunk). Parity goes to `parity`.
  size_t full = std::min<size_t>(size_t(k), len / fs);
  Bytes pad((size_t(k) - full) * fs, 0);
  Bytes parity(size_t(m) * fs);
  std::vector<const uint8_t*> data(static_cast<size_t>(k), nullptr);
  std::vector<uint8_t*> par(static_cast<size_t>(m), nullptr);
  for (int i = 0; i < k; i++) {
    if (size_t(i) < full) {
      data[size_t(i)] = sealed + size_t(i) * fs;
    } else {
      uint8_t* dst = pad.data() + (size_t(i) - full) * fs;
      size_t share = ReedSolomon::ShareLength(i, fs, len);
      if (share) std::memcpy(dst, sealed + size_t(i) * fs, share);
      data[size_t(i)] = dst;
    }
  }
  for (int j = 0; j < m; j++) par[size_t(j)] = parity.data() + size_t(j) * fs;
  rs->EncodeRegions(data.data(), par.data(), fs);
  Bytes tags;
  tags.reserve(size_t(k + m) * kFragmentTagBytes);
  for (int i = 0; i < k + m; i++) {
    const uint8_t* p = i < k ? data[size_t(i)] : par[size_t(i - k)];
    Bytes t = FragmentTag(root, chunk_id, sealed, i, k, m, p, fs);
    tags.insert(tags.end(), t.begin(), t.end());
  }
  return tags;
}

bool FragmentTagMatches(const crypto::SecretBytes& root, const Bytes& chunk_id,
                        const uint8_t* nonce, const Bytes& tags, int index,
                        int k, int m, const uint8_t* payload, size_t len) {
  if (index < 0 || index >= k + m ||
      tags.size() != size_t(k + m) * kFragmentTagBytes || chunk_id.size() != 32)
    return false;
  uint8_t key[crypto_onetimeauth_KEYBYTES];
  OneTimeKey(root, chunk_id, nonce, index, k, m, key);
  const bool ok =
      crypto_onetimeauth_verify(tags.data() + size_t(index) * kFragmentTagBytes,
                                payload, len, key) == 0;
  sodium_memzero(key, sizeof(key));
  return ok;
}

Result<FragmentCheck> CheckChunkFragments(
    const crypto::SecretBytes& root, const Bytes& chunk_id,
    const uint8_t* nonce, const Bytes& tags, int k, int m, size_t sealed_len,
    const pb::ChunkFragments& got, std::vector<NamedFragment>* bad_out) {
  if (chunk_id.size() != 32)
    return InvalidArgument("chunk id must be 32 bytes");
  MS_ASSIGN_OR_RETURN(const ReedSolomon* rs, ReedSolomon::Shared(k, m));
  if (tags.size() != size_t(k + m) * kFragmentTagBytes)
    return InvalidArgument("tags are not (k + m) x 16 bytes");
  if (sealed_len > rs->MaxChunkLen())
    return InvalidArgument("sealed chunk too large for the code");
  const size_t fs = ReedSolomon::FragmentSize(sealed_len, k);
  FragmentCheck out;
  std::vector<std::optional<Bytes>> frags(static_cast<size_t>(k + m));
  const int n = std::min(got.fragments_size(), 2 * (k + m));
  for (int i = 0; i < n; i++) {
    const pb::ChunkFragment& f = got.fragments(i);
    auto name = [&](std::string why) {
      out.bad.push_back({f.index(), f.gateway_id(), std::move(why)});
    };
    if (f.index() >= uint32_t(k + m)) {
      name("index out of range");
      continue;
    }
    const auto* blob = reinterpret_cast<const uint8_t*>(f.fragment().data());
    auto hdr = ParseFragmentHeader(blob, f.fragment().size());
    if (!hdr.ok()) {
      name("does not parse: " + hdr.status().message());
      continue;
    }
    if (hdr->index != f.index() || hdr->chunk_id != chunk_id || hdr->k != k ||
        hdr->m != m || hdr->chunk_len != sealed_len || hdr->payload_len != fs) {
      name("header names another fragment, chunk or code");
      continue;
    }
    if (f.fragment().size() != hdr->header_len() + fs) {
      name("has the wrong length");
      continue;
    }
    const uint8_t* payload = blob + hdr->header_len();
    // The tag decides; the CRC32C is only reported (a forger recomputes it).
    if (!FragmentTagMatches(root, chunk_id, nonce, tags, int(f.index()), k, m,
                            payload, fs)) {
      name(ParseFragment(blob, f.fragment().size()).ok()
               ? "fails its tag (CRC32C consistent: forged)"
               : "fails its tag and its CRC32C");
      continue;
    }
    out.good++;
    if (!frags[f.index()]) frags[f.index()] = Bytes(payload, payload + fs);
  }
  if (bad_out) *bad_out = out.bad;
  size_t distinct = 0;
  for (auto& f : frags) distinct += f.has_value();
  if (distinct < size_t(k))
    return Corrupt("only " + std::to_string(distinct) + " of the " +
                   std::to_string(k) + " needed fragments match their tags (" +
                   std::to_string(out.bad.size()) + " bad)");
  MS_ASSIGN_OR_RETURN(out.sealed, rs->Decode(frags, sealed_len));
  return out;
}

}  // namespace mistore
