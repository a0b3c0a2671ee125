// PopCore, write path (paper, figs. 5–9): the entry POP takes the object's
// write lock at its primary, moves the chunks there, and asks the primary to
// commit; the primary checks the lock's fencing token, prepares the next
// version, has the backup prepare it durably, commits it, tells the backup,
// and only then answers. See pop_core.h for the shape of the state machine.
#include <algorithm>

#include "pop-server/pop_core.h"
#include "shared/wire/envelope.h"
#include "shared/core/log.h"

namespace mistore {

namespace {
constexpr size_t kChunkIdBytes = 32;
constexpr size_t kNameKeyBytes = 32;
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
std::string Short(const std::string& id) { return ToHex(id).substr(0, 12); }
}  // namespace

void PopCore::HandlePutCommit(const Incoming& in, const Peer& from, const pb::PutCommit& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.name_key().size() != kNameKeyBytes) st = InvalidArgument("name key must be 32 bytes");
  if (st.ok() && size_t(m.chunk_ids_size()) > p_.chunks_per_version_max)
    st = ResourceExhausted("too many chunks in one version");
  if (st.ok() && m.manifest_sealed().size() > p_.manifest_bytes_max)
    st = ResourceExhausted("manifest too large");
  if (st.ok() && m.write_id().size() > 64) st = InvalidArgument("write id too long");
  if (!st.ok()) return ReplyError(in, st);
  uint32_t gateway = from.role == pb::ROLE_GATEWAY ? from.node_id : m.gateway_id();
  pb::PutCommit commit = m;
  commit.set_gateway_id(gateway);
  // A retry of a write done or running here (issue 6, held_results.h):
  // answered before its chunks are looked for (they may be evicted since).
  if (AnswerOrJoinRetry(in, commit)) return;
  for (int i = 0; st.ok() && i < m.chunk_ids_size(); i++) {
    ChunkKey key{m.subscriber(), ToBytes(m.chunk_ids(i))};
    auto info = store_->GetChunkInfo(key);
    if (!info.ok() || !info->has_data)
      st = NotFound("chunk " + Short(m.chunk_ids(i)) + " was not uploaded before commit");
  }
  if (!st.ok()) return FinishCommit(in, commit, st);

  const uint64_t commit_start_ms = now_ms_;
  ResolveOidForWrite(commit, [this, in, commit, commit_start_ms](Result<Oid> oid) {
    if (!oid.ok()) return FinishCommit(in, commit, oid.status());
    Oid o = oid.value();
    if (commit.dc_tier() && !IsDcTier(o))
      return FinishCommit(in, commit,
                          Status(Code::kInvalidArgument,
                                 "this name is held by POPs " + std::to_string(o.primary_pop) +
                                     " and " + std::to_string(o.backup_pop) +
                                     ", not the DC tier: an object's replicas are fixed when it "
                                     "is created; write it with --tier pop or under another name"));
    pb::VersionInfo info;
    info.set_oid(ToStr(o.Encode()));
    info.set_size_bytes(commit.size_bytes());
    info.set_manifest_sealed(commit.manifest_sealed());
    *info.mutable_chunk_ids() = commit.chunk_ids();
    info.set_name_sealed(commit.name_sealed());
    info.set_name_key(commit.name_key());
    info.set_subscriber(commit.subscriber());
    info.set_write_id(commit.write_id());
    auto finish = [this, in, o, commit, commit_start_ms](Result<uint64_t> v) {
      for (auto& id : commit.chunk_ids()) upload_pins_.erase(ChunkKey{commit.subscriber(), ToBytes(id)});
      if (!v.ok()) return FinishCommit(in, commit, v.status());
      MS_INFO("pop", "write committed",
              "oid=" + o.Hex() + " version=" + std::to_string(v.value()) +
                  " chunks=" + std::to_string(commit.chunk_ids_size()) +
                  " ms=" + std::to_string(now_ms_ - commit_start_ms));
      if (o.primary_pop != p_.pop_id && o.backup_pop != p_.pop_id) {
        // Entry POP only: the uploaded chunks stay as cache, evictable once
        // both replicas' regions have placed them (issue 6).
        WaitForPlacementBy(o, commit.subscriber(),
                           {commit.chunk_ids().begin(), commit.chunk_ids().end()});
        for (auto& id : commit.chunk_ids()) {
          ChunkKey key{commit.subscriber(), ToBytes(id)};
          auto ci = store_->GetChunkInfo(key);
          if (ci.ok() && ci->state == ChunkState::kStaged &&
              store_->SetChunkState(key, ChunkState::kCached).ok())
            ChunkCommitted(key);  // no longer timed (pop_place_early.cc)
        }
        EvictIfNeeded();
      }
      pb::PutReply pr;
      pr.set_oid(ToStr(o.Encode()));
      pr.set_version(v.value());
      pr.set_primary_pop(o.primary_pop);
      pr.set_backup_pop(o.backup_pop);
      FinishCommit(in, commit, std::move(pr));
    };
    WriteWithLock(o, info, finish);
  });
}

// The entry POP holds the object's write lock (renewing its lease on ticks)
// from before the chunks move until the primary answers the commit, and
// releases it whatever happens: a client that vanishes mid-write leaves no
// half version and no lock behind.
void PopCore::WriteWithLock(const Oid& o, pb::VersionInfo info,
                            std::function<void(Result<uint64_t>)> done) {
  AcquireLockAt(o, LockType::kWrite, [this, o, info, done](Result<pb::LockGrantMsg> g,
                                                           uint32_t holder) {
    if (!g.ok()) return done(g.status());
    uint64_t lock_id = g->lock_id(), token = g->token();
    TrackEntryLock(o, holder, lock_id, LockType::kWrite, g->lease_ms());
    auto release_then = [this, o, holder, lock_id, done](Result<uint64_t> v) {
      UntrackEntryLock(lock_id);
      ReleaseLockAt(o, holder, lock_id);
      done(std::move(v));
    };
    CommitUnderLock(o, info, lock_id, token, 0, release_then);
  });
}

// The commit goes to the acting primary as the entry POP sees it when it
// sends: the POP that granted the lock, or the one that inherited it
// (takeover, give-back). If the acting primary moved while the commit was
// on its way, it is tried once more at the new one (idempotent by write id:
// a version the old one prepared is committed by the new one on takeover).
void PopCore::CommitUnderLock(const Oid& o, const pb::VersionInfo& info, uint64_t lock_id,
                              uint64_t token, int attempt,
                              std::function<void(Result<uint64_t>)> done) {
  uint32_t target = ActingPrimary(o);
  if (target == kNoPop) return done(Unavailable("no replica of object " + o.Hex() + " is up"));
  auto then = [this, o, info, lock_id, token, attempt, target, done](Result<uint64_t> v) {
    uint32_t now_ap = ActingPrimary(o);
    if (!v.ok() && attempt == 0 && now_ap != target && now_ap != kNoPop)
      return CommitUnderLock(o, info, lock_id, token, 1, done);
    done(std::move(v));
  };
  if (target == p_.pop_id) return CommitAsPrimary(info, lock_id, token, then);
  std::vector<std::string> ids(info.chunk_ids().begin(), info.chunk_ids().end());
  // The chunks go to the acting backup at the same time (issue 11): the
  // primary's own push to it then finds them there (HaveChunks) instead of
  // sending them in a second pass after this one. Best effort: whatever did
  // not arrive the primary still sends, so a failure here changes nothing.
  // The DC's stand-in, acting backup while a POP is down, included.
  const uint32_t backup = ActingBackup(o);
  const bool prepush =
      backup != target && backup != p_.pop_id && backup != kNoPop && PopUp(backup);
  struct Join {
    int left = 0;
    Status primary;
  };
  auto join = std::make_shared<Join>();
  join->left = prepush ? 2 : 1;
  auto pushed = [this, join, target, info, lock_id, token, then](Status st) {
    if (!st.ok()) return then(st);
    pb::Envelope req;
    auto* cv = req.mutable_commit_version();
    *cv->mutable_info() = info;
    cv->set_lock_id(lock_id);
    cv->set_token(token);
    Call(
        ReplicaDest(target), req,
        [then](Result<pb::Envelope> r) {
          if (!r.ok()) return then(r.status());
          then(r->commit_reply().version());
        },
        CommitTimeoutMs(p_.call_timeout_ms, size_t(info.chunk_ids_size())));
  };
  auto arrived = [join, pushed](bool is_primary, Status st) {
    if (is_primary) join->primary = st;
    if (--join->left == 0) pushed(join->primary);
  };
  PushChunks(target, info.subscriber(), ids, [arrived](Status st) { arrived(true, st); });
  if (prepush)
    PushChunks(backup, info.subscriber(), ids, [arrived](Status) { arrived(false, Status::Ok()); });
}

// Primary: fencing check, then prepare -> backup prepares durably -> commit
// -> tell the backup -> answer. A version becomes visible (LatestVersion)
// at the primary only once the backup holds it; the backup answers reads of
// an object with a prepared version by deferring to the primary (see
// HandleFetchVersion), so atomic reads stay linearizable.
void PopCore::CommitAsPrimary(pb::VersionInfo info, uint64_t lock_id, uint64_t token,
                              std::function<void(Result<uint64_t>)> done) {
  auto oid = Oid::Decode(info.oid());
  if (!oid.ok()) return done(oid.status());
  // A primary that just took its role back learns the versions and the
  // locks (this writer's, granted by its stand-in) before it checks them.
  EnsureSynced(oid.value(), [this, info, lock_id, token, done](Status st) {
    if (!st.ok()) return done(st);
    CommitSynced(info, lock_id, token, done);
  });
}

void PopCore::CommitSynced(pb::VersionInfo info, uint64_t lock_id, uint64_t token,
                           std::function<void(Result<uint64_t>)> done) {
  Bytes oid_b = ToBytes(info.oid());
  auto oid = Oid::Decode(oid_b);
  if (!oid.ok()) return done(oid.status());
  if (ActingPrimary(oid.value()) != p_.pop_id)
    return done(Status(Code::kAborted, "not the acting primary of " + oid->Hex()));
  Status st = locks_.CheckWrite(oid_b, lock_id, token, now_ms_);
  if (!st.ok()) return done(st);
  uint64_t latest = store_->LatestVersion(oid_b);
  if (latest > 0 && !info.write_id().empty()) {
    auto prev = store_->GetVersion(oid_b, latest);
    if (prev.ok() && prev->write_id() == info.write_id()) return done(latest);  // a retry
  }
  if (uint64_t stale = store_->PreparedVersion(oid_b)) (void)store_->DropVersion(oid_b, stale);
  uint64_t v = latest + 1;
  info.set_version(v);
  info.set_prepared(true);
  info.set_served_by(0);
  st = store_->PutVersion(info);
  if (!st.ok()) return done(st);
  StoreReplicaChunks(info);
  uint32_t backup = ActingBackup(oid.value());
  if (backup == p_.pop_id) return CommitSoleReplica(oid_b, v, done);
  auto abort = [this, oid_b, v, backup, done](Status why) {
    (void)store_->DropVersion(oid_b, v);
    pb::Envelope fin;
    fin.mutable_finalize_version()->set_oid(ToStr(oid_b));
    fin.mutable_finalize_version()->set_version(v);
    fin.mutable_finalize_version()->set_commit(false);
    if (PopUp(backup)) Call(ReplicaDest(backup), fin, [](Result<pb::Envelope>) {});
    done(why);
  };
  if (!PopUp(backup)) return abort(Unavailable("backup POP " + std::to_string(backup) + " is down"));
  std::vector<std::string> ids(info.chunk_ids().begin(), info.chunk_ids().end());
  Oid o = oid.value();
  auto lock_held = [this, oid_b, lock_id, token] {
    return locks_.CheckWrite(oid_b, lock_id, token, now_ms_);
  };
  PushChunks(backup, info.subscriber(), ids,
             [this, o, backup, info, oid_b, v, abort, done, lock_held](Status st) {
    if (!st.ok()) return abort(st);
    // The lease may have run out during the push: see below (nothing dropped).
    if (Status held = lock_held(); !held.ok())
      return done(Status(Code::kAborted, "write lock lost during the push; retry: " + held.message()));
    pb::Envelope req;
    *req.mutable_commit_version()->mutable_info() = info;
    Call(ReplicaDest(backup), req, [this, o, backup, oid_b, v, abort, done, lock_held](Result<pb::Envelope> r) {
      if (!r.ok()) return abort(r.status());
      // Roles may have moved while the backup prepared (the real primary
      // came back): only the acting primary may commit.
      if (ActingPrimary(o) != p_.pop_id || ActingBackup(o) != backup)
        return abort(Status(Code::kAborted, "roles changed during the write; retry"));
      // The write lock must still be held (bug 12): its lease can run out
      // while the backup prepares, and the next writer then prepares its own
      // version v here and at the backup, in place of this one. Committing v
      // now would acknowledge the other write's version to this writer.
      // Nothing is dropped: what is prepared as v may be the other writer's,
      // and a v of this write left prepared is replaced by the next prepare.
      if (Status held = lock_held(); !held.ok())
        return done(Status(Code::kAborted,
                           "write lock lost while the backup prepared; retry: " + held.message()));
      Status st = store_->CommitPrepared(oid_b, v);
      if (!st.ok()) return abort(st);
      pb::Envelope fin;
      fin.mutable_finalize_version()->set_oid(ToStr(oid_b));
      fin.mutable_finalize_version()->set_version(v);
      fin.mutable_finalize_version()->set_commit(true);
      Call(ReplicaDest(backup), fin, [](Result<pb::Envelope>) {});
      ReportVersions();
      done(v);
    });
  });
}

// A DC-tier object at the DC (IsDcTier): the DC is its one replica (crash
// recovery on stable storage, design section 1), so the prepared version is
// committed with no backup round. A crash between the two steps leaves it
// prepared: the next commit drops it (CommitSynced), and its writer, never
// answered, retries under the same write id.
void PopCore::CommitSoleReplica(const Bytes& oid_b, uint64_t v,
                                std::function<void(Result<uint64_t>)> done) {
  if (Status st = store_->CommitPrepared(oid_b, v); !st.ok()) {
    (void)store_->DropVersion(oid_b, v);
    return done(st);
  }
  ReportVersions();
  done(v);
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
  auto reply_version = [this, in, info = m.info()](Result<uint64_t> v) {
    // The chunks pushed for this commit no longer need their pins: they are
    // now the version's (kReplica/kPlaced), or the commit failed.
    for (auto& id : info.chunk_ids()) upload_pins_.erase(ChunkKey{info.subscriber(), ToBytes(id)});
    if (!v.ok()) return ReplyError(in, v.status());
    pb::Envelope r;
    r.mutable_commit_reply()->set_version(v.value());
    Reply(in, std::move(r));
  };
  if (m.info().version() == 0) return CommitAsPrimary(m.info(), m.lock_id(), m.token(), reply_version);
  if (!IsReplica(oid.value()))
    return ReplyError(in, InvalidArgument("not a replica of " + oid->Hex()));
  // Backup: prepare durably (committed when the primary says so), after
  // catching up on what it missed while it was down.
  EnsureSynced(oid.value(), [this, info = m.info(), reply_version](Status st) {
    if (!st.ok()) return reply_version(st);
    st = store_->PutVersion(info);
    if (!st.ok()) return reply_version(st);
    StoreReplicaChunks(info);
    reply_version(info.version());
  });
}

void PopCore::HandleFinalizeVersion(const Incoming& in, const Peer& from,
                                    const pb::FinalizeVersion& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "FinalizeVersion is for POPs only"));
  Bytes oid = ToBytes(m.oid());
  Status st = m.commit() ? store_->CommitPrepared(oid, m.version()) : store_->DropVersion(oid, m.version());
  if (!st.ok()) return ReplyError(in, st);
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
}

// A chunk that was already held (placed, or cached) keeps its state when it
// is uploaded or pushed again, and could be evicted before the commit that
// needs it arrives: pin it until then (or upload_pin_ms).
void PopCore::PinUpload(const ChunkKey& key) {
  if (upload_pins_.size() >= p_.upload_pins_max) upload_pins_.erase(upload_pins_.begin());
  upload_pins_[key] = now_ms_ + p_.upload_pin_ms;
}

void PopCore::HandlePutChunk(const Incoming& in, const Peer& from, const pb::PutChunk& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.chunk_id().size() != kChunkIdBytes) st = InvalidArgument("chunk id must be 32 bytes");
  if (st.ok() && m.data().size() > p_.chunk_bytes_max)
    st = ResourceExhausted("chunk of " + std::to_string(m.data().size()) + " bytes exceeds " +
                           std::to_string(p_.chunk_bytes_max));
  ChunkKey key{m.subscriber(), ToBytes(m.chunk_id())};
  if (st.ok()) st = store_->PutChunk(key, ToBytes(m.data()), ChunkState::kStaged);
  if (st.ok()) PinUpload(key);
  if (!st.ok()) return ReplyError(in, st);
  NoteStaged(key);  // deleted if no commit comes (pop_place_early.cc)
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
  ForwardUploaded(key);  // on to the object's replicas, if planned (pop_forward.cc)
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
    if (m.dc_tier()) return ClaimNewOid(m, kDcReplica, kDcReplica, done);
    std::vector<uint32_t> candidates;
    if (!PopUp(p_.pop_id)) return done(Unavailable("this POP is not up in the cluster map yet"));
    for (auto& p : map_.pops())
      if (p.up() && p.pop_id() != p_.pop_id) candidates.push_back(p.pop_id());
    if (candidates.empty()) return done(Unavailable("no other POP is up to act as backup"));
    // The backup the upload's chunks were forwarded to, if any (pop_forward.cc).
    uint32_t backup = TakeProposedBackup(m.subscriber(), m.name_key());
    if (backup == kNoPop) backup = candidates[rng_() % candidates.size()];
    ClaimNewOid(m, p_.pop_id, backup, done);
  });
}

// Proposes (primary, backup, the creating gateway, its next creation
// counter) for a new name; the DC's catalog answers with the oid that won.
// This POP's counter makes the oid unique only with this POP in it: a
// DC-tier oid (0, 0, gateway, counter) takes a random counter instead, and
// the catalog refuses one already in use (kAborted): another is
// drawn, kDcTierClaimsMax times at most.
void PopCore::ClaimNewOid(const pb::PutCommit& m, uint32_t primary, uint32_t backup,
                          std::function<void(Result<Oid>)> done, int attempt) {
  Oid proposed;
  proposed.primary_pop = primary;
  proposed.backup_pop = backup;
  proposed.gateway = m.gateway_id();
  if (IsDcTier(proposed)) {
    proposed.counter = uint32_t(rng_());
  } else {
    auto counter = store_->NextCounter(m.gateway_id());
    if (!counter.ok()) return done(counter.status());
    proposed.counter = counter.value();
  }
  pb::Envelope claim;
  claim.mutable_claim_name()->set_subscriber(m.subscriber());
  claim.mutable_claim_name()->set_name_key(m.name_key());
  claim.mutable_claim_name()->set_proposed_oid(ToStr(proposed.Encode()));
  Call(Dest{Dest::kDc, 0}, claim,
       [this, m, primary, backup, done, attempt](Result<pb::Envelope> r) {
         if (!r.ok() && r.status().code() == Code::kAborted && attempt + 1 < kDcTierClaimsMax)
           return ClaimNewOid(m, primary, backup, done, attempt + 1);
         if (!r.ok()) return done(r.status());
         done(Oid::Decode(r->claim_name_reply().oid()));
       });
}

// Sends the chunks a remote replica needs. First it asks the replica which
// of them it holds already (HaveChunks, which also pins them there until the
// commit): a new version that shares most chunks with the previous one (a
// delta write) moves only the changed ones. The rest travel with up to
// push_chunks_in_flight_max StoreChunks outstanding, so the link's round
// trip and the receiver's fsync of one chunk overlap the transfer of the
// next (one at a time, a 100-chunk version paid ~100 round trips + fsyncs
// in series per pass). Memory: at most that many chunks read from the store
// per push. done runs once: Ok when every chunk is acknowledged, else the
// first failure (later replies are ignored). The durability rule is
// unchanged: StoreChunk is acknowledged only once the chunk is on stable
// storage, and the commit is sent only after every acknowledgement.
struct PopCore::PushState {
  uint32_t pop = 0;
  std::string subscriber;
  std::vector<std::string> ids;  // distinct, in version order
  size_t next = 0;               // next index of ids to send
  size_t in_flight = 0;
  size_t acked = 0;
  bool finished = false;
  uint64_t start_ms = 0;
  size_t skipped = 0;  // held by the replica already
  std::function<void(Status)> done;
};

void PopCore::PushChunks(uint32_t pop, const std::string& subscriber, std::vector<std::string> ids,
                         std::function<void(Status)> done) {
  // Chunks forwarded during the upload and still in flight are waited for,
  // so that the query below sees them arrived (pop_forward.cc).
  if (WaitForForwards(pop, subscriber, ids, [this, pop, subscriber, ids, done] {
        PushChunks(pop, subscriber, ids, done);
      }))
    return;
  // Pin the chunks so that eviction (after their placement) cannot drop
  // them before they reach the other replica.
  std::vector<ChunkKey> keys;
  std::vector<std::string> distinct;
  {
    std::set<std::string> seen;
    for (auto& id : ids)
      if (seen.insert(id).second) distinct.push_back(id);
  }
  for (auto& id : distinct) keys.push_back(ChunkKey{subscriber, ToBytes(id)});
  for (auto& k : keys) pinned_[k]++;
  auto state = std::make_shared<PushState>();
  state->pop = pop;
  state->subscriber = subscriber;
  state->start_ms = now_ms_;
  PushState* raw = state.get();  // the closure lives inside *state until it runs
  state->done = [this, keys, done, raw](Status st) {
    for (auto& k : keys)
      if (--pinned_[k] == 0) pinned_.erase(k);
    // Per-step timing of the write path (issue 11: where a write's time goes).
    MS_INFO("pop", "chunks pushed to replica",
            "pop=" + std::to_string(raw->pop) + " sent=" + std::to_string(raw->acked) +
                " skipped=" + std::to_string(raw->skipped) +
                " ms=" + std::to_string(now_ms_ - raw->start_ms) +
                (st.ok() ? std::string() : " error=\"" + st.ToString() + "\""));
    EvictIfNeeded();
    done(st);
  };
  if (distinct.empty()) {
    state->finished = true;
    return state->done(Status::Ok());
  }
  // The DC's stand-in answers the query too (PopCore::IsStandInMessage);
  // one that does not (an older DC) refuses it, and then all are pushed.
  if (distinct.size() > kHaveChunksIdsMax) {
    state->ids = std::move(distinct);
    return PumpPush(state);
  }
  pb::Envelope q;
  q.mutable_have_chunks()->set_subscriber(subscriber);
  for (auto& id : distinct) q.mutable_have_chunks()->add_chunk_ids(id);
  Call(ReplicaDest(pop), std::move(q),
       [this, state, distinct = std::move(distinct)](Result<pb::Envelope> r) mutable {
         std::set<std::string> present;
         // Unanswered or refused: push everything (correct, only slower).
         if (r.ok() && r->has_have_chunks_reply())
           present.insert(r->have_chunks_reply().present().begin(),
                          r->have_chunks_reply().present().end());
         for (auto& id : distinct)
           if (!present.count(id)) state->ids.push_back(std::move(id));
         state->skipped = distinct.size() - state->ids.size();
         chunks_push_skipped_total_ += state->skipped;
         PumpPush(state);
       });
}

void PopCore::PumpPush(std::shared_ptr<PushState> state) {
  if (state->finished) return;
  if (state->acked == state->ids.size()) {
    state->finished = true;
    return state->done(Status::Ok());
  }
  const size_t window = std::max<size_t>(1, p_.push_chunks_in_flight_max);
  while (state->next < state->ids.size() && state->in_flight < window) {
    const std::string& id = state->ids[state->next++];
    auto data = store_->GetChunk(ChunkKey{state->subscriber, ToBytes(id)});
    if (!data.ok()) {
      state->finished = true;
      return state->done(data.status());
    }
    pb::Envelope req;
    auto* sc = req.mutable_store_chunk();
    sc->set_subscriber(state->subscriber);
    sc->set_chunk_id(id);
    sc->set_data(ToStr(data.value()));
    state->in_flight++;
    chunks_pushed_total_++;
    Call(ReplicaDest(state->pop), std::move(req), [this, state](Result<pb::Envelope> r) {
      state->in_flight--;
      if (state->finished) return;
      if (!r.ok()) {
        state->finished = true;
        return state->done(r.status());
      }
      state->acked++;
      PumpPush(state);
    });
  }
}

void PopCore::HandleStoreChunk(const Incoming& in, const Peer& from, const pb::StoreChunk& m) {
  if (from.role != pb::ROLE_POP)
    return ReplyError(in, Status(Code::kPermissionDenied, "StoreChunk is for POPs only"));
  if (m.chunk_id().size() != kChunkIdBytes) return ReplyError(in, InvalidArgument("bad chunk id"));
  if (m.data().size() > p_.chunk_bytes_max) return ReplyError(in, ResourceExhausted("chunk too large"));
  ChunkKey key{m.subscriber(), ToBytes(m.chunk_id())};
  Status st = store_->PutChunk(key, ToBytes(m.data()), ChunkState::kStaged);
  if (!st.ok()) return ReplyError(in, st);
  PinUpload(key);  // the replica's commit comes next (regression: sim seed 48)
  NoteStaged(key);
  pb::Envelope r;
  r.mutable_empty();
  Reply(in, std::move(r));
  PlaceBeforeCommit(key);  // sent here as to a replica (pop_place_early.cc)
}

void PopCore::StoreReplicaChunks(const pb::VersionInfo& info) {
  if (!info.oid().empty()) {  // cold tier (pop_gc.cc): a commit is a use
    std::vector<Bytes> ids;
    for (auto& id : info.chunk_ids()) ids.push_back(ToBytes(id));
    NoteObjectUse(ToBytes(info.oid()), info.subscriber(), ids);
  }
  // Issue 6: the copy stays until the other replica's region placed it too.
  if (auto o = Oid::Decode(info.oid()); o.ok())
    WaitForPlacementBy(*o, info.subscriber(), {info.chunk_ids().begin(), info.chunk_ids().end()});
  for (auto& id : info.chunk_ids()) {
    ChunkKey key{info.subscriber(), ToBytes(id)};
    auto ci = store_->GetChunkInfo(key);
    if (ci.ok() && (ci->state == ChunkState::kStaged || ci->state == ChunkState::kCached))
      MakeReplicaChunk(key, ci->state);
  }
}

void PopCore::ReportVersions() {
  for (auto& info : store_->UnreportedVersions(64)) {
    auto oid = Oid::Decode(info.oid());
    auto key = std::make_pair(ToBytes(info.oid()), info.version());
    if (!oid.ok() || reporting_.count(key)) continue;
    // The DC's stand-in copies need no report (the primary reports); a
    // DC-tier object's versions are reported by the DC, its primary.
    if (p_.pop_id == kDcReplica && !IsDcTier(*oid)) {
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

}  // namespace mistore
