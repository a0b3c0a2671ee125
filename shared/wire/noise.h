// Noise Protocol Framework (revision 34), suites 25519_ChaChaPoly_BLAKE2b
// and 25519_AESGCM_BLAKE2b: the authenticated key exchange and transport
// encryption for Mistore links.
//
//   DH     X25519                      (crypto_scalarmult_curve25519)
//   CIPHER ChaCha20-Poly1305 IETF      nonce = 4 zero bytes || LE64(counter)
//          (libsodium), or
//          AES-256-GCM                 nonce = 4 zero bytes || BE64(counter)
//          (OpenSSL libcrypto EVP; compiled out where MISTORE_HAVE_AESGCM is
//          not defined: the gateway agent-only builds, CipherBuilt())
//   HASH   BLAKE2b-512                 HASHLEN 64, BLOCKLEN 128
//   HKDF   HMAC-BLAKE2b (RFC 2104) as defined in Noise section 4.3
//
// The cipher is chosen per HandshakeState (Cipher); it is part of the
// protocol name, which is the first input of the handshake hash, so two
// sides that disagree on it fail the first encrypted handshake message.
//
// Patterns come from a generic table written in the spec's own notation
// (pre-messages plus message patterns of e, s, ee, es, se, ss tokens): the
// interactive NN NK NX XN XK XX KN KK KX IN IK IX and the one-way N K X.
// Prologue supported; PSK modes and fallback patterns are not.
//
// Pure code: no I/O, no clock. The only outside input is the libsodium CSPRNG
// for fresh key pairs and ephemerals (a fixed ephemeral can be injected so the
// published test vectors reproduce). libsodium is initialised lazily.
//
// Errors: every failure (bad length, authentication failure, message out of
// turn, over-long message, nonce exhaustion, low-order DH result) is returned
// as a Status, never a crash, and POISONS the object: a HandshakeState or
// Transport that has returned an error fails every later call, and the
// connection it belongs to must be closed. Maximum Noise message: 65535 bytes
// (handshake messages and transport ciphertexts alike, tag included).
//
// Ownership: each object exclusively owns its key material in
// crypto::SecretBytes (wiped on destruction, move-only); an AES-GCM
// CipherState also owns its OpenSSL context (the expanded key, freed and
// cleansed with it). Create() copies the
// keys it is given; callers keep ownership of theirs. Outputs are fresh Bytes
// owned by the caller (decrypted payloads are user data, not wiped).
//
// Threads: no internal locking. A HandshakeState / Transport belongs to one
// connection and is used from that connection's loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"

namespace mistore::noise {

namespace internal {
struct Pattern;                 // one parsed row of the pattern table (noise.cc)
enum class Token : uint8_t;     // e, s, ee, es, se, ss
}  // namespace internal

inline constexpr size_t kDhLen = 32;        // X25519 public / private key
inline constexpr size_t kKeyLen = 32;  // ChaCha20-Poly1305 / AES-256-GCM key
inline constexpr size_t kTagLen = 16;  // Poly1305 / GCM tag
inline constexpr size_t kHashLen = 64;      // BLAKE2b-512
inline constexpr size_t kBlockLen = 128;    // BLAKE2b block (for HMAC)
inline constexpr size_t kMaxMessageLen = 65535;
// Largest plaintext a transport message can carry.
inline constexpr size_t kMaxTransportPlaintext = kMaxMessageLen - kTagLen;
// Nonce 2^64-1 is reserved (Noise 5.1): the last usable one is 2^64-2.
inline constexpr uint64_t kMaxNonce = UINT64_MAX;

// The AEAD of a Noise suite (the CIPHER of Noise section 5.1).
enum class Cipher : uint8_t {
  kChaChaPoly,  // ChaCha20-Poly1305 (libsodium), always built
  kAesGcm,      // AES-256-GCM (OpenSSL), only where CipherBuilt(kAesGcm)
};
// "ChaChaPoly" / "AESGCM" (the names in Noise protocol names).
const char* CipherName(Cipher cipher);
// False for kAesGcm in builds without OpenSSL (MISTORE_AGENT_ONLY).
bool CipherBuilt(Cipher cipher);
// The `cipher=auto` choice: kAesGcm when it is built and this CPU has AES
// instructions (libsodium's crypto_aead_aes256gcm_is_available(): AES-NI and
// PCLMUL on x86-64), else kChaChaPoly (as fast without AES hardware).
Cipher AutoCipher();
// The `cipher` knob: "auto" (AutoCipher()), "chachapoly", "aesgcm".
// kInvalidArgument for anything else, and for "aesgcm" where it is not built.
Result<Cipher> ParseCipherKnob(std::string_view value);

// "Noise_<pattern>_25519_<ChaChaPoly|AESGCM>_BLAKE2b".
std::string ProtocolName(std::string_view pattern,
                         Cipher cipher = Cipher::kChaChaPoly);
// True if `pattern` ("XX", "IK", ...) is in the table.
bool IsKnownPattern(std::string_view pattern);

// An X25519 key pair. The public key is derived from the private key.
struct KeyPair {
  crypto::SecretBytes private_key;  // kDhLen bytes
  Bytes public_key;                 // kDhLen bytes

  static KeyPair Generate();
  // kInvalidArgument unless `private_key` is kDhLen bytes.
  static Result<KeyPair> FromPrivate(std::span<const uint8_t> private_key);
  KeyPair Clone() const;
};

namespace internal {
// Frees (and cleanses) an OpenSSL EVP_CIPHER_CTX; defined in noise.cc so
// this header does not include OpenSSL.
struct AesGcmContextFree {
  void operator()(void* ctx) const;
};
}  // namespace internal

// CipherState (Noise 5.1): a key k (possibly absent) and a 64-bit nonce n,
// for one cipher (fixed at construction).
class CipherState {
 public:
  CipherState() = default;  // ChaChaPoly, no key
  // Asserts CipherBuilt(cipher).
  explicit CipherState(Cipher cipher);
  CipherState(CipherState&&) noexcept = default;
  CipherState& operator=(CipherState&&) noexcept = default;

  // `key` must be kKeyLen bytes (asserted). Resets the nonce to 0.
  void InitializeKey(std::span<const uint8_t> key);
  bool HasKey() const { return !k_.empty(); }
  Cipher cipher() const { return cipher_; }
  void SetNonce(uint64_t n) { n_ = n; }
  uint64_t nonce() const { return n_; }

  // Appends ENCRYPT(k, n++, ad, plaintext) to *out, or the plaintext itself
  // when there is no key. Errors: kResourceExhausted if n == 2^64-1;
  // kInvalidArgument if the ciphertext would exceed kMaxMessageLen. On error
  // nothing is appended and n is unchanged. `out` must not alias the inputs.
  Status EncryptWithAd(std::span<const uint8_t> ad, std::span<const uint8_t> plaintext,
                       Bytes* out);
  // Appends DECRYPT(k, n, ad, ciphertext) to *out and increments n, or the
  // ciphertext itself when there is no key. Errors: kResourceExhausted if
  // n == 2^64-1; kCorrupt if shorter than a tag or authentication fails (n is
  // then NOT incremented, as the spec requires; nothing is appended).
  Status DecryptWithAd(std::span<const uint8_t> ad, std::span<const uint8_t> ciphertext,
                       Bytes* out);
  // In-place transport variants (empty associated data), for records built
  // directly in a connection's buffers. EncryptInPlace: buf holds
  // plaintext_len bytes followed by kTagLen bytes of room; afterwards it holds
  // the ciphertext and tag. DecryptTo: writes the plaintext of `ciphertext`
  // (ciphertext.size() - kTagLen bytes) to out, which may be
  // ciphertext.data() itself (in place) but must not overlap it otherwise.
  // Same errors and nonce rules as EncryptWithAd / DecryptWithAd; on a
  // DecryptTo failure the bytes at `out` are unspecified. Both need a key.
  Status EncryptInPlace(uint8_t* buf, size_t plaintext_len);
  Status DecryptTo(std::span<const uint8_t> ciphertext, uint8_t* out);
  // k = REKEY(k) (Noise 4.2 default: first 32 bytes of ENCRYPT(k, 2^64-1,
  // empty, 32 zero bytes)). The nonce is unchanged. kInvalidArgument without
  // a key.
  Status Rekey();

 private:
  // One AEAD operation with nonce n in this state's cipher (n_ untouched).
  // Seal: in_len plaintext bytes -> in_len + kTagLen bytes at out. Open:
  // in_len >= kTagLen ciphertext bytes -> in_len - kTagLen bytes at out, false
  // if authentication fails (out then unspecified). `out` may equal `in`.
  void Seal(std::span<const uint8_t> ad, const uint8_t* in, size_t in_len,
            uint8_t* out, uint64_t n);
  bool Open(std::span<const uint8_t> ad, const uint8_t* in, size_t in_len,
            uint8_t* out, uint64_t n);

  Cipher cipher_ = Cipher::kChaChaPoly;
  crypto::SecretBytes k_;
  uint64_t n_ = 0;
  // kAesGcm: the key schedule, set up once per key (EVP_CIPHER_CTX).
  std::unique_ptr<void, internal::AesGcmContextFree> aes_;
};

// The two CipherStates from Split(), already oriented for the caller's role.
// In one-way patterns (N, K, X) only the initiator->responder direction
// exists: the initiator's `recv` and the responder's `send` have no key.
struct CipherPair {
  CipherState send;
  CipherState recv;
};

// SymmetricState (Noise 5.2): chaining key ck, handshake hash h, CipherState.
class SymmetricState {
 public:
  SymmetricState() = default;
  SymmetricState(SymmetricState&&) noexcept = default;
  SymmetricState& operator=(SymmetricState&&) noexcept = default;

  // `cipher` must be the one the protocol name names.
  void InitializeSymmetric(std::string_view protocol_name,
                           Cipher cipher = Cipher::kChaChaPoly);
  void MixKey(std::span<const uint8_t> input_key_material);
  void MixHash(std::span<const uint8_t> data);
  void MixKeyAndHash(std::span<const uint8_t> input_key_material);
  const Bytes& GetHandshakeHash() const { return h_; }
  bool HasKey() const { return cipher_.HasKey(); }
  // Appends the (possibly encrypted) bytes to *out, then MixHash(them).
  Status EncryptAndHash(std::span<const uint8_t> plaintext, Bytes* out);
  Status DecryptAndHash(std::span<const uint8_t> ciphertext, Bytes* out);
  // Returns (c1, c2): c1 for initiator->responder, c2 for the other way.
  // Wipes ck and this object's cipher key.
  std::pair<CipherState, CipherState> Split();
  // Wipes all key material (used when a handshake fails).
  void Wipe();

 private:
  crypto::SecretBytes ck_;  // kHashLen
  Bytes h_;                 // kHashLen; not secret (it is the transcript hash)
  CipherState cipher_;
};

// HandshakeState (Noise 5.3) for one side of one handshake.
class HandshakeState {
 public:
  // pattern: "XX", "IK", "KK", "NN", "NK", "N", ... (IsKnownPattern).
  // local_static: this side's static key pair, required iff the pattern
  //   sends or pre-shares it (copied; may be null otherwise). Its public key
  //   must be the one derived from the private key (Generate / FromPrivate
  //   guarantee it); it is not re-derived here, to keep one X25519 off every
  //   handshake.
  // remote_static: the peer's static public key, required iff the peer's
  //   static is a pre-message ("<- s" for IK/NK/XK/KK, "-> s" for K* on the
  //   responder side). Must be null when the pattern transmits it (XX, ...):
  //   a key given where it would be silently ignored is a configuration error.
  // test_ephemeral_private: fixed ephemeral private key for test vectors
  //   only; null means a fresh random ephemeral (always, in production).
  // cipher: the suite's AEAD (both sides must use the same one; it is in
  //   the protocol name and so in the handshake hash).
  // Errors (kInvalidArgument): unknown pattern, a missing or superfluous key,
  // a key of the wrong length, a cipher not built in.
  static Result<HandshakeState> Create(
      std::string_view pattern, bool initiator,
      std::span<const uint8_t> prologue, const KeyPair* local_static = nullptr,
      const Bytes* remote_static = nullptr,
      const crypto::SecretBytes* test_ephemeral_private = nullptr,
      Cipher cipher = Cipher::kChaChaPoly);

  HandshakeState(HandshakeState&&) noexcept = default;
  HandshakeState& operator=(HandshakeState&&) noexcept = default;

  // Builds the next handshake message carrying `payload`. Errors: not our
  // turn (kInvalidArgument), the message would exceed kMaxMessageLen
  // (kInvalidArgument), low-order DH result (kProtocol), already failed.
  Result<Bytes> WriteMessage(std::span<const uint8_t> payload);
  // Processes the peer's next handshake message and returns its payload.
  // Errors: over kMaxMessageLen, truncated, authentication failure
  // (kCorrupt), out of turn or after completion (kProtocol), already failed.
  Result<Bytes> ReadMessage(std::span<const uint8_t> message);

  // True once every message of the pattern was written/read successfully.
  bool Complete() const { return state_ == State::kComplete || state_ == State::kSplit; }
  bool Failed() const { return state_ == State::kFailed; }
  // True if the next step for this side is WriteMessage (false when
  // complete, failed, or waiting to read).
  bool IsMyTurn() const;

  // Once Complete(): the transport CipherStates, oriented for this side.
  // May be called once; wipes the handshake's own keys. Errors: not complete,
  // already split, failed.
  Result<CipherPair> Split();

  // h: after Complete(), the channel-binding handshake hash (kHashLen bytes).
  const Bytes& handshake_hash() const { return symmetric_.GetHandshakeHash(); }
  // The peer's static public key (from a pre-message or received during the
  // handshake); empty if the pattern never provides one or not yet received.
  const Bytes& remote_static() const { return rs_; }
  const std::string& protocol_name() const { return protocol_name_; }
  Cipher cipher() const { return cipher_; }
  bool initiator() const { return initiator_; }

 private:
  using Pattern = internal::Pattern;
  using Token = internal::Token;
  enum class State { kInProgress, kComplete, kSplit, kFailed };

  HandshakeState() = default;
  Status Fail(Status st);
  Status Dh(const crypto::SecretBytes& priv, const Bytes& pub);
  Status MixDh(Token token);
  Result<Bytes> WriteInner(std::span<const uint8_t> payload);
  Result<Bytes> ReadInner(std::span<const uint8_t> message);

  const Pattern* pattern_ = nullptr;
  std::string protocol_name_;
  Cipher cipher_ = Cipher::kChaChaPoly;
  bool initiator_ = false;
  State state_ = State::kInProgress;
  size_t next_message_ = 0;
  SymmetricState symmetric_;
  crypto::SecretBytes s_priv_;   // local static (may be empty)
  Bytes s_pub_;
  crypto::SecretBytes e_priv_;   // local ephemeral (set by the e token)
  Bytes e_pub_;
  crypto::SecretBytes fixed_e_;  // test ephemeral, consumed by the e token
  Bytes rs_;                     // remote static public
  Bytes re_;                     // remote ephemeral public
};

// Transport-phase encryption for one connection after the handshake: the two
// CipherStates with their counters. Messages must be delivered in order and
// exactly once (a stream transport): a replayed, reordered, dropped, truncated
// or forged ciphertext fails Decrypt, and any error poisons the Transport.
class Transport {
 public:
  Transport() = default;  // no keys: every call fails
  explicit Transport(CipherPair ciphers)
      : send_(std::move(ciphers.send)), recv_(std::move(ciphers.recv)) {}
  Transport(Transport&&) noexcept = default;
  Transport& operator=(Transport&&) noexcept = default;

  // Convenience: hs.Split() wrapped in a Transport.
  static Result<Transport> FromHandshake(HandshakeState& hs);

  // Plaintext of at most kMaxTransportPlaintext bytes -> ciphertext (+16).
  // Errors: too long, no send key (one-way responder), nonce exhausted.
  Result<Bytes> Encrypt(std::span<const uint8_t> plaintext);
  // Errors: longer than kMaxMessageLen, shorter than a tag, authentication
  // failure (including replay / reorder), no receive key, nonce exhausted.
  Result<Bytes> Decrypt(std::span<const uint8_t> ciphertext);

  // In place (see CipherState::EncryptInPlace / DecryptTo): the zero-copy
  // forms used by SecureChannel. Same limits and errors as Encrypt/Decrypt.
  Status EncryptInPlace(uint8_t* buf, size_t plaintext_len);
  Status DecryptTo(std::span<const uint8_t> ciphertext, uint8_t* out);

  // Both peers must rekey the same direction at the same message boundary.
  Status RekeySend();
  Status RekeyRecv();

  uint64_t send_nonce() const { return send_.nonce(); }
  uint64_t recv_nonce() const { return recv_.nonce(); }
  bool failed() const { return failed_; }

 private:
  Status Fail(Status st);

  CipherState send_;
  CipherState recv_;
  bool failed_ = false;
};

}  // namespace mistore::noise
