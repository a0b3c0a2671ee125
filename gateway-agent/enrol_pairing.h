// Client pairing (issue 4): which of the subscriber's devices the gateway
// agent serves on its client port. The client port speaks only the device
// flavour of the secure channel (shared/wire/secure_channel.h: Noise XX to
// pair, Noise IK afterwards; plaintext is refused). `mistore-agent pair` (an
// operator on the gateway) makes a one-time pairing code valid for
// pair_code_ttl_s; a device running `mistore pair CODE` proves it knows the
// code inside an XX channel, bound to that channel's handshake hash
// (shared/wire/device_pairing.h; the code never crosses the network), and
// the agent records the device's static public key and proves the code back.
// Later connections are IK with the pinned keys; the agent serves a
// connection only if the key it proved is paired. Until the first device is
// paired, the agent also serves devices on its own host (a loopback peer),
// never the LAN: see docs/security.md "Client pairing".
//
// Files in data_dir/pairing/ (directory 0700, files 0600): `code` holds
// BLAKE2b-256 of the pending code, its expiry and the wrong attempts so far
// (the code is dropped after kPairAttemptsMax wrong ones, and when used);
// `devices` holds one line per paired device, "k1 <static key hex> <name>"
// (at most kPairedDevicesMax); `agent.key` is the agent's client-link
// static key (X25519, created on first start, refused if group or others can
// read it; separate from node.key so that enrolling the gateway, or not,
// never changes the key its devices pinned). Lines of the older
// bearer-credential pairing (a credential hash, no "k1") are dropped with a
// warning: those devices must pair again (their credential cannot be turned
// into a key).
//
// Ownership: PairingStore owns the in-memory copy of `devices`. Time comes in
// as arguments; randomness from libsodium. Threads: the agent's loop thread
// (small synchronous file writes at pairing time), or the `pair` subcommand.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/config.h"
#include "shared/core/status.h"
#include "shared/wire/noise.h"

namespace mistore {

inline constexpr size_t kPairedDevicesMax = 64;
inline constexpr int kPairAttemptsMax = 5;
inline constexpr size_t kPairDeviceNameBytesMax = 64;

// Wall-clock milliseconds (codes expire in wall time).
uint64_t PairingNowMs();
// pair_code_ttl_s, appended to the agent's knob table.
std::vector<Knob> WithPairingKnobs(std::vector<Knob> knobs);
// Opens the store of data_dir or exits (FatalExit) naming the problem.
class PairingStore;
PairingStore OpenPairingOrDie(const std::string& data_dir);
// data_dir/pairing/agent.key, created (O_EXCL, 0600) if absent. Errors:
// kPermissionDenied if group or others can read it, kIo.
Result<noise::KeyPair> LoadOrCreateAgentLinkKey(const std::string& data_dir);
// True for a peer address ("127.0.0.1:5000", "[::1]:5000") on this host.
bool IsLoopbackPeer(const std::string& peer);
// `mistore-agent pair`: prints a new code on `out`; returns the exit code.
int RunPairSubcommand(const Config& cfg, FILE* out, FILE* err);

class PairingStore {
 public:
  // Loads data_dir/pairing/devices (absent: no device paired).
  static Result<PairingStore> Open(const std::string& data_dir);

  // A new code "XXXXX-XXXXX" (50 bits, Crockford base32), replacing any
  // pending one, valid until now_ms + ttl_ms.
  Result<std::string> NewCode(uint64_t now_ms, uint64_t ttl_ms);
  // Redeems the pending code for the device whose static key `device_key`
  // the channel with handshake hash `handshake_hash` proved: `proof` must be
  // pairing::Proof(code hash, from_device, handshake_hash). Errors
  // (kPermissionDenied): "no pairing code pending", "pairing code expired",
  // "wrong pairing code" (counted; the code is dropped after
  // kPairAttemptsMax); kResourceExhausted when kPairedDevicesMax devices are
  // paired; kInvalidArgument for a key that is not 32 bytes. Returns the
  // agent's proof for the device. A device already paired is renamed.
  Result<Bytes> Redeem(const Bytes& proof, const Bytes& handshake_hash,
                       const Bytes& device_key, const std::string& device,
                       uint64_t now_ms);
  bool IsPaired(const Bytes& device_key) const {
    return devices_.count(device_key) > 0;
  }
  bool any_paired() const { return !devices_.empty(); }
  size_t devices() const { return devices_.size(); }
  // Lines of the older bearer-credential pairing found (and dropped) at Open.
  size_t legacy_dropped() const { return legacy_dropped_; }

 private:
  explicit PairingStore(std::string dir) : dir_(std::move(dir)) {}
  Status SaveDevices() const;

  std::string dir_;
  std::map<Bytes, std::string> devices_;  // device static public key -> name
  size_t legacy_dropped_ = 0;
};

}  // namespace mistore
