// mistore-pop: the point-of-presence daemon. This file is the libuv adapter
// around PopCore: it owns the listener, the connections to gateways, other
// POPs and the DC, and those of subscribers' enrolled devices working
// directly through this POP (issue 9, device_access.h), the timers and the
// worker pool, and moves PopCore's Outbox onto them. One loop thread;
// erasure coding runs on libuv's pool.
#include <netdb.h>
#include <signal.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <sstream>

#include "pop-server/device_access.h"
#include "pop-server/pop_core.h"
#include "pop-server/sqlite_pop_store.h"
#include "shared/core/config.h"
#include "shared/core/log.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/daemon_metrics.h"
#include "shared/uvio/enrolment_node.h"
#include "shared/uvio/peer_pool.h"
#include "shared/uvio/refusals.h"
#include "shared/uvio/sd_notify.h"

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
      {"placements_in_flight_max", "16",
       "chunks being placed on gateways at once (each holds the chunk and its fragments)",
       Knob::kInt},
      {"placement_bytes_per_gateway_max", "8388608",
       "fragment bytes sent to one gateway and not yet acknowledged, over all placements (its "
       "link also carries its devices' requests: more queues them behind fragments; 0: no "
       "limit)", Knob::kInt},
      {"push_chunks_in_flight_max", "8",
       "chunks sent at once to a replica POP when a write moves there (each holds one chunk "
       "in memory)", Knob::kInt},
      {"forward_chunks_in_flight_max", "8",
       "chunks sent on at once to an object's replica POPs while a client still uploads the "
       "rest here, so the commit finds them there (each holds one chunk in memory; 0: off, "
       "the commit's push sends them all)", Knob::kInt},
      {"forward_plan_entries_max", "65536",
       "chunks announced by clients and waiting to be forwarded on arrival (beyond: the "
       "commit's push sends them)", Knob::kInt},
      {"place_before_commit", "true",
       "a replica places a chunk on its gateways as soon as the chunk arrives, not after the "
       "version's commit (false: after the commit; writes that wait for placement then pay "
       "it after the upload)", Knob::kBool},
      {"staged_keep_s", "86400",
       "a chunk uploaded or sent here whose version never committed here is deleted, with the "
       "fragments placed for it, this long after it last arrived (if no version here names it "
       "and nothing uses it)", Knob::kInt},
      {"staged_placements_max", "65536",
       "chunks placed ahead of their commit at once (beyond: placed at the commit)", Knob::kInt},
      {"staged_tracked_max", "1048576",
       "staged chunks timed for deletion at once (beyond: timed from the next restart)",
       Knob::kInt},
      {"read_primary_first", "false",
       "reads entering here ask an object's acting primary first, its backup only when that "
       "fails (false: either at random per chunk, spreading a read over both replica regions)",
       Knob::kBool},
      {"frame_bytes_max", "8388608", "largest frame accepted from a peer", Knob::kInt},
      {"tick_ms", "500", "period of background retries (placement, reports)", Knob::kInt},
      {"map_refresh_ms", "1000", "period of cluster map refreshes from the DC", Knob::kInt},
      {"map_lease_ms", "5000",
       "without a reply from the DC for this long the POP no longer trusts its map: the DC may "
       "have marked it down (after its pop_silence_ms, which must be longer) and the other "
       "replica of an object may hold newer versions, so each object is re-synced with it "
       "before being served, until the DC answers again; no lock lease granted here outlives "
       "the last DC reply + this, and lock holders renew every min(lease, this)/3 (0: off)",
       Knob::kInt},
      {"metrics_listen", "127.0.0.1:0",
       "address of the Prometheus /metrics listener (port 0: any free port; off: none)"},
      {"monitor_report_ms", "1000", "period of this POP's summary to the DC's admin API",
       Knob::kInt},
      {"event_buffer_max", "4096",
       "operators' events (gateways lost, repairs, role changes) kept for the DC while it is "
       "unreachable; beyond it the oldest are dropped and counted", Knob::kInt},
      {"log_level", "info",
       "debug, info, warn or error; per component: info,pop=debug,uvio=warn"},
      {"gateway_grace_s", "900",
       "seconds a gateway may be silent (rebooting, unplugged) before it is declared lost and "
       "its fragments are rebuilt elsewhere", Knob::kInt},
      {"gateway_suspect_ms", "15000",
       "missed-heartbeat timeout before a gateway is suspected (doubles after each false "
       "suspicion)", Knob::kInt},
      {"repair_bytes_per_s", "52428800",
       "bandwidth budget of repair traffic (fragment reads and writes) in this region",
       Knob::kInt},
      {"repairs_in_flight_max", "4", "chunks being repaired at once", Knob::kInt},
      {"gc_poll_ms", "5000",
       "period of asking the DC for garbage-collection work (versions retention collected; "
       "0: never)", Knob::kInt},
      {"cold_after_s", "0",
       "seconds an object may go unread before this POP drops its copies of the object's "
       "chunks (they stay on gateways and at the DC backup; a read brings them back; 0: never)",
       Knob::kInt},
      {"share_cache_ttl_ms", "5000",
       "milliseconds the DC's answer to \"is this object shared with that subscriber?\" is "
       "kept (issue 4, read-only sharing): an unshare takes effect at this POP within it",
       Knob::kInt},
      {"share_cache_entries_max", "4096", "share answers kept at once (the soonest to expire go first)",
       Knob::kInt},
      {"cold_persist_s", "60",
       "seconds between writes of the objects' last-read times to the POP's store (one row "
       "per object read in the interval, one transaction), so cold tracking survives a "
       "restart; a crash forgets at most this much of the reads", Knob::kInt},
      {"held_results_s", "3600",
       "seconds the result of a gateway's commit is kept: a retry of the same write is "
       "answered with it, and a gateway that went away mid-commit gets it when it returns",
       Knob::kInt},
      {"held_results_per_gateway_max", "256", "commit results kept per gateway (oldest dropped)",
       Knob::kInt},
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
        pops_(&loop_, WithPeerRoles(limits_, {crypto::NodeRole::kPop})),
        dc_(&loop_, WithPeerRoles(limits_, {crypto::NodeRole::kDc})) {}

  int Run() {
    auto bound = listener_.Listen(cfg_.Str("listen"));
    if (!bound.ok()) FatalExit("listen", bound.status().ToString().c_str());
    listen_addr_ = bound.value();
    // Commit results kept before a restart (issue 6), before any input.
    core_.LoadHeldResults(loop_.NowMs(),
                          uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count()));
    renewer_.Start();  // certificate renewal (issue 4)
    pops_.set_on_connect([this](const std::string&, const Connection::Ptr& c) {
      pb::Envelope hello;
      FillHello(hello.mutable_hello());
      c->Call(hello, [](Result<pb::Envelope>) {});
    });
    pops_.set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) {
      // POPs answer our calls on these connections; requests come on ours.
      c->ReplyError(env.request_id(), ProtocolError("send requests on your own connection"));
    });
    // The DC serves a connection only after its Hello ("say Hello before
    // anything else"): it is said first on every new connection, before the
    // calls queued on it. Without this, a call made in the first moments
    // after a DC restart (before the next periodic RegisterWithDc) opened
    // the connection and was refused, and the client got that refusal.
    dc_.set_on_connect([this](const std::string&, const Connection::Ptr& c) {
      pb::Envelope hello;
      FillHello(hello.mutable_hello());
      c->Call(
          hello, [this](Result<pb::Envelope> r) { OnDcHelloReply(std::move(r)); }, 3000);
    });
    dc_.set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) {
      if (!env.has_cluster_map())
        return c->ReplyError(env.request_id(), ProtocolError("the DC only pushes cluster maps"));
      if (env.cluster_map().epoch() > core_.cluster_map().epoch())
        MS_INFO("pop", "cluster map", "epoch=" + std::to_string(env.cluster_map().epoch()) +
                                          " pops=" + std::to_string(env.cluster_map().pops_size()));
      core_.OnClusterMap(loop_.NowMs(), env.cluster_map());
      ApplyRevocations(env.cluster_map());
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
    StartMonitoring();
    MS_INFO("pop", "ready", "listen=" + listen_addr_ + " metrics=" + metrics_addr_ +
                                " pop_id=" + cfg_.Str("pop_id") +
                                " region=" + cfg_.Str("region"));
    // systemd (Type=notify): storage opened in main(), listeners bound above.
    notify_.Ready("serving on " + listen_addr_);
    loop_.Run();
    return 0;
  }

 private:
  static ConnectionLimits MakeLimits(const Config& cfg) {
    ConnectionLimits l;
    l.frame_bytes_max = size_t(cfg.Int("frame_bytes_max"));
    l = ApplyConnectionKnobs(l, cfg);  // hard limits (issue 4)
    // secure knob (issue 4): gateways, POPs and the DC may connect, and the
    // subscribers' enrolled devices (issue 9, device_access.h).
    return WithSecureTransport(l, cfg,
                               {crypto::NodeRole::kGateway, crypto::NodeRole::kPop,
                                crypto::NodeRole::kDc, crypto::NodeRole::kClient});
  }

  // Revocations in the cluster map (issue 4): later handshakes of those
  // nodes are refused and their open connections closed.
  void ApplyRevocations(const pb::ClusterMap& map) {
    if (!limits_.secure) return;
    std::set<uint32_t> ids(map.revoked_node_ids().begin(), map.revoked_node_ids().end());
    if (ids == *limits_.secure->revoked) return;
    MS_INFO("pop", "revocations", "nodes=" + std::to_string(ids.size()));
    auto conns = conns_;
    for (auto& [id, c] : conns) {
      const crypto::Certificate* cert = c.conn->peer_certificate();
      if (cert && ids.count(cert->node_id)) {
        MS_WARN("pop", "closing connection of a revoked node",
                "node=" + std::to_string(cert->node_id) + " peer=" + c.conn->peer());
        c.conn->Close(Status(Code::kPermissionDenied, "certificate revoked"));
      }
    }
    SetRevokedNodes(limits_, std::move(ids));
  }
  static PopParams MakeParams(const Config& cfg) {
    PopParams p;
    p.pop_id = uint32_t(cfg.Int("pop_id"));
    p.region = cfg.Str("region");
    p.k = int(cfg.Int("k"));
    p.m = int(cfg.Int("m"));
    p.cache_bytes_max = uint64_t(cfg.Int("cache_bytes_max"));
    p.placements_in_flight_max = size_t(cfg.Int("placements_in_flight_max"));
    p.placement_bytes_per_gateway_max =
        uint64_t(std::max<int64_t>(0, cfg.Int("placement_bytes_per_gateway_max")));
    p.push_chunks_in_flight_max =
        size_t(std::max<int64_t>(1, cfg.Int("push_chunks_in_flight_max")));
    p.forward_chunks_in_flight_max =
        size_t(std::max<int64_t>(0, cfg.Int("forward_chunks_in_flight_max")));
    p.forward_plan_entries_max = size_t(std::max<int64_t>(0, cfg.Int("forward_plan_entries_max")));
    p.place_before_commit = cfg.Bool("place_before_commit");
    p.staged_keep_ms = uint64_t(std::max<int64_t>(0, cfg.Int("staged_keep_s"))) * 1000;
    p.staged_placements_max = size_t(std::max<int64_t>(0, cfg.Int("staged_placements_max")));
    p.staged_tracked_max = size_t(std::max<int64_t>(0, cfg.Int("staged_tracked_max")));
    p.read_primary_first = cfg.Bool("read_primary_first");
    p.gateway_grace_ms = uint64_t(cfg.Int("gateway_grace_s")) * 1000;
    p.gateway_suspect_ms = uint64_t(cfg.Int("gateway_suspect_ms"));
    p.repair_bytes_per_s = uint64_t(cfg.Int("repair_bytes_per_s"));
    p.repairs_in_flight_max = size_t(cfg.Int("repairs_in_flight_max"));
    p.gc_poll_ms = uint64_t(std::max<int64_t>(0, cfg.Int("gc_poll_ms")));
    p.cold_after_ms = uint64_t(std::max<int64_t>(0, cfg.Int("cold_after_s"))) * 1000;
    p.cold_persist_ms = uint64_t(std::max<int64_t>(1, cfg.Int("cold_persist_s"))) * 1000;
    p.share_cache_ttl_ms = uint64_t(std::max<int64_t>(0, cfg.Int("share_cache_ttl_ms")));
    p.share_cache_entries_max = size_t(std::max<int64_t>(0, cfg.Int("share_cache_entries_max")));
    {  // last-use times are stored in wall-clock time; the loop's clock is monotonic
      using namespace std::chrono;
      auto ms = [](auto t) { return duration_cast<milliseconds>(t.time_since_epoch()).count(); };
      p.wall_clock_offset_ms = int64_t(ms(system_clock::now()) - ms(steady_clock::now()));
    }
    p.push_map_to_gateways = true;  // map changes reach the agents (pop_map_push.cc)
    p.event_buffer_max = cfg.Int("event_buffer_max") < 1 ? 1 : size_t(cfg.Int("event_buffer_max"));
    p.held_results_ms = uint64_t(cfg.Int("held_results_s")) * 1000;
    p.map_lease_ms = uint64_t(std::max<int64_t>(0, cfg.Int("map_lease_ms")));
    p.held_results_per_gateway_max = size_t(cfg.Int("held_results_per_gateway_max"));
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
    core_.FlushColdTracking(loop_.NowMs());  // last-read times kept (issue 7)
    notify_.Stopping();
    listener_.Close();
    auto conns = conns_;  // Close() runs OnClose, which erases from conns_
    for (auto& [id, c] : conns) c.conn->Close(Unavailable("shutting down"));
    pops_.CloseAll();
    dc_.CloseAll();
    loop_.Stop();
  }

  void RegisterWithDc() {
    pb::Envelope hello;
    FillHello(hello.mutable_hello());
    dc_.Call(
        cfg_.Str("dc"), hello, [this](Result<pb::Envelope> r) { OnDcHelloReply(std::move(r)); },
        3000);
  }

  void OnDcHelloReply(Result<pb::Envelope> r) {
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
      MS_INFO("pop", "cluster map",
              "epoch=" + std::to_string(r->hello_reply().map().epoch()) +
                  " pops=" + std::to_string(r->hello_reply().map().pops_size()));
    core_.OnDcContact(loop_.NowMs());
    core_.OnClusterMap(loop_.NowMs(), r->hello_reply().map());
    ApplyRevocations(r->hello_reply().map());
    Flush();
  }

  // ---- incoming connections: gateways, other POPs, devices ----
  struct Conn {
    Connection::Ptr conn;
    Peer peer;
    bool device = false;  // a subscriber's device (issue 9, device_access.h)
  };

  void OnAccept(const Connection::Ptr& c) {
    uint64_t id = next_conn_id_++;
    c->tag = id;
    Conn conn;
    conn.conn = c;
    conn.peer.conn_id = id;
    conns_[id] = std::move(conn);
    c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) { OnRequest(c, env); });
    c->set_on_close([this](const Connection::Ptr& c, const Status& why) { OnClose(c, why); });
  }

  void OnClose(const Connection::Ptr& c, const Status& why) {
    auto it = conns_.find(c->tag);
    if (it == conns_.end()) return;
    Peer peer = it->second.peer;
    const bool device = it->second.device;
    conns_.erase(it);
    metrics_.ForgetConnection(c->tag);
    core_.OnConnectionClosed(loop_.NowMs(), c->tag);
    if (peer.role == pb::ROLE_GATEWAY && !device) {
      auto g = gateway_conn_.find(peer.node_id);
      if (g != gateway_conn_.end() && g->second == c->tag) {
        gateway_conn_.erase(g);
        MS_INFO("pop", "gateway disconnected", "gateway=" + std::to_string(peer.node_id) +
                                                   " reason=\"" + why.message() + "\"");
        core_.OnGatewayDown(loop_.NowMs(), peer.node_id);
        TrackGateway(peer.node_id, peer.subscriber, false, 0);
        Flush();
      }
    }
  }

  void OnRequest(const Connection::Ptr& c, const pb::Envelope& env) {
    auto it = conns_.find(c->tag);
    if (it == conns_.end()) return;
    if (env.has_hello()) return HandleHello(it->second, env);
    if (it->second.peer.role == pb::ROLE_UNKNOWN && !DeviceMayCall(env.body_case()))
      return c->ReplyError(env.request_id(),
                           Status(Code::kPermissionDenied, "say Hello before anything else"));
    if (Status st = CheckDevice(it->second, env); !st.ok())
      return c->ReplyError(env.request_id(), st);
    metrics_.Hold(c->tag, env.request_id(), metrics_.Received(env));
    core_.OnRequest(loop_.NowMs(), it->second.peer, env);
    Flush();
  }

  // A connection without Hello sending the client data path is a device
  // working directly through this POP (issue 9): admitted once from its
  // certificate, each request checked (device_access.h).
  Status CheckDevice(Conn& conn, const pb::Envelope& env) {
    if (conn.device) return CheckDeviceRequest(conn.peer, env);
    if (conn.peer.role != pb::ROLE_UNKNOWN) return Status::Ok();
    auto p = AdmitDevice(conn.conn->tag, conn.conn->peer_certificate(), env);
    if (!p.ok()) {
      MS_WARN("pop", "device refused",
              "peer=" + conn.conn->peer() + " error=\"" + p.status().message() + "\"");
      return p.status();
    }
    conn.peer = p.value();
    conn.device = true;
    devices_admitted_++;
    MS_INFO("pop", "device connected",
            "device=" + std::to_string(conn.peer.node_id) + " subscriber=" +
                conn.peer.subscriber + " peer=" + conn.conn->peer());
    return Status::Ok();
  }

  void HandleHello(Conn& conn, const pb::Envelope& env) {
    const pb::Hello& h = env.hello();
    if (conn.device)
      return conn.conn->ReplyError(env.request_id(),
                                   Status(Code::kPermissionDenied, "a device cannot say Hello"));
    if (h.role() != pb::ROLE_GATEWAY && h.role() != pb::ROLE_POP)
      return conn.conn->ReplyError(env.request_id(), InvalidArgument("POPs serve gateways and POPs"));
    conn.peer.role = h.role();
    conn.peer.node_id = h.node_id();
    conn.peer.subscriber = h.subscriber();
    pb::Envelope reply;
    reply.mutable_hello_reply()->set_node_id(uint32_t(cfg_.Int("pop_id")));
    // Gateways get their region's part of the map (pop_map_push.cc).
    *reply.mutable_hello_reply()->mutable_map() =
        h.role() == pb::ROLE_GATEWAY ? core_.MapForGateways() : core_.cluster_map();
    conn.conn->Reply(env.request_id(), reply);
    if (h.role() == pb::ROLE_GATEWAY) {
      auto old = gateway_conn_.find(h.node_id());
      if (old != gateway_conn_.end() && old->second != conn.conn->tag) {
        auto oc = conns_.find(old->second);
        if (oc != conns_.end()) oc->second.conn->Close(Unavailable("replaced by a new connection"));
      }
      gateway_conn_[h.node_id()] = conn.conn->tag;
      TrackGateway(h.node_id(), h.subscriber(), true, h.store_bytes_free());
      MS_INFO("pop", "gateway registered", "gateway=" + std::to_string(h.node_id()) +
                                               " free_bytes=" + std::to_string(h.store_bytes_free()));
      core_.OnGatewayUp(loop_.NowMs(),
                        GatewayState{h.node_id(), h.subscriber(), h.store_bytes_free(), true});
      Flush();
    }
  }

  // ---- PopCore's outbox onto the world ----
  void Flush() {
    // Shared reads PopCore refused (issue 4) count with the transport's
    // refusals: mistore_requests_refused_total{reason="unauthorized"}.
    if (uint64_t n = core_.shares_refused_total(); n > shares_refused_counted_) {
      ProcessRefusals()->requests_unauthorized.Inc(n - shares_refused_counted_);
      shares_refused_counted_ = n;
    }
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
    metrics_.ReleaseHeld(r.conn_id, r.request_id, r.msg);
    it->second.conn->Reply(r.request_id, std::move(r.msg));
  }

  void SendCall(OutCall& c) {
    Token t = c.token;
    auto done = [this, t, mc = MonitorCall(c)](Result<pb::Envelope> r) {
      MonitorCallDone(mc, r);
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
      Status st = loop_.QueueWork(TimedJob(j.run), [this, t] {
        core_.OnJobDone(loop_.NowMs(), t);
        Flush();
      });
      if (!st.ok()) break;  // pool busy: retried when a job finishes
      pending_jobs_.pop_front();
    }
  }

  // ---- monitoring (issue 8): /metrics, and the summary for the DC's admin API ----
  static std::vector<std::string> ServedTypes() {
    return {"put_chunk", "put_commit", "get_version", "get_chunk", "list_objects",
            "get_placement", "store_chunk", "commit_version", "fetch_version", "fetch_chunk",
            "finalize_version", "acquire_lock", "renew_lock", "release_lock"};
  }
  static std::vector<std::string> CalledTypes() {
    return {"store_chunk", "commit_version", "fetch_version", "fetch_chunk", "finalize_version",
            "acquire_lock", "renew_lock", "release_lock", "claim_name", "lookup_name",
            "list_objects", "report_version", "store_fragment", "fetch_fragment",
            "pop_event_report"};
  }

  void StartMonitoring() {
    auto bound = metrics_.Serve(cfg_.Str("metrics_listen"));
    if (!bound.ok()) FatalExit("metrics_listen", bound.status().ToString().c_str());
    metrics_addr_ = bound.value();
    MetricsRegistry& r = metrics_.registry();
    ExportRefusalMetrics(&r);  // issue 4
    r.AddGaugeFn("mistore_cluster_map_epoch", "Epoch of the cluster map this node holds.",
                 [this] { return double(core_.cluster_map().epoch()); });
    r.AddCounterFn("mistore_pop_maps_pushed_total",
                   "Cluster maps pushed to connected gateways on epoch changes.",
                   [this] { return double(core_.maps_pushed_total()); });
    r.AddCounterFn("mistore_pop_devices_admitted_total",
                   "Connections of subscribers' devices served directly (mistore --pop).",
                   [this] { return double(devices_admitted_); });
    r.AddGaugeFn("mistore_pop_gateways", "Gateways of this POP's region, by state.",
                 [this] { return double(gateway_conn_.size()); }, {{"state", "connected"}});
    r.AddGaugeFn("mistore_pop_gateways", "Gateways of this POP's region, by state.",
                 [this] { return double(monitor_gateways_.size() - gateway_conn_.size()); },
                 {{"state", "lost"}});
    r.AddGaugeFn("mistore_pop_placements_in_flight", "Chunks being placed on gateways now.",
                 [this] { return double(core_.placements_in_flight()); });
    r.AddGaugeFn("mistore_pop_placement_queue_chunks",
                 "Chunks waiting for placement (not yet at full redundancy).",
                 [this] { return double(core_.placement_queue_size()); });
    r.AddCounterFn("mistore_pop_cache_hits_total",
                   "Chunk reads served from this POP's own copy.",
                   [this] { return double(core_.cache_hits_total()); });
    r.AddCounterFn("mistore_pop_cache_misses_total",
                   "Chunk reads this POP had to fetch (fragments or another replica).",
                   [this] { return double(core_.cache_misses_total()); });
    r.AddCounterFn("mistore_pop_lease_expiries_total",
                   "Locks dropped at this POP (as primary) because their lease ran out.",
                   [this] { return double(core_.lease_expiries_total()); });
    r.AddCounterFn("mistore_pop_fragments_bad_total",
                   "Fragments found failing their check, on read or reported by a gateway.",
                   [this] { return double(core_.fragments_bad_total()); });
    r.AddCounterFn("mistore_pop_fragments_forged_total",
                   "Fragments that passed their own check but disagreed with the other "
                   "fragments of their chunk on a read (located by redundancy, re-placed).",
                   [this] { return double(core_.fragments_forged_total()); });
    r.AddCounterFn("mistore_pop_chunks_pushed_total",
                   "Chunks sent to a replica POP (StoreChunk) when a write moved there.",
                   [this] { return double(core_.chunks_pushed_total()); });
    r.AddCounterFn("mistore_pop_chunks_push_skipped_total",
                   "Chunks a push to a replica POP skipped because it held them already.",
                   [this] { return double(core_.chunks_push_skipped_total()); });
    r.AddCounterFn("mistore_pop_chunks_forwarded_total",
                   "Chunks sent on to a replica POP as a client uploaded them here, before "
                   "the commit (forward_chunks_in_flight_max).",
                   [this] { return double(core_.chunks_forwarded_total()); });
    r.AddCounterFn("mistore_pop_chunk_forwards_failed_total",
                   "Forwards to a replica POP that failed (the commit's push sent those chunks).",
                   [this] { return double(core_.chunk_forwards_failed_total()); });
    r.AddCounterFn("mistore_pop_chunks_placed_before_commit_total",
                   "Chunks whose fragments were all placed on gateways while the chunk was "
                   "still staged, before its version's commit (place_before_commit).",
                   [this] { return double(core_.chunks_placed_before_commit_total()); });
    r.AddCounterFn("mistore_pop_staged_chunks_dropped_total",
                   "Staged chunks deleted because no commit came within staged_keep_s.",
                   [this] { return double(core_.staged_chunks_dropped_total()); });
    r.AddCounterFn("mistore_pop_staged_bytes_dropped_total",
                   "Payload bytes of the staged chunks deleted (staged_keep_s).",
                   [this] { return double(core_.staged_bytes_dropped_total()); });
    r.AddCounterFn("mistore_pop_staged_fragments_swept_total",
                   "Staged chunks whose fragments, placed before a commit that never came, "
                   "were deleted from the gateways.",
                   [this] { return double(core_.staged_fragments_swept_total()); });
    r.AddGaugeFn("mistore_pop_staged_chunks_placed",
                 "Staged chunks placed ahead of their commit and not committed yet.",
                 [this] { return double(core_.staged_chunks_placed()); });
    r.AddGaugeFn("mistore_pop_staged_chunks_tracked",
                 "Staged chunks timed for deletion should their commit not come.",
                 [this] { return double(core_.staged_chunks_tracked()); });
    r.AddCounterFn("mistore_pop_forward_plans_skipped_total",
                   "Chunks not forwarded during the upload because forward_plan_entries_max "
                   "was reached.",
                   [this] { return double(core_.forward_plans_skipped_total()); });
    r.AddCounterFn("mistore_pop_fragments_forged_reported_total",
                   "Fragments a client found failing their keyed tag and reported "
                   "(also in fragments_forged_total).",
                   [this] { return double(core_.fragments_forged_reported_total()); });
    r.AddCounterFn("mistore_pop_gc_chunk_bytes_dropped_total",
                   "Chunk payload bytes garbage collection removed from this POP.",
                   [this] { return double(core_.gc_stats().chunk_bytes_dropped_total); });
    r.AddCounterFn("mistore_pop_gc_fragments_deleted_total",
                   "Fragments of garbage-collected chunks deleted from this POP's gateways.",
                   [this] { return double(core_.gc_stats().fragments_deleted_total); });
    r.AddGaugeFn("mistore_pop_cold_objects", "Objects this POP dropped from its disk as cold.",
                 [this] { return double(core_.gc_stats().objects_cold); });
    r.AddCounterFn("mistore_pop_shared_reads_total",
                   "Reads of another subscriber's object served under a share (issue 4).",
                   [this] { return double(core_.shared_reads_total()); });
    r.AddCounterFn("mistore_pop_share_checks_total",
                   "Questions to the DC whether an object is shared with a subscriber.",
                   [this] { return double(core_.share_gate().checks_total()); });
    r.AddCounterFn("mistore_pop_epoch_refusals_total",
                   "Role-dependent requests refused for a cluster-map epoch mismatch.",
                   [this] { return double(core_.epoch_refusals_total()); });
    r.AddGaugeFn("mistore_pop_lock_objects", "Objects with lock state at this POP (as primary).",
                 [this] { return double(core_.locks().objects()); });
    r.AddGaugeFn("mistore_pop_entry_locks_held", "Locks held through this POP for its clients.",
                 [this] { return double(core_.entry_locks_held()); });
    r.AddGaugeFn("mistore_pop_jobs_queued", "Erasure-coding jobs waiting for the worker pool.",
                 [this] { return double(pending_jobs_.size()); });
    r.AddGaugeFn("mistore_pop_jobs_in_flight", "Erasure-coding jobs on the worker pool.",
                 [this] { return double(loop_.work_in_flight()); });
    r.AddGaugeFn("mistore_pop_connections", "Open connections from gateways and POPs.",
                 [this] { return double(conns_.size()); });
    fragments_placed_ = &r.AddCounter("mistore_pop_fragments_placed_total",
                                      "Fragments that gateways acknowledged storing.");
    fragment_bytes_placed_ = &r.AddCounter("mistore_pop_fragment_placed_bytes_total",
                                           "Bytes of fragments that gateways acknowledged storing.");
    AddDurabilityMetrics(r);
    job_seconds_ = &r.AddHistogram("mistore_pop_job_duration_seconds",
                                   "Time erasure-coding jobs ran on the worker pool, in seconds.",
                                   LatencyBuckets());
    loop_.Every(uint64_t(cfg_.Int("monitor_report_ms")), [this] { ReportToDc(); });
  }

  // Region durability (issue 6): failure detector, redundancy, repair progress.
  void AddDurabilityMetrics(MetricsRegistry& r) {
    for (GwState s : {GwState::kAlive, GwState::kSuspected, GwState::kLost})
      r.AddGaugeFn("mistore_gateways_detector", "Gateways by failure-detector state.",
                   [this, s] { return double(core_.members().Count(s)); },
                   {{"state", GwStateName(s)}});
    r.AddGaugeFn("mistore_chunks_below_redundancy",
                 "Placed chunks with fewer than k+m usable fragments in this region.",
                 [this] { return double(core_.chunks_below_redundancy()); });
    r.AddGaugeFn("mistore_repair_queue_chunks", "Chunks waiting for repair.",
                 [this] { return double(core_.repair_stats().queued_chunks); });
    r.AddGaugeFn("mistore_repair_in_flight_chunks", "Chunks being repaired now.",
                 [this] { return double(core_.repair_stats().in_flight_chunks); });
    r.AddGaugeFn("mistore_repair_queue_bytes", "Estimated repair traffic still to do, in bytes.",
                 [this] { return double(core_.repair_stats().queued_bytes); });
    r.AddGaugeFn("mistore_repair_eta_seconds",
                 "Queued repair traffic divided by the repair bandwidth budget.",
                 [this] { return core_.repair_stats().eta_s; });
    r.AddCounterFn("mistore_repair_bytes_total", "Repair traffic (fragment reads and writes).",
                   [this] { return double(core_.repair_stats().bytes_total); });
    r.AddCounterFn("mistore_repair_chunks_total", "Chunks brought back to k+m fragments.",
                   [this] { return double(core_.repair_stats().repaired_chunks_total); });
    r.AddCounterFn("mistore_repair_fragments_total", "Fragments rebuilt and stored elsewhere.",
                   [this] { return double(core_.repair_stats().repaired_fragments_total); });
    r.AddCounterFn("mistore_repair_failures_total", "Repairs that failed and were retried.",
                   [this] { return double(core_.repair_stats().failed_total); });
    r.AddGaugeFn("mistore_held_results", "Commit results kept for retries (held_results_s).",
                 [this] { return double(core_.held_results_stats().held); });
    r.AddGaugeFn("mistore_held_results_undelivered",
                 "Kept commit results whose gateway went away before they completed.",
                 [this] { return double(core_.held_results_stats().undelivered); });
    r.AddCounterFn("mistore_held_results_delivered_total",
                   "Kept commit results delivered to a gateway that returned.",
                   [this] { return double(core_.held_results_stats().delivered_total); });
    r.AddCounterFn("mistore_held_results_answered_total",
                   "Retried commits answered with a kept result.",
                   [this] { return double(core_.held_results_stats().answered_total); });
    r.AddGaugeFn("mistore_pop_events_buffered", "Operators' events waiting for the DC.",
                 [this] { return double(core_.events().size()); });
    r.AddCounterFn("mistore_pop_events_dropped_total",
                   "Operators' events dropped because the buffer for the DC was full.",
                   [this] { return double(core_.events().dropped_total()); });
    r.AddCounterFn("mistore_fragments_deleted_total",
                   "Surplus or bad fragments deleted from gateways.",
                   [this] { return double(core_.fragments_deleted_total()); });
  }

  // The job runs on libuv's worker pool: it only touches the histogram's atomics.
  std::function<void()> TimedJob(std::function<void()> run) {
    return [run = std::move(run), h = job_seconds_] {
      auto t0 = DaemonMetrics::Clock::now();
      run();
      h->Observe(std::chrono::duration<double>(DaemonMetrics::Clock::now() - t0).count());
    };
  }

  struct MonitoredCall {
    DaemonMetrics::Op op;
    uint32_t gateway = 0;  // a StoreFragment to this gateway
    uint64_t fragment_bytes = 0;
  };
  MonitoredCall MonitorCall(const OutCall& c) {
    MonitoredCall mc{metrics_.Calling(c.msg)};
    if (c.to.kind == Dest::kGateway && c.msg.has_store_fragment()) {
      mc.gateway = c.to.id;
      mc.fragment_bytes = c.msg.store_fragment().fragment().size();
    }
    return mc;
  }
  void MonitorCallDone(const MonitoredCall& mc, const Result<pb::Envelope>& r) {
    metrics_.CallDone(mc.op, r);
    if (mc.gateway == 0 || !r.ok() || r->has_error()) return;
    fragments_placed_->Inc();
    fragment_bytes_placed_->Inc(mc.fragment_bytes);
    auto it = monitor_gateways_.find(mc.gateway);
    if (it == monitor_gateways_.end()) return;
    pb::MonitorGateway& g = it->second.info;
    g.set_fragments_stored(g.fragments_stored() + 1);
    g.set_fragment_bytes_stored(g.fragment_bytes_stored() + mc.fragment_bytes);
  }

  struct MonitoredGateway {
    pb::MonitorGateway info;
    uint64_t since_ms = 0;
  };
  void TrackGateway(uint32_t id, const std::string& subscriber, bool connected, uint64_t free) {
    MonitoredGateway& g = monitor_gateways_[id];
    g.info.set_gateway_id(id);
    g.info.set_subscriber(subscriber);
    g.info.set_connected(connected);
    if (connected) g.info.set_store_bytes_free(free);
    g.since_ms = loop_.NowMs();
    if (monitor_gateways_.size() <= kMonitoredGatewaysMax) return;
    auto oldest = monitor_gateways_.end();  // forget the longest-lost one
    for (auto it = monitor_gateways_.begin(); it != monitor_gateways_.end(); ++it)
      if (!it->second.info.connected() &&
          (oldest == monitor_gateways_.end() || it->second.since_ms < oldest->second.since_ms))
        oldest = it;
    if (oldest != monitor_gateways_.end()) monitor_gateways_.erase(oldest);
  }

  void ReportToDc() {
    if (report_in_flight_) return;
    uint64_t now = loop_.NowMs();
    pb::Envelope env;
    pb::MonitorPopSummary* s = env.mutable_monitor_pop_summary();
    s->set_pop_id(uint32_t(cfg_.Int("pop_id")));
    s->set_region(cfg_.Str("region"));
    s->set_version(kMistoreVersion);
    s->set_uptime_ms(now - started_ms_);
    s->set_k(uint32_t(cfg_.Int("k")));
    s->set_m(uint32_t(cfg_.Int("m")));
    s->set_map_epoch(core_.cluster_map().epoch());
    for (auto& [id, g] : monitor_gateways_) {
      pb::MonitorGateway* mg = s->add_gateways();
      *mg = g.info;
      mg->set_state_for_ms(now - g.since_ms);
    }
    s->set_placement_queue(core_.placement_queue_size());
    s->set_placements_in_flight(core_.placements_in_flight());
    s->set_lock_objects(core_.locks().objects());
    s->set_entry_locks_held(core_.entry_locks_held());
    s->set_jobs_queued(pending_jobs_.size());
    s->set_jobs_in_flight(uint64_t(loop_.work_in_flight()));
    s->set_requests_total(metrics_.requests_total());
    s->set_request_errors_total(metrics_.request_errors_total());
    s->set_request_seconds_total(metrics_.request_seconds_total());
    s->set_received_bytes_total(metrics_.received_bytes());
    s->set_sent_bytes_total(metrics_.sent_bytes());
    core_.FillRepairSummary(s);  // issue 8: the region's repair state
    report_in_flight_ = true;
    dc_.Call(cfg_.Str("dc"), std::move(env),
             [this](Result<pb::Envelope>) { report_in_flight_ = false; }, 3000);
    ReportEvents();
  }

  // Operators' events (pop_report.h): one batch in flight; the next goes as
  // soon as the DC acknowledged this one, or at the next report period.
  void ReportEvents() {
    pb::Envelope env;
    pb::PopEventReport* r = env.mutable_pop_event_report();
    if (!core_.events().NextBatch(loop_.NowMs(), r)) return;
    r->set_pop_id(uint32_t(cfg_.Int("pop_id")));
    r->set_boot_id(boot_id_);
    dc_.Call(cfg_.Str("dc"), std::move(env), [this](Result<pb::Envelope> reply) {
      if (reply.ok() && !reply->has_error()) {
        core_.events().Acked();
        ReportEvents();
      } else {
        core_.events().Failed();
      }
    }, 3000);
  }

  const Config& cfg_;
  std::unique_ptr<SqlitePopStore> store_;
  EventLoop loop_;
  ConnectionLimits limits_;
  PopCore core_;
  uint64_t shares_refused_counted_ = 0;  // of core_.shares_refused_total(), see Flush
  Listener listener_;
  PeerPool pops_;
  PeerPool dc_;
  enrol::CertRenewer renewer_{&loop_, cfg_, limits_, crypto::NodeRole::kPop};
  std::string listen_addr_;
  uint64_t next_conn_id_ = 1;
  std::map<uint64_t, Conn> conns_;
  std::map<uint32_t, uint64_t> gateway_conn_;
  uint64_t devices_admitted_ = 0;  // issue 9: device connections served
  std::deque<Job> pending_jobs_;
  bool dc_warned_ = false;
  // ---- monitoring (issue 8)
  static constexpr size_t kMonitoredGatewaysMax = 100000;
  DaemonMetrics metrics_{&loop_, "pop", ServedTypes(), CalledTypes()};
  std::string metrics_addr_;
  Counter* fragments_placed_ = nullptr;
  Counter* fragment_bytes_placed_ = nullptr;
  Histogram* job_seconds_ = nullptr;
  std::map<uint32_t, MonitoredGateway> monitor_gateways_;  // every gateway seen, bounded
  bool report_in_flight_ = false;
  uint64_t started_ms_ = loop_.NowMs();
  uint64_t boot_id_ = randombytes_random() | uint64_t(randombytes_random()) << 32;
  SdNotifier notify_{&loop_, "pop"};  // READY/WATCHDOG/STOPPING to systemd
};

// `mistore-pop status`: asks the running POP (its /metrics listener at
// `metrics_listen`) and prints its gateways, redundancy and repair progress.
std::map<std::string, double> ScrapeMetrics(const std::string& addr, Status* st) {
  std::map<std::string, double> out;
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) {
    *st = InvalidArgument("metrics_listen must be HOST:PORT, got '" + addr + "'");
    return out;
  }
  std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    *st = Unavailable("cannot resolve " + addr);
    return out;
  }
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  bool connected = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
  freeaddrinfo(res);
  if (!connected) {
    if (fd >= 0) close(fd);
    *st = Unavailable("no POP answers at " + addr + " (is it running with this metrics_listen?)");
    return out;
  }
  std::string req = "GET /metrics HTTP/1.0\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != ssize_t(req.size())) {
    close(fd);
    *st = Unavailable("cannot send to " + addr);
    return out;
  }
  std::string body;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0 && body.size() < (64u << 20);)
    body.append(buf, size_t(n));
  close(fd);
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  if (out.empty()) *st = Unavailable("no metrics from " + addr);
  return out;
}

int PopStatus(const std::string& metrics_addr) {
  Status st;
  auto m = ScrapeMetrics(metrics_addr, &st);
  if (!st.ok()) {
    std::fprintf(stderr, "mistore-pop status: %s\n", st.message().c_str());
    return 1;
  }
  auto v = [&m](const std::string& k) { return uint64_t(m.count(k) ? m[k] : 0); };
  std::printf("gateways: alive %llu suspected %llu lost %llu\n",
              (unsigned long long)v("mistore_gateways_detector{state=\"alive\"}"),
              (unsigned long long)v("mistore_gateways_detector{state=\"suspected\"}"),
              (unsigned long long)v("mistore_gateways_detector{state=\"lost\"}"));
  std::printf("below redundancy: %llu\n", (unsigned long long)v("mistore_chunks_below_redundancy"));
  std::printf("repair queue: %llu chunks, %llu in flight, %llu bytes, eta %.1f s\n",
              (unsigned long long)v("mistore_repair_queue_chunks"),
              (unsigned long long)v("mistore_repair_in_flight_chunks"),
              (unsigned long long)v("mistore_repair_queue_bytes"),
              m.count("mistore_repair_eta_seconds") ? m["mistore_repair_eta_seconds"] : 0.0);
  std::printf("repaired: %llu chunks, %llu fragments, %llu bytes, %llu failures, %llu deleted\n",
              (unsigned long long)v("mistore_repair_chunks_total"),
              (unsigned long long)v("mistore_repair_fragments_total"),
              (unsigned long long)v("mistore_repair_bytes_total"),
              (unsigned long long)v("mistore_repair_failures_total"),
              (unsigned long long)v("mistore_fragments_deleted_total"));
  return 0;
}

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  signal(SIGPIPE, SIG_IGN);
  Config cfg(enrol::WithNodeEnrolmentKnobs(WithSecureTransportKnobs(PopKnobs())));
  std::vector<std::string> positional;
  switch (ParseCommandLine("mistore-pop", "[status] [--config FILE] [--name=value ...]", &cfg,
                           argc, argv, &positional)) {
    case ArgsOutcome::kExitOk: return 0;
    case ArgsOutcome::kExitUsage: return 2;
    case ArgsOutcome::kRun: break;
  }
  if (positional.size() == 1 && positional[0] == "status")
    return PopStatus(cfg.Str("metrics_listen"));
  if (!positional.empty()) {
    std::fprintf(stderr, "mistore-pop: unknown command '%s' (try status)\n", positional[0].c_str());
    return 2;
  }
  // Enrolment by token (issue 4): the certificate decides pop_id and region.
  if (Status e = enrol::PrepareNodeIdentity(&cfg, crypto::NodeRole::kPop, {"pop_id", "region", ""});
      !e.ok()) {
    std::fprintf(stderr, "mistore-pop: %s\n", e.message().c_str());
    return 1;
  }
  Status st;
  if (st.ok() && cfg.Str("pop_id").empty()) st = InvalidArgument("--pop-id is required");
  if (st.ok() && cfg.Str("region").empty()) st = InvalidArgument("--region is required");
  if (st.ok() && !ApplyLogLevels(cfg.Str("log_level"))) st = InvalidArgument("bad --log-level");
  if (!st.ok()) {
    std::fprintf(stderr, "mistore-pop: %s\n", st.message().c_str());
    return 2;
  }
  if (sodium_init() < 0) FatalExit("sodium_init", "failed");
  auto store = SqlitePopStore::Open(cfg.Str("data_dir"));
  if (!store.ok()) FatalExit("open data dir", store.status().ToString().c_str());
  PopDaemon d(cfg, std::move(store.value()));
  return d.Run();
}
