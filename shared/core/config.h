// Configuration knobs. Each daemon declares its knobs once (name, default,
// meaning) in a KnobTable; the sample config file and --help are generated
// from that table, and config files ("name = value" lines, '#' comments)
// and --name=value flags are parsed against it. Unknown names, bad values
// and malformed lines are errors naming the file and line. Start-up only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "shared/core/status.h"

namespace mistore {

struct Knob {
  std::string name;
  std::string default_value;
  std::string help;
  enum Kind { kString, kInt, kBool } kind = kString;
};

class Config {
 public:
  explicit Config(std::vector<Knob> knobs);

  Status LoadFile(const std::string& path);
  // Parses "--name=value" / "--name value" / "--flag" arguments; anything
  // that is not a known knob is returned in *positional (if non-null) when
  // it does not start with "--", else is an error.
  Status ParseArgs(int argc, char** argv, int first, std::vector<std::string>* positional);
  Status Set(const std::string& name, const std::string& value, const std::string& where);

  std::string Str(const std::string& name) const;
  int64_t Int(const std::string& name) const;
  bool Bool(const std::string& name) const;
  bool IsSet(const std::string& name) const { return explicit_.count(name) > 0; }

  std::string Help() const;          // for --help
  std::string SampleFile() const;    // for --print-sample-config
  const std::vector<Knob>& knobs() const { return knobs_; }

 private:
  const Knob* Find(const std::string& name) const;
  std::vector<Knob> knobs_;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> explicit_;
};

}  // namespace mistore

namespace mistore {

enum class ArgsOutcome { kRun, kExitOk, kExitUsage };

// The daemons' command line: --help and --print-sample-config print and
// return kExitOk; --config FILE is loaded first, then the other --name=value
// flags override it. Errors print "<prog>: <message>" and return kExitUsage.
ArgsOutcome ParseCommandLine(const char* prog, const char* usage, Config* cfg, int argc,
                             char** argv, std::vector<std::string>* positional);

}  // namespace mistore
