// Catalog: the DC's durable record of what must outlive any POP (issue 7).
//   - the cluster map: POPs (id, region, address, up/down) and an epoch that
//     only grows, also across DC restarts (OnDaemonStart moves it on);
//   - subscribers, their names -> oids, objects (oid, owner, primary and
//     backup POP from the oid) and every version (size, time learned,
//     chunks, whether garbage-collected), chunk reference counts;
//   - gateways (id, subscriber, region, failure-domain labels, capacity,
//     free space, last seen, state), kept current from POP summaries;
//   - per-volume retention policies (retention.h) and the POPs' monitoring
//     summaries over a retention window.
//
// One interface, one body of catalog logic (catalog.cc) over a SqlDriver
// (sql_driver.h): OpenSqliteCatalog (WAL; the embedded default) and
// OpenPgCatalog (PostgreSQL through libpq). Every change runs in one
// transaction, so a DC killed mid-update holds either all of a change or
// none of it; POPs re-report versions until the DC acknowledged them (the
// DC replies after the commit; it groups the reports of one loop turn into
// one ReportVersions transaction, report_group.h), so nothing acknowledged is
// lost and nothing lost stays missing.
//
// Time comes in as arguments (now_ms, wall clock); the catalog reads no
// clock. Not thread-safe: the DC's loop thread, or an operator subcommand.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dc-backend/retention.h"
#include "shared/core/bytes.h"
#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

class Catalog {
 public:
  virtual ~Catalog() = default;

  // SQLite in data_dir/catalog.sqlite, opened as the daemon does
  // (OnDaemonStart). Kept for callers that predate the interface.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& data_dir);

  // The DC (re)starts: every POP is presumed down until it says Hello again;
  // that is a change of the map, so the epoch moves on (never back).
  virtual Status OnDaemonStart() = 0;

  // ---- cluster map ----
  virtual Status PopUp(uint32_t pop_id, const std::string& region, const std::string& addr) = 0;
  virtual Status PopDown(uint32_t pop_id) = 0;
  virtual Result<pb::ClusterMap> Map() = 0;
  struct PopRecord {
    uint32_t pop_id = 0;
    std::string region, addr;
    bool up = false;
  };
  virtual Result<PopRecord> GetPop(uint32_t pop_id) = 0;  // NotFound when unknown

  // ---- names ----
  // ClaimName inserts proposed_oid unless the name exists; returns the oid
  // that holds the name and whether it was created now.
  virtual Result<std::pair<Bytes, bool>> ClaimName(const std::string& subscriber,
                                                   const Bytes& name_key,
                                                   const Bytes& proposed_oid) = 0;
  virtual Result<Bytes> LookupName(const std::string& subscriber, const Bytes& name_key) = 0;

  // ---- objects and versions ----
  // A POP's report of a committed version; idempotent (POPs re-send until
  // acknowledged). now_ms: when the DC learned of it (retention's clock).
  virtual Status ReportVersion(const pb::VersionInfo& info, int64_t now_ms) = 0;
  Status ReportVersion(const pb::VersionInfo& info) { return ReportVersion(info, 0); }
  // Several reports in one transaction (group commit: one fsync for the
  // batch); at most kReportBatchMax. All or none. Applied set-based (a few
  // multi-row statements per batch); the result is that of the reports
  // applied one by one in order.
  static constexpr size_t kReportBatchMax = 10000;
  virtual Status ReportVersions(const std::vector<pb::VersionInfo>& infos, int64_t now_ms) = 0;
  virtual Result<pb::ObjectList> ListObjects(const std::string& subscriber) = 0;
  struct VersionRecord {
    uint64_t version = 0;
    uint64_t size_bytes = 0;
    int64_t created_ms = 0;
    bool collected = false;  // garbage-collected by retention
    std::vector<Bytes> chunk_ids;
  };
  // Ascending; collected ones too. At most versions_max.
  virtual Result<std::vector<VersionRecord>> ListVersions(const Bytes& oid,
                                                          size_t versions_max) = 0;
  virtual Result<std::vector<std::string>> ListSubscribers(size_t limit) = 0;

  // ---- gateways ----
  struct GatewayRecord {
    uint32_t gateway_id = 0;
    std::string subscriber;  // the household it belongs to ("" unknown)
    std::string region;
    std::string fd_labels;   // failure-domain labels, "k=v,k=v"
    uint32_t pop_id = 0;     // the POP it reports to
    uint64_t capacity_bytes = 0, free_bytes = 0;
    int64_t last_seen_ms = 0;
    std::string state;       // "connected" or "lost"
  };
  // Inserts or updates; fields left empty/zero keep their stored value
  // except state, pop_id, free_bytes and last_seen_ms, which are current.
  virtual Status UpsertGateway(const GatewayRecord& g) = 0;
  virtual Result<GatewayRecord> GetGateway(uint32_t gateway_id) = 0;  // NotFound when unknown
  virtual Result<std::vector<GatewayRecord>> ListGateways(uint32_t pop_id, size_t limit) = 0;

  // ---- retention and garbage collection ----
  virtual Status SetRetention(const std::string& volume, const RetentionPolicy& p) = 0;
  // The volume's policy, or the default RetentionPolicy when none was set.
  virtual Result<RetentionPolicy> GetRetention(const std::string& volume) = 0;
  // Volumes whose policy was set explicitly (SetRetention), ascending, at
  // most limit: the only ones automatic retention touches.
  virtual Result<std::vector<std::string>> ListRetentionVolumes(size_t limit) = 0;
  struct Collected {
    Bytes oid;
    std::vector<uint64_t> versions;  // newly collected
    uint64_t bytes = 0;              // their sizes
    std::vector<Bytes> chunks_freed; // no kept version references them any more
  };
  // Marks versions collected (one transaction) and drops their chunk
  // references. Already collected or unknown versions are skipped.
  virtual Result<Collected> CollectVersions(const Bytes& oid,
                                            const std::vector<uint64_t>& versions) = 0;
  // Applies the volume's policy to each of its objects (at most objects_max
  // per call); returns what it collected.
  Result<std::vector<Collected>> ApplyRetention(const std::string& volume, int64_t now_ms,
                                                size_t objects_max);

  // ---- garbage collection queue (issue 7) ----
  // CollectVersions queues, in its own transaction, one task for each POP
  // holding the object (its primary and backup, from the oid) and one for
  // the DC's backup store (pop_id kGcBackupStore). A task stays until its
  // holder acknowledges it (GcAck), so a crash anywhere repeats work rather
  // than losing it; every step of a task is idempotent.
  static constexpr uint32_t kGcBackupStore = 0;
  static constexpr size_t kGcTasksMax = 64;  // most tasks one GcTasks call returns
  struct GcTask {
    uint64_t task_id = 0;
    uint32_t pop_id = 0;
    Bytes oid;
    std::string subscriber;
    std::vector<uint64_t> versions;  // collected versions to drop
    std::vector<Bytes> chunk_ids;    // freed at collection and still unreferenced now
  };
  // The oldest tasks of one holder, at most min(limit, kGcTasksMax). Chunk
  // ids a version reported since the collection references again are left
  // out (the refcount is read now, not at collection time).
  virtual Result<std::vector<GcTask>> GcTasks(uint32_t pop_id, size_t limit) = 0;
  struct GcReclaimed {
    uint64_t versions = 0;        // version records dropped by the holder
    uint64_t chunks = 0;          // chunk copies dropped
    uint64_t chunk_bytes = 0;
    uint64_t fragments = 0;       // fragments deleted from gateways
    uint64_t fragment_bytes = 0;
  };
  // The holder finished task_id: deletes it and adds r to the totals. An
  // unknown (already acknowledged) task or one of another holder changes
  // nothing; returns whether it counted.
  virtual Result<bool> GcAck(uint64_t task_id, uint32_t pop_id, const GcReclaimed& r) = 0;
  struct GcStats {
    uint64_t tasks_pending = 0;
    uint64_t versions_collected = 0;        // by retention, in the catalog
    uint64_t version_bytes_collected = 0;   // their plaintext sizes
    GcReclaimed reclaimed;                  // acknowledged by POPs and the backup store
  };
  virtual Result<GcStats> GetGcStats() = 0;

  // ---- backups (issue 7; backup_store.h) ----
  // Which versions of a volume the DC keeps a full encrypted copy of.
  enum class BackupMode { kNone, kLatest, kAll };
  virtual Status SetBackupMode(const std::string& volume, BackupMode mode) = 0;
  virtual Result<BackupMode> GetBackupMode(const std::string& volume) = 0;  // kNone by default
  struct BackupItem {
    Bytes oid;
    uint64_t version = 0;
    std::string subscriber;
  };
  // Versions waiting to be copied into the backup store, oldest first.
  virtual Result<std::vector<BackupItem>> PendingBackups(size_t limit) = 0;
  // Version copied: marked done. With kLatest the object's older done
  // backups are returned: no longer wanted (the caller deletes them from
  // the store, then calls ForgetBackup).
  virtual Result<std::vector<uint64_t>> BackupDone(const Bytes& oid, uint64_t version) = 0;
  virtual Status ForgetBackup(const Bytes& oid, uint64_t version) = 0;
  virtual Result<bool> HasBackup(const Bytes& oid, uint64_t version) = 0;
  // Whether some done backup of a kept version still references the chunk.
  virtual Result<bool> BackupReferencesChunk(const Bytes& chunk_id) = 0;
  // Done backups of an object, ascending.
  virtual Result<std::vector<uint64_t>> BackedUpVersions(const Bytes& oid) = 0;

  // ---- cold tier (issue 7) ----
  // A POP reported the object cold (dropped from its disk) or warm again.
  virtual Status SetCold(const Bytes& oid, bool cold, int64_t now_ms) = 0;
  virtual Result<bool> IsCold(const Bytes& oid) = 0;

  // ---- monitoring ----
  // Keeps pop summaries; PruneSummaries drops those older than before_ms.
  virtual Status AddPopSummary(uint32_t pop_id, int64_t t_ms, const pb::MonitorPopSummary& s) = 0;
  struct SummaryRecord {
    uint32_t pop_id = 0;
    int64_t t_ms = 0;
    pb::MonitorPopSummary summary;
  };
  // pop_id 0: every POP. Time order, at most limit.
  virtual Result<std::vector<SummaryRecord>> PopSummaries(uint32_t pop_id, int64_t from_ms,
                                                          int64_t to_ms, size_t limit) = 0;
  virtual Result<uint64_t> PruneSummaries(int64_t before_ms) = 0;

  // ---- read-only queries for the admin API (dc-backend/admin.h; issue 8) ----
  struct SubscriberUsage {
    std::string subscriber;
    uint64_t objects = 0;
    uint64_t bytes = 0;  // plaintext size of each object's latest version
  };
  // Largest users first, at most `limit`.
  virtual Result<std::vector<SubscriberUsage>> UsageBySubscriber(size_t limit) = 0;
  struct ObjectRecord {
    std::string subscriber;
    uint64_t latest_version = 0;
    uint64_t size_bytes = 0;
    uint64_t names = 0;  // names that point at this oid
    uint32_t primary_pop = 0, backup_pop = 0;
  };
  virtual Result<ObjectRecord> FindObject(const Bytes& oid) = 0;  // NotFound when unknown
  struct Totals {
    uint64_t objects = 0, bytes = 0, subscribers = 0, names = 0;
  };
  virtual Result<Totals> CountTotals() = 0;

  // ---- read-only sharing (issue 4; docs/security.md "Sharing") ----
  // Each subscriber's share public key (X25519), trust on first publish:
  // publishing the same key again is a no-op (false), another key than the
  // one on record is refused (kPermissionDenied): a changed key would let
  // whoever holds a gateway of that subscriber redirect future grants; an
  // operator removes the old one (`mistore-dc share-key forget S`).
  virtual Result<bool> PublishShareKey(const std::string& subscriber, const Bytes& public_key,
                                       int64_t now_ms) = 0;
  virtual Result<Bytes> GetShareKey(const std::string& subscriber) = 0;  // NotFound
  virtual Result<bool> ForgetShareKey(const std::string& subscriber) = 0;
  // A share record (owner, oid, grantee, sealed grant): added or its grant
  // replaced (true). The owner must have claimed the oid under one of its
  // names (kPermissionDenied otherwise); a grantee must differ from the
  // owner and have a published key (kNotFound); bounds:
  // kSharesPerObjectMax grantees per object, kSharesPerGranteeMax records
  // per grantee, grants of 1..kShareGrantBytesMax bytes (kResourceExhausted
  // / kInvalidArgument).
  virtual Result<bool> PutShare(const std::string& owner, const Bytes& oid,
                                const std::string& grantee, const Bytes& grant_sealed,
                                int64_t now_ms) = 0;
  virtual Result<bool> RemoveShare(const std::string& owner, const Bytes& oid,
                                   const std::string& grantee) = 0;  // false: none
  virtual Result<bool> HasShare(const std::string& owner, const Bytes& oid,
                                const std::string& grantee) = 0;
  // What is shared with `grantee`, oldest first (at most kSharesPerGranteeMax).
  virtual Result<pb::ShareList> ListShares(const std::string& grantee) = 0;
};

inline constexpr size_t kSharesPerObjectMax = 64;
inline constexpr size_t kSharesPerGranteeMax = 1024;
// crypto_box_seal of a grant of at most kShareGrantPlainBytesMax (4608)
// bytes: 4608 + 48 (static_assert in catalog.cc).
inline constexpr size_t kShareGrantBytesMax = 4656;
inline constexpr size_t kSubscriberBytesMax = 128;

// The catalog file data_dir/catalog.sqlite (directory created if missing).
// Neither factory calls OnDaemonStart: operator subcommands open the
// catalog without changing the map.
Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& data_dir);
Result<std::unique_ptr<Catalog>> OpenPgCatalog(const std::string& conninfo);

}  // namespace mistore
