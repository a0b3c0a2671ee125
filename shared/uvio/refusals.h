// Refusals: why a daemon closed (or refused) a connection, counted per
// bounded reason and exposed on /metrics as
//   mistore_connections_refused_total{reason}   connections closed by a limit,
//                                              a certificate or a tampered stream
//   mistore_requests_refused_total{reason}      requests refused on an open
//                                              connection (authorization)
// Reasons are a fixed list in code (never peer data), so the label set is
// bounded. Each refusal is also logged once, with the peer address, by the
// code that refuses (shared/uvio/connection.cc).
//
// The same object holds the daemon-wide count of bytes buffered by its
// connections (buffered_bytes below).
//
// Ownership: one RefusalCounters per process by default (ProcessRefusals(),
// the one every ConnectionLimits points at unless told otherwise; tests make
// their own). Counters are lock-free atomics: any thread may bump them; the
// exposition callbacks run on the thread serving /metrics (the daemon loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <atomic>
#include <memory>

#include "shared/core/metrics.h"

namespace mistore {

enum class Refusal : uint8_t {
  kBadCert,           // certificate unreadable, not signed by this DC, wrong key
  kWrongRole,         // certificate role not accepted on this link
  kExpired,           // certificate expired
  kRevoked,           // node revoked in the cluster map
  kPlaintext,         // no secure handshake where one was due (or an old version)
  kDecryptFailed,     // a record failed authentication (modified, reordered, dropped)
  kReplay,            // a record replayed
  kHandshakeTimeout,  // handshake not finished within handshake_timeout_ms
  kLimitFrame,        // a frame/message over frame_bytes_max
  kLimitInflight,     // more unanswered requests than requests_in_flight_max
  kLimitPerAddress,   // more connections from one address than allowed
  kLimitBuffered,     // a slow reader: write queue over write_queue_bytes_max
  kIdle,              // nothing received for idle_timeout_ms
  kProtocol,          // malformed frame, envelope or handshake
  kLimitBufferedTotal,  // all connections together over buffered_bytes_total_max
  kCount
};
inline constexpr size_t kRefusalCount = size_t(Refusal::kCount);

// The label value ("bad_cert", ...).
const char* RefusalName(Refusal r);

struct RefusalCounters {
  Counter connections[kRefusalCount];
  Counter requests_unauthorized;  // authz.h refused a request
  // Bytes every connection counting here holds now: written but not yet
  // taken by the kernel, plus received but not yet a whole frame/message
  // (read_buffered_bytes). Connections compare it with their
  // buffered_bytes_total_max (the daemon-wide cap, connection.h); exposed as
  // the gauge mistore_connection_buffered_bytes.
  std::atomic<uint64_t> buffered_bytes{0};

  void Count(Refusal r) { connections[size_t(r)].Inc(); }
  uint64_t value(Refusal r) const { return connections[size_t(r)].value(); }
};

// The process-wide counters (created on first use, never destroyed).
const std::shared_ptr<RefusalCounters>& ProcessRefusals();

// Registers both families, every reason, reading `counters` at exposition.
void ExportRefusalMetrics(MetricsRegistry* registry,
                          std::shared_ptr<RefusalCounters> counters = ProcessRefusals());

}  // namespace mistore
