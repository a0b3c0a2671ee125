// FragmentStore: a gateway's fragments as self-describing files
// (<dir>/<first 2 hex of chunk id>/<chunk id hex>.<index>), each the exact
// fragment blob (header + payload + payload hash), written to a temporary
// name, fsynced, renamed, directory fsynced. The in-memory index (sizes, for
// the disk share) is a cache rebuilt by scanning at Open; no database.
// Every read re-verifies the fragment: a torn or corrupt file is reported as
// kCorrupt, never served. Blocking I/O; the agent calls it from its loop
// thread (fragments are small: chunk/k).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

class FragmentStore {
 public:
  // Scans dir (creating it if needed); files that fail to parse are counted
  // in corrupt_at_open() and left for the scrubber/repair to deal with.
  static Result<FragmentStore> Open(const std::string& dir, uint64_t store_bytes_max);

  // Validates the blob (header, payload hash) before writing it.
  // kResourceExhausted when it would exceed store_bytes_max.
  Status Put(const Bytes& blob);
  Result<Bytes> Get(const Bytes& chunk_id, uint32_t index);

  uint64_t used_bytes() const { return used_bytes_; }
  uint64_t free_bytes() const { return store_bytes_max_ - std::min(used_bytes_, store_bytes_max_); }
  size_t fragment_count() const { return sizes_.size(); }
  size_t corrupt_at_open() const { return corrupt_at_open_; }

 private:
  FragmentStore(std::string dir, uint64_t max) : dir_(std::move(dir)), store_bytes_max_(max) {}
  std::string PathOf(const std::string& chunk_hex, uint32_t index) const;

  std::string dir_;
  uint64_t store_bytes_max_;
  uint64_t used_bytes_ = 0;
  std::map<std::string, uint64_t> sizes_;  // "<chunk hex>.<index>" -> bytes
  size_t corrupt_at_open_ = 0;
};

}  // namespace mistore
