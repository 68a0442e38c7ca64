// File-tree operations on directory fds, private to snapshotter/.
//
// Trees under a snapshot's directory hold whatever images put there, so
// nothing here joins names into paths: each step is an *at() call on an
// open directory with one component, never following symbolic links. The
// `display` arguments are paths used in error messages only.
#ifndef BERTH_SNAPSHOTTER_FS_H_
#define BERTH_SNAPSHOTTER_FS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "snapshotter/snapshotter.h"

namespace berth::snapshotter::fs {

// Opens directory `name` (one component, or an absolute path when `dirfd`
// is AT_FDCWD) read-only, refusing a symbolic link.
absl::StatusOr<UniqueFd> OpenDirectory(int dirfd, const std::string& name,
                                       absl::string_view display);

// mkdirat with exactly `mode` (the umask does not apply); AlreadyExists if
// `name` exists.
absl::Status MakeDirectory(int dirfd, const std::string& name, mode_t mode,
                           absl::string_view display);

// Removes `name` in `dirfd` and everything below it. A missing `name` (or
// an entry that disappears meanwhile) is not an error, so two removals of
// one tree may race. Refuses (FailedPrecondition) to descend into another
// mount: that would delete a mounted filesystem's files.
absl::Status RemoveTree(int dirfd, const std::string& name, absl::string_view display);

// The space used below directory `dirfd`, the directory itself included:
// st_blocks * 512 and one inode per entry, hard-linked inodes counted once.
// Does not descend into other mounts.
absl::StatusOr<Usage> DiskUsage(int dirfd, absl::string_view display);

// Copies the tree in directory `src` into empty directory `dst`, and `src`'s
// own owner, mode, xattrs and times onto `dst`: regular files (holes kept:
// data is copied between SEEK_DATA and SEEK_HOLE; a reflink when the
// filesystem can), directories, symbolic links (copied, never followed),
// device nodes, fifos and sockets; owners, modes (setuid included), xattrs
// (trusted.* and security.* too: the caller is root), atime and mtime; hard
// links within the tree stay hard links.
absl::Status CopyTree(int src, int dst, absl::string_view display);

}  // namespace berth::snapshotter::fs

#endif  // BERTH_SNAPSHOTTER_FS_H_
