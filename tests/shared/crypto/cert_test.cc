// Tests for shared/crypto/cert: canonical encoding (known answer), sign and
// verify, every refusal of VerifyCertificate, bounded parsing.
#include "shared/crypto/cert.h"

#include <gtest/gtest.h>
#include <sodium.h>

namespace mistore::crypto {
namespace {

Bytes Seq(size_t n, uint8_t start) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(start + i);
  return b;
}

Certificate Sample() {
  Certificate c;
  c.node_id = 0x01020304;
  c.role = NodeRole::kGateway;
  c.serial = 0x1122334455667788ull;
  c.issued_ms = 1000;
  c.expires_ms = 0x0102030405060708ull;
  c.static_public_key = Seq(32, 0xa0);
  c.region = "eu";
  c.subscriber = "alice";
  return c;
}

CaKey TestCa(uint8_t fill = 7) {
  Bytes seed(32, fill);
  return std::move(CaKey::FromSeed(seed)).value();
}

TEST(CertTest, ToBeSignedEncodingIsCanonicalLittleEndian) {
  auto tbs = Sample().EncodeToBeSigned();
  ASSERT_TRUE(tbs.ok());
  std::string expect =
      "4d534354"          // "MSCT"
      "01"                // version
      "01"                // role gateway
      "04030201"          // node id
      "8877665544332211"  // serial
      "e803000000000000"  // issued 1000
      "0807060504030201"  // expires
      "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
      "02"
      "6575"  // "eu"
      "05"
      "616c696365";  // "alice"
  EXPECT_EQ(ToHex(*tbs), expect);
  EXPECT_EQ(tbs->size(), kCertFixedBytes + 2 + 5);
}

TEST(CertTest, SignatureIsEd25519OverTheEncodingAndRoundTrips) {
  CaKey ca = TestCa();
  Certificate c = Sample();
  auto enc = ca.Sign(&c);
  ASSERT_TRUE(enc.ok());
  ASSERT_EQ(enc->size(), kCertFixedBytes + 7 + 64);
  // Independent check with libsodium directly.
  EXPECT_EQ(crypto_sign_verify_detached(enc->data() + enc->size() - 64, enc->data(),
                                        enc->size() - 64, ca.public_key().data()),
            0);
  // Deterministic (Ed25519): the same key and fields give the same bytes.
  Certificate c2 = Sample();
  EXPECT_EQ(ca.Sign(&c2).value(), *enc);
  auto parsed = ParseCertificate(*enc);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->node_id, c.node_id);
  EXPECT_EQ(parsed->role, NodeRole::kGateway);
  EXPECT_EQ(parsed->serial, c.serial);
  EXPECT_EQ(parsed->expires_ms, c.expires_ms);
  EXPECT_EQ(parsed->region, "eu");
  EXPECT_EQ(parsed->subscriber, "alice");
  EXPECT_EQ(parsed->static_public_key, c.static_public_key);
  EXPECT_EQ(parsed->Encode().value(), *enc);
}

TEST(CertTest, CaKeyFromSecretKeyChecksThePublicHalf) {
  CaKey ca = TestCa();
  Bytes sk(ca.secret_key().data(), ca.secret_key().data() + 64);
  auto again = CaKey::FromSecretKey(sk);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key(), ca.public_key());
  sk[40] ^= 1;
  EXPECT_EQ(CaKey::FromSecretKey(sk).status().code(), Code::kCorrupt);
  EXPECT_FALSE(CaKey::FromSecretKey(Bytes(10)).ok());
}

class VerifyTest : public ::testing::Test {
 protected:
  CaKey ca = TestCa();
  Certificate cert = Sample();
  CertPolicy policy;
  void SetUp() override {
    ASSERT_TRUE(ca.Sign(&cert).ok());
    policy.ca_public_key = ca.public_key();
    policy.allowed_roles = {NodeRole::kGateway};
  }
};

TEST_F(VerifyTest, ValidCertificatePasses) {
  EXPECT_TRUE(VerifyCertificate(cert, policy, 5000).ok());
}

TEST_F(VerifyTest, WrongCaRefused) {
  policy.ca_public_key = TestCa(8).public_key();
  Status st = VerifyCertificate(cert, policy, 5000);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("signature invalid"), std::string::npos);
}

TEST_F(VerifyTest, AnyModifiedFieldBreaksTheSignature) {
  Certificate c = cert;
  c.subscriber = "bob";
  EXPECT_EQ(VerifyCertificate(c, policy, 5000).code(), Code::kPermissionDenied);
  c = cert;
  c.expires_ms += 1;
  EXPECT_EQ(VerifyCertificate(c, policy, 5000).code(), Code::kPermissionDenied);
  c = cert;
  c.static_public_key[0] ^= 1;
  EXPECT_EQ(VerifyCertificate(c, policy, 5000).code(), Code::kPermissionDenied);
}

TEST_F(VerifyTest, WrongRoleRefused) {
  policy.allowed_roles = {NodeRole::kPop};
  Status st = VerifyCertificate(cert, policy, 5000);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("role gateway not accepted"), std::string::npos);
  policy.allowed_roles = {};
  EXPECT_TRUE(VerifyCertificate(cert, policy, 5000).ok());
}

TEST_F(VerifyTest, ExpiryIsExclusive) {
  EXPECT_TRUE(VerifyCertificate(cert, policy, cert.expires_ms - 1).ok());
  Status st = VerifyCertificate(cert, policy, cert.expires_ms);
  EXPECT_NE(st.message().find("expired"), std::string::npos);
}

TEST_F(VerifyTest, IssuedInTheFutureRefused) {
  Certificate c = Sample();
  c.issued_ms = 10 * 60 * 1000 + 5000;
  ASSERT_TRUE(ca.Sign(&c).ok());
  EXPECT_FALSE(VerifyCertificate(c, policy, 5000).ok());
  EXPECT_TRUE(VerifyCertificate(c, policy, 6 * 60 * 1000).ok());
}

TEST_F(VerifyTest, RevokedRefused) {
  std::set<uint32_t> revoked = {7, cert.node_id};
  policy.revoked_node_ids = &revoked;
  Status st = VerifyCertificate(cert, policy, 5000);
  EXPECT_NE(st.message().find("revoked"), std::string::npos);
  revoked.erase(cert.node_id);
  EXPECT_TRUE(VerifyCertificate(cert, policy, 5000).ok());
}

TEST_F(VerifyTest, ExpectedNodeId) {
  policy.expected_node_id = cert.node_id + 1;
  EXPECT_FALSE(VerifyCertificate(cert, policy, 5000).ok());
  policy.expected_node_id = cert.node_id;
  EXPECT_TRUE(VerifyCertificate(cert, policy, 5000).ok());
}

TEST_F(VerifyTest, ParserRejectsEveryTruncationAndExtension) {
  Bytes enc = cert.Encode().value();
  for (size_t n = 0; n < enc.size(); n++) {
    EXPECT_FALSE(ParseCertificate(std::span<const uint8_t>(enc.data(), n)).ok()) << n;
  }
  Bytes longer = enc;
  longer.push_back(0);
  EXPECT_EQ(ParseCertificate(longer).status().code(), Code::kCorrupt);
  Bytes bad = enc;
  bad[4] = 2;  // version
  EXPECT_FALSE(ParseCertificate(bad).ok());
  bad = enc;
  bad[5] = 9;  // role
  EXPECT_FALSE(ParseCertificate(bad).ok());
  bad = enc;
  bad[0] = 'X';
  EXPECT_FALSE(ParseCertificate(bad).ok());
  EXPECT_FALSE(ParseCertificate(Bytes(kCertBytesMax + 1, 0)).ok());
}

TEST(CertTest, EncodeRejectsOutOfRangeFields) {
  Certificate c = Sample();
  c.region.assign(65, 'x');
  EXPECT_EQ(c.EncodeToBeSigned().status().code(), Code::kInvalidArgument);
  c = Sample();
  c.static_public_key.resize(31);
  EXPECT_FALSE(c.EncodeToBeSigned().ok());
  c = Sample();
  EXPECT_FALSE(c.Encode().ok());  // unsigned
}

TEST(CertTest, RoleNames) {
  for (NodeRole r : {NodeRole::kGateway, NodeRole::kPop, NodeRole::kDc, NodeRole::kClient})
    EXPECT_EQ(ParseNodeRole(NodeRoleName(r)).value(), r);
  EXPECT_FALSE(ParseNodeRole("admin").ok());
}

}  // namespace
}  // namespace mistore::crypto
