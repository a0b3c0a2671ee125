#include "shared/core/status.h"

#include <cstdio>
#include <cstdlib>

namespace mistore {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kCorrupt: return "corrupt";
    case Code::kUnavailable: return "unavailable";
    case Code::kResourceExhausted: return "resource exhausted";
    case Code::kProtocol: return "protocol error";
    case Code::kIo: return "i/o error";
    case Code::kAborted: return "aborted";
    case Code::kPermissionDenied: return "permission denied";
    case Code::kInternal: return "internal error";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

void AssertFail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "mistore: assertion failed: %s at %s:%d\n", expr, file, line);
  std::fflush(stderr);
  std::abort();
}

void FatalExit(const char* what, const char* detail) {
  std::fprintf(stderr, "mistore: fatal: %s: %s\n", what, detail ? detail : "");
  std::fflush(stderr);
  std::exit(70);
}

}  // namespace mistore
