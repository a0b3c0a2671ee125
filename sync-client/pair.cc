#include "sync-client/pair.h"

// The generated protobuf header first: <fcntl.h> defines LOCK_* macros that
// clash with the LockType enum's values.
#include "shared/store/file_util.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/loop.h"
#include "shared/wire/envelope.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace mistore {

namespace {
constexpr size_t kCredentialBytes = 32;

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
}  // namespace

Status PairWithAgent(const std::string& agent_addr, const std::string& code,
                     const std::string& device, const std::string& pairing_file,
                     uint64_t timeout_ms) {
  std::optional<Result<pb::Envelope>> reply;
  {
    EventLoop loop(1);
    ConnectionLimits limits;
    limits.call_timeout_ms = timeout_ms;
    Connection::Ptr conn;
    Dial(&loop, agent_addr, limits, [&](Result<Connection::Ptr> r) {
      if (!r.ok()) {
        reply = Result<pb::Envelope>(Unavailable("cannot reach gateway agent at " + agent_addr +
                                                 ": " + r.status().message()));
        loop.Stop();
        return;
      }
      conn = r.value();
      pb::Envelope req;
      req.mutable_pair_device()->set_code(code);
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
  if (!(*reply)->has_pair_device_reply() ||
      (*reply)->pair_device_reply().credential().size() != kCredentialBytes)
    return ProtocolError("the agent answered without a credential");
  return WriteSecretFile(pairing_file, ToHex((*reply)->pair_device_reply().credential()) + "\n");
}

Result<Bytes> ReadPairingCredential(const std::string& pairing_file) {
  struct stat st;
  if (::stat(pairing_file.c_str(), &st) != 0)
    return NotFound("this device is not paired (no " + pairing_file + ")");
  if (st.st_mode & 077)
    return Status(Code::kPermissionDenied,
                  pairing_file + " is accessible by group or others (chmod 600 it)");
  MS_ASSIGN_OR_RETURN(Bytes raw, ReadFileBytes(pairing_file, 128));
  std::string text(raw.begin(), raw.end());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  Bytes cred;
  if (!FromHex(text, &cred) || cred.size() != kCredentialBytes)
    return Corrupt(pairing_file + " is not a pairing credential");
  return cred;
}

}  // namespace mistore
