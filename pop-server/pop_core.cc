#include "pop-server/pop_core.h"

#include <algorithm>

#include "shared/core/log.h"
#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/fragment.h"
#include "shared/wire/envelope.h"

namespace mistore {

namespace {
constexpr size_t kChunkIdBytes = 32;
constexpr size_t kNameKeyBytes = 32;

Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
std::string Short(const std::string& id) { return ToHex(id).substr(0, 12); }
}  // namespace

PopCore::PopCore(PopParams params, PopStore* store, uint64_t seed)
    : p_(std::move(params)), store_(store), rng_(seed) {
  for (auto& key : store_->UnplacedChunks(1u << 20)) EnqueuePlacement(key);
}

// ---------------------------------------------------------------------------
// plumbing

Outbox PopCore::TakeOutbox() {
  Outbox o = std::move(out_);
  out_ = Outbox();
  return o;
}

void PopCore::Call(Dest to, pb::Envelope msg, ReplyCont cont, uint64_t timeout_ms) {
  Token t = next_token_++;
  calls_[t] = std::move(cont);
  out_.calls.push_back(OutCall{t, to, std::move(msg), timeout_ms ? timeout_ms : p_.call_timeout_ms});
}

void PopCore::OnCallDone(uint64_t now_ms, Token token, Result<pb::Envelope> reply) {
  now_ms_ = now_ms;
  auto it = calls_.find(token);
  MS_ASSERT(it != calls_.end());
  ReplyCont cont = std::move(it->second);
  calls_.erase(it);
  if (reply.ok()) {
    Status st = ResponseStatus(reply.value());
    if (!st.ok()) {
      cont(st);
      return;
    }
  }
  cont(std::move(reply));
}

void PopCore::RunJob(std::function<void()> run, std::function<void()> then) {
  Token t = next_token_++;
  jobs_[t] = std::move(then);
  out_.jobs.push_back(Job{t, std::move(run)});
}

void PopCore::OnJobDone(uint64_t now_ms, Token token) {
  now_ms_ = now_ms;
  auto it = jobs_.find(token);
  MS_ASSERT(it != jobs_.end());
  auto then = std::move(it->second);
  jobs_.erase(it);
  then();
}

void PopCore::Reply(const Incoming& in, pb::Envelope msg) {
  msg.set_request_id(in.request_id);
  msg.set_is_response(true);
  out_.replies.push_back(OutReply{in.conn_id, in.request_id, std::move(msg)});
}

void PopCore::ReplyError(const Incoming& in, const Status& st) {
  pb::Envelope e;
  e.mutable_error()->set_code(uint32_t(st.code()));
  e.mutable_error()->set_message(st.message());
  Reply(in, std::move(e));
}

bool PopCore::PopUp(uint32_t pop_id) const {
  for (auto& p : map_.pops())
    if (p.pop_id() == pop_id) return p.up();
  return false;
}

bool PopCore::IsGatewayConnected(uint32_t id) const {
  auto it = gateways_.find(id);
  return it != gateways_.end() && it->second.connected;
}

Status PopCore::CheckSubscriber(const Peer& from, const std::string& subscriber) const {
  if (subscriber.empty() || subscriber.size() > 128)
    return InvalidArgument("subscriber must be 1..128 characters");
  if (from.role == pb::ROLE_GATEWAY && from.subscriber != subscriber)
    return Status(Code::kPermissionDenied, "gateway " + std::to_string(from.node_id) +
                                               " does not act for subscriber " + subscriber);
  if (from.role != pb::ROLE_GATEWAY && from.role != pb::ROLE_POP)
    return Status(Code::kPermissionDenied, "peer has not identified itself");
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// membership

void PopCore::OnGatewayUp(uint64_t now_ms, const GatewayState& gw) {
  now_ms_ = now_ms;
  gateways_[gw.id] = gw;
  gateways_[gw.id].connected = true;
  PumpPlacement();
}

void PopCore::OnGatewayDown(uint64_t now_ms, uint32_t gateway_id) {
  now_ms_ = now_ms;
  auto it = gateways_.find(gateway_id);
  if (it != gateways_.end()) it->second.connected = false;
}

void PopCore::OnClusterMap(uint64_t now_ms, const pb::ClusterMap& map) {
  now_ms_ = now_ms;
  if (map.epoch() >= map_.epoch()) map_ = map;
}

void PopCore::OnTick(uint64_t now_ms) {
  now_ms_ = now_ms;
  if (place_queue_.empty() && placing_.empty()) {
    for (auto& key : store_->UnplacedChunks(1024)) EnqueuePlacement(key);
  }
  PumpPlacement();
  ReportVersions();
}

// ---------------------------------------------------------------------------
// dispatch: one handler per message type

void PopCore::OnRequest(uint64_t now_ms, const Peer& from, const pb::Envelope& req) {
  now_ms_ = now_ms;
  Incoming in{from.conn_id, req.request_id()};
  switch (req.body_case()) {
    case pb::Envelope::kPutChunk: return HandlePutChunk(in, from, req.put_chunk());
    case pb::Envelope::kPutCommit: return HandlePutCommit(in, from, req.put_commit());
    case pb::Envelope::kGetVersion: return HandleGetVersion(in, from, req.get_version());
    case pb::Envelope::kGetChunk: return HandleGetChunk(in, from, req.get_chunk());
    case pb::Envelope::kListObjects: return HandleListObjects(in, from, req.list_objects());
    case pb::Envelope::kGetPlacement: return HandleGetPlacement(in, from, req.get_placement());
    case pb::Envelope::kStoreChunk: return HandleStoreChunk(in, from, req.store_chunk());
    case pb::Envelope::kCommitVersion: return HandleCommitVersion(in, from, req.commit_version());
    case pb::Envelope::kFetchVersion: return HandleFetchVersion(in, from, req.fetch_version());
    case pb::Envelope::kFetchChunk: return HandleFetchChunk(in, from, req.fetch_chunk());
    default:
      return ReplyError(in, ProtocolError("POP does not serve message type " +
                                          std::to_string(int(req.body_case()))));
  }
}

// ---------------------------------------------------------------------------
// write path

void PopCore::HandlePutChunk(const Incoming& in, const Peer& from, const pb::PutChunk& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.chunk_id().size() != kChunkIdBytes) st = InvalidArgument("chunk id must be 32 bytes");
  if (st.ok() && m.data().size() > p_.chunk_bytes_max)
    st = ResourceExhausted("chunk of " + std::to_string(m.data().size()) + " bytes exceeds " +
                           std::to_string(p_.chunk_bytes_max));
  if (st.ok()) {
    st = store_->PutChunk(ChunkKey{m.subscriber(), ToBytes(m.chunk_id())}, ToBytes(m.data()),
                          ChunkState::kStaged);
  }
  if (!st.ok()) return ReplyError(in, st);
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
}

void PopCore::HandlePutCommit(const Incoming& in, const Peer& from, const pb::PutCommit& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.name_key().size() != kNameKeyBytes) st = InvalidArgument("name key must be 32 bytes");
  if (st.ok() && size_t(m.chunk_ids_size()) > p_.chunks_per_version_max)
    st = ResourceExhausted("too many chunks in one version");
  if (st.ok() && m.manifest_sealed().size() > p_.manifest_bytes_max)
    st = ResourceExhausted("manifest too large");
  for (int i = 0; st.ok() && i < m.chunk_ids_size(); i++) {
    ChunkKey key{m.subscriber(), ToBytes(m.chunk_ids(i))};
    auto info = store_->GetChunkInfo(key);
    if (!info.ok() || !info->has_data)
      st = NotFound("chunk " + Short(m.chunk_ids(i)) + " was not uploaded before commit");
  }
  if (!st.ok()) return ReplyError(in, st);
  uint32_t gateway = from.role == pb::ROLE_GATEWAY ? from.node_id : m.gateway_id();

  ResolveOidForWrite(m, [this, in, m, gateway](Result<Oid> oid) {
    if (!oid.ok()) return ReplyError(in, oid.status());
    pb::VersionInfo info;
    info.set_oid(ToStr(oid->Encode()));
    info.set_version(0);
    info.set_size_bytes(m.size_bytes());
    info.set_manifest_sealed(m.manifest_sealed());
    *info.mutable_chunk_ids() = m.chunk_ids();
    info.set_name_sealed(m.name_sealed());
    info.set_name_key(m.name_key());
    info.set_subscriber(m.subscriber());
    Oid o = oid.value();
    auto finish = [this, in, o, m](Result<uint64_t> v) {
      if (!v.ok()) return ReplyError(in, v.status());
      if (o.primary_pop != p_.pop_id && o.backup_pop != p_.pop_id) {
        // Entry POP only: the uploaded chunks stay as evictable cache.
        for (auto& id : m.chunk_ids()) {
          ChunkKey key{m.subscriber(), ToBytes(id)};
          auto ci = store_->GetChunkInfo(key);
          if (ci.ok() && ci->state == ChunkState::kStaged)
            (void)store_->SetChunkState(key, ChunkState::kCached);
        }
        EvictIfNeeded();
      }
      pb::Envelope r;
      auto* pr = r.mutable_put_reply();
      pr->set_oid(ToStr(o.Encode()));
      pr->set_version(v.value());
      pr->set_primary_pop(o.primary_pop);
      pr->set_backup_pop(o.backup_pop);
      Reply(in, std::move(r));
    };
    if (o.primary_pop == p_.pop_id) return CommitAsPrimary(info, finish);
    if (!PopUp(o.primary_pop))
      return finish(Unavailable("primary POP " + std::to_string(o.primary_pop) +
                                " of object " + o.Hex() + " is down"));
    std::vector<std::string> ids(m.chunk_ids().begin(), m.chunk_ids().end());
    PushChunks(o.primary_pop, m.subscriber(), ids, 0,
               [this, o, info, gateway, finish](Status st) {
                 if (!st.ok()) return finish(st);
                 pb::Envelope req;
                 *req.mutable_commit_version()->mutable_info() = info;
                 req.mutable_commit_version()->set_gateway_id(gateway);
                 Call(Dest{Dest::kPop, o.primary_pop}, req, [finish](Result<pb::Envelope> r) {
                   if (!r.ok()) return finish(r.status());
                   finish(r->commit_reply().version());
                 });
               });
  });
}

// Name -> oid: the DC's catalog is the authority. A new name gets an oid
// naming this POP as primary, a random other live POP as backup, the
// creating gateway and its next creation counter (paper, fig. 7).
void PopCore::ResolveOidForWrite(const pb::PutCommit& m, std::function<void(Result<Oid>)> done) {
  pb::Envelope look;
  look.mutable_lookup_name()->set_subscriber(m.subscriber());
  look.mutable_lookup_name()->set_name_key(m.name_key());
  Call(Dest{Dest::kDc, 0}, look, [this, m, done](Result<pb::Envelope> r) {
    if (r.ok()) return done(Oid::Decode(r->claim_name_reply().oid()));
    if (r.status().code() != Code::kNotFound) return done(r.status());
    std::vector<uint32_t> candidates;
    for (auto& p : map_.pops())
      if (p.up() && p.pop_id() != p_.pop_id) candidates.push_back(p.pop_id());
    if (candidates.empty()) return done(Unavailable("no other POP is up to act as backup"));
    Oid proposed;
    proposed.primary_pop = p_.pop_id;
    proposed.backup_pop = candidates[rng_() % candidates.size()];
    proposed.gateway = m.gateway_id();
    auto counter = store_->NextCounter(m.gateway_id());
    if (!counter.ok()) return done(counter.status());
    proposed.counter = counter.value();
    pb::Envelope claim;
    claim.mutable_claim_name()->set_subscriber(m.subscriber());
    claim.mutable_claim_name()->set_name_key(m.name_key());
    claim.mutable_claim_name()->set_proposed_oid(ToStr(proposed.Encode()));
    Call(Dest{Dest::kDc, 0}, claim, [done](Result<pb::Envelope> r) {
      if (!r.ok()) return done(r.status());
      done(Oid::Decode(r->claim_name_reply().oid()));
    });
  });
}

// Sends the chunks a remote replica needs, one call at a time (POP links are
// fast; the window keeps memory bounded to one chunk per push).
void PopCore::PushChunks(uint32_t pop, const std::string& subscriber, std::vector<std::string> ids,
                         size_t next, std::function<void(Status)> done) {
  if (next == 0) {
    // Pin the chunks so that eviction (after their placement) cannot drop
    // them before they reach the other replica.
    std::vector<ChunkKey> keys;
    for (auto& id : ids) keys.push_back(ChunkKey{subscriber, ToBytes(id)});
    for (auto& k : keys) pinned_[k]++;
    done = [this, keys, done](Status st) {
      for (auto& k : keys)
        if (--pinned_[k] == 0) pinned_.erase(k);
      EvictIfNeeded();
      done(st);
    };
  }
  if (next >= ids.size()) return done(Status::Ok());
  auto data = store_->GetChunk(ChunkKey{subscriber, ToBytes(ids[next])});
  if (!data.ok()) return done(data.status());
  pb::Envelope req;
  auto* sc = req.mutable_store_chunk();
  sc->set_subscriber(subscriber);
  sc->set_chunk_id(ids[next]);
  sc->set_data(ToStr(data.value()));
  Call(Dest{Dest::kPop, pop}, std::move(req),
       [this, pop, subscriber, ids = std::move(ids), next, done](Result<pb::Envelope> r) mutable {
         if (!r.ok()) return done(r.status());
         PushChunks(pop, subscriber, std::move(ids), next + 1, done);
       });
}

void PopCore::HandleStoreChunk(const Incoming& in, const Peer& from, const pb::StoreChunk& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "StoreChunk is for POPs only"));
  if (m.chunk_id().size() != kChunkIdBytes) return ReplyError(in, InvalidArgument("bad chunk id"));
  if (m.data().size() > p_.chunk_bytes_max) return ReplyError(in, ResourceExhausted("chunk too large"));
  Status st = store_->PutChunk(ChunkKey{m.subscriber(), ToBytes(m.chunk_id())}, ToBytes(m.data()),
                               ChunkState::kStaged);
  if (!st.ok()) return ReplyError(in, st);
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
}

// Primary: assign the next version, store it durably, have the backup store
// it durably, then acknowledge. Placement on gateways follows in background.
void PopCore::CommitAsPrimary(pb::VersionInfo info, std::function<void(Result<uint64_t>)> done) {
  auto oid = Oid::Decode(info.oid());
  if (!oid.ok()) return done(oid.status());
  uint64_t v = store_->LatestVersion(ToBytes(info.oid())) + 1;
  info.set_version(v);
  Status st = store_->PutVersion(info);
  if (!st.ok()) return done(st);
  StoreReplicaChunks(info);
  uint32_t backup = oid->backup_pop;
  if (!PopUp(backup))
    return done(Unavailable("backup POP " + std::to_string(backup) + " is down"));
  std::vector<std::string> ids(info.chunk_ids().begin(), info.chunk_ids().end());
  PushChunks(backup, info.subscriber(), ids, 0, [this, backup, info, v, done](Status st) {
    if (!st.ok()) return done(st);
    pb::Envelope req;
    *req.mutable_commit_version()->mutable_info() = info;
    Call(Dest{Dest::kPop, backup}, req, [this, v, done](Result<pb::Envelope> r) {
      if (!r.ok()) return done(r.status());
      ReportVersions();
      done(v);
    });
  });
}

void PopCore::StoreReplicaChunks(const pb::VersionInfo& info) {
  for (auto& id : info.chunk_ids()) {
    ChunkKey key{info.subscriber(), ToBytes(id)};
    auto ci = store_->GetChunkInfo(key);
    if (ci.ok() && (ci->state == ChunkState::kStaged || ci->state == ChunkState::kCached)) {
      if (store_->SetChunkState(key, ChunkState::kReplica).ok()) EnqueuePlacement(key);
    }
  }
}

void PopCore::HandleCommitVersion(const Incoming& in, const Peer& from, const pb::CommitVersion& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "CommitVersion is for POPs only"));
  auto oid = Oid::Decode(m.info().oid());
  if (!oid.ok()) return ReplyError(in, oid.status());
  for (auto& id : m.info().chunk_ids()) {
    auto ci = store_->GetChunkInfo(ChunkKey{m.info().subscriber(), ToBytes(id)});
    if (!ci.ok() || !ci->has_data)
      return ReplyError(in, NotFound("chunk " + Short(id) + " missing at replica"));
  }
  auto reply_version = [this, in](Result<uint64_t> v) {
    if (!v.ok()) return ReplyError(in, v.status());
    pb::Envelope r;
    r.mutable_commit_reply()->set_version(v.value());
    Reply(in, std::move(r));
  };
  if (m.info().version() == 0) {
    if (oid->primary_pop != p_.pop_id)
      return ReplyError(in, InvalidArgument("not the primary of " + oid->Hex()));
    return CommitAsPrimary(m.info(), reply_version);
  }
  if (oid->backup_pop != p_.pop_id)
    return ReplyError(in, InvalidArgument("not the backup of " + oid->Hex()));
  Status st = store_->PutVersion(m.info());
  if (!st.ok()) return ReplyError(in, st);
  StoreReplicaChunks(m.info());
  reply_version(m.info().version());
}

void PopCore::ReportVersions() {
  for (auto& info : store_->UnreportedVersions(64)) {
    auto oid = Oid::Decode(info.oid());
    auto key = std::make_pair(ToBytes(info.oid()), info.version());
    if (!oid.ok() || reporting_.count(key)) continue;
    if (oid->primary_pop != p_.pop_id) {  // the primary reports to the DC
      (void)store_->MarkReported(key.first, key.second);
      continue;
    }
    reporting_.insert(key);
    pb::Envelope req;
    *req.mutable_report_version()->mutable_info() = info;
    Call(Dest{Dest::kDc, 0}, req, [this, key](Result<pb::Envelope> r) {
      reporting_.erase(key);
      if (r.ok()) (void)store_->MarkReported(key.first, key.second);
    });
  }
}

// ---------------------------------------------------------------------------
// read path

std::vector<uint32_t> PopCore::ReplicaOrder(const Oid& oid) {
  // Atomic reads: primary or backup at random (paper, fig. 11); a replica
  // the cluster map shows down goes last.
  std::vector<uint32_t> order = {oid.primary_pop, oid.backup_pop};
  if (rng_() & 1) std::swap(order[0], order[1]);
  std::stable_partition(order.begin(), order.end(), [this](uint32_t p) {
    return p == p_.pop_id || PopUp(p);
  });
  return order;
}

void PopCore::HandleGetVersion(const Incoming& in, const Peer& from, const pb::GetVersion& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (!st.ok()) return ReplyError(in, st);
  auto serve = [this, in, m](Result<Oid> oid) {
    if (!oid.ok()) return ReplyError(in, oid.status());
    Oid o = oid.value();
    // This POP is a replica: its store is authoritative.
    if (o.primary_pop == p_.pop_id || o.backup_pop == p_.pop_id) {
      auto info = store_->GetVersion(o.Encode(), m.version());
      if (info.ok() && info->subscriber() != m.subscriber())
        return ReplyError(in, Status(Code::kPermissionDenied, "object belongs to another subscriber"));
      if (info.ok()) {
        pb::Envelope r;
        *r.mutable_version_info() = info.value();
        return Reply(in, std::move(r));
      }
    }
    pb::Envelope req;
    req.mutable_fetch_version()->set_oid(ToStr(o.Encode()));
    req.mutable_fetch_version()->set_version(m.version());
    CallReplicas(o, req, [this, in, m](Result<pb::Envelope> r) {
      if (!r.ok()) return ReplyError(in, r.status());
      if (r->version_info().subscriber() != m.subscriber())
        return ReplyError(in, Status(Code::kPermissionDenied, "object belongs to another subscriber"));
      pb::Envelope out;
      *out.mutable_version_info() = r->version_info();
      Reply(in, std::move(out));
    });
  };
  if (!m.oid().empty()) return serve(Oid::Decode(m.oid()));
  if (m.name_key().size() != kNameKeyBytes) return ReplyError(in, InvalidArgument("give a name key or an oid"));
  pb::Envelope look;
  look.mutable_lookup_name()->set_subscriber(m.subscriber());
  look.mutable_lookup_name()->set_name_key(m.name_key());
  Call(Dest{Dest::kDc, 0}, look, [serve](Result<pb::Envelope> r) {
    if (!r.ok()) return serve(r.status());
    serve(Oid::Decode(r->claim_name_reply().oid()));
  });
}

void PopCore::HandleFetchVersion(const Incoming& in, const Peer& from, const pb::FetchVersion& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "FetchVersion is for POPs only"));
  auto info = store_->GetVersion(ToBytes(m.oid()), m.version());
  if (!info.ok()) return ReplyError(in, info.status());
  pb::Envelope r;
  *r.mutable_version_info() = info.value();
  Reply(in, std::move(r));
}

void PopCore::HandleGetChunk(const Incoming& in, const Peer& from, const pb::GetChunk& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.chunk_id().size() != kChunkIdBytes) st = InvalidArgument("chunk id must be 32 bytes");
  auto oid = Oid::Decode(m.oid());
  if (st.ok() && !oid.ok()) st = oid.status();
  if (!st.ok()) return ReplyError(in, st);
  ChunkKey key{m.subscriber(), ToBytes(m.chunk_id())};
  auto reply_data = [this, in](Result<Bytes> data) {
    if (!data.ok()) return ReplyError(in, data.status());
    pb::Envelope r;
    r.mutable_chunk_data()->set_data(ToStr(data.value()));
    Reply(in, std::move(r));
  };
  // 1. this POP's cache (or replica copy).
  auto local = store_->GetChunk(key);
  if (local.ok()) return reply_data(std::move(local));
  // 2. this POP is a replica: rebuild from its region's gateways.
  if (oid->primary_pop == p_.pop_id || oid->backup_pop == p_.pop_id) {
    if (!store_->Fragments(key).empty()) return ReadChunkFromFragments(key, reply_data);
  }
  // 3. the object's primary or backup.
  pb::FetchChunk fc;
  fc.set_subscriber(m.subscriber());
  fc.set_oid(m.oid());
  fc.set_chunk_id(m.chunk_id());
  pb::Envelope env;
  *env.mutable_fetch_chunk() = fc;
  CallReplicas(oid.value(), env, [this, key, reply_data](Result<pb::Envelope> r) {
    if (!r.ok()) return reply_data(r.status());
    Bytes data = ToBytes(r->chunk_data().data());
    if (store_->PutChunk(key, data, ChunkState::kCached).ok()) EvictIfNeeded();
    reply_data(std::move(data));
  });
}

// Tries the object's other replicas in ReplicaOrder until one answers; a
// kNotFound answer is final (the replica is authoritative), anything else
// moves on to the next replica.
void PopCore::CallReplicas(const Oid& oid, pb::Envelope req, ReplyCont done) {
  auto order = std::make_shared<std::vector<uint32_t>>(ReplicaOrder(oid));
  order->erase(std::remove(order->begin(), order->end(), p_.pop_id), order->end());
  CallReplicaAt(order, 0, std::move(req), Unavailable("no replica of " + oid.Hex() + " is reachable"),
                std::move(done));
}

void PopCore::CallReplicaAt(std::shared_ptr<std::vector<uint32_t>> order, size_t i, pb::Envelope req,
                            Status last, ReplyCont done) {
  if (i >= order->size()) return done(last);
  uint32_t pop = (*order)[i];
  Call(Dest{Dest::kPop, pop}, req, [this, order, i, req, done](Result<pb::Envelope> r) {
    if (r.ok() || r.status().code() == Code::kNotFound || r.status().code() == Code::kPermissionDenied)
      return done(std::move(r));
    CallReplicaAt(order, i + 1, req, r.status(), done);
  });
}

void PopCore::HandleFetchChunk(const Incoming& in, const Peer& from, const pb::FetchChunk& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "FetchChunk is for POPs only"));
  ChunkKey key{m.subscriber(), ToBytes(m.chunk_id())};
  auto reply_data = [this, in](Result<Bytes> data) {
    if (!data.ok()) return ReplyError(in, data.status());
    pb::Envelope r;
    r.mutable_chunk_data()->set_data(ToStr(data.value()));
    Reply(in, std::move(r));
  };
  auto local = store_->GetChunk(key);
  if (local.ok()) return reply_data(std::move(local));
  ReadChunkFromFragments(key, reply_data);
}

// Asks every gateway recorded as holding a fragment of the chunk, in
// parallel (striping aggregates their uplinks), and decodes from whatever
// arrives intact: fragments failing their hash count as erasures.
void PopCore::ReadChunkFromFragments(const ChunkKey& key, std::function<void(Result<Bytes>)> done) {
  std::vector<FragmentLoc> locs = store_->Fragments(key);
  if (int(locs.size()) < p_.k)
    return done(NotFound("chunk " + ToHex(key.chunk_id).substr(0, 12) + " has only " +
                         std::to_string(locs.size()) + " fragments recorded"));
  struct Gather {
    size_t outstanding = 0;
    std::vector<Bytes> blobs;
  };
  auto g = std::make_shared<Gather>();
  auto finish = [this, key, g, done]() {
    if (int(g->blobs.size()) < p_.k)
      return done(Unavailable("only " + std::to_string(g->blobs.size()) + " of " +
                              std::to_string(p_.k) + " needed fragments of chunk " +
                              ToHex(key.chunk_id).substr(0, 12) + " reachable"));
    auto hdr = ParseFragmentHeader(g->blobs[0].data(), g->blobs[0].size());
    if (!hdr.ok()) return done(hdr.status());
    auto result = std::make_shared<Result<Bytes>>(Internal("decode did not run"));
    int k = p_.k, m = p_.m;
    size_t chunk_len = hdr->chunk_len;
    Bytes chunk_id = key.chunk_id;
    RunJob([g, result, chunk_id, k, m, chunk_len] {
      *result = DecodeChunkFromFragments(chunk_id, g->blobs, k, m, chunk_len);
    }, [this, key, result, done] {
      if (result->ok()) {
        Bytes data = result->value();
        if (store_->PutChunk(key, data, ChunkState::kCached).ok()) EvictIfNeeded();
        return done(std::move(data));
      }
      done(result->status());
    });
  };
  for (auto& loc : locs) {
    if (!IsGatewayConnected(loc.gateway_id)) continue;
    g->outstanding++;
    pb::Envelope req;
    req.mutable_fetch_fragment()->set_chunk_id(ToStr(key.chunk_id));
    req.mutable_fetch_fragment()->set_index(loc.index);
    Call(Dest{Dest::kGateway, loc.gateway_id}, req, [g, finish](Result<pb::Envelope> r) {
      if (r.ok()) g->blobs.push_back(ToBytes(r->fragment_data().fragment()));
      if (--g->outstanding == 0) finish();
    }, p_.fragment_timeout_ms);
  }
  if (g->outstanding == 0) finish();
}

void PopCore::HandleListObjects(const Incoming& in, const Peer& from, const pb::ListObjects& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (!st.ok()) return ReplyError(in, st);
  pb::Envelope req;
  *req.mutable_list_objects() = m;
  Call(Dest{Dest::kDc, 0}, req, [this, in](Result<pb::Envelope> r) {
    if (!r.ok()) return ReplyError(in, r.status());
    pb::Envelope out;
    *out.mutable_object_list() = r->object_list();
    Reply(in, std::move(out));
  });
}

// Where the fragments of one version went: this POP's own records when it
// is a replica, merged with the other replica's when asked by a gateway.
void PopCore::HandleGetPlacement(const Incoming& in, const Peer& from, const pb::GetPlacement& m) {
  auto oid = Oid::Decode(m.oid());
  if (!oid.ok()) return ReplyError(in, oid.status());
  pb::Placement mine;
  if (oid->primary_pop == p_.pop_id || oid->backup_pop == p_.pop_id) {
    auto info = store_->GetVersion(ToBytes(m.oid()), m.version());
    if (!info.ok()) return ReplyError(in, info.status());
    if (from.role == pb::ROLE_GATEWAY && info->subscriber() != from.subscriber)
      return ReplyError(in, Status(Code::kPermissionDenied, "object belongs to another subscriber"));
    for (auto& id : info->chunk_ids()) {
      ChunkKey key{info->subscriber(), ToBytes(id)};
      mine.set_chunks_total(mine.chunks_total() + 1);
      auto ci = store_->GetChunkInfo(key);
      if (ci.ok() && ci->state == ChunkState::kPlaced) mine.set_chunks_placed(mine.chunks_placed() + 1);
      for (auto& loc : store_->Fragments(key)) {
        auto* f = mine.add_fragments();
        f->set_chunk_id(id);
        f->set_index(loc.index);
        f->set_gateway_id(loc.gateway_id);
        f->set_pop_id(p_.pop_id);
      }
    }
  }
  if (from.role == pb::ROLE_POP) {
    pb::Envelope r;
    *r.mutable_placement() = mine;
    return Reply(in, std::move(r));
  }
  std::vector<uint32_t> others;
  for (uint32_t p : {oid->primary_pop, oid->backup_pop})
    if (p != p_.pop_id && PopUp(p)) others.push_back(p);
  auto acc = std::make_shared<pb::Placement>(mine);
  auto left = std::make_shared<size_t>(others.size());
  auto reply = [this, in, acc]() {
    pb::Envelope r;
    *r.mutable_placement() = *acc;
    Reply(in, std::move(r));
  };
  if (others.empty()) return reply();
  for (uint32_t p : others) {
    pb::Envelope req;
    *req.mutable_get_placement() = m;
    Call(Dest{Dest::kPop, p}, req, [acc, left, reply](Result<pb::Envelope> r) {
      if (r.ok()) {
        for (auto& f : r->placement().fragments()) *acc->add_fragments() = f;
        acc->set_chunks_total(acc->chunks_total() + r->placement().chunks_total());
        acc->set_chunks_placed(acc->chunks_placed() + r->placement().chunks_placed());
      }
      if (--*left == 0) reply();
    });
  }
}

// ---------------------------------------------------------------------------
// placement: k+m fragments of each replica chunk on distinct gateways

void PopCore::EnqueuePlacement(const ChunkKey& key) {
  if (queued_or_placing_.insert(key).second) place_queue_.push_back(key);
}

void PopCore::PumpPlacement() {
  while (!place_queue_.empty() && placing_.size() < p_.placements_in_flight_max) {
    ChunkKey key = place_queue_.front();
    place_queue_.pop_front();
    placing_.insert(key);
    PlaceChunk(key);
  }
}

void PopCore::PlaceChunk(const ChunkKey& key) {
  std::vector<uint32_t> live;
  for (auto& [id, gw] : gateways_)
    if (gw.connected) live.push_back(id);
  int n = p_.k + p_.m;
  if (int(live.size()) < n) {
    if (!placement_blocked_)
      MS_WARN("pop", "not enough live gateways to place chunks; will retry",
              "live=" + std::to_string(live.size()) + " needed=" + std::to_string(n));
    placement_blocked_ = true;
    return FinishPlacement(key, false);
  }
  placement_blocked_ = false;
  auto data = store_->GetChunk(key);
  if (!data.ok()) {
    MS_ERROR("pop", "replica chunk unreadable", "chunk=" + ToHex(key.chunk_id).substr(0, 12) +
                                                    " error=\"" + data.status().ToString() + "\"");
    return FinishPlacement(key, false);
  }
  std::shuffle(live.begin(), live.end(), rng_);
  live.resize(n);
  auto blobs = std::make_shared<Result<std::vector<Bytes>>>(Internal("encode did not run"));
  auto chunk = std::make_shared<Bytes>(std::move(data.value()));
  int k = p_.k, m = p_.m;
  Bytes chunk_id = key.chunk_id;
  RunJob([blobs, chunk, chunk_id, k, m] {
    *blobs = EncodeChunkToFragments(chunk_id, chunk->data(), chunk->size(), k, m);
  }, [this, key, blobs, live] {
    if (!blobs->ok()) {
      MS_ERROR("pop", "erasure encode failed", "error=\"" + blobs->status().ToString() + "\"");
      return FinishPlacement(key, false);
    }
    auto left = std::make_shared<int>(int(live.size()));
    auto all_ok = std::make_shared<bool>(true);
    for (size_t i = 0; i < live.size(); i++) {
      pb::Envelope req;
      req.mutable_store_fragment()->set_fragment(ToStr(blobs->value()[i]));
      uint32_t gw = live[i];
      Call(Dest{Dest::kGateway, gw}, req,
           [this, key, gw, i, left, all_ok](Result<pb::Envelope> r) {
             if (r.ok()) {
               if (!store_->RecordFragment(key, uint32_t(i), gw).ok()) *all_ok = false;
             } else {
               *all_ok = false;
               MS_WARN("pop", "fragment store failed", "gateway=" + std::to_string(gw) +
                                                           " error=\"" + r.status().ToString() + "\"");
             }
             if (--*left == 0) FinishPlacement(key, *all_ok);
           }, p_.fragment_timeout_ms);
    }
  });
}

void PopCore::FinishPlacement(const ChunkKey& key, bool ok) {
  placing_.erase(key);
  queued_or_placing_.erase(key);
  if (ok) {
    if (store_->SetChunkState(key, ChunkState::kPlaced).ok()) EvictIfNeeded();
  }
  // Failed chunks stay in state kReplica; OnTick re-enqueues them.
  PumpPlacement();
}

void PopCore::EvictIfNeeded() {
  uint64_t held = store_->CachedBytes();
  if (held <= p_.cache_bytes_max) return;
  for (auto& [key, size] : store_->EvictionCandidates(256 + pinned_.size())) {
    if (held <= p_.cache_bytes_max) break;
    if (pinned_.count(key)) continue;
    if (store_->DropChunkData(key).ok()) held -= std::min(held, size);
  }
}

}  // namespace mistore
