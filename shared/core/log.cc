#include "shared/core/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <cstdio>
#include <ctime>

namespace mistore {

// g_level: the lowest level any component logs at (the macro's fast path);
// g_default: the level of components without an override.
static std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
static std::atomic<int> g_default{static_cast<int>(LogLevel::kInfo)};
static std::map<std::string, LogLevel, std::less<>> g_overrides;

void SetLogLevel(LogLevel level) {
  g_overrides.clear();
  g_default = static_cast<int>(level);
  g_level = static_cast<int>(level);
}
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

bool LogEnabled(LogLevel level, std::string_view component) {
  auto it = g_overrides.find(component);
  int min = it == g_overrides.end() ? g_default.load() : static_cast<int>(it->second);
  return static_cast<int>(level) >= min;
}

bool ApplyLogLevels(std::string_view spec) {
  LogLevel def;
  std::map<std::string, LogLevel, std::less<>> overrides;
  size_t comma = spec.find(',');
  if (!ParseLogLevel(spec.substr(0, comma), &def)) return false;
  while (comma != std::string_view::npos) {
    spec.remove_prefix(comma + 1);
    comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    size_t eq = item.find('=');
    LogLevel l;
    if (eq == 0 || eq == std::string_view::npos || !ParseLogLevel(item.substr(eq + 1), &l))
      return false;
    overrides[std::string(item.substr(0, eq))] = l;
    if (overrides.size() > kLogComponentOverridesMax) return false;
  }
  int lowest = static_cast<int>(def);
  for (auto& [c, l] : overrides) lowest = std::min(lowest, static_cast<int>(l));
  g_overrides = std::move(overrides);
  g_default = static_cast<int>(def);
  g_level = lowest;
  return true;
}

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  if (name == "debug") *out = LogLevel::kDebug;
  else if (name == "info") *out = LogLevel::kInfo;
  else if (name == "warn") *out = LogLevel::kWarn;
  else if (name == "error") *out = LogLevel::kError;
  else return false;
  return true;
}

static const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

void LogLine(LogLevel level, std::string_view component, std::string_view msg,
             std::string_view fields) {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char ts[64];
  size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof ts - n, ".%03dZ", int(tv.tv_usec / 1000));
  std::string line;
  line.reserve(128 + msg.size() + fields.size());
  line += ts;
  line += " level=";
  line += LevelName(level);
  line += " component=";
  line += component;
  line += " msg=\"";
  for (char c : msg) line += (c == '"' || c == '\n') ? '\'' : c;
  line += '"';
  if (!fields.empty()) {
    line += ' ';
    line += fields;
  }
  line += '\n';
  ssize_t ignored = write(2, line.data(), line.size());
  (void)ignored;
}

}  // namespace mistore
