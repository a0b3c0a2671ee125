#include "shared/store/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mistore {

static std::atomic<long> g_fsyncs{0};

void ResetFsyncFaultCounterForTest() { g_fsyncs = 0; }

static int Fsync(int fd) {
  static const char* fault = std::getenv("MISTORE_FAULT_FSYNC");
  long n = ++g_fsyncs;
  if (fault && n >= std::atol(fault)) {
    errno = EIO;
    return -1;
  }
  return fsync(fd);
}

static Status Errno(const std::string& what, const std::string& path) {
  return IoError(what + " " + path + ": " + std::strerror(errno));
}

Status MakeDirs(const std::string& path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); i++) {
    if (i == path.size() || path[i] == '/') {
      if (!cur.empty() && mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
        return Errno("mkdir", cur);
    }
    if (i < path.size()) cur += path[i];
  }
  return Status::Ok();
}

static Status SyncDirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (dir.empty()) dir = "/";
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno("open dir", dir);
  int rc = Fsync(fd);
  close(fd);
  if (rc != 0) return Errno("fsync dir", dir);
  return Status::Ok();
}

Status WriteFileDurable(const std::string& path, const uint8_t* data, size_t len) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("open", tmp);
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = Errno("write", tmp);
      close(fd);
      unlink(tmp.c_str());
      return st;
    }
    done += size_t(n);
  }
  if (Fsync(fd) != 0) {
    Status st = Errno("fsync", tmp);
    close(fd);
    unlink(tmp.c_str());
    return st;
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = Errno("rename", tmp);
    unlink(tmp.c_str());
    return st;
  }
  return SyncDirOf(path);
}

namespace {
// The whole file into a Bytes or a std::string (no second copy).
template <typename Buffer>
Result<Buffer> ReadFileInto(const std::string& path, size_t bytes_max) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound(path);
    return Errno("open", path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = Errno("stat", path);
    close(fd);
    return s;
  }
  if (size_t(st.st_size) > bytes_max) {
    close(fd);
    return ResourceExhausted(path + " is larger than " + std::to_string(bytes_max) + " bytes");
  }
  Buffer out(size_t(st.st_size), 0);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += size_t(n);
  }
  close(fd);
  out.resize(done);
  return out;
}
}  // namespace

Result<Bytes> ReadFileBytes(const std::string& path, size_t bytes_max) {
  return ReadFileInto<Bytes>(path, bytes_max);
}

Result<std::string> ReadFileString(const std::string& path, size_t bytes_max) {
  return ReadFileInto<std::string>(path, bytes_max);
}

void StartWriteback(int fd, uint64_t offset, uint64_t len) {
#ifdef __linux__
  if (len > 0) (void)sync_file_range(fd, off64_t(offset), off64_t(len), SYNC_FILE_RANGE_WRITE);
#else
  (void)fd;
  (void)offset;
  (void)len;
#endif
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

Status RemoveFile(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("unlink", path);
  return Status::Ok();
}

}  // namespace mistore
