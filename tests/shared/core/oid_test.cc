#include "shared/core/oid.h"

#include <gtest/gtest.h>

#include <string>

namespace mistore {
namespace {

Oid Sample() {
  Oid o;
  o.primary_pop = 0x11223344;
  o.backup_pop = 0x55667788;
  o.gateway = 0x99aabbcc;
  o.counter = 0xddeeff01;
  return o;
}

TEST(OidTest, EncodeIs16BytesLittleEndianInFieldOrder) {
  const Bytes want = {0x44, 0x33, 0x22, 0x11,   // primary
                      0x88, 0x77, 0x66, 0x55,   // backup
                      0xcc, 0xbb, 0xaa, 0x99,   // gateway
                      0x01, 0xff, 0xee, 0xdd};  // counter
  EXPECT_EQ(Sample().Encode(), want);
}

TEST(OidTest, EncodeSmallValuesKnownAnswer) {
  Oid o;
  o.primary_pop = 1;
  o.backup_pop = 2;
  o.gateway = 3;
  o.counter = 256;
  const Bytes want = {1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0};
  EXPECT_EQ(o.Encode(), want);
}

TEST(OidTest, HexIsHexOfEncoding) {
  EXPECT_EQ(Sample().Hex(), "4433221188776655ccbbaa9901ffeedd");
  EXPECT_EQ(Oid{}.Hex(), std::string(32, '0'));
}

TEST(OidTest, DecodeInvertsEncode) {
  auto d = Oid::Decode(Sample().Encode());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, Sample());
  const Bytes enc = Sample().Encode();
  auto s = Oid::Decode(std::string(enc.begin(), enc.end()));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->primary_pop, 0x11223344u);
  EXPECT_EQ(s->backup_pop, 0x55667788u);
  EXPECT_EQ(s->gateway, 0x99aabbccu);
  EXPECT_EQ(s->counter, 0xddeeff01u);
}

TEST(OidTest, FromHexRoundTrip) {
  auto o = Oid::FromHex(Sample().Hex());
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(*o, Sample());
  auto upper = Oid::FromHex("4433221188776655CCBBAA9901FFEEDD");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(*upper, Sample());
}

TEST(OidTest, DecodeRejectsWrongLengths) {
  for (size_t n : {0, 1, 15, 17, 32}) {
    auto r = Oid::Decode(Bytes(n, 0));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    auto s = Oid::Decode(std::string(n, 'x'));
    EXPECT_FALSE(s.ok()) << n;
  }
}

TEST(OidTest, FromHexRejectsWrongLengthsAndBadHex) {
  const std::string good = Sample().Hex();
  for (const std::string& bad :
       {std::string(), good.substr(0, 31), good.substr(0, 30), good + "0", good + "00",
        std::string(34, 'a'), "g" + good.substr(1), good.substr(0, 31) + "z",
        good.substr(0, 16) + " " + good.substr(17)}) {
    auto r = Oid::FromHex(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "'";
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  }
}

TEST(OidTest, OrderingFollowsFieldOrder) {
  Oid a = Sample(), b = Sample();
  b.counter++;
  EXPECT_LT(a, b);
  b = Sample();
  b.primary_pop--;
  EXPECT_GT(a, b);
  EXPECT_EQ(a, Sample());
}

}  // namespace
}  // namespace mistore
