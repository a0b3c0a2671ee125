// Thin SQLite wrapper (WAL, synchronous=FULL): Db owns the connection, Stmt
// a prepared statement. Used by POP and DC metadata; never on gateways.
// One Db per owner thread (the daemon's loop thread).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, const std::string& v);
  Stmt& Bind(int i, const Bytes& v);
  Stmt& BindNull(int i);
  // True when a row is available; false when done. Errors set *st.
  bool Step(Status* st);
  Status Run();  // steps to completion, then resets

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) const;
  Bytes Blob(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  void Reset();

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

class Db {
 public:
  static Result<Db> Open(const std::string& path);
  Db(Db&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  ~Db();
  Status Exec(const std::string& sql);
  Result<Stmt> Prepare(const std::string& sql);
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// Runs `body` inside BEGIN IMMEDIATE / COMMIT (ROLLBACK on error).
template <typename F>
Status InTransaction(Db& db, F&& body) {
  MS_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status st = body();
  if (!st.ok()) {
    (void)db.Exec("ROLLBACK");
    return st;
  }
  return db.Exec("COMMIT");
}

}  // namespace mistore
