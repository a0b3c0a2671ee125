// SqlDriver on PostgreSQL through libpq (see sql_driver.h). Statements are
// prepared once per connection (at most kPreparedMax). Parameters go as
// text, blobs as binary BYTEA; results come back as text and are typed by
// their column's type (int2/4/8 -> integer, bytea -> blob, else text).
#include <libpq-fe.h>

#include <map>

#include "dc-backend/sql_driver.h"

namespace mistore {
namespace {

constexpr Oid kInt8 = 20, kInt2 = 21, kInt4 = 23, kBytea = 17, kBool = 16;

class PgDriver : public SqlDriver {
 public:
  explicit PgDriver(PGconn* c) : c_(c) {}
  ~PgDriver() override { PQfinish(c_); }
  Dialect dialect() const override { return Dialect::kPostgres; }

  Result<std::vector<SqlRow>> Query(const std::string& sql, const SqlParams& params,
                                    size_t rows_max) override {
    MS_ASSIGN_OR_RETURN(PGresult * r, Run(sql, params, PGRES_TUPLES_OK));
    std::vector<SqlRow> rows;
    int n = PQntuples(r), cols = PQnfields(r);
    if (size_t(n) > rows_max) {
      PQclear(r);
      return ResourceExhausted("query returned more than " + std::to_string(rows_max) + " rows");
    }
    rows.reserve(size_t(n));
    for (int i = 0; i < n; i++) {
      SqlRow row;
      for (int c = 0; c < cols; c++) {
        if (PQgetisnull(r, i, c)) {
          row.emplace_back();
          continue;
        }
        const char* v = PQgetvalue(r, i, c);
        switch (PQftype(r, c)) {
          case kInt8:
          case kInt4:
          case kInt2: row.emplace_back(int64_t(std::strtoll(v, nullptr, 10))); break;
          case kBool: row.emplace_back(int64_t(v[0] == 't')); break;
          case kBytea: {
            size_t len = 0;
            unsigned char* b = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &len);
            row.emplace_back(Bytes(b, b + len));
            PQfreemem(b);
            break;
          }
          default: row.emplace_back(std::string(v, size_t(PQgetlength(r, i, c))));
        }
      }
      rows.push_back(std::move(row));
    }
    PQclear(r);
    return rows;
  }

  Result<int64_t> Exec(const std::string& sql, const SqlParams& params) override {
    MS_ASSIGN_OR_RETURN(PGresult * r, Run(sql, params, PGRES_COMMAND_OK));
    int64_t changed = std::strtoll(PQcmdTuples(r), nullptr, 10);
    PQclear(r);
    return changed;
  }

  Status ExecScript(const std::string& sql) override {
    PGresult* r = PQexec(c_, sql.c_str());
    Status st = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK
                    ? Status::Ok()
                    : IoError(std::string("postgres: ") + PQresultErrorMessage(r));
    PQclear(r);
    return st;
  }
  Status Begin() override { return ExecScript("BEGIN"); }
  Status Commit() override { return ExecScript("COMMIT"); }
  void Rollback() override { (void)ExecScript("ROLLBACK"); }

 private:
  Result<PGresult*> Run(const std::string& sql, const SqlParams& params, ExecStatusType want) {
    std::vector<std::string> text(params.size());
    std::vector<const char*> values(params.size());
    std::vector<int> lengths(params.size()), formats(params.size());
    for (size_t i = 0; i < params.size(); i++) {
      const auto& p = params[i].v;
      if (p.index() == 0) {
        values[i] = nullptr;
      } else if (auto* b = std::get_if<Bytes>(&p)) {
        values[i] = reinterpret_cast<const char*>(b->data());
        lengths[i] = int(b->size());
        formats[i] = 1;
      } else {
        text[i] = params[i].Text();
        values[i] = text[i].c_str();
      }
    }
    // Prepared once per connection (parse and plan once), by the SQL text.
    auto it = prepared_.find(sql);
    if (it == prepared_.end()) {
      if (prepared_.size() >= kPreparedMax) return PQexecParamsOnce(sql, params, values, lengths,
                                                                   formats, want);
      std::string name = "s" + std::to_string(prepared_.size());
      PGresult* p = PQprepare(c_, name.c_str(), sql.c_str(), int(params.size()), nullptr);
      bool ok = PQresultStatus(p) == PGRES_COMMAND_OK;
      std::string m = ok ? "" : PQresultErrorMessage(p);
      PQclear(p);
      if (!ok) return IoError("postgres prepare: " + m);
      it = prepared_.emplace(sql, name).first;
    }
    PGresult* r = PQexecPrepared(c_, it->second.c_str(), int(params.size()), values.data(),
                                 lengths.data(), formats.data(), 0);
    if (PQresultStatus(r) != want) {
      std::string m = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
      PQclear(r);
      return IoError("postgres: " + m);
    }
    return r;
  }

  Result<PGresult*> PQexecParamsOnce(const std::string& sql, const SqlParams& params,
                                     const std::vector<const char*>& values,
                                     const std::vector<int>& lengths,
                                     const std::vector<int>& formats, ExecStatusType want) {
    PGresult* r = PQexecParams(c_, sql.c_str(), int(params.size()), nullptr, values.data(),
                               lengths.data(), formats.data(), 0);
    if (PQresultStatus(r) != want) {
      std::string m = r ? PQresultErrorMessage(r) : PQerrorMessage(c_);
      PQclear(r);
      return IoError("postgres: " + m);
    }
    return r;
  }

  static constexpr size_t kPreparedMax = 256;
  PGconn* c_;
  std::map<std::string, std::string> prepared_;  // SQL text -> prepared statement name
};

// Notices ("relation already exists, skipping") are not news to the DC.
void QuietNotice(void*, const char*) {}

}  // namespace

Result<std::unique_ptr<SqlDriver>> OpenPgDriver(const std::string& conninfo) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return Unavailable("cannot connect to PostgreSQL: " + m);
  }
  PQsetNoticeProcessor(c, QuietNotice, nullptr);
  return std::unique_ptr<SqlDriver>(new PgDriver(c));
}

}  // namespace mistore
