#include "shared/store/fragment_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shared/core/assert.h"
#include "shared/erasure/fragment.h"
#include "shared/store/file_util.h"

namespace mistore {

namespace {
constexpr size_t kFragmentFileBytesMax = kFragmentHeaderSizeMax + kMaxFragmentPayload;

template <typename F>
void ListDir(const std::string& dir, F&& fn) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") fn(name);
  }
  closedir(d);
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("open dir " + dir + ": " + std::strerror(errno));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return IoError("fsync dir " + dir + ": " + std::strerror(errno));
  return Status::Ok();
}

void EnsureSodium() {
  static const int rc = sodium_init();
  if (rc < 0) FatalExit("libsodium", "sodium_init failed");
}

// Reads the first `len` bytes of path (fewer if the file is shorter) and the
// file's size.
Status ReadPrefix(const std::string& path, uint8_t* out, size_t len, size_t* got,
                  uint64_t* file_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path);
    return IoError("open " + path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = IoError("stat " + path + ": " + std::strerror(errno));
    close(fd);
    return s;
  }
  *file_bytes = uint64_t(st.st_size);
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, out + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = IoError("read " + path + ": " + std::strerror(errno));
      close(fd);
      return s;
    }
    if (n == 0) break;
    done += size_t(n);
  }
  close(fd);
  *got = done;
  return Status::Ok();
}
}  // namespace

std::string FragmentName(const Bytes& chunk_id, uint32_t index) {
  return ToHex(chunk_id) + "." + std::to_string(index);
}

bool ParseFragmentName(const std::string& name, Bytes* chunk_id, uint32_t* index) {
  if (name.size() < 66 || name.size() > 75 || name[64] != '.') return false;
  for (size_t i = 0; i < 64; i++)
    if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) return false;
  std::string digits = name.substr(65);
  if (digits.size() > 1 && digits[0] == '0') return false;  // not canonical
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + uint64_t(c - '0');
  }
  if (v > UINT32_MAX) return false;
  if (!FromHex(std::string_view(name).substr(0, 64), chunk_id)) return false;
  *index = uint32_t(v);
  return true;
}

void InventoryDigestBuilder::Free::operator()(crypto_generichash_blake2b_state* s) const {
  delete s;
}

InventoryDigestBuilder::InventoryDigestBuilder() : state_(new crypto_generichash_blake2b_state) {
  EnsureSodium();
  int rc = crypto_generichash_init(state_.get(), nullptr, 0, 32);
  MS_ASSERT(rc == 0);
}

InventoryDigestBuilder::~InventoryDigestBuilder() = default;

void InventoryDigestBuilder::Add(const std::string& name) {
  MS_ASSERT(!finished_);
  MS_ASSERT(!any_ || last_ < name);  // ascending, no duplicates
  std::string line = name + "\n";
  int rc = crypto_generichash_update(state_.get(), reinterpret_cast<const uint8_t*>(line.data()),
                                     line.size());
  MS_ASSERT(rc == 0);
  last_ = name;
  any_ = true;
}

Bytes InventoryDigestBuilder::Final() {
  MS_ASSERT(!finished_);
  finished_ = true;
  Bytes out(32);
  int rc = crypto_generichash_final(state_.get(), out.data(), out.size());
  MS_ASSERT(rc == 0);
  return out;
}

Bytes InventoryDigest(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  InventoryDigestBuilder b;
  for (auto& n : names) b.Add(n);
  return b.Final();
}

std::string FragmentStore::PathOfName(const std::string& name) const {
  return dir_ + "/" + name.substr(0, 2) + "/" + name;
}

Status FragmentStore::EnsureSubdir(const std::string& sub) {
  if (subdirs_.count(sub)) return Status::Ok();
  std::string path = dir_ + "/" + sub;
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
    return IoError("mkdir " + path + ": " + std::strerror(errno));
  // The new directory's entry must be durable before any file in it is
  // acknowledged.
  MS_RETURN_IF_ERROR(SyncDir(dir_));
  subdirs_.insert(sub);
  return Status::Ok();
}

Result<FragmentStore> FragmentStore::Open(const std::string& dir,
                                          const FragmentStoreOptions& opts) {
  MS_RETURN_IF_ERROR(MakeDirs(dir));
  FragmentStore s(dir, opts);
  std::vector<std::string> subs;
  ListDir(dir, [&](const std::string& sub) { subs.push_back(sub); });
  std::sort(subs.begin(), subs.end());
  for (const std::string& sub : subs) {
    std::string subdir = dir + "/" + sub;
    struct stat st;
    if (stat(subdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    s.subdirs_.insert(sub);
    ListDir(subdir, [&](const std::string& name) {
      std::string path = subdir + "/" + name;
      if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") {
        (void)RemoveFile(path);  // an interrupted write: never acknowledged
        return;
      }
      Bytes id;
      uint32_t index = 0;
      if (!ParseFragmentName(name, &id, &index) || name.substr(0, 2) != sub) return;  // not ours
      Status check;
      uint64_t file_bytes = 0;
      if (opts.verify_payloads_at_open) {
        auto blob = ReadFileBytes(path, kFragmentFileBytesMax);
        if (!blob.ok()) {
          check = blob.status().code() == Code::kResourceExhausted ? Corrupt("file too large")
                                                                   : blob.status();
        } else {
          file_bytes = blob->size();
          auto parsed = ParseFragment(blob->data(), blob->size());
          if (!parsed.ok())
            check = parsed.status();
          else if (parsed->first.chunk_id != id || parsed->first.index != index)
            check = Corrupt("file holds another fragment");
        }
      } else {
        uint8_t head[kFragmentHeaderSizeMax];  // v1 (100) or v2 (72) header
        size_t got = 0;
        check = ReadPrefix(path, head, sizeof head, &got, &file_bytes);
        if (check.ok()) {
          auto h = ParseFragmentHeader(head, got);
          if (!h.ok())
            check = h.status();
          else if (file_bytes != h->header_len() + h->payload_len)
            check = Corrupt("file length does not match its header (torn)");
          else if (h->chunk_id != id || h->index != index)
            check = Corrupt("file holds another fragment");
        }
      }
      if (!check.ok()) {
        s.corrupt_at_open_++;
        s.MarkBad(name, /*keep_file=*/check.code() == Code::kIo);
        return;
      }
      s.sizes_[name] = file_bytes;
      s.used_bytes_ += file_bytes;
    });
  }
  // Subdirectories (and the store directory itself) that a crash caught
  // between mkdir and the fsync of their parent become durable now, before
  // any fragment written into them is acknowledged.
  MS_RETURN_IF_ERROR(SyncDir(dir));
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) MS_RETURN_IF_ERROR(SyncDir(dir.substr(0, slash)));
  return s;
}

void FragmentStore::MarkBad(const std::string& name, bool keep_file) {
  auto it = sizes_.find(name);
  if (it != sizes_.end()) {
    used_bytes_ -= it->second;
    sizes_.erase(it);
    digest_valid_ = false;
  }
  if (!keep_file) (void)RemoveFile(PathOfName(name));
  bad_total_++;
  if (bad_unreported_.size() < opts_.bad_queue_max) bad_unreported_.insert(name);
}

Status FragmentStore::Put(const Bytes& blob) {
  auto parsed = ParseFragment(blob.data(), blob.size());
  if (!parsed.ok()) return parsed.status();
  const FragmentHeader& h = parsed->first;
  std::string name = FragmentName(h.chunk_id, h.index);
  auto it = sizes_.find(name);
  uint64_t old = it != sizes_.end() ? it->second : 0;
  if (used_bytes_ - old + blob.size() > opts_.store_bytes_max)
    return ResourceExhausted("fragment store full (" + std::to_string(used_bytes_) + " of " +
                             std::to_string(opts_.store_bytes_max) + " bytes used)");
  if (it == sizes_.end() && sizes_.size() >= opts_.fragments_max)
    return ResourceExhausted("fragment store full (" + std::to_string(sizes_.size()) +
                             " fragments, the most it indexes)");
  MS_RETURN_IF_ERROR(EnsureSubdir(name.substr(0, 2)));
  Status written = WriteFileDurable(PathOfName(name), blob);
  if (!written.ok()) {
    // Not acknowledged. A new fragment may have been renamed into place
    // before the failing directory fsync: remove it so that the index and
    // the disk agree (a replaced one keeps its index entry: same name, and
    // either the old or the new copy, both valid, is in place).
    if (it == sizes_.end()) (void)RemoveFile(PathOfName(name));
    return written;
  }
  used_bytes_ = used_bytes_ - old + blob.size();
  sizes_[name] = blob.size();
  bad_unreported_.erase(name);  // replaced by a good copy: nothing to report
  digest_valid_ = false;
  return Status::Ok();
}

Result<Bytes> FragmentStore::ReadChecked(const std::string& name) {
  if (!sizes_.count(name)) return NotFound("fragment " + name.substr(0, 12) + "... not held");
  auto blob = ReadFileBytes(PathOfName(name), kFragmentFileBytesMax);
  Status check;
  if (!blob.ok()) {
    check = blob.status();
    if (check.code() == Code::kNotFound) check = Corrupt("file vanished");
    if (check.code() == Code::kResourceExhausted) check = Corrupt("file too large");
  } else {
    auto parsed = ParseFragment(blob->data(), blob->size());
    Bytes id;
    uint32_t index = 0;
    const bool named = ParseFragmentName(name, &id, &index);
    MS_ASSERT(named);  // only well-formed names enter the index
    if (!parsed.ok())
      check = parsed.status();
    else if (parsed->first.chunk_id != id || parsed->first.index != index)
      check = Corrupt("fragment file holds another fragment");
  }
  if (!check.ok()) {
    MarkBad(name, /*keep_file=*/check.code() == Code::kIo);
    return Corrupt("fragment " + name.substr(0, 12) + "... fails its check: " + check.message());
  }
  return blob;
}

Result<Bytes> FragmentStore::Get(const Bytes& chunk_id, uint32_t index) {
  if (chunk_id.size() != kChunkIdSize) return InvalidArgument("chunk id must be 32 bytes");
  return ReadChecked(FragmentName(chunk_id, index));
}

Status FragmentStore::Verify(const std::string& name, uint64_t* bytes_read) {
  auto it = sizes_.find(name);
  *bytes_read = it != sizes_.end() ? it->second : 0;
  auto r = ReadChecked(name);
  if (r.ok()) {
    // A scrub read should not push the gateway owner's data out of the page
    // cache: drop this file's pages (advice only; errors do not matter).
    int fd = open(PathOfName(name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      close(fd);
    }
  }
  return r.ok() ? Status::Ok() : r.status();
}

Status FragmentStore::Delete(const std::string& name) {
  Bytes id;
  uint32_t index = 0;
  if (!ParseFragmentName(name, &id, &index)) return InvalidArgument("bad fragment name");
  bad_unreported_.erase(name);
  auto it = sizes_.find(name);
  if (it == sizes_.end()) return RemoveFile(PathOfName(name));  // a leftover bad file, if any
  MS_RETURN_IF_ERROR(RemoveFile(PathOfName(name)));
  used_bytes_ -= it->second;
  sizes_.erase(it);
  digest_valid_ = false;
  return Status::Ok();
}

std::optional<std::string> FragmentStore::NextAfter(const std::string& after) const {
  auto it = sizes_.upper_bound(after);
  if (it == sizes_.end()) return std::nullopt;
  return it->first;
}

const Bytes& FragmentStore::digest() {
  if (!digest_valid_) {
    InventoryDigestBuilder b;
    for (auto& [name, size] : sizes_) b.Add(name);
    digest_ = b.Final();
    digest_valid_ = true;
  }
  return digest_;
}

std::vector<std::string> FragmentStore::TakeBad(size_t max) {
  std::vector<std::string> out;
  while (!bad_unreported_.empty() && out.size() < max) {
    out.push_back(*bad_unreported_.begin());
    bad_unreported_.erase(bad_unreported_.begin());
  }
  return out;
}

void FragmentStore::RequeueBad(const std::vector<std::string>& names) {
  for (auto& n : names)
    if (!sizes_.count(n) && bad_unreported_.size() < opts_.bad_queue_max) bad_unreported_.insert(n);
}

}  // namespace mistore
