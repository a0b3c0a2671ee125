// catalog_bench: DC catalog ingest rate (POP version reports per second) and
// point-query latency (FindObject of a random known oid) at a given catalog
// size, on SQLite and on PostgreSQL in the same run. Not part of the default
// test run; see docs/benchmarks.md "DC catalog (issue 7)".
//
//   catalog_bench [--objects=N] [--fill=bulk|reports] [--single=S]
//   [--grouped=G]
//                 [--group=B] [--queries=Q] [--chunks=C] [--verify-fill=K]
//                 [--sample=M] [--phase=all|fill|measure]
//                 [--backends=sqlite,postgres]
//                 [--dir=DIR] [--pg-base=CONNINFO] [--new-from=I]
//
// 1. Verify the bulk fill (--verify-fill=K, default 3,000; 0 skips): two
//    fresh catalogs, one fed K reports through Catalog::ReportVersion, one
//    filled by the bulk path; every row of every table the reports touch, and
//    the index definitions, must be equal.
// 2. Fill the catalog to N objects: report i (0 <= i < N) is MakeReport(i), a
//    pure function of i (one version, C chunk ids, 100,000 subscribers),
//    learned at now_ms = i. --fill=bulk writes the rows those reports produce
//    directly (SQLite: one large transaction of prepared inserts, keys in
//    index order, secondary indexes dropped and re-created from the stored
//    schema; PostgreSQL: COPY into the tables with their primary keys, unique
//    constraints and indexes dropped, then re-created from their stored
//    definitions, and ANALYZE); --fill=reports goes through ReportVersions.
//    Then M random filled objects are read back through FindObject and
//    ListVersions and compared with their report.
// 3. Measure at that size: S new reports one transaction each (each
//    committed durably before the next: what a DC without group commit
//    does), G new reports in groups of B through ReportVersions (the DC's
//    group commit, knob report_group_max), and Q FindObject of random known
//    oids (p50/p99).
//
// --phase=fill stops after 2 and keeps the catalogs; --phase=measure runs 3
// on catalogs a fill phase kept (same --objects, --dir, --pg-base; a second
// measure phase on the same catalogs needs --new-from past the reports the
// first one added, or its reports would be re-reports). SQLite:
// WAL, synchronous=FULL, in DIR (default /tmp). PostgreSQL: a throw-away
// server with its default (durable) settings (pg_server.h), or the running
// server --pg-base names ("host=... port=... user=...", database "bench").
// Deterministic: seeded generators.
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dc-backend/catalog.h"
#include "dc-backend/sql_driver.h"
#include "shared/core/oid.h"
#include "tests/dc-backend/pg_server.h"

namespace mistore {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kSubscribers = 100000;

struct Options {
  uint64_t new_from =
      0;  // first index of the measured new reports (0: objects)
  uint64_t objects = 1000000, single = 2000, grouped = 20000, group = 256,
           queries = 20000, chunks = 2, verify_fill = 3000, sample = 1000;
  std::string fill = "bulk", phase = "all", backends = "sqlite,postgres",
              dir = "/tmp", pg_base;
};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// ---- the synthetic reports ----

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Report i's content, a pure function of i.
struct Gen {
  Oid oid;
  std::string subscriber, name;
  uint64_t size = 0;
  std::vector<std::string>
      chunks;  // as reported (the catalog keeps the distinct ones)
};

Gen Generate(uint64_t i, uint64_t chunks) {
  Gen g;
  g.oid = Oid{1, 2, uint32_t(1000 + i % 5000), uint32_t(i)};
  uint64_t s = i * 0x2545F4914F6CDD1Dull + 1;
  g.size = 1000 + SplitMix(&s) % 1000000;
  g.subscriber = "sub" + std::to_string(i % kSubscribers);
  auto fill = [&](std::string* out, size_t n) {
    out->resize(n);
    for (size_t k = 0; k < n; k += 8) {
      uint64_t r = SplitMix(&s);
      std::memcpy(out->data() + k, &r, std::min<size_t>(8, n - k));
    }
  };
  fill(&g.name, 32);
  g.chunks.resize(chunks);
  for (auto& c : g.chunks) fill(&c, 32);
  return g;
}

pb::VersionInfo MakeReport(uint64_t i, uint64_t chunks) {
  Gen g = Generate(i, chunks);
  Bytes oid = g.oid.Encode();
  pb::VersionInfo info;
  info.set_oid(std::string(oid.begin(), oid.end()));
  info.set_version(1);
  info.set_size_bytes(g.size);
  info.set_subscriber(g.subscriber);
  info.set_name_sealed(g.name);
  for (auto& c : g.chunks) info.add_chunk_ids(c);
  return info;
}

std::vector<std::string> DistinctSorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

using OidKey = std::array<uint8_t, 16>;
using ChunkKey = std::array<uint8_t, 32>;

// Objects 0..n-1 in the order of their oid's bytes (the versions and
// version_chunks primary keys).
std::vector<std::pair<OidKey, uint32_t>> OidOrder(uint64_t n) {
  std::vector<std::pair<OidKey, uint32_t>> v(n);
  for (uint64_t i = 0; i < n; i++) {
    Bytes b = Oid{1, 2, uint32_t(1000 + i % 5000), uint32_t(i)}.Encode();
    std::memcpy(v[i].first.data(), b.data(), 16);
    v[i].second = uint32_t(i);
  }
  std::sort(v.begin(), v.end());
  return v;
}

// Every distinct chunk id of every report with its reference count, in
// byte order (the chunks primary key).
std::vector<std::pair<ChunkKey, uint32_t>> ChunkCounts(uint64_t n,
                                                       uint64_t chunks) {
  std::vector<ChunkKey> all;
  all.reserve(n * chunks);
  for (uint64_t i = 0; i < n; i++)
    for (auto& c : DistinctSorted(Generate(i, chunks).chunks)) {
      ChunkKey k;
      std::memcpy(k.data(), c.data(), 32);
      all.push_back(k);
    }
  std::sort(all.begin(), all.end());
  std::vector<std::pair<ChunkKey, uint32_t>> out;
  for (auto& k : all) {
    if (!out.empty() && out.back().first == k) {
      out.back().second++;
    } else {
      out.push_back({k, 1});
    }
  }
  return out;
}

std::vector<std::string> SubscriberNames(uint64_t n) {
  std::vector<std::string> v;
  for (uint64_t i = 0; i < std::min(n, kSubscribers); i++)
    v.push_back("sub" + std::to_string(i));
  std::sort(v.begin(), v.end());
  return v;
}

const char* kFilledTables =
    "'subscribers','objects','versions','version_chunks','chunks'";

// ---- SQLite bulk fill ----

class Lite {
 public:
  explicit Lite(sqlite3* db) : db_(db) {}
  Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK)
      return Status::Ok();
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return IoError("sqlite: " + m + " in " + sql);
  }
  Result<sqlite3_stmt*> Prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
      return IoError(std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
    stmts_.push_back(s);
    return s;
  }
  Status Step(sqlite3_stmt* s) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
      return IoError(std::string("sqlite: ") + sqlite3_errmsg(db_));
    return Status::Ok();
  }
  ~Lite() {
    for (auto* s : stmts_) sqlite3_finalize(s);
  }
  sqlite3* db() { return db_; }

 private:
  sqlite3* db_;
  std::vector<sqlite3_stmt*> stmts_;
};

void BindBlob(sqlite3_stmt* s, int i, const void* p, size_t n) {
  sqlite3_bind_blob(s, i, p, int(n), SQLITE_TRANSIENT);
}
void BindText(sqlite3_stmt* s, int i, const std::string& t) {
  sqlite3_bind_text(s, i, t.data(), int(t.size()), SQLITE_TRANSIENT);
}

Status SqliteFillRows(Lite* db, uint64_t n, uint64_t chunks) {
  MS_ASSIGN_OR_RETURN(auto sub,
                      db->Prepare("INSERT INTO subscribers(name) VALUES(?1)"));
  for (auto& s : SubscriberNames(n)) {
    BindText(sub, 1, s);
    MS_RETURN_IF_ERROR(db->Step(sub));
  }
  // objects: id in report order (as ReportVersion assigns it).
  MS_ASSIGN_OR_RETURN(
      auto obj,
      db->Prepare("INSERT INTO objects(id, oid, subscriber, name_sealed, "
                  "latest_version, size, primary_pop, backup_pop) "
                  "VALUES(?1,?2,?3,?4,1,?5,?6,?7)"));
  for (uint64_t i = 0; i < n; i++) {
    Gen g = Generate(i, chunks);
    Bytes oid = g.oid.Encode();
    sqlite3_bind_int64(obj, 1, int64_t(i + 1));
    BindBlob(obj, 2, oid.data(), oid.size());
    BindText(obj, 3, g.subscriber);
    BindBlob(obj, 4, g.name.data(), g.name.size());
    sqlite3_bind_int64(obj, 5, int64_t(g.size));
    sqlite3_bind_int64(obj, 6, g.oid.primary_pop);
    sqlite3_bind_int64(obj, 7, g.oid.backup_pop);
    MS_RETURN_IF_ERROR(db->Step(obj));
  }
  MS_ASSIGN_OR_RETURN(
      auto ver,
      db->Prepare("INSERT INTO versions(oid, version, size, created_ms, "
                  "collected) VALUES(?1,1,?2,?3,0)"));
  MS_ASSIGN_OR_RETURN(
      auto vc, db->Prepare("INSERT INTO version_chunks(oid, version, chunk_id) "
                           "VALUES(?1,1,?2)"));
  for (auto& [key, i] : OidOrder(n)) {
    Gen g = Generate(i, chunks);
    BindBlob(ver, 1, key.data(), 16);
    sqlite3_bind_int64(ver, 2, int64_t(g.size));
    sqlite3_bind_int64(ver, 3, int64_t(i));
    MS_RETURN_IF_ERROR(db->Step(ver));
    for (auto& c : DistinctSorted(g.chunks)) {
      BindBlob(vc, 1, key.data(), 16);
      BindBlob(vc, 2, c.data(), c.size());
      MS_RETURN_IF_ERROR(db->Step(vc));
    }
  }
  MS_ASSIGN_OR_RETURN(
      auto ch, db->Prepare("INSERT INTO chunks(chunk_id, refs) VALUES(?1,?2)"));
  for (auto& [key, refs] : ChunkCounts(n, chunks)) {
    BindBlob(ch, 1, key.data(), 32);
    sqlite3_bind_int64(ch, 2, refs);
    MS_RETURN_IF_ERROR(db->Step(ch));
  }
  return Status::Ok();
}

// The catalog's schema must exist (OpenSqliteCatalog made it) and the
// catalog be closed.
Status SqliteBulkFill(const std::string& path, uint64_t n, uint64_t chunks) {
  sqlite3* raw = nullptr;
  if (sqlite3_open(path.c_str(), &raw) != SQLITE_OK) {
    sqlite3_close(raw);
    return IoError("cannot open " + path);
  }
  Status st = [&]() -> Status {
    Lite db(raw);
    MS_RETURN_IF_ERROR(
        db.Exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                "PRAGMA cache_size=-1000000"));
    // The secondary indexes, as the catalog's schema made them.
    std::vector<std::pair<std::string, std::string>> indexes;
    {
      MS_ASSIGN_OR_RETURN(
          auto q,
          db.Prepare(std::string("SELECT name, sql FROM sqlite_master "
                                 "WHERE type='index' AND sql IS NOT NULL "
                                 "AND tbl_name IN (") +
                     kFilledTables + ")"));
      while (sqlite3_step(q) == SQLITE_ROW)
        indexes.push_back(
            {reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
             reinterpret_cast<const char*>(sqlite3_column_text(q, 1))});
      sqlite3_reset(q);
    }
    MS_RETURN_IF_ERROR(db.Exec("BEGIN"));
    for (auto& [name, sql] : indexes)
      MS_RETURN_IF_ERROR(db.Exec("DROP INDEX " + name));
    MS_RETURN_IF_ERROR(SqliteFillRows(&db, n, chunks));
    for (auto& [name, sql] : indexes) MS_RETURN_IF_ERROR(db.Exec(sql));
    MS_RETURN_IF_ERROR(db.Exec("COMMIT"));
    return db.Exec("PRAGMA journal_mode=WAL");
  }();
  sqlite3_close(raw);
  return st;
}

// ---- PostgreSQL bulk fill ----

class Pq {
 public:
  explicit Pq(PGconn* c) : c_(c) {}
  Status Exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    auto s = PQresultStatus(r);
    Status st = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK
                    ? Status::Ok()
                    : IoError(std::string("postgres: ") +
                              PQresultErrorMessage(r) + " in " + sql);
    PQclear(r);
    return st;
  }
  Result<std::vector<std::vector<std::string>>> Rows(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      std::string m = PQresultErrorMessage(r);
      PQclear(r);
      return IoError("postgres: " + m);
    }
    std::vector<std::vector<std::string>> out(size_t(PQntuples(r)));
    for (int i = 0; i < PQntuples(r); i++)
      for (int c = 0; c < PQnfields(r); c++)
        out[size_t(i)].push_back(PQgetvalue(r, i, c));
    PQclear(r);
    return out;
  }
  // COPY table(cols) FROM STDIN; rows() appends text-format lines to a
  // buffer through the callback, flushed every MiB.
  template <typename F>
  Status Copy(const std::string& target, F&& rows) {
    PGresult* r = PQexec(c_, ("COPY " + target + " FROM STDIN").c_str());
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    if (!ok)
      return IoError(std::string("postgres COPY: ") + PQerrorMessage(c_));
    std::string buf;
    Status st = Status::Ok();
    auto flush = [&](bool force) {
      if (!st.ok() || (!force && buf.size() < (1u << 20))) return;
      if (PQputCopyData(c_, buf.data(), int(buf.size())) != 1)
        st = IoError(std::string("postgres COPY: ") + PQerrorMessage(c_));
      buf.clear();
    };
    rows(&buf, flush);
    flush(true);
    if (PQputCopyEnd(c_, st.ok() ? nullptr : "aborted") != 1)
      return IoError(std::string("postgres COPY end: ") + PQerrorMessage(c_));
    while ((r = PQgetResult(c_)) != nullptr) {
      if (PQresultStatus(r) != PGRES_COMMAND_OK && st.ok())
        st = IoError(std::string("postgres COPY: ") + PQresultErrorMessage(r));
      PQclear(r);
    }
    return st;
  }

 private:
  PGconn* c_;
};

// bytea in COPY's text format: \\x then hex digits.
void AppendBytea(std::string* out, const void* p, size_t n) {
  static const char* kHex = "0123456789abcdef";
  out->append("\\\\x");
  auto* b = static_cast<const uint8_t*>(p);
  for (size_t k = 0; k < n; k++) {
    out->push_back(kHex[b[k] >> 4]);
    out->push_back(kHex[b[k] & 15]);
  }
}

Status PgFillRows(Pq* db, uint64_t n, uint64_t chunks) {
  MS_RETURN_IF_ERROR(
      db->Copy("subscribers(name)", [&](std::string* buf, auto& flush) {
        for (auto& s : SubscriberNames(n)) {
          buf->append(s).push_back('\n');
          flush(false);
        }
      }));
  MS_RETURN_IF_ERROR(db->Copy(
      "objects(id, oid, subscriber, name_sealed, latest_version, size, "
      "primary_pop, backup_pop)",
      [&](std::string* buf, auto& flush) {
        for (uint64_t i = 0; i < n; i++) {
          Gen g = Generate(i, chunks);
          Bytes oid = g.oid.Encode();
          buf->append(std::to_string(i + 1)).push_back('\t');
          AppendBytea(buf, oid.data(), oid.size());
          buf->append("\t" + g.subscriber + "\t");
          AppendBytea(buf, g.name.data(), g.name.size());
          buf->append("\t1\t" + std::to_string(g.size) + "\t" +
                      std::to_string(g.oid.primary_pop) + "\t" +
                      std::to_string(g.oid.backup_pop) + "\n");
          flush(false);
        }
      }));
  MS_RETURN_IF_ERROR(
      db->Copy("versions(oid, version, size, created_ms, collected)",
               [&](std::string* buf, auto& flush) {
                 for (uint64_t i = 0; i < n; i++) {
                   Gen g = Generate(i, chunks);
                   Bytes oid = g.oid.Encode();
                   AppendBytea(buf, oid.data(), oid.size());
                   buf->append("\t1\t" + std::to_string(g.size) + "\t" +
                               std::to_string(i) + "\t0\n");
                   flush(false);
                 }
               }));
  MS_RETURN_IF_ERROR(db->Copy("version_chunks(oid, version, chunk_id)",
                              [&](std::string* buf, auto& flush) {
                                for (uint64_t i = 0; i < n; i++) {
                                  Gen g = Generate(i, chunks);
                                  Bytes oid = g.oid.Encode();
                                  for (auto& c : DistinctSorted(g.chunks)) {
                                    AppendBytea(buf, oid.data(), oid.size());
                                    buf->append("\t1\t");
                                    AppendBytea(buf, c.data(), c.size());
                                    buf->push_back('\n');
                                  }
                                  flush(false);
                                }
                              }));
  return db->Copy("chunks(chunk_id, refs)", [&](std::string* buf, auto& flush) {
    for (auto& [key, refs] : ChunkCounts(n, chunks)) {
      AppendBytea(buf, key.data(), key.size());
      buf->append("\t" + std::to_string(refs) + "\n");
      flush(false);
    }
  });
}

Status PgBulkFill(const std::string& conninfo, uint64_t n, uint64_t chunks) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return Unavailable("postgres: " + m);
  }
  Pq db(c);
  Status st = [&]() -> Status {
    MS_RETURN_IF_ERROR(db.Exec("SET maintenance_work_mem='512MB'"));
    MS_RETURN_IF_ERROR(db.Exec("BEGIN"));
    // Primary keys, unique constraints and indexes as the catalog's schema
    // made them; dropped for the load, re-created from these definitions.
    MS_ASSIGN_OR_RETURN(
        auto cons,
        db.Rows(std::string(
                    "SELECT conrelid::regclass::text, conname, "
                    "pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                    "contype IN ('p','u') AND conrelid::regclass::text IN (") +
                kFilledTables + ")"));
    MS_ASSIGN_OR_RETURN(
        auto idx,
        db.Rows(std::string(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE "
                    "schemaname='public' AND indexname NOT IN (SELECT conname "
                    "FROM pg_constraint) AND tablename IN (") +
                kFilledTables + ")"));
    for (auto& r : idx) MS_RETURN_IF_ERROR(db.Exec("DROP INDEX " + r[0]));
    for (auto& r : cons)
      MS_RETURN_IF_ERROR(
          db.Exec("ALTER TABLE " + r[0] + " DROP CONSTRAINT " + r[1]));
    MS_RETURN_IF_ERROR(PgFillRows(&db, n, chunks));
    for (auto& r : cons)
      MS_RETURN_IF_ERROR(db.Exec("ALTER TABLE " + r[0] + " ADD CONSTRAINT " +
                                 r[1] + " " + r[2]));
    for (auto& r : idx) MS_RETURN_IF_ERROR(db.Exec(r[1]));
    if (n > 0)
      MS_RETURN_IF_ERROR(
          db.Exec("SELECT setval(pg_get_serial_sequence('objects', 'id'), " +
                  std::to_string(n) + ")"));
    MS_RETURN_IF_ERROR(db.Exec("COMMIT"));
    return db.Exec("ANALYZE");
  }();
  PQfinish(c);
  return st;
}

// ---- one backend ----

struct Backend {
  std::string name;
  std::function<Result<std::unique_ptr<Catalog>>(const std::string& store)>
      open;
  std::function<Result<std::unique_ptr<SqlDriver>>(const std::string& store)>
      driver;
  std::function<Status(const std::string& store, uint64_t n)> bulk_fill;
  std::function<Result<std::string>(const std::string& label)>
      new_store;  // empty store
  std::function<void(const std::string& store)> drop_store;
};

Status FillByReports(Catalog* cat, uint64_t n, uint64_t chunks,
                     uint64_t batch) {
  std::vector<pb::VersionInfo> infos;
  for (uint64_t i = 0; i < n; i++) {
    if (batch <= 1) {
      MS_RETURN_IF_ERROR(cat->ReportVersion(MakeReport(i, chunks), int64_t(i)));
      continue;
    }
    infos.push_back(MakeReport(i, chunks));
    if (infos.size() == batch || i + 1 == n) {
      // One now_ms per transaction: the batch's last report's index.
      MS_RETURN_IF_ERROR(cat->ReportVersions(infos, int64_t(i)));
      infos.clear();
    }
  }
  return Status::Ok();
}

Status Fill(const Backend& b, const std::string& store, uint64_t n,
            const Options& opt) {
  {  // the schema, as the daemon makes it
    MS_ASSIGN_OR_RETURN(auto cat, b.open(store));
    if (opt.fill == "reports")
      return FillByReports(cat.get(), n, opt.chunks, 1000);
  }
  return b.bulk_fill(store, n);
}

Result<std::vector<SqlRow>> Dump(SqlDriver* db, const std::string& sql) {
  return db->Query(sql, {}, 100000000);
}

// Report path vs bulk path on k objects: every row and the index definitions.
Status VerifyFill(const Backend& b, uint64_t k, const Options& opt) {
  MS_ASSIGN_OR_RETURN(std::string by_reports, b.new_store("verify_reports"));
  MS_ASSIGN_OR_RETURN(std::string by_bulk, b.new_store("verify_bulk"));
  Status st = [&]() -> Status {
    {
      MS_ASSIGN_OR_RETURN(auto cat, b.open(by_reports));
      MS_RETURN_IF_ERROR(FillByReports(cat.get(), k, opt.chunks, 1));
    }
    MS_RETURN_IF_ERROR(Fill(b, by_bulk, k, Options{opt}));
    MS_ASSIGN_OR_RETURN(auto x, b.driver(by_reports));
    MS_ASSIGN_OR_RETURN(auto y, b.driver(by_bulk));
    std::vector<std::string> dumps = {
        "SELECT * FROM subscribers ORDER BY name",
        "SELECT * FROM objects ORDER BY id",
        "SELECT * FROM versions ORDER BY oid, version",
        "SELECT * FROM version_chunks ORDER BY oid, version, chunk_id",
        "SELECT * FROM chunks ORDER BY chunk_id",
        "SELECT COUNT(*) FROM backups",
        "SELECT COUNT(*) FROM names"};
    dumps.push_back(b.name == "sqlite" ? "SELECT type, name, tbl_name, sql "
                                         "FROM sqlite_master ORDER BY name"
                                       : "SELECT indexname, indexdef FROM "
                                         "pg_indexes WHERE schemaname='public' "
                                         "ORDER BY indexname");
    if (b.name == "postgres") {
      dumps.push_back(
          "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
          "ORDER BY conname");
      dumps.push_back("SELECT last_value FROM objects_id_seq");
    }
    uint64_t rows = 0;
    for (auto& sql : dumps) {
      MS_ASSIGN_OR_RETURN(auto rx, Dump(x.get(), sql));
      MS_ASSIGN_OR_RETURN(auto ry, Dump(y.get(), sql));
      if (rx.size() != ry.size())
        return Internal(sql + ": " + std::to_string(rx.size()) +
                        " rows by reports, " + std::to_string(ry.size()) +
                        " by the bulk fill");
      for (size_t r = 0; r < rx.size(); r++) {
        bool same = rx[r].size() == ry[r].size();
        for (size_t c = 0; same && c < rx[r].size(); c++)
          same = rx[r][c].v == ry[r][c].v;
        if (!same)
          return Internal(sql + ": row " + std::to_string(r) + " differs");
      }
      rows += rx.size();
    }
    std::fprintf(stderr,
                 "%s: bulk fill of %" PRIu64
                 " objects equals the report path (%" PRIu64
                 " rows and definitions compared)\n",
                 b.name.c_str(), k, rows);
    return Status::Ok();
  }();
  b.drop_store(by_reports);
  b.drop_store(by_bulk);
  return st;
}

// M random filled objects read back through the Catalog API.
Status CheckSample(Catalog* cat, uint64_t n, const Options& opt) {
  std::mt19937_64 rng(3);
  for (uint64_t s = 0; s < opt.sample && n > 0; s++) {
    uint64_t i = s == 0 ? 0 : s == 1 ? n - 1 : rng() % n;
    Gen g = Generate(i, opt.chunks);
    Bytes oid = g.oid.Encode();
    MS_ASSIGN_OR_RETURN(auto rec, cat->FindObject(oid));
    MS_ASSIGN_OR_RETURN(auto vs, cat->ListVersions(oid, 10));
    std::vector<Bytes> want;
    for (auto& c : DistinctSorted(g.chunks))
      want.emplace_back(c.begin(), c.end());
    bool ok = rec.subscriber == g.subscriber && rec.latest_version == 1 &&
              rec.size_bytes == g.size && rec.primary_pop == 1 &&
              rec.backup_pop == 2 && vs.size() == 1 &&
              vs[0].size_bytes == g.size && vs[0].created_ms == int64_t(i) &&
              !vs[0].collected && vs[0].chunk_ids == want;
    if (!ok)
      return Internal("filled object " + std::to_string(i) +
                      " does not read back as reported");
  }
  return Status::Ok();
}

Status Measure(const Backend& b, Catalog* cat, const Options& opt) {
  uint64_t n = opt.objects, i = opt.new_from ? opt.new_from : n;
  auto t0 = Clock::now();
  for (uint64_t k = 0; k < opt.single; k++, i++)
    MS_RETURN_IF_ERROR(
        cat->ReportVersion(MakeReport(i, opt.chunks), int64_t(i)));
  double single_s = Seconds(Clock::now() - t0);
  auto t1 = Clock::now();
  std::vector<pb::VersionInfo> group;
  for (uint64_t k = 0; k < opt.grouped;) {
    group.clear();
    for (; k < opt.grouped && group.size() < opt.group; k++, i++)
      group.push_back(MakeReport(i, opt.chunks));
    MS_RETURN_IF_ERROR(cat->ReportVersions(group, int64_t(i)));
  }
  double grouped_s = Seconds(Clock::now() - t1);
  std::mt19937_64 qrng(2);
  std::vector<double> lat;
  for (uint64_t q = 0; q < opt.queries; q++) {
    uint64_t j = qrng() % n;
    Bytes oid = Oid{1, 2, uint32_t(1000 + j % 5000), uint32_t(j)}.Encode();
    auto t = Clock::now();
    auto rec = cat->FindObject(oid);
    lat.push_back(Seconds(Clock::now() - t) * 1e6);
    if (!rec.ok()) return rec.status();
    if (rec->subscriber != "sub" + std::to_string(j % kSubscribers))
      return Internal("FindObject returned another object's record");
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[size_t(p * double(lat.size() - 1))];
  };
  std::printf("%-9s objects=%" PRIu64 " chunks/report=%" PRIu64
              "  ingest: %.0f reports/s one per transaction (%" PRIu64
              "), %.0f reports/s in groups of %" PRIu64 " (%" PRIu64
              ")  FindObject p50 %.1f us  p99 %.1f us  max %.1f us (%" PRIu64
              " queries)\n",
              b.name.c_str(), n, opt.chunks,
              single_s > 0 ? double(opt.single) / single_s : 0.0, opt.single,
              grouped_s > 0 ? double(opt.grouped) / grouped_s : 0.0, opt.group,
              opt.grouped, pct(0.5), pct(0.99), lat.empty() ? 0.0 : lat.back(),
              opt.queries);
  std::fflush(stdout);
  return Status::Ok();
}

double LoadAverage() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

Status RunBackend(const Backend& b, const Options& opt) {
  std::fprintf(stderr, "%s: start, load average %.1f\n", b.name.c_str(),
               LoadAverage());
  if (opt.phase != "measure" && opt.verify_fill > 0 && opt.fill == "bulk")
    MS_RETURN_IF_ERROR(VerifyFill(b, opt.verify_fill, opt));
  std::string store;
  if (opt.phase == "measure") {
    MS_ASSIGN_OR_RETURN(store, b.new_store(""));  // the kept one
  } else {
    MS_ASSIGN_OR_RETURN(store, b.new_store("bench"));
    auto t = Clock::now();
    MS_RETURN_IF_ERROR(Fill(b, store, opt.objects, opt));
    std::printf("%-9s filled %" PRIu64
                " objects by %s in %.0f s (load average %.1f)\n",
                b.name.c_str(), opt.objects, opt.fill.c_str(),
                Seconds(Clock::now() - t), LoadAverage());
    std::fflush(stdout);
  }
  MS_ASSIGN_OR_RETURN(auto cat, b.open(store));
  MS_RETURN_IF_ERROR(CheckSample(cat.get(), opt.objects, opt));
  std::fprintf(stderr,
               "%s: %" PRIu64 " sampled objects read back as reported\n",
               b.name.c_str(), std::min(opt.sample, opt.objects));
  if (opt.phase != "fill") {
    MS_RETURN_IF_ERROR(Measure(b, cat.get(), opt));
    std::fprintf(stderr, "%s: done, load average %.1f\n", b.name.c_str(),
                 LoadAverage());
  }
  cat.reset();
  if (opt.phase == "all") b.drop_store(store);
  return Status::Ok();
}

Backend SqliteBackend(const Options& opt) {
  Backend b;
  b.name = "sqlite";
  b.open = [](const std::string& dir) { return OpenSqliteCatalog(dir); };
  b.driver = [](const std::string& dir) {
    return OpenSqliteDriver(dir + "/catalog.sqlite");
  };
  b.bulk_fill = [chunks = opt.chunks](const std::string& dir, uint64_t n) {
    return SqliteBulkFill(dir + "/catalog.sqlite", n, chunks);
  };
  bool keep = opt.phase != "all";
  b.new_store = [dir = opt.dir,
                 keep](const std::string& label) -> Result<std::string> {
    bool kept = keep && (label.empty() || label == "bench");
    std::string d = dir + "/mistore_catalog_bench";
    if (!kept) d += "." + std::to_string(getpid());
    if (!label.empty() && label != "bench") d += "." + label;
    if (!label.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
    return d;
  };
  b.drop_store = [](const std::string& d) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  };
  return b;
}

// base: "host=... port=... user=..." of a server whose `postgres` database
// takes CREATE DATABASE.
Status PgAdmin(const std::string& base, const std::string& sql) {
  PGconn* c = PQconnectdb((base + " dbname=postgres").c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return Unavailable("postgres: " + m);
  }
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  Status st = Pq(c).Exec(sql);
  PQfinish(c);
  return st;
}

Backend PgBackend(const Options& opt, const std::string& base) {
  Backend b;
  b.name = "postgres";
  b.open = [](const std::string& conninfo) { return OpenPgCatalog(conninfo); };
  b.driver = [](const std::string& conninfo) { return OpenPgDriver(conninfo); };
  b.bulk_fill = [chunks = opt.chunks](const std::string& conninfo, uint64_t n) {
    return PgBulkFill(conninfo, n, chunks);
  };
  b.new_store = [base](const std::string& label) -> Result<std::string> {
    std::string db = label.empty() ? "bench" : label;
    if (!label.empty()) {
      MS_RETURN_IF_ERROR(PgAdmin(base, "DROP DATABASE IF EXISTS " + db));
      MS_RETURN_IF_ERROR(PgAdmin(base, "CREATE DATABASE " + db));
    }
    return base + " dbname=" + db;
  };
  b.drop_store = [base,
                  keep = opt.phase != "all"](const std::string& conninfo) {
    std::string db = conninfo.substr(conninfo.rfind('=') + 1);
    if (db == "bench" && keep) return;
    (void)PgAdmin(base, "DROP DATABASE IF EXISTS " + db);
  };
  return b;
}

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  Options opt;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&](const char* name) -> const char* {
      size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? argv[i] + n : nullptr;
    };
    if (auto v = val("--objects="))
      opt.objects = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--single="))
      opt.single = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--new-from="))
      opt.new_from = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--grouped="))
      opt.grouped = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--group="))
      opt.group = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--queries="))
      opt.queries = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--chunks="))
      opt.chunks = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--verify-fill="))
      opt.verify_fill = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--sample="))
      opt.sample = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--fill="))
      opt.fill = v;
    else if (auto v = val("--phase="))
      opt.phase = v;
    else if (auto v = val("--backends="))
      opt.backends = v;
    else if (auto v = val("--dir="))
      opt.dir = v;
    else if (auto v = val("--pg-base="))
      opt.pg_base = v;
    else {
      std::fprintf(
          stderr,
          "catalog_bench: unknown argument %s (see the file's header)\n",
          argv[i]);
      return 2;
    }
  }
  bool phase_ok =
      opt.phase == "all" || opt.phase == "fill" || opt.phase == "measure";
  if (opt.objects == 0 || opt.group == 0 ||
      opt.group > Catalog::kReportBatchMax || !phase_ok ||
      (opt.fill != "bulk" && opt.fill != "reports") ||
      opt.objects > UINT32_MAX) {
    std::fprintf(stderr, "catalog_bench: bad arguments\n");
    return 2;
  }
  if (opt.phase != "all" &&
      opt.backends.find("postgres") != std::string::npos &&
      opt.pg_base.empty()) {
    std::fprintf(
        stderr,
        "catalog_bench: --phase=fill|measure on PostgreSQL needs --pg-base\n");
    return 2;
  }
  int rc = 0;
  auto report = [&](const char* name, Status st) {
    if (st.ok()) return;
    std::fprintf(stderr, "%s: %s\n", name, st.ToString().c_str());
    rc = 1;
  };
  if (opt.backends.find("sqlite") != std::string::npos)
    report("sqlite", RunBackend(SqliteBackend(opt), opt));
  if (opt.backends.find("postgres") != std::string::npos) {
    PgServer server;
    std::string base = opt.pg_base;
    if (base.empty()) {
      Status st = server.Start(/*durable=*/true);
      if (!st.ok()) {
        report("postgres", st);
        return rc;
      }
      auto c = server.CreateDatabase(
          "bench_admin");  // conninfo ends in dbname=bench_admin
      if (!c.ok()) {
        report("postgres", c.status());
        return rc;
      }
      base = c->substr(0, c->rfind(" dbname="));
    }
    report("postgres", RunBackend(PgBackend(opt, base), opt));
  }
  return rc;
}
