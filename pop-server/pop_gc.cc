// PopCore, garbage collection and cold tier (issue 7). Runs on the daemon's
// loop thread (or the simulator's), like the rest of PopCore; PopStore is
// called synchronously.
//
// GC. Retention at the DC collects versions and queues, in its catalog, one
// task per POP holding the object (dc-backend/catalog.h). This POP pulls its
// tasks every gc_poll_ms (GcFetch -> GcWork) and for each one:
//   1. drops the named version records (never the object's latest);
//   2. for each named chunk (the DC's refcount says no kept version uses
//      it): keeps it if a version record here still names it (the DC may
//      not have heard of a newer version yet) or it is busy (an upload's pin,
//      a push, a placement or a repair; the task is then retried later);
//      otherwise sends DeleteFragments to the gateways holding its fragments
//      (a gateway the failure detector declared lost is skipped: its
//      fragments are gone with it; one that is merely disconnected defers
//      the task), and once they acknowledged, checks again and deletes the
//      chunk record, payload and fragment records;
//   3. acknowledges the task with what it reclaimed (GcDone).
// A crash between any two steps repeats the task: every step is idempotent
// (dropping a missing version, chunk or fragment is a no-op).
//
// Cold tier (cold_after_ms > 0). Every read (GetChunk, FetchChunk) and every
// replica commit notes the object's use. An object unused for cold_after_ms
// loses this POP's copies of its chunks that are placed or merely cached
// (their fragments stay on the gateways, and at the DC's backup store when
// the volume's policy keeps one); the object's acting primary reports it cold
// to the DC. The next read rebuilds chunks from fragments as any cache miss
// does (caching them again), else a client read falls back to the DC's
// backup store; the object is reported warm again.
#include <algorithm>

#include "pop-server/pop_core.h"
#include "shared/core/log.h"
#include "shared/erasure/fragment.h"

namespace mistore {

namespace {
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }
constexpr uint64_t kColdSweepMs = 1000;  // least time between cold sweeps
}  // namespace

PopCore::GcStats PopCore::gc_stats() const {
  GcStats s = gc_;
  s.objects_tracked = cold_track_.size();
  s.objects_cold = cold_.size();
  return s;
}

void PopCore::TickGc() {
  if (p_.pop_id == kDcReplica) return;  // the DC's stand-in has no DC to ask
  PollGc();
  SweepCold();
  SaveColdTracking();
}

// ---------------------------------------------------------------------------
// GC

void PopCore::PollGc() {
  if (p_.gc_poll_ms == 0 || gc_in_flight_) return;
  if (gc_polled_ms_ && now_ms_ < gc_polled_ms_ + p_.gc_poll_ms) return;
  gc_polled_ms_ = std::max<uint64_t>(now_ms_, 1);
  gc_in_flight_ = true;
  pb::Envelope req;
  req.mutable_gc_fetch()->set_tasks_max(uint32_t(p_.gc_tasks_per_poll));
  Call(Dest{Dest::kDc, 0}, req, [this](Result<pb::Envelope> r) {
    if (!r.ok() || !r->has_gc_work() || r->gc_work().tasks().empty()) {
      gc_in_flight_ = false;
      return;
    }
    struct Round {
      std::vector<pb::GcTask> tasks;
      size_t next = 0;
      pb::Envelope done;
    };
    auto round = std::make_shared<Round>();
    round->tasks.assign(r->gc_work().tasks().begin(),
                        r->gc_work().tasks().begin() +
                            std::min<int>(r->gc_work().tasks_size(), int(p_.gc_tasks_per_poll)));
    round->done.mutable_gc_done();
    bool full = round->tasks.size() >= p_.gc_tasks_per_poll;
    // Tasks one after another (each may wait on gateways), then one GcDone.
    auto step = std::make_shared<std::function<void()>>();
    std::weak_ptr<std::function<void()>> weak = step;  // no cycle: callbacks hold it
    *step = [this, round, weak, full]() {
      if (round->next == round->tasks.size()) {
        if (round->done.gc_done().results().empty()) {
          gc_in_flight_ = false;
          return;
        }
        Call(Dest{Dest::kDc, 0}, round->done, [this, full](Result<pb::Envelope> r) {
          gc_in_flight_ = false;
          if (r.ok() && full) gc_polled_ms_ = 0;  // more may wait: ask again at once
        });
        return;
      }
      const pb::GcTask& t = round->tasks[round->next++];
      RunGcTask(t, [this, round, step = weak.lock()](bool done, pb::GcResult res) {
        if (done) {
          *round->done.mutable_gc_done()->add_results() = res;
          gc_.tasks_done_total++;
        }
        (*step)();
      });
    };
    (*step)();
  });
}

void PopCore::OnGcTask(uint64_t now_ms, const pb::GcTask& t,
                       std::function<void(bool, pb::GcResult)> finish) {
  now_ms_ = now_ms;
  RunGcTask(t, [this, finish](bool done, pb::GcResult res) {
    if (done) gc_.tasks_done_total++;
    finish(done, res);
  });
}

bool PopCore::LiveChunkIds(const std::string& subscriber, std::set<Bytes>* live) {
  auto versions = store_->SubscriberVersions(subscriber, p_.gc_versions_scan_max);
  if (versions.size() >= p_.gc_versions_scan_max) return false;
  for (auto& v : versions)
    for (auto& id : v.chunk_ids()) live->insert(B(id));
  return true;
}

bool PopCore::ChunkBusy(const ChunkKey& key) const {
  return upload_pins_.count(key) || pinned_.count(key) || queued_or_placing_.count(key) ||
         placing_.count(key) || repair_.Contains(key) || sweeping_.count(key);
}

void PopCore::RunGcTask(const pb::GcTask& t, std::function<void(bool, pb::GcResult)> finish) {
  auto res = std::make_shared<pb::GcResult>();
  res->set_task_id(t.task_id());
  Bytes oid = B(t.oid());
  // 1. version records (never the latest committed one).
  uint64_t latest = store_->LatestVersion(oid);
  for (uint64_t v : t.versions()) {
    if (v == latest) continue;
    auto have = store_->GetVersion(oid, v);
    if (!have.ok()) continue;  // not here, or already dropped
    if (!store_->DeleteVersion(oid, v).ok()) return finish(false, *res);
    version_cache_.erase({oid, v});
    res->set_versions_dropped(res->versions_dropped() + 1);
  }
  gc_.versions_dropped_total += res->versions_dropped();
  // 2. chunks no version here names and nothing is using.
  std::set<Bytes> live;
  if (!LiveChunkIds(t.subscriber(), &live)) {
    MS_WARN("pop", "gc: too many version records to tell live chunks; keeping them",
            "subscriber_versions_max=" + std::to_string(p_.gc_versions_scan_max));
    res->set_chunks_kept(uint64_t(t.chunk_ids_size()));
    return finish(true, *res);
  }
  bool deferred = false;
  std::vector<std::pair<ChunkKey, uint64_t>> drop;  // key, payload bytes held
  std::map<uint32_t, std::vector<std::pair<Bytes, uint32_t>>> deletes;
  for (const std::string& id : t.chunk_ids()) {
    ChunkKey key{t.subscriber(), B(id)};
    if (live.count(key.chunk_id)) {
      res->set_chunks_kept(res->chunks_kept() + 1);
      continue;
    }
    auto info = store_->GetChunkInfo(key);
    if (!info.ok()) continue;  // not here (or already dropped)
    if (ChunkBusy(key) || info->state == ChunkState::kStaged) {
      deferred = true;  // an upload or placement in progress: ask again later
      continue;
    }
    bool ok = true;
    std::vector<std::pair<uint32_t, uint32_t>> frags;  // gateway, index
    for (auto& loc : store_->Fragments(key)) {
      const GatewayRecord* g = members_.Find(loc.gateway_id);
      if (!IsGatewayConnected(loc.gateway_id)) {
        if (g && g->state == GwState::kLost) continue;  // its fragments are gone with it
        ok = false;  // back later: delete then
        break;
      }
      frags.push_back({loc.gateway_id, loc.index});
    }
    if (!ok) {
      deferred = true;
      continue;
    }
    for (auto& [gw, idx] : frags) deletes[gw].push_back({key.chunk_id, idx});
    res->set_fragment_bytes_deleted(
        res->fragment_bytes_deleted() +
        frags.size() * ((info->size_bytes + p_.k - 1) / p_.k + kFragmentHeaderSizeV2));
    drop.push_back({key, info->has_data ? info->size_bytes : 0});
  }
  if (deferred)
    MS_INFO("pop", "gc: task deferred (chunks in use or gateways away)",
            "task=" + std::to_string(t.task_id()));
  if (deletes.empty()) return FinishGcChunks(t, res, std::move(drop), !deferred, finish);
  // 3. fragments on the gateways, in parallel; then the records.
  struct Wait {
    size_t outstanding = 0;
    bool all_ok = true;
  };
  auto w = std::make_shared<Wait>();
  w->outstanding = deletes.size();
  for (auto& [gw, refs] : deletes) {
    pb::Envelope req;
    for (auto& [chunk, idx] : refs) {
      auto* f = req.mutable_delete_fragments()->add_fragments();
      f->set_chunk_id(S(chunk));
      f->set_index(idx);
    }
    size_t n = refs.size();
    Call(Dest{Dest::kGateway, gw}, req,
         [this, t, res, w, drop, deferred, finish, n, gw = gw](Result<pb::Envelope> r) {
           if (r.ok()) {
             res->set_fragments_deleted(res->fragments_deleted() + n);
             fragments_deleted_total_ += n;
             gc_.fragments_deleted_total += n;
             expected_.erase(gw);
           } else {
             w->all_ok = false;
           }
           if (--w->outstanding > 0) return;
           FinishGcChunks(t, res, drop, w->all_ok && !deferred, finish);
         });
  }
}

// The fragments are gone (or there were none): the chunks' records go too,
// unless something started using a chunk meanwhile (then it keeps its
// payload and is placed afresh).
void PopCore::FinishGcChunks(const pb::GcTask& t, std::shared_ptr<pb::GcResult> res,
                             std::vector<std::pair<ChunkKey, uint64_t>> chunks, bool all_deleted,
                             std::function<void(bool, pb::GcResult)> finish) {
  std::set<Bytes> live;
  bool known = LiveChunkIds(t.subscriber(), &live);
  for (auto& [key, bytes] : chunks) {
    auto info = store_->GetChunkInfo(key);
    if (!info.ok()) continue;
    if (!known || live.count(key.chunk_id) || ChunkBusy(key) || info->state == ChunkState::kStaged) {
      res->set_chunks_kept(res->chunks_kept() + 1);
      if (!all_deleted) continue;  // its fragments may still be there: records stay
      (void)store_->DropFragmentRecords(key);
      if (info->has_data && store_->SetChunkState(key, ChunkState::kReplica).ok())
        EnqueuePlacement(key);
      continue;
    }
    if (!all_deleted) continue;  // retried with the task
    if (!store_->DeleteChunk(key).ok()) {
      all_deleted = false;
      continue;
    }
    res->set_chunks_dropped(res->chunks_dropped() + 1);
    res->set_chunk_bytes_dropped(res->chunk_bytes_dropped() + bytes);
    gc_.chunks_dropped_total++;
    gc_.chunk_bytes_dropped_total += bytes;
  }
  if (all_deleted)
    MS_INFO("pop", "gc: task done",
            "task=" + std::to_string(t.task_id()) +
                " versions=" + std::to_string(res->versions_dropped()) +
                " chunks=" + std::to_string(res->chunks_dropped()) +
                " bytes=" + std::to_string(res->chunk_bytes_dropped()) +
                " fragments=" + std::to_string(res->fragments_deleted()) +
                " kept=" + std::to_string(res->chunks_kept()));
  finish(all_deleted, *res);
}

// ---------------------------------------------------------------------------
// Cold tier

void PopCore::NoteObjectUse(const Bytes& oid, const std::string& subscriber,
                            const std::vector<Bytes>& chunk_ids) {
  if (p_.cold_after_ms == 0) return;
  LoadColdTracking();
  if (cold_.erase(oid)) {
    gc_.objects_warmed_total++;
    ReportTemperature(oid, false);
  }
  auto it = cold_track_.find(oid);
  if (it == cold_track_.end()) {
    if (cold_track_.size() >= p_.cold_objects_max) return;  // bounded: not tracked
    it = cold_track_.emplace(oid, ColdTrack{0, subscriber, {}}).first;
  }
  it->second.used_ms = int64_t(now_ms_);
  it->second.dirty = true;  // written with the next batch (SaveColdTracking)
  for (auto& id : chunk_ids)
    if (it->second.chunk_ids.size() < p_.chunks_per_version_max) it->second.chunk_ids.insert(id);
}

void PopCore::SweepCold() {
  if (p_.cold_after_ms == 0) return;
  if (cold_swept_ms_ && now_ms_ < cold_swept_ms_ + kColdSweepMs) return;
  cold_swept_ms_ = std::max<uint64_t>(now_ms_, 1);
  LoadColdTracking();
  std::vector<PopStore::ObjectUse> went_cold;  // written at once, one batch
  for (auto it = cold_track_.begin(); it != cold_track_.end();) {
    if (int64_t(now_ms_) < it->second.used_ms + int64_t(p_.cold_after_ms)) {
      ++it;
      continue;
    }
    const Bytes& oid = it->first;
    // Chunks of the latest version held here are tracked too (a replica
    // may hold versions it committed before this process started).
    if (auto v = store_->GetVersion(oid, 0); v.ok())
      for (auto& id : v->chunk_ids()) it->second.chunk_ids.insert(B(id));
    bool all = true;
    size_t dropped = 0;
    for (auto& id : it->second.chunk_ids) {
      ChunkKey key{it->second.subscriber, id};
      auto info = store_->GetChunkInfo(key);
      if (!info.ok() || !info->has_data) continue;
      bool droppable = (info->state == ChunkState::kPlaced || info->state == ChunkState::kCached) &&
                       !ChunkBusy(key);
      if (droppable && store_->DropChunkData(key).ok()) {
        dropped++;
      } else {
        all = false;
      }
    }
    if (!all) {  // not yet placed everywhere: try again on a later sweep
      ++it;
      continue;
    }
    auto o = Oid::Decode(oid);
    MS_INFO("pop", "object cold: its chunks dropped from this POP",
            "oid=" + ToHex(oid) + " chunks=" + std::to_string(dropped));
    if (cold_.size() < p_.cold_objects_max) cold_.insert(oid);
    gc_.objects_cooled_total++;
    if (o.ok() && ActingPrimary(*o) == p_.pop_id) ReportTemperature(oid, true);
    went_cold.push_back(UseRecord(oid, it->second, true));
    it = cold_track_.erase(it);
  }
  if (went_cold.empty()) return;
  if (Status st = store_->SaveObjectUses(went_cold); !st.ok())
    MS_WARN("pop", "cannot record cold objects; a restart may keep them warm longer",
            "error=\"" + st.ToString() + "\"");
}

// ---- cold tracking in the store: survives a restart ----

PopStore::ObjectUse PopCore::UseRecord(const Bytes& oid, const ColdTrack& t, bool cold) const {
  PopStore::ObjectUse u;
  u.oid = oid;
  u.subscriber = t.subscriber;
  u.used_wall_ms = t.used_ms + p_.wall_clock_offset_ms;
  u.cold = cold;
  if (!cold)
    for (auto it = t.chunk_ids.begin();
         it != t.chunk_ids.end() && u.chunk_ids.size() < kColdChunkIdsSavedMax; ++it)
      u.chunk_ids.push_back(*it);
  return u;
}

void PopCore::LoadColdTracking() {
  if (cold_loaded_) return;
  cold_loaded_ = true;
  size_t loaded = 0;
  for (auto& u : store_->ObjectUses(p_.cold_objects_max)) {
    if (u.cold) {
      cold_.insert(u.oid);
      continue;
    }
    if (cold_track_.count(u.oid)) continue;  // used since start: newer
    // In this process's clock (negative: before it began); its age carries over.
    ColdTrack t{u.used_wall_ms - p_.wall_clock_offset_ms, u.subscriber,
                std::set<Bytes>(u.chunk_ids.begin(), u.chunk_ids.end()), false};
    cold_track_.emplace(u.oid, std::move(t));
    loaded++;
  }
  if (loaded || !cold_.empty())
    MS_INFO("pop", "cold tracking loaded",
            "objects=" + std::to_string(loaded) + " cold=" + std::to_string(cold_.size()));
}

void PopCore::FlushColdTracking(uint64_t now_ms) {
  now_ms_ = now_ms;
  cold_saved_ms_ = 0;  // not throttled
  SaveColdTracking();
}

void PopCore::SaveColdTracking() {
  if (p_.cold_after_ms == 0 || !cold_loaded_) return;
  if (cold_saved_ms_ && now_ms_ < cold_saved_ms_ + p_.cold_persist_ms) return;
  cold_saved_ms_ = std::max<uint64_t>(now_ms_, 1);
  std::vector<PopStore::ObjectUse> batch;
  for (auto& [oid, t] : cold_track_)
    if (t.dirty) batch.push_back(UseRecord(oid, t, false));
  if (batch.empty()) return;
  Status st = store_->SaveObjectUses(batch);
  if (!st.ok()) {
    MS_WARN("pop", "cannot record when objects were read; retried later",
            "error=\"" + st.ToString() + "\"");
    return;
  }
  for (auto& [oid, t] : cold_track_) t.dirty = false;
}

void PopCore::ReportTemperature(const Bytes& oid, bool cold) {
  pb::Envelope req;
  req.mutable_object_temperature()->set_oid(S(oid));
  req.mutable_object_temperature()->set_cold(cold);
  Call(Dest{Dest::kDc, 0}, req, [oid, cold](Result<pb::Envelope> r) {
    if (!r.ok())
      MS_WARN("pop", "cannot report an object's temperature to the DC",
              "oid=" + ToHex(oid) + " cold=" + (cold ? "1" : "0") + " error=\"" +
                  r.status().ToString() + "\"");
  });
}

void PopCore::FetchFromBackup(const Oid& o, const ChunkKey& key,
                              std::function<void(Result<Bytes>)> done) {
  pb::Envelope req;
  auto* f = req.mutable_fetch_backup_chunk();
  f->set_subscriber(key.subscriber);
  f->set_oid(S(o.Encode()));
  f->set_chunk_id(S(key.chunk_id));
  Call(Dest{Dest::kDc, 0}, req, [this, key, done](Result<pb::Envelope> r) {
    if (!r.ok()) return done(r.status());
    if (!r->has_chunk_data()) return done(ProtocolError("FetchBackupChunk: no chunk in the reply"));
    Bytes data = B(r->chunk_data().data());
    gc_.backup_reads_total++;
    if (p_.cache_bytes_max > 0 && store_->PutChunk(key, data, ChunkState::kCached).ok())
      EvictIfNeeded();
    done(std::move(data));
  });
}

}  // namespace mistore
