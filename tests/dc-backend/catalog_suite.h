// The catalog's one test suite (issue 7), run against every implementation:
// catalog_test.cc instantiates it on SQLite, catalog_pg_test.cc on a real
// PostgreSQL server (pg_server.h). A Backend type gives the fixture a fresh
// store (its constructor) and opens a catalog on it (Open), as many times as
// a test reopens.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <set>

#include "dc-backend/catalog.h"
#include "shared/core/oid.h"

namespace mistore {
namespace catalog_suite {

inline Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
inline std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }

inline pb::VersionInfo Report(const std::string& oid, uint64_t v, uint64_t size,
                              const std::string& sub, const std::string& name) {
  pb::VersionInfo info;
  info.set_oid(oid);
  info.set_version(v);
  info.set_size_bytes(size);
  info.set_subscriber(sub);
  info.set_name_sealed(name);
  return info;
}

template <typename Backend>
class CatalogSuite : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  // As the daemon opens it: the store's catalog, then OnDaemonStart.
  void Reopen() {
    cat_.reset();
    auto c = backend_.Open();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cat_ = std::move(c).value();
    ASSERT_TRUE(cat_->OnDaemonStart().ok());
  }
  pb::ClusterMap Map() {
    auto m = cat_->Map();
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : pb::ClusterMap();
  }
  uint64_t Epoch() { return Map().epoch(); }

  Backend backend_;
  std::unique_ptr<Catalog> cat_;
};

TYPED_TEST_SUITE_P(CatalogSuite);

// ---- names --------------------------------------------------------------

TYPED_TEST_P(CatalogSuite, ClaimNameIsIdempotent) {
  auto first = this->cat_->ClaimName("alice", B("key-1"), B("oid-A"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(S(first->first), "oid-A");
  EXPECT_TRUE(first->second);
  auto second = this->cat_->ClaimName("alice", B("key-1"), B("oid-B"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(S(second->first), "oid-A");
  EXPECT_FALSE(second->second);
  auto again = this->cat_->ClaimName("alice", B("key-1"), B("oid-A"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(S(again->first), "oid-A");
  EXPECT_FALSE(again->second);
  EXPECT_EQ(S(this->cat_->LookupName("alice", B("key-1")).value()), "oid-A");
}

TYPED_TEST_P(CatalogSuite, NamesAreScopedBySubscriber) {
  ASSERT_TRUE(this->cat_->ClaimName("alice", B("k"), B("oid-A")).ok());
  auto bob = this->cat_->ClaimName("bob", B("k"), B("oid-B"));
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(S(bob->first), "oid-B");
  EXPECT_TRUE(bob->second);
  EXPECT_EQ(S(this->cat_->LookupName("alice", B("k")).value()), "oid-A");
  EXPECT_EQ(S(this->cat_->LookupName("bob", B("k")).value()), "oid-B");
  auto other = this->cat_->ClaimName("alice", B("k2"), B("oid-C"));
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->second);
}

TYPED_TEST_P(CatalogSuite, LookupUnknownNameIsNotFound) {
  EXPECT_EQ(this->cat_->LookupName("alice", B("nope")).status().code(), Code::kNotFound);
  ASSERT_TRUE(this->cat_->ClaimName("alice", B("k"), B("oid")).ok());
  EXPECT_EQ(this->cat_->LookupName("bob", B("k")).status().code(), Code::kNotFound);
  EXPECT_EQ(this->cat_->LookupName("alice", B("k2")).status().code(), Code::kNotFound);
}

TYPED_TEST_P(CatalogSuite, NamesSurviveReopen) {
  ASSERT_TRUE(this->cat_->ClaimName("alice", B("k"), B("oid-A")).ok());
  this->Reopen();
  EXPECT_EQ(S(this->cat_->LookupName("alice", B("k")).value()), "oid-A");
  auto again = this->cat_->ClaimName("alice", B("k"), B("oid-Z"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(S(again->first), "oid-A");
  EXPECT_FALSE(again->second);
}

// A DC-tier oid carries a random counter (PopCore::ClaimNewOid), so the
// catalog refuses one that another name or object uses; the POP draws again.
TYPED_TEST_P(CatalogSuite, ClaimNameRefusesADcTierOidInUse) {
  const Bytes dc = Oid{0, 0, 1001, 7}.Encode();
  auto first = this->cat_->ClaimName("alice", B("k1"), dc);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->second);
  EXPECT_EQ(this->cat_->ClaimName("bob", B("k2"), dc).status().code(), Code::kAborted);
  EXPECT_EQ(this->cat_->ClaimName("alice", B("k2"), dc).status().code(), Code::kAborted);
  EXPECT_EQ(this->cat_->LookupName("alice", B("k2")).status().code(), Code::kNotFound);
  // The name itself: its oid is the answer, whatever is proposed.
  auto again = this->cat_->ClaimName("alice", B("k1"), Oid{0, 0, 1001, 8}.Encode());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->first, dc);
  EXPECT_FALSE(again->second);
  // An oid the objects table holds (its names gone) is in use too.
  const Bytes orphan = Oid{0, 0, 1001, 9}.Encode();
  ASSERT_TRUE(this->cat_->ReportVersion(Report(S(orphan), 1, 10, "alice", "n"), 1).ok());
  EXPECT_EQ(this->cat_->ClaimName("alice", B("k3"), orphan).status().code(), Code::kAborted);
  // POP-tier oids are unique by their POP's counter: not checked.
  const Bytes pop = Oid{1, 2, 1001, 7}.Encode();
  ASSERT_TRUE(this->cat_->ClaimName("alice", B("k4"), pop).ok());
  auto shared = this->cat_->ClaimName("alice", B("k5"), pop);
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  EXPECT_TRUE(shared->second);
}

// ---- objects --------------------------------------------------------------

TYPED_TEST_P(CatalogSuite, ReportVersionKeepsTheNewest) {
  ASSERT_TRUE(this->cat_->ReportVersion(Report("o1", 2, 200, "alice", "name-v2")).ok());
  ASSERT_TRUE(this->cat_->ReportVersion(Report("o1", 1, 100, "alice", "name-v1")).ok());  // late
  auto list = this->cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->objects_size(), 1);
  EXPECT_EQ(list->objects(0).oid(), "o1");
  EXPECT_EQ(list->objects(0).latest_version(), 2u);
  EXPECT_EQ(list->objects(0).size_bytes(), 200u);
  EXPECT_EQ(list->objects(0).name_sealed(), "name-v2");

  ASSERT_TRUE(this->cat_->ReportVersion(Report("o1", 5, 500, "alice", "name-v5")).ok());
  list = this->cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects_size(), 1);
  EXPECT_EQ(list->objects(0).latest_version(), 5u);
  EXPECT_EQ(list->objects(0).size_bytes(), 500u);
  EXPECT_EQ(list->objects(0).name_sealed(), "name-v5");

  ASSERT_TRUE(this->cat_->ReportVersion(Report("o1", 3, 300, "alice", "name-v3")).ok());
  list = this->cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->objects(0).latest_version(), 5u);
  EXPECT_EQ(list->objects(0).size_bytes(), 500u);
  EXPECT_EQ(list->objects(0).name_sealed(), "name-v5");
}

TYPED_TEST_P(CatalogSuite, ListObjectsOnlyTheSubscribersOwn) {
  ASSERT_TRUE(this->cat_->ReportVersion(Report("a1", 1, 10, "alice", "n-a1")).ok());
  ASSERT_TRUE(this->cat_->ReportVersion(Report("b1", 1, 20, "bob", "n-b1")).ok());
  ASSERT_TRUE(this->cat_->ReportVersion(Report("a2", 4, 30, "alice", "n-a2")).ok());
  auto alice = this->cat_->ListObjects("alice");
  ASSERT_TRUE(alice.ok());
  ASSERT_EQ(alice->objects_size(), 2);
  EXPECT_EQ(alice->objects(0).oid(), "a1");
  EXPECT_EQ(alice->objects(1).oid(), "a2");
  EXPECT_EQ(alice->objects(1).latest_version(), 4u);
  auto bob = this->cat_->ListObjects("bob");
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->objects_size(), 1);
  EXPECT_EQ(bob->objects(0).oid(), "b1");
  EXPECT_EQ(bob->objects(0).size_bytes(), 20u);
  auto carol = this->cat_->ListObjects("carol");
  ASSERT_TRUE(carol.ok());
  EXPECT_EQ(carol->objects_size(), 0);
}

TYPED_TEST_P(CatalogSuite, ObjectsSurviveReopen) {
  ASSERT_TRUE(this->cat_->ReportVersion(Report("o", 7, 70, "alice", "n7")).ok());
  this->Reopen();
  ASSERT_TRUE(this->cat_->ReportVersion(Report("o", 6, 60, "alice", "n6")).ok());
  auto list = this->cat_->ListObjects("alice");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects_size(), 1);
  EXPECT_EQ(list->objects(0).latest_version(), 7u);
  EXPECT_EQ(list->objects(0).size_bytes(), 70u);
  EXPECT_EQ(list->objects(0).name_sealed(), "n7");
}

// ---- cluster map ------------------------------------------------------------

TYPED_TEST_P(CatalogSuite, PopUpAndDownBumpEpochOnlyOnChange) {
  const uint64_t e0 = this->Epoch();
  EXPECT_GE(e0, 1u);  // opening is itself a map change
  ASSERT_TRUE(this->cat_->PopUp(1, "eu-west", "10.0.0.1:7000").ok());
  EXPECT_EQ(this->Epoch(), e0 + 1);
  ASSERT_TRUE(this->cat_->PopUp(1, "eu-west", "10.0.0.1:7000").ok());  // no change
  EXPECT_EQ(this->Epoch(), e0 + 1);
  ASSERT_TRUE(this->cat_->PopUp(2, "eu-east", "10.0.0.2:7000").ok());
  EXPECT_EQ(this->Epoch(), e0 + 2);

  pb::ClusterMap m = this->Map();
  ASSERT_EQ(m.pops_size(), 2);
  EXPECT_EQ(m.pops(0).pop_id(), 1u);
  EXPECT_EQ(m.pops(0).region(), "eu-west");
  EXPECT_EQ(m.pops(0).addr(), "10.0.0.1:7000");
  EXPECT_TRUE(m.pops(0).up());
  EXPECT_EQ(m.pops(1).pop_id(), 2u);
  EXPECT_TRUE(m.pops(1).up());

  ASSERT_TRUE(this->cat_->PopDown(1).ok());
  EXPECT_EQ(this->Epoch(), e0 + 3);
  ASSERT_TRUE(this->cat_->PopDown(1).ok());  // already down
  EXPECT_EQ(this->Epoch(), e0 + 3);
  ASSERT_TRUE(this->cat_->PopDown(99).ok());  // never seen
  EXPECT_EQ(this->Epoch(), e0 + 3);
  m = this->Map();
  ASSERT_EQ(m.pops_size(), 2);
  EXPECT_FALSE(m.pops(0).up());
  EXPECT_TRUE(m.pops(1).up());

  // Back up at the same address: a change.
  ASSERT_TRUE(this->cat_->PopUp(1, "eu-west", "10.0.0.1:7000").ok());
  EXPECT_EQ(this->Epoch(), e0 + 4);
  EXPECT_TRUE(this->Map().pops(0).up());
}

TYPED_TEST_P(CatalogSuite, PopUpAtNewAddressIsAChange) {
  ASSERT_TRUE(this->cat_->PopUp(3, "r", "a:1").ok());
  const uint64_t e = this->Epoch();
  ASSERT_TRUE(this->cat_->PopUp(3, "r", "b:2").ok());
  EXPECT_EQ(this->Epoch(), e + 1);
  ASSERT_TRUE(this->cat_->PopUp(3, "r2", "b:2").ok());
  EXPECT_EQ(this->Epoch(), e + 2);
  pb::ClusterMap m = this->Map();
  ASSERT_EQ(m.pops_size(), 1);
  EXPECT_EQ(m.pops(0).addr(), "b:2");
  EXPECT_EQ(m.pops(0).region(), "r2");
  EXPECT_TRUE(m.pops(0).up());
}

TYPED_TEST_P(CatalogSuite, EpochNeverGoesBackAcrossReopen) {
  ASSERT_TRUE(this->cat_->PopUp(1, "r", "a:1").ok());
  ASSERT_TRUE(this->cat_->PopUp(2, "r", "a:2").ok());
  ASSERT_TRUE(this->cat_->PopDown(2).ok());
  uint64_t last = this->Epoch();
  for (int round = 0; round < 3; round++) {
    SCOPED_TRACE("reopen " + std::to_string(round));
    this->Reopen();
    pb::ClusterMap m = this->Map();
    EXPECT_GT(m.epoch(), last);
    // Every POP is down until it says hello again; the map is remembered.
    ASSERT_EQ(m.pops_size(), 2);
    for (auto& p : m.pops()) EXPECT_FALSE(p.up()) << p.pop_id();
    EXPECT_EQ(m.pops(0).addr(), "a:1");
    last = m.epoch();
    ASSERT_TRUE(this->cat_->PopUp(1, "r", "a:1").ok());
    EXPECT_EQ(this->Epoch(), last + 1);
    last = this->Epoch();
  }
}

TYPED_TEST_P(CatalogSuite, GetPopGivesRegionAndState) {
  auto& cat = this->cat_;
  EXPECT_EQ(cat->GetPop(4).status().code(), Code::kNotFound);
  ASSERT_TRUE(cat->PopUp(4, "eu-north", "10.0.0.4:7000").ok());
  auto p = cat->GetPop(4);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->region, "eu-north");
  EXPECT_EQ(p->addr, "10.0.0.4:7000");
  EXPECT_TRUE(p->up);
  ASSERT_TRUE(cat->PopDown(4).ok());
  EXPECT_FALSE(cat->GetPop(4)->up);
  this->Reopen();
  EXPECT_EQ(cat->GetPop(4)->region, "eu-north");
}

TYPED_TEST_P(CatalogSuite, VersionsAreKeptWithSizesTimesAndChunks) {
  auto& cat = this->cat_;
  auto v1 = Report("o", 1, 100, "alice", "n1");
  v1.add_chunk_ids("c1");
  v1.add_chunk_ids("c2");
  v1.add_chunk_ids("c1");  // a chunk repeated within a version counts once
  auto v2 = Report("o", 2, 150, "alice", "n2");
  v2.add_chunk_ids("c2");
  v2.add_chunk_ids("c3");
  ASSERT_TRUE(cat->ReportVersion(v2, 2000).ok());
  ASSERT_TRUE(cat->ReportVersion(v1, 1000).ok());
  ASSERT_TRUE(cat->ReportVersion(v1, 5000).ok());  // a re-report changes nothing
  this->Reopen();
  auto vs = cat->ListVersions(B("o"), 100);
  ASSERT_TRUE(vs.ok()) << vs.status().ToString();
  ASSERT_EQ(vs->size(), 2u);
  EXPECT_EQ((*vs)[0].version, 1u);
  EXPECT_EQ((*vs)[0].size_bytes, 100u);
  EXPECT_EQ((*vs)[0].created_ms, 1000);
  EXPECT_FALSE((*vs)[0].collected);
  ASSERT_EQ((*vs)[0].chunk_ids.size(), 2u);
  EXPECT_EQ(S((*vs)[0].chunk_ids[0]), "c1");
  EXPECT_EQ(S((*vs)[0].chunk_ids[1]), "c2");
  EXPECT_EQ((*vs)[1].version, 2u);
  EXPECT_EQ((*vs)[1].created_ms, 2000);
  // The bound on rows is enforced.
  EXPECT_EQ(cat->ListVersions(B("o"), 1).status().code(), Code::kResourceExhausted);
  auto subs = cat->ListSubscribers(10);
  ASSERT_TRUE(subs.ok());
  ASSERT_EQ(subs->size(), 1u);
  EXPECT_EQ((*subs)[0], "alice");
}

TYPED_TEST_P(CatalogSuite, CollectingFreesOnlyUnreferencedChunks) {
  auto& cat = this->cat_;
  auto v1 = Report("o", 1, 100, "alice", "n1");
  v1.add_chunk_ids("shared");
  v1.add_chunk_ids("only1");
  auto v2 = Report("o", 2, 150, "alice", "n2");
  v2.add_chunk_ids("shared");
  v2.add_chunk_ids("only2");
  auto other = Report("p", 1, 70, "alice", "m1");
  other.add_chunk_ids("only1");  // dedup across objects: still referenced
  other.add_chunk_ids("onlyp");
  ASSERT_TRUE(cat->ReportVersion(v1, 1).ok());
  ASSERT_TRUE(cat->ReportVersion(v2, 2).ok());
  ASSERT_TRUE(cat->ReportVersion(other, 3).ok());

  auto c = cat->CollectVersions(B("o"), {1, 7});  // 7 is unknown: skipped
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->versions, std::vector<uint64_t>{1});
  EXPECT_EQ(c->bytes, 100u);
  EXPECT_TRUE(c->chunks_freed.empty());  // "shared" and "only1" are still referenced
  auto again = cat->CollectVersions(B("o"), {1});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->versions.empty());
  EXPECT_EQ(again->bytes, 0u);

  c = cat->CollectVersions(B("p"), {1});
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->chunks_freed.size(), 2u);  // only1 (v1 already gone) and onlyp
  std::set<std::string> freed;
  for (auto& id : c->chunks_freed) freed.insert(S(id));
  EXPECT_EQ(freed, (std::set<std::string>{"only1", "onlyp"}));

  c = cat->CollectVersions(B("o"), {2});
  ASSERT_TRUE(c.ok());
  freed.clear();
  for (auto& id : c->chunks_freed) freed.insert(S(id));
  EXPECT_EQ(freed, (std::set<std::string>{"shared", "only2"}));
  auto vs = cat->ListVersions(B("o"), 10);
  ASSERT_TRUE(vs.ok());
  ASSERT_EQ(vs->size(), 2u);
  EXPECT_TRUE((*vs)[0].collected);
  EXPECT_TRUE((*vs)[1].collected);
}

TYPED_TEST_P(CatalogSuite, RetentionPolicyPersistsAndApplies) {
  auto& cat = this->cat_;
  auto def = cat->GetRetention("alice");
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(*def, RetentionPolicy());
  RetentionPolicy p;
  p.keep_last = 2;
  p.daily_days = 0;
  p.weekly_weeks = 0;
  ASSERT_TRUE(cat->SetRetention("alice", p).ok());
  RetentionPolicy zero = p;
  zero.keep_last = 0;
  EXPECT_EQ(cat->SetRetention("alice", zero).code(), Code::kInvalidArgument);
  this->Reopen();
  EXPECT_EQ(cat->GetRetention("alice").value(), p);
  for (uint64_t v = 1; v <= 5; v++) {
    auto r = Report("o", v, 10 * v, "alice", "n");
    r.add_chunk_ids("c" + std::to_string(v));
    ASSERT_TRUE(cat->ReportVersion(r, int64_t(v)).ok());
  }
  ASSERT_TRUE(cat->ReportVersion(Report("b", 1, 5, "bob", "n"), 1).ok());
  ASSERT_TRUE(cat->ReportVersion(Report("b", 2, 5, "bob", "n"), 2).ok());
  auto done = cat->ApplyRetention("alice", 100, 1000);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  ASSERT_EQ(done->size(), 1u);
  EXPECT_EQ((*done)[0].versions, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ((*done)[0].bytes, 60u);
  EXPECT_EQ((*done)[0].chunks_freed.size(), 3u);
  auto vs = cat->ListVersions(B("o"), 10);
  ASSERT_TRUE(vs.ok());
  for (auto& v : *vs) EXPECT_EQ(v.collected, v.version <= 3) << v.version;
  // Idempotent; other volumes untouched.
  EXPECT_TRUE(cat->ApplyRetention("alice", 100, 1000)->empty());
  auto bob = cat->ListVersions(B("b"), 10);
  ASSERT_TRUE(bob.ok());
  for (auto& v : *bob) EXPECT_FALSE(v.collected);
}

// Automatic retention touches only volumes listed here: those whose policy
// was set explicitly (a volume without one keeps every version).
TYPED_TEST_P(CatalogSuite, RetentionVolumesAreOnlyThoseWithASetPolicy) {
  auto& cat = this->cat_;
  ASSERT_TRUE(cat->ReportVersion(Report("a", 1, 5, "alice", "n"), 1).ok());
  EXPECT_TRUE(cat->ListRetentionVolumes(10).value().empty());
  RetentionPolicy p;
  p.keep_last = 3;
  for (const char* v : {"carol", "bob", "dave"}) ASSERT_TRUE(cat->SetRetention(v, p).ok());
  ASSERT_TRUE(cat->SetRetention("bob", p).ok());  // set again: listed once
  this->Reopen();
  EXPECT_EQ(cat->ListRetentionVolumes(10).value(),
            (std::vector<std::string>{"bob", "carol", "dave"}));
  EXPECT_EQ(cat->ListRetentionVolumes(2).value(), (std::vector<std::string>{"bob", "carol"}));
}

// ---- GC queue, backups, cold tier (issue 7) ----------------------------------

inline std::string OidFor(uint32_t primary, uint32_t backup, uint32_t counter) {
  Bytes b = Oid{primary, backup, 9, counter}.Encode();
  return std::string(b.begin(), b.end());
}

TYPED_TEST_P(CatalogSuite, CollectingQueuesGcTasksForEveryHolder) {
  auto& cat = this->cat_;
  std::string o = OidFor(2, 3, 1);
  for (uint64_t v = 1; v <= 3; v++) {
    auto r = Report(o, v, 100 * v, "alice", "n");
    r.add_chunk_ids("shared");
    r.add_chunk_ids("c" + std::to_string(v));
    ASSERT_TRUE(cat->ReportVersion(r, int64_t(v)).ok());
  }
  auto c = cat->CollectVersions(B(o), {1, 2});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  // One task for the primary (2), the backup (3) and the DC's backup store.
  for (uint32_t holder : {2u, 3u, Catalog::kGcBackupStore}) {
    auto t = cat->GcTasks(holder, 10);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_EQ(t->size(), 1u) << holder;
    EXPECT_EQ((*t)[0].oid, B(o));
    EXPECT_EQ((*t)[0].subscriber, "alice");
    EXPECT_EQ((*t)[0].versions, (std::vector<uint64_t>{1, 2}));
    std::set<std::string> chunks;
    for (auto& id : (*t)[0].chunk_ids) chunks.insert(S(id));
    EXPECT_EQ(chunks, (std::set<std::string>{"c1", "c2"}));  // "shared" is in v3
  }
  EXPECT_TRUE(cat->GcTasks(4, 10)->empty());
  auto stats = cat->GetGcStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->tasks_pending, 3u);
  EXPECT_EQ(stats->versions_collected, 2u);
  EXPECT_EQ(stats->version_bytes_collected, 300u);

  // The queue survives a restart (crash-safe) ...
  this->Reopen();
  auto t2 = cat->GcTasks(2, 10);
  ASSERT_TRUE(t2.ok());
  ASSERT_EQ(t2->size(), 1u);
  // ... and an acknowledgement counts once, only from its holder.
  Catalog::GcReclaimed r{2, 2, 2000, 12, 700};
  EXPECT_FALSE(cat->GcAck((*t2)[0].task_id, 3, r).value());
  EXPECT_TRUE(cat->GcAck((*t2)[0].task_id, 2, r).value());
  EXPECT_FALSE(cat->GcAck((*t2)[0].task_id, 2, r).value());
  EXPECT_TRUE(cat->GcTasks(2, 10)->empty());
  stats = cat->GetGcStats();
  EXPECT_EQ(stats->tasks_pending, 2u);
  EXPECT_EQ(stats->reclaimed.versions, 2u);
  EXPECT_EQ(stats->reclaimed.chunks, 2u);
  EXPECT_EQ(stats->reclaimed.chunk_bytes, 2000u);
  EXPECT_EQ(stats->reclaimed.fragments, 12u);
  EXPECT_EQ(stats->reclaimed.fragment_bytes, 700u);
}

TYPED_TEST_P(CatalogSuite, GcTasksLeaveOutChunksReferencedAgain) {
  auto& cat = this->cat_;
  std::string o = OidFor(2, 3, 1), p = OidFor(2, 3, 2);
  auto v1 = Report(o, 1, 10, "alice", "n");
  v1.add_chunk_ids("a");
  v1.add_chunk_ids("b");
  ASSERT_TRUE(cat->ReportVersion(v1, 1).ok());
  ASSERT_TRUE(cat->ReportVersion(Report(o, 2, 10, "alice", "n"), 2).ok());
  ASSERT_TRUE(cat->CollectVersions(B(o), {1}).ok());
  // After the collection, another object of the user stores chunk "a" again
  // (chunk ids dedup per user): its task must not drop it any more.
  auto q = Report(p, 1, 10, "alice", "m");
  q.add_chunk_ids("a");
  ASSERT_TRUE(cat->ReportVersion(q, 3).ok());
  auto t = cat->GcTasks(2, 10);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 1u);
  ASSERT_EQ((*t)[0].chunk_ids.size(), 1u);
  EXPECT_EQ(S((*t)[0].chunk_ids[0]), "b");
}

TYPED_TEST_P(CatalogSuite, GcTasksAreBoundedAndOldestFirst) {
  auto& cat = this->cat_;
  for (uint32_t i = 1; i <= Catalog::kGcTasksMax + 6; i++) {
    std::string o = OidFor(5, 6, i);
    ASSERT_TRUE(cat->ReportVersion(Report(o, 1, 1, "alice", "n"), 1).ok());
    ASSERT_TRUE(cat->ReportVersion(Report(o, 2, 1, "alice", "n"), 2).ok());
    ASSERT_TRUE(cat->CollectVersions(B(o), {1}).ok());
  }
  auto t = cat->GcTasks(5, 1000);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), Catalog::kGcTasksMax);
  for (size_t i = 1; i < t->size(); i++) EXPECT_LT((*t)[i - 1].task_id, (*t)[i].task_id);
  EXPECT_EQ((*t)[0].oid, B(OidFor(5, 6, 1)));
  EXPECT_EQ(cat->GcTasks(5, 3)->size(), 3u);
}

TYPED_TEST_P(CatalogSuite, BackupPolicyQueuesVersions) {
  auto& cat = this->cat_;
  EXPECT_EQ(cat->GetBackupMode("alice").value(), Catalog::BackupMode::kNone);
  ASSERT_TRUE(cat->ReportVersion(Report("o", 1, 1, "alice", "n"), 1).ok());
  EXPECT_TRUE(cat->PendingBackups(10)->empty());  // none: nothing queued
  ASSERT_TRUE(cat->SetBackupMode("alice", Catalog::BackupMode::kLatest).ok());
  ASSERT_TRUE(cat->SetBackupMode("bob", Catalog::BackupMode::kAll).ok());
  this->Reopen();
  EXPECT_EQ(cat->GetBackupMode("alice").value(), Catalog::BackupMode::kLatest);
  auto v2 = Report("o", 2, 1, "alice", "n");
  v2.add_chunk_ids("x");
  ASSERT_TRUE(cat->ReportVersion(v2, 2).ok());
  ASSERT_TRUE(cat->ReportVersion(Report("o", 3, 1, "alice", "n"), 3).ok());  // latest wins
  ASSERT_TRUE(cat->ReportVersion(Report("b", 1, 1, "bob", "n"), 4).ok());
  ASSERT_TRUE(cat->ReportVersion(Report("b", 2, 1, "bob", "n"), 5).ok());
  auto pending = cat->PendingBackups(10);
  ASSERT_TRUE(pending.ok());
  std::vector<std::pair<std::string, uint64_t>> got;
  for (auto& p : *pending) got.push_back({S(p.oid), p.version});
  EXPECT_EQ(got, (std::vector<std::pair<std::string, uint64_t>>{{"o", 3}, {"b", 1}, {"b", 2}}));
  EXPECT_TRUE(cat->BackupDone(B("b"), 1)->empty());  // kAll: nothing superseded
  EXPECT_TRUE(cat->BackupDone(B("b"), 2)->empty());
  EXPECT_EQ(cat->BackedUpVersions(B("b")).value(), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(cat->HasBackup(B("b"), 2).value());
  EXPECT_FALSE(cat->HasBackup(B("o"), 3).value());
  EXPECT_TRUE(cat->BackupDone(B("o"), 3)->empty());
  auto v4 = Report("o", 4, 1, "alice", "n");
  v4.add_chunk_ids("x");
  ASSERT_TRUE(cat->ReportVersion(v4, 6).ok());
  EXPECT_FALSE(cat->BackupReferencesChunk(B("x")).value());  // v4 not copied yet
  EXPECT_EQ(cat->BackupDone(B("o"), 4).value(), (std::vector<uint64_t>{3}));  // kLatest
  EXPECT_TRUE(cat->BackupReferencesChunk(B("x")).value());
  ASSERT_TRUE(cat->ForgetBackup(B("o"), 3).ok());
  EXPECT_EQ(cat->BackedUpVersions(B("o")).value(), (std::vector<uint64_t>{4}));
  EXPECT_TRUE(cat->PendingBackups(10)->empty());
  // Collected versions stop referencing their chunks.
  ASSERT_TRUE(cat->ReportVersion(Report("o", 5, 1, "alice", "n"), 7).ok());
  ASSERT_TRUE(cat->CollectVersions(B("o"), {4}).ok());
  EXPECT_FALSE(cat->BackupReferencesChunk(B("x")).value());
}

TYPED_TEST_P(CatalogSuite, ColdMarksPersist) {
  auto& cat = this->cat_;
  EXPECT_FALSE(cat->IsCold(B("o")).value());
  ASSERT_TRUE(cat->SetCold(B("o"), true, 5).ok());
  ASSERT_TRUE(cat->SetCold(B("o"), true, 6).ok());  // idempotent
  this->Reopen();
  EXPECT_TRUE(cat->IsCold(B("o")).value());
  ASSERT_TRUE(cat->SetCold(B("o"), false, 7).ok());
  EXPECT_FALSE(cat->IsCold(B("o")).value());
  ASSERT_TRUE(cat->SetCold(B("o"), false, 8).ok());
}

TYPED_TEST_P(CatalogSuite, GatewaysKeepLabelsAndCurrentState) {
  auto& cat = this->cat_;
  Catalog::GatewayRecord g;
  g.gateway_id = 17;
  g.subscriber = "alice";
  g.region = "eu-west";
  g.fd_labels = "building=7,power=a";
  g.pop_id = 1;
  g.capacity_bytes = 1000;
  g.free_bytes = 600;
  g.last_seen_ms = 10;
  g.state = "connected";
  ASSERT_TRUE(cat->UpsertGateway(g).ok());
  // A POP summary knows only the current state: labels stay.
  Catalog::GatewayRecord seen;
  seen.gateway_id = 17;
  seen.pop_id = 2;
  seen.free_bytes = 500;
  seen.last_seen_ms = 20;
  seen.state = "lost";
  ASSERT_TRUE(cat->UpsertGateway(seen).ok());
  this->Reopen();
  auto r = cat->GetGateway(17);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->subscriber, "alice");
  EXPECT_EQ(r->region, "eu-west");
  EXPECT_EQ(r->fd_labels, "building=7,power=a");
  EXPECT_EQ(r->capacity_bytes, 1000u);
  EXPECT_EQ(r->pop_id, 2u);
  EXPECT_EQ(r->free_bytes, 500u);
  EXPECT_EQ(r->last_seen_ms, 20);
  EXPECT_EQ(r->state, "lost");
  EXPECT_EQ(cat->GetGateway(18).status().code(), Code::kNotFound);
  Catalog::GatewayRecord other = g;
  other.gateway_id = 18;
  other.pop_id = 1;
  ASSERT_TRUE(cat->UpsertGateway(other).ok());
  auto at1 = cat->ListGateways(1, 10);
  ASSERT_TRUE(at1.ok());
  ASSERT_EQ(at1->size(), 1u);
  EXPECT_EQ((*at1)[0].gateway_id, 18u);
  EXPECT_EQ(cat->ListGateways(0, 10)->size(), 2u);
}

TYPED_TEST_P(CatalogSuite, SummariesAnswerTimeRanges) {
  auto& cat = this->cat_;
  for (int64_t t = 1000; t <= 5000; t += 1000) {
    for (uint32_t pop = 1; pop <= 2; pop++) {
      pb::MonitorPopSummary s;
      s.set_pop_id(pop);
      s.set_placement_queue(uint64_t(t / 1000 + pop * 100));
      ASSERT_TRUE(cat->AddPopSummary(pop, t, s).ok());
    }
  }
  auto r = cat->PopSummaries(2, 2000, 4000, 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].t_ms, 2000);
  EXPECT_EQ((*r)[0].summary.placement_queue(), 202u);
  EXPECT_EQ((*r)[2].t_ms, 4000);
  auto all = cat->PopSummaries(0, 0, 10000, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 10u);
  EXPECT_EQ(cat->PopSummaries(0, 0, 10000, 4)->size(), 4u);  // limit
  auto pruned = cat->PruneSummaries(3000);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 4u);
  this->Reopen();
  EXPECT_EQ(cat->PopSummaries(0, 0, 10000, 100)->size(), 6u);
}

TYPED_TEST_P(CatalogSuite, AdminQueriesCountWhatWasReported) {
  auto& cat = this->cat_;
  ASSERT_TRUE(cat->ClaimName("alice", B("k1"), B("o1")).ok());
  ASSERT_TRUE(cat->ClaimName("alice", B("k2"), B("o1")).ok());
  ASSERT_TRUE(cat->ReportVersion(Report("o1", 3, 300, "alice", "n")).ok());
  ASSERT_TRUE(cat->ReportVersion(Report("o2", 1, 50, "alice", "n")).ok());
  ASSERT_TRUE(cat->ReportVersion(Report("o3", 1, 500, "bob", "n")).ok());
  auto usage = cat->UsageBySubscriber(10);
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ((*usage)[0].subscriber, "bob");
  EXPECT_EQ((*usage)[0].bytes, 500u);
  EXPECT_EQ((*usage)[1].subscriber, "alice");
  EXPECT_EQ((*usage)[1].objects, 2u);
  EXPECT_EQ((*usage)[1].bytes, 350u);
  auto rec = cat->FindObject(B("o1"));
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->names, 2u);
  EXPECT_EQ(rec->latest_version, 3u);
  EXPECT_EQ(cat->FindObject(B("zz")).status().code(), Code::kNotFound);
  auto t = cat->CountTotals();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->objects, 3u);
  EXPECT_EQ(t->bytes, 850u);
  EXPECT_EQ(t->subscribers, 2u);
  EXPECT_EQ(t->names, 2u);
}

TYPED_TEST_P(CatalogSuite, ObjectRolesComeFromTheOid) {
  Oid o{3, 5, 77, 1};
  Bytes enc = o.Encode();
  auto r = Report(S(enc), 1, 10, "alice", "n");
  ASSERT_TRUE(this->cat_->ReportVersion(r, 1).ok());
  auto rec = this->cat_->FindObject(enc);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->primary_pop, 3u);
  EXPECT_EQ(rec->backup_pop, 5u);
}

TYPED_TEST_P(CatalogSuite, ReportBatchesAreAllOrNothing) {
  auto& cat = this->cat_;
  std::vector<pb::VersionInfo> batch;
  for (int i = 0; i < 5; i++) batch.push_back(Report("b" + std::to_string(i), 1, 10, "carol", "n"));
  batch.push_back(Report("b0", 2, 20, "carol", "n"));  // a later version in the same batch
  ASSERT_TRUE(cat->ReportVersions(batch, 7).ok());
  auto list = cat->ListObjects("carol");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects_size(), 5);
  EXPECT_EQ(list->objects(0).latest_version(), 2u);
  EXPECT_EQ(cat->ListVersions(B("b0"), 10)->size(), 2u);
  std::vector<pb::VersionInfo> huge(Catalog::kReportBatchMax + 1, Report("z", 1, 1, "dave", "n"));
  EXPECT_EQ(cat->ReportVersions(huge, 8).code(), Code::kInvalidArgument);
  EXPECT_EQ(cat->ListObjects("dave")->objects_size(), 0);
}

// A batch (the DC's group commit) ends as the same reports applied one by
// one: a re-report in the batch changes nothing, the object shows its highest
// version, a chunk referenced several times in the batch is counted each time.
TYPED_TEST_P(CatalogSuite, ReportBatchEqualsReportsOneByOne) {
  auto& cat = this->cat_;
  auto r = [](const std::string& oid, uint64_t v, uint64_t size,
              std::vector<std::string> chunks) {
    auto info = Report(oid, v, size, "erin", "n" + std::to_string(v));
    for (auto& c : chunks) info.add_chunk_ids(c);
    return info;
  };
  std::vector<pb::VersionInfo> batch = {r("x", 1, 10, {"c1", "c2"}), r("y", 1, 20, {"c2"}),
                                        r("x", 1, 99, {"c9"}),  // re-report: ignored
                                        r("x", 3, 30, {"c3"}), r("x", 2, 25, {"c2"})};
  ASSERT_TRUE(cat->ReportVersions(batch, 7).ok());
  ASSERT_TRUE(cat->ReportVersions({r("y", 1, 21, {"c4"})}, 8).ok());  // re-report, next batch
  auto x = cat->FindObject(B("x"));
  ASSERT_TRUE(x.ok()) << x.status().ToString();
  EXPECT_EQ(x->latest_version, 3u);
  EXPECT_EQ(x->size_bytes, 30u);
  auto vs = cat->ListVersions(B("x"), 10);
  ASSERT_TRUE(vs.ok());
  ASSERT_EQ(vs->size(), 3u);
  EXPECT_EQ((*vs)[0].size_bytes, 10u);
  ASSERT_EQ((*vs)[0].chunk_ids.size(), 2u);  // not c9
  EXPECT_EQ(S((*vs)[0].chunk_ids[1]), "c2");
  EXPECT_EQ((*vs)[1].created_ms, 7);
  auto y = cat->ListVersions(B("y"), 10);
  ASSERT_TRUE(y.ok());
  ASSERT_EQ(y->size(), 1u);
  EXPECT_EQ((*y)[0].size_bytes, 20u);
  // c2 has three references (x v1, x v2, y v1): freed with the last only.
  auto c = cat->CollectVersions(B("x"), {1, 2});
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->chunks_freed.size(), 1u);
  EXPECT_EQ(S(c->chunks_freed[0]), "c1");
  c = cat->CollectVersions(B("y"), {1});
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->chunks_freed.size(), 1u);
  EXPECT_EQ(S(c->chunks_freed[0]), "c2");
}

// Batches larger than one statement's rows (split into several) lose nothing.
TYPED_TEST_P(CatalogSuite, LargeReportBatchesKeepEveryReport) {
  auto& cat = this->cat_;
  std::vector<pb::VersionInfo> batch;
  for (int i = 0; i < 301; i++) {
    auto info = Report("big" + std::to_string(i), 1, uint64_t(i), "frank", "n");
    info.add_chunk_ids("shared");
    info.add_chunk_ids("own" + std::to_string(i));
    batch.push_back(info);
  }
  ASSERT_TRUE(cat->ReportVersions(batch, 1).ok());
  auto list = cat->ListObjects("frank");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->objects_size(), 301);
  for (int i = 0; i < 301; i++) EXPECT_EQ(list->objects(i).size_bytes(), uint64_t(i));
  auto vs = cat->ListVersions(B("big300"), 10);
  ASSERT_TRUE(vs.ok());
  ASSERT_EQ(vs->size(), 1u);
  EXPECT_EQ(vs->at(0).chunk_ids.size(), 2u);
  // "shared" has 301 references: collecting 300 of them frees it not.
  for (int i = 0; i < 300; i++) {
    auto c = cat->CollectVersions(B("big" + std::to_string(i)), {1});
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->chunks_freed.size(), 1u);
    EXPECT_EQ(S(c->chunks_freed[0]), "own" + std::to_string(i));
  }
  auto last = cat->CollectVersions(B("big300"), {1});
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->chunks_freed.size(), 2u);
}

// Read-only sharing (issue 4): keys on first publish, records bounded and
// scoped to the owner's own objects, listed for the grantee, removed.
TYPED_TEST_P(CatalogSuite, ShareKeysAndRecordsAreBoundedAndScoped) {
  Catalog* cat = this->cat_.get();
  const Bytes kb(32, 0xb0), kc(32, 0xc0), oid = B("0123456789abcdef"), other = B("fedcba9876543210");
  // Trust on first publish: same key again is a no-op, another is refused.
  ASSERT_TRUE(cat->PublishShareKey("bob", kb, 1).value());
  EXPECT_FALSE(cat->PublishShareKey("bob", kb, 2).value());
  EXPECT_EQ(cat->PublishShareKey("bob", kc, 3).status().code(), Code::kPermissionDenied);
  EXPECT_EQ(cat->PublishShareKey("bob", Bytes(31, 1), 3).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cat->GetShareKey("bob").value(), kb);
  EXPECT_EQ(cat->GetShareKey("carol").status().code(), Code::kNotFound);
  ASSERT_TRUE(cat->ClaimName("alice", B("name-1"), oid).ok());
  ASSERT_TRUE(cat->ClaimName("carol", B("name-1"), other).ok());
  // Not alice's object; grantee without a key; alice herself; bad sizes.
  EXPECT_EQ(cat->PutShare("alice", other, "bob", B("g"), 5).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(cat->PutShare("alice", oid, "carol", B("g"), 5).status().code(), Code::kNotFound);
  EXPECT_EQ(cat->PutShare("alice", oid, "alice", B("g"), 5).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(cat->PutShare("alice", oid, "bob", Bytes(), 5).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(cat->PutShare("alice", oid, "bob", Bytes(kShareGrantBytesMax + 1, 1), 5).status().code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(cat->HasShare("alice", oid, "bob").value());
  ASSERT_TRUE(cat->PutShare("alice", oid, "bob", Bytes(kShareGrantBytesMax, 1), 5).value());
  EXPECT_TRUE(cat->HasShare("alice", oid, "bob").value());
  EXPECT_FALSE(cat->HasShare("alice", oid, "carol").value());
  EXPECT_FALSE(cat->HasShare("carol", oid, "bob").value());
  // Replacing the grant keeps one record.
  ASSERT_TRUE(cat->PutShare("alice", oid, "bob", B("grant-2"), 6).value());
  auto list = cat->ListShares("bob");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->shares_size(), 1);
  EXPECT_EQ(list->shares(0).owner(), "alice");
  EXPECT_EQ(list->shares(0).oid(), S(oid));
  EXPECT_EQ(list->shares(0).grant_sealed(), "grant-2");
  EXPECT_EQ(cat->ListShares("carol")->shares_size(), 0);
  // Survives a restart.
  this->Reopen();
  cat = this->cat_.get();
  EXPECT_TRUE(cat->HasShare("alice", oid, "bob").value());
  // Removed: no longer there; removing again reports nothing removed.
  EXPECT_TRUE(cat->RemoveShare("alice", oid, "bob").value());
  EXPECT_FALSE(cat->RemoveShare("alice", oid, "bob").value());
  EXPECT_FALSE(cat->HasShare("alice", oid, "bob").value());
  EXPECT_EQ(cat->ListShares("bob")->shares_size(), 0);
  // At most kSharesPerObjectMax grantees per object.
  for (size_t i = 0; i < kSharesPerObjectMax; i++) {
    const std::string g = "g" + std::to_string(i);
    ASSERT_TRUE(cat->PublishShareKey(g, kb, 1).ok());
    ASSERT_TRUE(cat->PutShare("alice", oid, g, B("x"), int64_t(i)).ok());
  }
  ASSERT_TRUE(cat->PublishShareKey("late", kb, 1).ok());
  EXPECT_EQ(cat->PutShare("alice", oid, "late", B("x"), 99).status().code(),
            Code::kResourceExhausted);
  EXPECT_TRUE(cat->PutShare("alice", oid, "g0", B("y"), 99).ok());  // a replacement still is
  // The operator forgets a key: a new one may be published.
  EXPECT_TRUE(cat->ForgetShareKey("bob").value());
  EXPECT_TRUE(cat->PublishShareKey("bob", kc, 7).value());
  EXPECT_EQ(cat->GetShareKey("bob").value(), kc);
}

// At most kSharesPerGranteeMax objects shared with one subscriber.
TYPED_TEST_P(CatalogSuite, SharesPerGranteeAreBounded) {
  Catalog* cat = this->cat_.get();
  ASSERT_TRUE(cat->PublishShareKey("bob", Bytes(32, 1), 1).ok());
  for (size_t i = 0; i <= kSharesPerGranteeMax; i++) {
    char oid[17];
    snprintf(oid, sizeof oid, "%016zu", i);
    ASSERT_TRUE(cat->ClaimName("alice", B("n" + std::to_string(i)), B(oid)).ok());
    auto r = cat->PutShare("alice", B(oid), "bob", B("g"), int64_t(i));
    if (i < kSharesPerGranteeMax) {
      ASSERT_TRUE(r.ok()) << i << " " << r.status().ToString();
    } else {
      EXPECT_EQ(r.status().code(), Code::kResourceExhausted);
    }
  }
  EXPECT_EQ(size_t(cat->ListShares("bob")->shares_size()), kSharesPerGranteeMax);
}

REGISTER_TYPED_TEST_SUITE_P(
    CatalogSuite, ClaimNameIsIdempotent, NamesAreScopedBySubscriber,
    ClaimNameRefusesADcTierOidInUse, LookupUnknownNameIsNotFound, NamesSurviveReopen,
    ReportVersionKeepsTheNewest, ListObjectsOnlyTheSubscribersOwn, ObjectsSurviveReopen,
    PopUpAndDownBumpEpochOnlyOnChange, PopUpAtNewAddressIsAChange, EpochNeverGoesBackAcrossReopen,
    GetPopGivesRegionAndState, VersionsAreKeptWithSizesTimesAndChunks,
    CollectingFreesOnlyUnreferencedChunks, RetentionPolicyPersistsAndApplies,
    RetentionVolumesAreOnlyThoseWithASetPolicy, GatewaysKeepLabelsAndCurrentState,
    SummariesAnswerTimeRanges, AdminQueriesCountWhatWasReported, ObjectRolesComeFromTheOid,
    ReportBatchesAreAllOrNothing, CollectingQueuesGcTasksForEveryHolder,
    GcTasksLeaveOutChunksReferencedAgain, GcTasksAreBoundedAndOldestFirst,
    BackupPolicyQueuesVersions, ColdMarksPersist, ReportBatchEqualsReportsOneByOne,
    LargeReportBatchesKeepEveryReport, ShareKeysAndRecordsAreBoundedAndScoped,
    SharesPerGranteeAreBounded);

}  // namespace catalog_suite
}  // namespace mistore
