// Client: the subscriber-side library behind the `mistore` command. It
// holds the user's keys, encrypts and chunks files before anything leaves
// the device, and talks to the home gateway agent over one connection.
// Calls are synchronous: each runs a private libuv loop until the operation
// finishes. Not thread-safe; one Client per thread.
//
// Keys (shared/crypto): a master key wrapped by the passphrase (Argon2id) in
// key_file; subkeys by crypto_kdf: name hash key (name -> name_key), name
// seal key (names stored sealed), chunk id key (chunk ids = keyed BLAKE2b of
// the plaintext), chunk key (chunks sealed with XChaCha20-Poly1305, the
// chunk id as associated data) and per-object keys for manifests.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/oid.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

struct ClientSettings {
  std::string agent_addr;
  std::string subscriber;
  std::string key_file;
  std::string state_dir;
  size_t chunk_bytes = 1u << 20;      // fixed-size chunks (CDC: issue 3)
  size_t window = 4;                  // chunks in flight
  uint64_t call_timeout_ms = 60000;
};

struct PutResult {
  Oid oid;
  uint64_t version;
  uint64_t size_bytes;
  size_t chunks;
};

struct ListEntry {
  std::string name;
  Oid oid;
  uint64_t version;
  uint64_t size_bytes;
};

class Client {
 public:
  // Creates a new master key wrapped under `passphrase` in key_file (0600);
  // kInvalidArgument if one exists already.
  static Status Init(const ClientSettings& s, const std::string& passphrase, bool fast_kdf);
  static Result<std::unique_ptr<Client>> Open(const ClientSettings& s, const std::string& passphrase);
  ~Client();

  Result<PutResult> Put(const std::string& path, const std::string& name);
  // Writes the object's bytes through `sink` in order; returns its info.
  Result<pb::VersionInfo> Get(const std::string& name_or_oid, uint64_t version,
                              const std::function<Status(const uint8_t*, size_t)>& sink);
  Result<std::vector<ListEntry>> List();
  Result<pb::Placement> Placement(const std::string& name_or_oid, uint64_t version,
                                  pb::VersionInfo* info);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mistore
