// PopCore, the cluster map forwarded to gateway agents (issue 7: "pushed to
// POPs and agents on change"). Loop thread, like the rest of PopCore.
//
// A gateway gets the part of the map it needs (MapForGateways): the epoch,
// the POPs of this POP's region with their addresses and states, and the
// revoked node ids. It gets it in the HelloReply when it registers, and
// again as a ClusterMap request whenever the epoch grows while it is
// connected. One push per gateway is in flight at a time; when it is
// answered and the epoch moved on meanwhile, the newest map follows. A
// gateway that does not answer gets the map on its next registration.
#include "pop-server/pop_core.h"
#include "shared/core/log.h"

namespace mistore {

pb::ClusterMap PopCore::MapForGateways() const {
  pb::ClusterMap m;
  m.set_epoch(map_.epoch());
  for (const auto& p : map_.pops())
    if (p.region() == p_.region) *m.add_pops() = p;
  for (uint32_t id : map_.revoked_node_ids()) m.add_revoked_node_ids(id);
  return m;
}

void PopCore::PushMapToGateways() {
  if (!p_.push_map_to_gateways) return;
  const uint64_t epoch = map_.epoch();
  for (const auto& [id, gw] : gateways_) {
    if (!gw.connected || map_push_in_flight_.count(id)) continue;
    auto it = map_pushed_epoch_.find(id);
    if (it != map_pushed_epoch_.end() && it->second >= epoch) continue;
    map_push_in_flight_.insert(id);
    maps_pushed_total_++;
    pb::Envelope push;
    *push.mutable_cluster_map() = MapForGateways();
    Call(Dest{Dest::kGateway, id}, std::move(push),
         [this, id = id, epoch](Result<pb::Envelope> r) {
           map_push_in_flight_.erase(id);
           if (!r.ok()) {
             MS_DEBUG("pop", "cluster map not delivered to a gateway",
                      "gateway=" + std::to_string(id) + " error=\"" + r.status().ToString() + "\"");
             return;  // it gets the map with its next registration
           }
           auto& have = map_pushed_epoch_[id];
           have = std::max(have, epoch);
           if (map_.epoch() > have) PushMapToGateways();
         });
  }
}

}  // namespace mistore
