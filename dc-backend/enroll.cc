#include "dc-backend/enroll.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "shared/core/assert.h"
#include "shared/core/log.h"

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

ConnectionLimits DcSecureLimits(ConnectionLimits base, const Config& cfg) {
  if (!cfg.Bool("secure")) return base;
  const std::string dir = cfg.Str("data_dir");
  auto ca = LoadOrCreateCa(dir);
  if (!ca.ok()) FatalExit("CA key", ca.status().ToString().c_str());
  const std::string prefix = dir + "/dc";
  if (!Exists(prefix + ".key")) {
    IssueRequest req;
    req.role = crypto::NodeRole::kDc;
    req.node_id = 0;
    req.region = "dc";
    req.valid_ms = 10 * kCertValidMsDefault;
    Status st = IssueNodeFiles(ca.value(), req, prefix, WallNowMs());
    if (!st.ok()) FatalExit("DC identity", st.ToString().c_str());
  }
  auto sc = LoadSecureConfig(prefix + ".key", prefix + ".cert", dir + "/ca.pub",
                             {crypto::NodeRole::kPop});
  if (!sc.ok()) FatalExit("DC identity", sc.status().ToString().c_str());
  sc.value()->channel.handshake_timeout_ms = uint64_t(cfg.Int("handshake_timeout_ms"));
  auto revoked = RevokedNodes(dir);
  if (revoked.ok()) *sc.value()->revoked = std::move(revoked).value();
  base.secure = std::move(sc).value();
  return base;
}

bool IsEnrollSubcommand(const std::string& name) { return name == "issue" || name == "revoke"; }

int RunEnrollSubcommand(const Config& cfg, const std::vector<std::string>& args, FILE* out,
                        FILE* err) {
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
