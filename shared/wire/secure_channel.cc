#include "shared/wire/secure_channel.h"

#include <sodium.h>

#include <cstring>

namespace mistore::secure {

namespace {
constexpr uint8_t kFlagLast = 1;

std::span<const uint8_t> PrologueSpan() {
  return {reinterpret_cast<const uint8_t*>(kPrologue), sizeof(kPrologue) - 1};
}
}  // namespace

Result<Identity> Identity::Create(noise::KeyPair static_key, Bytes cert_bytes) {
  MS_ASSIGN_OR_RETURN(crypto::Certificate cert, crypto::ParseCertificate(cert_bytes));
  if (cert.static_public_key != static_key.public_key)
    return InvalidArgument("certificate does not name this node's static key");
  Identity id;
  id.static_key = std::move(static_key);
  id.cert_bytes = std::move(cert_bytes);
  id.cert = std::move(cert);
  return id;
}

Result<SecureChannel> SecureChannel::Create(const ChannelConfig& config, bool initiator,
                                            uint64_t now_ms) {
  if (!config.identity) return InvalidArgument("secure channel needs an identity");
  if (config.ca_public_key.size() != crypto::kCaPublicKeyBytes)
    return InvalidArgument("secure channel needs the DC's 32-byte public key");
  MS_ASSIGN_OR_RETURN(
      noise::HandshakeState hs,
      noise::HandshakeState::Create("XX", initiator, PrologueSpan(), &config.identity->static_key));
  return SecureChannel(config, initiator, now_ms + config.handshake_timeout_ms, std::move(hs));
}

Status SecureChannel::Fail(Status st) {
  if (!failed_) {
    failed_ = true;
    failure_ = st;
    hs_.reset();
    transport_ = noise::Transport();
    in_.clear();
    in_pos_ = 0;
    reassembly_.clear();
  }
  return st;
}

void SecureChannel::AppendRecord(std::span<const uint8_t> body, Bytes* wire) {
  MS_ASSERT(body.size() <= 0xffff);
  uint8_t h[kRecordHeaderBytes];
  PutLe16(h, uint16_t(body.size()));
  wire->insert(wire->end(), h, h + kRecordHeaderBytes);
  wire->insert(wire->end(), body.begin(), body.end());
}

Status SecureChannel::Start(Bytes* wire) {
  if (failed_) return failure_;
  if (started_) return Fail(Internal("secure channel started twice"));
  started_ = true;
  if (!initiator_) return Status::Ok();
  auto msg = hs_->WriteMessage({});
  if (!msg.ok()) return Fail(msg.status());
  wire->insert(wire->end(), kPreamble, kPreamble + sizeof kPreamble);
  AppendRecord(*msg, wire);
  return Status::Ok();
}

Status SecureChannel::CheckDeadline(uint64_t now_ms) {
  if (failed_) return failure_;
  if (!established_ && now_ms >= deadline_ms_)
    return Fail(Unavailable("handshake timeout after " +
                            std::to_string(config_.handshake_timeout_ms) + " ms"));
  return Status::Ok();
}

Status SecureChannel::CheckPeer(std::span<const uint8_t> payload, uint64_t now_ms) {
  auto cert = crypto::ParseCertificate(payload);
  if (!cert.ok())
    return Status(Code::kPermissionDenied,
                  "peer certificate unreadable: " + cert.status().message());
  if (cert->static_public_key != hs_->remote_static())
    return Status(Code::kPermissionDenied,
                  "peer certificate is for another key than the one it proved");
  crypto::CertPolicy policy;
  policy.ca_public_key = config_.ca_public_key;
  policy.allowed_roles = config_.peer_roles;
  policy.revoked_node_ids = config_.revoked_node_ids.get();
  MS_RETURN_IF_ERROR(crypto::VerifyCertificate(*cert, policy, now_ms));
  peer_cert_ = std::move(cert).value();
  return Status::Ok();
}

Status SecureChannel::Finish() {
  MS_ASSERT(hs_->Complete());
  handshake_hash_ = hs_->handshake_hash();
  auto t = noise::Transport::FromHandshake(*hs_);
  if (!t.ok()) return t.status();
  transport_ = std::move(t).value();
  hs_.reset();
  established_ = true;
  return Status::Ok();
}

Status SecureChannel::OnHandshakeRecord(std::span<const uint8_t> body, uint64_t now_ms,
                                        Bytes* wire) {
  if (hs_->IsMyTurn()) return ProtocolError("handshake record out of turn");
  auto payload = hs_->ReadMessage(body);
  if (!payload.ok()) return payload.status();
  if (initiator_) {
    // Message 2: the responder's certificate. Answer with message 3.
    MS_RETURN_IF_ERROR(CheckPeer(*payload, now_ms));
    auto msg3 = hs_->WriteMessage(config_.identity->cert_bytes);
    if (!msg3.ok()) return msg3.status();
    AppendRecord(*msg3, wire);
    return Finish();
  }
  if (!hs_->Complete()) {
    // Message 1: must carry no payload. Answer with message 2.
    if (!payload->empty()) return ProtocolError("handshake message 1 carries a payload");
    auto msg2 = hs_->WriteMessage(config_.identity->cert_bytes);
    if (!msg2.ok()) return msg2.status();
    AppendRecord(*msg2, wire);
    return Status::Ok();
  }
  // Message 3: the initiator's certificate.
  MS_RETURN_IF_ERROR(CheckPeer(*payload, now_ms));
  return Finish();
}

Status SecureChannel::OnTransportRecord(std::span<const uint8_t> body,
                                        std::vector<Bytes>* messages) {
  auto plain = transport_.Decrypt(body);
  if (!plain.ok())
    return Corrupt(
        "record failed authentication (modified, replayed, reordered or "
        "dropped): " +
        plain.status().message());
  if (plain->empty()) return ProtocolError("transport record without flags");
  uint8_t flags = (*plain)[0];
  if (flags & ~kFlagLast) return ProtocolError("transport record with unknown flags");
  if (reassembly_.size() + plain->size() - 1 > config_.message_bytes_max)
    return ResourceExhausted("message longer than " + std::to_string(config_.message_bytes_max) +
                             " bytes");
  reassembly_.insert(reassembly_.end(), plain->begin() + 1, plain->end());
  if (flags & kFlagLast) {
    messages->push_back(std::move(reassembly_));
    reassembly_ = Bytes();
  }
  return Status::Ok();
}

Status SecureChannel::Receive(std::span<const uint8_t> bytes, uint64_t now_ms, Bytes* wire,
                              std::vector<Bytes>* messages) {
  if (failed_) return failure_;
  if (!started_) return Fail(Internal("secure channel used before Start"));
  MS_RETURN_IF_ERROR(CheckDeadline(now_ms));
  in_.insert(in_.end(), bytes.begin(), bytes.end());
  if (!initiator_ && !preamble_seen_) {
    size_t have = std::min(in_.size(), sizeof kPreamble);
    if (std::memcmp(in_.data(), kPreamble, have) != 0)
      return Fail(
          ProtocolError("plaintext connection refused: the peer did "
                        "not start a secure handshake"));
    if (have < sizeof kPreamble) return Status::Ok();
    preamble_seen_ = true;
    in_pos_ = sizeof kPreamble;
  }
  while (in_.size() - in_pos_ >= kRecordHeaderBytes) {
    size_t len = GetLe16(in_.data() + in_pos_);
    if (!established_ && len > kHandshakeRecordBytesMax)
      return Fail(
          ProtocolError("handshake record of " + std::to_string(len) + " bytes exceeds the limit"));
    if (in_.size() - in_pos_ < kRecordHeaderBytes + len) break;
    std::span<const uint8_t> body(in_.data() + in_pos_ + kRecordHeaderBytes, len);
    Status st =
        established_ ? OnTransportRecord(body, messages) : OnHandshakeRecord(body, now_ms, wire);
    if (!st.ok()) return Fail(st);
    in_pos_ += kRecordHeaderBytes + len;
  }
  // Compact: keep only the unconsumed tail (at most one partial record).
  if (in_pos_ > 0) {
    in_.erase(in_.begin(), in_.begin() + ptrdiff_t(in_pos_));
    in_pos_ = 0;
  }
  return Status::Ok();
}

Status SecureChannel::Seal(std::span<const uint8_t> message, Bytes* wire) {
  if (failed_) return failure_;
  if (!established_) return InvalidArgument("secure channel not established yet");
  if (message.size() > config_.message_bytes_max)
    return InvalidArgument("message longer than " + std::to_string(config_.message_bytes_max) +
                           " bytes");
  size_t off = 0;
  Bytes piece;
  piece.reserve(std::min(message.size(), kPieceBytesMax) + 1);
  wire->reserve(wire->size() + message.size() +
                (message.size() / kPieceBytesMax + 1) * (kRecordHeaderBytes + 1 + noise::kTagLen));
  do {
    size_t n = std::min(message.size() - off, kPieceBytesMax);
    bool last = off + n == message.size();
    piece.assign(1, last ? kFlagLast : 0);
    piece.insert(piece.end(), message.begin() + ptrdiff_t(off),
                 message.begin() + ptrdiff_t(off + n));
    auto ct = transport_.Encrypt(piece);
    if (!ct.ok()) return Fail(ct.status());
    AppendRecord(*ct, wire);
    off += n;
  } while (off < message.size());
  return Status::Ok();
}

}  // namespace mistore::secure
