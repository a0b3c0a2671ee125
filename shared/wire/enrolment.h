// Enrolment by one-time token and certificate renewal (issue 4): the pure
// state machines of both ends of the exchange between a node (gateway agent
// or POP) and the DC's enrolment listener. No I/O, no clock: messages and the
// current time come in as arguments, messages leave as data. The node side
// (EnrolClient) is driven by shared/uvio/enrolment_node.*; the DC side
// (EnrolAuthority) by dc-backend/enroll.* on the DC's loop thread, over an
// EnrolStore (the token records and node-id counter; files at the DC, memory
// in tests).
//
// Token: "mse1.<id>.<secret>.<ca>" in lowercase hex: a random 8-byte id, a
// random 16-byte secret and the first 16 bytes of BLAKE2b-256 of the DC's CA
// public key (so a node that knows nothing else can check it reached the
// right DC). The DC keeps only BLAKE2b-256(secret) (the verifier) with the
// role, region, subscriber and expiry; a token is redeemed at most once.
//
// Exchange: Noise_XX_25519_ChaChaPoly_BLAKE2b, prologue "mistore-enrol-v1",
// the node as initiator with its long-term static key, carried in Envelopes
// on a plain framed connection:
//   node -> DC  EnrolStart{msg1: e}
//   DC -> node  EnrolStartReply{msg2: e, ee, s, es; payload EnrolDcPayload:
//               the CA public key and the DC's certificate (role dc)}
//     The node checks the CA key against the token's fingerprint (enrol) or
//     its stored CA key (renew), then the DC certificate against that key,
//     and that it names the static key the DC just proved.
//   node -> DC  EnrolFinish{msg3: s, se; sealed EnrolRequest}
//     ENROL: token id and secret and binding = BLAKE2b-256 keyed with the
//     secret over "mistore-enrol-v1" || handshake hash, so a proof is only
//     good on the connection it was made for; the secret itself only ever
//     travels inside a channel to an authenticated DC.
//     RENEW: the node's current certificate, which must name the static key
//     the node just proved in the handshake.
//   DC -> node  EnrolFinishReply{sealed EnrolResult: certificate, CA key}
//     or an Envelope error (kPermissionDenied) naming the refusal.
// The DC assigns the node id (EnrolStore::AllocateNodeId), signs the node's
// proven static key with the token's role, region and subscriber, and
// consumes the token durably before answering. Renewal keeps the id, role,
// region, subscriber and key; it is refused for revoked nodes and expired
// certificates. Refusals (unknown, reused, expired, wrong-role token;
// revoked) are counted in EnrolStats and logged once by the authority.
//
// Ownership: EnrolClient owns its handshake state and the node's key copy;
// EnrolAuthority owns its per-session handshakes (bounded by sessions_max,
// dropped after session_timeout_ms), borrows the CA key and the store.
// Threads: one caller at a time (the loop thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "shared/core/bytes.h"
#include "shared/core/metrics.h"
#include "shared/core/status.h"
#include "shared/crypto/cert.h"
#include "shared/crypto/secret.h"
#include "shared/proto/mistore.pb.h"
#include "shared/wire/noise.h"
#include "shared/wire/secure_channel.h"

namespace mistore::enrol {

inline constexpr char kEnrolPrologue[] = "mistore-enrol-v1";
inline constexpr size_t kTokenIdBytes = 8;
inline constexpr size_t kTokenSecretBytes = 16;
inline constexpr size_t kCaFingerprintBytes = 16;
inline constexpr size_t kVerifierBytes = 32;
inline constexpr size_t kBindingBytes = 32;
inline constexpr char kTokenPrefix[] = "mse1";

struct Token {
  Bytes id;                   // kTokenIdBytes
  crypto::SecretBytes secret;  // kTokenSecretBytes
  Bytes ca_fingerprint;       // kCaFingerprintBytes
};

// A fresh random token for the CA key `ca_public_key`.
Token NewToken(std::span<const uint8_t> ca_public_key);
std::string FormatToken(const Token& token);
// kInvalidArgument "malformed enrolment token ..." for anything else.
Result<Token> ParseToken(std::string_view text);
Bytes CaFingerprint(std::span<const uint8_t> ca_public_key);
// BLAKE2b-256(secret): all the DC keeps of a token's secret.
Bytes TokenVerifier(const crypto::SecretBytes& secret);
// BLAKE2b-256 keyed with the secret over prologue || handshake_hash.
Bytes TokenBinding(const crypto::SecretBytes& secret, std::span<const uint8_t> handshake_hash);

// ---- node side ----------------------------------------------------------

struct ClientParams {
  crypto::NodeRole role = crypto::NodeRole::kGateway;
  std::optional<Token> token;  // set: enrol
  Bytes current_certificate;   // set (and no token): renew
  Bytes ca_public_key;         // renew: required; enrol: optional pin
};

struct Outcome {
  Bytes certificate_bytes;
  crypto::Certificate certificate;
  Bytes ca_public_key;
};

class EnrolClient {
 public:
  // Errors (kInvalidArgument): neither or both of token/current certificate,
  // renew without the CA key.
  static Result<EnrolClient> Create(ClientParams params, const noise::KeyPair& static_key);
  EnrolClient(EnrolClient&&) noexcept = default;

  // The EnrolStart request. Call once, first.
  Result<pb::Envelope> Start();
  // The DC's answer to Start -> the EnrolFinish request. Errors: the DC's
  // error, a CA key not matching the token / stored key, a DC certificate
  // that does not verify (kPermissionDenied), malformed input.
  Result<pb::Envelope> OnStartReply(const pb::Envelope& reply, uint64_t now_ms);
  // The DC's answer to EnrolFinish -> the new certificate, checked: signed
  // by the CA, names this node's key and the requested role, not expired.
  Result<Outcome> OnFinishReply(const pb::Envelope& reply, uint64_t now_ms);

 private:
  EnrolClient(ClientParams params, noise::KeyPair key, noise::HandshakeState hs)
      : params_(std::move(params)), key_(std::move(key)), hs_(std::move(hs)) {}
  enum class Step { kStart, kStartReply, kFinishReply, kDone, kFailed };
  Status Fail(Status st);

  ClientParams params_;
  noise::KeyPair key_;
  std::optional<noise::HandshakeState> hs_;
  noise::Transport transport_;
  Bytes ca_public_key_;  // learned from message 2
  Step step_ = Step::kStart;
};

// ---- DC side ------------------------------------------------------------

struct TokenRecord {
  Bytes verifier;  // kVerifierBytes
  crypto::NodeRole role = crypto::NodeRole::kGateway;
  std::string region;
  std::string subscriber;
  uint64_t expires_ms = 0;
  bool used = false;
};

// The DC's token records and node-id counter. Implementations must make
// Consume atomic: of two concurrent consumers of one token, one gets
// kAborted.
class EnrolStore {
 public:
  virtual ~EnrolStore() = default;
  // nullopt for an id never issued.
  virtual Result<std::optional<TokenRecord>> Find(const Bytes& token_id) = 0;
  // Marks the token used (durably) for node_id; kAborted if it was.
  virtual Status Consume(const Bytes& token_id, uint32_t node_id) = 0;
  // A node id never handed out before (durably).
  virtual Result<uint32_t> AllocateNodeId() = 0;
  virtual bool IsRevoked(uint32_t node_id) = 0;
};

struct EnrolStats {
  Counter enrolled;
  Counter renewed;
  Counter refused_unknown;  // no such token, or a wrong secret
  Counter refused_used;
  Counter refused_expired;
  Counter refused_role;
  Counter refused_revoked;  // renewal of a revoked node
  Counter refused_other;    // malformed, bad handshake, expired certificate, limits
};

struct AuthorityParams {
  uint64_t cert_lifetime_ms = 30ull * 24 * 3600 * 1000;
  size_t sessions_max = 64;           // handshakes between Start and Finish
  uint64_t session_timeout_ms = 10000;
};

class EnrolAuthority {
 public:
  // `ca`, `store` and `stats` must outlive the authority. `dc_identity`: the
  // DC's static key and certificate (role dc) signed by `ca`.
  EnrolAuthority(AuthorityParams params, const crypto::CaKey* ca,
                 std::shared_ptr<const secure::Identity> dc_identity, EnrolStore* store,
                 EnrolStats* stats, uint64_t rng_seed);

  // One handler per message type. `session` names the connection (a fresh
  // number per connection). Errors become the Envelope error of the reply;
  // every error ends the session.
  Result<pb::Envelope> OnStart(uint64_t session, const pb::EnrolStart& m, uint64_t now_ms,
                               const std::string& peer);
  Result<pb::Envelope> OnFinish(uint64_t session, const pb::EnrolFinish& m, uint64_t now_ms,
                                const std::string& peer);
  void OnClosed(uint64_t session) { sessions_.erase(session); }
  // Drops sessions older than session_timeout_ms.
  void OnTick(uint64_t now_ms);
  size_t sessions() const { return sessions_.size(); }

 private:
  struct Session {
    noise::HandshakeState hs;
    uint64_t started_ms;
  };
  Status Refuse(Counter* counter, Status st, const std::string& peer, const std::string& what);
  Result<Bytes> Issue(crypto::Certificate* cert, uint64_t now_ms);
  Result<pb::Envelope> Enrol(const pb::EnrolRequest& req, const Bytes& node_key, const Bytes& hh,
                             uint64_t now_ms, const std::string& peer,
                             noise::Transport* transport);
  Result<pb::Envelope> Renew(const pb::EnrolRequest& req, const Bytes& node_key, uint64_t now_ms,
                             const std::string& peer, noise::Transport* transport);
  Result<pb::Envelope> SealResult(const Bytes& cert, noise::Transport* transport);

  AuthorityParams params_;
  const crypto::CaKey* ca_;
  std::shared_ptr<const secure::Identity> dc_identity_;
  EnrolStore* store_;
  EnrolStats* stats_;
  uint64_t rng_state_;
  std::map<uint64_t, Session> sessions_;
};

}  // namespace mistore::enrol
