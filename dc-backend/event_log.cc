#include "dc-backend/event_log.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/core/assert.h"

namespace mistore {

namespace {

// {ID}: auto-numbered key. origin is NULL for events without a dedup key
// (NULLs never collide in a UNIQUE column, in SQLite and PostgreSQL alike).
const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS dc_events(
  seq {ID}, t_ms BIGINT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL,
  pop BIGINT NOT NULL, gateway BIGINT NOT NULL, about_pop BIGINT NOT NULL, region TEXT NOT NULL,
  count BIGINT NOT NULL, bytes BIGINT NOT NULL, detail TEXT NOT NULL, origin TEXT UNIQUE);
CREATE INDEX IF NOT EXISTS dc_events_t ON dc_events(t_ms);
CREATE INDEX IF NOT EXISTS dc_events_kind ON dc_events(kind, seq);
)";

std::string SchemaFor(Dialect d) {
  std::string s = kSchema;
  const std::string from = "{ID}";
  s.replace(s.find(from), from.size(),
            d == Dialect::kSqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY");
  return s;
}

const char* kColumns = "seq, t_ms, kind, source, pop, gateway, about_pop, region, count, bytes, detail";

}  // namespace

Result<std::unique_ptr<EventLog>> EventLog::Open(std::unique_ptr<SqlDriver> db, size_t events_max) {
  if (events_max < 1) return InvalidArgument("event_log_max must be at least 1");
  MS_RETURN_IF_ERROR(db->ExecScript(SchemaFor(db->dialect())));
  return std::unique_ptr<EventLog>(new EventLog(std::move(db), events_max));
}

Result<size_t> EventLog::Append(const std::vector<EventRecord>& events, std::vector<bool>* is_new) {
  if (is_new) is_new->assign(events.size(), false);
  if (events.size() > kAppendBatchMax)
    return InvalidArgument("at most " + std::to_string(kAppendBatchMax) + " events per append");
  if (events.empty()) return size_t(0);
  size_t added = 0;
  int64_t pruned = 0;
  Status st = InSqlTransaction(db_.get(), [&]() -> Status {
    if (is_new) is_new->assign(events.size(), false);  // again, if a retry of the body
    for (size_t i = 0; i < events.size(); i++) {
      const EventRecord& e = events[i];
      std::string detail = e.detail.substr(0, kDetailBytesMax);
      SqlValue origin = e.origin.empty() ? SqlValue() : SqlValue(e.origin);
      MS_ASSIGN_OR_RETURN(
          int64_t n,
          db_->Exec("INSERT INTO dc_events(t_ms, kind, source, pop, gateway, about_pop, region, "
                    "count, bytes, detail, origin) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) "
                    "ON CONFLICT DO NOTHING",
                    {e.t_ms, e.kind, e.source, e.pop, e.gateway, e.about_pop, e.region, e.count,
                     e.bytes, detail, origin}));
      added += size_t(n);
      if (is_new) (*is_new)[i] = n > 0;
    }
    // Oldest beyond the cap: below the events_max-th newest seq.
    MS_ASSIGN_OR_RETURN(pruned, db_->Exec("DELETE FROM dc_events WHERE seq < (SELECT seq FROM "
                                          "dc_events ORDER BY seq DESC LIMIT 1 OFFSET $1)",
                                          {uint64_t(events_max_ - 1)}));
    return Status::Ok();
  });
  MS_RETURN_IF_ERROR(st);
  pruned_total_ += uint64_t(pruned);
  return added;
}

Result<std::vector<EventRecord>> EventLog::Query(const EventQuery& q) {
  if (q.kinds.size() > kKindsMax)
    return InvalidArgument("at most " + std::to_string(kKindsMax) + " kinds in one query");
  size_t limit = std::min(std::max<size_t>(q.limit, 1), kQueryLimitMax);
  std::string sql = std::string("SELECT ") + kColumns + " FROM dc_events WHERE seq > $1 AND t_ms >= $2";
  SqlParams params{q.after_seq, q.since_ms};
  auto param = [&](SqlValue v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  if (q.pop) sql += " AND (pop = " + param(q.pop) + " OR about_pop = " + param(q.pop) + ")";
  if (q.gateway) sql += " AND gateway = " + param(q.gateway);
  if (!q.kinds.empty()) {
    sql += " AND kind IN (";
    for (size_t i = 0; i < q.kinds.size(); i++) sql += (i ? "," : "") + param(q.kinds[i]);
    sql += ")";
  }
  sql += " ORDER BY seq DESC LIMIT " + param(uint64_t(limit));
  MS_ASSIGN_OR_RETURN(auto rows, db_->Query(sql, params, limit));
  std::vector<EventRecord> out;
  out.reserve(rows.size());
  for (const SqlRow& r : rows) {
    EventRecord e;
    e.seq = uint64_t(r[0].Int());
    e.t_ms = r[1].Int();
    e.kind = r[2].Text();
    e.source = r[3].Text();
    e.pop = uint32_t(r[4].Int());
    e.gateway = uint32_t(r[5].Int());
    e.about_pop = uint32_t(r[6].Int());
    e.region = r[7].Text();
    e.count = uint64_t(r[8].Int());
    e.bytes = uint64_t(r[9].Int());
    e.detail = r[10].Text();
    out.push_back(std::move(e));
  }
  return out;
}

Result<uint64_t> EventLog::LastSeq() {
  MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT MAX(seq) FROM dc_events", {}, 1));
  return rows.empty() ? uint64_t(0) : uint64_t(rows[0][0].Int());
}

Result<uint64_t> EventLog::Count() {
  MS_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT COUNT(*) FROM dc_events", {}, 1));
  return rows.empty() ? uint64_t(0) : uint64_t(rows[0][0].Int());
}

Result<std::unique_ptr<EventLog>> OpenConfiguredEventLog(const Config& cfg) {
  int64_t max = cfg.Int("event_log_max");
  if (max < 1) return InvalidArgument("event_log_max must be at least 1");
  std::string backend = cfg.Str("catalog_backend");
  std::unique_ptr<SqlDriver> db;
  if (backend == "sqlite") {
    std::string dir = cfg.Str("data_dir");
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return IoError("cannot create " + dir + ": " + std::strerror(errno));
    MS_ASSIGN_OR_RETURN(db, OpenSqliteDriver(dir + "/events.sqlite"));
  } else if (backend == "postgres") {
    MS_ASSIGN_OR_RETURN(db, OpenPgDriver(cfg.Str("catalog_pg_conninfo")));
  } else {
    return InvalidArgument("catalog_backend must be sqlite or postgres, not " + backend);
  }
  return EventLog::Open(std::move(db), size_t(max));
}

}  // namespace mistore
