// Catalog: the DC's durable record of POPs (the cluster map, versioned by an
// epoch that only grows), of subscribers' names -> oids, and of objects'
// latest versions. SQLite (WAL), each change in one transaction. Used from
// the DC's loop thread only. Issue 7 adds the PostgreSQL implementation
// behind the same interface.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "shared/proto/mistore.pb.h"
#include "shared/store/sqlite.h"

namespace mistore {

class Catalog {
 public:
  static Result<std::unique_ptr<Catalog>> Open(const std::string& data_dir);

  // Cluster map.
  Status PopUp(uint32_t pop_id, const std::string& region, const std::string& addr);
  Status PopDown(uint32_t pop_id);
  Result<pb::ClusterMap> Map();

  // Names: ClaimName inserts proposed_oid unless the name exists; returns
  // the oid that holds the name and whether it was created now.
  Result<std::pair<Bytes, bool>> ClaimName(const std::string& subscriber, const Bytes& name_key,
                                           const Bytes& proposed_oid);
  Result<Bytes> LookupName(const std::string& subscriber, const Bytes& name_key);

  Status ReportVersion(const pb::VersionInfo& info);
  Result<pb::ObjectList> ListObjects(const std::string& subscriber);

  // ---- read-only queries for the admin API (dc-backend/admin.h; issue 8) ----
  struct SubscriberUsage {
    std::string subscriber;
    uint64_t objects = 0;
    uint64_t bytes = 0;  // plaintext size of each object's latest version
  };
  // Largest users first, at most `limit`.
  Result<std::vector<SubscriberUsage>> UsageBySubscriber(size_t limit);
  struct ObjectRecord {
    std::string subscriber;
    uint64_t latest_version = 0;
    uint64_t size_bytes = 0;
    uint64_t names = 0;  // names that point at this oid
  };
  Result<ObjectRecord> FindObject(const Bytes& oid);  // NotFound when unknown
  struct Totals {
    uint64_t objects = 0, bytes = 0, subscribers = 0, names = 0;
  };
  Result<Totals> CountTotals();

 private:
  explicit Catalog(Db db) : db_(std::move(db)) {}
  Status BumpEpoch();
  Db db_;
};

}  // namespace mistore
