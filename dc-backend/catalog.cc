#include "dc-backend/catalog.h"

#include "shared/store/file_util.h"

namespace mistore {

namespace {
const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES('epoch', 0);
CREATE TABLE IF NOT EXISTS pops(
  id INTEGER PRIMARY KEY, region TEXT NOT NULL, addr TEXT NOT NULL, up INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS names(
  id INTEGER PRIMARY KEY, subscriber TEXT NOT NULL, name_key BLOB NOT NULL, oid BLOB NOT NULL,
  UNIQUE(subscriber, name_key));
CREATE TABLE IF NOT EXISTS objects(
  id INTEGER PRIMARY KEY, oid BLOB NOT NULL UNIQUE, subscriber TEXT NOT NULL,
  name_sealed BLOB NOT NULL, latest_version INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS objects_subscriber ON objects(subscriber);
)";
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
}  // namespace

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& data_dir) {
  MS_RETURN_IF_ERROR(MakeDirs(data_dir));
  MS_ASSIGN_OR_RETURN(Db db, Db::Open(data_dir + "/catalog.sqlite"));
  MS_RETURN_IF_ERROR(db.Exec(kSchema));
  // Every POP is presumed down until it says hello again after a DC restart;
  // that is a change of the map, so the epoch moves on (it never goes back).
  std::unique_ptr<Catalog> c(new Catalog(std::move(db)));
  MS_RETURN_IF_ERROR(InTransaction(c->db_, [&]() -> Status {
    MS_RETURN_IF_ERROR(c->db_.Exec("UPDATE pops SET up=0"));
    return c->BumpEpoch();
  }));
  return c;
}

Status Catalog::BumpEpoch() { return db_.Exec("UPDATE meta SET value=value+1 WHERE key='epoch'"); }

Status Catalog::PopUp(uint32_t pop_id, const std::string& region, const std::string& addr) {
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT region, addr, up FROM pops WHERE id=?"));
  q.Bind(1, int64_t(pop_id));
  Status st;
  if (q.Step(&st) && q.Text(0) == region && q.Text(1) == addr && q.Int(2) == 1) return Status::Ok();
  MS_RETURN_IF_ERROR(st);
  return InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare(
        "INSERT OR REPLACE INTO pops(id, region, addr, up) VALUES(?,?,?,1)"));
    u.Bind(1, int64_t(pop_id)).Bind(2, region).Bind(3, addr);
    MS_RETURN_IF_ERROR(u.Run());
    return BumpEpoch();
  });
}

Status Catalog::PopDown(uint32_t pop_id) {
  return InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt u, db_.Prepare("UPDATE pops SET up=0 WHERE id=? AND up=1"));
    u.Bind(1, int64_t(pop_id));
    MS_RETURN_IF_ERROR(u.Run());
    if (db_.Changes() == 0) return Status::Ok();
    return BumpEpoch();
  });
}

Result<pb::ClusterMap> Catalog::Map() {
  pb::ClusterMap map;
  MS_ASSIGN_OR_RETURN(Stmt e, db_.Prepare("SELECT value FROM meta WHERE key='epoch'"));
  Status st;
  if (e.Step(&st)) map.set_epoch(uint64_t(e.Int(0)));
  MS_RETURN_IF_ERROR(st);
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT id, region, addr, up FROM pops ORDER BY id"));
  while (q.Step(&st)) {
    auto* p = map.add_pops();
    p->set_pop_id(uint32_t(q.Int(0)));
    p->set_region(q.Text(1));
    p->set_addr(q.Text(2));
    p->set_up(q.Int(3) != 0);
  }
  MS_RETURN_IF_ERROR(st);
  return map;
}

Result<std::pair<Bytes, bool>> Catalog::ClaimName(const std::string& subscriber,
                                                  const Bytes& name_key,
                                                  const Bytes& proposed_oid) {
  bool created = false;
  MS_RETURN_IF_ERROR(InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt ins, db_.Prepare(
        "INSERT OR IGNORE INTO names(subscriber, name_key, oid) VALUES(?,?,?)"));
    ins.Bind(1, subscriber).Bind(2, name_key).Bind(3, proposed_oid);
    MS_RETURN_IF_ERROR(ins.Run());
    created = db_.Changes() > 0;
    return Status::Ok();
  }));
  MS_ASSIGN_OR_RETURN(Bytes oid, LookupName(subscriber, name_key));
  return std::make_pair(oid, created);
}

Result<Bytes> Catalog::LookupName(const std::string& subscriber, const Bytes& name_key) {
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare("SELECT oid FROM names WHERE subscriber=? AND name_key=?"));
  q.Bind(1, subscriber).Bind(2, name_key);
  Status st;
  if (q.Step(&st)) return q.Blob(0);
  MS_RETURN_IF_ERROR(st);
  return NotFound("no object of that name");
}

Status Catalog::ReportVersion(const pb::VersionInfo& info) {
  return InTransaction(db_, [&]() -> Status {
    MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare(
        "INSERT INTO objects(oid, subscriber, name_sealed, latest_version, size) VALUES(?,?,?,?,?) "
        "ON CONFLICT(oid) DO UPDATE SET "
        "name_sealed=CASE WHEN excluded.latest_version > latest_version THEN excluded.name_sealed ELSE name_sealed END, "
        "size=CASE WHEN excluded.latest_version > latest_version THEN excluded.size ELSE size END, "
        "latest_version=MAX(latest_version, excluded.latest_version)"));
    q.Bind(1, ToBytes(info.oid())).Bind(2, info.subscriber()).Bind(3, ToBytes(info.name_sealed()))
        .Bind(4, int64_t(info.version())).Bind(5, int64_t(info.size_bytes()));
    return q.Run();
  });
}

Result<pb::ObjectList> Catalog::ListObjects(const std::string& subscriber) {
  pb::ObjectList list;
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare(
      "SELECT oid, name_sealed, latest_version, size FROM objects WHERE subscriber=? ORDER BY id"));
  q.Bind(1, subscriber);
  Status st;
  while (q.Step(&st)) {
    auto* e = list.add_objects();
    Bytes oid = q.Blob(0), name = q.Blob(1);
    e->set_oid(std::string(oid.begin(), oid.end()));
    e->set_name_sealed(std::string(name.begin(), name.end()));
    e->set_latest_version(uint64_t(q.Int(2)));
    e->set_size_bytes(uint64_t(q.Int(3)));
  }
  MS_RETURN_IF_ERROR(st);
  return list;
}

// ---- read-only queries for the admin API (issue 8) ----------------------

Result<std::vector<Catalog::SubscriberUsage>> Catalog::UsageBySubscriber(size_t limit) {
  std::vector<SubscriberUsage> out;
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare(
      "SELECT subscriber, COUNT(*), COALESCE(SUM(size), 0) FROM objects GROUP BY subscriber "
      "ORDER BY 3 DESC, 1 LIMIT ?"));
  q.Bind(1, int64_t(limit));
  Status st;
  while (q.Step(&st)) out.push_back({q.Text(0), uint64_t(q.Int(1)), uint64_t(q.Int(2))});
  MS_RETURN_IF_ERROR(st);
  return out;
}

Result<Catalog::ObjectRecord> Catalog::FindObject(const Bytes& oid) {
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare(
      "SELECT subscriber, latest_version, size, (SELECT COUNT(*) FROM names WHERE names.oid=?) "
      "FROM objects WHERE oid=?"));
  q.Bind(1, oid).Bind(2, oid);
  Status st;
  if (q.Step(&st)) return ObjectRecord{q.Text(0), uint64_t(q.Int(1)), uint64_t(q.Int(2)), uint64_t(q.Int(3))};
  MS_RETURN_IF_ERROR(st);
  return NotFound("no such object in the catalog");
}

Result<Catalog::Totals> Catalog::CountTotals() {
  MS_ASSIGN_OR_RETURN(Stmt q, db_.Prepare(
      "SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(DISTINCT subscriber), "
      "(SELECT COUNT(*) FROM names) FROM objects"));
  Status st;
  Totals t;
  if (q.Step(&st))
    t = Totals{uint64_t(q.Int(0)), uint64_t(q.Int(1)), uint64_t(q.Int(2)), uint64_t(q.Int(3))};
  MS_RETURN_IF_ERROR(st);
  return t;
}

}  // namespace mistore
