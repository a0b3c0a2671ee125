// Pairing proofs for the device link (issue 4): the pure crypto shared by
// the gateway agent (gateway-agent/enrol_pairing.h) and the device
// (sync-client/pair.h). Pairing runs inside a Noise XX device channel
// (secure_channel.h, device flavour); the pairing code itself never crosses
// the network. Each side proves it knows the code, bound to this
// connection's handshake hash h:
//   code_hash    = BLAKE2b-256(normalized code)        (the agent stores this)
//   device proof = BLAKE2b-256(key = code_hash, "mistore-pair-v1 device" || h)
//   agent proof  = BLAKE2b-256(key = code_hash, "mistore-pair-v1 agent"  || h)
// h covers both static keys and both ephemerals, so a proof is worthless on
// any other connection (a relay has another h on each side), and each side
// knows the peer it paired with holds the code. The device sends its proof
// first; the agent answers only a correct one.
// Pure, no I/O; any thread.
#pragma once

#include <string>

#include "shared/core/bytes.h"

namespace mistore::pairing {

inline constexpr size_t kProofBytes = 32;
inline constexpr size_t kCodeHashBytes = 32;

// Upper case, separators ('-', ' ') removed, Crockford look-alikes folded
// (O -> 0, I/L -> 1).
std::string NormalizeCode(const std::string& code);
// BLAKE2b-256 of the normalized code.
Bytes CodeHash(const std::string& code);
// The proof of `code_hash` bound to `handshake_hash`, made by the device
// (from_device) or by the agent.
Bytes Proof(const Bytes& code_hash, bool from_device,
            const Bytes& handshake_hash);
// Constant-time comparison of two proofs (false if either has the wrong size).
bool ProofsEqual(const Bytes& a, const Bytes& b);

}  // namespace mistore::pairing
