// fuzz_make_seeds_secure DIR: writes the seed corpora of the secure
// transport fuzz targets (cert, handshake) into DIR/<target>/ with the real
// encoders and the fixed keys the targets use (CA seed 32 x 0x07, static keys
// from fixed bytes). Run after a format change and commit the result:
//   build/<dir>/bin/fuzz_make_seeds_secure tests/fuzz/corpus
// Handshake seeds start with the mode byte (bit 0: initiator; the rest: the
// split point) that fuzz_handshake.cc reads.
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "shared/core/assert.h"
#include "shared/crypto/cert.h"
#include "shared/wire/frame.h"
#include "shared/wire/secure_channel.h"

using namespace mistore;

namespace {
std::string dir;
void W(const std::string& t, const std::string& n, const Bytes& b) {
  mkdir(dir.c_str(), 0755);
  mkdir((dir + "/" + t).c_str(), 0755);
  FILE* f = std::fopen((dir + "/" + t + "/" + n).c_str(), "wb");
  MS_ASSERT(f != nullptr);
  if (!b.empty()) MS_ASSERT(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  std::fclose(f);
}
std::shared_ptr<const secure::Identity> Id(const crypto::CaKey& ca, crypto::NodeRole role,
                                           uint8_t fill) {
  Bytes priv(32, fill);
  noise::KeyPair kp = noise::KeyPair::FromPrivate(priv).value();
  crypto::Certificate c;
  c.node_id = fill;
  c.role = role;
  c.serial = 1;
  c.issued_ms = 0;
  c.expires_ms = UINT64_MAX;
  c.static_public_key = kp.public_key;
  c.region = "fuzz";
  Bytes enc = ca.Sign(&c).value();
  return std::make_shared<secure::Identity>(secure::Identity::Create(std::move(kp), enc).value());
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds_secure DIR\n");
    return 2;
  }
  dir = argv[1];
  crypto::CaKey ca = crypto::CaKey::FromSeed(Bytes(32, 7)).value();
  // cert seeds
  crypto::Certificate c;
  c.node_id = 11;
  c.role = crypto::NodeRole::kGateway;
  c.serial = 5;
  c.issued_ms = 1700000000000ull;
  c.expires_ms = 1900000000000ull;
  c.static_public_key = Bytes(32, 0x33);
  c.region = "eu-west";
  c.subscriber = "alice";
  Bytes g = ca.Sign(&c).value();
  W("cert", "valid_gateway", g);
  crypto::Certificate p = c;
  p.role = crypto::NodeRole::kPop;
  p.subscriber = "";
  p.region = "";
  W("cert", "valid_pop_empty_strings", ca.Sign(&p).value());
  crypto::Certificate e = c;
  e.expires_ms = 1000;
  W("cert", "expired", ca.Sign(&e).value());
  crypto::CaKey other = crypto::CaKey::FromSeed(Bytes(32, 8)).value();
  crypto::Certificate o = c;
  W("cert", "other_ca", other.Sign(&o).value());
  Bytes t = g;
  t.resize(g.size() - 1);
  W("cert", "truncated", t);
  Bytes v = g;
  v[4] = 2;
  W("cert", "bad_version", v);
  crypto::Certificate l = c;
  l.region.assign(64, 'r');
  l.subscriber.assign(64, 's');
  W("cert", "max_strings", ca.Sign(&l).value());
  // handshake seeds: first byte = mode (bit0 initiator) | split << 1
  // (split < 32) | 0x40 (the initiator dials AESGCM)
  secure::ChannelConfig cfg;
  cfg.identity = Id(ca, crypto::NodeRole::kGateway, 0x22);
  cfg.ca_public_key = ca.public_key();
  secure::ChannelConfig pcfg;
  pcfg.identity = Id(ca, crypto::NodeRole::kPop, 0x21);
  pcfg.ca_public_key = ca.public_key();
  auto a = secure::SecureChannel::Create(cfg, true, 1000).value();
  Bytes m1;
  (void)a.Start(&m1);
  Bytes in = {uint8_t(10 << 1)};
  in.insert(in.end(), m1.begin(), m1.end());
  W("handshake", "responder_msg1", in);
  auto b = secure::SecureChannel::Create(pcfg, false, 1000).value();
  Bytes x;
  (void)b.Start(&x);
  Bytes m2;
  std::vector<Bytes> msgs;
  (void)b.Receive(m1, 1000, &m2, &msgs);
  in = {uint8_t(1 | (20 << 1))};
  in.insert(in.end(), m2.begin(), m2.end());
  W("handshake", "initiator_msg2", in);
  Bytes m3;
  (void)a.Receive(m2, 1000, &m3, &msgs);
  Bytes r;
  (void)a.Seal(Bytes(100, 1), &r);
  in = {uint8_t(2 << 1)};
  in.insert(in.end(), m1.begin(), m1.end());
  in.insert(in.end(), m3.begin(), m3.end());
  in.insert(in.end(), r.begin(), r.end());
  W("handshake", "responder_msg1_msg3_record", in);
  Bytes plain;
  uint8_t pl[] = {8, 1, 16, 0};
  EncodeFrame(pl, 4, &plain);
  in = {0};
  in.insert(in.end(), plain.begin(), plain.end());
  W("handshake", "plaintext_frame", in);
  in = {0, 'M', 'S', 'N', '2', 0xff, 0xff};
  W("handshake", "oversized_record", in);
  // The AESGCM suite ("MSNG"): the same three seeds with the suite both
  // sides' (the initiator's mode bit 0x40).
  if (noise::CipherBuilt(noise::Cipher::kAesGcm)) {
    secure::ChannelConfig acfg = cfg;
    acfg.cipher = noise::Cipher::kAesGcm;
    auto ga = secure::SecureChannel::Create(acfg, true, 1000).value();
    Bytes g1, gx, g2, g3, gr;
    (void)ga.Start(&g1);
    auto gb = secure::SecureChannel::Create(pcfg, false, 1000).value();
    (void)gb.Start(&gx);
    (void)gb.Receive(g1, 1000, &g2, &msgs);
    (void)ga.Receive(g2, 1000, &g3, &msgs);
    (void)ga.Seal(Bytes(100, 1), &gr);
    in = {uint8_t(10 << 1)};
    in.insert(in.end(), g1.begin(), g1.end());
    W("handshake", "aesgcm_responder_msg1", in);
    in = {uint8_t(0x40 | 1 | (20 << 1))};
    in.insert(in.end(), g2.begin(), g2.end());
    W("handshake", "aesgcm_initiator_msg2", in);
    in = {uint8_t(2 << 1)};
    in.insert(in.end(), g1.begin(), g1.end());
    in.insert(in.end(), g3.begin(), g3.end());
    in.insert(in.end(), gr.begin(), gr.end());
    W("handshake", "aesgcm_responder_msg1_msg3_record", in);
    // A ChaChaPoly message 2 to an AESGCM initiator (a downgrade).
    in = {uint8_t(0x40 | 1 | (20 << 1))};
    in.insert(in.end(), m2.begin(), m2.end());
    W("handshake", "aesgcm_initiator_downgraded_msg2", in);
  }
  in = {0, 'M', 'S', 'N', '1', 32, 0};  // an older protocol version
  W("handshake", "old_version", in);
  in = {0, 'M', 'S'};
  W("handshake", "partial_preamble", in);

  // Device links (issue 4): first byte 0x80 | IK << 1 | initiator | split << 2,
  // the target's fixed keys (agent 32 x 0x31, device 32 x 0x32).
  secure::ChannelConfig agent, dev_xx, dev_ik;
  {
    auto d = std::make_shared<secure::DeviceLinkConfig>();
    d->static_key = noise::KeyPair::FromPrivate(Bytes(32, 0x31)).value();
    agent.device_link = d;
    auto x = std::make_shared<secure::DeviceLinkConfig>();
    x->static_key = noise::KeyPair::FromPrivate(Bytes(32, 0x32)).value();
    dev_xx.device_link = x;
    auto k = std::make_shared<secure::DeviceLinkConfig>();
    k->static_key = x->static_key.Clone();
    k->peer_static_key = d->static_key.public_key;
    dev_ik.device_link = k;
  }
  for (const bool ik : {true, false}) {
    auto dv =
        secure::SecureChannel::Create(ik ? dev_ik : dev_xx, true, 1000).value();
    auto ag = secure::SecureChannel::Create(agent, false, 1000).value();
    Bytes d1, a0, a1, d2, rec;
    std::vector<Bytes> got;
    (void)dv.Start(&d1);
    (void)ag.Start(&a0);
    (void)ag.Receive(d1, 1000, &a1, &got);  // IK: message 2; XX: message 2
    (void)dv.Receive(a1, 1000, &d2, &got);  // XX: message 3
    (void)dv.Seal(Bytes(100, 3), &rec);
    // To the agent: message 1 (and 3), then a transport record.
    in = {uint8_t(0x80 | (6 << 2))};
    in.insert(in.end(), d1.begin(), d1.end());
    in.insert(in.end(), d2.begin(), d2.end());
    in.insert(in.end(), rec.begin(), rec.end());
    W("handshake",
      ik ? "device_responder_ik_msg1_record"
         : "device_responder_xx_msg1_msg3_record",
      in);
    // To the device after its message 1: the agent's message 2.
    in = {uint8_t(0x80 | (ik ? 2 : 0) | 1 | (10 << 2))};
    in.insert(in.end(), a1.begin(), a1.end());
    W("handshake", ik ? "device_initiator_ik_msg2" : "device_initiator_xx_msg2",
      in);
  }
  in = {0x80, 'M', 'S', 'D', 'K', 32, 0};  // an unknown device pattern
  W("handshake", "device_unknown_pattern", in);
  in = {0x80};
  in.insert(in.end(), plain.begin(), plain.end());
  W("handshake", "device_plaintext_frame", in);
  return 0;
}
