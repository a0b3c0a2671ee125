// mistore-bench: per-core throughput of every stage of the data path and of
// the whole write and read pipelines, next to memcpy of the same buffers in
// the same run (the machine's own limit). Google Benchmark; every figure is
// bytes_per_second of PLAINTEXT (chunk bytes before sealing), so stages add
// up: a stage costing 1/x seconds per byte bounds a pipeline at
// 1 / sum(1/x_i). docs/benchmarks.md has the results and how to read them.
//
// Run (release build):  tests/bench/run.sh        (benchmarks + markdown table)
//                  or:  build/release/bin/mistore-bench [--benchmark_filter=pipeline]
//
// The argument of every size-dependent benchmark is the FRAGMENT size F; the
// chunk is k * F (RS k = 8, m = 4): F = 64 KiB -> 512 KiB chunks, F = 128 KiB
// -> 1 MiB chunks (the production average: FastCDC 256 KiB / 1 MiB / 4 MiB),
// F = 1 MiB -> 8 MiB chunks. Pipelines cut a 64 MiB buffer with FastCDC
// (2F / 8F / 32F), so their chunks average ~1.14 x 8F.
//
//   memcpy/F                 memcpy of one 8F chunk
//   chunking/F               FastCDC boundaries over 64 MiB (2F / 8F / 32F)
//   chunking_stream/F        the same through CdcStream (adds the read copy)
//   blake2b_keyed/F          chunk id: keyed BLAKE2b-256 of an 8F chunk
//   blake2b_fragments/F      unkeyed BLAKE2b-256 of the 12 F-byte fragments
//                            (the fragment format's payload hashes)
//   aead_seal/F, aead_open/F XChaCha20-Poly1305 of an 8F chunk (32-byte AD)
//   rs_encode/F              ReedSolomon::Encode of an 8F chunk (k=8, m=4;
//                            vector interface: allocates and copies)
//   rs_encode_isal/F         ReedSolomon::EncodeRegions (what the chunk codec
//   rs_encode_jerasure/F     runs: preallocated blobs) with each backend
//   crc32c_fragments/F       Crc32c (shared/erasure/crc32c.h) of the 12
//                            F-byte fragments (format v2 payload checks)
//   rs_decode_4_lost/F       ReedSolomon::Decode with data fragments 0-3 lost
//   fragment_encode/F        EncodeChunkToFragments: blobs built in place,
//                            encode + 12 v2 headers (the POP's placement step)
//   fragment_decode/F        DecodeChunkFromFragments from all 12 blobs
//                            (parse, CRC32C, parity re-encoded and compared)
//   raw_*/F                  the libraries alone (jerasure_matrix_encode on
//                            preallocated buffers, XChaCha20-Poly1305 without
//                            allocation) and primitives the data path does not
//                            use (AES-256-GCM, Poly1305, SHA-256, CRC32C):
//                            figures for the proposals
//   pipeline_write/F         ChunkSealer (read copy, FastCDC, keyed id, seal)
//                            + EncodeChunkToFragments, over 64 MiB
//   fragment_tags/F          ComputeFragmentTags (sync-client/fragment_tags.h)
//                            of an 8F sealed chunk: the client's own RS
//                            encode + Poly1305 of the 12 fragment payloads
//   pipeline_write_tagged/F  pipeline_write plus fragment_tags per chunk:
//                            what `mistore put` computes since manifest
//                            format 2 (issue 3), then the POP's encode
//   pipeline_read/F          DecodeChunkFromFragments (all 12 blobs: parse,
//                            verify, decode) + open + id check
//   pipeline_read_4_lost/F   the same with data fragments 0-3 missing
//   pipeline_write_2threads/F  two threads, each its own half of the buffer:
//                            both cores' combined throughput (timed by the
//                            slower thread's CPU time, see below)
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "shared/chunking/cdc.h"
#include "shared/erasure/crc32c.h"
#include "shared/core/assert.h"
#include "shared/crypto/aead.h"
#include "shared/crypto/keys.h"
#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/reed_solomon.h"
#include "sync-client/client.h"
#include "sync-client/fragment_tags.h"

// Jerasure 2 (C headers with their own extern "C"; jerasure.h includes
// "galois.h" from <include>/jerasure/).
#include <jerasure.h>
#include <jerasure/reed_sol.h>

namespace mistore {
namespace {

constexpr int kK = 8, kM = 4;
constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
constexpr size_t kStreamBytes = 64 * kMiB;

// splitmix64 bytes: incompressible, so chunking sees realistic content.
Bytes RandomBytes(uint64_t seed, size_t n) {
  Bytes b(n);
  uint64_t state = seed;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    PutLe64(&b[i], z ^ (z >> 31));
  }
  return b;
}

const Bytes& Stream() {
  static const Bytes b = RandomBytes(0x62656e63682d6364ULL, kStreamBytes);
  return b;
}

struct Keys {
  crypto::SecretBytes id_key;
  crypto::SecretBytes chunk_key;
};
const Keys& TheKeys() {
  static const Keys k = [] {
    MS_ASSERT(crypto::CryptoInit().ok());
    return Keys{crypto::SecretBytes::Random(32), crypto::SecretBytes::Random(32)};
  }();
  return k;
}

// The client's fragment-tag key (sync-client/fragment_tags.h). Initialises
// libsodium first, as TheKeys() does and the client's start-up does: without
// sodium_init, crypto_onetimeauth runs its portable implementation instead
// of the SSE2 one (about as fast on this Zen 1 core; a profile then shows it
// at other addresses, see docs/benchmarks.md).
const crypto::SecretBytes& TheTagKey() {
  static const crypto::SecretBytes k = [] {
    MS_ASSERT(crypto::CryptoInit().ok());
    return crypto::SecretBytes::Random(32);
  }();
  return k;
}

size_t Fragment(const benchmark::State& s) { return size_t(s.range(0)); }
size_t ChunkOf(const benchmark::State& s) { return kK * Fragment(s); }
CdcParams ParamsOf(const benchmark::State& s) {
  const size_t avg = ChunkOf(s);
  return CdcParams{avg / 4, avg, avg * 4};
}
void PlainBytes(benchmark::State& s, size_t per_iteration) {
  s.SetBytesProcessed(int64_t(s.iterations()) * int64_t(per_iteration));
}
ReedSolomon MakeRs() {
  Result<ReedSolomon> rs = ReedSolomon::Create(kK, kM);
  MS_ASSERT(rs.ok());
  return std::move(rs).value();
}

// ---------------------------------------------------------------- stages

void BM_memcpy(benchmark::State& s) {
  const Bytes src = RandomBytes(1, ChunkOf(s));
  Bytes dst(src.size());
  for (auto _ : s) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  PlainBytes(s, src.size());
}

void BM_chunking(benchmark::State& s) {
  const Bytes& data = Stream();
  const CdcParams p = ParamsOf(s);
  size_t chunks = 0;
  for (auto _ : s) {
    std::vector<size_t> ends = ChunkBoundaries(data.data(), data.size(), p);
    chunks = ends.size();
    benchmark::DoNotOptimize(ends.data());
  }
  PlainBytes(s, data.size());
  s.counters["chunks"] = double(chunks);
}

void BM_chunking_stream(benchmark::State& s) {
  const Bytes& data = Stream();
  const CdcParams p = ParamsOf(s);
  for (auto _ : s) {
    size_t off = 0;
    CdcStream stream(p, [&](uint8_t* buf, size_t cap) -> Result<size_t> {
      const size_t n = std::min(cap, data.size() - off);
      std::memcpy(buf, data.data() + off, n);
      off += n;
      return n;
    });
    std::span<const uint8_t> view;
    for (;;) {
      Result<bool> more = stream.NextView(&view);
      if (!more.ok() || !more.value()) break;
      benchmark::DoNotOptimize(view.data());
    }
  }
  PlainBytes(s, data.size());
}

void BM_blake2b_keyed(benchmark::State& s) {
  const Bytes chunk = RandomBytes(2, ChunkOf(s));
  for (auto _ : s) {
    Bytes id = crypto::KeyedHash32(TheKeys().id_key, chunk.data(), chunk.size());
    benchmark::DoNotOptimize(id.data());
  }
  PlainBytes(s, chunk.size());
}

void BM_blake2b_fragments(benchmark::State& s) {
  const size_t f = Fragment(s);
  const Bytes frags = RandomBytes(3, (kK + kM) * f);
  uint8_t out[32];
  for (auto _ : s) {
    for (int i = 0; i < kK + kM; i++) {
      crypto_generichash(out, sizeof out, frags.data() + i * f, f, nullptr, 0);
      benchmark::DoNotOptimize(out);
    }
  }
  PlainBytes(s, kK * f);  // per plaintext byte: 1.5 bytes hashed
}

void BM_aead_seal(benchmark::State& s) {
  const Bytes chunk = RandomBytes(4, ChunkOf(s));
  const Bytes ad(32, 7);
  for (auto _ : s) {
    Bytes sealed = crypto::Seal(TheKeys().chunk_key, chunk.data(), chunk.size(), ad.data(), ad.size());
    benchmark::DoNotOptimize(sealed.data());
  }
  PlainBytes(s, chunk.size());
}

void BM_aead_open(benchmark::State& s) {
  const Bytes chunk = RandomBytes(5, ChunkOf(s));
  const Bytes ad(32, 7);
  const Bytes sealed = crypto::Seal(TheKeys().chunk_key, chunk.data(), chunk.size(), ad.data(), ad.size());
  for (auto _ : s) {
    Result<Bytes> plain = crypto::Open(TheKeys().chunk_key, sealed.data(), sealed.size(), ad.data(), ad.size());
    MS_ASSERT(plain.ok());
    benchmark::DoNotOptimize(plain->data());
  }
  PlainBytes(s, chunk.size());
}

void BM_rs_encode(benchmark::State& s) {
  const ReedSolomon rs = MakeRs();
  const Bytes chunk = RandomBytes(6, ChunkOf(s));
  std::vector<Bytes> frags;
  for (auto _ : s) {
    Status st = rs.Encode(chunk.data(), chunk.size(), &frags);
    MS_ASSERT(st.ok());
    benchmark::DoNotOptimize(frags.data());
  }
  PlainBytes(s, chunk.size());
}

void BM_rs_decode_4_lost(benchmark::State& s) {
  const ReedSolomon rs = MakeRs();
  const Bytes chunk = RandomBytes(7, ChunkOf(s));
  std::vector<Bytes> encoded;
  MS_ASSERT(rs.Encode(chunk.data(), chunk.size(), &encoded).ok());
  std::vector<std::optional<Bytes>> frags(encoded.begin(), encoded.end());
  for (auto _ : s) {
    for (int i = 0; i < 4; i++) frags[i].reset();  // Decode refills them
    Result<Bytes> back = rs.Decode(frags, chunk.size());
    MS_ASSERT(back.ok());
    benchmark::DoNotOptimize(back->data());
  }
  MS_ASSERT(std::equal(frags[0]->begin(), frags[0]->end(), chunk.begin()));
  PlainBytes(s, chunk.size());
}

// EncodeRegions on preallocated fragment buffers, as EncodeChunkToFragments
// calls it (payloads at offset 72 of their blobs).
void EncodeRegionsBench(benchmark::State& s, ReedSolomon::Backend backend) {
  Result<ReedSolomon> rs = ReedSolomon::Create(kK, kM, backend);
  if (!rs.ok()) {
    s.SkipWithError(rs.status().message().c_str());
    return;
  }
  const size_t f = Fragment(s);
  const Bytes chunk = RandomBytes(17, kK * f);
  std::vector<Bytes> blobs(kK + kM, Bytes(72 + f));
  std::vector<const uint8_t*> data(kK);
  std::vector<uint8_t*> parity(kM);
  for (int i = 0; i < kK; i++) {
    std::memcpy(blobs[i].data() + 72, chunk.data() + i * f, f);
    data[i] = blobs[i].data() + 72;
  }
  for (int i = 0; i < kM; i++) parity[i] = blobs[kK + i].data() + 72;
  for (auto _ : s) {
    rs->EncodeRegions(data.data(), parity.data(), f);
    benchmark::DoNotOptimize(parity[0]);
    benchmark::ClobberMemory();
  }
  PlainBytes(s, kK * f);
}
void BM_rs_encode_isal(benchmark::State& s) {
  EncodeRegionsBench(s, ReedSolomon::Backend::kIsal);
}
void BM_rs_encode_jerasure(benchmark::State& s) {
  EncodeRegionsBench(s, ReedSolomon::Backend::kJerasure);
}

void BM_crc32c_fragments(benchmark::State& s) {
  const size_t f = Fragment(s);
  const Bytes frags = RandomBytes(18, (kK + kM) * f);
  for (auto _ : s) {
    for (int i = 0; i < kK + kM; i++) benchmark::DoNotOptimize(Crc32c(frags.data() + i * f, f));
  }
  PlainBytes(s, kK * f);  // 12 fragments per 8F plaintext
}

// Issue 3: the client's fragment tags of one sealed 8F chunk.
void BM_fragment_tags(benchmark::State& s) {
  const Bytes sealed = RandomBytes(21, ChunkOf(s) + crypto::kSealOverhead);
  const Bytes id = RandomBytes(22, 32);
  for (auto _ : s) {
    Result<Bytes> tags = ComputeFragmentTags(TheTagKey(), id, sealed.data(), sealed.size(), kK, kM);
    MS_ASSERT(tags.ok());
    benchmark::DoNotOptimize(tags->data());
  }
  PlainBytes(s, ChunkOf(s));
}

void BM_fragment_encode(benchmark::State& s) {
  const Bytes chunk = RandomBytes(8, ChunkOf(s));
  const Bytes id(32, 9);
  for (auto _ : s) {
    Result<std::vector<Bytes>> blobs = EncodeChunkToFragments(id, chunk.data(), chunk.size(), kK, kM);
    MS_ASSERT(blobs.ok());
    benchmark::DoNotOptimize(blobs->data());
  }
  PlainBytes(s, chunk.size());
}

void BM_fragment_decode(benchmark::State& s) {
  const Bytes chunk = RandomBytes(10, ChunkOf(s));
  const Bytes id(32, 9);
  const std::vector<Bytes> blobs = EncodeChunkToFragments(id, chunk.data(), chunk.size(), kK, kM).value();
  for (auto _ : s) {
    Result<Bytes> back = DecodeChunkFromFragments(id, blobs, kK, kM, chunk.size());
    MS_ASSERT(back.ok());
    benchmark::DoNotOptimize(back->data());
  }
  PlainBytes(s, chunk.size());
}

// ------------------------------------------- raw primitives (alternatives)
// What the libraries and the CPU offer besides what the data path uses now,
// over the same 8F buffers: the figures behind the proposals in
// docs/benchmarks.md. Not part of any pipeline.

void BM_raw_aead_aes256gcm(benchmark::State& s) {
  if (!crypto_aead_aes256gcm_is_available()) {
    s.SkipWithError("no AES-NI / PCLMUL");
    return;
  }
  const Bytes chunk = RandomBytes(11, ChunkOf(s));
  Bytes out(chunk.size() + crypto_aead_aes256gcm_ABYTES);
  uint8_t key[crypto_aead_aes256gcm_KEYBYTES] = {1};
  uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES] = {2};
  for (auto _ : s) {
    unsigned long long clen = 0;
    crypto_aead_aes256gcm_encrypt(out.data(), &clen, chunk.data(), chunk.size(), nullptr, 0,
                                  nullptr, nonce, key);
    benchmark::DoNotOptimize(out.data());
  }
  PlainBytes(s, chunk.size());
}

void BM_raw_aead_xchacha20poly1305(benchmark::State& s) {  // no allocation
  const Bytes chunk = RandomBytes(12, ChunkOf(s));
  Bytes out(chunk.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  uint8_t key[32] = {1};
  uint8_t nonce[24] = {2};
  for (auto _ : s) {
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &clen, chunk.data(), chunk.size(),
                                               nullptr, 0, nullptr, nonce, key);
    benchmark::DoNotOptimize(out.data());
  }
  PlainBytes(s, chunk.size());
}

void BM_raw_poly1305(benchmark::State& s) {
  const Bytes chunk = RandomBytes(13, ChunkOf(s));
  uint8_t key[crypto_onetimeauth_KEYBYTES] = {3};
  uint8_t tag[crypto_onetimeauth_BYTES];
  for (auto _ : s) {
    crypto_onetimeauth(tag, chunk.data(), chunk.size(), key);
    benchmark::DoNotOptimize(tag);
  }
  PlainBytes(s, chunk.size());
}

void BM_raw_sha256(benchmark::State& s) {
  const Bytes chunk = RandomBytes(14, ChunkOf(s));
  uint8_t out[crypto_hash_sha256_BYTES];
  for (auto _ : s) {
    crypto_hash_sha256(out, chunk.data(), chunk.size());
    benchmark::DoNotOptimize(out);
  }
  PlainBytes(s, chunk.size());
}

// Jerasure itself: jerasure_matrix_encode on preallocated, aligned buffers,
// i.e. ReedSolomon::Encode without its allocations, zero-fill and copies.
void BM_raw_jerasure_encode(benchmark::State& s) {
  const size_t f = Fragment(s);
  const Bytes chunk = RandomBytes(16, kK * f);
  int* matrix = reed_sol_vandermonde_coding_matrix(kK, kM, 8);
  MS_ASSERT(matrix != nullptr);
  MS_ASSERT(ReedSolomon::Create(kK, kM).ok());  // initialises the GF tables once
  std::vector<Bytes> bufs(kK + kM, Bytes(f + 64));
  std::vector<char*> ptrs(kK + kM);
  for (int i = 0; i < kK + kM; i++) {
    uintptr_t p = reinterpret_cast<uintptr_t>(bufs[i].data());
    ptrs[i] = reinterpret_cast<char*>((p + 63) & ~uintptr_t{63});
    if (i < kK) std::memcpy(ptrs[i], chunk.data() + i * f, f);
  }
  for (auto _ : s) {
    jerasure_matrix_encode(kK, kM, 8, matrix, ptrs.data(), ptrs.data() + kK, int(f));
    benchmark::DoNotOptimize(ptrs[kK]);
  }
  std::free(matrix);
  PlainBytes(s, kK * f);
}

#if defined(__x86_64__) && defined(__GNUC__)
// CRC32C with the SSE4.2 instruction, three independent streams per block so
// that the instruction's 3-cycle latency is hidden (the streams are not
// combined into one CRC here: this measures the per-byte cost of a CRC32C
// check, which a real implementation combines with a few carry-less
// multiplications per block).
__attribute__((target("sse4.2"))) uint64_t Crc32c3(const uint8_t* p, size_t n) {
  uint64_t a = ~0u, b = ~0u, c = ~0u;
  const size_t third = n / 24 * 8;
  for (size_t i = 0; i < third; i += 8) {
    uint64_t x, y, z;
    std::memcpy(&x, p + i, 8);
    std::memcpy(&y, p + third + i, 8);
    std::memcpy(&z, p + 2 * third + i, 8);
    a = __builtin_ia32_crc32di(a, x);
    b = __builtin_ia32_crc32di(b, y);
    c = __builtin_ia32_crc32di(c, z);
  }
  for (size_t i = 3 * third; i < n; i++) a = __builtin_ia32_crc32qi(uint32_t(a), p[i]);
  return a ^ (b << 1) ^ (c << 2);
}

void BM_raw_crc32c(benchmark::State& s) {
  if (!__builtin_cpu_supports("sse4.2")) {
    s.SkipWithError("no SSE4.2");
    return;
  }
  const size_t f = Fragment(s);
  const Bytes frags = RandomBytes(15, (kK + kM) * f);
  for (auto _ : s) {
    for (int i = 0; i < kK + kM; i++) benchmark::DoNotOptimize(Crc32c3(frags.data() + i * f, f));
  }
  PlainBytes(s, kK * f);  // like blake2b_fragments: 12 fragments per 8F plaintext
}
#endif

// ---------------------------------------------------------------- pipelines

// The write pipeline over [begin, end) of the stream: what `mistore put`
// computes (read copy, FastCDC, keyed id, seal) and what the POP then does
// to each chunk (RS encode, fragment headers with payload hashes).
size_t WritePipeline(const CdcParams& p, const uint8_t* begin, size_t len, bool tagged = false) {
  size_t off = 0;
  ChunkSealer sealer(TheKeys().id_key, TheKeys().chunk_key, p,
                     [&](uint8_t* buf, size_t cap) -> Result<size_t> {
                       const size_t n = std::min(cap, len - off);
                       std::memcpy(buf, begin + off, n);
                       off += n;
                       return n;
                     });
  SealedChunk c;
  size_t chunks = 0;
  for (;;) {
    Result<bool> more = sealer.Next(&c);
    MS_ASSERT(more.ok());
    if (!more.value()) break;
    if (tagged) {
      Result<Bytes> tags = ComputeFragmentTags(TheTagKey(), c.id,
                                               reinterpret_cast<const uint8_t*>(c.sealed.data()),
                                               c.sealed.size(), kK, kM);
      MS_ASSERT(tags.ok());
      benchmark::DoNotOptimize(tags->data());
    }
    Result<std::vector<Bytes>> blobs =
        EncodeChunkToFragments(c.id, reinterpret_cast<const uint8_t*>(c.sealed.data()),
                               c.sealed.size(), kK, kM);
    MS_ASSERT(blobs.ok());
    benchmark::DoNotOptimize(blobs->data());
    chunks++;
  }
  return chunks;
}

void BM_pipeline_write(benchmark::State& s) {
  const Bytes& data = Stream();
  const CdcParams p = ParamsOf(s);
  size_t chunks = 0;
  for (auto _ : s) chunks = WritePipeline(p, data.data(), data.size());
  PlainBytes(s, data.size());
  s.counters["chunks"] = double(chunks);
}

void BM_pipeline_write_tagged(benchmark::State& s) {
  const Bytes& data = Stream();
  const CdcParams p = ParamsOf(s);
  size_t chunks = 0;
  for (auto _ : s) chunks = WritePipeline(p, data.data(), data.size(), /*tagged=*/true);
  PlainBytes(s, data.size());
  s.counters["chunks"] = double(chunks);
}

// Both cores: two threads, each running the write pipeline over its own half
// of the stream (different chunks). The iteration time is the larger of the
// two threads' CPU times: what both cores deliver when each has a core to
// itself, shared caches and memory included, unaffected by other processes
// queueing for the cores (real_MBps, the wall-clock rate, is only meaningful
// on an idle machine). Google Benchmark's own Threads() would report
// per-thread rates.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

void BM_pipeline_write_2threads(benchmark::State& s) {
  const Bytes& data = Stream();
  const CdcParams p = ParamsOf(s);
  const size_t half = data.size() / 2;
  size_t chunks[2] = {0, 0};
  double real = 0;
  for (auto _ : s) {
    double cpu[2] = {0, 0};
    const auto start = std::chrono::steady_clock::now();
    std::thread other([&] {
      const double t0 = ThreadCpuSeconds();
      chunks[1] = WritePipeline(p, data.data() + half, data.size() - half);
      cpu[1] = ThreadCpuSeconds() - t0;
    });
    const double t0 = ThreadCpuSeconds();
    chunks[0] = WritePipeline(p, data.data(), half);
    cpu[0] = ThreadCpuSeconds() - t0;
    other.join();
    real += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    s.SetIterationTime(std::max(cpu[0], cpu[1]));
  }
  PlainBytes(s, data.size());
  s.counters["chunks"] = double(chunks[0] + chunks[1]);
  s.counters["real_MBps"] = double(data.size()) * double(s.iterations()) / real / 1e6;
}

// Stored chunks of the whole stream, as the read path finds them.
struct StoredChunk {
  Bytes id;
  size_t plain_len;
  size_t sealed_len;
  std::vector<Bytes> blobs;
};

const std::vector<StoredChunk>& Stored(size_t fragment) {
  static std::map<size_t, std::vector<StoredChunk>> cache;
  auto it = cache.find(fragment);
  if (it != cache.end()) return it->second;
  const Bytes& data = Stream();
  const size_t avg = kK * fragment;
  std::vector<StoredChunk>& out = cache[fragment];
  size_t prev = 0;
  for (size_t end : ChunkBoundaries(data.data(), data.size(), CdcParams{avg / 4, avg, avg * 4})) {
    StoredChunk sc;
    sc.plain_len = end - prev;
    sc.id = crypto::KeyedHash32(TheKeys().id_key, data.data() + prev, sc.plain_len);
    const Bytes sealed =
        crypto::Seal(TheKeys().chunk_key, data.data() + prev, sc.plain_len, sc.id.data(), sc.id.size());
    sc.sealed_len = sealed.size();
    sc.blobs = EncodeChunkToFragments(sc.id, sealed.data(), sealed.size(), kK, kM).value();
    out.push_back(std::move(sc));
    prev = end;
  }
  return out;
}

// The read path of one chunk: the POP decodes from the blobs the gateways
// returned (each parsed and hash-verified; any failing one is an erasure),
// the client opens it and checks it against its id.
void ReadPipeline(benchmark::State& s, int lost) {
  const std::vector<StoredChunk>& chunks = Stored(Fragment(s));
  std::vector<std::vector<Bytes>> arriving;
  for (const StoredChunk& c : chunks) arriving.emplace_back(c.blobs.begin() + lost, c.blobs.end());
  size_t plain = 0;
  for (const StoredChunk& c : chunks) plain += c.plain_len;
  for (auto _ : s) {
    for (size_t i = 0; i < chunks.size(); i++) {
      const StoredChunk& c = chunks[i];
      Result<Bytes> sealed = DecodeChunkFromFragments(c.id, arriving[i], kK, kM, c.sealed_len);
      MS_ASSERT(sealed.ok());
      Result<Bytes> p = crypto::Open(TheKeys().chunk_key, sealed->data(), sealed->size(), c.id.data(), c.id.size());
      MS_ASSERT(p.ok());
      MS_ASSERT(crypto::KeyedHash32(TheKeys().id_key, p->data(), p->size()) == c.id);
      benchmark::DoNotOptimize(p->data());
    }
  }
  PlainBytes(s, plain);
}
void BM_pipeline_read(benchmark::State& s) { ReadPipeline(s, 0); }
void BM_pipeline_read_4_lost(benchmark::State& s) { ReadPipeline(s, 4); }

void Sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("frag")->Arg(int64_t(64 * kKiB))->Arg(int64_t(128 * kKiB))->Arg(int64_t(1 * kMiB));
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_memcpy)->Apply(Sizes);
BENCHMARK(BM_chunking)->Apply(Sizes);
BENCHMARK(BM_chunking_stream)->Apply(Sizes);
BENCHMARK(BM_blake2b_keyed)->Apply(Sizes);
BENCHMARK(BM_blake2b_fragments)->Apply(Sizes);
BENCHMARK(BM_aead_seal)->Apply(Sizes);
BENCHMARK(BM_aead_open)->Apply(Sizes);
BENCHMARK(BM_rs_encode)->Apply(Sizes);
BENCHMARK(BM_rs_decode_4_lost)->Apply(Sizes);
BENCHMARK(BM_rs_encode_isal)->Apply(Sizes);
BENCHMARK(BM_rs_encode_jerasure)->Apply(Sizes);
BENCHMARK(BM_crc32c_fragments)->Apply(Sizes);
BENCHMARK(BM_fragment_tags)->Apply(Sizes);
BENCHMARK(BM_fragment_encode)->Apply(Sizes);
BENCHMARK(BM_fragment_decode)->Apply(Sizes);
BENCHMARK(BM_raw_jerasure_encode)->Apply(Sizes);
BENCHMARK(BM_raw_aead_aes256gcm)->Apply(Sizes);
BENCHMARK(BM_raw_aead_xchacha20poly1305)->Apply(Sizes);
BENCHMARK(BM_raw_poly1305)->Apply(Sizes);
BENCHMARK(BM_raw_sha256)->Apply(Sizes);
#if defined(__x86_64__) && defined(__GNUC__)
BENCHMARK(BM_raw_crc32c)->Apply(Sizes);
#endif
BENCHMARK(BM_pipeline_write)->Apply(Sizes)->MinTime(2.0);
BENCHMARK(BM_pipeline_write_tagged)->Apply(Sizes)->MinTime(2.0);
BENCHMARK(BM_pipeline_write_2threads)->Apply(Sizes)->UseManualTime()->MinTime(2.0);
BENCHMARK(BM_pipeline_read)->Apply(Sizes)->MinTime(2.0);
BENCHMARK(BM_pipeline_read_4_lost)->Apply(Sizes)->MinTime(2.0);

}  // namespace
}  // namespace mistore

BENCHMARK_MAIN();
