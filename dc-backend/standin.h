// StandIn: the DC acting as an object's backup replica while one of the
// object's POPs is down (design section 3: "when a primary fails, its
// backup becomes primary and the DC becomes backup"). It is a PopCore with
// replica id 0 (kDcReplica), no gateways and no placement: it keeps whole
// copies of the chunks and versions it is sent, in <data_dir>/standin
// (SQLite + chunk files, like a POP). The DC daemon routes the replica
// messages (StoreChunk, CommitVersion, FinalizeVersion, FetchVersion,
// FetchChunk) here and feeds it every cluster map. Garbage collection
// reaches it through the DC's backup-store tasks (dc_gc.h: DcGc runs each
// of them on the stand-in as well, RunGcTask, before acknowledging it).
// It is also the one replica and lock server of DC-tier objects
// (IsDcTier, `mistore put --tier dc`): it commits their versions alone and
// reports them to the DC's catalog through CallDc, in process; the DC's
// backup copier reaches it the same way (LocalCall), as "POP 0".
// Loop thread only.
#pragma once

#include <map>
#include <memory>

#include "pop-server/pop_core.h"
#include "pop-server/sqlite_pop_store.h"
#include "shared/uvio/connection.h"
#include "shared/uvio/peer_pool.h"

namespace mistore {

class StandIn {
 public:
  static Result<std::unique_ptr<StandIn>> Open(EventLoop* loop, const std::string& data_dir,
                                               const ConnectionLimits& limits, int k, int m);

  // A replica message (PopCore::IsStandInMessage) from POP `pop_id` on connection `c`.
  void OnRequest(const Connection::Ptr& c, uint32_t pop_id, const pb::Envelope& env);
  // A request from the DC itself (the backup copier): answered through done.
  void LocalCall(pb::Envelope env, std::function<void(Result<pb::Envelope>)> done);
  // How the stand-in's calls to the DC (Dest::kDc) reach it: in process.
  using CallDc =
      std::function<void(pb::Envelope req, std::function<void(Result<pb::Envelope>)> done)>;
  void set_call_dc(CallDc f) { call_dc_ = std::move(f); }
  void OnClusterMap(const pb::ClusterMap& map);
  void Tick();
  void ForgetConnection(const Connection::Ptr& c);
  // Drops the task's collected versions and the chunks no version here
  // references any more (PopCore::OnGcTask); done(false, ...) when a chunk
  // is in use and the task must be retried.
  void RunGcTask(const pb::GcTask& t, std::function<void(bool done, pb::GcResult)> done);

 private:
  StandIn(EventLoop* loop, std::unique_ptr<SqlitePopStore> store, const ConnectionLimits& limits,
          PopParams params);
  void Flush();

  EventLoop* loop_;
  std::unique_ptr<SqlitePopStore> store_;
  PopCore core_;
  PeerPool pops_;
  uint64_t next_conn_id_ = 1;
  std::map<uint64_t, std::weak_ptr<Connection>> conns_;
  std::map<Connection*, uint64_t> conn_ids_;
  // LocalCall: one pseudo-connection id per call, answered once.
  std::map<uint64_t, std::function<void(Result<pb::Envelope>)>> local_calls_;
  CallDc call_dc_;
};

}  // namespace mistore
