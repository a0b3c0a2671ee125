// mistore-dc: the datacenter backend daemon — catalog of names and objects,
// and the cluster map (POPs, their states, the epoch). One libuv loop; the
// catalog (SQLite or PostgreSQL, catalog.h) is used on the loop thread. With
// a subcommand (catalog, map, retention, monitor; dc_cli.h) it is instead an
// operator's tool that opens the catalog, answers and exits. A POP's connection dropping marks it
// down in the map (a new epoch); its Hello marks it up again. A registered POP
// that sends nothing for pop_silence_ms (it refreshes its map every second)
// is treated the same way: its connection is closed, which marks it down —
// so a hung POP, or one cut off without its connection being reset, fails
// over too.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "dc-backend/admin.h"
#include "dc-backend/catalog.h"
#include "dc-backend/dc_cli.h"
#include "dc-backend/dc_gc.h"
#include "dc-backend/enroll.h"
#include "dc-backend/report_group.h"
#include "dc-backend/standin.h"
#include "shared/core/config.h"
#include "shared/core/log.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/daemon_metrics.h"
#include "shared/uvio/peer_pool.h"
#include "shared/uvio/sd_notify.h"

namespace mistore {
namespace {

std::vector<Knob> DcKnobs() {
  return {
      {"listen", "127.0.0.1:7000", "address for POPs"},
      {"data_dir", "/var/lib/mistore/dc", "where the catalog lives"},
      {"catalog_backend", "sqlite",
       "sqlite (data_dir/catalog.sqlite) or postgres (catalog_pg_conninfo)"},
      {"catalog_pg_conninfo", "dbname=mistore",
       "libpq connection string of the PostgreSQL catalog (catalog_backend=postgres)"},
      {"monitor_retention_ms", "604800000",
       "how long the catalog keeps POP monitoring summaries", Knob::kInt},
      {"json", "false", "subcommands: print JSON", Knob::kBool},
      {"frame_bytes_max", "8388608", "largest frame accepted from a peer", Knob::kInt},
      {"log_level", "info",
       "debug, info, warn or error; per component: info,pop=debug,uvio=warn"},
      {"metrics_listen", "127.0.0.1:0",
       "address of the Prometheus /metrics listener (port 0: any free port; off: none)"},
      {"admin_listen", "127.0.0.1:0",
       "address of the admin API and dashboard (port 0: any free port; off: none)"},
      {"admin_token_file", "",
       "file holding the admin API token (empty: data_dir/admin.token, created if missing)"},
      {"retention_interval_s", "3600",
       "period of applying the retention policy of every volume that has one explicitly set "
       "(`mistore-dc retention set`) and queueing the garbage collection of what it drops; "
       "volumes without a set policy are never collected automatically, only by "
       "`mistore-dc retention apply` (0: no automatic pass)", Knob::kInt},
      {"backup_bytes_max", "1099511627776",
       "bytes the backup store (data_dir/backup) may hold; copies beyond wait", Knob::kInt},
      {"backup_object_bytes_max", "67108864",
       "largest single object (chunk or version record) the backup store takes", Knob::kInt},
      {"report_group_max", "256",
       "most POP version reports committed in one catalog transaction (group commit: the "
       "reports that arrive in one loop turn share one durable commit, and each POP is "
       "answered after it); 1 commits each report on its own", Knob::kInt},
      {"pop_silence_ms", "10000",
       "a registered POP that sends nothing for this long (POPs refresh their map every "
       "map_refresh_ms, 1 s by default) has its connection closed and is marked down, so its "
       "objects fail over; it is marked up again when it says Hello (0: only a closed "
       "connection marks a POP down)", Knob::kInt},
      {"event_log_max", "100000",
       "events kept in the operators' event log (data_dir/events.sqlite, or the PostgreSQL "
       "catalog's database); the oldest are dropped beyond it", Knob::kInt},
  };
}

class DcDaemon {
 public:
  DcDaemon(const Config& cfg, std::unique_ptr<Catalog> catalog)
      : cfg_(cfg),
        catalog_(std::move(catalog)),
        listener_(&loop_, Limits(cfg), [this](const Connection::Ptr& c) { OnAccept(c); }) {}

  int Run() {
    auto bound = listener_.Listen(cfg_.Str("listen"));
    if (!bound.ok()) FatalExit("listen", bound.status().ToString().c_str());
    auto standin = StandIn::Open(&loop_, cfg_.Str("data_dir"), Limits(cfg_), 4, 2);
    if (!standin.ok()) FatalExit("open stand-in replica", standin.status().ToString().c_str());
    standin_ = std::move(standin.value());
    // The stand-in reports the versions of DC-tier objects, whose primary
    // it is, to the catalog like a POP (standin.h).
    standin_->set_call_dc([this](pb::Envelope req, std::function<void(Result<pb::Envelope>)> done) {
      if (!req.has_report_version()) {
        loop_.After(0, [done] { done(Unavailable("the stand-in calls the DC only to report")); });
        return;
      }
      AddReport(req.report_version().info(), [done](const Status& st) {
        if (!st.ok()) return done(st);
        pb::Envelope reply;
        reply.mutable_empty();
        done(std::move(reply));
      });
    });
    if (auto map = catalog_->Map(); map.ok()) standin_->OnClusterMap(map.value());
    loop_.Every(500, [this] { standin_->Tick(); });
    loop_.Every(60000, [this] { PruneSummaries(); });
    if (cfg_.Int("pop_silence_ms") > 0)
      loop_.Every(std::max<uint64_t>(1, uint64_t(cfg_.Int("pop_silence_ms")) / 4),
                  [this] { CloseSilentPops(); });
    StartGc();  // retention GC, backups, cold tier (issue 7; dc_gc.h)
    loop_.OnSignal(SIGTERM, [this] { Shutdown(); });
    loop_.OnSignal(SIGINT, [this] { Shutdown(); });
    ExportRefusalMetrics(&metrics_.registry());  // issue 4
    metrics_.registry().AddCounterFn(
        "mistore_dc_pops_silenced_total",
        "POP connections the DC closed because the POP sent nothing for pop_silence_ms.",
        [this] { return double(pops_silenced_total_); });
    auto metrics = metrics_.Serve(cfg_.Str("metrics_listen"));
    if (!metrics.ok()) FatalExit("metrics_listen", metrics.status().ToString().c_str());
    auto admin = admin_.Start(cfg_);
    if (!admin.ok()) FatalExit("admin_listen", admin.status().ToString().c_str());
    auto enrol = enrol_.Start();  // enrolment and renewal (issue 4)
    if (!enrol.ok()) FatalExit("enrol_listen", enrol.status().ToString().c_str());
    MS_INFO("dc", "ready", "listen=" + bound.value() + " metrics=" + metrics.value() +
                               " admin=" + admin.value() + " enrol=" + enrol.value());
    // systemd (Type=notify): catalog opened in main(), listeners bound above.
    notify_.Ready("serving on " + bound.value());
    loop_.Run();
    return 0;
  }

 private:
  static ConnectionLimits Limits(const Config& cfg) {
    ConnectionLimits l;
    l.frame_bytes_max = size_t(cfg.Int("frame_bytes_max"));
    l = ApplyConnectionKnobs(l, cfg);          // hard limits (issue 4)
    return enroll::DcSecureLimits(l, cfg);  // secure knob (issue 4)
  }

  void Shutdown() {
    MS_INFO("dc", "shutting down", "");
    notify_.Stopping();
    listener_.Close();
    enrol_.Close();
    auto conns = conns_;
    for (auto& [c, pop] : conns) c->Close(Unavailable("shutting down"));
    loop_.Stop();
  }

  void OnAccept(const Connection::Ptr& c) {
    conns_[c] = 0;
    last_heard_ms_[c] = loop_.NowMs();
    c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) { Dispatch(c, env); });
    c->set_on_close([this](const Connection::Ptr& c, const Status&) {
      if (standin_) standin_->ForgetConnection(c);
      uint32_t pop = conns_[c];
      conns_.erase(c);
      last_heard_ms_.erase(c);
      if (pop == 0) return;
      for (auto& [other, id] : conns_)
        if (id == pop) return;  // it still has another connection
      MS_INFO("dc", "POP disconnected; marking it down", "pop=" + std::to_string(pop));
      Status st = catalog_->PopDown(pop);
      if (!st.ok()) MS_ERROR("dc", "catalog update failed", "error=\"" + st.ToString() + "\"");
      PushMapIfChanged();
    });
  }

  // One dispatch for the DC role; one handler per message type.
  void Dispatch(const Connection::Ptr& c, const pb::Envelope& env) {
    last_heard_ms_[c] = loop_.NowMs();
    if (!env.has_hello() && conns_[c] == 0)
      return c->ReplyError(env.request_id(),
                           Status(Code::kPermissionDenied, "say Hello before anything else"));
    // The DC standing in as a backup replica (see standin.h).
    if (PopCore::IsStandInMessage(env)) return standin_->OnRequest(c, conns_[c], env);
    pb::Envelope reply;
    Status st;
    auto op = metrics_.Received(env);
    switch (env.body_case()) {
      case pb::Envelope::kHello: st = HandleHello(c, env.hello(), &reply); break;
      case pb::Envelope::kGetClusterMap: st = HandleGetClusterMap(&reply); break;
      case pb::Envelope::kClaimName: st = HandleClaimName(env.claim_name(), &reply); break;
      case pb::Envelope::kLookupName: st = HandleLookupName(env.lookup_name(), &reply); break;
      case pb::Envelope::kReportVersion: return HandleReportVersion(c, env, op);
      case pb::Envelope::kListObjects: st = HandleListObjects(env.list_objects(), &reply); break;
      case pb::Envelope::kMonitorPopSummary:
        st = admin_.OnPopSummary(conns_[c], env.monitor_pop_summary(), &reply);
        if (st.ok()) st = KeepSummary(conns_[c], env.monitor_pop_summary());
        break;
      case pb::Envelope::kPopEventReport:  // issue 8: the POP's events, into the event log
        st = admin_.OnPopEvents(conns_[c], env.pop_event_report(), &reply);
        break;
      // Retention GC, backups, cold tier (issue 7; dc_gc.h).
      case pb::Envelope::kGcFetch: st = gc_->HandleGcFetch(conns_[c], env.gc_fetch(), &reply); break;
      case pb::Envelope::kGcDone: st = gc_->HandleGcDone(conns_[c], env.gc_done(), &reply); break;
      case pb::Envelope::kObjectTemperature:
        st = gc_->HandleObjectTemperature(conns_[c], env.object_temperature(), WallMs(), &reply);
        break;
      case pb::Envelope::kFetchBackupChunk:
        st = gc_->HandleFetchBackupChunk(env.fetch_backup_chunk(), &reply);
        break;
      // Read-only sharing (issue 4; docs/security.md "Sharing"): the POPs
      // forward their gateways' requests, whose subscriber they checked.
      case pb::Envelope::kPublishShareKey:
        st = HandlePublishShareKey(env.publish_share_key(), &reply);
        break;
      case pb::Envelope::kGetShareKey: st = HandleGetShareKey(env.get_share_key(), &reply); break;
      case pb::Envelope::kPutShare: st = HandlePutShare(conns_[c], env.put_share(), &reply); break;
      case pb::Envelope::kListShares: st = HandleListShares(env.list_shares(), &reply); break;
      case pb::Envelope::kCheckShare: st = HandleCheckShare(env.check_share(), &reply); break;
      default:
        st = ProtocolError("DC does not serve message type " + std::to_string(int(env.body_case())));
    }
    metrics_.Replied(op, st.ok() ? &reply : nullptr, st.ok());
    if (!st.ok()) return c->ReplyError(env.request_id(), st);
    c->Reply(env.request_id(), std::move(reply));
  }

  Status HandleHello(const Connection::Ptr& c, const pb::Hello& h, pb::Envelope* reply) {
    if (h.role() != pb::ROLE_POP) return Status(Code::kPermissionDenied, "the DC serves POPs");
    if (h.node_id() == 0) return InvalidArgument("POP id 0 is reserved");
    if (conns_[c] != h.node_id()) {
      conns_[c] = h.node_id();
      MS_INFO("dc", "POP registered", "pop=" + std::to_string(h.node_id()) + " region=" +
                                          h.region() + " addr=" + h.listen_addr());
    }
    MS_RETURN_IF_ERROR(catalog_->PopUp(h.node_id(), h.region(), h.listen_addr()));
    PushMapIfChanged();
    MS_ASSIGN_OR_RETURN(pb::ClusterMap map, catalog_->Map());
    AddRevocations(&map);  // issue 4
    reply->mutable_hello_reply()->set_node_id(0);
    *reply->mutable_hello_reply()->mutable_map() = map;
    return Status::Ok();
  }

  // Closes the connections of registered POPs silent for pop_silence_ms; the
  // close handler marks the POP down (unless it has another live connection).
  void CloseSilentPops() {
    const uint64_t silence_ms = uint64_t(cfg_.Int("pop_silence_ms"));
    const uint64_t now_ms = loop_.NowMs();
    std::vector<Connection::Ptr> silent;
    for (auto& [c, pop] : conns_) {
      auto it = last_heard_ms_.find(c);
      if (pop == 0 || c->closed() || it == last_heard_ms_.end()) continue;
      if (now_ms - it->second >= silence_ms) silent.push_back(c);
    }
    for (auto& c : silent) {
      MS_WARN("dc", "POP silent; closing its connection", "pop=" + std::to_string(conns_[c]) +
                                                              " silent_ms=" +
                                                              std::to_string(now_ms - last_heard_ms_[c]));
      pops_silenced_total_++;
      c->Close(Unavailable("POP silent for " + std::to_string(silence_ms) + " ms"));
    }
  }

  // Sends the map to every registered POP when its epoch moved, so role
  // changes reach them at once rather than at their next refresh.
  void PushMapIfChanged() {
    auto map = catalog_->Map();
    if (!map.ok() || map->epoch() == pushed_epoch_) return;
    pushed_epoch_ = map->epoch();
    if (standin_) standin_->OnClusterMap(map.value());
    MS_INFO("dc", "cluster map changed", "epoch=" + std::to_string(pushed_epoch_));
    admin_.OnMapPublished();  // role changes into the event log
    pb::Envelope push;
    *push.mutable_cluster_map() = map.value();
    for (auto& [c, pop] : conns_)
      if (pop != 0 && !c->closed()) c->Call(push, [](Result<pb::Envelope>) {}, 5000);
  }

  // Revoked node ids (data_dir/revoked, `mistore-dc revoke`) go out with
  // every map a POP asks for; the POPs refuse those nodes (issue 4).
  void AddRevocations(pb::ClusterMap* map) {
    auto revoked = enroll::RevokedNodes(cfg_.Str("data_dir"));
    if (!revoked.ok()) {
      MS_WARN("dc", "cannot read revocations", "error=\"" + revoked.status().message() + "\"");
      return;
    }
    for (uint32_t id : revoked.value()) map->add_revoked_node_ids(id);
  }

  Status HandleGetClusterMap(pb::Envelope* reply) {
    MS_ASSIGN_OR_RETURN(pb::ClusterMap map, catalog_->Map());
    AddRevocations(&map);
    *reply->mutable_cluster_map() = map;
    return Status::Ok();
  }

  Status HandleClaimName(const pb::ClaimName& m, pb::Envelope* reply) {
    if (m.proposed_oid().size() != 16) return InvalidArgument("oid must be 16 bytes");
    MS_ASSIGN_OR_RETURN(auto claimed, catalog_->ClaimName(m.subscriber(), ToBytes(m.name_key()),
                                                          ToBytes(m.proposed_oid())));
    reply->mutable_claim_name_reply()->set_oid(std::string(claimed.first.begin(), claimed.first.end()));
    reply->mutable_claim_name_reply()->set_created(claimed.second);
    return Status::Ok();
  }

  Status HandleLookupName(const pb::LookupName& m, pb::Envelope* reply) {
    MS_ASSIGN_OR_RETURN(Bytes oid, catalog_->LookupName(m.subscriber(), ToBytes(m.name_key())));
    reply->mutable_claim_name_reply()->set_oid(std::string(oid.begin(), oid.end()));
    return Status::Ok();
  }

  // ---- read-only sharing (issue 4) ----
  Status HandlePublishShareKey(const pb::PublishShareKey& m, pb::Envelope* reply) {
    const Bytes key = ToBytes(m.public_key());
    MS_ASSIGN_OR_RETURN(bool added, catalog_->PublishShareKey(m.subscriber(), key, WallMs()));
    if (added)
      MS_INFO("dc", "share key published",
              "subscriber=" + m.subscriber() + " key=" + ToHex(key).substr(0, 16));
    reply->mutable_share_key_reply()->set_public_key(m.public_key());
    return Status::Ok();
  }

  Status HandleGetShareKey(const pb::GetShareKey& m, pb::Envelope* reply) {
    MS_ASSIGN_OR_RETURN(Bytes key, catalog_->GetShareKey(m.of_subscriber()));
    reply->mutable_share_key_reply()->set_public_key(std::string(key.begin(), key.end()));
    return Status::Ok();
  }

  Status HandlePutShare(uint32_t pop, const pb::PutShare& m, pb::Envelope* reply) {
    const Bytes oid = ToBytes(m.oid());
    bool changed = false;
    if (m.remove()) {
      MS_ASSIGN_OR_RETURN(changed, catalog_->RemoveShare(m.subscriber(), oid, m.grantee()));
    } else {
      MS_ASSIGN_OR_RETURN(changed, catalog_->PutShare(m.subscriber(), oid, m.grantee(),
                                                      ToBytes(m.grant_sealed()), WallMs()));
    }
    MS_INFO("dc", m.remove() ? "share removed" : "share recorded",
            "owner=" + m.subscriber() + " oid=" + ToHex(oid) + " grantee=" + m.grantee() +
                " pop=" + std::to_string(pop) + " changed=" + (changed ? "true" : "false"));
    reply->mutable_put_share_reply()->set_changed(changed);
    return Status::Ok();
  }

  Status HandleListShares(const pb::ListShares& m, pb::Envelope* reply) {
    MS_ASSIGN_OR_RETURN(pb::ShareList list, catalog_->ListShares(m.subscriber()));
    *reply->mutable_share_list() = std::move(list);
    return Status::Ok();
  }

  Status HandleCheckShare(const pb::CheckShare& m, pb::Envelope* reply) {
    MS_ASSIGN_OR_RETURN(bool shared, catalog_->HasShare(m.owner(), ToBytes(m.oid()), m.grantee()));
    reply->mutable_check_share_reply()->set_shared(shared);
    return Status::Ok();
  }

  // Group commit (report_group.h): the report waits for the end of this
  // loop turn (or a full group) and is answered after its group's commit.
  void HandleReportVersion(const Connection::Ptr& c, const pb::Envelope& env,
                           const DaemonMetrics::Op& op) {
    uint64_t id = env.request_id();
    AddReport(env.report_version().info(), [this, c, id, op](const Status& st) {
      pb::Envelope reply;
      reply.mutable_empty();
      metrics_.Replied(op, st.ok() ? &reply : nullptr, st.ok());
      if (c->closed()) return;
      if (!st.ok()) return c->ReplyError(id, st);
      c->Reply(id, std::move(reply));
    });
  }

  // done runs once: after the group's commit, or at once when refused.
  void AddReport(const pb::VersionInfo& info, std::function<void(const Status&)> done) {
    Status st = reports_.Add(info, done);
    if (!st.ok()) return done(st);
    if (reports_.full()) return CommitReports();
    if (reports_flush_armed_) return;
    reports_flush_armed_ = true;
    loop_.After(0, [this] {  // after the I/O of this loop turn
      reports_flush_armed_ = false;
      CommitReports();
    });
  }

  void CommitReports() {
    Status st = reports_.Flush([this](const std::vector<pb::VersionInfo>& infos) {
      return catalog_->ReportVersions(infos, WallMs());
    });
    if (!st.ok())
      MS_ERROR("dc", "version reports not committed; the POPs re-report",
               "error=\"" + st.ToString() + "\"");
  }

  static size_t ReportGroupMax(const Config& cfg) {
    int64_t n = cfg.Int("report_group_max");
    if (n < 1 || n > int64_t(Catalog::kReportBatchMax))
      FatalExit("report_group_max", ("must be 1.." + std::to_string(Catalog::kReportBatchMax)).c_str());
    return size_t(n);
  }

  Status HandleListObjects(const pb::ListObjects& m, pb::Envelope* reply) {
    MS_ASSIGN_OR_RETURN(pb::ObjectList list, catalog_->ListObjects(m.subscriber()));
    *reply->mutable_object_list() = list;
    return Status::Ok();
  }

  static Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

  static int64_t WallMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Monitoring (issue 7): the summary kept for time-range queries, and its
  // gateways' current state in the catalog.
  Status KeepSummary(uint32_t pop_id, const pb::MonitorPopSummary& s) {
    int64_t now = WallMs();
    MS_RETURN_IF_ERROR(catalog_->AddPopSummary(pop_id, now, s));
    auto pop = catalog_->GetPop(pop_id);
    for (const auto& g : s.gateways()) {
      Catalog::GatewayRecord r;
      r.gateway_id = g.gateway_id();
      r.subscriber = g.subscriber();
      r.region = pop.ok() ? pop->region : s.region();
      r.pop_id = pop_id;
      r.free_bytes = g.store_bytes_free();
      r.state = g.connected() ? "connected" : "lost";
      r.last_seen_ms = g.connected() ? now : now - int64_t(g.state_for_ms());
      MS_RETURN_IF_ERROR(catalog_->UpsertGateway(r));
    }
    return Status::Ok();
  }

  void PruneSummaries() {
    auto n = catalog_->PruneSummaries(WallMs() - cfg_.Int("monitor_retention_ms"));
    if (!n.ok()) MS_ERROR("dc", "pruning summaries failed", "error=\"" + n.status().ToString() + "\"");
  }

  const Config& cfg_;
  std::unique_ptr<Catalog> catalog_;
  EventLoop loop_;
  Listener listener_;
  std::map<Connection::Ptr, uint32_t> conns_;  // connection -> POP id (0: not yet known)
  std::map<Connection::Ptr, uint64_t> last_heard_ms_;  // connection -> loop time of its last request
  uint64_t pops_silenced_total_ = 0;  // connections closed by CloseSilentPops
  std::unique_ptr<StandIn> standin_;
  ReportGroup reports_{ReportGroupMax(cfg_)};  // POP version reports awaiting their commit
  bool reports_flush_armed_ = false;
  // Retention GC, backups, cold tier (issue 7): the backup store in
  // data_dir/backup, and the POPs reached as "POP 0" to copy versions.
  void StartGc() {
    FileBackupStoreLimits l;
    l.bytes_max = uint64_t(std::max<int64_t>(0, cfg_.Int("backup_bytes_max")));
    l.object_bytes_max = uint64_t(std::max<int64_t>(0, cfg_.Int("backup_object_bytes_max")));
    auto store = OpenFileBackupStore(cfg_.Str("data_dir") + "/backup", l);
    if (!store.ok()) FatalExit("open backup store", store.status().ToString().c_str());
    backups_ = std::move(store.value());
    gc_pops_.set_on_connect([](const std::string&, const Connection::Ptr& c) {
      pb::Envelope hello;  // POPs accept requests only after a Hello
      hello.mutable_hello()->set_role(pb::ROLE_POP);
      hello.mutable_hello()->set_node_id(kDcReplica);
      c->Call(hello, [](Result<pb::Envelope>) {});
    });
    DcGcParams p;
    p.retention_interval_ms = uint64_t(std::max<int64_t>(0, cfg_.Int("retention_interval_s"))) * 1000;
    gc_ = std::make_unique<DcGc>(
        catalog_.get(), backups_.get(), p,
        [this](uint32_t pop, pb::Envelope req, uint64_t timeout_ms,
               std::function<void(Result<pb::Envelope>)> done) {
          // "POP 0": the stand-in, the replica of DC-tier objects (standin.h).
          if (pop == kDcReplica) return standin_->LocalCall(std::move(req), std::move(done));
          auto rec = catalog_->GetPop(pop);
          if (!rec.ok() || !rec->up || rec->addr.empty()) {
            loop_.After(0, [done, pop] {
              done(Unavailable("POP " + std::to_string(pop) + " is not up"));
            });
            return;
          }
          gc_pops_.Call(rec->addr, std::move(req), std::move(done), timeout_ms);
        });
    // The stand-in replica's copies are collected with the backup store's
    // tasks (issue 7: old versions are garbage-collected everywhere).
    gc_->set_replica_gc([this](const Catalog::GcTask& t,
                               std::function<void(bool, Catalog::GcReclaimed)> done) {
      pb::GcTask task;
      task.set_task_id(t.task_id);
      task.set_oid(std::string(t.oid.begin(), t.oid.end()));
      task.set_subscriber(t.subscriber);
      for (uint64_t v : t.versions) task.add_versions(v);
      for (auto& c : t.chunk_ids) task.add_chunk_ids(std::string(c.begin(), c.end()));
      standin_->RunGcTask(task, [done](bool ok, pb::GcResult r) {
        done(ok, Catalog::GcReclaimed{r.versions_dropped(), r.chunks_dropped(),
                                      r.chunk_bytes_dropped(), 0, 0});
      });
    });
    loop_.Every(1000, [this] { gc_->Tick(WallMs()); });
    MetricsRegistry& r = metrics_.registry();
    r.AddCounterFn("mistore_dc_gc_reclaimed_bytes_total",
                   "Bytes garbage collection reclaimed, acknowledged by POPs and the backup store.",
                   [this] { return double(gc_->stats().reclaimed.chunk_bytes); },
                   {{"of", "chunk_copies"}});
    r.AddCounterFn("mistore_dc_gc_reclaimed_bytes_total",
                   "Bytes garbage collection reclaimed, acknowledged by POPs and the backup store.",
                   [this] { return double(gc_->stats().reclaimed.fragment_bytes); },
                   {{"of", "fragments"}});
    r.AddCounterFn("mistore_dc_gc_versions_collected_total",
                   "Versions retention collected in the catalog.",
                   [this] { return double(gc_->stats().versions_collected); });
    r.AddGaugeFn("mistore_dc_gc_tasks_pending",
                 "Garbage-collection tasks not yet acknowledged by their POP or the backup store.",
                 [this] { return double(gc_->stats().tasks_pending); });
    r.AddGaugeFn("mistore_dc_backup_bytes", "Bytes held in the backup store.",
                 [this] { return double(gc_->store()->used_bytes()); });
    r.AddCounterFn("mistore_dc_backup_versions_total", "Versions copied into the backup store.",
                   [this] { return double(gc_->backups_done_total()); });
  }
  std::unique_ptr<BackupStore> backups_;
  PeerPool gc_pops_{&loop_, Limits(cfg_)};
  std::unique_ptr<DcGc> gc_;
  uint64_t pushed_epoch_ = 0;
  // Monitoring (issue 8): /metrics, the admin API and the dashboard.
  DaemonMetrics metrics_{&loop_, "dc",
                         {"hello", "get_cluster_map", "claim_name", "lookup_name", "report_version",
                          "list_objects", "monitor_pop_summary", "pop_event_report"}};
  DcAdmin admin_{&loop_, catalog_.get(), &metrics_.registry()};
  enroll::EnrolService enrol_{&loop_, cfg_, &metrics_.registry()};  // issue 4
  SdNotifier notify_{&loop_, "dc"};  // READY/WATCHDOG/STOPPING to systemd
};

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  signal(SIGPIPE, SIG_IGN);
  std::vector<Knob> knobs = DcKnobs();
  for (Knob& k : enroll::EnrolKnobs()) knobs.push_back(std::move(k));  // issue 4
  Config cfg(WithSecureTransportKnobs(std::move(knobs)));
  std::vector<std::string> args;
  switch (ParseCommandLine("mistore-dc",
                           "[--config FILE] [--name=value ...] "
                           "[catalog|map|retention|monitor ... [--json]] "
                           "[enroll --role R --region R [--subscriber S] [--expiry-s N]] "
                           "[issue ...|revoke NODE_ID]",
                           &cfg, argc, argv, &args)) {
    case ArgsOutcome::kExitOk: return 0;
    case ArgsOutcome::kExitUsage: return 2;
    case ArgsOutcome::kRun: break;
  }
  if (!ApplyLogLevels(cfg.Str("log_level"))) {
    std::fprintf(stderr, "mistore-dc: bad --log-level\n");
    return 2;
  }
  if (!args.empty() && enroll::IsEnrollSubcommand(args[0]))  // issue, revoke (issue 4)
    return enroll::RunEnrollSubcommand(cfg, args, stdout, stderr);
  auto catalog = OpenConfiguredCatalog(cfg);
  if (!catalog.ok()) FatalExit("open catalog", catalog.status().ToString().c_str());
  if (!args.empty())  // an operator's subcommand (dc_cli.h)
    return RunDcSubcommand(catalog.value().get(), args, cfg.Bool("json"), stdout, stderr);
  Status started = catalog.value()->OnDaemonStart();
  if (!started.ok()) FatalExit("open catalog", started.ToString().c_str());
  DcDaemon d(cfg, std::move(catalog.value()));
  return d.Run();
}
