// SqlDriver: the few things the DC catalog (dc-backend/catalog.cc) needs from
// a SQL database, so that one body of catalog logic runs on SQLite (WAL, the
// embedded default; shared/store/sqlite.h) and on PostgreSQL (libpq; an
// ISP's millions of subscribers). Statements are written once with numbered
// parameters $1, $2, ... (each driver maps them to its own syntax); the
// schema is the only per-dialect text (see Dialect).
//
// Ownership: a driver owns its connection. Not thread-safe: used from the
// DC's loop thread only (or from an operator subcommand's main thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

// A parameter or a column value. Text and blobs are distinct: blobs are
// BLOB in SQLite and BYTEA in PostgreSQL.
struct SqlValue {
  std::variant<std::monostate, int64_t, std::string, Bytes> v;
  SqlValue() = default;
  SqlValue(int64_t i) : v(i) {}                          // NOLINT: implicit by design
  SqlValue(uint64_t i) : v(int64_t(i)) {}                // NOLINT
  SqlValue(uint32_t i) : v(int64_t(i)) {}                // NOLINT
  SqlValue(int i) : v(int64_t(i)) {}                     // NOLINT
  SqlValue(std::string s) : v(std::move(s)) {}           // NOLINT
  SqlValue(const char* s) : v(std::string(s)) {}         // NOLINT
  SqlValue(Bytes b) : v(std::move(b)) {}                 // NOLINT
  bool null() const { return v.index() == 0; }
  int64_t Int() const;        // 0 for NULL
  std::string Text() const;   // "" for NULL; blobs as their bytes
  Bytes Blob() const;         // empty for NULL; text as its bytes
};
using SqlRow = std::vector<SqlValue>;
using SqlParams = std::vector<SqlValue>;

enum class Dialect { kSqlite, kPostgres };

class SqlDriver {
 public:
  virtual ~SqlDriver() = default;
  virtual Dialect dialect() const = 0;
  // Runs one statement; returns the rows it produced (at most rows_max;
  // more is an error so that no query grows without a bound).
  virtual Result<std::vector<SqlRow>> Query(const std::string& sql, const SqlParams& params,
                                            size_t rows_max) = 0;
  // Runs one statement that returns no rows; returns the rows it changed.
  virtual Result<int64_t> Exec(const std::string& sql, const SqlParams& params) = 0;
  // Several statements, no parameters (schema).
  virtual Status ExecScript(const std::string& sql) = 0;
  virtual Status Begin() = 0;  // a write transaction
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;
};

// SQLite file at path (created if missing), WAL, synchronous=FULL.
Result<std::unique_ptr<SqlDriver>> OpenSqliteDriver(const std::string& path);
// PostgreSQL through libpq; conninfo as libpq takes it
// ("host=/tmp port=5432 dbname=mistore").
Result<std::unique_ptr<SqlDriver>> OpenPgDriver(const std::string& conninfo);

// Runs body inside Begin/Commit (Rollback when it fails).
template <typename F>
Status InSqlTransaction(SqlDriver* db, F&& body) {
  MS_RETURN_IF_ERROR(db->Begin());
  Status st = body();
  if (!st.ok()) {
    db->Rollback();
    return st;
  }
  st = db->Commit();
  if (!st.ok()) db->Rollback();
  return st;
}

}  // namespace mistore
