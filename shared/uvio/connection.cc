#include "shared/uvio/connection.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "shared/core/log.h"
#include "shared/uvio/authz.h"
#include "shared/wire/envelope.h"

namespace mistore {

namespace {
// Certificates expire in wall-clock time.
uint64_t WallNowMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

struct WriteReq {
  uv_write_t req;
  Bytes data;
  Connection::Ptr conn;
  size_t* queued;
};
}  // namespace

Connection::Ptr Connection::Create(EventLoop* loop, const ConnectionLimits& limits) {
  Ptr c(new Connection(loop, limits));
  c->self_ = c;
  return c;
}

Connection::Connection(EventLoop* loop, const ConnectionLimits& limits)
    : loop_(loop), limits_(limits), decoder_(limits.frame_bytes_max) {
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop->raw(), tcp_);
  tcp_->data = this;
}

Connection::~Connection() { MS_ASSERT(tcp_ == nullptr); }

void Connection::Start(const std::string& peer, bool initiator, ReadyFn ready) {
  peer_ = peer;
  ready_ = std::move(ready);
  if (limits_.secure) {
    auto ch = secure::SecureChannel::Create(limits_.secure->channel, initiator, WallNowMs());
    if (!ch.ok()) {
      MS_ERROR("wire", "cannot start secure channel",
               "peer=" + peer_ + " error=\"" + ch.status().message() + "\"");
      Close(ch.status());
      return;
    }
    channel_.emplace(std::move(ch).value());
    Bytes wire;
    Status st = channel_->Start(&wire);
    if (!st.ok()) {
      SecureFailed(st);
      return;
    }
    if (!wire.empty()) WriteBytes(std::move(wire));
    std::weak_ptr<Connection> weak = self_;
    uint64_t t = limits_.secure->channel.handshake_timeout_ms;
    handshake_timer_ = loop_->After(t, [weak, t] {
      auto c = weak.lock();
      if (!c || c->closed() || !c->channel_ || c->channel_->established()) return;
      c->handshake_timer_ = 0;
      c->SecureFailed(Unavailable("handshake timeout after " + std::to_string(t) + " ms"),
                      Refusal::kHandshakeTimeout);
    });
  }
  last_received_ms_ = loop_->NowMs();
  if (limits_.idle_timeout_ms > 0) ArmIdleTimer(limits_.idle_timeout_ms);
  uv_tcp_nodelay(tcp_, 1);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
        static thread_local char scratch[256 * 1024];
        buf->base = scratch;
        buf->len = sizeof scratch;
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) { OnRead(s, long(n), buf); });
  if (!channel_) FinishReady(Status::Ok());
}

void Connection::FinishReady(const Status& st) {
  if (!ready_) return;
  ReadyFn fn = std::move(ready_);
  ready_ = nullptr;
  fn(st);
}

namespace {
Refusal RefusalFor(secure::Failure f) {
  switch (f) {
    case secure::Failure::kBadCert: return Refusal::kBadCert;
    case secure::Failure::kWrongRole: return Refusal::kWrongRole;
    case secure::Failure::kExpired: return Refusal::kExpired;
    case secure::Failure::kRevoked: return Refusal::kRevoked;
    case secure::Failure::kPlaintext: return Refusal::kPlaintext;
    case secure::Failure::kDecryptFailed: return Refusal::kDecryptFailed;
    case secure::Failure::kReplay: return Refusal::kReplay;
    case secure::Failure::kHandshakeTimeout: return Refusal::kHandshakeTimeout;
    case secure::Failure::kMessageTooLong: return Refusal::kLimitFrame;
    case secure::Failure::kNone:
    case secure::Failure::kProtocol: break;
  }
  return Refusal::kProtocol;
}
}  // namespace

void Connection::SecureFailed(const Status& st, std::optional<Refusal> reason) {
  if (closing_) return;
  SecureStats* stats = limits_.secure ? limits_.secure->stats.get() : nullptr;
  const bool in_handshake = channel_ && !channel_->established();
  Refusal why = reason ? *reason
                       : (channel_ && channel_->failed() ? RefusalFor(channel_->failure())
                                                         : Refusal::kProtocol);
  if (stats) {
    if (st.code() == Code::kPermissionDenied) {
      stats->refused_certificate.Inc();
    } else if (why == Refusal::kPlaintext) {
      stats->refused_plaintext.Inc();
    } else if (why == Refusal::kHandshakeTimeout) {
      stats->handshake_timeouts.Inc();
    } else if (st.code() == Code::kCorrupt && !in_handshake) {
      stats->records_rejected.Inc();
    } else {
      stats->other_errors.Inc();
    }
  }
  if (limits_.refusals) limits_.refusals->Count(why);
  MS_WARN("wire",
          in_handshake ? "secure handshake refused, closing connection"
                       : "secure channel error, closing connection",
          "peer=" + peer_ + " reason=" + RefusalName(why) + " code=" + CodeName(st.code()) +
              " error=\"" + st.message() + "\"");
  Close(st);
}

void Connection::Refuse(Refusal why, const Status& st) {
  if (closing_) return;
  if (limits_.refusals) limits_.refusals->Count(why);
  // Malformed input keeps its long-standing "protocol error" wording (the
  // operators' and test_bad_input's grep); limits say what they refused.
  const bool malformed = why == Refusal::kProtocol || why == Refusal::kLimitFrame;
  MS_WARN("wire", malformed ? "protocol error, closing connection" : "connection refused, closing",
          "peer=" + peer_ + " reason=" + RefusalName(why) + " error=\"" + st.message() + "\"");
  Close(st);
}

void Connection::ArmIdleTimer(uint64_t delay_ms) {
  std::weak_ptr<Connection> weak = self_;
  idle_timer_ = loop_->After(delay_ms, [weak] {
    if (auto c = weak.lock()) {
      c->idle_timer_ = 0;
      c->CheckIdle();
    }
  });
}

void Connection::CheckIdle() {
  if (closing_) return;
  const uint64_t now = loop_->NowMs();
  while (!requests_open_.empty() && now - requests_open_.begin()->second >= kRequestForgetMs)
    requests_open_.erase(requests_open_.begin());
  const uint64_t quiet_ms = now - last_received_ms_;
  const bool waiting = !pending_.empty() || !requests_open_.empty();
  if (!waiting && quiet_ms >= limits_.idle_timeout_ms) {
    Refuse(Refusal::kIdle, Unavailable("idle: nothing received for " + std::to_string(quiet_ms) +
                                       " ms (idle_timeout_ms " +
                                       std::to_string(limits_.idle_timeout_ms) + ")"));
    return;
  }
  ArmIdleTimer(waiting ? limits_.idle_timeout_ms : limits_.idle_timeout_ms - quiet_ms);
}

void Connection::Answered(uint64_t request_id) { requests_open_.erase(request_id); }

void Connection::OnSecureBytes(const uint8_t* data, size_t len) {
  const bool was_established = channel_->established();
  Bytes wire;
  std::vector<Bytes> messages;
  Status st = channel_->Receive({data, len}, WallNowMs(), &wire, &messages);
  if (!wire.empty()) WriteBytes(std::move(wire));
  if (!was_established && channel_->established() && !closing_) {
    if (handshake_timer_) loop_->Cancel(handshake_timer_);
    handshake_timer_ = 0;
    if (limits_.secure->stats) limits_.secure->stats->handshakes_ok.Inc();
    if (channel_->device_link()) {
      MS_DEBUG("wire", "device channel established",
               "peer=" + peer_ + " pattern=" + channel_->pattern() +
                   " key=" + ToHex(channel_->peer_static_key()).substr(0, 16));
    } else {
      const crypto::Certificate& pc = channel_->peer_certificate();
      MS_DEBUG("wire", "secure channel established",
               "peer=" + peer_ + " node=" + std::to_string(pc.node_id) +
                   " role=" + crypto::NodeRoleName(pc.role) +
                   " cipher=" + noise::CipherName(channel_->cipher()));
    }
    FinishReady(Status::Ok());
  }
  for (Bytes& m : messages) {
    if (closing_) break;
    if (m.size() > limits_.frame_bytes_max) {
      SecureFailed(ProtocolError("message of " + std::to_string(m.size()) +
                                 " bytes exceeds the frame limit"),
                   Refusal::kLimitFrame);
      return;
    }
    OnFrame(m);
  }
  if (!st.ok()) SecureFailed(st);
}

void Connection::OnRead(uv_stream_t* stream, long nread, const void* bufp) {
  auto* self = static_cast<Connection*>(stream->data);
  const uv_buf_t* buf = static_cast<const uv_buf_t*>(bufp);
  Ptr keep = self->self_;
  if (nread < 0) {
    self->Close(nread == UV_EOF ? Unavailable("peer closed the connection")
                                : Unavailable(std::string("read: ") + uv_strerror(int(nread))));
    return;
  }
  if (nread > 0) self->last_received_ms_ = self->loop_->NowMs();
  self->OnBytes(reinterpret_cast<const uint8_t*>(buf->base), size_t(nread));
}

void Connection::OnBytes(const uint8_t* data, size_t len) {
  if (channel_) {
    OnSecureBytes(data, len);
  } else {
    Status st = decoder_.Feed(data, len);
    Bytes payload;
    while (!closing_ && decoder_.Next(&payload)) OnFrame(payload);
    // The decoder fails only on a frame over frame_bytes_max.
    if (!st.ok() && !closing_) Refuse(Refusal::kLimitFrame, st);
  }
  if (!closing_) (void)AccountReadBuffer();
}

bool Connection::AccountReadBuffer() {
  RefusalCounters* total = limits_.refusals.get();
  if (!total) return true;
  const size_t now = read_buffered_bytes();
  if (now <= read_accounted_bytes_) {
    total->buffered_bytes.fetch_sub(read_accounted_bytes_ - now, std::memory_order_relaxed);
    read_accounted_bytes_ = now;
    return true;
  }
  const uint64_t grow = now - read_accounted_bytes_;
  const uint64_t after = total->buffered_bytes.fetch_add(grow, std::memory_order_relaxed) + grow;
  read_accounted_bytes_ = now;
  if (after <= limits_.buffered_bytes_total_max) return true;
  Refuse(Refusal::kLimitBufferedTotal,
         ResourceExhausted("daemon-wide buffer limit reached: " + std::to_string(after) +
                           " bytes held by all connections, " + std::to_string(now) +
                           " of them a partial frame from this peer (buffered_bytes_total_max " +
                           std::to_string(limits_.buffered_bytes_total_max) + ")"));
  return false;
}

void Connection::ReleaseBuffers() {
  const size_t held = read_accounted_bytes_ + write_accounted_bytes_;
  if (limits_.refusals && held)
    limits_.refusals->buffered_bytes.fetch_sub(held, std::memory_order_relaxed);
  read_accounted_bytes_ = 0;
  write_accounted_bytes_ = 0;
}

void Connection::OnFrame(const Bytes& payload) {
  pb::Envelope env;
  Status st = DecodeEnvelope(payload, &env);
  if (!st.ok()) {
    Refuse(Refusal::kProtocol, st);
    return;
  }
  if (env.is_response()) {
    auto it = pending_.find(env.request_id());
    if (it == pending_.end()) return;  // late reply after its deadline
    PendingCall call = std::move(it->second);
    pending_.erase(it);
    loop_->Cancel(call.timer);
    call.reply(std::move(env));
    return;
  }
  // A device link has no certificate: its owner (the agent) authorizes each
  // request by the device's proven key.
  if (channel_ && channel_->established() && !channel_->device_link()) {
    Status allowed = AuthorizeRequest(channel_->peer_certificate(), env);
    if (!allowed.ok()) {
      if (limits_.secure->stats) limits_.secure->stats->requests_refused.Inc();
      if (limits_.refusals) limits_.refusals->requests_unauthorized.Inc();
      MS_WARN("wire", "request refused",
              "peer=" + peer_ + " node=" + std::to_string(channel_->peer_certificate().node_id) +
                  " error=\"" + allowed.message() + "\"");
      ReplyError(env.request_id(), allowed);
      return;
    }
  }
  // Requests in flight from the peer: answered ones leave the map (Reply /
  // ReplyError); very old unanswered ones are forgotten first.
  const uint64_t now = loop_->NowMs();
  if (requests_open_.size() >= limits_.requests_in_flight_max) {
    while (!requests_open_.empty() && now - requests_open_.begin()->second >= kRequestForgetMs)
      requests_open_.erase(requests_open_.begin());
    if (requests_open_.size() >= limits_.requests_in_flight_max) {
      Refuse(Refusal::kLimitInflight,
             ResourceExhausted("more than " + std::to_string(limits_.requests_in_flight_max) +
                               " requests in flight (requests_in_flight_max)"));
      return;
    }
  }
  requests_open_.emplace(env.request_id(), now);
  if (on_request_) {
    on_request_(self_, std::move(env));
  } else {
    ReplyError(env.request_id(), ProtocolError("no handler"));
  }
}

void Connection::SendEnvelope(const pb::Envelope& env) {
  if (closing_) return;
  std::string payload = env.SerializeAsString();
  if (payload.size() > limits_.frame_bytes_max) {
    MS_ERROR("wire", "refusing to send oversized frame",
             "peer=" + peer_ + " bytes=" + std::to_string(payload.size()));
    if (!env.is_response()) return;
    SendEnvelope(ErrorResponse(env.request_id(), ResourceExhausted("response too large")));
    return;
  }
  // Checked before sealing: a sealed record that is not sent would desync
  // the send counter.
  const size_t wire_bytes_min = payload.size() + kFrameHeaderBytes;
  if (write_queue_bytes_ + wire_bytes_min > limits_.write_queue_bytes_max) {
    Refuse(Refusal::kLimitBuffered,
           ResourceExhausted("write queue limit reached: " + std::to_string(write_queue_bytes_) +
                             " bytes queued for a peer that does not read "
                             "(write_queue_bytes_max " +
                             std::to_string(limits_.write_queue_bytes_max) + ")"));
    return;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  Bytes frame;
  if (!channel_) {
    frame.reserve(wire_bytes_min);
    EncodeFrame(p, payload.size(), &frame);
  } else if (!channel_->established()) {
    // Dial and Listener hand out connections only once established.
    MS_ERROR("wire", "envelope sent before the secure handshake finished", "peer=" + peer_);
    Close(Internal("envelope sent before the secure handshake finished"));
    return;
  } else {
    Status st = channel_->Seal({p, payload.size()}, &frame);
    if (!st.ok()) {
      SecureFailed(st);
      return;
    }
  }
  WriteBytes(std::move(frame));
}

void Connection::WriteBytes(Bytes data) {
  if (closing_) return;
  auto* w = new WriteReq{{}, std::move(data), self_, &write_queue_bytes_};
  write_queue_bytes_ += w->data.size();
  uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->data.data()), unsigned(w->data.size()));
  w->req.data = w;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &buf, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = static_cast<WriteReq*>(req->data);
                      *w->queued -= w->data.size();
                      Connection::Ptr c = std::move(w->conn);
                      delete w;
                      if (c->closed()) return;
                      if (status < 0) {
                        c->Close(Unavailable(std::string("write: ") + uv_strerror(status)));
                        return;
                      }
                      (void)c->AccountWriteQueue();
                    });
  if (rc != 0) {
    write_queue_bytes_ -= w->data.size();
    delete w;
    Close(Unavailable(std::string("write: ") + uv_strerror(rc)));
    return;
  }
  (void)AccountWriteQueue();
}

bool Connection::AccountWriteQueue() {
  RefusalCounters* total = limits_.refusals.get();
  if (!total || closing_) return true;
  // What libuv could not hand to the kernel yet: a peer that reads keeps
  // this at 0 however much it is sent.
  const size_t now = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(tcp_));
  if (now <= write_accounted_bytes_) {
    total->buffered_bytes.fetch_sub(write_accounted_bytes_ - now, std::memory_order_relaxed);
    write_accounted_bytes_ = now;
    return true;
  }
  const uint64_t grow = now - write_accounted_bytes_;
  const uint64_t after = total->buffered_bytes.fetch_add(grow, std::memory_order_relaxed) + grow;
  write_accounted_bytes_ = now;
  if (after <= limits_.buffered_bytes_total_max) return true;
  Refuse(Refusal::kLimitBufferedTotal,
         ResourceExhausted("daemon-wide buffer limit reached: " + std::to_string(after) +
                           " bytes held by all connections, " + std::to_string(now) +
                           " of them waiting for this peer to read (buffered_bytes_total_max " +
                           std::to_string(limits_.buffered_bytes_total_max) + ")"));
  return false;
}

void Connection::Call(pb::Envelope request, ReplyFn reply, uint64_t timeout_ms) {
  if (closing_) {
    reply(Unavailable("connection to " + peer_ + " is closed"));
    return;
  }
  if (pending_.size() >= limits_.calls_in_flight_max) {
    reply(ResourceExhausted("too many calls in flight to " + peer_));
    return;
  }
  uint64_t id = next_request_id_++;
  request.set_request_id(id);
  request.set_is_response(false);
  uint64_t t = timeout_ms ? timeout_ms : limits_.call_timeout_ms;
  std::weak_ptr<Connection> weak = self_;
  TimerId timer = loop_->After(t, [weak, id, t] {
    if (auto c = weak.lock())
      c->FailCall(id, Unavailable("deadline of " + std::to_string(t) + " ms exceeded"));
  });
  pending_[id] = PendingCall{std::move(reply), timer};
  SendEnvelope(request);
}

void Connection::FailCall(uint64_t request_id, const Status& st) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;
  PendingCall call = std::move(it->second);
  pending_.erase(it);
  loop_->Cancel(call.timer);
  call.reply(st);
}

void Connection::Reply(uint64_t request_id, pb::Envelope response) {
  Answered(request_id);
  response.set_request_id(request_id);
  response.set_is_response(true);
  SendEnvelope(response);
}

void Connection::ReplyError(uint64_t request_id, const Status& status) {
  Answered(request_id);
  SendEnvelope(ErrorResponse(request_id, status));
}

void Connection::Close(const Status& why) {
  if (closing_) return;
  closing_ = true;
  Ptr keep = self_;
  // What it held no longer counts against the daemon-wide cap: a partial
  // frame is dropped, queued writes are cancelled by the close.
  ReleaseBuffers();
  if (handshake_timer_) loop_->Cancel(handshake_timer_);
  handshake_timer_ = 0;
  if (idle_timer_) loop_->Cancel(idle_timer_);
  idle_timer_ = 0;
  if (on_release_) {
    auto release = std::move(on_release_);
    on_release_ = nullptr;
    release();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    delete reinterpret_cast<uv_tcp_t*>(h);
    c->tcp_ = nullptr;
    c->self_.reset();  // may destroy c
  });
  while (!pending_.empty())
    FailCall(pending_.begin()->first,
             Unavailable("connection to " + peer_ + " closed: " + why.message()));
  FinishReady(why.ok() ? Unavailable("connection closed") : why);
  if (on_close_) {
    CloseFn fn = std::move(on_close_);
    fn(keep, why);
  }
  on_request_ = nullptr;
}

Status WriteNodeKeyFile(const std::string& path, const noise::KeyPair& key) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot create key file " + path + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, key.private_key.data(), key.private_key.size());
  bool ok = n == ssize_t(key.private_key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return IoError("cannot write key file " + path);
  return Status::Ok();
}

Status ReadSmallFile(const std::string& path, size_t bytes_max, Bytes* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
  out->assign(bytes_max + 1, 0);
  size_t have = 0;
  for (;;) {
    ssize_t n = ::read(fd, out->data() + have, out->size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return IoError("cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    have += size_t(n);
    if (have > bytes_max) {
      ::close(fd);
      return Corrupt(path + " is longer than " + std::to_string(bytes_max) + " bytes");
    }
  }
  ::close(fd);
  out->resize(have);
  return Status::Ok();
}

Result<noise::KeyPair> ReadNodeKeyFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return IoError("cannot stat key file " + path + ": " + std::strerror(errno));
  if (st.st_mode & 077)
    return Status(Code::kPermissionDenied,
                  "key file " + path + " is accessible by group or others (chmod 600 it)");
  Bytes raw;
  MS_RETURN_IF_ERROR(ReadSmallFile(path, noise::kDhLen, &raw));
  if (raw.size() != noise::kDhLen) return Corrupt("key file " + path + " is not 32 bytes");
  auto kp = noise::KeyPair::FromPrivate(raw);
  sodium_memzero(raw.data(), raw.size());
  return kp;
}

Result<std::shared_ptr<SecureConfig>> LoadSecureConfig(const std::string& key_file,
                                                       const std::string& cert_file,
                                                       const std::string& ca_public_key_file,
                                                       std::set<crypto::NodeRole> peer_roles) {
  MS_ASSIGN_OR_RETURN(noise::KeyPair kp, ReadNodeKeyFile(key_file));
  Bytes cert, ca;
  MS_RETURN_IF_ERROR(ReadSmallFile(cert_file, crypto::kCertBytesMax, &cert));
  MS_RETURN_IF_ERROR(ReadSmallFile(ca_public_key_file, crypto::kCaPublicKeyBytes, &ca));
  if (ca.size() != crypto::kCaPublicKeyBytes)
    return Corrupt("CA public key file " + ca_public_key_file + " is not 32 bytes");
  auto id = secure::Identity::Create(std::move(kp), std::move(cert));
  if (!id.ok()) return Status(id.status().code(), cert_file + ": " + id.status().message());
  auto cfg = std::make_shared<SecureConfig>();
  cfg->identity = std::make_shared<secure::Identity>(std::move(id).value());
  cfg->channel.identity = cfg->identity;
  cfg->channel.cipher = noise::AutoCipher();  // the `cipher` knob may override
  cfg->channel.ca_public_key = std::move(ca);
  cfg->channel.peer_roles = std::move(peer_roles);
  cfg->stats = std::make_shared<SecureStats>();
  cfg->revoked = std::make_shared<std::set<uint32_t>>();
  cfg->channel.revoked_node_ids = cfg->revoked;
  return cfg;
}

std::vector<Knob> SecureTransportKnobs() {
  return {
      {"secure", "true",
       "mutually authenticated, encrypted node links (Noise XX + DC "
       "certificates); false "
       "runs plaintext, unauthenticated links (labs only; logged as a warning)",
       Knob::kBool},
      {"node_key_file", "",
       "this node's X25519 private key (mode 0600); empty = data_dir/node.key"},
      {"node_cert_file", "",
       "this node's certificate issued by the DC; empty = data_dir/node.cert"},
      {"ca_public_key_file", "",
       "the DC's Ed25519 public key (its ca.pub); empty = data_dir/ca.pub"},
      {"handshake_timeout_ms", "10000",
       "a peer must finish the secure handshake within this", Knob::kInt},
      {"cipher", "auto",
       "the Noise cipher suite this node dials with: auto (AES-256-GCM when "
       "the CPU has AES "
       "instructions and the binary has it, else ChaCha20-Poly1305), "
       "chachapoly, aesgcm; as a "
       "responder a node accepts every suite it was built with"},
  };
}

std::vector<Knob> ConnectionKnobs() {
  const ConnectionLimits d;
  return {
      {"write_queue_bytes_max", std::to_string(d.write_queue_bytes_max),
       "bytes queued for one peer that does not read before its connection is closed",
       Knob::kInt},
      {"requests_in_flight_max", std::to_string(d.requests_in_flight_max),
       "unanswered requests one peer may have on a connection before it is closed", Knob::kInt},
      {"connections_per_address_max", std::to_string(d.connections_per_address_max),
       "open connections accepted from one IP address; more are closed at once", Knob::kInt},
      {"idle_timeout_ms", std::to_string(d.idle_timeout_ms),
       "close a connection on which nothing was received (and nothing is pending) for this "
       "long; 0 = never",
       Knob::kInt},
      {"buffered_bytes_total_max", std::to_string(d.buffered_bytes_total_max),
       "bytes all connections together may hold (not yet taken by the kernel for slow readers, "
       "plus partial frames received); the connection that takes the total over it is closed",
       Knob::kInt},
  };
}

ConnectionLimits ApplyConnectionKnobs(ConnectionLimits base, const Config& cfg) {
  const int64_t wq = cfg.Int("write_queue_bytes_max");
  const int64_t inflight = cfg.Int("requests_in_flight_max");
  const int64_t per_addr = cfg.Int("connections_per_address_max");
  const int64_t idle = cfg.Int("idle_timeout_ms");
  const int64_t total = cfg.Int("buffered_bytes_total_max");
  if (wq < int64_t(base.frame_bytes_max) + 64 || inflight < 1 || per_addr < 1 || idle < 0 ||
      total < wq)
    FatalExit("connection limits",
              "need write_queue_bytes_max > frame_bytes_max, requests_in_flight_max >= 1, "
              "connections_per_address_max >= 1, idle_timeout_ms >= 0, "
              "buffered_bytes_total_max >= write_queue_bytes_max");
  base.buffered_bytes_total_max = size_t(total);
  base.write_queue_bytes_max = size_t(wq);
  base.requests_in_flight_max = size_t(inflight);
  base.connections_per_address_max = size_t(per_addr);
  base.idle_timeout_ms = uint64_t(idle);
  return base;
}

std::vector<Knob> WithSecureTransportKnobs(std::vector<Knob> knobs) {
  for (Knob& k : SecureTransportKnobs()) knobs.push_back(std::move(k));
  for (Knob& k : ConnectionKnobs()) knobs.push_back(std::move(k));
  return knobs;
}

void WarnInsecure() {
  static std::once_flag once;  // a daemon builds its limits more than once
  std::call_once(once, [] {
    MS_WARN("wire", "INSECURE: secure transport is off",
            "secure=false detail=\"node links are plaintext and unauthenticated; any host "
            "that reaches this daemon's ports can read and forge its traffic; for labs only, "
            "production runs secure=true (the default)\"");
  });
}

noise::Cipher CipherFromKnob(const Config& cfg) {
  auto cipher = noise::ParseCipherKnob(cfg.Str("cipher"));
  if (!cipher.ok())
    FatalExit("secure transport", cipher.status().ToString().c_str());
  return cipher.value();
}

ConnectionLimits WithSecureTransport(ConnectionLimits base, const Config& cfg,
                                     std::set<crypto::NodeRole> peer_roles) {
  if (!cfg.Bool("secure")) {
    WarnInsecure();
    return base;
  }
  // Empty paths: the files enrolment writes (data_dir/node.key, node.cert,
  // ca.pub; enrol::IdentityFilePaths).
  const std::string dir = cfg.Str("data_dir");
  auto pick = [&](const char* knob, const char* file) {
    return cfg.Str(knob).empty() ? dir + "/" + file : cfg.Str(knob);
  };
  auto sc = LoadSecureConfig(pick("node_key_file", "node.key"), pick("node_cert_file", "node.cert"),
                             pick("ca_public_key_file", "ca.pub"), std::move(peer_roles));
  if (!sc.ok()) {
    const std::string why =
        sc.status().ToString() +
        "; the secure transport is on (the default) and needs this node's identity: enrol it "
        "(enrolment_token + enrolment_dc, docs/security.md) or install the files of `mistore-dc "
        "issue` (node_key_file, node_cert_file, ca_public_key_file); secure=false runs "
        "plaintext links (labs only)";
    FatalExit("secure transport", why.c_str());
  }
  sc.value()->channel.handshake_timeout_ms = uint64_t(cfg.Int("handshake_timeout_ms"));
  const noise::Cipher cipher = CipherFromKnob(cfg);
  sc.value()->channel.cipher = cipher;
  const crypto::Certificate& c = sc.value()->channel.identity->cert;
  MS_INFO("wire", "secure transport on",
          "node=" + std::to_string(c.node_id) +
              " role=" + crypto::NodeRoleName(c.role) +
              " cert_expires_ms=" + std::to_string(c.expires_ms) +
              " cipher=" + noise::CipherName(cipher));
  base.secure = std::move(sc).value();
  return base;
}

ConnectionLimits WithPeerRoles(const ConnectionLimits& limits,
                               std::set<crypto::NodeRole> peer_roles) {
  if (!limits.secure) return limits;
  auto sc = std::make_shared<SecureConfig>(*limits.secure);
  sc->channel.peer_roles = std::move(peer_roles);
  ConnectionLimits out = limits;
  out.secure = std::move(sc);
  return out;
}

void SetRevokedNodes(const ConnectionLimits& limits, std::set<uint32_t> node_ids) {
  if (!limits.secure || !limits.secure->revoked) return;
  *limits.secure->revoked = std::move(node_ids);
}

Status SetIdentityCertificate(const ConnectionLimits& limits, Bytes cert_bytes) {
  if (!limits.secure || !limits.secure->identity)
    return InvalidArgument("no secure identity to renew");
  secure::Identity& id = *limits.secure->identity;
  MS_ASSIGN_OR_RETURN(secure::Identity fresh,
                      secure::Identity::Create(id.static_key.Clone(), std::move(cert_bytes)));
  id = std::move(fresh);
  return Status::Ok();
}

Status ParseAddress(const std::string& addr, void* out) {
  auto* ss = static_cast<sockaddr_storage*>(out);
  std::memset(ss, 0, sizeof *ss);
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon + 1 >= addr.size())
    return InvalidArgument("address '" + addr + "' is not host:port");
  std::string host = addr.substr(0, colon);
  std::string port_s = addr.substr(colon + 1);
  char* end = nullptr;
  long port = std::strtol(port_s.c_str(), &end, 10);
  if (*end != '\0' || port < 0 || port > 65535)
    return InvalidArgument("address '" + addr + "' has a bad port");
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (uv_ip6_addr(host.c_str(), int(port), reinterpret_cast<sockaddr_in6*>(ss)) != 0)
      return InvalidArgument("address '" + addr + "' is not a valid IPv6 address");
    return Status::Ok();
  }
  if (uv_ip4_addr(host.c_str(), int(port), reinterpret_cast<sockaddr_in*>(ss)) != 0)
    return InvalidArgument("address '" + addr + "' is not a numeric IPv4 address");
  return Status::Ok();
}

static std::string AddrToString(const sockaddr_storage& ss) {
  char host[64] = {0};
  int port = 0;
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    port = ntohs(a->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  uv_ip4_name(a, host, sizeof host);
  port = ntohs(a->sin_port);
  return std::string(host) + ":" + std::to_string(port);
}

Listener::Listener(EventLoop* loop, ConnectionLimits limits, AcceptFn on_accept)
    : loop_(loop), limits_(limits), on_accept_(std::make_shared<AcceptFn>(std::move(on_accept))) {}

Listener::~Listener() { Close(); }

Result<std::string> Listener::Listen(const std::string& addr) {
  sockaddr_storage ss;
  MS_RETURN_IF_ERROR(ParseAddress(addr, &ss));
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop_->raw(), tcp_);
  tcp_->data = this;
  int rc = uv_tcp_bind(tcp_, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_), 128, &Listener::OnConnection);
  if (rc != 0) {
    Close();
    return Unavailable("cannot listen on " + addr + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(tcp_, reinterpret_cast<sockaddr*>(&bound), &len);
  return AddrToString(bound);
}

void Listener::Close() {
  *on_accept_ = nullptr;  // connections still in their handshake are dropped
  if (!tcp_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  tcp_ = nullptr;
}

void Listener::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<Listener*>(server->data);
  if (status < 0) {
    MS_WARN("wire", "accept failed", std::string("error=") + uv_strerror(status));
    return;
  }
  Connection::Ptr c = Connection::Create(self->loop_, self->limits_);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(c->handle())) != 0) {
    c->Close(Unavailable("accept failed"));
    return;
  }
  sockaddr_storage peer;
  int len = sizeof peer;
  std::string peer_s = "?";
  if (uv_tcp_getpeername(c->handle(), reinterpret_cast<sockaddr*>(&peer), &len) == 0)
    peer_s = AddrToString(peer);
  // Connections per peer IP: over the limit, closed before any handshake.
  const std::string ip = peer_s.substr(0, peer_s.rfind(':'));
  size_t& open = (*self->per_address_)[ip];
  if (open >= self->limits_.connections_per_address_max) {
    if (open == 0) self->per_address_->erase(ip);
    if (self->limits_.refusals) self->limits_.refusals->Count(Refusal::kLimitPerAddress);
    MS_WARN("wire", "connection refused, closing",
            "peer=" + peer_s + " reason=limit_per_address error=\"" + std::to_string(open) +
                " connections already open from " + ip +
                " (connections_per_address_max)\"");
    c->Close(ResourceExhausted("too many connections from " + ip));
    return;
  }
  open++;
  c->on_release_ = [map = self->per_address_, ip] {
    auto it = map->find(ip);
    if (it != map->end() && --it->second == 0) map->erase(it);
  };
  std::weak_ptr<AcceptFn> accept = self->on_accept_;
  std::weak_ptr<Connection> weak = c;
  c->Start(peer_s, /*initiator=*/false, [accept, weak](const Status& st) {
    if (!st.ok()) return;  // refused before any Envelope: already logged
    auto fn = accept.lock();
    auto conn = weak.lock();
    if (!conn) return;
    if (!fn || !*fn) {
      conn->Close(Unavailable("listener closed"));
      return;
    }
    (*fn)(conn);
  });
}

namespace {
struct DialReq {
  uv_connect_t req;
  Connection::Ptr conn;
  std::string addr;
  std::function<void(Result<Connection::Ptr>)> done;
  EventLoop* loop;
  TimerId timer;
  bool finished = false;
};
}  // namespace

void Dial(EventLoop* loop, const std::string& addr, const ConnectionLimits& limits,
          std::function<void(Result<Connection::Ptr>)> done, uint64_t timeout_ms) {
  sockaddr_storage ss;
  Status st = ParseAddress(addr, &ss);
  if (!st.ok()) {
    done(st);
    return;
  }
  auto* d = new DialReq{{}, Connection::Create(loop, limits), addr, std::move(done), loop, 0};
  d->req.data = d;
  d->timer = loop->After(timeout_ms, [d] {
    if (d->finished) return;
    d->finished = true;
    d->conn->Close(Unavailable("connect timeout"));  // fires connect cb with ECANCELED
    d->done(Unavailable("cannot connect to " + d->addr + ": timeout"));
  });
  int rc = uv_tcp_connect(
      &d->req, d->conn->handle(), reinterpret_cast<sockaddr*>(&ss),
      [](uv_connect_t* req, int status) {
        auto* d = static_cast<DialReq*>(req->data);
        if (!d->finished) {
          d->finished = true;
          d->loop->Cancel(d->timer);
          if (status < 0) {
            d->conn->Close(Unavailable("connect failed"));
            d->done(Unavailable("cannot connect to " + d->addr + ": " + uv_strerror(status)));
          } else {
            Connection::Ptr conn = d->conn;
            auto done = std::move(d->done);
            conn->Start(d->addr, /*initiator=*/true, [conn, done](const Status& st) {
              if (st.ok()) {
                done(conn);
              } else {
                done(st);
              }
            });
          }
        }
        delete d;
      });
  if (rc != 0) {
    loop->Cancel(d->timer);
    d->conn->Close(Unavailable("connect failed"));
    auto fn = std::move(d->done);
    delete d;
    fn(Unavailable("cannot connect to " + addr + ": " + uv_strerror(rc)));
  }
}

}  // namespace mistore
