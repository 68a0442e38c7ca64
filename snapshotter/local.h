// What every snapshotter on the local filesystem shares, private to
// snapshotter/: metadata, directories by id, crash recovery and locking. A
// Driver supplies what differs (how a new snapshot's directory is filled and
// how it is mounted): overlay.cc and native.cc.
//
// Layout of a root:
//   metadata.db              the rows (storage.h)
//   snapshots/<id>/          one directory per snapshot, named by its row's id
//   snapshots/rm-<id>/       a directory being deleted (its row is gone)
//   …                        whatever a driver adds (overlay: l/)
//
// Each operation that creates a directory runs in three steps, so the lock
// is never held across long I/O (copying a tree, measuring usage):
//   1. under the lock: check the request, choose an id, and record the key
//      (and pin the parent) as in progress, so concurrent Prepares of one key
//      fail fast with AlreadyExists and Remove cannot take the parent away;
//   2. without it: create and fill snapshots/<id>;
//   3. under the lock: commit the row in one transaction, or remove the
//      directory if that fails.
// A crash between 2 and 3 leaves a directory with no row, which Cleanup
// (run at every open) deletes; Cleanup skips ids in progress.
#ifndef BERTH_SNAPSHOTTER_LOCAL_H_
#define BERTH_SNAPSHOTTER_LOCAL_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/storage.h"

namespace berth::snapshotter {

// Where things are in a root, for drivers.
class Layout {
 public:
  explicit Layout(std::string root) : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  // <root>/snapshots/<id>, and the fs and work directories in it.
  std::string SnapshotDir(int64_t id) const;
  std::string FsDir(int64_t id) const;
  std::string WorkDir(int64_t id) const;

  static constexpr const char* kSnapshots = "snapshots";
  static constexpr const char* kFs = "fs";
  static constexpr const char* kWork = "work";

 private:
  std::string root_;  // absolute, no trailing '/'
};

class Driver {
 public:
  virtual ~Driver() = default;

  // Prepares driver-specific state in the root (`root`, open and locked) at
  // open; `layout` is where it is, for mounts. InvalidArgument if the driver
  // cannot work in that path.
  virtual absl::Status Init(const Layout& layout, int root) = 0;

  // OK if a snapshot whose parent chain has `depth` snapshots can be
  // mounted; FailedPrecondition otherwise.
  virtual absl::Status CheckDepth(size_t depth) const = 0;

  // Fills `dir`, the new and empty directory snapshots/<id>, for a snapshot of
  // `kind` whose ancestors are `chain`, nearest first. On error the caller
  // removes `dir` and calls Forget(id).
  virtual absl::Status Populate(int root, int dir, int64_t id, Kind kind,
                                const std::vector<int64_t>& chain) = 0;

  // How to mount snapshot `id` of `kind` (active or view) on `chain`.
  virtual std::vector<Mount> Mounts(int64_t id, Kind kind,
                                    const std::vector<int64_t>& chain) const = 0;

  // Drops driver state kept outside snapshots/<id> for a removed snapshot.
  virtual absl::Status Forget(int root, int64_t id) = 0;

  // Drops driver state of every snapshot not in `live` (crash leftovers).
  virtual absl::Status Sweep(int root, const std::set<int64_t>& live) = 0;
};

class LocalSnapshotter final : public Snapshotter {
 public:
  // Opens (creating) the snapshotter rooted at `root`, which must be
  // absolute: locks it, opens the database, runs Cleanup.
  static absl::StatusOr<std::unique_ptr<Snapshotter>> Open(const std::string& root,
                                                           std::unique_ptr<Driver> driver);

  ~LocalSnapshotter() override;

  absl::StatusOr<Info> Stat(absl::string_view key) override;
  absl::StatusOr<Info> Update(const Info& info, absl::Span<const std::string> field_paths) override;
  absl::StatusOr<snapshotter::Usage> Usage(absl::string_view key) override;
  absl::StatusOr<std::vector<Mount>> Mounts(absl::string_view key) override;
  absl::StatusOr<std::vector<Mount>> Prepare(absl::string_view key, absl::string_view parent,
                                             const Labels& labels) override;
  absl::StatusOr<std::vector<Mount>> View(absl::string_view key, absl::string_view parent,
                                          const Labels& labels) override;
  absl::Status Commit(absl::string_view name, absl::string_view key,
                      const Labels& labels) override;
  absl::Status Remove(absl::string_view key) override;
  absl::Status Walk(const WalkFunction& fn, absl::Span<const std::string> filters) override;
  absl::Status Cleanup() override;
  absl::Status Close() override;

 private:
  // Duplicates of the root's and snapshots/'s fds, for work done without
  // the lock (Close may close the originals meanwhile).
  struct Dirs {
    UniqueFd root;
    UniqueFd snapshots;
  };

  // A Prepare or View between steps 1 and 3.
  struct Creation {
    Row row;                     // what step 3 inserts
    std::vector<int64_t> chain;  // the parent's, nearest first
    Dirs dirs;
  };

  LocalSnapshotter(std::string root, UniqueFd root_fd, UniqueFd snapshots_fd, Storage storage,
                   std::unique_ptr<Driver> driver, int64_t last_id);

  absl::StatusOr<std::vector<Mount>> Create(Kind kind, absl::string_view key,
                                            absl::string_view parent, const Labels& labels);
  absl::StatusOr<Creation> BeginCreation(Kind kind, absl::string_view key,
                                         absl::string_view parent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Populate(const Creation& creation);
  void EndCreation(const Creation& creation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes snapshots/<name> and the driver's state for `id`, after a failed
  // creation or a Remove. Logs failures (the caller already has its result;
  // Cleanup finishes the job later).
  void Discard(const Dirs& dirs, const std::string& name, int64_t id);

  // A removed snapshot's directory, renamed rm-<id>, waiting to be deleted.
  struct Removal {
    Dirs dirs;
    std::string name;
    int64_t id = 0;
  };
  // Deletes queued removals one after another until Close.
  void DiscardQueued();

  absl::Status CheckOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Dirs> DupDirs() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Row> FindRow(absl::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static absl::StatusOr<snapshotter::Usage> MeasureUsage(const Dirs& dirs, int64_t id);

  const Layout layout_;
  const std::unique_ptr<Driver> driver_;

  mutable absl::Mutex mu_;
  // Closed by Close; the root's fd holds the flock that keeps other
  // snapshotters out.
  UniqueFd root_fd_ ABSL_GUARDED_BY(mu_);
  UniqueFd snapshots_fd_ ABSL_GUARDED_BY(mu_);
  std::optional<Storage> storage_ ABSL_GUARDED_BY(mu_);
  int64_t last_id_ ABSL_GUARDED_BY(mu_);
  // Keys and names being created (Prepare, View) or committed to.
  std::set<std::string, std::less<>> reserved_keys_ ABSL_GUARDED_BY(mu_);
  // Ids whose directories are being made or deleted (as <id> or rm-<id>):
  // Cleanup leaves them be.
  std::set<int64_t> busy_ids_ ABSL_GUARDED_BY(mu_);
  // Parents of creations in progress, with counts: Remove refuses them.
  std::map<int64_t, int> pinned_ ABSL_GUARDED_BY(mu_);
  // Remove answers once the row is gone and the directory renamed; the
  // deletion of its tree is queued here for `discarder_` (started by the
  // first Remove), so a large layer's removal costs the client nothing.
  // Close finishes the queue; a crash leaves rm-<id> for Cleanup.
  std::deque<Removal> removals_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::thread discarder_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::snapshotter

#endif  // BERTH_SNAPSHOTTER_LOCAL_H_
