// mistore-handshake-bench (issue 4): CPU time of one complete Noise
// handshake, both sides in one thread, in memory (no I/O): the raw patterns
// (shared/wire/noise.h) XX, IK and KK, and the secure channel's flavours
// (shared/wire/secure_channel.h): a node link (XX with certificates, each
// side verifying the other's Ed25519-signed certificate) and the device
// link (XX to pair, IK afterwards). Per iteration: both sides' key
// agreement, every handshake message written and read, Split. Results and
// the machine's load go to docs/security.md. Run:
//   build/release/bin/mistore-handshake-bench
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "shared/core/assert.h"
#include "shared/crypto/cert.h"
#include "shared/wire/noise.h"
#include "shared/wire/secure_channel.h"

namespace {
using namespace mistore;

void RawHandshake(benchmark::State& state, const char* pattern) {
  const noise::KeyPair is = noise::KeyPair::Generate(),
                       rs = noise::KeyPair::Generate();
  const std::string p = pattern;
  const bool init_pre = p[0] == 'K';  // KK: initiator's key known
  const bool resp_pre = p[1] == 'K';  // IK, KK: responder's key known
  for (auto _ : state) {
    auto i = noise::HandshakeState::Create(p, true, {}, &is,
                                           resp_pre ? &rs.public_key : nullptr)
                 .value();
    auto r = noise::HandshakeState::Create(p, false, {}, &rs,
                                           init_pre ? &is.public_key : nullptr)
                 .value();
    while (!i.Complete() || !r.Complete()) {
      noise::HandshakeState& w = i.IsMyTurn() ? i : r;
      noise::HandshakeState& rd = i.IsMyTurn() ? r : i;
      Bytes m = w.WriteMessage({}).value();
      MS_ASSERT(rd.ReadMessage(m).ok());
    }
    auto a = i.Split();
    auto b = r.Split();
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
  }
  state.SetLabel(noise::ProtocolName(p));
}
BENCHMARK_CAPTURE(RawHandshake, XX, "XX")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(RawHandshake, IK, "IK")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(RawHandshake, KK, "KK")->Unit(benchmark::kMicrosecond);

// Both ends of one SecureChannel handshake until both are established.
void Channel(benchmark::State& state, const secure::ChannelConfig& ic,
             const secure::ChannelConfig& rc, uint64_t now_ms) {
  for (auto _ : state) {
    auto a = secure::SecureChannel::Create(ic, true, now_ms).value();
    auto b = secure::SecureChannel::Create(rc, false, now_ms).value();
    Bytes ab, ba;
    std::vector<Bytes> msgs;
    MS_ASSERT(a.Start(&ab).ok());
    MS_ASSERT(b.Start(&ba).ok());
    while (!ab.empty() || !ba.empty()) {
      Bytes in;
      in.swap(ab);
      if (!in.empty()) MS_ASSERT(b.Receive(in, now_ms, &ba, &msgs).ok());
      in.clear();
      in.swap(ba);
      if (!in.empty()) MS_ASSERT(a.Receive(in, now_ms, &ab, &msgs).ok());
    }
    MS_ASSERT(a.established() && b.established());
    benchmark::DoNotOptimize(a.handshake_hash());
  }
}

constexpr uint64_t kNow = 1'800'000'000'000ull;

std::shared_ptr<const secure::Identity> Identity(const crypto::CaKey& ca,
                                                 crypto::NodeRole role,
                                                 uint32_t id) {
  noise::KeyPair kp = noise::KeyPair::Generate();
  crypto::Certificate c;
  c.node_id = id;
  c.role = role;
  c.serial = id;
  c.issued_ms = kNow - 1000;
  c.expires_ms = kNow + 3600'000;
  c.static_public_key = kp.public_key;
  c.region = "eu";
  Bytes enc = ca.Sign(&c).value();
  return std::make_shared<secure::Identity>(
      secure::Identity::Create(std::move(kp), std::move(enc)).value());
}

void NodeLinkXX(benchmark::State& state) {
  const crypto::CaKey ca = crypto::CaKey::FromSeed(Bytes(32, 1)).value();
  secure::ChannelConfig gw, pop;
  gw.identity = Identity(ca, crypto::NodeRole::kGateway, 11);
  gw.ca_public_key = ca.public_key();
  pop.identity = Identity(ca, crypto::NodeRole::kPop, 2);
  pop.ca_public_key = ca.public_key();
  Channel(state, gw, pop, kNow);
}
BENCHMARK(NodeLinkXX)->Unit(benchmark::kMicrosecond);

void DeviceLink(benchmark::State& state, bool ik) {
  const noise::KeyPair agent_key = noise::KeyPair::Generate();
  secure::ChannelConfig agent, device;
  auto a = std::make_shared<secure::DeviceLinkConfig>();
  a->static_key = agent_key.Clone();
  agent.device_link = a;
  auto d = std::make_shared<secure::DeviceLinkConfig>();
  d->static_key = noise::KeyPair::Generate();
  if (ik) d->peer_static_key = agent_key.public_key;
  device.device_link = d;
  Channel(state, device, agent, kNow);
}
BENCHMARK_CAPTURE(DeviceLink, XX_pairing, false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(DeviceLink, IK_paired, true)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
