// PopCore, dedup query (issue 9, "only changed chunks travel"): before it
// uploads a file the client asks its entry POP which of the file's chunk ids
// it already holds with data for this subscriber (HaveChunks). The answer is
// the subset it holds; each reported chunk is pinned against eviction until
// the commit that uses it arrives (or upload_pin_ms), exactly as if it had
// just been uploaded with PutChunk, so the commit's "every chunk uploaded"
// check holds. A query naming the object (name_key) also plans the upload's
// forwarding to the object's replicas (pop_forward.cc). Read-only use of
// PopStore. Runs on the daemon's loop thread (or the simulator's), like the
// rest of PopCore.
#include "pop-server/pop_core.h"

namespace mistore {

namespace {
constexpr size_t kDedupChunkIdBytes = 32;
}  // namespace

void PopCore::HandleHaveChunks(const Incoming& in, const Peer& from, const pb::HaveChunks& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && size_t(m.chunk_ids_size()) > kHaveChunksIdsMax)
    st = ResourceExhausted("HaveChunks asks about " + std::to_string(m.chunk_ids_size()) +
                           " chunks; at most " + std::to_string(kHaveChunksIdsMax));
  for (int i = 0; st.ok() && i < m.chunk_ids_size(); i++)
    if (m.chunk_ids(i).size() != kDedupChunkIdBytes)
      st = InvalidArgument("chunk id must be 32 bytes");
  if (!st.ok()) return ReplyError(in, st);
  pb::Envelope r;
  auto* reply = r.mutable_have_chunks_reply();
  // The code this POP places with: the client tags the fragments it makes
  // (issue 3; sync-client/fragment_tags.h).
  reply->set_k(uint32_t(p_.k));
  reply->set_m(uint32_t(p_.m));
  std::vector<std::string> absent;  // what the client will upload
  for (const std::string& id : m.chunk_ids()) {
    ChunkKey key{m.subscriber(), Bytes(id.begin(), id.end())};
    auto info = store_->GetChunkInfo(key);
    if (!info.ok() || !info->has_data) {
      absent.push_back(id);
      continue;
    }
    if (upload_pins_.size() >= p_.upload_pins_max && !upload_pins_.count(key)) {
      // No room to pin it: let the client upload it instead of risking an
      // eviction before its commit.
      continue;
    }
    upload_pins_[key] = now_ms_ + p_.upload_pin_ms;
    reply->add_present(id);
  }
  Reply(in, std::move(r));
  if (!m.name_key().empty())
    PlanForwarding(m.subscriber(), m.name_key(), std::move(absent), m.dc_tier());
}

}  // namespace mistore
