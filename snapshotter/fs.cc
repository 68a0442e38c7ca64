#include "snapshotter/fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/files.h"
#include "base/status.h"

namespace berth::snapshotter::fs {
namespace {

std::string Join(absl::string_view display, absl::string_view name) {
  return absl::StrCat(display, "/", name);
}

// The mount an entry lives on, to stop walks at mount points. statx's
// STATX_MNT_ID (Linux 5.8) tells bind mounts of the same filesystem apart,
// which st_dev cannot; without it, st_dev is the best there is.
struct Where {
  uint64_t mount = 0;
  bool has_mount_id = false;
  dev_t dev = 0;

  bool SameMount(const Where& other) const {
    if (has_mount_id && other.has_mount_id) return mount == other.mount;
    return dev == other.dev;
  }
};

absl::StatusOr<Where> Locate(int dirfd, const char* name, int flags, absl::string_view display) {
  struct statx stx;
  if (::statx(dirfd, name, flags | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) {
    return ErrnoStatus("statx", display);
  }
  Where where;
  where.has_mount_id = (stx.stx_mask & STATX_MNT_ID) != 0;
  where.mount = stx.stx_mnt_id;
  where.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  return where;
}

absl::Status NotAcrossMounts(int dirfd, const std::string& name, const Where& parent,
                             absl::string_view display) {
  BERTH_ASSIGN_OR_RETURN(Where child, Locate(dirfd, name.c_str(), 0, display));
  if (!child.SameMount(parent)) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", display, "\" is a mount point: unmount it first"));
  }
  return absl::OkStatus();
}

// ---- Removing ----

absl::Status RemoveContents(int dirfd, const Where& where, absl::string_view display);

absl::Status RemoveEntry(int dirfd, const std::string& name, const Where& parent,
                         absl::string_view display) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT ? absl::OkStatus() : ErrnoStatus("fstatat", display);
  }
  if (S_ISDIR(st.st_mode)) {
    BERTH_RETURN_IF_ERROR(NotAcrossMounts(dirfd, name, parent, display));
    absl::StatusOr<UniqueFd> dir = OpenDirectory(dirfd, name, display);
    if (!dir.ok()) return absl::IsNotFound(dir.status()) ? absl::OkStatus() : dir.status();
    BERTH_RETURN_IF_ERROR(RemoveContents(dir->get(), parent, display));
  }
  int flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
  if (::unlinkat(dirfd, name.c_str(), flags) != 0 && errno != ENOENT) {
    return ErrnoStatus(S_ISDIR(st.st_mode) ? "rmdir" : "unlink", display);
  }
  return absl::OkStatus();
}

absl::Status RemoveContents(int dirfd, const Where& where, absl::string_view display) {
  absl::StatusOr<std::vector<std::string>> names = files::ListDirectory(dirfd, display);
  if (!names.ok()) return absl::IsNotFound(names.status()) ? absl::OkStatus() : names.status();
  for (const std::string& name : *names) {
    BERTH_RETURN_IF_ERROR(RemoveEntry(dirfd, name, where, Join(display, name)));
  }
  return absl::OkStatus();
}

// ---- Usage ----

class UsageCounter {
 public:
  absl::Status Count(int dirfd, const char* name, int flags, const Where& where,
                     absl::string_view display) {
    struct stat st;
    if (::fstatat(dirfd, name, &st, flags | AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("fstatat", display);
    }
    if (!seen_.insert({st.st_dev, st.st_ino}).second) return absl::OkStatus();
    usage_.size += static_cast<int64_t>(st.st_blocks) * 512;
    usage_.inodes += 1;
    if (!S_ISDIR(st.st_mode)) return absl::OkStatus();
    BERTH_ASSIGN_OR_RETURN(Where here, Locate(dirfd, name, flags, display));
    if (!here.SameMount(where)) return absl::OkStatus();
    UniqueFd opened;
    int fd = dirfd;
    if ((flags & AT_EMPTY_PATH) == 0) {
      BERTH_ASSIGN_OR_RETURN(opened, OpenDirectory(dirfd, name, display));
      fd = opened.get();
    }
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, files::ListDirectory(fd, display));
    for (const std::string& child : names) {
      BERTH_RETURN_IF_ERROR(Count(fd, child.c_str(), 0, where, Join(display, child)));
    }
    return absl::OkStatus();
  }

  const Usage& usage() const { return usage_; }

 private:
  std::set<std::pair<dev_t, ino_t>> seen_;
  Usage usage_;
};

// ---- Copying ----

// Copies every xattr: through fds open for I/O when both are >= 0, else
// through the paths (of entries that cannot be opened for I/O).
absl::Status CopyXattrs(int src_fd, const std::string& src_path, int dst_fd,
                        const std::string& dst_path) {
  BERTH_ASSIGN_OR_RETURN(std::vector<files::Xattr> xattrs, files::ReadXattrs(src_fd, src_path));
  for (const files::Xattr& xattr : xattrs) {
    BERTH_RETURN_IF_ERROR(files::SetXattr(dst_fd, dst_path, xattr));
  }
  return absl::OkStatus();
}

// Owner, mode, xattrs and times, in that order: chown clears setuid bits and
// file capabilities, and every write before the last step moves the mtime.
absl::Status CopyMetadataByFd(int src, int dst, const struct stat& st, absl::string_view display) {
  if (::fchown(dst, st.st_uid, st.st_gid) != 0) return ErrnoStatus("fchown", display);
  if (::fchmod(dst, st.st_mode & 07777) != 0) return ErrnoStatus("fchmod", display);
  BERTH_RETURN_IF_ERROR(CopyXattrs(src, std::string(display), dst, std::string(display)));
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(dst, times) != 0) return ErrnoStatus("futimens", display);
  return absl::OkStatus();
}

// The same for entries that cannot be opened for I/O (opening a device or a
// fifo would act on it): through O_PATH fds, and for the mode, by name in the
// destination directory this copy created.
absl::Status CopyMetadataByPath(int src_dir, int dst_dir, const std::string& name,
                                const struct stat& st, absl::string_view display) {
  UniqueFd dst(::openat(dst_dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!dst.valid()) return ErrnoStatus("open", display);
  if (::fchownat(dst.get(), "", st.st_uid, st.st_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("fchownat", display);
  }
  // Linux has no modes on symbolic links.
  if (!S_ISLNK(st.st_mode) && ::fchmodat(dst_dir, name.c_str(), st.st_mode & 07777, 0) != 0) {
    return ErrnoStatus("fchmodat", display);
  }
  BERTH_RETURN_IF_ERROR(
      CopyXattrs(-1, files::ProcPath(src_dir, name), -1, files::ProcPath(dst_dir, name)));
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("utimensat", display);
  }
  return absl::OkStatus();
}

// Copies bytes [begin, end) of `src` to the same offsets of `dst`:
// copy_file_range lets the kernel (or the filesystem) move them, read/write
// where it cannot.
absl::Status CopyRange(int src, int dst, off_t begin, off_t end, absl::string_view display) {
  off_t offset = begin;
  bool kernel_copy = true;
  std::string buffer;
  while (offset < end) {
    size_t want = static_cast<size_t>(end - offset);
    ssize_t n;
    if (kernel_copy) {
      off_t in = offset, out = offset;
      n = ::copy_file_range(src, &in, dst, &out, want, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
                    errno == EIO)) {
        kernel_copy = false;
        continue;
      }
      if (n < 0) return ErrnoStatus("copy_file_range", display);
    } else {
      constexpr size_t kChunk = 1 << 20;
      buffer.resize(kChunk);
      n = ::pread(src, buffer.data(), std::min(want, kChunk), offset);
      if (n < 0) return ErrnoStatus("read", display);
      for (ssize_t written = 0; written < n;) {
        ssize_t w = ::pwrite(dst, buffer.data() + written, n - written, offset + written);
        if (w < 0) return ErrnoStatus("write", display);
        written += w;
      }
    }
    if (n == 0) break;  // the file shrank underneath us
    offset += n;
  }
  return absl::OkStatus();
}

absl::Status CopyFileData(int src, int dst, off_t size, absl::string_view display) {
  if (::ioctl(dst, FICLONE, src) == 0) return absl::OkStatus();
  off_t offset = 0;
  while (offset < size) {
    off_t data = ::lseek(src, offset, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole remains
    off_t hole = size;
    if (data < 0) {
      if (errno != EINVAL) return ErrnoStatus("lseek", display);
      data = offset;  // no SEEK_DATA here: copy everything
    } else {
      hole = ::lseek(src, data, SEEK_HOLE);
      if (hole < 0) return ErrnoStatus("lseek", display);
    }
    BERTH_RETURN_IF_ERROR(CopyRange(src, dst, data, std::min(hole, size), display));
    offset = hole;
  }
  // A trailing hole, which no write extended the file over.
  if (::ftruncate(dst, size) != 0) return ErrnoStatus("ftruncate", display);
  return absl::OkStatus();
}

class TreeCopier {
 public:
  explicit TreeCopier(int dst_root) : dst_root_(dst_root) {}

  absl::Status CopyContents(int src, int dst, absl::string_view display) {
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, files::ListDirectory(src, display));
    for (const std::string& name : names) {
      path_.push_back(name);
      BERTH_RETURN_IF_ERROR(CopyEntry(src, dst, name, Join(display, name)));
      path_.pop_back();
    }
    return absl::OkStatus();
  }

 private:
  using InodeKey = std::pair<dev_t, ino_t>;

  absl::Status CopyEntry(int src_dir, int dst_dir, const std::string& name,
                         absl::string_view display) {
    struct stat st;
    if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("fstatat", display);
    }
    bool linkable = !S_ISDIR(st.st_mode) && st.st_nlink > 1;
    if (linkable) {
      auto it = copied_.find({st.st_dev, st.st_ino});
      if (it != copied_.end()) return LinkTo(it->second, dst_dir, name, display);
    }
    switch (st.st_mode & S_IFMT) {
      case S_IFREG:
        BERTH_RETURN_IF_ERROR(CopyFile(src_dir, dst_dir, name, st, display));
        break;
      case S_IFDIR:
        BERTH_RETURN_IF_ERROR(CopyDirectory(src_dir, dst_dir, name, st, display));
        break;
      case S_IFLNK:
        BERTH_RETURN_IF_ERROR(CopySymlink(src_dir, dst_dir, name, st, display));
        break;
      default:  // devices, fifos, sockets
        if (::mknodat(dst_dir, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
          return ErrnoStatus("mknodat", display);
        }
        BERTH_RETURN_IF_ERROR(CopyMetadataByPath(src_dir, dst_dir, name, st, display));
        break;
    }
    if (linkable) copied_[{st.st_dev, st.st_ino}] = path_;
    return absl::OkStatus();
  }

  absl::Status CopyFile(int src_dir, int dst_dir, const std::string& name, const struct stat& st,
                        absl::string_view display) {
    UniqueFd src(::openat(src_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!src.valid()) return ErrnoStatus("open", display);
    UniqueFd dst(::openat(dst_dir, name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!dst.valid()) return ErrnoStatus("create", display);
    BERTH_RETURN_IF_ERROR(CopyFileData(src.get(), dst.get(), st.st_size, display));
    return CopyMetadataByFd(src.get(), dst.get(), st, display);
  }

  absl::Status CopyDirectory(int src_dir, int dst_dir, const std::string& name,
                             const struct stat& st, absl::string_view display) {
    if (::mkdirat(dst_dir, name.c_str(), 0700) != 0) return ErrnoStatus("mkdir", display);
    BERTH_ASSIGN_OR_RETURN(UniqueFd src, OpenDirectory(src_dir, name, display));
    BERTH_ASSIGN_OR_RETURN(UniqueFd dst, OpenDirectory(dst_dir, name, display));
    BERTH_RETURN_IF_ERROR(CopyContents(src.get(), dst.get(), display));
    return CopyMetadataByFd(src.get(), dst.get(), st, display);
  }

  absl::Status CopySymlink(int src_dir, int dst_dir, const std::string& name, const struct stat& st,
                           absl::string_view display) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    for (;;) {
      ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
      if (n < 0) return ErrnoStatus("readlink", display);
      if (static_cast<size_t>(n) < target.size()) {
        target.resize(n);
        break;
      }
      target.resize(target.size() * 2);  // it changed since fstatat
    }
    if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0) {
      return ErrnoStatus("symlink", display);
    }
    return CopyMetadataByPath(src_dir, dst_dir, name, st, display);
  }

  // Makes `name` in `dst_dir` a hard link to the copy at `existing`, a path
  // from the destination root walked one component at a time.
  absl::Status LinkTo(const std::vector<std::string>& existing, int dst_dir,
                      const std::string& name, absl::string_view display) {
    UniqueFd held;
    int dir = dst_root_;
    for (size_t i = 0; i + 1 < existing.size(); ++i) {
      BERTH_ASSIGN_OR_RETURN(held, OpenDirectory(dir, existing[i], display));
      dir = held.get();
    }
    if (::linkat(dir, existing.back().c_str(), dst_dir, name.c_str(), 0) != 0) {
      return ErrnoStatus("link", display);
    }
    return absl::OkStatus();
  }

  int dst_root_;
  std::vector<std::string> path_;                        // of the entry being copied, from the root
  std::map<InodeKey, std::vector<std::string>> copied_;  // hard-linked inodes' first copies
};

}  // namespace

absl::StatusOr<UniqueFd> OpenDirectory(int dirfd, const std::string& name,
                                       absl::string_view display) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", display);
  return fd;
}

absl::Status MakeDirectory(int dirfd, const std::string& name, mode_t mode,
                           absl::string_view display) {
  if (::mkdirat(dirfd, name.c_str(), mode) != 0) return ErrnoStatus("mkdir", display);
  if (::fchmodat(dirfd, name.c_str(), mode, 0) != 0) return ErrnoStatus("chmod", display);
  return absl::OkStatus();
}

absl::Status RemoveTree(int dirfd, const std::string& name, absl::string_view display) {
  // Measured from `dirfd`, so a tree that is itself a mount point is refused.
  BERTH_ASSIGN_OR_RETURN(Where where, Locate(dirfd, "", AT_EMPTY_PATH, display));
  return RemoveEntry(dirfd, name, where, display);
}

absl::StatusOr<Usage> DiskUsage(int dirfd, absl::string_view display) {
  BERTH_ASSIGN_OR_RETURN(Where where, Locate(dirfd, "", AT_EMPTY_PATH, display));
  UsageCounter counter;
  BERTH_RETURN_IF_ERROR(counter.Count(dirfd, "", AT_EMPTY_PATH, where, display));
  return counter.usage();
}

absl::Status CopyTree(int src, int dst, absl::string_view display) {
  struct stat st;
  if (::fstat(src, &st) != 0) return ErrnoStatus("fstat", display);
  TreeCopier copier(dst);
  BERTH_RETURN_IF_ERROR(copier.CopyContents(src, dst, display));
  return CopyMetadataByFd(src, dst, st, display);
}

}  // namespace berth::snapshotter::fs
