#include "shared/wire/envelope.h"

#include "shared/wire/frame.h"

namespace mistore {

Status DecodeEnvelope(const Bytes& payload, pb::Envelope* out) {
  if (!out->ParseFromArray(payload.data(), int(payload.size())))
    return ProtocolError("undecodable frame (" + std::to_string(payload.size()) + " bytes)");
  if (out->body_case() == pb::Envelope::BODY_NOT_SET && !out->has_error())
    return ProtocolError("frame carries no known message type");
  return Status::Ok();
}

Bytes EncodeEnvelopeFrame(const pb::Envelope& env) {
  std::string s = env.SerializeAsString();
  Bytes out;
  out.reserve(s.size() + kFrameHeaderBytes);
  EncodeFrame(reinterpret_cast<const uint8_t*>(s.data()), s.size(), &out);
  return out;
}

pb::Envelope ErrorResponse(uint64_t request_id, const Status& status) {
  pb::Envelope env;
  env.set_request_id(request_id);
  env.set_is_response(true);
  env.mutable_error()->set_code(uint32_t(status.code()));
  env.mutable_error()->set_message(status.message());
  return env;
}

Status ResponseStatus(const pb::Envelope& env) {
  if (!env.has_error()) return Status::Ok();
  uint32_t c = env.error().code();
  Code code = c <= uint32_t(Code::kInternal) && c != 0 ? Code(c) : Code::kInternal;
  return Status(code, env.error().message());
}

}  // namespace mistore
