// uvio_secure_bench: the cost of the secure transport (issue 4), outside the
// default test run. One command:
//   build/<dir>/bin/uvio_secure_bench [messages=200] [message_bytes=1048576]
// Every secure figure is given for each cipher suite built in (ChaChaPoly,
// and AESGCM where OpenSSL is linked), all in the same run.
// 1. Handshakes: full Noise XX + certificate checks between two in-memory
//    SecureChannels (both sides' CPU), handshakes per second.
// 2. Throughput of one Connection over loopback: `messages` calls carrying
//    `message_bytes` each (a small reply each), plain framing vs secure, in
//    the same run, same loop (client and server share this thread, so the
//    figure includes both ends' CPU). Up to 8 calls in flight.
// 3. The cipher alone (seal + open in place, hot buffers) and the ceiling it
//    puts on the secure/plain ratio: plain cost + cipher cost per MiB.
// 4. As deployed: the same channel with its two ends on two threads, each
//    with its own EventLoop (as on two machines; loopback between them).
//    Each end's CPU time is measured on its own thread
//    (CLOCK_THREAD_CPUTIME_ID: user + system, the loopback's kernel work
//    included), so the channel's rate is MiB / the busier end's CPU seconds —
//    what one core per end can carry — plus the wall-clock rate (which a shared
//    machine slows).
// Figures 1-3 are per second of process CPU time (user + system).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

#include "shared/uvio/connection.h"

namespace mistore {
namespace {

// CPU time of this process (user + system, loopback included): the machine
// is shared, so wall time would measure the other tenants.
struct Clock {
  using time_point = double;
  static double now() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
  }
};
using crypto::NodeRole;

double ThreadCpuS() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) / 1e9;
}
double WallS() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t WallMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

std::shared_ptr<SecureConfig> Make(const crypto::CaKey& ca, NodeRole role, uint32_t id) {
  noise::KeyPair kp = noise::KeyPair::Generate();
  crypto::Certificate c;
  c.node_id = id;
  c.role = role;
  c.issued_ms = WallMs() - 1000;
  c.expires_ms = WallMs() + 3600'000;
  c.static_public_key = kp.public_key;
  Bytes enc = ca.Sign(&c).value();
  auto cfg = std::make_shared<SecureConfig>();
  cfg->channel.identity =
      std::make_shared<secure::Identity>(secure::Identity::Create(std::move(kp), enc).value());
  cfg->channel.ca_public_key = ca.public_key();
  return cfg;
}

struct HandshakeCpu {
  double total_s = 0, initiator_s = 0, responder_s = 0;
};

// n full handshakes; each side's steps timed apart (thread CPU).
HandshakeCpu Handshakes(const SecureConfig& a, const SecureConfig& b, int n) {
  HandshakeCpu out;
  auto t0 = Clock::now();
  for (int i = 0; i < n; i++) {
    double c0 = ThreadCpuS();
    auto x = secure::SecureChannel::Create(a.channel, true, WallMs()).value();
    Bytes m1, m2, m3, none;
    std::vector<Bytes> msgs;
    MS_ASSERT(x.Start(&m1).ok());
    double c1 = ThreadCpuS();
    auto y = secure::SecureChannel::Create(b.channel, false, WallMs()).value();
    MS_ASSERT(y.Start(&none).ok());
    MS_ASSERT(y.Receive(m1, WallMs(), &m2, &msgs).ok());
    double c2 = ThreadCpuS();
    MS_ASSERT(x.Receive(m2, WallMs(), &m3, &msgs).ok());
    double c3 = ThreadCpuS();
    MS_ASSERT(y.Receive(m3, WallMs(), &none, &msgs).ok());
    double c4 = ThreadCpuS();
    MS_ASSERT(x.established() && y.established());
    out.initiator_s += (c1 - c0) + (c3 - c2);
    out.responder_s += (c2 - c1) + (c4 - c3);
  }
  out.total_s = Clock::now() - t0;
  return out;
}

// Seal + Receive of `bytes`-byte messages between two established channels
// in memory: the crypto and record cost alone, no sockets. Returns seconds.
double SealOpen(const SecureConfig& a, const SecureConfig& b, int messages, size_t bytes) {
  auto x = secure::SecureChannel::Create(a.channel, true, WallMs()).value();
  auto y = secure::SecureChannel::Create(b.channel, false, WallMs()).value();
  Bytes m1, m2, m3, none;
  std::vector<Bytes> msgs;
  MS_ASSERT(x.Start(&m1).ok() && y.Start(&none).ok());
  MS_ASSERT(y.Receive(m1, WallMs(), &m2, &msgs).ok());
  MS_ASSERT(x.Receive(m2, WallMs(), &m3, &msgs).ok());
  MS_ASSERT(y.Receive(m3, WallMs(), &none, &msgs).ok());
  Bytes msg(bytes, 'x');
  auto t0 = Clock::now();
  for (int i = 0; i < messages; i++) {
    Bytes wire;
    MS_ASSERT(x.Seal(msg, &wire).ok());
    msgs.clear();
    // Delivered in 256 KiB reads, like Connection's read buffer.
    for (size_t off = 0; off < wire.size(); off += 256 * 1024) {
      size_t n = std::min(wire.size() - off, size_t(256 * 1024));
      MS_ASSERT(y.Receive({wire.data() + off, n}, WallMs(), &none, &msgs).ok());
    }
    MS_ASSERT(msgs.size() == 1 && msgs[0].size() == bytes);
  }
  return (Clock::now() - t0);
}

// The cipher alone: seal + open of `bytes` in full-size records (65,519-byte
// pieces), in place, hot buffers. Returns seconds.
double CipherOnly(noise::Cipher cipher, int messages, size_t bytes) {
  auto i = noise::HandshakeState::Create("NN", true, {}, nullptr, nullptr,
                                         nullptr, cipher)
               .value();
  auto r = noise::HandshakeState::Create("NN", false, {}, nullptr, nullptr,
                                         nullptr, cipher)
               .value();
  MS_ASSERT(r.ReadMessage(i.WriteMessage({}).value()).ok());
  MS_ASSERT(i.ReadMessage(r.WriteMessage({}).value()).ok());
  auto ti = noise::Transport::FromHandshake(i).value();
  auto tr = noise::Transport::FromHandshake(r).value();
  Bytes rec(noise::kMaxMessageLen, 'x');
  auto t0 = Clock::now();
  for (int m = 0; m < messages; m++) {
    for (size_t off = 0; off < bytes; off += noise::kMaxTransportPlaintext) {
      size_t n = std::min(bytes - off, noise::kMaxTransportPlaintext);
      MS_ASSERT(ti.EncryptInPlace(rec.data(), n).ok());
      MS_ASSERT(tr.DecryptTo({rec.data(), n + noise::kTagLen}, rec.data()).ok());
    }
  }
  return Clock::now() - t0;
}

double Throughput(const ConnectionLimits& server_limits, const ConnectionLimits& client_limits,
                  int messages, size_t bytes) {
  EventLoop loop;
  Listener listener(&loop, server_limits, [](const Connection::Ptr& c) {
    c->set_on_request([](const Connection::Ptr& conn, pb::Envelope&& req) {
      pb::Envelope rep;
      rep.mutable_put_reply()->set_version(req.put_chunk().data().size());
      conn->Reply(req.request_id(), std::move(rep));
    });
  });
  std::string addr = listener.Listen("127.0.0.1:0").value();
  pb::Envelope req;
  req.mutable_put_chunk()->set_data(std::string(bytes, 'x'));
  int sent = 0, done = 0;
  Clock::time_point t0 = 0;
  double seconds = 0;
  Connection::Ptr conn;
  std::function<void()> send_one = [&] {
    sent++;
    conn->Call(req, [&](Result<pb::Envelope> r) {
      MS_ASSERT(r.ok() && r->put_reply().version() == bytes);
      if (++done == messages) {
        seconds = (Clock::now() - t0);
        conn->Close(Unavailable("done"));
        listener.Close();
        loop.Stop();
      } else if (sent < messages) {
        send_one();
      }
    });
  };
  Dial(&loop, addr, client_limits, [&](Result<Connection::Ptr> r) {
    MS_ASSERT(r.ok());
    conn = r.value();
    t0 = Clock::now();
    for (int i = 0; i < 8 && sent < messages; i++) send_one();
  });
  loop.Run();
  return seconds;
}

struct TwoEnds {
  double sender_cpu_s = 0, receiver_cpu_s = 0, wall_s = 0;
};

// One connection, its two ends on two threads with a loop each: the client
// (this thread) sends `messages` calls of `bytes` each, up to 8 in flight;
// the server thread receives them and answers each with a small reply.
TwoEnds ThroughputTwoThreads(const ConnectionLimits& server_limits,
                             const ConnectionLimits& client_limits, int messages, size_t bytes) {
  std::promise<std::string> bound;
  std::future<std::string> bound_addr = bound.get_future();
  double receiver_cpu = 0;
  std::thread server([&] {
    EventLoop loop;
    double c0 = 0;
    bool started = false;
    Listener* lp = nullptr;
    Listener listener(&loop, server_limits, [&](const Connection::Ptr& c) {
      if (!started) {
        started = true;
        c0 = ThreadCpuS();
      }
      c->set_on_request([](const Connection::Ptr& conn, pb::Envelope&& req) {
        pb::Envelope rep;
        rep.mutable_put_reply()->set_version(req.put_chunk().data().size());
        conn->Reply(req.request_id(), std::move(rep));
      });
      c->set_on_close([&](const Connection::Ptr&, const Status&) {
        receiver_cpu = ThreadCpuS() - c0;
        lp->Close();
        loop.Stop();
      });
    });
    lp = &listener;
    bound.set_value(listener.Listen("127.0.0.1:0").value());
    loop.Run();
  });
  const std::string addr = bound_addr.get();
  EventLoop loop;
  pb::Envelope req;
  req.mutable_put_chunk()->set_data(std::string(bytes, 'x'));
  int sent = 0, done = 0;
  double c0 = 0, w0 = 0;
  TwoEnds out;
  Connection::Ptr conn;
  std::function<void()> send_one = [&] {
    sent++;
    conn->Call(req, [&](Result<pb::Envelope> r) {
      MS_ASSERT(r.ok() && r->put_reply().version() == bytes);
      if (++done == messages) {
        out.sender_cpu_s = ThreadCpuS() - c0;
        out.wall_s = WallS() - w0;
        conn->Close(Unavailable("done"));
        loop.Stop();
      } else if (sent < messages) {
        send_one();
      }
    });
  };
  Dial(&loop, addr, client_limits, [&](Result<Connection::Ptr> r) {
    MS_ASSERT(r.ok());
    conn = r.value();
    c0 = ThreadCpuS();
    w0 = WallS();
    for (int i = 0; i < 8 && sent < messages; i++) send_one();
  });
  loop.Run();
  // Let the close reach the server.
  loop.After(1, [&] { loop.Stop(); });
  loop.Run();
  server.join();
  out.receiver_cpu_s = receiver_cpu;
  return out;
}

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  using namespace mistore;
  const int messages = argc > 1 ? std::atoi(argv[1]) : 200;
  const size_t bytes = argc > 2 ? size_t(std::atoll(argv[2])) : size_t(1) << 20;
  auto ca = crypto::CaKey::Generate();
  auto gw = Make(ca, NodeRole::kGateway, 11);
  auto pop = Make(ca, NodeRole::kPop, 2);
  const double mib_one = double(messages) * double(bytes) / (1 << 20);

  // Every suite built into this binary, ChaChaPoly first.
  std::vector<noise::Cipher> suites = {noise::Cipher::kChaChaPoly};
  if (noise::CipherBuilt(noise::Cipher::kAesGcm))
    suites.push_back(noise::Cipher::kAesGcm);
  std::printf("cipher=auto here: %s\n", noise::CipherName(noise::AutoCipher()));
  // The gateway (initiator) dials the suite; the POP follows its preamble.
  auto dialler = [&](noise::Cipher c) {
    auto cfg = std::make_shared<SecureConfig>(*gw);
    cfg->channel.cipher = c;
    return cfg;
  };

  const int n = 500;
  std::vector<double> cipher_ms_per_mib;  // seal + open, per suite
  for (noise::Cipher c : suites) {
    const char* name = noise::CipherName(c);
    HandshakeCpu hc = Handshakes(*dialler(c), *pop, n);
    const double hs = hc.total_s;
    std::printf(
        "%s handshake (XX + 2 certificate checks, both sides' CPU): %.3f ms "
        "each, %.0f/s; initiator %.3f ms, responder %.3f ms of CPU each "
        "(%.0f/s per core)\n",
        name, hs * 1000 / n, n / hs, hc.initiator_s * 1000 / n,
        hc.responder_s * 1000 / n,
        n / std::max(hc.initiator_s, hc.responder_s));
    double co = CipherOnly(c, messages, bytes);
    cipher_ms_per_mib.push_back(co * 1000 / mib_one);
    std::printf("%s cipher alone, seal + open (64 KiB records): %.1f MiB/s\n",
                name, mib_one / co);
    double so = SealOpen(*dialler(c), *pop, messages, bytes);
    std::printf("%s seal + open in memory (no sockets): %.1f MiB/s\n", name,
                mib_one / so);
  }

  ConnectionLimits plain;
  ConnectionLimits s_server;
  s_server.secure = pop;
  std::vector<ConnectionLimits> s_client(suites.size());
  for (size_t i = 0; i < suites.size(); i++)
    s_client[i].secure = dialler(suites[i]);
  // Alternate to share out the noise of a loaded machine.
  double plain_s = 0;
  std::vector<double> secure_s(suites.size(), 0);
  for (int round = 0; round < 3; round++) {
    plain_s += Throughput(plain, plain, messages, bytes);
    for (size_t i = 0; i < suites.size(); i++)
      secure_s[i] += Throughput(s_server, s_client[i], messages, bytes);
  }
  const double mib = mib_one * 3;
  std::printf(
      "one connection, %d x %zu-byte messages x 3 rounds over loopback (one "
      "loop):\n",
      messages, bytes);
  std::printf("  plain      %.1f MiB/s\n", mib / plain_s);
  const double per_mib_plain = plain_s / mib;
  for (size_t i = 0; i < suites.size(); i++) {
    // The best a secure channel can do here: the plain path's cost plus the
    // cipher's, per byte (both ends in this process).
    const double cipher = cipher_ms_per_mib[i] / 1000;
    std::printf(
        "  %-10s %.1f MiB/s  (%.0f%% of plain; ceiling with this cipher "
        "%.0f%%)\n",
        noise::CipherName(suites[i]), mib / secure_s[i],
        100.0 * plain_s / secure_s[i],
        100.0 * per_mib_plain / (per_mib_plain + cipher));
  }

  // As deployed: two ends, two threads, a loop each.
  TwoEnds p2;
  std::vector<TwoEnds> s2(suites.size());
  auto add = [](TwoEnds* to, const TwoEnds& t) {
    to->sender_cpu_s += t.sender_cpu_s;
    to->receiver_cpu_s += t.receiver_cpu_s;
    to->wall_s += t.wall_s;
  };
  for (int round = 0; round < 3; round++) {
    add(&p2, ThroughputTwoThreads(plain, plain, messages, bytes));
    for (size_t i = 0; i < suites.size(); i++)
      add(&s2[i], ThroughputTwoThreads(s_server, s_client[i], messages, bytes));
  }
  auto show = [&](const char* what, const TwoEnds& t) {
    const double busier = std::max(t.sender_cpu_s, t.receiver_cpu_s);
    std::printf(
        "  %-10s sender %.2f ms CPU/MiB, receiver %.2f ms CPU/MiB -> %.1f "
        "MiB/s per core "
        "(busier end); wall %.1f MiB/s\n",
        what, t.sender_cpu_s * 1000 / mib, t.receiver_cpu_s * 1000 / mib,
        mib / busier, mib / t.wall_s);
    return mib / busier;
  };
  std::printf("two ends on two threads (a loop each), same messages x 3 rounds:\n");
  const double rp = show("plain", p2);
  const double plain_end = std::max(p2.sender_cpu_s, p2.receiver_cpu_s) / mib;
  for (size_t i = 0; i < suites.size(); i++) {
    const double rs = show(noise::CipherName(suites[i]), s2[i]);
    // The ceiling for the busier end: its plain cost plus one direction of
    // the cipher (seal or open: about half of seal + open).
    std::printf(
        "  %-10s secure/plain: %.0f%% (per busier end's CPU), %.0f%% (wall); "
        "ceiling with this "
        "cipher per end %.0f%% (%.2f + %.2f ms/MiB)\n",
        noise::CipherName(suites[i]), 100.0 * rs / rp,
        100.0 * p2.wall_s / s2[i].wall_s,
        100.0 * plain_end / (plain_end + cipher_ms_per_mib[i] / 2000),
        plain_end * 1000, cipher_ms_per_mib[i] / 2);
  }
  return 0;
}
