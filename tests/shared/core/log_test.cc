// Per-component log levels (shared/core/log.h): "LEVEL[,COMPONENT=LEVEL...]".
#include "shared/core/log.h"

#include <gtest/gtest.h>

namespace mistore {
namespace {

class LogLevels : public ::testing::Test {
 protected:
  void TearDown() override { SetLogLevel(LogLevel::kInfo); }
};

TEST_F(LogLevels, PlainLevelAppliesToEveryComponent) {
  ASSERT_TRUE(ApplyLogLevels("warn"));
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo, "pop"));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn, "pop"));
  EXPECT_TRUE(LogEnabled(LogLevel::kError, "uvio"));
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarn);
}

TEST_F(LogLevels, OverridesRaiseOrLowerOneComponent) {
  ASSERT_TRUE(ApplyLogLevels("info,pop=debug,uvio=error"));
  EXPECT_TRUE(LogEnabled(LogLevel::kDebug, "pop"));
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug, "agent"));
  EXPECT_TRUE(LogEnabled(LogLevel::kInfo, "agent"));
  EXPECT_FALSE(LogEnabled(LogLevel::kWarn, "uvio"));
  EXPECT_TRUE(LogEnabled(LogLevel::kError, "uvio"));
  // The macro's fast path must let the lowest override through.
  EXPECT_EQ(GetLogLevel(), LogLevel::kDebug);
}

TEST_F(LogLevels, MalformedSpecChangesNothing) {
  ASSERT_TRUE(ApplyLogLevels("info,pop=debug"));
  for (const char* bad : {"", "loud", "info,", "info,pop", "info,=debug", "info,pop=loud",
                          "pop=debug"}) {
    EXPECT_FALSE(ApplyLogLevels(bad)) << bad;
    EXPECT_TRUE(LogEnabled(LogLevel::kDebug, "pop")) << "changed by " << bad;
    EXPECT_FALSE(LogEnabled(LogLevel::kDebug, "dc")) << "changed by " << bad;
  }
}

TEST_F(LogLevels, OverridesAreBounded) {
  std::string spec = "info";
  for (size_t i = 0; i <= kLogComponentOverridesMax; i++) spec += ",c" + std::to_string(i) + "=debug";
  EXPECT_FALSE(ApplyLogLevels(spec));
}

TEST_F(LogLevels, SetLogLevelClearsOverrides) {
  ASSERT_TRUE(ApplyLogLevels("error,pop=debug"));
  SetLogLevel(LogLevel::kWarn);
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug, "pop"));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn, "pop"));
}

}  // namespace
}  // namespace mistore
