// Envelope helpers: decode a frame payload into a mistore.pb.Envelope with
// validation, build error responses, convert between pb.Error and Status.
// Pure functions, any thread.
#pragma once

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

// Fails with kProtocol if the bytes do not parse or carry no known body.
Status DecodeEnvelope(const Bytes& payload, pb::Envelope* out);
Bytes EncodeEnvelopeFrame(const pb::Envelope& env);

// A response with the same request id carrying `status` as its error.
pb::Envelope ErrorResponse(uint64_t request_id, const Status& status);
// Status carried by a response (Ok when it has no error).
Status ResponseStatus(const pb::Envelope& env);

}  // namespace mistore
