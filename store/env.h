// The seam between the content store and the filesystem.
//
// Every file operation the content store performs goes through an Env, so a
// test can put a FaultInjectionEnv in between and make the disk fill up or
// lose what was never fsynced (the idea of leveldb's Env, narrowed to what
// the store needs). Env::Default() is the real thing: POSIX calls on paths,
// every fd opened with O_CLOEXEC and held in a UniqueFd.
//
// Errors carry the errno's code (base/status.h: ENOENT → NotFound, ENOSPC →
// ResourceExhausted …) and a message naming the syscall and the path, e.g.
// `pwrite "ingest/3f…/data": No space left on device`.
//
// Files and directories are created private: files 0600, directories 0700
// (less the umask).
#ifndef BERTH_STORE_ENV_H_
#define BERTH_STORE_ENV_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace berth::store {

struct FileInfo {
  int64_t size = 0;
  absl::Time modified;
  bool is_directory = false;
};

// An open file. Calls on one File may come from several threads (they map to
// pread/pwrite, which carry their own offsets).
class File {
 public:
  virtual ~File() = default;

  // Reads up to `n` bytes at `offset` into `buf`; returns how many were read,
  // fewer than `n` only at the end of the file.
  virtual absl::StatusOr<size_t> ReadAt(int64_t offset, size_t n, char* buf) = 0;

  // Writes all of `data` at `offset`, or fails. On failure `*written` (when
  // not null) tells how many leading bytes of `data` reached the file: a full
  // disk can accept part of a write.
  virtual absl::Status WriteAt(int64_t offset, absl::string_view data,
                               size_t* written = nullptr) = 0;

  // fsync(2): on OK, the data and size written so far survive a crash.
  virtual absl::Status Sync() = 0;

  virtual absl::Status Truncate(int64_t size) = 0;

  virtual absl::StatusOr<FileInfo> Stat() = 0;

  // Drops every write permission (mode 0400): the content it holds is final.
  virtual absl::Status MakeReadOnly() = 0;
};

enum class OpenMode {
  kReadOnly,
  kReadWrite,       // the file must exist
  kCreateNew,       // read-write; AlreadyExists if the file exists
  kCreateTruncate,  // read-write; created, or emptied if it exists
};

class Env {
 public:
  // The POSIX Env. Lives for the whole process.
  static Env* Default();

  virtual ~Env() = default;

  virtual absl::StatusOr<std::unique_ptr<File>> OpenFile(const std::string& path,
                                                         OpenMode mode) = 0;

  // Follows symlinks (stat(2)).
  virtual absl::StatusOr<FileInfo> Stat(const std::string& path) = 0;

  // The names in directory `path`, without "." and "..", in no order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) = 0;

  // AlreadyExists if `path` exists (whatever it is).
  virtual absl::Status CreateDir(const std::string& path) = 0;

  virtual absl::Status RemoveFile(const std::string& path) = 0;

  // The directory must be empty (FailedPrecondition otherwise).
  virtual absl::Status RemoveDir(const std::string& path) = 0;

  // Atomically gives `from` (a file or a directory) the name `to`, which must
  // not exist: AlreadyExists if it does, and nothing changes. Durable only
  // once the directory holding `to` is synced.
  virtual absl::Status RenameNoReplace(const std::string& from, const std::string& to) = 0;

  // fsync(2) on directory `path`: entries created, renamed into or removed
  // from it so far survive a crash.
  virtual absl::Status SyncDir(const std::string& path) = 0;
};

// Replaces the contents of `path` with `data` (creating it). Not atomic and
// not synced: for small files whose readers tolerate a torn or empty one.
absl::Status WriteStringToFile(Env& env, const std::string& path, absl::string_view data);

// The whole contents of `path`.
absl::StatusOr<std::string> ReadFileToString(Env& env, const std::string& path);

// Creates `path` and any missing parents. OK if `path` is already a directory.
absl::Status CreateDirs(Env& env, const std::string& path);

}  // namespace berth::store

#endif  // BERTH_STORE_ENV_H_
