// Authenticated encryption of object data, chunks and names with
// XChaCha20-Poly1305-IETF (libsodium crypto_aead_xchacha20poly1305_ietf).
//
// Sealed format: nonce (24, random) || ciphertext (len) || tag (16). The
// 192-bit random nonce makes nonce reuse under one key negligible, so keys can
// seal any number of messages without a counter. Associated data is bound to
// the ciphertext but not stored: Open must be given the same bytes.
//
// Ownership: callers own every buffer; functions return fresh Bytes and keep
// nothing. Plaintext returned by Open is ordinary Bytes (not wiped): it is
// user data, not key material.
//
// Threads: pure functions (apart from reading the CSPRNG in Seal); any
// thread. libsodium is initialised lazily; call CryptoInit() at start-up.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"

namespace mistore::crypto {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 24;
inline constexpr size_t kAeadTagBytes = 16;
inline constexpr size_t kSealOverhead = 40;  // nonce + tag
static_assert(kAeadKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kAeadNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kAeadTagBytes == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(kSealOverhead == kAeadNonceBytes + kAeadTagBytes);

// Encrypts `len` bytes of `plain` under `key` (kAeadKeyBytes, asserted) with
// associated data `ad`; returns len + kSealOverhead bytes. `plain` / `ad` may
// be null when their length is 0.
Bytes Seal(const SecretBytes& key, const uint8_t* plain, size_t len, const uint8_t* ad,
           size_t ad_len);

// Inverse of Seal. Errors: kCorrupt "truncated" if len < kSealOverhead;
// kCorrupt "authentication failed" if the key, nonce, ciphertext, tag or
// associated data differ from what was sealed.
Result<Bytes> Open(const SecretBytes& key, const uint8_t* sealed, size_t len, const uint8_t* ad,
                   size_t ad_len);

}  // namespace mistore::crypto
