// Metrics: a small registry of counters, gauges and histograms, exposed in
// the Prometheus text format (version 0.0.4) by Exposition().
//
// Every series (a metric name plus one set of label values) is registered
// up front, at start-up, by the code that owns it: label values never come
// from request data, so the number of series is bounded by the code (and
// checked against MetricsRegistry's series_max). No subscriber, object or
// chunk ids as labels.
//
// Threads: registration and Exposition() take the registry's mutex; the
// returned Counter/Gauge/Histogram references stay valid for the registry's
// lifetime and their updates are lock-free atomics, safe from any thread
// (libuv's worker pool included). Value callbacks (AddGaugeFn/AddCounterFn)
// run inside Exposition(), on the thread that calls it (the daemon's loop).
//
// Names follow Prometheus conventions: [a-zA-Z_:][a-zA-Z0-9_:]*, base units
// (seconds, bytes), counters end in _total. A bad name is an MS_ASSERT.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace mistore {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void Set(double v) { v_.store(v, std::memory_order_relaxed); }
  void Add(double d) { v_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Fixed buckets (upper bounds, strictly increasing, +Inf implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot Take() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Buckets for request latencies: 0.5 ms .. 10 s.
std::vector<double> LatencyBuckets();

class MetricsRegistry {
 public:
  explicit MetricsRegistry(size_t series_max = 4096) : series_max_(series_max) {}
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The same name may be registered again with other label values (one
  // family); type, help and label names must then match. Registering the
  // same name and label values twice is an MS_ASSERT.
  Counter& AddCounter(const std::string& name, const std::string& help,
                      const MetricLabels& labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help,
                  const MetricLabels& labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, const MetricLabels& labels = {});
  // Values read at exposition time (on the exposing thread).
  void AddGaugeFn(const std::string& name, const std::string& help, std::function<double()> fn,
                  const MetricLabels& labels = {});
  void AddCounterFn(const std::string& name, const std::string& help,
                    std::function<double()> fn, const MetricLabels& labels = {});

  // Prometheus text exposition format, families in registration order.
  std::string Exposition() const;
  size_t series() const;

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    MetricLabels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> fn;
  };
  struct Family {
    std::string name, help;
    Type type;
    std::vector<std::string> label_names;
    std::vector<Series> series;
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Type type,
                    const MetricLabels& labels);  // mu_ held

  mutable std::mutex mu_;
  size_t series_max_;
  size_t series_count_ = 0;
  std::vector<std::unique_ptr<Family>> families_;
  std::map<std::string, Family*> by_name_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
};

// Formatting helpers (exposed for tests).
bool ValidMetricName(const std::string& name);
bool ValidLabelName(const std::string& name);
std::string EscapeLabelValue(const std::string& v);
std::string FormatMetricValue(double v);

}  // namespace mistore
