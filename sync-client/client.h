// Client: the subscriber-side library behind the `mistore` command. It
// holds the user's keys, encrypts and chunks files before anything leaves
// the device, and talks to the home gateway agent over one connection (or,
// away from home, to a POP directly over a secure channel: pop_addr).
// Calls are synchronous: each runs a private libuv loop until the operation
// finishes. Not thread-safe; one Client per thread.
//
// Write path (Put): the file is read in blocks of read_block bytes and cut
// by FastCDC (shared/chunking/cdc.h; 256 KiB / 1 MiB / 4 MiB by default);
// each chunk gets its id and is sealed (ChunkSealer below) and sent with
// PutChunk, at most `window` chunks in flight. Memory is bounded whatever
// the file size: the chunker's buffer (max_bytes + read_block) plus, per
// chunk in flight, one sealed chunk (<= max_bytes + 40) in the connection's
// write queue; with the defaults about 5 MiB + 4 x 4 MiB; plus the first
// pass's cuts (ChunkCut, 48 bytes a chunk, at most kRememberedCutsMax: 12
// MiB), which let the second pass read only the chunks it sends.
//
// Keys (shared/crypto): a master key wrapped by the passphrase (Argon2id) in
// key_file; subkeys by crypto_kdf: name hash key (name -> name_key), name
// seal key (names stored sealed), chunk id key (chunk ids = keyed BLAKE2b of
// the plaintext), chunk key (chunks sealed with XChaCha20-Poly1305, the
// chunk id as associated data), per-object keys for manifests, and the
// fragment-tag key (fragment_tags.h).
//
// Fragment tags (issue 3): Put also computes the erasure code's fragments
// of each sealed chunk for the entry POP's (k, m) (from HaveChunksReply)
// and records their keyed tags in the sealed manifest (format 2). When a
// chunk fails its AEAD open on Get, the client fetches its fragments
// (GetChunkFragments), checks each against its tag, decodes from good ones,
// and reports the bad ones with the gateways that served them
// (ReportForgedFragments), which the POP marks bad and re-places.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/chunking/cdc.h"
#include "shared/core/bytes.h"
#include "shared/core/oid.h"
#include "shared/core/status.h"
#include "shared/crypto/secret.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

// Largest plaintext chunk the client produces: sealed (+40 bytes) inside its
// envelope it must fit one frame (8 MiB, shared/wire/frame.h) and the POP's
// chunk limit (4 MiB + 64).
inline constexpr size_t kClientChunkBytesMax = size_t{4} << 20;

inline constexpr size_t kGetWindowBytesMin = size_t{64} << 10;
inline constexpr size_t kGetWindowBytesMax = size_t{256} << 20;
inline constexpr size_t kPutNoWaitBytesMax = size_t{16} << 20;

struct ClientSettings {
  std::string agent_addr;
  // Away from home (issue 9): a POP to work through directly instead of the
  // agent. The connection is a secure channel presenting this device's
  // certificate (role client, from `mistore enroll`); the POP serves the
  // certificate's subscriber only (pop-server/device_access.h).
  std::string pop_addr;
  std::string device_key_file;   // X25519 key, 0600 (with pop_addr)
  std::string device_cert_file;  // the DC-signed device certificate
  std::string ca_public_key_file;  // the DC's CA key (ca.pub)
  std::string subscriber;
  std::string key_file;
  std::string state_dir;
  // This device's pairing with its agent (sync-client/pair.h): the keys of
  // the Noise IK link when the file exists; empty or absent: Noise XX with a
  // throwaway key (served only by an unpaired agent on the same host).
  std::string pairing_file;
  // Content-defined chunk sizes (min / avg / max). Changing them changes
  // where files are cut, hence every chunk id: new versions of old files
  // would stop sharing chunks. max_bytes <= kClientChunkBytesMax.
  CdcParams chunking;
  size_t read_block = size_t{1} << 20;  // bytes per read() of the file, 1..64 MiB
  size_t window = 4;                    // chunks in flight (put), >= 1
  // Get: most bytes of sealed chunks requested and not yet handed to the
  // sink (in flight plus those waiting for an earlier chunk), so a read keeps
  // the path's bandwidth x round trip in flight. A chunk rebuilt from remote
  // gateways takes two 150 ms round trips plus its transfer and decode
  // (~1.2 s inferred on the loaded netlab): 32 MiB keeps a 20 MB/s
  // downlink busy (issue 11: 4 MiB 15.6 s, 16 MiB 7.5 s, 48 MiB 6.3 s for
  // 100 MB striped). One chunk always goes, whatever its size. The memory a
  // Get holds: this plus one chunk. kGetWindowBytesMin..kGetWindowBytesMax.
  size_t get_window_bytes = size_t{32} << 20;
  // Put: a file of at most this many bytes is uploaded without waiting for
  // the POP's answer to which of its chunks it holds (HaveChunks): the
  // query and the chunks leave together, one gateway round trip (150 ms on
  // the paper's network) sooner. The cost, when the POP held them, is
  // sending them anyway: 1 MiB is 0.2 s at 5 MB/s up, about that round
  // trip. The fragment tags wait for the answer's (k, m), so the sealed
  // chunks are kept until it comes: this much memory. 0: always wait;
  // at most kPutNoWaitBytesMax.
  size_t put_no_wait_bytes_max = size_t{1} << 20;
  uint64_t call_timeout_ms = 60000;

  // kInvalidArgument naming the bad setting (checked by Open).
  Status Validate() const;
};

struct PutResult {
  Oid oid;
  uint64_t version = 0;  // 0 on a dry run (nothing committed)
  uint64_t size_bytes = 0;
  size_t chunks = 0;        // in the manifest (repeats included)
  size_t chunks_sent = 0;   // uploaded by this put (the rest the POP had)
  uint64_t bytes_sent = 0;  // sealed chunk bytes + the commit message
  // Plaintext bytes read by the second pass (sealing what is sent). With
  // pass 1's cuts remembered only the chunks that travel are read again;
  // beyond PutOptions::remembered_cuts_max the whole file is.
  uint64_t bytes_reread = 0;
};

// Most chunk cuts Put remembers from its first pass (one ChunkCut, 48
// bytes, per chunk: at most 12 MiB; with the default 1 MiB average chunk
// that covers files up to ~256 GiB). A file with more chunks is cut twice.
inline constexpr size_t kRememberedCutsMax = size_t{1} << 18;

struct PutOptions {
  // Chunk, ask the POP what it has, report what would travel; send nothing.
  bool dry_run = false;
  // Recorded in the sealed manifest (restore --at); the caller's wall clock.
  int64_t put_time_ms = 0;
  // Upload rate cap in bytes per second (sealed chunk bytes); 0 = none.
  uint64_t bwlimit_bytes_per_s = 0;
  // Called after each chunk is acknowledged (or skipped): plaintext bytes
  // done so far and the file's size.
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
  // Most chunk cuts pass 1 remembers (see kRememberedCutsMax); 0 = always
  // cut the file a second time. Tests lower it to cover the fallback.
  size_t remembered_cuts_max = kRememberedCutsMax;
  // A new object goes to the DC tier (PutCommit.dc_tier): the DC keeps its
  // one replica; no POP or gateway does. An existing name keeps the
  // replicas it was created with (one held by POPs is refused).
  bool dc_tier = false;
};

// One version of an object as `mistore versions` shows it (from its sealed
// manifest).
struct VersionEntry {
  uint64_t version = 0;
  uint64_t size_bytes = 0;
  int64_t put_time_ms = 0;  // client clock at the put; 0 for old versions
  int64_t mtime_s = 0;
  bool deleted = false;  // a tombstone written by Remove
};

// Bytes on the wire (payloads: sealed chunks, manifests) since Open.
struct TransferStats {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  uint64_t chunks_sent = 0;
  uint64_t chunks_received = 0;
  uint64_t chunks_reused = 0;  // found on this device (Get's local source)
  uint64_t bytes_reused = 0;
  // Most sealed bytes one Get held at once (<= get_window_bytes, or one
  // chunk when larger).
  uint64_t get_held_bytes_max = 0;
  // Chunks that failed their AEAD open and were rebuilt from fragments that
  // match the manifest's tags (issue 3), and fragments named forged.
  uint64_t chunks_recovered = 0;
  uint64_t fragments_forged = 0;
};

// A fragment a Get found not matching its tag (issue 3), as reported to the
// POP: which chunk, which fragment, which gateway served it, and why.
struct ForgedFragmentReport {
  Bytes chunk_id;
  uint32_t index = 0;
  uint32_t gateway_id = 0;
  uint32_t pop_id = 0;  // whose fragment records named the gateway
  std::string why;
};
// Most reports a Client keeps (the oldest are dropped).
inline constexpr size_t kForgedReportsMax = 1024;

// Most chunk ids per HaveChunks query (the POP's limit, pop_core.h).
inline constexpr size_t kHaveChunksBatch = 4096;

struct ListEntry {
  std::string name;
  Oid oid;
  uint64_t version;
  uint64_t size_bytes;
  bool deleted = false;  // the latest version is a tombstone (Remove)
};

// The client-side write pipeline without the network: pulls plaintext from a
// reader, cuts it into content-defined chunks, and for each chunk computes
// its id (keyed BLAKE2b-256 of the plaintext under the chunk-id key) and
// seals it (XChaCha20-Poly1305 under the chunk key, the id as associated
// data). Client::Put sends what it produces; tests and benchmarks drive it
// with generated input.
//
// Ownership: borrows both keys (they must outlive the sealer); owns the
// chunker's buffer (params.max_bytes + read_block bytes) and the reader.
// Threads: one thread at a time; distinct sealers are independent.
struct SealedChunk {
  Bytes id;              // kKeyedHashBytes (32)
  uint64_t offset = 0;   // of the chunk's first byte in the stream
  size_t plain_len = 0;  // plaintext bytes (the manifest's plain_len)
  std::string sealed;    // nonce || ciphertext || tag: PutChunk.data as is
  bool skipped = false;  // the skip predicate said so: `sealed` is empty
  // With per-chunk keys (manifest format 3): the key it is (or, skipped,
  // would be) sealed under, ChunkSealKey(chunk key, id); else empty.
  std::string seal_key;
};

class ChunkSealer {
 public:
  // params valid and read_block >= 1 (MS_ASSERT; see ClientSettings::Validate).
  ChunkSealer(const crypto::SecretBytes& chunk_id_key, const crypto::SecretBytes& chunk_key,
              const CdcParams& params, CdcStream::Reader read,
              size_t read_block = CdcStream::kDefaultReadBlock);

  // The next chunk into *out (its buffers are reused): true; false at the
  // end of the stream; or the reader's error (which sticks).
  Result<bool> Next(SealedChunk* out);

  // Plaintext bytes handed out so far.
  uint64_t bytes_out() const { return stream_.next_chunk_offset(); }

  // Chunks whose id `skip` returns true for are handed out unsealed
  // (skipped = true): Put uses it to seal and send a chunk that repeats
  // within one file only once (a run of zeros is a run of identical 4 MiB
  // chunks).
  void set_skip(std::function<bool(const Bytes& id)> skip) { skip_ = std::move(skip); }

  // Manifest format 3 (issue 4, sharing): seal each chunk under
  // ChunkSealKey(chunk_key, id) (shared/crypto/share.h) instead of the chunk
  // key itself, and hand that key out in SealedChunk::seal_key.
  void set_per_chunk_keys(bool on) { per_chunk_keys_ = on; }

 private:
  bool per_chunk_keys_ = false;
  const crypto::SecretBytes& id_key_;
  const crypto::SecretBytes& seal_key_;
  CdcStream stream_;
  std::function<bool(const Bytes& id)> skip_;
};

// One chunk as pass 1 of Put cut it: where it lies in the file and its id.
struct ChunkCut {
  uint64_t offset = 0;
  uint32_t plain_len = 0;
  std::array<uint8_t, 32> id{};  // crypto::kKeyedHashBytes
};

// Pass 2 of Put when pass 1's cuts are remembered: hands out the chunks of
// `cuts` in order without cutting again. A chunk the skip predicate names
// (the POP has it, or it was sent earlier in this file) is not read at all;
// any other is read at its offset through `read`, its keyed hash checked
// against the remembered id, and sealed as ChunkSealer does. A chunk whose
// bytes are no longer what pass 1 saw (the file changed in between) is
// kAborted, which sticks: nothing of a changed file is sent under an id it
// no longer has.
//
// Ownership: borrows both keys and `cuts` (they must outlive the sealer);
// owns one chunk's plaintext buffer (<= the largest cut).
// Threads: one thread at a time.
class CutSealer {
 public:
  // Reads exactly `len` bytes at `offset` into buf (a short read is an
  // error: the file shrank).
  using PositionalReader =
      std::function<Status(uint64_t offset, uint8_t* buf, size_t len)>;
  CutSealer(const crypto::SecretBytes& chunk_id_key,
            const crypto::SecretBytes& chunk_key,
            const std::vector<ChunkCut>& cuts, PositionalReader read);

  // As ChunkSealer::Next.
  Result<bool> Next(SealedChunk* out);
  // Plaintext bytes handed out so far (skipped chunks included).
  uint64_t bytes_out() const { return bytes_out_; }
  // Plaintext bytes read (the chunks not skipped).
  uint64_t bytes_read() const { return bytes_read_; }
  void set_skip(std::function<bool(const Bytes& id)> skip) {
    skip_ = std::move(skip);
  }
  // As ChunkSealer::set_per_chunk_keys (manifest format 3).
  void set_per_chunk_keys(bool on) { per_chunk_keys_ = on; }

 private:
  bool per_chunk_keys_ = false;
  const crypto::SecretBytes& id_key_;
  const crypto::SecretBytes& seal_key_;
  const std::vector<ChunkCut>& cuts_;
  PositionalReader read_;
  std::function<bool(const Bytes& id)> skip_;
  size_t next_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t bytes_read_ = 0;
  Bytes plain_;
  Status failure_;
};

// An object another subscriber shared with this one (read-only; issue 4,
// docs/security.md "Sharing"), from its grant.
struct SharedEntry {
  std::string owner;
  std::string name;
  Oid oid;
  int64_t created_ms = 0;  // when the owner shared it (DC clock)
  // Non-empty: the grant could not be used (why); name may be empty then.
  std::string problem;
};

class Client {
 public:
  // Creates a new master key wrapped under `passphrase` in key_file (0600);
  // kInvalidArgument if one exists already.
  static Status Init(const ClientSettings& s, const std::string& passphrase, bool fast_kdf);
  static Result<std::unique_ptr<Client>> Open(const ClientSettings& s,
                                              const std::string& passphrase);
  ~Client();

  // Stores the file as the next version of `name`. Only chunks the entry
  // POP does not hold already travel: the file is chunked once to learn its
  // chunk ids, the POP is asked which it has (HaveChunks, which also pins
  // them until the commit), then the missing ones are sealed and sent. An
  // upload killed half-way therefore resumes: the chunks the POP
  // acknowledged are not sent again. The first pass's cuts are remembered
  // (up to opts.remembered_cuts_max) so that only the chunks sent are read
  // again (CutSealer); a file changed in between fails with kAborted.
  Result<PutResult> Put(const std::string& path, const std::string& name,
                        const PutOptions& opts = PutOptions());
  // Writes a tombstone version (its manifest says deleted): older versions
  // stay readable with an explicit version. Returns the new version.
  Result<uint64_t> Remove(const std::string& name, int64_t now_ms);
  // Every version of `name`, oldest first.
  Result<std::vector<VersionEntry>> Versions(const std::string& name);
  // The newest version put at or before time_ms (kNotFound if none).
  Result<uint64_t> VersionAt(const std::string& name, int64_t time_ms);
  const TransferStats& stats() const;
  // Forged fragments named by Gets since Open (at most kForgedReportsMax,
  // the newest); each was also logged and reported to the POP.
  const std::vector<ForgedFragmentReport>& forged_fragments() const;
  // Adds another client's transfer counts to this one's (parallel workers).
  void AddStats(const TransferStats& other);
  // A second client with the same keys and settings and its own connection
  // and loop, for another thread. It keeps the newest versions it sees in
  // memory only (state_dir/seen is this client's).
  std::unique_ptr<Client> Clone() const;
  // The version record of `name_or_oid` (0 = latest) without its data.
  Result<pb::VersionInfo> Stat(const std::string& name_or_oid, uint64_t version);
  // The sealed manifest of a version record, opened.
  Result<pb::Manifest> OpenManifest(const pb::VersionInfo& info);
  pb::ReadMode read_mode() const;
  // Writes the object's bytes through `sink` in order; returns its info.
  // kNotFound if that version is a tombstone (the object was removed).
  // `local`, when set, is asked first for each chunk (id, plaintext length):
  // a copy already on this device, e.g. in the previous version of the file,
  // saves the download. Its bytes are checked against the chunk id; a
  // mismatch (or false) means the chunk is fetched.
  using LocalChunkSource = std::function<bool(const std::string& id, size_t plain_len, Bytes* out)>;
  Result<pb::VersionInfo> Get(const std::string& name_or_oid, uint64_t version,
                              const std::function<Status(const uint8_t*, size_t)>& sink,
                              const LocalChunkSource& local = nullptr);
  // Consistency of reads of the latest version (default monotonic; the
  // newest version seen per object is kept in state_dir/seen).
  void set_read_mode(pb::ReadMode mode);
  // The subscriber's objects at their latest versions. Objects whose latest
  // version is a tombstone (removed with Remove) are left out unless
  // include_removed; then they carry deleted = true. Only the sealed
  // manifest says so: it is opened for the objects listed with 0 bytes (a
  // tombstone's size), one GetVersion each.
  Result<std::vector<ListEntry>> List(bool include_removed = false);
  Result<pb::Placement> Placement(const std::string& name_or_oid, uint64_t version,
                                  pb::VersionInfo* info);

  // ---- read-only sharing (issue 4; docs/security.md "Sharing") ----
  // Publishes this subscriber's share public key at the DC (trust on first
  // publish; idempotent). Others can share with this subscriber only after.
  Status PublishShareKey();
  // Shares the latest version's object `name` read-only with `grantee`: the
  // object's key, sealed to the grantee's published key, recorded at the DC.
  // The object must be written with per-chunk keys (manifest format 3;
  // kInvalidArgument naming `mistore put` otherwise). true: a new record.
  Result<bool> Share(const std::string& name, const std::string& grantee);
  // Removes the share; POPs refuse the grantee's reads within their
  // share_cache_ttl_ms. false: there was none.
  Result<bool> Unshare(const std::string& name, const std::string& grantee);
  // What is shared with this subscriber (publishes the share key first).
  Result<std::vector<SharedEntry>> ListShared();
  // Reads the latest version of `owner`'s object `name` shared with this
  // subscriber, through the usual gateway (never locked). `name` may be the
  // object's oid (32 hex digits): without a grant for it the POP is still
  // asked, and its refusal (kPermissionDenied) is returned.
  Result<pb::VersionInfo> GetShared(const std::string& owner, const std::string& name,
                                    const std::function<Status(const uint8_t*, size_t)>& sink);

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  // The chunks of an opened manifest, in order, through `sink`; owner set:
  // an object shared with us (GetShared).
  Status GetChunks(const pb::VersionInfo& info, const pb::Manifest& manifest,
                   const std::string& owner,
                   const std::function<Status(const uint8_t*, size_t)>& sink,
                   const LocalChunkSource& local);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mistore
