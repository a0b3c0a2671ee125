#include "dc-backend/enroll.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "shared/core/assert.h"
#include "shared/core/log.h"
#include "shared/store/file_util.h"

namespace mistore::enroll {

namespace {

uint64_t WallNowMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

// Writes `data` to a new file `path` with `mode` (O_EXCL: never overwrites).
Status WriteNewFile(const std::string& path, const uint8_t* data, size_t len, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return IoError("cannot create " + path + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, data, len);
  bool ok = n == ssize_t(len) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return IoError("cannot write " + path);
  return Status::Ok();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<uint32_t> ParseU32(const std::string& s, const char* what) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v > UINT32_MAX)
    return InvalidArgument(std::string(what) + " '" + s + "' is not a number");
  return uint32_t(v);
}

}  // namespace

Result<crypto::CaKey> LoadOrCreateCa(const std::string& data_dir) {
  const std::string key_path = data_dir + "/ca.key";
  const std::string pub_path = data_dir + "/ca.pub";
  if (!Exists(key_path)) {
    ::mkdir(data_dir.c_str(), 0700);
    crypto::CaKey ca = crypto::CaKey::Generate();
    MS_RETURN_IF_ERROR(
        WriteNewFile(key_path, ca.secret_key().data(), ca.secret_key().size(), 0600));
    if (!Exists(pub_path))
      MS_RETURN_IF_ERROR(
          WriteNewFile(pub_path, ca.public_key().data(), ca.public_key().size(), 0644));
    MS_INFO("dc", "created the cluster's CA key", "path=" + key_path);
    return ca;
  }
  struct stat st;
  if (::stat(key_path.c_str(), &st) != 0) return IoError("cannot stat " + key_path);
  if (st.st_mode & 077)
    return Status(Code::kPermissionDenied,
                  key_path + " is accessible by group or others (chmod 600 it)");
  Bytes raw;
  MS_RETURN_IF_ERROR(ReadSmallFile(key_path, crypto::kCaSecretKeyBytes, &raw));
  auto ca = crypto::CaKey::FromSecretKey(raw);
  sodium_memzero(raw.data(), raw.size());
  if (!ca.ok()) return Status(ca.status().code(), key_path + ": " + ca.status().message());
  if (!Exists(pub_path))
    MS_RETURN_IF_ERROR(
        WriteNewFile(pub_path, ca->public_key().data(), ca->public_key().size(), 0644));
  return ca;
}

Status IssueNodeFiles(const crypto::CaKey& ca, const IssueRequest& req,
                      const std::string& out_prefix, uint64_t now_ms) {
  if (req.node_id == 0 && req.role != crypto::NodeRole::kDc)
    return InvalidArgument("node id 0 is reserved");
  noise::KeyPair kp = noise::KeyPair::Generate();
  crypto::Certificate c;
  c.node_id = req.node_id;
  c.role = req.role;
  randombytes_buf(&c.serial, sizeof c.serial);
  c.issued_ms = now_ms;
  c.expires_ms = now_ms + req.valid_ms;
  c.static_public_key = kp.public_key;
  c.region = req.region;
  c.subscriber = req.subscriber;
  MS_ASSIGN_OR_RETURN(Bytes cert, ca.Sign(&c));
  MS_RETURN_IF_ERROR(WriteNodeKeyFile(out_prefix + ".key", kp));
  const std::string cert_path = out_prefix + ".cert";
  ::unlink(cert_path.c_str());  // a re-issued key gets a new certificate
  return WriteNewFile(cert_path, cert.data(), cert.size(), 0644);
}

Result<std::set<uint32_t>> RevokedNodes(const std::string& data_dir) {
  const std::string path = data_dir + "/revoked";
  std::set<uint32_t> out;
  if (!Exists(path)) return out;
  Bytes raw;
  MS_RETURN_IF_ERROR(ReadSmallFile(path, kRevokedNodesMax * 11, &raw));
  std::string line;
  for (size_t i = 0; i <= raw.size(); i++) {
    if (i == raw.size() || raw[i] == '\n') {
      if (!line.empty()) {
        MS_ASSIGN_OR_RETURN(uint32_t id, ParseU32(line, "revoked node id"));
        out.insert(id);
      }
      line.clear();
    } else {
      line.push_back(char(raw[i]));
    }
  }
  return out;
}

Result<DcIdentity> LoadOrCreateDcIdentity(const std::string& dir) {
  MS_ASSIGN_OR_RETURN(crypto::CaKey ca, LoadOrCreateCa(dir));
  const std::string prefix = dir + "/dc";
  if (!Exists(prefix + ".key")) {
    IssueRequest req;
    req.role = crypto::NodeRole::kDc;
    req.node_id = 0;
    req.region = "dc";
    req.valid_ms = 10 * kCertValidMsDefault;
    MS_RETURN_IF_ERROR(IssueNodeFiles(ca, req, prefix, WallNowMs()));
  }
  MS_ASSIGN_OR_RETURN(noise::KeyPair kp, ReadNodeKeyFile(prefix + ".key"));
  Bytes cert;
  MS_RETURN_IF_ERROR(ReadSmallFile(prefix + ".cert", crypto::kCertBytesMax, &cert));
  auto id = secure::Identity::Create(std::move(kp), std::move(cert));
  if (!id.ok()) return Status(id.status().code(), prefix + ".cert: " + id.status().message());
  DcIdentity out{std::move(ca), std::make_shared<secure::Identity>(std::move(id).value())};
  return out;
}

ConnectionLimits DcSecureLimits(ConnectionLimits base, const Config& cfg) {
  if (!cfg.Bool("secure")) {
    WarnInsecure();
    return base;
  }
  const std::string dir = cfg.Str("data_dir");
  auto dc_id = LoadOrCreateDcIdentity(dir);
  if (!dc_id.ok()) FatalExit("DC identity", dc_id.status().ToString().c_str());
  const std::string prefix = dir + "/dc";
  // Enrolled POPs and gateways renew at the enrolment listener; the DC's
  // own listener serves POPs.
  auto sc = LoadSecureConfig(prefix + ".key", prefix + ".cert", dir + "/ca.pub",
                             {crypto::NodeRole::kPop});
  if (!sc.ok()) FatalExit("DC identity", sc.status().ToString().c_str());
  sc.value()->channel.handshake_timeout_ms = uint64_t(cfg.Int("handshake_timeout_ms"));
  sc.value()->channel.cipher = CipherFromKnob(cfg);
  auto revoked = RevokedNodes(dir);
  if (revoked.ok()) *sc.value()->revoked = std::move(revoked).value();
  base.secure = std::move(sc).value();
  return base;
}

// ---- enrolment over the network ---------------------------------------------

std::vector<Knob> EnrolKnobs() {
  return {
      {"enrol_listen", "off",
       "address where new nodes redeem enrolment tokens and enrolled nodes renew their "
       "certificates (off: no enrolment over the network)"},
      {"cert_lifetime_s", "2592000",
       "lifetime of the certificates issued at enrolment and renewal, seconds", Knob::kInt},
      {"enrol_node_id_first", "100000",
       "first node id the DC assigns at enrolment (ids below are left to 'issue')", Knob::kInt},
      {"role", "",
       "enroll subcommand: the role the token enrols (gateway, pop, or client: a "
       "subscriber's device working directly through a POP)"},
      {"region", "", "enroll subcommand: the region of the node the token enrols"},
      {"subscriber", "", "enroll subcommand: the subscriber owning the gateway or device"},
      {"expiry_s", "3600", "enroll subcommand: seconds the token stays valid", Knob::kInt},
  };
}

namespace {

std::string RoleText(crypto::NodeRole r) { return crypto::NodeRoleName(r); }

// "key=value" lines -> map; kCorrupt on a malformed line.
Result<std::map<std::string, std::string>> ParseRecord(const std::string& path, const Bytes& raw) {
  std::map<std::string, std::string> kv;
  std::string line;
  for (size_t i = 0; i <= raw.size(); i++) {
    if (i < raw.size() && raw[i] != '\n') {
      line.push_back(char(raw[i]));
      continue;
    }
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return Corrupt(path + ": malformed line '" + line + "'");
    kv[line.substr(0, eq)] = line.substr(eq + 1);
    line.clear();
  }
  return kv;
}

Result<enrol::TokenRecord> ReadRecord(const std::string& path) {
  Bytes raw;
  MS_RETURN_IF_ERROR(ReadSmallFile(path, 4096, &raw));
  MS_ASSIGN_OR_RETURN(auto kv, ParseRecord(path, raw));
  enrol::TokenRecord r;
  if (!FromHex(kv["verifier"], &r.verifier) || r.verifier.size() != enrol::kVerifierBytes)
    return Corrupt(path + ": bad verifier");
  auto role = crypto::ParseNodeRole(kv["role"]);
  if (!role.ok()) return Corrupt(path + ": bad role");
  r.role = role.value();
  r.region = kv["region"];
  r.subscriber = kv["subscriber"];
  char* end = nullptr;
  r.expires_ms = std::strtoull(kv["expires_ms"].c_str(), &end, 10);
  if (kv["expires_ms"].empty() || *end != '\0') return Corrupt(path + ": bad expires_ms");
  return r;
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + dir + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("cannot fsync " + dir);
  return Status::Ok();
}

}  // namespace

FileEnrolStore::FileEnrolStore(std::string data_dir, uint32_t first_node_id)
    : data_dir_(std::move(data_dir)),
      dir_(data_dir_ + "/enrolment"),
      first_node_id_(first_node_id) {}

Result<std::optional<enrol::TokenRecord>> FileEnrolStore::Find(const Bytes& token_id) {
  const std::string base = dir_ + "/" + ToHex(token_id);
  for (bool used : {false, true}) {
    const std::string path = base + (used ? ".used" : ".token");
    if (!Exists(path)) continue;
    MS_ASSIGN_OR_RETURN(enrol::TokenRecord r, ReadRecord(path));
    r.used = used;
    return std::optional<enrol::TokenRecord>(std::move(r));
  }
  return std::optional<enrol::TokenRecord>();
}

Status FileEnrolStore::Consume(const Bytes& token_id, uint32_t node_id) {
  const std::string base = dir_ + "/" + ToHex(token_id);
  // rename(2) is atomic: of two redemptions of one token only one succeeds.
  if (::rename((base + ".token").c_str(), (base + ".used").c_str()) != 0) {
    if (errno == ENOENT) return Status(Code::kAborted, "enrolment token already used");
    return IoError("cannot consume token " + base + ": " + std::strerror(errno));
  }
  MS_RETURN_IF_ERROR(FsyncDir(dir_));
  int fd = ::open((base + ".used").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + base + ".used");
  std::string line = "node_id=" + std::to_string(node_id) + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return IoError("cannot write " + base + ".used");
  return Status::Ok();
}

Result<uint32_t> FileEnrolStore::AllocateNodeId() {
  const std::string path = dir_ + "/next_node_id";
  uint64_t next = first_node_id_;
  if (Exists(path)) {
    Bytes raw;
    MS_RETURN_IF_ERROR(ReadSmallFile(path, 32, &raw));
    std::string text(raw.begin(), raw.end());
    while (!text.empty() && text.back() == '\n') text.pop_back();
    char* end = nullptr;
    next = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') return Corrupt(path + " is not a number");
  }
  if (next == 0 || next >= UINT32_MAX) return ResourceExhausted("node ids exhausted");
  MS_RETURN_IF_ERROR(MakeDirs(dir_));
  const std::string text = std::to_string(next + 1) + "\n";
  MS_RETURN_IF_ERROR(
      WriteFileDurable(path, reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  return uint32_t(next);
}

bool FileEnrolStore::IsRevoked(uint32_t node_id) {
  auto r = RevokedNodes(data_dir_);
  // An unreadable revocation list refuses renewals rather than granting them.
  return !r.ok() || r->count(node_id) > 0;
}

Status FileEnrolStore::Add(const Bytes& token_id, const enrol::TokenRecord& rec,
                           uint64_t now_ms) {
  ::mkdir(data_dir_.c_str(), 0700);
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return IoError("cannot create " + dir_ + ": " + std::strerror(errno));
  size_t outstanding = 0;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.size() < 6 || name.compare(name.size() - 6, 6, ".token") != 0) continue;
      auto r = ReadRecord(dir_ + "/" + name);
      if (r.ok() && r->expires_ms + kExpiredTokenKeptMs <= now_ms) {
        ::unlink((dir_ + "/" + name).c_str());
        continue;
      }
      if (!r.ok() || r->expires_ms > now_ms) outstanding++;
    }
    ::closedir(d);
  }
  if (outstanding >= kTokensOutstandingMax)
    return ResourceExhausted(std::to_string(outstanding) +
                             " enrolment tokens are outstanding (the limit); wait for some to "
                             "be redeemed or expire");
  std::string text = "verifier=" + ToHex(rec.verifier) + "\nrole=" + RoleText(rec.role) +
                     "\nregion=" + rec.region + "\nsubscriber=" + rec.subscriber +
                     "\nexpires_ms=" + std::to_string(rec.expires_ms) + "\n";
  const std::string path = dir_ + "/" + ToHex(token_id) + ".token";
  if (Exists(path)) return Internal("token id collision");
  return WriteNewFile(path, reinterpret_cast<const uint8_t*>(text.data()), text.size(), 0600);
}

EnrolService::EnrolService(EventLoop* loop, const Config& cfg, MetricsRegistry* metrics)
    : loop_(loop), cfg_(cfg) {
  struct C {
    const char* result;
    Counter* c;
  };
  for (C c : {C{"enrolled", &stats_.enrolled}, C{"renewed", &stats_.renewed},
              C{"refused_unknown", &stats_.refused_unknown},
              C{"refused_used", &stats_.refused_used},
              C{"refused_expired", &stats_.refused_expired},
              C{"refused_role", &stats_.refused_role},
              C{"refused_revoked", &stats_.refused_revoked},
              C{"refused_other", &stats_.refused_other}}) {
    Counter* counter = c.c;
    metrics->AddCounterFn("mistore_dc_enrolments_total",
                          "enrolment and renewal requests at the DC, by outcome",
                          [counter] { return double(counter->value()); }, {{"result", c.result}});
  }
}

EnrolService::~EnrolService() { Close(); }

Result<std::string> EnrolService::Start() {
  const std::string addr = cfg_.Str("enrol_listen");
  if (addr == "off" || addr.empty()) return std::string("off");
  if (cfg_.Int("cert_lifetime_s") < 1 || cfg_.Int("enrol_node_id_first") < 1 ||
      cfg_.Int("enrol_node_id_first") >= int64_t(UINT32_MAX))
    return InvalidArgument("cert_lifetime_s and enrol_node_id_first must be positive");
  const std::string dir = cfg_.Str("data_dir");
  MS_ASSIGN_OR_RETURN(DcIdentity id, LoadOrCreateDcIdentity(dir));
  id_.emplace(std::move(id));
  store_ = std::make_unique<FileEnrolStore>(dir, uint32_t(cfg_.Int("enrol_node_id_first")));
  enrol::AuthorityParams p;
  p.cert_lifetime_ms = uint64_t(cfg_.Int("cert_lifetime_s")) * 1000;
  uint64_t seed = 0;
  randombytes_buf(&seed, sizeof seed);
  authority_ = std::make_unique<enrol::EnrolAuthority>(p, &id_->ca, id_->identity, store_.get(),
                                                       &stats_, seed);
  ConnectionLimits limits;  // plain framing: the exchange has its own handshake
  limits.frame_bytes_max = 16 << 10;
  limits.calls_in_flight_max = 4;
  limits.write_queue_bytes_max = 64 << 10;
  listener_ = std::make_unique<Listener>(loop_, limits,
                                         [this](const Connection::Ptr& c) { OnAccept(c); });
  MS_ASSIGN_OR_RETURN(std::string bound, listener_->Listen(addr));
  tick_ = loop_->Every(1000, [this] { authority_->OnTick(WallNowMs()); });
  return bound;
}

void EnrolService::Close() {
  if (tick_) loop_->Cancel(tick_);
  tick_ = 0;
  if (listener_) listener_->Close();
  auto conns = conns_;
  for (auto& [c, s] : conns) c->Close(Unavailable("shutting down"));
  conns_.clear();
}

void EnrolService::OnAccept(const Connection::Ptr& c) {
  conns_[c] = next_session_++;
  c->set_on_request([this](const Connection::Ptr& c, pb::Envelope&& env) {
    OnRequest(c, std::move(env));
  });
  c->set_on_close([this](const Connection::Ptr& c, const Status&) {
    auto it = conns_.find(c);
    if (it == conns_.end()) return;
    if (authority_) authority_->OnClosed(it->second);
    conns_.erase(it);
  });
}

// One handler per message type (EnrolAuthority::OnStart / OnFinish).
void EnrolService::OnRequest(const Connection::Ptr& c, pb::Envelope&& env) {
  auto it = conns_.find(c);
  if (it == conns_.end()) return;
  Result<pb::Envelope> reply = ProtocolError("the enrolment listener serves only enrolment");
  switch (env.body_case()) {
    case pb::Envelope::kEnrolStart:
      reply = authority_->OnStart(it->second, env.enrol_start(), WallNowMs(), c->peer());
      break;
    case pb::Envelope::kEnrolFinish:
      reply = authority_->OnFinish(it->second, env.enrol_finish(), WallNowMs(), c->peer());
      break;
    default:
      break;
  }
  if (!reply.ok()) return c->ReplyError(env.request_id(), reply.status());
  c->Reply(env.request_id(), std::move(reply).value());
}

bool IsEnrollSubcommand(const std::string& name) {
  return name == "enroll" || name == "issue" || name == "revoke";
}

namespace {

// mistore-dc enroll --role R --region R [--subscriber S] [--expiry-s N]
int RunEnroll(const Config& cfg, const std::vector<std::string>& args, FILE* out, FILE* err) {
  auto fail = [&](const Status& st) {
    std::fprintf(err, "mistore-dc enroll: %s\n", st.ToString().c_str());
    return 1;
  };
  if (args.size() != 1 || cfg.Str("role").empty() || cfg.Str("region").empty()) {
    std::fprintf(err,
                 "usage: mistore-dc enroll --role gateway|pop|client --region R [--subscriber S] "
                 "[--expiry-s N]\n");
    return 2;
  }
  auto role = crypto::ParseNodeRole(cfg.Str("role"));
  if (!role.ok() || *role == crypto::NodeRole::kDc) {
    std::fprintf(err, "mistore-dc enroll: --role must be gateway, pop or client\n");
    return 2;
  }
  // Gateways and clients (a subscriber's devices, issue 9) act for one
  // subscriber; POPs for none.
  const std::string subscriber = cfg.Str("subscriber");
  const bool needs_subscriber = *role != crypto::NodeRole::kPop;
  if (needs_subscriber == subscriber.empty()) {
    std::fprintf(err, "mistore-dc enroll: %s\n",
                 needs_subscriber ? "a gateway or client token needs --subscriber"
                                  : "a POP token takes no --subscriber");
    return 2;
  }
  if (cfg.Str("region").size() > crypto::kCertStringBytesMax ||
      subscriber.size() > crypto::kCertStringBytesMax || cfg.Int("expiry_s") < 1) {
    std::fprintf(err, "mistore-dc enroll: region/subscriber too long or --expiry-s < 1\n");
    return 2;
  }
  const std::string dir = cfg.Str("data_dir");
  auto ca = LoadOrCreateCa(dir);
  if (!ca.ok()) return fail(ca.status());
  enrol::Token token = enrol::NewToken(ca->public_key());
  enrol::TokenRecord rec;
  rec.verifier = enrol::TokenVerifier(token.secret);
  rec.role = *role;
  rec.region = cfg.Str("region");
  rec.subscriber = subscriber;
  const uint64_t now = WallNowMs();
  rec.expires_ms = now + uint64_t(cfg.Int("expiry_s")) * 1000;
  FileEnrolStore store(dir, uint32_t(std::max<int64_t>(1, cfg.Int("enrol_node_id_first"))));
  if (Status st = store.Add(token.id, rec, now); !st.ok()) return fail(st);
  std::fprintf(out, "%s\n", enrol::FormatToken(token).c_str());
  std::fprintf(err,
               "one-time %s enrolment token for region %s%s%s, valid %lld s (until %llu ms); "
               "the DC keeps only its hash\n",
               cfg.Str("role").c_str(), rec.region.c_str(),
               subscriber.empty() ? "" : ", subscriber ", subscriber.c_str(),
               (long long)cfg.Int("expiry_s"), (unsigned long long)rec.expires_ms);
  return 0;
}

}  // namespace

int RunEnrollSubcommand(const Config& cfg, const std::vector<std::string>& args, FILE* out,
                        FILE* err) {
  if (args[0] == "enroll") return RunEnroll(cfg, args, out, err);
  const std::string dir = cfg.Str("data_dir");
  auto fail = [&](const Status& st) {
    std::fprintf(err, "mistore-dc %s: %s\n", args[0].c_str(), st.ToString().c_str());
    return 1;
  };
  if (args[0] == "issue") {
    if (args.size() < 5 || args.size() > 7) {
      std::fprintf(err,
                   "usage: mistore-dc issue ROLE NODE_ID REGION OUT_PREFIX [SUBSCRIBER|-] "
                   "[VALID_MS]\n");
      return 2;
    }
    IssueRequest req;
    auto role = crypto::ParseNodeRole(args[1]);
    if (!role.ok()) return fail(role.status());
    req.role = role.value();
    auto id = ParseU32(args[2], "node id");
    if (!id.ok()) return fail(id.status());
    req.node_id = id.value();
    req.region = args[3];
    if (args.size() > 5 && args[5] != "-") req.subscriber = args[5];
    if (args.size() > 6) {
      char* end = nullptr;
      req.valid_ms = std::strtoull(args[6].c_str(), &end, 10);
      if (*end != '\0' || args[6].empty()) return fail(InvalidArgument("bad VALID_MS"));
    }
    if ((req.role == crypto::NodeRole::kGateway || req.role == crypto::NodeRole::kClient) &&
        req.subscriber.empty())
      return fail(InvalidArgument("a gateway or client certificate needs a SUBSCRIBER"));
    auto ca = LoadOrCreateCa(dir);
    if (!ca.ok()) return fail(ca.status());
    Status st = IssueNodeFiles(ca.value(), req, args[4], WallNowMs());
    if (!st.ok()) return fail(st);
    std::fprintf(out, "issued %s certificate for node %u: %s.key %s.cert (CA key: %s/ca.pub)\n",
                 args[1].c_str(), req.node_id, args[4].c_str(), args[4].c_str(), dir.c_str());
    return 0;
  }
  // revoke NODE_ID
  if (args.size() != 2) {
    std::fprintf(err, "usage: mistore-dc revoke NODE_ID\n");
    return 2;
  }
  auto id = ParseU32(args[1], "node id");
  if (!id.ok()) return fail(id.status());
  auto current = RevokedNodes(dir);
  if (!current.ok()) return fail(current.status());
  if (current->size() >= kRevokedNodesMax)
    return fail(ResourceExhausted("revocation list is full"));
  const std::string path = dir + "/revoked";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return fail(IoError("cannot open " + path + ": " + std::strerror(errno)));
  std::string line = std::to_string(id.value()) + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return fail(IoError("cannot write " + path));
  std::fprintf(out, "revoked node %u (POPs refuse it from their next cluster map)\n", id.value());
  return 0;
}

}  // namespace mistore::enroll
