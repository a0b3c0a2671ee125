#include "shared/erasure/crc32c.h"

#include <array>
#include <cstring>
#include <string>

#if defined(MISTORE_HAVE_ISAL)
#include <isa-l/crc.h>
#endif
#if defined(__x86_64__)
#include <nmmintrin.h>
#endif
#if defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#endif

namespace mistore {
namespace {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

// Slicing-by-8 tables: t[0] is the classic byte table, t[j][b] the CRC of
// byte b followed by j zero bytes.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Tables() {
    for (uint32_t b = 0; b < 256; b++) {
      uint32_t c = b;
      for (int i = 0; i < 8; i++) c = (c >> 1) ^ ((c & 1) ? kPolyReflected : 0);
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
      for (int j = 1; j < 8; j++)
        t[j][b] = (t[j - 1][b] >> 8) ^ t[0][t[j - 1][b] & 0xff];
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

// `state` is the raw register (already inverted).
uint32_t TableUpdate(uint32_t state, const uint8_t* p, size_t len) {
  const auto& t = GetTables().t;
  while (len >= 8) {
    // Little-endian assembly of the 8 bytes, independent of the host order.
    const uint32_t lo = state ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 |
                                 uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    state = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
            t[4][lo >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    len -= 8;
  }
  while (len-- > 0) state = (state >> 8) ^ t[0][(state ^ *p++) & 0xff];
  return state;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Sse42Update(uint32_t state,
                                                       const uint8_t* p,
                                                       size_t len) {
  uint64_t s = state;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);  // x86 is little-endian
    s = _mm_crc32_u64(s, v);
    p += 8;
    len -= 8;
  }
  uint32_t s32 = uint32_t(s);
  while (len-- > 0) s32 = _mm_crc32_u8(s32, *p++);
  return s32;
}
#endif

#if defined(__ARM_FEATURE_CRC32)
uint32_t ArmUpdate(uint32_t state, const uint8_t* p, size_t len) {
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
#if defined(__ARM_BIG_ENDIAN)
    v = __builtin_bswap64(v);
#endif
    state = __crc32cd(state, v);
    p += 8;
    len -= 8;
  }
  while (len-- > 0) state = __crc32cb(state, *p++);
  return state;
}
#endif

#if defined(MISTORE_HAVE_ISAL)
uint32_t IsalUpdate(uint32_t state, const uint8_t* p, size_t len) {
  // crc32_iscsi takes an int length and neither inverts on entry nor on exit.
  constexpr size_t kStep = size_t{1} << 30;
  while (len > 0) {
    const size_t n = len < kStep ? len : kStep;
    state = crc32_iscsi(const_cast<uint8_t*>(p), int(n), state);
    p += n;
    len -= n;
  }
  // ISA-L's AVX-512 kernels leave the upper vector state dirty, which slows
  // SSE code that follows (libsodium's AES-GCM by 40%): clear it.
  static const bool avx = __builtin_cpu_supports("avx");
  if (avx) __asm__ volatile("vzeroupper" ::: "memory");
  return state;
}
#endif

using UpdateFn = uint32_t (*)(uint32_t, const uint8_t*, size_t);

struct Impl {
  UpdateFn fn;
  const char* name;
};

Impl Pick() {
#if defined(MISTORE_HAVE_ISAL)
  return {IsalUpdate, "isa-l"};
#endif
#if defined(__x86_64__)
  if (__builtin_cpu_supports("sse4.2")) return {Sse42Update, "sse4.2"};
#endif
#if defined(__ARM_FEATURE_CRC32)
  return {ArmUpdate, "armv8-crc"};
#endif
  return {TableUpdate, "table"};
}

const Impl& GetImpl() {
  static const Impl impl = Pick();
  return impl;
}

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t len, uint32_t crc) {
  if (len == 0) return crc;
  return ~GetImpl().fn(~crc, data, len);
}

uint32_t Crc32cPortable(const uint8_t* data, size_t len, uint32_t crc) {
  if (len == 0) return crc;
  return ~TableUpdate(~crc, data, len);
}

const char* Crc32cImplementation() { return GetImpl().name; }

bool Crc32cWith(const char* name, const uint8_t* data, size_t len, uint32_t crc,
                uint32_t* out) {
  UpdateFn fn = nullptr;
  const std::string n = name;
  if (n == "table") fn = TableUpdate;
#if defined(MISTORE_HAVE_ISAL)
  if (n == "isa-l") fn = IsalUpdate;
#endif
#if defined(__x86_64__)
  if (n == "sse4.2" && __builtin_cpu_supports("sse4.2")) fn = Sse42Update;
#endif
#if defined(__ARM_FEATURE_CRC32)
  if (n == "armv8-crc") fn = ArmUpdate;
#endif
  if (fn == nullptr) return false;
  *out = len == 0 ? crc : ~fn(~crc, data, len);
  return true;
}

}  // namespace mistore
