#include "shared/crypto/share.h"

#include <gtest/gtest.h>

#include "shared/crypto/aead.h"
#include "shared/crypto/keys.h"

namespace mistore::crypto {
namespace {

SecretBytes Master(uint8_t fill) {
  SecretBytes m(kMasterKeyBytes);
  for (size_t i = 0; i < m.size(); i++) m.mutable_data()[i] = uint8_t(fill + i);
  return m;
}

Bytes Id(uint8_t fill) { return Bytes(32, fill); }

TEST(ShareCryptoTest, KeyPairIsDeterministicPerMasterAndDiffersBetweenUsers) {
  ASSERT_TRUE(CryptoInit().ok());
  ShareKeyPair a1 = DeriveShareKeyPair(Master(1));
  ShareKeyPair a2 = DeriveShareKeyPair(Master(1));
  ShareKeyPair b = DeriveShareKeyPair(Master(2));
  ASSERT_EQ(a1.public_key.size(), kShareKeyBytes);
  EXPECT_EQ(a1.public_key, a2.public_key);
  EXPECT_TRUE(a1.secret_key.Equals(a2.secret_key));
  EXPECT_NE(a1.public_key, b.public_key);
  // The public key is the secret key's X25519 public half.
  Bytes pub(32);
  ASSERT_EQ(crypto_scalarmult_base(pub.data(), a1.secret_key.data()), 0);
  EXPECT_EQ(pub, a1.public_key);
  // Not one of the other subkeys.
  Bytes seed(32);
  SecretBytes chunk_id_key = ChunkIdKey(Master(1));
  EXPECT_NE(Bytes(chunk_id_key.data(), chunk_id_key.data() + 32),
            a1.public_key);
}

TEST(ShareCryptoTest, GrantOpensOnlyForItsRecipient) {
  ASSERT_TRUE(CryptoInit().ok());
  ShareKeyPair bob = DeriveShareKeyPair(Master(2));
  ShareKeyPair carol = DeriveShareKeyPair(Master(3));
  Bytes grant = {'g', 'r', 'a', 'n', 't', 0, 1, 2};
  auto sealed = SealToRecipient(bob.public_key, grant);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->size(), grant.size() + kShareSealOverhead);
  auto opened = OpenSealed(bob, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, grant);
  // Another subscriber's key: refused.
  auto other = OpenSealed(carol, *sealed);
  EXPECT_EQ(other.status().code(), Code::kCorrupt);
  // One bit flipped: refused.
  Bytes flipped = *sealed;
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_EQ(OpenSealed(bob, flipped).status().code(), Code::kCorrupt);
  // Two seals of one grant differ (ephemeral sender key).
  auto again = SealToRecipient(bob.public_key, grant);
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *sealed);
}

TEST(ShareCryptoTest, GrantSizesAndKeysAreBounded) {
  ASSERT_TRUE(CryptoInit().ok());
  ShareKeyPair bob = DeriveShareKeyPair(Master(2));
  EXPECT_EQ(SealToRecipient(bob.public_key, Bytes()).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      SealToRecipient(bob.public_key, Bytes(kShareGrantPlainBytesMax + 1, 7))
          .status()
          .code(),
      Code::kInvalidArgument);
  EXPECT_TRUE(
      SealToRecipient(bob.public_key, Bytes(kShareGrantPlainBytesMax, 7)).ok());
  EXPECT_EQ(SealToRecipient(Bytes(31, 1), Bytes(5, 1)).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(OpenSealed(bob, Bytes(kShareSealOverhead, 0)).status().code(),
            Code::kCorrupt);
  EXPECT_EQ(
      OpenSealed(bob,
                 Bytes(kShareGrantPlainBytesMax + kShareSealOverhead + 1, 0))
          .status()
          .code(),
      Code::kCorrupt);
}

TEST(ShareCryptoTest, PerChunkKeysDependOnTheChunkIdAndTheUsersChunkKey) {
  ASSERT_TRUE(CryptoInit().ok());
  SecretBytes ck = DeriveSubkey(Master(1), kSingletonSubkeyId, "mschunke");
  SecretBytes k1 = ChunkSealKey(ck, Id(1));
  SecretBytes k1b = ChunkSealKey(ck, Id(1));
  SecretBytes k2 = ChunkSealKey(ck, Id(2));
  EXPECT_TRUE(k1.Equals(k1b));  // dedup: same chunk, same key
  EXPECT_FALSE(k1.Equals(k2));
  EXPECT_FALSE(k1.Equals(ck));
  SecretBytes other = DeriveSubkey(Master(2), kSingletonSubkeyId, "mschunke");
  EXPECT_FALSE(ChunkSealKey(other, Id(1)).Equals(k1));
  // Equal to the documented construction.
  Bytes msg(kChunkSealLabel, kChunkSealLabel + sizeof(kChunkSealLabel) - 1);
  Bytes id = Id(1);
  msg.insert(msg.end(), id.begin(), id.end());
  Bytes want = KeyedHash32(ck, msg.data(), msg.size());
  EXPECT_EQ(Bytes(k1.data(), k1.data() + k1.size()), want);
  // A chunk sealed under its own key opens with it only.
  Bytes plain = {1, 2, 3};
  Bytes sealed = Seal(k1, plain.data(), plain.size(), id.data(), id.size());
  EXPECT_TRUE(
      Open(k1, sealed.data(), sealed.size(), id.data(), id.size()).ok());
  EXPECT_FALSE(
      Open(k2, sealed.data(), sealed.size(), id.data(), id.size()).ok());
  EXPECT_FALSE(
      Open(ck, sealed.data(), sealed.size(), id.data(), id.size()).ok());
}

}  // namespace
}  // namespace mistore::crypto
