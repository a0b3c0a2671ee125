#include "shared/crypto/keys.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "shared/core/bytes.h"

namespace mistore::crypto {
namespace {

constexpr char kPass[] = "correct horse battery staple";

SecretBytes Sequential(size_t n, uint8_t start = 0) {
  SecretBytes s(n);
  for (size_t i = 0; i < n; i++) s.mutable_data()[i] = uint8_t(start + i);
  return s;
}

Bytes FromHexOrDie(std::string_view hex) {
  Bytes out;
  MS_ASSERT(FromHex(hex, &out));
  return out;
}

std::string Hex(const SecretBytes& s) { return ToHex(s.data(), s.size()); }

Bytes WrapFast(const SecretBytes& master, std::string_view pass = kPass) {
  Result<Bytes> blob = WrapMasterKey(master, pass, kPwhashOpsFast, kPwhashMemFast);
  MS_ASSERT(blob.ok());
  return std::move(blob).value();
}

// ---- Wrap / unwrap -----------------------------------------------------------

TEST(WrapTest, RoundTripWithFastLimits) {
  SecretBytes master = GenerateMasterKey();
  ASSERT_EQ(master.size(), kMasterKeyBytes);
  Bytes blob = WrapFast(master);
  EXPECT_EQ(blob.size(), kWrappedMasterKeyBytes);
  Result<SecretBytes> unwrapped = UnwrapMasterKey(blob, kPass);
  ASSERT_TRUE(unwrapped.ok()) << unwrapped.status().ToString();
  EXPECT_TRUE(unwrapped->Equals(master));
}

TEST(WrapTest, BlobDoesNotContainMasterKey) {
  SecretBytes master = Sequential(32, 0x41);
  Bytes blob = WrapFast(master);
  std::string blob_hex = ToHex(blob);
  EXPECT_EQ(blob_hex.find(Hex(master).substr(0, 16)), std::string::npos);
}

TEST(WrapTest, FreshSaltAndNonceEachTime) {
  SecretBytes master = Sequential(32);
  Bytes a = WrapFast(master);
  Bytes b = WrapFast(master);
  // Same header, different salt (22..38), nonce (38..62) and ciphertext.
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 22, b.begin()));
  EXPECT_NE(Bytes(a.begin() + 22, a.begin() + 38), Bytes(b.begin() + 22, b.begin() + 38));
  EXPECT_NE(Bytes(a.begin() + 38, a.begin() + 62), Bytes(b.begin() + 38, b.begin() + 62));
  EXPECT_NE(Bytes(a.begin() + 62, a.end()), Bytes(b.begin() + 62, b.end()));
  ASSERT_TRUE(UnwrapMasterKey(a, kPass).ok());
  ASSERT_TRUE(UnwrapMasterKey(b, kPass).ok());
}

TEST(WrapTest, WrongPassphraseIsPermissionDenied) {
  Bytes blob = WrapFast(Sequential(32));
  for (std::string_view wrong : {"correct horse battery stapl", "Correct horse battery staple",
                                 "correct horse battery staple ", ""}) {
    Result<SecretBytes> r = UnwrapMasterKey(blob, wrong);
    ASSERT_FALSE(r.ok()) << "passphrase '" << wrong << "' accepted";
    EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
    EXPECT_EQ(r.status().message(), "wrong passphrase or damaged key file");
  }
}

TEST(WrapTest, WrapRejectsBadArguments) {
  SecretBytes master = Sequential(32);
  auto code = [](const Result<Bytes>& r) { return r.ok() ? Code::kOk : r.status().code(); };
  EXPECT_EQ(code(WrapMasterKey(Sequential(31), kPass, kPwhashOpsFast, kPwhashMemFast)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(WrapMasterKey(SecretBytes(), kPass, kPwhashOpsFast, kPwhashMemFast)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(WrapMasterKey(master, "", kPwhashOpsFast, kPwhashMemFast)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(WrapMasterKey(master, kPass, 0, kPwhashMemFast)), Code::kInvalidArgument);
  EXPECT_EQ(code(WrapMasterKey(master, kPass, kPwhashOpsMax + 1, kPwhashMemFast)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(WrapMasterKey(master, kPass, kPwhashOpsFast, kPwhashMemMin - 1)),
            Code::kInvalidArgument);
  EXPECT_EQ(code(WrapMasterKey(master, kPass, kPwhashOpsFast,
                               static_cast<size_t>(kPwhashMemMax) + 1)),
            Code::kInvalidArgument);
}

TEST(WrapTest, LimitConstants) {
  EXPECT_EQ(kPwhashOpsDefault, uint64_t{crypto_pwhash_OPSLIMIT_INTERACTIVE});
  EXPECT_EQ(kPwhashMemDefault, size_t{crypto_pwhash_MEMLIMIT_INTERACTIVE});
  EXPECT_EQ(kPwhashOpsFast, uint64_t{crypto_pwhash_OPSLIMIT_MIN});
  EXPECT_EQ(kPwhashMemFast, size_t{8} << 20);
  EXPECT_EQ(kPwhashMemMax, uint64_t{1} << 30);
  EXPECT_EQ(kPwhashOpsMax, 8u);  // 2x libsodium's "sensitive"
  EXPECT_GE(kPwhashOpsMax, kPwhashOpsDefault);
  EXPECT_LE(kPwhashMemDefault, kPwhashMemMax);
  EXPECT_EQ(kWrappedMasterKeyBytes, 110u);
}

TEST(WrapTest, DefaultLimitsRoundTrip) {
  SecretBytes master = GenerateMasterKey();
  Result<Bytes> blob = WrapMasterKey(master, kPass, kPwhashOpsDefault, kPwhashMemDefault);
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  EXPECT_EQ(GetLe64(blob->data() + 6), kPwhashOpsDefault);
  EXPECT_EQ(GetLe64(blob->data() + 14), kPwhashMemDefault);
  Result<SecretBytes> back = UnwrapMasterKey(*blob, kPass);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->Equals(master));
}

// Every proper prefix, and the blob with a byte appended, is kCorrupt (the
// length is checked before any Argon2id work).
TEST(UnwrapTest, EveryTruncationIsCorrupt) {
  Bytes blob = WrapFast(Sequential(32));
  for (size_t n = 0; n < blob.size(); n++) {
    Bytes cut(blob.begin(), blob.begin() + n);
    Result<SecretBytes> r = UnwrapMasterKey(cut, kPass);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(r.status().code(), Code::kCorrupt) << n << ": " << r.status().ToString();
  }
  Bytes longer = blob;
  longer.push_back(0);
  Result<SecretBytes> r = UnwrapMasterKey(longer, kPass);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
}

// A hostile file's limits are refused before Argon2id runs: quickly, and with
// kCorrupt. (Without the check, memlimit 2^40 would fail allocation inside
// libsodium with kResourceExhausted, and 2 GiB / 2^32 passes would run for
// seconds to hours.)
TEST(UnwrapTest, HostileLimitsRejectedFast) {
  Bytes blob = WrapFast(Sequential(32));
  struct Case {
    uint64_t ops;
    uint64_t mem;
  };
  const Case cases[] = {
      {kPwhashOpsFast, uint64_t{1} << 40},     // 1 TiB
      {kPwhashOpsFast, uint64_t{2} << 30},     // 2 GiB
      {kPwhashOpsFast, kPwhashMemMax + 1},     // just over the cap
      {kPwhashOpsFast, ~uint64_t{0}},
      {kPwhashOpsFast, kPwhashMemMin - 1},
      {kPwhashOpsFast, 0},
      {uint64_t{1} << 32, kPwhashMemFast},
      {~uint64_t{0}, kPwhashMemFast},
      {kPwhashOpsMax + 1, kPwhashMemFast},
      {64, kPwhashMemFast},
      {0, kPwhashMemFast},
  };
  for (const Case& c : cases) {
    Bytes bad = blob;
    PutLe64(bad.data() + 6, c.ops);
    PutLe64(bad.data() + 14, c.mem);
    const auto start = std::chrono::steady_clock::now();
    Result<SecretBytes> r = UnwrapMasterKey(bad, kPass);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    // ASSERT: if a check is missing, stop before a later case really runs.
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.status().code(), Code::kCorrupt)
        << "ops=" << c.ops << " mem=" << c.mem << ": " << r.status().ToString();
    ASSERT_LT(elapsed, std::chrono::milliseconds(200)) << "ops=" << c.ops << " mem=" << c.mem;
  }
}

// Flipping any byte (all bits, and the low bit) never yields a key. Header
// bytes 0..5 are structurally checked (kCorrupt); salt, nonce, ciphertext and
// tag changes surface as authentication failures; the limit fields give
// either, depending on whether the damaged value is still in range.
TEST(UnwrapTest, FlippedByteAnywhereIsAnError) {
  SecretBytes master = Sequential(32, 9);
  Bytes blob = WrapFast(master);
  for (uint8_t mask : {uint8_t{0xff}, uint8_t{0x01}}) {
    for (size_t i = 0; i < blob.size(); i++) {
      Bytes bad = blob;
      bad[i] ^= mask;
      Result<SecretBytes> r = UnwrapMasterKey(bad, kPass);
      ASSERT_FALSE(r.ok()) << "flip " << int(mask) << " at offset " << i << " accepted";
      const Code code = r.status().code();
      if (i < 6) {
        EXPECT_EQ(code, Code::kCorrupt) << i;
      } else if (i >= 22) {
        EXPECT_EQ(code, Code::kPermissionDenied) << i;
      } else {
        EXPECT_TRUE(code == Code::kCorrupt || code == Code::kPermissionDenied)
            << i << ": " << r.status().ToString();
      }
    }
  }
  // The original is untouched and still opens.
  Result<SecretBytes> ok = UnwrapMasterKey(blob, kPass);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->Equals(master));
}

TEST(UnwrapTest, BadMagicVersionAlgorithmAreCorrupt) {
  Bytes blob = WrapFast(Sequential(32));
  Bytes b = blob;
  b[0] = 'X';
  EXPECT_EQ(UnwrapMasterKey(b, kPass).status().code(), Code::kCorrupt);
  b = blob;
  b[4] = 2;
  Result<SecretBytes> r = UnwrapMasterKey(b, kPass);
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
  EXPECT_NE(r.status().message().find("version"), std::string::npos) << r.status().message();
  b = blob;
  b[5] = 0;
  r = UnwrapMasterKey(b, kPass);
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
  EXPECT_NE(r.status().message().find("algorithm"), std::string::npos) << r.status().message();
}

// At the ops cap the bounds check passes and Argon2id runs (the header is
// authenticated, so the edited file then fails authentication).
TEST(UnwrapTest, LimitsAtTheCapAreAccepted) {
  Bytes bad = WrapFast(Sequential(32));
  PutLe64(bad.data() + 6, kPwhashOpsMax);
  Result<SecretBytes> r = UnwrapMasterKey(bad, kPass);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().ToString();
}

// Layout known answer: fixed header bytes, little-endian limits, and the
// salt / nonce / ciphertext at the documented offsets, checked by redoing the
// Argon2id + XChaCha20-Poly1305 steps directly with libsodium.
TEST(LayoutTest, FieldOffsetsAndLittleEndian) {
  SecretBytes master = Sequential(32, 0x20);
  const uint64_t ops = 2;
  const size_t mem = (size_t{8} << 20) + 1024;  // 0x00800400
  Result<Bytes> wrapped = WrapMasterKey(master, kPass, ops, mem);
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  const Bytes& blob = *wrapped;
  ASSERT_EQ(blob.size(), 110u);
  EXPECT_EQ(ToHex(blob.data(), 22),
            "4d534b57"            // "MSKW"
            "01"                  // version
            "01"                  // Argon2id13 + XChaCha20-Poly1305
            "0200000000000000"    // opslimit 2, LE
            "0004800000000000");  // memlimit 0x800400, LE

  uint8_t kek[32];
  ASSERT_EQ(crypto_pwhash(kek, sizeof(kek), kPass, std::strlen(kPass), blob.data() + 22, ops,
                          mem, crypto_pwhash_ALG_ARGON2ID13),
            0);
  uint8_t plain[32];
  unsigned long long plain_len = 0;
  ASSERT_EQ(crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plain_len, nullptr,
                                                       blob.data() + 62, 48, blob.data(), 62,
                                                       blob.data() + 38, kek),
            0);
  ASSERT_EQ(plain_len, 32u);
  EXPECT_EQ(ToHex(plain, 32), Hex(master));
  sodium_memzero(kek, sizeof(kek));
}

// A blob built independently from the documented layout (see the comment in
// keys.h) with fixed salt, nonce and master: must keep opening in every future
// version.
TEST(LayoutTest, GoldenBlobUnwraps) {
  const Bytes golden = FromHexOrDie(
      "4d534b57010102000000000000000004800000000000"
      "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
      "101112131415161718191a1b1c1d1e1f2021222324252627"
      "5237d9a68fcc43c03d524f2d6f817ddb75bd3835a84ee20c5c4406ef8cdd3e3e"
      "bc153d8631485a89fdb6bc8d29425111");
  ASSERT_EQ(golden.size(), kWrappedMasterKeyBytes);
  Result<SecretBytes> r = UnwrapMasterKey(golden, kPass);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Hex(*r), "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_EQ(UnwrapMasterKey(golden, "Tr0ub4dor&3").status().code(), Code::kPermissionDenied);
}

// ---- Subkeys -----------------------------------------------------------------

TEST(SubkeyTest, ContextsAreEightBytes) {
  for (const char* ctx : {kKdfContextNameKey, kKdfContextChunkIdKey, kKdfContextObjectKey,
                          kKdfContextNameSealKey}) {
    EXPECT_EQ(std::strlen(ctx), 8u) << ctx;
  }
  EXPECT_STREQ(kKdfContextNameKey, "msnamekk");
  EXPECT_STREQ(kKdfContextChunkIdKey, "mschunid");
  EXPECT_STREQ(kKdfContextObjectKey, "msobjkey");
  EXPECT_STREQ(kKdfContextNameSealKey, "msnmseal");
}

TEST(SubkeyTest, Deterministic) {
  SecretBytes master = GenerateMasterKey();
  SecretBytes a = DeriveSubkey(master, 5, kKdfContextChunkIdKey);
  SecretBytes b = DeriveSubkey(master, 5, kKdfContextChunkIdKey);
  ASSERT_EQ(a.size(), kSubkeyBytes);
  EXPECT_TRUE(a.Equals(b));
  // Also through a different SecretBytes holding the same master.
  EXPECT_TRUE(DeriveSubkey(master.Clone(), 5, kKdfContextChunkIdKey).Equals(a));
}

TEST(SubkeyTest, DiffersPerContext) {
  SecretBytes master = GenerateMasterKey();
  const char* contexts[] = {kKdfContextNameKey, kKdfContextChunkIdKey, kKdfContextObjectKey,
                            kKdfContextNameSealKey};
  std::vector<SecretBytes> keys;
  for (const char* ctx : contexts) keys.push_back(DeriveSubkey(master, 1, ctx));
  for (size_t i = 0; i < keys.size(); i++) {
    EXPECT_FALSE(keys[i].Equals(master)) << contexts[i];
    for (size_t j = i + 1; j < keys.size(); j++) {
      EXPECT_FALSE(keys[i].Equals(keys[j])) << contexts[i] << " vs " << contexts[j];
    }
  }
}

TEST(SubkeyTest, DiffersPerIdAndMaster) {
  SecretBytes master = GenerateMasterKey();
  const uint64_t ids[] = {0, 1, 2, 256, uint64_t{1} << 32, ~uint64_t{0}};
  std::vector<SecretBytes> keys;
  for (uint64_t id : ids) keys.push_back(ObjectKey(master, id));
  for (size_t i = 0; i < keys.size(); i++) {
    for (size_t j = i + 1; j < keys.size(); j++) {
      EXPECT_FALSE(keys[i].Equals(keys[j])) << ids[i] << " vs " << ids[j];
    }
  }
  SecretBytes other = GenerateMasterKey();
  EXPECT_FALSE(ObjectKey(other, 0).Equals(keys[0]));
}

TEST(SubkeyTest, HelpersUseTheirContexts) {
  SecretBytes master = GenerateMasterKey();
  EXPECT_TRUE(ObjectKey(master, 42).Equals(DeriveSubkey(master, 42, kKdfContextObjectKey)));
  EXPECT_TRUE(NameHashKey(master).Equals(
      DeriveSubkey(master, kSingletonSubkeyId, kKdfContextNameKey)));
  EXPECT_TRUE(ChunkIdKey(master).Equals(
      DeriveSubkey(master, kSingletonSubkeyId, kKdfContextChunkIdKey)));
  EXPECT_TRUE(NameSealKey(master).Equals(
      DeriveSubkey(master, kSingletonSubkeyId, kKdfContextNameSealKey)));
}

// Known answers computed independently (Python hashlib.blake2b with salt =
// LE64(id) || 0^8 and person = context || 0^8, which is libsodium's
// crypto_kdf construction). Pins chunk ids and name ids across releases.
TEST(SubkeyTest, KnownAnswers) {
  SecretBytes master = Sequential(32);
  EXPECT_EQ(Hex(NameHashKey(master)),
            "f4397444eaad0e14d4338da14b68c48365e347b49e57dc69b6cda65d8e7cd2f6");
  EXPECT_EQ(Hex(ObjectKey(master, 7)),
            "be8b54b0219c442165f885bf23e17bf0342f5d6de84581330f28653360779466");
}

// ---- Keyed hashing -------------------------------------------------------------

const uint8_t* U8(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

TEST(KeyedHashTest, KnownAnswers) {
  // Python: hashlib.blake2b(data, digest_size=32, key=bytes(range(32))).
  SecretBytes key = Sequential(32);
  EXPECT_EQ(ToHex(KeyedHash32(key, U8("chunk-data"), 10)),
            "b3f66601cd45035755aeed35124c4be07ed97f6acf0627a0d3b83dd8b6f7e5e2");
  EXPECT_EQ(ToHex(KeyedHash32(key, nullptr, 0)),
            "4e51e7a913fc80137da52880fecca175bf81e117d5c68126dc2774033517ea0d");
}

TEST(KeyedHashTest, DeterministicAndKeyDependent) {
  SecretBytes k1 = GenerateMasterKey();
  SecretBytes k2 = GenerateMasterKey();
  const std::string data = "the same object name";
  Bytes h1 = KeyedHash32(k1, U8(data), data.size());
  ASSERT_EQ(h1.size(), kKeyedHashBytes);
  EXPECT_EQ(h1, KeyedHash32(k1, U8(data), data.size()));
  EXPECT_NE(h1, KeyedHash32(k2, U8(data), data.size()));
  EXPECT_NE(h1, KeyedHash32(k1, U8(data), data.size() - 1));
  // Unkeyed BLAKE2b-256 of the same data differs: the key is really used.
  Bytes unkeyed(32);
  crypto_generichash(unkeyed.data(), 32, U8(data), data.size(), nullptr, 0);
  EXPECT_NE(h1, unkeyed);
}

TEST(KeyedHashTest, StreamingMatchesOneShot) {
  SecretBytes key = GenerateMasterKey();
  Bytes data(1000);
  for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(i * 7 + 3);
  const Bytes expected = KeyedHash32(key, data.data(), data.size());
  for (size_t split : {size_t{0}, size_t{1}, size_t{127}, size_t{128}, size_t{129}, size_t{999},
                       size_t{1000}}) {
    KeyedHasher h(key);
    h.Update(data.data(), split);
    h.Update(nullptr, 0);
    h.Update(data.data() + split, data.size() - split);
    EXPECT_EQ(h.Final(), expected) << "split at " << split;
  }
  // Byte-at-a-time, through a moved hasher.
  KeyedHasher h1(key);
  for (size_t i = 0; i < 500; i++) h1.Update(&data[i], 1);
  KeyedHasher h2(std::move(h1));
  for (size_t i = 500; i < data.size(); i++) h2.Update(&data[i], 1);
  EXPECT_EQ(h2.Final(), expected);
  // A different key gives a different digest.
  KeyedHasher other(GenerateMasterKey());
  other.Update(data.data(), data.size());
  EXPECT_NE(other.Final(), expected);
}

TEST(KeyedHashDeathTest, UpdateAfterFinalAsserts) {
  SecretBytes key = GenerateMasterKey();
  EXPECT_DEATH(
      {
        KeyedHasher h(key);
        (void)h.Final();
        h.Update(U8("x"), 1);
      },
      "assertion failed");
}

TEST(KeyedHashDeathTest, MovedFromHasherIsFinished) {
  SecretBytes key = GenerateMasterKey();
  EXPECT_DEATH(
      {
        KeyedHasher a(key);
        KeyedHasher b(std::move(a));
        a.Update(U8("x"), 1);  // NOLINT(bugprone-use-after-move)
      },
      "assertion failed");
  EXPECT_DEATH(
      {
        KeyedHasher a(key);
        KeyedHasher b(key);
        b = std::move(a);
        (void)a.Final();  // NOLINT(bugprone-use-after-move)
      },
      "assertion failed");
}

}  // namespace
}  // namespace mistore::crypto
