// Connection's hard limits over real loopback sockets (plain mode; the
// secure refusals are in secure_connection_test.cc): frame size, requests in
// flight, connections per address, idle time, bytes buffered for a slow
// reader, the read-side bound against a slowloris peer, and the refusal
// counters and their /metrics families. Each limit closes the offending
// connection, is counted under its reason, and the server keeps serving a
// well-behaved peer afterwards. Listener, Dial and the server run on one
// EventLoop in the test thread; hostile peers are raw blocking sockets.
// Waits are event-driven (the loop runs until a condition holds, with a
// guard timer), never sleeps.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <optional>

#include "shared/uvio/connection.h"
#include "shared/wire/envelope.h"

namespace mistore {
namespace {

pb::Envelope Ping(size_t payload_bytes = 0) {
  pb::Envelope e;
  e.mutable_put_chunk()->set_subscriber("alice");
  e.mutable_put_chunk()->set_data(std::string(payload_bytes, 'x'));
  return e;
}

// A blocking client socket connected to addr ("127.0.0.1:port").
int RawConnect(const std::string& addr, int rcvbuf_bytes = 0) {
  size_t colon = addr.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(std::stoi(addr.substr(colon + 1))));
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf_bytes) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof rcvbuf_bytes);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  return fd;
}

Bytes Framed(const pb::Envelope& env) {
  std::string s = env.SerializeAsString();
  Bytes out;
  EncodeFrame(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &out);
  return out;
}

class ConnectionLimitsTest : public ::testing::Test {
 protected:
  EventLoop loop;
  std::shared_ptr<RefusalCounters> refusals = std::make_shared<RefusalCounters>();
  ConnectionLimits server_limits;
  std::unique_ptr<Listener> listener;
  std::string addr;
  std::vector<Connection::Ptr> server_conns;
  std::vector<pb::Envelope> held;  // requests the server did not answer
  bool answer = true;
  size_t reply_bytes = 0;
  uint64_t buffered_peak = 0;  // refusals->buffered_bytes after each reply

  void SetUp() override { server_limits.refusals = refusals; }

  void StartServer() {
    listener = std::make_unique<Listener>(&loop, server_limits, [this](const Connection::Ptr& c) {
      server_conns.push_back(c);
      c->set_on_request([this](const Connection::Ptr& conn, pb::Envelope&& req) {
        if (!answer) {
          held.push_back(std::move(req));
          return;
        }
        pb::Envelope rep;
        rep.mutable_put_reply()->set_version(req.put_chunk().data().size());
        if (reply_bytes) rep.mutable_put_chunk()->set_data(std::string(reply_bytes, 'r'));
        conn->Reply(req.request_id(), std::move(rep));
        buffered_peak = std::max(buffered_peak, refusals->buffered_bytes.load());
      });
    });
    auto bound = listener->Listen("127.0.0.1:0");
    ASSERT_TRUE(bound.ok());
    addr = bound.value();
  }

  // Runs the loop until `done()` holds or guard_ms pass; returns done().
  bool RunUntil(const std::function<bool()>& done, uint64_t guard_ms = 5000) {
    bool timed_out = false;
    TimerId guard = loop.After(guard_ms, [&] {
      timed_out = true;
      loop.Stop();
    });
    TimerId poll = loop.Every(1, [&] {
      if (done()) loop.Stop();
    });
    if (!done()) loop.Run();
    loop.Cancel(poll);
    if (!timed_out) loop.Cancel(guard);
    return done();
  }

  Connection::Ptr DialOk(ConnectionLimits limits = {}) {
    Connection::Ptr conn;
    bool finished = false;
    Dial(&loop, addr, limits, [&](Result<Connection::Ptr> r) {
      finished = true;
      if (r.ok()) conn = r.value();
    });
    EXPECT_TRUE(RunUntil([&] { return finished; }));
    return conn;
  }

  Result<pb::Envelope> CallOn(const Connection::Ptr& conn, pb::Envelope req = Ping()) {
    std::optional<Result<pb::Envelope>> out;
    conn->Call(std::move(req), [&](Result<pb::Envelope> r) { out = std::move(r); }, 5000);
    EXPECT_TRUE(RunUntil([&] { return out.has_value(); }));
    return out ? std::move(*out) : Result<pb::Envelope>(Unavailable("no reply"));
  }

  // A fresh, well-behaved client gets served.
  void ExpectStillServing() {
    auto c = DialOk();
    ASSERT_TRUE(c);
    auto rep = CallOn(c, Ping(10));
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    EXPECT_EQ(rep->put_reply().version(), 10u);
    c->Close(Unavailable("test done"));
  }

  void TearDown() override {
    for (auto& c : server_conns) c->Close(Unavailable("test done"));
    if (listener) listener->Close();
    loop.After(5, [&] { loop.Stop(); });
    loop.Run();
  }
};

TEST_F(ConnectionLimitsTest, FrameOverTheLimitClosesTheConnection) {
  server_limits.frame_bytes_max = 1000;
  StartServer();
  int fd = RawConnect(addr);
  uint8_t header[4];
  PutLe32(header, 5000);
  ASSERT_EQ(send(fd, header, 4, 0), 4);
  ASSERT_TRUE(RunUntil([&] { return refusals->value(Refusal::kLimitFrame) == 1; }));
  char b;
  EXPECT_EQ(recv(fd, &b, 1, 0), 0);  // closed by the server
  close(fd);
  // A frame at the limit is fine.
  auto c = DialOk();
  ASSERT_TRUE(CallOn(c, Ping(900)).ok());
  EXPECT_EQ(refusals->value(Refusal::kLimitFrame), 1u);
  ExpectStillServing();
}

TEST_F(ConnectionLimitsTest, RequestsInFlightAreBounded) {
  server_limits.requests_in_flight_max = 4;
  StartServer();
  // Answered requests do not accumulate: 20 in a row on one connection.
  auto c = DialOk();
  for (int i = 0; i < 20; i++) ASSERT_TRUE(CallOn(c).ok()) << i;
  EXPECT_EQ(server_conns.back()->requests_in_flight(), 0u);
  // A peer that piles up unanswered requests is closed at the 5th.
  answer = false;
  std::vector<std::optional<Result<pb::Envelope>>> out(5);
  for (size_t i = 0; i < out.size(); i++)
    c->Call(Ping(), [&out, i](Result<pb::Envelope> r) { out[i] = std::move(r); }, 5000);
  ASSERT_TRUE(RunUntil([&] { return c->closed(); }));
  EXPECT_EQ(held.size(), 4u);  // the 5th never reached the handler
  EXPECT_EQ(refusals->value(Refusal::kLimitInflight), 1u);
  for (auto& r : out) {
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->ok());
  }
  answer = true;
  ExpectStillServing();
}

TEST_F(ConnectionLimitsTest, ConnectionsPerAddressAreBounded) {
  server_limits.connections_per_address_max = 2;
  StartServer();
  auto a = DialOk();
  auto b = DialOk();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(CallOn(a).ok());
  ASSERT_TRUE(CallOn(b).ok());
  // The third from 127.0.0.1 is closed before it is served.
  auto third = DialOk();
  ASSERT_TRUE(third);
  EXPECT_FALSE(CallOn(third).ok());
  EXPECT_EQ(refusals->value(Refusal::kLimitPerAddress), 1u);
  EXPECT_EQ(server_conns.size(), 2u);
  // Closing one frees its slot.
  a->Close(Unavailable("done"));
  ASSERT_TRUE(RunUntil([&] { return server_conns[0]->closed(); }));
  ExpectStillServing();
  EXPECT_EQ(refusals->value(Refusal::kLimitPerAddress), 1u);
}

TEST_F(ConnectionLimitsTest, IdleConnectionClosedBusyOneKept) {
  // Wide margins on a real clock: `busy` sends every 40 ms against a 600 ms
  // idle limit, from right after it connects. With 150 ms and the pings
  // starting only after `quiet`'s first call, qemu-user on a loaded host
  // (arm64 cross suite, load 17) stalled long enough for `busy` to be closed
  // as idle too.
  server_limits.idle_timeout_ms = 600;
  StartServer();
  auto busy = DialOk();
  ASSERT_TRUE(busy);
  int calls = 0;
  TimerId t = loop.Every(40, [&] {
    calls++;
    busy->Call(Ping(), [](Result<pb::Envelope>) {}, 5000);
  });
  auto quiet = DialOk();
  ASSERT_TRUE(CallOn(quiet).ok());
  // `quiet` says nothing more: closed once idle.
  ASSERT_TRUE(RunUntil([&] { return quiet->closed(); }, 5000));
  const int closed_after_calls = calls;
  // Keep going past another whole idle period (20 x 40 ms > 600 ms): busy
  // stays open.
  RunUntil([&] { return calls >= closed_after_calls + 20; }, 5000);
  loop.Cancel(t);
  EXPECT_GE(calls, closed_after_calls + 20);
  EXPECT_FALSE(busy->closed());
  EXPECT_EQ(refusals->value(Refusal::kIdle), 1u);
  ASSERT_TRUE(CallOn(busy).ok());
}

TEST_F(ConnectionLimitsTest, SlowReaderCannotMakeTheServerBufferWithoutBound) {
  server_limits.write_queue_bytes_max = 2u << 20;
  reply_bytes = 256 << 10;
  StartServer();
  // Sends requests whose replies are 256 KiB each and never reads.
  int fd = RawConnect(addr, 16 << 10);
  Bytes req;
  for (int i = 0; i < 200; i++) {
    pb::Envelope e = Ping();
    e.set_request_id(uint64_t(i + 1));
    Bytes f = Framed(e);
    req.insert(req.end(), f.begin(), f.end());
  }
  ASSERT_EQ(send(fd, req.data(), req.size(), 0), ssize_t(req.size()));
  size_t queued_max = 0;
  ASSERT_TRUE(RunUntil([&] {
    for (auto& c : server_conns) queued_max = std::max(queued_max, c->write_queue_bytes());
    return refusals->value(Refusal::kLimitBuffered) == 1;
  }));
  EXPECT_LE(queued_max, server_limits.write_queue_bytes_max);
  ASSERT_EQ(server_conns.size(), 1u);
  EXPECT_TRUE(server_conns[0]->closed());
  close(fd);
  reply_bytes = 0;
  ExpectStillServing();
}

TEST_F(ConnectionLimitsTest, SlowlorisHoldsAtMostOneFrameAndIsClosedWhenIdle) {
  server_limits.frame_bytes_max = 64 << 10;
  server_limits.idle_timeout_ms = 200;
  StartServer();
  int fd = RawConnect(addr);
  // Announces a full-size frame, then sends most of it and stalls.
  Bytes part(4 + (60 << 10), 'z');
  PutLe32(part.data(), 64 << 10);
  ASSERT_EQ(send(fd, part.data(), part.size(), 0), ssize_t(part.size()));
  ASSERT_TRUE(RunUntil([&] {
    return server_conns.size() == 1 && server_conns[0]->read_buffered_bytes() == part.size();
  }));
  EXPECT_LE(server_conns[0]->read_buffered_bytes(), server_limits.frame_bytes_max + 4);
  ASSERT_TRUE(RunUntil([&] { return refusals->value(Refusal::kIdle) == 1; }, 3000));
  EXPECT_TRUE(server_conns[0]->closed());
  close(fd);
  ExpectStillServing();
}

// A slow-reader flood over many connections: each stays under its own
// write_queue_bytes_max, but together they would hold several times the
// daemon-wide cap. The connection whose write takes the total over
// buffered_bytes_total_max is closed and its bytes released at once; the
// total seen after every reply never exceeds the cap and drops back to 0
// once the connections are gone; a client that reads is served throughout.
TEST_F(ConnectionLimitsTest, SlowReaderFloodOverManyConnectionsHitsTheDaemonWideCap) {
  // Each connection's own limit is out of reach: only the total can close it.
  server_limits.write_queue_bytes_max = 16u << 20;
  server_limits.buffered_bytes_total_max = 3u << 20;
  reply_bytes = 256 << 10;
  StartServer();
  Bytes req;
  for (int i = 0; i < 200; i++) {
    pb::Envelope e = Ping();
    e.set_request_id(uint64_t(i + 1));
    Bytes f = Framed(e);
    req.insert(req.end(), f.begin(), f.end());
  }
  // A client that reads, connected before the flood.
  Connection::Ptr good = DialOk();
  ASSERT_TRUE(good);
  ASSERT_TRUE(RunUntil([&] { return server_conns.size() == 1; }));
  std::vector<int> fds;
  for (int i = 0; i < 4; i++) {
    int fd = RawConnect(addr, 16 << 10);
    ASSERT_EQ(send(fd, req.data(), req.size(), 0), ssize_t(req.size()));
    fds.push_back(fd);
  }
  ASSERT_TRUE(RunUntil([&] {
    size_t closed = 0;
    for (auto& c : server_conns) closed += c->closed();
    return server_conns.size() == 5 && closed >= 2 &&
           refusals->value(Refusal::kLimitBufferedTotal) >= 2;
  }));
  EXPECT_FALSE(server_conns[0]->closed());
  reply_bytes = 1024;  // fits the socket buffer: nothing waits in libuv
  auto rep = CallOn(good, Ping(10));
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  EXPECT_EQ(rep->put_chunk().data().size(), 1024u);
  good->Close(Unavailable("test done"));
  EXPECT_LE(buffered_peak, server_limits.buffered_bytes_total_max);
  EXPECT_GT(buffered_peak, 2u << 20);  // the flood did fill it
  EXPECT_EQ(refusals->value(Refusal::kLimitBuffered), 0u);
  for (int fd : fds) close(fd);
  for (auto& c : server_conns) c->Close(Unavailable("test done"));
  ASSERT_TRUE(RunUntil([&] { return refusals->buffered_bytes.load() == 0; }));
  reply_bytes = 0;
  ExpectStillServing();
}

// The read side of the same cap: partial frames held for slowloris peers
// over many connections count into the daemon-wide total too.
TEST_F(ConnectionLimitsTest, SlowlorisOverManyConnectionsHitsTheDaemonWideCap) {
  server_limits.frame_bytes_max = 64 << 10;
  server_limits.buffered_bytes_total_max = 150 << 10;
  StartServer();
  Bytes part(4 + (60 << 10), 'z');
  PutLe32(part.data(), 64 << 10);
  std::vector<int> fds;
  for (int i = 0; i < 3; i++) {
    int fd = RawConnect(addr);
    ASSERT_EQ(send(fd, part.data(), part.size(), 0), ssize_t(part.size()));
    fds.push_back(fd);
    // One at a time, so which one goes over is known: the third.
    if (i < 2) {
      ASSERT_TRUE(
          RunUntil([&] { return refusals->buffered_bytes.load() == (i + 1) * part.size(); }));
    }
  }
  ASSERT_TRUE(RunUntil([&] { return refusals->value(Refusal::kLimitBufferedTotal) == 1; }));
  ASSERT_EQ(server_conns.size(), 3u);
  EXPECT_FALSE(server_conns[0]->closed());
  EXPECT_FALSE(server_conns[1]->closed());
  EXPECT_TRUE(server_conns[2]->closed());
  EXPECT_EQ(refusals->buffered_bytes.load(), 2 * part.size());
  for (int fd : fds) close(fd);
  ASSERT_TRUE(RunUntil([&] { return refusals->buffered_bytes.load() == 0; }));
  ExpectStillServing();
}

TEST_F(ConnectionLimitsTest, UndecodableEnvelopeCountedAsProtocol) {
  StartServer();
  int fd = RawConnect(addr);
  Bytes junk;
  const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  EncodeFrame(bad, sizeof bad, &junk);
  ASSERT_EQ(send(fd, junk.data(), junk.size(), 0), ssize_t(junk.size()));
  ASSERT_TRUE(RunUntil([&] { return refusals->value(Refusal::kProtocol) == 1; }));
  close(fd);
  ExpectStillServing();
}

TEST(RefusalMetrics, EveryReasonExposedAndCounted) {
  MetricsRegistry reg;
  auto counters = std::make_shared<RefusalCounters>();
  ExportRefusalMetrics(&reg, counters);
  counters->Count(Refusal::kIdle);
  counters->Count(Refusal::kIdle);
  counters->Count(Refusal::kReplay);
  counters->requests_unauthorized.Inc();
  std::string text = reg.Exposition();
  for (size_t i = 0; i < kRefusalCount; i++) {
    std::string series = std::string("mistore_connections_refused_total{reason=\"") +
                         RefusalName(Refusal(i)) + "\"}";
    EXPECT_NE(text.find(series), std::string::npos) << series;
  }
  EXPECT_NE(text.find("mistore_connections_refused_total{reason=\"idle\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("mistore_connections_refused_total{reason=\"replay\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("mistore_connections_refused_total{reason=\"bad_cert\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("mistore_requests_refused_total{reason=\"unauthorized\"} 1\n"),
            std::string::npos);
  counters->buffered_bytes = 12345;
  text = reg.Exposition();
  EXPECT_NE(text.find("mistore_connection_buffered_bytes 12345\n"), std::string::npos) << text;
  EXPECT_EQ(reg.series(), kRefusalCount + 2);
}

TEST(ConnectionKnobs, DeclaredOnceAppliedAndChecked) {
  Config cfg(WithSecureTransportKnobs({{"frame_bytes_max", "8388608", "x", Knob::kInt}}));
  // Defaults are ConnectionLimits' own.
  ConnectionLimits d;
  ConnectionLimits l = ApplyConnectionKnobs(d, cfg);
  EXPECT_EQ(l.write_queue_bytes_max, d.write_queue_bytes_max);
  EXPECT_EQ(l.requests_in_flight_max, d.requests_in_flight_max);
  EXPECT_EQ(l.connections_per_address_max, d.connections_per_address_max);
  EXPECT_EQ(l.idle_timeout_ms, d.idle_timeout_ms);
  EXPECT_EQ(l.buffered_bytes_total_max, d.buffered_bytes_total_max);
  ASSERT_TRUE(cfg.Set("requests_in_flight_max", "7", "test").ok());
  ASSERT_TRUE(cfg.Set("connections_per_address_max", "3", "test").ok());
  ASSERT_TRUE(cfg.Set("idle_timeout_ms", "0", "test").ok());
  ASSERT_TRUE(cfg.Set("write_queue_bytes_max", "16777216", "test").ok());
  l = ApplyConnectionKnobs(d, cfg);
  EXPECT_EQ(l.requests_in_flight_max, 7u);
  EXPECT_EQ(l.connections_per_address_max, 3u);
  EXPECT_EQ(l.idle_timeout_ms, 0u);
  EXPECT_EQ(l.write_queue_bytes_max, 16u << 20);
  ASSERT_TRUE(cfg.Set("buffered_bytes_total_max", "33554432", "test").ok());
  EXPECT_EQ(ApplyConnectionKnobs(d, cfg).buffered_bytes_total_max, 32u << 20);
  ASSERT_TRUE(cfg.Set("buffered_bytes_total_max", "8388608", "test").ok());
  EXPECT_DEATH(ApplyConnectionKnobs(d, cfg), "buffered_bytes_total_max >= write_queue_bytes_max");
  ASSERT_TRUE(cfg.Set("buffered_bytes_total_max", "33554432", "test").ok());
  ASSERT_TRUE(cfg.Set("requests_in_flight_max", "0", "test").ok());
  EXPECT_DEATH(ApplyConnectionKnobs(d, cfg), "requests_in_flight_max >= 1");
}

}  // namespace
}  // namespace mistore
