// Bounded memory of the whole data path: a 4 GiB generated stream goes
// through the client's write pipeline (ChunkSealer: FastCDC with the
// production sizes -> keyed chunk id -> XChaCha20-Poly1305) and the POP's
// encode (EncodeChunkToFragments, RS k=8 m=4 with fragment headers), one
// chunk at a time, and the process's peak RSS (VmHWM) must stay under
// 128 MiB. Every 16th chunk and every forced (max-size) cut is also taken
// back: decoded with 4 data fragments missing, opened, its id re-checked
// and its bytes compared with the generator's.
//
// The input is cheap to make and to check: 64 MiB periods of 48 MiB
// splitmix64 bytes (content-defined cuts) and 16 MiB of zeros (a hole in a
// sparse file: no cut point, so forced 4 MiB chunks, the largest buffers the
// pipeline handles). Any byte can be regenerated from its offset.
//
// Size: 4 GiB in optimised builds without sanitizers (about 20 s on two idle
// cores of a 2 GHz EPYC); 256 MiB otherwise, unless MISTORE_LONG_TESTS=1. Under ASan the RSS
// check is skipped (its shadow memory and quarantine are not ours).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shared/chunking/cdc.h"
#include "shared/crypto/aead.h"
#include "shared/crypto/keys.h"
#include "shared/erasure/chunk_codec.h"
#include "sync-client/client.h"

#if defined(__SANITIZE_ADDRESS__)
#define MS_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MS_TEST_ASAN 1
#endif
#endif
#ifndef MS_TEST_ASAN
#define MS_TEST_ASAN 0
#endif

namespace mistore {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kPeriod = 64 * kMiB;
constexpr uint64_t kRandomPart = 48 * kMiB;  // then 16 MiB of zeros
constexpr uint64_t kSeed = 0x6d656d2d74657374ULL;  // "mem-test"
constexpr int kK = 8, kM = 4;

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Byte `off` of the stream: splitmix64 word off / 8 (little-endian), or 0 in
// the holes. Word w is Mix(kSeed + (w + 1) * golden), so any offset can be
// produced without generating what comes before it.
void Generate(uint64_t off, uint8_t* out, size_t n) {
  while (n > 0) {
    const uint64_t in_period = off % kPeriod;
    if (in_period >= kRandomPart) {
      const size_t z = size_t(std::min<uint64_t>(n, kPeriod - in_period));
      std::memset(out, 0, z);
      out += z, off += z, n -= z;
      continue;
    }
    const size_t r = size_t(std::min<uint64_t>(n, kRandomPart - in_period));
    size_t i = 0;
    // Unaligned head and tail bytes one at a time, whole words in between.
    while (i < r && (off + i) % 8 != 0) {
      const uint64_t w = off + i;
      out[i] = uint8_t(Mix(kSeed + (w / 8 + 1) * 0x9e3779b97f4a7c15ULL) >> (8 * (w % 8)));
      i++;
    }
    for (; i + 8 <= r; i += 8) {
      PutLe64(out + i, Mix(kSeed + ((off + i) / 8 + 1) * 0x9e3779b97f4a7c15ULL));
    }
    for (; i < r; i++) {
      const uint64_t w = off + i;
      out[i] = uint8_t(Mix(kSeed + (w / 8 + 1) * 0x9e3779b97f4a7c15ULL) >> (8 * (w % 8)));
    }
    out += r, off += r, n -= r;
  }
}

// VmHWM (peak resident set) in bytes, from /proc/self/status.
uint64_t PeakRssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

bool Optimised() {
#if defined(__OPTIMIZE__)
  return !MS_TEST_ASAN;
#else
  return false;
#endif
}

TEST(StreamMemoryTest, FourGiBThroughTheWritePipelineInBoundedMemory) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  const char* env = std::getenv("MISTORE_LONG_TESTS");
  const bool full = Optimised() || (env != nullptr && std::string(env) == "1");
  const uint64_t total = full ? 4096 * kMiB : 256 * kMiB;
  const uint64_t rss_limit = 128 * kMiB;

  const crypto::SecretBytes id_key = crypto::SecretBytes::Random(32);
  const crypto::SecretBytes chunk_key = crypto::SecretBytes::Random(32);
  const CdcParams params;  // production sizes: 256 KiB / 1 MiB / 4 MiB
  uint64_t produced = 0;
  ChunkSealer sealer(
      id_key, chunk_key, params,
      [&](uint8_t* buf, size_t cap) -> Result<size_t> {
        const size_t n = size_t(std::min<uint64_t>(cap, total - produced));
        Generate(produced, buf, n);
        produced += n;
        return n;
      },
      size_t{1} << 20);

  // Two stages on two threads, as on two machines: the client's (this
  // thread: read, cut, id, seal) and the POP's (encode; and here also the
  // read-side check of some chunks), joined by a queue of at most two
  // sealed chunks, so memory stays bounded by construction.
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<SealedChunk> items;
    bool done = false;
  } queue;
  constexpr size_t kQueueMax = 2;
  uint64_t chunks = 0, forced = 0, checked = 0, fragment_bytes = 0;
  std::string pop_error;  // first failure seen by the POP stage
  std::thread pop([&] {
    Bytes expect;
    for (;;) {
      SealedChunk c;
      {
        std::unique_lock<std::mutex> l(queue.mu);
        queue.cv.wait(l, [&] { return !queue.items.empty() || queue.done; });
        if (queue.items.empty()) return;
        c = std::move(queue.items.front());
        queue.items.pop_front();
      }
      queue.cv.notify_all();
      if (!pop_error.empty()) continue;  // drain
      const auto* sealed = reinterpret_cast<const uint8_t*>(c.sealed.data());
      Result<std::vector<Bytes>> blobs = EncodeChunkToFragments(c.id, sealed, c.sealed.size(), kK, kM);
      if (!blobs.ok() || blobs->size() != size_t(kK + kM)) {
        pop_error = "encode: " + blobs.status().ToString();
        continue;
      }
      for (const Bytes& b : *blobs) fragment_bytes += b.size();
      const bool is_forced = c.plain_len == params.max_bytes;
      // The read side for every 16th chunk and every 16th forced one: 4
      // data fragments lost, the rest decoded, opened, checked against the
      // id and against the generator.
      if (chunks % 16 == 0 || (is_forced && forced % 16 == 0)) {
        std::vector<Bytes> survivors(blobs->begin() + 4, blobs->end());
        Result<Bytes> back = DecodeChunkFromFragments(c.id, survivors, kK, kM, c.sealed.size());
        Result<Bytes> plain = back.ok() ? crypto::Open(chunk_key, back->data(), back->size(),
                                                       c.id.data(), c.id.size())
                                        : back.status();
        expect.resize(c.plain_len);
        Generate(c.offset, expect.data(), expect.size());
        if (!plain.ok() || crypto::KeyedHash32(id_key, plain->data(), plain->size()) != c.id ||
            *plain != expect) {
          pop_error = "chunk " + std::to_string(chunks) + " at " + std::to_string(c.offset) +
                      " does not come back";
        }
        checked++;
      }
      forced += is_forced ? 1 : 0;
      chunks++;
    }
  });

  const auto start = std::chrono::steady_clock::now();
  Status client_error;
  for (;;) {
    SealedChunk c;
    Result<bool> more = sealer.Next(&c);
    if (!more.ok()) client_error = more.status();
    if (!more.ok() || !more.value()) break;
    if (c.plain_len > params.max_bytes) {
      client_error = Internal("chunk of " + std::to_string(c.plain_len) + " bytes");
      break;
    }
    std::unique_lock<std::mutex> l(queue.mu);
    queue.cv.wait(l, [&] { return queue.items.size() < kQueueMax; });
    queue.items.push_back(std::move(c));
    l.unlock();
    queue.cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> l(queue.mu);
    queue.done = true;
  }
  queue.cv.notify_all();
  pop.join();
  ASSERT_TRUE(client_error.ok()) << client_error.ToString();
  ASSERT_EQ(pop_error, "");
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const uint64_t peak = PeakRssBytes();
  std::printf(
      "streamed %llu MiB in %llu chunks (%llu forced max-size, %llu decoded and checked), "
      "%.1f s, %.0f MB/s of plaintext; fragments %.3f x plaintext; peak RSS %.1f MiB\n",
      (unsigned long long)(total / kMiB), (unsigned long long)chunks,
      (unsigned long long)forced, (unsigned long long)checked, secs, double(total) / secs / 1e6,
      double(fragment_bytes) / double(total), double(peak) / double(kMiB));

  EXPECT_EQ(produced, total);
  EXPECT_EQ(sealer.bytes_out(), total);
  // 3/4 of the stream is random (about 1.14 MiB per chunk), 1/4 is zeros
  // (4 MiB per chunk).
  EXPECT_GE(forced, total / kPeriod * 3);
  EXPECT_GT(chunks, total / (2 * kMiB));
  EXPECT_LT(chunks, total / (512 * 1024));
  if (MS_TEST_ASAN) {
    std::printf("AddressSanitizer build: peak RSS not checked\n");
  } else {
    ASSERT_GT(peak, 0u) << "no VmHWM in /proc/self/status";
    EXPECT_LT(peak, rss_limit) << "peak RSS " << peak / kMiB << " MiB";
  }
}

}  // namespace
}  // namespace mistore
