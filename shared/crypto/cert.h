// Node certificates: the DC is the certificate authority of a Mistore
// cluster. It holds an Ed25519 signing key (CaKey) and signs, for every node
// it enrols, a certificate binding the node's id, role, region, subscriber
// (gateways and clients) and static X25519 public key (the key that node
// uses in its Noise handshakes) to an expiry time and a serial number.
// The secure channel (shared/wire/secure_channel.h) carries certificates in
// its handshake and checks them with VerifyCertificate.
//
// Canonical encoding ("MSCT", every integer little-endian):
//   off  len  field
//     0    4  magic "MSCT"
//     4    1  version = 1
//     5    1  role (NodeRole: 1 gateway, 2 pop, 3 dc, 4 client)
//     6    4  node_id (u32)
//    10    8  serial (u64)
//    18    8  issued_ms (u64, Unix ms)
//    26    8  expires_ms (u64, Unix ms; valid while now < expires_ms)
//    34   32  static_public_key (X25519)
//    66    1  region length R (<= kCertStringBytesMax)
//    67    R  region (bytes, no NUL)
//   67+R   1  subscriber length S (<= kCertStringBytesMax)
//   68+R   S  subscriber
//   68+R+S 64 Ed25519 signature (crypto_sign_detached) of bytes [0, 68+R+S)
// There is exactly one encoding of a certificate: ParseCertificate rejects
// trailing bytes, unknown versions and roles, and over-long strings, so the
// signed bytes are the certificate.
//
// Ownership: CaKey owns its secret key in a SecretBytes (wiped when
// destroyed). Certificates are plain values.
// Threads: pure functions (apart from the CSPRNG in CaKey::Generate), any
// thread. libsodium is initialised lazily.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"

namespace mistore::crypto {

enum class NodeRole : uint8_t { kGateway = 1, kPop = 2, kDc = 3, kClient = 4 };

// "gateway", "pop", "dc", "client".
const char* NodeRoleName(NodeRole role);
// Inverse of NodeRoleName; kInvalidArgument for anything else.
Result<NodeRole> ParseNodeRole(std::string_view name);

inline constexpr size_t kCaPublicKeyBytes = 32;  // Ed25519 public key
inline constexpr size_t kCaSecretKeyBytes = 64;  // libsodium Ed25519 secret key
inline constexpr size_t kCaSeedBytes = 32;
inline constexpr size_t kCertSignatureBytes = 64;
inline constexpr size_t kCertStaticKeyBytes = 32;
inline constexpr size_t kCertStringBytesMax = 64;
inline constexpr size_t kCertFixedBytes = 68;  // everything but strings + signature
inline constexpr size_t kCertBytesMin = kCertFixedBytes + kCertSignatureBytes;
inline constexpr size_t kCertBytesMax = kCertBytesMin + 2 * kCertStringBytesMax;
inline constexpr uint8_t kCertVersion = 1;

struct Certificate {
  uint32_t node_id = 0;
  NodeRole role = NodeRole::kGateway;
  uint64_t serial = 0;
  uint64_t issued_ms = 0;
  uint64_t expires_ms = 0;
  Bytes static_public_key;  // kCertStaticKeyBytes
  std::string region;
  std::string subscriber;  // gateways and clients; empty for pop/dc
  Bytes signature;         // kCertSignatureBytes; empty until signed

  // Bytes [0, 68+R+S): what the CA signs. kInvalidArgument if a field is out
  // of range (key length, string lengths).
  Result<Bytes> EncodeToBeSigned() const;
  // The full canonical encoding (requires a signature).
  Result<Bytes> Encode() const;
};

// The DC's signing key.
class CaKey {
 public:
  static CaKey Generate();
  // Deterministic key from a 32-byte seed (tests, and the DC's key file).
  static Result<CaKey> FromSeed(std::span<const uint8_t> seed);
  // From a 64-byte libsodium secret key (seed || public key).
  static Result<CaKey> FromSecretKey(std::span<const uint8_t> secret_key);

  const Bytes& public_key() const { return public_key_; }
  const SecretBytes& secret_key() const { return secret_key_; }

  // Fills cert->signature and returns the canonical encoding.
  Result<Bytes> Sign(Certificate* cert) const;

 private:
  SecretBytes secret_key_;  // kCaSecretKeyBytes
  Bytes public_key_;        // kCaPublicKeyBytes
};

// Bounded parser: rejects (kCorrupt) anything that is not exactly one
// canonical certificate of at most kCertBytesMax bytes. Does NOT check the
// signature (VerifyCertificate does).
Result<Certificate> ParseCertificate(std::span<const uint8_t> bytes);

// What the verifier expects of a peer's certificate.
struct CertPolicy {
  Bytes ca_public_key;                                   // kCaPublicKeyBytes
  std::set<NodeRole> allowed_roles;                      // empty = any role
  const std::set<uint32_t>* revoked_node_ids = nullptr;  // may be null
  uint32_t expected_node_id = 0;                         // 0 = any node
};

// Checks the signature against policy.ca_public_key, the role, expiry
// (now_ms < expires_ms and issued_ms <= now_ms + 5 min of clock skew), the
// revocation set and the expected node id. Errors are kPermissionDenied with
// a message naming what failed ("certificate expired", "certificate revoked",
// "certificate role gateway not accepted", "certificate signature invalid").
Status VerifyCertificate(const Certificate& cert, const CertPolicy& policy, uint64_t now_ms);

}  // namespace mistore::crypto
