// catalog_bench: DC catalog ingest rate (POP version reports per second, one
// transaction each, as mistore-dc applies them) and point-query latency
// (FindObject of a random known oid) on SQLite and on PostgreSQL in the same
// run. Not part of the default test run; see docs/benchmarks.md "DC catalog".
//
//   catalog_bench [--objects=N] [--single=S] [--batch=B] [--queries=Q] [--chunks=C]
//                 [--backends=sqlite,postgres] [--dir=DIR] [--pg-conninfo=CONNINFO]
//
// The first S reports go one transaction each (what mistore-dc does today:
// one durable commit per report); the other N-S in batches of B
// (Catalog::ReportVersions, group commit). Both rates are printed.
//
// PostgreSQL: a throw-away server with its default (durable) settings
// started by pg_server.h, unless --pg-conninfo names a database. SQLite: WAL,
// synchronous=FULL, in DIR (default /tmp). Deterministic: seeded RNG.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "dc-backend/catalog.h"
#include "shared/core/oid.h"
#include "tests/dc-backend/pg_server.h"

namespace mistore {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  uint64_t objects = 1000000, single = 2000, batch = 1000, queries = 20000, chunks = 2;
  std::string backends = "sqlite,postgres", dir = "/tmp", pg_conninfo;
};

pb::VersionInfo MakeReport(uint64_t i, uint64_t chunks, std::mt19937_64* rng) {
  Oid o{1, 2, uint32_t(1000 + i % 5000), uint32_t(i)};
  Bytes oid = o.Encode();
  pb::VersionInfo info;
  info.set_oid(std::string(oid.begin(), oid.end()));
  info.set_version(1);
  info.set_size_bytes(1000 + (*rng)() % 1000000);
  info.set_subscriber("sub" + std::to_string(i % 100000));  // 100,000 subscribers
  std::string name(32, '\0'), chunk(32, '\0');
  for (auto& c : name) c = char((*rng)());
  info.set_name_sealed(name);
  for (uint64_t c = 0; c < chunks; c++) {
    for (auto& ch : chunk) ch = char((*rng)());
    info.add_chunk_ids(chunk);
  }
  return info;
}

double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

int RunOne(const std::string& backend, Catalog* cat, const Options& opt) {
  std::mt19937_64 rng(1);
  uint64_t single = std::min(opt.single, opt.objects);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < single; i++) {
    Status st = cat->ReportVersion(MakeReport(i, opt.chunks, &rng), int64_t(i));
    if (!st.ok()) {
      std::fprintf(stderr, "%s: report %" PRIu64 " failed: %s\n", backend.c_str(), i,
                   st.ToString().c_str());
      return 1;
    }
  }
  double single_s = Us(Clock::now() - t0) / 1e6;
  auto t1 = Clock::now(), last = t1;
  uint64_t next_note = single + (opt.objects - single) / 10;
  std::vector<pb::VersionInfo> batch;
  for (uint64_t i = single; i < opt.objects;) {
    batch.clear();
    for (; i < opt.objects && batch.size() < opt.batch; i++)
      batch.push_back(MakeReport(i, opt.chunks, &rng));
    Status st = cat->ReportVersions(batch, int64_t(i));
    if (!st.ok()) {
      std::fprintf(stderr, "%s: batch at %" PRIu64 " failed: %s\n", backend.c_str(), i,
                   st.ToString().c_str());
      return 1;
    }
    if (i >= next_note) {
      auto now = Clock::now();
      std::fprintf(stderr, "  %s: %" PRIu64 " objects, %.0f s\n", backend.c_str(), i,
                   Us(now - t1) / 1e6);
      last = now;
      next_note += (opt.objects - single) / 10;
    }
  }
  (void)last;
  double batch_s = Us(Clock::now() - t1) / 1e6;

  std::mt19937_64 qrng(2);
  std::vector<double> lat;
  lat.reserve(opt.queries);
  for (uint64_t q = 0; q < opt.queries; q++) {
    uint64_t i = qrng() % opt.objects;
    Oid o{1, 2, uint32_t(1000 + i % 5000), uint32_t(i)};
    auto t = Clock::now();
    auto rec = cat->FindObject(o.Encode());
    lat.push_back(Us(Clock::now() - t));
    if (!rec.ok()) {
      std::fprintf(stderr, "%s: query failed: %s\n", backend.c_str(),
                   rec.status().ToString().c_str());
      return 1;
    }
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[size_t(p * double(lat.size() - 1))]; };
  std::printf("%-9s objects=%" PRIu64 " chunks/report=%" PRIu64
              "  ingest: %.0f reports/s one per transaction (%" PRIu64
              "), %.0f reports/s in batches of %" PRIu64 " (%" PRIu64
              ")  FindObject p50 %.1f us  p99 %.1f us  max %.1f us (%" PRIu64 " queries)\n",
              backend.c_str(), opt.objects, opt.chunks, single_s > 0 ? double(single) / single_s : 0.0,
              single, batch_s > 0 ? double(opt.objects - single) / batch_s : 0.0, opt.batch,
              opt.objects - single, pct(0.5), pct(0.99), lat.empty() ? 0.0 : lat.back(),
              opt.queries);
  std::fflush(stdout);
  return 0;
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
    if (auto v = val("--objects=")) opt.objects = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--single=")) opt.single = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--batch=")) opt.batch = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--queries=")) opt.queries = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--chunks=")) opt.chunks = std::strtoull(v, nullptr, 10);
    else if (auto v = val("--backends=")) opt.backends = v;
    else if (auto v = val("--dir=")) opt.dir = v;
    else if (auto v = val("--pg-conninfo=")) opt.pg_conninfo = v;
    else {
      std::fprintf(stderr, "usage: catalog_bench [--objects=N] [--queries=Q] [--chunks=C] "
                           "[--backends=sqlite,postgres] [--dir=DIR] [--pg-conninfo=...]\n");
      return 2;
    }
  }
  if (opt.objects == 0 || opt.batch == 0 || opt.batch > Catalog::kReportBatchMax) return 2;
  int rc = 0;
  if (opt.backends.find("sqlite") != std::string::npos) {
    std::string d = opt.dir + "/mistore_catalog_bench." + std::to_string(getpid());
    auto cat = OpenSqliteCatalog(d);
    if (!cat.ok()) {
      std::fprintf(stderr, "sqlite: %s\n", cat.status().ToString().c_str());
      return 1;
    }
    rc |= RunOne("sqlite", cat->get(), opt);
    cat.value().reset();
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  }
  if (opt.backends.find("postgres") != std::string::npos) {
    PgServer server;
    std::string conninfo = opt.pg_conninfo;
    if (conninfo.empty()) {
      Status st = server.Start(/*durable=*/true);
      if (!st.ok()) {
        std::fprintf(stderr, "postgres: %s\n", st.ToString().c_str());
        return 1;
      }
      auto c = server.CreateDatabase("bench");
      if (!c.ok()) {
        std::fprintf(stderr, "postgres: %s\n", c.status().ToString().c_str());
        return 1;
      }
      conninfo = *c;
    }
    auto cat = OpenPgCatalog(conninfo);
    if (!cat.ok()) {
      std::fprintf(stderr, "postgres: %s\n", cat.status().ToString().c_str());
      return 1;
    }
    rc |= RunOne("postgres", cat->get(), opt);
  }
  return rc;
}
