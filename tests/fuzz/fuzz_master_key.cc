// Fuzz target: the wrapped-master-key ("MSKW") parser, UnwrapMasterKey
// (shared/crypto/keys.h), with the fixed passphrase "fuzz-passphrase".
//
// Argon2id runs with the blob's own limits once the header checks pass. To
// keep each input to microseconds, blobs whose limits are accepted but above
// a small budget (opslimit > 2 or memlimit > 64 KiB) are not unwrapped; the
// range check itself (limits outside [kPwhash*Min, kPwhash*Max]) is still
// exercised, since it rejects before Argon2id. The seeds use the minimum
// limits (opslimit 1, memlimit 8 KiB).
//
// Properties: no out-of-bounds read, no crash; errors are only kCorrupt
// (malformed), kPermissionDenied (wrong passphrase / damaged) or
// kResourceExhausted; success yields a 32-byte key.
#include <cstdint>
#include <string_view>

#include "shared/core/assert.h"
#include "shared/core/bytes.h"
#include "shared/crypto/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mistore;
  using namespace mistore::crypto;
  constexpr std::string_view kPassphrase = "fuzz-passphrase";
  if (size == kWrappedMasterKeyBytes) {
    const uint64_t ops = GetLe64(data + 6);
    const uint64_t mem = GetLe64(data + 14);
    const bool accepted = ops >= kPwhashOpsMin && ops <= kPwhashOpsMax && mem >= kPwhashMemMin &&
                          mem <= kPwhashMemMax;
    if (accepted && (ops > 2 || mem > (uint64_t{64} << 10))) return 0;  // too slow to fuzz
  }
  const Bytes blob(data, data + size);
  Result<SecretBytes> master = UnwrapMasterKey(blob, kPassphrase);
  if (master.ok()) {
    MS_ASSERT(master->size() == kMasterKeyBytes);
    MS_ASSERT(size == kWrappedMasterKeyBytes);
  } else {
    const Code c = master.status().code();
    MS_ASSERT(c == Code::kCorrupt || c == Code::kPermissionDenied ||
              c == Code::kResourceExhausted);
  }
  return 0;
}
