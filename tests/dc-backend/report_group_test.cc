// ReportGroup (dc-backend/report_group.h): the DC's group commit of POP
// version reports, without a loop: the bound, one commit per group, replies
// only after the commit, and a failed commit failing every request.
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

TEST(ReportGroup, FailedCommitFailsEveryRequestOfTheGroup) {
  ReportGroup g(8);
  Answers a;
  for (int i = 0; i < 5; i++) ASSERT_TRUE(g.Add(Info(i), a.Slot()).ok());
  Status st = g.Flush(
      [](const std::vector<pb::VersionInfo>&) { return IoError("disk full"); });
  EXPECT_EQ(st.code(), Code::kIo);
  ASSERT_EQ(a.got.size(), 5u);
  for (auto& s : a.got) EXPECT_EQ(s.code(), Code::kIo);
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
