#include "shared/wire/noise.h"

#include <sodium.h>

#include <cstring>
#include <initializer_list>

#ifdef MISTORE_HAVE_AESGCM
#include <openssl/crypto.h>
#include <openssl/evp.h>
#endif

#include "shared/core/assert.h"

namespace mistore::noise {

namespace {

using ByteSpan = std::span<const uint8_t>;

static_assert(kDhLen == crypto_scalarmult_curve25519_BYTES);
static_assert(kDhLen == crypto_scalarmult_curve25519_SCALARBYTES);
static_assert(kKeyLen == crypto_aead_chacha20poly1305_ietf_KEYBYTES);
static_assert(kTagLen == crypto_aead_chacha20poly1305_ietf_ABYTES);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12);
static_assert(kHashLen == crypto_generichash_blake2b_BYTES_MAX);

// libsodium is happy with a null pointer for a zero length, but a non-null
// pointer keeps every call unambiguous.
const uint8_t* Ptr(ByteSpan s) {
  static const uint8_t kZero = 0;
  return s.empty() ? &kZero : s.data();
}

void EnsureSodium() { MS_ASSERT(crypto::internal::SodiumReady()); }

// BLAKE2b-512 over the concatenation of `parts`.
void Blake2b(std::initializer_list<ByteSpan> parts, uint8_t out[kHashLen]) {
  crypto_generichash_blake2b_state st;
  MS_ASSERT(crypto_generichash_blake2b_init(&st, nullptr, 0, kHashLen) == 0);
  for (ByteSpan p : parts) {
    MS_ASSERT(crypto_generichash_blake2b_update(&st, Ptr(p), p.size()) == 0);
  }
  MS_ASSERT(crypto_generichash_blake2b_final(&st, out, kHashLen) == 0);
  sodium_memzero(&st, sizeof st);
}

// HMAC (RFC 2104) over BLAKE2b-512, block length 128, as Noise 4.3 requires
// (not BLAKE2b's built-in keyed mode).
void HmacBlake2b(ByteSpan key, std::initializer_list<ByteSpan> data, uint8_t out[kHashLen]) {
  uint8_t k[kBlockLen] = {0};
  if (key.size() > kBlockLen) {
    Blake2b({key}, k);
  } else if (!key.empty()) {
    std::memcpy(k, key.data(), key.size());
  }
  uint8_t pad[kBlockLen];
  uint8_t inner[kHashLen];

  for (size_t i = 0; i < kBlockLen; i++) pad[i] = k[i] ^ 0x36;
  crypto_generichash_blake2b_state st;
  MS_ASSERT(crypto_generichash_blake2b_init(&st, nullptr, 0, kHashLen) == 0);
  MS_ASSERT(crypto_generichash_blake2b_update(&st, pad, kBlockLen) == 0);
  for (ByteSpan d : data) {
    MS_ASSERT(crypto_generichash_blake2b_update(&st, Ptr(d), d.size()) == 0);
  }
  MS_ASSERT(crypto_generichash_blake2b_final(&st, inner, kHashLen) == 0);

  for (size_t i = 0; i < kBlockLen; i++) pad[i] = k[i] ^ 0x5c;
  Blake2b({ByteSpan(pad, kBlockLen), ByteSpan(inner, kHashLen)}, out);

  sodium_memzero(&st, sizeof st);
  sodium_memzero(k, sizeof k);
  sodium_memzero(pad, sizeof pad);
  sodium_memzero(inner, sizeof inner);
}

// HKDF(chaining_key, input_key_material, num_outputs) of Noise 4.3. `out3`
// may be null for two outputs.
void Hkdf(ByteSpan chaining_key, ByteSpan ikm, uint8_t out1[kHashLen], uint8_t out2[kHashLen],
          uint8_t* out3) {
  uint8_t temp_key[kHashLen];
  HmacBlake2b(chaining_key, {ikm}, temp_key);
  const uint8_t one = 0x01, two = 0x02, three = 0x03;
  HmacBlake2b(ByteSpan(temp_key, kHashLen), {ByteSpan(&one, 1)}, out1);
  HmacBlake2b(ByteSpan(temp_key, kHashLen), {ByteSpan(out1, kHashLen), ByteSpan(&two, 1)}, out2);
  if (out3 != nullptr) {
    HmacBlake2b(ByteSpan(temp_key, kHashLen), {ByteSpan(out2, kHashLen), ByteSpan(&three, 1)},
                out3);
  }
  sodium_memzero(temp_key, sizeof temp_key);
}

// ChaChaPoly (Noise 12.3): 32 bits of zeros, then the counter little-endian.
void NoiseNonce(uint64_t n, uint8_t nonce[12]) {
  std::memset(nonce, 0, 4);
  PutLe64(nonce + 4, n);
}

#ifdef MISTORE_HAVE_AESGCM
// AESGCM (Noise 12.4): 32 bits of zeros, then the counter big-endian.
void AesGcmNonce(uint64_t n, uint8_t nonce[12]) {
  std::memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = uint8_t(n >> (8 * (7 - i)));
}

EVP_CIPHER_CTX* Ctx(void* p) { return static_cast<EVP_CIPHER_CTX*>(p); }

// OpenSSL's int lengths: every Noise message is <= 65535 bytes.
int Len(size_t n) {
  MS_ASSERT(n <= kMaxMessageLen);
  return int(n);
}
#endif

Bytes PublicFromPrivate(const uint8_t* priv) {
  Bytes pub(kDhLen);
  // Cannot fail for the base point (X25519 clamps the scalar).
  MS_ASSERT(crypto_scalarmult_curve25519_base(pub.data(), priv) == 0);
  return pub;
}

Status Aborted(const char* what) {
  return Status(Code::kAborted, std::string("noise: ") + what + " already failed");
}

}  // namespace

// ---------------------------------------------------------------- patterns

namespace internal {

enum class Token : uint8_t { kE, kS, kEE, kES, kSE, kSS };

struct Pattern {
  struct Message {
    bool from_initiator;
    std::vector<Token> tokens;
  };
  std::string name;
  bool one_way = false;
  bool initiator_pre_s = false;  // "-> s" pre-message
  bool responder_pre_s = false;  // "<- s" pre-message
  std::vector<Message> messages;

  bool Sends(bool initiator, Token t) const {
    for (const Message& m : messages) {
      if (m.from_initiator != initiator) continue;
      for (Token x : m.tokens) {
        if (x == t) return true;
      }
    }
    return false;
  }
  // This side holds a static key pair during the handshake.
  bool NeedsLocalStatic(bool initiator) const {
    return (initiator ? initiator_pre_s : responder_pre_s) || Sends(initiator, Token::kS);
  }
  // This side must be told the peer's static key before the handshake.
  bool NeedsRemoteStatic(bool initiator) const {
    return initiator ? responder_pre_s : initiator_pre_s;
  }
};

}  // namespace internal

namespace {

// Noise revision 34, sections 7.4 (one-way) and 7.5 (interactive), in the
// spec's notation. Lines before "..." are pre-messages.
struct PatternText {
  const char* name;
  bool one_way;
  const char* text;
};
constexpr PatternText kPatternTable[] = {
    {"N", true, "<- s\n...\n-> e, es"},
    {"K", true, "-> s\n<- s\n...\n-> e, es, ss"},
    {"X", true, "<- s\n...\n-> e, es, s, ss"},
    {"NN", false, "-> e\n<- e, ee"},
    {"NK", false, "<- s\n...\n-> e, es\n<- e, ee"},
    {"NX", false, "-> e\n<- e, ee, s, es"},
    {"XN", false, "-> e\n<- e, ee\n-> s, se"},
    {"XK", false, "<- s\n...\n-> e, es\n<- e, ee\n-> s, se"},
    {"XX", false, "-> e\n<- e, ee, s, es\n-> s, se"},
    {"KN", false, "-> s\n...\n-> e\n<- e, ee, se"},
    {"KK", false, "-> s\n<- s\n...\n-> e, es, ss\n<- e, ee, se"},
    {"KX", false, "-> s\n...\n-> e\n<- e, ee, se, s, es"},
    {"IN", false, "-> e, s\n<- e, ee, se"},
    {"IK", false, "<- s\n...\n-> e, es, s, ss\n<- e, ee, se"},
    {"IX", false, "-> e, s\n<- e, ee, se, s, es"},
};

std::vector<std::string_view> SplitText(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string_view::npos ? std::string_view::npos
                                                               : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

namespace {

using internal::Pattern;
using internal::Token;

// Parses the table once (the table is a constant: malformed entries assert).
const std::vector<Pattern>& Patterns() {
  using P = Pattern;
  using T = Token;
  static const std::vector<P> patterns = [] {
    std::vector<P> out;
    for (const PatternText& entry : kPatternTable) {
      P p;
      p.name = entry.name;
      p.one_way = entry.one_way;
      std::vector<std::string_view> lines = SplitText(entry.text, '\n');
      size_t first_message = 0;
      for (size_t i = 0; i < lines.size(); i++) {
        if (lines[i] == "...") first_message = i + 1;
      }
      for (size_t i = 0; i < lines.size(); i++) {
        if (lines[i] == "...") continue;
        std::string_view line = lines[i];
        MS_ASSERT(line.size() > 3);
        const bool from_initiator = line.substr(0, 2) == "->";
        MS_ASSERT(from_initiator || line.substr(0, 2) == "<-");
        std::vector<T> tokens;
        for (std::string_view tok : SplitText(line.substr(3), ',')) {
          tok = Trim(tok);
          if (tok == "e") tokens.push_back(T::kE);
          else if (tok == "s") tokens.push_back(T::kS);
          else if (tok == "ee") tokens.push_back(T::kEE);
          else if (tok == "es") tokens.push_back(T::kES);
          else if (tok == "se") tokens.push_back(T::kSE);
          else if (tok == "ss") tokens.push_back(T::kSS);
          else MS_ASSERT(false && "unknown token in pattern table");
        }
        if (i < first_message) {
          // Pre-messages: only a static key is supported (no fallback "e").
          MS_ASSERT(tokens.size() == 1 && tokens[0] == T::kS);
          (from_initiator ? p.initiator_pre_s : p.responder_pre_s) = true;
        } else {
          // Messages alternate, starting with the initiator.
          MS_ASSERT(from_initiator == ((i - first_message) % 2 == 0));
          p.messages.push_back({from_initiator, std::move(tokens)});
        }
      }
      MS_ASSERT(!p.messages.empty());
      MS_ASSERT(!p.one_way || p.messages.size() == 1);
      out.push_back(std::move(p));
    }
    return out;
  }();
  return patterns;
}

const Pattern* FindPattern(std::string_view name) {
  for (const Pattern& p : Patterns()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace

const char* CipherName(Cipher cipher) {
  return cipher == Cipher::kAesGcm ? "AESGCM" : "ChaChaPoly";
}

bool CipherBuilt(Cipher cipher) {
#ifdef MISTORE_HAVE_AESGCM
  return true;
#else
  return cipher == Cipher::kChaChaPoly;
#endif
}

Cipher AutoCipher() {
  EnsureSodium();
  return CipherBuilt(Cipher::kAesGcm) &&
                 crypto_aead_aes256gcm_is_available() == 1
             ? Cipher::kAesGcm
             : Cipher::kChaChaPoly;
}

Result<Cipher> ParseCipherKnob(std::string_view value) {
  if (value == "auto") return AutoCipher();
  if (value == "chachapoly") return Cipher::kChaChaPoly;
  if (value == "aesgcm") {
    if (!CipherBuilt(Cipher::kAesGcm))
      return InvalidArgument(
          "cipher=aesgcm: AES-GCM is not built into this binary "
          "(gateway agent-only build without OpenSSL)");
    return Cipher::kAesGcm;
  }
  return InvalidArgument("cipher must be auto, chachapoly or aesgcm, not '" +
                         std::string(value) + "'");
}

std::string ProtocolName(std::string_view pattern, Cipher cipher) {
  std::string name = "Noise_";
  name += pattern;
  name += "_25519_";
  name += CipherName(cipher);
  name += "_BLAKE2b";
  return name;
}

bool IsKnownPattern(std::string_view pattern) { return FindPattern(pattern) != nullptr; }

// ----------------------------------------------------------------- KeyPair

KeyPair KeyPair::Generate() {
  EnsureSodium();
  KeyPair kp;
  kp.private_key = crypto::SecretBytes::Random(kDhLen);
  kp.public_key = PublicFromPrivate(kp.private_key.data());
  return kp;
}

Result<KeyPair> KeyPair::FromPrivate(std::span<const uint8_t> private_key) {
  if (private_key.size() != kDhLen) {
    return InvalidArgument("noise: X25519 private key must be 32 bytes");
  }
  EnsureSodium();
  KeyPair kp;
  kp.private_key = crypto::SecretBytes(private_key.data(), kDhLen);
  kp.public_key = PublicFromPrivate(kp.private_key.data());
  return kp;
}

KeyPair KeyPair::Clone() const {
  KeyPair kp;
  kp.private_key = private_key.Clone();
  kp.public_key = public_key;
  return kp;
}

// ------------------------------------------------------------- CipherState

void internal::AesGcmContextFree::operator()(void* ctx) const {
#ifdef MISTORE_HAVE_AESGCM
  EVP_CIPHER_CTX_free(Ctx(ctx));  // cleanses the expanded key
#else
  MS_ASSERT(ctx == nullptr);
#endif
}

CipherState::CipherState(Cipher cipher) : cipher_(cipher) {
  MS_ASSERT(CipherBuilt(cipher));
}

void CipherState::InitializeKey(std::span<const uint8_t> key) {
  MS_ASSERT(key.size() == kKeyLen);
  k_ = crypto::SecretBytes(key.data(), key.size());
  n_ = 0;
#ifdef MISTORE_HAVE_AESGCM
  if (cipher_ == Cipher::kAesGcm) {
    // The key schedule once per key; each message then sets only its nonce
    // (EVP_CipherInit_ex with a null cipher and key keeps the key).
    if (!aes_) aes_.reset(EVP_CIPHER_CTX_new());
    MS_ASSERT(aes_ != nullptr);
    MS_ASSERT(EVP_CipherInit_ex(Ctx(aes_.get()), EVP_aes_256_gcm(), nullptr,
                                k_.data(), nullptr, 1) == 1);
  }
#endif
}

void CipherState::Seal(std::span<const uint8_t> ad, const uint8_t* in,
                       size_t in_len, uint8_t* out, uint64_t n) {
  uint8_t nonce[12];
#ifdef MISTORE_HAVE_AESGCM
  if (cipher_ == Cipher::kAesGcm) {
    EVP_CIPHER_CTX* c = Ctx(aes_.get());
    AesGcmNonce(n, nonce);
    int len = 0;
    MS_ASSERT(EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, nonce, 1) == 1);
    if (!ad.empty())
      MS_ASSERT(EVP_CipherUpdate(c, nullptr, &len, ad.data(), Len(ad.size())) ==
                1);
    if (in_len) MS_ASSERT(EVP_CipherUpdate(c, out, &len, in, Len(in_len)) == 1);
    MS_ASSERT(EVP_CipherFinal_ex(c, out + in_len, &len) == 1 && len == 0);
    MS_ASSERT(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, int(kTagLen),
                                  out + in_len) == 1);
    return;
  }
#endif
  NoiseNonce(n, nonce);
  unsigned long long clen = 0;
  // libsodium's AEAD allows c == m (in-place encryption).
  MS_ASSERT(crypto_aead_chacha20poly1305_ietf_encrypt(
                out, &clen, in_len ? in : Ptr({}), in_len, Ptr(ad), ad.size(),
                nullptr, nonce, k_.data()) == 0);
  MS_ASSERT(clen == in_len + kTagLen);
}

bool CipherState::Open(std::span<const uint8_t> ad, const uint8_t* in,
                       size_t in_len, uint8_t* out, uint64_t n) {
  MS_ASSERT(in_len >= kTagLen);
  const size_t plain_len = in_len - kTagLen;
  uint8_t nonce[12];
#ifdef MISTORE_HAVE_AESGCM
  if (cipher_ == Cipher::kAesGcm) {
    EVP_CIPHER_CTX* c = Ctx(aes_.get());
    AesGcmNonce(n, nonce);
    // The tag is copied first: an in-place decryption must not see it moved.
    uint8_t tag[kTagLen];
    std::memcpy(tag, in + plain_len, kTagLen);
    int len = 0;
    MS_ASSERT(EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, nonce, 0) == 1);
    if (!ad.empty())
      MS_ASSERT(EVP_CipherUpdate(c, nullptr, &len, ad.data(), Len(ad.size())) ==
                1);
    if (plain_len)
      MS_ASSERT(EVP_CipherUpdate(c, out, &len, in, Len(plain_len)) == 1);
    MS_ASSERT(
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, int(kTagLen), tag) == 1);
    // GCM decrypts before it checks the tag: on failure `out` holds
    // unauthenticated bytes, which every caller discards (or overwrites).
    return EVP_CipherFinal_ex(c, out + plain_len, &len) == 1;
  }
#endif
  NoiseNonce(n, nonce);
  uint8_t dummy = 0;
  uint8_t* m = plain_len ? out : &dummy;
  unsigned long long mlen = 0;
  // The tag is checked before anything is decrypted; m == c is allowed.
  if (crypto_aead_chacha20poly1305_ietf_decrypt(m, &mlen, nullptr, in, in_len,
                                                Ptr(ad), ad.size(), nonce,
                                                k_.data()) != 0)
    return false;
  MS_ASSERT(mlen == plain_len);
  return true;
}

Status CipherState::EncryptWithAd(std::span<const uint8_t> ad,
                                  std::span<const uint8_t> plaintext, Bytes* out) {
  if (!HasKey()) {
    if (plaintext.size() > kMaxMessageLen) {
      return InvalidArgument("noise: message would exceed 65535 bytes");
    }
    out->insert(out->end(), plaintext.begin(), plaintext.end());
    return Status::Ok();
  }
  if (n_ == kMaxNonce) return ResourceExhausted("noise: nonce exhausted");
  if (plaintext.size() > kMaxMessageLen - kTagLen) {
    return InvalidArgument("noise: message would exceed 65535 bytes");
  }
  EnsureSodium();
  const size_t at = out->size();
  out->resize(at + plaintext.size() + kTagLen);
  Seal(ad, plaintext.data(), plaintext.size(), out->data() + at, n_);
  n_++;
  return Status::Ok();
}

Status CipherState::DecryptWithAd(std::span<const uint8_t> ad,
                                  std::span<const uint8_t> ciphertext, Bytes* out) {
  if (!HasKey()) {
    out->insert(out->end(), ciphertext.begin(), ciphertext.end());
    return Status::Ok();
  }
  if (n_ == kMaxNonce) return ResourceExhausted("noise: nonce exhausted");
  if (ciphertext.size() < kTagLen) return Corrupt("noise: ciphertext shorter than its tag");
  EnsureSodium();
  const size_t at = out->size();
  const size_t plain_len = ciphertext.size() - kTagLen;
  out->resize(at + plain_len);
  uint8_t dummy = 0;
  if (!Open(ad, ciphertext.data(), ciphertext.size(),
            plain_len ? out->data() + at : &dummy, n_)) {
    out->resize(at);
    return Corrupt("noise: authentication failed");
  }
  n_++;
  return Status::Ok();
}

Status CipherState::EncryptInPlace(uint8_t* buf, size_t plaintext_len) {
  MS_ASSERT(HasKey());
  if (n_ == kMaxNonce) return ResourceExhausted("noise: nonce exhausted");
  if (plaintext_len > kMaxMessageLen - kTagLen)
    return InvalidArgument("noise: message would exceed 65535 bytes");
  EnsureSodium();
  Seal({}, buf, plaintext_len, buf, n_);
  n_++;
  return Status::Ok();
}

Status CipherState::DecryptTo(std::span<const uint8_t> ciphertext, uint8_t* out) {
  MS_ASSERT(HasKey());
  if (n_ == kMaxNonce) return ResourceExhausted("noise: nonce exhausted");
  if (ciphertext.size() < kTagLen) return Corrupt("noise: ciphertext shorter than its tag");
  EnsureSodium();
  uint8_t dummy = 0;
  if (!Open({}, ciphertext.data(), ciphertext.size(),
            ciphertext.size() > kTagLen ? out : &dummy, n_))
    return Corrupt("noise: authentication failed");
  n_++;
  return Status::Ok();
}

Status CipherState::Rekey() {
  if (!HasKey()) return InvalidArgument("noise: rekey without a key");
  EnsureSodium();
  uint8_t zeros[kKeyLen] = {0};
  uint8_t out[kKeyLen + kTagLen];
  Seal({}, zeros, kKeyLen, out, kMaxNonce);
  const uint64_t n = n_;
  InitializeKey(std::span<const uint8_t>(out, kKeyLen));
  n_ = n;
  sodium_memzero(out, sizeof out);
  return Status::Ok();
}

// ---------------------------------------------------------- SymmetricState

void SymmetricState::InitializeSymmetric(std::string_view protocol_name,
                                         Cipher cipher) {
  EnsureSodium();
  h_.assign(kHashLen, 0);
  if (protocol_name.size() <= kHashLen) {
    std::memcpy(h_.data(), protocol_name.data(), protocol_name.size());
  } else {
    Blake2b({ByteSpan(reinterpret_cast<const uint8_t*>(protocol_name.data()),
                      protocol_name.size())},
            h_.data());
  }
  ck_ = crypto::SecretBytes(h_.data(), kHashLen);
  cipher_ = CipherState(cipher);
}

void SymmetricState::MixKey(std::span<const uint8_t> input_key_material) {
  MS_ASSERT(ck_.size() == kHashLen);
  uint8_t out1[kHashLen], out2[kHashLen];
  Hkdf(ByteSpan(ck_.data(), ck_.size()), input_key_material, out1, out2, nullptr);
  ck_ = crypto::SecretBytes(out1, kHashLen);
  cipher_.InitializeKey(ByteSpan(out2, kKeyLen));  // truncated to 32 bytes
  sodium_memzero(out1, sizeof out1);
  sodium_memzero(out2, sizeof out2);
}

void SymmetricState::MixHash(std::span<const uint8_t> data) {
  uint8_t out[kHashLen];
  Blake2b({ByteSpan(h_), data}, out);
  h_.assign(out, out + kHashLen);
}

void SymmetricState::MixKeyAndHash(std::span<const uint8_t> input_key_material) {
  MS_ASSERT(ck_.size() == kHashLen);
  uint8_t out1[kHashLen], out2[kHashLen], out3[kHashLen];
  Hkdf(ByteSpan(ck_.data(), ck_.size()), input_key_material, out1, out2, out3);
  ck_ = crypto::SecretBytes(out1, kHashLen);
  MixHash(ByteSpan(out2, kHashLen));
  cipher_.InitializeKey(ByteSpan(out3, kKeyLen));
  sodium_memzero(out1, sizeof out1);
  sodium_memzero(out2, sizeof out2);
  sodium_memzero(out3, sizeof out3);
}

Status SymmetricState::EncryptAndHash(std::span<const uint8_t> plaintext, Bytes* out) {
  const size_t at = out->size();
  MS_RETURN_IF_ERROR(cipher_.EncryptWithAd(h_, plaintext, out));
  MixHash(ByteSpan(out->data() + at, out->size() - at));
  return Status::Ok();
}

Status SymmetricState::DecryptAndHash(std::span<const uint8_t> ciphertext, Bytes* out) {
  MS_RETURN_IF_ERROR(cipher_.DecryptWithAd(h_, ciphertext, out));
  MixHash(ciphertext);
  return Status::Ok();
}

std::pair<CipherState, CipherState> SymmetricState::Split() {
  MS_ASSERT(ck_.size() == kHashLen);
  uint8_t out1[kHashLen], out2[kHashLen];
  Hkdf(ByteSpan(ck_.data(), ck_.size()), ByteSpan(), out1, out2, nullptr);
  std::pair<CipherState, CipherState> pair{CipherState(cipher_.cipher()),
                                           CipherState(cipher_.cipher())};
  pair.first.InitializeKey(ByteSpan(out1, kKeyLen));
  pair.second.InitializeKey(ByteSpan(out2, kKeyLen));
  sodium_memzero(out1, sizeof out1);
  sodium_memzero(out2, sizeof out2);
  Wipe();
  return pair;
}

void SymmetricState::Wipe() {
  ck_ = crypto::SecretBytes();
  cipher_ = CipherState(cipher_.cipher());
}

// ---------------------------------------------------------- HandshakeState

Result<HandshakeState> HandshakeState::Create(
    std::string_view pattern, bool initiator, std::span<const uint8_t> prologue,
    const KeyPair* local_static, const Bytes* remote_static,
    const crypto::SecretBytes* test_ephemeral_private, Cipher cipher) {
  const Pattern* p = FindPattern(pattern);
  if (p == nullptr) {
    return InvalidArgument("noise: unknown handshake pattern '" + std::string(pattern) + "'");
  }
  if (!CipherBuilt(cipher)) {
    return InvalidArgument(std::string("noise: cipher ") + CipherName(cipher) +
                           " is not built into this binary");
  }
  EnsureSodium();
  const std::string role = initiator ? "initiator" : "responder";
  const bool need_s = p->NeedsLocalStatic(initiator);
  const bool need_rs = p->NeedsRemoteStatic(initiator);
  if (need_s != (local_static != nullptr)) {
    return InvalidArgument("noise: " + p->name + " " + role +
                           (need_s ? " needs a local static key pair"
                                   : " does not use a local static key pair"));
  }
  if (need_rs != (remote_static != nullptr)) {
    return InvalidArgument("noise: " + p->name + " " + role +
                           (need_rs ? " needs the peer's static public key in advance"
                                    : " must not be given the peer's static key (the "
                                      "pattern transmits it or never uses it)"));
  }

  HandshakeState hs;
  hs.pattern_ = p;
  hs.protocol_name_ = ProtocolName(p->name, cipher);
  hs.cipher_ = cipher;
  hs.initiator_ = initiator;
  if (local_static != nullptr) {
    if (local_static->private_key.size() != kDhLen || local_static->public_key.size() != kDhLen) {
      return InvalidArgument("noise: static key pair must be 32-byte X25519 keys");
    }
    hs.s_priv_ = local_static->private_key.Clone();
    hs.s_pub_ = local_static->public_key;
  }
  if (remote_static != nullptr) {
    if (remote_static->size() != kDhLen) {
      return InvalidArgument("noise: remote static public key must be 32 bytes");
    }
    hs.rs_ = *remote_static;
  }
  if (test_ephemeral_private != nullptr) {
    if (test_ephemeral_private->size() != kDhLen) {
      return InvalidArgument("noise: ephemeral private key must be 32 bytes");
    }
    hs.fixed_e_ = test_ephemeral_private->Clone();
  }

  hs.symmetric_.InitializeSymmetric(hs.protocol_name_, cipher);
  hs.symmetric_.MixHash(prologue);
  // Pre-message public keys: the initiator's first, then the responder's.
  if (p->initiator_pre_s) hs.symmetric_.MixHash(initiator ? hs.s_pub_ : hs.rs_);
  if (p->responder_pre_s) hs.symmetric_.MixHash(initiator ? hs.rs_ : hs.s_pub_);
  return Result<HandshakeState>(std::move(hs));
}

bool HandshakeState::IsMyTurn() const {
  return state_ == State::kInProgress &&
         pattern_->messages[next_message_].from_initiator == initiator_;
}

Status HandshakeState::Fail(Status st) {
  MS_ASSERT(!st.ok());
  state_ = State::kFailed;
  symmetric_.Wipe();
  s_priv_ = crypto::SecretBytes();
  e_priv_ = crypto::SecretBytes();
  fixed_e_ = crypto::SecretBytes();
  return st;
}

Status HandshakeState::Dh(const crypto::SecretBytes& priv, const Bytes& pub) {
  if (priv.size() != kDhLen || pub.size() != kDhLen) {
    return Internal("noise: DH token without both keys (pattern table bug)");
  }
  uint8_t shared[kDhLen];
  if (crypto_scalarmult_curve25519(shared, priv.data(), pub.data()) != 0) {
    sodium_memzero(shared, sizeof shared);
    return ProtocolError("noise: X25519 result is all zero (low-order public key)");
  }
  symmetric_.MixKey(ByteSpan(shared, kDhLen));
  sodium_memzero(shared, sizeof shared);
  return Status::Ok();
}

Status HandshakeState::MixDh(Token token) {
  switch (token) {
    case Token::kEE:
      return Dh(e_priv_, re_);
    case Token::kES:
      return initiator_ ? Dh(e_priv_, rs_) : Dh(s_priv_, re_);
    case Token::kSE:
      return initiator_ ? Dh(s_priv_, re_) : Dh(e_priv_, rs_);
    case Token::kSS:
      return Dh(s_priv_, rs_);
    case Token::kE:
    case Token::kS:
      break;
  }
  return Internal("noise: not a DH token");
}

Result<Bytes> HandshakeState::WriteMessage(std::span<const uint8_t> payload) {
  Result<Bytes> r = WriteInner(payload);
  if (!r.ok()) return Fail(r.status());
  return r;
}

Result<Bytes> HandshakeState::ReadMessage(std::span<const uint8_t> message) {
  Result<Bytes> r = ReadInner(message);
  if (!r.ok()) return Fail(r.status());
  return r;
}

Result<Bytes> HandshakeState::WriteInner(std::span<const uint8_t> payload) {
  if (state_ == State::kFailed) return Aborted("handshake");
  if (state_ != State::kInProgress) return InvalidArgument("noise: handshake already complete");
  const Pattern::Message& msg = pattern_->messages[next_message_];
  if (msg.from_initiator != initiator_) return InvalidArgument("noise: not our turn to write");

  // Exact length first, so an over-long payload is refused before any work.
  size_t len = 0;
  bool keyed = symmetric_.HasKey();
  for (Token t : msg.tokens) {
    if (t == Token::kE) {
      len += kDhLen;
    } else if (t == Token::kS) {
      len += kDhLen + (keyed ? kTagLen : 0);
    } else {
      keyed = true;
    }
  }
  len += payload.size() + (keyed ? kTagLen : 0);
  if (len > kMaxMessageLen) {
    return InvalidArgument("noise: handshake message would exceed 65535 bytes");
  }

  Bytes out;
  out.reserve(len);
  for (Token t : msg.tokens) {
    switch (t) {
      case Token::kE:
        if (!fixed_e_.empty()) {
          e_priv_ = std::move(fixed_e_);
        } else {
          e_priv_ = crypto::SecretBytes::Random(kDhLen);
        }
        e_pub_ = PublicFromPrivate(e_priv_.data());
        out.insert(out.end(), e_pub_.begin(), e_pub_.end());
        symmetric_.MixHash(e_pub_);
        break;
      case Token::kS:
        MS_RETURN_IF_ERROR(symmetric_.EncryptAndHash(s_pub_, &out));
        break;
      default:
        MS_RETURN_IF_ERROR(MixDh(t));
    }
  }
  MS_RETURN_IF_ERROR(symmetric_.EncryptAndHash(payload, &out));
  MS_ASSERT(out.size() == len);
  if (++next_message_ == pattern_->messages.size()) state_ = State::kComplete;
  return out;
}

Result<Bytes> HandshakeState::ReadInner(std::span<const uint8_t> message) {
  if (state_ == State::kFailed) return Aborted("handshake");
  if (state_ != State::kInProgress) {
    return ProtocolError("noise: handshake message after the handshake completed");
  }
  if (message.size() > kMaxMessageLen) {
    return ProtocolError("noise: handshake message exceeds 65535 bytes");
  }
  const Pattern::Message& msg = pattern_->messages[next_message_];
  if (msg.from_initiator == initiator_) {
    return ProtocolError("noise: peer sent a handshake message out of turn");
  }

  size_t pos = 0;
  for (Token t : msg.tokens) {
    switch (t) {
      case Token::kE: {
        if (message.size() - pos < kDhLen) return Corrupt("noise: truncated handshake message");
        re_.assign(message.begin() + pos, message.begin() + pos + kDhLen);
        pos += kDhLen;
        symmetric_.MixHash(re_);
        break;
      }
      case Token::kS: {
        const size_t n = kDhLen + (symmetric_.HasKey() ? kTagLen : 0);
        if (message.size() - pos < n) return Corrupt("noise: truncated handshake message");
        Bytes rs;
        MS_RETURN_IF_ERROR(symmetric_.DecryptAndHash(message.subspan(pos, n), &rs));
        pos += n;
        rs_ = std::move(rs);
        break;
      }
      default:
        MS_RETURN_IF_ERROR(MixDh(t));
    }
  }
  if (symmetric_.HasKey() && message.size() - pos < kTagLen) {
    return Corrupt("noise: truncated handshake message");
  }
  Bytes payload;
  MS_RETURN_IF_ERROR(symmetric_.DecryptAndHash(message.subspan(pos), &payload));
  if (++next_message_ == pattern_->messages.size()) state_ = State::kComplete;
  return payload;
}

Result<CipherPair> HandshakeState::Split() {
  if (state_ == State::kFailed) return Aborted("handshake");
  if (state_ == State::kInProgress) {
    return Fail(InvalidArgument("noise: Split before the handshake completed"));
  }
  if (state_ == State::kSplit) return Fail(InvalidArgument("noise: Split called twice"));
  auto [c1, c2] = symmetric_.Split();
  CipherPair pair;
  if (pattern_->one_way) {
    // Only initiator -> responder exists; c2 is discarded (Noise 5.3).
    if (initiator_) {
      pair.send = std::move(c1);
    } else {
      pair.recv = std::move(c1);
    }
  } else if (initiator_) {
    pair.send = std::move(c1);
    pair.recv = std::move(c2);
  } else {
    pair.send = std::move(c2);
    pair.recv = std::move(c1);
  }
  state_ = State::kSplit;
  s_priv_ = crypto::SecretBytes();
  e_priv_ = crypto::SecretBytes();
  fixed_e_ = crypto::SecretBytes();
  return pair;
}

// --------------------------------------------------------------- Transport

Result<Transport> Transport::FromHandshake(HandshakeState& hs) {
  Result<CipherPair> pair = hs.Split();
  if (!pair.ok()) return pair.status();
  return Transport(std::move(pair).value());
}

Status Transport::Fail(Status st) {
  MS_ASSERT(!st.ok());
  failed_ = true;
  send_ = CipherState();
  recv_ = CipherState();
  return st;
}

Result<Bytes> Transport::Encrypt(std::span<const uint8_t> plaintext) {
  if (failed_) return Aborted("transport");
  if (!send_.HasKey()) return Fail(InvalidArgument("noise: transport has no send key"));
  if (plaintext.size() > kMaxTransportPlaintext) {
    return Fail(InvalidArgument("noise: transport plaintext over 65519 bytes"));
  }
  Bytes out;
  out.reserve(plaintext.size() + kTagLen);
  Status st = send_.EncryptWithAd({}, plaintext, &out);
  if (!st.ok()) return Fail(std::move(st));
  return out;
}

Result<Bytes> Transport::Decrypt(std::span<const uint8_t> ciphertext) {
  if (failed_) return Aborted("transport");
  if (!recv_.HasKey()) return Fail(InvalidArgument("noise: transport has no receive key"));
  if (ciphertext.size() > kMaxMessageLen) {
    return Fail(ProtocolError("noise: transport message exceeds 65535 bytes"));
  }
  Bytes out;
  Status st = recv_.DecryptWithAd({}, ciphertext, &out);
  if (!st.ok()) return Fail(std::move(st));
  return out;
}

Status Transport::EncryptInPlace(uint8_t* buf, size_t plaintext_len) {
  if (failed_) return Aborted("transport");
  if (!send_.HasKey()) return Fail(InvalidArgument("noise: transport has no send key"));
  if (plaintext_len > kMaxTransportPlaintext)
    return Fail(InvalidArgument("noise: transport plaintext over 65519 bytes"));
  Status st = send_.EncryptInPlace(buf, plaintext_len);
  return st.ok() ? st : Fail(std::move(st));
}

Status Transport::DecryptTo(std::span<const uint8_t> ciphertext, uint8_t* out) {
  if (failed_) return Aborted("transport");
  if (!recv_.HasKey()) return Fail(InvalidArgument("noise: transport has no receive key"));
  if (ciphertext.size() > kMaxMessageLen)
    return Fail(ProtocolError("noise: transport message exceeds 65535 bytes"));
  Status st = recv_.DecryptTo(ciphertext, out);
  return st.ok() ? st : Fail(std::move(st));
}

Status Transport::RekeySend() {
  if (failed_) return Aborted("transport");
  Status st = send_.Rekey();
  return st.ok() ? st : Fail(std::move(st));
}

Status Transport::RekeyRecv() {
  if (failed_) return Aborted("transport");
  Status st = recv_.Rekey();
  return st.ok() ? st : Fail(std::move(st));
}

}  // namespace mistore::noise
