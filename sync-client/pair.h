// Client pairing, the device's side (issue 4; the agent's side is
// gateway-agent/enrol_pairing.h). The link to the gateway agent is always the
// device flavour of the secure channel (shared/wire/secure_channel.h).
//
// `mistore pair CODE` creates this device's X25519 static key, opens a Noise
// XX channel to the agent, proves the code bound to the channel's handshake
// hash (shared/wire/device_pairing.h; the code never crosses the network),
// checks the agent's proof in return, and writes the pairing file: the
// device's private key and the agent's static public key, pinned (default
// $XDG_CONFIG_HOME/mistore/pairing, mode 0600, directory 0700; refused if
// group or others can read it). Every later connection is Noise IK with those
// keys: the agent knows the device from its first message, and the device
// talks only to the agent it paired with. A device without a pairing file
// dials with XX and a throwaway key (served only by an agent on the same
// host that has no paired device). An agent with paired devices refuses
// every other device: the client exits with kExitDenied (5) and says to
// pair. A pairing file of the older bearer-credential pairing is refused
// with the same advice (it holds no key).
//
// File format (text):
//   mistore-pairing v2
//   device_key <64 hex: X25519 private key>
//   agent_key <64 hex: the agent's X25519 public key>
//
// Threads: blocking calls on the calling thread (own EventLoop).
#pragma once

#include <memory>
#include <string>

#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/wire/secure_channel.h"

namespace mistore {

// Pairs with the agent at `agent_addr` using `code` and writes
// `pairing_file` (replacing any earlier pairing). Errors: the agent's
// refusal (kPermissionDenied "wrong pairing code", ...), kPermissionDenied
// when the agent cannot prove the code (another host answered),
// kUnavailable when the agent cannot be reached, kIo for the file.
Status PairWithAgent(const std::string& agent_addr, const std::string& code,
                     const std::string& device, const std::string& pairing_file,
                     uint64_t timeout_ms = 15000);

// The device-link keys for dialling the agent: from the pairing file (IK),
// or a fresh throwaway key (XX) when there is none (kNotFound is not an
// error here). Errors: kPermissionDenied when the file is readable by group
// or others or is an old bearer-credential pairing; kCorrupt when malformed.
Result<std::shared_ptr<const secure::DeviceLinkConfig>> DeviceLinkFor(
    const std::string& pairing_file);

// The pairing file's keys; kNotFound when this device is not paired.
Result<secure::DeviceLinkConfig> ReadPairingFile(
    const std::string& pairing_file);

}  // namespace mistore
