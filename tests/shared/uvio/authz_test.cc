// The authorization table (shared/uvio/authz.h): which role may send which
// request, and the subscriber / identity scoping of gateways and clients.
#include "shared/uvio/authz.h"

#include <gtest/gtest.h>

namespace mistore {
namespace {

using crypto::NodeRole;
using B = pb::Envelope::BodyCase;

crypto::Certificate Cert(NodeRole role, uint32_t id, std::string subscriber) {
  crypto::Certificate c;
  c.role = role;
  c.node_id = id;
  c.subscriber = std::move(subscriber);
  return c;
}

TEST(AuthzTest, RoleTable) {
  // Gateways: the data path, locks, their own reports.
  for (B b :
       {B::kHello, B::kGetClusterMap, B::kPutChunk, B::kPutCommit, B::kGetVersion, B::kGetChunk,
        B::kListObjects, B::kGetPlacement, B::kHaveChunks, B::kAcquireLock, B::kRenewLock,
        B::kReleaseLock, B::kGatewayHeartbeat, B::kGatewayInventory, B::kFragmentsBad,
        B::kGetChunkFragments, B::kReportForgedFragments})
    EXPECT_TRUE(RoleMayCall(NodeRole::kGateway, b)) << int(b);
  // Issue 3: a client (through a POP) may fetch a chunk's fragments and
  // report forged ones, like GetChunk.
  EXPECT_TRUE(RoleMayCall(NodeRole::kClient, B::kGetChunkFragments));
  EXPECT_TRUE(RoleMayCall(NodeRole::kClient, B::kReportForgedFragments));
  // POP/DC-only: replication, fragments, catalog, map pushes, monitoring.
  for (B b :
       {B::kStoreChunk, B::kCommitVersion, B::kFetchVersion, B::kFetchChunk, B::kFinalizeVersion,
        B::kStoreFragment, B::kFetchFragment, B::kDeleteFragments, B::kGetInventory, B::kClaimName,
        B::kLookupName, B::kReportVersion, B::kClusterMap, B::kMonitorPopSummary}) {
    EXPECT_FALSE(RoleMayCall(NodeRole::kGateway, b)) << int(b);
    EXPECT_FALSE(RoleMayCall(NodeRole::kClient, b)) << int(b);
    EXPECT_TRUE(RoleMayCall(NodeRole::kPop, b)) << int(b);
    EXPECT_TRUE(RoleMayCall(NodeRole::kDc, b)) << int(b);
  }
  // Clients: the data path only, not the gateway's own messages.
  EXPECT_TRUE(RoleMayCall(NodeRole::kClient, B::kPutChunk));
  EXPECT_FALSE(RoleMayCall(NodeRole::kClient, B::kHello));
  EXPECT_FALSE(RoleMayCall(NodeRole::kClient, B::kGatewayHeartbeat));
}

// Read-only sharing (issue 4): a gateway of bob reads alice's shared
// object naming itself as subscriber and alice as owner (the POP checks the
// share); every share request names the requester; writes and locks for
// alice stay refused here whatever is shared; CheckShare is POP/DC only.
TEST(AuthzTest, SharingNamesTheRequesterAndWritesForTheOwnerStayRefused) {
  auto bob = Cert(NodeRole::kGateway, 1002, "bob");
  pb::Envelope e;
  e.mutable_get_version()->set_subscriber("bob");
  e.mutable_get_version()->set_owner("alice");
  EXPECT_TRUE(AuthorizeRequest(bob, e).ok());
  e.mutable_get_chunk()->set_subscriber("bob");
  e.mutable_get_chunk()->set_owner("alice");
  EXPECT_TRUE(AuthorizeRequest(bob, e).ok());
  for (auto set : std::vector<std::function<void(pb::Envelope*, const std::string&)>>{
           [](pb::Envelope* x, const std::string& s) { x->mutable_publish_share_key()->set_subscriber(s); },
           [](pb::Envelope* x, const std::string& s) { x->mutable_get_share_key()->set_subscriber(s); },
           [](pb::Envelope* x, const std::string& s) { x->mutable_put_share()->set_subscriber(s); },
           [](pb::Envelope* x, const std::string& s) { x->mutable_list_shares()->set_subscriber(s); },
       }) {
    pb::Envelope own, other;
    set(&own, "bob");
    set(&other, "alice");
    EXPECT_TRUE(AuthorizeRequest(bob, own).ok()) << int(own.body_case());
    EXPECT_TRUE(RoleMayCall(NodeRole::kClient, own.body_case()));
    EXPECT_EQ(AuthorizeRequest(bob, other).code(), Code::kPermissionDenied) << int(other.body_case());
  }
  for (auto set : std::vector<std::function<void(pb::Envelope*)>>{
           [](pb::Envelope* x) { x->mutable_put_chunk()->set_subscriber("alice"); },
           [](pb::Envelope* x) { x->mutable_put_commit()->set_subscriber("alice"); },
           [](pb::Envelope* x) { x->mutable_acquire_lock()->set_subscriber("alice"); },
           [](pb::Envelope* x) { x->mutable_release_lock()->set_subscriber("alice"); },
           [](pb::Envelope* x) { x->mutable_list_objects()->set_subscriber("alice"); },
       }) {
    pb::Envelope w;
    set(&w);
    EXPECT_EQ(AuthorizeRequest(bob, w).code(), Code::kPermissionDenied) << int(w.body_case());
  }
  EXPECT_FALSE(RoleMayCall(NodeRole::kGateway, B::kCheckShare));
  EXPECT_FALSE(RoleMayCall(NodeRole::kClient, B::kCheckShare));
  EXPECT_TRUE(RoleMayCall(NodeRole::kPop, B::kCheckShare));
}

TEST(AuthzTest, GatewayOnlyForItsSubscriber) {
  auto gw = Cert(NodeRole::kGateway, 1001, "alice");
  pb::Envelope e;
  e.mutable_get_chunk()->set_subscriber("alice");
  EXPECT_TRUE(AuthorizeRequest(gw, e).ok());
  e.mutable_get_chunk()->set_subscriber("bob");
  Status st = AuthorizeRequest(gw, e);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("subscriber 'bob'"), std::string::npos);
  for (auto set : std::vector<std::function<void(pb::Envelope*)>>{
           [](pb::Envelope* x) { x->mutable_put_chunk()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_put_commit()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_get_version()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_list_objects()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_acquire_lock()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_release_lock()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_have_chunks()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_get_chunk_fragments()->set_subscriber("bob"); },
           [](pb::Envelope* x) { x->mutable_report_forged_fragments()->set_subscriber("bob"); }}) {
    pb::Envelope x;
    set(&x);
    EXPECT_EQ(AuthorizeRequest(gw, x).code(), Code::kPermissionDenied) << x.body_case();
  }
  // POPs act for every subscriber.
  EXPECT_TRUE(AuthorizeRequest(Cert(NodeRole::kPop, 2, ""), e).ok());
}

TEST(AuthzTest, GatewayHelloMustMatchItsCertificate) {
  auto gw = Cert(NodeRole::kGateway, 1001, "alice");
  pb::Envelope e;
  auto* h = e.mutable_hello();
  h->set_role(pb::ROLE_GATEWAY);
  h->set_node_id(1001);
  h->set_subscriber("alice");
  EXPECT_TRUE(AuthorizeRequest(gw, e).ok());
  h->set_node_id(1002);
  EXPECT_NE(AuthorizeRequest(gw, e).message().find("claims node 1002"), std::string::npos);
  h->set_node_id(1001);
  h->set_role(pb::ROLE_POP);
  EXPECT_FALSE(AuthorizeRequest(gw, e).ok());
  h->set_role(pb::ROLE_GATEWAY);
  h->set_subscriber("bob");
  EXPECT_FALSE(AuthorizeRequest(gw, e).ok());
}

TEST(AuthzTest, PopOnlyRequestFromGatewayNamesTheRule) {
  pb::Envelope e;
  e.mutable_fetch_fragment();
  Status st = AuthorizeRequest(Cert(NodeRole::kGateway, 1001, "alice"), e);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("not allowed from a gateway"), std::string::npos);
}

}  // namespace
}  // namespace mistore
