// sd_notify: the daemons' side of systemd's readiness and watchdog protocol
// (sd_notify(3)), written here instead of linking libsystemd so that the
// static gateway agent needs no shared library. A message is one datagram of
// newline-separated "KEY=VALUE" lines sent to the Unix socket named by
// $NOTIFY_SOCKET (a leading '@' names Linux's abstract namespace).
//
// Who owns what: each daemon's main object owns one SdNotifier; it reads the
// environment once at construction. Everything runs on the daemon's event
// loop thread: the watchdog pings are a libuv timer of that loop, so a loop
// that stops turning stops pinging and systemd restarts the daemon.
// Without $NOTIFY_SOCKET (not under systemd, or under procd) every call is a
// no-op.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "shared/core/status.h"
#include "shared/uvio/loop.h"

namespace mistore {

// What the environment asks of us (pure: the caller passes getenv() values).
struct SdNotifyEnv {
  std::string socket;               // empty: notifications are off
  uint64_t watchdog_interval_ms = 0;  // 0: no watchdog; else WATCHDOG_USEC/2
};

// notify_socket, watchdog_usec, watchdog_pid: the environment variables
// (nullptr when unset). The watchdog is ours only when WATCHDOG_PID is unset
// or equals self_pid. A malformed WATCHDOG_USEC or WATCHDOG_PID, or a socket
// path that does not fit a sockaddr_un, is kInvalidArgument.
Result<SdNotifyEnv> ParseSdNotifyEnv(const char* notify_socket, const char* watchdog_usec,
                                     const char* watchdog_pid, pid_t self_pid);

// Sends one datagram to `socket` ("/path" or "@abstract"). Synchronous and
// non-blocking: a full socket buffer is kUnavailable, not a stall.
Status SdNotifySend(const std::string& socket, std::string_view message);

class SdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. `component` names
  // the daemon in log lines. A malformed environment is logged once and
  // turns notifications off (the daemon still runs).
  SdNotifier(EventLoop* loop, std::string component);
  ~SdNotifier();
  SdNotifier(const SdNotifier&) = delete;
  SdNotifier& operator=(const SdNotifier&) = delete;

  bool enabled() const { return !env_.socket.empty(); }
  uint64_t watchdog_interval_ms() const { return env_.watchdog_interval_ms; }

  // READY=1 (with STATUS=status when not empty); call once storage is open
  // and listeners are bound. Starts the watchdog pings.
  void Ready(std::string_view status = {});
  // STATUS=status.
  void SetStatus(std::string_view status);
  // STOPPING=1: an orderly shutdown began; stops the watchdog pings.
  void Stopping();

 private:
  void Send(const std::string& message);

  EventLoop* loop_;
  std::string component_;
  SdNotifyEnv env_;
  std::optional<TimerId> watchdog_;
  bool warned_ = false;
};

}  // namespace mistore
