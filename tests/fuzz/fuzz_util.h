// Helpers shared by the fuzz targets. Test-only; a target runs one input at
// a time on one thread.
#pragma once

#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "shared/core/bytes.h"
#include "shared/proto/mistore.pb.h"
#include "shared/wire/envelope.h"
#include "shared/wire/frame.h"

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

// The request-driving targets' input (fuzz_pop_request, fuzz_agent_request):
// a stream of frames (1 MiB limit; a frame over it ends the stream), each a
// selector byte and, unless selector % 4 == 3 (a tick, no message), an
// Envelope. Next skips empty frames and bodies that do not decode.
class SelectedFrames {
 public:
  SelectedFrames(const uint8_t* data, size_t size) : dec_(size_t{1} << 20) {
    (void)dec_.Feed(data, size);
  }
  bool Next(uint8_t* selector, pb::Envelope* env) {
    Bytes frame;
    while (dec_.Next(&frame)) {
      if (frame.empty()) continue;
      *selector = frame[0];
      env->Clear();
      if (*selector % 4 == 3) return true;
      if (DecodeEnvelope(Bytes(frame.begin() + 1, frame.end()), env).ok()) return true;
    }
    return false;
  }

 private:
  FrameDecoder dec_;
};

}  // namespace mistore::fuzz
