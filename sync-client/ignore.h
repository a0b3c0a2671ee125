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
//
// Nested files (gitignore semantics): `Add(dir, text)` takes the rules of
// `dir/.mistoreignore`; they apply only to paths under `dir`, and their
// patterns are relative to `dir` (an anchored pattern starts at `dir`, an
// unanchored one matches a name at any depth below it). Files must be added
// parents first (a directory walk does that): for a path, the last matching
// rule of the deepest file wins, so a deeper file overrides a shallower one,
// `!` included.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mistore {

class IgnoreRules {
 public:
  // Most rules held in all (every file of a tree together); lines beyond it
  // are dropped (and counted).
  static constexpr size_t kRulesMax = 10000;

  // The volume root's file.
  static IgnoreRules Parse(std::string_view text);
  // Appends the rules of `dir`'s file (`dir` relative to the volume root,
  // no leading or trailing '/'; "" is the root).
  void Add(std::string_view dir, std::string_view text);

  // `path` is relative to the volume root, '/'-separated, no leading '/'.
  bool Ignored(std::string_view path, bool is_dir) const;
  size_t size() const { return rules_.size(); }
  size_t dropped() const { return dropped_; }

  // Glob match of one pattern against one path (exposed for tests).
  static bool Glob(std::string_view pattern, std::string_view path);

 private:
  struct Rule {
    std::string base;  // directory of the file holding it ("" = root)
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
