#include "shared/uvio/refusals.h"

#include "shared/core/assert.h"

namespace mistore {

const char* RefusalName(Refusal r) {
  switch (r) {
    case Refusal::kBadCert: return "bad_cert";
    case Refusal::kWrongRole: return "wrong_role";
    case Refusal::kExpired: return "expired";
    case Refusal::kRevoked: return "revoked";
    case Refusal::kPlaintext: return "plaintext";
    case Refusal::kDecryptFailed: return "decrypt_failed";
    case Refusal::kReplay: return "replay";
    case Refusal::kHandshakeTimeout: return "handshake_timeout";
    case Refusal::kLimitFrame: return "limit_frame";
    case Refusal::kLimitInflight: return "limit_inflight";
    case Refusal::kLimitPerAddress: return "limit_per_address";
    case Refusal::kLimitBuffered: return "limit_buffered";
    case Refusal::kIdle: return "idle";
    case Refusal::kProtocol: return "protocol";
    case Refusal::kLimitBufferedTotal: return "limit_buffered_total";
    case Refusal::kCount: break;
  }
  MS_ASSERT(false);
  return "protocol";
}

const std::shared_ptr<RefusalCounters>& ProcessRefusals() {
  static const auto* counters =
      new std::shared_ptr<RefusalCounters>(std::make_shared<RefusalCounters>());
  return *counters;
}

void ExportRefusalMetrics(MetricsRegistry* registry, std::shared_ptr<RefusalCounters> counters) {
  MS_ASSERT(registry && counters);
  for (size_t i = 0; i < kRefusalCount; i++) {
    Refusal r = Refusal(i);
    registry->AddCounterFn(
        "mistore_connections_refused_total",
        "connections this daemon closed or refused, by reason (limits, certificates, "
        "tampered or plaintext streams)",
        [counters, r] { return double(counters->value(r)); }, {{"reason", RefusalName(r)}});
  }
  registry->AddCounterFn(
      "mistore_requests_refused_total",
      "requests refused on an open connection, by reason (unauthorized: role or subscriber)",
      [counters] { return double(counters->requests_unauthorized.value()); },
      {{"reason", "unauthorized"}});
  registry->AddGaugeFn(
      "mistore_connection_buffered_bytes",
      "bytes held by all connections now: not yet taken by the kernel for slow readers plus "
      "partial frames received (capped by buffered_bytes_total_max)",
      [counters] { return double(counters->buffered_bytes.load(std::memory_order_relaxed)); });
}

}  // namespace mistore
