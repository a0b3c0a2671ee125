#include "shared/core/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace mistore {

static std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

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
