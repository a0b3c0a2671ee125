// Object ids: 128 bits = primary POP id, backup POP id, creating gateway id,
// per-gateway creation counter (the paper's CREATEID), each u32, encoded
// little-endian in that order. Printed as 32 hex digits. Plain values.
#pragma once

#include <cstdint>
#include <string>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

struct Oid {
  uint32_t primary_pop = 0;
  uint32_t backup_pop = 0;
  uint32_t gateway = 0;
  uint32_t counter = 0;

  Bytes Encode() const;
  static Result<Oid> Decode(const std::string& bytes);
  static Result<Oid> Decode(const Bytes& bytes);
  static Result<Oid> FromHex(const std::string& hex);
  std::string Hex() const;
  auto operator<=>(const Oid&) const = default;
};

// A DC-tier object (`mistore put --tier dc`, PutCommit.dc_tier): replica id 0 is
// the DC (pop-server/pop_core.h, kDcReplica), named as primary and backup.
inline bool IsDcTier(const Oid& o) { return o.primary_pop == 0 && o.backup_pop == 0; }

}  // namespace mistore
