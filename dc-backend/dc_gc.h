// DcGc: the DC's side of garbage collection, backups and the cold tier
// (issue 7). It owns no sockets and reads no clock: the DC daemon
// (dc_main.cc) hands it the POPs' requests, ticks with the wall time, and a
// CallPop function through which it reaches a POP (as "POP 0", like the
// stand-in replica). Loop thread of mistore-dc only.
//
// What it does:
//   - answers GcFetch with the POP's pending GC tasks from the catalog queue
//     (catalog.h) and GcDone by acknowledging them (the space reclaimed is
//     added to the catalog's totals);
//   - runs the tasks addressed to the DC's backup store itself: deletes the
//     copies of collected versions and the chunk copies no other backed-up
//     kept version references; then hands the same task to the DC's
//     stand-in replica (set_replica_gc; standin.h), which drops the
//     versions and chunks it keeps for POPs that were down; the task is
//     acknowledged once both are done (a stand-in chunk in use: retried on
//     a later tick);
//   - copies versions the volume's backup policy wants (Catalog::
//     PendingBackups) from the object's primary (else its backup):
//     FetchVersion, then FetchChunk for each chunk the store lacks, then the
//     version record; one version at a time, retried on a later tick when a
//     POP fails; with policy "latest" the superseded copy is removed;
//   - applies the retention policy of every volume that has one explicitly
//     set (`mistore-dc retention set`) every retention_interval_ms; volumes
//     without a set policy are collected only by `mistore-dc retention apply`;
//   - records POPs' cold/warm reports (ObjectTemperature) in the catalog and
//     serves chunks from the backup store (FetchBackupChunk).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "dc-backend/backup_store.h"
#include "dc-backend/catalog.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

struct DcGcParams {
  uint64_t retention_interval_ms = 3600000;  // 0: only `mistore-dc retention apply`
  size_t retention_objects_max = 100000;      // objects per volume per sweep
  uint64_t backup_retry_ms = 5000;            // after a failed copy
  uint64_t call_timeout_ms = 30000;
  size_t subscribers_max = 1000000;           // volumes (with a set policy) one sweep visits
};

class DcGc {
 public:
  using CallPop = std::function<void(uint32_t pop_id, pb::Envelope req, uint64_t timeout_ms,
                                     std::function<void(Result<pb::Envelope>)> done)>;
  DcGc(Catalog* catalog, BackupStore* backups, DcGcParams params, CallPop call_pop);
  // The stand-in replica's side of a backup-store task: done(true, what it
  // reclaimed) or done(false, _) to be retried. Unset: no stand-in.
  using ReplicaGc = std::function<void(const Catalog::GcTask& task,
                                       std::function<void(bool done, Catalog::GcReclaimed)>)>;
  void set_replica_gc(ReplicaGc f) { replica_gc_ = std::move(f); }

  // One handler per message type (POP -> DC).
  Status HandleGcFetch(uint32_t pop_id, const pb::GcFetch& m, pb::Envelope* reply);
  Status HandleGcDone(uint32_t pop_id, const pb::GcDone& m, pb::Envelope* reply);
  Status HandleObjectTemperature(uint32_t pop_id, const pb::ObjectTemperature& m, int64_t now_ms,
                                 pb::Envelope* reply);
  Status HandleFetchBackupChunk(const pb::FetchBackupChunk& m, pb::Envelope* reply);

  void Tick(int64_t now_ms);

  // Totals for /metrics (refreshed on ticks from the catalog).
  const Catalog::GcStats& stats() const { return stats_; }
  uint64_t backups_done_total() const { return backups_done_total_; }
  uint64_t backup_reads_total() const { return backup_reads_total_; }
  const BackupStore* store() const { return backups_; }

 private:
  bool Held(const std::string& key);  // in the backup store
  void RunBackupStoreTasks();
  void AckBackupStoreTask(const Catalog::GcTask& t, const Catalog::GcReclaimed& r);
  void CopyNextBackup(int64_t now_ms);
  void CopyChunks(std::shared_ptr<pb::VersionInfo> info, uint32_t pop, size_t next,
                  std::function<void(Status)> done);
  void FinishBackup(const pb::VersionInfo& info);
  void RemoveBackupCopy(const Bytes& oid, uint64_t version, Catalog::GcReclaimed* r);

  Catalog* catalog_;
  BackupStore* backups_;
  DcGcParams p_;
  CallPop call_pop_;
  ReplicaGc replica_gc_;
  std::set<uint64_t> replica_gc_in_flight_;  // task ids; at most kBackupTasksPerTick
  Catalog::GcStats stats_;
  int64_t retention_ran_ms_ = 0;
  bool backup_in_flight_ = false;
  int64_t backup_retry_at_ms_ = 0;
  uint64_t backups_done_total_ = 0;
  uint64_t backup_reads_total_ = 0;
};

}  // namespace mistore
