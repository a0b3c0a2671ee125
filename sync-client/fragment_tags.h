// Fragment tags: the client's keyed check values of the erasure-coded
// fragments of its sealed chunks (issue 3), kept in the sealed manifest
// (manifest.h) so that, when a chunk fails its AEAD open, the client can
// tell which fragment a gateway forged and which gateway served it.
//
// The POP cuts a sealed chunk into k + m fragments with systematic
// Reed-Solomon (shared/erasure: deterministic, the ISA-L and Jerasure
// backends byte-identical), so the client, which sealed the chunk, computes
// the same fragment payloads itself: data fragment i is bytes
// [i * fs, (i + 1) * fs) of the sealed chunk, zero-padded at the end, and
// parity fragments come from ReedSolomon::EncodeRegions.
//
// Each payload gets a Poly1305 tag (libsodium crypto_onetimeauth) under a
// one-time key that is never used for other data: key = BLAKE2b-256 keyed
// with the client's fragment-tag key (a crypto_kdf subkey of the master key)
// over  "MSFT" || chunk id (32) || seal nonce (24) || index || k || m  (one
// byte each). The chunk id and the seal's random nonce fix the sealed bytes
// (the id is a keyed hash of the plaintext, the nonce is the seal's), and
// index, k and m fix the fragment, so one key tags one payload. Tags never
// leave the client unsealed; a gateway that forges a fragment and
// recomputes its CRC32C cannot forge its tag: Poly1305 accepts a forgery
// with probability at most 8 * ceil(len / 16) / 2^106 (2^-87 for a 1 MiB
// fragment).
//
// Ownership: inputs are borrowed; results are fresh buffers.
// Threads: pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

inline constexpr size_t kFragmentTagBytes = 16;  // crypto_onetimeauth_BYTES

// The key under which FragmentTagKey derives one-time keys: crypto_kdf
// subkey of the master key, context "msfragtg".
crypto::SecretBytes FragmentTagRootKey(const crypto::SecretBytes& master);

// The tag of one fragment payload (see above). chunk_id: 32 bytes, nonce:
// 24 bytes (asserted).
Bytes FragmentTag(const crypto::SecretBytes& root, const Bytes& chunk_id,
                  const uint8_t* nonce, int index, int k, int m,
                  const uint8_t* payload, size_t len);

// Tags of all k + m fragments of `sealed` (a crypto::Seal output, nonce
// first), concatenated in index order: (k + m) * 16 bytes. kInvalidArgument
// if chunk_id is not 32 bytes, sealed is shorter than a nonce, or k, m are
// out of ReedSolomon's range.
Result<Bytes> ComputeFragmentTags(const crypto::SecretBytes& root,
                                  const Bytes& chunk_id, const uint8_t* sealed,
                                  size_t len, int k, int m);

// Whether `payload` is fragment `index` the tags were computed for
// (constant-time compare). tags: (k + m) * 16 bytes (false otherwise).
bool FragmentTagMatches(const crypto::SecretBytes& root, const Bytes& chunk_id,
                        const uint8_t* nonce, const Bytes& tags, int index,
                        int k, int m, const uint8_t* payload, size_t len);

// A fragment a gateway served that is not the one the client's tags
// describe: forged (payload fails its tag), or not even well-formed.
struct NamedFragment {
  uint32_t index = 0;       // as recorded by the POP
  uint32_t gateway_id = 0;  // the gateway that served it
  std::string why;          // "fails its tag", "fails its CRC32C", ...
};

struct FragmentCheck {
  Bytes sealed;     // the sealed chunk, decoded from good fragments
  size_t good = 0;  // fragments that matched their tag
  std::vector<NamedFragment> bad;  // every fragment served that did not
};

// Checks each fragment of `got` (a POP's ChunkFragments answer) against the
// tags, names the bad ones, and decodes the sealed chunk (sealed_len bytes)
// from k good ones. At most 2 * (k + m) entries are looked at (the rest are
// ignored). kCorrupt if fewer than k distinct fragments are good (the bad
// ones are still named in *bad_out when given); kInvalidArgument for bad
// parameters.
Result<FragmentCheck> CheckChunkFragments(
    const crypto::SecretBytes& root, const Bytes& chunk_id,
    const uint8_t* nonce, const Bytes& tags, int k, int m, size_t sealed_len,
    const pb::ChunkFragments& got,
    std::vector<NamedFragment>* bad_out = nullptr);

}  // namespace mistore
