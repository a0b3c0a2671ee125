#include "sync-client/ignore.h"

namespace mistore {

namespace {

// [class] at p[0] == '['; returns the length of the class (0 if not a
// well-formed class, then '[' is a literal) and whether c matches.
size_t MatchClass(std::string_view p, char c, bool* matched) {
  size_t i = 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    i++;
  }
  bool any = false;
  bool first = true;
  while (i < p.size() && (p[i] != ']' || first)) {
    first = false;
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      if (hi == '\\' && i + 3 < p.size()) {
        hi = p[i + 3];
        i++;
      }
      i += 2;
    }
    if (c >= lo && c <= hi) any = true;
    i++;
  }
  if (i >= p.size()) return 0;  // no closing ']'
  *matched = (any != negate) && c != '/';
  return i + 1;
}

bool GlobAt(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.substr(0, 2) == "**") {
      if (p.size() == 2) return true;  // trailing "**": everything
      if (p[2] == '/') {
        std::string_view rest = p.substr(3);
        // zero or more whole directories
        if (GlobAt(rest, s)) return true;
        for (size_t i = 0; i < s.size(); i++)
          if (s[i] == '/' && GlobAt(rest, s.substr(i + 1))) return true;
        return false;
      }
      p = p.substr(1);  // "**x": like "*"
      continue;
    }
    char c = p[0];
    if (c == '*') {
      std::string_view rest = p.substr(1);
      for (size_t i = 0;; i++) {
        if (GlobAt(rest, s.substr(i))) return true;
        if (i >= s.size() || s[i] == '/') return false;
      }
    }
    if (s.empty()) return false;
    if (c == '?') {
      if (s[0] == '/') return false;
      p = p.substr(1);
      s = s.substr(1);
      continue;
    }
    if (c == '[') {
      bool m = false;
      size_t n = MatchClass(p, s[0], &m);
      if (n) {
        if (!m) return false;
        p = p.substr(n);
        s = s.substr(1);
        continue;
      }
    }
    if (c == '\\' && p.size() > 1) {
      p = p.substr(1);
      c = p[0];
    }
    if (c != s[0]) return false;
    p = p.substr(1);
    s = s.substr(1);
  }
  return s.empty();
}

}  // namespace

bool IgnoreRules::Glob(std::string_view pattern, std::string_view path) {
  return GlobAt(pattern, path);
}

IgnoreRules IgnoreRules::Parse(std::string_view text) {
  IgnoreRules r;
  r.Add("", text);
  return r;
}

void IgnoreRules::Add(std::string_view dir, std::string_view text) {
  IgnoreRules& r = *this;
  size_t at = 0;
  while (at <= text.size()) {
    size_t nl = text.find('\n', at);
    std::string line(
        text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at));
    at = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Trailing spaces go unless escaped.
    while (!line.empty() && line.back() == ' ' &&
           !(line.size() >= 2 && line[line.size() - 2] == '\\'))
      line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    Rule rule;
    if (line[0] == '!') {
      rule.negate = true;
      line.erase(0, 1);
    } else if (line[0] == '\\' && line.size() > 1 && (line[1] == '#' || line[1] == '!')) {
      line.erase(0, 1);
    }
    if (!line.empty() && line.back() == '/') {
      rule.dir_only = true;
      line.pop_back();
    }
    if (line.empty()) continue;
    size_t slash = line.find('/');
    if (slash != std::string::npos) {
      rule.anchored = true;
      if (line[0] == '/') line.erase(0, 1);
    }
    if (line.empty()) continue;
    rule.pattern = std::move(line);
    rule.base = std::string(dir);
    if (r.rules_.size() >= kRulesMax) {
      r.dropped_++;
      continue;
    }
    r.rules_.push_back(std::move(rule));
  }
}

int IgnoreRules::MatchSelf(std::string_view path, bool is_dir) const {
  std::string_view base = path;
  size_t slash = path.rfind('/');
  if (slash != std::string_view::npos) base = path.substr(slash + 1);
  for (size_t i = rules_.size(); i-- > 0;) {
    const Rule& r = rules_[i];
    if (r.dir_only && !is_dir) continue;
    std::string_view rel = path;
    if (!r.base.empty()) {  // a nested file's rule: only below its directory
      if (path.size() <= r.base.size() + 1 || path.compare(0, r.base.size(), r.base) != 0 ||
          path[r.base.size()] != '/')
        continue;
      rel = path.substr(r.base.size() + 1);
    }
    bool m = r.anchored ? GlobAt(r.pattern, rel) : GlobAt(r.pattern, base);
    if (m) return r.negate ? -1 : 1;
  }
  return 0;
}

bool IgnoreRules::Ignored(std::string_view path, bool is_dir) const {
  if (rules_.empty()) return false;
  // A path inside an ignored directory is ignored.
  for (size_t i = 0; i < path.size(); i++)
    if (path[i] == '/' && MatchSelf(path.substr(0, i), true) > 0) return true;
  return MatchSelf(path, is_dir) > 0;
}

}  // namespace mistore
