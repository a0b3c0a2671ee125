#include "shared/crypto/keys.h"

#include <cstring>
#include <string>
#include <utility>

namespace mistore::crypto {

namespace {

constexpr char kWrapMagic[4] = {'M', 'S', 'K', 'W'};
constexpr size_t kOffVersion = 4;
constexpr size_t kOffAlg = 5;
constexpr size_t kOffOps = 6;
constexpr size_t kOffMem = 14;
constexpr size_t kOffSalt = 22;
constexpr size_t kSaltBytes = 16;
constexpr size_t kOffNonce = kOffSalt + kSaltBytes;  // 38
constexpr size_t kNonceBytes = 24;
constexpr size_t kOffCipher = kOffNonce + kNonceBytes;  // 62; also the AD length
constexpr size_t kKekBytes = 32;

static_assert(kSaltBytes == crypto_pwhash_argon2id_SALTBYTES);
static_assert(kNonceBytes == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kKekBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kOffCipher + kMasterKeyBytes + crypto_aead_xchacha20poly1305_ietf_ABYTES ==
              kWrappedMasterKeyBytes);

Status WrongPassphrase() {
  return Status(Code::kPermissionDenied, "wrong passphrase or damaged key file");
}

bool LimitsInRange(uint64_t opslimit, uint64_t memlimit) {
  return opslimit >= kPwhashOpsMin && opslimit <= kPwhashOpsMax &&
         memlimit >= kPwhashMemMin && memlimit <= kPwhashMemMax;
}

// Argon2id(passphrase, salt) -> kKekBytes. Limits must already be in range.
Result<SecretBytes> DeriveKek(std::string_view passphrase, const uint8_t* salt,
                              uint64_t opslimit, uint64_t memlimit) {
  SecretBytes kek(kKekBytes);
  // A non-null pointer even for an empty view.
  const char* pw = passphrase.empty() ? "" : passphrase.data();
  if (crypto_pwhash(kek.mutable_data(), kek.size(), pw, passphrase.size(), salt,
                    static_cast<unsigned long long>(opslimit), static_cast<size_t>(memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return ResourceExhausted("argon2id could not allocate " + std::to_string(memlimit) +
                             " bytes");
  }
  return kek;
}

}  // namespace

SecretBytes GenerateMasterKey() { return SecretBytes::Random(kMasterKeyBytes); }

Result<Bytes> WrapMasterKey(const SecretBytes& master, std::string_view passphrase,
                            uint64_t opslimit, size_t memlimit) {
  MS_RETURN_IF_ERROR(CryptoInit());
  if (master.size() != kMasterKeyBytes) {
    return InvalidArgument("master key must be " + std::to_string(kMasterKeyBytes) + " bytes");
  }
  if (passphrase.empty()) return InvalidArgument("empty passphrase");
  if (!LimitsInRange(opslimit, memlimit)) {
    return InvalidArgument("argon2id limits out of range: opslimit=" + std::to_string(opslimit) +
                           " memlimit=" + std::to_string(memlimit));
  }

  Bytes blob(kWrappedMasterKeyBytes);
  uint8_t* p = blob.data();
  std::memcpy(p, kWrapMagic, sizeof(kWrapMagic));
  p[kOffVersion] = kWrapVersion;
  p[kOffAlg] = kWrapAlgArgon2idXChaCha;
  PutLe64(p + kOffOps, opslimit);
  PutLe64(p + kOffMem, memlimit);
  randombytes_buf(p + kOffSalt, kSaltBytes);
  randombytes_buf(p + kOffNonce, kNonceBytes);

  MS_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(passphrase, p + kOffSalt, opslimit, memlimit));
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(p + kOffCipher, &clen, master.data(), master.size(),
                                             p, kOffCipher, nullptr, p + kOffNonce, kek.data());
  MS_ASSERT(clen == kWrappedMasterKeyBytes - kOffCipher);
  return blob;
}

Result<SecretBytes> UnwrapMasterKey(const Bytes& blob, std::string_view passphrase) {
  MS_RETURN_IF_ERROR(CryptoInit());
  const uint8_t* p = blob.data();
  if (blob.size() < sizeof(kWrapMagic) || std::memcmp(p, kWrapMagic, sizeof(kWrapMagic)) != 0) {
    return Corrupt("not a Mistore key file (bad magic)");
  }
  if (blob.size() <= kOffAlg) return Corrupt("key file truncated");
  if (p[kOffVersion] != kWrapVersion) {
    return Corrupt("unsupported key file version " + std::to_string(p[kOffVersion]));
  }
  if (p[kOffAlg] != kWrapAlgArgon2idXChaCha) {
    return Corrupt("unsupported key wrapping algorithm " + std::to_string(p[kOffAlg]));
  }
  if (blob.size() != kWrappedMasterKeyBytes) {
    return Corrupt("key file is " + std::to_string(blob.size()) + " bytes, expected " +
                   std::to_string(kWrappedMasterKeyBytes));
  }
  // Bounds first: nothing below may allocate or loop according to an
  // unchecked field.
  const uint64_t opslimit = GetLe64(p + kOffOps);
  const uint64_t memlimit = GetLe64(p + kOffMem);
  if (!LimitsInRange(opslimit, memlimit)) {
    return Corrupt("key file argon2id limits out of range: opslimit=" + std::to_string(opslimit) +
                   " memlimit=" + std::to_string(memlimit));
  }
  // Wrap refuses empty passphrases, so no valid file has one: skip Argon2id.
  if (passphrase.empty()) return WrongPassphrase();

  MS_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(passphrase, p + kOffSalt, opslimit, memlimit));
  SecretBytes master(kMasterKeyBytes);
  unsigned long long mlen = 0;
  // Verifies the tag before writing any plaintext.
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(master.mutable_data(), &mlen, nullptr,
                                                 p + kOffCipher, blob.size() - kOffCipher, p,
                                                 kOffCipher, p + kOffNonce, kek.data()) != 0) {
    return WrongPassphrase();
  }
  MS_ASSERT(mlen == kMasterKeyBytes);
  return master;
}

SecretBytes DeriveSubkey(const SecretBytes& master, uint64_t subkey_id, const char context[8]) {
  MS_ASSERT(internal::SodiumReady());
  MS_ASSERT(master.size() == kMasterKeyBytes);
  MS_ASSERT(context != nullptr);
  SecretBytes subkey(kSubkeyBytes);
  const int rc = crypto_kdf_derive_from_key(subkey.mutable_data(), subkey.size(), subkey_id,
                                            context, master.data());
  MS_ASSERT(rc == 0);
  return subkey;
}

SecretBytes ObjectKey(const SecretBytes& master, uint64_t object_key_id) {
  return DeriveSubkey(master, object_key_id, kKdfContextObjectKey);
}

SecretBytes NameHashKey(const SecretBytes& master) {
  return DeriveSubkey(master, kSingletonSubkeyId, kKdfContextNameKey);
}

SecretBytes ChunkIdKey(const SecretBytes& master) {
  return DeriveSubkey(master, kSingletonSubkeyId, kKdfContextChunkIdKey);
}

SecretBytes NameSealKey(const SecretBytes& master) {
  return DeriveSubkey(master, kSingletonSubkeyId, kKdfContextNameSealKey);
}

Bytes KeyedHash32(const SecretBytes& key, const uint8_t* data, size_t len) {
  MS_ASSERT(internal::SodiumReady());
  MS_ASSERT(key.size() >= crypto_generichash_KEYBYTES_MIN &&
            key.size() <= crypto_generichash_KEYBYTES_MAX);
  Bytes out(kKeyedHashBytes);
  static const uint8_t kEmpty = 0;
  const int rc = crypto_generichash(out.data(), out.size(), len ? data : &kEmpty, len,
                                    key.data(), key.size());
  MS_ASSERT(rc == 0);
  return out;
}

KeyedHasher::KeyedHasher(const SecretBytes& key) {
  MS_ASSERT(internal::SodiumReady());
  MS_ASSERT(key.size() >= crypto_generichash_KEYBYTES_MIN &&
            key.size() <= crypto_generichash_KEYBYTES_MAX);
  const int rc = crypto_generichash_init(&state_, key.data(), key.size(), kKeyedHashBytes);
  MS_ASSERT(rc == 0);
}

KeyedHasher::KeyedHasher(KeyedHasher&& other) noexcept : finished_(other.finished_) {
  std::memcpy(&state_, &other.state_, sizeof(state_));
  sodium_memzero(&other.state_, sizeof(other.state_));
  other.finished_ = true;
}

KeyedHasher& KeyedHasher::operator=(KeyedHasher&& other) noexcept {
  if (this != &other) {
    std::memcpy(&state_, &other.state_, sizeof(state_));
    finished_ = other.finished_;
    sodium_memzero(&other.state_, sizeof(other.state_));
    other.finished_ = true;
  }
  return *this;
}

KeyedHasher::~KeyedHasher() { sodium_memzero(&state_, sizeof(state_)); }

void KeyedHasher::Update(const uint8_t* data, size_t len) {
  MS_ASSERT(!finished_);
  if (len == 0) return;
  const int rc = crypto_generichash_update(&state_, data, len);
  MS_ASSERT(rc == 0);
}

Bytes KeyedHasher::Final() {
  MS_ASSERT(!finished_);
  Bytes out(kKeyedHashBytes);
  const int rc = crypto_generichash_final(&state_, out.data(), out.size());
  MS_ASSERT(rc == 0);
  finished_ = true;
  sodium_memzero(&state_, sizeof(state_));
  return out;
}

}  // namespace mistore::crypto
