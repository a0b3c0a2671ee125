// PopCore: read-only sharing (issue 4; docs/security.md "Sharing").
//
// A request of the client data path names the requester's own subscriber
// (the agent, the secure transport's authorization and CheckSubscriber
// insist). A read of an object shared with it also names the object's
// owner (GetVersion.owner / GetChunk.owner). Such a read is served, as if
// the owner's gateway had asked, only if the DC holds the share record
// (owner, oid, requester) - asked once and remembered for
// share_cache_ttl_ms (share_gate.h) - and only as a plain read: by oid,
// never locked. Every refusal is one log line and one count
// (shares_refused_total, added by the daemon to
// mistore_requests_refused_total{reason="unauthorized"}). Writes, locks,
// deletes and listings name no owner: for another subscriber's object they
// stay refused by the subscriber checks.
#include <string>

#include "pop-server/pop_core.h"
#include "shared/core/log.h"

namespace mistore {

namespace {
constexpr size_t kOidBytes = 16;
std::string Hex(const std::string& s) {
  return ToHex(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

bool PopCore::IsSharedRead(const pb::Envelope& req) {
  return (req.has_get_version() && !req.get_version().owner().empty()) ||
         (req.has_get_chunk() && !req.get_chunk().owner().empty());
}

void PopCore::RefuseSharedRead(const Incoming& in, const Peer& from,
                               const std::string& why) {
  shares_refused_total_++;
  MS_WARN("pop", "request refused",
          "gateway=" + std::to_string(from.node_id) +
              " subscriber=" + from.subscriber + " error=\"" + why + "\"");
  ReplyError(in, Status(Code::kPermissionDenied, why));
}

void PopCore::HandleSharedRead(const Incoming& in, const Peer& from,
                               const pb::Envelope& req) {
  const bool is_version = req.has_get_version();
  const std::string& owner =
      is_version ? req.get_version().owner() : req.get_chunk().owner();
  const std::string& subscriber = is_version ? req.get_version().subscriber()
                                             : req.get_chunk().subscriber();
  const std::string& oid =
      is_version ? req.get_version().oid() : req.get_chunk().oid();
  if (Status st = CheckSubscriber(from, subscriber); !st.ok())
    return ReplyError(in, st);
  if (from.role != pb::ROLE_GATEWAY)
    return RefuseSharedRead(in, from,
                            "only a gateway or device reads a shared object");
  if (owner.size() > 128)
    return ReplyError(in, InvalidArgument("owner must be 1..128 characters"));
  if (owner == subscriber) {  // its own object: an ordinary read
    pb::Envelope plain = req;
    if (is_version)
      plain.mutable_get_version()->clear_owner();
    else
      plain.mutable_get_chunk()->clear_owner();
    return OnRequest(now_ms_, from, plain);
  }
  if (oid.size() != kOidBytes)
    return RefuseSharedRead(in, from,
                            "a shared object of subscriber '" + owner +
                                "' is read by its oid only");
  if (is_version && req.get_version().mode() == pb::READ_LOCKED)
    return RefuseSharedRead(in, from,
                            "object " + Hex(oid) + " of subscriber '" + owner +
                                "' is shared read-only: no locked reads");
  if (!is_version && req.get_chunk().lock_id() != 0)
    return RefuseSharedRead(in, from,
                            "object " + Hex(oid) + " of subscriber '" + owner +
                                "' is shared read-only: no locks");
  ShareKey key{owner, oid, subscriber};
  const std::string not_shared = "object " + Hex(oid) + " of subscriber '" +
                                 owner + "' is not shared with " + subscriber;
  switch (share_gate_.Lookup(now_ms_, key)) {
    case ShareGate::Answer::kAllowed:
      return ServeSharedRead(in, from, req);
    case ShareGate::Answer::kRefused:
      return RefuseSharedRead(in, from, not_shared);
    case ShareGate::Answer::kBusy:
      return ReplyError(
          in, Unavailable("too many share checks waiting for the DC; retry"));
    case ShareGate::Answer::kAsk:
      break;
  }
  pb::Envelope ask;
  auto* c = ask.mutable_check_share();
  c->set_owner(owner);
  c->set_oid(oid);
  c->set_grantee(subscriber);
  Call(Dest{Dest::kDc, 0}, ask,
       [this, in, from, req, key, not_shared](Result<pb::Envelope> r) {
         const bool answered =
             r.ok() && !r->has_error() && r->has_check_share_reply();
         const bool shared = answered && r->check_share_reply().shared();
         share_gate_.OnAnswer(now_ms_, key, answered, shared);
         if (!answered)
           return ReplyError(
               in, Unavailable(
                       "cannot check the share at the DC: " +
                       (r.ok() ? r->error().message() : r.status().message())));
         if (!shared) return RefuseSharedRead(in, from, not_shared);
         ServeSharedRead(in, from, req);
       });
}

// Served as the owner's own read: the owner's subscriber in the request and
// on the peer, so every check and lookup below sees the owner's object.
void PopCore::ServeSharedRead(const Incoming& in, const Peer& from,
                              const pb::Envelope& req) {
  shared_reads_total_++;
  pb::Envelope as_owner = req;
  Peer owner_peer = from;
  if (as_owner.has_get_version()) {
    auto* g = as_owner.mutable_get_version();
    owner_peer.subscriber = g->owner();
    g->set_subscriber(g->owner());
    g->clear_owner();
    g->clear_name_key();
    return HandleGetVersion(in, owner_peer, *g);
  }
  auto* g = as_owner.mutable_get_chunk();
  owner_peer.subscriber = g->owner();
  g->set_subscriber(g->owner());
  g->clear_owner();
  HandleGetChunk(in, owner_peer, *g);
}

void PopCore::ForwardShareRequest(const Incoming& in, const Peer& from,
                                  const pb::Envelope& req) {
  const std::string* sub = nullptr;
  switch (req.body_case()) {
    case pb::Envelope::kPublishShareKey:
      sub = &req.publish_share_key().subscriber();
      break;
    case pb::Envelope::kGetShareKey:
      sub = &req.get_share_key().subscriber();
      break;
    case pb::Envelope::kPutShare:
      sub = &req.put_share().subscriber();
      break;
    case pb::Envelope::kListShares:
      sub = &req.list_shares().subscriber();
      break;
    default:
      MS_ASSERT(false);
  }
  if (Status st = CheckSubscriber(from, *sub); !st.ok())
    return ReplyError(in, st);
  if (from.role != pb::ROLE_GATEWAY)
    return ReplyError(in, Status(Code::kPermissionDenied,
                                 "share requests come from gateways"));
  pb::Envelope fwd = req;
  fwd.clear_request_id();
  Call(Dest{Dest::kDc, 0}, fwd, [this, in](Result<pb::Envelope> r) {
    if (!r.ok()) return ReplyError(in, r.status());
    if (r->has_error())
      return ReplyError(in,
                        Status(Code(r->error().code()), r->error().message()));
    pb::Envelope out = std::move(r.value());
    out.clear_request_id();
    out.clear_is_response();
    Reply(in, std::move(out));
  });
}

}  // namespace mistore
