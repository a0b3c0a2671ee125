// Durable file helpers: write to a temporary name, fsync, rename, fsync the
// directory — so a power cut leaves either the old file or the new one, never
// a torn one. Blocking calls: use them from a worker thread or at start-up,
// or accept the stall on the loop (documented where done). Any thread.
#pragma once

#include <string>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

Status MakeDirs(const std::string& path);
Status WriteFileDurable(const std::string& path, const uint8_t* data, size_t len);
inline Status WriteFileDurable(const std::string& path, const Bytes& b) {
  return WriteFileDurable(path, b.data(), b.size());
}
// kNotFound if absent; kResourceExhausted if larger than bytes_max.
Result<Bytes> ReadFileBytes(const std::string& path, size_t bytes_max);
// The same into a string (for a protobuf bytes field without another copy).
Result<std::string> ReadFileString(const std::string& path, size_t bytes_max);
bool FileExists(const std::string& path);
// Asks the kernel to start writing [offset, offset + len) of fd to disk now,
// without waiting (Linux sync_file_range; elsewhere nothing). Best effort:
// a later fsync still decides durability, but finds little left to write.
void StartWriteback(int fd, uint64_t offset, uint64_t len);
Status RemoveFile(const std::string& path);

// Fault injection for tests: when the environment variable
// MISTORE_FAULT_FSYNC is set to N, the Nth and later fsyncs fail with EIO.
void ResetFsyncFaultCounterForTest();

}  // namespace mistore
