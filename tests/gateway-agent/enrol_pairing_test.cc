// Tests for gateway-agent/enrol_pairing: a pairing code is single use and
// expires (fake clock), wrong codes are counted and void the code after
// kPairAttemptsMax, a proof made for another connection's handshake hash is
// refused (a relayed or replayed proof), paired device keys survive a
// restart, the old bearer-credential lines are dropped, the number of paired
// devices is bounded, look-alike characters and separators in a typed code
// are tolerated, and the agent's link key file is created 0600 and refused
// when others can read it.
#include "gateway-agent/enrol_pairing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "shared/store/file_util.h"
#include "shared/wire/device_pairing.h"

namespace mistore {
namespace {

constexpr uint64_t kNow = 1'800'000'000'000ull;

// A connection's handshake hash and the device key it proved (stand-ins:
// the store sees only these bytes).
Bytes Hh(uint8_t fill) { return Bytes(64, fill); }
Bytes Key(uint8_t fill) { return Bytes(32, fill); }
Bytes DeviceProof(const std::string& code, const Bytes& hh) {
  return pairing::Proof(pairing::CodeHash(code), /*from_device=*/true, hh);
}

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

TEST_F(Pairing, CodeIsSingleUseAndDeviceKeyPersists) {
  PairingStore s = Open();
  EXPECT_FALSE(s.any_paired());
  std::string code = s.NewCode(kNow, 300000).value();
  ASSERT_EQ(code.size(), 11u);
  EXPECT_EQ(code[5], '-');
  auto agent_proof =
      s.Redeem(DeviceProof(code, Hh(1)), Hh(1), Key(7), "laptop", kNow + 1000);
  ASSERT_TRUE(agent_proof.ok()) << agent_proof.status().ToString();
  // The agent proves the code back, for this handshake only.
  EXPECT_TRUE(pairing::ProofsEqual(
      *agent_proof,
      pairing::Proof(pairing::CodeHash(code), /*from_device=*/false, Hh(1))));
  EXPECT_FALSE(pairing::ProofsEqual(*agent_proof, DeviceProof(code, Hh(1))));
  EXPECT_TRUE(s.IsPaired(Key(7)));
  EXPECT_FALSE(s.IsPaired(Key(8)));
  EXPECT_TRUE(s.any_paired());
  auto again =
      s.Redeem(DeviceProof(code, Hh(2)), Hh(2), Key(8), "phone", kNow + 2000);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("no pairing code pending"), std::string::npos);
  EXPECT_FALSE(s.IsPaired(Key(8)));
  // A restarted agent knows the device by its key.
  PairingStore s2 = Open();
  EXPECT_TRUE(s2.IsPaired(Key(7)));
  EXPECT_FALSE(s2.IsPaired(Key(8)));
  auto raw = ReadFileBytes(dir_ + "/pairing/devices", 4096).value();
  std::string text(raw.begin(), raw.end());
  EXPECT_EQ(text, "k1 " + ToHex(Key(7)) + " laptop\n");
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/pairing").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST_F(Pairing, ProofForAnotherHandshakeRefusedAndCounted) {
  // A relay (or a recorded PairDevice replayed on another connection) has
  // another handshake hash on the agent's side: the proof does not match.
  PairingStore s = Open();
  std::string code = s.NewCode(kNow, 300000).value();
  auto r = s.Redeem(DeviceProof(code, Hh(1)), Hh(2), Key(7), "relay", kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "wrong pairing code");
  EXPECT_FALSE(s.IsPaired(Key(7)));
  // The code stays pending for the real device (one attempt used).
  EXPECT_TRUE(
      s.Redeem(DeviceProof(code, Hh(3)), Hh(3), Key(9), "real", kNow).ok());
  // An agent proof is no device proof (the labels differ).
  std::string code2 = s.NewCode(kNow, 300000).value();
  Bytes agent_side = pairing::Proof(pairing::CodeHash(code2), false, Hh(4));
  EXPECT_FALSE(s.Redeem(agent_side, Hh(4), Key(10), "x", kNow).ok());
}

TEST_F(Pairing, BearerCredentialLinesDroppedAtOpen) {
  ASSERT_TRUE(MakeDirs(dir_ + "/pairing").ok());
  const std::string old = ToHex(Bytes(32, 0xab)) + " old-laptop\n";
  const std::string now = "k1 " + ToHex(Key(5)) + " new-laptop\n";
  ASSERT_TRUE(
      WriteFileDurable(dir_ + "/pairing/devices",
                       reinterpret_cast<const uint8_t*>((old + now).data()),
                       (old + now).size())
          .ok());
  PairingStore s = Open();
  EXPECT_EQ(s.legacy_dropped(), 1u);
  EXPECT_EQ(s.devices(), 1u);
  EXPECT_TRUE(s.IsPaired(Key(5)));
  auto raw = ReadFileBytes(dir_ + "/pairing/devices", 4096).value();
  EXPECT_EQ(std::string(raw.begin(), raw.end()), now);
  EXPECT_EQ(Open().legacy_dropped(), 0u);  // warned once
}

TEST_F(Pairing, AgentLinkKeyCreatedPrivateAndStable) {
  auto k1 = LoadOrCreateAgentLinkKey(dir_);
  ASSERT_TRUE(k1.ok()) << k1.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/pairing/agent.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  auto k2 = LoadOrCreateAgentLinkKey(dir_);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(k1->public_key, k2->public_key);
  ASSERT_EQ(::chmod((dir_ + "/pairing/agent.key").c_str(), 0644), 0);
  auto k3 = LoadOrCreateAgentLinkKey(dir_);
  ASSERT_FALSE(k3.ok());
  EXPECT_EQ(k3.status().code(), Code::kPermissionDenied);
}

TEST_F(Pairing, LoopbackPeers) {
  EXPECT_TRUE(IsLoopbackPeer("127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopbackPeer("127.1.2.3:1"));
  EXPECT_TRUE(IsLoopbackPeer("[::1]:5000"));
  EXPECT_TRUE(IsLoopbackPeer("[::ffff:127.0.0.1]:5000"));
  EXPECT_FALSE(IsLoopbackPeer("192.168.1.20:5000"));
  EXPECT_FALSE(IsLoopbackPeer("[fe80::1]:5000"));
  EXPECT_FALSE(IsLoopbackPeer("1127.0.0.1:5000"));
  EXPECT_FALSE(IsLoopbackPeer("?"));
}

TEST_F(Pairing, ExpiredCodeRefused) {
  PairingStore s = Open();
  std::string code = s.NewCode(kNow, 300000).value();
  auto r = s.Redeem(DeviceProof(code, Hh(1)), Hh(1), Key(1), "laptop",
                    kNow + 300000);
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
    auto r = s.Redeem(DeviceProof(wrong, Hh(1)), Hh(1), Key(1), "x", kNow);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), "wrong pairing code");
  }
  auto last = s.Redeem(DeviceProof(wrong, Hh(1)), Hh(1), Key(1), "x", kNow);
  EXPECT_NE(last.status().message().find("too many attempts"), std::string::npos);
  // Even the right code is useless now.
  auto right = s.Redeem(DeviceProof(code, Hh(1)), Hh(1), Key(1), "x", kNow);
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
  EXPECT_TRUE(
      s.Redeem(DeviceProof(typed, Hh(1)), Hh(1), Key(1), "phone", kNow).ok());
}

TEST_F(Pairing, PairedDevicesAreBounded) {
  PairingStore s = Open();
  auto redeem = [&](uint8_t key, const std::string& name) {
    std::string code = s.NewCode(kNow, 1000).value();
    return s.Redeem(DeviceProof(code, Hh(key)), Hh(key), Key(key), name, kNow);
  };
  for (size_t i = 0; i < kPairedDevicesMax; i++)
    ASSERT_TRUE(redeem(uint8_t(i), "d" + std::to_string(i)).ok());
  auto r = redeem(200, "one-too-many");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
  // A device already paired may pair again (renamed), even at the limit.
  EXPECT_TRUE(redeem(3, "d3-renamed").ok());
  EXPECT_EQ(Open().devices(), kPairedDevicesMax);
}

}  // namespace
}  // namespace mistore
