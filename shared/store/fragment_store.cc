#include "shared/store/fragment_store.h"

#include <dirent.h>
#include <sys/stat.h>

#include "shared/erasure/fragment.h"
#include "shared/store/file_util.h"

namespace mistore {

namespace {
constexpr size_t kFragmentFileBytesMax = (64u << 20) + 4096;

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
}  // namespace

std::string FragmentStore::PathOf(const std::string& chunk_hex, uint32_t index) const {
  return dir_ + "/" + chunk_hex.substr(0, 2) + "/" + chunk_hex + "." + std::to_string(index);
}

Result<FragmentStore> FragmentStore::Open(const std::string& dir, uint64_t store_bytes_max) {
  MS_RETURN_IF_ERROR(MakeDirs(dir));
  FragmentStore s(dir, store_bytes_max);
  ListDir(dir, [&](const std::string& sub) {
    ListDir(dir + "/" + sub, [&](const std::string& name) {
      std::string path = dir + "/" + sub + "/" + name;
      if (name.size() > 4 && name.substr(name.size() - 4) == ".tmp") {
        (void)RemoveFile(path);  // an interrupted write: never acknowledged
        return;
      }
      auto blob = ReadFileBytes(path, kFragmentFileBytesMax);
      if (!blob.ok() || !ParseFragment(blob->data(), blob->size()).ok()) {
        s.corrupt_at_open_++;
        return;
      }
      s.sizes_[name] = blob->size();
      s.used_bytes_ += blob->size();
    });
  });
  return s;
}

Status FragmentStore::Put(const Bytes& blob) {
  auto parsed = ParseFragment(blob.data(), blob.size());
  if (!parsed.ok()) return parsed.status();
  const FragmentHeader& h = parsed->first;
  std::string hex = ToHex(h.chunk_id);
  std::string key = hex + "." + std::to_string(h.index);
  uint64_t old = sizes_.count(key) ? sizes_[key] : 0;
  if (used_bytes_ - old + blob.size() > store_bytes_max_)
    return ResourceExhausted("fragment store full (" + std::to_string(used_bytes_) + " of " +
                             std::to_string(store_bytes_max_) + " bytes used)");
  MS_RETURN_IF_ERROR(MakeDirs(dir_ + "/" + hex.substr(0, 2)));
  MS_RETURN_IF_ERROR(WriteFileDurable(PathOf(hex, h.index), blob));
  used_bytes_ = used_bytes_ - old + blob.size();
  sizes_[key] = blob.size();
  return Status::Ok();
}

Result<Bytes> FragmentStore::Get(const Bytes& chunk_id, uint32_t index) {
  if (chunk_id.size() != 32) return InvalidArgument("chunk id must be 32 bytes");
  std::string hex = ToHex(chunk_id);
  MS_ASSIGN_OR_RETURN(Bytes blob, ReadFileBytes(PathOf(hex, index), kFragmentFileBytesMax));
  auto parsed = ParseFragment(blob.data(), blob.size());
  if (!parsed.ok()) return Corrupt("fragment " + hex.substr(0, 12) + "." + std::to_string(index) +
                                   " fails its check: " + parsed.status().message());
  if (parsed->first.chunk_id != chunk_id || parsed->first.index != index)
    return Corrupt("fragment file holds another fragment");
  return blob;
}

}  // namespace mistore
