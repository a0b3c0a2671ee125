// The catalog suite (catalog_suite.h) on PostgreSQL: one throw-away server
// (pg_server.h) for the run, a fresh database per test. Exits 77 (ctest
// SKIP_RETURN_CODE) when PostgreSQL is not installed; scripts/test.sh
// installs it, so in CI it runs.
#include <cstdio>

#include "tests/dc-backend/catalog_suite.h"
#include "tests/dc-backend/pg_server.h"

namespace mistore {
namespace catalog_suite {
namespace {

PgServer* g_server = nullptr;

class PgBackend {
 public:
  PgBackend() {
    static int n = 0;
    auto c = g_server->CreateDatabase("catalog_" + std::to_string(++n));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (c.ok()) conninfo_ = *c;
  }
  Result<std::unique_ptr<Catalog>> Open() { return OpenPgCatalog(conninfo_); }

 private:
  std::string conninfo_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, CatalogSuite, PgBackend);

}  // namespace
}  // namespace catalog_suite
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  ::testing::InitGoogleTest(&argc, argv);
  if (PgServer::FindBinDir().empty()) {
    std::printf("SKIP: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                "scripts/install-deps.sh installs it\n");
    return 77;
  }
  PgServer server;
  Status st = server.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "cannot start the test PostgreSQL server: %s\n", st.ToString().c_str());
    return 1;
  }
  catalog_suite::g_server = &server;
  int rc = RUN_ALL_TESTS();
  server.Stop();
  return rc;
}
