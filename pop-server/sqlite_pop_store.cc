#include "pop-server/sqlite_pop_store.h"

#include "shared/store/file_util.h"

namespace mistore {

namespace {
constexpr size_t kChunkFileBytesMax = 16u << 20;
const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY, subscriber TEXT NOT NULL, chunk_id BLOB NOT NULL,
  size INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL, has_data INTEGER NOT NULL DEFAULT 0,
  last_used INTEGER NOT NULL DEFAULT 0, UNIQUE(subscriber, chunk_id));
CREATE INDEX IF NOT EXISTS chunks_state ON chunks(state, last_used);
CREATE TABLE IF NOT EXISTS objects(
  id INTEGER PRIMARY KEY, oid BLOB NOT NULL UNIQUE, subscriber TEXT NOT NULL,
  latest INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS versions(
  object INTEGER NOT NULL, version INTEGER NOT NULL, info BLOB NOT NULL,
  reported INTEGER NOT NULL DEFAULT 0, prepared INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(object, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fragments(
  chunk INTEGER NOT NULL, idx INTEGER NOT NULL, gateway INTEGER NOT NULL,
  PRIMARY KEY(chunk, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fragments_gateway ON fragments(gateway);
CREATE TABLE IF NOT EXISTS counters(gateway INTEGER PRIMARY KEY, next INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_chunk_id ON chunks(chunk_id);
CREATE TABLE IF NOT EXISTS placement_waits(
  chunk INTEGER NOT NULL, pop INTEGER NOT NULL, UNIQUE(chunk, pop));
CREATE TABLE IF NOT EXISTS held_results(
  subscriber TEXT NOT NULL, write_id BLOB NOT NULL, gateway INTEGER NOT NULL,
  at_ms INTEGER NOT NULL, undelivered INTEGER NOT NULL, reply BLOB NOT NULL,
  PRIMARY KEY(subscriber, write_id));
CREATE INDEX IF NOT EXISTS held_results_at ON held_results(at_ms);
)";
}  // namespace

Result<std::unique_ptr<SqlitePopStore>> SqlitePopStore::Open(const std::string& data_dir) {
  MS_RETURN_IF_ERROR(MakeDirs(data_dir + "/chunks"));
  MS_ASSIGN_OR_RETURN(Db db, Db::Open(data_dir + "/pop.sqlite"));
  std::unique_ptr<SqlitePopStore> s(new SqlitePopStore(data_dir, std::move(db)));
  MS_RETURN_IF_ERROR(s->Init());
  return s;
}

Status SqlitePopStore::Init() {
  MS_RETURN_IF_ERROR(db_.Exec(kSchema));
  MS_RETURN_IF_ERROR(InitObjectUses());
  MS_ASSIGN_OR_RETURN(Stmt s, db_.Prepare("SELECT COALESCE(MAX(last_used),0) FROM chunks"));
  Status st;
  if (s.Step(&st)) clock_ = uint64_t(s.Int(0));
  return st;
}

std::string SqlitePopStore::ChunkPath(int64_t row) const {
  return dir_ + "/chunks/" + std::to_string(row % 256) + "/" + std::to_string(row);
}

Result<int64_t> SqlitePopStore::ChunkRow(const ChunkKey& key, bool create) {
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT id FROM chunks WHERE subscriber=? AND chunk_id=?"));
  q.Bind(1, key.subscriber).Bind(2, key.chunk_id);
  Status st;
  if (q.Step(&st)) return q.Int(0);
  MS_RETURN_IF_ERROR(st);
  if (!create) return NotFound("chunk " + ToHex(key.chunk_id));
  MS_ASSIGN_OR_RETURN(Stmt ins, db_.Prepare(
      "INSERT INTO chunks(subscriber, chunk_id, state) VALUES(?,?,?)"));
  ins.Bind(1, key.subscriber).Bind(2, key.chunk_id).Bind(3, int64_t(ChunkState::kStaged));
  MS_RETURN_IF_ERROR(ins.Run());
  return db_.LastInsertRowid();
}

// Durability order: row exists (has_data=0) -> payload file fsynced ->
// has_data=1. A crash in between leaves has_data=0: the chunk reads as
// missing, never as torn bytes.
Status SqlitePopStore::PutChunk(const ChunkKey& key, const Bytes& data, ChunkState state) {
  MS_ASSIGN_OR_RETURN(int64_t row, ChunkRow(key, true));
  MS_ASSIGN_OR_RETURN(ChunkInfo info, GetChunkInfo(key));
  if (!info.has_data) {
    MS_RETURN_IF_ERROR(MakeDirs(dir_ + "/chunks/" + std::to_string(row % 256)));
    MS_RETURN_IF_ERROR(WriteFileDurable(ChunkPath(row), data));
  }
  // Keep the stronger claim: replica/placed beat staged and cached.
  ChunkState keep = info.state;
  auto rank = [](ChunkState s) {
    switch (s) {
      case ChunkState::kCached: return 0;
      case ChunkState::kStaged: return 1;
      case ChunkState::kReplica: return 2;
      case ChunkState::kPlaced: return 3;
    }
    return 0;
  };
  if (rank(state) > rank(info.state) || (!info.has_data && info.state == ChunkState::kStaged))
    keep = state;
  if (info.state == ChunkState::kPlaced) keep = ChunkState::kPlaced;
  // Chunk ids name their content: when the payload is already held, the
  // held one (and its size) stays; a re-put never rewrites it.
  uint64_t size = info.has_data ? info.size_bytes : data.size();
  MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare(
      "UPDATE chunks SET has_data=1, size=?, state=?, last_used=? WHERE id=?"));
  u.Bind(1, int64_t(size)).Bind(2, int64_t(keep)).Bind(3, int64_t(++clock_)).Bind(4, row);
  return u.Run();
}

Result<ChunkInfo> SqlitePopStore::GetChunkInfo(const ChunkKey& key) {
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare(
      "SELECT state, has_data, size FROM chunks WHERE subscriber=? AND chunk_id=?"));
  q.Bind(1, key.subscriber).Bind(2, key.chunk_id);
  Status st;
  if (!q.Step(&st)) {
    MS_RETURN_IF_ERROR(st);
    return NotFound("chunk " + ToHex(key.chunk_id));
  }
  return ChunkInfo{ChunkState(q.Int(0)), q.Int(1) != 0, uint64_t(q.Int(2))};
}

Result<Bytes> SqlitePopStore::GetChunk(const ChunkKey& key) {
  MS_ASSIGN_OR_RETURN(int64_t row, ChunkRow(key, false));
  MS_ASSIGN_OR_RETURN(ChunkInfo info, GetChunkInfo(key));
  if (!info.has_data) return NotFound("chunk " + ToHex(key.chunk_id) + " not held here");
  MS_ASSIGN_OR_RETURN(Bytes data, ReadFileBytes(ChunkPath(row), kChunkFileBytesMax));
  if (data.size() != info.size_bytes) return Corrupt("chunk file " + ChunkPath(row) + " has wrong size");
  MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare("UPDATE chunks SET last_used=? WHERE id=?"));
  u.Bind(1, int64_t(++clock_)).Bind(2, row);
  MS_RETURN_IF_ERROR(u.Run());
  return data;
}

Status SqlitePopStore::SetChunkState(const ChunkKey& key, ChunkState state) {
  MS_ASSIGN_OR_RETURN(int64_t row, ChunkRow(key, false));
  MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare("UPDATE chunks SET state=? WHERE id=?"));
  u.Bind(1, int64_t(state)).Bind(2, row);
  return u.Run();
}

Status SqlitePopStore::DropChunkData(const ChunkKey& key) {
  MS_ASSIGN_OR_RETURN(int64_t row, ChunkRow(key, false));
  MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare("UPDATE chunks SET has_data=0 WHERE id=?"));
  u.Bind(1, row);
  MS_RETURN_IF_ERROR(u.Run());
  return RemoveFile(ChunkPath(row));
}

std::vector<ChunkKey> SqlitePopStore::ChunksInState(ChunkState state, size_t limit) {
  std::vector<ChunkKey> out;
  auto q = db_.Prepare("SELECT subscriber, chunk_id FROM chunks WHERE state=? ORDER BY id LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(state)).Bind(2, int64_t(limit));
  Status st;
  while (q->Step(&st)) out.push_back(ChunkKey{q->Text(0), q->Blob(1)});
  return out;
}

std::vector<ChunkKey> SqlitePopStore::UnplacedChunks(size_t limit) {
  return ChunksInState(ChunkState::kReplica, limit);
}

std::vector<ChunkKey> SqlitePopStore::StagedChunks(size_t limit) {
  return ChunksInState(ChunkState::kStaged, limit);
}

std::vector<std::pair<ChunkKey, uint64_t>> SqlitePopStore::EvictionCandidates(size_t limit) {
  std::vector<std::pair<ChunkKey, uint64_t>> out;
  auto q = db_.Prepare(
      "SELECT subscriber, chunk_id, size FROM chunks WHERE has_data=1 AND state IN (?,?) "
      "AND NOT EXISTS (SELECT 1 FROM placement_waits w WHERE w.chunk=chunks.id) "
      "ORDER BY last_used LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(ChunkState::kPlaced)).Bind(2, int64_t(ChunkState::kCached)).Bind(3, int64_t(limit));
  Status st;
  while (q->Step(&st)) out.push_back({ChunkKey{q->Text(0), q->Blob(1)}, uint64_t(q->Int(2))});
  return out;
}

uint64_t SqlitePopStore::CachedBytes() {
  auto q = db_.Prepare("SELECT COALESCE(SUM(size),0) FROM chunks WHERE has_data=1");
  Status st;
  if (q.ok() && q->Step(&st)) return uint64_t(q->Int(0));
  return 0;
}

Result<int64_t> SqlitePopStore::ObjectRow(const Bytes& oid, const std::string& subscriber,
                                          bool create) {
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT id FROM objects WHERE oid=?"));
  q.Bind(1, oid);
  Status st;
  if (q.Step(&st)) return q.Int(0);
  MS_RETURN_IF_ERROR(st);
  if (!create) return NotFound("object " + ToHex(oid));
  MS_ASSIGN_OR_RETURN(Stmt ins, db_.Prepare("INSERT INTO objects(oid, subscriber) VALUES(?,?)"));
  ins.Bind(1, oid).Bind(2, subscriber);
  MS_RETURN_IF_ERROR(ins.Run());
  return db_.LastInsertRowid();
}

Status SqlitePopStore::PutVersion(const pb::VersionInfo& info) {
  Bytes oid(info.oid().begin(), info.oid().end());
  return InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(int64_t obj, ObjectRow(oid, info.subscriber(), true));
    std::string blob = info.SerializeAsString();
    MS_ASSIGN_OR_RETURN(Stmt ins, db_.Prepare(
        "INSERT OR REPLACE INTO versions(object, version, info, reported, prepared) VALUES(?,?,?,0,?)"));
    ins.Bind(1, obj).Bind(2, int64_t(info.version())).Bind(3, Bytes(blob.begin(), blob.end()))
        .Bind(4, int64_t(info.prepared() ? 1 : 0));
    MS_RETURN_IF_ERROR(ins.Run());
    if (info.prepared()) return Status::Ok();
    MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare("UPDATE objects SET latest=MAX(latest, ?) WHERE id=?"));
    u.Bind(1, int64_t(info.version())).Bind(2, obj);
    return u.Run();
  });
}

Status SqlitePopStore::CommitPrepared(const Bytes& oid, uint64_t version) {
  MS_ASSIGN_OR_RETURN(pb::VersionInfo info, GetVersion(oid, version));
  if (!info.prepared()) return Status::Ok();
  info.set_prepared(false);
  return PutVersion(info);
}

Status SqlitePopStore::DropVersion(const Bytes& oid, uint64_t version) {
  MS_ASSIGN_OR_RETURN(int64_t obj, ObjectRow(oid, "", false));
  MS_ASSIGN_OR_RETURN(Stmt d, db_.Prepare("DELETE FROM versions WHERE object=? AND version=? AND prepared=1"));
  d.Bind(1, obj).Bind(2, int64_t(version));
  return d.Run();
}

uint64_t SqlitePopStore::PreparedVersion(const Bytes& oid) {
  auto obj = ObjectRow(oid, "", false);
  if (!obj.ok()) return 0;
  auto q = db_.Prepare("SELECT MAX(version) FROM versions WHERE object=? AND prepared=1");
  if (!q.ok()) return 0;
  q->Bind(1, *obj);
  Status st;
  return q->Step(&st) && !q->IsNull(0) ? uint64_t(q->Int(0)) : 0;
}

std::vector<pb::VersionInfo> SqlitePopStore::PreparedVersions(size_t limit) {
  std::vector<pb::VersionInfo> out;
  auto q = db_.Prepare("SELECT info FROM versions WHERE prepared=1 LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(limit));
  Status st;
  while (q->Step(&st)) {
    Bytes blob = q->Blob(0);
    pb::VersionInfo info;
    if (info.ParseFromArray(blob.data(), int(blob.size()))) out.push_back(std::move(info));
  }
  return out;
}

Result<pb::VersionInfo> SqlitePopStore::GetVersion(const Bytes& oid, uint64_t version) {
  MS_ASSIGN_OR_RETURN(int64_t obj, ObjectRow(oid, "", false));
  if (version == 0) version = LatestVersion(oid);
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT info FROM versions WHERE object=? AND version=?"));
  q.Bind(1, obj).Bind(2, int64_t(version));
  Status st;
  if (!q.Step(&st)) {
    MS_RETURN_IF_ERROR(st);
    return NotFound("version " + std::to_string(version) + " of object " + ToHex(oid));
  }
  Bytes blob = q.Blob(0);
  pb::VersionInfo info;
  if (!info.ParseFromArray(blob.data(), int(blob.size())))
    return Corrupt("stored version record does not parse");
  return info;
}

uint64_t SqlitePopStore::LatestVersion(const Bytes& oid) {
  auto q = db_.Prepare("SELECT latest FROM objects WHERE oid=?");
  if (!q.ok()) return 0;
  q->Bind(1, oid);
  Status st;
  return q->Step(&st) ? uint64_t(q->Int(0)) : 0;
}

std::vector<pb::VersionInfo> SqlitePopStore::UnreportedVersions(size_t limit) {
  std::vector<pb::VersionInfo> out;
  auto q = db_.Prepare("SELECT info FROM versions WHERE reported=0 AND prepared=0 LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(limit));
  Status st;
  while (q->Step(&st)) {
    Bytes blob = q->Blob(0);
    pb::VersionInfo info;
    if (info.ParseFromArray(blob.data(), int(blob.size()))) out.push_back(std::move(info));
  }
  return out;
}

Status SqlitePopStore::MarkReported(const Bytes& oid, uint64_t version) {
  MS_ASSIGN_OR_RETURN(int64_t obj, ObjectRow(oid, "", false));
  MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare("UPDATE versions SET reported=1 WHERE object=? AND version=?"));
  u.Bind(1, obj).Bind(2, int64_t(version));
  return u.Run();
}

Status SqlitePopStore::RecordFragment(const ChunkKey& key, uint32_t index, uint32_t gateway_id) {
  MS_ASSIGN_OR_RETURN(int64_t row, ChunkRow(key, false));
  MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare(
      "INSERT OR REPLACE INTO fragments(chunk, idx, gateway) VALUES(?,?,?)"));
  u.Bind(1, row).Bind(2, int64_t(index)).Bind(3, int64_t(gateway_id));
  return u.Run();
}

std::vector<FragmentLoc> SqlitePopStore::Fragments(const ChunkKey& key) {
  std::vector<FragmentLoc> out;
  auto row = ChunkRow(key, false);
  if (!row.ok()) return out;
  auto q = db_.Prepare("SELECT idx, gateway FROM fragments WHERE chunk=? ORDER BY idx");
  if (!q.ok()) return out;
  q->Bind(1, *row);
  Status st;
  while (q->Step(&st)) out.push_back(FragmentLoc{uint32_t(q->Int(0)), uint32_t(q->Int(1))});
  return out;
}

std::vector<std::pair<ChunkKey, uint32_t>> SqlitePopStore::FragmentsOnGateway(uint32_t gateway_id,
                                                                            size_t limit) {
  std::vector<std::pair<ChunkKey, uint32_t>> out;
  auto q = db_.Prepare(
      "SELECT c.subscriber, c.chunk_id, f.idx FROM fragments f JOIN chunks c ON c.id=f.chunk "
      "WHERE f.gateway=? ORDER BY f.chunk, f.idx LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(gateway_id)).Bind(2, int64_t(std::min<size_t>(limit, INT64_MAX)));
  Status st;
  while (q->Step(&st)) out.emplace_back(ChunkKey{q->Text(0), q->Blob(1)}, uint32_t(q->Int(2)));
  return out;
}

std::vector<uint32_t> SqlitePopStore::GatewaysWithFragments() {
  std::vector<uint32_t> out;
  auto q = db_.Prepare("SELECT DISTINCT gateway FROM fragments ORDER BY gateway");
  if (!q.ok()) return out;
  Status st;
  while (q->Step(&st)) out.push_back(uint32_t(q->Int(0)));
  return out;
}

Result<uint32_t> SqlitePopStore::NextCounter(uint32_t gateway_id) {
  uint32_t value = 0;
  Status st = InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT next FROM counters WHERE gateway=?"));
    q.Bind(1, int64_t(gateway_id));
    Status s;
    value = q.Step(&s) ? uint32_t(q.Int(0)) : 1;
    MS_RETURN_IF_ERROR(s);
    MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare(
        "INSERT OR REPLACE INTO counters(gateway, next) VALUES(?,?)"));
    u.Bind(1, int64_t(gateway_id)).Bind(2, int64_t(value) + 1);
    return u.Run();
  });
  MS_RETURN_IF_ERROR(st);
  return value;
}

std::vector<std::pair<ChunkKey, FragmentLoc>> SqlitePopStore::FragmentsOfChunkId(const Bytes& chunk_id) {
  std::vector<std::pair<ChunkKey, FragmentLoc>> out;
  auto q = db_.Prepare(
      "SELECT c.subscriber, f.idx, f.gateway FROM chunks c JOIN fragments f ON f.chunk=c.id "
      "WHERE c.chunk_id=? ORDER BY c.id, f.idx");
  if (!q.ok()) return out;
  q->Bind(1, chunk_id);
  Status st;
  while (q->Step(&st))
    out.push_back({ChunkKey{q->Text(0), chunk_id}, FragmentLoc{uint32_t(q->Int(1)), uint32_t(q->Int(2))}});
  return out;
}

namespace {
// Runs `sql` (binds: pop id, subscriber, chunk id) once per key in one
// transaction, preparing it once (Run resets it for the next key).
Status RunPerChunkKey(Db& db, const char* sql, const std::vector<ChunkKey>& keys,
                      uint32_t pop_id) {
  if (keys.empty()) return Status::Ok();
  return InTransaction(db, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt u, db.Prepare(sql));
    for (auto& key : keys) {
      u.Bind(1, int64_t(pop_id)).Bind(2, key.subscriber).Bind(3, key.chunk_id);
      MS_RETURN_IF_ERROR(u.Run());
    }
    return Status::Ok();
  });
}
}  // namespace

Status SqlitePopStore::AddPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) {
  return RunPerChunkKey(db_,
                        "INSERT OR IGNORE INTO placement_waits(chunk, pop) "
                        "SELECT id, ? FROM chunks WHERE subscriber=? AND chunk_id=?",
                        keys, pop_id);
}

Status SqlitePopStore::ClearPlacementWaits(const std::vector<ChunkKey>& keys, uint32_t pop_id) {
  return RunPerChunkKey(db_,
                        "DELETE FROM placement_waits WHERE pop=? AND chunk IN "
                        "(SELECT id FROM chunks WHERE subscriber=? AND chunk_id=?)",
                        keys, pop_id);
}

std::vector<PlacementWait> SqlitePopStore::PlacementWaits(uint64_t after_seq, size_t limit) {
  std::vector<PlacementWait> out;
  auto q = db_.Prepare(
      "SELECT w.rowid, c.subscriber, c.chunk_id, w.pop FROM placement_waits w "
      "JOIN chunks c ON c.id=w.chunk WHERE w.rowid>? ORDER BY w.rowid LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(std::min<uint64_t>(after_seq, INT64_MAX)))
      .Bind(2, int64_t(std::min<size_t>(limit, INT64_MAX)));
  Status st;
  while (q->Step(&st))
    out.push_back(PlacementWait{ChunkKey{q->Text(1), q->Blob(2)}, uint32_t(q->Int(3)), uint64_t(q->Int(0))});
  return out;
}

// ---- garbage collection (issue 7) ----

Status SqlitePopStore::DeleteVersion(const Bytes& oid, uint64_t version) {
  auto obj = ObjectRow(oid, "", false);
  if (!obj.ok()) return obj.status().code() == Code::kNotFound ? Status::Ok() : obj.status();
  MS_ASSIGN_OR_RETURN(Stmt d, db_.Prepare("DELETE FROM versions WHERE object=? AND version=?"));
  d.Bind(1, *obj).Bind(2, int64_t(version));
  return d.Run();
}

std::vector<pb::VersionInfo> SqlitePopStore::SubscriberVersions(const std::string& subscriber,
                                                                size_t limit) {
  std::vector<pb::VersionInfo> out;
  auto q = db_.Prepare(
      "SELECT v.info FROM versions v JOIN objects o ON o.id=v.object WHERE o.subscriber=? LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, subscriber).Bind(2, int64_t(std::min<size_t>(limit, INT64_MAX)));
  Status st;
  while (q->Step(&st)) {
    Bytes blob = q->Blob(0);
    pb::VersionInfo info;
    if (info.ParseFromArray(blob.data(), int(blob.size()))) out.push_back(std::move(info));
  }
  return out;
}

Status SqlitePopStore::DeleteChunk(const ChunkKey& key) {
  auto row = ChunkRow(key, false);
  if (!row.ok()) return row.status().code() == Code::kNotFound ? Status::Ok() : row.status();
  // Record first: a crash after it leaves an orphan file, never a record
  // pointing at a missing payload.
  MS_RETURN_IF_ERROR(InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt f, db_.Prepare("DELETE FROM fragments WHERE chunk=?"));
    f.Bind(1, *row);
    MS_RETURN_IF_ERROR(f.Run());
    MS_ASSIGN_OR_RETURN(Stmt c, db_.Prepare("DELETE FROM chunks WHERE id=?"));
    c.Bind(1, *row);
    return c.Run();
  }));
  return RemoveFile(ChunkPath(*row));
}

Status SqlitePopStore::DropFragmentRecords(const ChunkKey& key) {
  auto row = ChunkRow(key, false);
  if (!row.ok()) return row.status().code() == Code::kNotFound ? Status::Ok() : row.status();
  MS_ASSIGN_OR_RETURN(Stmt f, db_.Prepare("DELETE FROM fragments WHERE chunk=?"));
  f.Bind(1, *row);
  return f.Run();
}

// ---- cold tier (issue 7): when objects were last used ----

namespace {
// chunk_ids: each id as one length byte and its bytes.
Bytes PackIds(const std::vector<Bytes>& ids) {
  Bytes out;
  for (const auto& id : ids) {
    if (id.size() > 255) continue;  // never: chunk ids are 32 bytes
    out.push_back(uint8_t(id.size()));
    out.insert(out.end(), id.begin(), id.end());
  }
  return out;
}
std::vector<Bytes> UnpackIds(const Bytes& b) {
  std::vector<Bytes> out;
  for (size_t at = 0; at < b.size();) {
    size_t n = b[at++];
    if (at + n > b.size()) break;  // truncated: the rest is dropped
    out.emplace_back(b.begin() + long(at), b.begin() + long(at + n));
    at += n;
  }
  return out;
}
}  // namespace

Status SqlitePopStore::InitObjectUses() {
  return db_.Exec(
      "CREATE TABLE IF NOT EXISTS object_uses(oid BLOB PRIMARY KEY, subscriber TEXT NOT NULL, "
      "used_ms INTEGER NOT NULL, cold INTEGER NOT NULL, chunk_ids BLOB) WITHOUT ROWID;");
}

Status SqlitePopStore::SaveObjectUses(const std::vector<ObjectUse>& uses) {
  if (uses.empty()) return Status::Ok();
  return InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare("INSERT OR REPLACE INTO object_uses(oid, subscriber, "
                                            "used_ms, cold, chunk_ids) VALUES(?,?,?,?,?)"));
    for (const auto& x : uses) {
      u.Bind(1, x.oid).Bind(2, x.subscriber).Bind(3, x.used_wall_ms).Bind(4, int64_t(x.cold));
      u.Bind(5, PackIds(x.chunk_ids));
      MS_RETURN_IF_ERROR(u.Run());
    }
    return Status::Ok();
  });
}

std::vector<PopStore::ObjectUse> SqlitePopStore::ObjectUses(size_t limit) {
  std::vector<ObjectUse> out;
  auto q = db_.Prepare(
      "SELECT oid, subscriber, used_ms, cold, chunk_ids FROM object_uses ORDER BY oid LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(std::min<size_t>(limit, INT64_MAX)));
  Status st;
  while (q->Step(&st))
    out.push_back(ObjectUse{q->Blob(0), q->Text(1), q->Int(2), q->Int(3) != 0, UnpackIds(q->Blob(4))});
  return out;
}

// ---- kept commit results (issue 6) ----

namespace {
Bytes HeldBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
}  // namespace

Status SqlitePopStore::SaveHeldResults(
    const std::vector<HeldResultRecord>& put,
    const std::vector<std::pair<std::string, std::string>>& erase) {
  if (put.empty() && erase.empty()) return Status::Ok();
  return InTransaction(db_, [&]() -> Status {
    if (!put.empty()) {
      MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare(
          "INSERT OR REPLACE INTO held_results(subscriber, write_id, gateway, at_ms, "
          "undelivered, reply) VALUES(?,?,?,?,?,?)"));
      for (auto& r : put) {
        std::string reply;
        if (!r.reply.SerializeToString(&reply)) return Internal("kept result does not serialize");
        u.Bind(1, r.subscriber).Bind(2, HeldBytes(r.write_id)).Bind(3, int64_t(r.gateway_id))
            .Bind(4, int64_t(std::min<uint64_t>(r.at_ms, INT64_MAX))).Bind(5, int64_t(r.undelivered))
            .Bind(6, HeldBytes(reply));
        MS_RETURN_IF_ERROR(u.Run());
      }
    }
    if (!erase.empty()) {
      MS_ASSIGN_OR_RETURN(Stmt d, db_.Prepare(
          "DELETE FROM held_results WHERE subscriber=? AND write_id=?"));
      for (auto& [subscriber, write_id] : erase) {
        d.Bind(1, subscriber).Bind(2, HeldBytes(write_id));
        MS_RETURN_IF_ERROR(d.Run());
      }
    }
    return Status::Ok();
  });
}

std::vector<HeldResultRecord> SqlitePopStore::LoadHeldResults(size_t limit) {
  std::vector<HeldResultRecord> out;
  auto q = db_.Prepare(
      "SELECT subscriber, write_id, gateway, at_ms, undelivered, reply FROM held_results "
      "ORDER BY at_ms, rowid LIMIT ?");
  if (!q.ok()) return out;
  q->Bind(1, int64_t(std::min<size_t>(limit, INT64_MAX)));
  Status st;
  while (q->Step(&st)) {
    HeldResultRecord r;
    r.subscriber = q->Text(0);
    Bytes write_id = q->Blob(1);
    r.write_id.assign(write_id.begin(), write_id.end());
    r.gateway_id = uint32_t(q->Int(2));
    r.at_ms = uint64_t(q->Int(3));
    r.undelivered = q->Int(4) != 0;
    Bytes reply = q->Blob(5);
    if (!r.reply.ParseFromArray(reply.data(), int(reply.size()))) continue;  // skipped, as lost
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace mistore
