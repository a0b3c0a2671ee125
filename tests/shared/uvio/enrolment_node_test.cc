// Tests for shared/uvio/enrolment_node: the renewal schedule under a fake
// clock (first attempt at the lifetime fraction, backoff after failures,
// never past the expiry), key files refused when group/others may read them
// (the node refuses to start), and PrepareNodeIdentity on an enrolled node:
// the certificate decides the daemon's id/region/subscriber knobs and a
// configuration that contradicts it is refused.
#include "shared/uvio/enrolment_node.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "shared/store/file_util.h"

namespace mistore::enrol {
namespace {

constexpr uint64_t kNow = 1'800'000'000'000ull;

crypto::Certificate CertLife(uint64_t issued, uint64_t expires) {
  crypto::Certificate c;
  c.issued_ms = issued;
  c.expires_ms = expires;
  return c;
}

TEST(RenewalSchedule, FirstAttemptAtTheFraction) {
  RenewalSchedule s(0.66);
  s.OnCertificate(CertLife(kNow, kNow + 100000));
  EXPECT_EQ(s.next_attempt_ms(), kNow + 66000);
  EXPECT_FALSE(s.Due(kNow + 65999));
  EXPECT_TRUE(s.Due(kNow + 66000));
}

TEST(RenewalSchedule, BacksOffAfterFailuresButNeverPastExpiry) {
  RenewalSchedule s(0.5, 1000, 8000);
  s.OnCertificate(CertLife(kNow, kNow + 100000));
  uint64_t now = kNow + 50000;
  std::vector<uint64_t> gaps;
  for (int i = 0; i < 6; i++) {
    s.OnFailure(now);
    gaps.push_back(s.next_attempt_ms() - now);
    now = s.next_attempt_ms();
  }
  EXPECT_EQ(gaps, (std::vector<uint64_t>{1000, 2000, 4000, 8000, 8000, 8000}));
  EXPECT_EQ(s.failures(), 6u);
  // Close to the expiry the retry is squeezed in before it.
  uint64_t late = kNow + 99000;
  s.OnFailure(late);
  EXPECT_LT(s.next_attempt_ms(), kNow + 100000);
  EXPECT_GT(s.next_attempt_ms(), late);
  // A renewed certificate resets the schedule.
  s.OnCertificate(CertLife(kNow + 99500, kNow + 199500));
  EXPECT_EQ(s.failures(), 0u);
  EXPECT_EQ(s.next_attempt_ms(), kNow + 99500 + 50000);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/enrolnodeXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(TempDir, KeyFileReadableByOthersRefused) {
  const std::string path = dir_ + "/node.key";
  noise::KeyPair kp = noise::KeyPair::Generate();
  ASSERT_TRUE(WriteNodeKeyFile(path, kp).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(ReadNodeKeyFile(path).ok());
  for (mode_t mode : {0640, 0604, 0660, 0644}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto r = ReadNodeKeyFile(path);
    ASSERT_FALSE(r.ok()) << std::oct << mode;
    EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
    EXPECT_NE(r.status().message().find("accessible by group or others"), std::string::npos);
  }
}

Config NodeConfig() {
  std::vector<Knob> knobs = {{"data_dir", "", ""}, {"gateway_id", "", "", Knob::kInt},
                             {"subscriber", "", ""}};
  return Config(WithNodeEnrolmentKnobs(WithSecureTransportKnobs(std::move(knobs))));
}

TEST_F(TempDir, EnrolmentRefusesAKeyFileOthersCanRead) {
  // A key left behind with a lax mode: the node refuses to start (before
  // contacting the DC at all: enrolment_dc is unreachable here).
  noise::KeyPair kp = noise::KeyPair::Generate();
  ASSERT_TRUE(WriteNodeKeyFile(dir_ + "/node.key", kp).ok());
  ASSERT_EQ(::chmod((dir_ + "/node.key").c_str(), 0644), 0);
  Config cfg = NodeConfig();
  ASSERT_TRUE(cfg.Set("data_dir", dir_, "test").ok());
  ASSERT_TRUE(cfg.Set("enrolment_dc", "127.0.0.1:1", "test").ok());
  crypto::CaKey ca = crypto::CaKey::FromSeed(Bytes(32, 3)).value();
  ASSERT_TRUE(cfg.Set("enrolment_token", FormatToken(NewToken(ca.public_key())), "test").ok());
  Status st = PrepareNodeIdentity(&cfg, crypto::NodeRole::kGateway, {"gateway_id", "", "subscriber"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("accessible by group or others"), std::string::npos);
  EXPECT_FALSE(FileExists(dir_ + "/node.cert"));
}

TEST_F(TempDir, BadTokenOrMissingDcRefusedWithoutWritingAnything) {
  Config cfg = NodeConfig();
  ASSERT_TRUE(cfg.Set("data_dir", dir_, "test").ok());
  ASSERT_TRUE(cfg.Set("enrolment_token", "mse1.nothex", "test").ok());
  Status st = PrepareNodeIdentity(&cfg, crypto::NodeRole::kGateway, {"gateway_id", "", ""});
  EXPECT_NE(st.message().find("enrolment_dc"), std::string::npos) << st.ToString();
  ASSERT_TRUE(cfg.Set("enrolment_dc", "127.0.0.1:1", "test").ok());
  st = PrepareNodeIdentity(&cfg, crypto::NodeRole::kGateway, {"gateway_id", "", ""});
  EXPECT_NE(st.message().find("malformed enrolment token"), std::string::npos) << st.ToString();
  EXPECT_FALSE(FileExists(dir_ + "/node.key"));
  ASSERT_TRUE(cfg.Set("cert_renew_at_fraction", "1.5", "test").ok());
  st = PrepareNodeIdentity(&cfg, crypto::NodeRole::kGateway, {"gateway_id", "", ""});
  EXPECT_NE(st.message().find("cert_renew_at_fraction"), std::string::npos) << st.ToString();
}

TEST_F(TempDir, UnreachableDcIsAClearError) {
  Config cfg = NodeConfig();
  ASSERT_TRUE(cfg.Set("data_dir", dir_, "test").ok());
  ASSERT_TRUE(cfg.Set("enrolment_dc", "127.0.0.1:1", "test").ok());
  crypto::CaKey ca = crypto::CaKey::FromSeed(Bytes(32, 3)).value();
  ASSERT_TRUE(cfg.Set("enrolment_token", FormatToken(NewToken(ca.public_key())), "test").ok());
  Status st = PrepareNodeIdentity(&cfg, crypto::NodeRole::kGateway, {"gateway_id", "", ""});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("enrolment failed: cannot reach the DC at 127.0.0.1:1"),
            std::string::npos)
      << st.ToString();
  // The key was created (0600) and is reused by the next attempt.
  struct stat s;
  ASSERT_EQ(::stat((dir_ + "/node.key").c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0600u);
}

TEST_F(TempDir, EnrolledNodeTakesItsIdentityFromTheCertificate) {
  crypto::CaKey ca = crypto::CaKey::FromSeed(Bytes(32, 3)).value();
  noise::KeyPair kp = noise::KeyPair::Generate();
  crypto::Certificate c;
  c.node_id = 100007;
  c.role = crypto::NodeRole::kGateway;
  c.issued_ms = kNow;
  c.expires_ms = kNow + 1000;
  c.static_public_key = kp.public_key;
  c.region = "r9";
  c.subscriber = "carol";
  Bytes cert = ca.Sign(&c).value();
  ASSERT_TRUE(WriteNodeKeyFile(dir_ + "/node.key", kp).ok());
  ASSERT_TRUE(WriteFileDurable(dir_ + "/node.cert", cert).ok());
  ASSERT_TRUE(WriteFileDurable(dir_ + "/ca.pub", ca.public_key()).ok());
  Config cfg = NodeConfig();
  ASSERT_TRUE(cfg.Set("data_dir", dir_, "test").ok());
  ASSERT_TRUE(cfg.Set("enrolment_token", "already-redeemed", "test").ok());
  ASSERT_TRUE(PrepareNodeIdentity(&cfg, crypto::NodeRole::kGateway,
                                  {"gateway_id", "", "subscriber"})
                  .ok());
  EXPECT_EQ(cfg.Str("gateway_id"), "100007");
  EXPECT_EQ(cfg.Str("subscriber"), "carol");
  EXPECT_TRUE(cfg.Bool("secure"));
  EXPECT_EQ(cfg.Str("node_cert_file"), dir_ + "/node.cert");
  // A config naming another subscriber contradicts the certificate.
  Config other = NodeConfig();
  ASSERT_TRUE(other.Set("data_dir", dir_, "test").ok());
  ASSERT_TRUE(other.Set("enrolment_token", "already-redeemed", "test").ok());
  ASSERT_TRUE(other.Set("subscriber", "mallory", "test").ok());
  Status st = PrepareNodeIdentity(&other, crypto::NodeRole::kGateway,
                                  {"gateway_id", "", "subscriber"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("certificate says carol"), std::string::npos) << st.ToString();
  // A POP started on a gateway's files is refused.
  Config pop = NodeConfig();
  ASSERT_TRUE(pop.Set("data_dir", dir_, "test").ok());
  ASSERT_TRUE(pop.Set("enrolment_token", "already-redeemed", "test").ok());
  EXPECT_FALSE(PrepareNodeIdentity(&pop, crypto::NodeRole::kPop, {"", "", ""}).ok());
}

}  // namespace
}  // namespace mistore::enrol
