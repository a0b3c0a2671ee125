#include "shared/uvio/enrolment_node.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "shared/core/log.h"
#include "shared/store/file_util.h"

namespace mistore::enrol {

namespace {

uint64_t WallNowMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

Result<double> RenewFraction(const Config& cfg) {
  const std::string s = cfg.Str("cert_renew_at_fraction");
  char* end = nullptr;
  double f = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(f > 0.0 && f < 1.0))
    return InvalidArgument("cert_renew_at_fraction '" + s + "' is not a number in (0, 1)");
  return f;
}

// Runs one exchange on `loop`; `done` runs once.
void StartExchange(EventLoop* loop, const std::string& dc_addr, std::shared_ptr<EnrolClient> client,
                   uint64_t timeout_ms, std::function<void(Result<Outcome>)> done) {
  auto finished = std::make_shared<bool>(false);
  auto conn = std::make_shared<Connection::Ptr>();
  auto finish = [finished, conn, done](Result<Outcome> r) {
    if (*finished) return;
    *finished = true;
    if (*conn) (*conn)->Close(Unavailable("enrolment exchange over"));
    done(std::move(r));
  };
  TimerId deadline = loop->After(timeout_ms, [finish, timeout_ms] {
    finish(Unavailable("no answer from the DC within " + std::to_string(timeout_ms) + " ms"));
  });
  auto finish_and_cancel = [finish, loop, deadline](Result<Outcome> r) {
    loop->Cancel(deadline);
    finish(std::move(r));
  };
  ConnectionLimits limits;
  limits.frame_bytes_max = 16 << 10;
  limits.calls_in_flight_max = 2;
  Dial(loop, dc_addr, limits, [=](Result<Connection::Ptr> r) {
    if (*finished) {
      if (r.ok()) r.value()->Close(Unavailable("enrolment exchange over"));
      return;
    }
    if (!r.ok()) {
      finish_and_cancel(Unavailable("cannot reach the DC at " + dc_addr + ": " +
                                    r.status().message()));
      return;
    }
    *conn = r.value();
    auto start = client->Start();
    if (!start.ok()) return finish_and_cancel(start.status());
    (*conn)->Call(std::move(start).value(), [=](Result<pb::Envelope> rep) {
      if (!rep.ok()) return finish_and_cancel(rep.status());
      auto fin = client->OnStartReply(rep.value(), WallNowMs());
      if (!fin.ok()) return finish_and_cancel(fin.status());
      if (!*conn || (*conn)->closed())
        return finish_and_cancel(Unavailable("DC closed the connection"));
      (*conn)->Call(std::move(fin).value(), [=](Result<pb::Envelope> rep2) {
        if (!rep2.ok()) return finish_and_cancel(rep2.status());
        finish_and_cancel(client->OnFinishReply(rep2.value(), WallNowMs()));
      });
    });
  }, timeout_ms);
}

Status WriteCaKeyIfAbsent(const std::string& path, const Bytes& ca) {
  if (FileExists(path)) {
    Bytes have;
    MS_RETURN_IF_ERROR(ReadSmallFile(path, crypto::kCaPublicKeyBytes, &have));
    if (have != ca)
      return Status(Code::kPermissionDenied,
                    path + " holds another CA key than the DC that enrolled this node");
    return Status::Ok();
  }
  return WriteFileDurable(path, ca);
}

// Sets knob `name` to `value` unless the config names another value.
Status Adopt(Config* cfg, const std::string& name, const std::string& value) {
  if (name.empty()) return Status::Ok();
  if (cfg->IsSet(name) && !cfg->Str(name).empty() && cfg->Str(name) != value)
    return InvalidArgument(name + " is " + cfg->Str(name) +
                           " in the configuration but the node's certificate says " + value);
  return cfg->Set(name, value, "certificate");
}

}  // namespace

std::vector<Knob> NodeEnrolmentKnobs() {
  return {
      {"enrolment_token", "",
       "one-time token from 'mistore-dc enroll': on first start the node creates its key, "
       "redeems the token at enrolment_dc and stores its certificate (then runs secure)"},
      {"enrolment_dc", "",
       "address of the DC's enrolment listener (its enrol_listen), for enrolment and renewal"},
      {"cert_renew_at_fraction", "0.66",
       "renew the certificate once this fraction of its lifetime has passed (0..1)"},
  };
}

std::vector<Knob> WithNodeEnrolmentKnobs(std::vector<Knob> knobs) {
  for (Knob& k : NodeEnrolmentKnobs()) knobs.push_back(std::move(k));
  return knobs;
}

IdentityPaths IdentityFilePaths(const Config& cfg) {
  const std::string dir = cfg.Str("data_dir");
  auto pick = [&](const char* knob, const char* file) {
    return cfg.Str(knob).empty() ? dir + "/" + file : cfg.Str(knob);
  };
  return {pick("node_key_file", "node.key"), pick("node_cert_file", "node.cert"),
          pick("ca_public_key_file", "ca.pub")};
}

Result<Outcome> RunEnrolmentExchange(const std::string& dc_addr, ClientParams params,
                                     const noise::KeyPair& key, uint64_t timeout_ms) {
  MS_ASSIGN_OR_RETURN(EnrolClient c, EnrolClient::Create(std::move(params), key));
  auto client = std::make_shared<EnrolClient>(std::move(c));
  std::optional<Result<Outcome>> result;
  {
    EventLoop loop(1);
    StartExchange(&loop, dc_addr, client, timeout_ms, [&](Result<Outcome> r) {
      result = std::move(r);
      loop.Stop();
    });
    loop.Run();
  }
  if (!result) return Internal("enrolment exchange ended without a result");
  return std::move(*result);
}

Status PrepareNodeIdentity(Config* cfg, crypto::NodeRole role, const IdentityKnobNames& knobs) {
  const std::string token_text = cfg->Str("enrolment_token");
  if (token_text.empty()) return Status::Ok();
  MS_RETURN_IF_ERROR(RenewFraction(*cfg).status());
  const IdentityPaths paths = IdentityFilePaths(*cfg);
  MS_RETURN_IF_ERROR(MakeDirs(cfg->Str("data_dir")));
  if (!FileExists(paths.cert)) {
    if (cfg->Str("enrolment_dc").empty())
      return InvalidArgument("enrolment_token is set but enrolment_dc (the DC's enrol_listen) "
                             "is not");
    MS_ASSIGN_OR_RETURN(Token token, ParseToken(token_text));
    noise::KeyPair key;
    if (FileExists(paths.key)) {
      MS_ASSIGN_OR_RETURN(key, ReadNodeKeyFile(paths.key));
    } else {
      key = noise::KeyPair::Generate();
      MS_RETURN_IF_ERROR(WriteNodeKeyFile(paths.key, key));
    }
    ClientParams params;
    params.role = role;
    params.token = std::move(token);
    if (FileExists(paths.ca)) {
      MS_RETURN_IF_ERROR(
          ReadSmallFile(paths.ca, crypto::kCaPublicKeyBytes, &params.ca_public_key));
    }
    MS_INFO("enrol", "enrolling with the DC",
            "dc=" + cfg->Str("enrolment_dc") + " role=" + crypto::NodeRoleName(role) +
                " key=" + paths.key);
    auto out = RunEnrolmentExchange(cfg->Str("enrolment_dc"), std::move(params), key);
    if (!out.ok())
      return Status(out.status().code(), "enrolment failed: " + out.status().message());
    MS_RETURN_IF_ERROR(WriteCaKeyIfAbsent(paths.ca, out->ca_public_key));
    MS_RETURN_IF_ERROR(WriteFileDurable(paths.cert, out->certificate_bytes));
    MS_INFO("enrol", "enrolled",
            "node=" + std::to_string(out->certificate.node_id) +
                " role=" + crypto::NodeRoleName(out->certificate.role) +
                " region=" + out->certificate.region + " cert=" + paths.cert +
                " expires_ms=" + std::to_string(out->certificate.expires_ms));
  }
  // An enrolled node: its certificate decides who it is.
  Bytes raw;
  MS_RETURN_IF_ERROR(ReadSmallFile(paths.cert, crypto::kCertBytesMax, &raw));
  auto cert = crypto::ParseCertificate(raw);
  if (!cert.ok()) return Status(cert.status().code(), paths.cert + ": " + cert.status().message());
  if (cert->role != role)
    return InvalidArgument(paths.cert + " is a " + crypto::NodeRoleName(cert->role) +
                           " certificate");
  MS_RETURN_IF_ERROR(cfg->Set("secure", "true", "enrolment"));
  MS_RETURN_IF_ERROR(cfg->Set("node_key_file", paths.key, "enrolment"));
  MS_RETURN_IF_ERROR(cfg->Set("node_cert_file", paths.cert, "enrolment"));
  MS_RETURN_IF_ERROR(cfg->Set("ca_public_key_file", paths.ca, "enrolment"));
  MS_RETURN_IF_ERROR(Adopt(cfg, knobs.node_id, std::to_string(cert->node_id)));
  MS_RETURN_IF_ERROR(Adopt(cfg, knobs.region, cert->region));
  MS_RETURN_IF_ERROR(Adopt(cfg, knobs.subscriber, cert->subscriber));
  return Status::Ok();
}

// ---- renewal ------------------------------------------------------------------

RenewalSchedule::RenewalSchedule(double fraction, uint64_t retry_ms_min, uint64_t retry_ms_max)
    : fraction_(fraction), retry_min_(retry_ms_min), retry_max_(retry_ms_max) {
  MS_ASSERT(fraction > 0.0 && fraction < 1.0 && retry_ms_min > 0 && retry_ms_min <= retry_ms_max);
}

void RenewalSchedule::OnCertificate(const crypto::Certificate& cert) {
  const uint64_t life = cert.expires_ms > cert.issued_ms ? cert.expires_ms - cert.issued_ms : 0;
  next_ms_ = cert.issued_ms + uint64_t(double(life) * fraction_);
  expires_ms_ = cert.expires_ms;
  failures_ = 0;
}

void RenewalSchedule::OnFailure(uint64_t now_ms) {
  const uint64_t shift = std::min<uint64_t>(failures_, 20);
  const uint64_t backoff = std::min(retry_max_, retry_min_ << shift);
  failures_++;
  next_ms_ = now_ms + backoff;
  // Keep trying before the expiry rather than after it: the last attempt is
  // squeezed in half-way to the expiry.
  if (expires_ms_ > now_ms && next_ms_ >= expires_ms_)
    next_ms_ = now_ms + (expires_ms_ - now_ms) / 2;
}

CertRenewer::CertRenewer(EventLoop* loop, const Config& cfg, ConnectionLimits limits,
                         crypto::NodeRole role)
    : loop_(loop),
      cfg_(cfg),
      limits_(std::move(limits)),
      role_(role),
      schedule_(RenewFraction(cfg).ok() ? RenewFraction(cfg).value() : 0.66) {}

void CertRenewer::Start() {
  if (!limits_.secure || cfg_.Str("enrolment_dc").empty()) return;
  schedule_.OnCertificate(limits_.secure->channel.identity->cert);
  Arm();
}

void CertRenewer::Arm() {
  const uint64_t now = WallNowMs();
  const uint64_t at = schedule_.next_attempt_ms();
  // Timers run on loop time; re-check at least every minute against the
  // wall clock that certificates use.
  const uint64_t delay = at > now ? std::min<uint64_t>(at - now, 60000) : 0;
  timer_ = loop_->After(delay, [this] {
    timer_ = 0;
    if (schedule_.Due(WallNowMs()))
      Attempt();
    else
      Arm();
  });
}

void CertRenewer::Attempt() {
  const secure::Identity& id = *limits_.secure->channel.identity;
  ClientParams p;
  p.role = role_;
  p.current_certificate = id.cert_bytes;
  p.ca_public_key = limits_.secure->channel.ca_public_key;
  auto c = EnrolClient::Create(std::move(p), id.static_key);
  if (!c.ok()) {
    MS_ERROR("enrol", "cannot renew the certificate", "error=\"" + c.status().message() + "\"");
    return;
  }
  auto client = std::make_shared<EnrolClient>(std::move(c).value());
  const std::string cert_path = IdentityFilePaths(cfg_).cert;
  StartExchange(loop_, cfg_.Str("enrolment_dc"), client, kEnrolExchangeTimeoutMs,
                [this, cert_path](Result<Outcome> r) {
                  Status st = r.ok() ? WriteFileDurable(cert_path, r->certificate_bytes)
                                     : r.status();
                  if (st.ok()) st = SetIdentityCertificate(limits_, r->certificate_bytes);
                  if (!st.ok()) {
                    const uint64_t now = WallNowMs();
                    schedule_.OnFailure(now);
                    MS_WARN("enrol", "certificate renewal failed; will retry",
                            "error=\"" + st.message() + "\" retry_in_ms=" +
                                std::to_string(schedule_.next_attempt_ms() - now));
                  } else {
                    renewals_++;
                    schedule_.OnCertificate(r->certificate);
                    MS_INFO("enrol", "certificate renewed",
                            "node=" + std::to_string(r->certificate.node_id) +
                                " expires_ms=" + std::to_string(r->certificate.expires_ms));
                  }
                  Arm();
                });
}

}  // namespace mistore::enrol
