// Fuzz target: the secure channel's handshake and record parser
// (shared/wire/secure_channel.h), both flavours. The first input byte picks
// the flavour, the side and a split point; the rest is what a hostile peer
// sends, fed in two pieces.
//   bit 7 clear, node links (Noise XX with certificates):
//     bit 0 = initiator, split = bits 1-5, bit 6 = the initiator dials the
//     AESGCM suite (where it is built; else ChaChaPoly);
//     responder (either suite, from the preamble "MSN2" / "MSNG"): preamble
//     check, record limits, message 1, and message 3 after the responder's
//     reply; initiator (after its message 1): message 2 parsing, the
//     encrypted certificate, certificate checks.
//   bit 7 set, device links (issue 4; no certificates):
//     bit 0 = initiator, bit 1 = IK (initiator; the responder takes the
//     pattern from the preamble), split = bits 2-6;
//     responder (the agent): "MSDI"/"MSDX" preamble, IK message 1 (encrypted
//     static key), XX messages 1 and 3, transport records; initiator (the
//     device, after its message 1): IK or XX message 2.
// Identities are fixed (CA seed 32 x 0x07, static keys from fixed bytes; the
// device link's agent key is 32 x 0x31, the device's 32 x 0x32).
//
// Properties: no crash, no out-of-bounds read; errors are only kProtocol,
// kCorrupt, kPermissionDenied, kResourceExhausted or kInvalidArgument (a
// Noise message of a wrong length); a failed channel stays failed; buffered
// bytes never exceed one record plus the input.
#include <cstdint>
#include <memory>

#include "shared/core/assert.h"
#include "shared/core/bytes.h"
#include "shared/crypto/cert.h"
#include "shared/wire/secure_channel.h"

namespace {
using namespace mistore;

std::shared_ptr<const secure::Identity> FixedIdentity(const crypto::CaKey& ca,
                                                      crypto::NodeRole role, uint8_t key_fill) {
  Bytes priv(32, key_fill);
  noise::KeyPair kp = noise::KeyPair::FromPrivate(priv).value();
  crypto::Certificate c;
  c.node_id = key_fill;
  c.role = role;
  c.serial = 1;
  c.issued_ms = 0;
  c.expires_ms = UINT64_MAX;
  c.static_public_key = kp.public_key;
  c.region = "fuzz";
  Bytes enc = ca.Sign(&c).value();
  return std::make_shared<secure::Identity>(
      secure::Identity::Create(std::move(kp), std::move(enc)).value());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const crypto::CaKey ca = crypto::CaKey::FromSeed(Bytes(32, 0x07)).value();
  static const secure::ChannelConfig base = [] {
    secure::ChannelConfig c;
    c.identity = FixedIdentity(ca, crypto::NodeRole::kPop, 0x21);
    c.ca_public_key = ca.public_key();
    c.message_bytes_max = 1 << 16;
    return c;
  }();
  static const secure::ChannelConfig base_aesgcm = [] {
    secure::ChannelConfig c = base;
    if (noise::CipherBuilt(noise::Cipher::kAesGcm)) c.cipher = noise::Cipher::kAesGcm;
    return c;
  }();
  static const secure::ChannelConfig agent = [] {
    secure::ChannelConfig c;
    auto d = std::make_shared<secure::DeviceLinkConfig>();
    d->static_key = noise::KeyPair::FromPrivate(Bytes(32, 0x31)).value();
    c.device_link = d;
    c.message_bytes_max = 1 << 16;
    return c;
  }();
  static const secure::ChannelConfig device_xx = [] {
    secure::ChannelConfig c;
    auto d = std::make_shared<secure::DeviceLinkConfig>();
    d->static_key = noise::KeyPair::FromPrivate(Bytes(32, 0x32)).value();
    c.device_link = d;
    c.message_bytes_max = 1 << 16;
    return c;
  }();
  static const secure::ChannelConfig device_ik = [] {
    secure::ChannelConfig c = device_xx;
    auto d = std::make_shared<secure::DeviceLinkConfig>();
    d->static_key = device_xx.device_link->static_key.Clone();
    d->peer_static_key = agent.device_link->static_key.public_key;
    c.device_link = d;
    return c;
  }();
  if (size == 0) return 0;
  const bool device = data[0] & 0x80;
  const bool initiator = data[0] & 1;
  const size_t split = device ? (data[0] >> 2) & 31 : (data[0] >> 1) & 31;
  const bool aesgcm = !device && (data[0] & 0x40) != 0;
  const secure::ChannelConfig& cfg = !device && aesgcm    ? base_aesgcm
                                     : !device            ? base
                                     : !initiator         ? agent
                                     : (data[0] & 2) != 0 ? device_ik
                                                          : device_xx;
  data++;
  size--;
  auto ch = secure::SecureChannel::Create(cfg, initiator, 1000);
  MS_ASSERT(ch.ok());
  Bytes out;
  MS_ASSERT(ch->Start(&out).ok());
  std::vector<Bytes> msgs;
  const size_t first = split < size ? split : size;
  Status st = ch->Receive({data, first}, 1000, &out, &msgs);
  if (st.ok()) st = ch->Receive({data + first, size - first}, 1001, &out, &msgs);
  if (!st.ok()) {
    const Code c = st.code();
    MS_ASSERT(c == Code::kProtocol || c == Code::kCorrupt || c == Code::kPermissionDenied ||
              c == Code::kResourceExhausted || c == Code::kInvalidArgument);
    MS_ASSERT(ch->failed());
    MS_ASSERT(!ch->Receive({data, size}, 1002, &out, &msgs).ok());
    MS_ASSERT(ch->buffered_bytes() == 0);
  } else {
    MS_ASSERT(ch->buffered_bytes() <= size + 2 + 65535);
  }
  return 0;
}
