#include "shared/core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "shared/core/assert.h"

namespace mistore {

// ---- Histogram ---------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (size_t i = 0; i < bounds_.size(); i++) {
    MS_ASSERT(std::isfinite(bounds_[i]));
    if (i > 0) MS_ASSERT(bounds_[i] > bounds_[i - 1]);
  }
  buckets_.reset(new std::atomic<uint64_t>[bounds_.size() + 1]);
  for (size_t i = 0; i <= bounds_.size(); i++) buckets_[i].store(0);
}

void Histogram::Observe(double v) {
  // First bucket whose upper bound is >= v (Prometheus buckets are "le").
  size_t i = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); i++) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(acc);
  }
  // _count is the +Inf bucket by definition; taking it from the same
  // snapshot keeps the exposition consistent while observers race with us.
  s.count = acc;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// ---- formatting --------------------------------------------------------

bool ValidMetricName(const std::string& n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); i++) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidLabelName(const std::string& n) {
  if (n.empty() || n.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < n.size(); i++) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return n != "le" && n != "quantile";  // reserved for histograms and summaries
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

static std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    // Shortest form that reads back as the same double ("0.1", not
    // "0.10000000000000001").
    for (int prec = 15; prec <= 17; prec++) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
  }
  return buf;
}

static std::string FormatLabels(const MetricLabels& labels, const std::string& extra_name = {},
                                const std::string& extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name + "=\"" + EscapeLabelValue(extra_value) + "\"";
  }
  out += '}';
  return out;
}

// ---- registry ----------------------------------------------------------

MetricsRegistry::Family& MetricsRegistry::FamilyFor(const std::string& name,
                                                    const std::string& help, Type type,
                                                    const MetricLabels& labels) {
  MS_ASSERT(ValidMetricName(name));
  if (type == Type::kCounter) MS_ASSERT(name.size() > 6 && name.ends_with("_total"));
  std::vector<std::string> label_names;
  for (auto& [k, v] : labels) {
    MS_ASSERT(ValidLabelName(k));
    label_names.push_back(k);
  }
  MS_ASSERT(series_count_ < series_max_);
  Family* f;
  auto it = by_name_.find(name);
  if (it == by_name_.end()) {
    families_.push_back(std::make_unique<Family>());
    f = families_.back().get();
    f->name = name;
    f->help = help;
    f->type = type;
    f->label_names = label_names;
    by_name_[name] = f;
  } else {
    f = it->second;
    MS_ASSERT(f->type == type);
    MS_ASSERT(f->label_names == label_names);
    for (auto& s : f->series) MS_ASSERT(s.labels != labels);
  }
  series_count_++;
  f->series.push_back(Series{labels, nullptr, nullptr, nullptr, {}});
  return *f;
}

Counter& MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = FamilyFor(name, help, Type::kCounter, labels);
  counters_.emplace_back();
  f.series.back().counter = &counters_.back();
  return counters_.back();
}

Gauge& MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                 const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = FamilyFor(name, help, Type::kGauge, labels);
  gauges_.emplace_back();
  f.series.back().gauge = &gauges_.back();
  return gauges_.back();
}

Histogram& MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds,
                                         const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = FamilyFor(name, help, Type::kHistogram, labels);
  if (f.series.size() > 1) MS_ASSERT(f.series.front().histogram->bounds() == bounds);
  histograms_.emplace_back(std::move(bounds));
  f.series.back().histogram = &histograms_.back();
  return histograms_.back();
}

void MetricsRegistry::AddGaugeFn(const std::string& name, const std::string& help,
                                 std::function<double()> fn, const MetricLabels& labels) {
  MS_ASSERT(fn);
  std::lock_guard<std::mutex> lock(mu_);
  FamilyFor(name, help, Type::kGauge, labels).series.back().fn = std::move(fn);
}

void MetricsRegistry::AddCounterFn(const std::string& name, const std::string& help,
                                   std::function<double()> fn, const MetricLabels& labels) {
  MS_ASSERT(fn);
  std::lock_guard<std::mutex> lock(mu_);
  FamilyFor(name, help, Type::kCounter, labels).series.back().fn = std::move(fn);
}

size_t MetricsRegistry::series() const {
  std::lock_guard<std::mutex> lock(mu_);
  return series_count_;
}

std::string MetricsRegistry::Exposition() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(256 * series_count_);
  for (auto& fp : families_) {
    const Family& f = *fp;
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " " + type + "\n";
    for (const Series& s : f.series) {
      if (s.histogram) {
        Histogram::Snapshot snap = s.histogram->Take();
        const auto& b = s.histogram->bounds();
        for (size_t i = 0; i <= b.size(); i++) {
          std::string le = i < b.size() ? FormatMetricValue(b[i]) : "+Inf";
          out += f.name + "_bucket" + FormatLabels(s.labels, "le", le) + " " +
                 std::to_string(snap.cumulative[i]) + "\n";
        }
        out += f.name + "_sum" + FormatLabels(s.labels) + " " + FormatMetricValue(snap.sum) + "\n";
        out += f.name + "_count" + FormatLabels(s.labels) + " " + std::to_string(snap.count) + "\n";
        continue;
      }
      double v = s.fn        ? s.fn()
                 : s.counter ? double(s.counter->value())
                             : s.gauge->value();
      std::string value = s.counter ? std::to_string(s.counter->value()) : FormatMetricValue(v);
      out += f.name + FormatLabels(s.labels) + " " + value + "\n";
    }
  }
  return out;
}

}  // namespace mistore
