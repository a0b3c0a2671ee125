#include "shared/core/config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mistore {

Config::Config(std::vector<Knob> knobs) : knobs_(std::move(knobs)) {
  for (auto& k : knobs_) values_[k.name] = k.default_value;
}

const Knob* Config::Find(const std::string& name) const {
  for (auto& k : knobs_)
    if (k.name == name) return &k;
  return nullptr;
}

static std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

Status Config::Set(const std::string& name, const std::string& value, const std::string& where) {
  const Knob* k = Find(name);
  if (!k) return InvalidArgument(where + ": unknown setting '" + name + "'");
  if (k->kind == Knob::kInt) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(value.c_str(), &end, 10);
    (void)v;
    if (value.empty() || *end != '\0' || errno != 0)
      return InvalidArgument(where + ": setting '" + name + "' needs an integer, got '" +
                             value + "'");
  }
  if (k->kind == Knob::kBool && value != "true" && value != "false")
    return InvalidArgument(where + ": setting '" + name + "' needs true or false, got '" +
                           value + "'");
  values_[name] = value;
  explicit_[name] = true;
  return Status::Ok();
}

Status Config::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read config file " + path);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    lineno++;
    if (line.size() > 4096)
      return InvalidArgument(path + ":" + std::to_string(lineno) + ": line too long");
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t eq = t.find('=');
    std::string where = path + ":" + std::to_string(lineno);
    if (eq == std::string::npos)
      return InvalidArgument(where + ": expected 'name = value', got '" + t + "'");
    MS_RETURN_IF_ERROR(Set(Trim(t.substr(0, eq)), Trim(t.substr(eq + 1)), where));
  }
  return Status::Ok();
}

Status Config::ParseArgs(int argc, char** argv, int first, std::vector<std::string>* positional) {
  for (int i = first; i < argc; i++) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      if (!positional) return InvalidArgument("unexpected argument '" + a + "'");
      positional->push_back(a);
      continue;
    }
    std::string body = a.substr(2);
    size_t eq = body.find('=');
    std::string name = eq == std::string::npos ? body : body.substr(0, eq);
    std::string key = name;
    for (auto& c : key)
      if (c == '-') c = '_';
    const Knob* k = Find(key);
    if (!k) return InvalidArgument("unknown option '--" + name + "' (see --help)");
    std::string value;
    if (eq != std::string::npos) {
      value = body.substr(eq + 1);
    } else if (k->kind == Knob::kBool) {
      value = "true";
    } else {
      if (i + 1 >= argc) return InvalidArgument("option '--" + name + "' needs a value");
      value = argv[++i];
    }
    MS_RETURN_IF_ERROR(Set(key, value, "option --" + name));
  }
  return Status::Ok();
}

std::string Config::Str(const std::string& name) const {
  auto it = values_.find(name);
  MS_ASSERT(it != values_.end());
  return it->second;
}
int64_t Config::Int(const std::string& name) const { return std::strtoll(Str(name).c_str(), nullptr, 10); }
bool Config::Bool(const std::string& name) const { return Str(name) == "true"; }

std::string Config::Help() const {
  std::ostringstream o;
  for (auto& k : knobs_) {
    std::string flag = k.name;
    for (auto& c : flag)
      if (c == '_') c = '-';
    o << "  --" << flag << (k.kind == Knob::kBool ? "" : "=VALUE") << "\n      " << k.help
      << " (default: " << (k.default_value.empty() ? "none" : k.default_value) << ")\n";
  }
  return o.str();
}

std::string Config::SampleFile() const {
  std::ostringstream o;
  for (auto& k : knobs_) o << "# " << k.help << "\n" << k.name << " = " << k.default_value << "\n\n";
  return o.str();
}

}  // namespace mistore

namespace mistore {

ArgsOutcome ParseCommandLine(const char* prog, const char* usage, Config* cfg, int argc,
                             char** argv, std::vector<std::string>* positional) {
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("usage: %s %s\n\nsettings (in a --config file as name = value):\n%s", prog, usage,
                  cfg->Help().c_str());
      return ArgsOutcome::kExitOk;
    }
    if (a == "--print-sample-config") {
      std::printf("%s", cfg->SampleFile().c_str());
      return ArgsOutcome::kExitOk;
    }
  }
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    std::string file;
    if (a == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: --config needs a file\n", prog);
        return ArgsOutcome::kExitUsage;
      }
      file = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      file = a.substr(9);
    } else {
      rest.push_back(argv[i]);
      continue;
    }
    Status st = cfg->LoadFile(file);
    if (!st.ok()) {
      std::fprintf(stderr, "%s: %s\n", prog, st.message().c_str());
      return ArgsOutcome::kExitUsage;
    }
  }
  Status st = cfg->ParseArgs(int(rest.size()), rest.data(), 1, positional);
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", prog, st.message().c_str());
    return ArgsOutcome::kExitUsage;
  }
  return ArgsOutcome::kRun;
}

}  // namespace mistore
