#include "shared/uvio/authz.h"

#include <string>

#include "shared/wire/envelope.h"

namespace mistore {

namespace {

using B = pb::Envelope::BodyCase;

bool ClientDataPath(B b) {
  switch (b) {
    case B::kPutChunk:
    case B::kPutCommit:
    case B::kGetVersion:
    case B::kGetChunk:
    case B::kGetChunkFragments:
    case B::kReportForgedFragments:
    case B::kListObjects:
    case B::kGetPlacement:
    case B::kHaveChunks:
    case B::kAcquireLock:
    case B::kRenewLock:
    case B::kReleaseLock:
    // Read-only sharing (issue 4): the requester's own key and shares.
    case B::kPublishShareKey:
    case B::kGetShareKey:
    case B::kPutShare:
    case B::kListShares:
      return true;
    default:
      return false;
  }
}

bool GatewayOwn(B b) {
  switch (b) {
    case B::kHello:
    case B::kGetClusterMap:
    case B::kGatewayHeartbeat:
    case B::kGatewayInventory:
    case B::kFragmentsBad:
      return true;
    default:
      return false;
  }
}

Status Denied(std::string m) { return Status(Code::kPermissionDenied, std::move(m)); }

}  // namespace

bool RoleMayCall(crypto::NodeRole role, pb::Envelope::BodyCase body) {
  switch (role) {
    case crypto::NodeRole::kPop:
    case crypto::NodeRole::kDc:
      return true;
    case crypto::NodeRole::kGateway:
      return ClientDataPath(body) || GatewayOwn(body);
    case crypto::NodeRole::kClient:
      return ClientDataPath(body);
  }
  return false;
}

Status AuthorizeRequest(const crypto::Certificate& peer, const pb::Envelope& request) {
  const B body = request.body_case();
  if (!RoleMayCall(peer.role, body))
    return Denied(std::string("request type ") + std::to_string(int(body)) +
                  " is not allowed from a " + crypto::NodeRoleName(peer.role));
  if (peer.role != crypto::NodeRole::kGateway && peer.role != crypto::NodeRole::kClient)
    return Status::Ok();
  if (const std::string* s = RequestSubscriber(request); s && *s != peer.subscriber)
    return Denied("subscriber '" + *s + "' is not this " + crypto::NodeRoleName(peer.role) +
                  "'s (" + peer.subscriber + ")");
  if (body == B::kHello) {
    if (request.hello().node_id() != peer.node_id)
      return Denied("hello claims node " + std::to_string(request.hello().node_id()) +
                    ", the certificate is for node " + std::to_string(peer.node_id));
    if (peer.role == crypto::NodeRole::kGateway && request.hello().role() != pb::ROLE_GATEWAY)
      return Denied("hello claims another role than the certificate's gateway");
  }
  return Status::Ok();
}

}  // namespace mistore
