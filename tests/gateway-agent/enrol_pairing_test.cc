// Tests for gateway-agent/enrol_pairing: a pairing code is single use and
// expires (fake clock), wrong codes are counted and void the code after
// kPairAttemptsMax, credentials survive a restart (only their hashes are
// stored), the number of paired devices is bounded, and look-alike
// characters and separators in a typed code are tolerated.
#include "gateway-agent/enrol_pairing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "shared/store/file_util.h"

namespace mistore {
namespace {

constexpr uint64_t kNow = 1'800'000'000'000ull;

class Pairing : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pairingXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  PairingStore Open() { return PairingStore::Open(dir_).value(); }
  std::string dir_;
};

TEST_F(Pairing, CodeIsSingleUseAndCredentialPersists) {
  PairingStore s = Open();
  EXPECT_FALSE(s.any_paired());
  std::string code = s.NewCode(kNow, 300000).value();
  ASSERT_EQ(code.size(), 11u);
  EXPECT_EQ(code[5], '-');
  auto cred = s.Redeem(code, "laptop", kNow + 1000);
  ASSERT_TRUE(cred.ok()) << cred.status().ToString();
  EXPECT_EQ(cred->size(), kPairCredentialBytes);
  EXPECT_TRUE(s.IsPaired(*cred));
  EXPECT_TRUE(s.any_paired());
  auto again = s.Redeem(code, "phone", kNow + 2000);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("no pairing code pending"), std::string::npos);
  // A restarted agent knows the device; the file holds no credential.
  PairingStore s2 = Open();
  EXPECT_TRUE(s2.IsPaired(*cred));
  EXPECT_FALSE(s2.IsPaired(Bytes(kPairCredentialBytes, 0)));
  auto raw = ReadFileBytes(dir_ + "/pairing/devices", 4096).value();
  std::string text(raw.begin(), raw.end());
  EXPECT_EQ(text.find(ToHex(*cred)), std::string::npos);
  EXPECT_NE(text.find("laptop"), std::string::npos);
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/pairing").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST_F(Pairing, ExpiredCodeRefused) {
  PairingStore s = Open();
  std::string code = s.NewCode(kNow, 300000).value();
  auto r = s.Redeem(code, "laptop", kNow + 300000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("pairing code expired"), std::string::npos);
  EXPECT_FALSE(s.any_paired());
}

TEST_F(Pairing, WrongCodesCountedThenTheCodeIsVoid) {
  PairingStore s = Open();
  std::string code = s.NewCode(kNow, 300000).value();
  std::string wrong = code == "00000-00000" ? "11111-11111" : "00000-00000";
  for (int i = 1; i < kPairAttemptsMax; i++) {
    auto r = s.Redeem(wrong, "x", kNow);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), "wrong pairing code");
  }
  auto last = s.Redeem(wrong, "x", kNow);
  EXPECT_NE(last.status().message().find("too many attempts"), std::string::npos);
  // Even the right code is useless now.
  auto right = s.Redeem(code, "x", kNow);
  ASSERT_FALSE(right.ok());
  EXPECT_NE(right.status().message().find("no pairing code pending"), std::string::npos);
}

TEST_F(Pairing, TypedCodeToleratesCaseSeparatorsAndLookAlikes) {
  PairingStore s = Open();
  std::string code = s.NewCode(kNow, 300000).value();
  std::string typed;
  for (char c : code) {
    if (c == '-') continue;
    typed.push_back(c == '0' ? 'o' : c == '1' ? 'l' : char(std::tolower(c)));
  }
  typed.insert(3, " ");
  EXPECT_TRUE(s.Redeem(typed, "phone", kNow).ok());
}

TEST_F(Pairing, PairedDevicesAreBounded) {
  PairingStore s = Open();
  for (size_t i = 0; i < kPairedDevicesMax; i++)
    ASSERT_TRUE(s.Redeem(s.NewCode(kNow, 1000).value(), "d" + std::to_string(i), kNow).ok());
  auto r = s.Redeem(s.NewCode(kNow, 1000).value(), "one-too-many", kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(Open().devices(), kPairedDevicesMax);
}

}  // namespace
}  // namespace mistore
