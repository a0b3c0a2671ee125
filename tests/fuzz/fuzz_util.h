// Helpers shared by the fuzz targets. Test-only; a target runs one input at
// a time on one thread.
#pragma once

#include <google/protobuf/stubs/logging.h>

#include <string>

namespace mistore::fuzz {

// protobuf-lite logs an error for every string field that is not valid
// UTF-8, which fuzzed messages are full of (the parse then fails, which is
// what is tested): silence its log once per process.
inline void QuietProtobufLogs() {
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(
        [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    return true;
  }();
  (void)quiet;
}

}  // namespace mistore::fuzz
