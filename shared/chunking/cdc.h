// Content-defined chunking (CDC): FastCDC (Xia et al., "FastCDC: a Fast and
// Efficient Content-Defined Chunking Approach for Data Deduplication", USENIX
// ATC 2016) with a 64-bit gear hash, sub-minimum cut-point skipping and
// normalized chunking (level 2). A file is cut where its content says so, not
// at fixed offsets, so inserting or deleting bytes only changes the chunks
// around the edit: everything else keeps the same bytes and the same chunk id.
// (One edited byte changes one or two chunks; only an edit inside the 64-byte
// window just before a cut can change a few more before the cuts line up
// again, because the skipped minimum counts from each chunk's start.)
//
// THE BOUNDARIES ARE PART OF THE STORED FORMAT. Chunk ids are hashes of chunk
// bytes; if the same file were cut differently by another version or host,
// nothing would deduplicate. Everything below is therefore fixed and pinned
// by known-answer tests (tests/shared/chunking/cdc_test.cc): do not change it.
//
//   Gear table: G[i], i = 0..255, is output number i + 1 of splitmix64 whose
//     state starts at kCdcGearSeed (0x6d69737463646331, ASCII "mistcdc1"):
//       state += 0x9e3779b97f4a7c15; z = state;
//       z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
//       z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
//       G[i] = z ^ (z >> 31)                      (all arithmetic mod 2^64)
//   Fingerprint of the chunk byte at index j (0-based from the chunk start),
//     defined for j >= min_bytes - 1 (min_bytes >= 64 makes every index >= 0):
//       fp(j) = sum over t = 0..63 of (G[b[j - t]] << t)   (mod 2^64)
//     i.e. the gear recurrence fp = (fp << 1) + G[b] started from 0 at index
//     min_bytes - 64: a pure function of the 64 bytes ending at j.
//   Masks: k = log2(avg_bytes); mask_s = the top k + 2 bits of a u64
//     (used before avg_bytes), mask_l = the top k - 2 bits (from avg_bytes on).
//   Cut rule: a chunk's length L is the smallest L with min_bytes <= L <
//     max_bytes and (fp(L - 1) & (L < avg_bytes ? mask_s : mask_l)) == 0;
//     if there is none, L = max_bytes. The stream's last chunk is whatever is
//     left when the stream ends first (it may be shorter than min_bytes; an
//     empty stream has no chunks).
//
// Chunks lie in [min_bytes, max_bytes], except the last. On random data they
// average about 1.14 x avg_bytes (the skipped minimum plus the normalized cut
// probabilities); with the defaults (256 KiB / 1 MiB / 4 MiB), ~1.14 MiB.
//
// API:
//   CdcParams / Validate()  the three sizes; construct chunkers only with valid
//                           ones (constructors MS_ASSERT it).
//   CdcChunker              the incremental boundary finder: feed it the stream
//                           in pieces of any size; keeps a few words of state
//                           and never holds or copies data.
//   CdcStream               pulls from a reader callback and hands out chunks
//                           one at a time; holds one buffer of max_bytes +
//                           read_block bytes, whatever the stream length.
//   ChunkBoundaries         whole-buffer convenience (tests, benchmarks).
//
// Ownership: CdcChunker and ChunkBoundaries borrow data for the call only.
// CdcStream owns its buffer and its reader; a chunk from NextView points into
// that buffer and is valid until the next call on the stream.
// Threads: pure computation, any thread. One CdcChunker / CdcStream object must
// not be used from two threads at once; distinct objects are independent (the
// gear table is immutable).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

inline constexpr uint64_t kCdcGearSeed = 0x6d69737463646331ULL;  // "mistcdc1"
inline constexpr size_t kCdcWindowBytes = 64;    // gear hash window
inline constexpr size_t kCdcMinBytesFloor = 64;  // min_bytes >= window
inline constexpr size_t kCdcMaxBytesLimit = size_t{64} << 20;  // 64 MiB

struct CdcParams {
  size_t min_bytes = size_t{256} << 10;  // 256 KiB
  size_t avg_bytes = size_t{1} << 20;    // 1 MiB
  size_t max_bytes = size_t{4} << 20;    // 4 MiB

  // kInvalidArgument unless 64 <= min < avg < max <= 64 MiB and avg is a
  // power of two.
  Status Validate() const;
};

// The 256-entry gear table (see the format description above).
const std::array<uint64_t, 256>& CdcGearTable();

class CdcChunker {
 public:
  static constexpr size_t kNoBoundary = SIZE_MAX;

  // params must be valid (MS_ASSERT): call Validate() on untrusted input.
  explicit CdcChunker(CdcParams params);

  // Feeds the next len bytes of the stream (continuing the current chunk).
  // If the current chunk ends inside them, returns n in [1, len]: the chunk
  // ends after data[n - 1], and the chunker has started a new, empty chunk;
  // call again with data + n, len - n for the rest. Otherwise returns
  // kNoBoundary: all len bytes belong to the current chunk. At the end of
  // the stream the pending_bytes() not yet cut form the last chunk.
  size_t FindBoundary(const uint8_t* data, size_t len);

  // Bytes fed into the current, not yet cut, chunk. Always < max_bytes.
  size_t pending_bytes() const { return pos_; }
  // Forgets the current chunk (e.g. to reuse the chunker for another stream).
  void Reset() {
    pos_ = 0;
    fp_ = 0;
  }
  const CdcParams& params() const { return params_; }

 private:
  CdcParams params_;
  uint64_t mask_s_;
  uint64_t mask_l_;
  size_t pos_ = 0;   // bytes of the current chunk seen so far
  uint64_t fp_ = 0;  // gear fingerprint (meaningful once pos_ > min - 64)
};

// Chunks a whole buffer: returns the end offset of every chunk, in order (the
// last one is len; empty when len == 0). params must be valid (MS_ASSERT).
std::vector<size_t> ChunkBoundaries(const uint8_t* data, size_t len,
                                    CdcParams params = {});

// Pulls a stream from `read` and returns its chunks one by one.
class CdcStream {
 public:
  // Fills buf with up to cap bytes (cap >= 1) and returns how many it wrote;
  // 0 means end of stream (it is not called again). Short reads are fine.
  // Returning more than cap is a bug (MS_ASSERT). An error status is
  // returned by Next/NextView and sticks: the stream stays failed.
  using Reader = std::function<Result<size_t>(uint8_t* buf, size_t cap)>;
  static constexpr size_t kDefaultReadBlock = size_t{1} << 20;  // 1 MiB

  // params must be valid and 1 <= read_block <= 1 GiB (MS_ASSERT). Each read
  // asks for read_block bytes. Memory: one buffer of max_bytes + read_block
  // bytes, allocated here (uninitialised: pages are only touched as used).
  CdcStream(CdcParams params, Reader read,
            size_t read_block = kDefaultReadBlock);

  // The next chunk copied into *chunk (its capacity is reused): true, or
  // false at the end of the stream (*chunk cleared), or the reader's error.
  Result<bool> Next(Bytes* chunk);
  // Same without the copy: *chunk points into the stream's buffer and stays
  // valid until the next call on this stream.
  Result<bool> NextView(std::span<const uint8_t>* chunk);

  // Stream offset where the chunk returned last started / the next one starts.
  uint64_t last_chunk_offset() const { return last_offset_; }
  uint64_t next_chunk_offset() const { return next_offset_; }
  size_t buffer_capacity() const { return cap_; }

 private:
  CdcChunker chunker_;
  Reader read_;
  size_t block_;
  size_t cap_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t head_ = 0;  // start of the current chunk in buf_
  size_t scan_ = 0;  // bytes before this were fed to chunker_
  size_t tail_ = 0;  // end of valid data in buf_
  bool eof_ = false;
  Status error_;
  uint64_t last_offset_ = 0;
  uint64_t next_offset_ = 0;
};

}  // namespace mistore
