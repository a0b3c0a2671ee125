// sd_notify: the environment rules (pure) and datagrams delivered to a real
// Unix datagram socket bound by the test, by path and in the abstract
// namespace; the watchdog timer of SdNotifier on a real loop.
#include "shared/uvio/sd_notify.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace mistore {
namespace {

TEST(ParseSdNotifyEnv, UnsetMeansOff) {
  auto e = ParseSdNotifyEnv(nullptr, "30000000", nullptr, 42);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->socket.empty());
  EXPECT_EQ(e->watchdog_interval_ms, 0u);
  auto empty = ParseSdNotifyEnv("", nullptr, nullptr, 42);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->socket.empty());
}

TEST(ParseSdNotifyEnv, WatchdogIsHalfTheTimeout) {
  auto e = ParseSdNotifyEnv("/run/systemd/notify", "30000000", nullptr, 42);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->socket, "/run/systemd/notify");
  EXPECT_EQ(e->watchdog_interval_ms, 15000u);
  auto small = ParseSdNotifyEnv("@x", "1000", nullptr, 42);  // 1 ms timeout
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->watchdog_interval_ms, 1u);
}

TEST(ParseSdNotifyEnv, WatchdogOnlyForOurPid) {
  auto ours = ParseSdNotifyEnv("/s", "2000000", "42", 42);
  ASSERT_TRUE(ours.ok());
  EXPECT_EQ(ours->watchdog_interval_ms, 1000u);
  auto other = ParseSdNotifyEnv("/s", "2000000", "43", 42);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->watchdog_interval_ms, 0u);
  EXPECT_EQ(other->socket, "/s");  // READY still goes out
  auto none = ParseSdNotifyEnv("/s", nullptr, "42", 42);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->watchdog_interval_ms, 0u);
}

TEST(ParseSdNotifyEnv, MalformedIsRefused) {
  EXPECT_EQ(ParseSdNotifyEnv("relative/path", nullptr, nullptr, 1).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseSdNotifyEnv("@", nullptr, nullptr, 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseSdNotifyEnv(("/" + std::string(200, 'a')).c_str(), nullptr, nullptr, 1)
                .status()
                .code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(ParseSdNotifyEnv("/s", "abc", nullptr, 1).ok());
  EXPECT_FALSE(ParseSdNotifyEnv("/s", "0", nullptr, 1).ok());
  EXPECT_FALSE(ParseSdNotifyEnv("/s", "12x", nullptr, 1).ok());
  EXPECT_FALSE(ParseSdNotifyEnv("/s", "1000", "-3", 1).ok());
}

// A bound datagram socket: `name` is a path or "@abstract".
class Receiver {
 public:
  explicit Receiver(const std::string& name) : name_(name) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name.data(), name.size());
    socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + name.size());
    if (name[0] == '@') sa.sun_path[0] = '\0';
    else len += 1;
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) == 0;
    timeval tv{5, 0};  // a missing datagram fails the test instead of hanging it
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Receiver() {
    close(fd_);
    if (name_[0] == '/') unlink(name_.c_str());
  }
  bool bound() const { return bound_; }
  std::string Recv() {
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n < 0 ? std::string("<nothing>") : std::string(buf, size_t(n));
  }

 private:
  std::string name_;
  int fd_;
  bool bound_ = false;
};

std::string TempSocketPath() {
  const char* tmp = getenv("TMPDIR");
  return std::string(tmp && *tmp ? tmp : "/tmp") + "/ms-notify-" + std::to_string(getpid());
}

TEST(SdNotifySend, ToAPath) {
  Receiver r(TempSocketPath());
  ASSERT_TRUE(r.bound());
  ASSERT_TRUE(SdNotifySend(TempSocketPath(), "READY=1\nSTATUS=serving").ok());
  EXPECT_EQ(r.Recv(), "READY=1\nSTATUS=serving");
}

TEST(SdNotifySend, ToTheAbstractNamespace) {
  std::string name = "@mistore-notify-test-" + std::to_string(getpid());
  Receiver r(name);
  ASSERT_TRUE(r.bound());
  ASSERT_TRUE(SdNotifySend(name, "WATCHDOG=1").ok());
  EXPECT_EQ(r.Recv(), "WATCHDOG=1");
}

TEST(SdNotifySend, NobodyListeningIsAnError) {
  Status s = SdNotifySend(TempSocketPath() + "-absent", "READY=1");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kUnavailable);
}

// SdNotifier on a real loop: READY, then watchdog pings at the interval the
// environment gives, then STOPPING and no more pings.
TEST(SdNotifier, ReadyWatchdogStopping) {
  std::string path = TempSocketPath() + "-n";
  Receiver r(path);
  ASSERT_TRUE(r.bound());
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  setenv("WATCHDOG_USEC", "20000", 1);  // 20 ms: pings every 10 ms
  unsetenv("WATCHDOG_PID");
  EventLoop loop;
  SdNotifier n(&loop, "test");
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.watchdog_interval_ms(), 10u);
  n.Ready("up");
  // The loop runs until three pings went out (counted by their timer), then
  // says STOPPING; the datagrams wait in the receiver's buffer.
  int ticks = 0;
  TimerId t = loop.Every(10, [&] {
    if (++ticks == 4) {
      n.Stopping();
      loop.Stop();
    }
  });
  loop.Run();
  loop.Cancel(t);
  EXPECT_EQ(r.Recv(), "READY=1\nSTATUS=up");
  // Pings and the timer above share the period: at least two pings came
  // before STOPPING (timer order within one loop turn is not specified).
  int pings = 0;
  std::string m;
  while ((m = r.Recv()) == "WATCHDOG=1") ++pings;
  EXPECT_GE(pings, 2);
  EXPECT_LE(pings, 5);
  EXPECT_EQ(m, "STOPPING=1");
}

TEST(SdNotifier, OffWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "20000", 1);
  EventLoop loop;
  SdNotifier n(&loop, "test");
  unsetenv("WATCHDOG_USEC");
  EXPECT_FALSE(n.enabled());
  n.Ready();  // no-op, no timer: the loop has nothing to run and returns
  loop.Run();
  SUCCEED();
}

}  // namespace
}  // namespace mistore
