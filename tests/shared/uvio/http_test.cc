// HttpServer and DaemonMetrics over real loopback sockets: the server runs on
// an EventLoop in the test's thread, a client thread talks plain sockets.
#include "shared/uvio/http.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "shared/uvio/daemon_metrics.h"

namespace mistore {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Runs the loop until `client` (on its own thread) returns.
void RunWithServer(HttpLimits limits, HttpServer::Handler handler,
                   const std::function<void(const std::string& addr)>& client,
                   HttpStats* stats_out = nullptr) {
  EventLoop loop;
  HttpServer server(&loop, limits, std::move(handler));
  auto bound = server.Listen("127.0.0.1:0");
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  std::atomic<bool> done{false};
  std::thread t([&] {
    client(bound.value());
    done = true;
  });
  TimerId poll = loop.Every(5, [&] {
    if (!done) return;
    if (stats_out) *stats_out = server.stats();
    server.Close();
    loop.Stop();
  });
  loop.Run();
  loop.Cancel(poll);
  t.join();
}

int Connect(const std::string& addr) {
  size_t colon = addr.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(std::stoi(addr.substr(colon + 1))));
  inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += size_t(n);
  }
}

// Reads until the peer closes or timeout_ms pass; *closed tells which.
std::string ReadUntilClose(int fd, int timeout_ms, bool* closed = nullptr) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  if (closed) *closed = false;
  for (;;) {
    int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
                       deadline - std::chrono::steady_clock::now())
                       .count());
    if (left <= 0) return out;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) return out;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return out;
    }
    out.append(buf, size_t(n));
  }
}

std::string Exchange(const std::string& addr, const std::string& request, bool* closed = nullptr,
                     int timeout_ms = 3000) {
  int fd = Connect(addr);
  if (fd < 0) return "connect failed";
  SendAll(fd, request);
  std::string r = ReadUntilClose(fd, timeout_ms, closed);
  close(fd);
  return r;
}

HttpResponse Echo(const HttpRequest& req) {
  std::string body = req.method + " " + req.path + " q=" + req.QueryParam("q");
  if (const std::string* ua = req.Header("user-agent")) body += " ua=" + *ua;
  return HttpResponse::Text(200, body);
}

TEST(Http, GetAnswersAndClosesOnRequest) {
  RunWithServer({}, Echo, [](const std::string& addr) {
    bool closed = false;
    std::string r = Exchange(addr,
                             "GET /metrics?q=a%20b&x=1 HTTP/1.1\r\nHost: x\r\n"
                             "User-Agent: test/1\r\nConnection: close\r\n\r\n",
                             &closed);
    EXPECT_TRUE(closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(r, HasSubstr("Content-Length: 29\r\n"));
    EXPECT_THAT(r, HasSubstr("Connection: close\r\n"));
    EXPECT_THAT(r, HasSubstr("\r\n\r\nGET /metrics q=a b ua=test/1\n"));
  });
}

TEST(Http, KeepAliveAndPipelining) {
  HttpStats stats;
  RunWithServer({}, Echo, [](const std::string& addr) {
    bool closed = false;
    std::string r = Exchange(addr,
                             "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                             "GET /two HTTP/1.1\r\nHost: x\r\n\r\n"
                             "HEAD /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             &closed);
    EXPECT_TRUE(closed);
    size_t a = r.find("GET /one"), b = r.find("GET /two");
    EXPECT_NE(a, std::string::npos);
    EXPECT_NE(b, std::string::npos);
    EXPECT_LT(a, b);
    EXPECT_THAT(r, HasSubstr("Connection: keep-alive\r\n"));
    EXPECT_THAT(r, Not(HasSubstr("HEAD /three")));  // HEAD: headers only
    size_t third = r.rfind("HTTP/1.1 200 OK");
    EXPECT_THAT(r.substr(third), HasSubstr("Content-Length: 15\r\n"));
  }, &stats);
  EXPECT_EQ(stats.requests, 3u);
}

TEST(Http, HttpOneZeroClosesByDefault) {
  RunWithServer({}, Echo, [](const std::string& addr) {
    bool closed = false;
    std::string r = Exchange(addr, "GET / HTTP/1.0\r\n\r\n", &closed);
    EXPECT_TRUE(closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK"));
  });
}

TEST(Http, RefusesWhatItDoesNotServe) {
  HttpStats stats;
  RunWithServer({}, Echo, [](const std::string& addr) {
    bool closed = false;
    std::string r = Exchange(addr, "POST /x HTTP/1.1\r\nHost: x\r\n\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 405 "));
    EXPECT_THAT(r, HasSubstr("Allow: GET, HEAD\r\n"));
    EXPECT_TRUE(closed);
    r = Exchange(addr, "GET /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 413 "));
    EXPECT_TRUE(closed);
    r = Exchange(addr, "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 413 "));
    r = Exchange(addr, "GET /x HTTP/2.0\r\n\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 505 "));
    r = Exchange(addr, "hello there\r\n\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 400 "));
    r = Exchange(addr, "GET http://elsewhere/ HTTP/1.1\r\n\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 400 "));
    r = Exchange(addr, "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 400 "));
    r = Exchange(addr, "GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 400 "));
    EXPECT_TRUE(closed);
  }, &stats);
  EXPECT_EQ(stats.requests, 0u);
  EXPECT_EQ(stats.refused, 8u);
}

TEST(Http, RequestSizeAndHeaderCountLimits) {
  HttpLimits limits;
  limits.request_bytes_max = 1024;
  limits.headers_max = 4;
  RunWithServer(limits, Echo, [](const std::string& addr) {
    bool closed = false;
    // Never-ending headers: refused once the limit is passed, no terminator needed.
    std::string r = Exchange(addr, "GET / HTTP/1.1\r\nX-Long: " + std::string(4000, 'a'), &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 431 "));
    EXPECT_TRUE(closed);
    std::string many = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 5; i++) many += "X-H" + std::to_string(i) + ": v\r\n";
    r = Exchange(addr, many + "\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 431 "));
    EXPECT_TRUE(closed);
    std::string four = "GET /ok HTTP/1.1\r\nConnection: close\r\n";
    for (int i = 0; i < 3; i++) four += "X-H" + std::to_string(i) + ": v\r\n";
    r = Exchange(addr, four + "\r\n", &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
  });
}

TEST(Http, ConnectionLimit) {
  HttpLimits limits;
  limits.connections_max = 2;
  RunWithServer(limits, Echo, [](const std::string& addr) {
    int a = Connect(addr), b = Connect(addr);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both accepted
    bool closed = false;
    std::string r = Exchange(addr, "GET / HTTP/1.1\r\n\r\n", &closed);
    EXPECT_TRUE(closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 503 "));
    close(a);
    // Served again once the server has seen a close (slow under emulators).
    for (int i = 0; i < 100; i++) {
      r = Exchange(addr, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &closed);
      if (r.rfind("HTTP/1.1 200 ", 0) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
    close(b);
  });
}

TEST(Http, IdleConnectionsAreClosed) {
  HttpLimits limits;
  limits.idle_timeout_ms = 200;
  RunWithServer(limits, Echo, [](const std::string& addr) {
    // A half-sent request (slowloris) and a silent connection both go.
    int fd = Connect(addr);
    SendAll(fd, "GET / HTTP/1.1\r\nHost:");
    bool closed = false;
    auto t0 = std::chrono::steady_clock::now();
    ReadUntilClose(fd, 3000, &closed);
    EXPECT_TRUE(closed);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
    close(fd);
    // Idle after a served keep-alive request: closed too.
    fd = Connect(addr);
    SendAll(fd, "GET / HTTP/1.1\r\n\r\n");
    std::string r = ReadUntilClose(fd, 3000, &closed);
    EXPECT_THAT(r, StartsWith("HTTP/1.1 200 "));
    EXPECT_TRUE(closed);
    close(fd);
  });
}

TEST(Http, QueryAndPercentDecoding) {
  EXPECT_EQ(PercentDecode("a%20b+c%2Fd%zz%4"), "a b c/d%zz%4");
  HttpRequest r;
  r.query = "token=abc&empty=&flag&x=%3D1";
  EXPECT_EQ(r.QueryParam("token"), "abc");
  EXPECT_EQ(r.QueryParam("empty"), "");
  EXPECT_EQ(r.QueryParam("flag"), "");
  EXPECT_EQ(r.QueryParam("x"), "=1");
  EXPECT_EQ(r.QueryParam("missing"), "");
}

TEST(DaemonMetrics, ServesPrometheusTextAndCountsRequests) {
  EventLoop loop;
  DaemonMetrics m(&loop, "test", {"put_chunk", "get_version"}, {"store_fragment"});
  pb::Envelope req;
  req.mutable_get_version()->set_mode(pb::READ_ATOMIC);
  auto op = m.Received(req);
  pb::Envelope reply;
  reply.mutable_version_info()->set_version(3);
  m.Replied(op, &reply, true);
  pb::Envelope unknown;
  unknown.mutable_claim_name();
  m.Hold(7, 1, m.Received(unknown));
  m.ForgetConnection(7);  // requester gone: an error
  pb::Envelope call;
  call.mutable_store_fragment()->set_fragment("x");
  auto cop = m.Calling(call);
  m.CallDone(cop, Result<pb::Envelope>(Unavailable("gone")));
  EXPECT_EQ(m.requests_total(), 2u);
  EXPECT_EQ(m.request_errors_total(), 1u);

  auto bound = m.Serve("127.0.0.1:0");
  ASSERT_TRUE(bound.ok());
  std::atomic<bool> done{false};
  std::string text, root, missing;
  std::thread t([&] {
    text = Exchange(bound.value(), "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    root = Exchange(bound.value(), "GET / HTTP/1.0\r\n\r\n");
    missing = Exchange(bound.value(), "GET /nope HTTP/1.0\r\n\r\n");
    done = true;
  });
  loop.Every(5, [&] {
    if (done) loop.Stop();
  });
  loop.Run();
  t.join();
  EXPECT_THAT(text, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(text, HasSubstr("mistore_build_info{daemon=\"test\",version=\""));
  EXPECT_THAT(text, HasSubstr("mistore_requests_total{type=\"get_version\",result=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mistore_requests_total{type=\"other\",result=\"error\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mistore_read_requests_total{mode=\"atomic\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mistore_calls_total{type=\"store_fragment\",result=\"error\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mistore_request_duration_seconds_count{type=\"get_version\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(text, HasSubstr("mistore_http_requests_total{listener=\"metrics\"} 1\n"));
  EXPECT_THAT(root, HasSubstr("/metrics"));
  EXPECT_THAT(missing, StartsWith("HTTP/1.1 404 "));
  EXPECT_GT(m.received_bytes(), 0u);
  EXPECT_GT(m.sent_bytes(), 0u);
}

TEST(DaemonMetrics, OffMeansNoListener) {
  EventLoop loop;
  DaemonMetrics m(&loop, "test", {});
  auto r = m.Serve("off");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "off");
  EXPECT_EQ(m.http_stats(), nullptr);
  EXPECT_FALSE(m.Serve("not-an-address").ok());
}

}  // namespace
}  // namespace mistore
