#include "shared/wire/enrolment.h"

#include <sodium.h>

#include <cstring>

#include "shared/core/assert.h"
#include "shared/core/log.h"

namespace mistore::enrol {

namespace {

std::span<const uint8_t> PrologueSpan() {
  return {reinterpret_cast<const uint8_t*>(kEnrolPrologue), sizeof(kEnrolPrologue) - 1};
}

Status Denied(std::string m) { return Status(Code::kPermissionDenied, std::move(m)); }

Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }

// The error carried by a reply Envelope, or Ok.
Status ReplyError(const pb::Envelope& reply) {
  if (!reply.has_error()) return Status::Ok();
  return Status(Code(reply.error().code()), "the DC refused: " + reply.error().message());
}

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

Bytes CaFingerprint(std::span<const uint8_t> ca_public_key) {
  MS_ASSERT(sodium_init() >= 0);
  uint8_t h[32];
  crypto_generichash(h, sizeof h, ca_public_key.data(), ca_public_key.size(), nullptr, 0);
  return Bytes(h, h + kCaFingerprintBytes);
}

Bytes TokenVerifier(const crypto::SecretBytes& secret) {
  MS_ASSERT(sodium_init() >= 0);
  Bytes out(kVerifierBytes);
  crypto_generichash(out.data(), out.size(), secret.data(), secret.size(), nullptr, 0);
  return out;
}

Bytes TokenBinding(const crypto::SecretBytes& secret, std::span<const uint8_t> handshake_hash) {
  MS_ASSERT(sodium_init() >= 0);
  crypto_generichash_state st;
  crypto_generichash_init(&st, secret.data(), secret.size(), kBindingBytes);
  auto p = PrologueSpan();
  crypto_generichash_update(&st, p.data(), p.size());
  crypto_generichash_update(&st, handshake_hash.data(), handshake_hash.size());
  Bytes out(kBindingBytes);
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

Token NewToken(std::span<const uint8_t> ca_public_key) {
  MS_ASSERT(sodium_init() >= 0);
  Token t;
  t.id.resize(kTokenIdBytes);
  randombytes_buf(t.id.data(), t.id.size());
  t.secret = crypto::SecretBytes::Random(kTokenSecretBytes);
  t.ca_fingerprint = CaFingerprint(ca_public_key);
  return t;
}

std::string FormatToken(const Token& t) {
  return std::string(kTokenPrefix) + "." + ToHex(t.id) + "." +
         ToHex(t.secret.data(), t.secret.size()) + "." + ToHex(t.ca_fingerprint);
}

Result<Token> ParseToken(std::string_view text) {
  auto bad = [&](const char* why) {
    return InvalidArgument(std::string("malformed enrolment token (") + why +
                           "); expected mse1.<16 hex>.<32 hex>.<32 hex>");
  };
  const size_t want = sizeof(kTokenPrefix) - 1 + 3 + 2 * (kTokenIdBytes + kTokenSecretBytes +
                                                          kCaFingerprintBytes);
  if (text.size() != want) return bad("wrong length");
  std::string_view parts[4];
  size_t start = 0;
  for (int i = 0; i < 4; i++) {
    size_t dot = i < 3 ? text.find('.', start) : text.size();
    if (dot == std::string_view::npos) return bad("missing '.'");
    parts[i] = text.substr(start, dot - start);
    start = dot + 1;
  }
  if (parts[0] != kTokenPrefix) return bad("unknown version");
  Token t;
  Bytes secret;
  if (parts[1].size() != 2 * kTokenIdBytes || !FromHex(parts[1], &t.id)) return bad("id");
  if (parts[2].size() != 2 * kTokenSecretBytes || !FromHex(parts[2], &secret))
    return bad("secret");
  if (parts[3].size() != 2 * kCaFingerprintBytes || !FromHex(parts[3], &t.ca_fingerprint))
    return bad("CA fingerprint");
  t.secret = crypto::SecretBytes(secret.data(), secret.size());
  sodium_memzero(secret.data(), secret.size());
  return t;
}

// ---- EnrolClient -----------------------------------------------------------

Result<EnrolClient> EnrolClient::Create(ClientParams params, const noise::KeyPair& static_key) {
  const bool enrol = params.token.has_value();
  if (enrol == !params.current_certificate.empty())
    return InvalidArgument("enrolment needs either a token or a current certificate");
  if (!enrol && params.ca_public_key.size() != crypto::kCaPublicKeyBytes)
    return InvalidArgument("renewal needs the DC's CA public key");
  noise::KeyPair key = static_key.Clone();
  MS_ASSIGN_OR_RETURN(noise::HandshakeState hs,
                      noise::HandshakeState::Create("XX", true, PrologueSpan(), &key));
  return EnrolClient(std::move(params), std::move(key), std::move(hs));
}

Status EnrolClient::Fail(Status st) {
  step_ = Step::kFailed;
  hs_.reset();
  transport_ = noise::Transport();
  return st;
}

Result<pb::Envelope> EnrolClient::Start() {
  if (step_ != Step::kStart) return Fail(Internal("enrolment started twice"));
  auto msg1 = hs_->WriteMessage({});
  if (!msg1.ok()) return Fail(msg1.status());
  pb::Envelope env;
  env.mutable_enrol_start()->set_handshake(ToStr(*msg1));
  step_ = Step::kStartReply;
  return env;
}

Result<pb::Envelope> EnrolClient::OnStartReply(const pb::Envelope& reply, uint64_t now_ms) {
  if (step_ != Step::kStartReply) return Fail(Internal("enrolment reply out of order"));
  if (Status st = ReplyError(reply); !st.ok()) return Fail(st);
  if (!reply.has_enrol_start_reply()) return Fail(ProtocolError("DC answered with another message"));
  auto payload = hs_->ReadMessage(ToBytes(reply.enrol_start_reply().handshake()));
  if (!payload.ok()) return Fail(payload.status());
  pb::EnrolDcPayload dc;
  if (!dc.ParseFromArray(payload->data(), int(payload->size())))
    return Fail(ProtocolError("DC handshake payload undecodable"));
  Bytes ca = ToBytes(dc.ca_public_key());
  if (ca.size() != crypto::kCaPublicKeyBytes)
    return Fail(ProtocolError("DC sent a CA key of the wrong length"));
  if (params_.token) {
    if (CaFingerprint(ca) != params_.token->ca_fingerprint)
      return Fail(Denied("the DC's CA key does not match the enrolment token (wrong DC?)"));
  }
  if (!params_.ca_public_key.empty() && ca != params_.ca_public_key)
    return Fail(Denied("the DC's CA key is not the one this node knows"));
  auto cert = crypto::ParseCertificate(ToBytes(dc.certificate()));
  if (!cert.ok()) return Fail(Denied("DC certificate unreadable: " + cert.status().message()));
  if (cert->static_public_key != hs_->remote_static())
    return Fail(Denied("DC certificate is for another key than the one it proved"));
  crypto::CertPolicy policy;
  policy.ca_public_key = ca;
  policy.allowed_roles = {crypto::NodeRole::kDc};
  if (Status st = crypto::VerifyCertificate(*cert, policy, now_ms); !st.ok()) return Fail(st);
  ca_public_key_ = ca;

  auto msg3 = hs_->WriteMessage({});
  if (!msg3.ok()) return Fail(msg3.status());
  const Bytes hh = hs_->handshake_hash();
  auto t = noise::Transport::FromHandshake(*hs_);
  if (!t.ok()) return Fail(t.status());
  transport_ = std::move(t).value();
  hs_.reset();

  pb::EnrolRequest req;
  req.set_role(uint32_t(params_.role));
  if (params_.token) {
    req.set_kind(pb::EnrolRequest::ENROL);
    req.set_token_id(ToStr(params_.token->id));
    req.set_token_secret(std::string(reinterpret_cast<const char*>(params_.token->secret.data()),
                                     params_.token->secret.size()));
    req.set_binding(ToStr(TokenBinding(params_.token->secret, hh)));
  } else {
    req.set_kind(pb::EnrolRequest::RENEW);
    req.set_certificate(ToStr(params_.current_certificate));
  }
  std::string plain = req.SerializeAsString();
  auto sealed = transport_.Encrypt({reinterpret_cast<const uint8_t*>(plain.data()), plain.size()});
  sodium_memzero(plain.data(), plain.size());
  if (!sealed.ok()) return Fail(sealed.status());
  pb::Envelope env;
  env.mutable_enrol_finish()->set_handshake(ToStr(*msg3));
  env.mutable_enrol_finish()->set_sealed_request(ToStr(*sealed));
  step_ = Step::kFinishReply;
  return env;
}

Result<Outcome> EnrolClient::OnFinishReply(const pb::Envelope& reply, uint64_t now_ms) {
  if (step_ != Step::kFinishReply) return Fail(Internal("enrolment reply out of order"));
  if (Status st = ReplyError(reply); !st.ok()) return Fail(st);
  if (!reply.has_enrol_finish_reply())
    return Fail(ProtocolError("DC answered with another message"));
  auto plain = transport_.Decrypt(ToBytes(reply.enrol_finish_reply().sealed_result()));
  if (!plain.ok()) return Fail(Corrupt("DC result failed authentication"));
  pb::EnrolResult res;
  if (!res.ParseFromArray(plain->data(), int(plain->size())))
    return Fail(ProtocolError("DC result undecodable"));
  Outcome out;
  out.certificate_bytes = ToBytes(res.certificate());
  out.ca_public_key = ca_public_key_;
  if (ToBytes(res.ca_public_key()) != ca_public_key_)
    return Fail(Denied("DC result names another CA key than its handshake"));
  auto cert = crypto::ParseCertificate(out.certificate_bytes);
  if (!cert.ok()) return Fail(Denied("issued certificate unreadable: " + cert.status().message()));
  if (cert->static_public_key != key_.public_key)
    return Fail(Denied("issued certificate names another key than this node's"));
  if (cert->role != params_.role)
    return Fail(Denied(std::string("issued certificate is for role ") +
                       crypto::NodeRoleName(cert->role)));
  crypto::CertPolicy policy;
  policy.ca_public_key = ca_public_key_;
  if (Status st = crypto::VerifyCertificate(*cert, policy, now_ms); !st.ok()) return Fail(st);
  out.certificate = std::move(cert).value();
  step_ = Step::kDone;
  transport_ = noise::Transport();
  return out;
}

// ---- EnrolAuthority ----------------------------------------------------------

EnrolAuthority::EnrolAuthority(AuthorityParams params, const crypto::CaKey* ca,
                               std::shared_ptr<const secure::Identity> dc_identity,
                               EnrolStore* store, EnrolStats* stats, uint64_t rng_seed)
    : params_(params),
      ca_(ca),
      dc_identity_(std::move(dc_identity)),
      store_(store),
      stats_(stats),
      rng_state_(rng_seed) {
  MS_ASSERT(ca_ && dc_identity_ && store_ && stats_);
}

Status EnrolAuthority::Refuse(Counter* counter, Status st, const std::string& peer,
                              const std::string& what) {
  counter->Inc();
  MS_WARN("enrol", "enrolment refused",
          "peer=" + peer + " " + what + " code=" + CodeName(st.code()) + " error=\"" +
              st.message() + "\"");
  return st;
}

void EnrolAuthority::OnTick(uint64_t now_ms) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now_ms >= it->second.started_ms + params_.session_timeout_ms)
      it = sessions_.erase(it);
    else
      ++it;
  }
}

Result<pb::Envelope> EnrolAuthority::OnStart(uint64_t session, const pb::EnrolStart& m,
                                             uint64_t now_ms, const std::string& peer) {
  sessions_.erase(session);
  OnTick(now_ms);
  if (sessions_.size() >= params_.sessions_max)
    return Refuse(&stats_->refused_other,
                  ResourceExhausted("too many enrolments in progress (" +
                                    std::to_string(params_.sessions_max) + ")"),
                  peer, "step=start");
  auto hs = noise::HandshakeState::Create("XX", false, PrologueSpan(),
                                          &dc_identity_->static_key);
  if (!hs.ok()) return hs.status();
  auto payload0 = hs->ReadMessage(ToBytes(m.handshake()));
  if (!payload0.ok())
    return Refuse(&stats_->refused_other, ProtocolError("bad handshake message 1"), peer,
                  "step=start");
  if (!payload0->empty())
    return Refuse(&stats_->refused_other, ProtocolError("handshake message 1 carries a payload"),
                  peer, "step=start");
  pb::EnrolDcPayload dc;
  dc.set_ca_public_key(ToStr(ca_->public_key()));
  dc.set_certificate(ToStr(dc_identity_->cert_bytes));
  std::string p = dc.SerializeAsString();
  auto msg2 = hs->WriteMessage({reinterpret_cast<const uint8_t*>(p.data()), p.size()});
  if (!msg2.ok()) return msg2.status();
  sessions_.emplace(session, Session{std::move(hs).value(), now_ms});
  pb::Envelope reply;
  reply.mutable_enrol_start_reply()->set_handshake(ToStr(*msg2));
  return reply;
}

Result<pb::Envelope> EnrolAuthority::OnFinish(uint64_t session, const pb::EnrolFinish& m,
                                              uint64_t now_ms, const std::string& peer) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || now_ms >= it->second.started_ms + params_.session_timeout_ms) {
    sessions_.erase(session);
    return Refuse(&stats_->refused_other,
                  ProtocolError("no enrolment handshake in progress on this connection"), peer,
                  "step=finish");
  }
  noise::HandshakeState hs = std::move(it->second.hs);
  sessions_.erase(it);
  auto payload = hs.ReadMessage(ToBytes(m.handshake()));
  if (!payload.ok() || !hs.Complete())
    return Refuse(&stats_->refused_other, Denied("handshake message 3 failed authentication"),
                  peer, "step=finish");
  const Bytes node_key = hs.remote_static();
  const Bytes hh = hs.handshake_hash();
  auto t = noise::Transport::FromHandshake(hs);
  if (!t.ok()) return t.status();
  noise::Transport transport = std::move(t).value();
  auto plain = transport.Decrypt(ToBytes(m.sealed_request()));
  if (!plain.ok())
    return Refuse(&stats_->refused_other, Denied("enrolment request failed authentication"), peer,
                  "step=finish");
  pb::EnrolRequest req;
  bool parsed = req.ParseFromArray(plain->data(), int(plain->size()));
  sodium_memzero(plain->data(), plain->size());
  if (!parsed)
    return Refuse(&stats_->refused_other, ProtocolError("enrolment request undecodable"), peer,
                  "step=finish");
  switch (req.kind()) {
    case pb::EnrolRequest::ENROL: return Enrol(req, node_key, hh, now_ms, peer, &transport);
    case pb::EnrolRequest::RENEW: return Renew(req, node_key, now_ms, peer, &transport);
    default:
      return Refuse(&stats_->refused_other, ProtocolError("unknown enrolment request kind"), peer,
                    "step=finish");
  }
}

Result<Bytes> EnrolAuthority::Issue(crypto::Certificate* cert, uint64_t now_ms) {
  cert->serial = SplitMix(&rng_state_);
  cert->issued_ms = now_ms;
  cert->expires_ms = now_ms + params_.cert_lifetime_ms;
  return ca_->Sign(cert);
}

Result<pb::Envelope> EnrolAuthority::SealResult(const Bytes& cert, noise::Transport* transport) {
  pb::EnrolResult res;
  res.set_certificate(ToStr(cert));
  res.set_ca_public_key(ToStr(ca_->public_key()));
  std::string p = res.SerializeAsString();
  MS_ASSIGN_OR_RETURN(Bytes sealed,
                      transport->Encrypt({reinterpret_cast<const uint8_t*>(p.data()), p.size()}));
  pb::Envelope reply;
  reply.mutable_enrol_finish_reply()->set_sealed_result(ToStr(sealed));
  return reply;
}

Result<pb::Envelope> EnrolAuthority::Enrol(const pb::EnrolRequest& req, const Bytes& node_key,
                                           const Bytes& hh, uint64_t now_ms,
                                           const std::string& peer, noise::Transport* transport) {
  const Bytes id = ToBytes(req.token_id());
  const std::string what = "token=" + ToHex(id);
  if (id.size() != kTokenIdBytes || req.token_secret().size() != kTokenSecretBytes)
    return Refuse(&stats_->refused_unknown, Denied("unknown enrolment token"), peer, what);
  crypto::SecretBytes secret(reinterpret_cast<const uint8_t*>(req.token_secret().data()),
                             req.token_secret().size());
  auto rec = store_->Find(id);
  if (!rec.ok()) return Refuse(&stats_->refused_other, rec.status(), peer, what);
  const Bytes verifier = TokenVerifier(secret);
  if (!rec->has_value() || (*rec)->verifier.size() != kVerifierBytes ||
      sodium_memcmp(verifier.data(), (*rec)->verifier.data(), kVerifierBytes) != 0)
    return Refuse(&stats_->refused_unknown, Denied("unknown enrolment token"), peer, what);
  const Bytes binding = TokenBinding(secret, hh);
  if (req.binding().size() != kBindingBytes ||
      sodium_memcmp(binding.data(), req.binding().data(), kBindingBytes) != 0)
    return Refuse(&stats_->refused_other,
                  Denied("enrolment proof is not bound to this connection's handshake"), peer,
                  what);
  const TokenRecord& r = **rec;
  if (r.used)
    return Refuse(&stats_->refused_used, Denied("enrolment token already used"), peer, what);
  if (now_ms >= r.expires_ms)
    return Refuse(&stats_->refused_expired, Denied("enrolment token expired"), peer, what);
  if (req.role() != uint32_t(r.role)) {
    std::string asked_name = (req.role() >= 1 && req.role() <= 4)
                                 ? crypto::NodeRoleName(crypto::NodeRole(req.role()))
                                 : std::to_string(req.role());
    return Refuse(&stats_->refused_role,
                  Denied(std::string("enrolment token is for role ") +
                         crypto::NodeRoleName(r.role) + ", not " + asked_name),
                  peer, what);
  }
  MS_ASSIGN_OR_RETURN(uint32_t node_id, store_->AllocateNodeId());
  if (Status st = store_->Consume(id, node_id); !st.ok()) {
    if (st.code() == Code::kAborted)
      return Refuse(&stats_->refused_used, Denied("enrolment token already used"), peer, what);
    return Refuse(&stats_->refused_other, st, peer, what);
  }
  crypto::Certificate cert;
  cert.node_id = node_id;
  cert.role = r.role;
  cert.static_public_key = node_key;
  cert.region = r.region;
  cert.subscriber = r.subscriber;
  MS_ASSIGN_OR_RETURN(Bytes cert_bytes, Issue(&cert, now_ms));
  stats_->enrolled.Inc();
  MS_INFO("enrol", "node enrolled",
          "peer=" + peer + " " + what + " node=" + std::to_string(node_id) +
              " role=" + crypto::NodeRoleName(cert.role) + " region=" + cert.region +
              " expires_ms=" + std::to_string(cert.expires_ms));
  return SealResult(cert_bytes, transport);
}

Result<pb::Envelope> EnrolAuthority::Renew(const pb::EnrolRequest& req, const Bytes& node_key,
                                           uint64_t now_ms, const std::string& peer,
                                           noise::Transport* transport) {
  auto cert = crypto::ParseCertificate(ToBytes(req.certificate()));
  if (!cert.ok())
    return Refuse(&stats_->refused_other, Denied("certificate to renew unreadable"), peer,
                  "step=renew");
  const std::string what = "node=" + std::to_string(cert->node_id) + " step=renew";
  if (cert->static_public_key != node_key)
    return Refuse(&stats_->refused_other,
                  Denied("certificate to renew names another key than the one proven"), peer,
                  what);
  if (store_->IsRevoked(cert->node_id))
    return Refuse(&stats_->refused_revoked, Denied("node is revoked; renewal refused"), peer,
                  what);
  crypto::CertPolicy policy;
  policy.ca_public_key = ca_->public_key();
  if (Status st = crypto::VerifyCertificate(*cert, policy, now_ms); !st.ok())
    return Refuse(&stats_->refused_other, st, peer, what);
  if (cert->role == crypto::NodeRole::kDc)
    return Refuse(&stats_->refused_other, Denied("the DC's certificate is not renewed here"),
                  peer, what);
  crypto::Certificate fresh = *cert;
  fresh.signature.clear();
  MS_ASSIGN_OR_RETURN(Bytes cert_bytes, Issue(&fresh, now_ms));
  stats_->renewed.Inc();
  MS_INFO("enrol", "certificate renewed",
          "peer=" + peer + " " + what + " expires_ms=" + std::to_string(fresh.expires_ms));
  return SealResult(cert_bytes, transport);
}

}  // namespace mistore::enrol
