// mistore: the subscriber's command-line client (see kUsage for commands,
// options and exit codes). Single-threaded: each command opens one Client
// (sync-client/client.h) and, for sync/snapshot/volume restore, drives
// sync-client/sync.h. Output: results on stdout (one JSON object per line
// with --json, ending with a summary), errors as one line on stderr starting
// with "mistore: ", progress on stderr only when it is a terminal.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "shared/core/config.h"
#include "shared/core/log.h"
#include "shared/store/file_util.h"
#include "sync-client/client.h"
#include "sync-client/device.h"
#include "sync-client/pair.h"
#include "sync-client/sync.h"

namespace mistore {
namespace {

// Exit codes (documented in kUsage and README.md).
constexpr int kExitOk = 0, kExitFatal = 1, kExitUsage = 2, kExitNotFound = 3, kExitRetry = 4,
              kExitDenied = 5, kExitPartial = 6;

const char* kUsage =
    "usage: mistore [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  init                          create your keys (asks for a passphrase)\n"
    "  pair CODE                     pair this device with its gateway agent (CODE from\n"
    "                                `mistore-agent pair` on the gateway); an agent with\n"
    "                                paired devices refuses other devices (exit 5)\n"
    "  enroll TOKEN --dc ADDR        enrol this device for working directly through a POP\n"
    "                                (--pop); TOKEN from `mistore-dc enroll --role client\n"
    "                                --subscriber S`, ADDR the DC's enrol_listen; writes\n"
    "                                device_key_file (0600), device_cert_file, ca_public_key_file\n"
    "  status                        configuration, keys, gateway "
    "reachability, synced volumes\n"
    "  put FILE [--name NAME]        store FILE as the next version of NAME "
    "(default: FILE);\n"
    "                                only chunks your POP does not hold "
    "travel\n"
    "  get NAME|OID [--version N | --at TIME] [--consistency "
    "locked|atomic|monotonic] [-o FILE]\n"
    "                                read an object (latest version unless "
    "--version/--at);\n"
    "                                to stdout unless -o. monotonic (default): "
    "never older\n"
    "                                than what you saw; atomic: the latest, "
    "from the object's\n"
    "                                primary or backup; locked: holds off "
    "writers while read\n"
    "  ls [--all]                    list your objects (--all: removed ones "
    "too, marked)\n"
    "  rm NAME                       remove NAME (a tombstone version; old "
    "versions stay)\n"
    "  versions NAME | --volume V    list the versions of an object or of a "
    "volume's tree\n"
    "  restore NAME [--version N | --at TIME] [-o FILE]\n"
    "                                write an older version (default: the "
    "newest that is not\n"
    "                                removed) to FILE (default: NAME's last "
    "path component)\n"
    "  restore --volume V [--version N | --at TIME] -o DIR\n"
    "                                write a whole volume as it was (a "
    "snapshot's version,\n"
    "                                or at TIME) into DIR\n"
    "  sync DIR [--volume V] [--once] [--interval SECONDS]\n"
    "                                keep DIR and volume V (default: DIR's "
    "name) in sync both\n"
    "                                ways; continuous (inotify + rescan) "
    "unless --once;\n"
    "                                DIR/.mistoreignore holds gitignore-style "
    "patterns\n"
    "  snapshot [--volume V] [--label TEXT]\n"
    "                                record the volume's current tree as a "
    "snapshot version\n"
    "  placement NAME|OID [--version N]\n"
    "                                show where an object's fragments are\n"
    "  share NAME --with S           share NAME read-only with subscriber S: S may read\n"
    "                                its latest version (never write, lock or remove it);\n"
    "                                S must have run `mistore shared` once (publishes S's key)\n"
    "  unshare NAME --with S         stop sharing NAME with S (POPs refuse S's reads within\n"
    "                                their share_cache_ttl_ms, 5 s by default)\n"
    "  shared                        list what others shared with you (OWNER/NAME); also\n"
    "                                publishes your share key, so others can share with you\n"
    "  get --shared OWNER/NAME|OWNER/OID [-o FILE]\n"
    "                                read the latest version of OWNER's object NAME that\n"
    "                                OWNER shared with you (never locked)\n"
    "\n"
    "options:\n"
    "  --config FILE                 configuration (else MISTORE_CONFIG, else\n"
    "                                $XDG_CONFIG_HOME/mistore/config)\n"
    "  --passphrase-file FILE        passphrase (else MISTORE_PASSPHRASE, else "
    "the terminal)\n"
    "  --pop ADDR                    away from home: work directly through the POP at ADDR\n"
    "                                instead of the home gateway (config key `pop`); needs an\n"
    "                                enrolled device (`mistore enroll`); every command works;\n"
    "                                the POP serves only your certificate's subscriber (exit 5)\n"
    "  --json                        one JSON object per line on stdout, "
    "ending with a summary\n"
    "                                "
    "{\"event\":\"summary\",\"files\",\"bytes_sent\",\"bytes_received\","
    "\"seconds\"}\n"
    "  -v, -q                        more / less output\n"
    "  --dry-run                     put, sync: show what would travel; change "
    "nothing\n"
    "  --bwlimit RATE                upload cap in bytes/s (suffixes K, M, G: "
    "powers of 1024)\n"
    "  --tier pop|dc                 put: where a new object lives: pop (default; primary\n"
    "                                and backup POPs, fragments on gateways) or dc (the DC\n"
    "                                keeps its one replica: an archive); an existing name\n"
    "                                keeps where it lives\n"
    "  --help                        this text\n"
    "\n"
    "TIME: seconds since the epoch (1700000000 or @1700000000) or UTC\n"
    "YYYY-MM-DD[THH:MM[:SS]].\n"
    "\n"
    "exit codes: 0 ok; 1 fatal (corrupt data, local I/O error); 2 usage or "
    "configuration;\n"
    "3 not found; 4 retryable (gateway, POP or DC unreachable); 5 denied "
    "(wrong passphrase,\n"
    "not your object or not shared with you, device not paired or not enrolled, POP refused the "
    "device); 6 partial (sync or volume restore finished, some files "
    "failed)\n";

std::vector<Knob> ClientKnobs() {
  return {
      {"agent", "127.0.0.1:7300", "address of your home gateway agent"},
      {"subscriber", "", "your subscriber name"},
      {"key_file", "", "where your wrapped master key lives (default: STATE_DIR/master.key)"},
      {"state_dir", "", "client state (default: $XDG_STATE_HOME/mistore)"},
      {"device", "", "this device's name in conflict copies (default: the host name)"},
      {"pairing_file", "",
       "this device's pairing keys from `mistore pair` (default: "
       "$XDG_CONFIG_HOME/mistore/pairing)"},
      {"pop", "",
       "away from home: the POP to work through directly instead of the agent (HOST:PORT; "
       "empty: the agent); --pop overrides; needs `mistore enroll`"},
      {"device_key_file", "",
       "this device's key for POPs (default: $XDG_CONFIG_HOME/mistore/device.key)"},
      {"device_cert_file", "",
       "this device's certificate from `mistore enroll` (default: "
       "$XDG_CONFIG_HOME/mistore/device.cert)"},
      {"ca_public_key_file", "",
       "the DC's CA key from `mistore enroll` (default: $XDG_CONFIG_HOME/mistore/ca.pub)"},
      {"sync_interval_s", "60", "continuous sync: rescan at least this often (seconds)",
       Knob::kInt},
      {"sync_workers", "4", "sync: files transferred at once (1..16)", Knob::kInt},
      {"get_window_bytes", "33554432",
       "reads: most bytes of chunks requested and not yet written out (keep it >= the "
       "path's bandwidth x a chunk's round trip: 20 MB/s x 0.5-1.5 s from remote gateways; "
       "65536..268435456; memory held by a read)",
       Knob::kInt},
      {"put_no_wait_bytes_max", "1048576",
       "puts of files up to this size send their chunks without waiting for the POP's answer "
       "to which it holds (saves one gateway round trip; at worst re-sends what it held); 0: "
       "always wait; at most 16777216; memory held by such a put",
       Knob::kInt},
  };
}

bool g_json = false;
int g_verbosity = 1;  // 0 quiet, 1 normal, 2 verbose
volatile std::sig_atomic_t g_stop = 0;

std::string JsonStr(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += char(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += char(c);
    }
  }
  return o + "\"";
}

// {"k":v,...} from pre-rendered values.
std::string JsonObj(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string o = "{";
  for (size_t i = 0; i < kv.size(); i++)
    o += (i ? "," : "") + JsonStr(kv[i].first) + ":" + kv[i].second;
  return o + "}";
}
std::string Num(uint64_t v) { return std::to_string(v); }

void JsonLine(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::printf("%s\n", JsonObj(kv).c_str());
  std::fflush(stdout);
}

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "mistore: %s\n", msg.c_str());
  if (g_json)
    JsonLine(
        {{"event", JsonStr("error")}, {"message", JsonStr(msg)}, {"exit", Num(uint64_t(code))}});
  return code;
}

int ExitFor(const Status& st) {
  switch (st.code()) {
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kUnavailable:
      return kExitRetry;
    case Code::kInvalidArgument:
      return kExitUsage;
    case Code::kPermissionDenied:
      return kExitDenied;
    default:
      return kExitFatal;
  }
}

int FailStatus(const Status& st) { return Fail(ExitFor(st), st.message()); }

std::string HomeDir(const char* xdg_var, const char* fallback) {
  const char* x = std::getenv(xdg_var);
  if (x && *x) return std::string(x) + "/mistore";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/" + fallback + "/mistore";
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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
  if (!isatty(0))
    return InvalidArgument("no passphrase: set MISTORE_PASSPHRASE or use --passphrase-file");
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
  std::string name, output, volume, label;
  std::string pop, dc;  // --pop ADDR (issue 9), --dc ADDR (enroll)
  std::string with;    // share/unshare --with S (issue 4)
  std::string shared;  // get --shared OWNER/NAME (issue 4)
  uint64_t version = 0;
  int64_t at_ms = 0;
  pb::ReadMode mode = pb::READ_MONOTONIC;
  bool once = false, dry_run = false;
  bool dc_tier = false;  // put --tier dc
  bool all = false;  // ls: removed objects too
  uint64_t bwlimit = 0;
  uint64_t interval_s = 0;
};

// "1700000000", "@1700000000", "2026-11-28", "2026-11-28T15:04[:05][Z]" (UTC).
Result<int64_t> ParseTimeMs(const std::string& v) {
  std::string t = v;
  if (!t.empty() && t[0] == '@') t.erase(0, 1);
  char* end = nullptr;
  long long secs = std::strtoll(t.c_str(), &end, 10);
  if (!t.empty() && *end == 0) return int64_t(secs) * 1000 + 999;
  struct tm tm = {};
  const char* formats[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
                           "%Y-%m-%d %H:%M", "%Y-%m-%d"};
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) t.pop_back();
  for (const char* f : formats) {
    tm = {};
    const char* rest = strptime(t.c_str(), f, &tm);
    if (rest && *rest == 0) return int64_t(timegm(&tm)) * 1000 + 999;
  }
  return InvalidArgument("cannot read time '" + v +
                         "' (use seconds since the epoch or YYYY-MM-DD[THH:MM[:SS]], UTC)");
}

Result<uint64_t> ParseRate(const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || end == v.c_str() || x <= 0)
    return InvalidArgument("--bwlimit needs a positive rate");
  std::string suf = end;
  if (!suf.empty() && (suf.back() == 's' || suf.back() == 'S')) suf.pop_back();  // "1M/s"
  if (!suf.empty() && suf.back() == '/') suf.pop_back();
  double mul = 1;
  if (suf == "K" || suf == "k" || suf == "KiB")
    mul = 1024;
  else if (suf == "M" || suf == "m" || suf == "MiB")
    mul = 1024.0 * 1024;
  else if (suf == "G" || suf == "g" || suf == "GiB")
    mul = 1024.0 * 1024 * 1024;
  else if (!suf.empty() && suf != "B")
    return InvalidArgument("--bwlimit: unknown unit '" + suf + "'");
  return uint64_t(x * mul);
}

Result<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string s = argv[i];
    auto value = [&](const std::string& flag) -> Result<std::string> {
      size_t eq = s.find('=');
      if (s.rfind("--", 0) == 0 && eq != std::string::npos) return s.substr(eq + 1);
      if (i + 1 >= argc) return InvalidArgument(flag + " needs a value");
      return std::string(argv[++i]);
    };
    auto is = [&](const char* flag) {
      return s == flag || s.rfind(std::string(flag) + "=", 0) == 0;
    };
    if (is("--config")) {
      MS_ASSIGN_OR_RETURN(a.config_path, value("--config"));
    } else if (is("--passphrase-file")) {
      MS_ASSIGN_OR_RETURN(a.passphrase_file, value("--passphrase-file"));
    } else if (is("--pop")) {
      MS_ASSIGN_OR_RETURN(a.pop, value("--pop"));
      if (a.pop.empty()) return InvalidArgument("--pop needs HOST:PORT");
    } else if (is("--dc")) {
      MS_ASSIGN_OR_RETURN(a.dc, value("--dc"));
    } else if (is("--with")) {
      MS_ASSIGN_OR_RETURN(a.with, value("--with"));
      if (a.with.empty()) return InvalidArgument("--with needs a subscriber");
    } else if (is("--shared")) {
      MS_ASSIGN_OR_RETURN(a.shared, value("--shared"));
    } else if (is("--name")) {
      MS_ASSIGN_OR_RETURN(a.name, value("--name"));
    } else if (is("--volume")) {
      MS_ASSIGN_OR_RETURN(a.volume, value("--volume"));
    } else if (is("--label")) {
      MS_ASSIGN_OR_RETURN(a.label, value("--label"));
    } else if (s == "-o" || is("--output")) {
      MS_ASSIGN_OR_RETURN(a.output, value("-o"));
    } else if (s == "--json") {
      g_json = true;
    } else if (s == "-v" || s == "--verbose") {
      g_verbosity = 2;
    } else if (s == "-q" || s == "--quiet") {
      g_verbosity = 0;
    } else if (s == "--once") {
      a.once = true;
    } else if (s == "--all" || s == "-a") {
      a.all = true;
    } else if (s == "--dry-run" || s == "-n") {
      a.dry_run = true;
    } else if (is("--tier")) {
      MS_ASSIGN_OR_RETURN(std::string v, value("--tier"));
      if (v != "pop" && v != "dc") return InvalidArgument("--tier is pop or dc, not " + v);
      a.dc_tier = v == "dc";
    } else if (is("--bwlimit")) {
      MS_ASSIGN_OR_RETURN(std::string v, value("--bwlimit"));
      MS_ASSIGN_OR_RETURN(a.bwlimit, ParseRate(v));
    } else if (is("--interval")) {
      MS_ASSIGN_OR_RETURN(std::string v, value("--interval"));
      a.interval_s = std::strtoull(v.c_str(), nullptr, 10);
      if (a.interval_s == 0) return InvalidArgument("--interval needs a number of seconds >= 1");
    } else if (is("--at")) {
      MS_ASSIGN_OR_RETURN(std::string v, value("--at"));
      MS_ASSIGN_OR_RETURN(a.at_ms, ParseTimeMs(v));
    } else if (is("--consistency")) {
      MS_ASSIGN_OR_RETURN(std::string m, value("--consistency"));
      if (m == "monotonic")
        a.mode = pb::READ_MONOTONIC;
      else if (m == "atomic")
        a.mode = pb::READ_ATOMIC;
      else if (m == "locked")
        a.mode = pb::READ_LOCKED;
      else
        return InvalidArgument("--consistency must be locked, atomic or monotonic");
    } else if (is("--version")) {
      MS_ASSIGN_OR_RETURN(std::string v, value("--version"));
      char* end = nullptr;
      a.version = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end || a.version == 0)
        return InvalidArgument("--version needs a number >= 1");
    } else if (s.size() > 1 && s[0] == '-') {
      return InvalidArgument("unknown option '" + s + "' (see --help)");
    } else if (a.command.empty()) {
      a.command = s;
    } else {
      a.positional.push_back(s);
    }
  }
  if (a.version && a.at_ms) return InvalidArgument("give --version or --at, not both");
  return a;
}

struct Loaded {
  ClientSettings s;
  std::string config_path;
  std::string device;
  uint64_t sync_interval_s = 60;
  size_t sync_workers = 4;
};

Result<Loaded> LoadSettings(const Args& a) {
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
  Loaded l;
  l.config_path = path;
  ClientSettings& s = l.s;
  s.agent_addr = cfg.Str("agent");
  s.subscriber = cfg.Str("subscriber");
  s.state_dir = cfg.Str("state_dir").empty() ? HomeDir("XDG_STATE_HOME", ".local/state")
                                             : cfg.Str("state_dir");
  s.key_file = cfg.Str("key_file").empty() ? s.state_dir + "/master.key" : cfg.Str("key_file");
  s.pairing_file = cfg.Str("pairing_file").empty()
                       ? HomeDir("XDG_CONFIG_HOME", ".config") + "/pairing"
                       : cfg.Str("pairing_file");
  // Away from home (issue 9): --pop, else the `pop` key.
  s.pop_addr = a.pop.empty() ? cfg.Str("pop") : a.pop;
  auto in_config_dir = [&](const char* knob, const char* file) {
    return cfg.Str(knob).empty() ? HomeDir("XDG_CONFIG_HOME", ".config") + "/" + file
                                 : cfg.Str(knob);
  };
  s.device_key_file = in_config_dir("device_key_file", "device.key");
  s.device_cert_file = in_config_dir("device_cert_file", "device.cert");
  s.ca_public_key_file = in_config_dir("ca_public_key_file", "ca.pub");
  l.device = cfg.Str("device");
  if (l.device.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    l.device = host[0] ? host : "device";
  }
  l.sync_interval_s = cfg.Int("sync_interval_s") > 0 ? uint64_t(cfg.Int("sync_interval_s")) : 60;
  if (cfg.Int("sync_workers") < 1 || cfg.Int("sync_workers") > 16)
    return InvalidArgument("config: sync_workers must be 1..16");
  l.sync_workers = size_t(cfg.Int("sync_workers"));
  s.get_window_bytes = size_t(std::max<int64_t>(0, cfg.Int("get_window_bytes")));
  s.put_no_wait_bytes_max = size_t(std::max<int64_t>(0, cfg.Int("put_no_wait_bytes_max")));
  if (s.subscriber.empty() && a.command != "status")
    return InvalidArgument("config " + (path.empty() ? std::string("(none found)") : path) +
                           ": 'subscriber' is not set");
  return l;
}

Result<std::unique_ptr<Client>> OpenClient(const Args& a, const ClientSettings& s) {
  MS_ASSIGN_OR_RETURN(std::string pass, ReadPassphrase(a.passphrase_file, false));
  auto c = Client::Open(s, pass);
  if (!c.ok() && c.status().code() == Code::kPermissionDenied)
    return Status(Code::kPermissionDenied,
                  "cannot open your keys in " + s.key_file + ": " + c.status().message());
  return c;
}

// Progress on a terminal (stderr): files, bytes, rate, ETA; nothing when
// piped, with --json or -q.
class Progress {
 public:
  Progress() : on_(isatty(2) && !g_json && g_verbosity > 0), start_(Now()) {}
  bool on() const { return on_; }
  void Update(const std::string& what, uint64_t done, uint64_t total, size_t files_done) {
    if (!on_) return;
    double now = Now();
    if (now - last_ < 0.1 && done < total) return;
    last_ = now;
    double secs = now - start_;
    double rate = secs > 0 ? double(done) / secs : 0;
    char eta[32] = "";
    if (rate > 0 && total > done)
      std::snprintf(eta, sizeof eta, "  ETA %.0f s", double(total - done) / rate);
    std::fprintf(stderr, "\r\033[K%s  %zu file%s  %.1f/%.1f MiB  %.1f MiB/s%s", what.c_str(),
                 files_done, files_done == 1 ? "" : "s", double(done) / 1048576,
                 double(total) / 1048576, rate / 1048576, eta);
  }
  void Done() {
    if (on_ && last_ > 0) std::fprintf(stderr, "\r\033[K");
  }

 private:
  static double Now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  bool on_;
  double start_;
  double last_ = 0;
};

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void Summary(const std::string& command, size_t files, const TransferStats& st, double seconds,
             std::vector<std::pair<std::string, std::string>> extra = {}) {
  if (g_json) {
    std::vector<std::pair<std::string, std::string>> kv = {
        {"event", JsonStr("summary")},
        {"command", JsonStr(command)},
        {"files", Num(files)},
        {"bytes_sent", Num(st.bytes_sent)},
        {"bytes_received", Num(st.bytes_received)}};
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", seconds);
    kv.push_back({"seconds", secs});
    for (auto& e : extra) kv.push_back(e);
    JsonLine(kv);
  } else if (g_verbosity > 1) {
    std::fprintf(stderr, "%s: %zu file%s, %llu bytes sent, %llu bytes received, %.2f s\n",
                 command.c_str(), files, files == 1 ? "" : "s", (unsigned long long)st.bytes_sent,
                 (unsigned long long)st.bytes_received, seconds);
  }
}

int CmdInit(const Args& a, const Loaded& l) {
  auto pass = ReadPassphrase(a.passphrase_file, true);
  if (!pass.ok()) return FailStatus(pass.status());
  const char* fast = std::getenv("MISTORE_PWHASH_FAST");
  Status st = Client::Init(l.s, pass.value(), fast && std::string(fast) == "1");
  if (!st.ok()) return FailStatus(st);
  (void)chmod(l.s.state_dir.c_str(), 0700);
  if (g_json)
    JsonLine({{"event", JsonStr("init")}, {"key_file", JsonStr(l.s.key_file)}});
  else if (g_verbosity > 0)
    std::printf("created your keys in %s\n", l.s.key_file.c_str());
  return kExitOk;
}

std::vector<std::string> SyncedVolumes(const ClientSettings& s) {
  std::vector<std::string> out;
  DIR* d = opendir((s.state_dir + "/sync").c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    const std::string suf = ".base";
    if (n.size() > suf.size() + 17 && n.compare(n.size() - suf.size(), suf.size(), suf) == 0)
      out.push_back(n.substr(0, n.size() - suf.size() - 17));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string FormatTime(int64_t ms);

int CmdStatus(const Args& a, const Loaded& l) {
  const ClientSettings& s = l.s;
  struct stat st;
  bool key = stat(s.key_file.c_str(), &st) == 0;
  char mode[8] = "-";
  if (key) std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
  std::string reach = "not checked";
  size_t objects = 0;
  int rc = kExitOk;
  if (key && !s.subscriber.empty()) {
    auto c = OpenClient(a, s);
    if (!c.ok()) {
      reach = "keys not opened: " + c.status().message();
      rc = ExitFor(c.status());
    } else {
      auto r = c.value()->List();
      if (r.ok()) {
        reach = "reachable";
        objects = r->size();
      } else {
        reach = "unreachable: " + r.status().message();
        rc = ExitFor(r.status());
      }
    }
  }
  auto vols = SyncedVolumes(s);
  // Device enrolment for --pop (issue 9).
  auto dev = ReadDeviceCertificate(s.device_cert_file);
  std::string enrolled =
      dev.ok() ? "device " + std::to_string(dev->node_id) + " for " + dev->subscriber + ", until " +
                     FormatTime(int64_t(dev->expires_ms))
               : (dev.status().code() == Code::kNotFound ? std::string("no (mistore enroll)")
                                                         : dev.status().message());
  const bool via_pop = !s.pop_addr.empty();
  if (g_json) {
    std::string v = "[";
    for (size_t i = 0; i < vols.size(); i++) v += (i ? "," : "") + JsonStr(vols[i]);
    v += "]";
    JsonLine({{"event", JsonStr("status")},
              {"config", JsonStr(l.config_path)},
              {"subscriber", JsonStr(s.subscriber)},
              {"agent", JsonStr(s.agent_addr)},
              {"pop", JsonStr(s.pop_addr)},
              {"enrolled", JsonStr(enrolled)},
              {"state_dir", JsonStr(s.state_dir)},
              {"key_file", JsonStr(s.key_file)},
              {"key_mode", JsonStr(mode)},
              {"device", JsonStr(l.device)},
              {"gateway", JsonStr(reach)},
              {"objects", Num(objects)},
              {"volumes", v}});
  } else {
    std::printf("config:     %s\n", l.config_path.empty() ? "(none)" : l.config_path.c_str());
    std::printf("subscriber: %s\n", s.subscriber.empty() ? "(not set)" : s.subscriber.c_str());
    std::printf("device:     %s\n", l.device.c_str());
    std::printf("state dir:  %s\n", s.state_dir.c_str());
    std::printf("key file:   %s (%s)\n", s.key_file.c_str(),
                key ? mode : "missing: run 'mistore init'");
    if (via_pop)
      std::printf("pop:        %s (%s; direct, not through the gateway %s)\n",
                  s.pop_addr.c_str(), reach.c_str(), s.agent_addr.c_str());
    else
      std::printf("gateway:    %s (%s)\n", s.agent_addr.c_str(), reach.c_str());
    std::printf("enrolled:   %s\n", enrolled.c_str());
    if (reach == "reachable") std::printf("objects:    %zu\n", objects);
    for (auto& v : vols) std::printf("volume:     %s\n", v.c_str());
  }
  return rc;
}

int CmdPut(const Args& a, const Loaded& l) {
  if (a.positional.size() != 1)
    return Fail(kExitUsage, "usage: mistore put FILE [--name NAME] [--tier pop|dc]");
  const std::string& file = a.positional[0];
  if (!FileExists(file)) return Fail(kExitNotFound, "cannot read " + file + ": no such file");
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  auto t0 = std::chrono::steady_clock::now();
  std::string name = a.name.empty() ? file : a.name;
  Progress progress;
  PutOptions po;
  po.dry_run = a.dry_run;
  po.dc_tier = a.dc_tier;
  po.bwlimit_bytes_per_s = a.bwlimit;
  po.put_time_ms = WallMs();
  if (progress.on())
    po.progress = [&](uint64_t done, uint64_t total) {
      progress.Update("put " + name, done, total, 0);
    };
  auto r = c.value()->Put(file, name, po);
  progress.Done();
  if (!r.ok()) return FailStatus(r.status());
  TransferStats st = c.value()->stats();
  if (a.dry_run) st.bytes_sent = r->bytes_sent;
  if (g_json) {
    JsonLine({{"event", JsonStr(a.dry_run ? "would-put" : "put")},
              {"name", JsonStr(name)},
              {"oid", JsonStr(a.dry_run ? "" : r->oid.Hex())},
              {"tier", JsonStr(a.dry_run          ? ""
                               : IsDcTier(r->oid) ? "dc"
                                                  : "pop")},
              {"version", Num(r->version)},
              {"size_bytes", Num(r->size_bytes)},
              {"chunks", Num(r->chunks)},
              {"chunks_sent", Num(r->chunks_sent)},
              {"bytes_sent", Num(r->bytes_sent)}});
    Summary("put", 1, st, SecondsSince(t0));
  } else if (a.dry_run) {
    std::printf("would store %s: %llu bytes, %zu chunks, %zu to send (%llu bytes)\n", name.c_str(),
                (unsigned long long)r->size_bytes, r->chunks, r->chunks_sent,
                (unsigned long long)r->bytes_sent);
  } else if (g_verbosity > 0) {
    std::printf(
        "stored %s as %s version %llu%s (%llu bytes, %zu chunks; sent "
        "%zu chunks, %llu bytes)\n",
        name.c_str(), r->oid.Hex().c_str(), (unsigned long long)r->version,
        IsDcTier(r->oid) ? " in the DC tier" : "", (unsigned long long)r->size_bytes, r->chunks,
        r->chunks_sent, (unsigned long long)r->bytes_sent);
  }
  return kExitOk;
}

constexpr uint64_t kWritebackStepBytes = 1 << 20;

// Writes name@version to `output` (a temp file beside it, renamed on
// success: a failed read never leaves a partial file under the name), or to
// stdout when output is empty.
// shared_owner set: `name` is OWNER/NAME of an object shared with us.
int WriteObject(Client* c, const std::string& name, uint64_t version, const std::string& output,
                pb::VersionInfo* info_out, const std::string& shared_owner = "") {
  FILE* out = stdout;
  std::string tmp;
  if (!output.empty()) {
    tmp = output + kPartialSuffix;
    out = std::fopen(tmp.c_str(), "wb");
    if (!out) return Fail(kExitFatal, "cannot write " + tmp + ": " + std::strerror(errno));
  }
  Progress progress;
  uint64_t done = 0, written_back = 0;
  auto sink = [&](const uint8_t* d, size_t n) -> Status {
    if (n && std::fwrite(d, 1, n, out) != n)
      return IoError("cannot write " + (output.empty() ? std::string("stdout") : output) + ": " +
                     std::strerror(errno));
    done += n;
    // The disk writes while the rest arrives, so the fsync before the
    // rename waits for the last chunk only, not the whole object (100 MB
    // left dirty took ~80 ms to flush at the end on the netlab's disk).
    if (out != stdout && done - written_back >= kWritebackStepBytes && std::fflush(out) == 0) {
      StartWriteback(fileno(out), written_back, done - written_back);
      written_back = done;
    }
    if (progress.on() && out != stdout) progress.Update("get " + name, done, done, 0);
    return Status::Ok();
  };
  auto r = shared_owner.empty()
               ? c->Get(name, version, sink)
               : c->GetShared(shared_owner, name.substr(shared_owner.size() + 1), sink);
  progress.Done();
  if (out != stdout) {
    int err = 0;
    if (std::fflush(out) != 0 || fsync(fileno(out)) != 0) err = errno;
    if (std::fclose(out) != 0 && !err) err = errno;
    if (!r.ok() || err) {
      unlink(tmp.c_str());
      if (r.ok()) return Fail(kExitFatal, "cannot write " + output + ": " + std::strerror(err));
    } else if (std::rename(tmp.c_str(), output.c_str()) != 0) {
      unlink(tmp.c_str());
      return Fail(kExitFatal, "cannot rename to " + output + ": " + std::strerror(errno));
    }
  } else {
    std::fflush(stdout);
  }
  if (!r.ok()) {
    if (r.status().code() == Code::kIo)
      return Fail(kExitFatal, r.status().message() + " (nothing was changed)");
    return FailStatus(r.status());
  }
  if (info_out) *info_out = r.value();
  return kExitOk;
}

int CmdGet(const Args& a, const Loaded& l) {
  if (!a.shared.empty()) {
    const size_t slash = a.shared.find('/');
    if (!a.positional.empty() || a.version || a.at_ms || slash == std::string::npos ||
        slash == 0 || slash + 1 == a.shared.size())
      return Fail(kExitUsage, "usage: mistore get --shared OWNER/NAME [-o FILE] (the latest "
                              "version; see `mistore shared`)");
    auto c = OpenClient(a, l.s);
    if (!c.ok()) return FailStatus(c.status());
    c.value()->set_read_mode(a.mode);
    pb::VersionInfo info;
    int rc = WriteObject(c.value().get(), a.shared, 0, a.output, &info,
                         a.shared.substr(0, slash));
    if (rc != kExitOk) return rc;
    if (g_json && !a.output.empty())
      JsonLine({{"event", JsonStr("get")},
                {"name", JsonStr(a.shared)},
                {"version", Num(info.version())},
                {"size_bytes", Num(info.size_bytes())},
                {"output", JsonStr(a.output)}});
    return kExitOk;
  }
  if (a.positional.size() != 1)
    return Fail(kExitUsage, "usage: mistore get NAME|OID [--version N | --at TIME] [-o FILE]");
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  auto t0 = std::chrono::steady_clock::now();
  c.value()->set_read_mode(a.mode);
  uint64_t version = a.version;
  if (a.at_ms) {
    auto v = c.value()->VersionAt(a.positional[0], a.at_ms);
    if (!v.ok()) return FailStatus(v.status());
    version = v.value();
  }
  pb::VersionInfo info;
  int rc = WriteObject(c.value().get(), a.positional[0], version, a.output, &info);
  if (rc != kExitOk) return rc;
  if (g_json && !a.output.empty()) {
    JsonLine({{"event", JsonStr("get")},
              {"name", JsonStr(a.positional[0])},
              {"version", Num(info.version())},
              {"size_bytes", Num(info.size_bytes())},
              {"output", JsonStr(a.output)}});
    Summary("get", 1, c.value()->stats(), SecondsSince(t0));
  } else if (!a.output.empty() && g_verbosity > 0) {
    std::fprintf(stderr, "read %s version %llu (%llu bytes) into %s\n", a.positional[0].c_str(),
                 (unsigned long long)info.version(), (unsigned long long)info.size_bytes(),
                 a.output.c_str());
  }
  return kExitOk;
}

// Read-only sharing (issue 4; docs/security.md "Sharing").
int CmdShare(const Args& a, const Loaded& l, bool remove) {
  const char* what = remove ? "unshare" : "share";
  if (a.positional.size() != 1 || a.with.empty())
    return Fail(kExitUsage, std::string("usage: mistore ") + what + " NAME --with SUBSCRIBER");
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  c.value()->set_read_mode(pb::READ_ATOMIC);
  auto r = remove ? c.value()->Unshare(a.positional[0], a.with)
                  : c.value()->Share(a.positional[0], a.with);
  if (!r.ok()) return FailStatus(r.status());
  if (g_json)
    JsonLine({{"event", JsonStr(what)},
              {"name", JsonStr(a.positional[0])},
              {"with", JsonStr(a.with)},
              {"changed", r.value() ? "true" : "false"}});
  else if (g_verbosity > 0 && !remove)
    std::printf("shared %s read-only with %s%s\n", a.positional[0].c_str(), a.with.c_str(),
                r.value() ? "" : " (again)");
  else if (g_verbosity > 0)
    std::printf(r.value() ? "%s is no longer shared with %s\n" : "%s was not shared with %s\n",
                a.positional[0].c_str(), a.with.c_str());
  return kExitOk;
}

int CmdShared(const Args& a, const Loaded& l) {
  if (!a.positional.empty()) return Fail(kExitUsage, "usage: mistore shared");
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  auto r = c.value()->ListShared();
  if (!r.ok()) return FailStatus(r.status());
  for (const SharedEntry& e : r.value()) {
    if (g_json)
      JsonLine({{"event", JsonStr("shared")},
                {"owner", JsonStr(e.owner)},
                {"name", JsonStr(e.name)},
                {"oid", JsonStr(e.oid.Hex())},
                {"since_ms", Num(uint64_t(std::max<int64_t>(0, e.created_ms)))},
                {"problem", JsonStr(e.problem)}});
    else if (e.problem.empty())
      std::printf("%s/%s  %s  since %s\n", e.owner.c_str(), e.name.c_str(), e.oid.Hex().c_str(),
                  FormatTime(e.created_ms).c_str());
    else
      std::printf("%s/?  %s  unusable grant: %s\n", e.owner.c_str(), e.oid.Hex().c_str(),
                  e.problem.c_str());
  }
  return kExitOk;
}

// mistore enroll TOKEN --dc ADDR (issue 9, device.h): needs no keys, only
// the DC's enrolment listener.
int CmdEnroll(const Args& a, const Loaded& l) {
  if (a.positional.size() != 1 || a.dc.empty())
    return Fail(kExitUsage, "usage: mistore enroll TOKEN --dc ADDR (TOKEN from `mistore-dc "
                            "enroll --role client --subscriber S`, ADDR the DC's enrol_listen)");
  const ClientSettings& s = l.s;
  const bool had = FileExists(s.device_cert_file);
  auto cert = EnrollDevice(a.positional[0], a.dc,
                           {s.device_key_file, s.device_cert_file, s.ca_public_key_file},
                           s.subscriber);
  if (!cert.ok()) return FailStatus(cert.status());
  if (g_json)
    JsonLine({{"event", JsonStr("enrolled")},
              {"device_id", Num(cert->node_id)},
              {"subscriber", JsonStr(cert->subscriber)},
              {"expires_ms", Num(cert->expires_ms)},
              {"already", had ? "true" : "false"},
              {"cert_file", JsonStr(s.device_cert_file)}});
  else if (g_verbosity > 0)
    std::printf("%s device %u for subscriber %s (certificate %s, until %s); use it with "
                "--pop ADDR\n",
                had ? "already enrolled as" : "enrolled as", cert->node_id,
                cert->subscriber.c_str(), s.device_cert_file.c_str(),
                FormatTime(int64_t(cert->expires_ms)).c_str());
  return kExitOk;
}

// mistore pair CODE (issue 4, pair.h): needs no keys, only the agent.
int CmdPair(const Args& a, const Loaded& l) {
  if (a.positional.size() != 1) return Fail(kExitUsage, "usage: mistore pair CODE");
  Status st = PairWithAgent(l.s.agent_addr, a.positional[0], l.device, l.s.pairing_file);
  if (!st.ok()) return FailStatus(st);
  if (g_json)
    JsonLine({{"event", JsonStr("paired")}, {"pairing_file", JsonStr(l.s.pairing_file)}});
  else if (g_verbosity > 0)
    std::printf("paired with the gateway agent at %s (keys in %s)\n",
                l.s.agent_addr.c_str(), l.s.pairing_file.c_str());
  return kExitOk;
}

int CmdLs(const Args& a, const Loaded& l) {
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  auto r = c.value()->List(a.all);
  if (!r.ok()) return FailStatus(r.status());
  for (auto& e : r.value()) {
    if (g_json)
      JsonLine({{"event", JsonStr("object")},
                {"name", JsonStr(e.name)},
                {"version", Num(e.version)},
                {"size_bytes", Num(e.size_bytes)},
                {"oid", JsonStr(e.oid.Hex())},
                {"tier", JsonStr(IsDcTier(e.oid) ? "dc" : "pop")},
                {"deleted", e.deleted ? "true" : "false"}});
    else
      std::printf("%s  v%llu  %llu  %s%s%s\n", e.name.c_str(), (unsigned long long)e.version,
                  (unsigned long long)e.size_bytes, e.oid.Hex().c_str(),
                  IsDcTier(e.oid) ? "  (DC tier)" : "", e.deleted ? "  (removed)" : "");
  }
  return kExitOk;
}

int CmdRm(const Args& a, const Loaded& l) {
  if (a.positional.size() != 1) return Fail(kExitUsage, "usage: mistore rm NAME");
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  c.value()->set_read_mode(pb::READ_ATOMIC);
  auto v = c.value()->Remove(a.positional[0], WallMs());
  if (!v.ok()) return FailStatus(v.status());
  if (g_json)
    JsonLine({{"event", JsonStr("rm")},
              {"name", JsonStr(a.positional[0])},
              {"version", Num(v.value())}});
  else if (g_verbosity > 0)
    std::printf(
        "removed %s (version %llu is a tombstone; 'mistore versions "
        "%s' lists the older ones)\n",
        a.positional[0].c_str(), (unsigned long long)v.value(), a.positional[0].c_str());
  return kExitOk;
}

std::string FormatTime(int64_t ms) {
  if (ms <= 0) return "-";
  time_t secs = time_t(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

int CmdVersions(const Args& a, const Loaded& l) {
  std::string name;
  if (!a.volume.empty() && a.positional.empty())
    name = std::string(kVolumeTreePrefix) + a.volume;
  else if (a.positional.size() == 1 && a.volume.empty())
    name = a.positional[0];
  else
    return Fail(kExitUsage, "usage: mistore versions NAME | mistore versions --volume V");
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  c.value()->set_read_mode(pb::READ_ATOMIC);
  auto r = c.value()->Versions(name);
  if (!r.ok()) return FailStatus(r.status());
  for (auto& e : r.value()) {
    std::string label;
    if (!a.volume.empty()) {
      // Snapshots are tree versions with a label.
      auto t = LoadTree(c.value().get(), l.s, a.volume, e.version, 0, nullptr);
      if (t.ok()) label = t->snapshot();
    }
    if (g_json) {
      JsonLine({{"event", JsonStr("version")},
                {"name", JsonStr(name)},
                {"version", Num(e.version)},
                {"size_bytes", Num(e.size_bytes)},
                {"put_time", JsonStr(FormatTime(e.put_time_ms))},
                {"put_time_ms", Num(uint64_t(e.put_time_ms))},
                {"deleted", e.deleted ? "true" : "false"},
                {"snapshot", JsonStr(label)}});
    } else {
      std::printf("v%llu  %s  %llu bytes%s%s\n", (unsigned long long)e.version,
                  FormatTime(e.put_time_ms).c_str(), (unsigned long long)e.size_bytes,
                  e.deleted ? "  (removed)" : "",
                  label.empty() ? "" : ("  snapshot: " + label).c_str());
    }
  }
  return kExitOk;
}

int CmdRestore(const Args& a, const Loaded& l) {
  auto t0 = std::chrono::steady_clock::now();
  if (!a.volume.empty()) {
    if (!a.positional.empty() || a.output.empty())
      return Fail(kExitUsage, "usage: mistore restore --volume V [--version N | --at TIME] -o DIR");
    auto c = OpenClient(a, l.s);
    if (!c.ok()) return FailStatus(c.status());
    c.value()->set_read_mode(pb::READ_ATOMIC);
    uint64_t version = 0;
    auto t = LoadTree(c.value().get(), l.s, a.volume, a.version, a.at_ms, &version);
    if (!t.ok()) return FailStatus(t.status());
    auto r = RestoreTree(c.value().get(), t.value(), a.output);
    if (!r.ok()) return FailStatus(r.status());
    for (auto& m : r->error_messages) std::fprintf(stderr, "mistore: %s\n", m.c_str());
    if (g_json) {
      Summary("restore", r->files, c.value()->stats(), SecondsSince(t0),
              {{"volume", JsonStr(a.volume)},
               {"tree_version", Num(version)},
               {"errors", Num(r->errors)}});
    } else if (g_verbosity > 0) {
      std::printf("restored volume %s at tree version %llu into %s: %zu files%s\n",
                  a.volume.c_str(), (unsigned long long)version, a.output.c_str(), r->files,
                  r->errors ? (", " + std::to_string(r->errors) + " failed").c_str() : "");
    }
    return r->errors ? kExitPartial : kExitOk;
  }
  if (a.positional.size() != 1)
    return Fail(kExitUsage, "usage: mistore restore NAME [--version N | --at TIME] [-o FILE]");
  const std::string& name = a.positional[0];
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  c.value()->set_read_mode(pb::READ_ATOMIC);
  uint64_t version = a.version;
  if (!version) {
    auto all = c.value()->Versions(name);
    if (!all.ok()) return FailStatus(all.status());
    for (auto& e : all.value())
      if (!e.deleted && (!a.at_ms || e.put_time_ms <= a.at_ms)) version = e.version;
    if (!version)
      return Fail(kExitNotFound, "'" + name + "' has no version to restore" +
                                     (a.at_ms ? " from that time or before" : ""));
  }
  std::string output = a.output;
  if (output.empty()) {
    size_t slash = name.rfind('/');
    output = slash == std::string::npos ? name : name.substr(slash + 1);
    if (output.empty()) return Fail(kExitUsage, "give -o FILE");
    if (FileExists(output))
      return Fail(kExitUsage, output + " exists; give -o FILE to choose where to write");
  }
  pb::VersionInfo info;
  int rc = WriteObject(c.value().get(), name, version, output, &info);
  if (rc != kExitOk) return rc;
  if (g_json) {
    JsonLine({{"event", JsonStr("restore")},
              {"name", JsonStr(name)},
              {"version", Num(info.version())},
              {"output", JsonStr(output)}});
    Summary("restore", 1, c.value()->stats(), SecondsSince(t0));
  } else if (g_verbosity > 0) {
    std::printf("restored %s version %llu (%llu bytes) into %s\n", name.c_str(),
                (unsigned long long)info.version(), (unsigned long long)info.size_bytes(),
                output.c_str());
  }
  return kExitOk;
}

std::string DefaultVolume(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  char buf[PATH_MAX];
  if (realpath(d.c_str(), buf)) d = buf;
  size_t slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

int CmdSync(const Args& a, const Loaded& l) {
  if (a.positional.size() != 1)
    return Fail(kExitUsage, "usage: mistore sync DIR [--volume V] [--once] [--dry-run]");
  SyncOptions o;
  o.dir = a.positional[0];
  while (o.dir.size() > 1 && o.dir.back() == '/') o.dir.pop_back();
  o.volume = a.volume.empty() ? DefaultVolume(o.dir) : a.volume;
  o.device = l.device;
  o.dry_run = a.dry_run;
  o.workers = l.sync_workers;
  o.now_ms = WallMs;
  o.put.bwlimit_bytes_per_s = a.bwlimit;
  struct stat st;
  if (stat(o.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Fail(kExitNotFound, "no directory " + o.dir);
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  Progress progress;
  size_t done_files = 0;
  o.on_event = [&](const SyncEvent& e) {
    if (e.what == "error") {
      progress.Done();
      std::fprintf(stderr, "mistore: %s%s%s\n", e.path.c_str(), e.path.empty() ? "" : ": ",
                   e.message.c_str());
    } else {
      done_files++;
    }
    if (g_json) {
      JsonLine({{"event", JsonStr(e.what)},
                {"path", JsonStr(e.path)},
                {"bytes", Num(e.bytes)},
                {"message", JsonStr(e.message)}});
    } else if (e.what != "error" &&
               (g_verbosity > 1 || (g_verbosity > 0 && (a.dry_run || e.what == "conflict")))) {
      progress.Done();
      std::printf("%-9s %s%s%s\n", e.what.c_str(), e.path.c_str(), e.message.empty() ? "" : "  ",
                  e.message.c_str());
      std::fflush(stdout);
    }
  };
  if (progress.on())
    o.put.progress = [&](uint64_t d, uint64_t t) {
      progress.Update("sync " + o.volume, d, t, done_files);
    };
  auto report = [&](const SyncSummary& s, double secs, const TransferStats& st) {
    if (g_json) {
      Summary("sync", s.files, st, secs,
              {{"volume", JsonStr(o.volume)},
               {"uploaded", Num(s.uploaded)},
               {"downloaded", Num(s.downloaded)},
               {"deleted", Num(s.deleted)},
               {"conflicts", Num(s.conflicts)},
               {"errors", Num(s.errors)},
               {"tree_version", Num(s.tree_version)}});
    } else if (g_verbosity > 0) {
      std::printf(
          "synced %s with volume %s (tree v%llu): %zu up, %zu down, %zu "
          "deleted, %zu conflicts%s; "
          "%llu bytes sent, %llu received, %.2f s\n",
          o.dir.c_str(), o.volume.c_str(), (unsigned long long)s.tree_version, s.uploaded,
          s.downloaded, s.deleted, s.conflicts,
          s.errors ? (", " + std::to_string(s.errors) + " failed").c_str() : "",
          (unsigned long long)st.bytes_sent, (unsigned long long)st.bytes_received, secs);
      std::fflush(stdout);
    }
  };
  if (a.once || a.dry_run) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = SyncOnce(c.value().get(), l.s, o);
    progress.Done();
    if (!r.ok()) return FailStatus(r.status());
    report(r.value(), SecondsSince(t0), c.value()->stats());
    return r->errors ? kExitPartial : kExitOk;
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  TransferStats last = c.value()->stats();
  auto t0 = std::chrono::steady_clock::now();
  Status result = SyncForever(
      c.value().get(), l.s, o, (a.interval_s ? a.interval_s : l.sync_interval_s) * 1000, 300,
      [] { return g_stop != 0; },
      [&](const SyncSummary& s) {
        progress.Done();
        TransferStats now = c.value()->stats(), delta = now;
        delta.bytes_sent -= last.bytes_sent;
        delta.bytes_received -= last.bytes_received;
        last = now;
        if (s.files || g_json || g_verbosity > 1) report(s, SecondsSince(t0), delta);
        t0 = std::chrono::steady_clock::now();
      });
  if (!result.ok()) return FailStatus(result);
  return kExitOk;
}

int CmdSnapshot(const Args& a, const Loaded& l) {
  std::string volume = a.volume;
  if (volume.empty()) {
    auto vols = SyncedVolumes(l.s);
    if (vols.size() != 1)
      return Fail(kExitUsage, "give --volume V (this device syncs " + std::to_string(vols.size()) +
                                  " volumes)");
    volume = vols[0];
  }
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  c.value()->set_read_mode(pb::READ_ATOMIC);
  int64_t now = WallMs();
  std::string label = a.label.empty() ? FormatTime(now) : a.label;
  auto v = SnapshotVolume(c.value().get(), l.s, volume, label, l.device, now);
  if (!v.ok()) return FailStatus(v.status());
  if (g_json)
    JsonLine({{"event", JsonStr("snapshot")},
              {"volume", JsonStr(volume)},
              {"version", Num(v.value())},
              {"label", JsonStr(label)}});
  else if (g_verbosity > 0)
    std::printf(
        "snapshot %s of volume %s is tree version %llu (restore with: "
        "mistore restore --volume %s "
        "--version %llu -o DIR)\n",
        label.c_str(), volume.c_str(), (unsigned long long)v.value(), volume.c_str(),
        (unsigned long long)v.value());
  return kExitOk;
}

int CmdPlacement(const Args& a, const Loaded& l) {
  if (a.positional.size() != 1)
    return Fail(kExitUsage, "usage: mistore placement NAME|OID [--version N]");
  auto c = OpenClient(a, l.s);
  if (!c.ok()) return FailStatus(c.status());
  pb::VersionInfo info;
  auto r = c.value()->Placement(a.positional[0], a.version, &info);
  if (!r.ok()) return FailStatus(r.status());
  auto oid = Oid::Decode(info.oid());
  for (auto& f : r->fragments())
    std::printf("chunk=%s index=%u gateway=%u pop=%u\n", ToHex(f.chunk_id()).substr(0, 12).c_str(),
                f.index(), f.gateway_id(), f.pop_id());
  if (oid.ok() && IsDcTier(*oid))
    std::printf("object %s version %llu: DC tier (the DC keeps its one replica; no fragments)\n",
                oid->Hex().c_str(), (unsigned long long)info.version());
  else
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
      std::printf("%s\nconfiguration file keys (key = value):\n%s", kUsage,
                  Config(ClientKnobs()).SampleFile().c_str());
      return kExitOk;
    }
  SetLogLevel(LogLevel::kError);
  auto args = ParseArgs(argc, argv);
  if (!args.ok()) return Fail(kExitUsage, args.status().message());
  if (args->command.empty()) return Fail(kExitUsage, "no command given (see --help)");
  auto loaded = LoadSettings(args.value());
  if (!loaded.ok()) return Fail(kExitUsage, loaded.status().message());
  const std::string& cmd = args->command;
  if (cmd == "init") return CmdInit(*args, *loaded);
  if (cmd == "pair") return CmdPair(*args, *loaded);
  if (cmd == "enroll") return CmdEnroll(*args, *loaded);
  if (cmd == "status") return CmdStatus(*args, *loaded);
  if (cmd == "put") return CmdPut(*args, *loaded);
  if (cmd == "get") return CmdGet(*args, *loaded);
  if (cmd == "ls") return CmdLs(*args, *loaded);
  if (cmd == "rm") return CmdRm(*args, *loaded);
  if (cmd == "versions") return CmdVersions(*args, *loaded);
  if (cmd == "restore") return CmdRestore(*args, *loaded);
  if (cmd == "sync") return CmdSync(*args, *loaded);
  if (cmd == "snapshot") return CmdSnapshot(*args, *loaded);
  if (cmd == "placement") return CmdPlacement(*args, *loaded);
  if (cmd == "share") return CmdShare(*args, *loaded, false);
  if (cmd == "unshare") return CmdShare(*args, *loaded, true);
  if (cmd == "shared") return CmdShared(*args, *loaded);
  return Fail(kExitUsage, "unknown command '" + cmd + "' (see --help)");
}

}  // namespace
}  // namespace mistore

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  return mistore::Main(argc, argv);
}
