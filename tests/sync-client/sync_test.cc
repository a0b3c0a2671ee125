// Tests of the sync client's pure parts: the .mistoreignore matcher
// (sync-client/ignore.h), the per-path decision (PlanPath), the three-way
// tree merge (MergeTrees) and conflict copy names (sync-client/sync.h).
#include "sync-client/sync.h"

#include <gtest/gtest.h>

#include <string>

#include "sync-client/ignore.h"

namespace mistore {
namespace {

TEST(IgnoreGlob, StarsQuestionMarksAndClasses) {
  EXPECT_TRUE(IgnoreRules::Glob("*.o", "main.o"));
  EXPECT_FALSE(IgnoreRules::Glob("*.o", "main.c"));
  EXPECT_FALSE(IgnoreRules::Glob("*.o", "dir/main.o"));  // '*' never crosses '/'
  EXPECT_TRUE(IgnoreRules::Glob("a?c", "abc"));
  EXPECT_FALSE(IgnoreRules::Glob("a?c", "a/c"));
  EXPECT_TRUE(IgnoreRules::Glob("file[0-9].txt", "file7.txt"));
  EXPECT_FALSE(IgnoreRules::Glob("file[0-9].txt", "filex.txt"));
  EXPECT_TRUE(IgnoreRules::Glob("file[!0-9].txt", "filex.txt"));
  EXPECT_FALSE(IgnoreRules::Glob("file[!0-9].txt", "file1.txt"));
  EXPECT_TRUE(IgnoreRules::Glob("\\*literal", "*literal"));
  EXPECT_FALSE(IgnoreRules::Glob("\\*literal", "xliteral"));
  EXPECT_TRUE(IgnoreRules::Glob("[abc", "[abc"));  // unclosed class: literal
}

TEST(IgnoreGlob, DoubleStar) {
  EXPECT_TRUE(IgnoreRules::Glob("**/build", "build"));
  EXPECT_TRUE(IgnoreRules::Glob("**/build", "a/b/build"));
  EXPECT_TRUE(IgnoreRules::Glob("logs/**", "logs/x/y.log"));
  EXPECT_TRUE(IgnoreRules::Glob("a/**/z", "a/z"));
  EXPECT_TRUE(IgnoreRules::Glob("a/**/z", "a/b/c/z"));
  EXPECT_FALSE(IgnoreRules::Glob("a/**/z", "b/a/z"));
}

TEST(IgnoreRules, GitignoreSemantics) {
  IgnoreRules r = IgnoreRules::Parse(
      "# build output\n"
      "*.o\n"
      "\n"
      "build/\n"
      "/top.txt\n"
      "docs/*.pdf\n"
      "*.log\n"
      "!keep.log\n"
      "\\#hash\n"
      "trailing   \n");
  EXPECT_EQ(r.size(), 8u);
  EXPECT_TRUE(r.Ignored("main.o", false));
  EXPECT_TRUE(r.Ignored("src/deep/main.o", false));  // unanchored: any depth
  EXPECT_TRUE(r.Ignored("build", true));
  EXPECT_FALSE(r.Ignored("build", false));         // dir/ matches directories only
  EXPECT_TRUE(r.Ignored("build/out.bin", false));  // inside an ignored dir
  EXPECT_TRUE(r.Ignored("sub/build/out.bin", false));
  EXPECT_TRUE(r.Ignored("top.txt", false));
  EXPECT_FALSE(r.Ignored("sub/top.txt", false));  // leading '/': root only
  EXPECT_TRUE(r.Ignored("docs/a.pdf", false));
  EXPECT_FALSE(r.Ignored("docs/sub/a.pdf", false));  // anchored, '*' does not cross '/'
  EXPECT_FALSE(r.Ignored("other/docs/a.pdf", false));
  EXPECT_TRUE(r.Ignored("x.log", false));
  EXPECT_FALSE(r.Ignored("keep.log", false));  // negation re-includes
  EXPECT_FALSE(r.Ignored("sub/keep.log", false));
  EXPECT_TRUE(r.Ignored("#hash", false));     // escaped '#'
  EXPECT_TRUE(r.Ignored("trailing", false));  // trailing spaces trimmed
  EXPECT_FALSE(r.Ignored("notes.txt", false));
}

TEST(IgnoreRules, NegationCannotReincludeInsideIgnoredDir) {
  IgnoreRules r = IgnoreRules::Parse("cache/\n!cache/keep.txt\n");
  EXPECT_TRUE(r.Ignored("cache/keep.txt", false));
  IgnoreRules r2 = IgnoreRules::Parse("cache/*\n!cache/keep.txt\n");
  EXPECT_FALSE(r2.Ignored("cache/keep.txt", false));
  EXPECT_TRUE(r2.Ignored("cache/other.txt", false));
}

TEST(IgnoreRules, EmptyAndCommentOnly) {
  EXPECT_FALSE(IgnoreRules::Parse("").Ignored("a", false));
  EXPECT_EQ(IgnoreRules::Parse("# only\n\n   \n").size(), 0u);
}

TEST(IgnoreRules, RuleCountIsBounded) {
  std::string text;
  for (size_t i = 0; i < IgnoreRules::kRulesMax + 5; i++) text += "f" + std::to_string(i) + "\n";
  IgnoreRules r = IgnoreRules::Parse(text);
  EXPECT_EQ(r.size(), IgnoreRules::kRulesMax);
  EXPECT_EQ(r.dropped(), 5u);
}

// Issue 9: nested .mistoreignore files, gitignore semantics.
TEST(IgnoreRules, NestedFilesApplyBelowTheirDirectoryOnly) {
  IgnoreRules r = IgnoreRules::Parse("*.tmp\n");
  r.Add("src", "*.o\n/gen\nlib/*.a\n");
  r.Add("docs", "*.pdf\n");
  EXPECT_EQ(r.size(), 5u);
  EXPECT_TRUE(r.Ignored("src/main.o", false));
  EXPECT_TRUE(r.Ignored("src/deep/main.o", false));  // unanchored: any depth below src
  EXPECT_FALSE(r.Ignored("main.o", false));         // not above its directory
  EXPECT_FALSE(r.Ignored("other/main.o", false));   // nor beside it
  EXPECT_FALSE(r.Ignored("srcx/main.o", false));    // a name prefix is not the directory
  EXPECT_TRUE(r.Ignored("src/gen", true));          // anchored at src, not at the root
  EXPECT_TRUE(r.Ignored("src/gen/x.c", false));
  EXPECT_FALSE(r.Ignored("gen", true));
  EXPECT_FALSE(r.Ignored("src/sub/gen", true));
  EXPECT_TRUE(r.Ignored("src/lib/x.a", false));     // a pattern with '/' is relative to src
  EXPECT_FALSE(r.Ignored("lib/x.a", false));
  EXPECT_FALSE(r.Ignored("src/sub/lib/x.a", false));
  EXPECT_TRUE(r.Ignored("docs/a.pdf", false));
  EXPECT_FALSE(r.Ignored("src/a.pdf", false));
  EXPECT_TRUE(r.Ignored("src/a.tmp", false));       // the root's rules still hold below
  EXPECT_FALSE(r.Ignored("src", true));             // a file's own directory is not "below" it
}

TEST(IgnoreRules, DeeperFilesOverrideAndNegate) {
  IgnoreRules r = IgnoreRules::Parse("*.log\n!important.txt\n*.txt\n");
  r.Add("logs", "!keep.log\n");
  r.Add("logs/old", "keep.log\n");
  r.Add("notes", "!*.txt\n");
  EXPECT_TRUE(r.Ignored("a.log", false));
  EXPECT_FALSE(r.Ignored("logs/keep.log", false));      // the deeper file re-includes
  EXPECT_TRUE(r.Ignored("logs/other.log", false));
  EXPECT_FALSE(r.Ignored("logs/sub/keep.log", false));  // at any depth below logs
  EXPECT_TRUE(r.Ignored("logs/old/keep.log", false));   // deeper still: ignored again
  EXPECT_TRUE(r.Ignored("keep.log", false));            // the root is not logs'
  EXPECT_TRUE(r.Ignored("todo.txt", false));
  EXPECT_FALSE(r.Ignored("notes/todo.txt", false));
  // As in git, a deeper file cannot re-include inside a directory that a
  // shallower one ignores (the walk never reads files in there anyway).
  IgnoreRules d = IgnoreRules::Parse("cache/\n");
  d.Add("cache", "!keep\n");
  EXPECT_TRUE(d.Ignored("cache/keep", false));
}

TEST(IgnoreRules, NestedRuleCountIsBoundedInAll) {
  std::string text;
  for (size_t i = 0; i < IgnoreRules::kRulesMax / 2 + 3; i++) text += "f" + std::to_string(i) + "\n";
  IgnoreRules r = IgnoreRules::Parse(text);
  r.Add("a", text);
  EXPECT_EQ(r.size(), IgnoreRules::kRulesMax);
  EXPECT_EQ(r.dropped(), 6u);
  EXPECT_TRUE(r.Ignored("a/f1", false));
}

PathState P(const std::string& object, uint64_t version, uint64_t size, int64_t mtime) {
  PathState p;
  p.present = true;
  p.object = object;
  p.version = version;
  p.size_bytes = size;
  p.mtime_ns = mtime;
  return p;
}
PathState L(uint64_t size, int64_t mtime) { return P("", 0, size, mtime); }
const PathState kAbsent;

TEST(PlanPath, EveryCase) {
  PathState base = P("v/a", 3, 10, 100);
  PathState same_remote = P("v/a", 3, 10, 999);  // remote mtime is the uploader's: ignored
  PathState new_remote = P("v/a", 4, 12, 200);
  PathState same_local = L(10, 100);
  PathState edited_local = L(10, 101);
  EXPECT_EQ(PlanPath(base, same_local, same_remote), SyncAction::kNone);
  EXPECT_EQ(PlanPath(base, edited_local, same_remote), SyncAction::kUpload);
  EXPECT_EQ(PlanPath(base, L(11, 100), same_remote), SyncAction::kUpload);
  EXPECT_EQ(PlanPath(base, same_local, new_remote), SyncAction::kDownload);
  EXPECT_EQ(PlanPath(base, kAbsent, same_remote), SyncAction::kDropRemote);
  EXPECT_EQ(PlanPath(base, same_local, kAbsent), SyncAction::kDeleteLocal);
  EXPECT_EQ(PlanPath(base, edited_local, new_remote), SyncAction::kConflict);
  EXPECT_EQ(PlanPath(base, kAbsent, new_remote),
            SyncAction::kDownload);  // edit beats delete
  EXPECT_EQ(PlanPath(base, edited_local, kAbsent),
            SyncAction::kUpload);  // edit beats delete
  EXPECT_EQ(PlanPath(base, kAbsent, kAbsent), SyncAction::kForget);
  // New on one side only.
  EXPECT_EQ(PlanPath(kAbsent, same_local, kAbsent), SyncAction::kUpload);
  EXPECT_EQ(PlanPath(kAbsent, kAbsent, new_remote), SyncAction::kDownload);
  // New on both sides independently: keep both.
  EXPECT_EQ(PlanPath(kAbsent, same_local, new_remote), SyncAction::kConflict);
  EXPECT_EQ(PlanPath(kAbsent, kAbsent, kAbsent), SyncAction::kNone);
}

pb::TreeEntry E(const std::string& path, uint64_t version, const std::string& device = "d") {
  pb::TreeEntry e;
  e.set_path(path);
  e.set_object("v/" + path);
  e.set_version(version);
  e.set_device(device);
  return e;
}

pb::VolumeTree T(std::initializer_list<pb::TreeEntry> entries) {
  pb::VolumeTree t;
  t.set_volume("v");
  for (auto& e : entries) *t.add_entries() = e;
  return t;
}

std::map<std::string, uint64_t> Paths(const pb::VolumeTree& t) {
  std::map<std::string, uint64_t> m;
  for (auto& e : t.entries()) m[e.path()] = e.version();
  return m;
}

TEST(MergeTrees, KeepsBothSidesChanges) {
  pb::VolumeTree base = T({E("a", 1), E("b", 1), E("c", 1), E("d", 1)});
  // ours: edit a, delete c, add x. theirs: edit b, delete d, add y.
  pb::VolumeTree ours = T({E("a", 2), E("b", 1), E("d", 1), E("x", 1)});
  pb::VolumeTree theirs = T({E("a", 1), E("b", 2), E("c", 1), E("y", 1)});
  auto m = Paths(MergeTrees(base, ours, theirs, 0));
  std::map<std::string, uint64_t> want = {{"a", 2}, {"b", 2}, {"x", 1}, {"y", 1}};
  EXPECT_EQ(m, want);
}

TEST(MergeTrees, ConcurrentEditsOfOneFileKeepBoth) {
  pb::VolumeTree base = T({E("notes.txt", 1)});
  pb::VolumeTree ours = T({E("notes.txt", 3, "laptop")});
  pb::VolumeTree theirs = T({E("notes.txt", 2, "phone")});
  const int64_t t = 1764342245000;  // 2025-11-28T15:04:05Z
  pb::VolumeTree merged = MergeTrees(base, ours, theirs, t);
  auto m = Paths(merged);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m["notes.txt"], 3u);
  EXPECT_EQ(m["notes.conflict-phone-20251128-150405.txt"], 2u);
  for (auto& e : merged.entries())
    if (e.path() != "notes.txt") EXPECT_EQ(e.object(), "v/notes.txt");  // points at their version
}

TEST(MergeTrees, EditBeatsDelete) {
  pb::VolumeTree base = T({E("a", 1), E("b", 1)});
  pb::VolumeTree ours = T({E("a", 2)});    // edits a, deletes b
  pb::VolumeTree theirs = T({E("b", 2)});  // deletes a, edits b
  auto m = Paths(MergeTrees(base, ours, theirs, 0));
  std::map<std::string, uint64_t> want = {{"a", 2}, {"b", 2}};
  EXPECT_EQ(m, want);
}

TEST(ConflictName, KeepsDirectoryAndExtension) {
  const int64_t t = 1764342245000;
  EXPECT_EQ(ConflictName("dir/report.txt", "laptop", t),
            "dir/report.conflict-laptop-20251128-150405.txt");
  EXPECT_EQ(ConflictName("Makefile", "pc", t), "Makefile.conflict-pc-20251128-150405");
  EXPECT_EQ(ConflictName(".bashrc", "pc", t), ".bashrc.conflict-pc-20251128-150405");
  EXPECT_EQ(ConflictName("a.tar.gz", "my/dev.x", t), "a.tar.conflict-my_dev_x-20251128-150405.gz");
}

}  // namespace
}  // namespace mistore
