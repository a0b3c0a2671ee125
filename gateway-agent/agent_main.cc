// mistore-agent: the home-gateway agent. One libuv loop:
//  - keeps a connection to one of its POPs (the first reachable of `pops`,
//    the next when it is gone, back to a preferred one when it returns:
//    PopSelector in pop_selector.h decides, this file dials), says Hello
//    with its gateway id, subscriber and free space; the POP's fragment
//    requests, heartbeats, inventories, bad-fragment reports and the
//    scrubber are AgentCore's (agent_core.h): this file is its libuv
//    adapter (moves its outbox onto the POP connection, arms one timer for
//    its next wake-up);
//  - listens for the subscriber's devices (the `mistore` client) on the LAN
//    and relays their requests to its POP, stamped with its gateway id; it
//    refuses requests for any other subscriber;
//  - keeps the sealed chunks its devices read or wrote in a bounded cache
//    (chunk_cache.h, issue 11) and answers a GetChunk for one of them
//    without asking the POP.
// Fragment files are small (chunk/k); their fsync runs on the loop thread.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "gateway-agent/agent_core.h"
#include "gateway-agent/chunk_cache.h"
#include "gateway-agent/enrol_pairing.h"
#include "gateway-agent/pop_selector.h"
#include "shared/core/config.h"
#include "shared/core/log.h"
#include "shared/store/fragment_store.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/daemon_metrics.h"
#include "shared/uvio/enrolment_node.h"
#include "shared/uvio/sd_notify.h"
#include "shared/wire/envelope.h"

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
      {"store_fragments_max", "150000",
       "most fragments held (bounds the in-memory index and the inventory message)", Knob::kInt},
      {"store_verify_at_start", "false",
       "read every fragment at start (else only headers and lengths; the scrubber reads the rest)",
       Knob::kBool},
      {"heartbeat_ms", "3000", "interval between heartbeats to the POP", Knob::kInt},
      {"scrub_period_s", "604800", "the scrubber reads every fragment once within this period",
       Knob::kInt},
      {"background_io_bytes_per_s", "1048576",
       "disk reads allowed for background work (scrub, repair reads), bytes per second",
       Knob::kInt},
      {"failure_domains", "",
       "this gateway's failure-domain labels, comma list of key=value (cabinet=c12,power=p3)"},
      {"frame_bytes_max", "8388608", "largest frame accepted from a peer", Knob::kInt},
      {"reconnect_ms", "1000", "delay before re-dialling a lost POP connection", Knob::kInt},
      {"pops", "",
       "this gateway's POPs in order of preference, comma list of HOST:PORT (at most 16); the "
       "first reachable is used, the next when it is gone; when set, replaces pop"},
      {"reconnect_max_ms", "30000",
       "after a round in which no POP answered, the wait doubles from reconnect_ms up to this",
       Knob::kInt},
      {"pop_failback_ms", "60000",
       "while on a POP other than the first, how often the preferred ones are probed (the "
       "agent returns to the first that answers)",
       Knob::kInt},
      {"metrics_listen", "127.0.0.1:0",
       "address of the Prometheus /metrics listener (port 0: any free port; off: none)"},
      {"log_level", "info",
       "debug, info, warn or error; per component: info,pop=debug,uvio=warn"},
      {"chunk_cache_bytes_max", "1073741824",
       "disk given to a cache of the subscriber's own chunks (sealed, as read or written "
       "through this gateway; in DATA_DIR/chunk-cache, emptied at start; 0: none): a read of "
       "a cached chunk does not go to the POP",
       Knob::kInt},
      {"chunk_cache_entries_max", "65536", "most chunks in that cache", Knob::kInt},
  };
}

// The POP list: `pops` when set, else the single `pop` (checked in main).
Result<PopSelectorParams> PopSelectorParamsFrom(const Config& cfg) {
  PopSelectorParams p;
  MS_ASSIGN_OR_RETURN(p.addrs, ParsePopList(cfg.Str("pops").empty() ? cfg.Str("pop") : cfg.Str("pops")));
  if (cfg.Int("reconnect_ms") < 1 || cfg.Int("reconnect_max_ms") < cfg.Int("reconnect_ms") ||
      cfg.Int("pop_failback_ms") < 1)
    return InvalidArgument("need reconnect_ms >= 1, reconnect_max_ms >= reconnect_ms, pop_failback_ms >= 1");
  p.retry_ms = uint64_t(cfg.Int("reconnect_ms"));
  p.retry_max_ms = uint64_t(cfg.Int("reconnect_max_ms"));
  p.failback_ms = uint64_t(cfg.Int("pop_failback_ms"));
  return p;
}
PopSelectorParams PopSelectorParamsOf(const Config& cfg) {
  auto p = PopSelectorParamsFrom(cfg);
  MS_ASSERT(p.ok());  // main() refused a bad list before
  return std::move(p.value());
}

// The device link on the client port (issue 4): the agent's client-link key
// (data_dir/pairing/agent.key), any device key accepted at the handshake
// (the request handler checks pairing).
ConnectionLimits ClientLinkLimits(const ConnectionLimits& base,
                                  const Config& cfg) {
  auto key = LoadOrCreateAgentLinkKey(cfg.Str("data_dir"));
  if (!key.ok()) FatalExit("pairing", key.status().ToString().c_str());
  auto link = std::make_shared<secure::DeviceLinkConfig>();
  link->static_key = std::move(key).value();
  auto sc = std::make_shared<SecureConfig>();
  sc->channel.device_link = std::move(link);
  sc->channel.handshake_timeout_ms = uint64_t(cfg.Int("handshake_timeout_ms"));
  sc->stats = std::make_shared<SecureStats>();
  ConnectionLimits l = base;
  l.secure = std::move(sc);
  return l;
}

class Agent {
 public:
  Agent(const Config& cfg, FragmentStore store, std::unique_ptr<ChunkCache> cache,
        AgentParams params)
      : cfg_(cfg),
        store_(std::move(store)),
        cache_(std::move(cache)),
        limits_(Limits(cfg)),
        clients_(&loop_, client_limits_,
                 [this](const Connection::Ptr& c) { OnClient(c); }),
        core_(std::move(params), &store_, loop_.NowMs()) {}

  int Run() {
    auto bound = clients_.Listen(cfg_.Str("client_listen"));
    if (!bound.ok()) FatalExit("listen", bound.status().ToString().c_str());
    loop_.OnSignal(SIGTERM, [this] { Shutdown(); });
    loop_.OnSignal(SIGINT, [this] { Shutdown(); });
    if (store_.corrupt_at_open())
      MS_WARN("agent", "corrupt fragment files found at start",
              "count=" + std::to_string(store_.corrupt_at_open()));
    StartMonitoring();
    ArmCoreTimer();
    renewer_.Start();  // certificate renewal (issue 4)
    MS_INFO("agent", "ready", "listen=" + bound.value() + " metrics=" + metrics_addr_ +
                                  " gateway_id=" + cfg_.Str("gateway_id") +
                                  " fragments=" + std::to_string(store_.fragment_count()));
    // systemd (Type=notify): fragment store opened in main(), client
    // listener bound above; the POP connection comes and goes on its own.
    notify_.Ready("serving devices on " + bound.value());
    DrivePops();
    loop_.Run();
    return 0;
  }

 private:
  static ConnectionLimits Limits(const Config& cfg) {
    ConnectionLimits l;
    l.frame_bytes_max = size_t(cfg.Int("frame_bytes_max"));
    return ApplyConnectionKnobs(l, cfg);  // hard limits (issue 4)
  }

  void Shutdown() {
    MS_INFO("agent", "shutting down", "");
    notify_.Stopping();
    stopping_ = true;
    clients_.Close();
    if (pop_) pop_->Close(Unavailable("shutting down"));
    auto cs = client_conns_;
    for (auto& c : cs) c->Close(Unavailable("shutting down"));
    loop_.Stop();
  }

  // ---- the POP connection: PopSelector (pop_selector.h) picks which POP
  // of `pops` and when; this moves its steps onto sockets and one timer.
  void DrivePops() {
    if (stopping_) return;
    for (;;) {
      PopStep st = pop_sel_.Poll(loop_.NowMs());
      if (st.kind == PopStep::kNothing) break;
      if (st.kind == PopStep::kDial) DialPop(st.index);
      if (st.kind == PopStep::kProbe) ProbePop(st.index);
      if (st.kind == PopStep::kLeave && pop_) {
        MS_INFO("agent", "a preferred POP is back; leaving this one",
                "pop=" + pop_sel_.addrs()[st.index]);
        pop_->Close(Unavailable("returning to a preferred POP"));  // on_close: OnLost
      }
    }
    uint64_t wake = pop_sel_.next_wake_ms();
    if (pop_timer_armed_ && wake == pop_timer_at_) return;
    if (pop_timer_armed_) loop_.Cancel(pop_timer_);
    pop_timer_armed_ = wake != UINT64_MAX;
    if (!pop_timer_armed_) return;
    pop_timer_at_ = wake;
    uint64_t now = loop_.NowMs();
    pop_timer_ = loop_.After(wake > now ? wake - now : 0, [this] {
      pop_timer_armed_ = false;
      DrivePops();
    });
  }

  void DialPop(size_t index) {
    const std::string addr = pop_sel_.addrs()[index];
    Dial(&loop_, addr, pop_limits_, [this, index, addr](Result<Connection::Ptr> r) {
      if (stopping_) {
        if (r.ok()) r.value()->Close(Unavailable("shutting down"));
        return;
      }
      if (!r.ok()) {
        if (!pop_warned_)
          MS_WARN("agent", "cannot reach POP; trying the next",
                  "pop=" + addr + " error=\"" + r.status().message() + "\"");
        pop_warned_ = true;
        pop_sel_.OnDialFailed(loop_.NowMs(), index);
        if (!pop_sel_.registered() && pop_sel_.next_wake_ms() != UINT64_MAX)
          MS_DEBUG("agent", "no POP reachable; waiting",
                   "wait_ms=" + std::to_string(pop_sel_.next_wake_ms() - loop_.NowMs()));
        return DrivePops();
      }
      Connection::Ptr c = r.value();
      c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) { OnPopRequest(c, env); });
      c->set_on_close([this, index, addr](const Connection::Ptr& c, const Status& why) {
        if (c != pop_) {  // closed before its registration: that POP failed
          if (stopping_) return;
          pop_sel_.OnDialFailed(loop_.NowMs(), index);
          return DrivePops();
        }
        metrics_.ForgetConnection(pop_->tag);
        pop_.reset();
        core_.OnPopLost(loop_.NowMs());
        if (stopping_) return;
        MS_WARN("agent", "lost POP connection; reconnecting",
                "pop=" + addr + " reason=\"" + why.message() + "\"");
        pop_sel_.OnLost(loop_.NowMs());
        DrivePops();
      });
      pb::Envelope hello;
      auto* h = hello.mutable_hello();
      h->set_role(pb::ROLE_GATEWAY);
      h->set_node_id(uint32_t(cfg_.Int("gateway_id")));
      h->set_subscriber(cfg_.Str("subscriber"));
      h->set_store_bytes_free(store_.free_bytes());
      c->Call(hello, [this, c, index, addr](Result<pb::Envelope> r) {
        if (!r.ok() || r->has_error()) {
          MS_WARN("agent", "POP refused registration", "pop=" + addr);
          c->Close(Unavailable("registration refused"));  // on_close: the next POP
          return;
        }
        if (c->closed() || stopping_) return;
        pop_ = c;
        pop_->tag = ++pop_gen_;
        pop_warned_ = false;
        pop_sel_.OnRegistered(loop_.NowMs(), index);
        MS_INFO("agent", "registered with POP",
                "pop=" + addr + " preference=" + std::to_string(index + 1) + "/" +
                    std::to_string(pop_sel_.addrs().size()));
        uint32_t pop_id = r->hello_reply().node_id();
        core_.OnRegistered(loop_.NowMs(), pop_->tag, pop_id);
        core_.OnClusterMap(loop_.NowMs(), r->hello_reply().map(), pop_id);  // issue 7
        LearnPops();
        PumpCore();
        DrivePops();
      });
    });
  }

  // A preferred POP probed while registered with a later one: a connection
  // (and the secure handshake when on), nothing sent.
  void ProbePop(size_t index) {
    Dial(&loop_, pop_sel_.addrs()[index], pop_limits_, [this, index](Result<Connection::Ptr> r) {
      if (r.ok()) r.value()->Close(Unavailable("probe of a preferred POP"));
      if (stopping_) return;
      pop_sel_.OnProbeResult(loop_.NowMs(), index, r.ok());
      DrivePops();
    });
  }

  // Requests from the POP go to the core; its outbox leaves through PumpCore.
  void OnPopRequest(const Connection::Ptr& c, const pb::Envelope& env) {
    if (!core_.IsPopRequest(env))
      return c->ReplyError(env.request_id(), ProtocolError("agent does not serve this message from a POP"));
    if (c != pop_)  // before the Hello reply: replies are routed by registration
      return c->ReplyError(env.request_id(), Unavailable("agent not registered on this connection yet"));
    metrics_.Hold(c->tag, env.request_id(), metrics_.Received(env));
    core_.OnPopRequest(loop_.NowMs(), c->tag, env);
    PumpCore();
    if (env.has_cluster_map()) {  // pushed on an epoch change (issue 7)
      LearnPops();
      DrivePops();
    }
  }

  // The region's POPs from the newest cluster map become further
  // candidates after the configured ones (PopSelector::SetLearned).
  void LearnPops() {
    if (core_.map_epoch() == learned_epoch_) return;
    learned_epoch_ = core_.map_epoch();
    pop_sel_.SetLearned(core_.UpPopAddrs());
  }

  // ---- the AgentCore adapter ----
  void PumpCore() {
    AgentOutbox out = core_.TakeOutbox();
    for (auto& r : out.replies) {
      if (!pop_ || pop_->tag != r.conn) continue;  // that connection is gone
      if (!r.error.ok()) {
        pb::Envelope e;
        e.mutable_error()->set_code(uint32_t(r.error.code()));
        e.mutable_error()->set_message(r.error.message());
        metrics_.ReleaseHeld(r.conn, r.request_id, e);
        pop_->ReplyError(r.request_id, r.error);
      } else {
        metrics_.ReleaseHeld(r.conn, r.request_id, r.msg);
        pop_->Reply(r.request_id, std::move(r.msg));
      }
    }
    for (auto& call : out.calls) {
      uint64_t token = call.token;
      if (!pop_) {
        core_.OnCallDone(loop_.NowMs(), token, Unavailable("not connected to the POP"));
        continue;
      }
      auto op = metrics_.Calling(call.msg);
      pop_->Call(std::move(call.msg), [this, token, op](Result<pb::Envelope> r) {
        metrics_.CallDone(op, r);
        core_.OnCallDone(loop_.NowMs(), token, r);
        PumpCore();
      });
    }
    ArmCoreTimer();
  }

  void ArmCoreTimer() {
    if (stopping_) return;
    uint64_t now = loop_.NowMs();
    uint64_t at = core_.NextWakeMs(now);
    if (core_timer_armed_ && core_timer_at_ <= at && core_timer_at_ >= now) return;
    if (core_timer_armed_) loop_.Cancel(core_timer_);
    core_timer_armed_ = true;
    core_timer_at_ = at;
    core_timer_ = loop_.After(at - now, [this] {
      core_timer_armed_ = false;
      core_.OnTick(loop_.NowMs());
      PumpCore();
    });
  }

  // ---- the subscriber's devices ----
  void OnClient(const Connection::Ptr& c) {
    client_conns_.insert(c);
    c->set_on_close([this](const Connection::Ptr& c, const Status&) {
      client_conns_.erase(c);
    });
    c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) { OnClientRequest(c, env); });
  }

  static const std::string* SubscriberOf(const pb::Envelope& env) {
    switch (env.body_case()) {
      case pb::Envelope::kPutChunk: return &env.put_chunk().subscriber();
      case pb::Envelope::kPutCommit: return &env.put_commit().subscriber();
      case pb::Envelope::kGetVersion: return &env.get_version().subscriber();
      case pb::Envelope::kGetChunk: return &env.get_chunk().subscriber();
      case pb::Envelope::kGetChunkFragments: return &env.get_chunk_fragments().subscriber();
      case pb::Envelope::kReportForgedFragments: return &env.report_forged_fragments().subscriber();
      case pb::Envelope::kListObjects: return &env.list_objects().subscriber();
      case pb::Envelope::kReleaseLock: return &env.release_lock().subscriber();
      case pb::Envelope::kHaveChunks: return &env.have_chunks().subscriber();
      // Read-only sharing (issue 4): relayed; the POP and DC decide.
      case pb::Envelope::kPublishShareKey: return &env.publish_share_key().subscriber();
      case pb::Envelope::kGetShareKey: return &env.get_share_key().subscriber();
      case pb::Envelope::kPutShare: return &env.put_share().subscriber();
      case pb::Envelope::kListShares: return &env.list_shares().subscriber();
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
    // Client pairing (issue 4, enrol_pairing.h): the device link proved
    // the device's static key; pairing records it, and only a paired key
    // is served (or, before the first pairing, a device on this host).
    const Bytes& device_key = c->peer_static_key();
    if (env.has_pair_device()) {
      auto r = pairing_.Redeem(Bytes(env.pair_device().proof().begin(),
                                     env.pair_device().proof().end()),
                               c->handshake_hash(), device_key,
                               env.pair_device().device(), PairingNowMs());
      if (!r.ok()) {
        devices_refused_.Inc();
        MS_WARN(
            "agent", "device refused",
            "peer=" + c->peer() + " error=\"" + r.status().message() + "\"");
        return refuse(r.status());
      }
      pb::Envelope rep;
      rep.mutable_pair_device_reply()->set_agent_proof(
          std::string(r->begin(), r->end()));
      MS_INFO("agent", "device paired",
              "peer=" + c->peer() + " key=" + ToHex(device_key).substr(0, 16) +
                  " devices=" + std::to_string(pairing_.devices()));
      metrics_.Replied(op, &rep, true);
      return c->Reply(id, std::move(rep));
    }
    if (env.has_client_hello()) {
      devices_refused_.Inc();
      MS_WARN("agent", "device refused",
              "peer=" + c->peer() + " error=\"bearer credential\"");
      return refuse(
          Status(Code::kPermissionDenied,
                 "pairing credentials are no longer accepted: pair again with "
                 "`mistore pair CODE`"));
    }
    const bool paired = pairing_.IsPaired(device_key);
    if (!paired && (pairing_.any_paired() || !IsLoopbackPeer(c->peer()))) {
      devices_refused_.Inc();
      MS_WARN("agent", "device refused",
              "peer=" + c->peer() + " key=" + ToHex(device_key).substr(0, 16) +
                  " error=\"not paired\"");
      return refuse(Status(Code::kPermissionDenied,
                           "this device is not paired with the gateway: run `mistore pair CODE` "
                           "with a code from `mistore-agent pair`"));
    }
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
    // A retried commit whose result was kept (issue 6): answered here.
    std::string write_id = env.has_put_commit() ? env.put_commit().write_id() : "";
    if (const pb::PutReply* held = write_id.empty() ? nullptr : core_.HeldReply(loop_.NowMs(), write_id)) {
      pb::Envelope r;
      *r.mutable_put_reply() = *held;
      metrics_.Replied(op, &r, true);
      MS_INFO("agent", "retried commit answered with its kept result",
              "version=" + std::to_string(held->version()));
      return c->Reply(id, std::move(r));
    }
    // The home gateway's chunk cache (issue 11): a hit is answered here.
    // Not for another subscriber's shared object (issue 4): each read of
    // it goes to the POP, which checks the share is still there.
    if (env.has_get_chunk() && env.get_chunk().owner().empty() && cache_->enabled()) {
      if (auto sealed = cache_->Get(env.get_chunk().chunk_id())) {
        pb::Envelope r;
        r.mutable_chunk_data()->set_data(std::move(*sealed));
        metrics_.Replied(op, &r, true);
        return c->Reply(id, std::move(r));
      }
    }
    if (!pop_) return refuse(Unavailable("gateway agent is not connected to its POP"));
    // What to keep in the cache once the POP has answered: a written chunk
    // (its id and sealed bytes; copied, the envelope moves on) or the id of
    // a chunk read.
    std::string cache_id, cache_data;
    if (cache_->enabled() && env.has_put_chunk()) {
      cache_id = env.put_chunk().chunk_id();
      cache_data = env.put_chunk().data();
    } else if (cache_->enabled() && env.has_get_chunk() && env.get_chunk().owner().empty()) {
      cache_id = env.get_chunk().chunk_id();
    }
    std::weak_ptr<Connection> weak = c;
    // A commit's time grows with its chunks (see CommitTimeoutMs).
    uint64_t timeout_ms = env.has_put_commit()
                              ? CommitTimeoutMs(limits_.call_timeout_ms,
                                                size_t(env.put_commit().chunk_ids_size()))
                              : 0;
    pop_->Call(std::move(env), [this, weak, id, op, write_id, cache_id = std::move(cache_id),
                                cache_data = std::move(cache_data)](Result<pb::Envelope> r) {
      metrics_.Replied(op, r.ok() ? &r.value() : nullptr, r.ok());
      if (!cache_id.empty() && r.ok() && !r->has_error()) {
        if (r->has_chunk_data())
          cache_->Put(cache_id, r->chunk_data().data());
        else if (!cache_data.empty())
          cache_->Put(cache_id, cache_data);
      }
      auto c = weak.lock();
      if (!c || c->closed()) {
        // The device went away: keep a commit's result for its retry.
        if (r.ok() && r->has_put_reply()) core_.HoldReply(loop_.NowMs(), write_id, r->put_reply());
        return;
      }
      if (!r.ok()) return c->ReplyError(id, r.status());
      c->Reply(id, std::move(r.value()));
    }, timeout_ms);
  }

  // ---- monitoring (issue 8): /metrics ----
  void StartMonitoring() {
    ExportRefusalMetrics(&metrics_.registry());  // issue 4
    auto bound = metrics_.Serve(cfg_.Str("metrics_listen"));
    if (!bound.ok()) FatalExit("metrics_listen", bound.status().ToString().c_str());
    metrics_addr_ = bound.value();
    MetricsRegistry& r = metrics_.registry();
    const AgentStats& st = core_.stats();
    auto counter = [&](const char* name, const char* help, const uint64_t* v) {
      r.AddCounterFn(name, help, [v] { return double(*v); });
    };
    counter("mistore_agent_fragments_stored_total", "Fragments stored for the POP.",
            &st.fragments_stored);
    counter("mistore_agent_fragment_stored_bytes_total", "Bytes of fragments stored for the POP.",
            &st.fragment_bytes_stored);
    counter("mistore_agent_fragments_served_total", "Fragments read back and sent to the POP.",
            &st.fragments_served);
    counter("mistore_agent_fragment_served_bytes_total", "Bytes of fragments sent to the POP.",
            &st.fragment_bytes_served);
    counter("mistore_agent_fragment_check_failures_total",
            "Fragments that failed their check when read (corrupt; not served).",
            &st.fragment_check_failures);
    counter("mistore_agent_fragments_deleted_total", "Fragments deleted at the POP's request.",
            &st.fragments_deleted);
    counter("mistore_agent_heartbeats_sent_total", "Heartbeats sent to the POP.",
            &st.heartbeats_sent);
    counter("mistore_agent_bad_fragments_reported_total",
            "Bad fragments reported to (and acknowledged by) the POP.", &st.bad_reported);
    counter("mistore_agent_scrub_fragments_total", "Fragments read and checked by the scrubber.",
            &st.scrub_fragments);
    counter("mistore_agent_scrub_bytes_total", "Bytes read by the scrubber.", &st.scrub_bytes);
    counter("mistore_agent_scrub_bad_total", "Fragments the scrubber found bad.", &st.scrub_bad);
    counter("mistore_agent_results_received_total",
            "Commit results the POP kept while this gateway was away and delivered on its return.",
            &st.results_received);
    counter("mistore_agent_results_answered_total",
            "Client retries of a commit answered with its kept result.", &st.results_answered);
    r.AddCounterFn("mistore_agent_scrub_passes_total", "Completed scrub passes.",
                   [this] { return double(core_.scrub_passes_total()); });
    r.AddCounterFn("mistore_agent_background_io_bytes_total",
                   "Disk bytes read for background work (scrub, repair reads).",
                   [this] { return double(core_.background_bytes_total()); });
    r.AddGaugeFn("mistore_agent_background_load_permille",
                 "Share of background_io_bytes_per_s used over the last heartbeat interval.",
                 [this] { return double(core_.load_permille()); });
    r.AddGaugeFn("mistore_agent_store_used_bytes", "Bytes of fragments on disk.",
                 [this] { return double(store_.used_bytes()); });
    r.AddGaugeFn("mistore_agent_store_max_bytes", "Share of the disk given to fragments.",
                 [this] { return double(cfg_.Int("store_bytes_max")); });
    r.AddGaugeFn("mistore_agent_store_fragments", "Fragments on disk.",
                 [this] { return double(store_.fragment_count()); });
    r.AddGaugeFn("mistore_agent_store_corrupt_at_start",
                 "Fragment files that failed to parse when the store was opened.",
                 [this] { return double(store_.corrupt_at_open()); });
    r.AddGaugeFn("mistore_agent_map_epoch",
                 "Epoch of the newest cluster map this agent received from its POP.",
                 [this] { return double(core_.map_epoch()); });
    counter("mistore_agent_maps_applied_total", "Cluster maps newer than the one held.",
            &st.maps_applied);
    counter("mistore_agent_maps_stale_total",
            "Cluster maps older than the one held (ignored: epochs never go back).",
            &st.maps_stale);
    r.AddGaugeFn("mistore_agent_pops_known",
                 "POPs the agent may dial: the configured ones plus the region's POPs "
                 "learned from the cluster map.",
                 [this] { return double(pop_sel_.addrs().size()); });
    r.AddGaugeFn("mistore_agent_pop_connected", "1 while registered with its POP.",
                 [this] { return pop_ ? 1.0 : 0.0; });
    r.AddGaugeFn("mistore_agent_client_connections", "Open connections from devices.",
                 [this] { return double(client_conns_.size()); });
    r.AddCounterFn("mistore_agent_devices_refused_total",
                   "Device requests refused for pairing: not paired, wrong or "
                   "expired code, "
                   "an old bearer credential.",
                   [this] { return double(devices_refused_.value()); });
    r.AddGaugeFn("mistore_agent_devices_paired",
                 "Devices paired with this agent.",
                 [this] { return double(pairing_.devices()); });
    // The home gateway's chunk cache (issue 11, chunk_cache.h).
    const ChunkCacheStats& cs = cache_->stats();
    counter("mistore_agent_chunk_cache_hits_total",
            "Chunk reads answered from this gateway's chunk cache (not sent to the POP).",
            &cs.hits_total);
    counter("mistore_agent_chunk_cache_misses_total",
            "Chunk reads the chunk cache could not answer (relayed to the POP).",
            &cs.misses_total);
    counter("mistore_agent_chunk_cache_inserts_total", "Chunks copied into the chunk cache.",
            &cs.inserts_total);
    counter("mistore_agent_chunk_cache_evictions_total",
            "Chunks evicted from the chunk cache to stay within its bounds.", &cs.evictions_total);
    counter("mistore_agent_chunk_cache_corrupt_total",
            "Cached chunks dropped because their file no longer matched its checksum.",
            &cs.corrupt_total);
    r.AddGaugeFn("mistore_agent_chunk_cache_bytes", "Bytes of chunks in the chunk cache.",
                 [this] { return double(cache_->bytes()); });
    r.AddGaugeFn("mistore_agent_chunk_cache_entries", "Chunks in the chunk cache.",
                 [this] { return double(cache_->entries()); });
  }

  const Config& cfg_;
  FragmentStore store_;
  std::unique_ptr<ChunkCache> cache_;  // never null (off: bytes_max 0)
  EventLoop loop_;
  ConnectionLimits limits_;
  // To the POP: secure when the secure knob is on (issue 4); devices: always
  // the device link (Noise IK/XX, plaintext refused; enrol_pairing.h).
  ConnectionLimits pop_limits_ = WithSecureTransport(limits_, cfg_, {crypto::NodeRole::kPop});
  enrol::CertRenewer renewer_{&loop_, cfg_, pop_limits_, crypto::NodeRole::kGateway};
  ConnectionLimits client_limits_ = ClientLinkLimits(limits_, cfg_);
  Listener clients_;
  Connection::Ptr pop_;
  std::set<Connection::Ptr> client_conns_;
  PairingStore pairing_ = OpenPairingOrDie(cfg_.Str("data_dir"));  // issue 4
  Counter devices_refused_;  // requests refused for pairing
                             // (mistore_agent_devices_refused_total)
  bool pop_warned_ = false;
  bool stopping_ = false;
  // ---- monitoring (issue 8)
  DaemonMetrics metrics_{&loop_, "agent",
                         {"put_chunk", "put_commit", "get_version", "get_chunk", "list_objects",
                          "get_placement", "release_lock", "store_fragment", "fetch_fragment",
                          "get_inventory", "delete_fragments"}};
  std::string metrics_addr_;
  // ---- region durability (issue 6): declared after store_ and loop_
  AgentCore core_;
  uint64_t pop_gen_ = 0;  // tags each POP connection
  bool core_timer_armed_ = false;
  uint64_t core_timer_at_ = 0;
  TimerId core_timer_ = 0;
  SdNotifier notify_{&loop_, "agent"};  // READY/WATCHDOG/STOPPING to systemd
  // ---- several POPs (issue 10): which one, and when
  PopSelector pop_sel_{PopSelectorParamsOf(cfg_), loop_.NowMs()};
  uint64_t learned_epoch_ = 0;  // map epoch whose POPs pop_sel_ has
  bool pop_timer_armed_ = false;
  uint64_t pop_timer_at_ = 0;
  TimerId pop_timer_ = 0;
};

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  signal(SIGPIPE, SIG_IGN);
  Config cfg(WithPairingKnobs(enrol::WithNodeEnrolmentKnobs(WithSecureTransportKnobs(AgentKnobs()))));
  std::vector<std::string> args;
  switch (ParseCommandLine("mistore-agent", "[pair] [--config FILE] [--name=value ...]", &cfg, argc,
                           argv, &args)) {
    case ArgsOutcome::kExitOk: return 0;
    case ArgsOutcome::kExitUsage: return 2;
    case ArgsOutcome::kRun: break;
  }
  if (args.size() == 1 && args[0] == "pair") return RunPairSubcommand(cfg, stdout, stderr);
  if (!args.empty()) {
    std::fprintf(stderr, "mistore-agent: unknown subcommand '%s' (only: pair)\n", args[0].c_str());
    return 2;
  }
  // Enrolment by token (issue 4): the certificate decides gateway_id and subscriber.
  if (Status e = enrol::PrepareNodeIdentity(&cfg, crypto::NodeRole::kGateway,
                                            {"gateway_id", "", "subscriber"});
      !e.ok()) {
    std::fprintf(stderr, "mistore-agent: %s\n", e.message().c_str());
    return 1;
  }
  Status st;
  if (cfg.Str("gateway_id").empty()) st = InvalidArgument("--gateway-id is required");
  if (st.ok() && cfg.Str("subscriber").empty()) st = InvalidArgument("--subscriber is required");
  if (st.ok() && !ApplyLogLevels(cfg.Str("log_level"))) st = InvalidArgument("bad --log-level");
  if (!st.ok()) {
    std::fprintf(stderr, "mistore-agent: %s\n", st.message().c_str());
    return 2;
  }
  if (auto pops = PopSelectorParamsFrom(cfg); !pops.ok()) {
    std::fprintf(stderr, "mistore-agent: pops/pop: %s\n", pops.status().message().c_str());
    return 2;
  }
  AgentParams params;
  auto domains = ParseFailureDomains(cfg.Str("failure_domains"));
  if (!domains.ok()) st = domains.status();
  if (st.ok() && (cfg.Int("heartbeat_ms") < 100 || cfg.Int("scrub_period_s") < 1 ||
                  cfg.Int("background_io_bytes_per_s") < 4096 || cfg.Int("store_fragments_max") < 1))
    st = InvalidArgument(
        "need heartbeat_ms >= 100, scrub_period_s >= 1, background_io_bytes_per_s >= 4096, "
        "store_fragments_max >= 1");
  if (!st.ok()) {
    std::fprintf(stderr, "mistore-agent: %s\n", st.message().c_str());
    return 2;
  }
  params.failure_domains = domains.value();
  params.subscriber = cfg.Str("subscriber");
  params.heartbeat_ms = uint64_t(cfg.Int("heartbeat_ms"));
  params.scrub_period_ms = uint64_t(cfg.Int("scrub_period_s")) * 1000;
  params.background_io_bytes_per_s = uint64_t(cfg.Int("background_io_bytes_per_s"));
  params.background_io_burst_bytes = std::max<uint64_t>(params.background_io_bytes_per_s / 4, 4096);
  // A GatewayInventory names every fragment (about 42 bytes each) in one frame.
  if (uint64_t(cfg.Int("store_fragments_max")) * 42 + 4096 > uint64_t(cfg.Int("frame_bytes_max")))
    MS_WARN("agent", "store_fragments_max is more than one inventory frame can name",
            "store_fragments_max=" + cfg.Str("store_fragments_max") +
                " frame_bytes_max=" + cfg.Str("frame_bytes_max"));
  FragmentStoreOptions opts;
  opts.store_bytes_max = uint64_t(cfg.Int("store_bytes_max"));
  opts.fragments_max = uint64_t(cfg.Int("store_fragments_max"));
  opts.verify_payloads_at_open = cfg.Bool("store_verify_at_start");
  auto store = FragmentStore::Open(cfg.Str("data_dir") + "/fragments", opts);
  if (!store.ok()) FatalExit("open fragment store", store.status().ToString().c_str());
  if (cfg.Int("chunk_cache_bytes_max") < 0 || cfg.Int("chunk_cache_entries_max") < 1)
    FatalExit("chunk cache", "need chunk_cache_bytes_max >= 0 and chunk_cache_entries_max >= 1");
  auto cache = ChunkCache::Open(cfg.Str("data_dir") + "/chunk-cache",
                                uint64_t(cfg.Int("chunk_cache_bytes_max")),
                                size_t(cfg.Int("chunk_cache_entries_max")));
  if (!cache.ok()) FatalExit("open chunk cache", cache.status().ToString().c_str());
  Agent a(cfg, std::move(store.value()), std::move(cache.value()), std::move(params));
  return a.Run();
}
