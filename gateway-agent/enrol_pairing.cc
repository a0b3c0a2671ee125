#include "gateway-agent/enrol_pairing.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "shared/core/assert.h"
#include "shared/core/log.h"
#include "shared/store/file_util.h"
#include "shared/uvio/connection.h"
#include "shared/wire/device_pairing.h"

namespace mistore {

namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford base32

Status WriteText(const std::string& path, const std::string& text) {
  return WriteFileDurable(path, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

Status Denied(std::string m) { return Status(Code::kPermissionDenied, std::move(m)); }

}  // namespace

Result<PairingStore> PairingStore::Open(const std::string& data_dir) {
  MS_ASSERT(sodium_init() >= 0);
  PairingStore s(data_dir + "/pairing");
  auto raw = ReadFileBytes(s.dir_ + "/devices", kPairedDevicesMax * 256);
  if (!raw.ok() && raw.status().code() == Code::kNotFound) return s;
  if (!raw.ok()) return raw.status();
  std::string text(raw->begin(), raw->end());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    if (line.rfind("k1 ", 0) != 0) {
      // "<credential hash hex> <name>": the bearer-credential pairing.
      Bytes h;
      if (!FromHex(line.substr(0, line.find(' ')), &h) || h.size() != 32)
        return Corrupt(s.dir_ + "/devices: malformed line");
      s.legacy_dropped_++;
      continue;
    }
    Bytes key;
    size_t sp = line.find(' ', 3);
    if (!FromHex(line.substr(
                     3, sp == std::string::npos ? std::string::npos : sp - 3),
                 &key) ||
        key.size() != noise::kDhLen)
      return Corrupt(s.dir_ + "/devices: malformed line");
    s.devices_[key] = sp == std::string::npos ? "" : line.substr(sp + 1);
  }
  // Rewritten without the dropped lines, so the warning is given once.
  if (s.legacy_dropped_ > 0) MS_RETURN_IF_ERROR(s.SaveDevices());
  return s;
}

Status PairingStore::SaveDevices() const {
  std::string text;
  for (const auto& [key, name] : devices_)
    text += "k1 " + ToHex(key) + " " + name + "\n";
  return WriteText(dir_ + "/devices", text);
}

Result<std::string> PairingStore::NewCode(uint64_t now_ms, uint64_t ttl_ms) {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return IoError("cannot create " + dir_ + ": " + std::strerror(errno));
  std::string code;
  for (int i = 0; i < 10; i++) code.push_back(kAlphabet[randombytes_uniform(32)]);
  Bytes h = pairing::CodeHash(code);
  MS_RETURN_IF_ERROR(
      WriteText(dir_ + "/code", ToHex(h) + " " + std::to_string(now_ms + ttl_ms) + " 0\n"));
  return code.substr(0, 5) + "-" + code.substr(5);
}

Result<Bytes> PairingStore::Redeem(const Bytes& proof,
                                   const Bytes& handshake_hash,
                                   const Bytes& device_key,
                                   const std::string& device, uint64_t now_ms) {
  if (device_key.size() != noise::kDhLen)
    return InvalidArgument("device key of " +
                           std::to_string(device_key.size()) + " bytes");
  const std::string path = dir_ + "/code";
  auto raw = ReadFileBytes(path, 256);
  if (!raw.ok() && raw.status().code() == Code::kNotFound)
    return Denied("no pairing code pending (run `mistore-agent pair` on the gateway)");
  if (!raw.ok()) return raw.status();
  std::string text(raw->begin(), raw->end());
  char hex[65] = {0};
  unsigned long long expires = 0;
  int attempts = 0;
  Bytes code_hash;
  if (std::sscanf(text.c_str(), "%64s %llu %d", hex, &expires, &attempts) !=
          3 ||
      !FromHex(hex, &code_hash) || code_hash.size() != pairing::kCodeHashBytes)
    return Corrupt(path + " is malformed");
  if (now_ms >= expires) {
    (void)RemoveFile(path);
    return Denied("pairing code expired (make a new one with `mistore-agent pair`)");
  }
  if (!pairing::ProofsEqual(
          proof,
          pairing::Proof(code_hash, /*from_device=*/true, handshake_hash))) {
    attempts++;
    if (attempts >= kPairAttemptsMax) {
      (void)RemoveFile(path);
      return Denied("wrong pairing code; too many attempts, the code is void");
    }
    MS_RETURN_IF_ERROR(WriteText(
        path, std::string(hex) + " " + std::to_string(expires) + " " + std::to_string(attempts) +
                  "\n"));
    return Denied("wrong pairing code");
  }
  if (devices_.size() >= kPairedDevicesMax && !devices_.count(device_key))
    return ResourceExhausted(std::to_string(kPairedDevicesMax) + " devices are paired already");
  MS_RETURN_IF_ERROR(
      RemoveFile(path));  // single use, before anything is granted
  std::string name;
  for (char c : device.substr(0, kPairDeviceNameBytesMax))
    name.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'
                       ? c
                       : '_');
  devices_[device_key] = name;
  MS_RETURN_IF_ERROR(SaveDevices());
  return pairing::Proof(code_hash, /*from_device=*/false, handshake_hash);
}

Result<noise::KeyPair> LoadOrCreateAgentLinkKey(const std::string& data_dir) {
  const std::string dir = data_dir + "/pairing";
  MS_RETURN_IF_ERROR(MakeDirs(dir));
  (void)::chmod(dir.c_str(), 0700);
  const std::string path = dir + "/agent.key";
  if (!FileExists(path))
    MS_RETURN_IF_ERROR(WriteNodeKeyFile(path, noise::KeyPair::Generate()));
  return ReadNodeKeyFile(path);
}

bool IsLoopbackPeer(const std::string& peer) {
  return peer.rfind("127.", 0) == 0 || peer.rfind("[::1]:", 0) == 0 ||
         peer.rfind("[::ffff:127.", 0) == 0;
}

uint64_t PairingNowMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count());
}

std::vector<Knob> WithPairingKnobs(std::vector<Knob> knobs) {
  knobs.push_back({"pair_code_ttl_s", "300",
                   "how long a code from `mistore-agent pair` stays valid, seconds", Knob::kInt});
  return knobs;
}

PairingStore OpenPairingOrDie(const std::string& data_dir) {
  auto s = PairingStore::Open(data_dir);
  if (!s.ok()) FatalExit("pairing", s.status().ToString().c_str());
  if (s->legacy_dropped() > 0)
    MS_WARN("agent",
            "bearer-credential pairings dropped: those devices must pair again",
            "devices=" + std::to_string(s->legacy_dropped()) +
                " hint=\"mistore-agent pair, then mistore pair CODE on each "
                "device\"");
  return std::move(s).value();
}

int RunPairSubcommand(const Config& cfg, FILE* out, FILE* err) {
  if (cfg.Int("pair_code_ttl_s") < 1) {
    std::fprintf(err, "mistore-agent pair: pair_code_ttl_s must be >= 1\n");
    return 2;
  }
  if (Status st = MakeDirs(cfg.Str("data_dir")); !st.ok()) {
    std::fprintf(err, "mistore-agent pair: %s\n", st.message().c_str());
    return 1;
  }
  auto store = PairingStore::Open(cfg.Str("data_dir"));
  const uint64_t now = PairingNowMs();
  auto code = store.ok() ? store->NewCode(now, uint64_t(cfg.Int("pair_code_ttl_s")) * 1000)
                         : Result<std::string>(store.status());
  if (!code.ok()) {
    std::fprintf(err, "mistore-agent pair: %s\n", code.status().message().c_str());
    return 1;
  }
  std::fprintf(out, "%s\n", code.value().c_str());
  std::fprintf(err,
               "pairing code, valid %lld s and once: run `mistore pair %s` on the device "
               "(%zu device(s) paired so far)\n",
               (long long)cfg.Int("pair_code_ttl_s"), code.value().c_str(), store->devices());
  return 0;
}

}  // namespace mistore
