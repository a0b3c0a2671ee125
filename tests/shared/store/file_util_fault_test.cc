// fsync fault injection (MISTORE_FAULT_FSYNC=N: the Nth and later fsyncs of
// the process fail with EIO). file_util.cc reads the variable once, on the
// first fsync of the process, so it is set here before any file_util call and
// this binary holds nothing else. N=2 with the counter reset per test: the
// first fsync (the file's) succeeds, the second (the directory's) fails, and
// every later one fails.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "shared/store/file_util.h"

namespace mistore {
namespace {

class FsyncFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(setenv("MISTORE_FAULT_FSYNC", "2", 1), 0); }
  void SetUp() override {
    char tmpl[] = "/tmp/mistore_store_fault_test.XXXXXX";
    char* p = mkdtemp(tmpl);
    ASSERT_NE(p, nullptr);
    dir_ = p;
    ResetFsyncFaultCounterForTest();
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(FsyncFaultTest, FailedFileFsyncReturnsErrorAndLeavesNoFile) {
  const std::string first = dir_ + "/first";
  const std::string path = dir_ + "/target";
  // fsync #1 (file) succeeds, #2 (directory) fails: an error either way.
  Status st1 = WriteFileDurable(first, Bytes(100, 1));
  EXPECT_FALSE(st1.ok());
  EXPECT_EQ(st1.code(), Code::kIo);
  // fsync #3 is the file's own: the write fails before the rename.
  Status st = WriteFileDurable(path, Bytes(4096, 0x5a));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_NE(st.message().find("fsync"), std::string::npos) << st.ToString();
  EXPECT_FALSE(FileExists(path));
  EXPECT_FALSE(FileExists(path + ".tmp"));
}

TEST_F(FsyncFaultTest, FailedFileFsyncKeepsTheOldContents) {
  const std::string path = dir_ + "/target";
  {
    std::ofstream old(path, std::ios::binary);  // no fsync involved
    old << "old contents";
  }
  (void)WriteFileDurable(dir_ + "/warmup", Bytes{0});  // uses fsyncs #1 and #2
  Status st = WriteFileDurable(path, Bytes{1, 2, 3});  // fsync #3 fails
  EXPECT_EQ(st.code(), Code::kIo);
  auto back = ReadFileBytes(path, 1024);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::string(back->begin(), back->end()), "old contents");
  EXPECT_FALSE(FileExists(path + ".tmp"));
}

TEST_F(FsyncFaultTest, FailedDirectoryFsyncIsReported) {
  const std::string path = dir_ + "/target";
  Status st = WriteFileDurable(path, Bytes(10, 2));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_NE(st.message().find("fsync dir"), std::string::npos) << st.ToString();
  EXPECT_FALSE(FileExists(path + ".tmp"));
}

}  // namespace
}  // namespace mistore
