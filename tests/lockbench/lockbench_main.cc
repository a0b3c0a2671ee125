// mistore-lockbench: lock acquire+release pairs per second at one POP, with
// C concurrent clients over loopback, and the latency of each pair (median,
// 99th percentile). It connects as a POP would (Hello with role POP) and
// asks for write locks on objects whose primary is the target POP: each
// client its own object (no contention), or all one object (--contended).
//   mistore-lockbench --pop ADDR --pop-id N --backup-id M [--clients 64]
//                     [--seconds 5] [--contended]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "shared/core/oid.h"
#include "shared/uvio/connection.h"

using namespace mistore;

int main(int argc, char** argv) {
  std::string addr;
  uint32_t pop_id = 1, backup_id = 2;
  int clients = 64;
  double seconds = 5;
  bool contended = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--pop") addr = next();
    else if (a == "--pop-id") pop_id = uint32_t(std::atoi(next().c_str()));
    else if (a == "--backup-id") backup_id = uint32_t(std::atoi(next().c_str()));
    else if (a == "--clients") clients = std::atoi(next().c_str());
    else if (a == "--seconds") seconds = std::atof(next().c_str());
    else if (a == "--contended") contended = true;
    else {
      std::fprintf(stderr, "usage: mistore-lockbench --pop ADDR --pop-id N --backup-id M "
                           "[--clients C] [--seconds S] [--contended]\n");
      return 2;
    }
  }
  if (addr.empty() || clients < 1) return 2;
  EventLoop loop;
  using Clock = std::chrono::steady_clock;
  std::vector<double> latencies_us;
  uint64_t pairs = 0, errors = 0;
  bool measuring = false, stop = false;
  Clock::time_point start;
  int connected = 0;
  uint64_t map_epoch = 0;  // the POP's cluster-map epoch, from its HelloReply
  std::vector<Connection::Ptr> conns(static_cast<size_t>(clients));
  // At the end every client finishes its pair (releasing what it holds)
  // before the connections close: a lock left held would block the object
  // for a whole lease and spoil the next run's figures.
  int active = clients;
  std::function<void(int)> cycle = [&](int c) {
    if (stop) {
      if (--active == 0) {
        for (auto& cn : conns) cn->Close(Unavailable("done"));
        loop.Stop();
      }
      return;
    }
    Oid oid{pop_id, backup_id, uint32_t(900000 + (contended ? 0 : c)), 1};
    std::string oid_s;
    for (uint8_t b : oid.Encode()) oid_s.push_back(char(b));
    pb::Envelope acq;
    acq.mutable_acquire_lock()->set_oid(oid_s);
    acq.mutable_acquire_lock()->set_type(pb::LOCK_WRITE);
    acq.mutable_acquire_lock()->set_lease_ms(5000);
    acq.set_map_epoch(map_epoch);  // lock requests are refused across epochs
    auto t0 = Clock::now();
    conns[size_t(c)]->Call(acq, [&, c, oid_s, t0](Result<pb::Envelope> r) {
      if (!r.ok() || r->has_error()) {
        if (errors++ == 0)
          std::fprintf(stderr, "first error: %s\n",
                       r.ok() ? r->error().message().c_str() : r.status().ToString().c_str());
        return cycle(c);
      }
      pb::Envelope rel;
      rel.mutable_release_lock()->set_oid(oid_s);
      rel.mutable_release_lock()->set_lock_id(r->lock_grant().lock_id());
      conns[size_t(c)]->Call(rel, [&, c, t0](Result<pb::Envelope> r2) {
        if (measuring) {
          pairs++;
          latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        if (!r2.ok()) errors++;
        cycle(c);
      });
    });
  };
  for (int c = 0; c < clients; c++) {
    Dial(&loop, addr, ConnectionLimits{}, [&, c](Result<Connection::Ptr> r) {
      if (!r.ok()) {
        std::fprintf(stderr, "cannot connect: %s\n", r.status().ToString().c_str());
        std::exit(1);
      }
      conns[size_t(c)] = r.value();
      pb::Envelope hello;
      hello.mutable_hello()->set_role(pb::ROLE_POP);
      hello.mutable_hello()->set_node_id(900 + uint32_t(c));
      conns[size_t(c)]->Call(hello, [&, c](Result<pb::Envelope> hr) {
        if (hr.ok() && hr->has_hello_reply()) map_epoch = hr->hello_reply().map().epoch();
        if (++connected == clients) {
          for (int k = 0; k < clients; k++) cycle(k);
          loop.After(1000, [&] {  // warm-up: first use of each object syncs it
            measuring = true;
            start = Clock::now();
            loop.After(uint64_t(seconds * 1000), [&] {
              stop = true;
              double s = std::chrono::duration<double>(Clock::now() - start).count();
              std::sort(latencies_us.begin(), latencies_us.end());
              auto pct = [&](double p) {
                return latencies_us.empty() ? 0.0 : latencies_us[size_t(p * double(latencies_us.size() - 1))];
              };
              std::printf("clients=%d contended=%s pairs=%llu seconds=%.2f pairs_per_s=%.0f "
                          "median_us=%.0f p99_us=%.0f errors=%llu\n",
                          clients, contended ? "yes" : "no", (unsigned long long)pairs, s,
                          double(pairs) / s, pct(0.5), pct(0.99), (unsigned long long)errors);
              std::fflush(stdout);
            });
          });
        }
      });
    });
  }
  loop.Run();
  return 0;
}
