#include "shared/store/file_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <string>

#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::FilesUnder;
using store_test::RandomBytes;
using store_test::SeedTrace;
using store_test::TempDir;
using store_test::TestSeed;

TEST(FileUtilTest, WriteDurableThenReadRoundTrip) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(SeedTrace(seed));
  std::mt19937 rng(seed);
  TempDir d;
  const std::string path = d.path() + "/blob";
  const Bytes data = RandomBytes(rng, 100000 + rng() % 1000);
  Status st = WriteFileDurable(path, data);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(FileExists(path));
  auto back = ReadFileBytes(path, data.size());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, data);
  // Only the target remains: the temporary name was renamed away.
  EXPECT_EQ(FilesUnder(d.path()), std::vector<std::string>{"blob"});
  EXPECT_FALSE(FileExists(path + ".tmp"));
}

TEST(FileUtilTest, OverwriteReplacesWholeContents) {
  TempDir d;
  const std::string path = d.path() + "/f";
  ASSERT_TRUE(WriteFileDurable(path, Bytes(5000, 0xaa)).ok());
  ASSERT_TRUE(WriteFileDurable(path, Bytes{1, 2, 3}).ok());
  auto back = ReadFileBytes(path, 1 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, (Bytes{1, 2, 3}));
  EXPECT_EQ(FilesUnder(d.path()), std::vector<std::string>{"f"});
}

TEST(FileUtilTest, EmptyFileRoundTrip) {
  TempDir d;
  const std::string path = d.path() + "/empty";
  ASSERT_TRUE(WriteFileDurable(path, Bytes{}).ok());
  auto back = ReadFileBytes(path, 0);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->empty());
}

TEST(FileUtilTest, WrittenFileIsPrivate) {
  TempDir d;
  const std::string path = d.path() + "/p";
  ASSERT_TRUE(WriteFileDurable(path, Bytes{9}).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
}

TEST(FileUtilTest, WriteIntoMissingDirectoryFails) {
  TempDir d;
  const std::string path = d.path() + "/no/such/dir/f";
  Status st = WriteFileDurable(path, Bytes{1});
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_FALSE(FileExists(path));
}

TEST(FileUtilTest, ReadMissingIsNotFound) {
  TempDir d;
  auto r = ReadFileBytes(d.path() + "/absent", 100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
}

TEST(FileUtilTest, ReadOverLimitIsResourceExhausted) {
  TempDir d;
  const std::string path = d.path() + "/big";
  ASSERT_TRUE(WriteFileDurable(path, Bytes(1001, 7)).ok());
  auto over = ReadFileBytes(path, 1000);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), Code::kResourceExhausted);
  auto exact = ReadFileBytes(path, 1001);
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(exact->size(), 1001u);
}

TEST(FileUtilTest, ReadIntoAStringKeepsEveryByteAndTheSameLimits) {
  TempDir d;
  const std::string path = d.path() + "/s";
  Bytes data;
  for (int i = 0; i < 70000; i++) data.push_back(uint8_t(i * 31 + (i >> 8)));
  ASSERT_TRUE(WriteFileDurable(path, data).ok());
  auto s = ReadFileString(path, data.size());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, std::string(data.begin(), data.end()));
  EXPECT_EQ(ReadFileString(path, data.size() - 1).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(ReadFileString(d.path() + "/absent", 10).status().code(), Code::kNotFound);
}

TEST(FileUtilTest, MakeDirsNestedAndIdempotent) {
  TempDir d;
  const std::string deep = d.path() + "/a/b/c";
  ASSERT_TRUE(MakeDirs(deep).ok());
  struct stat st;
  ASSERT_EQ(stat(deep.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(MakeDirs(deep).ok());
  EXPECT_TRUE(MakeDirs(deep + "/").ok());
  // A path component that is a file cannot become a directory.
  ASSERT_TRUE(WriteFileDurable(d.path() + "/file", Bytes{1}).ok());
  EXPECT_FALSE(MakeDirs(d.path() + "/file/sub").ok());
}

TEST(FileUtilTest, RemoveFile) {
  TempDir d;
  const std::string path = d.path() + "/r";
  ASSERT_TRUE(WriteFileDurable(path, Bytes{1}).ok());
  EXPECT_TRUE(FileExists(path));
  EXPECT_TRUE(RemoveFile(path).ok());
  EXPECT_FALSE(FileExists(path));
  EXPECT_TRUE(RemoveFile(path).ok());  // absent is fine
}

}  // namespace
}  // namespace mistore
