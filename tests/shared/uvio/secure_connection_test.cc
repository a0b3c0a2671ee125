// Connection in secure mode over real loopback sockets: Listener and Dial on
// one EventLoop in the test's thread; a tampering relay (plain sockets, its
// own thread) sits in between for the in-flight tests. Checks that calls
// work only after mutual authentication, that every refusal closes the
// connection, is counted, and leaves the server serving legitimate peers,
// and that plain mode is unchanged.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "shared/uvio/connection.h"
#include "shared/wire/envelope.h"

namespace mistore {
namespace {

using crypto::CaKey;
using crypto::NodeRole;

uint64_t WallMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

std::shared_ptr<SecureConfig> MakeSecure(const CaKey& issuer, const Bytes& trusted_ca,
                                         NodeRole role, uint32_t node_id,
                                         std::set<NodeRole> peer_roles,
                                         int64_t expires_in_ms = 3600'000) {
  noise::KeyPair kp = noise::KeyPair::Generate();
  crypto::Certificate c;
  c.node_id = node_id;
  c.role = role;
  c.serial = node_id;
  c.issued_ms = WallMs() - 1000;
  c.expires_ms = uint64_t(int64_t(WallMs()) + expires_in_ms);
  c.static_public_key = kp.public_key;
  c.region = "eu";
  if (role == NodeRole::kGateway) c.subscriber = "alice";
  Bytes enc = issuer.Sign(&c).value();
  auto cfg = std::make_shared<SecureConfig>();
  cfg->channel.identity =
      std::make_shared<secure::Identity>(secure::Identity::Create(std::move(kp), enc).value());
  cfg->channel.ca_public_key = trusted_ca;
  cfg->channel.peer_roles = std::move(peer_roles);
  cfg->channel.handshake_timeout_ms = 2000;
  cfg->stats = std::make_shared<SecureStats>();
  return cfg;
}

pb::Envelope Ping(size_t payload_bytes = 0) {
  pb::Envelope e;
  e.mutable_put_chunk()->set_subscriber("alice");
  e.mutable_put_chunk()->set_data(std::string(payload_bytes, 'x'));
  return e;
}

class SecureConnectionTest : public ::testing::Test {
 protected:
  CaKey ca = CaKey::FromSeed(Bytes(32, 1)).value();
  EventLoop loop;
  std::shared_ptr<SecureConfig> pop_cfg =
      MakeSecure(ca, ca.public_key(), NodeRole::kPop, 2, {NodeRole::kGateway});
  std::unique_ptr<Listener> listener;
  std::string addr;
  int accepted = 0;
  std::vector<uint32_t> accepted_nodes;
  std::vector<std::string> seen_subscribers;
  std::shared_ptr<RefusalCounters> refusals = std::make_shared<RefusalCounters>();

  void StartServer(ConnectionLimits limits) {
    limits.refusals = refusals;
    listener = std::make_unique<Listener>(&loop, limits, [this](const Connection::Ptr& c) {
      accepted++;
      if (c->peer_certificate()) accepted_nodes.push_back(c->peer_certificate()->node_id);
      c->set_on_request([this](const Connection::Ptr& conn, pb::Envelope&& req) {
        seen_subscribers.push_back(req.put_chunk().subscriber());
        pb::Envelope rep;
        rep.mutable_put_reply()->set_version(req.put_chunk().data().size());
        conn->Reply(req.request_id(), std::move(rep));
      });
    });
    auto bound = listener->Listen("127.0.0.1:0");
    ASSERT_TRUE(bound.ok());
    addr = bound.value();
  }
  void StartSecureServer() {
    ConnectionLimits l;
    l.secure = pop_cfg;
    StartServer(l);
  }

  // Dials `to` with `limits`, makes one call; returns the call's outcome
  // (or the dial error). Runs the loop until done (10 s guard).
  Result<pb::Envelope> DialAndCall(const ConnectionLimits& limits, const std::string& to,
                                   pb::Envelope req = Ping()) {
    std::optional<Result<pb::Envelope>> out;
    Connection::Ptr conn;
    Dial(&loop, to, limits, [&](Result<Connection::Ptr> r) {
      if (!r.ok()) {
        out = r.status();
        return;
      }
      conn = r.value();
      conn->Call(
          std::move(req), [&](Result<pb::Envelope> rep) { out = std::move(rep); }, 5000);
    });
    TimerId guard = loop.After(10000, [&] {
      if (!out) out = Result<pb::Envelope>(Unavailable("test guard"));
    });
    TimerId poll = loop.Every(2, [&] {
      if (out) loop.Stop();
    });
    loop.Run();
    loop.Cancel(poll);
    loop.Cancel(guard);
    if (conn) conn->Close(Unavailable("test done"));
    RunFor(20);
    return std::move(*out);
  }
  void RunFor(uint64_t ms) {
    loop.After(ms, [&] { loop.Stop(); });
    loop.Run();
  }
  void TearDown() override {
    if (listener) listener->Close();
    RunFor(10);
  }
  ConnectionLimits Gateway(std::shared_ptr<SecureConfig> cfg) {
    ConnectionLimits l;
    l.secure = std::move(cfg);
    return l;
  }
  std::shared_ptr<SecureConfig> GoodGateway(uint32_t id = 11) {
    return MakeSecure(ca, ca.public_key(), NodeRole::kGateway, id, {NodeRole::kPop});
  }
};

TEST_F(SecureConnectionTest, RoundTripAfterMutualAuthentication) {
  StartSecureServer();
  auto gw = GoodGateway();
  auto rep = DialAndCall(Gateway(gw), addr);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_TRUE(ResponseStatus(*rep).ok());
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(accepted_nodes, std::vector<uint32_t>{11});
  EXPECT_EQ(gw->stats->handshakes_ok.value(), 1u);
  EXPECT_EQ(pop_cfg->stats->handshakes_ok.value(), 1u);
  // A 4 MiB message travels in many records and arrives whole.
  auto big = DialAndCall(Gateway(gw), addr, Ping(4 << 20));
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->put_reply().version(), uint64_t(4 << 20));
}

TEST_F(SecureConnectionTest, RefusalsAreCountedAndTheServerKeepsServing) {
  StartSecureServer();
  auto other_ca = CaKey::FromSeed(Bytes(32, 2)).value();
  // Wrong CA.
  auto rogue = MakeSecure(other_ca, ca.public_key(), NodeRole::kGateway, 12, {NodeRole::kPop});
  EXPECT_FALSE(DialAndCall(Gateway(rogue), addr).ok());
  // Expired.
  auto expired = MakeSecure(ca, ca.public_key(), NodeRole::kGateway, 13, {NodeRole::kPop}, -1);
  EXPECT_FALSE(DialAndCall(Gateway(expired), addr).ok());
  // A POP certificate where the server accepts only gateways.
  auto pop_as_gw = MakeSecure(ca, ca.public_key(), NodeRole::kPop, 14, {NodeRole::kPop});
  EXPECT_FALSE(DialAndCall(Gateway(pop_as_gw), addr).ok());
  // Revoked from the next handshake on.
  auto revoked = std::make_shared<std::set<uint32_t>>();
  // (the config is shared and const; the daemon keeps the mutable set)
  std::const_pointer_cast<SecureConfig>(std::static_pointer_cast<const SecureConfig>(pop_cfg))
      ->channel.revoked_node_ids = revoked;
  auto victim = GoodGateway(15);
  ASSERT_TRUE(DialAndCall(Gateway(victim), addr).ok());
  revoked->insert(15);
  EXPECT_FALSE(DialAndCall(Gateway(victim), addr).ok());
  EXPECT_EQ(pop_cfg->stats->refused_certificate.value(), 4u);
  EXPECT_EQ(refusals->value(Refusal::kBadCert), 1u);
  EXPECT_EQ(refusals->value(Refusal::kExpired), 1u);
  EXPECT_EQ(refusals->value(Refusal::kWrongRole), 1u);
  EXPECT_EQ(refusals->value(Refusal::kRevoked), 1u);
  EXPECT_EQ(accepted, 1);  // only the victim before its revocation
  // The server still serves a legitimate gateway.
  auto rep = DialAndCall(Gateway(GoodGateway(16)), addr);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(seen_subscribers.size(), 2u);
}

TEST_F(SecureConnectionTest, ClientRefusesAServerOfTheWrongRole) {
  // The "POP" holds a gateway certificate.
  pop_cfg = MakeSecure(ca, ca.public_key(), NodeRole::kGateway, 3, {NodeRole::kGateway});
  StartSecureServer();
  auto gw = GoodGateway();
  auto rep = DialAndCall(Gateway(gw), addr);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find("role gateway not accepted"), std::string::npos);
  EXPECT_EQ(gw->stats->refused_certificate.value(), 1u);
  EXPECT_EQ(accepted, 0);
}

TEST_F(SecureConnectionTest, PlaintextClientRefused) {
  StartSecureServer();
  auto rep = DialAndCall(ConnectionLimits{}, addr);
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(pop_cfg->stats->refused_plaintext.value(), 1u);
  EXPECT_EQ(refusals->value(Refusal::kPlaintext), 1u);
  EXPECT_EQ(accepted, 0);
  EXPECT_TRUE(seen_subscribers.empty());
}

TEST_F(SecureConnectionTest, SecureClientRefusedByAPlainServer) {
  StartServer(ConnectionLimits{});
  auto rep = DialAndCall(Gateway(GoodGateway()), addr);
  EXPECT_FALSE(rep.ok());
  EXPECT_TRUE(seen_subscribers.empty());
}

TEST_F(SecureConnectionTest, PlainModeUnchanged) {
  StartServer(ConnectionLimits{});
  auto rep = DialAndCall(ConnectionLimits{}, addr, Ping(1000));
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->put_reply().version(), 1000u);
  EXPECT_EQ(accepted, 1);
  EXPECT_TRUE(accepted_nodes.empty());  // no certificate in plain mode
}

TEST_F(SecureConnectionTest, GatewayActsOnlyForItsSubscriberAndOnlyAsAGateway) {
  StartSecureServer();
  auto gw = GoodGateway();
  // Another subscriber's object: refused with kPermissionDenied, counted;
  // the daemon's handler never sees it.
  pb::Envelope other = Ping();
  other.mutable_put_chunk()->set_subscriber("bob");
  auto rep = DialAndCall(Gateway(gw), addr, other);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  Status st = ResponseStatus(*rep);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("subscriber 'bob'"), std::string::npos);
  // Reading another subscriber's object (issue 4's "a gateway of subscriber
  // A reading B's object"): refused the same way.
  pb::Envelope read;
  read.mutable_get_version()->set_subscriber("bob");
  read.mutable_get_version()->set_name_key("bobs-file");
  rep = DialAndCall(Gateway(gw), addr, read);
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(ResponseStatus(*rep).code(), Code::kPermissionDenied);
  EXPECT_NE(ResponseStatus(*rep).message().find("subscriber 'bob'"), std::string::npos);
  // A POP-only request (fragment store) from a gateway.
  pb::Envelope store;
  store.mutable_store_fragment();
  rep = DialAndCall(Gateway(gw), addr, store);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(ResponseStatus(*rep).code(), Code::kPermissionDenied);
  EXPECT_EQ(pop_cfg->stats->requests_refused.value(), 3u);
  EXPECT_EQ(refusals->requests_unauthorized.value(), 3u);
  EXPECT_TRUE(seen_subscribers.empty());
  // Its own subscriber's request goes through.
  rep = DialAndCall(Gateway(gw), addr);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(ResponseStatus(*rep).ok());
  EXPECT_EQ(seen_subscribers, std::vector<std::string>{"alice"});
}

// A peer that connects and says nothing is dropped at the handshake timeout.
TEST_F(SecureConnectionTest, SilentPeerDroppedAtHandshakeTimeout) {
  std::const_pointer_cast<SecureConfig>(std::static_pointer_cast<const SecureConfig>(pop_cfg))
      ->channel.handshake_timeout_ms = 150;
  StartSecureServer();
  std::atomic<bool> closed_by_server{false};
  std::thread t([&] {
    size_t colon = addr.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(std::stoi(addr.substr(colon + 1))));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) == 1) {
      char b;
      closed_by_server = recv(fd, &b, 1, 0) == 0;
    }
    close(fd);
  });
  loop.After(3000, [&] { loop.Stop(); });
  TimerId poll_id = loop.Every(5, [&] {
    if (closed_by_server) loop.Stop();
  });
  loop.Run();
  loop.Cancel(poll_id);
  t.join();
  EXPECT_TRUE(closed_by_server);
  EXPECT_EQ(pop_cfg->stats->handshake_timeouts.value(), 1u);
  EXPECT_EQ(refusals->value(Refusal::kHandshakeTimeout), 1u);
  EXPECT_EQ(accepted, 0);
}

// A relay between the dialler and the server that flips one bit of the
// client->server stream at byte offset `flip_at`, or (replay_at set) sends
// the client->server bytes from offset `replay_at` up to the end of the
// read holding it a second time, right behind the originals.
class Relay {
 public:
  explicit Relay(std::string target, size_t flip_at, size_t replay_at = SIZE_MAX)
      : target_(std::move(target)), flip_at_(flip_at), replay_at_(replay_at) {
    lfd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    EXPECT_EQ(bind(lfd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(listen(lfd_, 4), 0);
    socklen_t len = sizeof sa;
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&sa), &len);
    addr_ = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    close(lfd_);
  }
  const std::string& addr() const { return addr_; }
  size_t forwarded() const { return forwarded_; }

 private:
  void Run() {
    pollfd lp{lfd_, POLLIN, 0};
    while (!stop_ && poll(&lp, 1, 20) == 0) {
    }
    if (stop_) return;
    int a = accept(lfd_, nullptr, nullptr);
    size_t colon = target_.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(std::stoi(target_.substr(colon + 1))));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(b, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      close(a);
      close(b);
      return;
    }
    char buf[65536];
    while (!stop_) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(p, 2, 20) <= 0) continue;
      if (p[0].revents) {
        ssize_t n = recv(a, buf, sizeof buf, 0);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++)
          if (forwarded_ + size_t(i) == flip_at_) buf[i] ^= 0x04;
        const size_t start = forwarded_;
        forwarded_ += size_t(n);
        if (send(b, buf, size_t(n), MSG_NOSIGNAL) != n) break;
        if (replay_at_ >= start && replay_at_ < forwarded_) {
          const size_t off = replay_at_ - start;
          if (send(b, buf + off, size_t(n) - off, MSG_NOSIGNAL) != n - ssize_t(off)) break;
        }
      }
      if (p[1].revents) {
        ssize_t n = recv(b, buf, sizeof buf, 0);
        if (n <= 0) break;
        if (send(a, buf, size_t(n), MSG_NOSIGNAL) != n) break;
      }
    }
    close(a);
    close(b);
  }
  std::string target_;
  size_t flip_at_;
  size_t replay_at_;
  std::string addr_;
  int lfd_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> forwarded_{0};
  std::thread thread_;
};

TEST_F(SecureConnectionTest, UntamperedRelayWorks) {
  StartSecureServer();
  Relay relay(addr, SIZE_MAX);
  auto rep = DialAndCall(Gateway(GoodGateway()), relay.addr());
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
}

TEST_F(SecureConnectionTest, FlippedBitInFlightClosesTheConnection) {
  StartSecureServer();
  // Client->server bytes: preamble 4 + message 1 (2 + 32) + message 3
  // (2 + 48 + cert + 16) and then the first data record. Flip a byte well
  // inside the data record.
  auto gw = GoodGateway();
  size_t msg3 = 2 + 48 + gw->channel.identity->cert_bytes.size() + 16;
  Relay relay(addr, 4 + 34 + msg3 + 20);
  auto rep = DialAndCall(Gateway(gw), relay.addr(), Ping(200));
  EXPECT_FALSE(rep.ok());
  EXPECT_EQ(pop_cfg->stats->handshakes_ok.value(), 1u);
  EXPECT_EQ(pop_cfg->stats->records_rejected.value(), 1u);
  EXPECT_EQ(refusals->value(Refusal::kDecryptFailed), 1u);
  EXPECT_TRUE(seen_subscribers.empty());
  // The server keeps serving.
  ASSERT_TRUE(DialAndCall(Gateway(GoodGateway(17)), addr).ok());
}

// A record replayed in flight: the server refuses it as a replay (after
// serving the original once) and keeps serving others.
TEST_F(SecureConnectionTest, ReplayedRecordInFlightClosesTheConnection) {
  StartSecureServer();
  auto gw = GoodGateway();
  size_t msg3 = 2 + 48 + gw->channel.identity->cert_bytes.size() + 16;
  Relay relay(addr, SIZE_MAX, /*replay_at=*/4 + 34 + msg3);
  (void)DialAndCall(Gateway(gw), relay.addr(), Ping(200));
  RunFor(50);
  EXPECT_EQ(refusals->value(Refusal::kReplay), 1u);
  EXPECT_EQ(pop_cfg->stats->records_rejected.value(), 1u);
  EXPECT_LE(seen_subscribers.size(), 1u);  // the original, at most once
  ASSERT_TRUE(DialAndCall(Gateway(GoodGateway(18)), addr).ok());
}

TEST_F(SecureConnectionTest, FlippedBitInHandshakeRefused) {
  StartSecureServer();
  Relay relay(addr, 4 + 34 + 10);  // inside message 3 (encrypted static key)
  EXPECT_FALSE(DialAndCall(Gateway(GoodGateway()), relay.addr()).ok());
  EXPECT_EQ(pop_cfg->stats->handshakes_ok.value(), 0u);
  EXPECT_EQ(refusals->value(Refusal::kDecryptFailed), 1u);
  EXPECT_EQ(accepted, 0);
}

}  // namespace
}  // namespace mistore

namespace mistore {
namespace {

class IdentityFilesTest : public ::testing::Test {
 protected:
  std::string dir;
  void SetUp() override {
    char tmpl[] = "/tmp/mistore_idfiles_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir).c_str()); }
  void WriteFile(const std::string& path, const Bytes& b) {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
  }
};

TEST_F(IdentityFilesTest, KeyFileIsPrivateAndLoadsWithItsCertificate) {
  auto ca = crypto::CaKey::FromSeed(Bytes(32, 3)).value();
  noise::KeyPair kp = noise::KeyPair::Generate();
  ASSERT_TRUE(WriteNodeKeyFile(dir + "/node.key", kp).ok());
  struct stat st;
  ASSERT_EQ(stat((dir + "/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(WriteNodeKeyFile(dir + "/node.key", kp).ok());  // never overwritten
  crypto::Certificate c;
  c.node_id = 5;
  c.role = NodeRole::kPop;
  c.expires_ms = UINT64_MAX;
  c.static_public_key = kp.public_key;
  WriteFile(dir + "/node.cert", ca.Sign(&c).value());
  WriteFile(dir + "/ca.pub", ca.public_key());
  auto sc =
      LoadSecureConfig(dir + "/node.key", dir + "/node.cert", dir + "/ca.pub", {NodeRole::kPop});
  ASSERT_TRUE(sc.ok()) << sc.status().ToString();
  EXPECT_EQ(sc.value()->channel.identity->cert.node_id, 5u);
  EXPECT_EQ(sc.value()->channel.identity->static_key.public_key, kp.public_key);
  // Revocations reach the channel config through the shared set.
  ConnectionLimits l;
  l.secure = sc.value();
  SetRevokedNodes(l, {9});
  EXPECT_EQ(sc.value()->channel.revoked_node_ids->count(9), 1u);
  ConnectionLimits other = WithPeerRoles(l, {NodeRole::kDc});
  EXPECT_EQ(other.secure->channel.peer_roles, std::set<NodeRole>{NodeRole::kDc});
  EXPECT_EQ(other.secure->channel.identity, sc.value()->channel.identity);
  SetRevokedNodes(l, {10});
  EXPECT_EQ(other.secure->channel.revoked_node_ids->count(10), 1u);

  // A key readable by others is refused.
  chmod((dir + "/node.key").c_str(), 0644);
  auto refused = LoadSecureConfig(dir + "/node.key", dir + "/node.cert", dir + "/ca.pub", {});
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("chmod 600"), std::string::npos);
  chmod((dir + "/node.key").c_str(), 0600);
  // Someone else's certificate does not match this key.
  noise::KeyPair other_kp = noise::KeyPair::Generate();
  c.static_public_key = other_kp.public_key;
  WriteFile(dir + "/other.cert", ca.Sign(&c).value());
  EXPECT_FALSE(LoadSecureConfig(dir + "/node.key", dir + "/other.cert", dir + "/ca.pub", {}).ok());
  // A CA file of the wrong size.
  WriteFile(dir + "/bad.pub", Bytes(33, 1));
  EXPECT_FALSE(LoadSecureConfig(dir + "/node.key", dir + "/node.cert", dir + "/bad.pub", {}).ok());
}

// Issue 4: the secure transport is the default. A daemon's knob table says
// so; an identity in data_dir (where enrolment writes it) is found without
// naming the files; a daemon without one refuses to start, naming the fix;
// secure=false runs plain and logs the INSECURE warning.
TEST_F(IdentityFilesTest, SecureIsTheDefaultAndFindsTheIdentityInDataDir) {
  std::vector<Knob> knobs = {{"data_dir", "", "x"}};
  Config cfg(WithSecureTransportKnobs(std::move(knobs)));
  EXPECT_TRUE(cfg.Bool("secure"));
  auto ca = crypto::CaKey::FromSeed(Bytes(32, 4)).value();
  noise::KeyPair kp = noise::KeyPair::Generate();
  ASSERT_TRUE(WriteNodeKeyFile(dir + "/node.key", kp).ok());
  crypto::Certificate c;
  c.node_id = 7;
  c.role = NodeRole::kGateway;
  c.subscriber = "alice";
  c.expires_ms = UINT64_MAX;
  c.static_public_key = kp.public_key;
  WriteFile(dir + "/node.cert", ca.Sign(&c).value());
  WriteFile(dir + "/ca.pub", ca.public_key());
  ASSERT_TRUE(cfg.Set("data_dir", dir, "test").ok());
  ConnectionLimits l = WithSecureTransport(ConnectionLimits{}, cfg, {NodeRole::kPop});
  ASSERT_TRUE(l.secure);
  EXPECT_EQ(l.secure->channel.identity->cert.node_id, 7u);

  ASSERT_TRUE(cfg.Set("data_dir", dir + "/nothing-here", "test").ok());
  EXPECT_DEATH(WithSecureTransport(ConnectionLimits{}, cfg, {NodeRole::kPop}),
               "nothing-here/node.key.*secure transport is on \\(the default\\).*enrol");

  ASSERT_TRUE(cfg.Set("secure", "false", "test").ok());
  testing::internal::CaptureStderr();
  ConnectionLimits plain = WithSecureTransport(ConnectionLimits{}, cfg, {NodeRole::kPop});
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(plain.secure);
  EXPECT_NE(err.find("level=warn"), std::string::npos) << err;
  EXPECT_NE(err.find("INSECURE: secure transport is off"), std::string::npos) << err;
}

}  // namespace
}  // namespace mistore
