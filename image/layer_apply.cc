// ApplyLayer: decompressed bytes → libarchive (tar only) → *at() syscalls
// on parent directories opened with openat2(RESOLVE_IN_ROOT).
//
// Each entry's path is cleaned lexically, its parent opened inside the root,
// and the last component created with O_EXCL / mkdirat / symlinkat / mknodat
// on that parent; when something is in the way (EEXIST) it is removed and
// the call retried, so a fresh target costs no lookup per entry.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "base/status.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "image/layer.h"
#include "image/layer_fs.h"
#include "image/layer_stream.h"
#include "snapshotter/mount.h"

namespace berth::image {
namespace {

using layer_internal::CleanPath;
using layer_internal::JoinPath;
using layer_internal::OpenInRoot;
using layer_internal::ReadAhead;
using layer_internal::RemoveAllAt;
using layer_internal::SplitParent;
using layer_internal::UncompressedStream;

using layer_internal::kOpaqueMarker;
using layer_internal::kOpaqueXattr;
using layer_internal::kWhiteoutPrefix;

// As the kernel's own limit on symlinks followed in one lookup.
constexpr int kMaxSymlinkHops = 40;
// Files at least this large start their writeback once written (ApplyFile).
constexpr int64_t kWritebackMin = 256 << 10;

struct FreeArchive {
  void operator()(archive* a) const { archive_read_free(a); }
};

// An absl::Status whose message is prefixed with the entry it concerns.
absl::Status ForEntry(absl::string_view name, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("entry ", Quote(name), ": ", status.message()));
}

absl::Status InvalidEntry(absl::string_view what) { return absl::InvalidArgumentError(what); }

// Writes all of `data` at `offset`.
absl::Status PwriteAll(int fd, const char* data, size_t size, off_t offset,
                       absl::string_view what) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", what);
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

class Applier {
 public:
  Applier(int root, const ApplyOptions& options) : root_(root), options_(options) {}

  absl::Status Run(ReadAhead& stream);

  bool has_whiteouts() const { return has_whiteouts_; }
  bool implied_parents() const { return implied_parents_; }
  bool root_entry() const { return root_entry_; }

 private:
  static la_ssize_t ReadCallback(archive* a, void* self, const void** buffer);

  // What went wrong reading the tar: the stream's error if it had one, else
  // libarchive's.
  absl::Status ReadError(absl::string_view stage);

  absl::Status ApplyEntry(archive_entry* entry);
  absl::Status ApplyRoot(archive_entry* entry);
  absl::Status ApplyWhiteout(absl::string_view parent_rel, absl::string_view base,
                             archive_entry* entry);
  absl::Status ApplyFile(int parent, const char* base, archive_entry* entry);
  absl::Status ApplyDir(int parent, const char* base, archive_entry* entry);
  absl::Status ApplyHardlink(int parent, const char* base, const char* target);
  absl::Status ApplyNode(int parent, const char* base, archive_entry* entry, mode_t type);

  // Creates something at parent/base with `create` (a syscall returning -1
  // and errno); when something is in the way, removes it and tries again.
  absl::Status CreateReplacing(int parent, const char* base, const char* op,
                               absl::FunctionRef<int()> create);

  // Owner, xattrs, mode and (except for directories) times, in that order:
  // chown clears setuid bits and security.capability, chmod does not.
  // Through `fd` when there is one, else through parent/base.
  absl::Status ApplyMetadata(int fd, int parent, const char* base, archive_entry* entry);
  absl::Status ApplyXattrs(int fd, int parent, const char* base, archive_entry* entry);
  void DeferDirTimes(absl::string_view rel, const struct timespec times[2]);
  absl::Status ApplyDirTimes();

  // The parent directory `rel`, opened inside the root (O_PATH). With
  // `create`, missing directories are made, through dangling symlinks too.
  absl::StatusOr<UniqueFd> OpenParent(absl::string_view rel, bool create);
  // The same, through a cache of the last one: entries come grouped by
  // directory. The fd is the cache's, valid until the next call.
  absl::StatusOr<int> Parent(absl::string_view rel, bool create);
  // RemoveAllAt, forgetting the cached parent: a removal (and only a
  // removal) can change what a path resolves to.
  absl::Status Remove(int dirfd, const char* name, absl::string_view what);
  absl::StatusOr<UniqueFd> CreateParents(absl::string_view rel);
  absl::Status CopyLowerDirMetadata(int dir, absl::string_view rel);

  // kDelete: `.wh..wh..opq` empties `dirfd` (at `rel`) of what this layer
  // did not write.
  absl::Status RemoveUnwritten(int dirfd, const std::string& rel);
  void MarkWritten(absl::string_view rel);

  const int root_;
  const ApplyOptions& options_;
  archive* archive_ = nullptr;
  ReadAhead* stream_ = nullptr;
  absl::Status stream_error_;
  bool has_whiteouts_ = false;
  bool implied_parents_ = false;
  bool root_entry_ = false;
  const char* entry_name_ = nullptr;  // the entry being applied, for errors
  std::string path_;                  // its cleaned path, reused per entry
  std::string last_name_;             // the last entry applied, for errors

  struct DirTimes {
    std::string rel;
    struct timespec times[2];
  };
  std::vector<DirTimes> dir_times_;
  // kDelete: every path this layer wrote, with their parents.
  absl::flat_hash_set<std::string> written_;
  // Parent's cache.
  std::string parent_rel_;
  UniqueFd parent_fd_;
  bool parent_valid_ = false;
};

la_ssize_t Applier::ReadCallback(archive* a, void* self_ptr, const void** buffer) {
  auto* self = static_cast<Applier*>(self_ptr);
  absl::StatusOr<absl::string_view> chunk = self->stream_->Next();
  if (!chunk.ok()) {
    self->stream_error_ = chunk.status();
    archive_set_error(a, EIO, "%s", std::string(chunk.status().message()).c_str());
    return -1;
  }
  *buffer = chunk->data();
  return static_cast<la_ssize_t>(chunk->size());
}

absl::Status Applier::ReadError(absl::string_view stage) {
  if (!stream_error_.ok()) return stream_error_;
  const char* err = archive_error_string(archive_);
  return absl::InvalidArgumentError(
      absl::StrCat("tar: ", stage, ": ", err != nullptr ? err : "unknown error"));
}

absl::Status Applier::Run(ReadAhead& stream) {
  stream_ = &stream;
  std::unique_ptr<archive, FreeArchive> a(archive_read_new());
  if (a == nullptr) return absl::ResourceExhaustedError("archive_read_new");
  archive_ = a.get();
  // Tar only (format "empty" lets a zero-byte layer through, as Go's reader
  // does); decompression happened before libarchive sees the bytes.
  archive_read_support_format_tar(archive_);
  archive_read_support_format_empty(archive_);
  if (archive_read_open(archive_, this, nullptr, &Applier::ReadCallback, nullptr) != ARCHIVE_OK) {
    return ReadError("open");
  }
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(archive_, &entry);
    if (r == ARCHIVE_EOF) break;
    // WARN: a name not convertible to the locale; the bytes are kept as is.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      absl::Status s = ReadError("reading a header");
      if (last_name_.empty()) return s;
      return absl::Status(s.code(),
                          absl::StrCat(s.message(), " (after entry ", Quote(last_name_), ")"));
    }
    entry_name_ = archive_entry_pathname(entry);
    if (entry_name_ == nullptr || *entry_name_ == '\0') {
      return InvalidEntry("tar entry with an empty name");
    }
    if (absl::Status s = ApplyEntry(entry); !s.ok()) return ForEntry(entry_name_, s);
    last_name_ = entry_name_;
  }
  // The diff_id covers the whole stream: the tar's padding and anything the
  // compressor holds after it.
  if (absl::Status s = stream.Drain(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(s.message(), " after the end of the tar"));
  }
  BERTH_RETURN_IF_ERROR(ApplyDirTimes());
  // Through a readable fd: syncfs refuses an O_PATH one, which the caller
  // may have given.
  int fd = OpenInRoot(root_, "", O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus(-fd, "open", "target");
  UniqueFd root(fd);
  if (::syncfs(root.get()) != 0) return ErrnoStatus("syncfs", "target");
  return absl::OkStatus();
}

absl::Status Applier::ApplyEntry(archive_entry* entry) {
  CleanPath(entry_name_, &path_);
  auto [parent_rel, base] = SplitParent(path_);
  if (absl::StartsWith(base, kWhiteoutPrefix)) return ApplyWhiteout(parent_rel, base, entry);
  const char* hardlink = archive_entry_hardlink(entry);
  mode_t type = archive_entry_filetype(entry);
  if (path_.empty()) {
    if (hardlink != nullptr || type != AE_IFDIR) {
      return InvalidEntry("names the root but is not a directory");
    }
    return ApplyRoot(entry);
  }
  BERTH_ASSIGN_OR_RETURN(int parent, Parent(parent_rel, /*create=*/true));
  // `base` ends path_, so it is NUL-terminated.
  const char* name = base.data();
  if (hardlink != nullptr) {
    BERTH_RETURN_IF_ERROR(ApplyHardlink(parent, name, hardlink));
  } else {
    switch (type) {
      case AE_IFREG:
        BERTH_RETURN_IF_ERROR(ApplyFile(parent, name, entry));
        break;
      case AE_IFDIR:
        BERTH_RETURN_IF_ERROR(ApplyDir(parent, name, entry));
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr || *target == '\0') return InvalidEntry("symlink with no target");
        BERTH_RETURN_IF_ERROR(CreateReplacing(parent, name, "symlinkat",
                                              [&] { return ::symlinkat(target, parent, name); }));
        BERTH_RETURN_IF_ERROR(ApplyMetadata(-1, parent, name, entry));
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
        if (!options_.allow_devices) {
          log::Info("layer: device node skipped", {{"entry", Quote(entry_name_)}});
          return absl::OkStatus();
        }
        BERTH_RETURN_IF_ERROR(ApplyNode(parent, name, entry, type));
        break;
      case AE_IFIFO:
        BERTH_RETURN_IF_ERROR(ApplyNode(parent, name, entry, type));
        break;
      default:
        return InvalidEntry(absl::StrCat("unsupported entry type 0x", absl::Hex(type)));
    }
  }
  if (options_.whiteouts == ApplyOptions::Whiteouts::kDelete) MarkWritten(path_);
  return absl::OkStatus();
}

absl::Status Applier::ApplyRoot(archive_entry* entry) {
  root_entry_ = true;
  int fd = OpenInRoot(root_, "", O_RDONLY | O_DIRECTORY);
  if (fd < 0) return ErrnoStatus(-fd, "open", "target");
  UniqueFd dir(fd);
  return ApplyMetadata(dir.get(), -1, nullptr, entry);
}

absl::Status Applier::ApplyWhiteout(absl::string_view parent_rel, absl::string_view base,
                                    archive_entry* entry) {
  has_whiteouts_ = true;
  const bool overlay = options_.whiteouts == ApplyOptions::Whiteouts::kOverlay;
  if (base == kOpaqueMarker) {
    BERTH_ASSIGN_OR_RETURN(int dir, Parent(parent_rel, /*create=*/true));
    if (!overlay) return RemoveUnwritten(dir, std::string(parent_rel));
    // fsetxattr refuses O_PATH fds: reopen the directory for reading.
    UniqueFd readable(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!readable.valid() || ::fsetxattr(readable.get(), kOpaqueXattr, "y", 1, 0) != 0) {
      return ErrnoStatus("setxattr trusted.overlay.opaque", parent_rel.empty() ? "/" : parent_rel);
    }
    return absl::OkStatus();
  }
  absl::string_view victim = base.substr(kWhiteoutPrefix.size());
  if (victim.empty() || victim == "." || victim == "..") {
    return InvalidEntry(absl::StrCat("whiteout of ", Quote(victim)));
  }
  const char* name = victim.data();  // ends path_: NUL-terminated
  std::string victim_rel = JoinPath(parent_rel, victim);
  if (!overlay) {
    absl::StatusOr<int> dir = Parent(parent_rel, /*create=*/false);
    if (absl::IsNotFound(dir.status())) return absl::OkStatus();  // nothing there to delete
    if (!dir.ok()) return dir.status();
    return Remove(*dir, name, victim_rel);
  }
  BERTH_ASSIGN_OR_RETURN(int dir, Parent(parent_rel, /*create=*/true));
  BERTH_RETURN_IF_ERROR(Remove(dir, name, victim_rel));
  // overlayfs's whiteout: a character device with device number 0/0.
  if (::mknodat(dir, name, S_IFCHR, makedev(0, 0)) != 0) {
    return ErrnoStatus("mknod whiteout", victim_rel);
  }
  if (::fchownat(dir, name, archive_entry_uid(entry), archive_entry_gid(entry),
                 AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("chown", victim_rel);
  }
  // The entry's time rather than now, so that diffing this upperdir gives
  // back the same whiteout entry (and the same diff_id).
  struct timespec times[2];
  times[0] = times[1] = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
  if (::utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoStatus("utimensat", victim_rel);
  }
  return absl::OkStatus();
}

absl::Status Applier::CreateReplacing(int parent, const char* base, const char* op,
                                      absl::FunctionRef<int()> create) {
  if (create() == 0) return absl::OkStatus();
  if (errno != EEXIST) return ErrnoStatus(op, path_);
  BERTH_RETURN_IF_ERROR(Remove(parent, base, path_));
  if (create() != 0) return ErrnoStatus(op, path_);
  return absl::OkStatus();
}

absl::Status Applier::ApplyFile(int parent, const char* base, archive_entry* entry) {
  int raw = -1;
  // 0600 until the data is in: the entry's own mode may not allow writing,
  // and setuid bits must not be live while the file is incomplete.
  BERTH_RETURN_IF_ERROR(CreateReplacing(parent, base, "open", [&] {
    raw = ::openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return raw < 0 ? -1 : 0;
  }));
  UniqueFd fd(raw);
  // Blocks come with their offsets: a sparse entry's holes are skipped, and
  // pwrite at the next offset leaves them unallocated in the new file.
  int64_t end = 0;
  for (;;) {
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(archive_, &block, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ReadError("reading data");
    BERTH_RETURN_IF_ERROR(
        PwriteAll(fd.get(), static_cast<const char*>(block), size, offset, path_));
    end = std::max<int64_t>(end, offset + static_cast<int64_t>(size));
  }
  if (int64_t size = archive_entry_size(entry); end < size && ::ftruncate(fd.get(), size) != 0) {
    return ErrnoStatus("ftruncate", path_);  // a trailing hole
  }
  // Start the file's writeback without waiting for it: the disk works while
  // the next entries are extracted, and the layer's syncfs waits for less.
  if (end >= kWritebackMin) ::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  return ApplyMetadata(fd.get(), parent, base, entry);
}

absl::Status Applier::ApplyDir(int parent, const char* base, archive_entry* entry) {
  UniqueFd dir;
  if (::mkdirat(parent, base, 0700) != 0) {
    if (errno != EEXIST) return ErrnoStatus("mkdir", path_);
    // An existing directory is merged; anything else is replaced.
    dir.Reset(::openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) {
      if (errno != ENOTDIR && errno != ELOOP) return ErrnoStatus("open", path_);
      BERTH_RETURN_IF_ERROR(Remove(parent, base, path_));
      if (::mkdirat(parent, base, 0700) != 0) return ErrnoStatus("mkdir", path_);
    }
  }
  if (!dir.valid()) {
    dir.Reset(::openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir.valid()) return ErrnoStatus("open", path_);
  }
  return ApplyMetadata(dir.get(), parent, base, entry);
}

absl::Status Applier::ApplyHardlink(int parent, const char* base, const char* target) {
  std::string target_rel = CleanPath(target);
  if (target_rel.empty()) return InvalidEntry("hard link to the root");
  auto [target_parent_rel, target_base] = SplitParent(target_rel);
  int target_parent = OpenInRoot(root_, std::string(target_parent_rel), O_PATH | O_DIRECTORY);
  if (target_parent < 0) {
    return InvalidEntry(
        absl::StrCat("hard link target ", Quote(target), ": ",
                     ErrnoStatus(-target_parent, "open", target_parent_rel).message()));
  }
  UniqueFd target_dir(target_parent);
  const char* target_name = target_base.data();  // ends target_rel
  // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
  if (::linkat(target_dir.get(), target_name, parent, base, 0) == 0) return absl::OkStatus();
  if (errno == EEXIST) {
    struct stat existing, wanted;
    if (::fstatat(parent, base, &existing, AT_SYMLINK_NOFOLLOW) == 0 &&
        ::fstatat(target_dir.get(), target_name, &wanted, AT_SYMLINK_NOFOLLOW) == 0 &&
        existing.st_dev == wanted.st_dev && existing.st_ino == wanted.st_ino) {
      return absl::OkStatus();  // already that file (a link to itself, or repeated)
    }
    BERTH_RETURN_IF_ERROR(Remove(parent, base, path_));
    if (::linkat(target_dir.get(), target_name, parent, base, 0) == 0) return absl::OkStatus();
  }
  if (errno == ENOENT || errno == EPERM || errno == ENOTDIR) {
    // Missing, or a directory: a layer may only link to files inside the target.
    return InvalidEntry(absl::StrCat("hard link target ", Quote(target), ": ",
                                     ErrnoStatus("link", target_rel).message()));
  }
  return ErrnoStatus("link", path_);
}

absl::Status Applier::ApplyNode(int parent, const char* base, archive_entry* entry, mode_t type) {
  dev_t dev = type == AE_IFIFO
                  ? 0
                  : makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
  BERTH_RETURN_IF_ERROR(CreateReplacing(parent, base, "mknod",
                                        [&] { return ::mknodat(parent, base, type | 0600, dev); }));
  return ApplyMetadata(-1, parent, base, entry);
}

absl::Status Applier::ApplyMetadata(int fd, int parent, const char* base, archive_entry* entry) {
  const mode_t type = archive_entry_filetype(entry);
  uid_t uid = static_cast<uid_t>(archive_entry_uid(entry));
  gid_t gid = static_cast<gid_t>(archive_entry_gid(entry));
  if ((fd >= 0 ? ::fchown(fd, uid, gid)
               : ::fchownat(parent, base, uid, gid, AT_SYMLINK_NOFOLLOW)) != 0) {
    return ErrnoStatus("chown", path_);
  }
  BERTH_RETURN_IF_ERROR(ApplyXattrs(fd, parent, base, entry));
  if (type != AE_IFLNK) {
    mode_t mode = archive_entry_perm(entry) & 07777;
    // Without an fd the node was just made by mknodat, so following is moot.
    if ((fd >= 0 ? ::fchmod(fd, mode) : ::fchmodat(parent, base, mode, 0)) != 0) {
      return ErrnoStatus("chmod", path_);
    }
  }
  struct timespec times[2];
  times[1] = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
  times[0] = archive_entry_atime_is_set(entry)
                 ? timespec{archive_entry_atime(entry), archive_entry_atime_nsec(entry)}
                 : times[1];
  if (type == AE_IFDIR) {
    // Entries written into it later would move its mtime again.
    DeferDirTimes(path_, times);
    return absl::OkStatus();
  }
  if ((fd >= 0 ? ::futimens(fd, times) : ::utimensat(parent, base, times, AT_SYMLINK_NOFOLLOW)) !=
      0) {
    return ErrnoStatus("utimensat", path_);
  }
  return absl::OkStatus();
}

absl::Status Applier::ApplyXattrs(int fd, int parent, const char* base, archive_entry* entry) {
  if (archive_entry_xattr_reset(entry) == 0) return absl::OkStatus();
  std::string proc_path;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK) {
    if (layer_internal::IsOverlayXattr(name)) {
      log::Warn("layer: overlay xattr dropped", {{"entry", Quote(entry_name_)}, {"xattr", name}});
      continue;
    }
    int r;
    if (fd >= 0) {
      r = ::fsetxattr(fd, name, value, size, 0);
    } else {
      if (proc_path.empty()) proc_path = files::ProcPath(parent, base);
      r = ::lsetxattr(proc_path.c_str(), name, value, size, 0);
    }
    if (r == 0) continue;
    if (errno == ENOTSUP || errno == EOPNOTSUPP ||
        (errno == EPERM && absl::StartsWith(name, "security."))) {
      log::Warn("layer: xattr not applied",
                {{"entry", Quote(entry_name_)}, {"xattr", name}, {"error", std::strerror(errno)}});
      continue;
    }
    return ErrnoStatus(absl::StrCat("setxattr ", name), path_);
  }
  return absl::OkStatus();
}

void Applier::DeferDirTimes(absl::string_view rel, const struct timespec times[2]) {
  dir_times_.push_back(DirTimes{std::string(rel), {times[0], times[1]}});
}

absl::Status Applier::ApplyDirTimes() {
  // Deepest first; stable, so of two entries for one directory the later wins.
  std::stable_sort(dir_times_.begin(), dir_times_.end(), [](const DirTimes& a, const DirTimes& b) {
    return std::count(a.rel.begin(), a.rel.end(), '/') + !a.rel.empty() >
           std::count(b.rel.begin(), b.rel.end(), '/') + !b.rel.empty();
  });
  for (const DirTimes& d : dir_times_) {
    // The directory may have been replaced or deleted by a later entry.
    UniqueFd dir(OpenInRoot(root_, d.rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    if (!dir.valid()) continue;
    if (::futimens(dir.get(), d.times) != 0) return ErrnoStatus("utimensat", d.rel);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Applier::Parent(absl::string_view rel, bool create) {
  if (parent_valid_ && rel == parent_rel_) return parent_fd_.get();
  BERTH_ASSIGN_OR_RETURN(parent_fd_, OpenParent(rel, create));
  parent_rel_.assign(rel.data(), rel.size());
  parent_valid_ = true;
  return parent_fd_.get();
}

absl::Status Applier::Remove(int dirfd, const char* name, absl::string_view what) {
  parent_valid_ = false;
  return RemoveAllAt(dirfd, name, what);
}

absl::StatusOr<UniqueFd> Applier::OpenParent(absl::string_view rel, bool create) {
  std::string rel_str(rel);
  int fd = OpenInRoot(root_, rel_str, O_PATH | O_DIRECTORY);
  if (fd >= 0) return UniqueFd(fd);
  int err = -fd;
  if (err == ENOENT && create) return CreateParents(rel);
  if (err == ENOTDIR || err == ELOOP) {
    return InvalidEntry(
        absl::StrCat("parent ", Quote(rel), ": ", ErrnoStatus(err, "open", rel).message()));
  }
  return ErrnoStatus(err, "open", rel);
}

absl::StatusOr<UniqueFd> Applier::CreateParents(absl::string_view rel) {
  std::vector<std::string> parts = absl::StrSplit(rel, '/', absl::SkipEmpty());
  for (int hops = 0; hops <= kMaxSymlinkHops; ++hops) {
    int root = OpenInRoot(root_, "", O_PATH | O_DIRECTORY);
    if (root < 0) return ErrnoStatus(-root, "open", "target");
    UniqueFd cur(root);
    std::string done;  // the parts walked so far
    bool redirected = false;
    for (size_t i = 0; i < parts.size() && !redirected; ++i) {
      std::string next = JoinPath(done, parts[i]);
      int fd = OpenInRoot(root_, next, O_PATH | O_DIRECTORY);
      if (fd >= 0) {
        cur.Reset(fd);
        done = std::move(next);
        continue;
      }
      if (-fd != ENOENT) return OpenParent(next, /*create=*/false).status();
      struct stat st;
      if (::fstatat(cur.get(), parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISLNK(st.st_mode)) return ErrnoStatus(ENOENT, "open", next);
        // A dangling symlink: create what it points to, resolved in the root
        // (lexically, from where it stands).
        char target[PATH_MAX];
        ssize_t n = ::readlinkat(cur.get(), parts[i].c_str(), target, sizeof(target) - 1);
        if (n < 0) return ErrnoStatus("readlink", next);
        absl::string_view link(target, static_cast<size_t>(n));
        std::string rest = absl::StrJoin(parts.begin() + i + 1, parts.end(), "/");
        std::string joined = absl::StartsWith(link, "/") ? absl::StrCat(link, "/", rest)
                                                         : absl::StrCat(done, "/", link, "/", rest);
        parts = absl::StrSplit(CleanPath(joined), '/', absl::SkipEmpty());
        redirected = true;
        break;
      }
      if (errno != ENOENT) return ErrnoStatus("stat", next);
      if (::mkdirat(cur.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus("mkdir", next);
      }
      UniqueFd made(
          ::openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!made.valid()) return ErrnoStatus("open", next);
      BERTH_RETURN_IF_ERROR(CopyLowerDirMetadata(made.get(), next));
      cur = std::move(made);
      done = std::move(next);
    }
    if (!redirected) return cur;
  }
  return InvalidEntry(absl::StrCat("parent ", Quote(rel), ": too many levels of symbolic links"));
}

absl::Status Applier::CopyLowerDirMetadata(int dir, absl::string_view rel) {
  implied_parents_ = true;
  std::string rel_str(rel);
  struct stat st;
  bool found = false;
  for (int lower : options_.lower_dirfds) {
    UniqueFd fd(OpenInRoot(lower, rel_str, O_PATH | O_NOFOLLOW));
    if (!fd.valid()) continue;
    if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("stat", rel);
    found = S_ISDIR(st.st_mode);
    break;  // the topmost layer that has the path decides; a non-directory there hides the rest
  }
  if (!found) {
    // Not the umask's choice: a default directory is 0755.
    if (::fchmod(dir, 0755) != 0) return ErrnoStatus("chmod", rel);
    return absl::OkStatus();
  }
  if (::fchown(dir, st.st_uid, st.st_gid) != 0) return ErrnoStatus("chown", rel);
  if (::fchmod(dir, st.st_mode & 07777) != 0) return ErrnoStatus("chmod", rel);
  struct timespec times[2] = {st.st_atim, st.st_mtim};
  DeferDirTimes(rel, times);
  return absl::OkStatus();
}

absl::Status Applier::RemoveUnwritten(int dirfd, const std::string& rel) {
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names,
                         files::ListDirectory(dirfd, rel.empty() ? "/" : rel));
  for (const std::string& name : names) {
    std::string child = JoinPath(rel, name);
    if (!written_.contains(child)) {
      BERTH_RETURN_IF_ERROR(Remove(dirfd, name.c_str(), child));
      continue;
    }
    // Written by this layer: kept, but a directory written by it may still
    // hold lower entries, which the opaque marker hides too.
    UniqueFd sub(::openat(dirfd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.valid()) BERTH_RETURN_IF_ERROR(RemoveUnwritten(sub.get(), child));
  }
  return absl::OkStatus();
}

void Applier::MarkWritten(absl::string_view rel) {
  // With its parents: an opaque marker later in the tar must keep a
  // directory this layer wrote into, even without an entry of its own.
  while (!rel.empty() && written_.emplace(rel).second) rel = SplitParent(rel).first;
}

}  // namespace

absl::StatusOr<ApplyResult> ApplyLayer(ByteSource& compressed, Compression compression,
                                       int target_dirfd, const ApplyOptions& options) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<UncompressedStream> stream,
                         UncompressedStream::Open(compressed, compression));
  const bool known = !options.source_digest.empty() && stream->compression() == Compression::kNone;
  ReadAhead reader(*stream, /*hash=*/!known);
  Applier applier(target_dirfd, options);
  BERTH_RETURN_IF_ERROR(applier.Run(reader));
  return ApplyResult{known ? options.source_digest : reader.Digest(), reader.size(),
                     applier.has_whiteouts(), applier.implied_parents(), applier.root_entry()};
}

absl::StatusOr<ApplyResult> ApplyLayerToTree(ByteSource& compressed, Compression compression,
                                             const snapshotter::MountedTree& tree,
                                             absl::string_view source_digest) {
  ApplyOptions options;
  options.source_digest = std::string(source_digest);
  options.whiteouts =
      tree.overlay_upper() ? ApplyOptions::Whiteouts::kOverlay : ApplyOptions::Whiteouts::kDelete;
  options.lower_dirfds = tree.lower_fds();
  return ApplyLayer(compressed, compression, tree.dir(), options);
}

}  // namespace berth::image
