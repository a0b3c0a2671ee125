#include "shared/core/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>
#include <vector>

namespace mistore {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Metrics, CounterAndGaugeExposition) {
  MetricsRegistry r;
  Counter& c = r.AddCounter("mistore_test_events_total", "Events seen.");
  Gauge& g = r.AddGauge("mistore_test_queue", "Items queued.");
  c.Inc();
  c.Inc(4);
  g.Set(7);
  g.Add(-2.5);
  std::string text = r.Exposition();
  EXPECT_THAT(text, HasSubstr("# HELP mistore_test_events_total Events seen.\n"
                              "# TYPE mistore_test_events_total counter\n"
                              "mistore_test_events_total 5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE mistore_test_queue gauge\nmistore_test_queue 4.5\n"));
}

TEST(Metrics, LabelledSeriesShareOneFamilyHeader) {
  MetricsRegistry r;
  Counter& ok = r.AddCounter("mistore_test_requests_total", "Requests.",
                             {{"type", "put"}, {"result", "ok"}});
  Counter& err = r.AddCounter("mistore_test_requests_total", "Requests.",
                              {{"type", "put"}, {"result", "error"}});
  ok.Inc(3);
  err.Inc();
  std::string text = r.Exposition();
  EXPECT_THAT(text, HasSubstr("mistore_test_requests_total{type=\"put\",result=\"ok\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_requests_total{type=\"put\",result=\"error\"} 1\n"));
  size_t first = text.find("# TYPE mistore_test_requests_total");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("# TYPE mistore_test_requests_total", first + 1), std::string::npos);
  EXPECT_EQ(r.series(), 2u);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  MetricsRegistry r;
  Histogram& h = r.AddHistogram("mistore_test_duration_seconds", "Durations.", {0.1, 1, 10},
                                {{"type", "get"}});
  h.Observe(0.05);
  h.Observe(0.1);  // le is inclusive
  h.Observe(0.5);
  h.Observe(20);
  std::string text = r.Exposition();
  EXPECT_THAT(text, HasSubstr("# TYPE mistore_test_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_duration_seconds_bucket{type=\"get\",le=\"0.1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_duration_seconds_bucket{type=\"get\",le=\"1\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_duration_seconds_bucket{type=\"get\",le=\"10\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_duration_seconds_bucket{type=\"get\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_duration_seconds_count{type=\"get\"} 4\n"));
  std::string sum_key = "mistore_test_duration_seconds_sum{type=\"get\"} ";
  size_t at = text.find(sum_key);
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::strtod(text.c_str() + at + sum_key.size(), nullptr), 20.65, 1e-9);
}

TEST(Metrics, CallbacksAreReadAtExposition) {
  MetricsRegistry r;
  int queue = 3;
  r.AddGaugeFn("mistore_test_depth", "Depth.", [&] { return double(queue); });
  r.AddCounterFn("mistore_test_done_total", "Done.", [&] { return 42.0; }, {{"kind", "a"}});
  EXPECT_THAT(r.Exposition(), HasSubstr("mistore_test_depth 3\n"));
  queue = 9;
  std::string text = r.Exposition();
  EXPECT_THAT(text, HasSubstr("mistore_test_depth 9\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_done_total{kind=\"a\"} 42\n"));
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry r;
  r.AddGauge("mistore_test_info", "Line one\nback\\slash", {{"v", "a\"b\\c\nd"}}).Set(1);
  std::string text = r.Exposition();
  EXPECT_THAT(text, HasSubstr("# HELP mistore_test_info Line one\\nback\\\\slash\n"));
  EXPECT_THAT(text, HasSubstr("mistore_test_info{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(Metrics, ValueFormatting) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(1e15), "1000000000000000");
  EXPECT_EQ(FormatMetricValue(0.5), "0.5");
  EXPECT_EQ(FormatMetricValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatMetricValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatMetricValue(0.0 / 0.0), "NaN");
}

TEST(Metrics, NameValidation) {
  EXPECT_TRUE(ValidMetricName("mistore_pop_requests_total"));
  EXPECT_TRUE(ValidMetricName("a:b_c9"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_FALSE(ValidMetricName("9abc"));
  EXPECT_FALSE(ValidMetricName("with-dash"));
  EXPECT_TRUE(ValidLabelName("type"));
  EXPECT_FALSE(ValidLabelName("__reserved"));
  EXPECT_FALSE(ValidLabelName("le"));
  EXPECT_FALSE(ValidLabelName("a.b"));
}

TEST(MetricsDeathTest, MisuseIsAnAssertion) {
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("mistore_no_suffix", "Counters end in _total.");
      },
      "");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("mistore_x_total", "x", {{"a", "1"}});
        r.AddCounter("mistore_x_total", "x", {{"a", "1"}});  // same series twice
      },
      "");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("mistore_x_total", "x", {{"a", "1"}});
        r.AddGauge("mistore_x_total", "x", {{"a", "2"}});  // type changes
      },
      "");
  EXPECT_DEATH(
      {
        MetricsRegistry r(2);
        r.AddGauge("mistore_a", "a");
        r.AddGauge("mistore_b", "b");
        r.AddGauge("mistore_c", "c");  // beyond series_max
      },
      "");
}

TEST(Metrics, CountersFromManyThreads) {
  MetricsRegistry r;
  Counter& c = r.AddCounter("mistore_test_bumps_total", "Bumps.");
  Histogram& h = r.AddHistogram("mistore_test_work_seconds", "Work.", LatencyBuckets());
  Gauge& g = r.AddGauge("mistore_test_level", "Level.");
  constexpr int kThreads = 8, kPer = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&] {
      for (int i = 0; i < kPer; i++) {
        c.Inc();
        h.Observe(0.001);
        g.Add(1);
      }
    });
  // Exposition while writers run must not tear or crash.
  for (int i = 0; i < 20; i++) EXPECT_THAT(r.Exposition(), HasSubstr("mistore_test_bumps_total "));
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.value(), uint64_t(kThreads * kPer));
  EXPECT_EQ(g.value(), double(kThreads * kPer));
  Histogram::Snapshot s = h.Take();
  EXPECT_EQ(s.count, uint64_t(kThreads * kPer));
  EXPECT_THAT(r.Exposition(), Not(HasSubstr("NaN")));
}

}  // namespace
}  // namespace mistore
