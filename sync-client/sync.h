// Sync: two-way folder sync of the `mistore` client (`mistore sync`,
// `snapshot`, volume restore). Runs on the caller's thread, through one
// Client (synchronous calls); one sync of a given volume and directory at a
// time per state dir.
//
// A volume's directory tree is itself an object (".volume/<NAME>", sealed
// and chunked like any file) whose content is a pb::VolumeTree: path ->
// (file object "<NAME>/<path>", its version, size, mtime, mode, device).
// Every add, edit, rename or delete is a new version of the tree, so nothing
// is lost: older trees still name older file versions.
//
// The state of the last sync (the "base": for each path, the object version
// it was synced at and the local size/mtime seen then) lives in
// state_dir/sync/<volume>-<hash of DIR>.base. A pass compares base, the
// local directory and the latest remote tree per path (PlanPath, pure) and
// then acts: upload local edits, download remote ones, delete what the other
// side deleted, and keep both sides of a concurrent edit (the local one as
// NAME.conflict-<device>-<time>.EXT). The tree is then committed; if the
// commit's version shows another device committed in between, the two trees
// are merged against their common base (MergeTrees, pure) and committed
// again.
//
// Ownership: the functions borrow the Client; SyncOptions callbacks are
// called synchronously on the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "shared/core/status.h"
#include "shared/proto/mistore.pb.h"
#include "sync-client/client.h"

namespace mistore {

inline constexpr char kVolumeTreePrefix[] = ".volume/";
inline constexpr char kIgnoreFileName[] = ".mistoreignore";
inline constexpr char kPartialSuffix[] = ".mistore-partial";
// Most files one volume may hold (the tree is kept in memory).
inline constexpr size_t kVolumeFilesMax = 1000000;

// What one side knows about a path (absent: present == false).
struct PathState {
  bool present = false;
  std::string object;
  uint64_t version = 0;  // object version (remote and base)
  uint64_t size_bytes = 0;
  int64_t mtime_ns = 0;  // local (local and base) or uploader's (remote)
};

enum class SyncAction {
  kNone,
  kUpload,       // local edit or new file: put it, point the tree at it
  kDownload,     // remote edit: fetch it over the local file
  kDeleteLocal,  // deleted remotely, unchanged here
  kDropRemote,   // deleted here, unchanged remotely: drop from the tree
  kConflict,     // both changed: keep local as a conflict copy, fetch remote
  kForget,       // gone on both sides: drop from the base
};

// The decision for one path from its base, local and remote states (pure).
SyncAction PlanPath(const PathState& base, const PathState& local, const PathState& remote);

// Three-way merge of two tree versions committed concurrently against
// `base` (pure): a side that did not change a path takes the other side's;
// a modification beats a deletion; two different modifications keep `ours`
// at the path and `theirs` as a conflict copy (ConflictName with its
// device and now_ms).
pb::VolumeTree MergeTrees(const pb::VolumeTree& base, const pb::VolumeTree& ours,
                          const pb::VolumeTree& theirs, int64_t now_ms);

// "dir/NAME.EXT" -> "dir/NAME.conflict-<device>-<YYYYmmdd-HHMMSS>.EXT" (UTC).
std::string ConflictName(const std::string& path, const std::string& device, int64_t now_ms);

struct SyncEvent {
  std::string what;  // "upload", "download", "delete", "conflict", "error"
  std::string path;
  uint64_t bytes = 0;
  std::string message;
};

struct SyncOptions {
  std::string dir;
  std::string volume;
  std::string device;
  bool dry_run = false;
  // Files uploaded/downloaded at once (each worker its own Client::Clone and
  // connection); 1 = one after another.
  size_t workers = 4;
  std::function<int64_t()> now_ms;  // wall clock (ms since the epoch)
  std::function<void(const SyncEvent&)> on_event;
  PutOptions put;  // bwlimit, progress
};

struct SyncSummary {
  size_t files = 0;  // uploaded + downloaded + deleted locally + conflicts
  size_t uploaded = 0, downloaded = 0, deleted = 0, conflicts = 0, errors = 0;
  uint64_t tree_version = 0;  // the tree version this pass left behind
  std::vector<std::string> error_messages;
};

// One pass (repeated, at most a few times, until nothing is left to do).
// Per-file failures (unreadable file, disk full) are counted in errors and
// leave that path as it was on both sides; the pass goes on.
Result<SyncSummary> SyncOnce(Client* client, const ClientSettings& settings,
                             const SyncOptions& opts);

// Continuous sync: a pass, then another whenever inotify reports a change
// under DIR (after quiet_ms without further events), and at least every
// rescan_ms (remote changes, missed events). Returns when `stop()` is true
// (checked at least every 200 ms) or on an error that is not per-file.
Status SyncForever(Client* client, const ClientSettings& settings, const SyncOptions& opts,
                   uint64_t rescan_ms, uint64_t quiet_ms, const std::function<bool()>& stop,
                   const std::function<void(const SyncSummary&)>& on_pass);

// Commits the volume's current tree again, labelled `label`: a snapshot is a
// tree version. Returns that version.
Result<uint64_t> SnapshotVolume(Client* client, const ClientSettings& settings,
                                const std::string& volume, const std::string& label,
                                const std::string& device, int64_t now_ms);

// The tree at `version` (0 = latest), or the newest put at or before at_ms
// (when at_ms > 0).
Result<pb::VolumeTree> LoadTree(Client* client, const ClientSettings& settings,
                                const std::string& volume, uint64_t version, int64_t at_ms,
                                uint64_t* version_out);

// Writes every file of `tree` under out_dir (which need not exist). Files
// are written beside their target and renamed when complete.
Result<SyncSummary> RestoreTree(Client* client, const pb::VolumeTree& tree,
                                const std::string& out_dir);

}  // namespace mistore
