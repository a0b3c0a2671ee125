// Envelope helpers: decode a frame payload into a mistore.pb.Envelope with
// validation, build error responses, convert between pb.Error and Status.
// Pure functions, any thread.
#pragma once

#include <string>

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

// The subscriber a request acts for (the field `subscriber` of its body), or
// nullptr if its type names none. Both authorization checks of a gateway's
// or device's requests use it: the transport's (shared/uvio/authz.h) and
// the POP's for devices (pop-server/device_access.h).
const std::string* RequestSubscriber(const pb::Envelope& e);

// A commit pushes every chunk of the version to the object's replicas and
// has each stored durably before it answers, so the time it may take grows
// with the number of chunks. Every hop of a commit (client -> agent -> entry
// POP -> primary -> backup) waits base_ms plus this much per chunk; a 1 GiB
// file (about 1,000 chunks) gets a few minutes instead of the 30 s that
// failed it before.
constexpr uint64_t kCommitMsPerChunk = 250;
constexpr uint64_t CommitTimeoutMs(uint64_t base_ms, size_t chunks) {
  return base_ms + kCommitMsPerChunk * uint64_t(chunks);
}
static_assert(CommitTimeoutMs(30000, 1024) >= 240000, "a 1 GiB commit needs minutes");

}  // namespace mistore
