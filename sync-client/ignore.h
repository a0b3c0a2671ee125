// IgnoreRules: the `.mistoreignore` matcher of the sync client (gitignore
// syntax). A pure function of the file's text and a path: no file system
// access, no state beyond the parsed rules. Owned by whoever parses it;
// immutable after Parse, so any thread may match concurrently.
//
// Supported: blank lines and `#` comments; `\#` / `\!` escapes; `!pattern`
// re-includes; a trailing `/` matches directories only; a pattern with a `/`
// before its end is anchored at the volume root (a leading `/` is dropped),
// otherwise it matches the name at any depth; `*` and `?` never match `/`;
// `[abc]`, `[a-z]`, `[!a]` classes; `**/` (any leading directories), `/**`
// (everything inside) and `/**/` (zero or more directories). As in git, a
// path inside an ignored directory is ignored whatever later rules say.
// Trailing spaces are trimmed (unless escaped with `\`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mistore {

class IgnoreRules {
 public:
  // Most rules one file may hold; lines beyond it are dropped (and counted).
  static constexpr size_t kRulesMax = 10000;

  static IgnoreRules Parse(std::string_view text);

  // `path` is relative to the volume root, '/'-separated, no leading '/'.
  bool Ignored(std::string_view path, bool is_dir) const;
  size_t size() const { return rules_.size(); }
  size_t dropped() const { return dropped_; }

  // Glob match of one pattern against one path (exposed for tests).
  static bool Glob(std::string_view pattern, std::string_view path);

 private:
  struct Rule {
    std::string pattern;
    bool negate = false;
    bool dir_only = false;
    bool anchored = false;
  };
  // The last rule matching this path itself: +1 ignore, -1 re-include, 0 none.
  int MatchSelf(std::string_view path, bool is_dir) const;
  std::vector<Rule> rules_;
  size_t dropped_ = 0;
};

}  // namespace mistore
