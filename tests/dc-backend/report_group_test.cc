// ReportGroup (dc-backend/report_group.h): the DC's group commit of POP
// version reports, without a loop: the bound, one commit per group, replies
// only after the commit, a whole-database failure failing every request, and
// a poison report failing only itself (the group retried singly, once).
#include "dc-backend/report_group.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mistore {
namespace {

pb::VersionInfo Info(int i) {
  pb::VersionInfo info;
  info.set_oid("oid" + std::to_string(i));
  info.set_version(1);
  return info;
}

struct Answers {
  std::vector<Status> got;
  ReportGroup::Done Slot() {
    size_t k = got.size();
    got.push_back(Internal("not answered"));
    return [this, k](const Status& st) { got[k] = st; };
  }
};

TEST(ReportGroup, OneCommitForTheGroupThenEveryReply) {
  ReportGroup g(8);
  Answers a;
  for (int i = 0; i < 3; i++) ASSERT_TRUE(g.Add(Info(i), a.Slot()).ok());
  int commits = 0;
  Status st = g.Flush([&](const std::vector<pb::VersionInfo>& infos) {
    commits++;
    EXPECT_EQ(infos.size(), 3u);
    EXPECT_EQ(infos[2].oid(), "oid2");
    for (auto& s : a.got)
      EXPECT_EQ(s.code(), Code::kInternal);  // nobody answered yet
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(commits, 1);
  for (auto& s : a.got) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(g.pending(), 0u);
}

TEST(ReportGroup, DatabaseDownFailsEveryRequestOfTheGroupWithOneCommit) {
  ReportGroup g(8);
  Answers a;
  for (int i = 0; i < 5; i++) ASSERT_TRUE(g.Add(Info(i), a.Slot()).ok());
  int commits = 0;
  Status st = g.Flush([&](const std::vector<pb::VersionInfo>&) {
    commits++;
    return Unavailable("cannot connect to PostgreSQL");
  });
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_EQ(commits, 1);  // no retry one by one against a database that is down
  ASSERT_EQ(a.got.size(), 5u);
  for (auto& s : a.got) EXPECT_EQ(s.code(), Code::kUnavailable);
  // The next group starts empty and commits on its own.
  Answers b;
  ASSERT_TRUE(g.Add(Info(9), b.Slot()).ok());
  size_t seen = 0;
  EXPECT_TRUE(g.Flush([&](const std::vector<pb::VersionInfo>& infos) {
                 seen = infos.size();
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(seen, 1u);
  EXPECT_TRUE(b.got[0].ok());
}

// Fake catalog: a transaction fails (IoError, as the SQL drivers report a
// constraint violation) when it holds the poison report; it records the oids
// it committed.
struct PoisonCatalog {
  std::string poison_oid;
  std::vector<size_t> sizes;  // one entry per commit call
  std::vector<std::string> committed;
  Status Commit(const std::vector<pb::VersionInfo>& infos) {
    sizes.push_back(infos.size());
    for (auto& i : infos)
      if (i.oid() == poison_oid) return IoError("sqlite: CHECK constraint failed");
    for (auto& i : infos) committed.push_back(i.oid());
    return Status::Ok();
  }
};

TEST(ReportGroup, PoisonReportFailsOnlyItselfAfterOneSingleRetry) {
  ReportGroup g(8);
  Answers a;
  for (int i = 0; i < 5; i++) ASSERT_TRUE(g.Add(Info(i), a.Slot()).ok());
  PoisonCatalog cat{"oid2"};
  Status st = g.Flush([&](const std::vector<pb::VersionInfo>& infos) {
    return cat.Commit(infos);
  });
  EXPECT_EQ(st.code(), Code::kIo);  // the poison report's error
  // One group commit, then each of the 5 reports alone: 6 calls, no more.
  EXPECT_EQ(cat.sizes, (std::vector<size_t>{5, 1, 1, 1, 1, 1}));
  EXPECT_EQ(cat.committed,
            (std::vector<std::string>{"oid0", "oid1", "oid3", "oid4"}));
  ASSERT_EQ(a.got.size(), 5u);
  for (int i = 0; i < 5; i++) {
    if (i == 2)
      EXPECT_EQ(a.got[i].code(), Code::kIo);
    else
      EXPECT_TRUE(a.got[i].ok()) << i << ": " << a.got[i].ToString();
  }
  // The POPs re-send: the poison report again fails only itself.
  Answers b;
  for (int i = 0; i < 3; i++) ASSERT_TRUE(g.Add(Info(i), b.Slot()).ok());
  cat.sizes.clear();
  EXPECT_EQ(g.Flush([&](const std::vector<pb::VersionInfo>& infos) {
                 return cat.Commit(infos);
               }).code(),
            Code::kIo);
  EXPECT_EQ(cat.sizes, (std::vector<size_t>{3, 1, 1, 1}));
  EXPECT_TRUE(b.got[0].ok());
  EXPECT_TRUE(b.got[1].ok());
  EXPECT_EQ(b.got[2].code(), Code::kIo);
}

TEST(ReportGroup, DatabaseGoingDownDuringSingleRetryFailsTheRestUncommitted) {
  ReportGroup g(8);
  Answers a;
  for (int i = 0; i < 4; i++) ASSERT_TRUE(g.Add(Info(i), a.Slot()).ok());
  std::vector<size_t> sizes;
  Status st = g.Flush([&](const std::vector<pb::VersionInfo>& infos) {
    sizes.push_back(infos.size());
    if (infos.size() > 1) return IoError("sqlite: UNIQUE constraint failed");
    if (infos[0].oid() == "oid0") return Status::Ok();
    return Unavailable("cannot connect to PostgreSQL");
  });
  // Group, oid0 alone (ok), oid1 alone (down); oid2 and oid3 not tried.
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 1, 1}));
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_TRUE(a.got[0].ok());
  for (int i = 1; i < 4; i++) EXPECT_EQ(a.got[i].code(), Code::kUnavailable) << i;
}

TEST(ReportGroup, SingleReportGroupIsNotRetried) {
  ReportGroup g(8);
  Answers a;
  ASSERT_TRUE(g.Add(Info(0), a.Slot()).ok());
  int commits = 0;
  EXPECT_EQ(g.Flush([&](const std::vector<pb::VersionInfo>&) {
                 commits++;
                 return IoError("sqlite: CHECK constraint failed");
               }).code(),
            Code::kIo);
  EXPECT_EQ(commits, 1);
  EXPECT_EQ(a.got[0].code(), Code::kIo);
}

TEST(ReportGroup, BoundedByGroupMax) {
  ReportGroup g(3);
  Answers a;
  for (int i = 0; i < 3; i++) {
    EXPECT_FALSE(g.full());
    ASSERT_TRUE(g.Add(Info(i), a.Slot()).ok());
  }
  EXPECT_TRUE(g.full());
  bool called = false;
  Status refused = g.Add(Info(3), [&](const Status&) { called = true; });
  EXPECT_EQ(refused.code(), Code::kResourceExhausted);
  EXPECT_EQ(g.pending(), 3u);
  size_t seen = 0;
  ASSERT_TRUE(g.Flush([&](const std::vector<pb::VersionInfo>& infos) {
                 seen = infos.size();
                 return Status::Ok();
               }).ok());
  EXPECT_EQ(seen, 3u);
  EXPECT_FALSE(called);  // the refused report's answer was not kept
  EXPECT_FALSE(g.full());
}

TEST(ReportGroup, NothingPendingCommitsNothing) {
  ReportGroup g(4);
  bool called = false;
  EXPECT_TRUE(g.Flush([&](const std::vector<pb::VersionInfo>&) {
                 called = true;
                 return Status::Ok();
               }).ok());
  EXPECT_FALSE(called);
}

TEST(ReportGroup, ReportsAddedWhileAnsweringGoToTheNextGroup) {
  ReportGroup g(4);
  Answers later;
  ASSERT_TRUE(g.Add(Info(0), [&](const Status&) {
                 ASSERT_TRUE(g.Add(Info(1), later.Slot()).ok());
               }).ok());
  std::vector<size_t> sizes;
  auto commit = [&](const std::vector<pb::VersionInfo>& infos) {
    sizes.push_back(infos.size());
    return Status::Ok();
  };
  ASSERT_TRUE(g.Flush(commit).ok());
  EXPECT_EQ(g.pending(), 1u);
  ASSERT_TRUE(g.Flush(commit).ok());
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 1}));
  EXPECT_TRUE(later.got[0].ok());
}

}  // namespace
}  // namespace mistore
