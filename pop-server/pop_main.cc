// mistore-pop: the point-of-presence daemon. This file is the libuv adapter
// around PopCore: it owns the listener, the connections to gateways, other
// POPs and the DC, the timers and the worker pool, and moves PopCore's
// Outbox onto them. One loop thread; erasure coding runs on libuv's pool.
#include <signal.h>
#include <sodium.h>

#include <cstdio>
#include <deque>
#include <iostream>
#include <map>

#include "pop-server/pop_core.h"
#include "pop-server/sqlite_pop_store.h"
#include "shared/core/config.h"
#include "shared/core/log.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/peer_pool.h"

namespace mistore {
namespace {

std::vector<Knob> PopKnobs() {
  return {
      {"pop_id", "", "this POP's numeric id (1..2^32-1), unique in the cluster", Knob::kInt},
      {"region", "", "name of the region of gateways this POP serves"},
      {"listen", "127.0.0.1:7100", "address for gateways and other POPs"},
      {"dc", "127.0.0.1:7000", "address of the datacenter backend"},
      {"data_dir", "/var/lib/mistore/pop", "where metadata and chunk copies live"},
      {"k", "4", "data fragments per chunk (Reed-Solomon)", Knob::kInt},
      {"m", "2", "parity fragments per chunk (Reed-Solomon)", Knob::kInt},
      {"cache_bytes_max", "1073741824",
       "bytes of chunk copies kept once fragments are placed (0: drop them at once)", Knob::kInt},
      {"placements_in_flight_max", "4", "chunks being placed on gateways at once", Knob::kInt},
      {"frame_bytes_max", "8388608", "largest frame accepted from a peer", Knob::kInt},
      {"tick_ms", "500", "period of background retries (placement, reports)", Knob::kInt},
      {"map_refresh_ms", "1000", "period of cluster map refreshes from the DC", Knob::kInt},
      {"log_level", "info", "debug, info, warn or error"},
  };
}

class PopDaemon {
 public:
  PopDaemon(const Config& cfg, std::unique_ptr<SqlitePopStore> store)
      : cfg_(cfg),
        store_(std::move(store)),
        loop_(4),
        limits_(MakeLimits(cfg)),
        core_(MakeParams(cfg), store_.get(), randombytes_random() | uint64_t(randombytes_random()) << 32),
        listener_(&loop_, limits_, [this](const Connection::Ptr& c) { OnAccept(c); }),
        pops_(&loop_, limits_),
        dc_(&loop_, limits_) {}

  int Run() {
    auto bound = listener_.Listen(cfg_.Str("listen"));
    if (!bound.ok()) FatalExit("listen", bound.status().ToString().c_str());
    listen_addr_ = bound.value();
    pops_.set_on_connect([this](const std::string&, const Connection::Ptr& c) {
      pb::Envelope hello;
      FillHello(hello.mutable_hello());
      c->Call(hello, [](Result<pb::Envelope>) {});
    });
    pops_.set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) {
      // POPs answer our calls on these connections; requests come on ours.
      c->ReplyError(env.request_id(), ProtocolError("send requests on your own connection"));
    });
    dc_.set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) {
      if (!env.has_cluster_map())
        return c->ReplyError(env.request_id(), ProtocolError("the DC only pushes cluster maps"));
      if (env.cluster_map().epoch() > core_.cluster_map().epoch())
        MS_INFO("pop", "cluster map", "epoch=" + std::to_string(env.cluster_map().epoch()) +
                                          " pops=" + std::to_string(env.cluster_map().pops_size()));
      core_.OnClusterMap(loop_.NowMs(), env.cluster_map());
      pb::Envelope ok;
      ok.mutable_empty();
      c->Reply(env.request_id(), ok);
      Flush();
    });
    loop_.Every(uint64_t(cfg_.Int("tick_ms")), [this] {
      core_.OnTick(loop_.NowMs());
      Flush();
    });
    loop_.Every(uint64_t(cfg_.Int("map_refresh_ms")), [this] { RegisterWithDc(); });
    loop_.OnSignal(SIGTERM, [this] { Shutdown(); });
    loop_.OnSignal(SIGINT, [this] { Shutdown(); });
    RegisterWithDc();
    MS_INFO("pop", "ready", "listen=" + listen_addr_ + " pop_id=" + cfg_.Str("pop_id") +
                                " region=" + cfg_.Str("region"));
    loop_.Run();
    return 0;
  }

 private:
  static ConnectionLimits MakeLimits(const Config& cfg) {
    ConnectionLimits l;
    l.frame_bytes_max = size_t(cfg.Int("frame_bytes_max"));
    return l;
  }
  static PopParams MakeParams(const Config& cfg) {
    PopParams p;
    p.pop_id = uint32_t(cfg.Int("pop_id"));
    p.region = cfg.Str("region");
    p.k = int(cfg.Int("k"));
    p.m = int(cfg.Int("m"));
    p.cache_bytes_max = uint64_t(cfg.Int("cache_bytes_max"));
    p.placements_in_flight_max = size_t(cfg.Int("placements_in_flight_max"));
    return p;
  }

  void FillHello(pb::Hello* h) {
    h->set_role(pb::ROLE_POP);
    h->set_node_id(uint32_t(cfg_.Int("pop_id")));
    h->set_region(cfg_.Str("region"));
    h->set_listen_addr(listen_addr_);
  }

  void Shutdown() {
    MS_INFO("pop", "shutting down", "");
    listener_.Close();
    for (auto& [id, c] : conns_) c.conn->Close(Unavailable("shutting down"));
    pops_.CloseAll();
    dc_.CloseAll();
    loop_.Stop();
  }

  void RegisterWithDc() {
    pb::Envelope hello;
    FillHello(hello.mutable_hello());
    dc_.Call(cfg_.Str("dc"), hello, [this](Result<pb::Envelope> r) {
      if (!r.ok() || !r->has_hello_reply()) {
        if (!dc_warned_) {
          MS_WARN("pop", "cannot register with DC; retrying",
                  "error=\"" + (r.ok() ? std::string("bad reply") : r.status().ToString()) + "\"");
          dc_warned_ = true;
        }
        return;
      }
      dc_warned_ = false;
      if (r->hello_reply().map().epoch() != core_.cluster_map().epoch())
        MS_INFO("pop", "cluster map", "epoch=" + std::to_string(r->hello_reply().map().epoch()) +
                                          " pops=" + std::to_string(r->hello_reply().map().pops_size()));
      core_.OnClusterMap(loop_.NowMs(), r->hello_reply().map());
      Flush();
    }, 3000);
  }

  // ---- incoming connections: gateways and other POPs ----
  struct Conn {
    Connection::Ptr conn;
    Peer peer;
  };

  void OnAccept(const Connection::Ptr& c) {
    uint64_t id = next_conn_id_++;
    c->tag = id;
    conns_[id] = Conn{c, Peer{id}};
    c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) { OnRequest(c, env); });
    c->set_on_close([this](const Connection::Ptr& c, const Status& why) { OnClose(c, why); });
  }

  void OnClose(const Connection::Ptr& c, const Status& why) {
    auto it = conns_.find(c->tag);
    if (it == conns_.end()) return;
    Peer peer = it->second.peer;
    conns_.erase(it);
    if (peer.role == pb::ROLE_GATEWAY) {
      auto g = gateway_conn_.find(peer.node_id);
      if (g != gateway_conn_.end() && g->second == c->tag) {
        gateway_conn_.erase(g);
        MS_INFO("pop", "gateway disconnected", "gateway=" + std::to_string(peer.node_id) +
                                                   " reason=\"" + why.message() + "\"");
        core_.OnGatewayDown(loop_.NowMs(), peer.node_id);
        Flush();
      }
    }
  }

  void OnRequest(const Connection::Ptr& c, const pb::Envelope& env) {
    auto it = conns_.find(c->tag);
    if (it == conns_.end()) return;
    if (env.has_hello()) return HandleHello(it->second, env);
    if (it->second.peer.role == pb::ROLE_UNKNOWN)
      return c->ReplyError(env.request_id(),
                           Status(Code::kPermissionDenied, "say Hello before anything else"));
    core_.OnRequest(loop_.NowMs(), it->second.peer, env);
    Flush();
  }

  void HandleHello(Conn& conn, const pb::Envelope& env) {
    const pb::Hello& h = env.hello();
    if (h.role() != pb::ROLE_GATEWAY && h.role() != pb::ROLE_POP)
      return conn.conn->ReplyError(env.request_id(), InvalidArgument("POPs serve gateways and POPs"));
    conn.peer.role = h.role();
    conn.peer.node_id = h.node_id();
    conn.peer.subscriber = h.subscriber();
    pb::Envelope reply;
    reply.mutable_hello_reply()->set_node_id(uint32_t(cfg_.Int("pop_id")));
    *reply.mutable_hello_reply()->mutable_map() = core_.cluster_map();
    conn.conn->Reply(env.request_id(), reply);
    if (h.role() == pb::ROLE_GATEWAY) {
      auto old = gateway_conn_.find(h.node_id());
      if (old != gateway_conn_.end() && old->second != conn.conn->tag) {
        auto oc = conns_.find(old->second);
        if (oc != conns_.end()) oc->second.conn->Close(Unavailable("replaced by a new connection"));
      }
      gateway_conn_[h.node_id()] = conn.conn->tag;
      MS_INFO("pop", "gateway registered", "gateway=" + std::to_string(h.node_id()) +
                                               " free_bytes=" + std::to_string(h.store_bytes_free()));
      core_.OnGatewayUp(loop_.NowMs(),
                        GatewayState{h.node_id(), h.subscriber(), h.store_bytes_free(), true});
      Flush();
    }
  }

  // ---- PopCore's outbox onto the world ----
  void Flush() {
    for (;;) {
      Outbox out = core_.TakeOutbox();
      if (out.empty() && pending_jobs_.empty()) break;
      for (auto& r : out.replies) SendReply(r);
      for (auto& c : out.calls) SendCall(c);
      for (auto& j : out.jobs) pending_jobs_.push_back(std::move(j));
      PumpJobs();
      if (out.empty()) break;
    }
  }

  void SendReply(OutReply& r) {
    auto it = conns_.find(r.conn_id);
    if (it == conns_.end()) return;  // requester went away; nothing to deliver to
    it->second.conn->Reply(r.request_id, std::move(r.msg));
  }

  void SendCall(OutCall& c) {
    Token t = c.token;
    auto done = [this, t](Result<pb::Envelope> r) {
      core_.OnCallDone(loop_.NowMs(), t, std::move(r));
      Flush();
    };
    switch (c.to.kind) {
      case Dest::kDc:
        return dc_.Call(cfg_.Str("dc"), std::move(c.msg), done, c.timeout_ms);
      case Dest::kPop: {
        std::string addr;
        for (auto& p : core_.cluster_map().pops())
          if (p.pop_id() == c.to.id) addr = p.addr();
        if (addr.empty()) {
          return Defer([done, id = c.to.id] {
            done(Unavailable("POP " + std::to_string(id) + " is not in the cluster map"));
          });
        }
        return pops_.Call(addr, std::move(c.msg), done, c.timeout_ms);
      }
      case Dest::kGateway: {
        auto g = gateway_conn_.find(c.to.id);
        auto it = g == gateway_conn_.end() ? conns_.end() : conns_.find(g->second);
        if (it == conns_.end()) {
          return Defer([done, id = c.to.id] {
            done(Unavailable("gateway " + std::to_string(id) + " is not connected"));
          });
        }
        return it->second.conn->Call(std::move(c.msg), done, c.timeout_ms);
      }
    }
  }

  // Runs fn on the next loop turn (keeps PopCore from being re-entered).
  void Defer(std::function<void()> fn) { loop_.After(0, std::move(fn)); }

  void PumpJobs() {
    while (!pending_jobs_.empty()) {
      Job& j = pending_jobs_.front();
      Token t = j.token;
      Status st = loop_.QueueWork(j.run, [this, t] {
        core_.OnJobDone(loop_.NowMs(), t);
        Flush();
      });
      if (!st.ok()) break;  // pool busy: retried when a job finishes
      pending_jobs_.pop_front();
    }
  }

  const Config& cfg_;
  std::unique_ptr<SqlitePopStore> store_;
  EventLoop loop_;
  ConnectionLimits limits_;
  PopCore core_;
  Listener listener_;
  PeerPool pops_;
  PeerPool dc_;
  std::string listen_addr_;
  uint64_t next_conn_id_ = 1;
  std::map<uint64_t, Conn> conns_;
  std::map<uint32_t, uint64_t> gateway_conn_;
  std::deque<Job> pending_jobs_;
  bool dc_warned_ = false;
};

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  signal(SIGPIPE, SIG_IGN);
  Config cfg(PopKnobs());
  switch (ParseCommandLine("mistore-pop", "[--config FILE] [--name=value ...]", &cfg, argc, argv,
                           nullptr)) {
    case ArgsOutcome::kExitOk: return 0;
    case ArgsOutcome::kExitUsage: return 2;
    case ArgsOutcome::kRun: break;
  }
  Status st;
  if (st.ok() && cfg.Str("pop_id").empty()) st = InvalidArgument("--pop-id is required");
  if (st.ok() && cfg.Str("region").empty()) st = InvalidArgument("--region is required");
  LogLevel level;
  if (st.ok() && !ParseLogLevel(cfg.Str("log_level"), &level)) st = InvalidArgument("bad --log-level");
  if (!st.ok()) {
    std::fprintf(stderr, "mistore-pop: %s\n", st.message().c_str());
    return 2;
  }
  SetLogLevel(level);
  if (sodium_init() < 0) FatalExit("sodium_init", "failed");
  auto store = SqlitePopStore::Open(cfg.Str("data_dir"));
  if (!store.ok()) FatalExit("open data dir", store.status().ToString().c_str());
  PopDaemon d(cfg, std::move(store.value()));
  return d.Run();
}
