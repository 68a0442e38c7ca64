// File-system calls more than one component makes: reading and writing a
// small file whole, listing a directory by fd, and reading and writing
// extended attributes by fd or by path.
#ifndef BERTH_BASE_FILES_H_
#define BERTH_BASE_FILES_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth::files {

// The whole of the file at `path`. Errors name it.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Creates or truncates `path` (new: `mode` less the umask) and writes `data`.
absl::Status WriteFile(const std::string& path, absl::string_view data, mode_t mode = 0644);

// The names in the directory `dirfd` (any fd on it, O_PATH included), "."
// and ".." excepted, in byte order. Errors name `display`.
absl::StatusOr<std::vector<std::string>> ListDirectory(int dirfd, absl::string_view display);

// mkdir -p of absolute `path`: each level it creates gets `mode` (less the
// umask).
absl::Status MakeDirectories(const std::string& path, mode_t mode);

// "/proc/self/fd/<fd>/<name>": `name` in the directory `fd` by a path, for
// the calls that have no *at() form (the xattr calls on what cannot be
// opened for I/O: symbolic links, devices, fifos).
std::string ProcPath(int fd, absl::string_view name);

struct Xattr {
  std::string name;
  std::string value;
  friend bool operator==(const Xattr&, const Xattr&) = default;
};

// The inode's xattrs are reached through `fd` when it is >= 0 (open for
// I/O), else through `path`, whose last component is not followed. A
// filesystem without xattrs has none; errors name `path`.

// Every xattr, sorted by name (one that goes while it is read is left out).
absl::StatusOr<std::vector<Xattr>> ReadXattrs(int fd, const std::string& path);
// One xattr's value; "" when the inode has none of that name.
absl::StatusOr<std::string> GetXattr(int fd, const std::string& path, const char* name);
absl::Status SetXattr(int fd, const std::string& path, const Xattr& xattr);

}  // namespace berth::files

#endif  // BERTH_BASE_FILES_H_
