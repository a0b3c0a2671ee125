#include "sync-client/client.h"
#include "sync-client/pair.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <unordered_set>

#include "shared/core/log.h"
#include "shared/crypto/aead.h"
#include "shared/crypto/keys.h"
#include "shared/crypto/share.h"
#include "shared/erasure/reed_solomon.h"
#include "shared/store/file_util.h"
#include "shared/uvio/connection.h"
#include "shared/wire/envelope.h"
#include "sync-client/fragment_tags.h"
#include "sync-client/manifest.h"

namespace mistore {

using namespace crypto;  // NOLINT: the client is crypto throughout

namespace {
constexpr char kChunkKeyContext[] = "mschunke";

// One chunk of a read, opened on the thread pool (Client::GetChunks). It
// owns what it reads, except id_key, an Impl key that outlives the read and
// is never written during it.
struct OpenJob {
  Bytes id;
  uint64_t plain_len = 0;
  SecretBytes seal_key;
  const SecretBytes* id_key = nullptr;  // nullptr: a shared object's
  std::string sealed;
  Result<Bytes> plain = Internal("not opened");
  bool matches_id = false;

  void Run() {
    plain = crypto::Open(seal_key, reinterpret_cast<const uint8_t*>(sealed.data()),
                         sealed.size(), id.data(), id.size());
    matches_id = plain.ok() && plain->size() == plain_len &&
                 (!id_key || KeyedHash32(*id_key, plain->data(), plain->size()) == id);
    std::string().swap(sealed);  // its memory back now, not when the chunk is delivered
  }
};
// A commit whose answer is lost (link to the agent dropped, deadline passed,
// agent or POP unavailable) is sent again with the same write id, so that
// the agent or the entry POP answers it from the result it kept instead of
// committing a second version (issue 6; pop-server/held_results.h). At
// most this many sends in all, pausing kCommitRetryPauseMs x the attempt
// number before each retry.
constexpr int kCommitAttemptsMax = 4;
constexpr uint64_t kCommitRetryPauseMs = 250;
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
}  // namespace

struct Client::Impl {
  ClientSettings s;
  SecretBytes master;
  SecretBytes name_hash_key, name_seal_key, chunk_id_key, chunk_key;
  SecretBytes chunk_id_key_v3;  // manifest format 3 (shared/crypto/share.h)

  // The key chunk `i` of `m` is sealed under: its own (format 3) or the
  // user's chunk key (formats 1 and 2, readable by the owner only).
  SecretBytes SealKeyOf(const pb::Manifest& m, int i) const {
    if (ManifestHasChunkKeys(m)) {
      const std::string& k = m.chunks(i).seal_key();
      return SecretBytes(reinterpret_cast<const uint8_t*>(k.data()), k.size());
    }
    return chunk_key.Clone();
  }
  // The key chunk ids of `m` are keyed with; nullptr for an object shared
  // with us (owner set): we lack its owner's id key, the AEAD under the
  // chunk's own key (id as associated data) authenticates it instead.
  const SecretBytes* IdKeyOf(const pb::Manifest& m, const std::string& owner) const {
    if (!owner.empty()) return nullptr;
    return ManifestHasChunkKeys(m) ? &chunk_id_key_v3 : &chunk_id_key;
  }
  SecretBytes frag_tag_key;  // fragment_tags.h
  std::vector<ForgedFragmentReport> forged;  // at most kForgedReportsMax
  EventLoop loop;
  Connection::Ptr conn;

  SecretBytes ObjectKeyFor(const Bytes& name_key) {
    return ObjectKey(master, GetLe64(name_key.data()));
  }

  Status Connect() {
    if (conn && !conn->closed()) return Status::Ok();
    Status st = Unavailable("connect did not finish");
    ConnectionLimits limits;
    limits.call_timeout_ms = s.call_timeout_ms;
    const bool via_pop = !s.pop_addr.empty();
    bool pinned = false;
    if (via_pop) {
      MS_ASSIGN_OR_RETURN(limits.secure, DeviceIdentity());
    } else {
      // The agent: always the device link (pair.h), IK once paired.
      MS_ASSIGN_OR_RETURN(auto link, DeviceLinkFor(s.pairing_file));
      pinned = !link->peer_static_key.empty();
      auto sc = std::make_shared<SecureConfig>();
      sc->channel.device_link = std::move(link);
      limits.secure = std::move(sc);
    }
    const std::string addr = via_pop ? s.pop_addr : s.agent_addr;
    const std::string what = via_pop ? "POP" : "gateway agent";
    bool done = false;
    Dial(&loop, addr, limits, [&](Result<Connection::Ptr> r) {
      done = true;
      loop.Stop();
      if (!r.ok()) {
        st = DialFailure(what, addr, r.status());
        // The agent closes an IK handshake for another key than its own:
        // it was reset or re-installed since this device paired.
        if (pinned && st.code() == Code::kUnavailable &&
            r.status().message().find("peer closed") != std::string::npos)
          st = Unavailable(
              st.message() +
              " (the agent closed the handshake: if it was reset since this "
              "device paired, pair again with `mistore pair CODE`)");
        return;
      }
      conn = r.value();
      st = Status::Ok();
    });
    while (!done) loop.Run();
    return st;
  }

  // The device's secure identity for a POP (issue 9): its key, its
  // certificate from `mistore enroll`, the DC's CA key; POPs only as peers.
  Result<std::shared_ptr<const SecureConfig>> DeviceIdentity() const {
    for (const std::string* f : {&s.device_key_file, &s.device_cert_file, &s.ca_public_key_file})
      if (f->empty() || !FileExists(*f))
        return Status(Code::kPermissionDenied,
                      "this device is not enrolled for working through a POP (no " +
                          (f->empty() ? std::string("identity file configured") : *f) +
                          "): run `mistore enroll TOKEN --dc ADDR` with a token from "
                          "`mistore-dc enroll --role client --subscriber " + s.subscriber +
                          "`, or go through your home gateway");
    auto sc = LoadSecureConfig(s.device_key_file, s.device_cert_file, s.ca_public_key_file,
                               {crypto::NodeRole::kPop});
    if (!sc.ok())
      return Status(sc.status().code() == Code::kPermissionDenied ? Code::kPermissionDenied
                                                                   : Code::kInvalidArgument,
                    "device identity: " + sc.status().message());
    return std::shared_ptr<const SecureConfig>(std::move(sc).value());
  }

  // A refused secure handshake is a denial (exit 5), anything else retryable.
  static Status DialFailure(const std::string& what, const std::string& addr, const Status& e) {
    const std::string& m = e.message();
    if (e.code() == Code::kPermissionDenied)
      return Status(Code::kPermissionDenied,
                    "the " + what + " at " + addr + " refused this device: " + m);
    const size_t colon = m.rfind(": ");
    return Unavailable("cannot reach " + what + " at " + addr + ": " +
                       (colon == std::string::npos ? m : m.substr(colon + 2)));
  }

  // Sends one request and runs the loop until its reply.
  Result<pb::Envelope> Call(pb::Envelope req) {
    MS_RETURN_IF_ERROR(Connect());
    Result<pb::Envelope> out = Internal("no reply");
    bool done = false;
    // A commit's time grows with its chunks (see CommitTimeoutMs); the
    // client waits a little longer than its agent does.
    uint64_t timeout_ms =
        req.has_put_commit()
            ? CommitTimeoutMs(s.call_timeout_ms, size_t(req.put_commit().chunk_ids_size()))
            : 0;
    conn->Call(std::move(req), [&](Result<pb::Envelope> r) {
      out = std::move(r);
      done = true;
      loop.Stop();
    }, timeout_ms);
    while (!done) loop.Run();
    if (out.ok()) MS_RETURN_IF_ERROR(ResponseStatus(out.value()));
    return out;
  }

  // Monotonic reads: the newest version seen of each object (by name key
  // or oid, hex), kept in state_dir/seen as "key version" lines.
  pb::ReadMode read_mode = pb::READ_MONOTONIC;
  std::map<std::string, uint64_t> seen;
  bool seen_loaded = false;

  std::string SeenPath() const { return s.state_dir + "/seen"; }
  void LoadSeen() {
    if (seen_loaded) return;
    seen_loaded = true;
    auto b = ReadFileBytes(SeenPath(), 16u << 20);
    if (!b.ok()) return;
    std::string text(b->begin(), b->end());
    size_t at = 0;
    while (at < text.size()) {
      size_t nl = text.find('\n', at);
      std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      at = nl == std::string::npos ? text.size() : nl + 1;
      size_t sp = line.find(' ');
      if (sp == std::string::npos) continue;
      seen[line.substr(0, sp)] = std::strtoull(line.c_str() + sp + 1, nullptr, 10);
    }
  }
  bool persist_seen = true;  // false in clones (one writer of the file)
  // Records `version` as seen under both keys (name key and oid: one
  // durable write of the file, not one per key).
  void Saw(const std::string& key, const std::string& key2, uint64_t version) {
    LoadSeen();
    bool changed = false;
    for (const std::string* k : {&key, &key2}) {
      if (seen[*k] >= version) continue;
      seen[*k] = version;
      changed = true;
    }
    if (!changed || !persist_seen) return;
    std::string text;
    for (auto& [k, v] : seen) text += k + " " + std::to_string(v) + "\n";
    if (!MakeDirs(s.state_dir).ok()) return;
    (void)WriteFileDurable(SeenPath(), reinterpret_cast<const uint8_t*>(text.data()), text.size());
  }
  static std::string SeenKey(const std::string& name_or_oid, const Bytes& name_key) {
    return Oid::FromHex(name_or_oid).ok() ? name_or_oid : ToHex(name_key);
  }

  TransferStats stats;

  // Sends an idempotent request (a commit carrying its write id) until it
  // is answered, at most kCommitAttemptsMax times: a retry follows only a
  // kUnavailable failure (connection lost or refused, deadline exceeded,
  // peer unavailable); any other answer is final. bytes_sent counts every
  // send.
  Result<pb::Envelope> CallWithRetries(const pb::Envelope& req, uint64_t* bytes_sent) {
    Result<pb::Envelope> r = Internal("not sent");
    for (int attempt = 1; attempt <= kCommitAttemptsMax; attempt++) {
      if (attempt > 1) Pause(kCommitRetryPauseMs * uint64_t(attempt - 1));
      *bytes_sent += req.ByteSizeLong();
      r = Call(req);
      // A closed connection is dialled again by Call.
      if (r.ok() || r.status().code() != Code::kUnavailable) return r;
    }
    return r;
  }

  void Pause(uint64_t ms) {
    loop.After(ms, [this] { loop.Stop(); });
    loop.Run();
  }

  // A put that did not wait for its HaveChunks answer (put_no_wait_bytes_max)
  // waits for it now, for the POP's (k, m), and tags every chunk of the
  // manifest from the sealed copies kept (issue 3). Unreachable: the put
  // fails (kUnavailable, retried like any). A POP without the query: the
  // chunks stay untagged, as with a waiting put.
  Status TagKeptChunks(std::optional<Result<pb::Envelope>>& answer,
                       const std::map<std::string, std::string>& kept, pb::Manifest* manifest) {
    while (!answer.has_value()) loop.Run();
    const Result<pb::Envelope>& r = *answer;
    Status st = r.ok() ? ResponseStatus(r.value()) : r.status();
    if (!st.ok()) return st.code() == Code::kUnavailable ? st : Status::Ok();
    if (!r->has_have_chunks_reply()) return Status::Ok();
    const auto& hr = r->have_chunks_reply();
    if (hr.k() < 1 || hr.k() > uint32_t(ReedSolomon::kMaxK) || hr.m() < 1 ||
        hr.m() > uint32_t(ReedSolomon::kMaxM))
      return Status::Ok();
    manifest->set_fragment_k(hr.k());
    manifest->set_fragment_m(hr.m());
    for (auto& mc : *manifest->mutable_chunks()) {
      auto it = kept.find(mc.id());
      MS_ASSERT(it != kept.end());  // every chunk of such a put was sealed and sent
      const std::string& sealed = it->second;
      MS_ASSIGN_OR_RETURN(Bytes tags,
                          ComputeFragmentTags(frag_tag_key, ToBytes(mc.id()),
                                              reinterpret_cast<const uint8_t*>(sealed.data()),
                                              sealed.size(), int(hr.k()), int(hr.m())));
      mc.set_seal_nonce(sealed.substr(0, kAeadNonceBytes));
      mc.set_fragment_tags(ToStr(tags));
    }
    return Status::Ok();
  }

  // Seals the manifest and commits it as the next version of `name`:
  // (oid, (version, bytes sent)).
  Result<std::pair<Oid, std::pair<uint64_t, uint64_t>>> Commit(const std::string& name,
                                                               const pb::Manifest& manifest,
                                                               bool dc_tier = false) {
    Bytes name_key = NameKey(name);
    std::string mbytes = manifest.SerializeAsString();
    Bytes msealed = Seal(ObjectKeyFor(name_key), reinterpret_cast<const uint8_t*>(mbytes.data()),
                         mbytes.size(), name_key.data(), name_key.size());
    // Names are sealed with the subscriber as associated data so that `ls`
    // can open them without a round trip per object.
    Bytes nsealed =
        Seal(name_seal_key, reinterpret_cast<const uint8_t*>(name.data()), name.size(),
             reinterpret_cast<const uint8_t*>(s.subscriber.data()), s.subscriber.size());
    pb::Envelope commit;
    auto* c = commit.mutable_put_commit();
    c->set_subscriber(s.subscriber);
    c->set_name_key(ToStr(name_key));
    c->set_name_sealed(ToStr(nsealed));
    c->set_size_bytes(manifest.size_bytes());
    Bytes write_id(16);
    randombytes_buf(write_id.data(), write_id.size());
    c->set_write_id(ToStr(write_id));
    c->set_dc_tier(dc_tier);
    c->set_manifest_sealed(ToStr(msealed));
    for (auto& ch : manifest.chunks()) c->add_chunk_ids(ch.id());
    const uint64_t wire = commit.ByteSizeLong();
    MS_ASSIGN_OR_RETURN(pb::Envelope reply, CallWithRetries(commit, &stats.bytes_sent));
    MS_ASSIGN_OR_RETURN(Oid oid, Oid::Decode(reply.put_reply().oid()));
    Saw(ToHex(name_key), oid.Hex(), reply.put_reply().version());
    return std::make_pair(oid, std::make_pair(reply.put_reply().version(), wire));
  }

  // Issue 3: chunk `idx` of `man` failed its AEAD open or id check. Fetches
  // its fragments through the POP, checks each against the manifest's tags,
  // names (logs, records, reports to the POP whose records they came from)
  // every one that fails, and decodes the chunk from good ones. Runs on the
  // loop: `done` gets the plaintext (checked against its id) or the error,
  // after the report's answer.
  void RecoverChunk(const pb::VersionInfo& info, const pb::Manifest& man, int idx,
                    std::function<void(Result<Bytes>)> done) {
    const pb::ManifestChunk& mc = man.chunks(idx);
    struct Want {
      Bytes id, nonce, tags;
      int k, m;
      uint64_t plain_len;
      std::string oid;
      SecretBytes seal_key;
      const SecretBytes* id_key;
    };
    auto w = std::make_shared<Want>(Want{ToBytes(mc.id()), ToBytes(mc.seal_nonce()),
                                         ToBytes(mc.fragment_tags()), int(man.fragment_k()),
                                         int(man.fragment_m()), mc.plain_len(), info.oid(),
                                         SealKeyOf(man, idx), IdKeyOf(man, "")});
    pb::Envelope req;
    auto* g = req.mutable_get_chunk_fragments();
    g->set_subscriber(s.subscriber);
    g->set_oid(info.oid());
    g->set_chunk_id(mc.id());
    g->set_lock_id(info.lock_id());
    conn->Call(std::move(req), [this, w, done](Result<pb::Envelope> r) {
      Status st = r.ok() ? ResponseStatus(r.value()) : r.status();
      if (!st.ok()) return done(Status(st.code(), "fetching its fragments: " + st.message()));
      const pb::ChunkFragments& cf = r->chunk_fragments();
      stats.bytes_received += cf.ByteSizeLong();
      // Fragments of another code (the replica answering places with a
      // different (k, m) than the entry POP the put asked) cannot be checked
      // against these tags: nothing is named then.
      if (cf.k() != uint32_t(w->k) || cf.m() != uint32_t(w->m))
        return done(Unavailable("its fragments are of code (" + std::to_string(cf.k()) + ", " +
                                std::to_string(cf.m()) + "), the manifest's tags of (" +
                                std::to_string(w->k) + ", " + std::to_string(w->m) +
                                "): cannot be checked"));
      std::vector<NamedFragment> bad;
      auto chk = CheckChunkFragments(frag_tag_key, w->id, w->nonce.data(), w->tags, w->k, w->m,
                                     w->plain_len + kSealOverhead, cf, &bad);
      Result<Bytes> plain = chk.ok() ? Result<Bytes>(Internal("not opened")) : chk.status();
      if (chk.ok()) {
        plain = crypto::Open(w->seal_key, chk->sealed.data(), chk->sealed.size(), w->id.data(),
                             w->id.size());
        if (plain.ok() && (plain->size() != w->plain_len ||
                           KeyedHash32(*w->id_key, plain->data(), plain->size()) != w->id))
          plain = Corrupt("rebuilt from fragments, it still does not match its id");
        else if (!plain.ok())
          plain = Corrupt("rebuilt from fragments matching their tags, it fails authentication");
      }
      if (bad.empty()) return done(std::move(plain));
      pb::Envelope rep;
      auto* rf = rep.mutable_report_forged_fragments();
      rf->set_subscriber(s.subscriber);
      rf->set_oid(w->oid);
      rf->set_chunk_id(ToStr(w->id));
      rf->set_pop_id(cf.pop_id());
      for (const NamedFragment& b : bad) {
        MS_WARN("client", "forged fragment",
                "chunk=" + ToHex(w->id).substr(0, 12) + " index=" + std::to_string(b.index) +
                    " gateway=" + std::to_string(b.gateway_id) + " pop=" +
                    std::to_string(cf.pop_id()) + " why=\"" + b.why + "\"");
        stats.fragments_forged++;
        if (forged.size() >= kForgedReportsMax) forged.erase(forged.begin());
        forged.push_back({w->id, b.index, b.gateway_id, cf.pop_id(), b.why});
        auto* f = rf->add_forged();
        f->set_index(b.index);
        f->set_gateway_id(b.gateway_id);
      }
      auto p = std::make_shared<Result<Bytes>>(std::move(plain));
      conn->Call(std::move(rep), [p, done, w](Result<pb::Envelope> r) {
        Status st = r.ok() ? ResponseStatus(r.value()) : r.status();
        if (!st.ok())
          MS_WARN("client", "forged fragments not reported",
                  "chunk=" + ToHex(w->id).substr(0, 12) + " error=\"" + st.message() + "\"");
        done(std::move(*p));
      });
    });
  }

  Result<pb::Manifest> OpenManifest(const pb::VersionInfo& info) {
    Bytes name_key = ToBytes(info.name_key());
    if (name_key.size() != 32) return Corrupt("version record carries no valid name key");
    Bytes msealed = ToBytes(info.manifest_sealed());
    stats.bytes_received += msealed.size();
    auto mplain = crypto::Open(ObjectKeyFor(name_key), msealed.data(), msealed.size(),
                               name_key.data(), name_key.size());
    if (!mplain.ok())
      return Corrupt("manifest fails authentication (tampered, or not your object)");
    return DecodeManifest(mplain->data(), mplain->size());
  }

  Bytes NameKey(const std::string& name) {
    return KeyedHash32(name_hash_key, reinterpret_cast<const uint8_t*>(name.data()), name.size());
  }

  Result<pb::VersionInfo> Resolve(const std::string& name_or_oid, uint64_t version) {
    pb::Envelope req;
    auto* g = req.mutable_get_version();
    g->set_subscriber(s.subscriber);
    g->set_version(version);
    auto oid = Oid::FromHex(name_or_oid);
    Bytes name_key = NameKey(name_or_oid);
    if (oid.ok()) {
      g->set_oid(ToStr(oid->Encode()));
    } else {
      g->set_name_key(ToStr(name_key));
    }
    g->set_mode(read_mode);
    if (read_mode == pb::READ_MONOTONIC) {
      LoadSeen();
      auto it = seen.find(SeenKey(name_or_oid, name_key));
      if (it != seen.end()) g->set_min_version(it->second);
    }
    auto r = Call(std::move(req));
    if (!r.ok()) {
      if (r.status().code() == Code::kNotFound) {
        std::string what = version
                               ? "version " + std::to_string(version) + " of '" + name_or_oid + "'"
                               : "'" + name_or_oid + "'";
        return NotFound("no object " + what + " (" + r.status().message() + ")");
      }
      return r.status();
    }
    return r->version_info();
  }
};

Status ClientSettings::Validate() const {
  MS_RETURN_IF_ERROR(chunking.Validate());
  if (chunking.max_bytes > kClientChunkBytesMax)
    return InvalidArgument("chunking.max_bytes " + std::to_string(chunking.max_bytes) +
                           " exceeds " + std::to_string(kClientChunkBytesMax));
  if (read_block < 1 || read_block > (size_t{64} << 20))
    return InvalidArgument("read_block " + std::to_string(read_block) + " out of range 1..64 MiB");
  if (window < 1) return InvalidArgument("window must be at least 1");
  if (put_no_wait_bytes_max > kPutNoWaitBytesMax)
    return InvalidArgument("put_no_wait_bytes_max " + std::to_string(put_no_wait_bytes_max) +
                           " exceeds " + std::to_string(kPutNoWaitBytesMax));
  if (get_window_bytes < kGetWindowBytesMin || get_window_bytes > kGetWindowBytesMax)
    return InvalidArgument("get_window_bytes " + std::to_string(get_window_bytes) +
                           " out of range " + std::to_string(kGetWindowBytesMin) + ".." +
                           std::to_string(kGetWindowBytesMax));
  return Status::Ok();
}

namespace {
// Manifest format 3 (issue 4, sharing): the chunk's own seal key,
// ChunkSealKey(chunk_key, id), recorded in out->seal_key; none (and
// out->seal_key empty) when the chunk is sealed under chunk_key itself.
std::optional<SecretBytes> PerChunkSealKey(const SecretBytes& chunk_key, bool per_chunk_keys,
                                           SealedChunk* out) {
  out->seal_key.clear();
  if (!per_chunk_keys) return std::nullopt;
  SecretBytes own = ChunkSealKey(chunk_key, out->id);
  out->seal_key.assign(reinterpret_cast<const char*>(own.data()), own.size());
  return own;
}
}  // namespace

ChunkSealer::ChunkSealer(const SecretBytes& chunk_id_key, const SecretBytes& chunk_key,
                         const CdcParams& params, CdcStream::Reader read, size_t read_block)
    : id_key_(chunk_id_key), seal_key_(chunk_key), stream_(params, std::move(read), read_block) {}

Result<bool> ChunkSealer::Next(SealedChunk* out) {
  std::span<const uint8_t> plain;
  MS_ASSIGN_OR_RETURN(bool more, stream_.NextView(&plain));
  if (!more) {
    out->id.clear();
    out->plain_len = 0;
    out->sealed.clear();
    out->skipped = false;
    return false;
  }
  out->id = KeyedHash32(id_key_, plain.data(), plain.size());
  out->offset = stream_.last_chunk_offset();
  out->plain_len = plain.size();
  out->skipped = skip_ && skip_(out->id);
  std::optional<SecretBytes> own = PerChunkSealKey(seal_key_, per_chunk_keys_, out);
  if (out->skipped) {
    out->sealed.clear();
    return true;
  }
  const Bytes sealed = Seal(own ? *own : seal_key_, plain.data(), plain.size(), out->id.data(),
                            out->id.size());
  out->sealed.assign(reinterpret_cast<const char*>(sealed.data()), sealed.size());
  return true;
}

CutSealer::CutSealer(const SecretBytes& chunk_id_key,
                     const SecretBytes& chunk_key,
                     const std::vector<ChunkCut>& cuts, PositionalReader read)
    : id_key_(chunk_id_key),
      seal_key_(chunk_key),
      cuts_(cuts),
      read_(std::move(read)) {}

Result<bool> CutSealer::Next(SealedChunk* out) {
  MS_RETURN_IF_ERROR(failure_);
  if (next_ == cuts_.size()) {
    out->id.clear();
    out->plain_len = 0;
    out->sealed.clear();
    out->skipped = false;
    return false;
  }
  const ChunkCut& cut = cuts_[next_++];
  out->id.assign(cut.id.begin(), cut.id.end());
  out->offset = cut.offset;
  out->plain_len = cut.plain_len;
  bytes_out_ += cut.plain_len;
  out->skipped = skip_ && skip_(out->id);
  out->sealed.clear();
  std::optional<SecretBytes> own = PerChunkSealKey(seal_key_, per_chunk_keys_, out);
  if (out->skipped) return true;
  plain_.resize(cut.plain_len);
  Status read = read_(cut.offset, plain_.data(), plain_.size());
  if (read.ok() &&
      KeyedHash32(id_key_, plain_.data(), plain_.size()) != out->id)
    read = Status(
        Code::kAborted,
        "the file changed while it was being put (the chunk at offset " +
            std::to_string(cut.offset) + " is not what the first pass read)");
  if (!read.ok()) {
    failure_ = read;
    return read;
  }
  bytes_read_ += cut.plain_len;
  const Bytes sealed = Seal(own ? *own : seal_key_, plain_.data(), plain_.size(), out->id.data(),
                            out->id.size());
  out->sealed.assign(reinterpret_cast<const char*>(sealed.data()),
                     sealed.size());
  return true;
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() {
  if (impl_->conn) impl_->conn->Close(Unavailable("client done"));
}

Status Client::Init(const ClientSettings& s, const std::string& passphrase, bool fast_kdf) {
  MS_RETURN_IF_ERROR(CryptoInit());
  if (FileExists(s.key_file))
    return InvalidArgument("key file " + s.key_file + " exists already; refusing to overwrite it");
  if (passphrase.empty()) return InvalidArgument("the passphrase must not be empty");
  size_t slash = s.key_file.rfind('/');
  if (slash != std::string::npos && slash > 0)
    MS_RETURN_IF_ERROR(MakeDirs(s.key_file.substr(0, slash)));
  SecretBytes master = GenerateMasterKey();
  MS_ASSIGN_OR_RETURN(
      Bytes blob, WrapMasterKey(master, passphrase, fast_kdf ? kPwhashOpsFast : kPwhashOpsDefault,
                                fast_kdf ? kPwhashMemFast : kPwhashMemDefault));
  return WriteFileDurable(s.key_file, blob);
}

Result<std::unique_ptr<Client>> Client::Open(const ClientSettings& s,
                                             const std::string& passphrase) {
  MS_RETURN_IF_ERROR(CryptoInit());
  MS_RETURN_IF_ERROR(s.Validate());
  auto blob = ReadFileBytes(s.key_file, 4096);
  if (!blob.ok()) {
    if (blob.status().code() == Code::kNotFound)
      return NotFound("no key file at " + s.key_file + " (run 'mistore init' first)");
    return blob.status();
  }
  MS_ASSIGN_OR_RETURN(SecretBytes master, UnwrapMasterKey(blob.value(), passphrase));
  auto impl = std::make_unique<Impl>();
  impl->s = s;
  impl->name_hash_key = NameHashKey(master);
  impl->name_seal_key = NameSealKey(master);
  impl->chunk_id_key = ChunkIdKey(master);
  impl->chunk_id_key_v3 = ChunkIdKeyV3(master);
  impl->chunk_key = DeriveSubkey(master, kSingletonSubkeyId, kChunkKeyContext);
  impl->frag_tag_key = FragmentTagRootKey(master);
  impl->master = std::move(master);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<PutResult> Client::Put(const std::string& path, const std::string& name,
                              const PutOptions& opts) {
  Impl& I = *impl_;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("cannot read " + path + ": " + std::strerror(errno));
    return IoError("cannot read " + path + ": " + std::strerror(errno));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return InvalidArgument(path + " is not a regular file");
  MS_RETURN_IF_ERROR(I.Connect());
  pb::Manifest manifest;
  manifest.set_format(kManifestFormat);
  manifest.set_name(name);
  manifest.set_mtime_s(st.st_mtime);
  manifest.set_mode(st.st_mode & 07777);
  manifest.set_put_time_ms(opts.put_time_ms);
  auto reader = [fd, &path](uint8_t* buf, size_t cap) -> Result<size_t> {
    for (;;) {
      ssize_t n = read(fd, buf, cap);
      if (n >= 0) return size_t(n);
      if (errno != EINTR) return IoError("read " + path + ": " + std::strerror(errno));
    }
  };
  PutResult result;

  // Pass 1: chunk ids only (nothing sealed), then ask the entry POP which
  // of them it holds already.
  std::unordered_set<std::string> present;
  // The entry POP's erasure code, from its HaveChunks answer: the fragments
  // of each sealed chunk are tagged for it (issue 3). 0: not known (no
  // chunks, or a POP without the query), the chunks go untagged.
  int code_k = 0, code_m = 0;
  // Pass 1's cuts, for pass 2 to read and seal only what travels; cleared
  // (and the file cut again) past opts.remembered_cuts_max.
  std::vector<ChunkCut> cuts;
  bool cuts_kept = opts.remembered_cuts_max > 0;
  uint64_t pass1_bytes = 0;
  // A small file's chunks leave with the query instead of after its answer
  // (ClientSettings::put_no_wait_bytes_max): everything is uploaded, and
  // the fragment tags are computed from kept copies once (k, m) arrives.
  const bool no_wait = !opts.dry_run && I.s.put_no_wait_bytes_max > 0 &&
                       uint64_t(st.st_size) <= I.s.put_no_wait_bytes_max;
  auto no_wait_answer = std::make_shared<std::optional<Result<pb::Envelope>>>();
  std::map<std::string, std::string> kept_sealed;  // no_wait: chunk id -> sealed bytes
  {
    std::vector<std::string> ids;
    std::unordered_set<std::string> unique;
    ChunkSealer idpass(I.chunk_id_key_v3, I.chunk_key, I.s.chunking, reader, I.s.read_block);
    idpass.set_skip([](const Bytes&) { return true; });
    SealedChunk c;
    for (;;) {
      MS_ASSIGN_OR_RETURN(bool more, idpass.Next(&c));
      if (!more) break;
      if (cuts_kept && cuts.size() == opts.remembered_cuts_max) {
        cuts_kept = false;
        std::vector<ChunkCut>().swap(cuts);
      }
      if (cuts_kept) {
        ChunkCut& cut = cuts.emplace_back();
        cut.offset = c.offset;
        cut.plain_len = uint32_t(c.plain_len);
        MS_ASSERT(c.id.size() == cut.id.size());
        std::copy(c.id.begin(), c.id.end(), cut.id.begin());
      }
      std::string id = ToStr(c.id);
      if (unique.insert(id).second) ids.push_back(std::move(id));
    }
    pass1_bytes = idpass.bytes_out();
    if (no_wait) {
      pb::Envelope q;
      q.mutable_have_chunks()->set_subscriber(I.s.subscriber);
      q.mutable_have_chunks()->set_name_key(ToStr(I.NameKey(name)));
      q.mutable_have_chunks()->set_dc_tier(opts.dc_tier);
      for (size_t i = 0; i < std::min(ids.size(), kHaveChunksBatch); i++)
        q.mutable_have_chunks()->add_chunk_ids(ids[i]);
      EventLoop* loop = &I.loop;
      I.conn->Call(std::move(q), [no_wait_answer, loop](Result<pb::Envelope> r) {
        *no_wait_answer = std::move(r);
        loop->Stop();
      });
      ids.clear();  // asked; nothing waits for the answer here
    }
    for (size_t at = 0; at < ids.size(); at += kHaveChunksBatch) {
      pb::Envelope q;
      q.mutable_have_chunks()->set_subscriber(I.s.subscriber);
      // The entry POP forwards what it receives to the object's replicas
      // while the upload goes on (issue 11).
      q.mutable_have_chunks()->set_name_key(ToStr(I.NameKey(name)));
      q.mutable_have_chunks()->set_dc_tier(opts.dc_tier);
      for (size_t i = at; i < std::min(ids.size(), at + kHaveChunksBatch); i++)
        q.mutable_have_chunks()->add_chunk_ids(ids[i]);
      auto r = I.Call(std::move(q));
      if (!r.ok()) {
        // A POP without the query: upload everything. Unreachable: retry.
        if (r.status().code() == Code::kUnavailable) return r.status();
        break;
      }
      for (auto& id : r->have_chunks_reply().present()) present.insert(id);
      const auto& hr = r->have_chunks_reply();
      if (hr.k() >= 1 && hr.k() <= uint32_t(ReedSolomon::kMaxK) && hr.m() >= 1 &&
          hr.m() <= uint32_t(ReedSolomon::kMaxM)) {
        code_k = int(hr.k());
        code_m = int(hr.m());
      }
    }
    if (lseek(fd, 0, SEEK_SET) != 0) return IoError("seek " + path + ": " + std::strerror(errno));
  }

  // Pass 2: seal and upload what the POP lacks with up to `window` chunks
  // in flight: memory stays bounded (see client.h) whatever the file size.
  // A chunk that repeats within the file is sealed and sent once; the
  // manifest lists every occurrence. With pass 1's cuts remembered
  // (CutSealer) only the chunks that travel are read again, each checked
  // against its id, and a file that changed in between fails the put
  // (kAborted; a retry puts what it holds then). Beyond the cap the file is
  // read (read_block at a time) and cut (FastCDC) again: if it changed in
  // between, the new chunks are simply not in `present` and travel.
  // Manifest format 3 (issue 4): ids under the format-3 id key, each chunk
  // sealed under its own key, recorded in the manifest (shared/crypto/share.h).
  std::optional<CutSealer> cut_sealer;
  std::optional<ChunkSealer> cdc_sealer;
  if (cuts_kept) {
    struct stat now;
    if (fstat(fd, &now) != 0)
      return IoError("stat " + path + ": " + std::strerror(errno));
    if (now.st_size != st.st_size || now.st_mtim.tv_sec != st.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != st.st_mtim.tv_nsec ||
        pass1_bytes != uint64_t(st.st_size))
      return Status(Code::kAborted,
                    "the file " + path + " changed while it was being put");
    cut_sealer.emplace(
        I.chunk_id_key_v3, I.chunk_key, cuts,
        [fd, &path](uint64_t offset, uint8_t* buf, size_t len) -> Status {
          size_t got = 0;
          while (got < len) {
            ssize_t n = pread(fd, buf + got, len - got, off_t(offset + got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0)
              return IoError("read " + path + ": " + std::strerror(errno));
            if (n == 0)
              return Status(
                  Code::kAborted,
                  "the file " + path + " shrank while it was being put");
            got += size_t(n);
          }
          return Status::Ok();
        });
  } else {
    cdc_sealer.emplace(I.chunk_id_key_v3, I.chunk_key, I.s.chunking, reader,
                       I.s.read_block);
  }
  if (cut_sealer) cut_sealer->set_per_chunk_keys(true);
  if (cdc_sealer) cdc_sealer->set_per_chunk_keys(true);
  auto next_chunk = [&](SealedChunk* out) {
    return cut_sealer ? cut_sealer->Next(out) : cdc_sealer->Next(out);
  };
  auto bytes_out = [&] {
    return cut_sealer ? cut_sealer->bytes_out() : cdc_sealer->bytes_out();
  };
  std::unordered_set<std::string> sent;
  // Seal nonce and fragment tags of each chunk sealed here, for its repeats.
  std::map<std::string, std::pair<std::string, std::string>> tagged;
  if (code_k) {
    manifest.set_fragment_k(uint32_t(code_k));
    manifest.set_fragment_m(uint32_t(code_m));
  }
  const bool dry = opts.dry_run;
  auto skip = [&sent, &present, dry](const Bytes& id) {
    std::string k = ToStr(id);
    return dry || sent.count(k) > 0 || present.count(k) > 0;
  };
  if (cut_sealer)
    cut_sealer->set_skip(skip);
  else
    cdc_sealer->set_skip(skip);
  Status failure;
  size_t in_flight = 0;
  bool eof = false;
  bool waiting_for_budget = false;
  const uint64_t start_ms = I.loop.NowMs();
  const uint64_t total_bytes = uint64_t(st.st_size);
  uint64_t sent_bytes = 0;
  SealedChunk chunk;
  auto report = [&] {
    if (opts.progress) opts.progress(bytes_out(), total_bytes);
  };
  auto pump = [&](auto& self) -> void {
    while (failure.ok() && !eof && in_flight < I.s.window && !waiting_for_budget) {
      if (opts.bwlimit_bytes_per_s) {
        // Token bucket with no burst: the next chunk leaves once the bytes
        // already sent fit the rate.
        uint64_t due_ms = start_ms + sent_bytes * 1000 / opts.bwlimit_bytes_per_s;
        uint64_t now = I.loop.NowMs();
        if (due_ms > now) {
          waiting_for_budget = true;
          I.loop.After(due_ms - now, [&] {
            waiting_for_budget = false;
            self(self);
            if (!failure.ok() || (eof && in_flight == 0)) I.loop.Stop();
          });
          return;
        }
      }
      Result<bool> more = next_chunk(&chunk);
      if (!more.ok()) {
        failure = more.status();
        return;
      }
      if (!*more) {
        eof = true;
        break;
      }
      auto* mc = manifest.add_chunks();
      mc->set_id(ToStr(chunk.id));
      mc->set_plain_len(chunk.plain_len);
      mc->set_seal_key(chunk.seal_key);
      if (chunk.skipped) {
        if (auto t = tagged.find(mc->id()); t != tagged.end()) {
          mc->set_seal_nonce(t->second.first);
          mc->set_fragment_tags(t->second.second);
        }
        if (dry && !present.count(mc->id()) && sent.insert(mc->id()).second) {
          result.chunks_sent++;
          result.bytes_sent += chunk.plain_len + kSealOverhead;
        }
        report();
        continue;
      }
      sent.insert(mc->id());
      if (no_wait) kept_sealed[mc->id()] = chunk.sealed;
      if (code_k) {
        auto tags = ComputeFragmentTags(I.frag_tag_key, chunk.id,
                                        reinterpret_cast<const uint8_t*>(chunk.sealed.data()),
                                        chunk.sealed.size(), code_k, code_m);
        if (!tags.ok()) {
          failure = tags.status();
          return;
        }
        mc->set_seal_nonce(chunk.sealed.substr(0, kAeadNonceBytes));
        mc->set_fragment_tags(ToStr(tags.value()));
        tagged[mc->id()] = {mc->seal_nonce(), mc->fragment_tags()};
      }
      pb::Envelope req;
      req.mutable_put_chunk()->set_subscriber(I.s.subscriber);
      req.mutable_put_chunk()->set_chunk_id(mc->id());
      const size_t n = chunk.sealed.size();
      req.mutable_put_chunk()->set_data(std::move(chunk.sealed));
      in_flight++;
      sent_bytes += n;
      I.conn->Call(std::move(req), [&, n](Result<pb::Envelope> r) {
        in_flight--;
        if (failure.ok()) failure = r.ok() ? ResponseStatus(r.value()) : r.status();
        if (failure.ok()) {
          result.chunks_sent++;
          result.bytes_sent += n;
          I.stats.chunks_sent++;
          I.stats.bytes_sent += n;
          report();
        }
        self(self);
        if (!failure.ok() || (eof && in_flight == 0 && !waiting_for_budget)) I.loop.Stop();
      });
    }
  };
  pump(pump);
  while (failure.ok() && !(eof && in_flight == 0)) I.loop.Run();
  // Let any stragglers finish before their captures go out of scope.
  while (in_flight > 0 || waiting_for_budget) I.loop.Run();
  MS_RETURN_IF_ERROR(failure);
  if (no_wait) MS_RETURN_IF_ERROR(I.TagKeptChunks(*no_wait_answer, kept_sealed, &manifest));
  const uint64_t total = bytes_out();
  result.bytes_reread = cut_sealer ? cut_sealer->bytes_read() : total;
  manifest.set_size_bytes(total);
  result.size_bytes = total;
  result.chunks = size_t(manifest.chunks_size());
  if (dry) return result;
  MS_ASSIGN_OR_RETURN(auto committed, I.Commit(name, manifest, opts.dc_tier));
  result.oid = committed.first;
  result.version = committed.second.first;
  result.bytes_sent += committed.second.second;
  return result;
}

Result<uint64_t> Client::Remove(const std::string& name, int64_t now_ms) {
  Impl& I = *impl_;
  // The object must exist (and not be removed already).
  MS_ASSIGN_OR_RETURN(pb::VersionInfo info, I.Resolve(name, 0));
  MS_ASSIGN_OR_RETURN(pb::Manifest old, I.OpenManifest(info));
  if (old.deleted())
    return NotFound("'" + name + "' is removed already (version " + std::to_string(info.version()) +
                    ")");
  pb::Manifest m;
  m.set_format(kManifestFormat);
  m.set_name(name);
  m.set_put_time_ms(now_ms);
  m.set_mtime_s(now_ms / 1000);
  m.set_deleted(true);
  MS_ASSIGN_OR_RETURN(auto committed, I.Commit(name, m));
  return committed.second.first;
}

Result<std::vector<VersionEntry>> Client::Versions(const std::string& name) {
  Impl& I = *impl_;
  MS_ASSIGN_OR_RETURN(pb::VersionInfo latest, I.Resolve(name, 0));
  std::vector<VersionEntry> out;
  for (uint64_t v = 1; v <= latest.version(); v++) {
    pb::VersionInfo info;
    if (v == latest.version()) {
      info = latest;
    } else {
      auto r = I.Resolve(ToHex(ToBytes(latest.oid())), v);
      if (!r.ok()) {
        if (r.status().code() == Code::kNotFound) continue;  // pruned
        return r.status();
      }
      info = std::move(r.value());
    }
    MS_ASSIGN_OR_RETURN(pb::Manifest m, I.OpenManifest(info));
    VersionEntry e;
    e.version = info.version();
    e.size_bytes = m.size_bytes();
    e.put_time_ms = m.put_time_ms();
    e.mtime_s = m.mtime_s();
    e.deleted = m.deleted();
    out.push_back(e);
  }
  return out;
}

Result<uint64_t> Client::VersionAt(const std::string& name, int64_t time_ms) {
  MS_ASSIGN_OR_RETURN(std::vector<VersionEntry> all, Versions(name));
  uint64_t best = 0;
  for (auto& e : all)
    if (e.put_time_ms <= time_ms) best = e.version;
  if (!best) return NotFound("'" + name + "' has no version from that time or before");
  return best;
}

const TransferStats& Client::stats() const { return impl_->stats; }
const std::vector<ForgedFragmentReport>& Client::forged_fragments() const {
  return impl_->forged;
}

Result<pb::VersionInfo> Client::Stat(const std::string& name_or_oid, uint64_t version) {
  return impl_->Resolve(name_or_oid, version);
}

Result<pb::Manifest> Client::OpenManifest(const pb::VersionInfo& info) {
  return impl_->OpenManifest(info);
}

pb::ReadMode Client::read_mode() const { return impl_->read_mode; }

void Client::AddStats(const TransferStats& o) {
  TransferStats& t = impl_->stats;
  t.bytes_sent += o.bytes_sent;
  t.bytes_received += o.bytes_received;
  t.chunks_sent += o.chunks_sent;
  t.chunks_received += o.chunks_received;
  t.chunks_reused += o.chunks_reused;
  t.bytes_reused += o.bytes_reused;
  t.get_held_bytes_max = std::max(t.get_held_bytes_max, o.get_held_bytes_max);
  t.chunks_recovered += o.chunks_recovered;
  t.fragments_forged += o.fragments_forged;
}

std::unique_ptr<Client> Client::Clone() const {
  const Impl& I = *impl_;
  auto copy = [](const SecretBytes& k) { return SecretBytes(k.data(), k.size()); };
  auto impl = std::make_unique<Impl>();
  impl->s = I.s;
  impl->master = copy(I.master);
  impl->name_hash_key = copy(I.name_hash_key);
  impl->name_seal_key = copy(I.name_seal_key);
  impl->chunk_id_key = copy(I.chunk_id_key);
  impl->chunk_id_key_v3 = copy(I.chunk_id_key_v3);
  impl->chunk_key = copy(I.chunk_key);
  impl->frag_tag_key = copy(I.frag_tag_key);
  impl->read_mode = I.read_mode;
  impl->persist_seen = false;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<pb::VersionInfo> Client::Get(const std::string& name_or_oid, uint64_t version,
                                    const std::function<Status(const uint8_t*, size_t)>& sink,
                                    const LocalChunkSource& local) {
  Impl& I = *impl_;
  MS_ASSIGN_OR_RETURN(pb::VersionInfo info, I.Resolve(name_or_oid, version));
  // A locked read holds a read lock at the object's primary until all its
  // chunks are read: release it whatever happens below.
  struct LockRelease {
    Impl& I;
    const pb::VersionInfo& info;
    ~LockRelease() {
      if (!info.lock_id() || !I.conn || I.conn->closed()) return;
      pb::Envelope rel;
      rel.mutable_release_lock()->set_oid(info.oid());
      rel.mutable_release_lock()->set_lock_id(info.lock_id());
      rel.mutable_release_lock()->set_subscriber(I.s.subscriber);
      (void)I.Call(std::move(rel));
    }
  } release{I, info};
  Bytes name_key = ToBytes(info.name_key());
  MS_ASSIGN_OR_RETURN(pb::Manifest manifest, I.OpenManifest(info));
  if (manifest.deleted())
    return NotFound("'" + name_or_oid + "' was removed in version " +
                    std::to_string(info.version()) +
                    " (see 'mistore versions' and 'mistore restore')");
  MS_RETURN_IF_ERROR(GetChunks(info, manifest, "", sink, local));
  I.Saw(Impl::SeenKey(name_or_oid, name_key), ToHex(ToBytes(info.oid())), info.version());
  return info;
}

Status Client::GetChunks(const pb::VersionInfo& info, const pb::Manifest& manifest,
                         const std::string& owner,
                         const std::function<Status(const uint8_t*, size_t)>& sink,
                         const LocalChunkSource& local) {
  Impl& I = *impl_;
  const SecretBytes* id_key = I.IdKeyOf(manifest, owner);

  // Fetch with a window of bytes, deliver strictly in order. `held` counts
  // the sealed bytes of every chunk between next_deliver and next_send
  // (requested, or arrived/found locally and waiting for an earlier one):
  // at most get_window_bytes, or one chunk when that alone is larger.
  size_t n = size_t(manifest.chunks_size());
  size_t next_send = 0, next_deliver = 0, in_flight = 0;
  uint64_t held = 0;
  std::map<size_t, Bytes> ready;
  Status failure;
  uint64_t delivered = 0;
  auto sealed_len = [&](size_t idx) {
    return uint64_t(manifest.chunks(int(idx)).plain_len()) + crypto::kSealOverhead;
  };
  auto deliver = [&] {
    while (failure.ok() && ready.count(next_deliver)) {
      Bytes& b = ready[next_deliver];
      failure = sink(b.data(), b.size());
      delivered += b.size();
      held -= std::min(held, sealed_len(next_deliver));
      ready.erase(next_deliver++);
    }
  };
  // Stops the loop once the read failed or every chunk is delivered, after
  // sending what the window allows.
  auto settle = [&](auto& pump_fn) {
    pump_fn(pump_fn);
    if (!failure.ok() || (next_deliver == n && in_flight == 0)) I.loop.Stop();
  };
  // A chunk opened on the thread pool, back on the loop thread: delivered,
  // or (issue 3) rebuilt from fragments checked against their tags, naming
  // the forged ones, or the read's failure.
  auto opened_chunk = [&](auto& pump_fn, size_t idx, OpenJob* job) {
    Status bad;
    if (!job->plain.ok()) {
      bad = Corrupt("chunk " + ToHex(job->id).substr(0, 12) + " fails authentication");
    } else if (!job->matches_id) {
      bad = Corrupt("chunk " + ToHex(job->id).substr(0, 12) + " does not match its id");
    }
    // The fragment tags are keyed with the owner's key: a reader of a
    // shared object cannot check them.
    if (!bad.ok() && owner.empty() && ChunkHasTags(manifest, int(idx))) {
      in_flight++;
      I.RecoverChunk(info, manifest, int(idx), [&, idx, bad](Result<Bytes> p) {
        in_flight--;
        if (failure.ok()) {
          if (p.ok()) {
            I.stats.chunks_recovered++;
            ready[idx] = std::move(p.value());
            deliver();
          } else {
            failure = Corrupt(bad.message() + "; " + p.status().message());
          }
        }
        settle(pump_fn);
      });
    } else if (!bad.ok()) {
      failure = bad;
    } else {
      ready[idx] = std::move(job->plain.value());
      deliver();
    }
  };
  auto pump = [&](auto& self) -> void {
    while (failure.ok() && next_send < n &&
           (held == 0 || held + sealed_len(next_send) <= I.s.get_window_bytes)) {
      size_t idx = next_send++;
      held += sealed_len(idx);
      I.stats.get_held_bytes_max = std::max(I.stats.get_held_bytes_max, held);
      const pb::ManifestChunk& mc = manifest.chunks(int(idx));
      if (local) {
        Bytes copy;
        if (id_key && local(mc.id(), size_t(mc.plain_len()), &copy) &&
            copy.size() == mc.plain_len() &&
            KeyedHash32(*id_key, copy.data(), copy.size()) == ToBytes(mc.id())) {
          I.stats.chunks_reused++;
          I.stats.bytes_reused += copy.size();
          ready[idx] = std::move(copy);
          deliver();
          continue;
        }
      }
      pb::Envelope req;
      req.mutable_get_chunk()->set_subscriber(I.s.subscriber);
      req.mutable_get_chunk()->set_oid(info.oid());
      req.mutable_get_chunk()->set_chunk_id(mc.id());
      req.mutable_get_chunk()->set_lock_id(info.lock_id());
      if (!owner.empty()) req.mutable_get_chunk()->set_owner(owner);
      in_flight++;
      I.conn->Call(std::move(req), [&, idx](Result<pb::Envelope> r) {
        Status st = r.ok() ? ResponseStatus(r.value()) : r.status();
        if (failure.ok() && !st.ok()) failure = st;
        if (!failure.ok()) {
          in_flight--;
          return settle(self);
        }
        // The chunk is opened and checked on the thread pool while the loop
        // thread goes on receiving and writing (a read from the home
        // gateway's cache is CPU-bound); it stays in flight until then.
        const pb::ManifestChunk& mc = manifest.chunks(int(idx));
        auto job = std::make_shared<OpenJob>();
        job->id = ToBytes(mc.id());
        job->plain_len = mc.plain_len();
        job->seal_key = I.SealKeyOf(manifest, int(idx));
        job->id_key = id_key;
        job->sealed = std::move(*r->mutable_chunk_data()->mutable_data());
        I.stats.bytes_received += job->sealed.size();
        I.stats.chunks_received++;
        auto work = [job] { job->Run(); };
        auto opened = [&, idx, job] {
          in_flight--;
          if (failure.ok()) opened_chunk(self, idx, job.get());
          settle(self);
        };
        if (!I.loop.QueueWork(work, opened).ok()) {  // the pool is busy: here
          work();
          opened();
        }
      });
    }
  };
  if (n > 0) {
    MS_RETURN_IF_ERROR(I.Connect());
    pump(pump);
    while (failure.ok() && next_deliver < n) I.loop.Run();
    while (in_flight > 0) I.loop.Run();
  }
  MS_RETURN_IF_ERROR(failure);
  if (delivered != manifest.size_bytes())
    return Corrupt("object is shorter than its manifest says");
  return Status::Ok();
}

void Client::set_read_mode(pb::ReadMode mode) { impl_->read_mode = mode; }

Result<std::vector<ListEntry>> Client::List(bool include_removed) {
  Impl& I = *impl_;
  pb::Envelope req;
  req.mutable_list_objects()->set_subscriber(I.s.subscriber);
  MS_ASSIGN_OR_RETURN(pb::Envelope r, I.Call(std::move(req)));
  std::vector<ListEntry> out;
  for (auto& e : r.object_list().objects()) {
    ListEntry le;
    auto oid = Oid::Decode(e.oid());
    if (oid.ok()) le.oid = oid.value();
    le.version = e.latest_version();
    le.size_bytes = e.size_bytes();
    Bytes sealed = ToBytes(e.name_sealed());
    auto name = crypto::Open(I.name_seal_key, sealed.data(), sealed.size(),
                             reinterpret_cast<const uint8_t*>(I.s.subscriber.data()),
                             I.s.subscriber.size());
    if (name.ok()) le.name = std::string(name->begin(), name->end());
    if (le.name.empty()) le.name = "?";
    if (le.size_bytes == 0 && oid.ok()) {
      // A tombstone has no bytes; an empty file neither: ask its manifest.
      auto info = I.Resolve(oid->Hex(), le.version);
      if (!info.ok()) return info.status();
      MS_ASSIGN_OR_RETURN(pb::Manifest m, I.OpenManifest(info.value()));
      le.deleted = m.deleted();
    }
    if (le.deleted && !include_removed) continue;
    out.push_back(le);
  }
  return out;
}

Result<pb::Placement> Client::Placement(const std::string& name_or_oid, uint64_t version,
                                        pb::VersionInfo* info_out) {
  Impl& I = *impl_;
  MS_ASSIGN_OR_RETURN(pb::VersionInfo info, I.Resolve(name_or_oid, version));
  pb::Envelope req;
  req.mutable_get_placement()->set_oid(info.oid());
  req.mutable_get_placement()->set_version(info.version());
  MS_ASSIGN_OR_RETURN(pb::Envelope r, I.Call(std::move(req)));
  if (info_out) *info_out = info;
  return r.placement();
}

// ---------------------------------------------------------------------------
// Read-only sharing (issue 4; docs/security.md "Sharing")

namespace {
constexpr uint32_t kShareGrantFormat = 1;
}  // namespace

Status Client::PublishShareKey() {
  Impl& I = *impl_;
  ShareKeyPair kp = DeriveShareKeyPair(I.master);
  pb::Envelope req;
  req.mutable_publish_share_key()->set_subscriber(I.s.subscriber);
  req.mutable_publish_share_key()->set_public_key(ToStr(kp.public_key));
  return I.Call(std::move(req)).status();
}

Result<bool> Client::Share(const std::string& name, const std::string& grantee) {
  Impl& I = *impl_;
  if (grantee.empty() || grantee == I.s.subscriber)
    return InvalidArgument("share with another subscriber (--with S)");
  MS_ASSIGN_OR_RETURN(pb::VersionInfo info, I.Resolve(name, 0));
  MS_ASSIGN_OR_RETURN(pb::Manifest m, I.OpenManifest(info));
  if (!ManifestHasChunkKeys(m))
    return InvalidArgument("'" + name + "' version " + std::to_string(info.version()) +
                           " was written by an older client (manifest format " +
                           std::to_string(m.format()) +
                           ", chunks under your one chunk key): `mistore put` it again, then "
                           "share it");
  pb::Envelope kq;
  kq.mutable_get_share_key()->set_subscriber(I.s.subscriber);
  kq.mutable_get_share_key()->set_of_subscriber(grantee);
  auto key = I.Call(std::move(kq));
  if (!key.ok()) {
    if (key.status().code() == Code::kNotFound)
      return NotFound(key.status().message() + "; ask " + grantee +
                      " to run `mistore shared` once");
    return key.status();
  }
  const Bytes name_key = ToBytes(info.name_key());
  SecretBytes object_key = I.ObjectKeyFor(name_key);
  pb::ShareGrant g;
  g.set_format(kShareGrantFormat);
  g.set_owner(I.s.subscriber);
  g.set_oid(info.oid());
  g.set_name(name);
  g.set_object_key(std::string(reinterpret_cast<const char*>(object_key.data()),
                               object_key.size()));
  g.set_name_key(info.name_key());
  g.set_grantee(grantee);
  std::string plain = g.SerializeAsString();
  Bytes plain_b = ToBytes(plain);
  sodium_memzero(plain.data(), plain.size());
  auto sealed = SealToRecipient(ToBytes(key->share_key_reply().public_key()), plain_b);
  sodium_memzero(plain_b.data(), plain_b.size());
  MS_RETURN_IF_ERROR(sealed.status());
  pb::Envelope req;
  auto* ps = req.mutable_put_share();
  ps->set_subscriber(I.s.subscriber);
  ps->set_oid(info.oid());
  ps->set_grantee(grantee);
  ps->set_grant_sealed(ToStr(sealed.value()));
  MS_ASSIGN_OR_RETURN(pb::Envelope r, I.Call(std::move(req)));
  return r.put_share_reply().changed();
}

Result<bool> Client::Unshare(const std::string& name, const std::string& grantee) {
  Impl& I = *impl_;
  MS_ASSIGN_OR_RETURN(pb::VersionInfo info, I.Resolve(name, 0));
  pb::Envelope req;
  auto* ps = req.mutable_put_share();
  ps->set_subscriber(I.s.subscriber);
  ps->set_oid(info.oid());
  ps->set_grantee(grantee);
  ps->set_remove(true);
  MS_ASSIGN_OR_RETURN(pb::Envelope r, I.Call(std::move(req)));
  return r.put_share_reply().changed();
}

namespace {
// A grant opened and checked against the DC's record of it: sealed to us,
// naming the record's owner and oid and us as grantee, keys of the right size.
Result<pb::ShareGrant> OpenGrant(const ShareKeyPair& kp, const pb::ShareEntry& e,
                                 const std::string& me) {
  MS_ASSIGN_OR_RETURN(Bytes plain, OpenSealed(kp, ToBytes(e.grant_sealed())));
  pb::ShareGrant g;
  const bool parsed = g.ParseFromArray(plain.data(), int(plain.size()));
  sodium_memzero(plain.data(), plain.size());
  if (!parsed) return Corrupt("grant does not parse");
  if (g.format() != kShareGrantFormat)
    return Corrupt("grant format " + std::to_string(g.format()) + " is unknown");
  if (g.owner() != e.owner() || g.oid() != e.oid() || g.grantee() != me)
    return Corrupt("grant names another owner, object or grantee than its record");
  if (g.object_key().size() != 32 || g.name_key().size() != 32)
    return Corrupt("grant carries keys of the wrong size");
  return g;
}
}  // namespace

Result<std::vector<SharedEntry>> Client::ListShared() {
  Impl& I = *impl_;
  MS_RETURN_IF_ERROR(PublishShareKey());
  pb::Envelope req;
  req.mutable_list_shares()->set_subscriber(I.s.subscriber);
  MS_ASSIGN_OR_RETURN(pb::Envelope r, I.Call(std::move(req)));
  ShareKeyPair kp = DeriveShareKeyPair(I.master);
  std::vector<SharedEntry> out;
  for (const pb::ShareEntry& e : r.share_list().shares()) {
    SharedEntry se;
    se.owner = e.owner();
    se.created_ms = e.created_ms();
    if (auto oid = Oid::Decode(e.oid()); oid.ok()) se.oid = oid.value();
    auto g = OpenGrant(kp, e, I.s.subscriber);
    if (g.ok())
      se.name = g->name();
    else
      se.problem = g.status().message();
    out.push_back(std::move(se));
  }
  return out;
}

Result<pb::VersionInfo> Client::GetShared(
    const std::string& owner, const std::string& name,
    const std::function<Status(const uint8_t*, size_t)>& sink) {
  Impl& I = *impl_;
  pb::Envelope lq;
  lq.mutable_list_shares()->set_subscriber(I.s.subscriber);
  MS_ASSIGN_OR_RETURN(pb::Envelope lr, I.Call(std::move(lq)));
  ShareKeyPair kp = DeriveShareKeyPair(I.master);
  std::optional<pb::ShareGrant> grant;
  auto by_oid = Oid::FromHex(name);
  const std::string oid_bytes = by_oid.ok() ? ToStr(by_oid->Encode()) : std::string();
  for (const pb::ShareEntry& e : lr.share_list().shares()) {
    if (e.owner() != owner) continue;
    auto g = OpenGrant(kp, e, I.s.subscriber);
    if (g.ok() && (g->name() == name || (!oid_bytes.empty() && g->oid() == oid_bytes))) {
      grant = std::move(g.value());
      break;
    }
  }
  // No grant: by name, nothing to ask. By oid, the POP is asked all the same
  // (a reader may remember an oid from before an unshare): its refusal is
  // the answer; without the grant's key nothing it served could be read.
  if (!grant && oid_bytes.empty())
    return NotFound("'" + owner + "/" + name + "' is not shared with " + I.s.subscriber +
                    " (see `mistore shared`)");
  pb::Envelope req;
  auto* gv = req.mutable_get_version();
  gv->set_subscriber(I.s.subscriber);
  gv->set_owner(owner);
  gv->set_oid(grant ? grant->oid() : oid_bytes);
  // Read-only: never a locked read (it would take a lock on the owner's object).
  gv->set_mode(I.read_mode == pb::READ_LOCKED ? pb::READ_ATOMIC : I.read_mode);
  const std::string seen_key = "shared/" + owner + "/" + ToHex(ToBytes(gv->oid()));
  if (gv->mode() == pb::READ_MONOTONIC) {
    I.LoadSeen();
    if (auto it = I.seen.find(seen_key); it != I.seen.end()) gv->set_min_version(it->second);
  }
  MS_ASSIGN_OR_RETURN(pb::Envelope vr, I.Call(std::move(req)));
  if (!grant)
    return NotFound("object " + name + " of '" + owner + "' is not shared with " +
                    I.s.subscriber + " any more (no grant; see `mistore shared`)");
  const pb::VersionInfo& info = vr.version_info();
  if (info.oid() != grant->oid() || info.name_key() != grant->name_key())
    return Corrupt("the POP answered with another object than the one shared");
  const Bytes name_key = ToBytes(grant->name_key());
  SecretBytes object_key(reinterpret_cast<const uint8_t*>(grant->object_key().data()), 32);
  Bytes msealed = ToBytes(info.manifest_sealed());
  I.stats.bytes_received += msealed.size();
  auto mplain = crypto::Open(object_key, msealed.data(), msealed.size(), name_key.data(),
                             name_key.size());
  if (!mplain.ok()) return Corrupt("the shared object's manifest fails authentication");
  MS_ASSIGN_OR_RETURN(pb::Manifest manifest, DecodeManifest(mplain->data(), mplain->size()));
  if (manifest.deleted())
    return NotFound("'" + owner + "/" + name + "' was removed by its owner (version " +
                    std::to_string(info.version()) + ")");
  if (!ManifestHasChunkKeys(manifest))
    return Status(Code::kPermissionDenied,
                  "'" + owner + "/" + name + "' version " + std::to_string(info.version()) +
                      " was written by an older client: its chunks are under the owner's own "
                      "key (ask " + owner + " to put it again)");
  MS_RETURN_IF_ERROR(GetChunks(info, manifest, owner, sink, nullptr));
  I.Saw(seen_key, seen_key, info.version());
  return info;
}

}  // namespace mistore
