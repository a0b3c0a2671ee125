// Tests for shared/wire/enrolment: the node's EnrolClient against the DC's
// EnrolAuthority over an in-memory EnrolStore, with a fixed clock: a token
// redeemed once (node id assigned, certificate names the node's key, role,
// region, subscriber), refusals of reused, expired, wrong-role, unknown and
// wrong-secret tokens (each counted), a DC whose CA does not match the token,
// a proof replayed on another connection, the session bound, and renewal
// (same id, later expiry; refused when revoked, expired or for another key).
#include "shared/wire/enrolment.h"

#include <gtest/gtest.h>

#include <set>

namespace mistore::enrol {
namespace {

using crypto::CaKey;
using crypto::NodeRole;

constexpr uint64_t kNow = 1'800'000'000'000ull;

class MemStore : public EnrolStore {
 public:
  Result<std::optional<TokenRecord>> Find(const Bytes& id) override {
    auto it = tokens.find(id);
    if (it == tokens.end()) return std::optional<TokenRecord>();
    return std::optional<TokenRecord>(it->second);
  }
  Status Consume(const Bytes& id, uint32_t node_id) override {
    auto it = tokens.find(id);
    if (it == tokens.end()) return NotFound("no token");
    if (it->second.used) return Status(Code::kAborted, "already used");
    it->second.used = true;
    consumed_by[id] = node_id;
    return Status::Ok();
  }
  Result<uint32_t> AllocateNodeId() override { return next_id++; }
  bool IsRevoked(uint32_t id) override { return revoked.count(id) > 0; }

  std::map<Bytes, TokenRecord> tokens;
  std::map<Bytes, uint32_t> consumed_by;
  std::set<uint32_t> revoked;
  uint32_t next_id = 100000;
};

struct Dc {
  CaKey ca;
  MemStore store;
  EnrolStats stats;
  std::unique_ptr<EnrolAuthority> auth;
  uint64_t next_session = 1;

  explicit Dc(AuthorityParams params = {}, uint8_t ca_seed = 7)
      : ca(CaKey::FromSeed(Bytes(32, ca_seed)).value()) {
    noise::KeyPair kp = noise::KeyPair::Generate();
    crypto::Certificate c;
    c.node_id = 0;
    c.role = NodeRole::kDc;
    c.issued_ms = kNow - 1000;
    c.expires_ms = kNow + 365ull * 24 * 3600 * 1000;
    c.static_public_key = kp.public_key;
    c.region = "dc";
    Bytes enc = ca.Sign(&c).value();
    auto id = std::make_shared<secure::Identity>(
        secure::Identity::Create(std::move(kp), enc).value());
    auth = std::make_unique<EnrolAuthority>(params, &ca, id, &store, &stats, /*seed=*/42);
  }

  // `mistore-dc enroll`: a token whose verifier the store keeps.
  std::string NewTokenText(NodeRole role, std::string region, std::string subscriber,
                           uint64_t expires_ms = kNow + 3600'000) {
    Token t = NewToken(ca.public_key());
    TokenRecord r;
    r.verifier = TokenVerifier(t.secret);
    r.role = role;
    r.region = std::move(region);
    r.subscriber = std::move(subscriber);
    r.expires_ms = expires_ms;
    store.tokens[t.id] = r;
    return FormatToken(t);
  }

  // Runs the whole exchange for a client; returns its outcome.
  Result<Outcome> Run(EnrolClient& client, uint64_t now = kNow) {
    uint64_t session = next_session++;
    MS_ASSIGN_OR_RETURN(pb::Envelope start, client.Start());
    pb::Envelope reply = Answer(session, start, now);
    MS_ASSIGN_OR_RETURN(pb::Envelope finish, client.OnStartReply(reply, now));
    pb::Envelope reply2 = Answer(session, finish, now);
    return client.OnFinishReply(reply2, now);
  }

  // What the DC's adapter does: dispatch, and turn an error into the reply.
  pb::Envelope Answer(uint64_t session, const pb::Envelope& req, uint64_t now) {
    Result<pb::Envelope> r = req.has_enrol_start()
                                 ? auth->OnStart(session, req.enrol_start(), now, "test")
                                 : auth->OnFinish(session, req.enrol_finish(), now, "test");
    if (r.ok()) return std::move(r).value();
    pb::Envelope e;
    e.mutable_error()->set_code(uint32_t(r.status().code()));
    e.mutable_error()->set_message(r.status().message());
    return e;
  }
};

EnrolClient EnrolClientFor(const std::string& token_text, NodeRole role,
                           const noise::KeyPair& key) {
  ClientParams p;
  p.role = role;
  p.token = ParseToken(token_text).value();
  return EnrolClient::Create(std::move(p), key).value();
}

TEST(EnrolmentToken, FormatParseRoundTripAndMalformedRefused) {
  CaKey ca = CaKey::FromSeed(Bytes(32, 1)).value();
  Token t = NewToken(ca.public_key());
  std::string text = FormatToken(t);
  EXPECT_EQ(text.size(), 4u + 3 + 16 + 32 + 32);
  EXPECT_EQ(text.rfind("mse1.", 0), 0u);
  Token back = ParseToken(text).value();
  EXPECT_EQ(back.id, t.id);
  EXPECT_EQ(Bytes(back.secret.data(), back.secret.data() + back.secret.size()),
            Bytes(t.secret.data(), t.secret.data() + t.secret.size()));
  EXPECT_EQ(back.ca_fingerprint, CaFingerprint(ca.public_key()));
  for (std::string bad : {std::string(""), text.substr(1), "mse2" + text.substr(4),
                          text.substr(0, 20) + "zz" + text.substr(22),
                          text.substr(0, 4) + "-" + text.substr(5)}) {
    auto r = ParseToken(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("malformed enrolment token"), std::string::npos);
  }
  // Two tokens never share an id or secret.
  Token u = NewToken(ca.public_key());
  EXPECT_NE(u.id, t.id);
}

TEST(EnrolmentToken, BindingDependsOnSecretAndHandshake) {
  crypto::SecretBytes s1(Bytes(16, 1).data(), 16), s2(Bytes(16, 2).data(), 16);
  Bytes h1(64, 0xaa), h2(64, 0xab);
  EXPECT_EQ(TokenBinding(s1, h1), TokenBinding(s1, h1));
  EXPECT_NE(TokenBinding(s1, h1), TokenBinding(s1, h2));
  EXPECT_NE(TokenBinding(s1, h1), TokenBinding(s2, h1));
  EXPECT_NE(TokenVerifier(s1), TokenVerifier(s2));
}

TEST(Enrolment, GatewayEnrolsOnceAndGetsItsCertificate) {
  Dc dc;
  std::string text = dc.NewTokenText(NodeRole::kGateway, "r1", "alice");
  noise::KeyPair key = noise::KeyPair::Generate();
  EnrolClient c = EnrolClientFor(text, NodeRole::kGateway, key);
  auto out = dc.Run(c);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->certificate.node_id, 100000u);
  EXPECT_EQ(out->certificate.role, NodeRole::kGateway);
  EXPECT_EQ(out->certificate.region, "r1");
  EXPECT_EQ(out->certificate.subscriber, "alice");
  EXPECT_EQ(out->certificate.static_public_key, key.public_key);
  EXPECT_EQ(out->certificate.expires_ms, kNow + AuthorityParams{}.cert_lifetime_ms);
  EXPECT_EQ(out->ca_public_key, dc.ca.public_key());
  // The certificate verifies against the CA and is usable as an identity.
  crypto::CertPolicy pol;
  pol.ca_public_key = dc.ca.public_key();
  EXPECT_TRUE(crypto::VerifyCertificate(out->certificate, pol, kNow).ok());
  EXPECT_TRUE(secure::Identity::Create(key.Clone(), out->certificate_bytes).ok());
  EXPECT_EQ(dc.stats.enrolled.value(), 1u);
  Token t = ParseToken(text).value();
  EXPECT_TRUE(dc.store.tokens[t.id].used);
  EXPECT_EQ(dc.store.consumed_by[t.id], 100000u);
  EXPECT_EQ(dc.auth->sessions(), 0u);
}

TEST(Enrolment, ReusedTokenRefusedAndCounted) {
  Dc dc;
  std::string text = dc.NewTokenText(NodeRole::kPop, "r9", "");
  noise::KeyPair k1 = noise::KeyPair::Generate(), k2 = noise::KeyPair::Generate();
  EnrolClient c1 = EnrolClientFor(text, NodeRole::kPop, k1);
  ASSERT_TRUE(dc.Run(c1).ok());
  EnrolClient c2 = EnrolClientFor(text, NodeRole::kPop, k2);
  auto second = dc.Run(c2);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kPermissionDenied);
  EXPECT_NE(second.status().message().find("enrolment token already used"), std::string::npos)
      << second.status().message();
  EXPECT_EQ(dc.stats.refused_used.value(), 1u);
  EXPECT_EQ(dc.stats.enrolled.value(), 1u);
}

TEST(Enrolment, ExpiredTokenRefused) {
  Dc dc;
  std::string text = dc.NewTokenText(NodeRole::kGateway, "r1", "alice", kNow + 1000);
  EnrolClient c = EnrolClientFor(text, NodeRole::kGateway, noise::KeyPair::Generate());
  auto out = dc.Run(c, kNow + 1000);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("enrolment token expired"), std::string::npos);
  EXPECT_EQ(dc.stats.refused_expired.value(), 1u);
  EXPECT_FALSE(dc.store.tokens.begin()->second.used);
}

TEST(Enrolment, WrongRoleRefusedWithoutConsumingTheToken) {
  Dc dc;
  std::string text = dc.NewTokenText(NodeRole::kPop, "r2", "");
  EnrolClient wrong = EnrolClientFor(text, NodeRole::kGateway, noise::KeyPair::Generate());
  auto out = dc.Run(wrong);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("enrolment token is for role pop, not gateway"),
            std::string::npos)
      << out.status().message();
  EXPECT_EQ(dc.stats.refused_role.value(), 1u);
  EnrolClient right = EnrolClientFor(text, NodeRole::kPop, noise::KeyPair::Generate());
  auto ok = dc.Run(right);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->certificate.role, NodeRole::kPop);
  EXPECT_EQ(ok->certificate.region, "r2");
}

TEST(Enrolment, UnknownTokenAndWrongSecretRefused) {
  Dc dc;
  std::string issued = dc.NewTokenText(NodeRole::kGateway, "r1", "alice");
  // A token the DC never issued (same CA, so the client gets as far as the DC).
  std::string unknown = FormatToken(NewToken(dc.ca.public_key()));
  EnrolClient c1 = EnrolClientFor(unknown, NodeRole::kGateway, noise::KeyPair::Generate());
  auto r1 = dc.Run(c1);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("unknown enrolment token"), std::string::npos);
  // The issued id with another secret.
  Token t = ParseToken(issued).value();
  t.secret = crypto::SecretBytes::Random(kTokenSecretBytes);
  EnrolClient c2 = EnrolClientFor(FormatToken(t), NodeRole::kGateway, noise::KeyPair::Generate());
  auto r2 = dc.Run(c2);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("unknown enrolment token"), std::string::npos);
  EXPECT_EQ(dc.stats.refused_unknown.value(), 2u);
  EXPECT_FALSE(dc.store.tokens[t.id].used);
}

TEST(Enrolment, ClientRefusesADcOfAnotherCa) {
  Dc dc, other({}, 8);
  std::string text = other.NewTokenText(NodeRole::kGateway, "r1", "alice");
  dc.store.tokens = other.store.tokens;  // even if the rogue DC knew the record
  EnrolClient c = EnrolClientFor(text, NodeRole::kGateway, noise::KeyPair::Generate());
  auto out = dc.Run(c);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kPermissionDenied);
  EXPECT_NE(out.status().message().find("does not match the enrolment token"), std::string::npos);
  EXPECT_EQ(dc.stats.enrolled.value(), 0u);  // the secret never reached it
}

TEST(Enrolment, ProofReplayedOnAnotherConnectionRefused) {
  Dc dc;
  std::string text = dc.NewTokenText(NodeRole::kGateway, "r1", "alice");
  noise::KeyPair key = noise::KeyPair::Generate();
  // Connection 1: the genuine node; its EnrolFinish is captured, not delivered.
  EnrolClient c = EnrolClientFor(text, NodeRole::kGateway, key);
  pb::Envelope start = c.Start().value();
  pb::Envelope r = dc.Answer(1, start, kNow);
  pb::Envelope finish = c.OnStartReply(r, kNow).value();
  dc.auth->OnClosed(1);
  // Connection 2: an attacker replays message 1 and then the captured finish.
  pb::Envelope r2 = dc.Answer(2, start, kNow);
  ASSERT_TRUE(r2.has_enrol_start_reply());
  pb::Envelope out = dc.Answer(2, finish, kNow);
  ASSERT_TRUE(out.has_error());
  EXPECT_EQ(out.error().code(), uint32_t(Code::kPermissionDenied));
  EXPECT_EQ(dc.stats.refused_other.value(), 1u);
  EXPECT_EQ(dc.stats.enrolled.value(), 0u);
  EXPECT_FALSE(dc.store.tokens.begin()->second.used);
  // Finishing without a started handshake is refused too.
  pb::Envelope none = dc.Answer(3, finish, kNow);
  ASSERT_TRUE(none.has_error());
  EXPECT_NE(none.error().message().find("no enrolment handshake in progress"), std::string::npos);
}

TEST(Enrolment, SessionsAreBoundedAndExpire) {
  AuthorityParams p;
  p.sessions_max = 2;
  p.session_timeout_ms = 5000;
  Dc dc(p);
  std::string text = dc.NewTokenText(NodeRole::kGateway, "r1", "alice");
  std::vector<EnrolClient> cs;
  for (int i = 0; i < 3; i++)
    cs.push_back(EnrolClientFor(text, NodeRole::kGateway, noise::KeyPair::Generate()));
  EXPECT_TRUE(dc.Answer(1, cs[0].Start().value(), kNow).has_enrol_start_reply());
  EXPECT_TRUE(dc.Answer(2, cs[1].Start().value(), kNow).has_enrol_start_reply());
  pb::Envelope third = dc.Answer(3, cs[2].Start().value(), kNow);
  ASSERT_TRUE(third.has_error());
  EXPECT_EQ(third.error().code(), uint32_t(Code::kResourceExhausted));
  EXPECT_EQ(dc.auth->sessions(), 2u);
  dc.auth->OnTick(kNow + 5000);
  EXPECT_EQ(dc.auth->sessions(), 0u);
  EnrolClient late = EnrolClientFor(text, NodeRole::kGateway, noise::KeyPair::Generate());
  EXPECT_TRUE(dc.Answer(4, late.Start().value(), kNow + 5000).has_enrol_start_reply());
}

TEST(Enrolment, ClientNeedsTokenOrCertificate) {
  EXPECT_FALSE(EnrolClient::Create(ClientParams{}, noise::KeyPair::Generate()).ok());
  ClientParams p;
  p.current_certificate = Bytes(10, 1);
  EXPECT_FALSE(EnrolClient::Create(std::move(p), noise::KeyPair::Generate()).ok());  // no CA key
}

// ---- renewal ----

Outcome EnrolNode(Dc& dc, const noise::KeyPair& key, NodeRole role = NodeRole::kGateway) {
  std::string text = dc.NewTokenText(role, "r1", role == NodeRole::kGateway ? "alice" : "");
  EnrolClient c = EnrolClientFor(text, role, key);
  return dc.Run(c).value();
}

Result<Outcome> Renew(Dc& dc, const noise::KeyPair& key, const Bytes& cert, uint64_t now,
                      NodeRole role = NodeRole::kGateway) {
  ClientParams p;
  p.role = role;
  p.current_certificate = cert;
  p.ca_public_key = dc.ca.public_key();
  EnrolClient c = EnrolClient::Create(std::move(p), key).value();
  return dc.Run(c, now);
}

TEST(Renewal, KeepsIdentityAndExtendsExpiry) {
  Dc dc;
  noise::KeyPair key = noise::KeyPair::Generate();
  Outcome first = EnrolNode(dc, key);
  const uint64_t later = kNow + 20ull * 24 * 3600 * 1000;
  auto renewed = Renew(dc, key, first.certificate_bytes, later);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_EQ(renewed->certificate.node_id, first.certificate.node_id);
  EXPECT_EQ(renewed->certificate.region, "r1");
  EXPECT_EQ(renewed->certificate.subscriber, "alice");
  EXPECT_EQ(renewed->certificate.static_public_key, key.public_key);
  EXPECT_EQ(renewed->certificate.expires_ms, later + AuthorityParams{}.cert_lifetime_ms);
  EXPECT_NE(renewed->certificate.serial, first.certificate.serial);
  EXPECT_EQ(dc.stats.renewed.value(), 1u);
}

TEST(Renewal, RevokedNodeRefused) {
  Dc dc;
  noise::KeyPair key = noise::KeyPair::Generate();
  Outcome first = EnrolNode(dc, key, NodeRole::kPop);
  dc.store.revoked.insert(first.certificate.node_id);
  auto r = Renew(dc, key, first.certificate_bytes, kNow + 1000, NodeRole::kPop);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("node is revoked; renewal refused"), std::string::npos);
  EXPECT_EQ(dc.stats.refused_revoked.value(), 1u);
  EXPECT_EQ(dc.stats.renewed.value(), 0u);
}

TEST(Renewal, ExpiredCertificateOrAnotherKeyRefused) {
  Dc dc;
  noise::KeyPair key = noise::KeyPair::Generate();
  Outcome first = EnrolNode(dc, key);
  auto expired = Renew(dc, key, first.certificate_bytes, first.certificate.expires_ms);
  ASSERT_FALSE(expired.ok());
  EXPECT_NE(expired.status().message().find("certificate expired"), std::string::npos);
  // A thief holding the certificate but not the key.
  auto thief = Renew(dc, noise::KeyPair::Generate(), first.certificate_bytes, kNow + 1000);
  ASSERT_FALSE(thief.ok());
  EXPECT_NE(thief.status().message().find("another key than the one proven"), std::string::npos);
  EXPECT_EQ(dc.stats.refused_other.value(), 2u);
}

}  // namespace
}  // namespace mistore::enrol
