// History checker for simulator runs. Per name, versions are a register
// whose writes are ordered by version number; the checks are the
// conditions under which such a history is linearizable, plus the weaker
// modes' own guarantees:
//  - writes: two acknowledged puts never share a version; a put that
//    finished before another started has the smaller version;
//  - atomic and locked reads of the latest version: never older than a
//    put acknowledged before the read started, never from a put that
//    started after the read ended, and never older than what an earlier
//    (finished-before-start) atomic/locked read returned;
//  - monotonic reads: never older than the client's newest seen version
//    (what it read or wrote before), nor from the future;
//  - reads of version N: exactly version N, with the bytes put as N;
//  - every read returns the exact bytes of the version it names;
//  - optionally, no read fails once its name has an acknowledged version;
//  - write locks: see CheckLocks.
// Definition 9's start-time order for locked reads is not checked beyond
// linearizability: under message delays the order in which lock requests
// reach the primary decides, which the history does not record.
// Pure function of the history.
#pragma once

#include <string>
#include <vector>

#include "tests/sim/world.h"

namespace mistore::sim {

struct CheckOptions {
  bool require_reads_succeed = true;
  bool require_writes_succeed = true;
  // Read failures overlapping one of these [from, to] ms windows (a POP
  // outage and its settling time) are tolerated.
  std::vector<std::pair<uint64_t, uint64_t>> outages;
};

std::vector<std::string> CheckHistory(const std::vector<OpRecord>& history, CheckOptions opts);

// Write locks (paper, figs. 2–4, and section VII's takeover): never two
// write locks of one object valid at once, at one POP or across POPs (a
// lock inherited by a new acting primary is the same lock id, and may
// overlap itself); and fencing tokens of an object's write locks grow with
// the time each lock was first valid anywhere.
std::vector<std::string> CheckLocks(std::vector<LockInterval> locks);

}  // namespace mistore::sim
