// The catalog suite (catalog_suite.h) on SQLite: a fresh data directory per
// test.
#include <stdlib.h>

#include <filesystem>

#include "tests/dc-backend/catalog_suite.h"

namespace mistore {
namespace catalog_suite {
namespace {

class SqliteBackend {
 public:
  SqliteBackend() {
    char tmpl[] = "/tmp/mistore_catalog_test.XXXXXX";
    char* p = mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "";
  }
  ~SqliteBackend() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  Result<std::unique_ptr<Catalog>> Open() { return OpenSqliteCatalog(path_ + "/dc"); }

 private:
  std::string path_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, CatalogSuite, SqliteBackend);

}  // namespace
}  // namespace catalog_suite
}  // namespace mistore
