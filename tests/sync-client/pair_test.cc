// Tests for sync-client/pair over a real device link (issue 4): `mistore
// pair` against an in-process agent that redeems with the real PairingStore
// (gateway-agent/enrol_pairing.h) on the handshake hash and key its Noise XX
// channel proved. Covers a good code (keys written 0600, agent key pinned,
// the device key recorded), a wrong code and an expired code (nothing
// written), an agent that cannot prove the code (nothing written), the
// paired device's next connection (Noise IK) being served while a throwaway
// key is not, and the pairing file's refusals (old bearer credential, group
// readable).
#include "sync-client/pair.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <thread>

#include "gateway-agent/enrol_pairing.h"
#include "shared/store/file_util.h"
#include "shared/uvio/connection.h"
#include "shared/wire/device_pairing.h"
#include "shared/wire/envelope.h"

namespace mistore {
namespace {

constexpr uint64_t kNow = 1'800'000'000'000ull;

// An agent's client port in a thread: device link, PairingStore, and a
// ListObjects answered only for a paired key (as agent_main.cc does).
class FakeAgent {
 public:
  explicit FakeAgent(std::string dir) : dir_(std::move(dir)) {
    std::promise<std::string> addr;
    auto f = addr.get_future();
    thread_ = std::thread([this, &addr] { Run(&addr); });
    addr_ = f.get();
  }
  ~FakeAgent() {
    stop_ = true;
    thread_.join();
  }
  const std::string& addr() const { return addr_; }
  std::string NewCode(uint64_t ttl_ms) {
    std::lock_guard<std::mutex> l(mu_);
    return store_->NewCode(now_ms, ttl_ms).value();
  }
  bool IsPaired(const Bytes& key) {
    std::lock_guard<std::mutex> l(mu_);
    return store_->IsPaired(key);
  }
  Bytes public_key() {
    std::lock_guard<std::mutex> l(mu_);
    return key_.public_key;
  }
  std::atomic<uint64_t> now_ms{kNow};
  std::atomic<bool> forge_proof{false};

 private:
  void Run(std::promise<std::string>* addr) {
    EventLoop loop;
    ConnectionLimits limits;
    {
      std::lock_guard<std::mutex> l(mu_);
      store_.emplace(PairingStore::Open(dir_).value());
      key_ = LoadOrCreateAgentLinkKey(dir_).value();
      auto link = std::make_shared<secure::DeviceLinkConfig>();
      link->static_key = key_.Clone();
      auto sc = std::make_shared<SecureConfig>();
      sc->channel.device_link = std::move(link);
      limits.secure = std::move(sc);
    }
    std::vector<Connection::Ptr> conns;
    Listener listener(&loop, limits, [&](const Connection::Ptr& c) {
      conns.push_back(c);
      c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) {
        std::lock_guard<std::mutex> l(mu_);
        if (env.has_pair_device()) {
          const std::string& p = env.pair_device().proof();
          auto r = store_->Redeem(Bytes(p.begin(), p.end()),
                                  c->handshake_hash(), c->peer_static_key(),
                                  env.pair_device().device(), now_ms);
          if (!r.ok()) return c->ReplyError(env.request_id(), r.status());
          if (forge_proof) (*r)[0] ^= 1;
          pb::Envelope rep;
          rep.mutable_pair_device_reply()->set_agent_proof(
              std::string(r->begin(), r->end()));
          return c->Reply(env.request_id(), std::move(rep));
        }
        if (!store_->IsPaired(c->peer_static_key()))
          return c->ReplyError(
              env.request_id(),
              Status(Code::kPermissionDenied, "this device is not paired"));
        pb::Envelope rep;
        rep.mutable_empty();
        c->Reply(env.request_id(), std::move(rep));
      });
    });
    Result<std::string> bound = listener.Listen("127.0.0.1:0");
    addr->set_value(bound.ok() ? *bound : "");
    if (!bound.ok()) return;
    TimerId poll = loop.Every(5, [&] {
      if (!stop_) return;
      for (auto& c : conns) c->Close(Unavailable("fake agent done"));
      listener.Close();
      loop.Cancel(poll);
      loop.Stop();
    });
    loop.Run();
  }

  std::string dir_, addr_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::optional<PairingStore> store_;
  noise::KeyPair key_;
};

// One request over the device link `link` to `addr`: the reply's status.
Status Ask(const std::string& addr,
           std::shared_ptr<const secure::DeviceLinkConfig> link) {
  EventLoop loop(1);
  ConnectionLimits limits;
  auto sc = std::make_shared<SecureConfig>();
  sc->channel.device_link = std::move(link);
  limits.secure = std::move(sc);
  Status out = Internal("no reply");
  Connection::Ptr conn;
  Dial(
      &loop, addr, limits,
      [&](Result<Connection::Ptr> r) {
        if (!r.ok()) {
          out = r.status();
          loop.Stop();
          return;
        }
        conn = r.value();
        pb::Envelope req;
        req.mutable_list_objects()->set_subscriber("alice");
        conn->Call(std::move(req), [&](Result<pb::Envelope> rep) {
          out = rep.ok() ? ResponseStatus(rep.value()) : rep.status();
          conn->Close(Unavailable("done"));
          loop.Stop();
        });
      },
      10000);
  loop.Run();
  return out;
}

class PairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/pairtestXXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    agent_.emplace(dir_ + "/agent");
    file_ = dir_ + "/device/pairing";
  }
  void TearDown() override {
    agent_.reset();
    EXPECT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  std::string dir_, file_;
  std::optional<FakeAgent> agent_;
};

TEST_F(PairTest, GoodCodePinsTheAgentAndTheNextConnectionIsServed) {
  std::string code = agent_->NewCode(300000);
  Status st = PairWithAgent(agent_->addr(), code, "laptop", file_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  struct stat sb;
  ASSERT_EQ(::stat(file_.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 077, 0u);
  auto keys = ReadPairingFile(file_);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->peer_static_key, agent_->public_key());
  EXPECT_TRUE(agent_->IsPaired(keys->static_key.public_key));
  // The code is spent.
  EXPECT_FALSE(
      PairWithAgent(agent_->addr(), code, "phone", dir_ + "/other").ok());

  // Next connection: IK with the pinned key, served.
  auto link = DeviceLinkFor(file_);
  ASSERT_TRUE(link.ok());
  EXPECT_EQ((*link)->peer_static_key, agent_->public_key());
  EXPECT_TRUE(Ask(agent_->addr(), *link).ok());
  // A device without a pairing file (a throwaway XX key) is not.
  auto anon = DeviceLinkFor(dir_ + "/none");
  ASSERT_TRUE(anon.ok());
  EXPECT_TRUE((*anon)->peer_static_key.empty());
  EXPECT_EQ(Ask(agent_->addr(), *anon).code(), Code::kPermissionDenied);
  // A device pinning another agent key gets no channel at all.
  auto wrong = std::make_shared<secure::DeviceLinkConfig>();
  wrong->static_key = keys->static_key.Clone();
  wrong->peer_static_key = noise::KeyPair::Generate().public_key;
  Status w = Ask(agent_->addr(), wrong);
  EXPECT_FALSE(w.ok());
  EXPECT_NE(w.code(), Code::kPermissionDenied);
}

TEST_F(PairTest, WrongCodeRefusedAndNothingWritten) {
  std::string code = agent_->NewCode(300000);
  std::string wrong =
      code[0] == '2' ? "3" + code.substr(1) : "2" + code.substr(1);
  Status st = PairWithAgent(agent_->addr(), wrong, "laptop", file_);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("wrong pairing code"), std::string::npos)
      << st.ToString();
  EXPECT_FALSE(FileExists(file_));
  // The right code still works (one wrong attempt counted).
  EXPECT_TRUE(PairWithAgent(agent_->addr(), code, "laptop", file_).ok());
}

TEST_F(PairTest, ExpiredCodeRefused) {
  std::string code = agent_->NewCode(1000);
  agent_->now_ms = kNow + 1000;
  Status st = PairWithAgent(agent_->addr(), code, "laptop", file_);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("pairing code expired"), std::string::npos)
      << st.ToString();
  EXPECT_FALSE(FileExists(file_));
}

TEST_F(PairTest, AgentThatCannotProveTheCodeIsNotPinned) {
  agent_->forge_proof = true;
  Status st =
      PairWithAgent(agent_->addr(), agent_->NewCode(300000), "laptop", file_);
  EXPECT_EQ(st.code(), Code::kPermissionDenied);
  EXPECT_NE(st.message().find("did not prove it knows the pairing code"),
            std::string::npos);
  EXPECT_FALSE(FileExists(file_));
}

TEST_F(PairTest, PairingFileRefusals) {
  ASSERT_TRUE(MakeDirs(dir_ + "/device").ok());
  // The older bearer credential: 64 hex characters.
  const std::string old = ToHex(Bytes(32, 0x5a)) + "\n";
  ASSERT_TRUE(WriteFileDurable(file_,
                               reinterpret_cast<const uint8_t*>(old.data()),
                               old.size())
                  .ok());
  ASSERT_EQ(::chmod(file_.c_str(), 0600), 0);
  auto r = DeviceLinkFor(file_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_NE(r.status().message().find("older version"), std::string::npos);
  EXPECT_NE(r.status().message().find("mistore pair CODE"), std::string::npos);
  // A real pairing, then made group-readable.
  ASSERT_TRUE(
      PairWithAgent(agent_->addr(), agent_->NewCode(300000), "laptop", file_)
          .ok());
  ASSERT_EQ(::chmod(file_.c_str(), 0640), 0);
  auto g = DeviceLinkFor(file_);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kPermissionDenied);
  EXPECT_NE(g.status().message().find("chmod 600"), std::string::npos);
}

}  // namespace
}  // namespace mistore
