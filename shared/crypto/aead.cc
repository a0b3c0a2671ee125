#include "shared/crypto/aead.h"

namespace mistore::crypto {

namespace {

// libsodium accepts null with length 0, but passing a real address keeps
// sanitizers and future library versions quiet.
const uint8_t* NonNull(const uint8_t* p, size_t len) {
  static const uint8_t kEmpty = 0;
  return len ? p : &kEmpty;
}

}  // namespace

Bytes Seal(const SecretBytes& key, const uint8_t* plain, size_t len, const uint8_t* ad,
           size_t ad_len) {
  MS_ASSERT(internal::SodiumReady());
  MS_ASSERT(key.size() == kAeadKeyBytes);
  MS_ASSERT(len <= crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX - kSealOverhead);
  Bytes out(len + kSealOverhead);
  uint8_t* nonce = out.data();
  randombytes_buf(nonce, kAeadNonceBytes);
  unsigned long long clen = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.data() + kAeadNonceBytes, &clen, NonNull(plain, len), len, NonNull(ad, ad_len), ad_len,
      nullptr, nonce, key.data());
  MS_ASSERT(rc == 0 && clen == len + kAeadTagBytes);
  return out;
}

Result<Bytes> Open(const SecretBytes& key, const uint8_t* sealed, size_t len, const uint8_t* ad,
                   size_t ad_len) {
  MS_ASSERT(internal::SodiumReady());
  MS_ASSERT(key.size() == kAeadKeyBytes);
  if (len < kSealOverhead) return Corrupt("truncated");
  const size_t plain_len = len - kSealOverhead;
  Bytes plain(plain_len);
  uint8_t scratch = 0;  // output address for an empty plaintext
  unsigned long long mlen = 0;
  // Verifies the tag before writing any plaintext.
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          plain_len ? plain.data() : &scratch, &mlen, nullptr, sealed + kAeadNonceBytes,
          len - kAeadNonceBytes, NonNull(ad, ad_len), ad_len, sealed, key.data()) != 0) {
    return Corrupt("authentication failed");
  }
  MS_ASSERT(mlen == plain_len);
  return plain;
}

}  // namespace mistore::crypto
