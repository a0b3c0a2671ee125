// SecureChannel: the pure state machine of one mutually authenticated,
// encrypted Mistore link (no I/O, no clock: bytes and the current time come
// in as arguments, bytes to send go out as data). shared/uvio/Connection
// drives one per connection when it is given a SecureConfig.
//
// Handshake: Noise_XX_25519_ChaChaPoly_BLAKE2b or Noise_XX_25519_AESGCM_BLAKE2b
// (shared/wire/noise.h) with prologue "mistore-secure-v2". Each side's
// handshake payload is its DC-signed certificate (shared/crypto/cert.h); the
// receiver checks that the certificate names the static key the peer just
// proved, that the cluster's DC signed it, that its role is one this side
// accepts, that it has not expired and that its node is not in the revocation
// set. Any failure ends the channel.
//   initiator -> responder:  "MSN2"|"MSNG"  rec(-> e)          (empty payload)
//   responder -> initiator:          rec(<- e, ee, s, es)      (cert R)
//   initiator -> responder:          rec(-> s, se)             (cert I)
// then transport records in both directions. The initiator is established
// once it has written message 3 and may send data right behind it.
//
// Cipher suite: the initiator picks it (ChannelConfig::cipher, the `cipher`
// knob) and names it in the preamble's last byte: '2' ChaChaPoly (the
// original v2 preamble, so older nodes interoperate), 'G' AES-256-GCM. The
// responder accepts every suite built into it and runs the handshake in the
// suite named. A rewritten preamble (a downgrade) cannot go unnoticed: the
// suite is in the Noise protocol name, the first input of the handshake
// hash, so the two sides' keys differ and message 2 fails authentication at
// the initiator (kDecryptFailed). A responder built without AES-GCM (the
// gateway agent-only builds) refuses 'G' as an unknown version (kPlaintext).
//
// Records: [u16 LE length][body]. Handshake bodies are at most
// kHandshakeRecordBytesMax bytes; transport bodies are Noise transport
// ciphertexts (<= 65535 bytes) whose plaintext is [piece][flags u8], flags
// bit 0 = last piece of a message, other bits zero (flags last, so pieces
// decrypt straight into the reassembled message). A message (one serialized
// Envelope for Connection) is split into pieces and reassembled, bounded by
// message_bytes_max. A modified, replayed, reordered, dropped or truncated
// record fails AEAD authentication (per-direction keys and counters) and
// poisons the channel. Version 1 (preamble "MSN1", flags first) is refused
// with a clear error.
//
// Copies: Seal builds each record in the output buffer (one copy of the
// message, then in-place encryption); Receive decrypts each record straight
// from the received bytes into the message being reassembled, and buffers
// only a record that straddles two reads (at most one record).
//
// A plain-mode peer is refused cleanly: a responder whose first four bytes
// are not "MSN1" fails with kProtocol "plaintext connection refused"; a
// plain-mode responder reads "MSN1" as an over-long frame header and closes.
//
// Errors: every failure poisons the channel (later calls fail) and the
// connection must be closed. kPermissionDenied for certificate refusals,
// kCorrupt for authentication failures, kProtocol for malformed input,
// kResourceExhausted for limits, kUnavailable for the handshake deadline;
// failure() names the reason from a bounded set.
//
// Device link (ChannelConfig::device_link set; issue 4): the flavour for a
// subscriber's device <-> its gateway agent, where the device has no
// certificate and trust comes from pairing (gateway-agent/enrol_pairing.h,
// sync-client/pair.h). Prologue "mistore-device-v1"; the device (initiator)
// picks the pattern with its preamble, the agent accepts either:
//   "MSDI"  Noise_IK: the device knows the agent's static key (pinned at
//           pairing) and sends its own encrypted in message 1
//             -> e, es, s, ss      <- e, ee, se
//           (the agent learns which device calls from message 1; KK would
//           need the agent to know that before the first byte).
//   "MSDX"  Noise_XX: pairing, or a device that never paired
//             -> e    <- e, ee, s, es    -> s, se
// Device links always run ChaChaPoly (the agent on a gateway is built
// without AES-GCM). Handshake payloads are empty. No certificate is checked
// here: the channel only establishes both static keys (peer_static_key()) and
// the handshake hash; the agent decides per request whether that key is paired,
// and pairing proves the code bound to handshake_hash(). A responder whose
// first bytes are not "MSD" refuses the plaintext connection; a device
// handshake sent to a node port is refused as plaintext there, and the
// reverse likewise.
//
// Ownership: the channel owns its Noise state (keys wiped on destruction)
// and shares the read-only Identity and the revocation set with its config
// (the daemon may update the revocation set between handshakes; both live on
// the loop thread). Threads: one channel per connection, its loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/crypto/cert.h"
#include "shared/wire/noise.h"

namespace mistore::secure {

inline constexpr uint8_t kPreamble[4] = {'M', 'S', 'N', '2'};  // ChaChaPoly
inline constexpr uint8_t kPreambleAesGcm[4] = {'M', 'S', 'N', 'G'};  // AESGCM
inline constexpr size_t kRecordHeaderBytes = 2;
inline constexpr size_t kHandshakeRecordBytesMax = 1024;
// Largest piece of a message carried by one transport record.
inline constexpr size_t kPieceBytesMax = noise::kMaxTransportPlaintext - 1;
inline constexpr char kPrologue[] = "mistore-secure-v2";
inline constexpr uint8_t kDevicePreambleIK[4] = {'M', 'S', 'D', 'I'};
inline constexpr uint8_t kDevicePreambleXX[4] = {'M', 'S', 'D', 'X'};
inline constexpr char kDevicePrologue[] = "mistore-device-v1";
// Accepted tags remembered to tell a replayed record from a forged one.
inline constexpr size_t kRecentTagsMax = 16;

// Why a channel failed: a bounded set, for refusal counters and log lines.
enum class Failure : uint8_t {
  kNone,
  kBadCert,           // unreadable, not signed by this DC, wrong key, not yet valid
  kWrongRole,         // a role this side does not accept here
  kExpired,           // certificate past its expiry
  kRevoked,           // node in the revocation set
  kPlaintext,         // no secure preamble (a plain-mode peer) or an old version
  kDecryptFailed,     // a record failed authentication (modified, reordered, dropped)
  kReplay,            // a record equal to one accepted earlier
  kHandshakeTimeout,  // handshake not finished by the deadline
  kMessageTooLong,    // a message over message_bytes_max
  kProtocol,          // malformed handshake or record, misuse
};
const char* FailureName(Failure f);

// This node's long-term identity: its static X25519 key pair and the
// certificate the DC issued for that key.
struct Identity {
  noise::KeyPair static_key;
  Bytes cert_bytes;          // canonical encoding, sent in the handshake
  crypto::Certificate cert;  // parsed cert_bytes

  // Checks that cert_bytes parses and names static_key's public key.
  static Result<Identity> Create(noise::KeyPair static_key, Bytes cert_bytes);
};

// The device link's keys (see the header comment).
struct DeviceLinkConfig {
  noise::KeyPair static_key;  // the device's key, or the agent's client-link key
  // Initiator (the device) only: the agent's static key pinned at pairing
  // (32 bytes: Noise IK), or empty (Noise XX). Must be empty on the agent.
  Bytes peer_static_key;
};

struct ChannelConfig {
  // Set: a device link; identity, ca_public_key, peer_roles and
  // revoked_node_ids are then unused.
  std::shared_ptr<const DeviceLinkConfig> device_link;
  std::shared_ptr<const Identity> identity;  // required for node links
  Bytes ca_public_key;                       // the DC's Ed25519 key
  std::set<crypto::NodeRole> peer_roles;     // accepted peer roles; empty = any
  // Node ids refused from now on (shared with the daemon, which updates it
  // from the cluster map; may be null).
  std::shared_ptr<const std::set<uint32_t>> revoked_node_ids;
  uint64_t handshake_timeout_ms = 10000;
  size_t message_bytes_max = 8u << 20;
  // Node links, initiator: the suite it dials (must be built in; the
  // `cipher` knob resolves "auto"). A responder accepts every built suite.
  noise::Cipher cipher = noise::Cipher::kChaChaPoly;
};

class SecureChannel {
 public:
  // Errors (kInvalidArgument): no identity, CA key not 32 bytes, a cipher
  // not built in (initiator); for a device link, keys of the wrong length or a
  // pinned key on the responder.
  static Result<SecureChannel> Create(const ChannelConfig& config, bool initiator, uint64_t now_ms);
  SecureChannel(SecureChannel&&) noexcept = default;
  SecureChannel& operator=(SecureChannel&&) noexcept = default;

  // Initiator: appends the preamble and handshake message 1 to *wire.
  // Responder: appends nothing. Call once, first.
  Status Start(Bytes* wire);

  // Consumes received bytes. Handshake replies are appended to *wire;
  // complete decrypted messages are appended to *messages (in order).
  // Fails after the handshake deadline if not yet established.
  Status Receive(std::span<const uint8_t> bytes, uint64_t now_ms, Bytes* wire,
                 std::vector<Bytes>* messages);

  // Encrypts one message into transport records appended to *wire.
  // Errors: not established, over message_bytes_max, poisoned.
  Status Seal(std::span<const uint8_t> message, Bytes* wire);

  // kUnavailable "handshake timeout" if the handshake is still running at
  // now_ms >= deadline (poisons the channel); Ok otherwise.
  Status CheckDeadline(uint64_t now_ms);

  bool established() const { return established_; }
  bool failed() const { return failed_; }
  // After failed(): why (kNone before).
  Failure failure() const { return failure_kind_; }
  uint64_t handshake_deadline_ms() const { return deadline_ms_; }
  // After established(), node links only: the peer's verified certificate.
  const crypto::Certificate& peer_certificate() const { return *peer_cert_; }
  bool device_link() const { return config_.device_link != nullptr; }
  // After established(): the static key the peer proved (both flavours).
  const Bytes& peer_static_key() const { return peer_static_; }
  // The Noise pattern in use ("XX", "IK"); empty on a device-link responder
  // before the preamble arrived.
  const std::string& pattern() const { return pattern_; }
  // The suite's cipher: the initiator's from Create(), a node-link
  // responder's from the preamble (ChaChaPoly until it arrived).
  noise::Cipher cipher() const { return cipher_; }
  // After established(): the Noise handshake hash (channel binding).
  const Bytes& handshake_hash() const { return handshake_hash_; }
  // Bytes held for an incomplete record plus an incomplete message.
  // Bounded by one record (kRecordHeaderBytes + 65535) + message_bytes_max.
  size_t buffered_bytes() const { return in_.size() + reassembly_.size(); }

 private:
  SecureChannel(ChannelConfig config, bool initiator, uint64_t deadline_ms,
                std::optional<noise::HandshakeState> hs, std::string pattern,
                noise::Cipher cipher = noise::Cipher::kChaChaPoly)
      : config_(std::move(config)),
        initiator_(initiator),
        deadline_ms_(deadline_ms),
        hs_(std::move(hs)),
        pattern_(std::move(pattern)),
        cipher_(cipher) {}
  Status Fail(Status st, Failure kind);
  Status OnRecord(std::span<const uint8_t> body, uint64_t now_ms, Bytes* wire,
                  std::vector<Bytes>* messages, Failure* kind);
  Status OnHandshakeRecord(std::span<const uint8_t> body, uint64_t now_ms, Bytes* wire,
                           Failure* kind);
  Status OnTransportRecord(std::span<const uint8_t> body, std::vector<Bytes>* messages,
                           Failure* kind);
  Status CheckPeer(std::span<const uint8_t> payload, uint64_t now_ms, Failure* kind);
  Failure ClassifyCertRefusal(const crypto::Certificate& cert, uint64_t now_ms) const;
  Status Finish();
  Status OnPreamble();
  Status OnDeviceHandshake(std::span<const uint8_t> payload, Bytes* wire);
  static void AppendRecord(std::span<const uint8_t> body, Bytes* wire);

  ChannelConfig config_;
  bool initiator_;
  uint64_t deadline_ms_;
  std::optional<noise::HandshakeState> hs_;
  noise::Transport transport_;
  bool started_ = false;
  bool preamble_seen_ = false;
  bool established_ = false;
  bool failed_ = false;
  Status failure_;
  Failure failure_kind_ = Failure::kNone;
  std::optional<crypto::Certificate> peer_cert_;
  Bytes peer_static_;
  std::string pattern_;
  noise::Cipher cipher_;
  Bytes handshake_hash_;
  Bytes in_;          // the preamble, or one record straddling two reads
  Bytes reassembly_;  // pieces of the message being received
  size_t last_message_bytes_ = 0;  // size of the previous message (a reserve hint)
  // Tags of the last kRecentTagsMax accepted records (replay diagnosis only;
  // AEAD counters are what refuse a replay).
  uint8_t recent_tags_[kRecentTagsMax][noise::kTagLen] = {};
  size_t recent_tags_next_ = 0;
};

}  // namespace mistore::secure
