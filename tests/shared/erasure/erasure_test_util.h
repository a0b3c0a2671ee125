// Helpers shared by the shared/erasure unit tests: reproducible randomness.
// Test-only, single-threaded unless a test says otherwise.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "shared/core/bytes.h"

namespace mistore::erasure_test {

// The seed for randomised tests: $MISTORE_TEST_SEED if set (to replay a
// failure), else a fresh one. Tests print it with SCOPED_TRACE.
inline uint32_t TestSeed() {
  if (const char* env = std::getenv("MISTORE_TEST_SEED")) {
    return uint32_t(std::strtoul(env, nullptr, 10));
  }
  return std::random_device{}();
}

inline std::string SeedTrace(uint32_t seed) {
  return "seed " + std::to_string(seed) +
         " (replay with MISTORE_TEST_SEED=" + std::to_string(seed) + ")";
}

inline Bytes RandomBytes(std::mt19937& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = uint8_t(rng());
  return b;
}

inline int RandomInt(std::mt19937& rng, int lo, int hi) {  // inclusive
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

}  // namespace mistore::erasure_test
