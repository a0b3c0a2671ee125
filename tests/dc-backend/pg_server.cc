#include "tests/dc-backend/pg_server.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace mistore {
namespace fs = std::filesystem;

std::string PgServer::FindBinDir() {
  std::error_code ec;
  std::string best;
  for (auto& e : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string bin = e.path().string() + "/bin";
    if (fs::exists(bin + "/initdb") && fs::exists(bin + "/pg_ctl") && bin > best) best = bin;
  }
  return best;
}

namespace {
int FreePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = 0;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}
}  // namespace

PgServer::~PgServer() { Stop(); }

Status PgServer::Run(const std::string& cmd) {
  // As root, PostgreSQL's tools must run as another user.
  std::string full = geteuid() == 0 ? "runuser -u postgres -- " + cmd : cmd;
  full += " >>" + log_ + " 2>&1";
  int rc = std::system(full.c_str());
  if (rc != 0) return Internal("`" + cmd + "` failed (exit " + std::to_string(rc) + "); see " + log_);
  return Status::Ok();
}

Status PgServer::Start(bool durable) {
  bin_ = FindBinDir();
  if (bin_.empty()) return NotFound("PostgreSQL binaries not found under /usr/lib/postgresql");
  char tmpl[] = "/tmp/mistore_pg.XXXXXX";
  if (!mkdtemp(tmpl)) return IoError("mkdtemp failed");
  dir_ = tmpl;
  log_ = dir_ + "/server.log";
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    if (!pw) return NotFound("running as root and there is no `postgres` user");
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return IoError("chown " + dir_);
    FILE* f = std::fopen(log_.c_str(), "a");
    if (f) std::fclose(f);
    if (chown(log_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return IoError("chown " + log_);
  }
  MS_RETURN_IF_ERROR(Run(bin_ + "/initdb -D " + dir_ + "/data -A trust -U mistore --locale=C " +
                         "-E UTF8 --no-sync"));
  port_ = FreePort();
  if (port_ == 0) return IoError("no free port");
  MS_RETURN_IF_ERROR(Run(bin_ + "/pg_ctl -D " + dir_ + "/data -w -t 60 -l " + dir_ +
                         "/postgres.log -o \"-p " + std::to_string(port_) + " -k " + dir_ +
                         " -c listen_addresses=127.0.0.1" +
                         (durable ? std::string()
                                  : " -c fsync=off -c synchronous_commit=off "
                                    "-c full_page_writes=off") +
                         "\" start"));
  running_ = true;
  return Status::Ok();
}

void PgServer::Stop() {
  if (running_) {
    (void)Run(bin_ + "/pg_ctl -D " + dir_ + "/data -m immediate -w stop");
    running_ = false;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
}

Result<std::string> PgServer::CreateDatabase(const std::string& name) {
  std::string base = "host=127.0.0.1 port=" + std::to_string(port_) + " user=mistore dbname=";
  PGconn* c = PQconnectdb((base + "postgres").c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return Unavailable("cannot connect to the test server: " + m);
  }
  PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string m = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok) return Internal("CREATE DATABASE " + name + ": " + m);
  return base + name;
}

}  // namespace mistore
