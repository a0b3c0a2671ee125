// mistore-agent: the home-gateway agent. One libuv loop:
//  - keeps a connection to its POP (re-dialled when it drops), says Hello
//    with its gateway id, subscriber and free space, and serves the POP's
//    StoreFragment / FetchFragment calls from its FragmentStore;
//  - listens for the subscriber's devices (the `mistore` client) on the LAN
//    and relays their requests to its POP, stamped with its gateway id; it
//    refuses requests for any other subscriber.
// Fragment files are small (chunk/k); their fsync runs on the loop thread.
#include <signal.h>

#include <cstdio>
#include <map>
#include <set>

#include "shared/core/config.h"
#include "shared/core/log.h"
#include "shared/store/fragment_store.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/daemon_metrics.h"

namespace mistore {
namespace {

std::vector<Knob> AgentKnobs() {
  return {
      {"gateway_id", "", "this gateway's numeric id, unique in the cluster", Knob::kInt},
      {"subscriber", "", "the subscriber who owns this gateway"},
      {"pop", "127.0.0.1:7100", "address of this gateway's POP"},
      {"client_listen", "127.0.0.1:7300", "address where the subscriber's devices connect"},
      {"data_dir", "/var/lib/mistore/agent", "where fragments are stored"},
      {"store_bytes_max", "10737418240", "share of the disk given to other people's fragments",
       Knob::kInt},
      {"frame_bytes_max", "8388608", "largest frame accepted from a peer", Knob::kInt},
      {"reconnect_ms", "1000", "delay before re-dialling a lost POP connection", Knob::kInt},
      {"metrics_listen", "127.0.0.1:0",
       "address of the Prometheus /metrics listener (port 0: any free port; off: none)"},
      {"log_level", "info", "debug, info, warn or error"},
  };
}

class Agent {
 public:
  Agent(const Config& cfg, FragmentStore store)
      : cfg_(cfg),
        store_(std::move(store)),
        limits_(Limits(cfg)),
        clients_(&loop_, limits_, [this](const Connection::Ptr& c) { OnClient(c); }) {}

  int Run() {
    auto bound = clients_.Listen(cfg_.Str("client_listen"));
    if (!bound.ok()) FatalExit("listen", bound.status().ToString().c_str());
    loop_.OnSignal(SIGTERM, [this] { Shutdown(); });
    loop_.OnSignal(SIGINT, [this] { Shutdown(); });
    if (store_.corrupt_at_open())
      MS_WARN("agent", "corrupt fragment files found at start",
              "count=" + std::to_string(store_.corrupt_at_open()));
    StartMonitoring();
    MS_INFO("agent", "ready", "listen=" + bound.value() + " metrics=" + metrics_addr_ +
                                  " gateway_id=" + cfg_.Str("gateway_id") +
                                  " fragments=" + std::to_string(store_.fragment_count()));
    DialPop();
    loop_.Run();
    return 0;
  }

 private:
  static ConnectionLimits Limits(const Config& cfg) {
    ConnectionLimits l;
    l.frame_bytes_max = size_t(cfg.Int("frame_bytes_max"));
    return l;
  }

  void Shutdown() {
    MS_INFO("agent", "shutting down", "");
    stopping_ = true;
    clients_.Close();
    if (pop_) pop_->Close(Unavailable("shutting down"));
    auto cs = client_conns_;
    for (auto& c : cs) c->Close(Unavailable("shutting down"));
    loop_.Stop();
  }

  // ---- the POP connection ----
  void DialPop() {
    if (stopping_) return;
    Dial(&loop_, cfg_.Str("pop"), limits_, [this](Result<Connection::Ptr> r) {
      if (!r.ok()) {
        if (!pop_warned_) MS_WARN("agent", "cannot reach POP; retrying", "error=\"" + r.status().message() + "\"");
        pop_warned_ = true;
        loop_.After(uint64_t(cfg_.Int("reconnect_ms")), [this] { DialPop(); });
        return;
      }
      Connection::Ptr c = r.value();
      c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) { OnPopRequest(c, env); });
      c->set_on_close([this](const Connection::Ptr&, const Status& why) {
        pop_.reset();
        if (stopping_) return;
        MS_WARN("agent", "lost POP connection; reconnecting", "reason=\"" + why.message() + "\"");
        loop_.After(uint64_t(cfg_.Int("reconnect_ms")), [this] { DialPop(); });
      });
      pb::Envelope hello;
      auto* h = hello.mutable_hello();
      h->set_role(pb::ROLE_GATEWAY);
      h->set_node_id(uint32_t(cfg_.Int("gateway_id")));
      h->set_subscriber(cfg_.Str("subscriber"));
      h->set_store_bytes_free(store_.free_bytes());
      c->Call(hello, [this, c](Result<pb::Envelope> r) {
        if (!r.ok() || r->has_error()) {
          MS_WARN("agent", "POP refused registration", "");
          c->Close(Unavailable("registration refused"));
          return;
        }
        pop_ = c;
        pop_warned_ = false;
        MS_INFO("agent", "registered with POP", "pop=" + cfg_.Str("pop"));
      });
    });
  }

  // One dispatch for requests from the POP; one handler per message type.
  void OnPopRequest(const Connection::Ptr& c, const pb::Envelope& env) {
    switch (env.body_case()) {
      case pb::Envelope::kStoreFragment: return HandleStoreFragment(c, env);
      case pb::Envelope::kFetchFragment: return HandleFetchFragment(c, env);
      default:
        c->ReplyError(env.request_id(), ProtocolError("agent does not serve this message from a POP"));
    }
  }

  void HandleStoreFragment(const Connection::Ptr& c, const pb::Envelope& env) {
    auto op = metrics_.Received(env);
    const std::string& f = env.store_fragment().fragment();
    Status st = store_.Put(Bytes(f.begin(), f.end()));
    if (!st.ok()) {
      MS_WARN("agent", "fragment refused", "error=\"" + st.ToString() + "\"");
      metrics_.Replied(op, nullptr, false);
      return c->ReplyError(env.request_id(), st);
    }
    pb::Envelope r;
    r.mutable_empty();
    fragments_stored_->Inc();
    fragment_bytes_stored_->Inc(f.size());
    metrics_.Replied(op, &r, true);
    c->Reply(env.request_id(), r);
  }

  void HandleFetchFragment(const Connection::Ptr& c, const pb::Envelope& env) {
    auto op = metrics_.Received(env);
    const std::string& id = env.fetch_fragment().chunk_id();
    auto blob = store_.Get(Bytes(id.begin(), id.end()), env.fetch_fragment().index());
    if (!blob.ok()) {
      if (blob.status().code() == Code::kCorrupt) {
        MS_WARN("agent", "fragment failed its check; not served", "error=\"" + blob.status().message() + "\"");
        fragment_check_failures_->Inc();
      }
      metrics_.Replied(op, nullptr, false);
      return c->ReplyError(env.request_id(), blob.status());
    }
    pb::Envelope r;
    r.mutable_fragment_data()->set_fragment(std::string(blob->begin(), blob->end()));
    fragments_served_->Inc();
    fragment_bytes_served_->Inc(blob->size());
    metrics_.Replied(op, &r, true);
    c->Reply(env.request_id(), r);
  }

  // ---- the subscriber's devices ----
  void OnClient(const Connection::Ptr& c) {
    client_conns_.insert(c);
    c->set_on_close([this](const Connection::Ptr& c, const Status&) { client_conns_.erase(c); });
    c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) { OnClientRequest(c, env); });
  }

  static const std::string* SubscriberOf(const pb::Envelope& env) {
    switch (env.body_case()) {
      case pb::Envelope::kPutChunk: return &env.put_chunk().subscriber();
      case pb::Envelope::kPutCommit: return &env.put_commit().subscriber();
      case pb::Envelope::kGetVersion: return &env.get_version().subscriber();
      case pb::Envelope::kGetChunk: return &env.get_chunk().subscriber();
      case pb::Envelope::kListObjects: return &env.list_objects().subscriber();
      case pb::Envelope::kReleaseLock: return &env.release_lock().subscriber();
      case pb::Envelope::kHaveChunks: return &env.have_chunks().subscriber();
      default: return nullptr;
    }
  }

  void OnClientRequest(const Connection::Ptr& c, pb::Envelope env) {
    uint64_t id = env.request_id();
    auto op = metrics_.Received(env);
    auto refuse = [&](const Status& st) {
      metrics_.Replied(op, nullptr, false);
      c->ReplyError(id, st);
    };
    if (env.has_get_placement()) {
      // carries no subscriber; the POP checks ownership against ours.
    } else {
      const std::string* sub = SubscriberOf(env);
      if (!sub) return refuse(ProtocolError("not a client request"));
      if (*sub != cfg_.Str("subscriber"))
        return refuse(Status(Code::kPermissionDenied,
                             "this gateway serves subscriber " + cfg_.Str("subscriber")));
    }
    if (env.has_put_commit()) env.mutable_put_commit()->set_gateway_id(uint32_t(cfg_.Int("gateway_id")));
    if (!pop_) return refuse(Unavailable("gateway agent is not connected to its POP"));
    std::weak_ptr<Connection> weak = c;
    pop_->Call(std::move(env), [this, weak, id, op](Result<pb::Envelope> r) {
      metrics_.Replied(op, r.ok() ? &r.value() : nullptr, r.ok());
      auto c = weak.lock();
      if (!c || c->closed()) return;
      if (!r.ok()) return c->ReplyError(id, r.status());
      c->Reply(id, std::move(r.value()));
    });
  }

  // ---- monitoring (issue 8): /metrics ----
  void StartMonitoring() {
    auto bound = metrics_.Serve(cfg_.Str("metrics_listen"));
    if (!bound.ok()) FatalExit("metrics_listen", bound.status().ToString().c_str());
    metrics_addr_ = bound.value();
    MetricsRegistry& r = metrics_.registry();
    fragments_stored_ = &r.AddCounter("mistore_agent_fragments_stored_total",
                                      "Fragments stored for the POP.");
    fragment_bytes_stored_ = &r.AddCounter("mistore_agent_fragment_stored_bytes_total",
                                           "Bytes of fragments stored for the POP.");
    fragments_served_ = &r.AddCounter("mistore_agent_fragments_served_total",
                                      "Fragments read back and sent to the POP.");
    fragment_bytes_served_ = &r.AddCounter("mistore_agent_fragment_served_bytes_total",
                                           "Bytes of fragments sent to the POP.");
    fragment_check_failures_ = &r.AddCounter(
        "mistore_agent_fragment_check_failures_total",
        "Fragments that failed their check when read (corrupt; not served).");
    r.AddGaugeFn("mistore_agent_store_used_bytes", "Bytes of fragments on disk.",
                 [this] { return double(store_.used_bytes()); });
    r.AddGaugeFn("mistore_agent_store_max_bytes", "Share of the disk given to fragments.",
                 [this] { return double(cfg_.Int("store_bytes_max")); });
    r.AddGaugeFn("mistore_agent_store_fragments", "Fragments on disk.",
                 [this] { return double(store_.fragment_count()); });
    r.AddGaugeFn("mistore_agent_store_corrupt_at_start",
                 "Fragment files that failed to parse when the store was opened.",
                 [this] { return double(store_.corrupt_at_open()); });
    r.AddGaugeFn("mistore_agent_pop_connected", "1 while registered with its POP.",
                 [this] { return pop_ ? 1.0 : 0.0; });
    r.AddGaugeFn("mistore_agent_client_connections", "Open connections from devices.",
                 [this] { return double(client_conns_.size()); });
  }

  const Config& cfg_;
  FragmentStore store_;
  EventLoop loop_;
  ConnectionLimits limits_;
  Listener clients_;
  Connection::Ptr pop_;
  std::set<Connection::Ptr> client_conns_;
  bool pop_warned_ = false;
  bool stopping_ = false;
  // ---- monitoring (issue 8)
  DaemonMetrics metrics_{&loop_, "agent",
                         {"put_chunk", "put_commit", "get_version", "get_chunk", "list_objects",
                          "get_placement", "release_lock", "store_fragment", "fetch_fragment"}};
  std::string metrics_addr_;
  Counter* fragments_stored_ = nullptr;
  Counter* fragment_bytes_stored_ = nullptr;
  Counter* fragments_served_ = nullptr;
  Counter* fragment_bytes_served_ = nullptr;
  Counter* fragment_check_failures_ = nullptr;
};

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  signal(SIGPIPE, SIG_IGN);
  Config cfg(AgentKnobs());
  switch (ParseCommandLine("mistore-agent", "[--config FILE] [--name=value ...]", &cfg, argc, argv,
                           nullptr)) {
    case ArgsOutcome::kExitOk: return 0;
    case ArgsOutcome::kExitUsage: return 2;
    case ArgsOutcome::kRun: break;
  }
  Status st;
  if (cfg.Str("gateway_id").empty()) st = InvalidArgument("--gateway-id is required");
  if (st.ok() && cfg.Str("subscriber").empty()) st = InvalidArgument("--subscriber is required");
  LogLevel level;
  if (st.ok() && !ParseLogLevel(cfg.Str("log_level"), &level)) st = InvalidArgument("bad --log-level");
  if (!st.ok()) {
    std::fprintf(stderr, "mistore-agent: %s\n", st.message().c_str());
    return 2;
  }
  SetLogLevel(level);
  auto store = FragmentStore::Open(cfg.Str("data_dir") + "/fragments", uint64_t(cfg.Int("store_bytes_max")));
  if (!store.ok()) FatalExit("open fragment store", store.status().ToString().c_str());
  Agent a(cfg, std::move(store.value()));
  return a.Run();
}
