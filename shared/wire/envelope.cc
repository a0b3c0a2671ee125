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

const std::string* RequestSubscriber(const pb::Envelope& e) {
  using B = pb::Envelope::BodyCase;
  switch (e.body_case()) {
    case B::kPutChunk:
      return &e.put_chunk().subscriber();
    case B::kPutCommit:
      return &e.put_commit().subscriber();
    case B::kGetVersion:
      return &e.get_version().subscriber();
    case B::kGetChunk:
      return &e.get_chunk().subscriber();
    case B::kGetChunkFragments:
      return &e.get_chunk_fragments().subscriber();
    case B::kReportForgedFragments:
      return &e.report_forged_fragments().subscriber();
    case B::kListObjects:
      return &e.list_objects().subscriber();
    case B::kAcquireLock:
      return &e.acquire_lock().subscriber();
    case B::kReleaseLock:
      return &e.release_lock().subscriber();
    case B::kHaveChunks:
      return &e.have_chunks().subscriber();
    case B::kHello:
      return &e.hello().subscriber();
    case B::kPublishShareKey:
      return &e.publish_share_key().subscriber();
    case B::kGetShareKey:
      return &e.get_share_key().subscriber();
    case B::kPutShare:
      return &e.put_share().subscriber();
    case B::kListShares:
      return &e.list_shares().subscriber();
    default:
      return nullptr;
  }
}

}  // namespace mistore
