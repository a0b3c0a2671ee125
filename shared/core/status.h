// Status and Result<T>: the error type every Mistore module returns for
// failures that can happen in operation (bad input, a peer gone, a full disk).
// What must never happen is an MS_ASSERT (assert.h); environment failures at
// start-up go through FatalExit. No exceptions cross module boundaries.
// Header-only, no threads or loops involved: values are plain data.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "shared/core/assert.h"

namespace mistore {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // caller's input is malformed
  kNotFound,         // named thing does not exist
  kCorrupt,          // stored or received bytes fail a check
  kUnavailable,      // a peer or resource is down; retrying may help
  kResourceExhausted,// a limit was hit (queue, disk share, frame size)
  kProtocol,         // peer violated the wire protocol
  kIo,               // local I/O failed
  kAborted,          // operation was cancelled or superseded
  kPermissionDenied,
  kInternal,
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status Corrupt(std::string m) { return {Code::kCorrupt, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
inline Status ProtocolError(std::string m) { return {Code::kProtocol, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIo, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    MS_ASSERT(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    MS_ASSERT(ok());
    return *value_;
  }
  const T& value() const& {
    MS_ASSERT(ok());
    return *value_;
  }
  T&& value() && {
    MS_ASSERT(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace mistore

#define MS_RETURN_IF_ERROR(expr)        \
  do {                                  \
    ::mistore::Status _st = (expr);     \
    if (!_st.ok()) return _st;          \
  } while (0)

#define MS_CONCAT_INNER(a, b) a##b
#define MS_CONCAT(a, b) MS_CONCAT_INNER(a, b)
#define MS_ASSIGN_OR_RETURN(lhs, expr)                     \
  auto MS_CONCAT(_res_, __LINE__) = (expr);                \
  if (!MS_CONCAT(_res_, __LINE__).ok())                    \
    return MS_CONCAT(_res_, __LINE__).status();            \
  lhs = std::move(MS_CONCAT(_res_, __LINE__)).value()
