// SqlDriver on SQLite (see sql_driver.h): WAL, synchronous=FULL, a 256 MiB
// page cache, prepared
// statements cached by their text (bounded), $N parameters mapped to ?N.
#include <sqlite3.h>

#include <map>

#include "dc-backend/sql_driver.h"
#include "shared/core/assert.h"

namespace mistore {

int64_t SqlValue::Int() const {
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* s = std::get_if<std::string>(&v)) return std::strtoll(s->c_str(), nullptr, 10);
  return 0;
}
std::string SqlValue::Text() const {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* b = std::get_if<Bytes>(&v)) return std::string(b->begin(), b->end());
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  return "";
}
Bytes SqlValue::Blob() const {
  if (auto* b = std::get_if<Bytes>(&v)) return *b;
  if (auto* s = std::get_if<std::string>(&v)) return Bytes(s->begin(), s->end());
  return {};
}

namespace {

constexpr size_t kStmtCacheMax = 128;
constexpr int64_t kCacheKib = 256 * 1024;  // page cache bound per connection

class SqliteDriver : public SqlDriver {
 public:
  explicit SqliteDriver(sqlite3* db) : db_(db) {}
  ~SqliteDriver() override {
    for (auto& [sql, s] : cache_) sqlite3_finalize(s);
    sqlite3_close(db_);
  }
  Dialect dialect() const override { return Dialect::kSqlite; }

  Result<std::vector<SqlRow>> Query(const std::string& sql, const SqlParams& params,
                                    size_t rows_max) override {
    MS_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare(sql, params));
    std::vector<SqlRow> rows;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      if (rows.size() >= rows_max) {
        sqlite3_reset(s);
        return ResourceExhausted("query returned more than " + std::to_string(rows_max) + " rows");
      }
      SqlRow row;
      int n = sqlite3_column_count(s);
      for (int c = 0; c < n; c++) {
        switch (sqlite3_column_type(s, c)) {
          case SQLITE_NULL: row.emplace_back(); break;
          case SQLITE_INTEGER: row.emplace_back(int64_t(sqlite3_column_int64(s, c))); break;
          case SQLITE_FLOAT: row.emplace_back(int64_t(sqlite3_column_double(s, c))); break;
          case SQLITE_BLOB: {
            auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, c));
            row.emplace_back(p ? Bytes(p, p + sqlite3_column_bytes(s, c)) : Bytes{});
            break;
          }
          default: {
            auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
            row.emplace_back(p ? std::string(p, size_t(sqlite3_column_bytes(s, c))) : "");
          }
        }
      }
      rows.push_back(std::move(row));
    }
    Status st = rc == SQLITE_DONE ? Status::Ok() : Error();
    sqlite3_reset(s);
    MS_RETURN_IF_ERROR(st);
    return rows;
  }

  Result<int64_t> Exec(const std::string& sql, const SqlParams& params) override {
    MS_ASSIGN_OR_RETURN(sqlite3_stmt * s, Prepare(sql, params));
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    }
    Status st = rc == SQLITE_DONE ? Status::Ok() : Error();
    sqlite3_reset(s);
    MS_RETURN_IF_ERROR(st);
    return int64_t(sqlite3_changes(db_));
  }

  Status ExecScript(const std::string& sql) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "unknown";
      sqlite3_free(err);
      return IoError("sqlite: " + m);
    }
    return Status::Ok();
  }
  Status Begin() override { return ExecScript("BEGIN IMMEDIATE"); }
  Status Commit() override { return ExecScript("COMMIT"); }
  void Rollback() override { (void)ExecScript("ROLLBACK"); }

 private:
  Status Error() const { return IoError(std::string("sqlite: ") + sqlite3_errmsg(db_)); }

  // $N -> ?N (SQLite's numbered parameter).
  static std::string Translate(const std::string& sql) {
    std::string out = sql;
    for (auto& ch : out)
      if (ch == '$') ch = '?';
    return out;
  }

  Result<sqlite3_stmt*> Prepare(const std::string& sql, const SqlParams& params) {
    sqlite3_stmt* s = nullptr;
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
      s = it->second;
    } else {
      std::string text = Translate(sql);
      if (sqlite3_prepare_v2(db_, text.c_str(), int(text.size()), &s, nullptr) != SQLITE_OK)
        return Status(IoError(std::string("sqlite prepare: ") + sqlite3_errmsg(db_) + " in " + sql));
      if (cache_.size() >= kStmtCacheMax) {
        sqlite3_finalize(cache_.begin()->second);
        cache_.erase(cache_.begin());
      }
      cache_[sql] = s;
    }
    sqlite3_clear_bindings(s);
    for (size_t i = 0; i < params.size(); i++) {
      int idx = int(i + 1);
      const auto& p = params[i].v;
      if (auto* n = std::get_if<int64_t>(&p)) {
        sqlite3_bind_int64(s, idx, *n);
      } else if (auto* t = std::get_if<std::string>(&p)) {
        sqlite3_bind_text(s, idx, t->data(), int(t->size()), SQLITE_TRANSIENT);
      } else if (auto* b = std::get_if<Bytes>(&p)) {
        sqlite3_bind_blob(s, idx, b->data(), int(b->size()), SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_null(s, idx);
      }
    }
    return s;
  }

  sqlite3* db_;
  std::map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace

Result<std::unique_ptr<SqlDriver>> OpenSqliteDriver(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    if (db) sqlite3_close(db);
    return IoError("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  auto d = std::make_unique<SqliteDriver>(db);
  // The catalog's keys are random (oids, chunk ids): with SQLite's default
  // 2 MiB page cache ingest slows tenfold by 100,000 objects.
  MS_RETURN_IF_ERROR(d->ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                                   "PRAGMA cache_size=-" + std::to_string(kCacheKib) + ";"));
  return std::unique_ptr<SqlDriver>(std::move(d));
}

}  // namespace mistore
