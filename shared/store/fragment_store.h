// FragmentStore: a gateway's fragments as self-describing files
// (<dir>/<first 2 hex of chunk id>/<chunk id hex>.<index>), each the exact
// fragment blob (header + payload + payload hash), written to a temporary
// name, fsynced, renamed, directory fsynced (and a new subdirectory's parent
// fsynced too), so a power cut at any instant leaves every acknowledged
// fragment intact. The in-memory index (name -> size: the served set and the
// disk share) is a cache rebuilt by scanning at Open; no database.
//
// A file that fails its check (at Open, on a read, or when the scrubber
// verifies it) is never served: it leaves the index, its file is removed
// (unless the failure was an I/O error, then it is only left unindexed), and
// its name is queued (bounded) for reporting to the POP as bad.
//
// Inventory digest, shared with the POP (issue 6, POP engineer: use this):
//   InventoryDigest(names) = BLAKE2b-256 (unkeyed, 32 bytes, libsodium
//   crypto_generichash) over the concatenation, for each name in ascending
//   byte-wise order (std::string operator<, duplicates once), of the name
//   followed by '\n'; a name is FragmentName(chunk_id, index) =
//   "<64 lowercase hex of chunk id>.<decimal index>". No fragments: the
//   hash of the empty string.
//
// Ownership: the agent owns its one FragmentStore. Blocking I/O; the agent
// calls it from its loop thread (fragments are small: chunk/k).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

struct crypto_generichash_blake2b_state;  // libsodium, kept out of this header

namespace mistore {

// "<64 lowercase hex>.<index>": the file name and the inventory name.
std::string FragmentName(const Bytes& chunk_id, uint32_t index);
// Inverse of FragmentName; false on anything FragmentName cannot produce.
bool ParseFragmentName(const std::string& name, Bytes* chunk_id, uint32_t* index);

// The inventory digest described above. `names` need not be sorted.
Bytes InventoryDigest(std::vector<std::string> names);

// Incremental form: Add() names in ascending order (asserted), then Final().
class InventoryDigestBuilder {
 public:
  InventoryDigestBuilder();
  ~InventoryDigestBuilder();
  InventoryDigestBuilder(const InventoryDigestBuilder&) = delete;
  InventoryDigestBuilder& operator=(const InventoryDigestBuilder&) = delete;
  void Add(const std::string& name);
  Bytes Final();

 private:
  struct Free {
    void operator()(crypto_generichash_blake2b_state* s) const;
  };
  std::unique_ptr<crypto_generichash_blake2b_state, Free> state_;
  std::string last_;
  bool any_ = false;
  bool finished_ = false;
};

struct FragmentStoreOptions {
  uint64_t store_bytes_max = 0;
  // Bounds the index in memory (about 150 bytes per fragment).
  uint64_t fragments_max = 2'000'000;
  // true: Open reads every file and checks its payload check; false: Open
  // reads only the headers (100 bytes in fragment format v1, 72 in v2) and
  // checks each file's length (torn files are still caught; bit rot is left
  // to the scrubber and to reads).
  bool verify_payloads_at_open = true;
  // Bad names queued for reporting beyond this are dropped (the POP still
  // sees them missing through the inventory digest).
  size_t bad_queue_max = 10000;
};

class FragmentStore {
 public:
  static Result<FragmentStore> Open(const std::string& dir, const FragmentStoreOptions& opts);
  static Result<FragmentStore> Open(const std::string& dir, uint64_t store_bytes_max) {
    FragmentStoreOptions o;
    o.store_bytes_max = store_bytes_max;
    return Open(dir, o);
  }

  // Validates the blob (header, payload hash) before writing it.
  // kResourceExhausted when it would exceed store_bytes_max or fragments_max.
  Status Put(const Bytes& blob);
  // Serves an indexed fragment after re-verifying it. kNotFound when not
  // held; kCorrupt when the file fails its check (it is then marked bad).
  Result<Bytes> Get(const Bytes& chunk_id, uint32_t index);
  // Reads and checks one indexed fragment (the scrubber). *bytes_read gets
  // the bytes read from disk. kCorrupt: marked bad; kNotFound: not held.
  Status Verify(const std::string& name, uint64_t* bytes_read);
  // Removes a fragment (DeleteFragments). Not held: Ok (idempotent).
  Status Delete(const std::string& name);

  // The served set in name order, for scrubbing and inventories.
  const std::map<std::string, uint64_t>& index() const { return sizes_; }
  // First indexed name strictly after `after` ("" = the first), if any.
  std::optional<std::string> NextAfter(const std::string& after) const;
  bool Has(const std::string& name) const { return sizes_.count(name) > 0; }

  // The digest of index(), cached until the index changes.
  const Bytes& digest();

  // Names found bad and not yet reported; the agent takes them when it
  // reports them (FragmentsBad / GatewayInventory.bad).
  const std::set<std::string>& bad_unreported() const { return bad_unreported_; }
  std::vector<std::string> TakeBad(size_t max);
  void RequeueBad(const std::vector<std::string>& names);

  uint64_t used_bytes() const { return used_bytes_; }
  uint64_t store_bytes_max() const { return opts_.store_bytes_max; }
  uint64_t free_bytes() const {
    return opts_.store_bytes_max - std::min(used_bytes_, opts_.store_bytes_max);
  }
  size_t fragment_count() const { return sizes_.size(); }
  size_t corrupt_at_open() const { return corrupt_at_open_; }
  uint64_t bad_total() const { return bad_total_; }

 private:
  FragmentStore(std::string dir, const FragmentStoreOptions& o) : dir_(std::move(dir)), opts_(o) {}
  std::string PathOfName(const std::string& name) const;
  Status EnsureSubdir(const std::string& sub);
  // Takes `name` out of the served set and queues it for reporting; removes
  // its file unless `keep_file`.
  void MarkBad(const std::string& name, bool keep_file);
  Result<Bytes> ReadChecked(const std::string& name);

  std::string dir_;
  FragmentStoreOptions opts_;
  uint64_t used_bytes_ = 0;
  std::map<std::string, uint64_t> sizes_;  // "<chunk hex>.<index>" -> bytes
  std::set<std::string> subdirs_;          // known to exist durably
  std::set<std::string> bad_unreported_;
  size_t corrupt_at_open_ = 0;
  uint64_t bad_total_ = 0;
  Bytes digest_;
  bool digest_valid_ = false;
};

}  // namespace mistore
