// Fuzz target: validation of every message type a gateway agent receives
// from its POP, through AgentCore (gateway-agent/agent_core.h) over a real
// FragmentStore in a scratch directory (under /dev/shm when it exists),
// emptied before every input so each input runs alone.
//
// Input: a stream of frames (shared/wire/frame.h, up to 1 MiB each); each
// frame's payload is [selector byte][Envelope bytes], decoded with
// DecodeEnvelope (undecodable ones are skipped); by selector % 4:
//   0, 1  a request from the POP on connection generation 1 (or 2 when bit
//         2 is set: a request left over from an older registration),
//   2     the reply to the oldest call the agent made and that is not
//         answered yet (an error reply when bit 2 is set),
//   3     time passes ((selector >> 2) + 1) * 1000 ms, then OnTick.
// Request ids are renumbered so replies can be matched.
//
// Properties: no crash, leak or UB; every reply answers a request given on
// that generation, at most once, with a body or an error; every call carries
// a known body.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <set>
#include <string>

#include "gateway-agent/agent_core.h"
#include "shared/core/assert.h"
#include "shared/wire/envelope.h"
#include "shared/wire/frame.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace mistore;

// Created once, removed at exit (a leaked string: it must outlive the
// static destructors that run before atexit handlers registered later).
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    auto* t = new std::string(base + "/mistore-fuzz-agent-XXXXXX");
    MS_ASSERT(mkdtemp(t->data()) != nullptr);
    std::atexit([] { std::filesystem::remove_all(ScratchDir()); });
    return t;
  }();
  return *dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietProtobufLogs();
  const std::string dir = ScratchDir() + "/frags";
  std::filesystem::remove_all(dir);
  FragmentStoreOptions o;
  o.store_bytes_max = 64u << 20;
  auto opened = FragmentStore::Open(dir, o);
  MS_ASSERT(opened.ok());
  FragmentStore store = std::move(opened).value();

  uint64_t now_ms = 1000;
  AgentParams p;
  p.subscriber = "alice";
  AgentCore core(p, &store, now_ms);
  core.OnRegistered(now_ms, 1, 1);
  std::set<std::pair<uint64_t, uint64_t>> open;  // (generation, request id)
  std::deque<uint64_t> calls;                    // tokens not answered yet
  uint64_t next_request_id = 1;
  auto drain = [&] {
    AgentOutbox out = core.TakeOutbox();
    for (auto& r : out.replies) {
      MS_ASSERT(open.erase({r.conn, r.request_id}) == 1);
      MS_ASSERT(!r.error.ok() || r.msg.body_case() != pb::Envelope::BODY_NOT_SET);
    }
    for (auto& c : out.calls) {
      MS_ASSERT(c.msg.body_case() != pb::Envelope::BODY_NOT_SET);
      calls.push_back(c.token);
    }
  };
  drain();

  fuzz::SelectedFrames frames(data, size);
  uint8_t sel;
  pb::Envelope env;
  while (frames.Next(&sel, &env)) {
    const bool bit = (sel >> 2) & 1;
    switch (sel % 4) {
      case 0:
      case 1: {
        const uint64_t gen = bit ? 2 : 1;
        env.set_request_id(next_request_id++);
        env.set_is_response(false);
        open.insert({gen, env.request_id()});
        core.OnPopRequest(now_ms, gen, env);
        break;
      }
      case 2: {
        if (calls.empty()) break;
        const uint64_t t = calls.front();
        calls.pop_front();
        if (bit) {
          core.OnCallDone(now_ms, t, Unavailable("POP went away"));
        } else if (Status st = ResponseStatus(env); !st.ok()) {
          core.OnCallDone(now_ms, t, st);
        } else {
          env.set_is_response(true);
          core.OnCallDone(now_ms, t, std::move(env));
        }
        break;
      }
      default:
        now_ms += (uint64_t(sel >> 2) + 1) * 1000;
        core.OnTick(now_ms);
        break;
    }
    drain();
  }
  core.OnPopLost(now_ms);
  drain();
  return 0;
}
