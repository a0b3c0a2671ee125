// PopSelector (gateway-agent/pop_selector.h): the agent's choice of POP among
// several, driven with a fake clock. Plus a seeded random walk checking the
// invariants under any order of outcomes (seed printed on failure).
#include "gateway-agent/pop_selector.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

namespace mistore {
namespace {

PopSelectorParams Params(size_t n) {
  PopSelectorParams p;
  for (size_t i = 0; i < n; i++) p.addrs.push_back("10.0.0." + std::to_string(i + 1) + ":7100");
  p.retry_ms = 1000;
  p.retry_max_ms = 8000;
  p.failback_ms = 60000;
  return p;
}

void ExpectStep(PopSelector& s, uint64_t now, PopStep::Kind kind, size_t index) {
  PopStep st = s.Poll(now);
  EXPECT_EQ(st.kind, kind) << "at " << now;
  if (kind != PopStep::kNothing) {
    EXPECT_EQ(st.index, index) << "at " << now;
  }
}

TEST(ParsePopList, ListsAndErrors) {
  auto one = ParsePopList("127.0.0.1:7100");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one.value(), std::vector<std::string>{"127.0.0.1:7100"});
  auto two = ParsePopList(" 10.0.0.1:7100 ,[::1]:7101");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two.value(), (std::vector<std::string>{"10.0.0.1:7100", "[::1]:7101"}));
  EXPECT_FALSE(ParsePopList("").ok());
  EXPECT_FALSE(ParsePopList("a:1,,b:2").ok());
  EXPECT_FALSE(ParsePopList("a:1,").ok());
  EXPECT_FALSE(ParsePopList("nocolon").ok());
  EXPECT_FALSE(ParsePopList("host:").ok());
  EXPECT_FALSE(ParsePopList("a:1, a:1").ok());  // twice
  std::string many;
  for (size_t i = 0; i < PopSelector::kPopsMax; i++) many += (i ? ",h:" : "h:") + std::to_string(i + 1);
  ASSERT_TRUE(ParsePopList(many).ok());
  auto over = ParsePopList(many + ",h:99");
  EXPECT_EQ(over.status().code(), Code::kInvalidArgument);  // the bound
  EXPECT_NE(over.status().message().find("more than"), std::string::npos);
}

TEST(PopSelector, FirstReachableInOrder) {
  PopSelector s(Params(3), 0);
  ExpectStep(s, 0, PopStep::kDial, 0);
  ExpectStep(s, 0, PopStep::kNothing, 0);  // one dial at a time
  s.OnDialFailed(5, 0);
  ExpectStep(s, 5, PopStep::kDial, 1);  // the next one at once
  s.OnRegistered(7, 1);
  EXPECT_TRUE(s.registered());
  EXPECT_EQ(s.current(), 1u);
}

TEST(PopSelector, FailedRoundsBackOffBoundedAndResetOnRegistration) {
  PopSelector s(Params(2), 0);
  uint64_t now = 0;
  std::vector<uint64_t> waits;
  for (int round = 0; round < 6; round++) {
    ExpectStep(s, now, PopStep::kDial, 0);
    s.OnDialFailed(now, 0);
    ExpectStep(s, now, PopStep::kDial, 1);
    s.OnDialFailed(now, 1);
    uint64_t wake = s.next_wake_ms();
    waits.push_back(wake - now);
    ExpectStep(s, wake - 1, PopStep::kNothing, 0);  // not before its time
    now = wake;
  }
  EXPECT_EQ(waits, (std::vector<uint64_t>{1000, 2000, 4000, 8000, 8000, 8000}));
  EXPECT_EQ(s.failed_rounds(), 6u);
  ExpectStep(s, now, PopStep::kDial, 0);
  s.OnRegistered(now, 0);
  EXPECT_EQ(s.wait_ms(), 1000u);
  s.OnLost(now + 10);  // lost: a round after retry_ms, from the first POP
  EXPECT_EQ(s.next_wake_ms(), now + 10 + 1000);
  ExpectStep(s, now + 1010, PopStep::kDial, 0);
}

TEST(PopSelector, FailsOverWhenItsPopIsGone) {
  PopSelector s(Params(2), 0);
  ExpectStep(s, 0, PopStep::kDial, 0);
  s.OnRegistered(1, 0);
  EXPECT_EQ(s.next_wake_ms(), UINT64_MAX);  // on the preferred POP: no probes
  s.OnLost(100);
  ExpectStep(s, 1100, PopStep::kDial, 0);  // the same POP first (a quick restart)
  s.OnDialFailed(1101, 0);
  ExpectStep(s, 1101, PopStep::kDial, 1);  // then the next
  s.OnRegistered(1102, 1);
  EXPECT_EQ(s.current(), 1u);
}

TEST(PopSelector, ReturnsToThePreferredPopWhenItIsBack) {
  PopSelector s(Params(3), 0);
  ExpectStep(s, 0, PopStep::kDial, 0);
  s.OnDialFailed(0, 0);
  ExpectStep(s, 0, PopStep::kDial, 1);
  s.OnDialFailed(0, 1);
  ExpectStep(s, 0, PopStep::kDial, 2);
  s.OnRegistered(0, 2);
  EXPECT_EQ(s.next_wake_ms(), 60000u);
  ExpectStep(s, 59999, PopStep::kNothing, 0);
  ExpectStep(s, 60000, PopStep::kProbe, 0);
  ExpectStep(s, 60000, PopStep::kNothing, 0);  // one probe at a time
  s.OnProbeResult(60001, 0, false);
  ExpectStep(s, 60001, PopStep::kProbe, 1);  // then the next preferred one
  s.OnProbeResult(60002, 1, false);
  EXPECT_EQ(s.next_wake_ms(), 60002u + 60000);  // all probed: a period later
  ExpectStep(s, 120002, PopStep::kProbe, 0);
  s.OnProbeResult(120003, 0, true);
  ExpectStep(s, 120003, PopStep::kLeave, 2);    // the adapter closes POP 2's connection
  ExpectStep(s, 120003, PopStep::kNothing, 0);  // once
  EXPECT_TRUE(!s.registered());
  s.OnLost(120004);
  ExpectStep(s, 120004, PopStep::kDial, 0);  // at once, preferred first
  s.OnRegistered(120005, 0);
  EXPECT_EQ(s.current(), 0u);
}

TEST(PopSelector, StaleOutcomesAreIgnored) {
  PopSelector s(Params(2), 0);
  ExpectStep(s, 0, PopStep::kDial, 0);
  s.OnDialFailed(0, 1);  // not the one dialled
  s.OnRegistered(0, 1);
  EXPECT_FALSE(s.registered());
  s.OnProbeResult(0, 0, true);  // no probe out
  s.OnLost(0);                  // not registered
  ExpectStep(s, 0, PopStep::kNothing, 0);
  s.OnRegistered(1, 0);
  EXPECT_TRUE(s.registered());
}

// Any sequence of outcomes: at most one dial or probe out, waits within
// [retry_ms, retry_max_ms], probes only of POPs preferred to the current one.
TEST(PopSelector, RandomOutcomesKeepTheInvariants) {
  uint64_t seed = std::random_device{}();
  if (const char* e = std::getenv("MISTORE_TEST_SEED")) seed = std::strtoull(e, nullptr, 10);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with MISTORE_TEST_SEED=" +
               std::to_string(seed) + ")");
  std::mt19937_64 rng(seed);
  PopSelectorParams p = Params(4);
  PopSelector s(p, 0);
  uint64_t now = 0;
  bool dial_out = false, probe_out = false, connected = false, leaving = false;
  size_t out_index = 0;
  std::string out_addr, connected_addr;  // what was dialled / registered with
  for (int i = 0; i < 20000; i++) {
    PopStep st = s.Poll(now);
    if (st.kind == PopStep::kDial) {
      ASSERT_FALSE(dial_out || probe_out || connected);
      ASSERT_LT(st.index, s.addrs().size());
      dial_out = true;
      out_index = st.index;
      out_addr = s.addrs()[st.index];
    } else if (st.kind == PopStep::kProbe) {
      ASSERT_TRUE(connected);
      ASSERT_FALSE(probe_out);
      ASSERT_LT(st.index, s.current());
      probe_out = true;
      out_index = st.index;
    } else if (st.kind == PopStep::kLeave) {
      ASSERT_TRUE(leaving);
    }
    if (st.kind != PopStep::kNothing) continue;
    uint64_t wake = s.next_wake_ms();
    if (!dial_out && !probe_out && !connected && !leaving) {
      ASSERT_NE(wake, UINT64_MAX);
      ASSERT_LE(wake - now, p.retry_max_ms);
    }
    // An event.
    switch (rng() % 4) {
      case 0:
        if (dial_out) {
          dial_out = false;
          if (rng() % 2) {
            s.OnRegistered(now, out_index);
            connected = true;
            connected_addr = out_addr;
          } else {
            s.OnDialFailed(now, out_index);
          }
        }
        break;
      case 1:
        if (probe_out) {
          probe_out = false;
          bool up = rng() % 3 == 0;
          s.OnProbeResult(now, out_index, up);
          if (up) leaving = true;
        }
        break;
      case 2:
        if (connected && (leaving || rng() % 8 == 0)) {
          connected = leaving = false;
          probe_out = false;
          s.OnLost(now);
        }
        break;
      default:
        if (rng() % 4 == 0) {  // a new map: some learned POPs (issue 7)
          std::vector<std::string> learned;
          for (int k = 0; k < 6; k++)
            if (rng() % 2) learned.push_back("10.0.1." + std::to_string(k) + ":7100");
          if (rng() % 3 == 0) learned.push_back(p.addrs[rng() % p.addrs.size()]);
          s.SetLearned(learned);
          break;
        }
        if (wake != UINT64_MAX && wake > now) now = wake;
        else now += rng() % 5000;
    }
    ASSERT_EQ(s.registered(), connected && !leaving);
    ASSERT_LE(s.addrs().size(), PopSelector::kPopsMax);
    for (size_t k = 0; k < p.addrs.size(); k++) ASSERT_EQ(s.addrs()[k], p.addrs[k]);
    if (dial_out) ASSERT_EQ(s.addrs()[out_index], out_addr) << "a dial's index moved";
    if (connected) ASSERT_EQ(s.addrs()[s.current()], connected_addr);
  }
}

// Issue 7: a gateway configured with one POP learns its region's other POPs
// from the cluster map and fails over to them; the configured one stays
// first (it is returned to when it is back).
TEST(PopSelector, FailsOverToPopsLearnedFromTheMap) {
  PopSelector s(Params(1), 0);
  ExpectStep(s, 0, PopStep::kDial, 0);
  s.OnRegistered(1, 0);
  s.SetLearned({"10.0.0.1:7100", "10.0.0.9:7100", "10.0.0.8:7100", "10.0.0.9:7100"});
  ExpectStep(s, 2, PopStep::kNothing, 0);
  EXPECT_EQ(s.addrs(), (std::vector<std::string>{"10.0.0.1:7100", "10.0.0.9:7100",
                                                 "10.0.0.8:7100"}));
  EXPECT_EQ(s.configured(), 1u);
  EXPECT_EQ(s.current(), 0u);
  s.OnLost(100);
  ExpectStep(s, 1100, PopStep::kDial, 0);
  s.OnDialFailed(1101, 0);
  ExpectStep(s, 1101, PopStep::kDial, 1);  // learned from the map
  s.OnRegistered(1102, 1);
  EXPECT_EQ(s.addrs()[s.current()], "10.0.0.9:7100");
  // A newer map without the POP in use: it stays until left; the other
  // learned one goes; probes of the configured one go on.
  s.SetLearned({"10.0.0.7:7100"});
  ExpectStep(s, 1103, PopStep::kNothing, 0);
  EXPECT_EQ(s.addrs(), (std::vector<std::string>{"10.0.0.1:7100", "10.0.0.7:7100",
                                                 "10.0.0.9:7100"}));
  EXPECT_EQ(s.current(), 2u);
  EXPECT_TRUE(s.registered());
  ExpectStep(s, 1102 + 60000, PopStep::kProbe, 0);
  s.OnProbeResult(1102 + 60001, 0, false);
  ExpectStep(s, 1102 + 60001, PopStep::kProbe, 1);
}

TEST(PopSelector, LearnedListWaitsForTheOutstandingDial) {
  PopSelector s(Params(2), 0);
  ExpectStep(s, 0, PopStep::kDial, 0);
  s.SetLearned({"10.0.0.5:7100"});
  EXPECT_EQ(s.addrs().size(), 2u) << "replaced while a dial was out";
  s.OnDialFailed(1, 0);
  ExpectStep(s, 1, PopStep::kDial, 1);  // applied now; the configured order holds
  EXPECT_EQ(s.addrs().size(), 3u);
  s.OnDialFailed(2, 1);
  ExpectStep(s, 2, PopStep::kDial, 2);
  EXPECT_EQ(s.addrs()[2], "10.0.0.5:7100");
  // Bounded: never more than kPopsMax candidates.
  std::vector<std::string> many;
  for (size_t i = 0; i < 2 * PopSelector::kPopsMax; i++) many.push_back("h" + std::to_string(i) + ":1");
  s.OnRegistered(3, 2);
  s.SetLearned(many);
  ExpectStep(s, 4, PopStep::kNothing, 0);
  EXPECT_EQ(s.addrs().size(), PopSelector::kPopsMax);
  EXPECT_EQ(s.addrs()[s.current()], "10.0.0.5:7100") << "the POP in use is kept";
}

}  // namespace
}  // namespace mistore
