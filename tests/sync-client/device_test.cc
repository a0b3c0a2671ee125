// Device enrolment, the device's side (issue 9, sync-client/device.h),
// without a network: an existing certificate is reported and not enrolled
// again; a certificate of another role is not a device's; the configured
// subscriber must be the certificate's; a malformed token and an
// unreachable DC are refused with messages naming them. (The exchange with
// a real DC: tests/system/test_device_pop.py.)
#include "sync-client/device.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "shared/store/file_util.h"

namespace mistore {
namespace {

using crypto::NodeRole;

class DeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mistore-device-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    files_ = {dir_ + "/id/device.key", dir_ + "/id/device.cert",
              dir_ + "/id/ca.pub"};
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }

  // A signed certificate of `role` for `subscriber` in files_.cert.
  void WriteCert(NodeRole role, const std::string& subscriber) {
    crypto::CaKey ca = crypto::CaKey::Generate();
    crypto::Certificate c;
    c.role = role;
    c.node_id = 100042;
    c.issued_ms = 1;
    c.expires_ms = uint64_t(1) << 50;
    c.static_public_key = Bytes(32, 7);
    c.region = "r1";
    c.subscriber = subscriber;
    auto enc = ca.Sign(&c);
    ASSERT_TRUE(enc.ok());
    ASSERT_TRUE(MakeDirs(dir_ + "/id").ok());
    ASSERT_TRUE(WriteFileDurable(files_.cert, enc.value()).ok());
  }

  std::string dir_;
  DeviceIdentityFiles files_;
};

TEST_F(DeviceTest, NotEnrolledIsNotFound) {
  auto c = ReadDeviceCertificate(files_.cert);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kNotFound);
  EXPECT_NE(c.status().message().find("not enrolled"), std::string::npos);
}

TEST_F(DeviceTest, ExistingCertificateIsReportedNotEnrolledAgain) {
  WriteCert(NodeRole::kClient, "alice");
  // An unreachable DC: nothing is dialled when the device is enrolled.
  auto c = EnrollDevice("mse1.bogus", "127.0.0.1:1", files_, "alice");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, 100042u);
  EXPECT_EQ(c->subscriber, "alice");
}

TEST_F(DeviceTest, CertificateOfAnotherSubscriberThanTheConfigIsRefused) {
  WriteCert(NodeRole::kClient, "bob");
  auto c = EnrollDevice("mse1.bogus", "127.0.0.1:1", files_, "alice");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("bob"), std::string::npos);
}

TEST_F(DeviceTest, GatewayCertificateIsNotADevices) {
  WriteCert(NodeRole::kGateway, "alice");
  auto c = ReadDeviceCertificate(files_.cert);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not a device's"), std::string::npos);
  EXPECT_FALSE(EnrollDevice("mse1.bogus", "127.0.0.1:1", files_, "alice").ok());
}

TEST_F(DeviceTest, MalformedTokenAndUnreachableDcAreNamed) {
  auto bad = EnrollDevice("not-a-token", "127.0.0.1:1", files_, "alice");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("malformed enrolment token"),
            std::string::npos);
  EXPECT_FALSE(FileExists(files_.cert));

  const std::string token = "mse1." + std::string(16, 'a') + "." +
                            std::string(32, 'b') + "." + std::string(32, 'c');
  auto down = EnrollDevice(token, "127.0.0.1:1", files_, "alice");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), Code::kUnavailable)
      << down.status().ToString();
  EXPECT_FALSE(FileExists(files_.cert));
}

}  // namespace
}  // namespace mistore
