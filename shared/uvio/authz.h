// Authorization of incoming requests on secure connections (issue 4): which
// node roles may send which request, and the subscriber scoping of gateways
// and clients. Pure functions over the peer's verified certificate
// (shared/crypto/cert.h) and the request Envelope; Connection applies them
// to every request that arrives on a secure connection before the daemon's
// handler sees it, answers a refusal with kPermissionDenied, logs and counts
// it, and keeps the connection open. Plain connections are not checked.
//
// The table (RoleMayCall):
//   POPs and the DC        every request (the cluster's own nodes).
//   gateways               hello, get_cluster_map, the client data path
//                          relayed by the agent (put_chunk, put_commit,
//                          get_version, get_chunk, list_objects,
//                          get_placement, have_chunks), locks (acquire,
//                          renew, release) and the gateway's own reports
//                          (gateway_heartbeat, gateway_inventory,
//                          fragments_bad). Everything else - replication,
//                          fragment store/fetch/delete, catalog, cluster
//                          map pushes, monitoring - is POP/DC-only.
//                          The client data path includes the requester's
//                          share requests (publish_share_key,
//                          get_share_key, put_share, list_shares; issue 4).
//   clients                the client data path and locks only.
// Scoping (CheckScope), gateways and clients: a request that names a
// subscriber must name the certificate's subscriber; a gateway's Hello must
// carry its certificate's node id and subscriber and the gateway role.
// Read-only sharing (issue 4): a read of an object shared with the
// requester names the requester as `subscriber` (checked here) and the
// object's owner in `owner`; the POP serves it only under a share record at
// the DC (pop-server/pop_share.cc). A write, lock or delete naming another
// subscriber is refused here whatever is shared.
//
// Threads: pure, any thread.
#pragma once

#include "shared/core/status.h"
#include "shared/crypto/cert.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

bool RoleMayCall(crypto::NodeRole role, pb::Envelope::BodyCase body);
// RoleMayCall, then the subscriber/identity scoping. kPermissionDenied with
// a message naming the rule on refusal.
Status AuthorizeRequest(const crypto::Certificate& peer, const pb::Envelope& request);

}  // namespace mistore
