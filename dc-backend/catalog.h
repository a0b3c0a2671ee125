// Catalog: the DC's durable record of POPs (the cluster map, versioned by an
// epoch that only grows), of subscribers' names -> oids, and of objects'
// latest versions. SQLite (WAL), each change in one transaction. Used from
// the DC's loop thread only. Issue 7 adds the PostgreSQL implementation
// behind the same interface.
#pragma once

#include <memory>
#include <string>

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

 private:
  explicit Catalog(Db db) : db_(std::move(db)) {}
  Status BumpEpoch();
  Db db_;
};

}  // namespace mistore
