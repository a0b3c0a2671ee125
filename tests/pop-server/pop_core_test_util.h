// Helpers for the PopCore unit tests that drive one core by hand (no
// simulator): a cluster map of POPs that are all up, and the loop that
// drains the core's outbox (replies kept, jobs run at once, calls answered
// by the test). Test-only, single-threaded.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "pop-server/pop_core.h"

namespace mistore::pop_test {

// A map at `epoch` with every POP of `pop_ids` up, POP i in region "r<i>"
// (or all in `region` when it is given).
inline pb::ClusterMap MapOfUpPops(uint64_t epoch, const std::vector<uint32_t>& pop_ids,
                                  const std::string& region = "") {
  pb::ClusterMap map;
  map.set_epoch(epoch);
  for (uint32_t id : pop_ids) {
    auto* pi = map.add_pops();
    pi->set_pop_id(id);
    pi->set_region(region.empty() ? "r" + std::to_string(id) : region);
    pi->set_up(true);
  }
  return map;
}

// A 32-byte chunk id for test chunk i; `tag` keeps one test file's ids
// apart from another's.
inline Bytes TestChunkId(int i, uint8_t tag) {
  Bytes id(32, 0);
  id[0] = uint8_t(i + 1);
  id[1] = tag;
  return id;
}

// What the test does with a call the core made: its answer, or nullopt to
// hold it (the test answers it later with OnCallDone).
using CallAnswer = std::function<std::optional<Result<pb::Envelope>>(const OutCall&)>;

// Takes the core's outbox until it is empty: replies appended to *replies,
// jobs run and reported done at `now_ms`, calls answered by `answer`. Fails
// the test if the outbox still has work after 1,000 rounds.
inline void DrainOutbox(PopCore& core, uint64_t now_ms, std::vector<OutReply>* replies,
                        const CallAnswer& answer) {
  for (int round = 0; round < 1000; round++) {
    Outbox out = core.TakeOutbox();
    if (out.empty()) return;
    for (auto& r : out.replies) replies->push_back(r);
    for (auto& j : out.jobs) {
      j.run();
      core.OnJobDone(now_ms, j.token);
    }
    for (auto& c : out.calls)
      if (std::optional<Result<pb::Envelope>> r = answer(c)) core.OnCallDone(now_ms, c.token, *r);
  }
  ADD_FAILURE() << "outbox never drained";
}

}  // namespace mistore::pop_test
