// BackupStore: the DC's store of full encrypted copies of versions (issue 7):
// the ciphertext chunks and the sealed version records exactly as POPs hold
// them — the DC never sees plaintext. An object store shaped like S3: flat
// keys, whole-object put/get/delete, no partial writes, no listing needed by
// its callers, so an S3-compatible implementation can replace the file one
// at ISP scale.
//
// Keys (BackupChunkKey, BackupVersionKey) are content-addressed for chunks:
// a chunk is named by its id, the keyed hash of its plaintext that its AEAD
// binds; storing a chunk twice stores it once. Every object carries a
// BLAKE2b-256 of its bytes, checked on every Get (a bit flipped on disk is
// Corrupt, never served).
//
// FileBackupStore: one file per object under <dir>/<key>, written to a
// temporary name, fsynced and renamed (shared/store/file_util.h); bounded by
// object_bytes_max per object and bytes_max in all (ResourceExhausted
// beyond). Who owns what: the DC daemon owns the store; DcGc (dc_gc.h) puts
// copies and deletes collected ones. Not thread-safe: the DC's loop thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

class BackupStore {
 public:
  virtual ~BackupStore() = default;
  // Durable when it returns. Putting a key again replaces it (chunks: with
  // the same bytes).
  virtual Status Put(const std::string& key, const Bytes& data) = 0;
  // NotFound when absent; Corrupt when the bytes fail their check.
  virtual Result<Bytes> Get(const std::string& key) = 0;
  virtual Status Delete(const std::string& key) = 0;  // absent: Ok
  virtual Result<bool> Exists(const std::string& key) = 0;
  virtual uint64_t used_bytes() const = 0;  // payload bytes held
  virtual uint64_t objects() const = 0;
};

// "chunks/<subscriber, hex>/<first byte of id, hex>/<chunk id, hex>"
std::string BackupChunkKey(const std::string& subscriber, const Bytes& chunk_id);
// "versions/<oid, hex>/<version>": the serialized VersionInfo (sealed
// manifest, sealed name, chunk ids).
std::string BackupVersionKey(const Bytes& oid, uint64_t version);

struct FileBackupStoreLimits {
  uint64_t object_bytes_max = 64ull << 20;
  uint64_t bytes_max = 1ull << 40;
};

// Opens (creating) the store in dir; counts what it holds.
Result<std::unique_ptr<BackupStore>> OpenFileBackupStore(const std::string& dir,
                                                         FileBackupStoreLimits limits);

}  // namespace mistore
