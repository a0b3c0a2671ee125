// Fuzz target: the node certificate parser and verifier
// (shared/crypto/cert.h). The input is a certificate; it is parsed, and if
// it parses, verified against the fixed fuzz CA (Ed25519 seed 32 x 0x07, the
// key the seeds are signed with) at a fixed time.
//
// Properties: no out-of-bounds read, no crash; parse errors are kCorrupt and
// only inputs of [kCertBytesMin, kCertBytesMax] bytes parse; a parsed
// certificate re-encodes to exactly the input (one canonical encoding);
// verification fails only with kPermissionDenied, and succeeds only for a
// certificate the fuzz CA really signed (checked again with libsodium).
#include <sodium.h>

#include <cstdint>

#include "shared/core/assert.h"
#include "shared/core/bytes.h"
#include "shared/crypto/cert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mistore;
  using namespace mistore::crypto;
  static const Bytes ca_pub = [] {
    Bytes seed(kCaSeedBytes, 0x07);
    return CaKey::FromSeed(seed).value().public_key();
  }();
  const Bytes in(data, data + size);
  Result<Certificate> cert = ParseCertificate(in);
  if (!cert.ok()) {
    MS_ASSERT(cert.status().code() == Code::kCorrupt);
    return 0;
  }
  MS_ASSERT(size >= kCertBytesMin && size <= kCertBytesMax);
  Result<Bytes> again = cert->Encode();
  MS_ASSERT(again.ok());
  MS_ASSERT(again.value() == in);
  CertPolicy policy;
  policy.ca_public_key = ca_pub;
  Status st = VerifyCertificate(*cert, policy, /*now_ms=*/1800000000000ull);
  if (st.ok()) {
    MS_ASSERT(crypto_sign_verify_detached(data + size - kCertSignatureBytes, data,
                                          size - kCertSignatureBytes, ca_pub.data()) == 0);
  } else {
    MS_ASSERT(st.code() == Code::kPermissionDenied);
  }
  return 0;
}
