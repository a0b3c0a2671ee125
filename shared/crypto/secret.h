// SecretBytes: the owner of key material (master keys, subkeys, passphrase-
// derived keys) in every Mistore tier, and CryptoInit(), the one-time libsodium
// initialisation.
//
// Ownership: a SecretBytes exclusively owns one fixed-size heap buffer. It can
// be moved (the source is left empty: size() == 0, data() == nullptr) but not
// copied; an explicit Clone() is the only way to duplicate a key. The buffer is
// wiped with sodium_memzero when the object is destroyed or assigned over.
// Key bytes are never printed: operator<< is deleted, and the gtest printer
// hook below shows only the length.
//
// Why not sodium_malloc: it costs an mmap/mprotect/mlock of at least three
// pages per allocation, and an object key is derived per object on the hot
// path (and on small routers). Wiping on release is what we rely on; callers
// that need swap protection for long-lived master keys should disable swap or
// core dumps at the process level.
//
// Threads: a SecretBytes is plain data with no internal locking; one thread at
// a time may use a given object (const access from several threads is fine).
// CryptoInit() may be called from any thread, any number of times.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <utility>

#include "shared/core/assert.h"
#include "shared/core/status.h"

namespace mistore::crypto {

namespace internal {

// True once sodium_init() has succeeded. Thread-safe (function-local static);
// after the first call it costs one atomic load.
inline bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

}  // namespace internal

// Initialises libsodium (random source, CPU-specific implementations).
// Idempotent and thread-safe. Call it once at process start so a broken
// environment becomes a clean error; every function in shared/crypto also
// initialises lazily and asserts success, so forgetting it is not unsafe.
inline Status CryptoInit() {
  if (!internal::SodiumReady()) return Internal("libsodium initialisation failed");
  return Status::Ok();
}

class SecretBytes {
 public:
  // Empty: size() == 0, data() == nullptr.
  SecretBytes() = default;

  // `size` zero bytes, to be filled through mutable_data().
  explicit SecretBytes(size_t size)
      : data_(size ? new uint8_t[size]() : nullptr), size_(size) {}

  // Copies `size` bytes from `data`. The caller remains responsible for
  // wiping its own copy.
  SecretBytes(const uint8_t* data, size_t size) : SecretBytes(size) {
    if (size) std::memcpy(data_.get(), data, size);
  }

  // `size` bytes from the system CSPRNG.
  static SecretBytes Random(size_t size) {
    MS_ASSERT(internal::SodiumReady());
    SecretBytes s(size);
    if (size) randombytes_buf(s.data_.get(), size);
    return s;
  }

  SecretBytes(SecretBytes&& other) noexcept
      : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      Wipe();
      data_ = std::move(other.data_);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  ~SecretBytes() { Wipe(); }

  // An explicit duplicate (both copies are wiped independently).
  SecretBytes Clone() const { return SecretBytes(data_.get(), size_); }

  const uint8_t* data() const { return data_.get(); }
  uint8_t* mutable_data() { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Constant-time comparison of contents (the length is not secret).
  bool Equals(const SecretBytes& other) const {
    if (size_ != other.size_) return false;
    if (size_ == 0) return true;
    return sodium_memcmp(data_.get(), other.data_.get(), size_) == 0;
  }

  // Streaming key bytes is a compile error, not a leak.
  friend std::ostream& operator<<(std::ostream&, const SecretBytes&) = delete;

 private:
  void Wipe() {
    if (data_) sodium_memzero(data_.get(), size_);
    data_.reset();
    size_ = 0;
  }

  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

// Found by gtest (and anything else using the PrintTo convention) through ADL,
// so a failing assertion can never dump key bytes into a log.
inline void PrintTo(const SecretBytes& s, std::ostream* os) {
  *os << "SecretBytes(" << s.size() << " bytes, redacted)";
}

}  // namespace mistore::crypto
