// The catalog suite (catalog_suite.h) on SQLite: a fresh data directory per
// test.
#include "tests/dc-backend/catalog_suite.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace catalog_suite {
namespace {

class SqliteBackend {
 public:
  Result<std::unique_ptr<Catalog>> Open() {
    return OpenSqliteCatalog(dir_.path() + "/dc");
  }

 private:
  store_test::TempDir dir_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, CatalogSuite, SqliteBackend);

}  // namespace
}  // namespace catalog_suite
}  // namespace mistore
