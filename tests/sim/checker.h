// History checker for simulator runs: verifies what a client may observe of
// the versioned objects, per name:
//  - two acknowledged puts never got the same version;
//  - a get of version N returns version N with exactly the bytes put as N;
//  - a get of the latest version returns a version at least as new as every
//    put acknowledged before the get started, with that version's bytes
//    (reads go to the primary or backup, which both hold every acknowledged
//    version: the paper's atomic read);
//  - optionally, no get fails once its name has an acknowledged version.
// Pure function of the history.
#pragma once

#include <string>
#include <vector>

#include "tests/sim/world.h"

namespace mistore::sim {

struct CheckOptions {
  bool require_reads_succeed = true;
};

std::vector<std::string> CheckHistory(const std::vector<OpRecord>& history, CheckOptions opts);

}  // namespace mistore::sim
