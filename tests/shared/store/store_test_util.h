// Test helpers: temp directories, seeds, random bytes. Written for the
// shared/store unit tests, used by any unit test that needs them (the POP
// store and DC admin tests too). Test-only, single-threaded.
#pragma once

#include <dirent.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shared/core/bytes.h"

namespace mistore::store_test {

// A fresh directory under /tmp (mkdtemp), removed with its contents.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mistore_store_test.XXXXXX";
    char* p = mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every regular file under dir (recursively), as paths relative to dir.
inline std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file()) out.push_back(std::filesystem::relative(it->path(), dir).string());
  }
  return out;
}

// $MISTORE_TEST_SEED replays a failure; otherwise a fresh seed.
inline uint32_t TestSeed() {
  if (const char* env = std::getenv("MISTORE_TEST_SEED"))
    return uint32_t(std::strtoul(env, nullptr, 10));
  return std::random_device{}();
}

inline std::string SeedTrace(uint32_t seed) {
  return "seed " + std::to_string(seed) + " (replay with MISTORE_TEST_SEED=" +
         std::to_string(seed) + ")";
}

inline Bytes RandomBytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

}  // namespace mistore::store_test
