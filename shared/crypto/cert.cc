#include "shared/crypto/cert.h"

#include <sodium.h>

#include <cstring>

namespace mistore::crypto {

namespace {
constexpr uint8_t kMagic[4] = {'M', 'S', 'C', 'T'};
constexpr uint64_t kClockSkewMs = 5 * 60 * 1000;

Status Denied(std::string m) { return Status(Code::kPermissionDenied, std::move(m)); }

bool ValidRole(uint8_t r) { return r >= 1 && r <= 4; }
}  // namespace

const char* NodeRoleName(NodeRole role) {
  switch (role) {
    case NodeRole::kGateway:
      return "gateway";
    case NodeRole::kPop:
      return "pop";
    case NodeRole::kDc:
      return "dc";
    case NodeRole::kClient:
      return "client";
  }
  return "unknown";
}

Result<NodeRole> ParseNodeRole(std::string_view name) {
  if (name == "gateway") return NodeRole::kGateway;
  if (name == "pop") return NodeRole::kPop;
  if (name == "dc") return NodeRole::kDc;
  if (name == "client") return NodeRole::kClient;
  return InvalidArgument("unknown node role '" + std::string(name) +
                         "' (gateway, pop, dc, client)");
}

Result<Bytes> Certificate::EncodeToBeSigned() const {
  if (static_public_key.size() != kCertStaticKeyBytes)
    return InvalidArgument("certificate static key must be 32 bytes");
  if (region.size() > kCertStringBytesMax || subscriber.size() > kCertStringBytesMax)
    return InvalidArgument("certificate region/subscriber longer than 64 bytes");
  if (!ValidRole(uint8_t(role))) return InvalidArgument("certificate role out of range");
  Bytes out(kCertFixedBytes + region.size() + subscriber.size());
  uint8_t* p = out.data();
  std::memcpy(p, kMagic, 4);
  p[4] = kCertVersion;
  p[5] = uint8_t(role);
  PutLe32(p + 6, node_id);
  PutLe64(p + 10, serial);
  PutLe64(p + 18, issued_ms);
  PutLe64(p + 26, expires_ms);
  std::memcpy(p + 34, static_public_key.data(), kCertStaticKeyBytes);
  size_t off = 66;
  p[off++] = uint8_t(region.size());
  std::memcpy(p + off, region.data(), region.size());
  off += region.size();
  p[off++] = uint8_t(subscriber.size());
  std::memcpy(p + off, subscriber.data(), subscriber.size());
  return out;
}

Result<Bytes> Certificate::Encode() const {
  if (signature.size() != kCertSignatureBytes) return InvalidArgument("certificate is not signed");
  MS_ASSIGN_OR_RETURN(Bytes out, EncodeToBeSigned());
  out.insert(out.end(), signature.begin(), signature.end());
  return out;
}

CaKey CaKey::Generate() {
  SecretBytes seed = SecretBytes::Random(kCaSeedBytes);
  auto k = FromSeed(std::span<const uint8_t>(seed.data(), seed.size()));
  MS_ASSERT(k.ok());
  return std::move(k).value();
}

Result<CaKey> CaKey::FromSeed(std::span<const uint8_t> seed) {
  MS_ASSERT(internal::SodiumReady());
  if (seed.size() != kCaSeedBytes) return InvalidArgument("CA seed must be 32 bytes");
  CaKey k;
  k.secret_key_ = SecretBytes(kCaSecretKeyBytes);
  k.public_key_.resize(kCaPublicKeyBytes);
  crypto_sign_seed_keypair(k.public_key_.data(), k.secret_key_.mutable_data(), seed.data());
  return k;
}

Result<CaKey> CaKey::FromSecretKey(std::span<const uint8_t> secret_key) {
  if (secret_key.size() != kCaSecretKeyBytes)
    return InvalidArgument("CA secret key must be 64 bytes");
  // Re-derive from the seed half so a damaged public half is caught.
  MS_ASSIGN_OR_RETURN(CaKey k, FromSeed(secret_key.first(kCaSeedBytes)));
  if (sodium_memcmp(k.public_key_.data(), secret_key.data() + kCaSeedBytes, kCaPublicKeyBytes) != 0)
    return Corrupt("CA secret key: public half does not match the seed");
  return k;
}

Result<Bytes> CaKey::Sign(Certificate* cert) const {
  MS_ASSIGN_OR_RETURN(Bytes tbs, cert->EncodeToBeSigned());
  cert->signature.assign(kCertSignatureBytes, 0);
  crypto_sign_detached(cert->signature.data(), nullptr, tbs.data(), tbs.size(), secret_key_.data());
  tbs.insert(tbs.end(), cert->signature.begin(), cert->signature.end());
  return tbs;
}

Result<Certificate> ParseCertificate(std::span<const uint8_t> b) {
  if (b.size() < kCertBytesMin) return Corrupt("certificate truncated");
  if (b.size() > kCertBytesMax) return Corrupt("certificate longer than the maximum");
  if (std::memcmp(b.data(), kMagic, 4) != 0) return Corrupt("certificate: bad magic");
  if (b[4] != kCertVersion) return Corrupt("certificate: unknown version");
  if (!ValidRole(b[5])) return Corrupt("certificate: unknown role");
  Certificate c;
  c.role = NodeRole(b[5]);
  c.node_id = GetLe32(&b[6]);
  c.serial = GetLe64(&b[10]);
  c.issued_ms = GetLe64(&b[18]);
  c.expires_ms = GetLe64(&b[26]);
  c.static_public_key.assign(b.begin() + 34, b.begin() + 66);
  size_t off = 66;
  size_t rlen = b[off++];
  if (rlen > kCertStringBytesMax) return Corrupt("certificate: region too long");
  // Need region, subscriber length byte, signature at least.
  if (b.size() < off + rlen + 1 + kCertSignatureBytes) return Corrupt("certificate truncated");
  c.region.assign(reinterpret_cast<const char*>(&b[off]), rlen);
  off += rlen;
  size_t slen = b[off++];
  if (slen > kCertStringBytesMax) return Corrupt("certificate: subscriber too long");
  if (b.size() != off + slen + kCertSignatureBytes)
    return Corrupt("certificate: length does not match its fields");
  c.subscriber.assign(reinterpret_cast<const char*>(&b[off]), slen);
  off += slen;
  c.signature.assign(b.begin() + off, b.end());
  return c;
}

Status VerifyCertificate(const Certificate& cert, const CertPolicy& policy, uint64_t now_ms) {
  MS_ASSERT(internal::SodiumReady());
  if (policy.ca_public_key.size() != kCaPublicKeyBytes)
    return InvalidArgument("CA public key must be 32 bytes");
  if (cert.signature.size() != kCertSignatureBytes) return Denied("certificate is not signed");
  auto tbs = cert.EncodeToBeSigned();
  if (!tbs.ok()) return Denied("certificate malformed: " + tbs.status().message());
  if (crypto_sign_verify_detached(cert.signature.data(), tbs->data(), tbs->size(),
                                  policy.ca_public_key.data()) != 0)
    return Denied("certificate signature invalid (not issued by this cluster's DC)");
  if (!policy.allowed_roles.empty() && !policy.allowed_roles.count(cert.role))
    return Denied(std::string("certificate role ") + NodeRoleName(cert.role) +
                  " not accepted here");
  if (now_ms >= cert.expires_ms)
    return Denied("certificate expired (node " + std::to_string(cert.node_id) + ")");
  if (cert.issued_ms > now_ms + kClockSkewMs) return Denied("certificate issued in the future");
  if (policy.revoked_node_ids && policy.revoked_node_ids->count(cert.node_id))
    return Denied("certificate revoked (node " + std::to_string(cert.node_id) + ")");
  if (policy.expected_node_id != 0 && cert.node_id != policy.expected_node_id)
    return Denied("certificate is for node " + std::to_string(cert.node_id) + ", expected " +
                  std::to_string(policy.expected_node_id));
  return Status::Ok();
}

}  // namespace mistore::crypto
