#include "shared/crypto/share.h"

#include <cstring>
#include <string>

#include "shared/crypto/keys.h"

namespace mistore::crypto {

SecretBytes ChunkSealKey(const SecretBytes& chunk_key, const Bytes& chunk_id) {
  MS_ASSERT(chunk_key.size() == kSubkeyBytes);
  MS_ASSERT(chunk_id.size() == kKeyedHashBytes);
  KeyedHasher h(chunk_key);
  h.Update(reinterpret_cast<const uint8_t*>(kChunkSealLabel),
           sizeof(kChunkSealLabel) - 1);
  h.Update(chunk_id.data(), chunk_id.size());
  Bytes k = h.Final();
  SecretBytes out(k.data(), k.size());
  sodium_memzero(k.data(), k.size());
  return out;
}

SecretBytes ChunkIdKeyV3(const SecretBytes& master) {
  return DeriveSubkey(master, kChunkIdKeyV3SubkeyId, kKdfContextChunkIdKey);
}

ShareKeyPair DeriveShareKeyPair(const SecretBytes& master) {
  SecretBytes seed =
      DeriveSubkey(master, kSingletonSubkeyId, kKdfContextShareKey);
  ShareKeyPair p;
  p.public_key.resize(kShareKeyBytes);
  p.secret_key = SecretBytes(kShareKeyBytes);
  const int rc = crypto_box_seed_keypair(
      p.public_key.data(), p.secret_key.mutable_data(), seed.data());
  MS_ASSERT(rc == 0);
  return p;
}

Result<Bytes> SealToRecipient(const Bytes& recipient_public_key,
                              const Bytes& plain) {
  MS_RETURN_IF_ERROR(CryptoInit());
  if (recipient_public_key.size() != kShareKeyBytes)
    return InvalidArgument("share key must be " +
                           std::to_string(kShareKeyBytes) + " bytes, not " +
                           std::to_string(recipient_public_key.size()));
  if (plain.empty() || plain.size() > kShareGrantPlainBytesMax)
    return InvalidArgument("grant of " + std::to_string(plain.size()) +
                           " bytes (1.." +
                           std::to_string(kShareGrantPlainBytesMax) + ")");
  Bytes out(plain.size() + kShareSealOverhead);
  if (crypto_box_seal(out.data(), plain.data(), plain.size(),
                      recipient_public_key.data()) != 0)
    return InvalidArgument("share key is not a valid X25519 public key");
  return out;
}

Result<Bytes> OpenSealed(const ShareKeyPair& pair, const Bytes& sealed) {
  MS_RETURN_IF_ERROR(CryptoInit());
  if (sealed.size() <= kShareSealOverhead ||
      sealed.size() > kShareGrantPlainBytesMax + kShareSealOverhead)
    return Corrupt("grant of " + std::to_string(sealed.size()) +
                   " sealed bytes is malformed");
  MS_ASSERT(pair.public_key.size() == kShareKeyBytes &&
            pair.secret_key.size() == kShareKeyBytes);
  Bytes out(sealed.size() - kShareSealOverhead);
  if (crypto_box_seal_open(out.data(), sealed.data(), sealed.size(),
                           pair.public_key.data(), pair.secret_key.data()) != 0)
    return Corrupt(
        "grant fails authentication (sealed to another key, or modified)");
  return out;
}

}  // namespace mistore::crypto
