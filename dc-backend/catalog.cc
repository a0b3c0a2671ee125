#include "dc-backend/catalog.h"

#include <algorithm>
#include <map>
#include <set>

#include "dc-backend/sql_driver.h"
#include "shared/core/oid.h"
#include "shared/crypto/share.h"
#include "shared/store/file_util.h"

namespace mistore {

namespace {

// {B}: blob type; {ID}: auto-numbered key (insertion order of objects).
const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta(key, value) VALUES('epoch', 0) ON CONFLICT(key) DO NOTHING;
CREATE TABLE IF NOT EXISTS pops(
  id BIGINT PRIMARY KEY, region TEXT NOT NULL, addr TEXT NOT NULL, up BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS subscribers(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS names(
  subscriber TEXT NOT NULL, name_key {B} NOT NULL, oid {B} NOT NULL,
  PRIMARY KEY(subscriber, name_key));
CREATE INDEX IF NOT EXISTS names_oid ON names(oid);
CREATE TABLE IF NOT EXISTS objects(
  id {ID}, oid {B} NOT NULL UNIQUE, subscriber TEXT NOT NULL, name_sealed {B} NOT NULL,
  latest_version BIGINT NOT NULL, size BIGINT NOT NULL,
  primary_pop BIGINT NOT NULL, backup_pop BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS objects_subscriber ON objects(subscriber);
CREATE TABLE IF NOT EXISTS versions(
  oid {B} NOT NULL, version BIGINT NOT NULL, size BIGINT NOT NULL, created_ms BIGINT NOT NULL,
  collected BIGINT NOT NULL, PRIMARY KEY(oid, version));
CREATE TABLE IF NOT EXISTS version_chunks(
  oid {B} NOT NULL, version BIGINT NOT NULL, chunk_id {B} NOT NULL,
  PRIMARY KEY(oid, version, chunk_id));
CREATE TABLE IF NOT EXISTS chunks(chunk_id {B} PRIMARY KEY, refs BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS gateways(
  id BIGINT PRIMARY KEY, subscriber TEXT NOT NULL, region TEXT NOT NULL, fd_labels TEXT NOT NULL,
  pop_id BIGINT NOT NULL, capacity_bytes BIGINT NOT NULL, free_bytes BIGINT NOT NULL,
  last_seen_ms BIGINT NOT NULL, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS gateways_pop ON gateways(pop_id);
CREATE TABLE IF NOT EXISTS retention(
  volume TEXT PRIMARY KEY, keep_last BIGINT NOT NULL, daily_days BIGINT NOT NULL,
  weekly_weeks BIGINT NOT NULL, history_bytes_max BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS version_chunks_chunk ON version_chunks(chunk_id);
CREATE TABLE IF NOT EXISTS gc_tasks(
  id {ID}, pop_id BIGINT NOT NULL, oid {B} NOT NULL, subscriber TEXT NOT NULL,
  versions TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS gc_tasks_pop ON gc_tasks(pop_id, id);
CREATE TABLE IF NOT EXISTS gc_task_chunks(
  task_id BIGINT NOT NULL, chunk_id {B} NOT NULL, PRIMARY KEY(task_id, chunk_id));
INSERT INTO meta(key, value) VALUES('gc_versions', 0) ON CONFLICT(key) DO NOTHING;
INSERT INTO meta(key, value) VALUES('gc_version_bytes', 0) ON CONFLICT(key) DO NOTHING;
INSERT INTO meta(key, value) VALUES('gc_dropped_versions', 0) ON CONFLICT(key) DO NOTHING;
INSERT INTO meta(key, value) VALUES('gc_chunks', 0) ON CONFLICT(key) DO NOTHING;
INSERT INTO meta(key, value) VALUES('gc_chunk_bytes', 0) ON CONFLICT(key) DO NOTHING;
INSERT INTO meta(key, value) VALUES('gc_fragments', 0) ON CONFLICT(key) DO NOTHING;
INSERT INTO meta(key, value) VALUES('gc_fragment_bytes', 0) ON CONFLICT(key) DO NOTHING;
CREATE TABLE IF NOT EXISTS backup_policy(volume TEXT PRIMARY KEY, mode BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS backups(
  oid {B} NOT NULL, version BIGINT NOT NULL, subscriber TEXT NOT NULL, done BIGINT NOT NULL,
  seq BIGINT NOT NULL, PRIMARY KEY(oid, version));
CREATE INDEX IF NOT EXISTS backups_pending ON backups(done, seq);
CREATE TABLE IF NOT EXISTS cold_objects(oid {B} PRIMARY KEY, since_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS share_keys(
  subscriber TEXT PRIMARY KEY, public_key {B} NOT NULL, published_ms BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS shares(
  owner TEXT NOT NULL, oid {B} NOT NULL, grantee TEXT NOT NULL, grant_sealed {B} NOT NULL,
  created_ms BIGINT NOT NULL, PRIMARY KEY(owner, oid, grantee));
CREATE INDEX IF NOT EXISTS shares_grantee ON shares(grantee, created_ms);
CREATE TABLE IF NOT EXISTS pop_summaries(
  pop_id BIGINT NOT NULL, t_ms BIGINT NOT NULL, summary {B} NOT NULL, PRIMARY KEY(t_ms, pop_id));
)";

constexpr size_t kRowsMax = 1000000;
static_assert(kShareGrantBytesMax == crypto::kShareGrantPlainBytesMax + crypto::kShareSealOverhead);  // no single query may return more

std::string SchemaFor(Dialect d) {
  std::string s = kSchema;
  auto sub = [&](const std::string& from, const std::string& to) {
    for (size_t p; (p = s.find(from)) != std::string::npos;) s.replace(p, from.size(), to);
  };
  sub("{B}", d == Dialect::kSqlite ? "BLOB" : "BYTEA");
  sub("{ID}", d == Dialect::kSqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY");
  return s;
}

Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

class SqlCatalog : public Catalog {
 public:
  explicit SqlCatalog(std::unique_ptr<SqlDriver> db) : db_(std::move(db)) {}

  Status Init() { return db_->ExecScript(SchemaFor(db_->dialect())); }

  Status OnDaemonStart() override {
    return InSqlTransaction(db_.get(), [&]() -> Status {
      MS_RETURN_IF_ERROR(db_->Exec("UPDATE pops SET up=0", {}).status());
      return BumpEpoch();
    });
  }

  // ---- cluster map ----
  Status PopUp(uint32_t pop_id, const std::string& region, const std::string& addr) override {
    return InSqlTransaction(db_.get(), [&]() -> Status {
      MS_ASSIGN_OR_RETURN(auto rows,
                          db_->Query("SELECT region, addr, up FROM pops WHERE id=$1", {pop_id}, 1));
      if (!rows.empty() && rows[0][0].Text() == region && rows[0][1].Text() == addr &&
          rows[0][2].Int() == 1)
        return Status::Ok();
      MS_RETURN_IF_ERROR(db_->Exec("INSERT INTO pops(id, region, addr, up) VALUES($1,$2,$3,1) "
                                   "ON CONFLICT(id) DO UPDATE SET region=excluded.region, "
                                   "addr=excluded.addr, up=1",
                                   {pop_id, region, addr})
                             .status());
      return BumpEpoch();
    });
  }

  Status PopDown(uint32_t pop_id) override {
    return InSqlTransaction(db_.get(), [&]() -> Status {
      MS_ASSIGN_OR_RETURN(int64_t n, db_->Exec("UPDATE pops SET up=0 WHERE id=$1 AND up=1", {pop_id}));
      return n == 0 ? Status::Ok() : BumpEpoch();
    });
  }

  Result<pb::ClusterMap> Map() override {
    pb::ClusterMap map;
    MS_ASSIGN_OR_RETURN(auto e, db_->Query("SELECT value FROM meta WHERE key='epoch'", {}, 1));
    if (!e.empty()) map.set_epoch(uint64_t(e[0][0].Int()));
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT id, region, addr, up FROM pops ORDER BY id", {}, kRowsMax));
    for (auto& r : rows) {
      auto* p = map.add_pops();
      p->set_pop_id(uint32_t(r[0].Int()));
      p->set_region(r[1].Text());
      p->set_addr(r[2].Text());
      p->set_up(r[3].Int() != 0);
    }
    return map;
  }

  Result<PopRecord> GetPop(uint32_t pop_id) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT region, addr, up FROM pops WHERE id=$1", {pop_id}, 1));
    if (rows.empty()) return NotFound("no POP " + std::to_string(pop_id) + " in the catalog");
    return PopRecord{pop_id, rows[0][0].Text(), rows[0][1].Text(), rows[0][2].Int() != 0};
  }

  // ---- names ----
  Result<std::pair<Bytes, bool>> ClaimName(const std::string& subscriber, const Bytes& name_key,
                                           const Bytes& proposed_oid) override {
    int64_t created = 0;
    MS_RETURN_IF_ERROR(InSqlTransaction(db_.get(), [&]() -> Status {
      MS_RETURN_IF_ERROR(AddSubscriber(subscriber));
      MS_RETURN_IF_ERROR(CheckDcTierOidFree(subscriber, name_key, proposed_oid));
      MS_ASSIGN_OR_RETURN(created, db_->Exec("INSERT INTO names(subscriber, name_key, oid) "
                                             "VALUES($1,$2,$3) ON CONFLICT DO NOTHING",
                                             {subscriber, name_key, proposed_oid}));
      return Status::Ok();
    }));
    MS_ASSIGN_OR_RETURN(Bytes oid, LookupName(subscriber, name_key));
    return std::make_pair(oid, created > 0);
  }

  // A DC-tier oid (POP ids 0 and 0) carries a random counter
  // (PopCore::ClaimNewOid): one another name or object uses is refused
  // (kAborted; the POP draws another). Inside the caller's transaction.
  Status CheckDcTierOidFree(const std::string& subscriber, const Bytes& name_key,
                            const Bytes& oid) {
    if (oid.size() != 16 || std::any_of(oid.begin(), oid.begin() + 8, [](uint8_t b) { return b; }))
      return Status::Ok();
    MS_ASSIGN_OR_RETURN(auto mine, db_->Query("SELECT 1 FROM names WHERE subscriber=$1 AND "
                                              "name_key=$2",
                                              {subscriber, name_key}, 1));
    if (!mine.empty()) return Status::Ok();  // the name exists: its oid is the answer
    MS_ASSIGN_OR_RETURN(auto used, db_->Query("SELECT 1 FROM names WHERE oid=$1 UNION ALL "
                                              "SELECT 1 FROM objects WHERE oid=$1",
                                              {oid}, 1));
    if (!used.empty()) return Status(Code::kAborted, "DC-tier oid in use; propose another");
    return Status::Ok();
  }

  Result<Bytes> LookupName(const std::string& subscriber, const Bytes& name_key) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT oid FROM names WHERE subscriber=$1 AND name_key=$2",
                                   {subscriber, name_key}, 1));
    if (rows.empty()) return NotFound("no object of that name");
    return rows[0][0].Blob();
  }

  // ---- objects and versions ----
  Status ReportVersion(const pb::VersionInfo& info, int64_t now_ms) override {
    return InSqlTransaction(db_.get(), [&]() -> Status { return ReportMany({&info}, now_ms); });
  }

  Status ReportVersions(const std::vector<pb::VersionInfo>& infos, int64_t now_ms) override {
    if (infos.size() > kReportBatchMax) return InvalidArgument("report batch too large");
    std::vector<const pb::VersionInfo*> all;
    for (const auto& info : infos) all.push_back(&info);
    return InSqlTransaction(db_.get(), [&]() -> Status { return ReportMany(all, now_ms); });
  }

  // Reports, inside the caller's transaction, set-based: each step is one
  // multi-row statement per kRowsPerStatement rows (a few round trips per
  // batch on PostgreSQL instead of several per report). The end state is
  // what applying the reports one by one in order gives: a re-reported
  // (oid, version) changes nothing, an object shows its highest version.
  Status ReportMany(const std::vector<const pb::VersionInfo*>& infos, int64_t now_ms) {
    std::vector<const pb::VersionInfo*> firsts;  // first report of each (oid, version)
    std::set<std::pair<std::string, uint64_t>> seen;
    std::map<std::string, const pb::VersionInfo*> newest;  // per oid
    std::vector<std::string> oid_order;                    // first appearance
    std::set<std::string> subscribers;
    for (const auto* info : infos) {
      if (!seen.insert({info->oid(), info->version()}).second) continue;
      firsts.push_back(info);
      subscribers.insert(info->subscriber());
      auto [it, fresh] = newest.emplace(info->oid(), info);
      if (fresh) oid_order.push_back(info->oid());
      if (info->version() > it->second->version()) it->second = info;
    }
    std::vector<SqlParams> rows;
    for (const auto& s : subscribers) rows.push_back({s});
    MS_RETURN_IF_ERROR(ExecRows("INSERT INTO subscribers(name) VALUES ", 1,
                                " ON CONFLICT DO NOTHING", rows, nullptr));
    rows.clear();
    for (const auto& oid : oid_order) {
      const pb::VersionInfo& info = *newest[oid];
      uint32_t primary = 0, backup = 0;
      if (auto o = Oid::Decode(info.oid()); o.ok()) {
        primary = o->primary_pop;
        backup = o->backup_pop;
      }
      rows.push_back({ToBytes(info.oid()), info.subscriber(), ToBytes(info.name_sealed()),
                      info.version(), info.size_bytes(), primary, backup});
    }
    MS_RETURN_IF_ERROR(ExecRows(
        "INSERT INTO objects(oid, subscriber, name_sealed, latest_version, size, primary_pop, "
        "backup_pop) VALUES ",
        7,
        " ON CONFLICT(oid) DO UPDATE SET "
        "name_sealed=CASE WHEN excluded.latest_version > objects.latest_version "
        "THEN excluded.name_sealed ELSE objects.name_sealed END, "
        "size=CASE WHEN excluded.latest_version > objects.latest_version "
        "THEN excluded.size ELSE objects.size END, "
        "latest_version=CASE WHEN excluded.latest_version > objects.latest_version "
        "THEN excluded.latest_version ELSE objects.latest_version END",
        rows, nullptr));
    rows.clear();
    for (const auto* info : firsts)
      rows.push_back({ToBytes(info->oid()), info->version(), info->size_bytes(), now_ms});
    std::vector<SqlRow> added_rows;
    MS_RETURN_IF_ERROR(ExecRows("INSERT INTO versions(oid, version, size, created_ms, collected) "
                                "VALUES ",
                                4, " ON CONFLICT DO NOTHING RETURNING oid, version", rows,
                                &added_rows, /*extra_values=*/",0"));
    std::set<std::pair<std::string, uint64_t>> added;  // new versions; re-reports are counted
    for (auto& r : added_rows) added.insert({r[0].Text(), uint64_t(r[1].Int())});
    std::vector<const pb::VersionInfo*> fresh;
    for (const auto* info : firsts)
      if (added.count({info->oid(), info->version()})) fresh.push_back(info);
    return AddVersionsData(fresh);
  }

  // The backups, chunk references and reference counts of newly added
  // versions (in report order).
  Status AddVersionsData(const std::vector<const pb::VersionInfo*>& fresh) {
    if (fresh.empty()) return Status::Ok();
    std::set<std::string> volumes;
    for (const auto* info : fresh) volumes.insert(info->subscriber());
    MS_ASSIGN_OR_RETURN(auto modes, BackupModes(volumes));
    std::vector<SqlParams> refs;
    std::map<std::string, int64_t> counts;  // chunk id -> new references
    for (const auto* info : fresh) {
      Bytes oid = ToBytes(info->oid());
      auto m = modes.find(info->subscriber());
      if (m != modes.end() && m->second != BackupMode::kNone)
        MS_RETURN_IF_ERROR(QueueBackup(oid, info->version(), info->subscriber(), m->second));
      std::set<std::string> chunks(info->chunk_ids().begin(), info->chunk_ids().end());
      for (const auto& c : chunks) {
        refs.push_back({oid, info->version(), ToBytes(c)});
        counts[c]++;
      }
    }
    MS_RETURN_IF_ERROR(ExecRows("INSERT INTO version_chunks(oid, version, chunk_id) VALUES ", 3,
                                "", refs, nullptr));
    std::vector<SqlParams> rows;
    for (const auto& [c, n] : counts) rows.push_back({ToBytes(c), n});
    return ExecRows("INSERT INTO chunks(chunk_id, refs) VALUES ", 2,
                    " ON CONFLICT(chunk_id) DO UPDATE SET refs=chunks.refs+excluded.refs", rows,
                    nullptr);
  }

  // The backup modes set for these volumes (absent: kNone).
  Result<std::map<std::string, BackupMode>> BackupModes(const std::set<std::string>& volumes) {
    std::vector<SqlParams> rows;
    for (const auto& v : volumes) rows.push_back({v});
    std::vector<SqlRow> found;
    MS_RETURN_IF_ERROR(ForEachStatement(rows, [&](size_t begin, size_t n) -> Status {
      std::string sql = "SELECT volume, mode FROM backup_policy WHERE volume IN (";
      SqlParams params;
      for (size_t i = 0; i < n; i++) {
        sql += (i ? ",$" : "$") + std::to_string(i + 1);
        params.push_back(rows[begin + i][0]);
      }
      MS_ASSIGN_OR_RETURN(auto r, db_->Query(sql + ")", params, n));
      for (auto& row : r) found.push_back(std::move(row));
      return Status::Ok();
    }));
    std::map<std::string, BackupMode> out;
    for (auto& r : found) {
      int64_t m = r[1].Int();
      if (m < 0 || m > int64_t(BackupMode::kAll)) return Corrupt("stored backup mode out of range");
      out[r[0].Text()] = BackupMode(m);
    }
    return out;
  }

  // Rows go in statements of a power-of-two number of rows, at most
  // kRowsPerStatement, so that a driver prepares few distinct texts (at most
  // log2(kRowsPerStatement)+1 per statement).
  static constexpr size_t kRowsPerStatement = 256;
  template <typename F>
  static Status ForEachStatement(const std::vector<SqlParams>& rows, F&& run) {
    for (size_t begin = 0; begin < rows.size();) {
      size_t n = kRowsPerStatement;
      while (n > rows.size() - begin) n /= 2;
      MS_RETURN_IF_ERROR(run(begin, n));
      begin += n;
    }
    return Status::Ok();
  }

  // head + "($1,...,$cols<extra_values>),(...)" + tail for every row; the
  // rows a RETURNING tail gives are appended to *returned.
  Status ExecRows(const std::string& head, size_t cols, const std::string& tail,
                  const std::vector<SqlParams>& rows, std::vector<SqlRow>* returned,
                  const std::string& extra_values = "") {
    return ForEachStatement(rows, [&](size_t begin, size_t n) -> Status {
      std::string sql = head;
      SqlParams params;
      params.reserve(n * cols);
      for (size_t i = 0; i < n; i++) {
        sql += i ? ",(" : "(";
        for (size_t c = 0; c < cols; c++) {
          sql += (c ? ",$" : "$") + std::to_string(i * cols + c + 1);
          params.push_back(rows[begin + i][c]);
        }
        sql += extra_values + ")";
      }
      sql += tail;
      if (!returned) return db_->Exec(sql, params).status();
      MS_ASSIGN_OR_RETURN(auto r, db_->Query(sql, params, n));
      for (auto& row : r) returned->push_back(std::move(row));
      return Status::Ok();
    });
  }

  Result<pb::ObjectList> ListObjects(const std::string& subscriber) override {
    pb::ObjectList list;
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT oid, name_sealed, latest_version, size "
                                              "FROM objects WHERE subscriber=$1 ORDER BY id",
                                              {subscriber}, kRowsMax));
    for (auto& r : rows) {
      auto* e = list.add_objects();
      e->set_oid(r[0].Text());
      e->set_name_sealed(r[1].Text());
      e->set_latest_version(uint64_t(r[2].Int()));
      e->set_size_bytes(uint64_t(r[3].Int()));
    }
    return list;
  }

  Result<std::vector<VersionRecord>> ListVersions(const Bytes& oid, size_t versions_max) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT version, size, created_ms, collected FROM versions "
                                   "WHERE oid=$1 ORDER BY version",
                                   {oid}, versions_max));
    MS_ASSIGN_OR_RETURN(auto chunk_rows,
                        db_->Query("SELECT version, chunk_id FROM version_chunks WHERE oid=$1 "
                                   "ORDER BY version, chunk_id",
                                   {oid}, kRowsMax));
    std::vector<VersionRecord> out;
    for (auto& r : rows)
      out.push_back({uint64_t(r[0].Int()), uint64_t(r[1].Int()), r[2].Int(), r[3].Int() != 0, {}});
    for (auto& c : chunk_rows)
      for (auto& v : out)
        if (v.version == uint64_t(c[0].Int())) v.chunk_ids.push_back(c[1].Blob());
    return out;
  }

  Result<std::vector<std::string>> ListSubscribers(size_t limit) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT name FROM subscribers ORDER BY name LIMIT $1",
                                   {uint64_t(limit)}, limit));
    std::vector<std::string> out;
    for (auto& r : rows) out.push_back(r[0].Text());
    return out;
  }

  // ---- gateways ----
  Status UpsertGateway(const GatewayRecord& g) override {
    return InSqlTransaction(db_.get(), [&]() -> Status {
      return db_->Exec(
                 "INSERT INTO gateways(id, subscriber, region, fd_labels, pop_id, capacity_bytes, "
                 "free_bytes, last_seen_ms, state) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9) "
                 "ON CONFLICT(id) DO UPDATE SET "
                 "subscriber=CASE WHEN excluded.subscriber='' THEN gateways.subscriber "
                 "ELSE excluded.subscriber END, "
                 "region=CASE WHEN excluded.region='' THEN gateways.region ELSE excluded.region END, "
                 "fd_labels=CASE WHEN excluded.fd_labels='' THEN gateways.fd_labels "
                 "ELSE excluded.fd_labels END, "
                 "capacity_bytes=CASE WHEN excluded.capacity_bytes=0 THEN gateways.capacity_bytes "
                 "ELSE excluded.capacity_bytes END, "
                 "pop_id=excluded.pop_id, free_bytes=excluded.free_bytes, "
                 "last_seen_ms=excluded.last_seen_ms, state=excluded.state",
                 {g.gateway_id, g.subscriber, g.region, g.fd_labels, g.pop_id, g.capacity_bytes,
                  g.free_bytes, g.last_seen_ms, g.state})
          .status();
    });
  }

  static GatewayRecord GatewayFromRow(const SqlRow& r) {
    GatewayRecord g;
    g.gateway_id = uint32_t(r[0].Int());
    g.subscriber = r[1].Text();
    g.region = r[2].Text();
    g.fd_labels = r[3].Text();
    g.pop_id = uint32_t(r[4].Int());
    g.capacity_bytes = uint64_t(r[5].Int());
    g.free_bytes = uint64_t(r[6].Int());
    g.last_seen_ms = r[7].Int();
    g.state = r[8].Text();
    return g;
  }
  static constexpr const char* kGatewayCols =
      "SELECT id, subscriber, region, fd_labels, pop_id, capacity_bytes, free_bytes, "
      "last_seen_ms, state FROM gateways ";

  Result<GatewayRecord> GetGateway(uint32_t gateway_id) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query(std::string(kGatewayCols) + "WHERE id=$1", {gateway_id}, 1));
    if (rows.empty()) return NotFound("no gateway " + std::to_string(gateway_id) + " in the catalog");
    return GatewayFromRow(rows[0]);
  }

  Result<std::vector<GatewayRecord>> ListGateways(uint32_t pop_id, size_t limit) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query(std::string(kGatewayCols) +
                                       "WHERE $1=0 OR pop_id=$1 ORDER BY id LIMIT $2",
                                   {pop_id, uint64_t(limit)}, limit));
    std::vector<GatewayRecord> out;
    for (auto& r : rows) out.push_back(GatewayFromRow(r));
    return out;
  }

  // ---- retention ----
  Status SetRetention(const std::string& volume, const RetentionPolicy& p) override {
    if (p.keep_last == 0) return InvalidArgument("keep_last must be at least 1");
    return InSqlTransaction(db_.get(), [&]() -> Status {
      return db_->Exec("INSERT INTO retention(volume, keep_last, daily_days, weekly_weeks, "
                       "history_bytes_max) VALUES($1,$2,$3,$4,$5) ON CONFLICT(volume) DO UPDATE "
                       "SET keep_last=excluded.keep_last, daily_days=excluded.daily_days, "
                       "weekly_weeks=excluded.weekly_weeks, "
                       "history_bytes_max=excluded.history_bytes_max",
                       {volume, p.keep_last, p.daily_days, p.weekly_weeks, p.history_bytes_max})
          .status();
    });
  }

  Result<RetentionPolicy> GetRetention(const std::string& volume) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT keep_last, daily_days, weekly_weeks, history_bytes_max "
                                   "FROM retention WHERE volume=$1",
                                   {volume}, 1));
    RetentionPolicy p;
    if (rows.empty()) return p;
    p.keep_last = uint64_t(rows[0][0].Int());
    p.daily_days = uint64_t(rows[0][1].Int());
    p.weekly_weeks = uint64_t(rows[0][2].Int());
    p.history_bytes_max = uint64_t(rows[0][3].Int());
    return p;
  }

  Result<std::vector<std::string>> ListRetentionVolumes(size_t limit) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT volume FROM retention ORDER BY volume LIMIT $1",
                                   {uint64_t(limit)}, limit));
    std::vector<std::string> out;
    for (auto& r : rows) out.push_back(r[0].Text());
    return out;
  }

  Result<Collected> CollectVersions(const Bytes& oid, const std::vector<uint64_t>& versions) override {
    Collected out;
    out.oid = oid;
    MS_RETURN_IF_ERROR(InSqlTransaction(db_.get(), [&]() -> Status {
      out = Collected{oid, {}, 0, {}};
      for (uint64_t v : std::set<uint64_t>(versions.begin(), versions.end())) {
        MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT size FROM versions WHERE oid=$1 AND "
                                                  "version=$2 AND collected=0",
                                                  {oid, v}, 1));
        if (rows.empty()) continue;
        MS_RETURN_IF_ERROR(
            db_->Exec("UPDATE versions SET collected=1 WHERE oid=$1 AND version=$2", {oid, v})
                .status());
        out.versions.push_back(v);
        out.bytes += uint64_t(rows[0][0].Int());
        MS_ASSIGN_OR_RETURN(auto chunks, db_->Query("SELECT chunk_id FROM version_chunks WHERE "
                                                    "oid=$1 AND version=$2",
                                                    {oid, v}, kRowsMax));
        MS_RETURN_IF_ERROR(
            db_->Exec("DELETE FROM version_chunks WHERE oid=$1 AND version=$2", {oid, v}).status());
        for (auto& c : chunks) {
          Bytes id = c[0].Blob();
          MS_RETURN_IF_ERROR(
              db_->Exec("UPDATE chunks SET refs=refs-1 WHERE chunk_id=$1", {id}).status());
          MS_ASSIGN_OR_RETURN(int64_t gone,
                              db_->Exec("DELETE FROM chunks WHERE chunk_id=$1 AND refs<=0", {id}));
          if (gone > 0) out.chunks_freed.push_back(id);
        }
        MS_RETURN_IF_ERROR(
            db_->Exec("DELETE FROM backups WHERE oid=$1 AND version=$2 AND done=0", {oid, v})
                .status());
      }
      if (out.versions.empty()) return Status::Ok();
      MS_RETURN_IF_ERROR(AddMeta("gc_versions", out.versions.size()));
      MS_RETURN_IF_ERROR(AddMeta("gc_version_bytes", out.bytes));
      return QueueGc(out);
    }));
    return out;
  }

  // One task per holder of the object: its primary and backup POP (from the
  // objects row) and the DC's backup store. Inside the caller's transaction.
  Status QueueGc(const Collected& c) {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT subscriber, primary_pop, backup_pop FROM "
                                              "objects WHERE oid=$1",
                                              {c.oid}, 1));
    std::string subscriber = rows.empty() ? "" : rows[0][0].Text();
    std::set<uint32_t> holders{kGcBackupStore};
    if (!rows.empty()) {
      if (rows[0][1].Int() > 0) holders.insert(uint32_t(rows[0][1].Int()));
      if (rows[0][2].Int() > 0) holders.insert(uint32_t(rows[0][2].Int()));
    }
    std::string versions;
    for (uint64_t v : c.versions) versions += (versions.empty() ? "" : ",") + std::to_string(v);
    for (uint32_t pop : holders) {
      MS_RETURN_IF_ERROR(db_->Exec("INSERT INTO gc_tasks(pop_id, oid, subscriber, versions) "
                                   "VALUES($1,$2,$3,$4)",
                                   {pop, c.oid, subscriber, versions})
                             .status());
      MS_ASSIGN_OR_RETURN(auto id, db_->Query("SELECT MAX(id) FROM gc_tasks WHERE pop_id=$1",
                                              {pop}, 1));
      int64_t task_id = id.empty() ? 0 : id[0][0].Int();
      for (const Bytes& chunk : c.chunks_freed)
        MS_RETURN_IF_ERROR(db_->Exec("INSERT INTO gc_task_chunks(task_id, chunk_id) VALUES($1,$2) "
                                     "ON CONFLICT DO NOTHING",
                                     {task_id, chunk})
                               .status());
    }
    return Status::Ok();
  }

  Result<std::vector<GcTask>> GcTasks(uint32_t pop_id, size_t limit) override {
    limit = std::min(limit, kGcTasksMax);
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT id, oid, subscriber, versions FROM gc_tasks "
                                   "WHERE pop_id=$1 ORDER BY id LIMIT $2",
                                   {pop_id, uint64_t(limit)}, limit));
    std::vector<GcTask> out;
    for (auto& r : rows) {
      GcTask t;
      t.task_id = uint64_t(r[0].Int());
      t.pop_id = pop_id;
      t.oid = r[1].Blob();
      t.subscriber = r[2].Text();
      std::string vs = r[3].Text();
      for (size_t p = 0; p < vs.size();) {
        size_t e = vs.find(',', p);
        if (e == std::string::npos) e = vs.size();
        t.versions.push_back(std::stoull(vs.substr(p, e - p)));
        p = e + 1;
      }
      // Chunks some version reported after the collection references
      // again (refs > 0 now) are not garbage any more.
      MS_ASSIGN_OR_RETURN(auto chunks,
                          db_->Query("SELECT chunk_id FROM gc_task_chunks WHERE task_id=$1 AND "
                                     "NOT EXISTS (SELECT 1 FROM chunks WHERE "
                                     "chunks.chunk_id=gc_task_chunks.chunk_id AND refs>0) "
                                     "ORDER BY chunk_id",
                                     {t.task_id}, kRowsMax));
      for (auto& c : chunks) t.chunk_ids.push_back(c[0].Blob());
      out.push_back(std::move(t));
    }
    return out;
  }

  Result<bool> GcAck(uint64_t task_id, uint32_t pop_id, const GcReclaimed& r) override {
    bool counted = false;
    MS_RETURN_IF_ERROR(InSqlTransaction(db_.get(), [&]() -> Status {
      MS_ASSIGN_OR_RETURN(int64_t n, db_->Exec("DELETE FROM gc_tasks WHERE id=$1 AND pop_id=$2",
                                               {task_id, pop_id}));
      counted = n > 0;
      if (!counted) return Status::Ok();
      MS_RETURN_IF_ERROR(
          db_->Exec("DELETE FROM gc_task_chunks WHERE task_id=$1", {task_id}).status());
      MS_RETURN_IF_ERROR(AddMeta("gc_dropped_versions", r.versions));
      MS_RETURN_IF_ERROR(AddMeta("gc_chunks", r.chunks));
      MS_RETURN_IF_ERROR(AddMeta("gc_chunk_bytes", r.chunk_bytes));
      MS_RETURN_IF_ERROR(AddMeta("gc_fragments", r.fragments));
      return AddMeta("gc_fragment_bytes", r.fragment_bytes);
    }));
    return counted;
  }

  Result<GcStats> GetGcStats() override {
    GcStats s;
    MS_ASSIGN_OR_RETURN(auto n, db_->Query("SELECT COUNT(*) FROM gc_tasks", {}, 1));
    s.tasks_pending = n.empty() ? 0 : uint64_t(n[0][0].Int());
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT key, value FROM meta WHERE key LIKE 'gc_%'", {}, 100));
    for (auto& r : rows) {
      uint64_t v = uint64_t(r[1].Int());
      std::string k = r[0].Text();
      if (k == "gc_versions") s.versions_collected = v;
      if (k == "gc_version_bytes") s.version_bytes_collected = v;
      if (k == "gc_dropped_versions") s.reclaimed.versions = v;
      if (k == "gc_chunks") s.reclaimed.chunks = v;
      if (k == "gc_chunk_bytes") s.reclaimed.chunk_bytes = v;
      if (k == "gc_fragments") s.reclaimed.fragments = v;
      if (k == "gc_fragment_bytes") s.reclaimed.fragment_bytes = v;
    }
    return s;
  }

  // ---- backups ----
  Status SetBackupMode(const std::string& volume, BackupMode mode) override {
    return InSqlTransaction(db_.get(), [&]() -> Status {
      return db_->Exec("INSERT INTO backup_policy(volume, mode) VALUES($1,$2) "
                       "ON CONFLICT(volume) DO UPDATE SET mode=excluded.mode",
                       {volume, int64_t(mode)})
          .status();
    });
  }

  Result<BackupMode> GetBackupMode(const std::string& volume) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT mode FROM backup_policy WHERE volume=$1", {volume}, 1));
    if (rows.empty()) return BackupMode::kNone;
    int64_t m = rows[0][0].Int();
    if (m < 0 || m > int64_t(BackupMode::kAll)) return Corrupt("stored backup mode out of range");
    return BackupMode(m);
  }

  // Inside the caller's transaction: a newly reported version, backed up
  // when its volume's policy says so (kLatest: pending older ones of the
  // object are dropped, the newest wins).
  Status QueueBackup(const Bytes& oid, uint64_t version, const std::string& subscriber,
                     BackupMode mode) {
    if (mode == BackupMode::kNone) return Status::Ok();
    if (mode == BackupMode::kLatest) {
      MS_ASSIGN_OR_RETURN(auto newer, db_->Query("SELECT 1 FROM backups WHERE oid=$1 AND "
                                                 "version>$2 LIMIT 1",
                                                 {oid, version}, 1));
      if (!newer.empty()) return Status::Ok();
      MS_RETURN_IF_ERROR(db_->Exec("DELETE FROM backups WHERE oid=$1 AND version<$2 AND done=0",
                                   {oid, version})
                             .status());
    }
    MS_ASSIGN_OR_RETURN(auto seq, db_->Query("SELECT COALESCE(MAX(seq), 0) FROM backups", {}, 1));
    return db_->Exec("INSERT INTO backups(oid, version, subscriber, done, seq) "
                     "VALUES($1,$2,$3,0,$4) ON CONFLICT DO NOTHING",
                     {oid, version, subscriber, seq.empty() ? 1 : seq[0][0].Int() + 1})
        .status();
  }

  Result<std::vector<BackupItem>> PendingBackups(size_t limit) override {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT oid, version, subscriber FROM backups "
                                              "WHERE done=0 ORDER BY seq LIMIT $1",
                                              {uint64_t(limit)}, limit));
    std::vector<BackupItem> out;
    for (auto& r : rows) out.push_back({r[0].Blob(), uint64_t(r[1].Int()), r[2].Text()});
    return out;
  }

  Result<std::vector<uint64_t>> BackupDone(const Bytes& oid, uint64_t version) override {
    std::vector<uint64_t> superseded;
    MS_RETURN_IF_ERROR(InSqlTransaction(db_.get(), [&]() -> Status {
      superseded.clear();
      MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT subscriber FROM backups WHERE oid=$1 AND "
                                                "version=$2",
                                                {oid, version}, 1));
      if (rows.empty()) return Status::Ok();  // collected meanwhile
      MS_RETURN_IF_ERROR(
          db_->Exec("UPDATE backups SET done=1 WHERE oid=$1 AND version=$2", {oid, version})
              .status());
      MS_ASSIGN_OR_RETURN(BackupMode mode, GetBackupMode(rows[0][0].Text()));
      if (mode != BackupMode::kLatest) return Status::Ok();
      MS_ASSIGN_OR_RETURN(auto old, db_->Query("SELECT version FROM backups WHERE oid=$1 AND "
                                               "version<$2 AND done=1 ORDER BY version",
                                               {oid, version}, kRowsMax));
      for (auto& r : old) superseded.push_back(uint64_t(r[0].Int()));
      return Status::Ok();
    }));
    return superseded;
  }

  Status ForgetBackup(const Bytes& oid, uint64_t version) override {
    return InSqlTransaction(db_.get(), [&]() -> Status {
      return db_->Exec("DELETE FROM backups WHERE oid=$1 AND version=$2", {oid, version}).status();
    });
  }

  Result<bool> HasBackup(const Bytes& oid, uint64_t version) override {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT 1 FROM backups WHERE oid=$1 AND version=$2 "
                                              "AND done=1",
                                              {oid, version}, 1));
    return !rows.empty();
  }

  Result<bool> BackupReferencesChunk(const Bytes& chunk_id) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT 1 FROM version_chunks vc JOIN backups b ON "
                                   "b.oid=vc.oid AND b.version=vc.version WHERE vc.chunk_id=$1 "
                                   "AND b.done=1 LIMIT 1",
                                   {chunk_id}, 1));
    return !rows.empty();
  }

  Result<std::vector<uint64_t>> BackedUpVersions(const Bytes& oid) override {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT version FROM backups WHERE oid=$1 AND "
                                              "done=1 ORDER BY version",
                                              {oid}, kRowsMax));
    std::vector<uint64_t> out;
    for (auto& r : rows) out.push_back(uint64_t(r[0].Int()));
    return out;
  }

  // ---- cold tier ----
  Status SetCold(const Bytes& oid, bool cold, int64_t now_ms) override {
    return InSqlTransaction(db_.get(), [&]() -> Status {
      if (!cold) return db_->Exec("DELETE FROM cold_objects WHERE oid=$1", {oid}).status();
      return db_->Exec("INSERT INTO cold_objects(oid, since_ms) VALUES($1,$2) "
                       "ON CONFLICT DO NOTHING",
                       {oid, now_ms})
          .status();
    });
  }

  Result<bool> IsCold(const Bytes& oid) override {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT 1 FROM cold_objects WHERE oid=$1", {oid}, 1));
    return !rows.empty();
  }

  // ---- monitoring ----
  Status AddPopSummary(uint32_t pop_id, int64_t t_ms, const pb::MonitorPopSummary& s) override {
    std::string blob;
    if (!s.SerializeToString(&blob)) return Internal("cannot serialize a summary");
    return InSqlTransaction(db_.get(), [&]() -> Status {
      return db_->Exec("INSERT INTO pop_summaries(pop_id, t_ms, summary) VALUES($1,$2,$3) "
                       "ON CONFLICT(t_ms, pop_id) DO UPDATE SET summary=excluded.summary",
                       {pop_id, t_ms, ToBytes(blob)})
          .status();
    });
  }

  Result<std::vector<SummaryRecord>> PopSummaries(uint32_t pop_id, int64_t from_ms, int64_t to_ms,
                                                  size_t limit) override {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT pop_id, t_ms, summary FROM pop_summaries "
                                              "WHERE t_ms>=$1 AND t_ms<=$2 AND ($3=0 OR pop_id=$3) "
                                              "ORDER BY t_ms, pop_id LIMIT $4",
                                              {from_ms, to_ms, pop_id, uint64_t(limit)}, limit));
    std::vector<SummaryRecord> out;
    for (auto& r : rows) {
      SummaryRecord s;
      s.pop_id = uint32_t(r[0].Int());
      s.t_ms = r[1].Int();
      Bytes b = r[2].Blob();
      if (!s.summary.ParseFromArray(b.data(), int(b.size())))
        return Corrupt("a stored POP summary does not parse");
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<uint64_t> PruneSummaries(int64_t before_ms) override {
    int64_t n = 0;
    MS_RETURN_IF_ERROR(InSqlTransaction(db_.get(), [&]() -> Status {
      MS_ASSIGN_OR_RETURN(n, db_->Exec("DELETE FROM pop_summaries WHERE t_ms<$1", {before_ms}));
      return Status::Ok();
    }));
    return uint64_t(n);
  }

  // ---- admin queries ----
  Result<std::vector<SubscriberUsage>> UsageBySubscriber(size_t limit) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT subscriber, COUNT(*), CAST(COALESCE(SUM(size), 0) AS "
                                   "BIGINT) FROM objects GROUP BY subscriber "
                                   "ORDER BY 3 DESC, 1 LIMIT $1",
                                   {uint64_t(limit)}, limit));
    std::vector<SubscriberUsage> out;
    for (auto& r : rows) out.push_back({r[0].Text(), uint64_t(r[1].Int()), uint64_t(r[2].Int())});
    return out;
  }

  Result<ObjectRecord> FindObject(const Bytes& oid) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT subscriber, latest_version, size, "
                                   "(SELECT COUNT(*) FROM names WHERE names.oid=$1), "
                                   "primary_pop, backup_pop FROM objects WHERE oid=$1",
                                   {oid}, 1));
    if (rows.empty()) return NotFound("no such object in the catalog");
    auto& r = rows[0];
    return ObjectRecord{r[0].Text(), uint64_t(r[1].Int()), uint64_t(r[2].Int()),
                        uint64_t(r[3].Int()), uint32_t(r[4].Int()), uint32_t(r[5].Int())};
  }

  // ---- read-only sharing (issue 4) ----
  static Status CheckSubscriberName(const std::string& s, const char* what) {
    if (s.empty() || s.size() > kSubscriberBytesMax)
      return InvalidArgument(std::string(what) + " must be 1.." +
                             std::to_string(kSubscriberBytesMax) + " characters");
    return Status::Ok();
  }

  Result<bool> PublishShareKey(const std::string& subscriber, const Bytes& public_key,
                               int64_t now_ms) override {
    MS_RETURN_IF_ERROR(CheckSubscriberName(subscriber, "subscriber"));
    if (public_key.size() != crypto::kShareKeyBytes)
      return InvalidArgument("share key must be " + std::to_string(crypto::kShareKeyBytes) +
                             " bytes, not " + std::to_string(public_key.size()));
    bool added = false;
    MS_RETURN_IF_ERROR(InSqlTransaction(db_.get(), [&]() -> Status {
      MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT public_key FROM share_keys WHERE "
                                                "subscriber=$1",
                                                {subscriber}, 1));
      if (!rows.empty()) {
        if (rows[0][0].Blob() == public_key) return Status::Ok();
        return Status(Code::kPermissionDenied,
                      "subscriber '" + subscriber +
                          "' published another share key before (trust on first publish: an "
                          "operator must `mistore-dc share-key forget " + subscriber + "` first)");
      }
      added = true;
      return db_
          ->Exec("INSERT INTO share_keys(subscriber, public_key, published_ms) VALUES($1,$2,$3)",
                 {subscriber, public_key, now_ms})
          .status();
    }));
    return added;
  }

  Result<Bytes> GetShareKey(const std::string& subscriber) override {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT public_key FROM share_keys WHERE "
                                              "subscriber=$1",
                                              {subscriber}, 1));
    if (rows.empty())
      return NotFound("subscriber '" + subscriber +
                      "' has published no share key (it appears when that subscriber runs "
                      "`mistore shared` once)");
    return rows[0][0].Blob();
  }

  Result<bool> ForgetShareKey(const std::string& subscriber) override {
    MS_ASSIGN_OR_RETURN(int64_t n,
                        db_->Exec("DELETE FROM share_keys WHERE subscriber=$1", {subscriber}));
    return n > 0;
  }

  Result<bool> PutShare(const std::string& owner, const Bytes& oid, const std::string& grantee,
                        const Bytes& grant_sealed, int64_t now_ms) override {
    MS_RETURN_IF_ERROR(CheckSubscriberName(owner, "owner"));
    MS_RETURN_IF_ERROR(CheckSubscriberName(grantee, "grantee"));
    if (owner == grantee) return InvalidArgument("an object cannot be shared with its owner");
    if (oid.size() != 16) return InvalidArgument("oid must be 16 bytes");
    if (grant_sealed.empty() || grant_sealed.size() > kShareGrantBytesMax)
      return InvalidArgument("sealed grant of " + std::to_string(grant_sealed.size()) +
                             " bytes (1.." + std::to_string(kShareGrantBytesMax) + ")");
    bool changed = false;
    MS_RETURN_IF_ERROR(InSqlTransaction(db_.get(), [&]() -> Status {
      MS_ASSIGN_OR_RETURN(auto own, db_->Query("SELECT 1 FROM names WHERE subscriber=$1 AND "
                                               "oid=$2",
                                               {owner, oid}, 1));
      if (own.empty())
        return Status(Code::kPermissionDenied,
                      "object " + ToHex(oid) + " is not one of subscriber '" + owner + "'");
      MS_ASSIGN_OR_RETURN(auto key, db_->Query("SELECT 1 FROM share_keys WHERE subscriber=$1",
                                               {grantee}, 1));
      if (key.empty())
        return NotFound("subscriber '" + grantee + "' has published no share key");
      MS_ASSIGN_OR_RETURN(auto have, db_->Query("SELECT 1 FROM shares WHERE owner=$1 AND oid=$2 "
                                                "AND grantee=$3",
                                                {owner, oid, grantee}, 1));
      if (!have.empty()) {
        changed = true;
        return db_
            ->Exec("UPDATE shares SET grant_sealed=$4 WHERE owner=$1 AND oid=$2 AND grantee=$3",
                   {owner, oid, grantee, grant_sealed})
            .status();
      }
      MS_ASSIGN_OR_RETURN(auto per_obj, db_->Query("SELECT COUNT(*) FROM shares WHERE owner=$1 "
                                                   "AND oid=$2",
                                                   {owner, oid}, 1));
      if (!per_obj.empty() && uint64_t(per_obj[0][0].Int()) >= kSharesPerObjectMax)
        return ResourceExhausted("object " + ToHex(oid) + " is shared with " +
                                 std::to_string(kSharesPerObjectMax) +
                                 " subscribers already (the most)");
      MS_ASSIGN_OR_RETURN(auto per_grantee,
                          db_->Query("SELECT COUNT(*) FROM shares WHERE grantee=$1", {grantee}, 1));
      if (!per_grantee.empty() && uint64_t(per_grantee[0][0].Int()) >= kSharesPerGranteeMax)
        return ResourceExhausted("subscriber '" + grantee + "' has " +
                                 std::to_string(kSharesPerGranteeMax) +
                                 " objects shared with it already (the most)");
      changed = true;
      return db_
          ->Exec("INSERT INTO shares(owner, oid, grantee, grant_sealed, created_ms) "
                 "VALUES($1,$2,$3,$4,$5)",
                 {owner, oid, grantee, grant_sealed, now_ms})
          .status();
    }));
    return changed;
  }

  Result<bool> RemoveShare(const std::string& owner, const Bytes& oid,
                           const std::string& grantee) override {
    MS_ASSIGN_OR_RETURN(int64_t n, db_->Exec("DELETE FROM shares WHERE owner=$1 AND oid=$2 AND "
                                             "grantee=$3",
                                             {owner, oid, grantee}));
    return n > 0;
  }

  Result<bool> HasShare(const std::string& owner, const Bytes& oid,
                        const std::string& grantee) override {
    MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT 1 FROM shares WHERE owner=$1 AND oid=$2 "
                                              "AND grantee=$3",
                                              {owner, oid, grantee}, 1));
    return !rows.empty();
  }

  Result<pb::ShareList> ListShares(const std::string& grantee) override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT owner, oid, grant_sealed, created_ms FROM shares "
                                   "WHERE grantee=$1 ORDER BY created_ms, owner, oid",
                                   {grantee}, kSharesPerGranteeMax));
    pb::ShareList out;
    for (auto& r : rows) {
      auto* e = out.add_shares();
      e->set_owner(r[0].Text());
      Bytes oid = r[1].Blob(), g = r[2].Blob();
      e->set_oid(std::string(oid.begin(), oid.end()));
      e->set_grant_sealed(std::string(g.begin(), g.end()));
      e->set_created_ms(r[3].Int());
    }
    return out;
  }

  Result<Totals> CountTotals() override {
    MS_ASSIGN_OR_RETURN(auto rows,
                        db_->Query("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT), "
                                   "COUNT(DISTINCT subscriber), (SELECT COUNT(*) FROM names) "
                                   "FROM objects",
                                   {}, 1));
    Totals t;
    if (!rows.empty())
      t = Totals{uint64_t(rows[0][0].Int()), uint64_t(rows[0][1].Int()),
                 uint64_t(rows[0][2].Int()), uint64_t(rows[0][3].Int())};
    return t;
  }

 private:
  Status BumpEpoch() {
    return db_->Exec("UPDATE meta SET value=value+1 WHERE key='epoch'", {}).status();
  }
  Status AddMeta(const std::string& key, uint64_t delta) {
    return db_->Exec("UPDATE meta SET value=value+$1 WHERE key=$2", {delta, key}).status();
  }
  Status AddSubscriber(const std::string& name) {
    return db_->Exec("INSERT INTO subscribers(name) VALUES($1) ON CONFLICT DO NOTHING", {name})
        .status();
  }

  std::unique_ptr<SqlDriver> db_;
};

Result<std::unique_ptr<Catalog>> Finish(std::unique_ptr<SqlDriver> d) {
  auto c = std::make_unique<SqlCatalog>(std::move(d));
  MS_RETURN_IF_ERROR(c->Init());
  return std::unique_ptr<Catalog>(std::move(c));
}

}  // namespace

Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& data_dir) {
  MS_RETURN_IF_ERROR(MakeDirs(data_dir));
  MS_ASSIGN_OR_RETURN(auto d, OpenSqliteDriver(data_dir + "/catalog.sqlite"));
  return Finish(std::move(d));
}

Result<std::unique_ptr<Catalog>> OpenPgCatalog(const std::string& conninfo) {
  MS_ASSIGN_OR_RETURN(auto d, OpenPgDriver(conninfo));
  return Finish(std::move(d));
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& data_dir) {
  MS_ASSIGN_OR_RETURN(auto c, OpenSqliteCatalog(data_dir));
  MS_RETURN_IF_ERROR(c->OnDaemonStart());
  return c;
}

Result<std::vector<Catalog::Collected>> Catalog::ApplyRetention(const std::string& volume,
                                                                int64_t now_ms,
                                                                size_t objects_max) {
  MS_ASSIGN_OR_RETURN(RetentionPolicy policy, GetRetention(volume));
  MS_ASSIGN_OR_RETURN(pb::ObjectList objects, ListObjects(volume));
  std::vector<Collected> out;
  size_t n = 0;
  for (const auto& o : objects.objects()) {
    if (n++ >= objects_max) break;
    Bytes oid = ToBytes(o.oid());
    MS_ASSIGN_OR_RETURN(auto versions, ListVersions(oid, kRowsMax));
    std::vector<VersionMeta> live;
    for (auto& v : versions)
      if (!v.collected) live.push_back({v.version, v.created_ms, v.size_bytes});
    std::vector<uint64_t> keep = VersionsToKeep(live, policy, now_ms);
    std::set<uint64_t> keep_set(keep.begin(), keep.end());
    std::vector<uint64_t> drop;
    for (auto& v : live)
      if (!keep_set.count(v.version)) drop.push_back(v.version);
    if (drop.empty()) continue;
    MS_ASSIGN_OR_RETURN(Collected c, CollectVersions(oid, drop));
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace mistore
