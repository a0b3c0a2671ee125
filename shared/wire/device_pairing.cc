#include "shared/wire/device_pairing.h"

#include <sodium.h>

#include <cctype>
#include <string_view>

#include "shared/core/assert.h"
#include "shared/crypto/secret.h"

namespace mistore::pairing {

std::string NormalizeCode(const std::string& code) {
  std::string out;
  for (char c : code) {
    if (c == '-' || c == ' ') continue;
    c = char(std::toupper(static_cast<unsigned char>(c)));
    if (c == 'O') c = '0';
    if (c == 'I' || c == 'L') c = '1';
    out.push_back(c);
  }
  return out;
}

Bytes CodeHash(const std::string& code) {
  MS_ASSERT(crypto::internal::SodiumReady());
  const std::string norm = NormalizeCode(code);
  Bytes out(kCodeHashBytes);
  MS_ASSERT(crypto_generichash(out.data(), out.size(),
                               reinterpret_cast<const uint8_t*>(norm.data()),
                               norm.size(), nullptr, 0) == 0);
  return out;
}

Bytes Proof(const Bytes& code_hash, bool from_device,
            const Bytes& handshake_hash) {
  MS_ASSERT(crypto::internal::SodiumReady());
  MS_ASSERT(code_hash.size() == kCodeHashBytes);
  const std::string_view label =
      from_device ? "mistore-pair-v1 device" : "mistore-pair-v1 agent";
  crypto_generichash_state st;
  MS_ASSERT(crypto_generichash_init(&st, code_hash.data(), code_hash.size(),
                                    kProofBytes) == 0);
  MS_ASSERT(crypto_generichash_update(
                &st, reinterpret_cast<const uint8_t*>(label.data()),
                label.size()) == 0);
  MS_ASSERT(crypto_generichash_update(&st, handshake_hash.data(),
                                      handshake_hash.size()) == 0);
  Bytes out(kProofBytes);
  MS_ASSERT(crypto_generichash_final(&st, out.data(), out.size()) == 0);
  sodium_memzero(&st, sizeof st);
  return out;
}

bool ProofsEqual(const Bytes& a, const Bytes& b) {
  return a.size() == kProofBytes && b.size() == kProofBytes &&
         sodium_memcmp(a.data(), b.data(), kProofBytes) == 0;
}

}  // namespace mistore::pairing
