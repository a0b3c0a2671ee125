#include "shared/wire/secure_channel.h"

#include <sodium.h>

#include <cstring>

namespace mistore::secure {

namespace {
constexpr uint8_t kFlagLast = 1;

std::span<const uint8_t> PrologueSpan() {
  return {reinterpret_cast<const uint8_t*>(kPrologue), sizeof(kPrologue) - 1};
}
bool AesGcmBuilt() { return noise::CipherBuilt(noise::Cipher::kAesGcm); }
std::span<const uint8_t> DevicePrologueSpan() {
  return {reinterpret_cast<const uint8_t*>(kDevicePrologue),
          sizeof(kDevicePrologue) - 1};
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
  const uint64_t deadline_ms = now_ms + config.handshake_timeout_ms;
  if (const DeviceLinkConfig* d = config.device_link.get()) {
    if (d->static_key.private_key.size() != noise::kDhLen ||
        d->static_key.public_key.size() != noise::kDhLen)
      return InvalidArgument(
          "device link needs a 32-byte X25519 static key pair");
    if (!initiator) {
      if (!d->peer_static_key.empty())
        return InvalidArgument("device link responder must not pin a peer key");
      // The pattern comes with the device's preamble (OnPreamble).
      return SecureChannel(config, initiator, deadline_ms, std::nullopt, "");
    }
    const bool ik = !d->peer_static_key.empty();
    if (ik && d->peer_static_key.size() != noise::kDhLen)
      return InvalidArgument(
          "device link: the pinned agent key must be 32 bytes");
    MS_ASSIGN_OR_RETURN(
        noise::HandshakeState hs,
        noise::HandshakeState::Create(ik ? "IK" : "XX", true,
                                      DevicePrologueSpan(), &d->static_key,
                                      ik ? &d->peer_static_key : nullptr));
    return SecureChannel(config, initiator, deadline_ms, std::move(hs),
                         ik ? "IK" : "XX");
  }
  if (!config.identity) return InvalidArgument("secure channel needs an identity");
  if (config.ca_public_key.size() != crypto::kCaPublicKeyBytes)
    return InvalidArgument("secure channel needs the DC's 32-byte public key");
  // The responder learns the suite from the preamble (OnPreamble).
  if (!initiator)
    return SecureChannel(config, initiator, deadline_ms, std::nullopt, "XX");
  MS_ASSIGN_OR_RETURN(
      noise::HandshakeState hs,
      noise::HandshakeState::Create("XX", initiator, PrologueSpan(),
                                    &config.identity->static_key, nullptr,
                                    nullptr, config.cipher));
  return SecureChannel(config, initiator, deadline_ms, std::move(hs), "XX",
                       config.cipher);
}

const char* FailureName(Failure f) {
  switch (f) {
    case Failure::kNone: return "none";
    case Failure::kBadCert: return "bad_cert";
    case Failure::kWrongRole: return "wrong_role";
    case Failure::kExpired: return "expired";
    case Failure::kRevoked: return "revoked";
    case Failure::kPlaintext: return "plaintext";
    case Failure::kDecryptFailed: return "decrypt_failed";
    case Failure::kReplay: return "replay";
    case Failure::kHandshakeTimeout: return "handshake_timeout";
    case Failure::kMessageTooLong: return "message_too_long";
    case Failure::kProtocol: return "protocol";
  }
  return "protocol";
}

Status SecureChannel::Fail(Status st, Failure kind) {
  if (!failed_) {
    failed_ = true;
    failure_ = st;
    failure_kind_ = kind;
    hs_.reset();
    transport_ = noise::Transport();
    in_.clear();
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
  if (started_) return Fail(Internal("secure channel started twice"), Failure::kProtocol);
  started_ = true;
  if (!initiator_) return Status::Ok();
  auto msg = hs_->WriteMessage({});
  if (!msg.ok()) return Fail(msg.status(), Failure::kProtocol);
  const uint8_t* preamble =
      device_link() ? (pattern_ == "IK" ? kDevicePreambleIK : kDevicePreambleXX)
      : cipher_ == noise::Cipher::kAesGcm ? kPreambleAesGcm
                                          : kPreamble;
  wire->insert(wire->end(), preamble, preamble + sizeof kPreamble);
  AppendRecord(*msg, wire);
  return Status::Ok();
}

Status SecureChannel::CheckDeadline(uint64_t now_ms) {
  if (failed_) return failure_;
  if (!established_ && now_ms >= deadline_ms_)
    return Fail(Unavailable("handshake timeout after " +
                            std::to_string(config_.handshake_timeout_ms) + " ms"),
                Failure::kHandshakeTimeout);
  return Status::Ok();
}

// Which of VerifyCertificate's checks refused `cert` (same order), without
// parsing its message: a certificate that is not validly signed is bad_cert
// whatever else is wrong with it.
Failure SecureChannel::ClassifyCertRefusal(const crypto::Certificate& cert,
                                           uint64_t now_ms) const {
  crypto::CertPolicy signature_only;
  signature_only.ca_public_key = config_.ca_public_key;
  if (!crypto::VerifyCertificate(cert, signature_only, cert.issued_ms).ok())
    return Failure::kBadCert;
  if (!config_.peer_roles.empty() && !config_.peer_roles.count(cert.role))
    return Failure::kWrongRole;
  if (now_ms >= cert.expires_ms) return Failure::kExpired;
  if (config_.revoked_node_ids && config_.revoked_node_ids->count(cert.node_id))
    return Failure::kRevoked;
  return Failure::kBadCert;  // issued in the future
}

Status SecureChannel::CheckPeer(std::span<const uint8_t> payload, uint64_t now_ms,
                                Failure* kind) {
  *kind = Failure::kBadCert;
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
  Status st = crypto::VerifyCertificate(*cert, policy, now_ms);
  if (!st.ok()) {
    *kind = ClassifyCertRefusal(*cert, now_ms);
    return st;
  }
  peer_cert_ = std::move(cert).value();
  return Status::Ok();
}

Status SecureChannel::Finish() {
  MS_ASSERT(hs_->Complete());
  handshake_hash_ = hs_->handshake_hash();
  peer_static_ = hs_->remote_static();
  auto t = noise::Transport::FromHandshake(*hs_);
  if (!t.ok()) return t.status();
  transport_ = std::move(t).value();
  hs_.reset();
  established_ = true;
  return Status::Ok();
}

Status SecureChannel::OnHandshakeRecord(std::span<const uint8_t> body, uint64_t now_ms,
                                        Bytes* wire, Failure* kind) {
  if (hs_->IsMyTurn()) return ProtocolError("handshake record out of turn");
  auto payload = hs_->ReadMessage(body);
  if (!payload.ok()) {
    // An authentication failure here is a peer on another prologue/version
    // or a tampered handshake (or, on a device link, a device pinning
    // another agent key).
    *kind = payload.status().code() == Code::kCorrupt ? Failure::kDecryptFailed
                                                      : Failure::kProtocol;
    return payload.status();
  }
  if (device_link()) return OnDeviceHandshake(*payload, wire);
  if (initiator_) {
    // Message 2: the responder's certificate. Answer with message 3.
    MS_RETURN_IF_ERROR(CheckPeer(*payload, now_ms, kind));
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
  MS_RETURN_IF_ERROR(CheckPeer(*payload, now_ms, kind));
  return Finish();
}

// Device link, both patterns and both sides: payloads are empty; answer
// when it is our turn; established once the pattern is complete.
Status SecureChannel::OnDeviceHandshake(std::span<const uint8_t> payload,
                                        Bytes* wire) {
  if (!payload.empty())
    return ProtocolError("device handshake message carries a payload");
  if (!hs_->Complete()) {
    MS_ASSERT(hs_->IsMyTurn());
    auto msg = hs_->WriteMessage({});
    if (!msg.ok()) return msg.status();
    AppendRecord(*msg, wire);
  }
  return hs_->Complete() ? Finish() : Status::Ok();
}

// Responder: the four preamble bytes are in in_ (already checked). Node
// links: "MSN2" (ChaChaPoly) or "MSNG" (AESGCM) fixes the suite; device links
// "MSDI" / "MSDX" fix the Noise pattern.
Status SecureChannel::OnPreamble() {
  if (!device_link()) {
    cipher_ = in_[3] == kPreambleAesGcm[3] ? noise::Cipher::kAesGcm
                                           : noise::Cipher::kChaChaPoly;
    MS_ASSIGN_OR_RETURN(
        noise::HandshakeState hs,
        noise::HandshakeState::Create("XX", false, PrologueSpan(),
                                      &config_.identity->static_key, nullptr,
                                      nullptr, cipher_));
    hs_.emplace(std::move(hs));
    return Status::Ok();
  }
  const bool ik =
      std::memcmp(in_.data(), kDevicePreambleIK, sizeof kPreamble) == 0;
  MS_ASSIGN_OR_RETURN(noise::HandshakeState hs,
                      noise::HandshakeState::Create(
                          ik ? "IK" : "XX", false, DevicePrologueSpan(),
                          &config_.device_link->static_key));
  hs_.emplace(std::move(hs));
  pattern_ = ik ? "IK" : "XX";
  return Status::Ok();
}

Status SecureChannel::OnTransportRecord(std::span<const uint8_t> body,
                                        std::vector<Bytes>* messages, Failure* kind) {
  if (body.size() < noise::kTagLen + 1)
    return ProtocolError("transport record of " + std::to_string(body.size()) +
                         " bytes is shorter than a tag and flags");
  const size_t plain_len = body.size() - noise::kTagLen;  // piece + flags
  const size_t at = reassembly_.size();
  if (at + plain_len - 1 > config_.message_bytes_max) {
    *kind = Failure::kMessageTooLong;
    return ResourceExhausted("message longer than " + std::to_string(config_.message_bytes_max) +
                             " bytes");
  }
  // Decrypt straight into the message being reassembled. A message's first
  // piece reserves the previous message's size (capped by the limit): a
  // stream of similar messages then grows no buffer piece by piece.
  if (at == 0 && reassembly_.capacity() < last_message_bytes_)
    reassembly_.reserve(std::min(last_message_bytes_, config_.message_bytes_max));
  reassembly_.resize(at + plain_len);
  Status st = transport_.DecryptTo(body, reassembly_.data() + at);
  const uint8_t* tag = body.data() + body.size() - noise::kTagLen;
  if (!st.ok()) {
    *kind = Failure::kDecryptFailed;
    for (const auto& t : recent_tags_) {
      if (std::memcmp(t, tag, noise::kTagLen) == 0) {
        *kind = Failure::kReplay;
        return Corrupt("record failed authentication: a replay of an earlier record");
      }
    }
    return Corrupt(
        "record failed authentication (modified, reordered or dropped): " + st.message());
  }
  std::memcpy(recent_tags_[recent_tags_next_], tag, noise::kTagLen);
  recent_tags_next_ = (recent_tags_next_ + 1) % kRecentTagsMax;
  const uint8_t flags = reassembly_[at + plain_len - 1];
  reassembly_.resize(at + plain_len - 1);
  if (flags & ~kFlagLast) return ProtocolError("transport record with unknown flags");
  if (flags & kFlagLast) {
    last_message_bytes_ = reassembly_.size();
    messages->push_back(std::move(reassembly_));
    reassembly_ = Bytes();
  }
  return Status::Ok();
}

Status SecureChannel::OnRecord(std::span<const uint8_t> body, uint64_t now_ms, Bytes* wire,
                               std::vector<Bytes>* messages, Failure* kind) {
  *kind = Failure::kProtocol;  // unless the handler names another reason
  return established_ ? OnTransportRecord(body, messages, kind)
                      : OnHandshakeRecord(body, now_ms, wire, kind);
}

Status SecureChannel::Receive(std::span<const uint8_t> bytes, uint64_t now_ms, Bytes* wire,
                              std::vector<Bytes>* messages) {
  if (failed_) return failure_;
  if (!started_) return Fail(Internal("secure channel used before Start"), Failure::kProtocol);
  MS_RETURN_IF_ERROR(CheckDeadline(now_ms));
  const uint8_t* p = bytes.data();
  size_t left = bytes.size();
  if (!initiator_ && !preamble_seen_) {
    size_t take = std::min(left, sizeof kPreamble - in_.size());
    in_.insert(in_.end(), p, p + take);
    p += take;
    left -= take;
    // Empty (a zero-length read): nothing to compare, and memcmp must not
    // get the null data() of an empty vector (UBSan, fuzz_handshake).
    if (!in_.empty() && device_link()) {
      // "MSD" then 'I' or 'X'.
      if (std::memcmp(in_.data(), kDevicePreambleIK,
                      std::min<size_t>(in_.size(), 3)) != 0)
        return Fail(ProtocolError("plaintext connection refused: the peer did "
                                  "not start a device handshake"),
                    Failure::kPlaintext);
      if (in_.size() == sizeof kPreamble && in_[3] != kDevicePreambleIK[3] &&
          in_[3] != kDevicePreambleXX[3])
        return Fail(
            ProtocolError(std::string("device handshake '") + char(in_[3]) +
                          "' refused: this agent speaks IK ('I') and XX ('X')"),
            Failure::kPlaintext);
    } else if (!in_.empty() &&
               std::memcmp(in_.data(), kPreamble, in_.size()) != 0 &&
               !(AesGcmBuilt() &&
                 std::memcmp(in_.data(), kPreambleAesGcm, in_.size()) == 0)) {
      if (in_.size() == sizeof kPreamble && std::memcmp(in_.data(), kPreamble, 3) == 0)
        return Fail(
            ProtocolError(
                std::string("secure protocol version ") + char(in_[3]) +
                " refused: this node speaks version " + char(kPreamble[3]) +
                (AesGcmBuilt() ? " (ChaChaPoly) and G (AES-GCM)"
                               : " (ChaChaPoly; built without AES-GCM)")),
            Failure::kPlaintext);
      if (std::memcmp(in_.data(), kPreamble, std::min<size_t>(in_.size(), 3)) != 0)
        return Fail(ProtocolError("plaintext connection refused: the peer did "
                                  "not start a secure handshake"),
                    Failure::kPlaintext);
    }
    if (in_.size() < sizeof kPreamble) return Status::Ok();
    if (Status st = OnPreamble(); !st.ok()) return Fail(st, Failure::kProtocol);
    preamble_seen_ = true;
    in_.clear();
  }
  auto too_long = [&](size_t len) { return !established_ && len > kHandshakeRecordBytesMax; };
  Failure kind = Failure::kProtocol;
  // A record straddling the previous read: complete it first.
  if (!in_.empty()) {
    if (in_.size() < kRecordHeaderBytes) {
      size_t take = std::min(left, kRecordHeaderBytes - in_.size());
      in_.insert(in_.end(), p, p + take);
      p += take;
      left -= take;
      if (in_.size() < kRecordHeaderBytes) return Status::Ok();
    }
    size_t len = GetLe16(in_.data());
    if (too_long(len))
      return Fail(ProtocolError("handshake record of " + std::to_string(len) +
                                " bytes exceeds the limit"),
                  Failure::kProtocol);
    size_t take = std::min(left, kRecordHeaderBytes + len - in_.size());
    in_.insert(in_.end(), p, p + take);
    p += take;
    left -= take;
    if (in_.size() < kRecordHeaderBytes + len) return Status::Ok();
    Status st = OnRecord({in_.data() + kRecordHeaderBytes, len}, now_ms, wire, messages, &kind);
    if (!st.ok()) return Fail(st, kind);
    in_.clear();  // keeps its capacity for the next straddling record
  }
  // Whole records straight from the received bytes.
  while (left >= kRecordHeaderBytes) {
    size_t len = GetLe16(p);
    if (too_long(len))
      return Fail(ProtocolError("handshake record of " + std::to_string(len) +
                                " bytes exceeds the limit"),
                  Failure::kProtocol);
    if (left < kRecordHeaderBytes + len) break;
    Status st = OnRecord({p + kRecordHeaderBytes, len}, now_ms, wire, messages, &kind);
    if (!st.ok()) return Fail(st, kind);
    p += kRecordHeaderBytes + len;
    left -= kRecordHeaderBytes + len;
  }
  // Keep the start of the next record (less than one record).
  in_.insert(in_.end(), p, p + left);
  return Status::Ok();
}

Status SecureChannel::Seal(std::span<const uint8_t> message, Bytes* wire) {
  if (failed_) return failure_;
  if (!established_) return InvalidArgument("secure channel not established yet");
  if (message.size() > config_.message_bytes_max)
    return InvalidArgument("message longer than " + std::to_string(config_.message_bytes_max) +
                           " bytes");
  constexpr size_t kOverhead = kRecordHeaderBytes + 1 + noise::kTagLen;
  const size_t pieces = message.empty() ? 1 : (message.size() + kPieceBytesMax - 1) / kPieceBytesMax;
  const size_t at = wire->size();
  // Each record is appended (header, piece, flags, room for the tag) and
  // encrypted in place: the plaintext is copied once and nothing is zeroed
  // first.
  wire->reserve(at + message.size() + pieces * kOverhead);
  size_t off = 0;
  do {
    const size_t n = std::min(message.size() - off, kPieceBytesMax);
    const bool last = off + n == message.size();
    uint8_t header[kRecordHeaderBytes];
    PutLe16(header, uint16_t(n + 1 + noise::kTagLen));
    wire->insert(wire->end(), header, header + kRecordHeaderBytes);
    const size_t body = wire->size();
    if (n) wire->insert(wire->end(), message.data() + off, message.data() + off + n);
    wire->push_back(last ? kFlagLast : 0);
    wire->resize(wire->size() + noise::kTagLen);
    Status st = transport_.EncryptInPlace(wire->data() + body, n + 1);
    if (!st.ok()) {
      wire->resize(at);
      return Fail(st, Failure::kProtocol);
    }
    off += n;
  } while (off < message.size());
  MS_ASSERT(wire->size() == at + message.size() + pieces * kOverhead);
  return Status::Ok();
}

}  // namespace mistore::secure
