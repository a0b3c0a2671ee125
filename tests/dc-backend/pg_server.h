// PgServer: a throw-away PostgreSQL server for tests and benchmarks. initdb
// into a temporary directory (run as the `postgres` user through runuser
// when we are root, since PostgreSQL refuses to run as root), pg_ctl start
// on a free loopback port with fsync off, pg_ctl stop and the directory
// removed at the end. Databases made by CreateDatabase are each a fresh
// catalog. Test-process main thread only.
#pragma once

#include <string>

#include "shared/core/status.h"

namespace mistore {

class PgServer {
 public:
  // The directory holding initdb and pg_ctl, or "" when PostgreSQL is not
  // installed (Debian: /usr/lib/postgresql/<major>/bin).
  static std::string FindBinDir();

  PgServer() = default;
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // durable=false: fsync, synchronous_commit and full_page_writes off (unit
  // tests); true: PostgreSQL's defaults (benchmarks).
  Status Start(bool durable = false);
  void Stop();
  // A new empty database; returns its libpq conninfo.
  Result<std::string> CreateDatabase(const std::string& name);
  const std::string& log_path() const { return log_; }

 private:
  Status Run(const std::string& cmd);
  std::string bin_, dir_, log_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace mistore
