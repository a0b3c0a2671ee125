// Assertions that stay on in every build (release included), and the named
// fatal exit for environment failures (cannot bind, cannot open the data
// directory). Usable from any thread.
#pragma once

namespace mistore {

[[noreturn]] void AssertFail(const char* expr, const char* file, int line);

// Environment failure: prints "mistore: fatal: <what>: <detail>" and exits
// with status 70 (EX_SOFTWARE would hide it; we use 70 = "environment").
[[noreturn]] void FatalExit(const char* what, const char* detail);

}  // namespace mistore

#define MS_ASSERT(expr) \
  ((expr) ? (void)0 : ::mistore::AssertFail(#expr, __FILE__, __LINE__))
