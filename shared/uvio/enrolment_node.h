// A node's side of enrolment and certificate renewal (issue 4), for the
// gateway agent and the POP: the libuv driver of enrol::EnrolClient
// (shared/wire/enrolment.h) and the start-up step that turns an enrolment
// token into the node's key, certificate and CA key files.
//
// Start-up (PrepareNodeIdentity, before the daemon's own loop exists): with
// `enrolment_token` set and no certificate yet, the node creates its
// long-term key (mode 0600; an existing key file is reused, and refused if
// group or others can read it), redeems the token at `enrolment_dc` (the
// DC's enrol_listen), and stores the certificate and the DC's CA key. With a
// certificate present (a restart), it enrols no more. Either way it then
// runs as an enrolled node: `secure` on, the identity files set, and the
// daemon's id/region/subscriber knobs taken from the certificate (a config
// that names others is refused). Files default to data_dir/node.key,
// data_dir/node.cert and data_dir/ca.pub unless node_key_file,
// node_cert_file, ca_public_key_file name others.
//
// Renewal (CertRenewer, on the daemon's loop): once a fraction
// (cert_renew_at_fraction) of the certificate's lifetime has passed, the
// node renews it at `enrolment_dc` over a Noise handshake proving its key,
// writes the new certificate durably and hands it to every later handshake
// (SetIdentityCertificate). Failures are retried with backoff (RenewalSchedule,
// pure), never later than the expiry.
//
// Threads: PrepareNodeIdentity and RunEnrolmentExchange block the calling
// thread (start-up, with a private EventLoop); CertRenewer runs on the
// daemon's loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/core/config.h"
#include "shared/core/status.h"
#include "shared/crypto/cert.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/loop.h"
#include "shared/wire/enrolment.h"

namespace mistore::enrol {

inline constexpr uint64_t kEnrolExchangeTimeoutMs = 15000;

// enrolment_token, enrolment_dc, cert_renew_at_fraction.
std::vector<Knob> NodeEnrolmentKnobs();
std::vector<Knob> WithNodeEnrolmentKnobs(std::vector<Knob> knobs);

// Names of this daemon's knobs that the certificate decides ("" = none).
struct IdentityKnobNames {
  std::string node_id;
  std::string region;
  std::string subscriber;
};

struct IdentityPaths {
  std::string key, cert, ca;
};
IdentityPaths IdentityFilePaths(const Config& cfg);

// See the header comment. Errors name what failed: the DC's refusal
// ("the DC refused: enrolment token already used"), an unreachable DC, a key
// file of the wrong mode, a config contradicting the certificate.
Status PrepareNodeIdentity(Config* cfg, crypto::NodeRole role, const IdentityKnobNames& knobs);

// One exchange with the DC at `dc_addr` (blocking, own loop).
Result<Outcome> RunEnrolmentExchange(const std::string& dc_addr, ClientParams params,
                                     const noise::KeyPair& key,
                                     uint64_t timeout_ms = kEnrolExchangeTimeoutMs);

// When to try renewing (pure). After a failure, retries back off from
// retry_ms_min doubling to retry_ms_max, but never past the expiry.
class RenewalSchedule {
 public:
  RenewalSchedule(double fraction, uint64_t retry_ms_min = 1000, uint64_t retry_ms_max = 60000);
  // A (new) certificate: the next attempt is at issued + fraction * lifetime.
  void OnCertificate(const crypto::Certificate& cert);
  void OnFailure(uint64_t now_ms);
  uint64_t next_attempt_ms() const { return next_ms_; }
  bool Due(uint64_t now_ms) const { return now_ms >= next_ms_; }
  uint64_t failures() const { return failures_; }

 private:
  double fraction_;
  uint64_t retry_min_, retry_max_;
  uint64_t expires_ms_ = 0;
  uint64_t next_ms_ = 0;
  uint64_t failures_ = 0;
};

// Renews this node's certificate in the background (see the header comment).
class CertRenewer {
 public:
  // `limits`: the daemon's secure limits (their identity is updated).
  CertRenewer(EventLoop* loop, const Config& cfg, ConnectionLimits limits, crypto::NodeRole role);
  // No-op unless secure and enrolment_dc are set.
  void Start();
  uint64_t renewals() const { return renewals_; }

 private:
  void Arm();
  void Attempt();

  EventLoop* loop_;
  const Config& cfg_;
  ConnectionLimits limits_;
  crypto::NodeRole role_;
  RenewalSchedule schedule_;
  uint64_t renewals_ = 0;
  TimerId timer_ = 0;
};

}  // namespace mistore::enrol
