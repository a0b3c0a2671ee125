#include "sync-client/pair.h"

// The generated protobuf header first: <fcntl.h> defines LOCK_* macros that
// clash with the LockType enum's values.
#include "shared/store/file_util.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/loop.h"
#include "shared/wire/device_pairing.h"
#include "shared/wire/envelope.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace mistore {

namespace {
constexpr char kHeader[] = "mistore-pairing v2";

Status WriteSecretFile(const std::string& path, const std::string& data) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    const std::string dir = path.substr(0, slash);
    MS_RETURN_IF_ERROR(MakeDirs(dir));
    (void)::chmod(dir.c_str(), 0700);
  }
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot create " + tmp + ": " + std::strerror(errno));
  (void)::fchmod(fd, 0600);
  bool ok = ::write(fd, data.data(), data.size()) == ssize_t(data.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return IoError("cannot write " + path);
  return Status::Ok();
}

Status Denied(std::string m) {
  return Status(Code::kPermissionDenied, std::move(m));
}
}  // namespace

Status PairWithAgent(const std::string& agent_addr, const std::string& code,
                     const std::string& device, const std::string& pairing_file,
                     uint64_t timeout_ms) {
  // This device's key: new at every pairing (an earlier pairing's key is
  // replaced with the file).
  auto link = std::make_shared<secure::DeviceLinkConfig>();
  link->static_key = noise::KeyPair::Generate();
  const Bytes code_hash = pairing::CodeHash(code);
  std::optional<Result<pb::Envelope>> reply;
  Bytes agent_key, handshake_hash;
  {
    EventLoop loop(1);
    ConnectionLimits limits;
    limits.call_timeout_ms = timeout_ms;
    auto sc = std::make_shared<SecureConfig>();
    sc->channel.device_link = link;
    sc->channel.handshake_timeout_ms = timeout_ms;
    limits.secure = std::move(sc);
    Connection::Ptr conn;
    Dial(&loop, agent_addr, limits, [&](Result<Connection::Ptr> r) {
      if (!r.ok()) {
        reply = Result<pb::Envelope>(Unavailable("cannot reach gateway agent at " + agent_addr +
                                                 ": " + r.status().message()));
        loop.Stop();
        return;
      }
      conn = r.value();
      agent_key = conn->peer_static_key();
      handshake_hash = conn->handshake_hash();
      pb::Envelope req;
      const Bytes proof =
          pairing::Proof(code_hash, /*from_device=*/true, handshake_hash);
      req.mutable_pair_device()->set_proof(
          std::string(proof.begin(), proof.end()));
      req.mutable_pair_device()->set_device(device);
      conn->Call(std::move(req), [&](Result<pb::Envelope> rep) {
        reply = std::move(rep);
        conn->Close(Unavailable("paired"));
        loop.Stop();
      });
    }, timeout_ms);
    loop.Run();
  }
  if (!reply) return Unavailable("no answer from the gateway agent");
  if (!reply->ok()) return reply->status();
  if (Status st = ResponseStatus(reply->value()); !st.ok()) return st;
  if (!(*reply)->has_pair_device_reply())
    return ProtocolError("the agent answered without a proof");
  const std::string& ap = (*reply)->pair_device_reply().agent_proof();
  if (!pairing::ProofsEqual(
          Bytes(ap.begin(), ap.end()),
          pairing::Proof(code_hash, /*from_device=*/false, handshake_hash)))
    return Denied(
        "the gateway agent at " + agent_addr +
        " did not prove it knows the pairing code (another host answered?); "
        "nothing was saved");
  if (agent_key.size() != noise::kDhLen)
    return ProtocolError("the agent proved no static key");
  const std::string text =
      std::string(kHeader) + "\ndevice_key " +
      ToHex(Bytes(link->static_key.private_key.data(),
                  link->static_key.private_key.data() +
                      link->static_key.private_key.size())) +
      "\nagent_key " + ToHex(agent_key) + "\n";
  return WriteSecretFile(pairing_file, text);
}

Result<secure::DeviceLinkConfig> ReadPairingFile(
    const std::string& pairing_file) {
  struct stat st;
  if (::stat(pairing_file.c_str(), &st) != 0)
    return NotFound("this device is not paired (no " + pairing_file + ")");
  if (st.st_mode & 077)
    return Denied(pairing_file +
                  " is accessible by group or others (chmod 600 it)");
  MS_ASSIGN_OR_RETURN(Bytes raw, ReadFileBytes(pairing_file, 512));
  std::string text(raw.begin(), raw.end());
  if (text.rfind(kHeader, 0) != 0) {
    Bytes old;
    std::string t = text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (FromHex(t, &old) && old.size() == 32)
      return Denied(pairing_file +
                    " holds a pairing credential of an older version (it was "
                    "sent in clear "
                    "and is no longer accepted): pair again with `mistore pair "
                    "CODE` using a "
                    "code from `mistore-agent pair`");
    return Corrupt(pairing_file + " is not a pairing file");
  }
  Bytes priv, agent;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    std::string line =
        text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? text.size() : nl + 1;
    if (line.rfind("device_key ", 0) == 0 && !FromHex(line.substr(11), &priv))
      return Corrupt(pairing_file + ": malformed device_key");
    if (line.rfind("agent_key ", 0) == 0 && !FromHex(line.substr(10), &agent))
      return Corrupt(pairing_file + ": malformed agent_key");
  }
  if (priv.size() != noise::kDhLen || agent.size() != noise::kDhLen)
    return Corrupt(pairing_file +
                   ": device_key and agent_key must be 32 bytes each");
  auto kp = noise::KeyPair::FromPrivate(priv);
  sodium_memzero(priv.data(), priv.size());
  if (!kp.ok()) return kp.status();
  secure::DeviceLinkConfig out;
  out.static_key = std::move(kp).value();
  out.peer_static_key = std::move(agent);
  return out;
}

Result<std::shared_ptr<const secure::DeviceLinkConfig>> DeviceLinkFor(
    const std::string& pairing_file) {
  auto link = std::make_shared<secure::DeviceLinkConfig>();
  auto r = pairing_file.empty()
               ? Result<secure::DeviceLinkConfig>(NotFound("no pairing file"))
               : ReadPairingFile(pairing_file);
  if (r.ok()) {
    *link = std::move(r).value();
  } else if (r.status().code() == Code::kNotFound) {
    link->static_key =
        noise::KeyPair::Generate();  // XX, served only if the agent allows
  } else {
    return r.status();
  }
  return std::shared_ptr<const secure::DeviceLinkConfig>(std::move(link));
}

}  // namespace mistore
