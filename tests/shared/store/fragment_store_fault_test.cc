// FragmentStore under failing fsyncs (MISTORE_FAULT_FSYNC=2: with the counter
// reset per test, the fragment file's fsync succeeds and the directory's
// fails, so the file may already be renamed into place when Put fails). A
// Put that fails is not acknowledged, and the store must not count, list or
// serve what it did not acknowledge. The variable is read once per process:
// this binary holds nothing else.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <random>

#include "shared/erasure/chunk_codec.h"
#include "shared/store/file_util.h"
#include "shared/store/fragment_store.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::FilesUnder;
using store_test::RandomBytes;
using store_test::TempDir;

class FragmentStoreFaultTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(setenv("MISTORE_FAULT_FSYNC", "2", 1), 0); }
  void SetUp() override {
    std::mt19937 rng(7);
    id_ = RandomBytes(rng, 32);
    Bytes data = RandomBytes(rng, 5000);
    auto r = EncodeChunkToFragments(id_, data.data(), data.size(), 2, 1);
    ASSERT_TRUE(r.ok());
    blobs_ = std::move(r).value();
    ResetFsyncFaultCounterForTest();
  }
  std::string Dir() const { return tmp_.path() + "/frags"; }
  TempDir tmp_;
  Bytes id_;
  std::vector<Bytes> blobs_;
};

TEST_F(FragmentStoreFaultTest, FailedPutIsNotCountedListedOrServed) {
  auto s = FragmentStore::Open(Dir(), uint64_t(1) << 30);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const Bytes empty_digest = s->digest();
  ResetFsyncFaultCounterForTest();
  Status st = s->Put(blobs_[0]);
  EXPECT_EQ(st.code(), Code::kIo) << st.ToString();
  EXPECT_EQ(s->fragment_count(), 0u);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_EQ(s->digest(), empty_digest);
  EXPECT_EQ(s->Get(id_, 0).status().code(), Code::kNotFound);
  EXPECT_TRUE(FilesUnder(Dir()).empty()) << "an unacknowledged fragment was left on disk";
}

TEST_F(FragmentStoreFaultTest, FailedReplacementKeepsServingTheFragment) {
  // The fragment is already on disk (written without the store).
  std::string name = FragmentName(id_, 1);
  ASSERT_TRUE(MakeDirs(Dir() + "/" + name.substr(0, 2)).ok());
  std::ofstream(Dir() + "/" + name.substr(0, 2) + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(blobs_[1].data()), std::streamsize(blobs_[1].size()));
  auto s = FragmentStore::Open(Dir(), uint64_t(1) << 30);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->fragment_count(), 1u);
  ResetFsyncFaultCounterForTest();
  EXPECT_EQ(s->Put(blobs_[1]).code(), Code::kIo);
  EXPECT_EQ(s->fragment_count(), 1u);
  auto g = s->Get(id_, 1);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g, blobs_[1]);
}

}  // namespace
}  // namespace mistore
