// Tests of the client library (sync-client/client.h): settings validation,
// the write pipeline without the network (ChunkSealer: FastCDC cuts, keyed
// chunk ids, sealing), and Client::Put / Client::Get against an in-process
// fake gateway agent on loopback (chunking, the in-flight window, the
// commit, round trips, tampering, edit locality through real chunk ids).
#include "sync-client/client.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <future>
#include <map>
#include <optional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/chunking/cdc.h"
#include "shared/erasure/fragment.h"
#include "shared/crypto/aead.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/share.h"
#include "sync-client/manifest.h"
#include "shared/store/file_util.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/loop.h"

namespace mistore {
namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

// splitmix64 bytes (little-endian words), any length.
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }

Bytes RandomBytes(uint64_t seed, size_t n) {
  Bytes b(n);
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 8) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    uint8_t w[8];
    PutLe64(w, z);
    std::memcpy(b.data() + i, w, std::min<size_t>(8, n - i));
  }
  return b;
}

// A reader over an in-memory buffer returning at most `cap` (or `step`)
// bytes per call.
CdcStream::Reader MemoryReader(const Bytes& data, size_t* off, size_t step = SIZE_MAX) {
  return [&data, off, step](uint8_t* buf, size_t cap) -> Result<size_t> {
    size_t n = std::min({cap, step, data.size() - *off});
    std::memcpy(buf, data.data() + *off, n);
    *off += n;
    return n;
  };
}

std::string TempDir() {
  char tmpl[] = "/tmp/mistore-client-test-XXXXXX";
  const char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  return d ? d : "/tmp";
}

void WriteFile(const std::string& path, const Bytes& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!data.empty()) {
    ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
  }
  std::fclose(f);
}

// ---------------------------------------------------------------- settings

TEST(ClientSettingsTest, DefaultsAreValidAndUseFastCdcDefaults) {
  ClientSettings s;
  EXPECT_TRUE(s.Validate().ok());
  EXPECT_EQ(s.chunking.min_bytes, 256 * kKiB);
  EXPECT_EQ(s.chunking.avg_bytes, 1 * kMiB);
  EXPECT_EQ(s.chunking.max_bytes, 4 * kMiB);
  EXPECT_EQ(s.chunking.max_bytes, kClientChunkBytesMax);
  // A sealed maximal chunk and its envelope fit one frame.
  EXPECT_LT(kClientChunkBytesMax + crypto::kSealOverhead + 4 * kKiB, kFrameBytesMaxDefault);
}

TEST(ClientSettingsTest, RejectsBadSettings) {
  auto expect_bad = [](ClientSettings s, const char* what) {
    Status st = s.Validate();
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << what;
    EXPECT_FALSE(st.message().empty()) << what;
  };
  ClientSettings s;
  s.chunking = {1 * kMiB, 4 * kMiB, 8 * kMiB};  // max above the frame budget
  expect_bad(s, "max_bytes 8 MiB");
  s = {};
  s.chunking = {64, 192, 256};  // avg not a power of two
  expect_bad(s, "avg not a power of two");
  s = {};
  s.window = 0;
  expect_bad(s, "window 0");
  s = ClientSettings{};
  s.get_window_bytes = kGetWindowBytesMin - 1;
  expect_bad(s, "get window below its minimum");
  s.get_window_bytes = kGetWindowBytesMax + 1;
  expect_bad(s, "get window above its maximum");
  s = {};
  s.read_block = 0;
  expect_bad(s, "read_block 0");
  s = {};
  s.read_block = 65 * kMiB;
  expect_bad(s, "read_block 65 MiB");
}

TEST(ClientSettingsTest, OpenRejectsBadSettingsBeforeTouchingTheKeyFile) {
  ClientSettings s;
  s.key_file = "/nonexistent/for/sure/master.key";
  s.window = 0;
  auto c = Client::Open(s, "pw");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << c.status().ToString();
}

// ---------------------------------------------------------------- ChunkSealer

struct Keys {
  crypto::SecretBytes id_key = crypto::SecretBytes::Random(32);
  crypto::SecretBytes seal_key = crypto::SecretBytes::Random(32);
};

TEST(ChunkSealerTest, ChunksAreCdcCutsWithKeyedIdsAndSealedUnderTheId) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  Keys keys;
  const Bytes data = RandomBytes(11, 9 * kMiB + 123);
  const CdcParams p;  // production defaults
  const std::vector<size_t> ends = ChunkBoundaries(data.data(), data.size(), p);
  ASSERT_GE(ends.size(), 5u);
  for (size_t step : {size_t{4096}, size_t{1} << 20, SIZE_MAX}) {
    for (size_t read_block : {size_t{64} * kKiB, size_t{1} << 20}) {
      SCOPED_TRACE("step " + std::to_string(step) + " read_block " + std::to_string(read_block));
      size_t off = 0;
      ChunkSealer sealer(keys.id_key, keys.seal_key, p, MemoryReader(data, &off, step), read_block);
      SealedChunk c;
      size_t i = 0;
      uint64_t pos = 0;
      for (;;) {
        Result<bool> more = sealer.Next(&c);
        ASSERT_TRUE(more.ok()) << more.status().ToString();
        if (!*more) break;
        ASSERT_LT(i, ends.size());
        EXPECT_EQ(c.offset, pos);
        EXPECT_EQ(pos + c.plain_len, ends[i]) << "chunk " << i;
        const uint8_t* plain = data.data() + pos;
        EXPECT_EQ(c.id, crypto::KeyedHash32(keys.id_key, plain, c.plain_len));
        ASSERT_EQ(c.sealed.size(), c.plain_len + crypto::kSealOverhead);
        const auto* sealed = reinterpret_cast<const uint8_t*>(c.sealed.data());
        Result<Bytes> opened =
            crypto::Open(keys.seal_key, sealed, c.sealed.size(), c.id.data(), c.id.size());
        ASSERT_TRUE(opened.ok());
        EXPECT_TRUE(std::equal(opened->begin(), opened->end(), plain));
        // The id is bound: another id as associated data does not open.
        Bytes other = c.id;
        other[0] ^= 1;
        EXPECT_FALSE(crypto::Open(keys.seal_key, sealed, c.sealed.size(), other.data(), 32).ok());
        pos += c.plain_len;
        i++;
        EXPECT_EQ(sealer.bytes_out(), pos);
      }
      EXPECT_EQ(i, ends.size());
      EXPECT_EQ(pos, data.size());
      EXPECT_TRUE(c.sealed.empty());
    }
  }
}

TEST(ChunkSealerTest, IdsAreDeterministicPerKeyAndSealsAreNot) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  Keys a, b;
  const Bytes data = RandomBytes(12, 3 * kMiB);
  auto run = [&](const Keys& k) {
    size_t off = 0;
    ChunkSealer sealer(k.id_key, k.seal_key, CdcParams{}, MemoryReader(data, &off));
    std::vector<SealedChunk> out;
    SealedChunk c;
    for (;;) {
      Result<bool> more = sealer.Next(&c);
      if (!more.ok() || !more.value()) break;
      out.push_back(c);
    }
    return out;
  };
  const auto a1 = run(a), a2 = run(a), b1 = run(b);
  ASSERT_EQ(a1.size(), a2.size());
  ASSERT_EQ(a1.size(), b1.size());  // cuts depend on content only
  for (size_t i = 0; i < a1.size(); i++) {
    EXPECT_EQ(a1[i].id, a2[i].id) << "same user, same chunk: same id (dedup)";
    EXPECT_NE(a1[i].sealed, a2[i].sealed) << "random nonce: sealing twice differs";
    EXPECT_NE(a1[i].id, b1[i].id) << "another user's id key: unrelated id";
  }
}

TEST(ChunkSealerTest, SkippedChunksAreHandedOutUnsealed) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  Keys keys;
  const Bytes zeros(10 * kMiB + 5, 0);  // forced 4 MiB cuts: 4, 4, 2 MiB + 5
  size_t off = 0;
  ChunkSealer sealer(keys.id_key, keys.seal_key, CdcParams{}, MemoryReader(zeros, &off));
  std::set<Bytes> seen;
  sealer.set_skip([&](const Bytes& id) { return seen.count(id) > 0; });
  std::vector<SealedChunk> out;
  SealedChunk c;
  for (;;) {
    Result<bool> more = sealer.Next(&c);
    ASSERT_TRUE(more.ok());
    if (!more.value()) break;
    seen.insert(c.id);
    out.push_back(c);
  }
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].skipped);
  EXPECT_EQ(out[0].sealed.size(), 4 * kMiB + crypto::kSealOverhead);
  EXPECT_TRUE(out[1].skipped) << "same 4 MiB of zeros, same id";
  EXPECT_EQ(out[1].id, out[0].id);
  EXPECT_TRUE(out[1].sealed.empty());
  EXPECT_EQ(out[1].offset, 4 * kMiB);
  EXPECT_FALSE(out[2].skipped);
  EXPECT_EQ(out[2].plain_len, 2 * kMiB + 5);
}

TEST(ChunkSealerTest, EmptyStreamAndReaderErrors) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  Keys keys;
  {
    ChunkSealer sealer(keys.id_key, keys.seal_key, CdcParams{},
                       [](uint8_t*, size_t) -> Result<size_t> { return size_t{0}; });
    SealedChunk c;
    Result<bool> more = sealer.Next(&c);
    ASSERT_TRUE(more.ok());
    EXPECT_FALSE(*more);
    EXPECT_EQ(sealer.bytes_out(), 0u);
  }
  {
    int calls = 0;
    ChunkSealer sealer(keys.id_key, keys.seal_key, CdcParams{},
                       [&](uint8_t* buf, size_t cap) -> Result<size_t> {
                         if (++calls == 3) return IoError("disk on fire");
                         std::memset(buf, calls, cap);
                         return cap;
                       });
    SealedChunk c;
    Result<bool> more = sealer.Next(&c);
    ASSERT_FALSE(more.ok());
    EXPECT_EQ(more.status().code(), Code::kIo);
    EXPECT_FALSE(sealer.Next(&c).ok()) << "the error sticks";
    EXPECT_EQ(calls, 3);
  }
}

// ---------------------------------------------------------------- CutSealer

// The cuts of `data` as pass 1 of Put records them.
std::vector<ChunkCut> CutsOf(const Keys& keys, const Bytes& data,
                             const CdcParams& p) {
  std::vector<ChunkCut> cuts;
  size_t start = 0;
  for (size_t end : ChunkBoundaries(data.data(), data.size(), p)) {
    ChunkCut& c = cuts.emplace_back();
    c.offset = start;
    c.plain_len = uint32_t(end - start);
    const Bytes id =
        crypto::KeyedHash32(keys.id_key, data.data() + start, end - start);
    std::copy(id.begin(), id.end(), c.id.begin());
    start = end;
  }
  return cuts;
}

TEST(CutSealerTest, ReadsAndSealsOnlyTheChunksNotSkipped) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  Keys keys;
  const Bytes data = RandomBytes(13, 9 * kMiB + 77);
  const std::vector<ChunkCut> cuts = CutsOf(keys, data, CdcParams{});
  ASSERT_GE(cuts.size(), 5u);
  std::vector<uint64_t> read_at;
  CutSealer sealer(keys.id_key, keys.seal_key, cuts,
                   [&](uint64_t off, uint8_t* buf, size_t len) -> Status {
                     read_at.push_back(off);
                     std::memcpy(buf, data.data() + off, len);
                     return Status::Ok();
                   });
  // Only chunks 1 and 3 are wanted.
  const std::set<Bytes> wanted = {Bytes(cuts[1].id.begin(), cuts[1].id.end()),
                                  Bytes(cuts[3].id.begin(), cuts[3].id.end())};
  sealer.set_skip([&](const Bytes& id) { return wanted.count(id) == 0; });
  SealedChunk c;
  uint64_t pos = 0;
  for (size_t i = 0;; i++) {
    Result<bool> more = sealer.Next(&c);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) {
      EXPECT_EQ(i, cuts.size());
      break;
    }
    EXPECT_EQ(c.offset, pos);
    EXPECT_EQ(c.plain_len, cuts[i].plain_len);
    EXPECT_EQ(c.id, Bytes(cuts[i].id.begin(), cuts[i].id.end()));
    EXPECT_EQ(c.skipped, i != 1 && i != 3) << "chunk " << i;
    if (!c.skipped) {
      const auto* sealed = reinterpret_cast<const uint8_t*>(c.sealed.data());
      Result<Bytes> opened = crypto::Open(
          keys.seal_key, sealed, c.sealed.size(), c.id.data(), c.id.size());
      ASSERT_TRUE(opened.ok());
      EXPECT_TRUE(
          std::equal(opened->begin(), opened->end(), data.data() + pos));
    } else {
      EXPECT_TRUE(c.sealed.empty());
    }
    pos += c.plain_len;
    EXPECT_EQ(sealer.bytes_out(), pos);
  }
  EXPECT_EQ(pos, data.size());
  EXPECT_EQ(read_at, (std::vector<uint64_t>{cuts[1].offset, cuts[3].offset}));
  EXPECT_EQ(sealer.bytes_read(),
            uint64_t(cuts[1].plain_len) + cuts[3].plain_len);
}

// Manifest format 3 (issue 4) through the remembered cuts: the CutSealer
// seals each chunk under its own key and hands that key out, as the
// ChunkSealer does (regression: the merge of the delta write and sharing
// left pass 2 sealing under the user's chunk key while the manifest said
// format 3, which no reader of the manifest could open).
TEST(CutSealerTest, PerChunkKeysAsTheChunkSealerGivesThem) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  Keys keys;
  const Bytes data = RandomBytes(15, 5 * kMiB + 3);
  const std::vector<ChunkCut> cuts = CutsOf(keys, data, CdcParams{});
  ASSERT_GE(cuts.size(), 2u);
  CutSealer cut(keys.id_key, keys.seal_key, cuts,
                [&](uint64_t off, uint8_t* buf, size_t len) -> Status {
                  std::memcpy(buf, data.data() + off, len);
                  return Status::Ok();
                });
  cut.set_per_chunk_keys(true);
  size_t off = 0;
  ChunkSealer cdc(keys.id_key, keys.seal_key, CdcParams{}, MemoryReader(data, &off));
  cdc.set_per_chunk_keys(true);
  SealedChunk a, b;
  for (size_t i = 0; i < cuts.size(); i++) {
    ASSERT_TRUE(cut.Next(&a).value());
    ASSERT_TRUE(cdc.Next(&b).value());
    ASSERT_EQ(a.id, b.id);
    ASSERT_EQ(a.seal_key.size(), 32u);
    EXPECT_EQ(a.seal_key, b.seal_key) << "chunk " << i;
    const crypto::SecretBytes own = crypto::ChunkSealKey(keys.seal_key, a.id);
    EXPECT_EQ(a.seal_key, std::string(reinterpret_cast<const char*>(own.data()), own.size()));
    Result<Bytes> opened =
        crypto::Open(own, reinterpret_cast<const uint8_t*>(a.sealed.data()), a.sealed.size(),
                     a.id.data(), a.id.size());
    ASSERT_TRUE(opened.ok()) << "chunk " << i << " is not sealed under its own key";
    EXPECT_TRUE(std::equal(opened->begin(), opened->end(), data.data() + cuts[i].offset));
    EXPECT_FALSE(crypto::Open(keys.seal_key, reinterpret_cast<const uint8_t*>(a.sealed.data()),
                              a.sealed.size(), a.id.data(), a.id.size())
                     .ok());
  }
  EXPECT_FALSE(cut.Next(&a).value());
}

TEST(CutSealerTest, BytesThatNoLongerMatchTheirIdAbortAndTheFailureSticks) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  Keys keys;
  Bytes data = RandomBytes(14, 6 * kMiB);
  const std::vector<ChunkCut> cuts = CutsOf(keys, data, CdcParams{});
  ASSERT_GE(cuts.size(), 3u);
  data[cuts[1].offset + 10] ^= 0x01;  // the file changed after pass 1
  int reads = 0;
  CutSealer sealer(keys.id_key, keys.seal_key, cuts,
                   [&](uint64_t off, uint8_t* buf, size_t len) -> Status {
                     reads++;
                     std::memcpy(buf, data.data() + off, len);
                     return Status::Ok();
                   });
  SealedChunk c;
  Result<bool> first = sealer.Next(&c);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  EXPECT_FALSE(c.sealed.empty());
  Result<bool> second = sealer.Next(&c);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kAborted);
  Result<bool> third = sealer.Next(&c);
  ASSERT_FALSE(third.ok()) << "the failure sticks";
  EXPECT_EQ(third.status().code(), Code::kAborted);
  EXPECT_EQ(reads, 2);
  EXPECT_EQ(sealer.bytes_read(), cuts[0].plain_len);

  // A reader error (e.g. the file shrank) is handed out as is.
  CutSealer failing(
      keys.id_key, keys.seal_key, cuts,
      [](uint64_t, uint8_t*, size_t) -> Status { return IoError("gone"); });
  Result<bool> r = failing.Next(&c);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIo);
  // No cuts: the end at once.
  const std::vector<ChunkCut> none;
  CutSealer empty(keys.id_key, keys.seal_key, none,
                  [](uint64_t, uint8_t*, size_t) -> Status {
                    return Internal("not called");
                  });
  Result<bool> e = empty.Next(&c);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(*e);
}

// ---------------------------------------------------------------- fake agent

// A POP core (pop-server/pop_core.h) with its in-memory region of gateways,
// driven synchronously: the fake agent hands it the client's fragment
// requests (issue 3) for a chunk it placed, with one gateway forging the
// fragment it holds (payload changed, CRC32C recomputed).
struct PopRegion {
  MemPopStore store;
  std::unique_ptr<PopCore> core;
  std::map<uint32_t, std::map<std::pair<std::string, uint32_t>, Bytes>> disks;  // gateway -> fragments
  std::vector<OutReply> replies;

  PopRegion() {
    PopParams p;
    p.pop_id = 1;  // the fake agent's oids name POP 1 as primary
    p.region = "r";
    p.k = 4;
    p.m = 2;
    p.cache_bytes_max = 0;
    core = std::make_unique<PopCore>(p, &store, 99);
    for (uint32_t id = 1; id <= 8; id++) core->OnGatewayUp(0, GatewayState{id, "alice", 1u << 30, true});
    Drive(0);
  }
  Result<pb::Envelope> Answer(const OutCall& c) {
    if (c.to.kind != Dest::kGateway) return Unavailable("not modelled");
    auto& disk = disks[c.to.id];
    pb::Envelope r;
    if (c.msg.has_store_fragment()) {
      const std::string& f = c.msg.store_fragment().fragment();
      auto h = ParseFragmentHeader(reinterpret_cast<const uint8_t*>(f.data()), f.size());
      if (!h.ok()) return h.status();
      disk[{std::string(h->chunk_id.begin(), h->chunk_id.end()), h->index}] = Bytes(f.begin(), f.end());
      r.mutable_empty();
    } else if (c.msg.has_fetch_fragment()) {
      auto it = disk.find({c.msg.fetch_fragment().chunk_id(), c.msg.fetch_fragment().index()});
      if (it == disk.end()) return NotFound("no such fragment");
      r.mutable_fragment_data()->set_fragment(std::string(it->second.begin(), it->second.end()));
    } else if (c.msg.has_delete_fragments()) {
      for (auto& f : c.msg.delete_fragments().fragments()) disk.erase({f.chunk_id(), f.index()});
      r.mutable_empty();
    } else {
      return Unavailable("not modelled");
    }
    return r;
  }
  void Drive(uint64_t now) {
    for (int round = 0; round < 1000; round++) {
      Outbox out = core->TakeOutbox();
      if (out.empty()) return;
      for (auto& j : out.jobs) {
        j.run();
        core->OnJobDone(now, j.token);
      }
      for (auto& c : out.calls) core->OnCallDone(now, c.token, Answer(c));
      for (auto& r : out.replies) replies.push_back(r);
    }
  }
  // Places the sealed chunk on 6 of the 8 gateways; the holder of fragment
  // `forge` then forges it. Returns that gateway.
  uint32_t PlaceAndForge(const std::string& id, const std::string& sealed, uint32_t forge) {
    ChunkKey key{"alice", Bytes(id.begin(), id.end())};
    EXPECT_TRUE(store.PutChunk(key, Bytes(sealed.begin(), sealed.end()), ChunkState::kReplica).ok());
    core->OnTick(1);
    Drive(1);
    EXPECT_EQ(store.Fragments(key).size(), 6u);
    uint32_t g = HolderOf(id, forge);
    Bytes& b = disks[g][{id, forge}];
    auto h = ParseFragmentHeader(b.data(), b.size()).value();
    b[h.header_len() + 5] ^= 0x21;
    FinishFragmentInPlace(h, b.data(), b.size() - h.header_len());
    EXPECT_TRUE(ParseFragment(b.data(), b.size()).ok()) << "the forgery passes its CRC32C";
    // The POP's copy goes (as after an eviction): reads need the fragments.
    (void)store.DropChunkData(key);
    return g;
  }
  uint32_t HolderOf(const std::string& id, uint32_t index) {
    for (auto& l : store.Fragments(ChunkKey{"alice", Bytes(id.begin(), id.end())}))
      if (l.index == index) return l.gateway_id;
    return 0;
  }
  // One request from the agent (a gateway of subscriber alice), answered.
  pb::Envelope Serve(const pb::Envelope& req, uint64_t now) {
    replies.clear();
    pb::Envelope env = req;
    env.set_request_id(77);
    core->OnRequest(now, Peer{1, pb::ROLE_GATEWAY, 1, "alice"}, env);
    Drive(now);
    if (replies.size() != 1) {
      pb::Envelope e;
      e.mutable_error()->set_code(uint32_t(Code::kInternal));
      e.mutable_error()->set_message("POP core gave " + std::to_string(replies.size()) + " replies");
      return e;
    }
    return replies[0].msg;
  }
};

// A gateway agent stand-in on its own thread and event loop: stores sealed
// chunks and committed versions in memory, answers PutChunk after a short
// delay (so the client's window fills), and serves GetVersion / GetChunk.
class FakeAgent {
 public:
  FakeAgent() {
    std::promise<std::string> addr;
    auto fut = addr.get_future();
    thread_ = std::thread([this, &addr] { Run(&addr); });
    addr_ = fut.get();
  }
  ~FakeAgent() {
    stop_ = true;
    thread_.join();
  }
  const std::string& addr() const { return addr_; }

  // Fails the n-th PutChunk (1-based) with kUnavailable.
  void FailPutChunk(int n) { fail_put_chunk_ = n; }
  // The next n commits are carried out but their answers are lost: the
  // connection is closed instead of replying (a link drop after the commit).
  void LoseCommitAnswers(int n) {
    std::lock_guard<std::mutex> l(mu_);
    lose_commit_answers_ = n;
  }
  // The next n commits are refused with `code` before anything is done.
  void RefuseCommits(int n, Code code) {
    std::lock_guard<std::mutex> l(mu_);
    refuse_commits_ = n;
    refuse_code_ = code;
  }
  // Flips one byte of every stored chunk served by GetChunk for `id`.
  // Read-only sharing (issue 4) tests: the stored sealed chunk and latest
  // version record, and an object written by hand (an older client's).
  std::string SealedChunk(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = chunks_.find(id);
    return it == chunks_.end() ? std::string() : it->second;
  }
  pb::VersionInfo Latest(const std::string& name_key) {
    std::lock_guard<std::mutex> l(mu_);
    return versions_[name_key];
  }
  void Inject(const pb::VersionInfo& v, const std::map<std::string, std::string>& chunks) {
    std::lock_guard<std::mutex> l(mu_);
    versions_[v.name_key()] = v;
    history_[v.oid()].push_back(v);
    for (auto& [id, data] : chunks) chunks_[id] = data;
  }
  void TamperWith(const std::string& id) {
    std::lock_guard<std::mutex> l(mu_);
    tamper_.insert(id);
  }
  // Answers HaveChunks (nothing present) with the code (k, m) = (4, 2), so
  // puts tag their fragments, and serves GetChunkFragments /
  // ReportForgedFragments for `id` through a POP core whose region holds its
  // fragments, fragment `forge` forged by its gateway (returned).
  uint32_t ServeFragmentsThroughPop(const std::string& id, uint32_t forge) {
    std::lock_guard<std::mutex> l(mu_);
    pop_ = std::make_unique<PopRegion>();
    return pop_->PlaceAndForge(id, chunks_.at(id), forge);
  }
  void AnswerHaveChunks(uint32_t k = 4, uint32_t m = 2) {
    have_k_ = k;
    have_m_ = m;
    answer_have_chunks_ = true;
  }
  // HaveChunks answers wait until a PutChunk has arrived after the query (a
  // put that waits for the answer stalls until its call timeout).
  void HoldHaveChunksAnswersUntilAPutChunk() {
    std::lock_guard<std::mutex> l(mu_);
    hold_have_chunks_ = true;
  }
  // HaveChunks answers name the asked chunks this agent stores, as a POP
  // does; `on_query`, when set, runs (on the agent's thread) before each
  // answer: between a put's two passes.
  void AnswerHaveChunksWithStored(std::function<void()> on_query = nullptr) {
    std::lock_guard<std::mutex> l(mu_);
    answer_present_ = true;
    on_have_chunks_ = std::move(on_query);
    answer_have_chunks_ = true;
  }
  // After the get: the POP core's counters and the holder of an index.
  struct PopView {
    uint64_t forged_total = 0, forged_reported = 0, bad_total = 0;
    uint32_t holder = 0;
  };
  PopView Pop(const std::string& id, uint32_t index, uint64_t tick_ms) {
    std::lock_guard<std::mutex> l(mu_);
    PopView v;
    if (!pop_) return v;
    pop_->core->OnTick(tick_ms);  // repair re-places what was marked bad
    pop_->Drive(tick_ms);
    v.forged_total = pop_->core->fragments_forged_total();
    v.forged_reported = pop_->core->fragments_forged_reported_total();
    v.bad_total = pop_->core->fragments_bad_total();
    v.holder = pop_->HolderOf(id, index);
    return v;
  }

  struct Stats {
    int put_chunks = 0;
    int commits = 0;
    size_t max_outstanding = 0;
    std::vector<std::string> chunk_ids;  // in arrival order
    std::vector<size_t> sealed_sizes;
    std::vector<std::string> commit_chunk_ids;  // of the last commit
    std::vector<std::string> commit_write_ids;  // of every commit, in arrival order
    int commits_answered_from_kept = 0;
    uint64_t commit_size = 0;
    int get_chunks = 0;
    size_t max_get_outstanding_bytes = 0;  // sealed bytes of GetChunks not yet answered
    int fragment_requests = 0;
    std::vector<pb::ReportForgedFragments> reports;
    int have_chunks_held = 0;  // answered only after a PutChunk came
  };
  Stats stats() {
    std::lock_guard<std::mutex> l(mu_);
    return stats_;
  }

 private:
  void Run(std::promise<std::string>* addr) {
    EventLoop loop;
    std::vector<Connection::Ptr> conns;
    // The client port speaks only the device link (issue 4): XX from a
    // client without a pairing file, any key served here.
    ConnectionLimits limits;
    auto link = std::make_shared<secure::DeviceLinkConfig>();
    link->static_key = noise::KeyPair::Generate();
    auto sc = std::make_shared<SecureConfig>();
    sc->channel.device_link = std::move(link);
    limits.secure = std::move(sc);
    Listener listener(&loop, limits, [&](const Connection::Ptr& c) {
      conns.push_back(c);
      c->set_on_request([this, &loop](const Connection::Ptr& c, pb::Envelope&& env) {
        Handle(&loop, c, std::move(env));
      });
    });
    Result<std::string> bound = listener.Listen("127.0.0.1:0");
    addr->set_value(bound.ok() ? *bound : "");  // the client then fails to dial
    if (!bound.ok()) return;
    TimerId poll = 0;
    poll = loop.Every(5, [&] {
      if (!stop_) return;
      for (auto& c : conns) c->Close(Unavailable("fake agent done"));
      listener.Close();
      loop.Cancel(poll);
      loop.Stop();
    });
    loop.Run();
  }

  void Handle(EventLoop* loop, const Connection::Ptr& c, pb::Envelope&& env) {
    const uint64_t rid = env.request_id();
    pb::Envelope reply;
    std::lock_guard<std::mutex> l(mu_);
    switch (env.body_case()) {
      case pb::Envelope::kPutChunk: {
        stats_.put_chunks++;
        const auto& pc = env.put_chunk();
        stats_.chunk_ids.push_back(pc.chunk_id());
        stats_.sealed_sizes.push_back(pc.data().size());
        chunks_[pc.chunk_id()] = pc.data();
        if (held_have_) {
          held_have_->first->Reply(held_have_->second.first, std::move(held_have_->second.second));
          held_have_.reset();
          stats_.have_chunks_held++;
        }
        const bool fail = stats_.put_chunks == fail_put_chunk_;
        outstanding_++;
        stats_.max_outstanding = std::max(stats_.max_outstanding, outstanding_);
        loop->After(2, [this, c, rid, fail] {
          {
            std::lock_guard<std::mutex> l(mu_);
            outstanding_--;
          }
          if (fail) {
            c->ReplyError(rid, Unavailable("injected PutChunk failure"));
          } else {
            pb::Envelope r;
            r.mutable_empty();
            c->Reply(rid, std::move(r));
          }
        });
        return;
      }
      case pb::Envelope::kPutCommit: {
        const auto& pc = env.put_commit();
        stats_.commits++;
        stats_.commit_write_ids.push_back(pc.write_id());
        if (refuse_commits_ > 0) {
          refuse_commits_--;
          c->ReplyError(rid, Status(refuse_code_, "injected commit refusal"));
          return;
        }
        // As the agent and the entry POP do: a write id seen before is
        // answered with its kept result.
        if (auto k = kept_.find(pc.write_id()); !pc.write_id().empty() && k != kept_.end()) {
          stats_.commits_answered_from_kept++;
          *reply.mutable_put_reply() = k->second;
          break;
        }
        stats_.commit_chunk_ids.assign(pc.chunk_ids().begin(), pc.chunk_ids().end());
        stats_.commit_size = pc.size_bytes();
        for (const auto& id : pc.chunk_ids()) {
          if (!chunks_.count(id)) {
            c->ReplyError(rid, NotFound("chunk not staged"));
            return;
          }
        }
        pb::VersionInfo& v = versions_[pc.name_key()];
        if (v.oid().empty()) {  // one oid per name, in order of creation
          Oid oid{1, 2, 3, uint32_t(versions_.size() + 3)};
          v.set_oid(ToStr(oid.Encode()));
        }
        v.set_version(v.version() + 1);
        v.set_size_bytes(pc.size_bytes());
        v.set_manifest_sealed(pc.manifest_sealed());
        v.mutable_chunk_ids()->CopyFrom(pc.chunk_ids());
        v.set_name_sealed(pc.name_sealed());
        v.set_subscriber(pc.subscriber());
        v.set_name_key(pc.name_key());
        history_[v.oid()].push_back(v);
        reply.mutable_put_reply()->set_oid(v.oid());
        reply.mutable_put_reply()->set_version(v.version());
        kept_[pc.write_id()] = reply.put_reply();
        if (lose_commit_answers_ > 0) {
          lose_commit_answers_--;
          c->Close(Unavailable("injected link drop after the commit"));
          return;
        }
        break;
      }
      case pb::Envelope::kGetVersion: {
        const auto& g = env.get_version();
        if (!g.oid().empty()) {  // by oid, latest or exactly version N
          auto h = history_.find(g.oid());
          if (h == history_.end() || g.version() > h->second.size()) {
            c->ReplyError(rid, NotFound("no such oid or version"));
            return;
          }
          *reply.mutable_version_info() =
              h->second[g.version() ? g.version() - 1 : h->second.size() - 1];
          break;
        }
        auto it = versions_.find(g.name_key());
        if (it == versions_.end()) {
          c->ReplyError(rid, NotFound("no such name"));
          return;
        }
        *reply.mutable_version_info() = it->second;
        break;
      }
      case pb::Envelope::kListObjects: {
        auto* l = reply.mutable_object_list();
        for (auto& [key, v] : versions_) {
          auto* e = l->add_objects();
          e->set_oid(v.oid());
          e->set_name_sealed(v.name_sealed());
          e->set_latest_version(v.version());
          e->set_size_bytes(v.size_bytes());
        }
        break;
      }
      case pb::Envelope::kHaveChunks: {
        if (!answer_have_chunks_) {
          c->ReplyError(rid, ProtocolError("fake agent: unexpected message"));
          return;
        }
        reply.mutable_have_chunks_reply()->set_k(have_k_);
        reply.mutable_have_chunks_reply()->set_m(have_m_);
        if (answer_present_)
          for (const auto& id : env.have_chunks().chunk_ids())
            if (chunks_.count(id))
              reply.mutable_have_chunks_reply()->add_present(id);
        if (on_have_chunks_) on_have_chunks_();
        if (hold_have_chunks_) {
          held_have_.emplace(c, std::make_pair(rid, std::move(reply)));
          return;
        }
        break;
      }
      case pb::Envelope::kGetChunkFragments:
      case pb::Envelope::kReportForgedFragments: {
        if (!pop_) {
          c->ReplyError(rid, ProtocolError("fake agent: unexpected message"));
          return;
        }
        stats_.fragment_requests++;
        if (env.has_report_forged_fragments()) stats_.reports.push_back(env.report_forged_fragments());
        reply = pop_->Serve(env, 100);
        if (reply.has_error()) {
          c->ReplyError(rid, Status(Code(reply.error().code()), reply.error().message()));
          return;
        }
        break;
      }
      case pb::Envelope::kGetChunk: {
        auto it = chunks_.find(env.get_chunk().chunk_id());
        if (it == chunks_.end()) {
          c->ReplyError(rid, NotFound("no such chunk"));
          return;
        }
        std::string data = it->second;
        if (tamper_.count(it->first)) data[data.size() / 2] ^= 0x40;
        // Answered after a short delay, like PutChunk: the read window fills.
        get_outstanding_bytes_ += data.size();
        stats_.max_get_outstanding_bytes =
            std::max(stats_.max_get_outstanding_bytes, get_outstanding_bytes_);
        stats_.get_chunks++;
        loop->After(2, [this, c, rid, data = std::move(data)]() mutable {
          {
            std::lock_guard<std::mutex> l(mu_);
            get_outstanding_bytes_ -= data.size();
          }
          pb::Envelope r;
          r.mutable_chunk_data()->set_data(std::move(data));
          c->Reply(rid, std::move(r));
        });
        return;
      }
      default:
        c->ReplyError(rid, ProtocolError("fake agent: unexpected message"));
        return;
    }
    c->Reply(rid, std::move(reply));
  }

  static std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }

  std::thread thread_;
  std::string addr_;
  std::atomic<bool> stop_{false};
  std::atomic<int> fail_put_chunk_{0};
  int lose_commit_answers_ = 0;  // guarded by mu_ (as the two below)
  int refuse_commits_ = 0;
  Code refuse_code_ = Code::kUnavailable;
  std::map<std::string, pb::PutReply> kept_;  // write id -> result
  std::mutex mu_;
  Stats stats_;
  size_t outstanding_ = 0;
  size_t get_outstanding_bytes_ = 0;
  std::map<std::string, std::string> chunks_;
  std::map<std::string, pb::VersionInfo> versions_;          // name key -> latest
  std::map<std::string, std::vector<pb::VersionInfo>> history_;  // oid -> every version
  std::set<std::string> tamper_;
  std::unique_ptr<PopRegion> pop_;
  std::atomic<bool> answer_have_chunks_{false};
  bool answer_present_ = false;           // guarded by mu_
  std::function<void()> on_have_chunks_;  // guarded by mu_
  bool hold_have_chunks_ = false;          // guarded by mu_
  // A HaveChunks answer held until the next PutChunk; guarded by mu_.
  std::optional<std::pair<Connection::Ptr, std::pair<uint64_t, pb::Envelope>>> held_have_;
  std::atomic<uint32_t> have_k_{4}, have_m_{2};
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    s_.agent_addr = agent_.addr();
    s_.subscriber = "alice";
    s_.key_file = dir_ + "/master.key";
    s_.state_dir = dir_;
    s_.call_timeout_ms = 10000;
    ASSERT_TRUE(Client::Init(s_, "pw", /*fast_kdf=*/true).ok());
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  std::unique_ptr<Client> Open() {
    auto c = Client::Open(s_, "pw");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c.value()) : nullptr;
  }
  Result<Bytes> GetAll(Client* c, const std::string& name) {
    Bytes out;
    auto info = c->Get(name, 0, [&](const uint8_t* p, size_t n) {
      out.insert(out.end(), p, p + n);
      return Status::Ok();
    });
    if (!info.ok()) return info.status();
    return out;
  }

  // Object "t" was put with its fragments tagged for the code (4, 2): its
  // sealed manifest (format 3) says so for every chunk.
  void ExpectTaggedForFourPlusTwo(Client* c) {
    auto info = c->Stat("t", 0);
    ASSERT_TRUE(info.ok());
    auto man = c->OpenManifest(info.value());
    ASSERT_TRUE(man.ok()) << man.status().ToString();
    EXPECT_EQ(man->format(), 3u);  // format 3 (issue 4) keeps format 2's tags
    EXPECT_EQ(man->fragment_k(), 4u);
    EXPECT_EQ(man->fragment_m(), 2u);
    for (auto& ch : man->chunks()) EXPECT_EQ(ch.fragment_tags().size(), 6u * 16);
  }
  // Reads "t" back as `data` with chunk `id` tampered (its AEAD open fails)
  // and its fragment `forge` forged by its gateway, whose id goes to *forger.
  void ReadBackWithAForgedFragment(Client* c, const std::string& id, uint32_t forge,
                                   const Bytes& data, uint32_t* forger) {
    *forger = agent_.ServeFragmentsThroughPop(id, forge);
    ASSERT_NE(*forger, 0u);
    agent_.TamperWith(id);
    auto out = GetAll(c, "t");
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out.value(), data);
    EXPECT_EQ(c->stats().fragments_forged, 1u);
  }

  FakeAgent agent_;
  std::string dir_;
  ClientSettings s_;
};

TEST_F(ClientTest, PutCutsWithFastCdcKeepsTheWindowAndGetRoundTrips) {
  s_.chunking = {16 * kKiB, 64 * kKiB, 256 * kKiB};  // many chunks, quickly
  s_.window = 3;
  const Bytes data = RandomBytes(21, 3 * kMiB + 777);
  const std::string path = dir_ + "/file";
  WriteFile(path, data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  auto put = client->Put(path, "doc");
  ASSERT_TRUE(put.ok()) << put.status().ToString();

  const std::vector<size_t> ends = ChunkBoundaries(data.data(), data.size(), s_.chunking);
  EXPECT_EQ(put->chunks, ends.size());
  EXPECT_EQ(put->size_bytes, data.size());
  EXPECT_EQ(put->version, 1u);
  FakeAgent::Stats st = agent_.stats();
  ASSERT_EQ(st.put_chunks, int(ends.size()));
  EXPECT_EQ(st.commits, 1);
  EXPECT_EQ(st.commit_size, data.size());
  EXPECT_EQ(st.commit_chunk_ids, st.chunk_ids) << "commit lists every chunk, in order";
  size_t prev = 0;
  for (size_t i = 0; i < ends.size(); i++) {
    EXPECT_EQ(st.sealed_sizes[i], ends[i] - prev + crypto::kSealOverhead) << "chunk " << i;
    prev = ends[i];
  }
  EXPECT_EQ(st.max_outstanding, s_.window) << "the window fills but is never exceeded";

  Result<Bytes> got = GetAll(client.get(), "doc");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
}

// Issue 11: the read window is in bytes (get_window_bytes), not chunks.
// Its requests fill it but never exceed it, and it is not the put window.
TEST_F(ClientTest, GetKeepsItsWindowInBytes) {
  s_.chunking = {16 * kKiB, 64 * kKiB, 256 * kKiB};
  s_.window = 1;                      // the put window does not bound reads
  s_.get_window_bytes = 512 * kKiB;  // 2..32 chunks of 16..256 KiB
  const Bytes data = RandomBytes(22, 6 * kMiB + 123);
  const std::string path = dir_ + "/file";
  WriteFile(path, data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(path, "doc").ok());
  Result<Bytes> got = GetAll(client.get(), "doc");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  FakeAgent::Stats st = agent_.stats();
  EXPECT_LE(st.max_get_outstanding_bytes, s_.get_window_bytes) << "never more in flight";
  EXPECT_GT(st.max_get_outstanding_bytes, 256 * kKiB + crypto::kSealOverhead)
      << "more than one largest chunk in flight: the window fills";
  EXPECT_LE(client->stats().get_held_bytes_max, s_.get_window_bytes);
  EXPECT_GE(client->stats().get_held_bytes_max, st.max_get_outstanding_bytes);
}

// A chunk larger than the whole window still goes (alone).
TEST_F(ClientTest, GetWindowSmallerThanAChunkStillReadsOneAtATime) {
  s_.chunking = {64 * kKiB, 256 * kKiB, 1 * kMiB};
  s_.get_window_bytes = 64 * kKiB;
  const Bytes data = RandomBytes(23, 3 * kMiB);
  WriteFile(dir_ + "/file", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/file", "doc").ok());
  Result<Bytes> got = GetAll(client.get(), "doc");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
  FakeAgent::Stats st = agent_.stats();
  EXPECT_GE(st.get_chunks, 3);
  EXPECT_LE(st.max_get_outstanding_bytes, 1 * kMiB + crypto::kSealOverhead)
      << "one chunk at a time";
}

TEST_F(ClientTest, DefaultChunkingRoundTripsEmptySmallAndMultiChunkFiles) {
  auto client = Open();
  ASSERT_NE(client, nullptr);
  for (size_t size : {size_t{0}, size_t{1}, 256 * kKiB, 9 * kMiB + 5}) {
    const Bytes data = RandomBytes(30 + size, size);
    const std::string path = dir_ + "/f" + std::to_string(size);
    WriteFile(path, data);
    const std::string name = "n" + std::to_string(size);
    auto put = client->Put(path, name);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    EXPECT_EQ(put->chunks, ChunkBoundaries(data.data(), data.size()).size()) << size;
    Result<Bytes> got = GetAll(client.get(), name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == data) << size;
  }
}

// The point of content-defined chunking, end to end: a new version of a
// file with one byte inserted in the middle produces at most two chunk ids
// the old version did not have.
TEST_F(ClientTest, OneByteInsertChangesAtMostTwoChunkIds) {
  const Bytes v1 = RandomBytes(40, 24 * kMiB);
  Bytes v2 = v1;
  v2.insert(v2.begin() + 13 * kMiB + 4321, uint8_t{0x5a});
  WriteFile(dir_ + "/v1", v1);
  WriteFile(dir_ + "/v2", v2);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/v1", "big").ok());
  const std::vector<std::string> ids1 = agent_.stats().commit_chunk_ids;
  auto put2 = client->Put(dir_ + "/v2", "big");
  ASSERT_TRUE(put2.ok());
  EXPECT_EQ(put2->version, 2u);
  const std::vector<std::string> ids2 = agent_.stats().commit_chunk_ids;
  const std::set<std::string> old(ids1.begin(), ids1.end());
  int fresh = 0;
  for (const auto& id : ids2) fresh += old.count(id) ? 0 : 1;
  EXPECT_GE(ids1.size(), 15u);
  EXPECT_GE(fresh, 1);
  EXPECT_LE(fresh, 2) << "of " << ids2.size() << " chunks";
  Result<Bytes> got = GetAll(client.get(), "big");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == v2);
}

// A second version differing in a few chunks: pass 2 reads and seals only
// the chunks the POP lacks (pass 1's cuts remembered); the rest is not read
// again. The version reads back whole.
TEST_F(ClientTest, PutOfAnEditedFileRereadsOnlyTheChunksThePopLacks) {
  agent_.AnswerHaveChunksWithStored();
  const Bytes v1 = RandomBytes(41, 24 * kMiB);
  Bytes v2 = v1;
  const Bytes edit = RandomBytes(42, 64 * kKiB);
  std::copy(edit.begin(), edit.end(), v2.begin() + 11 * kMiB);
  WriteFile(dir_ + "/v1", v1);
  WriteFile(dir_ + "/v2", v2);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  auto put1 = client->Put(dir_ + "/v1", "big");
  ASSERT_TRUE(put1.ok()) << put1.status().ToString();
  EXPECT_EQ(put1->bytes_reread, v1.size())
      << "the POP had nothing: every chunk is read again";
  const int sent_before = agent_.stats().put_chunks;
  auto put2 = client->Put(dir_ + "/v2", "big");
  ASSERT_TRUE(put2.ok()) << put2.status().ToString();
  EXPECT_EQ(put2->version, 2u);
  const FakeAgent::Stats st = agent_.stats();
  const int sent = st.put_chunks - sent_before;
  EXPECT_GE(sent, 1);
  EXPECT_LE(sent, 2);
  EXPECT_EQ(put2->chunks_sent, size_t(sent));
  // Read again: exactly the plaintext of the chunks sent (<= 2 x 4 MiB).
  uint64_t sent_plain = 0;
  for (size_t i = st.sealed_sizes.size() - size_t(sent);
       i < st.sealed_sizes.size(); i++)
    sent_plain += st.sealed_sizes[i] - crypto::kSealOverhead;
  EXPECT_EQ(put2->bytes_reread, sent_plain);
  EXPECT_LT(put2->bytes_reread, v2.size() / 3);
  EXPECT_EQ(st.commit_size, v2.size());
  Result<Bytes> got = GetAll(client.get(), "big");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == v2);
}

// The file changes between the passes (here while the HaveChunks query is
// answered): the put fails with kAborted and commits nothing, whether the
// change shows in size/mtime or only in a chunk's bytes (mtime put back).
TEST_F(ClientTest, FileChangedBetweenThePassesFailsThePutWithoutACommit) {
  const std::string path = dir_ + "/f";
  const Bytes data = RandomBytes(43, 6 * kMiB);
  WriteFile(path, data);
  struct stat before;
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  bool keep_mtime = true;
  agent_.AnswerHaveChunksWithStored([&] {
    int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const uint8_t x = uint8_t(data[3 * kMiB] ^ 0xff);
    ASSERT_EQ(pwrite(fd, &x, 1, off_t(3 * kMiB)), 1);
    if (keep_mtime) {
      const struct timespec times[2] = {before.st_atim, before.st_mtim};
      ASSERT_EQ(futimens(fd, times), 0);
    }
    close(fd);
  });
  auto client = Open();
  ASSERT_NE(client, nullptr);
  for (bool keep : {true, false}) {
    SCOPED_TRACE(keep ? "same mtime" : "new mtime");
    keep_mtime = keep;
    WriteFile(path, data);
    ASSERT_EQ(stat(path.c_str(), &before), 0);
    auto put = client->Put(path, "f");
    ASSERT_FALSE(put.ok());
    EXPECT_EQ(put.status().code(), Code::kAborted) << put.status().ToString();
    EXPECT_EQ(agent_.stats().commits, 0);
  }
}

// A put records the version it committed as seen under the name key and
// the oid (state_dir/seen, written once for both): the next reads of the
// latest version are at least as new.
TEST_F(ClientTest, PutRecordsItsVersionAsSeenUnderNameKeyAndOid) {
  WriteFile(dir_ + "/f", RandomBytes(47, 5000));
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/f", "f").ok());
  auto put = client->Put(dir_ + "/f", "f");
  ASSERT_TRUE(put.ok());
  auto text = ReadFileBytes(dir_ + "/seen", 1 << 20);
  ASSERT_TRUE(text.ok());
  const std::string seen(text->begin(), text->end());
  EXPECT_NE(seen.find(put->oid.Hex() + " 2\n"), std::string::npos) << seen;
  EXPECT_EQ(std::count(seen.begin(), seen.end(), '\n'), 2) << seen;
  EXPECT_EQ(seen.find(" 1\n"), std::string::npos) << seen;
}

// Beyond the cap of remembered cuts the file is cut a second time (the
// two-pass path), reading it all again; the put is the same.
TEST_F(ClientTest, BeyondTheRememberedCutsThePutCutsTheFileAgain) {
  agent_.AnswerHaveChunksWithStored();
  s_.chunking = {16 * kKiB, 64 * kKiB, 256 * kKiB};
  const Bytes data = RandomBytes(44, 2 * kMiB + 5);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  PutOptions po;
  po.remembered_cuts_max = 3;
  auto put = client->Put(dir_ + "/f", "f", po);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  const size_t n =
      ChunkBoundaries(data.data(), data.size(), s_.chunking).size();
  ASSERT_GT(n, 3u);
  EXPECT_EQ(put->chunks, n);
  EXPECT_EQ(put->bytes_reread, data.size());
  // Again, nothing new: the fallback reads it all, sends nothing.
  auto again = client->Put(dir_ + "/f", "f", po);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->chunks_sent, 0u);
  EXPECT_EQ(again->bytes_reread, data.size());
  // Within the cap nothing is read a second time.
  po.remembered_cuts_max = n;
  auto within = client->Put(dir_ + "/f", "f", po);
  ASSERT_TRUE(within.ok());
  EXPECT_EQ(within->chunks_sent, 0u);
  EXPECT_EQ(within->bytes_reread, 0u);
  Result<Bytes> got = GetAll(client.get(), "f");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == data);
}

// A chunk that repeats within a file (here the 4 MiB chunks of a 16 MiB
// run of zeros) is uploaded once; the manifest lists every occurrence.
TEST_F(ClientTest, RepeatedChunksAreUploadedOnce) {
  Bytes data(16 * kMiB, 0);
  const Bytes tail = RandomBytes(45, 3 * kMiB);
  data.insert(data.end(), tail.begin(), tail.end());
  WriteFile(dir_ + "/sparse", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  auto put = client->Put(dir_ + "/sparse", "sparse");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  const FakeAgent::Stats st = agent_.stats();
  const std::set<std::string> distinct(st.commit_chunk_ids.begin(), st.commit_chunk_ids.end());
  EXPECT_EQ(st.commit_chunk_ids.size(), ChunkBoundaries(data.data(), data.size()).size());
  EXPECT_EQ(put->chunks, st.commit_chunk_ids.size());
  EXPECT_EQ(st.commit_chunk_ids[0], st.commit_chunk_ids[3]) << "four identical chunks of zeros";
  EXPECT_EQ(size_t(st.put_chunks), distinct.size());
  EXPECT_EQ(size_t(st.put_chunks), st.commit_chunk_ids.size() - 3);
  Result<Bytes> got = GetAll(client.get(), "sparse");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == data);
}

// Issue 4 (sharing): a put writes manifest format 3: chunk ids under the
// format-3 id key, each chunk sealed under its own key ChunkSealKey(chunk
// key, id), which the sealed manifest carries; the user's chunk key itself
// opens none of them.
TEST_F(ClientTest, PutSealsEachChunkUnderItsOwnKeyRecordedInTheManifest) {
  s_.chunking = {16 * kKiB, 64 * kKiB, 256 * kKiB};
  const Bytes data = RandomBytes(60, 1 * kMiB + 99);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/f", "keyed").ok());
  auto blob = ReadFileBytes(s_.key_file, 4096);
  ASSERT_TRUE(blob.ok());
  auto master = crypto::UnwrapMasterKey(*blob, "pw");
  ASSERT_TRUE(master.ok());
  const Bytes nk = crypto::KeyedHash32(crypto::NameHashKey(*master),
                                       reinterpret_cast<const uint8_t*>("keyed"), 5);
  const pb::VersionInfo v = agent_.Latest(ToStr(nk));
  const Bytes ms(v.manifest_sealed().begin(), v.manifest_sealed().end());
  auto mplain = crypto::Open(crypto::ObjectKey(*master, GetLe64(nk.data())), ms.data(), ms.size(),
                             nk.data(), nk.size());
  ASSERT_TRUE(mplain.ok());
  auto m = DecodeManifest(mplain->data(), mplain->size());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format(), 3u);
  ASSERT_GE(m->chunks_size(), 3);
  const crypto::SecretBytes chunk_key =
      crypto::DeriveSubkey(*master, crypto::kSingletonSubkeyId, "mschunke");
  const crypto::SecretBytes id_v3 = crypto::ChunkIdKeyV3(*master);
  const crypto::SecretBytes id_v1 = crypto::ChunkIdKey(*master);
  uint64_t off = 0;
  for (const auto& c : m->chunks()) {
    const Bytes id(c.id().begin(), c.id().end());
    const crypto::SecretBytes own = crypto::ChunkSealKey(chunk_key, id);
    ASSERT_EQ(c.seal_key(), std::string(reinterpret_cast<const char*>(own.data()), own.size()));
    const std::string sealed = agent_.SealedChunk(c.id());
    const auto* sp = reinterpret_cast<const uint8_t*>(sealed.data());
    auto plain = crypto::Open(own, sp, sealed.size(), id.data(), id.size());
    ASSERT_TRUE(plain.ok());
    EXPECT_TRUE(std::equal(plain->begin(), plain->end(), data.begin() + off));
    EXPECT_FALSE(crypto::Open(chunk_key, sp, sealed.size(), id.data(), id.size()).ok());
    EXPECT_EQ(crypto::KeyedHash32(id_v3, plain->data(), plain->size()), id);
    EXPECT_NE(crypto::KeyedHash32(id_v1, plain->data(), plain->size()), id);
    off += c.plain_len();
  }
  EXPECT_EQ(off, data.size());
}

// Objects written before format 3 (chunks under the user's chunk key,
// format-1/2 ids) stay readable by their owner; sharing them is refused
// with a clear message (the grantee could not open their chunks).
TEST_F(ClientTest, OldFormatObjectsStayReadableByTheirOwnerAndAreNotShared) {
  ASSERT_TRUE(crypto::CryptoInit().ok());
  auto blob = ReadFileBytes(s_.key_file, 4096);
  ASSERT_TRUE(blob.ok());
  auto master = crypto::UnwrapMasterKey(*blob, "pw");
  ASSERT_TRUE(master.ok());
  const crypto::SecretBytes chunk_key =
      crypto::DeriveSubkey(*master, crypto::kSingletonSubkeyId, "mschunke");
  const crypto::SecretBytes id_key = crypto::ChunkIdKey(*master);
  const Bytes data = RandomBytes(61, 300 * kKiB + 5);
  const std::string name = "old-file";
  const Bytes nk = crypto::KeyedHash32(crypto::NameHashKey(*master),
                                       reinterpret_cast<const uint8_t*>(name.data()), name.size());
  for (uint32_t format : {1u, 2u}) {
    SCOPED_TRACE("format " + std::to_string(format));
    pb::Manifest m;
    m.set_format(format);
    m.set_name(name);
    m.set_size_bytes(data.size());
    std::map<std::string, std::string> chunks;
    for (size_t at = 0; at < data.size(); at += 128 * kKiB) {
      const size_t n = std::min<size_t>(128 * kKiB, data.size() - at);
      const Bytes id = crypto::KeyedHash32(id_key, data.data() + at, n);
      const Bytes sealed = crypto::Seal(chunk_key, data.data() + at, n, id.data(), id.size());
      auto* c = m.add_chunks();
      c->set_id(ToStr(id));
      c->set_plain_len(n);
      chunks[ToStr(id)] = ToStr(sealed);
    }
    ASSERT_TRUE(ValidateManifest(m).ok());
    const std::string mb = m.SerializeAsString();
    const Bytes ms = crypto::Seal(crypto::ObjectKey(*master, GetLe64(nk.data())),
                                  reinterpret_cast<const uint8_t*>(mb.data()), mb.size(),
                                  nk.data(), nk.size());
    pb::VersionInfo v;
    v.set_oid(ToStr(Oid{1, 2, 3, 40 + format}.Encode()));
    v.set_version(1);
    v.set_size_bytes(data.size());
    v.set_manifest_sealed(ToStr(ms));
    v.set_subscriber("alice");
    v.set_name_key(ToStr(nk));
    agent_.Inject(v, chunks);
    auto client = Open();
    ASSERT_NE(client, nullptr);
    Result<Bytes> got = GetAll(client.get(), name);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(*got == data);
    auto shared = client->Share(name, "bob");
    EXPECT_EQ(shared.status().code(), Code::kInvalidArgument);
    EXPECT_NE(shared.status().message().find("written by an older client"), std::string::npos)
        << shared.status().message();
  }
}

TEST_F(ClientTest, TamperedChunkFailsTheGetLoudly) {
  const Bytes data = RandomBytes(50, 3 * kMiB);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/f", "t").ok());
  const auto ids = agent_.stats().commit_chunk_ids;
  ASSERT_GE(ids.size(), 2u);
  agent_.TamperWith(ids[1]);
  Bytes out;
  auto info = client->Get("t", 0, [&](const uint8_t* p, size_t n) {
    out.insert(out.end(), p, p + n);
    return Status::Ok();
  });
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), Code::kCorrupt) << info.status().ToString();
  EXPECT_LT(out.size(), data.size()) << "nothing after the bad chunk is delivered";
  EXPECT_EQ(client->stats().chunks_recovered, 0u);
}

// Issue 3: a gateway forges a fragment and recomputes its CRC32C, and the
// chunk the POP returns fails its AEAD open (here the agent also flips a
// byte of it: the POP had only k fragments, or too many forged, to locate
// the forgery itself). The client fetches the chunk's fragments through the
// POP core, checks each against the keyed tags in its sealed manifest,
// delivers the right bytes decoded from good ones, names exactly the forged
// fragment and its gateway, and reports it; the POP counts it, marks it bad
// and re-places it on another gateway.
// A file of at most put_no_wait_bytes_max sends its chunks without waiting
// for the HaveChunks answer (issue 11: one gateway round trip less). Here the
// agent answers the query only once a chunk has arrived, which would stall
// a waiting put until its call timeout. The fragment tags still come from
// the answer's (k, m): a forged fragment is named as for any put.
TEST_F(ClientTest, ASmallPutDoesNotWaitForTheDedupAnswerAndStillTagsItsFragments) {
  s_.put_no_wait_bytes_max = 4 * kMiB;
  s_.call_timeout_ms = 5000;
  agent_.AnswerHaveChunks();
  agent_.HoldHaveChunksAnswersUntilAPutChunk();
  const Bytes data = RandomBytes(52, 3 * kMiB);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  auto put = client->Put(dir_ + "/f", "t");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(agent_.stats().have_chunks_held, 1);
  const auto ids = agent_.stats().commit_chunk_ids;
  ASSERT_GE(ids.size(), 2u);
  ExpectTaggedForFourPlusTwo(client.get());
  uint32_t forger = 0;
  ReadBackWithAForgedFragment(client.get(), ids[1], /*forge=*/2, data, &forger);
}

// The control: a file above put_no_wait_bytes_max waits for the answer, so
// the same agent stalls it until its call timeout.
TEST_F(ClientTest, ALargerPutWaitsForTheDedupAnswer) {
  s_.put_no_wait_bytes_max = 1 * kMiB;
  s_.call_timeout_ms = 500;
  agent_.AnswerHaveChunks();
  agent_.HoldHaveChunksAnswersUntilAPutChunk();
  WriteFile(dir_ + "/f", RandomBytes(53, 2 * kMiB));
  auto client = Open();
  ASSERT_NE(client, nullptr);
  auto put = client->Put(dir_ + "/f", "t");
  EXPECT_FALSE(put.ok());
  EXPECT_EQ(agent_.stats().put_chunks, 0);
}

TEST_F(ClientTest, ForgedFragmentIsNamedByTheClientAndReplacedByThePop) {
  agent_.AnswerHaveChunks();
  const Bytes data = RandomBytes(51, 3 * kMiB);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/f", "t").ok());
  const auto ids = agent_.stats().commit_chunk_ids;
  ASSERT_GE(ids.size(), 2u);
  // The sealed manifest carries tags for (4, 2).
  ExpectTaggedForFourPlusTwo(client.get());

  const uint32_t forged_index = 2;
  uint32_t forger = 0;
  ReadBackWithAForgedFragment(client.get(), ids[1], forged_index, data, &forger);
  if (HasFatalFailure()) return;
  EXPECT_EQ(client->stats().chunks_recovered, 1u);
  ASSERT_EQ(client->forged_fragments().size(), 1u);
  const ForgedFragmentReport& r = client->forged_fragments()[0];
  EXPECT_EQ(std::string(r.chunk_id.begin(), r.chunk_id.end()), ids[1]);
  EXPECT_EQ(r.index, forged_index);
  EXPECT_EQ(r.gateway_id, forger);
  EXPECT_EQ(r.pop_id, 1u);
  const auto st = agent_.stats();
  EXPECT_EQ(st.fragment_requests, 2) << "one fetch, one report";
  ASSERT_EQ(st.reports.size(), 1u);
  ASSERT_EQ(st.reports[0].forged_size(), 1);
  EXPECT_EQ(st.reports[0].forged(0).index(), forged_index);
  EXPECT_EQ(st.reports[0].forged(0).gateway_id(), forger);
  auto pop = agent_.Pop(ids[1], forged_index, 1000);
  EXPECT_EQ(pop.forged_reported, 1u);
  EXPECT_EQ(pop.forged_total, 1u);
  EXPECT_EQ(pop.bad_total, 1u);
  EXPECT_NE(pop.holder, 0u);
  EXPECT_NE(pop.holder, forger) << "the forged fragment was re-placed elsewhere";
}

// Tags for another code than the one the answering POP placed with (its
// region's (k, m) differs from the entry POP's): the fragments cannot be
// checked, so nothing is named or reported, and the get fails as before.
TEST_F(ClientTest, FragmentsOfAnotherCodeAreNotReportedAsForged) {
  agent_.AnswerHaveChunks(3, 2);  // the POP core places with (4, 2)
  const Bytes data = RandomBytes(52, 3 * kMiB);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/f", "t").ok());
  const auto ids = agent_.stats().commit_chunk_ids;
  ASSERT_GE(ids.size(), 2u);
  ASSERT_NE(agent_.ServeFragmentsThroughPop(ids[1], 2), 0u);
  agent_.TamperWith(ids[1]);
  auto out = GetAll(client.get(), "t");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Code::kCorrupt) << out.status().ToString();
  EXPECT_NE(out.status().message().find("cannot be checked"), std::string::npos)
      << out.status().message();
  EXPECT_TRUE(client->forged_fragments().empty());
  EXPECT_TRUE(agent_.stats().reports.empty());
  EXPECT_EQ(agent_.Pop(ids[1], 2, 1000).bad_total, 0u);
}

TEST_F(ClientTest, FailedPutChunkFailsThePutWithoutACommit) {
  s_.chunking = {16 * kKiB, 64 * kKiB, 256 * kKiB};
  const Bytes data = RandomBytes(60, 2 * kMiB);
  WriteFile(dir_ + "/f", data);
  agent_.FailPutChunk(3);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  auto put = client->Put(dir_ + "/f", "x");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kUnavailable) << put.status().ToString();
  EXPECT_EQ(agent_.stats().commits, 0);
}

// Issue 6: the answer to a commit is lost (the link drops after the agent
// committed). The client sends the commit again with the same write id and
// gets the kept (oid, version); no second version is made.
TEST_F(ClientTest, CommitWhoseAnswerIsLostIsRetriedWithTheSameWriteId) {
  const Bytes data = RandomBytes(61, 100 * kKiB);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  agent_.LoseCommitAnswers(1);
  auto put = client->Put(dir_ + "/f", "r");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  FakeAgent::Stats st = agent_.stats();
  ASSERT_EQ(st.commits, 2) << "the lost answer was not retried";
  EXPECT_EQ(st.commit_write_ids[0], st.commit_write_ids[1]) << "the retry used a new write id";
  EXPECT_EQ(st.commit_write_ids[0].size(), 16u);
  EXPECT_EQ(st.commits_answered_from_kept, 1);
  EXPECT_EQ(put->version, 1u) << "the retry made a second version";
  // The object has exactly one version, and it reads back.
  auto v2 = client->Get(put->oid.Hex(), 2, [](const uint8_t*, size_t) { return Status::Ok(); });
  EXPECT_FALSE(v2.ok()) << "a second version exists";
  auto v1 = client->Get(put->oid.Hex(), 1, [](const uint8_t*, size_t) { return Status::Ok(); });
  EXPECT_TRUE(v1.ok()) << v1.status().ToString();
  auto got = GetAll(client.get(), "r");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, data);
  // A later put of the same name is a new write: a new id, version 2.
  ASSERT_TRUE(client->Put(dir_ + "/f", "r").ok());
  st = agent_.stats();
  ASSERT_EQ(st.commits, 3);
  EXPECT_NE(st.commit_write_ids[2], st.commit_write_ids[0]);
}

TEST_F(ClientTest, CommitRetriesAreBoundedAndOnlyForRetryableFailures) {
  const Bytes data = RandomBytes(62, 10 * kKiB);
  WriteFile(dir_ + "/f", data);
  auto client = Open();
  ASSERT_NE(client, nullptr);
  // Unavailable every time: a bounded number of sends, then the error.
  agent_.RefuseCommits(100, Code::kUnavailable);
  auto put = client->Put(dir_ + "/f", "a");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kUnavailable);
  FakeAgent::Stats st = agent_.stats();
  EXPECT_EQ(st.commits, 4) << "kCommitAttemptsMax sends expected";
  for (auto& w : st.commit_write_ids) EXPECT_EQ(w, st.commit_write_ids[0]);
  // A final answer (here: permission denied) is not retried.
  agent_.RefuseCommits(1, Code::kPermissionDenied);
  put = client->Put(dir_ + "/f", "b");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(agent_.stats().commits, 5);
  // One refusal, then the commit goes through on the retry.
  agent_.RefuseCommits(1, Code::kUnavailable);
  put = client->Put(dir_ + "/f", "c");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(agent_.stats().commits, 7);
  EXPECT_EQ(put->version, 1u);
}

// Issue 9: `mistore ls` left removed objects in the list (0 bytes). A
// tombstone is known only from its sealed manifest; an empty file, also 0
// bytes, stays listed.
TEST_F(ClientTest, ListLeavesOutRemovedObjectsUnlessAskedFor) {
  WriteFile(dir_ + "/f", RandomBytes(70, 100 * kKiB));
  WriteFile(dir_ + "/empty", Bytes{});
  auto client = Open();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put(dir_ + "/f", "kept").ok());
  ASSERT_TRUE(client->Put(dir_ + "/f", "gone").ok());
  ASSERT_TRUE(client->Put(dir_ + "/empty", "empty").ok());
  auto removed = client->Remove("gone", 1000);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(removed.value(), 2u);

  auto names = [](const std::vector<ListEntry>& l) {
    std::map<std::string, bool> m;  // name -> deleted
    for (auto& e : l) m[e.name] = e.deleted;
    return m;
  };
  auto live = client->List();
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  EXPECT_EQ(names(live.value()), (std::map<std::string, bool>{{"empty", false}, {"kept", false}}));
  auto all = client->List(/*include_removed=*/true);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(names(all.value()),
            (std::map<std::string, bool>{{"empty", false}, {"gone", true}, {"kept", false}}));
  for (auto& e : all.value()) {
    if (e.name == "gone") {
      EXPECT_EQ(e.version, 2u);  // the tombstone's version
    }
  }

  // Put again after the removal: listed again, not deleted.
  ASSERT_TRUE(client->Put(dir_ + "/f", "gone").ok());
  auto back = client->List();
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(names(back.value()),
            (std::map<std::string, bool>{{"empty", false}, {"gone", false}, {"kept", false}}));
}

TEST_F(ClientTest, PutOfAMissingFileOrADirectoryFails) {
  auto client = Open();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Put(dir_ + "/missing", "m").status().code(), Code::kNotFound);
  EXPECT_EQ(client->Put(dir_, "d").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(agent_.stats().put_chunks, 0);
}

}  // namespace
}  // namespace mistore
