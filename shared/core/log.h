// Structured logging: one line per event to stderr,
//   2026-11-28T12:00:00.123Z level=info component=pop msg="..." key=value
// for journald and procd. Thread-safe (one write(2) per line). Never log key
// material or plaintext.
#pragma once

#include <string>
#include <string_view>

namespace mistore {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);  // default for every component; clears overrides
bool ParseLogLevel(std::string_view name, LogLevel* out);
LogLevel GetLogLevel();  // the lowest level any component logs at

// Level per component, from a config value: "LEVEL" or
// "LEVEL,COMPONENT=LEVEL,..." (e.g. "info,pop=debug,uvio=warn"). Returns
// false on a malformed spec and changes nothing. Call before starting any
// thread that logs (the overrides are read without a lock).
constexpr size_t kLogComponentOverridesMax = 32;
bool ApplyLogLevels(std::string_view spec);
bool LogEnabled(LogLevel level, std::string_view component);

// Emits one line. `fields` is pre-formatted "k=v k2=v2" (may be empty).
void LogLine(LogLevel level, std::string_view component, std::string_view msg,
             std::string_view fields = {});

}  // namespace mistore

#define MS_LOG(level, component, msg, fields)                                   \
  do {                                                                          \
    if (static_cast<int>(level) >= static_cast<int>(::mistore::GetLogLevel()) && \
        ::mistore::LogEnabled(level, component))                                  \
      ::mistore::LogLine(level, component, msg, fields);                          \
  } while (0)
#define MS_INFO(c, m, f) MS_LOG(::mistore::LogLevel::kInfo, c, m, f)
#define MS_WARN(c, m, f) MS_LOG(::mistore::LogLevel::kWarn, c, m, f)
#define MS_ERROR(c, m, f) MS_LOG(::mistore::LogLevel::kError, c, m, f)
#define MS_DEBUG(c, m, f) MS_LOG(::mistore::LogLevel::kDebug, c, m, f)
