#include "dc-backend/dc_cli.h"

#include <chrono>
#include <cinttypes>
#include <set>
#include <limits>

#include "shared/core/bytes.h"

namespace mistore {

namespace {

std::string Q(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      o += buf;
    } else {
      o += char(c);
    }
  }
  return o + "\"";
}
std::string N(uint64_t v) { return std::to_string(v); }
std::string I(int64_t v) { return std::to_string(v); }

bool ParseU64(const std::string& s, uint64_t* v) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
    return false;
  *v = std::stoull(s);
  return true;
}

constexpr size_t kVersionsMax = 100000;

int Usage(std::FILE* err, const std::string& what) {
  std::fprintf(err, "mistore-dc: %s\n(see the header of dc-backend/dc_cli.h or --help)\n",
               what.c_str());
  return 2;
}
int Fail(std::FILE* err, const Status& st) {
  std::fprintf(err, "mistore-dc: %s\n", st.ToString().c_str());
  return 1;
}

int Objects(Catalog* c, const std::string& sub, bool json, std::FILE* out, std::FILE* err) {
  auto list = c->ListObjects(sub);
  if (!list.ok()) return Fail(err, list.status());
  std::string js = "{\"subscriber\":" + Q(sub) + ",\"objects\":[";
  if (!json) std::fprintf(out, "subscriber %s: %d objects\n", sub.c_str(), list->objects_size());
  bool first = true;
  for (auto& o : list->objects()) {
    auto rec = c->FindObject(Bytes(o.oid().begin(), o.oid().end()));
    auto vs = c->ListVersions(Bytes(o.oid().begin(), o.oid().end()), kVersionsMax);
    if (!rec.ok()) return Fail(err, rec.status());
    if (!vs.ok()) return Fail(err, vs.status());
    Bytes oid_b(o.oid().begin(), o.oid().end());
    auto cold = c->IsCold(oid_b);
    auto backed = c->BackedUpVersions(oid_b);
    if (!cold.ok()) return Fail(err, cold.status());
    if (!backed.ok()) return Fail(err, backed.status());
    std::set<uint64_t> backed_set(backed->begin(), backed->end());
    if (json) {
      js += std::string(first ? "" : ",") + "{\"oid\":" + Q(ToHex(o.oid())) +
            ",\"latest_version\":" + N(o.latest_version()) + ",\"size_bytes\":" +
            N(o.size_bytes()) + ",\"primary_pop\":" + N(rec->primary_pop) +
            ",\"backup_pop\":" + N(rec->backup_pop) + ",\"cold\":" + (*cold ? "true" : "false") +
            ",\"versions\":[";
      bool vf = true;
      for (auto& v : *vs) {
        js += std::string(vf ? "" : ",") + "{\"version\":" + N(v.version) + ",\"size_bytes\":" +
              N(v.size_bytes) + ",\"created_ms\":" + I(v.created_ms) + ",\"collected\":" +
              (v.collected ? "true" : "false") + ",\"backed_up\":" +
              (backed_set.count(v.version) ? "true" : "false") + ",\"chunks\":" +
              N(v.chunk_ids.size()) + "}";
        vf = false;
      }
      js += "]}";
      first = false;
    } else {
      std::fprintf(out, "  %s  latest v%" PRIu64 "  %" PRIu64 " bytes  primary POP %u  backup POP %u\n",
                   ToHex(o.oid()).c_str(), o.latest_version(), o.size_bytes(), rec->primary_pop,
                   rec->backup_pop);
      for (auto& v : *vs)
        std::fprintf(out, "    v%" PRIu64 "  %" PRIu64 " bytes  at %" PRId64 " ms  %zu chunks%s\n",
                     v.version, v.size_bytes, v.created_ms, v.chunk_ids.size(),
                     v.collected ? "  (collected)" : "");
    }
  }
  if (json) std::fprintf(out, "%s]}\n", js.c_str());
  return 0;
}

int Gateway(Catalog* c, uint64_t id, bool json, std::FILE* out, std::FILE* err) {
  if (id > std::numeric_limits<uint32_t>::max()) return Usage(err, "gateway id out of range");
  auto g = c->GetGateway(uint32_t(id));
  if (!g.ok()) return Fail(err, g.status());
  if (json) {
    std::fprintf(out,
                 "{\"gateway_id\":%u,\"subscriber\":%s,\"region\":%s,\"fd_labels\":%s,"
                 "\"pop_id\":%u,\"capacity_bytes\":%" PRIu64 ",\"free_bytes\":%" PRIu64
                 ",\"last_seen_ms\":%" PRId64 ",\"state\":%s}\n",
                 g->gateway_id, Q(g->subscriber).c_str(), Q(g->region).c_str(),
                 Q(g->fd_labels).c_str(), g->pop_id, g->capacity_bytes, g->free_bytes,
                 g->last_seen_ms, Q(g->state).c_str());
  } else {
    std::fprintf(out,
                 "gateway %u: %s via POP %u  subscriber %s  region %s  labels %s\n"
                 "  capacity %" PRIu64 " bytes, free %" PRIu64 " bytes, last seen %" PRId64 " ms\n",
                 g->gateway_id, g->state.c_str(), g->pop_id, g->subscriber.c_str(),
                 g->region.c_str(), g->fd_labels.c_str(), g->capacity_bytes, g->free_bytes,
                 g->last_seen_ms);
  }
  return 0;
}

int Pop(Catalog* c, uint64_t id, bool json, std::FILE* out, std::FILE* err) {
  if (id > std::numeric_limits<uint32_t>::max()) return Usage(err, "POP id out of range");
  auto p = c->GetPop(uint32_t(id));
  if (!p.ok()) return Fail(err, p.status());
  if (json)
    std::fprintf(out, "{\"pop_id\":%u,\"region\":%s,\"addr\":%s,\"state\":\"%s\"}\n", p->pop_id,
                 Q(p->region).c_str(), Q(p->addr).c_str(), p->up ? "up" : "down");
  else
    std::fprintf(out, "POP %u: region %s, %s, %s\n", p->pop_id, p->region.c_str(),
                 p->addr.c_str(), p->up ? "up" : "down");
  return 0;
}

int Map(Catalog* c, bool json, std::FILE* out, std::FILE* err) {
  auto m = c->Map();
  if (!m.ok()) return Fail(err, m.status());
  if (json) {
    std::string js = "{\"epoch\":" + N(m->epoch()) + ",\"pops\":[";
    for (int i = 0; i < m->pops_size(); i++) {
      auto& p = m->pops(i);
      js += std::string(i ? "," : "") + "{\"pop_id\":" + N(p.pop_id()) + ",\"region\":" +
            Q(p.region()) + ",\"addr\":" + Q(p.addr()) + ",\"state\":\"" +
            (p.up() ? "up" : "down") + "\"}";
    }
    std::fprintf(out, "%s]}\n", js.c_str());
  } else {
    std::fprintf(out, "cluster map epoch %" PRIu64 "\n", m->epoch());
    for (auto& p : m->pops())
      std::fprintf(out, "  POP %u  %-5s  region %s  %s\n", p.pop_id(), p.up() ? "up" : "down",
                   p.region().c_str(), p.addr().c_str());
  }
  return 0;
}

void PrintPolicy(const std::string& vol, const RetentionPolicy& p, bool json, std::FILE* out) {
  if (json) {
    std::fprintf(out, "%s\n", RetentionPolicyJson(vol, p).c_str());
  } else {
    std::fprintf(out,
                 "volume %s: keep the last %" PRIu64 " versions, one a day for %" PRIu64
                 " days, one a week for %" PRIu64 " weeks; history at most %s bytes\n",
                 vol.c_str(), p.keep_last, p.daily_days, p.weekly_weeks,
                 p.history_bytes_max ? std::to_string(p.history_bytes_max).c_str() : "unbounded");
  }
}

int Monitor(Catalog* c, const std::vector<std::string>& args, bool json, std::FILE* out,
            std::FILE* err) {
  uint64_t pop = 0, from = 0, to = uint64_t(std::numeric_limits<int64_t>::max());
  if ((args.size() > 1 && !ParseU64(args[1], &pop)) || (args.size() > 2 && !ParseU64(args[2], &from)) ||
      (args.size() > 3 && !ParseU64(args[3], &to)) || args.size() > 4 ||
      pop > std::numeric_limits<uint32_t>::max())
    return Usage(err, "monitor [POP [FROM_MS [TO_MS]]] (POP 0: every POP)");
  auto rows = c->PopSummaries(uint32_t(pop), int64_t(from), int64_t(to), 10000);
  if (!rows.ok()) return Fail(err, rows.status());
  std::string js = "{\"summaries\":[";
  bool first = true;
  for (auto& r : *rows) {
    uint64_t up = 0;
    for (auto& g : r.summary.gateways()) up += g.connected() ? 1 : 0;
    if (json) {
      js += std::string(first ? "" : ",") + "{\"pop_id\":" + N(r.pop_id) + ",\"t_ms\":" +
            I(r.t_ms) + ",\"map_epoch\":" + N(r.summary.map_epoch()) + ",\"gateways\":" +
            N(uint64_t(r.summary.gateways_size())) + ",\"gateways_connected\":" + N(up) +
            ",\"placement_queue\":" + N(r.summary.placement_queue()) + ",\"requests_total\":" +
            N(r.summary.requests_total()) + ",\"request_errors_total\":" +
            N(r.summary.request_errors_total()) + "}";
      first = false;
    } else {
      std::fprintf(out,
                   "%" PRId64 " ms  POP %u  epoch %" PRIu64 "  gateways %d (%" PRIu64
                   " connected)  placement queue %" PRIu64 "  requests %" PRIu64 "\n",
                   r.t_ms, r.pop_id, r.summary.map_epoch(), r.summary.gateways_size(), up,
                   r.summary.placement_queue(), r.summary.requests_total());
    }
  }
  if (json) std::fprintf(out, "%s]}\n", js.c_str());
  return 0;
}

const char* BackupModeName(Catalog::BackupMode m) {
  switch (m) {
    case Catalog::BackupMode::kNone: return "none";
    case Catalog::BackupMode::kLatest: return "latest";
    case Catalog::BackupMode::kAll: return "all";
  }
  return "none";
}

bool ParseBackupMode(const std::string& s, Catalog::BackupMode* m) {
  for (auto x : {Catalog::BackupMode::kNone, Catalog::BackupMode::kLatest, Catalog::BackupMode::kAll})
    if (s == BackupModeName(x)) {
      *m = x;
      return true;
    }
  return false;
}

int BackupShow(Catalog* c, const std::string& vol, bool json, std::FILE* out, std::FILE* err) {
  auto m = c->GetBackupMode(vol);
  if (!m.ok()) return Fail(err, m.status());
  if (json)
    std::fprintf(out, "{\"volume\":%s,\"backup\":\"%s\"}\n", Q(vol).c_str(), BackupModeName(*m));
  else
    std::fprintf(out, "volume %s: backup %s\n", vol.c_str(), BackupModeName(*m));
  return 0;
}

std::string GcStatsJson(const Catalog::GcStats& s) {
  return "{\"tasks_pending\":" + N(s.tasks_pending) + ",\"versions_collected\":" +
         N(s.versions_collected) + ",\"version_bytes_collected\":" + N(s.version_bytes_collected) +
         ",\"reclaimed\":{\"versions\":" + N(s.reclaimed.versions) + ",\"chunks\":" +
         N(s.reclaimed.chunks) + ",\"chunk_bytes\":" + N(s.reclaimed.chunk_bytes) +
         ",\"fragments\":" + N(s.reclaimed.fragments) + ",\"fragment_bytes\":" +
         N(s.reclaimed.fragment_bytes) + ",\"bytes\":" +
         N(s.reclaimed.chunk_bytes + s.reclaimed.fragment_bytes) + "}}";
}

// `retention gc`: what retention collected and what its holders reclaimed.
int GcReport(Catalog* c, bool json, std::FILE* out, std::FILE* err) {
  auto s = c->GetGcStats();
  if (!s.ok()) return Fail(err, s.status());
  if (json) {
    std::fprintf(out, "%s\n", GcStatsJson(*s).c_str());
  } else {
    std::fprintf(out,
                 "collected %" PRIu64 " versions (%" PRIu64 " bytes); %" PRIu64
                 " GC tasks pending\nreclaimed: %" PRIu64 " version records, %" PRIu64
                 " chunk copies (%" PRIu64 " bytes), %" PRIu64 " fragments (%" PRIu64 " bytes)\n",
                 s->versions_collected, s->version_bytes_collected, s->tasks_pending,
                 s->reclaimed.versions, s->reclaimed.chunks, s->reclaimed.chunk_bytes,
                 s->reclaimed.fragments, s->reclaimed.fragment_bytes);
  }
  return 0;
}

// `retention apply VOLUME`: the policy now; the POPs and the DC's backup
// store then reclaim the space (GC queue; see `retention gc`).
int ApplyRetentionNow(Catalog* c, const std::string& vol, bool json, std::FILE* out,
                      std::FILE* err) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto done = c->ApplyRetention(vol, now, 1000000);
  if (!done.ok()) return Fail(err, done.status());
  uint64_t versions = 0, bytes = 0, chunks = 0;
  std::string js = "{\"volume\":" + Q(vol) + ",\"objects\":[";
  bool first = true;
  for (auto& col : *done) {
    versions += col.versions.size();
    bytes += col.bytes;
    chunks += col.chunks_freed.size();
    js += std::string(first ? "" : ",") + "{\"oid\":" + Q(ToHex(col.oid)) + ",\"versions\":[";
    for (size_t i = 0; i < col.versions.size(); i++) js += (i ? "," : "") + N(col.versions[i]);
    js += "],\"bytes\":" + N(col.bytes) + ",\"chunks_freed\":" + N(col.chunks_freed.size()) + "}";
    first = false;
    if (!json)
      for (uint64_t v : col.versions)
        std::fprintf(out, "  %s  v%" PRIu64 " collected\n", ToHex(col.oid).c_str(), v);
  }
  auto s = c->GetGcStats();
  if (!s.ok()) return Fail(err, s.status());
  if (json) {
    std::fprintf(out,
                 "%s],\"versions_collected\":%" PRIu64 ",\"bytes_collected\":%" PRIu64
                 ",\"chunks_freed\":%" PRIu64 ",\"gc\":%s}\n",
                 js.c_str(), versions, bytes, chunks, GcStatsJson(*s).c_str());
  } else {
    std::fprintf(out,
                 "volume %s: %" PRIu64 " versions collected (%" PRIu64 " bytes), %" PRIu64
                 " chunks freed; %" PRIu64 " GC tasks pending\n",
                 vol.c_str(), versions, bytes, chunks, s->tasks_pending);
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<Catalog>> OpenConfiguredCatalog(const Config& cfg) {
  std::string backend = cfg.Str("catalog_backend");
  if (backend == "sqlite") return OpenSqliteCatalog(cfg.Str("data_dir"));
  if (backend == "postgres") return OpenPgCatalog(cfg.Str("catalog_pg_conninfo"));
  return InvalidArgument("catalog_backend must be sqlite or postgres, not " + backend);
}

int RunDcSubcommand(Catalog* c, const std::vector<std::string>& args, bool json, std::FILE* out,
                    std::FILE* err) {
  const std::string& cmd = args.at(0);
  uint64_t id = 0;
  if (cmd == "map") {
    if (args.size() != 1) return Usage(err, "map takes no arguments");
    return Map(c, json, out, err);
  }
  if (cmd == "catalog") {
    if (args.size() == 3 && args[1] == "objects") return Objects(c, args[2], json, out, err);
    if (args.size() == 3 && args[1] == "gateway" && ParseU64(args[2], &id))
      return Gateway(c, id, json, out, err);
    if (args.size() == 3 && args[1] == "pop" && ParseU64(args[2], &id))
      return Pop(c, id, json, out, err);
    return Usage(err, "catalog objects SUBSCRIBER | catalog gateway ID | catalog pop ID");
  }
  if (cmd == "retention") {
    if (args.size() == 3 && args[1] == "show") {
      auto p = c->GetRetention(args[2]);
      if (!p.ok()) return Fail(err, p.status());
      PrintPolicy(args[2], *p, json, out);
      return 0;
    }
    if (args.size() >= 4 && args[1] == "set") {
      auto p = c->GetRetention(args[2]);
      if (!p.ok()) return Fail(err, p.status());
      RetentionPolicy policy = *p;
      Status st = ParseRetentionPolicy(std::vector<std::string>(args.begin() + 3, args.end()),
                                       &policy);
      if (!st.ok()) return Usage(err, st.message());
      st = c->SetRetention(args[2], policy);
      if (!st.ok()) return Fail(err, st);
      PrintPolicy(args[2], policy, json, out);
      return 0;
    }
    if (args.size() == 3 && args[1] == "apply") return ApplyRetentionNow(c, args[2], json, out, err);
    if (args.size() == 2 && args[1] == "gc") return GcReport(c, json, out, err);
    return Usage(err,
                 "retention show VOLUME | retention set VOLUME name=value ... | "
                 "retention apply VOLUME | retention gc");
  }
  if (cmd == "backup") {
    if (args.size() == 3 && args[1] == "show") return BackupShow(c, args[2], json, out, err);
    Catalog::BackupMode mode;
    if (args.size() == 4 && args[1] == "set" && ParseBackupMode(args[3], &mode)) {
      Status st = c->SetBackupMode(args[2], mode);
      if (!st.ok()) return Fail(err, st);
      return BackupShow(c, args[2], json, out, err);
    }
    return Usage(err, "backup show VOLUME | backup set VOLUME none|latest|all");
  }
  if (cmd == "monitor") return Monitor(c, args, json, out, err);
  if (cmd == "share-key") {
    if (args.size() == 3 && args[1] == "show") {
      auto k = c->GetShareKey(args[2]);
      if (!k.ok()) return Fail(err, k.status());
      const std::string hex = ToHex(k.value());
      if (json)
        std::fprintf(out, "{\"subscriber\":%s,\"share_key\":%s}\n", Q(args[2]).c_str(),
                     Q(hex).c_str());
      else
        std::fprintf(out, "subscriber %s: share key %s\n", args[2].c_str(), hex.c_str());
      return 0;
    }
    if (args.size() == 3 && args[1] == "forget") {
      auto r = c->ForgetShareKey(args[2]);
      if (!r.ok()) return Fail(err, r.status());
      if (json)
        std::fprintf(out, "{\"subscriber\":%s,\"forgotten\":%s}\n", Q(args[2]).c_str(),
                     r.value() ? "true" : "false");
      else
        std::fprintf(out, r.value() ? "subscriber %s: share key forgotten\n"
                                    : "subscriber %s had no share key\n",
                     args[2].c_str());
      return 0;
    }
    return Usage(err, "share-key show SUBSCRIBER | share-key forget SUBSCRIBER");
  }
  return Usage(err, "unknown subcommand '" + cmd +
                        "' (catalog, map, retention, backup, monitor, share-key)");
}

}  // namespace mistore
