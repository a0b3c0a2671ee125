// Connection: one TCP stream carrying length-prefixed Envelope frames in both
// directions, with request/response matching (either side may call the
// other). Owned by shared_ptr: the connection keeps itself alive while its
// libuv handle is open; callers hold shared_ptrs or weak_ptrs. Loop thread
// only.
//
// Limits (ConnectionLimits; each enforced, each closing the connection with
// one log line naming the peer and the limit, and counted in
// mistore_connections_refused_total{reason} (shared/uvio/refusals.h)):
//   frame_bytes_max              a frame (plain) or message (secure) longer
//                                than this: limit_frame. Bytes held for a
//                                partial frame are bounded by it.
//   write_queue_bytes_max        bytes queued for a peer that does not read
//                                (a slow reader): limit_buffered.
//   requests_in_flight_max       requests from the peer not yet answered
//                                (answered, or older than kRequestForgetMs):
//                                limit_inflight.
//   connections_per_address_max  open connections a Listener accepts from
//                                one IP address: limit_per_address (closed
//                                at once, before any handshake).
//   idle_timeout_ms              nothing received, no call pending and no
//                                request unanswered for this long: idle.
//   handshake_timeout_ms (secure, ChannelConfig): handshake_timeout.
//   buffered_bytes_total_max     bytes held by ALL connections sharing the
//                                RefusalCounters (the daemon's): written but
//                                not yet taken by the kernel (a peer that
//                                reads keeps this at 0) plus partial
//                                frames/messages received — a slow-reader
//                                or slowloris flood over many connections.
//                                The connection whose write or read takes
//                                the total over the cap is closed
//                                (limit_buffered_total) and what it held is
//                                released at once. The total is
//                                RefusalCounters::buffered_bytes (gauge
//                                mistore_connection_buffered_bytes).
// A slowloris peer (bytes trickled in) is therefore bounded in memory by
// frame_bytes_max + one record, and in time by idle_timeout_ms once it stops.
// calls_in_flight_max and call_timeout_ms bound this side's own calls (a
// call over the limit fails without closing anything).
//
// Secure mode (ConnectionLimits::secure set; issue 4): the connection runs a
// SecureChannel (shared/wire/secure_channel.h) over the stream. The dialler
// is the Noise initiator. No Envelope flows before the mutually
// authenticated handshake has finished (node links: certificates; device
// links, SecureConfig::channel.device_link: keys only): Dial reports the connection, and a
// Listener hands it to its accept callback, only once the peer's certificate
// has been verified; every Envelope then travels AEAD-protected. Any refusal
// (certificate, plaintext peer, tampered/replayed record, handshake timeout)
// is logged with the peer address, counted in SecureStats and in the
// refusal counters (reason from SecureChannel::failure()) and closes the
// connection. Every request on a secure connection is checked against the
// authorization table (shared/uvio/authz.h) before the request handler sees
// it; a refused one gets a kPermissionDenied reply (logged, counted) and the
// connection stays open. Plain mode (secure unset) is the original framing.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shared/core/config.h"
#include "shared/core/metrics.h"
#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"
#include "shared/uvio/loop.h"
#include "shared/uvio/refusals.h"
#include "shared/wire/frame.h"
#include "shared/wire/secure_channel.h"

struct uv_tcp_s;
struct uv_stream_s;

namespace mistore {

// Counters of the secure transport, shared by every connection of a daemon
// (lock-free; the daemon exposes them as metrics).
struct SecureStats {
  Counter handshakes_ok;
  Counter refused_certificate;  // wrong CA, role, expired, revoked, wrong key
  Counter refused_plaintext;    // a plain-mode peer where a handshake was due
  Counter handshake_timeouts;
  Counter records_rejected;  // failed AEAD: modified/replayed/reordered/dropped
  Counter other_errors;      // malformed handshake, limits
  Counter requests_refused;  // authz.h: role or subscriber not allowed
};

struct SecureConfig {
  secure::ChannelConfig channel;       // identity, DC key, accepted peer roles, revocations
  std::shared_ptr<SecureStats> stats;  // may be null
  // The mutable handle of channel.revoked_node_ids (SetRevokedNodes).
  std::shared_ptr<std::set<uint32_t>> revoked;
  // The mutable handle of channel.identity (SetIdentityCertificate: a
  // renewed certificate for the same key; loop thread).
  std::shared_ptr<secure::Identity> identity;
};

struct ConnectionLimits {
  size_t frame_bytes_max = kFrameBytesMaxDefault;
  size_t write_queue_bytes_max = 64u << 20;
  size_t calls_in_flight_max = 256;
  uint64_t call_timeout_ms = 30000;
  // Incoming side (see the header comment); defaults as in ConnectionKnobs().
  size_t requests_in_flight_max = 1024;
  size_t connections_per_address_max = 256;
  uint64_t idle_timeout_ms = 600000;  // 0: never
  // Daemon-wide: bytes buffered by every connection counting into the same
  // `refusals` (see the header comment).
  size_t buffered_bytes_total_max = size_t(1) << 30;
  // Where refusals are counted, and the daemon-wide buffered bytes (never
  // null in practice).
  std::shared_ptr<RefusalCounters> refusals = ProcessRefusals();
  // Set: every connection made with these limits is secure (see above).
  std::shared_ptr<const SecureConfig> secure;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Ptr = std::shared_ptr<Connection>;
  using ReplyFn = std::function<void(Result<pb::Envelope>)>;
  // An incoming request (is_response == false).
  using RequestFn = std::function<void(const Ptr&, pb::Envelope&&)>;
  using CloseFn = std::function<void(const Ptr&, const Status&)>;

  static Ptr Create(EventLoop* loop, const ConnectionLimits& limits);

  // Sends a request; `reply` runs exactly once: with the response envelope
  // (which may carry an error), or with a Status when the call fails
  // (deadline, connection closed, limit).
  void Call(pb::Envelope request, ReplyFn reply, uint64_t timeout_ms = 0);
  // Sends the response to request `request_id`.
  void Reply(uint64_t request_id, pb::Envelope response);
  void ReplyError(uint64_t request_id, const Status& status);

  void set_on_request(RequestFn fn) { on_request_ = std::move(fn); }
  void set_on_close(CloseFn fn) { on_close_ = std::move(fn); }

  void Close(const Status& why);
  bool closed() const { return closing_; }
  const std::string& peer() const { return peer_; }
  size_t write_queue_bytes() const { return write_queue_bytes_; }
  // Requests from the peer not yet answered (requests_in_flight_max).
  size_t requests_in_flight() const { return requests_open_.size(); }
  // Bytes held for partially received input (frame decoder or secure
  // channel): bounded by frame_bytes_max plus one record.
  size_t read_buffered_bytes() const {
    return channel_ ? channel_->buffered_bytes() : decoder_.buffered_bytes();
  }
  // An unanswered request stops counting against requests_in_flight_max
  // after this long (its caller's deadline has long passed: a handler that
  // never answers must not strangle the connection).
  static constexpr uint64_t kRequestForgetMs = 15 * 60 * 1000;

  // Free-form tag the owner uses to remember who is on the other end.
  uint64_t tag = 0;

  // Secure mode: the peer's verified certificate once the handshake is
  // done; nullptr in plain mode or before.
  const crypto::Certificate* peer_certificate() const {
    return channel_ && channel_->established() && !channel_->device_link()
               ? &channel_->peer_certificate()
               : nullptr;
  }
  // Secure mode, once established: the static key the peer proved and the
  // handshake hash (channel binding); empty otherwise. On a device link
  // (SecureChannel's device flavour, issue 4) these are all there is: no
  // certificate, no authz.h check; the owner authorizes by the key.
  const Bytes& peer_static_key() const {
    static const Bytes kNone;
    return channel_ && channel_->established() ? channel_->peer_static_key() : kNone;
  }
  const Bytes& handshake_hash() const {
    static const Bytes kNone;
    return channel_ && channel_->established() ? channel_->handshake_hash() : kNone;
  }
  bool secure() const { return channel_.has_value(); }

  // Internal: called by Listener / Dial once the stream is usable. `ready`
  // runs once: Ok when Envelopes may flow (at once in plain mode, after the
  // handshake in secure mode), or the error that closed the connection.
  using ReadyFn = std::function<void(const Status&)>;
  void Start(const std::string& peer, bool initiator = false, ReadyFn ready = nullptr);
  uv_tcp_s* handle() { return tcp_; }

  ~Connection();

 private:
  Connection(EventLoop* loop, const ConnectionLimits& limits);
  void SendEnvelope(const pb::Envelope& env);
  void WriteBytes(Bytes data);
  void OnBytes(const uint8_t* data, size_t len);
  void OnSecureBytes(const uint8_t* data, size_t len);
  // reason: how to count it; by default from the channel's failure().
  void SecureFailed(const Status& st, std::optional<Refusal> reason = std::nullopt);
  void FinishReady(const Status& st);
  void OnFrame(const Bytes& payload);
  void FailCall(uint64_t request_id, const Status& st);
  // Closes the connection for `why`: one log line, one count.
  void Refuse(Refusal why, const Status& st);
  void Answered(uint64_t request_id);
  void ArmIdleTimer(uint64_t delay_ms);
  void CheckIdle();
  // Set by Listener: releases this connection's per-address slot on close.
  std::function<void()> on_release_;
  friend class Listener;
  static void OnRead(uv_stream_s* stream, long nread, const void* buf);

  EventLoop* loop_;
  ConnectionLimits limits_;
  uv_tcp_s* tcp_;
  FrameDecoder decoder_;
  std::string peer_;
  bool closing_ = false;
  Ptr self_;  // keeps us alive while the handle is open
  size_t write_queue_bytes_ = 0;
  // What this connection counts in limits_.refusals->buffered_bytes: its
  // read_buffered_bytes() and the bytes libuv still holds for writing, as
  // last re-counted (AccountReadBuffer / AccountWriteQueue; false, and the
  // connection refused, when that takes the total over
  // buffered_bytes_total_max). ReleaseBuffers (on close) takes both out.
  size_t read_accounted_bytes_ = 0;
  size_t write_accounted_bytes_ = 0;
  bool AccountReadBuffer();
  bool AccountWriteQueue();
  void ReleaseBuffers();
  uint64_t next_request_id_ = 1;
  struct PendingCall {
    ReplyFn reply;
    TimerId timer;
  };
  std::map<uint64_t, PendingCall> pending_;
  // Requests from the peer not yet answered: request id -> arrival (NowMs).
  std::map<uint64_t, uint64_t> requests_open_;
  uint64_t last_received_ms_ = 0;
  TimerId idle_timer_ = 0;
  RequestFn on_request_;
  CloseFn on_close_;
  // Secure mode.
  std::optional<secure::SecureChannel> channel_;
  ReadyFn ready_;
  TimerId handshake_timer_ = 0;
};

// ---- Node identity files and the daemons' secure transport knobs --------
//
// Files: the node key is the raw 32-byte X25519 private key, mode 0600 (a
// key file readable by group or others is refused); the certificate is its
// canonical encoding (shared/crypto/cert.h); the CA public key file holds
// the DC's raw 32-byte Ed25519 public key.

// Writes a fresh key file (O_EXCL, mode 0600). kIo if it exists or fails.
Status WriteNodeKeyFile(const std::string& path, const noise::KeyPair& key);
// kPermissionDenied if the file is accessible by group/others.
Result<noise::KeyPair> ReadNodeKeyFile(const std::string& path);
// Reads a whole small file (at most bytes_max, else kCorrupt) into *out.
Status ReadSmallFile(const std::string& path, size_t bytes_max, Bytes* out);
// Key + certificate (+ their match) + CA key -> a SecureConfig accepting
// `peer_roles`, with fresh stats, an empty revocation set and the suite
// cipher=auto picks (noise::AutoCipher()) for dialling.
Result<std::shared_ptr<SecureConfig>> LoadSecureConfig(const std::string& key_file,
                                                       const std::string& cert_file,
                                                       const std::string& ca_public_key_file,
                                                       std::set<crypto::NodeRole> peer_roles);

// The knobs every daemon appends to its knob table: secure, node_key_file,
// node_cert_file, ca_public_key_file, handshake_timeout_ms, cipher.
std::vector<Knob> SecureTransportKnobs();
// The connection limits every daemon declares (their defaults are
// ConnectionLimits' defaults): write_queue_bytes_max, requests_in_flight_max,
// connections_per_address_max, idle_timeout_ms, buffered_bytes_total_max.
// frame_bytes_max stays in each daemon's own table.
std::vector<Knob> ConnectionKnobs();
// `base` with the ConnectionKnobs() values from cfg (FatalExit on a value
// out of range: a limit of 0 where 0 makes no sense).
ConnectionLimits ApplyConnectionKnobs(ConnectionLimits base, const Config& cfg);
// `knobs` followed by SecureTransportKnobs() and ConnectionKnobs() (a
// daemon's knob table).
std::vector<Knob> WithSecureTransportKnobs(std::vector<Knob> knobs);
// `base` with `secure` set from those knobs when secure=true, the default
// (FatalExit naming the fix if the files are missing, unreadable, of the
// wrong mode or do not match; empty paths mean data_dir/node.key,
// node.cert, ca.pub, where enrolment writes them); `base` unchanged, and
// WarnInsecure() logged, when secure=false.
ConnectionLimits WithSecureTransport(ConnectionLimits base, const Config& cfg,
                                     std::set<crypto::NodeRole> peer_roles);
// The `cipher` knob of SecureTransportKnobs() resolved ("auto" ->
// noise::AutoCipher()); FatalExit naming the values on anything else.
noise::Cipher CipherFromKnob(const Config& cfg);
// The warning every daemon logs at start-up when it runs with secure=false
// (msg="INSECURE: secure transport is off", level warn), once per process.
void WarnInsecure();
// The same identity, stats and revocation set accepting other peer roles
// (e.g. a POP's connections to other POPs); unchanged in plain mode.
ConnectionLimits WithPeerRoles(const ConnectionLimits& limits,
                               std::set<crypto::NodeRole> peer_roles);
// Replaces the revocation set seen by the next handshakes of every
// connection sharing `limits`' SecureConfig (loop thread; no-op if plain).
void SetRevokedNodes(const ConnectionLimits& limits, std::set<uint32_t> node_ids);
// Replaces the certificate presented by the next handshakes of every
// connection sharing `limits`' SecureConfig (certificate renewal, issue 4).
// The certificate must parse and name the same static key (else an error
// and nothing changes). Loop thread; kInvalidArgument in plain mode.
Status SetIdentityCertificate(const ConnectionLimits& limits, Bytes cert_bytes);

// "127.0.0.1:7000" or "[::1]:7000" (no name resolution: static builds).
Status ParseAddress(const std::string& addr, void* sockaddr_storage_out);

class Listener {
 public:
  using AcceptFn = std::function<void(const Connection::Ptr&)>;
  Listener(EventLoop* loop, ConnectionLimits limits, AcceptFn on_accept);
  ~Listener();
  // Binds and listens; returns the bound address (port 0 picks one).
  Result<std::string> Listen(const std::string& addr);
  void Close();

 private:
  static void OnConnection(uv_stream_s* server, int status);
  EventLoop* loop_;
  ConnectionLimits limits_;
  // Shared with connections still in their handshake, which must not call
  // a destroyed Listener.
  std::shared_ptr<AcceptFn> on_accept_;
  // Open connections per peer IP (connections_per_address_max); shared
  // with the connections, which release their slot when they close.
  std::shared_ptr<std::map<std::string, size_t>> per_address_ =
      std::make_shared<std::map<std::string, size_t>>();
  uv_tcp_s* tcp_ = nullptr;
};

// Connects to addr; `done` runs once with the started connection (secure
// mode: after the handshake) or an error. timeout_ms bounds the TCP connect;
// the handshake has its own timeout (ChannelConfig::handshake_timeout_ms).
void Dial(EventLoop* loop, const std::string& addr, const ConnectionLimits& limits,
          std::function<void(Result<Connection::Ptr>)> done, uint64_t timeout_ms = 5000);

}  // namespace mistore
