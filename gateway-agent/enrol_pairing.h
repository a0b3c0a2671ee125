// Client pairing (issue 4): which of the subscriber's devices the gateway
// agent serves on its client port. `mistore-agent pair` (an operator on the
// gateway) makes a one-time pairing code valid for pair_code_ttl_s; a device
// running `mistore pair CODE` sends it (PairDevice) and receives a random
// 32-byte credential, which it keeps (0600) and presents first on every
// later connection (ClientHello). Once at least one device is paired, the
// agent serves only connections that presented a known credential; until
// then it serves its LAN as before.
//
// Files in data_dir/pairing/ (directory 0700, files 0600): `code` holds
// BLAKE2b-256 of the pending code, its expiry and the wrong attempts so far
// (the code is dropped after kPairAttemptsMax wrong ones, and when used);
// `devices` holds one line per paired device: BLAKE2b-256 of its credential
// and its name (at most kPairedDevicesMax). The agent keeps only hashes.
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

namespace mistore {

inline constexpr size_t kPairedDevicesMax = 64;
inline constexpr int kPairAttemptsMax = 5;
inline constexpr size_t kPairCredentialBytes = 32;
inline constexpr size_t kPairDeviceNameBytesMax = 64;

// Wall-clock milliseconds (codes expire in wall time).
uint64_t PairingNowMs();
// pair_code_ttl_s, appended to the agent's knob table.
std::vector<Knob> WithPairingKnobs(std::vector<Knob> knobs);
// Opens the store of data_dir or exits (FatalExit) naming the problem.
class PairingStore;
PairingStore OpenPairingOrDie(const std::string& data_dir);
// `mistore-agent pair`: prints a new code on `out`; returns the exit code.
int RunPairSubcommand(const Config& cfg, FILE* out, FILE* err);

class PairingStore {
 public:
  // Loads data_dir/pairing/devices (absent: no device paired).
  static Result<PairingStore> Open(const std::string& data_dir);

  // A new code "XXXXX-XXXXX" (50 bits, Crockford base32), replacing any
  // pending one, valid until now_ms + ttl_ms.
  Result<std::string> NewCode(uint64_t now_ms, uint64_t ttl_ms);
  // Redeems the pending code for `device`: kPermissionDenied "no pairing code
  // pending", "pairing code expired", "wrong pairing code" (counted; the code
  // is dropped after kPairAttemptsMax), kResourceExhausted when
  // kPairedDevicesMax devices are paired. Returns the device's credential.
  Result<Bytes> Redeem(const std::string& code, const std::string& device, uint64_t now_ms);
  bool IsPaired(const Bytes& credential) const;
  bool any_paired() const { return !devices_.empty(); }
  size_t devices() const { return devices_.size(); }

 private:
  explicit PairingStore(std::string dir) : dir_(std::move(dir)) {}
  Status SaveDevices() const;

  std::string dir_;
  std::map<Bytes, std::string> devices_;  // credential hash -> device name
};

}  // namespace mistore
