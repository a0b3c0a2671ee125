// Device access (issue 9, `mistore --pop ADDR`): a subscriber's device away
// from home works directly through a POP instead of its home gateway agent.
// The POP daemon (pop_main.cc) asks this module, for a connection that has
// not said Hello, whether the device behind it may be served and what the
// core (PopCore) is to see of it.
//
// The rule: a device must prove which subscriber it acts for, and only the
// secure channel can prove it. A device enrolled with a one-time token
// (`mistore-dc enroll --role client --subscriber S`, then `mistore enroll
// TOKEN --dc ADDR`) holds a key and a DC-signed certificate of role client
// naming S; the Noise handshake proved the key, so the certificate is who
// the device is. The POP then serves it exactly as a gateway agent serves
// the devices of its subscriber:
//  - only the client data path (DeviceMayCall: put/get chunks and commits,
//    versions, lists, placement, dedup queries, locks, and the share
//    requests of read-only sharing, issue 4) - never a gateway's
//    or a POP's own messages;
//  - every request that names a subscriber must name S (the secure
//    transport's authorization, shared/uvio/authz.h, checks it first; this
//    module checks again so the rule does not depend on that layer);
//  - the core sees a Peer of role gateway whose node id is the device's
//    certificate node id and whose subscriber is S: the core's gateway rules
//    (subscriber scoping of commits, reads, placement and lock release) are
//    exactly the device's, and the creator id in a new object's oid is the
//    device's node id (node ids are unique in the cluster: the DC assigns
//    them at enrolment), so (primary POP, creator, counter) stays unique.
//    The device is never registered as a gateway (no fragments, heartbeats
//    or held-result delivery go to it).
// A plaintext POP (`secure` off) cannot tell who a device acts for, so it
// serves no device: the refusal names the fix. (A plaintext lab trusts the
// Hello of its gateways; that is why production runs `secure`.)
//
// Ownership: pure functions over their arguments. Threads: any.
#pragma once

#include <cstdint>

#include "pop-server/pop_core.h"
#include "shared/core/status.h"
#include "shared/crypto/cert.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

// The requests a device may send to a POP (the agent's relayed set).
bool DeviceMayCall(pb::Envelope::BodyCase body);

// A connection `conn_id` that has not said Hello sends `request`. `cert` is
// the peer's verified certificate (null on a plaintext connection). Returns
// the Peer the core is to see, or kPermissionDenied naming why and the fix.
Result<Peer> AdmitDevice(uint64_t conn_id, const crypto::Certificate* cert,
                         const pb::Envelope& request);

// Each later request of an admitted device: allowed type, and the
// subscriber it names (if any) is the device's.
Status CheckDeviceRequest(const Peer& device, const pb::Envelope& request);

}  // namespace mistore
