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
  if (st.ok() || IsWholeDatabaseFailure(st) || infos.size() == 1) {
    for (auto& d : done) d(st);
    return st;
  }
  return CommitSingly(commit, infos, done);
}

bool ReportGroup::IsWholeDatabaseFailure(const Status& st) {
  return st.code() == Code::kUnavailable;
}

Status ReportGroup::CommitSingly(const Commit& commit, std::vector<pb::VersionInfo>& infos,
                                 std::vector<Done>& done) {
  Status first_error = Status::Ok();
  Status db_down = Status::Ok();  // set by the first whole-database failure
  for (size_t i = 0; i < infos.size(); i++) {
    Status st = db_down.ok() ? commit({std::move(infos[i])}) : db_down;
    if (IsWholeDatabaseFailure(st)) db_down = st;
    if (!st.ok() && first_error.ok()) first_error = st;
    done[i](st);
  }
  return first_error;
}

}  // namespace mistore
