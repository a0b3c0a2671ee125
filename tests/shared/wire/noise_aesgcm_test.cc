// Tests for the Noise AESGCM suite of shared/wire/noise (25519_AESGCM_BLAKE2b,
// AES-256-GCM through OpenSSL). No published vectors are in the repository,
// so the CipherState is checked against an independent implementation,
// libsodium's crypto_aead_aes256gcm (needs AES-NI + PCLMUL: those cases skip
// where crypto_aead_aes256gcm_is_available() is 0), with the Noise nonce
// (32 zero bits, then the counter big-endian) built here by hand; then the
// handshakes XX / IK / KK with AESGCM on both sides, a suite mismatch
// refused, and the transport's tamper cases. Seeded RNG: every case is
// reproducible (the seed is in the failure message).
#include <gtest/gtest.h>
#include <sodium.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "shared/wire/noise.h"

namespace mistore::noise {
namespace {

constexpr uint32_t kSeed = 20261129;

bool Built() { return CipherBuilt(Cipher::kAesGcm); }
bool SodiumAes() {
  MS_ASSERT(sodium_init() >= 0);
  return crypto_aead_aes256gcm_is_available() == 1;
}

Bytes Random(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (uint8_t& x : b) x = uint8_t(rng());
  return b;
}

// The Noise AESGCM nonce, written out independently of noise.cc.
void BigEndianNonce(uint64_t n, uint8_t out[12]) {
  out[0] = out[1] = out[2] = out[3] = 0;
  for (int i = 0; i < 8; i++) out[11 - i] = uint8_t(n >> (8 * i));
}

// libsodium's AES-256-GCM of `pt` with nonce n (ciphertext || tag).
Bytes SodiumSeal(const Bytes& key, uint64_t n, const Bytes& ad,
                 const Bytes& pt) {
  uint8_t nonce[12];
  BigEndianNonce(n, nonce);
  Bytes out(pt.size() + crypto_aead_aes256gcm_ABYTES);
  unsigned long long clen = 0;
  MS_ASSERT(crypto_aead_aes256gcm_encrypt(out.data(), &clen, pt.data(),
                                          pt.size(), ad.data(), ad.size(),
                                          nullptr, nonce, key.data()) == 0);
  MS_ASSERT(clen == out.size());
  return out;
}

CipherState Keyed(const Bytes& key, uint64_t n) {
  CipherState cs(Cipher::kAesGcm);
  cs.InitializeKey(key);
  cs.SetNonce(n);
  return cs;
}

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

TEST(NoiseAesGcmNames, ProtocolNameAndKnob) {
  EXPECT_EQ(ProtocolName("XX", Cipher::kAesGcm),
            "Noise_XX_25519_AESGCM_BLAKE2b");
  EXPECT_EQ(ProtocolName("IK", Cipher::kChaChaPoly),
            "Noise_IK_25519_ChaChaPoly_BLAKE2b");
  EXPECT_EQ(ParseCipherKnob("chachapoly").value(), Cipher::kChaChaPoly);
  EXPECT_EQ(ParseCipherKnob("bogus").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseCipherKnob("AESGCM").status().code(), Code::kInvalidArgument);
  // auto = AES-GCM exactly when it is built and the CPU has AES instructions.
  const Cipher expected =
      Built() && SodiumAes() ? Cipher::kAesGcm : Cipher::kChaChaPoly;
  EXPECT_EQ(ParseCipherKnob("auto").value(), expected);
  EXPECT_EQ(AutoCipher(), expected);
  auto aes = ParseCipherKnob("aesgcm");
  if (Built()) {
    EXPECT_EQ(aes.value(), Cipher::kAesGcm);
  } else {
    EXPECT_EQ(aes.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(HandshakeState::Create("NN", true, {}, nullptr, nullptr, nullptr,
                                     Cipher::kAesGcm)
                  .status()
                  .code(),
              Code::kInvalidArgument);
  }
}

// (a) EncryptWithAd / DecryptWithAd / EncryptInPlace / DecryptTo against
// libsodium on random keys, nonces (edges included), AD and lengths.
TEST(NoiseAesGcmCipherState, MatchesLibsodiumAes256Gcm) {
  if (!Built()) GTEST_SKIP() << "AES-GCM not built (agent-only build)";
  if (!SodiumAes()) GTEST_SKIP() << "libsodium AES-GCM needs AES-NI + PCLMUL";
  std::mt19937 rng(kSeed);
  const std::vector<uint64_t> edges = {
      0, 1, 255, 256, 0xffffffff, 1ull << 32, 1ull << 56, kMaxNonce - 1};
  for (int trial = 0; trial < 300; trial++) {
    SCOPED_TRACE("seed " + std::to_string(kSeed) + " trial " +
                 std::to_string(trial));
    const Bytes key = Random(rng, kKeyLen);
    const uint64_t n =
        trial < int(edges.size())
            ? edges[trial]
            : (uint64_t(rng()) << 32 | rng()) % kMaxNonce;  // < 2^64-1
    const Bytes ad = Random(rng, rng() % 3 == 0 ? 0 : rng() % 200);
    size_t len = rng() % 3000;
    if (trial % 50 == 7) len = kMaxTransportPlaintext;
    if (trial % 50 == 8) len = 0;
    const Bytes pt = Random(rng, len);
    const Bytes expected = SodiumSeal(key, n, ad, pt);

    CipherState enc = Keyed(key, n);
    Bytes out = {0xee};  // appends after what is there
    ASSERT_TRUE(enc.EncryptWithAd(ad, pt, &out).ok());
    ASSERT_EQ(out.size(), 1 + expected.size());
    EXPECT_EQ(Bytes(out.begin() + 1, out.end()), expected);
    EXPECT_EQ(enc.nonce(), n + 1);

    CipherState dec = Keyed(key, n);
    Bytes back;
    ASSERT_TRUE(dec.DecryptWithAd(ad, expected, &back).ok());
    EXPECT_EQ(back, pt);
    EXPECT_EQ(dec.nonce(), n + 1);

    // In place, empty AD (the transport records).
    const Bytes expected_no_ad = SodiumSeal(key, n, {}, pt);
    Bytes buf = pt;
    buf.resize(len + kTagLen);
    CipherState enc2 = Keyed(key, n);
    ASSERT_TRUE(enc2.EncryptInPlace(buf.data(), len).ok());
    EXPECT_EQ(buf, expected_no_ad);
    CipherState dec2 = Keyed(key, n);
    ASSERT_TRUE(dec2.DecryptTo(buf, buf.data()).ok());
    EXPECT_EQ(Bytes(buf.begin(), buf.begin() + len), pt);
    EXPECT_EQ(dec2.nonce(), n + 1);

    // A little-endian counter (the ChaChaPoly encoding) would not match.
    if (n != 0 && trial < int(edges.size())) {
      uint8_t le[12] = {0};
      for (int i = 0; i < 8; i++) le[4 + i] = uint8_t(n >> (8 * i));
      uint8_t be[12];
      BigEndianNonce(n, be);
      EXPECT_NE(Bytes(le, le + 12), Bytes(be, be + 12));
    }
  }
}

// Sequential nonces: three messages in a row use n, n+1, n+2.
TEST(NoiseAesGcmCipherState, NonceAdvancesPerMessage) {
  if (!Built() || !SodiumAes())
    GTEST_SKIP() << "needs AES-GCM here and in libsodium";
  std::mt19937 rng(kSeed + 1);
  const Bytes key = Random(rng, kKeyLen);
  CipherState cs = Keyed(key, 0);
  for (uint64_t n = 0; n < 3; n++) {
    const Bytes pt = Random(rng, 100);
    Bytes out;
    ASSERT_TRUE(cs.EncryptWithAd(Text("ad"), pt, &out).ok());
    EXPECT_EQ(out, SodiumSeal(key, n, Text("ad"), pt)) << n;
  }
}

// REKEY (Noise 4.2): k' = first 32 bytes of ENCRYPT(k, 2^64-1, empty, zeros).
TEST(NoiseAesGcmCipherState, RekeyMatchesTheSpecComputedWithLibsodium) {
  if (!Built() || !SodiumAes())
    GTEST_SKIP() << "needs AES-GCM here and in libsodium";
  std::mt19937 rng(kSeed + 2);
  const Bytes key = Random(rng, kKeyLen);
  CipherState cs = Keyed(key, 5);
  ASSERT_TRUE(cs.Rekey().ok());
  EXPECT_EQ(cs.nonce(), 5u);  // unchanged
  Bytes next = SodiumSeal(key, kMaxNonce, {}, Bytes(kKeyLen, 0));
  next.resize(kKeyLen);
  const Bytes pt = Random(rng, 77);
  Bytes out;
  ASSERT_TRUE(cs.EncryptWithAd({}, pt, &out).ok());
  EXPECT_EQ(out, SodiumSeal(next, 5, {}, pt));
  EXPECT_NE(out, SodiumSeal(key, 5, {}, pt));
}

TEST(NoiseAesGcmCipherState, FailuresKeepTheNonceAndAppendNothing) {
  if (!Built()) GTEST_SKIP() << "AES-GCM not built (agent-only build)";
  const Bytes key(kKeyLen, 0x42);
  CipherState a = Keyed(key, 0), b = Keyed(key, 0);
  Bytes c;
  ASSERT_TRUE(a.EncryptWithAd(Text("ad"), Text("message"), &c).ok());
  Bytes p;
  EXPECT_EQ(b.DecryptWithAd(Text("other ad"), c, &p).code(), Code::kCorrupt);
  EXPECT_EQ(b.nonce(), 0u);
  EXPECT_TRUE(p.empty());
  for (size_t bit = 0; bit < c.size() * 8; bit++) {
    Bytes bad = c;
    bad[bit / 8] ^= uint8_t(1u << (bit % 8));
    EXPECT_EQ(b.DecryptWithAd(Text("ad"), bad, &p).code(), Code::kCorrupt)
        << bit;
    EXPECT_TRUE(p.empty());
  }
  EXPECT_EQ(
      b.DecryptWithAd(Text("ad"), Bytes(c.begin(), c.begin() + kTagLen - 1), &p)
          .code(),
      Code::kCorrupt);
  ASSERT_TRUE(b.DecryptWithAd(Text("ad"), c, &p).ok());
  EXPECT_EQ(p, Text("message"));
  // The same key under ChaChaPoly gives another ciphertext: the suite is
  // really switched, not just renamed.
  CipherState chacha;
  chacha.InitializeKey(key);
  Bytes cc;
  ASSERT_TRUE(chacha.EncryptWithAd(Text("ad"), Text("message"), &cc).ok());
  EXPECT_NE(cc, c);
  // Nonce exhaustion.
  CipherState last = Keyed(key, kMaxNonce - 1);
  Bytes o;
  ASSERT_TRUE(last.EncryptWithAd({}, Text("last"), &o).ok());
  EXPECT_EQ(last.EncryptWithAd({}, Text("more"), &o).code(),
            Code::kResourceExhausted);
}

// ------------------------------------------------------------ handshakes

struct Sides {
  HandshakeState init;
  HandshakeState resp;
};

Sides Make(const std::string& pattern, Cipher ci, Cipher cr, const KeyPair& is,
           const KeyPair& rs) {
  const bool ik = pattern == "IK", kk = pattern == "KK";
  const Bytes prologue = Text("mistore-test");
  auto i = HandshakeState::Create(pattern, true, prologue, &is,
                                  (ik || kk) ? &rs.public_key : nullptr,
                                  nullptr, ci);
  auto r = HandshakeState::Create(pattern, false, prologue, &rs,
                                  kk ? &is.public_key : nullptr, nullptr, cr);
  MS_ASSERT(i.ok() && r.ok());
  return Sides{std::move(i).value(), std::move(r).value()};
}

// Runs the handshake with payloads; returns the index of the first message
// whose write or read failed, or -1.
int Drive(Sides& s) {
  for (int i = 0; !(s.init.Complete() && s.resp.Complete()); i++) {
    HandshakeState& w = s.init.IsMyTurn() ? s.init : s.resp;
    HandshakeState& r = s.init.IsMyTurn() ? s.resp : s.init;
    if (!w.IsMyTurn()) return i;
    const Bytes payload(3 + i, uint8_t(0x50 + i));
    auto m = w.WriteMessage(payload);
    if (!m.ok()) return i;
    auto p = r.ReadMessage(*m);
    if (!p.ok()) return i;
    EXPECT_EQ(*p, payload);
  }
  return -1;
}

// (b) XX, IK, KK with AESGCM both sides: complete, agree, carry traffic.
TEST(NoiseAesGcmHandshake, XxIkKkComplete) {
  if (!Built()) GTEST_SKIP() << "AES-GCM not built (agent-only build)";
  for (const std::string pattern : {"XX", "IK", "KK"}) {
    SCOPED_TRACE(pattern);
    KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
    Sides s = Make(pattern, Cipher::kAesGcm, Cipher::kAesGcm, is, rs);
    EXPECT_EQ(s.init.protocol_name(),
              "Noise_" + pattern + "_25519_AESGCM_BLAKE2b");
    EXPECT_EQ(s.resp.cipher(), Cipher::kAesGcm);
    ASSERT_EQ(Drive(s), -1);
    EXPECT_EQ(s.init.handshake_hash(), s.resp.handshake_hash());
    EXPECT_EQ(s.init.remote_static(), rs.public_key);
    EXPECT_EQ(s.resp.remote_static(), is.public_key);
    auto ti = Transport::FromHandshake(s.init);
    auto tr = Transport::FromHandshake(s.resp);
    ASSERT_TRUE(ti.ok() && tr.ok());
    for (int k = 0; k < 3; k++) {
      auto c = ti->Encrypt(Text("to responder"));
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(tr->Decrypt(*c).value(), Text("to responder"));
      c = tr->Encrypt(Text("to initiator"));
      ASSERT_TRUE(c.ok());
      EXPECT_EQ(ti->Decrypt(*c).value(), Text("to initiator"));
    }
  }
}

// Same keys and ephemerals, different suites: different transcripts (the
// protocol name is the first input of the handshake hash).
TEST(NoiseAesGcmHandshake, SuiteIsBoundIntoTheHandshakeHash) {
  if (!Built()) GTEST_SKIP() << "AES-GCM not built (agent-only build)";
  KeyPair is = KeyPair::FromPrivate(Bytes(32, 1)).value();
  KeyPair rs = KeyPair::FromPrivate(Bytes(32, 2)).value();
  crypto::SecretBytes ie(Bytes(32, 3).data(), 32), re(Bytes(32, 4).data(), 32);
  Bytes hash[2];
  for (int k = 0; k < 2; k++) {
    const Cipher c = k ? Cipher::kAesGcm : Cipher::kChaChaPoly;
    auto i =
        HandshakeState::Create("XX", true, {}, &is, nullptr, &ie, c).value();
    auto r =
        HandshakeState::Create("XX", false, {}, &rs, nullptr, &re, c).value();
    Sides s{std::move(i), std::move(r)};
    ASSERT_EQ(Drive(s), -1);
    hash[k] = s.init.handshake_hash();
  }
  EXPECT_NE(hash[0], hash[1]);
}

// (c) A side on the other suite: the first encrypted handshake message fails
// authentication (XX: message 2 at the initiator; IK/KK: message 1 at the
// responder), in either direction of the mismatch.
TEST(NoiseAesGcmHandshake, MismatchedSuiteFails) {
  if (!Built()) GTEST_SKIP() << "AES-GCM not built (agent-only build)";
  for (const std::string pattern : {"XX", "IK", "KK"}) {
    for (const bool init_aes : {true, false}) {
      SCOPED_TRACE(pattern +
                   (init_aes ? " initiator AESGCM" : " initiator ChaChaPoly"));
      KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
      const Cipher a = init_aes ? Cipher::kAesGcm : Cipher::kChaChaPoly;
      const Cipher b = init_aes ? Cipher::kChaChaPoly : Cipher::kAesGcm;
      Sides s = Make(pattern, a, b, is, rs);
      EXPECT_EQ(Drive(s), pattern == "XX" ? 1 : 0);
      EXPECT_TRUE(s.init.Failed() || s.resp.Failed());
      EXPECT_FALSE(s.init.Complete() && s.resp.Complete());
    }
  }
}

// (d) Transport tamper cases with AESGCM: replay, reorder, drop, flipped
// bits, truncation.
std::pair<Transport, Transport> AesConnected() {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  Sides s = Make("XX", Cipher::kAesGcm, Cipher::kAesGcm, is, rs);
  MS_ASSERT(Drive(s) == -1);
  return {Transport::FromHandshake(s.init).value(),
          Transport::FromHandshake(s.resp).value()};
}

TEST(NoiseAesGcmTransport, ReplayReorderDropRefused) {
  if (!Built()) GTEST_SKIP() << "AES-GCM not built (agent-only build)";
  {
    auto [ti, tr] = AesConnected();
    auto m1 = ti.Encrypt(Text("one"));
    auto m2 = ti.Encrypt(Text("two"));
    ASSERT_TRUE(tr.Decrypt(*m1).ok());
    EXPECT_EQ(tr.Decrypt(*m1).status().code(), Code::kCorrupt);  // replay
    EXPECT_FALSE(tr.Decrypt(*m2).ok());                          // poisoned
    EXPECT_TRUE(tr.failed());
  }
  {
    auto [ti, tr] = AesConnected();
    auto m1 = ti.Encrypt(Text("one"));
    auto m2 = ti.Encrypt(Text("two"));
    EXPECT_FALSE(tr.Decrypt(*m2).ok());  // reordered / m1 dropped
  }
}

TEST(NoiseAesGcmTransport, FlippedBitsAndTruncationRefused) {
  if (!Built()) GTEST_SKIP() << "AES-GCM not built (agent-only build)";
  const Bytes msg = Text("an AES-GCM transport payload");
  auto [a, b] = AesConnected();
  auto good = a.Encrypt(msg);
  ASSERT_TRUE(good.ok());
  for (size_t bit = 0; bit < good->size() * 8; bit++) {
    auto [x, y] = AesConnected();
    Bytes c = x.Encrypt(msg).value();
    c[bit / 8] ^= uint8_t(1u << (bit % 8));
    Bytes out(c.size());
    EXPECT_EQ(y.DecryptTo(c, out.data()).code(), Code::kCorrupt)
        << "bit " << bit;
  }
  for (size_t len = 0; len < good->size(); len++) {
    auto [x, y] = AesConnected();
    Bytes c = x.Encrypt(msg).value();
    c.resize(len);
    EXPECT_FALSE(y.Decrypt(c).ok()) << "truncated to " << len;
  }
  EXPECT_EQ(b.Decrypt(*good).value(), msg);
}

}  // namespace
}  // namespace mistore::noise
