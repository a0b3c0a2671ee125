#include "shared/store/sqlite.h"

#include <gtest/gtest.h>

#include <string>

#include "shared/store/file_util.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::TempDir;

Db OpenDb(const std::string& path) {
  auto db = Db::Open(path);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(db).value();
}

int64_t CountRows(Db& db, const std::string& table) {
  auto q = db.Prepare("SELECT COUNT(*) FROM " + table);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  Status st;
  EXPECT_TRUE(q->Step(&st)) << st.ToString();
  return q->Int(0);
}

TEST(SqliteTest, OpenCreatesFileInWalMode) {
  TempDir d;
  const std::string path = d.path() + "/t.sqlite";
  Db db = OpenDb(path);
  EXPECT_TRUE(FileExists(path));
  auto q = db.Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(q.ok());
  Status st;
  ASSERT_TRUE(q->Step(&st));
  EXPECT_EQ(q->Text(0), "wal");
  auto f = db.Prepare("PRAGMA foreign_keys");
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(f->Step(&st));
  EXPECT_EQ(f->Int(0), 1);
}

TEST(SqliteTest, OpenInMissingDirectoryFails) {
  TempDir d;
  auto db = Db::Open(d.path() + "/no/such/dir/t.sqlite");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kIo);
}

TEST(SqliteTest, BindStepAndReadColumns) {
  TempDir d;
  Db db = OpenDb(d.path() + "/t.sqlite");
  ASSERT_TRUE(db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER, s TEXT, b BLOB)").ok());
  auto ins = db.Prepare("INSERT INTO t(n, s, b) VALUES(?,?,?)");
  ASSERT_TRUE(ins.ok()) << ins.status().ToString();
  const Bytes blob = {0x00, 0xff, 0x00, 0x10};  // embedded NULs survive
  const std::string text("a\0b", 3);
  ins->Bind(1, int64_t(-9000000000LL)).Bind(2, text).Bind(3, blob);
  ASSERT_TRUE(ins->Run().ok());
  EXPECT_EQ(db.LastInsertRowid(), 1);
  EXPECT_EQ(db.Changes(), 1);
  // Run resets and clears bindings: the statement is reusable.
  ins->Bind(1, int64_t(5)).BindNull(2).Bind(3, Bytes{});
  ASSERT_TRUE(ins->Run().ok());
  EXPECT_EQ(db.LastInsertRowid(), 2);

  auto q = db.Prepare("SELECT n, s, b FROM t ORDER BY id");
  ASSERT_TRUE(q.ok());
  Status st;
  ASSERT_TRUE(q->Step(&st));
  EXPECT_EQ(q->Int(0), -9000000000LL);
  EXPECT_EQ(q->Text(1), text);
  EXPECT_EQ(q->Blob(2), blob);
  EXPECT_FALSE(q->IsNull(1));
  ASSERT_TRUE(q->Step(&st));
  EXPECT_EQ(q->Int(0), 5);
  EXPECT_TRUE(q->IsNull(1));
  EXPECT_EQ(q->Text(1), "");
  EXPECT_TRUE(q->Blob(2).empty());
  EXPECT_FALSE(q->Step(&st));
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(SqliteTest, StepReportsConstraintErrors) {
  TempDir d;
  Db db = OpenDb(d.path() + "/t.sqlite");
  ASSERT_TRUE(db.Exec("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER NOT NULL)").ok());
  auto ins = db.Prepare("INSERT INTO t(k, v) VALUES(?,?)");
  ASSERT_TRUE(ins.ok());
  ins->Bind(1, std::string("x")).Bind(2, int64_t(1));
  ASSERT_TRUE(ins->Run().ok());
  ins->Bind(1, std::string("x")).Bind(2, int64_t(2));
  Status st = ins->Run();
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_NE(st.message().find("sqlite"), std::string::npos);
  ins->Bind(1, std::string("y"));  // v left NULL
  Status st2;
  EXPECT_FALSE(ins->Step(&st2));
  EXPECT_FALSE(st2.ok());
  ins->Reset();
  EXPECT_EQ(CountRows(db, "t"), 1);
}

TEST(SqliteTest, ExecAndPrepareErrors) {
  TempDir d;
  Db db = OpenDb(d.path() + "/t.sqlite");
  Status st = db.Exec("CREATE TABLEX nonsense");
  EXPECT_EQ(st.code(), Code::kIo);
  auto q = db.Prepare("SELECT * FROM no_such_table");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), Code::kIo);
  EXPECT_NE(q.status().message().find("no_such_table"), std::string::npos);
}

TEST(SqliteTest, InTransactionCommits) {
  TempDir d;
  Db db = OpenDb(d.path() + "/t.sqlite");
  ASSERT_TRUE(db.Exec("CREATE TABLE t(v INTEGER)").ok());
  Status st = InTransaction(db, [&]() -> Status {
    MS_RETURN_IF_ERROR(db.Exec("INSERT INTO t VALUES(1)"));
    return db.Exec("INSERT INTO t VALUES(2)");
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(CountRows(db, "t"), 2);
}

TEST(SqliteTest, InTransactionRollsBackOnError) {
  TempDir d;
  Db db = OpenDb(d.path() + "/t.sqlite");
  ASSERT_TRUE(db.Exec("CREATE TABLE t(v INTEGER UNIQUE)").ok());
  ASSERT_TRUE(db.Exec("INSERT INTO t VALUES(0)").ok());
  // The body's own error.
  Status st = InTransaction(db, [&]() -> Status {
    MS_RETURN_IF_ERROR(db.Exec("INSERT INTO t VALUES(1)"));
    MS_RETURN_IF_ERROR(db.Exec("INSERT INTO t VALUES(2)"));
    return NotFound("abandon");
  });
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(CountRows(db, "t"), 1);
  // A failing statement half-way through.
  st = InTransaction(db, [&]() -> Status {
    MS_RETURN_IF_ERROR(db.Exec("INSERT INTO t VALUES(3)"));
    return db.Exec("INSERT INTO t VALUES(0)");  // UNIQUE violation
  });
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_EQ(CountRows(db, "t"), 1);
  // The connection is usable afterwards (no transaction left open).
  st = InTransaction(db, [&]() -> Status { return db.Exec("INSERT INTO t VALUES(4)"); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(CountRows(db, "t"), 2);
}

TEST(SqliteTest, CommittedDataSurvivesReopenRolledBackDoesNot) {
  TempDir d;
  const std::string path = d.path() + "/t.sqlite";
  {
    Db db = OpenDb(path);
    ASSERT_TRUE(db.Exec("CREATE TABLE t(v TEXT)").ok());
    ASSERT_TRUE(InTransaction(db, [&]() -> Status {
                  return db.Exec("INSERT INTO t VALUES('kept')");
                }).ok());
    (void)InTransaction(db, [&]() -> Status {
      MS_RETURN_IF_ERROR(db.Exec("INSERT INTO t VALUES('dropped')"));
      return Internal("no");
    });
  }
  Db db = OpenDb(path);
  auto q = db.Prepare("SELECT v FROM t");
  ASSERT_TRUE(q.ok());
  Status st;
  ASSERT_TRUE(q->Step(&st));
  EXPECT_EQ(q->Text(0), "kept");
  EXPECT_FALSE(q->Step(&st));
}

}  // namespace
}  // namespace mistore
