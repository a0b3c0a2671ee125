#include "dc-backend/backup_store.h"

#include <sodium.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include "shared/store/file_util.h"

namespace mistore {

namespace {

// File layout: 8-byte magic, 32-byte BLAKE2b-256 of the payload, payload.
constexpr char kMagic[8] = {'M', 'S', 'B', 'A', 'K', '0', '0', '1'};
constexpr size_t kHashBytes = 32;
constexpr size_t kHeaderBytes = sizeof(kMagic) + kHashBytes;
constexpr size_t kKeyBytesMax = 512;

void Hash(const Bytes& data, uint8_t out[kHashBytes]) {
  crypto_generichash(out, kHashBytes, data.data(), data.size(), nullptr, 0);
}

// Keys are what BackupChunkKey/BackupVersionKey make: lower-case hex,
// digits and '/' separated parts, no empty, "." or ".." part.
Status CheckKey(const std::string& key) {
  if (key.empty() || key.size() > kKeyBytesMax) return InvalidArgument("backup key length");
  size_t part = 0;
  for (char c : key) {
    if (c == '/') {
      if (part == 0) return InvalidArgument("backup key with an empty part: " + key);
      part = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return InvalidArgument("backup key with a bad character: " + key);
    part++;
  }
  if (part == 0) return InvalidArgument("backup key ends with '/': " + key);
  return Status::Ok();
}

class FileBackupStore : public BackupStore {
 public:
  FileBackupStore(std::string dir, FileBackupStoreLimits limits)
      : dir_(std::move(dir)), limits_(limits) {}

  Status Init() {
    MS_RETURN_IF_ERROR(MakeDirs(dir_));
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir_, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      if (it->path().filename().string().find(".tmp") != std::string::npos) continue;
      uint64_t size = it->file_size(ec);
      if (ec) break;
      objects_++;
      used_ += size > kHeaderBytes ? size - kHeaderBytes : 0;
    }
    if (ec) return IoError("scanning the backup store " + dir_ + ": " + ec.message());
    return Status::Ok();
  }

  Status Put(const std::string& key, const Bytes& data) override {
    MS_RETURN_IF_ERROR(CheckKey(key));
    if (data.size() > limits_.object_bytes_max)
      return ResourceExhausted("backup object of " + std::to_string(data.size()) +
                               " bytes; at most " + std::to_string(limits_.object_bytes_max));
    std::string path = Path(key);
    uint64_t old = OldSize(path);
    uint64_t replaced = old == kAbsent ? 0 : old;
    if (used_ - replaced + data.size() > limits_.bytes_max)
      return ResourceExhausted("backup store full (" + std::to_string(used_) + " of " +
                               std::to_string(limits_.bytes_max) + " bytes)");
    Bytes file(kHeaderBytes + data.size());
    std::memcpy(file.data(), kMagic, sizeof(kMagic));
    Hash(data, file.data() + sizeof(kMagic));
    if (!data.empty()) std::memcpy(file.data() + kHeaderBytes, data.data(), data.size());
    MS_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
    MS_RETURN_IF_ERROR(WriteFileDurable(path, file));
    if (old == kAbsent) {
      objects_++;
      used_ += data.size();
    } else {
      used_ = used_ - old + data.size();
    }
    return Status::Ok();
  }

  Result<Bytes> Get(const std::string& key) override {
    MS_RETURN_IF_ERROR(CheckKey(key));
    std::string path = Path(key);
    if (!FileExists(path)) return NotFound("no backup object " + key);
    MS_ASSIGN_OR_RETURN(Bytes file, ReadFileBytes(path, limits_.object_bytes_max + kHeaderBytes));
    if (file.size() < kHeaderBytes || std::memcmp(file.data(), kMagic, sizeof(kMagic)) != 0)
      return Corrupt("backup object " + key + " has no valid header");
    Bytes data(file.begin() + kHeaderBytes, file.end());
    uint8_t h[kHashBytes];
    Hash(data, h);
    if (std::memcmp(h, file.data() + sizeof(kMagic), kHashBytes) != 0)
      return Corrupt("backup object " + key + " fails its check");
    return data;
  }

  Status Delete(const std::string& key) override {
    MS_RETURN_IF_ERROR(CheckKey(key));
    std::string path = Path(key);
    uint64_t old = OldSize(path);
    if (old == kAbsent) return Status::Ok();
    MS_RETURN_IF_ERROR(RemoveFile(path));
    objects_--;
    used_ -= std::min(used_, old);
    return Status::Ok();
  }

  Result<bool> Exists(const std::string& key) override {
    MS_RETURN_IF_ERROR(CheckKey(key));
    return FileExists(Path(key));
  }

  uint64_t used_bytes() const override { return used_; }
  uint64_t objects() const override { return objects_; }

 private:
  static constexpr uint64_t kAbsent = UINT64_MAX;
  std::string Path(const std::string& key) const { return dir_ + "/" + key; }
  // Payload size of the object at path, kAbsent when there is none.
  static uint64_t OldSize(const std::string& path) {
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return kAbsent;
    return size > kHeaderBytes ? size - kHeaderBytes : 0;
  }

  std::string dir_;
  FileBackupStoreLimits limits_;
  uint64_t used_ = 0;
  uint64_t objects_ = 0;
};

}  // namespace

std::string BackupChunkKey(const std::string& subscriber, const Bytes& chunk_id) {
  std::string id = ToHex(chunk_id);
  std::string sub = ToHex(Bytes(subscriber.begin(), subscriber.end()));
  if (sub.empty()) sub = "_";
  return "chunks/" + sub + "/" + (id.size() >= 2 ? id.substr(0, 2) : std::string("_")) + "/" +
         (id.empty() ? std::string("_") : id);
}

std::string BackupVersionKey(const Bytes& oid, uint64_t version) {
  std::string o = ToHex(oid);
  return "versions/" + (o.empty() ? std::string("_") : o) + "/" + std::to_string(version);
}

Result<std::unique_ptr<BackupStore>> OpenFileBackupStore(const std::string& dir,
                                                         FileBackupStoreLimits limits) {
  auto s = std::make_unique<FileBackupStore>(dir, limits);
  MS_RETURN_IF_ERROR(s->Init());
  return std::unique_ptr<BackupStore>(std::move(s));
}

}  // namespace mistore
