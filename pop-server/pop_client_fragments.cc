// A chunk's fragments for the subscriber's client, and the client's report
// of the ones it found forged (issue 3). PopCore's loop thread.
//
// The client asks (GetChunkFragments) when a chunk fails its AEAD open: it
// holds keyed tags of every fragment in its sealed manifest
// (sync-client/fragment_tags.h), so it can name the forged ones even when
// the POP's redundancy cross-check (DecodeChunkChecked) could not (only k
// fragments reachable, or too many forged). The entry POP answers from its
// own fragment records when it is a replica of the object, and otherwise
// asks the object's replicas (one hop: a POP asking is not forwarded). The
// answer names the POP whose records it holds; the client's report
// (ReportForgedFragments) goes there (forwarded by the entry POP, only to
// one of the object's replicas), which marks each reported fragment bad on
// the gateway recorded for it, so repair re-places it (pop_durability.cc),
// exactly as for fragments its own cross-check locates.
//
// Bounds: at most kChunkFragmentsMax fragments and kChunkFragmentsBytesMax
// bytes per answer (fragments in ascending index order until the budget is
// spent), at most kChunkFragmentsMax entries per report; a report marks only
// (index, gateway) pairs this POP recorded for the chunk.
#include <algorithm>

#include "pop-server/pop_core.h"
#include "shared/core/log.h"
#include "shared/erasure/fragment.h"

namespace mistore {

namespace {
constexpr size_t kChunkIdBytes = 32;
// k + m at most (ReedSolomon::kMaxK + kMaxM).
constexpr size_t kChunkFragmentsMax = 48;
// Below the default frame limit (8 MiB, shared/wire/frame.h).
constexpr size_t kChunkFragmentsBytesMax = 7u << 20;
Bytes ToBytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string ToStr(const Bytes& b) { return std::string(b.begin(), b.end()); }
}  // namespace

void PopCore::HandleGetChunkFragments(const Incoming& in, const Peer& from,
                                      const pb::GetChunkFragments& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.chunk_id().size() != kChunkIdBytes)
    st = InvalidArgument("chunk id must be 32 bytes");
  auto oid = Oid::Decode(m.oid());
  if (st.ok() && !oid.ok()) st = oid.status();
  if (!st.ok()) return ReplyError(in, st);
  if (m.lock_id()) TouchEntryLock(m.lock_id());
  ChunkKey key{m.subscriber(), ToBytes(m.chunk_id())};
  std::vector<FragmentLoc> locs = IsReplica(oid.value())
                                      ? store_->Fragments(key)
                                      : std::vector<FragmentLoc>{};
  if (locs.empty()) {
    if (from.role == pb::ROLE_POP)
      return ReplyError(
          in, NotFound("no fragments of chunk " +
                       ToHex(key.chunk_id).substr(0, 12) + " recorded at POP " +
                       std::to_string(p_.pop_id)));
    pb::Envelope fwd;
    *fwd.mutable_get_chunk_fragments() = m;
    fwd.mutable_get_chunk_fragments()->set_lock_id(0);
    return CallReplicas(oid.value(), fwd, [this, in](Result<pb::Envelope> r) {
      if (!r.ok()) return ReplyError(in, r.status());
      pb::Envelope out;
      *out.mutable_chunk_fragments() = r->chunk_fragments();
      Reply(in, std::move(out));
    });
  }
  std::sort(locs.begin(), locs.end(),
            [](const FragmentLoc& a, const FragmentLoc& b) {
              return std::tie(a.index, a.gateway_id) <
                     std::tie(b.index, b.gateway_id);
            });
  struct Gather {
    size_t outstanding = 0;
    std::map<std::pair<uint32_t, uint32_t>, Bytes>
        got;  // (index, gateway) -> blob
  };
  auto g = std::make_shared<Gather>();
  auto finish = [this, in, g]() {
    pb::Envelope out;
    auto* cf = out.mutable_chunk_fragments();
    cf->set_pop_id(p_.pop_id);
    cf->set_k(uint32_t(p_.k));
    cf->set_m(uint32_t(p_.m));
    size_t bytes = 0;
    for (auto& [at, blob] : g->got) {
      if (bytes + blob.size() > kChunkFragmentsBytesMax) break;
      bytes += blob.size();
      auto* f = cf->add_fragments();
      f->set_index(at.first);
      f->set_gateway_id(at.second);
      f->set_fragment(ToStr(blob));
    }
    Reply(in, std::move(out));
  };
  size_t asked = 0;
  for (const FragmentLoc& loc : locs) {
    if (asked >= kChunkFragmentsMax) break;
    if (!IsGatewayConnected(loc.gateway_id)) continue;
    if (bad_.count({key.chunk_id, loc.index, loc.gateway_id})) continue;
    asked++;
    g->outstanding++;
    pb::Envelope req;
    req.mutable_fetch_fragment()->set_chunk_id(ToStr(key.chunk_id));
    req.mutable_fetch_fragment()->set_index(loc.index);
    Call(
        Dest{Dest::kGateway, loc.gateway_id}, req,
        [g, finish, loc](Result<pb::Envelope> r) {
          // Whatever the gateway returned goes to the client, which checks it
          // against its own tags; a missing one is simply absent.
          if (r.ok())
            g->got[{loc.index, loc.gateway_id}] =
                ToBytes(r->fragment_data().fragment());
          if (--g->outstanding == 0) finish();
        },
        p_.fragment_timeout_ms);
  }
  if (g->outstanding == 0) finish();
}

void PopCore::HandleReportForgedFragments(const Incoming& in, const Peer& from,
                                          const pb::ReportForgedFragments& m) {
  Status st = CheckSubscriber(from, m.subscriber());
  if (st.ok() && m.chunk_id().size() != kChunkIdBytes)
    st = InvalidArgument("chunk id must be 32 bytes");
  if (st.ok() && size_t(m.forged_size()) > kChunkFragmentsMax)
    st = ResourceExhausted("report names " + std::to_string(m.forged_size()) +
                           " fragments; at most " +
                           std::to_string(kChunkFragmentsMax));
  auto oid = Oid::Decode(m.oid());
  if (st.ok() && !oid.ok()) st = oid.status();
  if (!st.ok()) return ReplyError(in, st);
  if (m.pop_id() != p_.pop_id) {
    // Only to one of the object's replicas, and only one hop.
    if (from.role == pb::ROLE_POP ||
        (m.pop_id() != oid->primary_pop && m.pop_id() != oid->backup_pop))
      return ReplyError(
          in, InvalidArgument("POP " + std::to_string(m.pop_id()) +
                              " holds no fragment records of this object"));
    pb::Envelope fwd;
    *fwd.mutable_report_forged_fragments() = m;
    return Call(Dest{Dest::kPop, m.pop_id()}, fwd,
                [this, in](Result<pb::Envelope> r) {
                  if (!r.ok()) return ReplyError(in, r.status());
                  pb::Envelope out;
                  out.mutable_empty();
                  Reply(in, std::move(out));
                });
  }
  ChunkKey key{m.subscriber(), ToBytes(m.chunk_id())};
  const std::vector<FragmentLoc> locs = store_->Fragments(key);
  for (const pb::ChunkFragment& f : m.forged()) {
    const bool recorded =
        std::any_of(locs.begin(), locs.end(), [&f](const FragmentLoc& l) {
          return l.index == f.index() && l.gateway_id == f.gateway_id();
        });
    if (!recorded) continue;
    if (!bad_.count({key.chunk_id, f.index(), f.gateway_id()})) {
      fragments_forged_total_++;
      fragments_forged_reported_total_++;
    }
    MS_WARN("pop", "forged fragment reported by the client",
            "gateway=" + std::to_string(f.gateway_id()) +
                " chunk=" + ToHex(key.chunk_id).substr(0, 12) +
                " index=" + std::to_string(f.index()));
    MarkBad(f.gateway_id(), key, f.index());
  }
  PumpRepair();
  pb::Envelope out;
  out.mutable_empty();
  Reply(in, std::move(out));
}

}  // namespace mistore
