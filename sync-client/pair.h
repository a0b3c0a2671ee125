// Client pairing, the device's side (issue 4; the agent's side is
// gateway-agent/enrol_pairing.h): `mistore pair CODE` sends the code the
// gateway agent printed (`mistore-agent pair`) and stores the credential it
// answers with in the pairing file (default $XDG_CONFIG_HOME/mistore/pairing,
// mode 0600, directory 0700). Every later connection of the client presents
// it first (ClientHello, client.cc). An agent with paired devices refuses
// every other device: the client exits with kExitDenied (5) and says to pair.
// Threads: blocking calls on the calling thread (own EventLoop).
#pragma once

#include <string>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

// Redeems `code` at the agent and writes the credential to `pairing_file`.
// Errors: the agent's refusal (kPermissionDenied "wrong pairing code", ...),
// kUnavailable when the agent cannot be reached, kIo for the file.
Status PairWithAgent(const std::string& agent_addr, const std::string& code,
                     const std::string& device, const std::string& pairing_file,
                     uint64_t timeout_ms = 15000);

// The stored credential; kNotFound when this device is not paired;
// kPermissionDenied when the file is readable by group or others.
Result<Bytes> ReadPairingCredential(const std::string& pairing_file);

}  // namespace mistore
