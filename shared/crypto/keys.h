// The user key hierarchy for client-side encryption.
//
//   passphrase --Argon2id--> key-encryption key --XChaCha20-Poly1305--> wrapped
//   master key (the "MSKW" key file, the only persistent form of the master);
//   master key --crypto_kdf (BLAKE2b)--> named subkeys (name hashing, chunk
//   ids, name sealing) and per-object keys.
//
// Only the client holding the passphrase ever sees the master key or any
// subkey; servers store the MSKW blob and ciphertext only.
//
// Ownership: every key is returned as a SecretBytes owned by the caller; no
// function here keeps a reference to its arguments after returning. Temporary
// key material (the Argon2id output) is wiped before return.
//
// Threads: all functions are pure (apart from reading the CSPRNG) and may be
// called from any thread. Wrap/Unwrap run Argon2id, which takes tens of
// milliseconds to seconds and allocates `memlimit` bytes: never call them on an
// event-loop thread. A KeyedHasher is used by one thread at a time.
// libsodium is initialised lazily; call CryptoInit() at start-up (secret.h).
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"

namespace mistore::crypto {

inline constexpr size_t kMasterKeyBytes = 32;
inline constexpr size_t kSubkeyBytes = 32;
inline constexpr size_t kKeyedHashBytes = 32;
static_assert(kMasterKeyBytes == crypto_kdf_KEYBYTES);

// ---- Passphrase wrapping of the master key --------------------------------

// Argon2id cost parameters. Defaults are libsodium's "interactive" profile;
// the fast profile exists for tests only (it is weak against brute force).
inline constexpr uint64_t kPwhashOpsDefault = crypto_pwhash_OPSLIMIT_INTERACTIVE;
inline constexpr size_t kPwhashMemDefault = crypto_pwhash_MEMLIMIT_INTERACTIVE;
inline constexpr uint64_t kPwhashOpsFast = crypto_pwhash_OPSLIMIT_MIN;
inline constexpr size_t kPwhashMemFast = size_t{8} << 20;  // 8 MiB
// Accepted range, checked on wrap and, before any Argon2id work, on unwrap: a
// hostile key file must not make us allocate or spin without bound. The ops
// cap is twice libsodium's "sensitive" profile.
inline constexpr uint64_t kPwhashOpsMin = crypto_pwhash_argon2id_OPSLIMIT_MIN;
inline constexpr uint64_t kPwhashOpsMax = 2 * crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE;
inline constexpr uint64_t kPwhashMemMin = crypto_pwhash_argon2id_MEMLIMIT_MIN;
inline constexpr uint64_t kPwhashMemMax = uint64_t{1} << 30;  // 1 GiB
static_assert(kPwhashOpsDefault == crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE &&
                  kPwhashMemDefault == crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
              "libsodium's default pwhash is no longer Argon2id");

// MSKW blob layout (all integers little-endian; 110 bytes in total):
//   off  len  field
//     0    4  magic "MSKW"
//     4    1  version = 1
//     5    1  algorithm = 1 (Argon2id v1.3 + XChaCha20-Poly1305-IETF)
//     6    8  opslimit (u64)
//    14    8  memlimit (u64, bytes)
//    22   16  salt (crypto_pwhash_SALTBYTES)
//    38   24  nonce
//    62   48  ciphertext of the 32-byte master key || 16-byte tag
// The key-encryption key is Argon2id(passphrase, salt, opslimit, memlimit),
// 32 bytes; the AEAD's associated data is bytes [0, 62), so every header field
// is authenticated.
inline constexpr uint8_t kWrapVersion = 1;
inline constexpr uint8_t kWrapAlgArgon2idXChaCha = 1;
inline constexpr size_t kWrappedMasterKeyBytes = 4 + 1 + 1 + 8 + 8 + 16 + 24 + 32 + 16;

// A fresh random master key (kMasterKeyBytes).
SecretBytes GenerateMasterKey();

// Encrypts `master` (kMasterKeyBytes) under `passphrase` into an MSKW blob.
// Errors: kInvalidArgument for a master of the wrong size, an empty
// passphrase or limits outside [kPwhash*Min, kPwhash*Max];
// kResourceExhausted if Argon2id cannot allocate `memlimit`.
Result<Bytes> WrapMasterKey(const SecretBytes& master, std::string_view passphrase,
                            uint64_t opslimit, size_t memlimit);

// Recovers the master key from an MSKW blob.
// Errors: kCorrupt if the blob is malformed (bad magic, unknown version or
// algorithm, wrong length, limits out of range: checked before Argon2id
// runs); kPermissionDenied "wrong passphrase or damaged key file" if
// authentication fails (the two cannot be told apart); kResourceExhausted if
// Argon2id cannot allocate the blob's memlimit.
Result<SecretBytes> UnwrapMasterKey(const Bytes& blob, std::string_view passphrase);

// ---- Subkeys ---------------------------------------------------------------

// crypto_kdf contexts: exactly 8 bytes each (the trailing NUL of the literal is
// not used). Never reuse a context for a different purpose.
inline constexpr char kKdfContextNameKey[] = "msnamekk";    // keyed hash of object names
inline constexpr char kKdfContextChunkIdKey[] = "mschunid"; // keyed hash -> chunk ids
inline constexpr char kKdfContextObjectKey[] = "msobjkey";  // per-object key root
inline constexpr char kKdfContextNameSealKey[] = "msnmseal"; // AEAD sealing of names
static_assert(sizeof(kKdfContextNameKey) == crypto_kdf_CONTEXTBYTES + 1 &&
              sizeof(kKdfContextChunkIdKey) == crypto_kdf_CONTEXTBYTES + 1 &&
              sizeof(kKdfContextObjectKey) == crypto_kdf_CONTEXTBYTES + 1 &&
              sizeof(kKdfContextNameSealKey) == crypto_kdf_CONTEXTBYTES + 1);

// Subkey id used for the single-instance subkeys below (name key, chunk id
// key, name sealing key). Changing it changes every name id and chunk id.
inline constexpr uint64_t kSingletonSubkeyId = 1;

// kSubkeyBytes derived from `master` (kMasterKeyBytes, asserted) with
// crypto_kdf_derive_from_key. `context` points to exactly
// crypto_kdf_CONTEXTBYTES (8) bytes, need not be NUL-terminated; use the
// kKdfContext* constants. Deterministic: same inputs, same key.
SecretBytes DeriveSubkey(const SecretBytes& master, uint64_t subkey_id,
                         const char context[8]);

// The key of object `object_key_id`: DeriveSubkey(master, id, kKdfContextObjectKey).
SecretBytes ObjectKey(const SecretBytes& master, uint64_t object_key_id);

// DeriveSubkey(master, kSingletonSubkeyId, <context>) for each named context.
SecretBytes NameHashKey(const SecretBytes& master);
SecretBytes ChunkIdKey(const SecretBytes& master);
SecretBytes NameSealKey(const SecretBytes& master);

// ---- Keyed hashing -----------------------------------------------------------

// BLAKE2b-256 of data keyed with `key` (16..64 bytes, asserted): chunk ids and
// name ids. `data` may be null when `len` is 0.
Bytes KeyedHash32(const SecretBytes& key, const uint8_t* data, size_t len);

// Streaming KeyedHash32: KeyedHasher(key), Update()* , Final() gives the same
// 32 bytes as KeyedHash32 over the concatenated input. Final() may be called
// once; Update() after Final() is a bug (asserted). The internal state is
// key-derived and is wiped on destruction. Movable (the source becomes
// finished), not copyable.
class KeyedHasher {
 public:
  explicit KeyedHasher(const SecretBytes& key);
  KeyedHasher(KeyedHasher&& other) noexcept;
  KeyedHasher& operator=(KeyedHasher&& other) noexcept;
  KeyedHasher(const KeyedHasher&) = delete;
  KeyedHasher& operator=(const KeyedHasher&) = delete;
  ~KeyedHasher();

  void Update(const uint8_t* data, size_t len);
  Bytes Final();

 private:
  crypto_generichash_state state_;
  bool finished_ = false;
};

}  // namespace mistore::crypto
