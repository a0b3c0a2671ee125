#include "pop-server/device_access.h"

#include <string>

#include "shared/wire/envelope.h"

namespace mistore {
namespace {

using B = pb::Envelope::BodyCase;

Status Denied(std::string m) {
  return Status(Code::kPermissionDenied, std::move(m));
}

}  // namespace

bool DeviceMayCall(pb::Envelope::BodyCase body) {
  switch (body) {
    case B::kPutChunk:
    case B::kPutCommit:
    case B::kGetVersion:
    case B::kGetChunk:
    case B::kListObjects:
    case B::kGetPlacement:
    case B::kHaveChunks:
    case B::kReleaseLock:
    case B::kGetChunkFragments:      // issue 3: naming forged fragments
    case B::kReportForgedFragments:
    case B::kPublishShareKey:        // issue 4: read-only sharing
    case B::kGetShareKey:
    case B::kPutShare:
    case B::kListShares:
      return true;
    default:
      return false;
  }
}

Result<Peer> AdmitDevice(uint64_t conn_id, const crypto::Certificate* cert,
                         const pb::Envelope& request) {
  if (!cert)
    return Denied(
        "this POP serves devices only over the secure channel, with a device "
        "certificate: "
        "enrol the device (`mistore enroll TOKEN --dc ADDR`, token from "
        "`mistore-dc enroll "
        "--role client --subscriber S`) or go through your home gateway");
  if (cert->role != crypto::NodeRole::kClient)
    return Denied(std::string("say Hello before anything else (a ") +
                  crypto::NodeRoleName(cert->role) +
                  " certificate is not a device's)");
  if (cert->subscriber.empty() || cert->node_id == 0)
    return Denied("device certificate names no subscriber or node id");
  Peer p;
  p.conn_id = conn_id;
  p.role = pb::ROLE_GATEWAY;  // the core's view: see the header
  p.node_id = cert->node_id;
  p.subscriber = cert->subscriber;
  MS_RETURN_IF_ERROR(CheckDeviceRequest(p, request));
  return p;
}

Status CheckDeviceRequest(const Peer& device, const pb::Envelope& request) {
  if (!DeviceMayCall(request.body_case()))
    return Denied("request type " + std::to_string(int(request.body_case())) +
                  " is not served to devices");
  if (const std::string* s = RequestSubscriber(request);
      s && *s != device.subscriber)
    return Denied("this device acts for subscriber '" + device.subscriber +
                  "', not '" + *s + "'");
  return Status::Ok();
}

}  // namespace mistore
