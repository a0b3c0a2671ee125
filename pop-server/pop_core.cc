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
}  // namespace

PopCore::PopCore(PopParams params, PopStore* store, uint64_t seed)
    : p_(std::move(params)),
      store_(store),
      rng_(seed),
      locks_(p_.lock_waiters_max, rng_() >> 2),
      members_(MembershipParams{.suspect_after_ms = p_.gateway_suspect_ms,
                                .grace_ms = p_.gateway_grace_ms}),
      repair_(RepairParams{.repair_bytes_per_s = p_.repair_bytes_per_s,
                           .queue_chunks_max = p_.repair_queue_chunks_max,
                           .in_flight_max = p_.repairs_in_flight_max}),
      held_(HeldResultsParams{.keep_ms = p_.held_results_ms,
                              .per_gateway_max = p_.held_results_per_gateway_max,
                              .total_max = p_.held_results_max}) {
  share_gate_ = ShareGate(
      ShareGateParams{.ttl_ms = p_.share_cache_ttl_ms, .entries_max = p_.share_cache_entries_max});
  // A FetchLocks reply can arrive up to a call timeout after it was sent.
  locks_.SetReleasedKeepMs(p_.call_timeout_ms);
  SetLockLeaseLimit();
  for (auto& key : store_->UnplacedChunks(1u << 20)) EnqueuePlacement(key);
}

// ---------------------------------------------------------------------------
// plumbing

Outbox PopCore::TakeOutbox() {
  PushLockState();  // lock-table changes of this input go to the backups (pop_read.cc)
  Outbox o = std::move(out_);
  out_ = Outbox();
  return o;
}

void PopCore::Call(Dest to, pb::Envelope msg, ReplyCont cont, uint64_t timeout_ms) {
  if (to.kind != Dest::kGateway) msg.set_map_epoch(map_.epoch());
  Token t = next_token_++;
  calls_[t] = std::move(cont);
  out_.calls.push_back(
      OutCall{t, to, std::move(msg), timeout_ms ? timeout_ms : p_.call_timeout_ms});
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
  if (pop_id == kDcReplica) return true;
  for (auto& p : map_.pops())
    if (p.pop_id() == pop_id) return p.up();
  return false;
}

uint32_t PopCore::ActingPrimary(const Oid& o) const {
  if (PopUp(o.primary_pop)) return o.primary_pop;
  if (PopUp(o.backup_pop)) return o.backup_pop;
  return kNoPop;
}

uint32_t PopCore::ActingBackup(const Oid& o) const {
  if (PopUp(o.primary_pop) && PopUp(o.backup_pop)) return o.backup_pop;
  return kDcReplica;
}

bool PopCore::IsStandInMessage(const pb::Envelope& req) {
  switch (req.body_case()) {
    case pb::Envelope::kStoreChunk:
    case pb::Envelope::kHaveChunks:  // a push asks before it sends (pop_write.cc)
    case pb::Envelope::kCommitVersion:
    case pb::Envelope::kFinalizeVersion:
    case pb::Envelope::kFetchVersion:
    case pb::Envelope::kFetchChunk:
    case pb::Envelope::kLockSync:  // the DC's stand-in keeps the lock table's backup copy
    case pb::Envelope::kFetchLocks:
    case pb::Envelope::kAcquireLock:  // the DC's stand-in is the lock server of DC-tier objects
    case pb::Envelope::kRenewLock:
    case pb::Envelope::kReleaseLock:
      return true;
    default:
      return false;
  }
}

Dest PopCore::ReplicaDest(uint32_t replica) const {
  return replica == kDcReplica ? Dest{Dest::kDc, 0} : Dest{Dest::kPop, replica};
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
  OnMembershipEvents(members_.OnConnect(now_ms, gw.id, gw.subscriber, gw.store_bytes_free));
  DeliverHeldResults(gw.id);                // issue 6: results kept while it was away
  map_pushed_epoch_[gw.id] = map_.epoch();  // its HelloReply carried the map
  PumpPlacement();
}

void PopCore::OnGatewayDown(uint64_t now_ms, uint32_t gateway_id) {
  now_ms_ = now_ms;
  auto it = gateways_.find(gateway_id);
  if (it != gateways_.end()) it->second.connected = false;
  OnMembershipEvents(members_.OnDisconnect(now_ms, gateway_id));
}

void PopCore::OnClusterMap(uint64_t now_ms, const pb::ClusterMap& map) {
  now_ms_ = now_ms;
  if (map.epoch() < map_.epoch()) return;
  pb::ClusterMap old = map_;
  map_ = map;
  bool was_up = false, is_up = PopUp(p_.pop_id);
  for (auto& p : old.pops())
    if (p.pop_id() == p_.pop_id) was_up = p.up();
  // Down and up again (or new): what this POP holds may be stale. So it may
  // after a gap in epochs: a map that marked it down can be among those it
  // missed (it hung, or its connection to the DC dropped and came back).
  bool missed_maps = old.epoch() != 0 && map.epoch() > old.epoch() + 1;
  if (is_up && (!was_up || missed_maps)) ForgetSynced();
  TakeOverPrepared(old);
  NoteMapChange(old);   // operators' events (pop_report.cc)
  PushMapToGateways();  // pop_map_push.cc
}

void PopCore::OnDcContact(uint64_t now_ms) {
  now_ms_ = now_ms;
  dc_contact_ms_ = now_ms;
  SetLockLeaseLimit();
  if (!map_stale_) return;
  map_stale_ = false;
  MS_INFO("pop", "the DC answers again; objects stay caught up once re-synced", "");
}

// Bug 11: a lock this POP grants as primary must not stay valid after the
// DC may have failed it over. The DC waits pop_silence_ms (> map_lease_ms)
// without hearing from a POP before it marks it down, and this POP heard
// from the DC at dc_contact_ms_ (after the DC heard its request), so until
// dc_contact_ms_ + map_lease_ms no other POP acts as primary of its
// objects: every lease ends by then (LockTable::SetLeaseLimit).
void PopCore::SetLockLeaseLimit() {
  locks_.SetLeaseLimit(p_.map_lease_ms == 0 ? UINT64_MAX : dc_contact_ms_ + p_.map_lease_ms);
}

// How often an entry POP renews the locks it holds: a third of the lease,
// or of the map lease that cuts every lease at the primary (bug 11).
uint64_t PopCore::LockRenewEveryMs() const {
  uint64_t lease = p_.map_lease_ms == 0 ? p_.lease_ms : std::min(p_.lease_ms, p_.map_lease_ms);
  return std::max<uint64_t>(1, lease / 3);
}

// No DC reply for map_lease_ms: see PopParams::map_lease_ms.
void PopCore::CheckMapLease() {
  if (p_.map_lease_ms == 0 || map_stale_ || now_ms_ - dc_contact_ms_ <= p_.map_lease_ms) return;
  map_stale_ = true;
  ForgetSynced();
  MS_WARN("pop",
          "no reply from the DC; re-syncing each object with its other replica before serving it",
          "silent_ms=" + std::to_string(now_ms_ - dc_contact_ms_));
}

void PopCore::OnTick(uint64_t now_ms) {
  now_ms_ = now_ms;
  CheckMapLease();
  if (place_queue_.empty() && placing_.empty()) {
    for (auto& key : store_->UnplacedChunks(1024)) EnqueuePlacement(key);
  }
  PumpPlacement();
  ReportVersions();
  TickLocks();
  for (auto it = upload_pins_.begin(); it != upload_pins_.end();)
    it = it->second <= now_ms_ ? upload_pins_.erase(it) : std::next(it);
  TickForwarding();
  SweepStaged();  // staged chunks whose commit never came (pop_place_early.cc)
  if (!gateways_expected_) {  // first tick since start: wait for every recorded gateway
    gateways_expected_ = true;
    for (uint32_t id : store_->GatewaysWithFragments()) members_.Expect(now_ms, id);
  }
  OnMembershipEvents(members_.Tick(now_ms));
  PumpRepair();
  RecountBelowRedundancy();
  TickGc();                // garbage collection and cold tier (pop_gc.cc; issue 7)
  TrackReportedRepairs();  // operators' events (pop_report.cc)
  held_.Expire(now_ms);
  SaveHeldResults();
  AskPlacedChunks();
}

// ---------------------------------------------------------------------------
// dispatch: one handler per message type

// Requests whose meaning depends on who plays which role: the sender chose
// this POP (or the DC) as primary/backup from its copy of the cluster map.
static bool IsRoleDependent(const pb::Envelope& e) {
  switch (e.body_case()) {
    case pb::Envelope::kStoreChunk:
    case pb::Envelope::kCommitVersion:
    case pb::Envelope::kFinalizeVersion:
    case pb::Envelope::kAcquireLock:
    case pb::Envelope::kRenewLock:
    case pb::Envelope::kLockSync:
    case pb::Envelope::kFetchLocks:
      return true;
    default:
      return false;
  }
}

// Role-dependent requests between POPs (and to the DC's stand-in) are
// served only when both sides see the same map epoch: a sender behind is
// refused (it retries once the DC's push reaches it); a receiver behind
// refuses too and fetches the newer map from the DC at once.
Status PopCore::CheckEpoch(const Peer& from, const pb::Envelope& req) {
  if (from.role != pb::ROLE_POP || !IsRoleDependent(req)) return Status::Ok();
  uint64_t mine = map_.epoch();
  if (req.map_epoch() == mine) return Status::Ok();
  if (req.map_epoch() > mine) FetchMap();
  return Status(Code::kAborted, "cluster map epoch " + std::to_string(req.map_epoch()) +
                                    " differs from this node's " + std::to_string(mine));
}

void PopCore::FetchMap() {
  if (map_fetch_in_flight_ || p_.pop_id == kDcReplica) return;
  map_fetch_in_flight_ = true;
  pb::Envelope req;
  req.mutable_get_cluster_map();
  Call(Dest{Dest::kDc, 0}, req, [this](Result<pb::Envelope> r) {
    map_fetch_in_flight_ = false;
    if (r.ok() && r->has_cluster_map()) OnClusterMap(now_ms_, r->cluster_map());
  });
}

void PopCore::OnRequest(uint64_t now_ms, const Peer& from, const pb::Envelope& req) {
  now_ms_ = now_ms;
  Incoming in{from.conn_id, req.request_id()};
  if (Status st = CheckEpoch(from, req); !st.ok()) {
    epoch_refusals_total_++;
    return ReplyError(in, st);
  }
  if (IsSharedRead(req)) return HandleSharedRead(in, from, req);  // issue 4, pop_share.cc
  switch (req.body_case()) {
    case pb::Envelope::kPutChunk:
      return HandlePutChunk(in, from, req.put_chunk());
    case pb::Envelope::kPutCommit:
      return HandlePutCommit(in, from, req.put_commit());
    case pb::Envelope::kGetVersion:
      return HandleGetVersion(in, from, req.get_version());
    case pb::Envelope::kGetChunk:
      return HandleGetChunk(in, from, req.get_chunk());
    case pb::Envelope::kListObjects:
      return HandleListObjects(in, from, req.list_objects());
    case pb::Envelope::kGetPlacement:
      return HandleGetPlacement(in, from, req.get_placement());
    case pb::Envelope::kStoreChunk:
      return HandleStoreChunk(in, from, req.store_chunk());
    case pb::Envelope::kCommitVersion:
      return HandleCommitVersion(in, from, req.commit_version());
    case pb::Envelope::kFetchVersion:
      return HandleFetchVersion(in, from, req.fetch_version());
    case pb::Envelope::kFetchChunk:
      return HandleFetchChunk(in, from, req.fetch_chunk());
    case pb::Envelope::kFinalizeVersion:
      return HandleFinalizeVersion(in, from, req.finalize_version());
    case pb::Envelope::kAcquireLock:
      return HandleAcquireLock(in, from, req.acquire_lock());
    case pb::Envelope::kRenewLock:
      return HandleRenewLock(in, from, req.renew_lock());
    case pb::Envelope::kReleaseLock:
      return HandleReleaseLock(in, from, req.release_lock());
    case pb::Envelope::kLockSync:
      return HandleLockSync(in, from, req.lock_sync());
    case pb::Envelope::kFetchLocks:
      return HandleFetchLocks(in, from, req.fetch_locks());
    case pb::Envelope::kGatewayHeartbeat:
      return HandleGatewayHeartbeat(in, from, req.gateway_heartbeat());
    case pb::Envelope::kGatewayInventory:
      return HandleGatewayInventory(in, from, req.gateway_inventory());
    case pb::Envelope::kFragmentsBad:
      return HandleFragmentsBad(in, from, req.fragments_bad());
    case pb::Envelope::kHaveChunks:
      return HandleHaveChunks(in, from, req.have_chunks());
    case pb::Envelope::kPlacedChunks:
      return HandlePlacedChunks(in, from, req.placed_chunks());
    case pb::Envelope::kGetChunkFragments:
      return HandleGetChunkFragments(in, from, req.get_chunk_fragments());
    case pb::Envelope::kReportForgedFragments:
      return HandleReportForgedFragments(in, from, req.report_forged_fragments());
    case pb::Envelope::kPublishShareKey:
    case pb::Envelope::kGetShareKey:
    case pb::Envelope::kPutShare:
    case pb::Envelope::kListShares:
      return ForwardShareRequest(in, from, req);
    default:
      return ReplyError(in, ProtocolError("POP does not serve message type " +
                                          std::to_string(int(req.body_case()))));
  }
}

void PopCore::HandleGetChunk(const Incoming& in, const Peer& from, const pb::GetChunk& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.chunk_id().size() != kChunkIdBytes)
    st = InvalidArgument("chunk id must be 32 bytes");
  auto oid = Oid::Decode(m.oid());
  if (st.ok() && !oid.ok()) st = oid.status();
  if (!st.ok()) return ReplyError(in, st);
  if (m.lock_id()) TouchEntryLock(m.lock_id());
  ChunkKey key{m.subscriber(), ToBytes(m.chunk_id())};
  NoteObjectUse(ToBytes(m.oid()), m.subscriber(), {key.chunk_id});  // cold tier (pop_gc.cc)
  // Neither a copy, nor the fragments, nor a replica: the DC's backup store.
  ObtainChunk(oid.value(), key, true, [this, in, o = oid.value(), key](Result<Bytes> data) {
    if (data.ok() || data.status().code() == Code::kPermissionDenied)
      return ReplyChunk(in, std::move(data));
    FetchFromBackup(o, key, [this, in, why = data.status()](Result<Bytes> b) {
      if (b.ok()) return ReplyChunk(in, std::move(b));
      ReplyChunk(in, Status(why.code(), why.message() + "; DC backup: " + b.status().message()));
    });
  });
}

void PopCore::ReplyChunk(const Incoming& in, Result<Bytes> data) {
  if (!data.ok()) return ReplyError(in, data.status());
  pb::Envelope r;
  r.mutable_chunk_data()->set_data(ToStr(data.value()));
  Reply(in, std::move(r));
}

// A chunk, wherever it is: (1) this POP's copy; (2) if this POP is a replica,
// rebuilt from its region's fragments; (3) unless forwarding is off, from
// the object's other replicas — a replica that lacks a chunk (it caught up
// on versions while it was down) keeps the copy and places it.
void PopCore::ObtainChunk(const Oid& o, const ChunkKey& key, bool forward,
                          std::function<void(Result<Bytes>)> done) {
  auto local = store_->GetChunk(key);
  if (local.ok()) {
    cache_hits_total_++;
    return done(std::move(local));
  }
  cache_misses_total_++;
  auto from_replicas = [this, o, key, forward, done](Status why) {
    if (!forward) return done(why);
    pb::Envelope env;
    auto* fc = env.mutable_fetch_chunk();
    fc->set_subscriber(key.subscriber);
    fc->set_oid(ToStr(o.Encode()));
    fc->set_chunk_id(ToStr(key.chunk_id));
    fc->set_no_forward(true);
    CallReplicas(o, env, [this, o, key, done](Result<pb::Envelope> r) {
      if (!r.ok()) return done(r.status());
      Bytes data = ToBytes(r->chunk_data().data());
      bool replica = IsReplica(o);
      // An entry POP without a cache (cache_bytes_max 0) keeps no copy: see
      // ReadChunkFromFragments. A replica keeps it and places it.
      if ((replica || p_.cache_bytes_max > 0) &&
          store_->PutChunk(key, data, replica ? ChunkState::kStaged : ChunkState::kCached).ok()) {
        if (replica) {
          pb::VersionInfo one;
          one.set_subscriber(key.subscriber);
          one.add_chunk_ids(ToStr(key.chunk_id));
          StoreReplicaChunks(one);
        }
        EvictIfNeeded();
      }
      done(std::move(data));
    });
  };
  if (IsReplica(o) && int(store_->Fragments(key).size()) >= p_.k) {
    return ReadChunkFromFragments(key, [from_replicas, done](Result<Bytes> r) {
      if (r.ok()) return done(std::move(r));
      from_replicas(r.status());
    });
  }
  from_replicas(Unavailable("chunk " + ToHex(key.chunk_id).substr(0, 12) + " is not held here"));
}

// Tries the object's other replicas in ReplicaOrder until one answers; a
// kNotFound answer is final (the replica is authoritative), anything else
// moves on to the next replica.
void PopCore::CallReplicas(const Oid& oid, pb::Envelope req, ReplyCont done) {
  auto order = std::make_shared<std::vector<uint32_t>>(ReplicaOrder(oid));
  order->erase(std::remove(order->begin(), order->end(), p_.pop_id), order->end());
  CallReplicaAt(order, 0, std::move(req),
                Unavailable("no replica of " + oid.Hex() + " is reachable"), std::move(done));
}

void PopCore::CallReplicaAt(std::shared_ptr<std::vector<uint32_t>> order, size_t i,
                            pb::Envelope req, Status last, ReplyCont done) {
  if (i >= order->size()) return done(last);
  uint32_t pop = (*order)[i];
  Call(ReplicaDest(pop), req, [this, order, i, req, done](Result<pb::Envelope> r) {
    if (r.ok() || r.status().code() == Code::kNotFound ||
        r.status().code() == Code::kPermissionDenied)
      return done(std::move(r));
    CallReplicaAt(order, i + 1, req, r.status(), done);
  });
}

void PopCore::HandleFetchChunk(const Incoming& in, const Peer& from, const pb::FetchChunk& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "FetchChunk is for POPs only"));
  auto oid = Oid::Decode(m.oid());
  if (!oid.ok()) return ReplyError(in, oid.status());
  NoteObjectUse(ToBytes(m.oid()), m.subscriber(),
                {ToBytes(m.chunk_id())});  // cold tier (pop_gc.cc)
  ObtainChunk(oid.value(), ChunkKey{m.subscriber(), ToBytes(m.chunk_id())}, !m.no_forward(),
              [this, in](Result<Bytes> data) { ReplyChunk(in, std::move(data)); });
}

// Asks every gateway recorded as holding a fragment of the chunk, in
// parallel (striping aggregates their uplinks), and decodes from whatever
// arrives intact: fragments failing their check count as erasures. The
// decode cross-checks the fragments beyond k against each other
// (DecodeChunkChecked): a fragment that passes its own check but is located
// as forged is marked bad on the gateway that sent it (so it is re-placed)
// and counted in fragments_forged_total.
void PopCore::ReadChunkFromFragments(const ChunkKey& key, std::function<void(Result<Bytes>)> done,
                                     bool background) {
  std::vector<FragmentLoc> locs = store_->Fragments(key);
  if (int(locs.size()) < p_.k)
    return done(Unavailable("chunk " + ToHex(key.chunk_id).substr(0, 12) + " has only " +
                            std::to_string(locs.size()) + " fragments recorded"));
  struct Gather {
    size_t outstanding = 0;
    std::vector<Bytes> blobs;
    std::map<uint32_t, std::vector<uint32_t>> senders;  // index -> gateways
    std::vector<FragmentLoc> from;                      // where blobs[i] came from
  };
  auto g = std::make_shared<Gather>();
  auto finish = [this, key, g, done, background]() {
    if (int(g->blobs.size()) < p_.k)
      return done(Unavailable("only " + std::to_string(g->blobs.size()) + " of " +
                              std::to_string(p_.k) + " needed fragments of chunk " +
                              ToHex(key.chunk_id).substr(0, 12) + " reachable"));
    auto hdr = ParseFragmentHeader(g->blobs[0].data(), g->blobs[0].size());
    if (!hdr.ok()) return done(hdr.status());
    auto result = std::make_shared<Result<CheckedChunk>>(Internal("decode did not run"));
    auto bad = std::make_shared<std::vector<size_t>>();  // indexes into g->blobs
    int k = p_.k, m = p_.m;
    size_t chunk_len = hdr->chunk_len;
    Bytes chunk_id = key.chunk_id;
    // The payload checks run here, on a worker, not on the loop (issue 6:
    // the loop's CPU is what a repair waits for on a busy box).
    RunJob(
        [g, result, bad, chunk_id, k, m, chunk_len] {
          *result = DecodeChunkChecked(chunk_id, g->blobs, k, m, chunk_len);
          // Exactly k blobs decoded: every one was good. Otherwise name the ones
          // failing their own checks (the decode skips them as erasures).
          if (result->ok() && g->blobs.size() == size_t(k)) return;
          for (size_t i = 0; i < g->blobs.size(); i++)
            if (!ParseFragment(g->blobs[i].data(), g->blobs[i].size()).ok()) bad->push_back(i);
        },
        [this, key, g, result, bad, done, background] {
          for (size_t i : *bad) MarkBad(g->from[i].gateway_id, key, g->from[i].index);
          if (result->ok()) {
            for (int idx : (*result)->forged) {
              for (uint32_t gw : g->senders[uint32_t(idx)]) {
                fragments_forged_total_++;
                MS_WARN("pop", "forged fragment located by redundancy",
                        "gateway=" + std::to_string(gw) + " chunk=" +
                            ToHex(key.chunk_id).substr(0, 12) + " index=" + std::to_string(idx));
                MarkBad(gw, key, uint32_t(idx));
              }
            }
            Bytes data = std::move((*result)->chunk);
            // A read's chunk is cached; a repair's is not (issue 6): it would
            // cost the loop a durable write and, with little cache, an
            // eviction per chunk, serialising the repair behind fsyncs.
            // With no cache (cache_bytes_max 0) nothing is written: the copy
            // would cost a durable write on the loop and be evicted at once.
            if (!background && p_.cache_bytes_max > 0 &&
                store_->PutChunk(key, data, ChunkState::kCached).ok())
              EvictIfNeeded();
            return done(std::move(data));
          }
          done(result->status());
        });
  };
  for (auto& loc : locs) {
    if (!IsGatewayConnected(loc.gateway_id)) continue;
    if (bad_.count({key.chunk_id, loc.index, loc.gateway_id})) continue;
    g->outstanding++;
    pb::Envelope req;
    req.mutable_fetch_fragment()->set_chunk_id(ToStr(key.chunk_id));
    req.mutable_fetch_fragment()->set_index(loc.index);
    req.mutable_fetch_fragment()->set_background(background);
    Call(
        Dest{Dest::kGateway, loc.gateway_id}, req,
        [this, g, finish, key, loc](Result<pb::Envelope> r) {
          if (!r.ok() &&
              (r.status().code() == Code::kCorrupt || r.status().code() == Code::kNotFound))
            MarkBad(loc.gateway_id, key, loc.index);  // the gateway lost or refuses it
          if (r.ok()) {
            Bytes blob = ToBytes(r->fragment_data().fragment());
            // A fragment that is not the one asked for is an erasure here and
            // is rebuilt (issue 6: detected on read); its payload check runs
            // with the decode, off the loop.
            auto hdr = ParseFragmentHeader(blob.data(), blob.size());
            if (hdr.ok() && hdr->index == loc.index && hdr->chunk_id == key.chunk_id) {
              g->blobs.push_back(std::move(blob));
              g->senders[loc.index].push_back(loc.gateway_id);
              g->from.push_back(loc);
            } else {
              MarkBad(loc.gateway_id, key, loc.index);
            }
          }
          if (--g->outstanding == 0) finish();
        },
        p_.fragment_timeout_ms);
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
      return ReplyError(in,
                        Status(Code::kPermissionDenied, "object belongs to another subscriber"));
    for (auto& id : info->chunk_ids()) {
      ChunkKey key{info->subscriber(), ToBytes(id)};
      mine.set_chunks_total(mine.chunks_total() + 1);
      auto ci = store_->GetChunkInfo(key);
      if (ci.ok() && ci->state == ChunkState::kPlaced)
        mine.set_chunks_placed(mine.chunks_placed() + 1);
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
  // The DC places no fragments (a DC-tier object has none).
  for (uint32_t p : {oid->primary_pop, oid->backup_pop})
    if (p != p_.pop_id && p != kDcReplica && PopUp(p) &&
        std::find(others.begin(), others.end(), p) == others.end())
      others.push_back(p);
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
  if (sweeping_.count(key)) return;  // FinishStagedSweep enqueues it again
  if (queued_or_placing_.insert(key).second) place_queue_.push_back(key);
}

void PopCore::PumpPlacement() {
  while (!place_queue_.empty() && placing_.size() < p_.placements_in_flight_max) {
    ChunkKey key = place_queue_.front();
    // Resumed as gateways acknowledge fragments (in order: the queue's head
    // waits, nothing overtakes it).
    if (PlacementWaitsForRoom(key)) return;
    place_queue_.pop_front();
    placing_.insert(key);
    PlaceChunk(key);
  }
}

uint64_t PopCore::PlacementFragmentBytes(const ChunkKey& key) {
  auto info = store_->GetChunkInfo(key);
  return (info.ok() ? info->size_bytes : 0) / uint64_t(p_.k) + 128;
}

void PopCore::ReleasePlacementBytes(uint32_t gateway_id, uint64_t bytes) {
  auto it = placing_bytes_to_.find(gateway_id);
  MS_ASSERT(it != placing_bytes_to_.end() && it->second >= bytes);
  if ((it->second -= bytes) == 0) placing_bytes_to_.erase(it);
}

std::set<uint32_t> PopCore::GatewaysWithoutPlacementRoom(uint64_t fragment_bytes) const {
  std::set<uint32_t> full;
  if (p_.placement_bytes_per_gateway_max == 0) return full;
  for (auto& [gw, bytes] : placing_bytes_to_)
    if (bytes > 0 && bytes + fragment_bytes > p_.placement_bytes_per_gateway_max) full.insert(gw);
  return full;
}

bool PopCore::PlacementWaitsForRoom(const ChunkKey& key) {
  std::set<uint32_t> full = GatewaysWithoutPlacementRoom(PlacementFragmentBytes(key));
  if (full.empty()) return false;
  // A retry needs only its missing fragments, on gateways holding none of
  // the chunk (PlaceChunk); a first placement all k+m.
  const size_t n = UnusableFragments(key, /*require_live=*/true).size();
  if (n == 0) return false;
  std::set<uint32_t> holders;
  for (auto& loc : store_->Fragments(key)) holders.insert(loc.gateway_id);
  size_t connected = 0, with_room = 0;
  for (auto& [id, gw] : gateways_) {
    if (!gw.connected || holders.count(id)) continue;
    connected++;
    if (!full.count(id)) with_room++;
  }
  // Too few gateways even counting the full ones: PlaceChunk reports it.
  return with_room < n && connected >= n;
}

// A retry (an earlier attempt stored some fragments, then failed) sends
// only the fragments not recorded on a live, usable gateway, to gateways
// holding no fragment of the chunk: resending all k+m moved every record
// and left the first attempt's copies on their gateways, referenced by
// nothing. The whole chunk is still encoded (any fragment needs it).
void PopCore::PlaceChunk(const ChunkKey& key) {
  uint64_t frag_bytes = PlacementFragmentBytes(key);
  std::vector<uint32_t> missing = UnusableFragments(key, /*require_live=*/true);
  if (missing.empty()) return FinishPlacement(key, true);  // stored; only the state was left
  std::map<uint32_t, uint32_t> old_at;  // index -> gateway recorded before
  std::vector<uint32_t> targets =
      PickFragmentTargets(key, missing, GatewaysWithoutPlacementRoom(frag_bytes), frag_bytes, &old_at);
  if (targets.size() < missing.size()) {
    if (!placement_blocked_)
      MS_WARN("pop", "not enough live gateways to place chunks; will retry",
              "live=" + std::to_string(targets.size()) +
                  " needed=" + std::to_string(missing.size()));
    placement_blocked_ = true;
    return FinishPlacement(key, false);
  }
  placement_blocked_ = false;
  // The fragments' bytes count against each gateway's budget from now (the
  // encode runs first), until each is acknowledged or fails.
  for (uint32_t gw : targets) placing_bytes_to_[gw] += frag_bytes;
  auto data = store_->GetChunk(key);
  if (!data.ok()) {
    for (uint32_t gw : targets) ReleasePlacementBytes(gw, frag_bytes);
    MS_ERROR("pop", "replica chunk unreadable",
             "chunk=" + ToHex(key.chunk_id).substr(0, 12) + " error=\"" + data.status().ToString() +
                 "\"");
    return FinishPlacement(key, false);
  }
  auto blobs = std::make_shared<Result<std::vector<Bytes>>>(Internal("encode did not run"));
  auto chunk = std::make_shared<Bytes>(std::move(data.value()));
  int k = p_.k, m = p_.m;
  Bytes chunk_id = key.chunk_id;
  RunJob(
      [blobs, chunk, chunk_id, k, m] {
        *blobs = EncodeChunkToFragments(chunk_id, chunk->data(), chunk->size(), k, m);
      },
      [this, key, blobs, missing, targets, old_at, frag_bytes] {
        if (!blobs->ok()) {
          for (uint32_t gw : targets) ReleasePlacementBytes(gw, frag_bytes);
          MS_ERROR("pop", "erasure encode failed", "error=\"" + blobs->status().ToString() + "\"");
          return FinishPlacement(key, false);
        }
        auto left = std::make_shared<int>(int(targets.size()));
        auto all_ok = std::make_shared<bool>(true);
        for (size_t j = 0; j < targets.size(); j++) {
          uint32_t idx = missing[j], gw = targets[j];
          std::optional<uint32_t> old;
          if (auto it = old_at.find(idx); it != old_at.end()) old = it->second;
          pb::Envelope req;
          req.mutable_store_fragment()->set_fragment(ToStr(blobs->value()[idx]));
          Call(
              Dest{Dest::kGateway, gw}, req,
              [this, key, gw, idx, old, left, all_ok, frag_bytes](Result<pb::Envelope> r) {
                ReleasePlacementBytes(gw, frag_bytes);
                if (r.ok()) {
                  if (!RecordStoredFragment(key, idx, gw, old).ok()) *all_ok = false;
                } else {
                  *all_ok = false;
                  NoteMaybeStored(gw, key, idx);
                  MS_WARN(
                      "pop", "fragment store failed",
                      "gateway=" + std::to_string(gw) + " error=\"" + r.status().ToString() + "\"");
                }
                if (--*left == 0) return FinishPlacement(key, *all_ok);
                PumpPlacement();  // room at this gateway for the queue's head
              },
              p_.fragment_timeout_ms);
        }
      });
}

void PopCore::FinishPlacement(const ChunkKey& key, bool ok) {
  placing_.erase(key);
  queued_or_placing_.erase(key);
  auto info = store_->GetChunkInfo(key);
  bool staged = info.ok() && info->state == ChunkState::kStaged;
  if (ok && staged) {
    chunks_placed_before_commit_total_++;  // stays staged: its commit marks it placed
  } else if (ok) {
    if (store_->SetChunkState(key, ChunkState::kPlaced).ok()) EvictIfNeeded();
  }
  // Failed chunks stay in state kReplica; OnTick re-enqueues them and the
  // retry sends only what is missing (PlaceChunk). A staged one is placed
  // at its commit (pop_write.cc, StoreReplicaChunks).
  PumpPlacement();
}

void PopCore::EvictIfNeeded() {
  uint64_t held = store_->CachedBytes();
  if (held <= p_.cache_bytes_max) return;
  for (auto& [key, size] : store_->EvictionCandidates(256 + pinned_.size())) {
    if (held <= p_.cache_bytes_max) break;
    if (pinned_.count(key) || upload_pins_.count(key) || repair_.Contains(key)) continue;
    if (store_->DropChunkData(key).ok()) held -= std::min(held, size);
  }
}

}  // namespace mistore
