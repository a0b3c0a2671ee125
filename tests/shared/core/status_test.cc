#include "shared/core/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace mistore {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "ok");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(StatusTest, HelpersCarryCodeAndMessage) {
  struct Case {
    Status st;
    Code code;
  } cases[] = {
      {InvalidArgument("a"), Code::kInvalidArgument},
      {NotFound("a"), Code::kNotFound},
      {Corrupt("a"), Code::kCorrupt},
      {Unavailable("a"), Code::kUnavailable},
      {ResourceExhausted("a"), Code::kResourceExhausted},
      {ProtocolError("a"), Code::kProtocol},
      {IoError("a"), Code::kIo},
      {Internal("a"), Code::kInternal},
  };
  for (auto& c : cases) {
    EXPECT_FALSE(c.st.ok());
    EXPECT_EQ(c.st.code(), c.code);
    EXPECT_EQ(c.st.message(), "a");
  }
}

TEST(StatusTest, ToStringNamesCodeAndMessage) {
  EXPECT_EQ(NotFound("no such oid").ToString(), "not found: no such oid");
  EXPECT_EQ(ResourceExhausted("disk").ToString(), "resource exhausted: disk");
  EXPECT_STREQ(CodeName(Code::kCorrupt), "corrupt");
  EXPECT_STREQ(CodeName(Code::kIo), "i/o error");
}

TEST(ResultTest, HoldsValue) {
  Result<int> r(42);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  *r = 7;
  EXPECT_EQ(r.value(), 7);
}

TEST(ResultTest, HoldsError) {
  Result<std::string> r(NotFound("gone"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(r.status().message(), "gone");
}

TEST(ResultTest, ArrowAndMoveOut) {
  Result<std::string> r(std::string("hello"));
  EXPECT_EQ(r->size(), 5u);
  std::string s = std::move(r).value();
  EXPECT_EQ(s, "hello");
  // Move-only types work too.
  Result<std::unique_ptr<int>> p(std::make_unique<int>(9));
  ASSERT_TRUE(p.ok());
  std::unique_ptr<int> q = std::move(p).value();
  ASSERT_TRUE(q);
  EXPECT_EQ(*q, 9);
}

TEST(ResultDeathTest, ValueOfErrorAsserts) {
  Result<int> r(Corrupt("x"));
  EXPECT_DEATH((void)r.value(), "assertion failed");
}

TEST(ResultDeathTest, ResultFromOkStatusAsserts) {
  EXPECT_DEATH({ Result<int> r{Status::Ok()}; (void)r; }, "assertion failed");
}

// ---- macro propagation -------------------------------------------------

Result<int> Parse(int in) {
  if (in < 0) return InvalidArgument("negative: " + std::to_string(in));
  return in * 2;
}

int g_after_assign = 0;

Result<int> AddParsed(int a, int b) {
  MS_ASSIGN_OR_RETURN(int x, Parse(a));
  g_after_assign++;
  MS_ASSIGN_OR_RETURN(int y, Parse(b));
  g_after_assign++;
  return x + y;
}

TEST(MacroTest, AssignOrReturnPassesValues) {
  g_after_assign = 0;
  auto r = AddParsed(1, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 6);
  EXPECT_EQ(g_after_assign, 2);
}

TEST(MacroTest, AssignOrReturnStopsAtFirstError) {
  g_after_assign = 0;
  auto r = AddParsed(-3, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "negative: -3");
  EXPECT_EQ(g_after_assign, 0);

  g_after_assign = 0;
  r = AddParsed(1, -4);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "negative: -4");
  EXPECT_EQ(g_after_assign, 1);
}

TEST(MacroTest, AssignOrReturnIntoExistingVariableAndStatusReturn) {
  auto f = [](int in, int* out) -> Status {
    int v = 0;
    MS_ASSIGN_OR_RETURN(v, Parse(in));
    *out = v;
    return Status::Ok();
  };
  int out = -1;
  EXPECT_TRUE(f(5, &out).ok());
  EXPECT_EQ(out, 10);
  out = -1;
  Status st = f(-1, &out);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(out, -1);
}

TEST(MacroTest, AssignOrReturnMovesMoveOnlyValues) {
  auto make = [](bool ok) -> Result<std::unique_ptr<int>> {
    if (!ok) return Unavailable("later");
    return std::make_unique<int>(3);
  };
  auto use = [&](bool ok) -> Result<int> {
    MS_ASSIGN_OR_RETURN(std::unique_ptr<int> p, make(ok));
    return *p + 1;
  };
  ASSERT_TRUE(use(true).ok());
  EXPECT_EQ(use(true).value(), 4);
  EXPECT_EQ(use(false).status().code(), Code::kUnavailable);
}

TEST(MacroTest, ReturnIfErrorPropagatesAndContinues) {
  int steps = 0;
  auto step = [&](bool ok) -> Status {
    steps++;
    return ok ? Status::Ok() : IoError("disk " + std::to_string(steps));
  };
  auto run = [&](bool a, bool b) -> Status {
    MS_RETURN_IF_ERROR(step(a));
    MS_RETURN_IF_ERROR(step(b));
    return Status::Ok();
  };
  steps = 0;
  EXPECT_TRUE(run(true, true).ok());
  EXPECT_EQ(steps, 2);

  steps = 0;
  Status st = run(false, true);
  EXPECT_EQ(st.code(), Code::kIo);
  EXPECT_EQ(st.message(), "disk 1");
  EXPECT_EQ(steps, 1);

  steps = 0;
  st = run(true, false);
  EXPECT_EQ(st.message(), "disk 2");
  EXPECT_EQ(steps, 2);
}

TEST(MacroTest, ReturnIfErrorIntoResultFunction) {
  auto f = [](bool ok) -> Result<int> {
    MS_RETURN_IF_ERROR(ok ? Status::Ok() : NotFound("x"));
    return 1;
  };
  EXPECT_EQ(f(true).value(), 1);
  EXPECT_EQ(f(false).status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace mistore
