// Fuzz target: validation of every message type a POP receives, through
// PopCore (pop-server/pop_core.h) with an in-memory store — what a daemon
// does with a decoded Envelope once the connection (and, in secure mode,
// the authorization table) has let it through.
//
// Input: a stream of frames (shared/wire/frame.h, up to 1 MiB each); each
// frame's payload is [selector byte][Envelope bytes]. The envelope is decoded
// with DecodeEnvelope (undecodable ones are skipped) and, by selector % 4:
//   0  a request from gateway 11 or 12 (subscriber "alice"/"bob"),
//   1  a request from POP 2 or 3,
//   2  the reply to the oldest call the core made and that is not answered
//      yet (an error reply when bit 2 is set); a request from the DC when
//      no call is outstanding,
//   3  time passes ((selector >> 2) + 1) * 700 ms, then OnTick.
// Request ids are renumbered (1, 2, ...) so replies can be matched. Jobs the
// core asks for (erasure coding) run at once, then OnJobDone.
//
// Properties: no crash, leak or UB; every reply the core sends answers a
// request it was given on that connection, at most once, and carries a body
// or an error (a frame that decodes again); every call it makes carries a
// known body and a deadline; at most 1,024 calls are left unanswered (the
// rest are failed with kUnavailable, as a closed connection would).
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "pop-server/mem_pop_store.h"
#include "pop-server/pop_core.h"
#include "shared/core/assert.h"
#include "shared/wire/envelope.h"
#include "shared/wire/frame.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace mistore;

pb::ClusterMap Map() {
  pb::ClusterMap m;
  m.set_epoch(3);
  for (uint32_t id : {1u, 2u, 3u}) {
    auto* p = m.add_pops();
    p->set_pop_id(id);
    p->set_region(id == 3 ? "us" : "eu");
    p->set_addr("127.0.0." + std::to_string(id) + ":7100");
    p->set_up(true);
  }
  return m;
}

struct Harness {
  MemPopStore store;
  std::unique_ptr<PopCore> core;
  uint64_t now_ms = 1000;
  uint64_t next_request_id = 1;
  // (conn id, request id) given to the core and not answered yet.
  std::set<std::pair<uint64_t, uint64_t>> open;
  std::deque<OutCall> calls;

  Harness() {
    PopParams p;
    p.pop_id = 1;
    p.region = "eu";
    p.k = 2;
    p.m = 1;
    core = std::make_unique<PopCore>(p, &store, 7);
    core->OnClusterMap(now_ms, Map());
    for (uint32_t g : {11u, 12u, 13u, 14u})
      core->OnGatewayUp(now_ms, GatewayState{g, g == 11 ? "alice" : "bob", 1 << 30, true});
    Drain();
  }

  void Drain() {
    for (int rounds = 0; rounds < 64; rounds++) {
      Outbox out = core->TakeOutbox();
      if (out.empty()) return;
      for (OutReply& r : out.replies) {
        MS_ASSERT(open.erase({r.conn_id, r.request_id}) == 1);
        MS_ASSERT(r.msg.body_case() != pb::Envelope::BODY_NOT_SET || r.msg.has_error());
        pb::Envelope again;
        const std::string s = r.msg.SerializeAsString();
        MS_ASSERT(DecodeEnvelope(Bytes(s.begin(), s.end()), &again).ok());
      }
      for (OutCall& c : out.calls) {
        MS_ASSERT(c.msg.body_case() != pb::Envelope::BODY_NOT_SET);
        MS_ASSERT(c.timeout_ms > 0);
        calls.push_back(std::move(c));
      }
      while (calls.size() > 1024) {
        const Token t = calls.front().token;
        calls.pop_front();
        core->OnCallDone(now_ms, t, Unavailable("connection closed"));
      }
      for (Job& j : out.jobs) {
        j.run();
        core->OnJobDone(now_ms, j.token);
      }
    }
  }

  void Request(uint64_t conn, const Peer& from, pb::Envelope env) {
    env.set_request_id(next_request_id++);
    env.set_is_response(false);
    open.insert({conn, env.request_id()});
    core->OnRequest(now_ms, from, env);
    Drain();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietProtobufLogs();
  Harness h;
  fuzz::SelectedFrames frames(data, size);
  uint8_t sel;
  pb::Envelope env;
  while (frames.Next(&sel, &env)) {
    const uint32_t pick = (sel >> 2) & 1;
    switch (sel % 4) {
      case 0: {
        Peer p{1 + pick, pb::ROLE_GATEWAY, 11 + pick, pick ? "bob" : "alice"};
        h.Request(p.conn_id, p, std::move(env));
        break;
      }
      case 1: {
        Peer p{10 + pick, pb::ROLE_POP, 2 + pick, ""};
        h.Request(p.conn_id, p, std::move(env));
        break;
      }
      case 2: {
        if (h.calls.empty()) {
          Peer p{20, pb::ROLE_DC, 0, ""};
          h.Request(p.conn_id, p, std::move(env));
          break;
        }
        const Token t = h.calls.front().token;
        h.calls.pop_front();
        if (pick) {
          h.core->OnCallDone(h.now_ms, t, Unavailable("peer went away"));
        } else if (Status st = ResponseStatus(env); !st.ok()) {
          // As the adapter does: an error reply is the call's status.
          h.core->OnCallDone(h.now_ms, t, st);
        } else {
          env.set_is_response(true);
          h.core->OnCallDone(h.now_ms, t, std::move(env));
        }
        h.Drain();
        break;
      }
      default:
        h.now_ms += (uint64_t(sel >> 2) + 1) * 700;
        h.core->OnTick(h.now_ms);
        h.Drain();
        break;
    }
  }
  // Whatever is still outstanding fails, as when every connection closes.
  while (!h.calls.empty()) {
    const Token t = h.calls.front().token;
    h.calls.pop_front();
    h.core->OnCallDone(h.now_ms, t, Unavailable("connection closed"));
    h.Drain();
  }
  return 0;
}
