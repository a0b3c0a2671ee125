// Device enrolment, the device's side (issue 9): `mistore enroll TOKEN --dc
// ADDR` turns a one-time token (`mistore-dc enroll --role client
// --subscriber S`) into this device's identity for working directly through
// a POP (`mistore --pop ADDR ...`, client.h pop_addr): an X25519 key
// (device_key_file, mode 0600, created O_EXCL), the certificate the DC signs
// for the key it saw proven in the Noise handshake (device_cert_file, role
// client, subscriber S, a DC-assigned node id) and the DC's CA key
// (ca_public_key_file). The exchange and the file handling are the nodes'
// (shared/uvio/enrolment_node.h); the certificate's subscriber must be the
// configured one. Defaults: $XDG_CONFIG_HOME/mistore/device.key,
// device.cert, ca.pub. POPs check the certificate on every connection
// (pop-server/device_access.h).
// Threads: blocking calls on the calling thread (own EventLoop).
#pragma once

#include <string>

#include "shared/core/status.h"
#include "shared/crypto/cert.h"

namespace mistore {

struct DeviceIdentityFiles {
  std::string key, cert, ca;
};

// Redeems `token` at the DC's enrolment listener `dc_addr` (role client) and
// writes the identity files. With a certificate already in files.cert it
// enrols no more and returns that one. `subscriber` (if not empty) must be
// the certificate's (kInvalidArgument otherwise). Errors name the DC's
// refusal ("the DC refused: enrolment token already used"), an unreachable
// DC (kUnavailable), a key file of the wrong mode.
Result<crypto::Certificate> EnrollDevice(const std::string& token,
                                         const std::string& dc_addr,
                                         const DeviceIdentityFiles& files,
                                         const std::string& subscriber);

// The stored device certificate (parsed, signature not checked: the POP
// checks it); kNotFound when the device is not enrolled.
Result<crypto::Certificate> ReadDeviceCertificate(const std::string& cert_file);

}  // namespace mistore
