#include "dc-backend/report_group.h"

#include "shared/core/assert.h"

namespace mistore {

ReportGroup::ReportGroup(size_t group_max) : group_max_(group_max) {
  MS_ASSERT(group_max_ > 0);
}

Status ReportGroup::Add(pb::VersionInfo info, Done done) {
  if (full())
    return ResourceExhausted("the DC's report group is full (" +
                             std::to_string(group_max_) + " reports); retry");
  infos_.push_back(std::move(info));
  done_.push_back(std::move(done));
  return Status::Ok();
}

Status ReportGroup::Flush(const Commit& commit) {
  if (infos_.empty()) return Status::Ok();
  std::vector<pb::VersionInfo> infos = std::move(infos_);
  std::vector<Done> done = std::move(done_);
  infos_.clear();
  done_.clear();
  Status st = commit(infos);
  for (auto& d : done) d(st);
  return st;
}

}  // namespace mistore
