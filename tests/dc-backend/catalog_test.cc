#include "dc-backend/catalog.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace mistore {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mistore_catalog_test.XXXXXX";
    char* p = mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }

pb::VersionInfo Report(const std::string& oid, uint64_t v, uint64_t size, const std::string& sub,
                       const std::string& name) {
  pb::VersionInfo info;
  info.set_oid(oid);
  info.set_version(v);
  info.set_size_bytes(size);
  info.set_subscriber(sub);
  info.set_name_sealed(name);
  return info;
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    cat_.reset();
    auto c = Catalog::Open(tmp_.path() + "/dc");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cat_ = std::move(c).value();
  }
  pb::ClusterMap Map() {
    auto m = cat_->Map();
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : pb::ClusterMap();
  }
  uint64_t Epoch() { return Map().epoch(); }

  TempDir tmp_;
  std::unique_ptr<Catalog> cat_;
};

// ---- names --------------------------------------------------------------

TEST_F(CatalogTest, ClaimNameIsIdempotent) {
  auto first = cat_->ClaimName("alice", B("key-1"), B("oid-A"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(S(first->first), "oid-A");
  EXPECT_TRUE(first->second);
  auto second = cat_->ClaimName("alice", B("key-1"), B("oid-B"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(S(second->first), "oid-A");
  EXPECT_FALSE(second->second);
  auto again = cat_->ClaimName("alice", B("key-1"), B("oid-A"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(S(again->first), "oid-A");
  EXPECT_FALSE(again->second);
  EXPECT_EQ(S(cat_->LookupName("alice", B("key-1")).value()), "oid-A");
}

TEST_F(CatalogTest, NamesAreScopedBySubscriber) {
  ASSERT_TRUE(cat_->ClaimName("alice", B("k"), B("oid-A")).ok());
  auto bob = cat_->ClaimName("bob", B("k"), B("oid-B"));
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(S(bob->first), "oid-B");
  EXPECT_TRUE(bob->second);
  EXPECT_EQ(S(cat_->LookupName("alice", B("k")).value()), "oid-A");
  EXPECT_EQ(S(cat_->LookupName("bob", B("k")).value()), "oid-B");
  auto other = cat_->ClaimName("alice", B("k2"), B("oid-C"));
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->second);
}

TEST_F(CatalogTest, LookupUnknownNameIsNotFound) {
  EXPECT_EQ(cat_->LookupName("alice", B("nope")).status().code(), Code::kNotFound);
  ASSERT_TRUE(cat_->ClaimName("alice", B("k"), B("oid")).ok());
  EXPECT_EQ(cat_->LookupName("bob", B("k")).status().code(), Code::kNotFound);
  EXPECT_EQ(cat_->LookupName("alice", B("k2")).status().code(), Code::kNotFound);
}

TEST_F(CatalogTest, NamesSurviveReopen) {
  ASSERT_TRUE(cat_->ClaimName("alice", B("k"), B("oid-A")).ok());
  Reopen();
  EXPECT_EQ(S(cat_->LookupName("alice", B("k")).value()), "oid-A");
  auto again = cat_->ClaimName("alice", B("k"), B("oid-Z"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(S(again->first), "oid-A");
  EXPECT_FALSE(again->second);
}

// ---- objects --------------------------------------------------------------

TEST_F(CatalogTest, ReportVersionKeepsTheNewest) {
  ASSERT_TRUE(cat_->ReportVersion(Report("o1", 2, 200, "alice", "name-v2")).ok());
  ASSERT_TRUE(cat_->ReportVersion(Report("o1", 1, 100, "alice", "name-v1")).ok());  // late
  auto list = cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->objects_size(), 1);
  EXPECT_EQ(list->objects(0).oid(), "o1");
  EXPECT_EQ(list->objects(0).latest_version(), 2u);
  EXPECT_EQ(list->objects(0).size_bytes(), 200u);
  EXPECT_EQ(list->objects(0).name_sealed(), "name-v2");

  ASSERT_TRUE(cat_->ReportVersion(Report("o1", 5, 500, "alice", "name-v5")).ok());
  list = cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects_size(), 1);
  EXPECT_EQ(list->objects(0).latest_version(), 5u);
  EXPECT_EQ(list->objects(0).size_bytes(), 500u);
  EXPECT_EQ(list->objects(0).name_sealed(), "name-v5");

  ASSERT_TRUE(cat_->ReportVersion(Report("o1", 3, 300, "alice", "name-v3")).ok());
  list = cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->objects(0).latest_version(), 5u);
  EXPECT_EQ(list->objects(0).size_bytes(), 500u);
  EXPECT_EQ(list->objects(0).name_sealed(), "name-v5");
}

TEST_F(CatalogTest, ListObjectsOnlyTheSubscribersOwn) {
  ASSERT_TRUE(cat_->ReportVersion(Report("a1", 1, 10, "alice", "n-a1")).ok());
  ASSERT_TRUE(cat_->ReportVersion(Report("b1", 1, 20, "bob", "n-b1")).ok());
  ASSERT_TRUE(cat_->ReportVersion(Report("a2", 4, 30, "alice", "n-a2")).ok());
  auto alice = cat_->ListObjects("alice");
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->objects_size(), 2);
  EXPECT_EQ(alice->objects(0).oid(), "a1");
  EXPECT_EQ(alice->objects(1).oid(), "a2");
  EXPECT_EQ(alice->objects(1).latest_version(), 4u);
  auto bob = cat_->ListObjects("bob");
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->objects_size(), 1);
  EXPECT_EQ(bob->objects(0).oid(), "b1");
  EXPECT_EQ(bob->objects(0).size_bytes(), 20u);
  auto carol = cat_->ListObjects("carol");
  ASSERT_TRUE(carol.ok());
  EXPECT_EQ(carol->objects_size(), 0);
}

TEST_F(CatalogTest, ObjectsSurviveReopen) {
  ASSERT_TRUE(cat_->ReportVersion(Report("o", 7, 70, "alice", "n7")).ok());
  Reopen();
  ASSERT_TRUE(cat_->ReportVersion(Report("o", 6, 60, "alice", "n6")).ok());
  auto list = cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects_size(), 1);
  EXPECT_EQ(list->objects(0).latest_version(), 7u);
  EXPECT_EQ(list->objects(0).size_bytes(), 70u);
  EXPECT_EQ(list->objects(0).name_sealed(), "n7");
}

// ---- cluster map ------------------------------------------------------------

TEST_F(CatalogTest, PopUpAndDownBumpEpochOnlyOnChange) {
  const uint64_t e0 = Epoch();
  EXPECT_GE(e0, 1u);  // opening is itself a map change
  ASSERT_TRUE(cat_->PopUp(1, "eu-west", "10.0.0.1:7000").ok());
  EXPECT_EQ(Epoch(), e0 + 1);
  ASSERT_TRUE(cat_->PopUp(1, "eu-west", "10.0.0.1:7000").ok());  // no change
  EXPECT_EQ(Epoch(), e0 + 1);
  ASSERT_TRUE(cat_->PopUp(2, "eu-east", "10.0.0.2:7000").ok());
  EXPECT_EQ(Epoch(), e0 + 2);

  pb::ClusterMap m = Map();
  ASSERT_EQ(m.pops_size(), 2);
  EXPECT_EQ(m.pops(0).pop_id(), 1u);
  EXPECT_EQ(m.pops(0).region(), "eu-west");
  EXPECT_EQ(m.pops(0).addr(), "10.0.0.1:7000");
  EXPECT_TRUE(m.pops(0).up());
  EXPECT_EQ(m.pops(1).pop_id(), 2u);
  EXPECT_TRUE(m.pops(1).up());

  ASSERT_TRUE(cat_->PopDown(1).ok());
  EXPECT_EQ(Epoch(), e0 + 3);
  ASSERT_TRUE(cat_->PopDown(1).ok());  // already down
  EXPECT_EQ(Epoch(), e0 + 3);
  ASSERT_TRUE(cat_->PopDown(99).ok());  // never seen
  EXPECT_EQ(Epoch(), e0 + 3);
  m = Map();
  ASSERT_EQ(m.pops_size(), 2);
  EXPECT_FALSE(m.pops(0).up());
  EXPECT_TRUE(m.pops(1).up());

  // Back up at the same address: a change.
  ASSERT_TRUE(cat_->PopUp(1, "eu-west", "10.0.0.1:7000").ok());
  EXPECT_EQ(Epoch(), e0 + 4);
  EXPECT_TRUE(Map().pops(0).up());
}

TEST_F(CatalogTest, PopUpAtNewAddressIsAChange) {
  ASSERT_TRUE(cat_->PopUp(3, "r", "a:1").ok());
  const uint64_t e = Epoch();
  ASSERT_TRUE(cat_->PopUp(3, "r", "b:2").ok());
  EXPECT_EQ(Epoch(), e + 1);
  ASSERT_TRUE(cat_->PopUp(3, "r2", "b:2").ok());
  EXPECT_EQ(Epoch(), e + 2);
  pb::ClusterMap m = Map();
  ASSERT_EQ(m.pops_size(), 1);
  EXPECT_EQ(m.pops(0).addr(), "b:2");
  EXPECT_EQ(m.pops(0).region(), "r2");
  EXPECT_TRUE(m.pops(0).up());
}

TEST_F(CatalogTest, EpochNeverGoesBackAcrossReopen) {
  ASSERT_TRUE(cat_->PopUp(1, "r", "a:1").ok());
  ASSERT_TRUE(cat_->PopUp(2, "r", "a:2").ok());
  ASSERT_TRUE(cat_->PopDown(2).ok());
  uint64_t last = Epoch();
  for (int round = 0; round < 3; round++) {
    SCOPED_TRACE("reopen " + std::to_string(round));
    Reopen();
    pb::ClusterMap m = Map();
    EXPECT_GT(m.epoch(), last);
    // Every POP is down until it says hello again; the map is remembered.
    ASSERT_EQ(m.pops_size(), 2);
    for (auto& p : m.pops()) EXPECT_FALSE(p.up()) << p.pop_id();
    EXPECT_EQ(m.pops(0).addr(), "a:1");
    last = m.epoch();
    ASSERT_TRUE(cat_->PopUp(1, "r", "a:1").ok());
    EXPECT_EQ(Epoch(), last + 1);
    last = Epoch();
  }
}

}  // namespace
}  // namespace mistore
