// Fuzz target: the configuration parser (shared/core/config.h).
//
// Input: byte 0 bit 0 chooses what the rest is: 0 = a config file (loaded
// with Config::LoadFile from an in-memory file), 1 = a command line
// (arguments separated by NUL bytes, parsed with Config::ParseArgs). The
// knob table has one knob of each kind.
//
// Properties: no crash or out-of-bounds access; errors are kInvalidArgument
// (kNotFound only if the file cannot be opened); after success every knob
// reads back (Str / Int / Bool), an int knob that was set holds an integer,
// a bool knob holds "true" or "false", and the values survive a round trip
// through a generated "name = value" file.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "shared/core/assert.h"
#include "shared/core/config.h"

namespace {

using namespace mistore;

std::vector<Knob> Knobs() {
  return {
      {"listen", "127.0.0.1:7000", "address to listen on"},
      {"frame_bytes_max", "8388608", "largest frame", Knob::kInt},
      {"fsync", "true", "fsync writes", Knob::kBool},
      {"data_dir", "", "where data lives"},
  };
}

// Loads `text` through a memfd, so no file system is involved.
Status LoadText(Config* cfg, const std::string& text) {
  const int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
  MS_ASSERT(fd >= 0);
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, text.size() - off);
    MS_ASSERT(n > 0);
    off += size_t(n);
  }
  Status st = cfg->LoadFile("/proc/self/fd/" + std::to_string(fd));
  close(fd);
  return st;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool args = data[0] & 1;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  Config cfg(Knobs());
  Status st;
  if (!args) {
    st = LoadText(&cfg, text);
  } else {
    std::vector<std::string> words{"prog"};
    std::string cur;
    for (char c : text) {
      if (c == '\0') {
        words.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(c);
      }
    }
    if (!cur.empty()) words.push_back(cur);
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    std::vector<std::string> positional;
    st = cfg.ParseArgs(int(words.size()), argv.data(), 1, &positional);
  }
  if (!st.ok()) {
    MS_ASSERT(st.code() == Code::kInvalidArgument);
    return 0;
  }
  // Every knob reads back; typed knobs hold values of their type.
  std::string file;
  for (const Knob& k : cfg.knobs()) {
    const std::string v = cfg.Str(k.name);
    if (k.kind == Knob::kBool) MS_ASSERT(v == "true" || v == "false");
    if (k.kind == Knob::kInt && cfg.IsSet(k.name)) {
      char* end = nullptr;
      (void)std::strtoll(v.c_str(), &end, 10);
      MS_ASSERT(!v.empty() && *end == '\0');
      (void)cfg.Int(k.name);
    }
    (void)cfg.Bool(k.name);
    // Values with leading/trailing blanks, '#' first, or line breaks cannot
    // be written back as "name = value": skip the round trip for those.
    if (v.find_first_of("\n\r") != std::string::npos) continue;
    if (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' ||
                       v.back() == '\t' || v.back() == '\r'))
      continue;
    file += k.name + " = " + v + "\n";
  }
  size_t longest = 0, at = 0;
  while (at < file.size()) {
    const size_t nl = file.find('\n', at);
    longest = std::max(longest, nl - at);
    at = nl + 1;
  }
  Config again(Knobs());
  const Status reload = LoadText(&again, file);
  if (longest > 4096) return 0;  // LoadFile's line limit
  MS_ASSERT(reload.ok());
  for (const Knob& k : cfg.knobs()) {
    const std::string v = cfg.Str(k.name);
    if (file.find(k.name + " = " + v + "\n") != std::string::npos) MS_ASSERT(again.Str(k.name) == v);
  }
  return 0;
}
