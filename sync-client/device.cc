#include "sync-client/device.h"

#include <vector>

#include "shared/core/config.h"
#include "shared/store/file_util.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/enrolment_node.h"

namespace mistore {
namespace {

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos
             ? "."
             : (slash == 0 ? "/" : path.substr(0, slash));
}

}  // namespace

Result<crypto::Certificate> ReadDeviceCertificate(
    const std::string& cert_file) {
  if (!FileExists(cert_file))
    return NotFound("this device is not enrolled (no " + cert_file + ")");
  Bytes raw;
  MS_RETURN_IF_ERROR(ReadSmallFile(cert_file, crypto::kCertBytesMax, &raw));
  auto cert = crypto::ParseCertificate(raw);
  if (!cert.ok())
    return Status(cert.status().code(),
                  cert_file + ": " + cert.status().message());
  if (cert->role != crypto::NodeRole::kClient)
    return InvalidArgument(cert_file + " is a " +
                           crypto::NodeRoleName(cert->role) +
                           " certificate, not a device's");
  return cert;
}

Result<crypto::Certificate> EnrollDevice(const std::string& token,
                                         const std::string& dc_addr,
                                         const DeviceIdentityFiles& files,
                                         const std::string& subscriber) {
  // The nodes' start-up step (enrolment_node.h) over a config of its own.
  std::vector<Knob> knobs =
      enrol::WithNodeEnrolmentKnobs(SecureTransportKnobs());
  knobs.push_back({"data_dir", "", "where the identity files go"});
  knobs.push_back({"subscriber", "", "the subscriber this device acts for"});
  Config cfg(std::move(knobs));
  const std::string where = "mistore enroll";
  MS_RETURN_IF_ERROR(cfg.Set("enrolment_token", token, where));
  MS_RETURN_IF_ERROR(cfg.Set("enrolment_dc", dc_addr, where));
  MS_RETURN_IF_ERROR(cfg.Set("data_dir", DirOf(files.cert), where));
  MS_RETURN_IF_ERROR(cfg.Set("node_key_file", files.key, where));
  MS_RETURN_IF_ERROR(cfg.Set("node_cert_file", files.cert, where));
  MS_RETURN_IF_ERROR(cfg.Set("ca_public_key_file", files.ca, where));
  if (!subscriber.empty())
    MS_RETURN_IF_ERROR(cfg.Set("subscriber", subscriber, where));
  MS_RETURN_IF_ERROR(MakeDirs(DirOf(files.key)));
  MS_RETURN_IF_ERROR(MakeDirs(DirOf(files.ca)));
  MS_RETURN_IF_ERROR(enrol::PrepareNodeIdentity(&cfg, crypto::NodeRole::kClient,
                                                {"", "", "subscriber"}));
  return ReadDeviceCertificate(files.cert);
}

}  // namespace mistore
