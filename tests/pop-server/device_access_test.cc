// Devices working directly through a POP (issue 9, device_access.h): only a
// verified client certificate admits a device; the core sees it as a
// gateway-role peer with the certificate's node id and subscriber; requests
// naming another subscriber, and anything but the client data path, are
// refused.
#include "pop-server/device_access.h"

#include <gtest/gtest.h>

namespace mistore {
namespace {

using crypto::Certificate;
using crypto::NodeRole;

Certificate DeviceCert(const std::string& subscriber,
                       uint32_t node_id = 100007) {
  Certificate c;
  c.role = NodeRole::kClient;
  c.node_id = node_id;
  c.subscriber = subscriber;
  return c;
}

pb::Envelope ListFor(const std::string& subscriber) {
  pb::Envelope e;
  e.mutable_list_objects()->set_subscriber(subscriber);
  return e;
}

TEST(DeviceAccess, PlaintextConnectionIsRefusedWithTheFix) {
  auto p = AdmitDevice(3, nullptr, ListFor("alice"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kPermissionDenied);
  EXPECT_NE(p.status().message().find("secure channel"), std::string::npos);
  EXPECT_NE(p.status().message().find("mistore enroll"), std::string::npos);
}

TEST(DeviceAccess, ClientCertificateAdmitsItsSubscriberAsGatewayRolePeer) {
  Certificate c = DeviceCert("alice");
  auto p = AdmitDevice(3, &c, ListFor("alice"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->conn_id, 3u);
  EXPECT_EQ(p->role, pb::ROLE_GATEWAY);
  EXPECT_EQ(p->node_id, 100007u);
  EXPECT_EQ(p->subscriber, "alice");
}

TEST(DeviceAccess, AnotherSubscriberIsRefusedAtAdmissionAndLater) {
  Certificate c = DeviceCert("bob");
  auto p = AdmitDevice(3, &c, ListFor("alice"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kPermissionDenied);
  EXPECT_NE(p.status().message().find("'bob', not 'alice'"), std::string::npos);

  auto ok = AdmitDevice(3, &c, ListFor("bob"));
  ASSERT_TRUE(ok.ok());
  pb::Envelope put;
  put.mutable_put_commit()->set_subscriber("alice");
  EXPECT_EQ(CheckDeviceRequest(ok.value(), put).code(),
            Code::kPermissionDenied);
  put.mutable_put_commit()->set_subscriber("bob");
  EXPECT_TRUE(CheckDeviceRequest(ok.value(), put).ok());
  // Issue 3: the fragment fetch and the forgery report name a subscriber too.
  pb::Envelope frag;
  frag.mutable_get_chunk_fragments()->set_subscriber("alice");
  EXPECT_EQ(CheckDeviceRequest(ok.value(), frag).code(), Code::kPermissionDenied);
  pb::Envelope rep;
  rep.mutable_report_forged_fragments()->set_subscriber("alice");
  EXPECT_EQ(CheckDeviceRequest(ok.value(), rep).code(), Code::kPermissionDenied);
  rep.mutable_report_forged_fragments()->set_subscriber("bob");
  EXPECT_TRUE(CheckDeviceRequest(ok.value(), rep).ok());
}

TEST(DeviceAccess, OtherRolesCertificatesAreNotDevices) {
  for (NodeRole r : {NodeRole::kGateway, NodeRole::kPop, NodeRole::kDc}) {
    Certificate c = DeviceCert("alice");
    c.role = r;
    auto p = AdmitDevice(3, &c, ListFor("alice"));
    ASSERT_FALSE(p.ok()) << int(r);
    EXPECT_NE(p.status().message().find("Hello"), std::string::npos);
  }
  Certificate nobody = DeviceCert("");
  EXPECT_FALSE(AdmitDevice(3, &nobody, ListFor("")).ok());
}

TEST(DeviceAccess, OnlyTheClientDataPath) {
  using B = pb::Envelope::BodyCase;
  for (B b :
       {B::kPutChunk, B::kPutCommit, B::kGetVersion, B::kGetChunk,
        B::kListObjects, B::kGetPlacement, B::kHaveChunks, B::kReleaseLock,
        B::kGetChunkFragments, B::kReportForgedFragments, B::kPublishShareKey,
        B::kGetShareKey, B::kPutShare, B::kListShares})
    EXPECT_TRUE(DeviceMayCall(b)) << int(b);
  // Issue 4: share requests only for the device's own subscriber; never
  // the POP-to-DC CheckShare.
  EXPECT_FALSE(DeviceMayCall(B::kCheckShare));
  {
    Certificate bob = DeviceCert("bob");
    pb::Envelope own, other;
    own.mutable_list_shares()->set_subscriber("bob");
    other.mutable_put_share()->set_subscriber("alice");
    EXPECT_TRUE(AdmitDevice(5, &bob, own).ok());
    EXPECT_EQ(AdmitDevice(6, &bob, other).status().code(), Code::kPermissionDenied);
  }
  for (B b : {B::kHello, B::kGatewayHeartbeat, B::kGatewayInventory,
              B::kFragmentsBad, B::kStoreFragment, B::kFetchFragment,
              B::kClusterMap, B::kGetClusterMap})
    EXPECT_FALSE(DeviceMayCall(b)) << int(b);
  Certificate c = DeviceCert("alice");
  auto p = AdmitDevice(3, &c, ListFor("alice"));
  ASSERT_TRUE(p.ok());
  pb::Envelope hb;
  hb.mutable_gateway_heartbeat();
  EXPECT_EQ(CheckDeviceRequest(p.value(), hb).code(), Code::kPermissionDenied);
  EXPECT_FALSE(AdmitDevice(4, &c, hb).ok());
}

}  // namespace
}  // namespace mistore
