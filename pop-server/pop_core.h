// PopCore: the POP's protocol logic as a deterministic state machine.
//
// It owns no sockets, no clock and no randomness of its own: the adapter
// (pop_daemon.cc, libuv) or the simulator feeds it requests, replies to its
// calls, finished compute jobs and ticks, each with the current time; it
// answers with an Outbox of data — calls to make (to a POP, the DC or one of
// its gateways), replies to send, CPU jobs to run (erasure encode/decode) —
// and it reads/writes durable state through PopStore (synchronous).
// Randomness (backup choice, replica pick, placement shuffle) comes from one
// RNG seeded at construction.
//
// Roles it plays (paper, figs. 3–13): entry POP for its region's gateways
// (PutCommit, GetVersion, GetChunk), primary or backup of objects
// (CommitVersion, FetchVersion, FetchChunk), and placer of its replicas'
// chunks on k+m distinct gateways of its region.
//
// Runs on the daemon's loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "pop-server/held_results.h"
#include "pop-server/lock_table.h"
#include "pop-server/membership.h"
#include "pop-server/repair.h"
#include "pop-server/share_gate.h"
#include "pop-server/pop_report.h"
#include "pop-server/pop_store.h"
#include "shared/core/oid.h"
#include "shared/proto/mistore.pb.h"

namespace mistore {

struct PopParams {
  uint32_t pop_id = 0;
  std::string region;
  int k = 4;
  int m = 2;
  uint64_t cache_bytes_max = 1ull << 30;
  // Chunks being placed at once, each holding the chunk and its k+m
  // fragments (at most ~12 MiB with 4 MiB chunks and k=1 m=1). 16 keeps a
  // gateway link's 150 ms round trip from idling its 20 MB/s downlink
  // (issue 11: 4 left 100 MB unstriped placement ~2.6 s slower).
  size_t placements_in_flight_max = 16;
  // Fragment bytes sent to one gateway and not yet acknowledged, over all
  // placements (issue 11). A gateway's link to its POP also carries its
  // devices' requests and answers: 16 placements of 4 MiB chunks with k=1
  // queued 64 MiB in front of them (3 s at 20 MB/s; a 1 MB edit saved
  // right after a 100 MB write took 3.3-3.9 s instead of ~2). 8 MiB keeps a
  // 20 MB/s downlink busy across a 150 ms round trip and queues at most
  // ~0.4 s. A larger fragment still goes, alone. 0: no limit.
  uint64_t placement_bytes_per_gateway_max = 8u << 20;
  // StoreChunks outstanding per push of a version's chunks to a replica
  // (entry POP -> primary and backup, primary -> backup); each holds one chunk.
  size_t push_chunks_in_flight_max = 8;
  // Forwarding during the upload (issue 11; pop_forward.cc): StoreChunks
  // outstanding at once to replica POPs for chunks a client is still
  // uploading here (each holds one chunk; 0 turns forwarding off), and the
  // most chunks planned or queued for forwarding (beyond: the commit's push
  // sends them).
  size_t forward_chunks_in_flight_max = 8;
  size_t forward_plan_entries_max = 65536;
  // Placement before the commit (issue 11; pop_place_early.cc): a replica
  // POP places a chunk on its gateways as soon as the chunk arrives (from
  // the uploading client, or forwarded), not after the commit; at most
  // staged_placements_max staged chunks are placed so (beyond: they wait
  // for their commit, as with false). A chunk still staged staged_keep_ms
  // after it last arrived (its version never committed here), not in use
  // and named by no version record here, is deleted with its fragments;
  // staged_tracked_max staged chunks are timed so (beyond: found again at
  // the next restart).
  bool place_before_commit = true;
  uint64_t staged_keep_ms = 24ull * 3600 * 1000;
  size_t staged_placements_max = 65536;
  size_t staged_tracked_max = 1u << 20;
  size_t chunk_bytes_max = (4u << 20) + 64;
  size_t chunks_per_version_max = 1u << 20;
  size_t manifest_bytes_max = 64u << 20;
  uint64_t call_timeout_ms = 30000;
  uint64_t fragment_timeout_ms = 10000;
  uint64_t lease_ms = 10000;        // lock lease granted to entry POPs
  uint64_t lease_max_ms = 60000;    // longest lease a peer may ask for
  uint64_t lock_wait_ms = 30000;    // how long a lock request may wait
  size_t lock_waiters_max = 64;     // per object
  size_t version_cache_entries_max = 4096;
  // Reads (issue 11): false = an entry POP asks primary or backup at random
  // per request (paper fig. 11; spreads a read over both replica regions);
  // true = the acting primary first, the backup only when that fails (a
  // read comes from one region: the paper's "object read from one HG").
  bool read_primary_first = false;
  bool place_fragments = true;      // false for the DC standing in as a replica
  uint64_t upload_pin_ms = 600000;  // uploaded chunks wait this long for their commit
  size_t upload_pins_max = 100000;
  // Region durability (issue 6; pop_durability.cc).
  uint64_t gateway_suspect_ms = 15000;   // first missed-heartbeat timeout
  uint64_t gateway_grace_ms = 900000;    // silence before a gateway is lost
  uint64_t repair_bytes_per_s = 50ull << 20;
  size_t repairs_in_flight_max = 4;
  size_t repair_queue_chunks_max = 1u << 20;
  uint64_t inventory_interval_ms = 30000;  // least time between inventory requests
  size_t moved_fragments_max = 1u << 20;   // remembered for surplus deletion
  // Garbage collection and cold tier (issue 7; pop_gc.cc).
  uint64_t gc_poll_ms = 0;           // how often GC tasks are asked of the DC (0: never)
  size_t gc_tasks_per_poll = 8;      // tasks asked per poll
  size_t gc_versions_scan_max = 1u << 20;  // version records read to find live chunks
  uint64_t cold_after_ms = 0;        // unread this long: dropped from this POP's disk (0: off)
  size_t cold_objects_max = 100000;  // objects tracked for coldness (and marked cold)
  // Last-use times survive a restart (PopStore::SaveObjectUses): dirty
  // ones are written in one batch at most every cold_persist_ms, so each
  // object costs at most one row write per interval; a crash forgets at most
  // that much of its reads. Stored as wall-clock ms = now_ms + this offset
  // (the daemon sets it at start; 0 in the simulator and tests).
  uint64_t cold_persist_ms = 60000;
  int64_t wall_clock_offset_ms = 0;
  size_t event_buffer_max = 4096;  // operators' events waiting for the DC (pop_report.h)
  // Results kept for gateways that went away (held_results.h).
  uint64_t held_results_ms = 3600000;
  size_t held_results_per_gateway_max = 256;
  size_t held_results_max = 100000;
  // How often chunks kept for other POPs' placement are asked about.
  uint64_t placed_confirm_interval_ms = 2000;
  // Cluster map forwarded to the connected gateways when its epoch grows
  // (pop_map_push.cc; the daemon turns it on, the simulator leaves it off).
  bool push_map_to_gateways = false;
  // Without a reply from the DC for this long, this POP's map may be stale:
  // the DC may have marked it down (it does so after its pop_silence_ms,
  // which must be longer) and the other replica may have committed versions
  // meanwhile. Until the DC answers again, every replicated object is
  // re-synced with its other replica before it is served. Every lock lease
  // granted, renewed or inherited here ends by the last DC reply + this
  // (bug 11: a cut-off primary's locks must lapse before the DC fails it
  // over), and entry POPs renew every min(lease_ms, this) / 3. 0: off.
  uint64_t map_lease_ms = 0;
  // Read-only sharing (issue 4; share_gate.h, pop_share.cc): how long the
  // DC's answer to "is this object shared with that subscriber?" is kept
  // (an unshare reaches this POP within it), and how many answers at most.
  uint64_t share_cache_ttl_ms = 5000;
  size_t share_cache_entries_max = 4096;
};

// Destination of an outgoing call.
// The DC stands in as an object's backup replica while one of its POPs is
// down (design section 3); as a replica it is "POP 0" (real POP ids are >= 1).
constexpr uint32_t kDcReplica = 0;
constexpr uint32_t kNoPop = UINT32_MAX;
// A DC-tier object (IsDcTier, shared/core/oid.h): the DC's stand-in is its
// one replica and lock server; entry POPs relay to it and keep only cache
// copies; no POP places its fragments on gateways. Its oid has a random
// counter: drawn again when the catalog refuses it, at most this many times.
constexpr int kDcTierClaimsMax = 8;
// Most chunk ids one HaveChunks query may ask about (pop_dedup.cc).
constexpr size_t kHaveChunksIdsMax = 4096;

struct Dest {
  enum Kind { kPop, kDc, kGateway } kind;
  uint32_t id = 0;  // pop id or gateway id (unused for kDc)
  auto operator<=>(const Dest&) const = default;
};

// Who sent an incoming request: a connection id chosen by the adapter, and
// what that connection proved to be (from its Hello).
struct Peer {
  uint64_t conn_id = 0;
  pb::Role role = pb::ROLE_UNKNOWN;
  uint32_t node_id = 0;
  std::string subscriber;  // for gateways
};

using Token = uint64_t;

struct OutCall {
  Token token;
  Dest to;
  pb::Envelope msg;
  uint64_t timeout_ms;
};

struct OutReply {
  uint64_t conn_id;
  uint64_t request_id;
  pb::Envelope msg;  // body set, or error set
};

// CPU work to run off the loop; `run` must not touch PopCore.
struct Job {
  Token token;
  std::function<void()> run;
};

struct Outbox {
  std::vector<OutCall> calls;
  std::vector<OutReply> replies;
  std::vector<Job> jobs;
  bool empty() const { return calls.empty() && replies.empty() && jobs.empty(); }
};

struct GatewayState {
  uint32_t id;
  std::string subscriber;
  uint64_t store_bytes_free;
  bool connected;
};

class PopCore {
 public:
  PopCore(PopParams params, PopStore* store, uint64_t seed);

  // ---- inputs ----
  void OnRequest(uint64_t now_ms, const Peer& from, const pb::Envelope& req);
  // The messages a POP sends to a replica, which the DC routes to its
  // stand-in replica (dc-backend/standin.h) and the simulator likewise.
  static bool IsStandInMessage(const pb::Envelope& req);
  void OnCallDone(uint64_t now_ms, Token token, Result<pb::Envelope> reply);
  void OnJobDone(uint64_t now_ms, Token token);
  void OnGatewayUp(uint64_t now_ms, const GatewayState& gw);
  void OnGatewayDown(uint64_t now_ms, uint32_t gateway_id);
  void OnClusterMap(uint64_t now_ms, const pb::ClusterMap& map);
  // The DC answered this POP (a map refresh): its map is fresh (map_lease_ms).
  void OnDcContact(uint64_t now_ms);
  void OnTick(uint64_t now_ms);  // retries: placement, reports to the DC
  // A connection the adapter reported requests from is gone: lock requests
  // it left waiting are dropped (a grant nobody would release would block
  // the object for a whole lease).
  void OnConnectionClosed(uint64_t now_ms, uint64_t conn_id);
  // Role-dependent requests refused because the sender's map epoch differed.
  uint64_t epoch_refusals_total() const { return epoch_refusals_total_; }
  // Chunk reads served from this POP's own copy / fetched from elsewhere.
  uint64_t cache_hits_total() const { return cache_hits_total_; }
  uint64_t cache_misses_total() const { return cache_misses_total_; }
  // Locks (read or write) dropped because their lease ran out.
  uint64_t lease_expiries_total() const { return locks_.expired_total(); }
  // Locks whose lease this POP started on taking over an object (inherited
  // from its primary, or from the backup that stood in for it).
  uint64_t locks_inherited_total() const { return locks_inherited_total_; }
  // Fragments found failing their check (on read or reported by a gateway).
  uint64_t fragments_bad_total() const { return fragments_bad_total_; }
  // Fragments that passed their own check but were located as forged by the
  // code's redundancy on a read (DecodeChunkChecked); also in bad_total.
  uint64_t fragments_forged_total() const { return fragments_forged_total_; }
  // Chunks sent to a replica POP by pushes (StoreChunk), and chunks a push
  // skipped because the replica held them already (HaveChunks).
  uint64_t chunks_pushed_total() const { return chunks_pushed_total_; }
  uint64_t chunks_push_skipped_total() const { return chunks_push_skipped_total_; }
  // Forwarding during the upload (pop_forward.cc): chunks sent on to a
  // replica as they arrived, forwards that failed (the push sent those),
  // and chunks not planned or queued because the bound was reached.
  uint64_t chunks_forwarded_total() const { return chunks_forwarded_total_; }
  uint64_t chunk_forwards_failed_total() const { return chunk_forwards_failed_total_; }
  uint64_t forward_plans_skipped_total() const { return forward_plans_skipped_total_; }
  size_t forward_plans() const { return forward_plans_.size(); }
  // Placement before the commit (pop_place_early.cc): staged chunks placed
  // before their commit; staged chunks deleted because no commit came (and
  // their bytes, and those of them whose fragments were deleted too); how
  // many staged chunks are placed, and timed, now.
  uint64_t chunks_placed_before_commit_total() const {
    return chunks_placed_before_commit_total_;
  }
  uint64_t staged_chunks_dropped_total() const { return staged_chunks_dropped_total_; }
  uint64_t staged_bytes_dropped_total() const { return staged_bytes_dropped_total_; }
  uint64_t staged_fragments_swept_total() const { return staged_fragments_swept_total_; }
  size_t staged_chunks_placed() const { return placed_early_.size(); }
  size_t staged_chunks_tracked() const { return staged_due_.size(); }
  size_t forwards_in_flight() const { return forwards_in_flight_; }
  // Of those, fragments a client found failing their keyed tag and reported
  // (ReportForgedFragments; issue 3, pop_client_fragments.cc).
  uint64_t fragments_forged_reported_total() const { return fragments_forged_reported_total_; }
  // Read-only sharing (issue 4, pop_share.cc): reads of another
  // subscriber's object refused (not shared, or a lock/write asked) and
  // served under a share; the DC questions asked.
  uint64_t shares_refused_total() const { return shares_refused_total_; }
  uint64_t shared_reads_total() const { return shared_reads_total_; }
  const ShareGate& share_gate() const { return share_gate_; }

  // ---- outputs ----
  Outbox TakeOutbox();

  // ---- views for the adapter and tests ----
  const pb::ClusterMap& cluster_map() const { return map_; }
  bool IsGatewayConnected(uint32_t id) const;
  size_t placements_in_flight() const { return placing_.size(); }
  size_t placement_queue_size() const { return place_queue_.size(); }
  uint64_t placement_bytes_to(uint32_t gateway_id) const {
    auto it = placing_bytes_to_.find(gateway_id);
    return it == placing_bytes_to_.end() ? 0 : it->second;
  }
  const LockTable& locks() const { return locks_; }
  size_t entry_locks_held() const { return entry_locks_.size(); }
  // Region durability (issue 6).
  const GatewayTable& members() const { return members_; }
  RepairStats repair_stats() const { return repair_.stats(); }
  // Chunks with fewer than k+m usable fragments (lost, bad or unrecorded),
  // recomputed on ticks.
  size_t chunks_below_redundancy() const { return below_redundancy_; }
  uint64_t fragments_deleted_total() const { return fragments_deleted_total_; }
  // Garbage collection and cold tier (issue 7; pop_gc.cc).
  struct GcStats {
    uint64_t tasks_done_total = 0;
    uint64_t versions_dropped_total = 0;
    uint64_t chunks_dropped_total = 0;
    uint64_t chunk_bytes_dropped_total = 0;
    uint64_t fragments_deleted_total = 0;
    uint64_t objects_cooled_total = 0;    // went cold here
    uint64_t objects_warmed_total = 0;    // read again while cold
    uint64_t backup_reads_total = 0;      // chunks served from the DC's backup store
    size_t objects_tracked = 0;
    size_t objects_cold = 0;
  };
  GcStats gc_stats() const;
  // One GC task run here directly, not pulled from the DC: the DC runs the
  // tasks of its backup store on its stand-in replica too (dc-backend/
  // standin.h), so collected versions leave the stand-in's copies as they
  // leave the POPs'. finish(done, result) as for pulled tasks; not done:
  // retry later (a chunk in use).
  void OnGcTask(uint64_t now_ms, const pb::GcTask& t,
                std::function<void(bool done, pb::GcResult)> finish);
  // Writes the objects' last-use times now (a clean shutdown), instead of
  // at the next cold_persist_ms boundary.
  void FlushColdTracking(uint64_t now_ms);
  // Operators' view (issue 8; pop_report.cc): events for the DC, and the
  // repair fields of the monitoring summary.
  PopEventBuffer& events() { return events_; }
  void FillRepairSummary(pb::MonitorPopSummary* s) const;
  HeldResultsStats held_results_stats() const { return held_.stats(); }
  // Takes back the commit results kept in the store before a restart
  // (held_results.h). wall_ms: the wall clock now, in milliseconds since
  // the epoch; the store keeps results' ages on it, so that a restart does
  // not renew them. Call once, before the first input. Without it (the
  // simulator) the store holds now_ms times and nothing is loaded.
  void LoadHeldResults(uint64_t now_ms, uint64_t wall_ms);
  // What a gateway agent gets of the cluster map (pop_map_push.cc): the
  // epoch, this region's POPs with addresses and states, revoked node ids.
  // Sent in the HelloReply at registration and pushed on epoch changes.
  pb::ClusterMap MapForGateways() const;
  uint64_t maps_pushed_total() const { return maps_pushed_total_; }

 private:
  using ReplyCont = std::function<void(Result<pb::Envelope>)>;
  struct Incoming {
    uint64_t conn_id;
    uint64_t request_id;
  };

  // Call plumbing.
  void Call(Dest to, pb::Envelope msg, ReplyCont cont, uint64_t timeout_ms = 0);
  void RunJob(std::function<void()> run, std::function<void()> then);
  void Reply(const Incoming& in, pb::Envelope msg);
  void ReplyError(const Incoming& in, const Status& st);

  // One handler per message type.
  void HandlePutChunk(const Incoming& in, const Peer& from, const pb::PutChunk& m);
  void HandlePutCommit(const Incoming& in, const Peer& from, const pb::PutCommit& m);
  void HandleGetVersion(const Incoming& in, const Peer& from, const pb::GetVersion& m);
  void HandleGetChunk(const Incoming& in, const Peer& from, const pb::GetChunk& m);
  void HandleListObjects(const Incoming& in, const Peer& from, const pb::ListObjects& m);
  void HandleGetPlacement(const Incoming& in, const Peer& from, const pb::GetPlacement& m);
  void HandleStoreChunk(const Incoming& in, const Peer& from, const pb::StoreChunk& m);
  void HandleCommitVersion(const Incoming& in, const Peer& from, const pb::CommitVersion& m);
  void HandleFetchVersion(const Incoming& in, const Peer& from, const pb::FetchVersion& m);
  void HandleFetchChunk(const Incoming& in, const Peer& from, const pb::FetchChunk& m);
  // Dedup query (pop_dedup.cc): which chunks this POP already holds.
  void HandleHaveChunks(const Incoming& in, const Peer& from, const pb::HaveChunks& m);
  // A chunk's fragments for the client, and its report of forged ones
  // (issue 3; pop_client_fragments.cc).
  void HandleGetChunkFragments(const Incoming& in, const Peer& from, const pb::GetChunkFragments& m);
  void HandleReportForgedFragments(const Incoming& in, const Peer& from,
                                   const pb::ReportForgedFragments& m);
  // Read-only sharing (issue 4; pop_share.cc): a read naming another
  // subscriber as the object's owner (GetVersion/GetChunk.owner) is served
  // only under a share record at the DC; share management is forwarded to
  // the DC after the subscriber check.
  static bool IsSharedRead(const pb::Envelope& req);
  void HandleSharedRead(const Incoming& in, const Peer& from, const pb::Envelope& req);
  void ServeSharedRead(const Incoming& in, const Peer& from, const pb::Envelope& req);
  void RefuseSharedRead(const Incoming& in, const Peer& from, const std::string& why);
  void ForwardShareRequest(const Incoming& in, const Peer& from, const pb::Envelope& req);

  // Write path (pop_write.cc).
  void ResolveOidForWrite(const pb::PutCommit& m, std::function<void(Result<Oid>)> done);
  void ClaimNewOid(const pb::PutCommit& m, uint32_t primary, uint32_t backup,
                   std::function<void(Result<Oid>)> done, int attempt = 0);
  void CommitSoleReplica(const Bytes& oid_b, uint64_t v,
                         std::function<void(Result<uint64_t>)> done);
  void WriteWithLock(const Oid& o, pb::VersionInfo info, std::function<void(Result<uint64_t>)> done);
  // Moves a version's chunks to a replica POP (or the DC standing in):
  // only those it lacks (HaveChunks first), with up to
  // push_chunks_in_flight_max StoreChunks outstanding.
  struct PushState;
  void PushChunks(uint32_t pop, const std::string& subscriber, std::vector<std::string> ids,
                  std::function<void(Status)> done);
  void PumpPush(std::shared_ptr<PushState> state);
  // Forwarding during the upload (pop_forward.cc).
  void PlanForwarding(const std::string& subscriber, const std::string& name_key,
                      std::vector<std::string> ids, bool dc_tier);
  // The backup a new name's first commit here will propose (kNoPop: none
  // up); Take... consumes it at the commit.
  uint32_t ProposeBackup(const std::string& subscriber, const std::string& name_key);
  uint32_t TakeProposedBackup(const std::string& subscriber, const std::string& name_key);
  void AddForwardPlan(const std::string& subscriber, const std::vector<std::string>& ids,
                      const std::vector<uint32_t>& targets, bool place_here);
  void ForwardUploaded(const ChunkKey& key);  // a planned chunk was stored here
  // Placement before the commit (pop_place_early.cc).
  void NoteStaged(const ChunkKey& key);         // stored staged: timed from now
  void PlaceBeforeCommit(const ChunkKey& key);  // a chunk arrived here as at a replica
  bool FullyPlaced(const ChunkKey& key);        // k+m fragments recorded
  void ChunkCommitted(const ChunkKey& key);     // left the staged state
  void SetStagedDue(const ChunkKey& key, uint64_t due_ms);
  void SweepStaged();
  // A staged or cached chunk a version here names: placed (before its
  // commit) or queued for placement. Used by StoreReplicaChunks.
  void MakeReplicaChunk(const ChunkKey& key, ChunkState was);
  void AdoptNamedStaged(const ChunkKey& key);   // a version here names it after all
  void FinishStagedSweep(const ChunkKey& key, bool all_deleted);
  void QueueForward(uint32_t pop, const ChunkKey& key);
  void PumpForwards();
  // true: `then` runs once no forward of these chunks to `pop` is in flight.
  bool WaitForForwards(uint32_t pop, const std::string& subscriber,
                       const std::vector<std::string>& ids, std::function<void()> then);
  void WakeForwardWaiters();
  void TickForwarding();
  void CommitAsPrimary(pb::VersionInfo info, uint64_t lock_id, uint64_t token,
                       std::function<void(Result<uint64_t>)> done);
  void StoreReplicaChunks(const pb::VersionInfo& info);
  void HandleFinalizeVersion(const Incoming& in, const Peer& from, const pb::FinalizeVersion& m);

  // Read path (pop_read.cc).
  using VersionCont = std::function<void(Result<pb::VersionInfo>)>;
  bool IsReplica(const Oid& o) const;
  Result<pb::VersionInfo> LocalVersion(const Oid& o, uint64_t version);
  void ReadExactVersion(const Oid& o, uint64_t version, VersionCont done);
  void ReadAtomic(const Oid& o, VersionCont done);
  void ReadMonotonic(const Oid& o, uint64_t min_version, VersionCont done);
  void ReadLocked(const Oid& o, const std::string& subscriber, VersionCont done);
  void FetchFromReplicas(const Oid& o, uint64_t version, VersionCont done);
  void CacheVersion(const pb::VersionInfo& info);
  const pb::VersionInfo* CachedVersion(const Bytes& oid, uint64_t version, bool at_least);
  void CallReplicas(const Oid& oid, pb::Envelope req, ReplyCont done);
  void CallReplicaAt(std::shared_ptr<std::vector<uint32_t>> order, size_t i, pb::Envelope req,
                     Status last, ReplyCont done);
  // background: repair reads, paced by the agents' background I/O limit.
  void ReadChunkFromFragments(const ChunkKey& key, std::function<void(Result<Bytes>)> done,
                              bool background = false);
  void ObtainChunk(const Oid& o, const ChunkKey& key, bool forward,
                   std::function<void(Result<Bytes>)> done);
  void ReplyChunk(const Incoming& in, Result<Bytes> data);
  std::vector<uint32_t> ReplicaOrder(const Oid& oid);

  // Lock service (pop_read.cc).
  // Grants carry the id of the POP whose lock table granted them.
  using LockCont = std::function<void(Result<pb::LockGrantMsg>, uint32_t holder)>;
  void AcquireLockAt(const Oid& o, LockType type, LockCont done);
  void PinUpload(const ChunkKey& key);
  // requester_conn: the connection asking (0: this POP itself).
  void AcquireLocal(const Bytes& oid, LockType type, uint64_t lease_ms, LockCont done,
                    uint64_t requester_conn = 0);
  void AcquireSynced(const Bytes& oid, LockType type, uint64_t lease_ms, LockCont done,
                     uint64_t requester_conn);
  pb::LockGrantMsg GrantMsg(const Bytes& oid, const LockGrant& g);
  void AnswerLockDecisions(std::vector<LockDecision> decisions);
  void ReleaseLockAt(const Oid& o, uint32_t holder, uint64_t lock_id);
  void HandleAcquireLock(const Incoming& in, const Peer& from, const pb::AcquireLock& m);
  void HandleRenewLock(const Incoming& in, const Peer& from, const pb::RenewLock& m);
  void HandleReleaseLock(const Incoming& in, const Peer& from, const pb::ReleaseLock& m);
  // granted_lease_ms: the lease the primary granted (cut by its map lease).
  void TrackEntryLock(const Oid& o, uint32_t holder, uint64_t lock_id, LockType type,
                      uint64_t granted_lease_ms);
  uint64_t LockRenewEveryMs() const;
  void UntrackEntryLock(uint64_t lock_id);
  void TouchEntryLock(uint64_t lock_id);
  void TickLocks();
  // Primary-backup lock table (paper, sections V and VII; lock_table.h):
  // the acting primary sends the held locks of objects that changed to the
  // acting backup, batched (kLockSyncObjectsMax objects per message, one
  // message in flight per backup); a replica catching up on an object
  // fetches them from the other replica; a role change starts the leases
  // of inherited locks (takeover) or turns them dormant (give-back).
  void PushLockState();
  void HandleLockSync(const Incoming& in, const Peer& from, const pb::LockSync& m);
  void HandleFetchLocks(const Incoming& in, const Peer& from, const pb::FetchLocks& m);
  void FetchLocksFrom(const Oid& o, uint32_t source, std::function<void(Status)> done);
  void InstallLocks(const Oid& o, const pb::ObjectLocksMsg& m);
  void ApplyLockRoles();
  // The write's commit under its lock, at whichever POP is acting primary
  // when it is sent (the lock is inherited across a takeover).
  void CommitUnderLock(const Oid& o, const pb::VersionInfo& info, uint64_t lock_id, uint64_t token,
                       int attempt, std::function<void(Result<uint64_t>)> done);
  void CommitSynced(pb::VersionInfo info, uint64_t lock_id, uint64_t token,
                    std::function<void(Result<uint64_t>)> done);

  // Region durability (pop_durability.cc): failure detector events, repair,
  // inventory reconciliation, bad fragments.
  void HandleGatewayHeartbeat(const Incoming& in, const Peer& from, const pb::GatewayHeartbeat& m);
  void HandleGatewayInventory(const Incoming& in, const Peer& from, const pb::GatewayInventory& m);
  void HandleFragmentsBad(const Incoming& in, const Peer& from, const pb::FragmentsBad& m);
  // Results kept for a gateway that went away (held_results.h): a retried
  // commit is answered from them or joins the running original (true:
  // handled); a finished commit answers everyone waiting and is remembered;
  // a returning gateway gets its undelivered ones.
  bool AnswerOrJoinRetry(const Incoming& in, const pb::PutCommit& m);
  void FinishCommit(const Incoming& in, const pb::PutCommit& m, Result<pb::PutReply> r);
  void DeliverHeldResults(uint32_t gateway_id);
  void SaveHeldResults();  // held_'s changes to the store (after each change)
  // Placement confirmed between the POPs holding an object's chunks: a
  // chunk is kept until the other POPs it waits on have placed it.
  void HandlePlacedChunks(const Incoming& in, const Peer& from, const pb::PlacedChunks& m);
  void WaitForPlacementBy(const Oid& o, const std::string& subscriber,
                          const std::vector<std::string>& chunk_ids);
  void AskPlacedChunks();
  void OnMembershipEvents(const std::vector<MembershipEvent>& events);
  void AskInventory(uint32_t gateway_id);
  void ReconcileInventory(uint32_t gateway_id, const pb::GatewayInventory& inv);
  void MarkBad(uint32_t gateway_id, const ChunkKey& key, uint32_t index);
  void EnqueueRepairsOn(uint32_t gateway_id);
  void EnqueueRepair(const ChunkKey& key);
  // Indices of a placed chunk's fragments that are missing: unrecorded, on
  // a lost gateway, or reported bad. *live: the usable ones.
  std::vector<uint32_t> MissingFragments(const ChunkKey& key, int* live);
  // The same whatever the chunk's state: indices unrecorded, reported bad,
  // or on a lost gateway, or (require_live: a retried placement) on any
  // gateway that is not live (the others, k+m minus these, are usable).
  std::vector<uint32_t> UnusableFragments(const ChunkKey& key, bool require_live);
  // Gateways for the chunk's `missing` fragment indices, in that order
  // (fewer when the region has too few): first gateways holding no
  // fragment of the chunk, avoiding the usable holders' failure domains;
  // then, as a last resort, a live one whose own copy is among the missing.
  // Never one in `exclude`. *old_at: where each index is recorded now.
  // Shared by placement retries and repair.
  std::vector<uint32_t> PickFragmentTargets(const ChunkKey& key,
                                            const std::vector<uint32_t>& missing,
                                            const std::set<uint32_t>& exclude,
                                            uint64_t fragment_bytes,
                                            std::map<uint32_t, uint32_t>* old_at);
  // Fragment `index`, just stored on `gateway_id`, recorded there in place
  // of the record on `old` (if any): the cached inventory digests of both
  // gateways are dropped, the old copy's bad mark forgotten, and an old copy
  // on another gateway deleted (at once from a live gateway; else once its
  // inventory shows it, moved_). Placement and repair alike.
  [[nodiscard]] Status RecordStoredFragment(const ChunkKey& key, uint32_t index,
                                            uint32_t gateway_id, std::optional<uint32_t> old);
  // A StoreFragment that failed may still have landed (a timeout, a lost
  // answer): the gateway's next inventory deletes the copy unless it is
  // recorded there by then (moved_; its cached digest is dropped so that
  // its next heartbeat compares against the records).
  void NoteMaybeStored(uint32_t gateway_id, const ChunkKey& key, uint32_t index);
  void PumpRepair();
  void RepairChunk(const ChunkKey& key);
  void StoreRepairFragments(const ChunkKey& key, std::shared_ptr<std::vector<Bytes>> blobs,
                            std::vector<uint32_t> missing, uint64_t read_bytes);
  void FinishRepair(const ChunkKey& key, bool ok, int fragments, uint64_t bytes);
  void DeleteOn(uint32_t gateway_id, const std::vector<std::pair<Bytes, uint32_t>>& refs);
  void RecountBelowRedundancy();
  // Operators' events (pop_report.cc).
  void NoteEvent(pb::PopEventKind kind, uint32_t gateway_id, uint32_t pop_id, uint64_t count,
                 uint64_t bytes, std::string detail);
  void NoteMembershipEvent(const MembershipEvent& e);
  void NoteBadFragment(uint32_t gateway_id);
  void NoteMapChange(const pb::ClusterMap& old_map);
  void TrackReportedRepairs();  // on ticks
  std::vector<uint32_t> PickGateways(int n, const std::set<uint32_t>& exclude,
                                     const std::set<std::string>& taken_domains,
                                     uint64_t bytes_needed);

  // Placement.
  void EnqueuePlacement(const ChunkKey& key);
  void PumpPlacement();
  // placement_bytes_per_gateway_max: the gateways with no room for a
  // fragment of this size, and whether the chunk at the head of the queue
  // must wait for room (enough gateways for its missing fragments only
  // counting the full ones).
  std::set<uint32_t> GatewaysWithoutPlacementRoom(uint64_t fragment_bytes) const;
  bool PlacementWaitsForRoom(const ChunkKey& key);
  uint64_t PlacementFragmentBytes(const ChunkKey& key);
  void ReleasePlacementBytes(uint32_t gateway_id, uint64_t bytes);
  void PlaceChunk(const ChunkKey& key);
  void FinishPlacement(const ChunkKey& key, bool ok);
  void EvictIfNeeded();
  void ReportVersions();

  bool PopUp(uint32_t pop_id) const;
  // Roles from the cluster map: the primary while it is up, else the
  // backup; the backup while both are up, else the DC.
  uint32_t ActingPrimary(const Oid& o) const;
  uint32_t ActingBackup(const Oid& o) const;
  Dest ReplicaDest(uint32_t replica) const;
  // Before a replica that (re)started, or came back up, serves an object,
  // it fetches the versions it missed from the other replica.
  void EnsureSynced(const Oid& o, std::function<void(Status)> then);
  // generation: sync_generation_ when the sync began.
  void SyncFrom(const Oid& o, uint32_t source, uint64_t upto, uint64_t generation);
  uint32_t SyncSource(const Oid& o) const;  // the other replica to catch up from
  void ForgetSynced();  // every object must catch up again before it is served
  void TakeOverPrepared(const pb::ClusterMap& old_map);
  void CheckMapLease();  // PopParams::map_lease_ms
  void SetLockLeaseLimit();  // leases end by dc_contact_ms_ + map_lease_ms (bug 11)
  Status CheckSubscriber(const Peer& from, const std::string& subscriber) const;

  PopParams p_;
  PopStore* store_;
  std::mt19937_64 rng_;
  uint64_t now_ms_ = 0;
  Token next_token_ = 1;
  Outbox out_;
  std::map<Token, ReplyCont> calls_;
  std::map<Token, std::function<void()>> jobs_;
  pb::ClusterMap map_;
  std::map<uint32_t, GatewayState> gateways_;
  std::deque<ChunkKey> place_queue_;
  std::set<ChunkKey> queued_or_placing_;
  std::set<ChunkKey> placing_;
  std::map<uint32_t, uint64_t> placing_bytes_to_;  // gateway -> fragment bytes unacknowledged
  std::map<ChunkKey, int> pinned_;  // chunks an in-flight push still needs
  // Chunks a client uploaded for a commit still to come: kept from eviction
  // until that commit (or upload_pin_ms); bounded by upload_pins_max.
  std::map<ChunkKey, uint64_t> upload_pins_;  // -> expiry (ms)
  LockTable locks_;                 // this POP as primary
  struct LockWaiter {
    Bytes oid;
    uint64_t deadline_ms;
    LockCont done;
    uint64_t requester_conn = 0;  // 0: this POP's own request
  };
  std::map<uint64_t, LockWaiter> lock_waiters_;  // tag -> queued request
  static constexpr size_t kLockSyncObjectsMax = 64;  // objects per LockSync
  std::set<uint32_t> lock_sync_in_flight_;  // backups (0: the DC) with a LockSync unanswered
  std::set<Bytes> lock_sync_retry_;         // objects whose push failed: resent on the next tick
  uint64_t locks_inherited_total_ = 0;
  Status CheckEpoch(const Peer& from, const pb::Envelope& req);
  void FetchMap();
  bool map_fetch_in_flight_ = false;
  uint64_t epoch_refusals_total_ = 0;
  uint64_t cache_hits_total_ = 0;
  uint64_t cache_misses_total_ = 0;
  uint64_t fragments_bad_total_ = 0;
  uint64_t fragments_forged_total_ = 0;
  uint64_t chunks_pushed_total_ = 0;
  uint64_t chunks_push_skipped_total_ = 0;
  // ---- forwarding during the upload (pop_forward.cc)
  struct ForwardPlan {
    std::vector<uint32_t> pops;
    uint64_t expires_ms;
    bool place_here = false;  // this POP is a replica: place on arrival
  };
  std::map<ChunkKey, ForwardPlan> forward_plans_;  // chunk still to arrive -> replicas
  // ---- placement before the commit (pop_place_early.cc)
  std::map<ChunkKey, uint64_t> staged_due_;  // staged chunk -> deleted from (ms)
  std::set<std::pair<uint64_t, ChunkKey>> staged_by_due_;  // the same, soonest first
  std::set<ChunkKey> placed_early_;          // staged chunks placed ahead of their commit
  std::set<ChunkKey> sweeping_;  // fragments being deleted: not placed meanwhile
  uint64_t chunks_placed_before_commit_total_ = 0;
  uint64_t staged_chunks_dropped_total_ = 0;
  uint64_t staged_bytes_dropped_total_ = 0;
  uint64_t staged_fragments_swept_total_ = 0;
  bool staged_due_loaded_ = false;
  bool staged_untracked_logged_ = false;
  std::deque<std::pair<uint32_t, ChunkKey>> forward_queue_;
  std::set<std::pair<uint32_t, ChunkKey>> forward_queued_;  // what forward_queue_ still means
  std::map<std::pair<uint32_t, ChunkKey>, int> forwarding_;  // StoreChunks in flight
  size_t forwards_in_flight_ = 0;
  struct ForwardWaiter {
    uint32_t pop;
    std::set<ChunkKey> keys;
    std::function<void()> then;
  };
  std::vector<ForwardWaiter> forward_waiters_;  // pushes waiting for forwards
  static constexpr size_t kProposedBackupsMax = 4096;
  // (subscriber, name key) of a new name -> (backup, expiry ms)
  std::map<std::pair<std::string, std::string>, std::pair<uint32_t, uint64_t>> proposed_backups_;
  uint64_t chunks_forwarded_total_ = 0;
  uint64_t chunk_forwards_failed_total_ = 0;
  uint64_t forward_plans_skipped_total_ = 0;
  uint64_t fragments_forged_reported_total_ = 0;
  ShareGate share_gate_;
  uint64_t shares_refused_total_ = 0;
  uint64_t shared_reads_total_ = 0;
  static constexpr size_t kClosedConnsRemembered = 4096;
  std::set<uint64_t> closed_conns_;  // recently closed requester connections
  struct EntryLock {
    Oid oid;
    uint32_t holder;  // the POP whose lock table granted it
    LockType type;
    uint64_t renew_at_ms;
    uint64_t touched_ms;
  };
  std::map<uint64_t, EntryLock> entry_locks_;  // held for this POP's clients
  std::map<std::pair<Bytes, uint64_t>, pb::VersionInfo> version_cache_;
  std::deque<std::pair<Bytes, uint64_t>> version_cache_order_;
  std::set<Bytes> synced_;                    // objects caught up since boot
  uint64_t sync_generation_ = 0;              // ForgetSynced calls (bug 13)
  uint64_t dc_contact_ms_ = 0;                // last OnDcContact
  bool map_stale_ = false;                    // no DC reply for map_lease_ms
  std::map<Bytes, std::vector<std::function<void(Status)>>> syncing_;
  std::set<std::pair<Bytes, uint64_t>> reporting_;
  bool placement_blocked_ = false;  // too few live gateways (logged once)
  // ---- region durability (issue 6)
  GatewayTable members_;
  RepairQueue repair_;
  std::set<std::tuple<Bytes, uint32_t, uint32_t>> bad_;  // (chunk id, index, gateway)
  // Fragments rebuilt elsewhere while their old gateway was lost or held
  // them bad: deleted from it once its inventory shows them. Bounded by
  // moved_fragments_max.
  std::map<uint32_t, std::set<std::pair<ChunkKey, uint32_t>>> moved_;
  size_t moved_count_ = 0;
  std::map<uint32_t, uint64_t> inventory_asked_ms_;  // gateway -> when
  // gateway -> (fragment count, inventory digest) it should report; a cache
  // of the fragment records, dropped when they change.
  std::map<uint32_t, std::pair<uint64_t, Bytes>> expected_;
  size_t below_redundancy_ = 0;
  uint64_t below_counted_ms_ = 0;
  uint64_t fragments_deleted_total_ = 0;
  bool gateways_expected_ = false;  // recorded gateways loaded into members_
  // ---- garbage collection and cold tier (issue 7; pop_gc.cc)
  // GC: tasks pulled from the DC's queue (GcFetch), done, acknowledged
  // (GcDone). Cold tier: objects unread for cold_after_ms lose this POP's
  // copies of their placed/cached chunks and are reported cold to the DC; a
  // read warms them (reported) and the read path rebuilds and re-caches.
  void TickGc();
  void PollGc();
  void RunGcTask(const pb::GcTask& t, std::function<void(bool done, pb::GcResult)> finish);
  void FinishGcChunks(const pb::GcTask& t, std::shared_ptr<pb::GcResult> res,
                      std::vector<std::pair<ChunkKey, uint64_t>> chunks, bool all_deleted,
                      std::function<void(bool done, pb::GcResult)> finish);
  // Chunk ids some version record of the subscriber here references
  // (false: too many records to tell; keep everything).
  bool LiveChunkIds(const std::string& subscriber, std::set<Bytes>* live);
  // In use by an upload, a push, a placement or a repair: not to be dropped.
  bool ChunkBusy(const ChunkKey& key) const;
  void NoteObjectUse(const Bytes& oid, const std::string& subscriber,
                     const std::vector<Bytes>& chunk_ids);  // reads and replica commits
  void SweepCold();
  void ReportTemperature(const Bytes& oid, bool cold);
  // Last resort of a client read: the chunk from the DC's backup store.
  void FetchFromBackup(const Oid& o, const ChunkKey& key, std::function<void(Result<Bytes>)> done);
  uint64_t gc_polled_ms_ = 0;
  bool gc_in_flight_ = false;
  GcStats gc_;
  struct ColdTrack {
    int64_t used_ms = 0;  // this process's clock; < 0: before it began (loaded)
    std::string subscriber;
    std::set<Bytes> chunk_ids;
    bool dirty = false;  // used since last written to the store
  };
  // Cold tracking in the store: loaded once (first use or sweep after
  // start), dirty entries written every cold_persist_ms, cold marks at once.
  void LoadColdTracking();
  void SaveColdTracking();
  PopStore::ObjectUse UseRecord(const Bytes& oid, const ColdTrack& t, bool cold) const;
  static constexpr size_t kColdChunkIdsSavedMax = 4096;  // per object; the rest: latest version's
  bool cold_loaded_ = false;
  uint64_t cold_saved_ms_ = 0;
  std::map<Bytes, ColdTrack> cold_track_;  // oid -> last use; bounded by cold_objects_max
  std::set<Bytes> cold_;                   // oids this POP made cold; bounded likewise
  uint64_t cold_swept_ms_ = 0;
  // ---- operators' view (issue 8; pop_report.cc)
  PopEventBuffer events_{p_.event_buffer_max};
  struct RepairWatch {  // a lost gateway's repair, until the queue drains
    uint64_t started_ms, chunks_base, bytes_base, failures_base, chunks_queued;
  };
  static constexpr size_t kRepairWatchMax = 4096;  // bounds both maps below
  std::map<uint32_t, RepairWatch> repair_watch_;   // lost gateway -> its repair
  std::map<uint32_t, uint64_t> bad_found_;         // gateway -> bad fragments this tick
  HeldResults held_;
  int64_t held_wall_offset_ms_ = 0;  // wall clock minus now_ms, for stored results
  // ---- cluster map pushed to gateways (pop_map_push.cc): at most one push
  // in flight per gateway; a gateway gets the newest epoch once the one in
  // flight is answered. Entries only for gateways in gateways_.
  void PushMapToGateways();
  std::map<uint32_t, uint64_t> map_pushed_epoch_;  // gateway -> epoch it has
  std::set<uint32_t> map_push_in_flight_;
  uint64_t maps_pushed_total_ = 0;
  static constexpr size_t kRetriesJoinedMax = 8;  // per running commit
  // (subscriber, write id) of commits running here -> retries waiting on them.
  std::map<std::pair<std::string, std::string>, std::vector<Incoming>> running_commits_;
  uint64_t placed_asked_ms_ = 0;
  uint64_t placed_cursor_ = 0;  // PlacementWaits seq where the next round starts
  std::set<std::pair<uint32_t, std::string>> placed_asking_;  // (pop, subscriber) in flight
};

}  // namespace mistore
