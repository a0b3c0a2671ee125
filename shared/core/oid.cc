#include "shared/core/oid.h"

namespace mistore {

Bytes Oid::Encode() const {
  Bytes b(16);
  PutLe32(b.data(), primary_pop);
  PutLe32(b.data() + 4, backup_pop);
  PutLe32(b.data() + 8, gateway);
  PutLe32(b.data() + 12, counter);
  return b;
}

Result<Oid> Oid::Decode(const Bytes& b) {
  if (b.size() != 16) return InvalidArgument("object id must be 16 bytes, got " +
                                             std::to_string(b.size()));
  Oid o;
  o.primary_pop = GetLe32(b.data());
  o.backup_pop = GetLe32(b.data() + 4);
  o.gateway = GetLe32(b.data() + 8);
  o.counter = GetLe32(b.data() + 12);
  return o;
}

Result<Oid> Oid::Decode(const std::string& s) { return Decode(Bytes(s.begin(), s.end())); }

Result<Oid> Oid::FromHex(const std::string& hex) {
  Bytes b;
  if (hex.size() != 32 || !mistore::FromHex(hex, &b))
    return InvalidArgument("'" + hex + "' is not an object id (32 hex digits)");
  return Decode(b);
}

std::string Oid::Hex() const { return ToHex(Encode()); }

}  // namespace mistore
