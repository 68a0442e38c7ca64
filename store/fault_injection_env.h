// FaultInjectionEnv: an Env for tests that runs out of disk space, dies, and
// loses power on request (in the spirit of leveldb's fault_injection_test).
//
// It wraps a real Env and remembers, for every file opened for writing
// through it, how large the file was at its last Sync, and every rename whose
// target directory has not been synced since. Crash() then does to the disk
// what power loss may do: each such file is cut back to its synced size and
// each such rename is undone by deleting the renamed entry (the conservative
// outcome: a published blob vanishes unless its directory was synced).
//
// What it does not model: directory creations and removals are durable at
// once, and metadata changes other than size (modes, times) are kept.
//
// A worked example, the crash test's loop: run a script of store calls with
// FailAfter(n) so that every operation from the n+1-th on fails with EIO (the
// process "dies" there), Crash(), reopen the store over the same env, and
// check that every blob committed before the death reads back whole.
#ifndef BERTH_STORE_FAULT_INJECTION_ENV_H_
#define BERTH_STORE_FAULT_INJECTION_ENV_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "store/env.h"

namespace berth::store {

class FaultInjectionEnv : public Env {
 public:
  // `base` must outlive this env.
  explicit FaultInjectionEnv(Env* base) : base_(base) {}

  // From now on only `bytes` more bytes can be written: the write that
  // crosses the limit stores its leading part and fails with ENOSPC, and
  // every later write fails outright.
  void SetFreeSpace(int64_t bytes);
  void SetUnlimitedSpace();

  // Every operation (on the env or on its files) after the next `n` fails
  // with EIO, as if the process had died there.
  void FailAfter(int64_t n);
  void StopFailing();

  // Operations performed so far, failed ones included.
  int64_t operations() const;

  // Power loss, then reboot: drops unsynced data and undoes unsynced renames
  // (see above), then forgets all it knew; failing stops, free space stays.
  // REQUIRES: no File opened through this env is used afterwards.
  absl::Status Crash();

  absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path, OpenMode mode) override;
  absl::StatusOr<FileInfo> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) override;
  absl::Status CreateDir(const std::string& path) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status RemoveDir(const std::string& path) override;
  absl::Status RenameNoReplace(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& path) override;

 private:
  class FaultFile;

  // A file opened for writing through this env.
  struct TrackedFile {
    std::string path;  // follows renames
    int64_t synced_size = 0;
  };
  // A rename whose target directory was not synced since.
  struct PendingRename {
    std::string path;
    std::string parent;
  };

  // Counts an operation; EIO once FailAfter's budget is spent.
  absl::Status Gate(absl::string_view op, absl::string_view path);
  // How many of `n` bytes may be written now; takes them from the free space.
  size_t Reserve(size_t n);
  void MarkSynced(TrackedFile& file, int64_t size);
  std::shared_ptr<TrackedFile> Track(const std::string& path, int64_t synced_size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RemoveTree(const std::string& path);

  Env* const base_;
  mutable absl::Mutex mu_;
  std::optional<int64_t> free_space_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> fail_after_ ABSL_GUARDED_BY(mu_);
  int64_t operations_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<TrackedFile>> files_ ABSL_GUARDED_BY(mu_);
  std::vector<PendingRename> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::store

#endif  // BERTH_STORE_FAULT_INJECTION_ENV_H_
