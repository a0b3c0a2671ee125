// ChunkCache (chunk_cache.h): the home gateway's LRU of sealed chunks.
#include "gateway-agent/chunk_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/erasure/crc32c.h"
#include "shared/store/file_util.h"

namespace mistore {

namespace {

uint32_t CrcOf(const std::string& s) {
  return Crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Writes the whole file (no fsync: the cache is not persisted).
Status WriteWhole(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("open " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status st =
          IoError("write " + path + ": " + std::strerror(n < 0 ? errno : EIO));
      close(fd);
      (void)RemoveFile(path);
      return st;
    }
    done += size_t(n);
  }
  if (close(fd) != 0) {
    Status st = IoError("close " + path + ": " + std::strerror(errno));
    (void)RemoveFile(path);
    return st;
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ChunkCache>> ChunkCache::Open(const std::string& dir,
                                                     uint64_t bytes_max,
                                                     size_t entries_max) {
  std::unique_ptr<ChunkCache> c(new ChunkCache(dir, bytes_max, entries_max));
  if (bytes_max == 0) return c;
  if (entries_max == 0)
    return InvalidArgument("chunk cache: entries_max must be at least 1");
  MS_RETURN_IF_ERROR(MakeDirs(dir));
  // Not persisted: whatever an earlier run left is removed.
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
  } else {
    return IoError("opendir " + dir + ": " + std::strerror(errno));
  }
  for (const auto& n : names)
    (void)RemoveFile(dir + "/" + n);  // not ours (a directory): left
  return c;
}

std::string ChunkCache::PathOf(const std::string& chunk_id) const {
  return dir_ + "/" + ToHex(std::string_view(chunk_id));
}

std::optional<std::string> ChunkCache::Get(const std::string& chunk_id) {
  auto it = index_.find(chunk_id);
  if (it == index_.end()) {
    stats_.misses_total++;
    return std::nullopt;
  }
  // Straight into the string the answer carries: converting from Bytes
  // element by element took a fifth of the agent's CPU on a cached read.
  auto data = ReadFileString(PathOf(chunk_id), size_t(it->second.size));
  if (!data.ok() || data->size() != it->second.size || CrcOf(*data) != it->second.crc) {
    stats_.corrupt_total++;
    stats_.misses_total++;
    Drop(chunk_id);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  stats_.hits_total++;
  return std::move(data.value());
}

void ChunkCache::Put(const std::string& chunk_id, const std::string& sealed) {
  if (bytes_max_ == 0 || chunk_id.size() != kChunkIdBytes) return;
  if (sealed.size() > bytes_max_) {
    stats_.too_large_total++;
    return;
  }
  if (auto it = index_.find(chunk_id); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  EvictUntil(sealed.size());
  if (!WriteWhole(PathOf(chunk_id), sealed).ok()) {
    stats_.write_errors_total++;
    return;
  }
  lru_.push_front(chunk_id);
  index_[chunk_id] = Entry{sealed.size(), CrcOf(sealed), lru_.begin()};
  bytes_ += sealed.size();
  stats_.inserts_total++;
}

void ChunkCache::Drop(const std::string& chunk_id) {
  auto it = index_.find(chunk_id);
  if (it == index_.end()) return;
  (void)RemoveFile(PathOf(chunk_id));
  bytes_ -= it->second.size;
  lru_.erase(it->second.lru);
  index_.erase(it);
}

void ChunkCache::EvictUntil(uint64_t incoming_bytes) {
  while (!lru_.empty() && (bytes_ + incoming_bytes > bytes_max_ ||
                           index_.size() + 1 > entries_max_)) {
    std::string victim = lru_.back();
    Drop(victim);
    stats_.evictions_total++;
  }
}

}  // namespace mistore
