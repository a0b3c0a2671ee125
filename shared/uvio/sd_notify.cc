// See sd_notify.h. Plain BSD sockets (no libuv handle: one datagram per
// message, sent non-blocking from the loop thread).
#include "shared/uvio/sd_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>

#include "shared/core/log.h"

namespace mistore {
namespace {

bool ParseU64(const char* s, uint64_t* out) {
  if (!s || !*s) return false;
  const char* end = s + strlen(s);
  auto [p, ec] = std::from_chars(s, end, *out);
  return ec == std::errc() && p == end;
}

}  // namespace

Result<SdNotifyEnv> ParseSdNotifyEnv(const char* notify_socket, const char* watchdog_usec,
                                     const char* watchdog_pid, pid_t self_pid) {
  SdNotifyEnv env;
  if (!notify_socket || !*notify_socket) return env;
  std::string sock = notify_socket;
  if (sock[0] != '/' && sock[0] != '@')
    return InvalidArgument("NOTIFY_SOCKET must be an absolute path or start with '@': " + sock);
  if (sock.size() < 2 || sock.size() >= sizeof(sockaddr_un{}.sun_path))
    return InvalidArgument("NOTIFY_SOCKET does not fit a Unix socket address: " + sock);
  env.socket = sock;
  if (watchdog_usec && *watchdog_usec) {
    uint64_t usec = 0;
    if (!ParseU64(watchdog_usec, &usec) || usec == 0)
      return InvalidArgument(std::string("WATCHDOG_USEC is not a positive integer: ") + watchdog_usec);
    bool ours = true;
    if (watchdog_pid && *watchdog_pid) {
      uint64_t pid = 0;
      if (!ParseU64(watchdog_pid, &pid) || pid == 0)
        return InvalidArgument(std::string("WATCHDOG_PID is not a process id: ") + watchdog_pid);
      ours = pid == uint64_t(self_pid);
    }
    // Half the timeout, as sd_watchdog_enabled(3) advises; at least 1 ms.
    if (ours) env.watchdog_interval_ms = std::max<uint64_t>(1, usec / 2000);
  }
  return env;
}

Status SdNotifySend(const std::string& socket_path, std::string_view message) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket_path.size() < 2 || socket_path.size() >= sizeof sa.sun_path)
    return InvalidArgument("bad notify socket address: " + socket_path);
  memcpy(sa.sun_path, socket_path.data(), socket_path.size());
  socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + socket_path.size());
  if (socket_path[0] == '@') {
    sa.sun_path[0] = '\0';  // abstract namespace: the length ends the name
  } else {
    len += 1;  // the terminating NUL of a path
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return IoError(std::string("notify socket: ") + strerror(errno));
  ssize_t n = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&sa), len);
  int err = errno;
  close(fd);
  if (n < 0) {
    if (err == EAGAIN || err == EWOULDBLOCK || err == ECONNREFUSED || err == ENOENT)
      return Unavailable("notify " + socket_path + ": " + strerror(err));
    return IoError("notify " + socket_path + ": " + strerror(err));
  }
  if (size_t(n) != message.size()) return IoError("notify " + socket_path + ": short datagram");
  return Status::Ok();
}

SdNotifier::SdNotifier(EventLoop* loop, std::string component)
    : loop_(loop), component_(std::move(component)) {
  auto env = ParseSdNotifyEnv(getenv("NOTIFY_SOCKET"), getenv("WATCHDOG_USEC"),
                              getenv("WATCHDOG_PID"), getpid());
  if (!env.ok()) {
    MS_WARN(component_.c_str(), "sd_notify off: bad environment",
            "error=\"" + env.status().message() + "\"");
    return;
  }
  env_ = std::move(env.value());
}

SdNotifier::~SdNotifier() {
  if (watchdog_) loop_->Cancel(*watchdog_);
}

void SdNotifier::Send(const std::string& message) {
  if (!enabled()) return;
  Status s = SdNotifySend(env_.socket, message);
  if (!s.ok() && !warned_) {
    warned_ = true;  // once: the watchdog would repeat it every interval
    MS_WARN(component_.c_str(), "sd_notify failed", "error=\"" + s.message() + "\"");
  }
}

void SdNotifier::Ready(std::string_view status) {
  if (!enabled()) return;
  std::string msg = "READY=1";
  if (!status.empty()) msg += "\nSTATUS=" + std::string(status);
  Send(msg);
  if (env_.watchdog_interval_ms && !watchdog_) {
    watchdog_ = loop_->Every(env_.watchdog_interval_ms, [this] { Send("WATCHDOG=1"); });
  }
}

void SdNotifier::SetStatus(std::string_view status) {
  if (!enabled()) return;
  Send("STATUS=" + std::string(status));
}

void SdNotifier::Stopping() {
  if (!enabled()) return;
  if (watchdog_) {
    loop_->Cancel(*watchdog_);
    watchdog_.reset();
  }
  Send("STOPPING=1");
}

}  // namespace mistore
