#include "dc-backend/dc_gc.h"

#include "shared/core/log.h"
#include "shared/core/oid.h"

namespace mistore {

namespace {
Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }
constexpr size_t kBackupTasksPerTick = 16;
}  // namespace

bool DcGc::Held(const std::string& key) {
  auto e = backups_->Exists(key);
  return e.ok() && *e;
}

DcGc::DcGc(Catalog* catalog, BackupStore* backups, DcGcParams params, CallPop call_pop)
    : catalog_(catalog), backups_(backups), p_(params), call_pop_(std::move(call_pop)) {
  if (auto s = catalog_->GetGcStats(); s.ok()) stats_ = *s;
}

Status DcGc::HandleGcFetch(uint32_t pop_id, const pb::GcFetch& m, pb::Envelope* reply) {
  if (pop_id == Catalog::kGcBackupStore) return InvalidArgument("POP id 0 is the DC's own");
  size_t n = std::min<size_t>(m.tasks_max() ? m.tasks_max() : 1, Catalog::kGcTasksMax);
  MS_ASSIGN_OR_RETURN(auto tasks, catalog_->GcTasks(pop_id, n));
  auto* w = reply->mutable_gc_work();
  for (auto& t : tasks) {
    auto* o = w->add_tasks();
    o->set_task_id(t.task_id);
    o->set_oid(S(t.oid));
    o->set_subscriber(t.subscriber);
    for (uint64_t v : t.versions) o->add_versions(v);
    for (auto& c : t.chunk_ids) o->add_chunk_ids(S(c));
  }
  return Status::Ok();
}

Status DcGc::HandleGcDone(uint32_t pop_id, const pb::GcDone& m, pb::Envelope* reply) {
  if (pop_id == Catalog::kGcBackupStore) return InvalidArgument("POP id 0 is the DC's own");
  if (size_t(m.results_size()) > Catalog::kGcTasksMax)
    return ResourceExhausted("GcDone with more than " + std::to_string(Catalog::kGcTasksMax) +
                             " results");
  for (auto& r : m.results()) {
    Catalog::GcReclaimed rec{r.versions_dropped(), r.chunks_dropped(), r.chunk_bytes_dropped(),
                             r.fragments_deleted(), r.fragment_bytes_deleted()};
    MS_ASSIGN_OR_RETURN(bool counted, catalog_->GcAck(r.task_id(), pop_id, rec));
    if (counted)
      MS_INFO("dc", "gc task acknowledged",
              "pop=" + std::to_string(pop_id) + " task=" + std::to_string(r.task_id()) +
                  " chunk_bytes=" + std::to_string(r.chunk_bytes_dropped()) +
                  " fragments=" + std::to_string(r.fragments_deleted()));
  }
  if (auto s = catalog_->GetGcStats(); s.ok()) stats_ = *s;
  reply->mutable_empty();
  return Status::Ok();
}

Status DcGc::HandleObjectTemperature(uint32_t pop_id, const pb::ObjectTemperature& m,
                                     int64_t now_ms, pb::Envelope* reply) {
  if (m.oid().size() != 16) return InvalidArgument("oid must be 16 bytes");
  MS_RETURN_IF_ERROR(catalog_->SetCold(B(m.oid()), m.cold(), now_ms));
  MS_INFO("dc", m.cold() ? "object cold" : "object warm again",
          "oid=" + ToHex(m.oid()) + " pop=" + std::to_string(pop_id));
  reply->mutable_empty();
  return Status::Ok();
}

Status DcGc::HandleFetchBackupChunk(const pb::FetchBackupChunk& m, pb::Envelope* reply) {
  MS_ASSIGN_OR_RETURN(Bytes data, backups_->Get(BackupChunkKey(m.subscriber(), B(m.chunk_id()))));
  backup_reads_total_++;
  reply->mutable_chunk_data()->set_data(S(data));
  return Status::Ok();
}

void DcGc::Tick(int64_t now_ms) {
  if (p_.retention_interval_ms &&
      (retention_ran_ms_ == 0 || now_ms >= retention_ran_ms_ + int64_t(p_.retention_interval_ms))) {
    retention_ran_ms_ = now_ms;
    // Only volumes with an explicitly set policy: one without would fall
    // under the default keep_last and lose history nobody chose to drop
    // (system_test_failover_writes / dc_catalog failed on that in CI).
    auto subs = catalog_->ListRetentionVolumes(p_.subscribers_max);
    if (subs.ok()) {
      for (auto& volume : *subs) {
        auto c = catalog_->ApplyRetention(volume, now_ms, p_.retention_objects_max);
        if (!c.ok())
          MS_WARN("dc", "retention failed", "volume=" + volume + " error=\"" +
                                                 c.status().ToString() + "\"");
        else if (!c->empty())
          MS_INFO("dc", "retention collected versions",
                  "volume=" + volume + " objects=" + std::to_string(c->size()));
      }
    }
  }
  RunBackupStoreTasks();
  CopyNextBackup(now_ms);
  if (auto s = catalog_->GetGcStats(); s.ok()) stats_ = *s;
}

// ---- the backup store's own GC tasks ----

void DcGc::RemoveBackupCopy(const Bytes& oid, uint64_t version, Catalog::GcReclaimed* r) {
  std::string key = BackupVersionKey(oid, version);
  auto rec = backups_->Get(key);
  pb::VersionInfo info;
  bool have = rec.ok() && info.ParseFromArray(rec->data(), int(rec->size()));
  uint64_t before = backups_->used_bytes();
  if (!backups_->Delete(key).ok()) return;
  if (!catalog_->ForgetBackup(oid, version).ok()) return;
  if (have) {
    r->versions++;
    for (auto& id : info.chunk_ids()) {
      auto used = catalog_->BackupReferencesChunk(B(id));
      if (!used.ok() || *used) continue;
      std::string ck = BackupChunkKey(info.subscriber(), B(id));
      if (Held(ck) && backups_->Delete(ck).ok()) r->chunks++;
    }
  }
  r->chunk_bytes += before - std::min(before, backups_->used_bytes());
}

void DcGc::RunBackupStoreTasks() {
  auto tasks = catalog_->GcTasks(Catalog::kGcBackupStore, kBackupTasksPerTick);
  if (!tasks.ok()) return;
  for (auto& t : *tasks) {
    if (replica_gc_in_flight_.count(t.task_id)) continue;
    Catalog::GcReclaimed r;
    for (uint64_t v : t.versions) RemoveBackupCopy(t.oid, v, &r);
    // Freed chunks a collected version shared with a copy made under
    // another version (kAll) are checked again here.
    uint64_t before = backups_->used_bytes();
    for (auto& id : t.chunk_ids) {
      auto used = catalog_->BackupReferencesChunk(id);
      if (!used.ok() || *used) continue;
      std::string ck = BackupChunkKey(t.subscriber, id);
      if (Held(ck) && backups_->Delete(ck).ok()) r.chunks++;
    }
    r.chunk_bytes += before - std::min(before, backups_->used_bytes());
    if (!replica_gc_) {
      AckBackupStoreTask(t, r);
      continue;
    }
    // The stand-in replica's copies go too (issue 7: "old versions are
    // garbage-collected everywhere"); acknowledged when both are done.
    replica_gc_in_flight_.insert(t.task_id);
    replica_gc_(t, [this, t, r](bool done, Catalog::GcReclaimed s) {
      replica_gc_in_flight_.erase(t.task_id);
      if (!done) return;  // a chunk in use there: the task comes again
      Catalog::GcReclaimed sum = r;
      sum.versions += s.versions;
      sum.chunks += s.chunks;
      sum.chunk_bytes += s.chunk_bytes;
      AckBackupStoreTask(t, sum);
    });
  }
}

void DcGc::AckBackupStoreTask(const Catalog::GcTask& t, const Catalog::GcReclaimed& r) {
  auto acked = catalog_->GcAck(t.task_id, Catalog::kGcBackupStore, r);
  if (acked.ok() && *acked && (r.versions || r.chunks))
    MS_INFO("dc", "backup and stand-in copies collected",
            "oid=" + ToHex(t.oid) + " versions=" + std::to_string(r.versions) +
                " chunks=" + std::to_string(r.chunks) + " bytes=" + std::to_string(r.chunk_bytes));
}

// ---- copying versions into the backup store ----

void DcGc::CopyNextBackup(int64_t now_ms) {
  if (backup_in_flight_ || now_ms < backup_retry_at_ms_) return;
  auto pending = catalog_->PendingBackups(1);
  if (!pending.ok() || pending->empty()) return;
  Catalog::BackupItem item = (*pending)[0];
  auto o = Oid::Decode(item.oid);
  if (!o.ok()) {  // not a real oid: nothing to copy from
    (void)catalog_->ForgetBackup(item.oid, item.version);
    return;
  }
  backup_in_flight_ = true;
  auto sources = std::make_shared<std::vector<uint32_t>>();
  sources->push_back(o->primary_pop);
  if (o->backup_pop != o->primary_pop) sources->push_back(o->backup_pop);
  auto attempt = std::make_shared<std::function<void(size_t)>>();
  std::weak_ptr<std::function<void(size_t)>> weak = attempt;
  *attempt = [this, item, sources, weak, now_ms](size_t i) {
    auto self = weak.lock();
    if (i >= sources->size()) {
      backup_in_flight_ = false;
      backup_retry_at_ms_ = now_ms + int64_t(p_.backup_retry_ms);
      MS_WARN("dc", "backup copy failed; retrying later",
              "oid=" + ToHex(item.oid) + " version=" + std::to_string(item.version));
      return;
    }
    uint32_t pop = (*sources)[i];
    pb::Envelope req;
    req.mutable_fetch_version()->set_oid(S(item.oid));
    req.mutable_fetch_version()->set_version(item.version);
    req.mutable_fetch_version()->set_local_only(true);
    call_pop_(pop, req, p_.call_timeout_ms, [this, self, pop, i](Result<pb::Envelope> r) {
      if (!r.ok() || !r->has_version_info()) return (*self)(i + 1);
      auto info = std::make_shared<pb::VersionInfo>(r->version_info());
      CopyChunks(info, pop, 0, [this, self, info, i](Status st) {
        if (!st.ok()) return (*self)(i + 1);
        FinishBackup(*info);
        backup_in_flight_ = false;
      });
    });
  };
  (*attempt)(0);
}

void DcGc::CopyChunks(std::shared_ptr<pb::VersionInfo> info, uint32_t pop, size_t next,
                      std::function<void(Status)> done) {
  while (next < size_t(info->chunk_ids_size())) {
    std::string key = BackupChunkKey(info->subscriber(), B(info->chunk_ids(int(next))));
    if (!Held(key)) break;
    next++;  // content-addressed: already held
  }
  if (next == size_t(info->chunk_ids_size())) return done(Status::Ok());
  pb::Envelope req;
  auto* f = req.mutable_fetch_chunk();
  f->set_subscriber(info->subscriber());
  f->set_oid(info->oid());
  f->set_chunk_id(info->chunk_ids(int(next)));
  f->set_no_forward(false);  // the POP rebuilds from fragments or asks the other replica
  call_pop_(pop, req, p_.call_timeout_ms,
            [this, info, pop, next, done](Result<pb::Envelope> r) {
              if (!r.ok()) return done(r.status());
              if (!r->has_chunk_data()) return done(ProtocolError("FetchChunk: no chunk data"));
              Status st = backups_->Put(BackupChunkKey(info->subscriber(), B(info->chunk_ids(int(next)))),
                                        B(r->chunk_data().data()));
              if (!st.ok()) return done(st);
              CopyChunks(info, pop, next + 1, done);
            });
}

void DcGc::FinishBackup(const pb::VersionInfo& fetched) {
  pb::VersionInfo info = fetched;
  info.clear_lock_id();
  info.clear_served_by();
  Bytes oid = B(info.oid());
  std::string blob = info.SerializeAsString();
  Status st = backups_->Put(BackupVersionKey(oid, info.version()), B(blob));
  if (!st.ok()) {
    MS_WARN("dc", "backup copy not stored", "error=\"" + st.ToString() + "\"");
    return;
  }
  auto superseded = catalog_->BackupDone(oid, info.version());
  if (!superseded.ok()) return;
  backups_done_total_++;
  MS_INFO("dc", "version backed up",
          "oid=" + ToHex(oid) + " version=" + std::to_string(info.version()) +
              " chunks=" + std::to_string(info.chunk_ids_size()));
  Catalog::GcReclaimed r;
  for (uint64_t v : *superseded) RemoveBackupCopy(oid, v, &r);
}

}  // namespace mistore
