// FileBackupStore (dc-backend/backup_store.h): durable put/get/delete by
// key, content check on every read, limits per object and in all, keys
// that cannot escape the store's directory, counts rebuilt on reopen.
#include "dc-backend/backup_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "shared/store/file_util.h"

namespace mistore {
namespace {

class BackupStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "backup_store_test_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<BackupStore> Open(FileBackupStoreLimits l = {}) {
    auto s = OpenFileBackupStore(dir_, l);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::string dir_;
};

TEST_F(BackupStoreTest, PutGetDeleteAndCountsSurviveReopen) {
  auto s = Open();
  Bytes chunk(5000, 7), manifest{1, 2, 3};
  std::string ck = BackupChunkKey("alice", Bytes(32, 0xab));
  std::string vk = BackupVersionKey(Bytes(16, 1), 3);
  EXPECT_EQ(ck, "chunks/616c696365/ab/" + ToHex(Bytes(32, 0xab)));
  EXPECT_EQ(vk, "versions/" + ToHex(Bytes(16, 1)) + "/3");
  EXPECT_EQ(s->Get(ck).status().code(), Code::kNotFound);
  ASSERT_TRUE(s->Put(ck, chunk).ok());
  ASSERT_TRUE(s->Put(vk, manifest).ok());
  ASSERT_TRUE(s->Put(ck, chunk).ok());  // content-addressed: stored once
  EXPECT_EQ(s->objects(), 2u);
  EXPECT_EQ(s->used_bytes(), 5003u);
  EXPECT_EQ(s->Get(ck).value(), chunk);
  EXPECT_TRUE(s->Exists(vk).value());
  s = Open();  // counts are rebuilt from the files
  EXPECT_EQ(s->objects(), 2u);
  EXPECT_EQ(s->used_bytes(), 5003u);
  EXPECT_EQ(s->Get(vk).value(), manifest);
  ASSERT_TRUE(s->Delete(vk).ok());
  ASSERT_TRUE(s->Delete(vk).ok());  // absent: Ok
  EXPECT_FALSE(s->Exists(vk).value());
  EXPECT_EQ(s->Get(vk).status().code(), Code::kNotFound);
  EXPECT_EQ(s->objects(), 1u);
  EXPECT_EQ(s->used_bytes(), 5000u);
}

TEST_F(BackupStoreTest, AFlippedBitIsCorruptNeverServed) {
  auto s = Open();
  std::string k = BackupChunkKey("bob", Bytes(32, 1));
  ASSERT_TRUE(s->Put(k, Bytes(100, 9)).ok());
  std::string path = dir_ + "/" + k;
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put(char(8));
  }
  EXPECT_EQ(s->Get(k).status().code(), Code::kCorrupt);
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "short";
  }
  EXPECT_EQ(s->Get(k).status().code(), Code::kCorrupt);
}

TEST_F(BackupStoreTest, LimitsPerObjectAndInAll) {
  auto s = Open(FileBackupStoreLimits{.object_bytes_max = 100, .bytes_max = 250});
  EXPECT_EQ(s->Put("versions/01/1", Bytes(101, 0)).code(), Code::kResourceExhausted);
  ASSERT_TRUE(s->Put("versions/01/1", Bytes(100, 0)).ok());
  ASSERT_TRUE(s->Put("versions/01/2", Bytes(100, 0)).ok());
  EXPECT_EQ(s->Put("versions/01/3", Bytes(100, 0)).code(), Code::kResourceExhausted);
  EXPECT_FALSE(s->Exists("versions/01/3").value());
  ASSERT_TRUE(s->Put("versions/01/2", Bytes(50, 0)).ok());  // a replacement frees its old size
  ASSERT_TRUE(s->Put("versions/01/3", Bytes(100, 0)).ok());
  EXPECT_EQ(s->used_bytes(), 250u);
}

TEST_F(BackupStoreTest, KeysCannotEscapeTheStore) {
  auto s = Open();
  for (std::string bad : {"", "../etc/passwd", "a//b", "/abs", "a/", "A/b", "a/./b", "a b"})
    EXPECT_EQ(s->Put(bad, Bytes{1}).code(), Code::kInvalidArgument) << bad;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/../etc"));
}

}  // namespace
}  // namespace mistore
