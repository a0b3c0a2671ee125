#include "shared/core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A fresh directory under /tmp, removed with everything in it, that writes
// config files into itself.
class TempDir : public store_test::TempDir {
 public:
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = path() + "/" + name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

// argv as the daemons get it: mutable C strings, argv[0] = program name.
class Argv {
 public:
  Argv(std::initializer_list<std::string> args) : strs_(args) {
    for (auto& s : strs_) ptrs_.push_back(s.data());
    ptrs_.push_back(nullptr);
  }
  int argc() const { return int(strs_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> strs_;
  std::vector<char*> ptrs_;
};

std::vector<Knob> TestKnobs() {
  return {
      {"data_dir", "/var/lib/mistore", "Directory holding the node's state", Knob::kString},
      {"listen_port", "7000", "TCP port to listen on", Knob::kInt},
      {"verbose", "false", "Log every request", Knob::kBool},
      {"store_bytes_max", "1073741824", "Disk share for fragments in bytes", Knob::kInt},
      {"region", "", "Region label shown in the cluster map", Knob::kString},
  };
}

TEST(ConfigTest, DefaultsBeforeAnythingIsSet) {
  Config c(TestKnobs());
  EXPECT_EQ(c.Str("data_dir"), "/var/lib/mistore");
  EXPECT_EQ(c.Int("listen_port"), 7000);
  EXPECT_FALSE(c.Bool("verbose"));
  EXPECT_EQ(c.Int("store_bytes_max"), 1073741824);
  EXPECT_EQ(c.Str("region"), "");
  EXPECT_FALSE(c.IsSet("listen_port"));
}

TEST(ConfigTest, LoadFileCommentsBlankLinesAndWhitespace) {
  TempDir d;
  std::string path = d.Write("a.conf",
                             "# Mistore test config\n"
                             "\n"
                             "   \t  \n"
                             "   # an indented comment = with an equals sign\n"
                             "listen_port=8080\n"
                             "  data_dir   =   /srv/mistore data  \n"
                             "\tverbose\t=\ttrue\t\n"
                             "store_bytes_max = -5\r\n"
                             "region = eu=west\n");
  Config c(TestKnobs());
  Status st = c.LoadFile(path);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.Int("listen_port"), 8080);
  EXPECT_EQ(c.Str("data_dir"), "/srv/mistore data");
  EXPECT_TRUE(c.Bool("verbose"));
  EXPECT_EQ(c.Int("store_bytes_max"), -5);
  EXPECT_EQ(c.Str("region"), "eu=west");  // split at the first '='
  EXPECT_TRUE(c.IsSet("listen_port"));
  EXPECT_TRUE(c.IsSet("region"));
}

TEST(ConfigTest, LoadFileLeavesUnmentionedKnobsAtDefault) {
  TempDir d;
  std::string path = d.Write("a.conf", "verbose = true\n");
  Config c(TestKnobs());
  ASSERT_TRUE(c.LoadFile(path).ok());
  EXPECT_TRUE(c.Bool("verbose"));
  EXPECT_EQ(c.Int("listen_port"), 7000);
  EXPECT_FALSE(c.IsSet("listen_port"));
}

TEST(ConfigTest, LoadFileMissingFileIsNotFound) {
  TempDir d;
  Config c(TestKnobs());
  Status st = c.LoadFile(d.path() + "/absent.conf");
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("absent.conf"));
}

// Each malformed line is an error naming file:line (and what was wrong).
TEST(ConfigTest, LoadFileErrorsNameFileAndLine) {
  struct Case {
    const char* text;
    int line;
    const char* mentions;
  } cases[] = {
      {"# ok\nlisten_port = 1\njust some words\n", 3, "just some words"},
      {"\nno_such_knob = 1\n", 2, "no_such_knob"},
      {"listen_port = 80x\n", 1, "listen_port"},
      {"# c\n\nlisten_port =\n", 3, "listen_port"},
      {"store_bytes_max = 1.5\n", 1, "store_bytes_max"},
      {"store_bytes_max = 99999999999999999999999\n", 1, "store_bytes_max"},
      {"verbose = false\nverbose = yes\n", 2, "verbose"},
      {"verbose = 1\n", 1, "verbose"},
      {"verbose = TRUE\n", 1, "verbose"},
      {"data-dir = /x\n", 1, "data-dir"},
  };
  TempDir d;
  int n = 0;
  for (auto& c : cases) {
    SCOPED_TRACE(c.text);
    std::string path = d.Write("bad" + std::to_string(n++) + ".conf", c.text);
    Config cfg(TestKnobs());
    Status st = cfg.LoadFile(path);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr(path + ":" + std::to_string(c.line) + ":"));
    EXPECT_THAT(st.message(), HasSubstr(c.mentions));
  }
}

TEST(ConfigTest, LoadFileRejectsOverlongLine) {
  TempDir d;
  std::string path = d.Write("long.conf", "# fine\ndata_dir = " + std::string(5000, 'a') + "\n");
  Config c(TestKnobs());
  Status st = c.LoadFile(path);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr(path + ":2"));
}

TEST(ConfigTest, SetValidatesKinds) {
  Config c(TestKnobs());
  EXPECT_TRUE(c.Set("listen_port", "-12", "test").ok());
  EXPECT_EQ(c.Int("listen_port"), -12);
  Status st = c.Set("listen_port", "twelve", "here");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("here"));
  EXPECT_EQ(c.Int("listen_port"), -12);  // a rejected value is not stored
  EXPECT_EQ(c.Set("verbose", "", "x").code(), Code::kInvalidArgument);
  EXPECT_EQ(c.Set("nope", "1", "x").code(), Code::kInvalidArgument);
}

// ---- ParseArgs ------------------------------------------------------------

TEST(ConfigArgsTest, NameEqualsValueAndNameSpaceValue) {
  Config c(TestKnobs());
  Argv a{"prog", "--listen_port=9000", "--data_dir", "/d", "--region=", "--store_bytes_max", "12"};
  Status st = c.ParseArgs(a.argc(), a.argv(), 1, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.Int("listen_port"), 9000);
  EXPECT_EQ(c.Str("data_dir"), "/d");
  EXPECT_EQ(c.Str("region"), "");
  EXPECT_TRUE(c.IsSet("region"));
  EXPECT_EQ(c.Int("store_bytes_max"), 12);
}

TEST(ConfigArgsTest, DashesMapToUnderscores) {
  Config c(TestKnobs());
  Argv a{"prog", "--listen-port=9001", "--data-dir", "/dd", "--store-bytes-max=77"};
  Status st = c.ParseArgs(a.argc(), a.argv(), 1, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(c.Int("listen_port"), 9001);
  EXPECT_EQ(c.Str("data_dir"), "/dd");
  EXPECT_EQ(c.Int("store_bytes_max"), 77);
  EXPECT_TRUE(c.IsSet("store_bytes_max"));
}

TEST(ConfigArgsTest, BoolFlagWithoutValueIsTrueAndTakesNoArgument) {
  Config c(TestKnobs());
  std::vector<std::string> pos;
  Argv a{"prog", "--verbose", "file.txt"};
  ASSERT_TRUE(c.ParseArgs(a.argc(), a.argv(), 1, &pos).ok());
  EXPECT_TRUE(c.Bool("verbose"));
  EXPECT_EQ(pos, std::vector<std::string>{"file.txt"});

  Config c2(TestKnobs());
  Argv b{"prog", "--verbose=true", "--verbose=false"};
  ASSERT_TRUE(c2.ParseArgs(b.argc(), b.argv(), 1, nullptr).ok());
  EXPECT_FALSE(c2.Bool("verbose"));
  EXPECT_TRUE(c2.IsSet("verbose"));
}

TEST(ConfigArgsTest, FirstSkipsLeadingArguments) {
  Config c(TestKnobs());
  Argv a{"prog", "--bogus", "--listen-port=5"};
  ASSERT_TRUE(c.ParseArgs(a.argc(), a.argv(), 2, nullptr).ok());
  EXPECT_EQ(c.Int("listen_port"), 5);
}

TEST(ConfigArgsTest, UnknownOptionIsAnError) {
  Config c(TestKnobs());
  std::vector<std::string> pos;
  Argv a{"prog", "--listen-port=1", "--no-such-thing=3"};
  Status st = c.ParseArgs(a.argc(), a.argv(), 1, &pos);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("--no-such-thing"));
}

TEST(ConfigArgsTest, MissingValueIsAnError) {
  Config c(TestKnobs());
  Argv a{"prog", "--listen-port"};
  Status st = c.ParseArgs(a.argc(), a.argv(), 1, nullptr);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("--listen-port"));
  EXPECT_THAT(st.message(), HasSubstr("needs a value"));
  EXPECT_EQ(c.Int("listen_port"), 7000);
}

TEST(ConfigArgsTest, BadValuesAreErrorsNamingTheOption) {
  {
    Config c(TestKnobs());
    Argv a{"prog", "--listen-port", "eighty"};
    Status st = c.ParseArgs(a.argc(), a.argv(), 1, nullptr);
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("--listen-port"));
  }
  {
    Config c(TestKnobs());
    Argv a{"prog", "--verbose=maybe"};
    Status st = c.ParseArgs(a.argc(), a.argv(), 1, nullptr);
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("--verbose"));
  }
}

TEST(ConfigArgsTest, PositionalArguments) {
  Config c(TestKnobs());
  std::vector<std::string> pos;
  Argv a{"prog", "put", "--listen-port=3", "name", "-x"};
  ASSERT_TRUE(c.ParseArgs(a.argc(), a.argv(), 1, &pos).ok());
  EXPECT_EQ(pos, (std::vector<std::string>{"put", "name", "-x"}));
  EXPECT_EQ(c.Int("listen_port"), 3);

  Config c2(TestKnobs());
  Argv b{"prog", "stray"};
  Status st = c2.ParseArgs(b.argc(), b.argv(), 1, nullptr);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("stray"));
}

// ---- Help / SampleFile ------------------------------------------------------

TEST(ConfigHelpTest, HelpListsEveryKnobWithHelpAndDefault) {
  Config c(TestKnobs());
  const std::string help = c.Help();
  for (const Knob& k : TestKnobs()) {
    SCOPED_TRACE(k.name);
    std::string flag = "--" + k.name;
    for (auto& ch : flag)
      if (ch == '_') ch = '-';
    EXPECT_THAT(help, HasSubstr(flag));
    EXPECT_THAT(help, HasSubstr(k.help));
    EXPECT_THAT(help, HasSubstr("(default: " + (k.default_value.empty() ? std::string("none")
                                                                        : k.default_value) +
                                ")"));
  }
  // Value-taking knobs show =VALUE, bool flags do not.
  EXPECT_THAT(help, HasSubstr("--listen-port=VALUE"));
  EXPECT_THAT(help, HasSubstr("--verbose\n"));
  EXPECT_THAT(help, Not(HasSubstr("--verbose=VALUE")));
}

TEST(ConfigHelpTest, SampleFileListsEveryKnobWithHelpAndDefault) {
  Config c(TestKnobs());
  const std::string sample = c.SampleFile();
  for (const Knob& k : TestKnobs()) {
    SCOPED_TRACE(k.name);
    EXPECT_THAT(sample, HasSubstr("# " + k.help + "\n"));
    EXPECT_THAT(sample, HasSubstr(k.name + " = " + k.default_value));
  }
}

// The generated sample is itself a valid config file reproducing the defaults.
TEST(ConfigHelpTest, SampleFileLoadsBackToDefaults) {
  TempDir d;
  Config gen(TestKnobs());
  std::string path = d.Write("sample.conf", gen.SampleFile());
  Config c(TestKnobs());
  Status st = c.LoadFile(path);
  ASSERT_TRUE(st.ok()) << st.ToString();
  for (const Knob& k : TestKnobs()) {
    EXPECT_EQ(c.Str(k.name), k.default_value) << k.name;
    EXPECT_TRUE(c.IsSet(k.name)) << k.name;
  }
}

// ---- ParseCommandLine -------------------------------------------------------

TEST(CommandLineTest, ConfigFileThenFlagsOverride) {
  TempDir d;
  std::string path = d.Write("node.conf",
                             "listen_port = 8080\n"
                             "data_dir = /from/file\n"
                             "verbose = true\n");
  {
    Config c(TestKnobs());
    std::vector<std::string> pos;
    Argv a{"mistore-x", "--config", path, "--listen-port=9090", "extra"};
    ASSERT_EQ(ParseCommandLine("mistore-x", "[options]", &c, a.argc(), a.argv(), &pos),
              ArgsOutcome::kRun);
    EXPECT_EQ(c.Int("listen_port"), 9090);
    EXPECT_EQ(c.Str("data_dir"), "/from/file");
    EXPECT_TRUE(c.Bool("verbose"));
    EXPECT_EQ(c.Int("store_bytes_max"), 1073741824);
    EXPECT_EQ(pos, std::vector<std::string>{"extra"});
  }
  // A flag given before --config still wins over the file.
  {
    Config c(TestKnobs());
    Argv a{"mistore-x", "--listen-port", "9191", "--verbose=false", "--config=" + path};
    ASSERT_EQ(ParseCommandLine("mistore-x", "", &c, a.argc(), a.argv(), nullptr),
              ArgsOutcome::kRun);
    EXPECT_EQ(c.Int("listen_port"), 9191);
    EXPECT_FALSE(c.Bool("verbose"));
    EXPECT_EQ(c.Str("data_dir"), "/from/file");
  }
}

TEST(CommandLineTest, ErrorsAreUsageExits) {
  TempDir d;
  std::string bad = d.Write("bad.conf", "listen_port = many\n");
  {
    Config c(TestKnobs());
    Argv a{"p", "--config"};
    testing::internal::CaptureStderr();
    EXPECT_EQ(ParseCommandLine("p", "", &c, a.argc(), a.argv(), nullptr),
              ArgsOutcome::kExitUsage);
    EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("--config needs a file"));
  }
  {
    Config c(TestKnobs());
    Argv a{"p", "--config", bad};
    testing::internal::CaptureStderr();
    EXPECT_EQ(ParseCommandLine("p", "", &c, a.argc(), a.argv(), nullptr),
              ArgsOutcome::kExitUsage);
    EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr(bad + ":1"));
  }
  {
    Config c(TestKnobs());
    Argv a{"p", "--config", d.path() + "/missing.conf"};
    testing::internal::CaptureStderr();
    EXPECT_EQ(ParseCommandLine("p", "", &c, a.argc(), a.argv(), nullptr),
              ArgsOutcome::kExitUsage);
    (void)testing::internal::GetCapturedStderr();
  }
  {
    Config c(TestKnobs());
    Argv a{"p", "--unknown-knob=1"};
    testing::internal::CaptureStderr();
    EXPECT_EQ(ParseCommandLine("p", "", &c, a.argc(), a.argv(), nullptr),
              ArgsOutcome::kExitUsage);
    EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("p: unknown option"));
  }
}

TEST(CommandLineTest, HelpAndSampleConfigExitOk) {
  {
    Config c(TestKnobs());
    Argv a{"p", "--listen-port=1", "--help"};
    testing::internal::CaptureStdout();
    EXPECT_EQ(ParseCommandLine("p", "[opts]", &c, a.argc(), a.argv(), nullptr),
              ArgsOutcome::kExitOk);
    std::string out = testing::internal::GetCapturedStdout();
    EXPECT_THAT(out, HasSubstr("usage: p [opts]"));
    EXPECT_THAT(out, HasSubstr(c.Help()));
  }
  {
    Config c(TestKnobs());
    Argv a{"p", "--print-sample-config"};
    testing::internal::CaptureStdout();
    EXPECT_EQ(ParseCommandLine("p", "", &c, a.argc(), a.argv(), nullptr), ArgsOutcome::kExitOk);
    EXPECT_EQ(testing::internal::GetCapturedStdout(), c.SampleFile());
  }
}

}  // namespace
}  // namespace mistore
