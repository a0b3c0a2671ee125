// mistore: the subscriber's command-line client.
//   mistore [--config FILE] init | put FILE [--name NAME] | get NAME|OID
//           [--version N] [-o FILE] | ls | placement NAME|OID [--version N]
// Exit codes: 0 ok, 1 fatal, 2 usage or configuration, 3 not found,
// 4 retryable (agent or POP unreachable). Errors: one line on stderr,
// starting with "mistore: ".
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shared/core/config.h"
#include "shared/core/log.h"
#include "shared/store/file_util.h"
#include "sync-client/client.h"

namespace mistore {
namespace {

constexpr int kExitOk = 0, kExitFatal = 1, kExitUsage = 2, kExitNotFound = 3, kExitRetry = 4;

const char* kUsage =
    "usage: mistore [--config FILE] [--passphrase-file FILE] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  init                          create your keys (asks for a passphrase)\n"
    "  put FILE [--name NAME]        store FILE (as NAME; default: FILE as given)\n"
    "  get NAME|OID [--version N] [--consistency locked|atomic|monotonic] [-o FILE]\n"
    "                                read an object (latest version unless --version);\n"
    "                                to stdout unless -o. monotonic (default): never older\n"
    "                                than what you saw; atomic: the latest, from the object's\n"
    "                                primary or backup; locked: holds off writers while read\n"
    "  ls                            list your objects\n"
    "  placement NAME|OID [--version N]\n"
    "                                show where an object's fragments are\n"
    "\n"
    "The passphrase comes from MISTORE_PASSPHRASE, --passphrase-file, or the terminal.\n"
    "The configuration from --config, MISTORE_CONFIG, or $XDG_CONFIG_HOME/mistore/config.\n"
    "exit codes: 0 ok, 1 fatal, 2 usage/config, 3 not found, 4 retryable\n";

std::vector<Knob> ClientKnobs() {
  return {
      {"agent", "127.0.0.1:7300", "address of your home gateway agent"},
      {"subscriber", "", "your subscriber name"},
      {"key_file", "", "where your wrapped master key lives (default: STATE_DIR/master.key)"},
      {"state_dir", "", "client state (default: $XDG_STATE_HOME/mistore)"},
  };
}

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "mistore: %s\n", msg.c_str());
  return code;
}

int ExitFor(const Status& st) {
  switch (st.code()) {
    case Code::kNotFound: return kExitNotFound;
    case Code::kUnavailable: return kExitRetry;
    case Code::kInvalidArgument: return kExitUsage;
    default: return kExitFatal;
  }
}

int FailStatus(const Status& st) { return Fail(ExitFor(st), st.message()); }

std::string HomeDir(const char* xdg_var, const char* fallback) {
  const char* x = std::getenv(xdg_var);
  if (x && *x) return std::string(x) + "/mistore";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/" + fallback + "/mistore";
}

Result<std::string> ReadPassphrase(const std::string& file, bool confirm) {
  if (const char* env = std::getenv("MISTORE_PASSPHRASE")) return std::string(env);
  if (!file.empty()) {
    auto b = ReadFileBytes(file, 4096);
    if (!b.ok()) return NotFound("cannot read passphrase file " + file);
    std::string p(b->begin(), b->end());
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    return p;
  }
  if (!isatty(0)) return InvalidArgument("no passphrase: set MISTORE_PASSPHRASE or use --passphrase-file");
  auto ask = [](const char* prompt) {
    std::fprintf(stderr, "%s", prompt);
    termios old, quiet;
    tcgetattr(0, &old);
    quiet = old;
    quiet.c_lflag &= ~tcflag_t(ECHO);
    tcsetattr(0, TCSANOW, &quiet);
    char buf[1024];
    std::string p = std::fgets(buf, sizeof buf, stdin) ? buf : "";
    tcsetattr(0, TCSANOW, &old);
    std::fprintf(stderr, "\n");
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    return p;
  };
  std::string p = ask("passphrase: ");
  if (confirm && ask("again: ") != p) return InvalidArgument("the passphrases differ");
  return p;
}

struct Args {
  std::string config_path, passphrase_file, command;
  std::vector<std::string> positional;
  std::string name, output;
  uint64_t version = 0;
  pb::ReadMode mode = pb::READ_MONOTONIC;
};

Result<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string s = argv[i];
    auto value = [&](const std::string& flag) -> Result<std::string> {
      size_t eq = s.find('=');
      if (eq != std::string::npos) return s.substr(eq + 1);
      if (i + 1 >= argc) return InvalidArgument(flag + " needs a value");
      return std::string(argv[++i]);
    };
    auto is = [&](const char* flag) { return s == flag || s.rfind(std::string(flag) + "=", 0) == 0; };
    if (is("--config")) {
      MS_ASSIGN_OR_RETURN(a.config_path, value("--config"));
    } else if (is("--passphrase-file")) {
      MS_ASSIGN_OR_RETURN(a.passphrase_file, value("--passphrase-file"));
    } else if (is("--name")) {
      MS_ASSIGN_OR_RETURN(a.name, value("--name"));
    } else if (is("-o") || is("--output")) {
      MS_ASSIGN_OR_RETURN(a.output, value("-o"));
    } else if (is("--consistency")) {
      MS_ASSIGN_OR_RETURN(std::string m, value("--consistency"));
      if (m == "monotonic") a.mode = pb::READ_MONOTONIC;
      else if (m == "atomic") a.mode = pb::READ_ATOMIC;
      else if (m == "locked") a.mode = pb::READ_LOCKED;
      else return InvalidArgument("--consistency must be locked, atomic or monotonic");
    } else if (is("--version")) {
      MS_ASSIGN_OR_RETURN(std::string v, value("--version"));
      char* end = nullptr;
      a.version = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || a.version == 0) return InvalidArgument("--version needs a number >= 1");
    } else if (s.size() > 1 && s[0] == '-') {
      return InvalidArgument("unknown option '" + s + "' (see --help)");
    } else if (a.command.empty()) {
      a.command = s;
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}

Result<ClientSettings> LoadSettings(const Args& a) {
  Config cfg(ClientKnobs());
  std::string path = a.config_path;
  if (path.empty() && std::getenv("MISTORE_CONFIG")) path = std::getenv("MISTORE_CONFIG");
  if (path.empty()) {
    path = HomeDir("XDG_CONFIG_HOME", ".config") + "/config";
    if (!FileExists(path)) path.clear();
  }
  if (!path.empty()) {
    Status st = cfg.LoadFile(path);
    if (!st.ok()) return InvalidArgument("config " + st.message());
  }
  ClientSettings s;
  s.agent_addr = cfg.Str("agent");
  s.subscriber = cfg.Str("subscriber");
  s.state_dir = cfg.Str("state_dir").empty() ? HomeDir("XDG_STATE_HOME", ".local/state") : cfg.Str("state_dir");
  s.key_file = cfg.Str("key_file").empty() ? s.state_dir + "/master.key" : cfg.Str("key_file");
  if (s.subscriber.empty())
    return InvalidArgument("config " + (path.empty() ? std::string("(none found)") : path) +
                           ": 'subscriber' is not set");
  return s;
}

Result<std::unique_ptr<Client>> OpenClient(const Args& a, const ClientSettings& s) {
  MS_ASSIGN_OR_RETURN(std::string pass, ReadPassphrase(a.passphrase_file, false));
  return Client::Open(s, pass);
}

int CmdInit(const Args& a, const ClientSettings& s) {
  auto pass = ReadPassphrase(a.passphrase_file, true);
  if (!pass.ok()) return FailStatus(pass.status());
  const char* fast = std::getenv("MISTORE_PWHASH_FAST");
  Status st = Client::Init(s, pass.value(), fast && std::string(fast) == "1");
  if (!st.ok()) return FailStatus(st);
  std::printf("created your keys in %s\n", s.key_file.c_str());
  return kExitOk;
}

int CmdPut(const Args& a, const ClientSettings& s) {
  if (a.positional.size() != 1) return Fail(kExitUsage, "usage: mistore put FILE [--name NAME]");
  const std::string& file = a.positional[0];
  if (!FileExists(file)) return Fail(kExitNotFound, "cannot read " + file + ": no such file");
  auto c = OpenClient(a, s);
  if (!c.ok()) return FailStatus(c.status());
  std::string name = a.name.empty() ? file : a.name;
  auto r = c.value()->Put(file, name);
  if (!r.ok()) return FailStatus(r.status());
  std::printf("stored %s as %s version %llu (%llu bytes, %zu chunks)\n", name.c_str(),
              r->oid.Hex().c_str(), (unsigned long long)r->version,
              (unsigned long long)r->size_bytes, r->chunks);
  return kExitOk;
}

int CmdGet(const Args& a, const ClientSettings& s) {
  if (a.positional.size() != 1)
    return Fail(kExitUsage, "usage: mistore get NAME|OID [--version N] [-o FILE]");
  auto c = OpenClient(a, s);
  if (!c.ok()) return FailStatus(c.status());
  FILE* out = stdout;
  std::string tmp;
  if (!a.output.empty()) {
    // Written beside the target and renamed on success: a failed read
    // never leaves a partial file under the requested name.
    tmp = a.output + ".mistore-partial";
    out = std::fopen(tmp.c_str(), "wb");
    if (!out) return Fail(kExitFatal, "cannot write " + tmp + ": " + std::strerror(errno));
  }
  c.value()->set_read_mode(a.mode);
  auto r = c.value()->Get(a.positional[0], a.version, [&](const uint8_t* d, size_t n) -> Status {
    if (n && std::fwrite(d, 1, n, out) != n) return IoError(std::string("write: ") + std::strerror(errno));
    return Status::Ok();
  });
  if (out != stdout) {
    bool ok = std::fflush(out) == 0 && fsync(fileno(out)) == 0;
    std::fclose(out);
    if (!r.ok() || !ok) {
      unlink(tmp.c_str());
      if (r.ok()) return Fail(kExitFatal, "cannot write " + a.output);
    } else if (std::rename(tmp.c_str(), a.output.c_str()) != 0) {
      unlink(tmp.c_str());
      return Fail(kExitFatal, "cannot rename to " + a.output + ": " + std::strerror(errno));
    }
  } else {
    std::fflush(stdout);
  }
  if (!r.ok()) return FailStatus(r.status());
  if (!a.output.empty())
    std::fprintf(stderr, "read %s version %llu (%llu bytes) into %s\n", a.positional[0].c_str(),
                 (unsigned long long)r->version(), (unsigned long long)r->size_bytes(),
                 a.output.c_str());
  return kExitOk;
}

int CmdLs(const Args& a, const ClientSettings& s) {
  auto c = OpenClient(a, s);
  if (!c.ok()) return FailStatus(c.status());
  auto r = c.value()->List();
  if (!r.ok()) return FailStatus(r.status());
  for (auto& e : r.value())
    std::printf("%s  v%llu  %llu  %s\n", e.name.c_str(), (unsigned long long)e.version,
                (unsigned long long)e.size_bytes, e.oid.Hex().c_str());
  return kExitOk;
}

int CmdPlacement(const Args& a, const ClientSettings& s) {
  if (a.positional.size() != 1) return Fail(kExitUsage, "usage: mistore placement NAME|OID [--version N]");
  auto c = OpenClient(a, s);
  if (!c.ok()) return FailStatus(c.status());
  pb::VersionInfo info;
  auto r = c.value()->Placement(a.positional[0], a.version, &info);
  if (!r.ok()) return FailStatus(r.status());
  auto oid = Oid::Decode(info.oid());
  for (auto& f : r->fragments())
    std::printf("chunk=%s index=%u gateway=%u pop=%u\n", ToHex(f.chunk_id()).substr(0, 12).c_str(),
                f.index(), f.gateway_id(), f.pop_id());
  std::printf("object %s version %llu: primary POP %u, backup POP %u\n",
              oid.ok() ? oid->Hex().c_str() : "?", (unsigned long long)info.version(),
              oid.ok() ? oid->primary_pop : 0, oid.ok() ? oid->backup_pop : 0);
  std::printf("placed: %u/%u chunks (%d fragments)\n", r->chunks_placed(), r->chunks_total(),
              r->fragments_size());
  return kExitOk;
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; i++)
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::printf("%s", kUsage);
      return kExitOk;
    }
  SetLogLevel(LogLevel::kError);
  auto args = ParseArgs(argc, argv);
  if (!args.ok()) return Fail(kExitUsage, args.status().message());
  if (args->command.empty()) return Fail(kExitUsage, "no command given (see --help)");
  auto settings = LoadSettings(args.value());
  if (!settings.ok()) return Fail(kExitUsage, settings.status().message());
  const std::string& cmd = args->command;
  if (cmd == "init") return CmdInit(*args, *settings);
  if (cmd == "put") return CmdPut(*args, *settings);
  if (cmd == "get") return CmdGet(*args, *settings);
  if (cmd == "ls") return CmdLs(*args, *settings);
  if (cmd == "placement") return CmdPlacement(*args, *settings);
  return Fail(kExitUsage, "unknown command '" + cmd + "' (see --help)");
}

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return mistore::Main(argc, argv);
}
