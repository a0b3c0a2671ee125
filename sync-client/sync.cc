#include "sync-client/sync.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

#include "shared/store/file_util.h"
#include "sync-client/ignore.h"

namespace mistore {

namespace {

using EntryMap = std::map<std::string, pb::TreeEntry>;

constexpr size_t kTreeBytesMax = size_t{512} << 20;
constexpr size_t kIgnoreFileBytesMax = size_t{1} << 20;
constexpr int kPassesMax = 4;
constexpr int kMergeRoundsMax = 5;
constexpr size_t kWatchesMax = 65536;

std::string TreeObject(const std::string& volume) { return kVolumeTreePrefix + volume; }

int64_t MtimeNs(const struct stat& st) {
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

EntryMap ToMap(const pb::VolumeTree& t) {
  EntryMap m;
  for (auto& e : t.entries()) m[e.path()] = e;
  return m;
}

pb::VolumeTree FromMap(const EntryMap& m, const std::string& volume) {
  pb::VolumeTree t;
  t.set_format(1);
  t.set_volume(volume);
  for (auto& [p, e] : m) *t.add_entries() = e;
  return t;
}

bool SameRef(const pb::TreeEntry* a, const pb::TreeEntry* b) {
  if (!a || !b) return a == b;
  return a->object() == b->object() && a->version() == b->version();
}

const pb::TreeEntry* Find(const EntryMap& m, const std::string& p) {
  auto it = m.find(p);
  return it == m.end() ? nullptr : &it->second;
}

bool SameEntries(const EntryMap& a, const EntryMap& b) {
  if (a.size() != b.size()) return false;
  for (auto& [p, e] : a) {
    const pb::TreeEntry* o = Find(b, p);
    if (!o || !SameRef(&e, o) || o->mtime_ns() != e.mtime_ns() || o->mode() != e.mode())
      return false;
  }
  return true;
}

// FNV-1a 64: a stable key for the synced directory's path.
std::string DirKey(const std::string& dir) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : dir) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

std::string AbsPath(const std::string& p) {
  char buf[PATH_MAX];
  if (realpath(p.c_str(), buf)) return buf;
  return p;
}

struct LocalFile {
  uint64_t size_bytes;
  int64_t mtime_ns;
  uint32_t mode;
};

// Walks root/rel. The `.mistoreignore` of each subdirectory met is added to
// `rules` before its entries are looked at (parents first, as IgnoreRules::Add
// wants); the root's is loaded by the caller (LoadIgnore).
Status Scan(const std::string& root, const std::string& rel, IgnoreRules* rules,
            std::map<std::string, LocalFile>* out, std::vector<std::string>* dirs) {
  std::string path = rel.empty() ? root : root + "/" + rel;
  DIR* d = opendir(path.c_str());
  if (!d) {
    if (rel.empty()) return NotFound("cannot read directory " + root + ": " + std::strerror(errno));
    return Status::Ok();  // vanished or unreadable subdirectory: skipped
  }
  if (!rel.empty()) {
    auto b = ReadFileBytes(path + "/" + kIgnoreFileName, kIgnoreFileBytesMax);
    if (b.ok())
      rules->Add(rel, std::string_view(reinterpret_cast<const char*>(b->data()), b->size()));
  }
  if (dirs && dirs->size() < kWatchesMax) dirs->push_back(path);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.push_back(n);
  }
  closedir(d);
  for (auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    struct stat st;
    if (lstat((root + "/" + r).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (rules->Ignored(r, true)) continue;
      MS_RETURN_IF_ERROR(Scan(root, r, rules, out, dirs));
    } else if (S_ISREG(st.st_mode)) {
      if (n.size() > std::strlen(kPartialSuffix) &&
          n.compare(n.size() - std::strlen(kPartialSuffix), std::string::npos, kPartialSuffix) == 0)
        continue;
      if (rules->Ignored(r, false)) continue;
      if (out->size() >= kVolumeFilesMax)
        return ResourceExhausted("more than " + std::to_string(kVolumeFilesMax) + " files under " +
                                 root);
      (*out)[r] = LocalFile{uint64_t(st.st_size), MtimeNs(st), uint32_t(st.st_mode & 07777)};
    }
  }
  return Status::Ok();
}

IgnoreRules LoadIgnore(const std::string& dir) {
  auto b = ReadFileBytes(dir + "/" + kIgnoreFileName, kIgnoreFileBytesMax);
  if (!b.ok()) return IgnoreRules();
  return IgnoreRules::Parse(std::string_view(reinterpret_cast<const char*>(b->data()), b->size()));
}

Result<std::string> GetToString(Client* c, const std::string& name, uint64_t version,
                                pb::VersionInfo* info_out) {
  std::string out;
  auto r = c->Get(name, version, [&](const uint8_t* d, size_t n) -> Status {
    if (out.size() + n > kTreeBytesMax) return ResourceExhausted("volume tree larger than 512 MiB");
    out.append(reinterpret_cast<const char*>(d), n);
    return Status::Ok();
  });
  if (!r.ok()) return r.status();
  if (info_out) *info_out = r.value();
  return out;
}

// Fetches object@version into `path` (written beside it, renamed when
// complete); sets mode and mtime. Returns the bytes written.
Result<uint64_t> GetToFile(Client* c, const std::string& object, uint64_t version,
                           const std::string& path, uint32_t mode, int64_t mtime_ns,
                           const Client::LocalChunkSource& local = nullptr) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) MS_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash)));
  std::string tmp = path + kPartialSuffix;
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return IoError("cannot write " + tmp + ": " + std::strerror(errno));
  uint64_t written = 0;
  auto r = c->Get(
      object, version,
      [&](const uint8_t* d, size_t n) -> Status {
        while (n > 0) {
          ssize_t w = write(fd, d, n);
          if (w < 0) {
            if (errno == EINTR) continue;
            return IoError("cannot write " + path + ": " + std::strerror(errno));
          }
          d += w;
          n -= size_t(w);
          written += uint64_t(w);
        }
        return Status::Ok();
      },
      local);
  Status st = r.ok() ? Status::Ok() : r.status();
  if (st.ok() && fsync(fd) != 0) st = IoError("cannot write " + path + ": " + std::strerror(errno));
  if (st.ok() && mode) (void)fchmod(fd, mode & 07777);
  if (st.ok() && mtime_ns > 0) {
    timespec ts[2];
    ts[0].tv_sec = 0;
    ts[0].tv_nsec = UTIME_OMIT;
    ts[1].tv_sec = mtime_ns / 1000000000;
    ts[1].tv_nsec = mtime_ns % 1000000000;
    (void)futimens(fd, ts);
  }
  if (close(fd) != 0 && st.ok()) st = IoError("cannot write " + path + ": " + std::strerror(errno));
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0)
    st = IoError("cannot rename to " + path + ": " + std::strerror(errno));
  if (!st.ok()) {
    unlink(tmp.c_str());
    return st;
  }
  return written;
}

struct Stored {
  pb::VolumeTree tree;  // base or cached remote tree
  bool loaded = false;
};

Stored LoadState(const std::string& path) {
  Stored s;
  auto b = ReadFileBytes(path, kTreeBytesMax);
  if (b.ok() && s.tree.ParseFromArray(b->data(), int(b->size()))) s.loaded = true;
  if (!s.loaded) s.tree.Clear();
  return s;
}

Status SaveState(const std::string& path, const pb::VolumeTree& t) {
  std::string bytes = t.SerializeAsString();
  return WriteFileDurable(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

std::string StateBase(const ClientSettings& s, const std::string& volume, const std::string& dir) {
  return s.state_dir + "/sync/" + volume + "-" + DirKey(AbsPath(dir));
}

// Commits `tree` as the next version of the volume's tree object.
Result<uint64_t> CommitTree(Client* c, const ClientSettings& s, const pb::VolumeTree& tree,
                            int64_t now_ms, uint64_t* bytes_sent) {
  MS_RETURN_IF_ERROR(MakeDirs(s.state_dir + "/sync"));
  std::string tmp = s.state_dir + "/sync/" + tree.volume() + ".tree-upload";
  std::string bytes = tree.SerializeAsString();
  MS_RETURN_IF_ERROR(
      WriteFileDurable(tmp, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  PutOptions po;
  po.put_time_ms = now_ms;
  auto r = c->Put(tmp, TreeObject(tree.volume()), po);
  unlink(tmp.c_str());
  if (!r.ok()) return r.status();
  if (bytes_sent) *bytes_sent += r->bytes_sent;
  return r->version;
}

Result<pb::VolumeTree> FetchTree(Client* c, const std::string& volume, uint64_t version) {
  MS_ASSIGN_OR_RETURN(std::string bytes, GetToString(c, TreeObject(volume), version, nullptr));
  pb::VolumeTree t;
  if (!t.ParseFromString(bytes)) return Corrupt("tree of volume " + volume + " does not parse");
  return t;
}

PathState StateOf(const pb::TreeEntry* e, bool local_view) {
  PathState p;
  if (!e) return p;
  p.present = true;
  p.object = e->object();
  p.version = e->version();
  p.size_bytes = e->size_bytes();
  p.mtime_ns = e->mtime_ns();
  (void)local_view;
  return p;
}

struct PassResult {
  SyncSummary summary;
  bool acted = false;
};

Result<PassResult> Pass(Client* c, const ClientSettings& s, const SyncOptions& o) {
  PassResult pr;
  SyncSummary& sum = pr.summary;
  // Shared by the transfer workers: the trees, the summary, the callbacks.
  std::recursive_mutex mu;
  auto emit = [&](const std::string& what, const std::string& path, uint64_t bytes,
                  const std::string& msg) {
    std::lock_guard<std::recursive_mutex> g(mu);
    if (o.on_event) o.on_event(SyncEvent{what, path, bytes, msg});
  };
  auto fail = [&](const std::string& path, const Status& st) {
    std::lock_guard<std::recursive_mutex> g(mu);
    sum.errors++;
    sum.error_messages.push_back(path + ": " + st.message());
    emit("error", path, 0, st.message());
  };
  const int64_t now = o.now_ms ? o.now_ms() : 0;
  IgnoreRules rules = LoadIgnore(o.dir);
  std::map<std::string, LocalFile> local;
  MS_RETURN_IF_ERROR(Scan(o.dir, "", &rules, &local, nullptr));

  const std::string state = StateBase(s, o.volume, o.dir);
  Stored base = LoadState(state + ".base");
  Stored cache = LoadState(state + ".tree");

  // The latest remote tree (atomic read: the primary's view).
  uint64_t remote_version = 0;
  pb::VolumeTree remote_tree;
  remote_tree.set_format(1);
  remote_tree.set_volume(o.volume);
  {
    auto info = c->Stat(TreeObject(o.volume), 0);
    if (!info.ok() && info.status().code() != Code::kNotFound) return info.status();
    if (info.ok()) {
      remote_version = info->version();
      if (cache.loaded && cache.tree.tree_version() == remote_version) {
        remote_tree = cache.tree;
      } else {
        MS_ASSIGN_OR_RETURN(remote_tree, FetchTree(c, o.volume, remote_version));
      }
    }
  }
  const EntryMap base_m = ToMap(base.tree);
  const EntryMap remote_m = ToMap(remote_tree);
  EntryMap new_tree = remote_m, new_base = base_m;

  std::set<std::string> paths;
  for (auto& [p, e] : base_m) paths.insert(p);
  for (auto& [p, e] : remote_m) paths.insert(p);
  for (auto& [p, f] : local) paths.insert(p);

  auto upload = [&](Client* cl, const std::string& path, const LocalFile& f,
                    const std::string& as) -> bool {
    pb::TreeEntry e;
    e.set_path(as);
    e.set_object(o.volume + "/" + as);
    e.set_size_bytes(f.size_bytes);
    e.set_mtime_ns(f.mtime_ns);
    e.set_mode(f.mode);
    e.set_device(o.device);
    PutOptions po = o.put;
    po.put_time_ms = now;
    if (o.put.progress)
      po.progress = [&](uint64_t done, uint64_t total) {
        std::lock_guard<std::recursive_mutex> g(mu);
        o.put.progress(done, total);
      };
    auto r = cl->Put(o.dir + "/" + path, e.object(), po);
    if (!r.ok()) {
      fail(path, r.status());
      return false;
    }
    e.set_version(r->version);
    e.set_size_bytes(r->size_bytes);
    std::lock_guard<std::recursive_mutex> g(mu);
    new_tree[as] = e;
    new_base[as] = e;
    emit("upload", as, r->bytes_sent, "");
    return true;
  };
  auto download = [&](Client* cl, const std::string& path, const pb::TreeEntry& e,
                      bool reuse_local) -> bool {
    std::string full = o.dir + "/" + path;
    // The local file is the base version, unchanged: its chunks that the
    // new version still has are copied from it instead of downloaded.
    std::map<std::string, std::pair<uint64_t, uint64_t>> offsets;  // id -> (offset, len)
    int old_fd = -1;
    const pb::TreeEntry* be = Find(base_m, path);
    if (reuse_local && be) {
      auto info = cl->Stat(be->object(), be->version());
      auto m = info.ok() ? cl->OpenManifest(info.value()) : Result<pb::Manifest>(info.status());
      if (m.ok() && !m->deleted()) {
        uint64_t off = 0;
        for (auto& ch : m->chunks()) {
          offsets.emplace(ch.id(), std::make_pair(off, ch.plain_len()));
          off += ch.plain_len();
        }
        old_fd = open(full.c_str(), O_RDONLY | O_CLOEXEC);
      }
    }
    struct FdCloser {
      int fd;
      ~FdCloser() {
        if (fd >= 0) close(fd);
      }
    } closer{old_fd};
    Client::LocalChunkSource reuse;
    if (old_fd >= 0)
      reuse = [&](const std::string& id, size_t len, Bytes* out) {
        auto it = offsets.find(id);
        if (it == offsets.end() || it->second.second != len) return false;
        out->resize(len);
        size_t got = 0;
        while (got < len) {
          ssize_t n = pread(old_fd, out->data() + got, len - got, off_t(it->second.first + got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) return false;
          got += size_t(n);
        }
        return true;
      };
    auto r = GetToFile(cl, e.object(), e.version(), full, e.mode(), e.mtime_ns(), reuse);
    if (!r.ok()) {
      fail(path, r.status());
      return false;
    }
    struct stat st;
    pb::TreeEntry b = e;
    if (stat(full.c_str(), &st) == 0) {
      b.set_size_bytes(uint64_t(st.st_size));
      b.set_mtime_ns(MtimeNs(st));
    }
    std::lock_guard<std::recursive_mutex> g(mu);
    new_base[path] = b;
    emit("download", path, r.value(), "");
    return true;
  };

  // Uploads and downloads of distinct paths run on `workers` threads after
  // the loop; deletes and conflicts happen in the loop.
  std::vector<std::function<void(Client*)>> transfers;
  for (const std::string& p : paths) {
    if (rules.Ignored(p, false)) continue;
    const pb::TreeEntry* be = Find(base_m, p);
    const pb::TreeEntry* re = Find(remote_m, p);
    auto lit = local.find(p);
    PathState bs = StateOf(be, true), rs = StateOf(re, false), ls;
    if (lit != local.end()) {
      ls.present = true;
      ls.size_bytes = lit->second.size_bytes;
      ls.mtime_ns = lit->second.mtime_ns;
    }
    SyncAction a = PlanPath(bs, ls, rs);
    if (a == SyncAction::kNone) continue;
    if (a == SyncAction::kForget) {
      new_base.erase(p);
      continue;
    }
    pr.acted = true;
    if (o.dry_run) {
      static const char* kNames[] = {"none", "upload",   "download", "delete",
                                     "drop", "conflict", "forget"};
      emit(std::string("would-") + kNames[int(a)], p, 0, "");
      sum.files++;
      continue;
    }
    switch (a) {
      case SyncAction::kUpload:
        transfers.push_back([&, p, f = lit->second](Client* cl) {
          if (upload(cl, p, f, p)) {
            std::lock_guard<std::recursive_mutex> g(mu);
            sum.uploaded++;
          }
        });
        break;
      case SyncAction::kDownload:
        transfers.push_back([&, p, e = *re, reuse = lit != local.end()](Client* cl) {
          if (download(cl, p, e, reuse)) {
            std::lock_guard<std::recursive_mutex> g(mu);
            sum.downloaded++;
          }
        });
        break;
      case SyncAction::kDeleteLocal: {
        std::string full = o.dir + "/" + p;
        if (unlink(full.c_str()) != 0 && errno != ENOENT) {
          fail(p, IoError(std::string("cannot delete: ") + std::strerror(errno)));
          break;
        }
        new_base.erase(p);
        sum.deleted++;
        emit("delete", p, 0, "deleted on another device");
        break;
      }
      case SyncAction::kDropRemote:
        new_tree.erase(p);
        new_base.erase(p);
        sum.deleted++;
        emit("delete", p, 0, "deleted here; removed from the volume");
        break;
      case SyncAction::kConflict: {
        std::string cname = ConflictName(p, o.device, now);
        std::string from = o.dir + "/" + p, to = o.dir + "/" + cname;
        if (rename(from.c_str(), to.c_str()) != 0) {
          fail(p,
               IoError(std::string("cannot keep the conflicting copy: ") + std::strerror(errno)));
          break;
        }
        struct stat st;
        LocalFile f = lit->second;
        if (stat(to.c_str(), &st) == 0) f.mtime_ns = MtimeNs(st);
        bool up = upload(c, cname, f, cname);
        if (up) {
          struct stat st2;
          if (stat(to.c_str(), &st2) == 0) {
            new_base[cname].set_size_bytes(uint64_t(st2.st_size));
            new_base[cname].set_mtime_ns(MtimeNs(st2));
          }
        }
        new_base.erase(p);
        if (download(c, p, *re, false)) sum.downloaded++;
        sum.conflicts++;
        emit("conflict", p, 0, "both sides changed; yours is kept as " + cname);
        break;
      }
      default:
        break;
    }
  }
  {
    const size_t workers = std::min(std::max<size_t>(o.workers, 1), transfers.size());
    std::atomic<size_t> next{0};
    auto work = [&](Client* cl) {
      for (size_t i = next++; i < transfers.size(); i = next++) transfers[i](cl);
    };
    std::vector<std::unique_ptr<Client>> clones;
    std::vector<std::thread> threads;
    for (size_t w = 1; w < workers; w++) {
      clones.push_back(c->Clone());
      threads.emplace_back(work, clones.back().get());
    }
    work(c);
    for (auto& t : threads) t.join();
    for (auto& cl : clones) c->AddStats(cl->stats());
  }
  sum.files += sum.uploaded + sum.downloaded + sum.deleted + sum.conflicts;
  if (o.dry_run) {
    sum.tree_version = remote_version;
    return pr;
  }

  // Commit the tree if it changed; merge with concurrent commits.
  uint64_t version = remote_version;
  pb::VolumeTree final_tree = remote_tree;
  if (!SameEntries(new_tree, remote_m)) {
    pb::VolumeTree ours = FromMap(new_tree, o.volume);
    ours.set_device(o.device);
    pb::VolumeTree merge_base = remote_tree;
    uint64_t sent = 0;
    MS_ASSIGN_OR_RETURN(version, CommitTree(c, s, ours, now, &sent));
    uint64_t expected = remote_version + 1;
    for (int round = 0; version != expected && round < kMergeRoundsMax; round++) {
      // Someone committed between our read and our commit: their version
      // is the one just before ours.
      MS_ASSIGN_OR_RETURN(pb::VolumeTree theirs, FetchTree(c, o.volume, version - 1));
      emit("merge", "", 0,
           "tree version " + std::to_string(version - 1) + " was committed concurrently; merged");
      pb::VolumeTree merged = MergeTrees(merge_base, ours, theirs, now);
      merged.set_device(o.device);
      merge_base = ours;
      ours = merged;
      expected = version + 1;
      MS_ASSIGN_OR_RETURN(version, CommitTree(c, s, ours, now, &sent));
      pr.acted = true;  // another pass picks up their changes
    }
    final_tree = ours;
  }
  final_tree.set_tree_version(version);
  pb::VolumeTree base_out = FromMap(new_base, o.volume);
  base_out.set_tree_version(version);
  MS_RETURN_IF_ERROR(MakeDirs(s.state_dir + "/sync"));
  MS_RETURN_IF_ERROR(SaveState(state + ".tree", final_tree));
  MS_RETURN_IF_ERROR(SaveState(state + ".base", base_out));
  sum.tree_version = version;
  return pr;
}

}  // namespace

SyncAction PlanPath(const PathState& base, const PathState& local, const PathState& remote) {
  const bool local_changed =
      base.present != local.present ||
      (local.present && (local.size_bytes != base.size_bytes || local.mtime_ns != base.mtime_ns));
  const bool remote_changed =
      base.present != remote.present ||
      (remote.present && (remote.object != base.object || remote.version != base.version));
  if (!local_changed && !remote_changed) return SyncAction::kNone;
  if (local_changed && !remote_changed) {
    if (local.present) return SyncAction::kUpload;
    return remote.present ? SyncAction::kDropRemote : SyncAction::kForget;
  }
  if (!local_changed) {
    if (remote.present) return SyncAction::kDownload;
    return local.present ? SyncAction::kDeleteLocal : SyncAction::kForget;
  }
  // Both changed.
  if (!local.present && !remote.present) return SyncAction::kForget;
  if (!local.present) return SyncAction::kDownload;  // an edit beats a delete
  if (!remote.present) return SyncAction::kUpload;   // re-added here
  return SyncAction::kConflict;
}

std::string ConflictName(const std::string& path, const std::string& device, int64_t now_ms) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = name.rfind('.');
  std::string stem = name, ext;
  if (dot != std::string::npos && dot > 0) {
    stem = name.substr(0, dot);
    ext = name.substr(dot);
  }
  time_t secs = time_t(now_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
  std::string dev = device.empty() ? "device" : device;
  for (char& ch : dev)
    if (ch == '/' || ch == '.') ch = '_';
  return dir + stem + ".conflict-" + dev + "-" + when + ext;
}

pb::VolumeTree MergeTrees(const pb::VolumeTree& base, const pb::VolumeTree& ours,
                          const pb::VolumeTree& theirs, int64_t now_ms) {
  EntryMap b = ToMap(base), o = ToMap(ours), t = ToMap(theirs), out;
  std::set<std::string> paths;
  for (auto* m : {&b, &o, &t})
    for (auto& [p, e] : *m) paths.insert(p);
  for (const std::string& p : paths) {
    const pb::TreeEntry *be = Find(b, p), *oe = Find(o, p), *te = Find(t, p);
    const pb::TreeEntry* pick = nullptr;
    if (SameRef(oe, be)) {
      pick = te;
    } else if (SameRef(te, be) || SameRef(oe, te)) {
      pick = oe;
    } else if (!oe) {
      pick = te;  // a modification beats a deletion
    } else if (!te) {
      pick = oe;
    } else {
      pick = oe;
      pb::TreeEntry copy = *te;
      std::string cname = ConflictName(p, te->device(), now_ms);
      copy.set_path(cname);
      out[cname] = copy;
    }
    if (pick) out[p] = *pick;
  }
  pb::VolumeTree r = FromMap(out, ours.volume());
  r.set_device(ours.device());
  return r;
}

Result<SyncSummary> SyncOnce(Client* client, const ClientSettings& settings,
                             const SyncOptions& opts) {
  if (opts.volume.empty() || opts.volume.find('/') != std::string::npos)
    return InvalidArgument("volume name must be non-empty and contain no '/'");
  struct stat st;
  if (stat(opts.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return NotFound("no directory " + opts.dir);
  // The tree is read atomically (from the object's primary or backup).
  pb::ReadMode saved = client->read_mode();
  client->set_read_mode(pb::READ_ATOMIC);
  struct Restore {
    Client* c;
    pb::ReadMode m;
    ~Restore() { c->set_read_mode(m); }
  } restore{client, saved};
  SyncSummary total;
  for (int i = 0; i < kPassesMax; i++) {
    MS_ASSIGN_OR_RETURN(PassResult pr, Pass(client, settings, opts));
    const SyncSummary& s = pr.summary;
    total.files += s.files;
    total.uploaded += s.uploaded;
    total.downloaded += s.downloaded;
    total.deleted += s.deleted;
    total.conflicts += s.conflicts;
    total.errors += s.errors;
    total.tree_version = s.tree_version;
    for (auto& m : s.error_messages) total.error_messages.push_back(m);
    if (!pr.acted || opts.dry_run || s.errors) break;
  }
  return total;
}

Status SyncForever(Client* client, const ClientSettings& settings, const SyncOptions& opts,
                   uint64_t rescan_ms, uint64_t quiet_ms, const std::function<bool()>& stop,
                   const std::function<void(const SyncSummary&)>& on_pass) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return IoError(std::string("inotify: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) {
    return uint64_t(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
  };
  auto watch_all = [&] {
    std::map<std::string, LocalFile> ignored_files;
    std::vector<std::string> dirs;
    IgnoreRules rules = LoadIgnore(opts.dir);
    (void)Scan(opts.dir, "", &rules, &ignored_files, &dirs);
    for (auto& d : dirs)
      (void)inotify_add_watch(fd, d.c_str(),
                              IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                  IN_ATTRIB | IN_MODIFY);
  };
  bool dirty = true;
  Clock::time_point last_event = Clock::now() - std::chrono::hours(1);
  Clock::time_point last_pass = Clock::now() - std::chrono::hours(1);
  while (!stop()) {
    if ((dirty && ms_since(last_event) >= quiet_ms) || ms_since(last_pass) >= rescan_ms) {
      watch_all();
      auto r = SyncOnce(client, settings, opts);
      last_pass = Clock::now();
      dirty = false;
      if (!r.ok()) {
        if (r.status().code() != Code::kUnavailable) return r.status();
        if (opts.on_event)
          opts.on_event(SyncEvent{"error", "", 0, r.status().message() + " (will retry)"});
      } else if (on_pass) {
        on_pass(r.value());
      }
      // Drain the events our own writes caused.
      char buf[8192];
      while (read(fd, buf, sizeof buf) > 0) {
      }
      continue;
    }
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, 200);
    if (n > 0) {
      char buf[8192];
      while (read(fd, buf, sizeof buf) > 0) {
      }
      dirty = true;
      last_event = Clock::now();
    }
  }
  return Status::Ok();
}

Result<pb::VolumeTree> LoadTree(Client* client, const ClientSettings& settings,
                                const std::string& volume, uint64_t version, int64_t at_ms,
                                uint64_t* version_out) {
  (void)settings;
  if (at_ms > 0) {
    auto v = client->VersionAt(TreeObject(volume), at_ms);
    if (!v.ok()) {
      if (v.status().code() == Code::kNotFound)
        return NotFound("volume " + volume + " has no tree from that time or before");
      return v.status();
    }
    version = v.value();
  }
  pb::VersionInfo info;
  auto bytes = GetToString(client, TreeObject(volume), version, &info);
  if (!bytes.ok()) {
    if (bytes.status().code() == Code::kNotFound)
      return NotFound("volume " + volume +
                      (version ? " has no version " + std::to_string(version)
                               : std::string(" has never been synced")));
    return bytes.status();
  }
  pb::VolumeTree t;
  if (!t.ParseFromString(bytes.value()))
    return Corrupt("tree of volume " + volume + " does not parse");
  if (version_out) *version_out = info.version();
  return t;
}

Result<uint64_t> SnapshotVolume(Client* client, const ClientSettings& settings,
                                const std::string& volume, const std::string& label,
                                const std::string& device, int64_t now_ms) {
  MS_ASSIGN_OR_RETURN(pb::VolumeTree t, LoadTree(client, settings, volume, 0, 0, nullptr));
  t.set_snapshot(label.empty() ? "snapshot" : label);
  t.set_device(device);
  t.clear_tree_version();
  return CommitTree(client, settings, t, now_ms, nullptr);
}

Result<SyncSummary> RestoreTree(Client* client, const pb::VolumeTree& tree,
                                const std::string& out_dir) {
  SyncSummary sum;
  MS_RETURN_IF_ERROR(MakeDirs(out_dir));
  for (auto& e : tree.entries()) {
    if (e.path().empty() || e.path()[0] == '/' || e.path().find("..") != std::string::npos) {
      sum.errors++;
      sum.error_messages.push_back(e.path() + ": unsafe path in the tree; skipped");
      continue;
    }
    auto r = GetToFile(client, e.object(), e.version(), out_dir + "/" + e.path(), e.mode(),
                       e.mtime_ns());
    if (!r.ok()) {
      sum.errors++;
      sum.error_messages.push_back(e.path() + ": " + r.status().message());
      continue;
    }
    sum.downloaded++;
    sum.files++;
  }
  return sum;
}

}  // namespace mistore
