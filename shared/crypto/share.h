// Read-only sharing of one object with another subscriber (issue 4,
// docs/security.md "Sharing"): the key material a grant needs.
//
//   - Per-chunk seal keys (manifest format 3): each chunk is sealed under
//     ChunkSealKey(chunk_key, chunk_id) instead of the user's one chunk key,
//     so a manifest can hand a reader exactly the keys of its own chunks.
//     Deterministic in the chunk id, so a user's deduplication still works.
//   - A share key pair per user (X25519, crypto_box), derived from the
//     master key: the public half is published at the DC, grants are sealed
//     to it (crypto_box_seal: anonymous sender, only the holder of the
//     secret half opens them).
//
// Ownership: keys are returned as SecretBytes / Bytes owned by the caller;
// nothing here keeps references. Threads: pure functions (apart from the
// CSPRNG in SealToRecipient), any thread. Call CryptoInit() first.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"

namespace mistore::crypto {

inline constexpr size_t kShareKeyBytes = 32;      // X25519 public / secret key
inline constexpr size_t kChunkSealKeyBytes = 32;  // per-chunk AEAD key
inline constexpr size_t kShareSealOverhead = 48;  // crypto_box_SEALBYTES
// Most plaintext bytes one grant may carry (owner, oid, name, object key,
// name id, grantee): the keys and ids take < 400 bytes, so names up to about
// 4,200 bytes can be shared; a longer one is refused (kInvalidArgument).
inline constexpr size_t kShareGrantPlainBytesMax = 4096 + 512;
static_assert(kShareKeyBytes == crypto_box_PUBLICKEYBYTES &&
              kShareKeyBytes == crypto_box_SECRETKEYBYTES &&
              kShareKeyBytes == crypto_box_SEEDBYTES);
static_assert(kShareSealOverhead == crypto_box_SEALBYTES);

// crypto_kdf context of the share key pair's seed (8 bytes, never reused).
inline constexpr char kKdfContextShareKey[] = "msshrbox";
static_assert(sizeof(kKdfContextShareKey) == crypto_kdf_CONTEXTBYTES + 1);

// Label hashed before the chunk id into the per-chunk key.
inline constexpr char kChunkSealLabel[] = "mistore-chunk-v1";

// KeyedHash32(chunk_key, "mistore-chunk-v1" || chunk_id): the key chunk
// `chunk_id` is sealed under in manifest format 3. chunk_key is the user's
// chunk key (32 bytes, asserted); chunk_id 32 bytes (asserted).
SecretBytes ChunkSealKey(const SecretBytes& chunk_key, const Bytes& chunk_id);

// Chunk ids of manifest format 3 are keyed with
// DeriveSubkey(master, kChunkIdKeyV3SubkeyId, "mschunid"), not the format-1/2
// chunk-id key (subkey id 1): a format-3 id therefore never names a chunk
// an older client sealed under the user's one chunk key, so deduplication
// never hands a format-3 manifest a chunk its per-chunk key cannot open.
inline constexpr uint64_t kChunkIdKeyV3SubkeyId = 3;
SecretBytes ChunkIdKeyV3(const SecretBytes& master);

struct ShareKeyPair {
  Bytes public_key;        // kShareKeyBytes, published at the DC
  SecretBytes secret_key;  // kShareKeyBytes, never leaves the client
};

// crypto_box_seed_keypair(DeriveSubkey(master, 1, "msshrbox")): the same
// master key always gives the same pair. master: kMasterKeyBytes (asserted).
ShareKeyPair DeriveShareKeyPair(const SecretBytes& master);

// crypto_box_seal of `plain` (1..kShareGrantPlainBytesMax bytes) to
// `recipient_public_key` (kShareKeyBytes). kInvalidArgument otherwise.
Result<Bytes> SealToRecipient(const Bytes& recipient_public_key,
                              const Bytes& plain);

// Opens what SealToRecipient sealed to `pair`'s public key. kCorrupt
// "grant ..." when it is too short, too long or does not authenticate
// (sealed to another key, or modified).
Result<Bytes> OpenSealed(const ShareKeyPair& pair, const Bytes& sealed);

}  // namespace mistore::crypto
