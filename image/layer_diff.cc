// WriteDiff: a walk of one tree (an overlay upperdir) or two (lower and
// upper, side by side), written as a PAX tar through libarchive into a
// CompressingWriter.
//
// The trees may belong to a container that is still running, so nothing is
// trusted: every lookup is one component on a directory fd, never following
// a symlink, and a file is read only after its fd proves it is the regular
// file that was stat'ed (O_NONBLOCK: a fifo swapped in cannot block us).
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "image/layer.h"
#include "image/layer_fs.h"
#include "image/layer_stream.h"

namespace berth::image {
namespace {

using layer_internal::CompressingWriter;
using layer_internal::JoinPath;
using layer_internal::kBufferSize;
using layer_internal::ReadLayerXattrs;

using layer_internal::kOpaqueMarker;
using layer_internal::kOpaqueXattr;
using layer_internal::kWhiteoutPrefix;

constexpr char kRedirectXattr[] = "trusted.overlay.redirect";
constexpr char kMetacopyXattr[] = "trusted.overlay.metacopy";

absl::string_view ForMessage(const std::string& rel) { return rel.empty() ? "/" : rel; }

bool SameType(const struct stat& a, const struct stat& b) {
  return (a.st_mode & S_IFMT) == (b.st_mode & S_IFMT);
}

// Reads until `size` bytes or the end; returns how many.
absl::StatusOr<size_t> ReadFull(int fd, char* buf, size_t size, absl::string_view what) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(fd, buf + got, size - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", what);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

// Opens the regular file `name` for reading, checking that it is still the
// file `st` describes.
absl::StatusOr<UniqueFd> OpenRegular(int dirfd, const std::string& name, const struct stat& st,
                                     absl::string_view what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", what);
  struct stat now;
  if (::fstat(fd.get(), &now) != 0) return ErrnoStatus("stat", what);
  if (!S_ISREG(now.st_mode) || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
    return absl::AbortedError(absl::StrCat("diff: ", Quote(what), " changed while being read"));
  }
  return fd;
}

absl::StatusOr<UniqueFd> OpenSubdir(int dirfd, const std::string& name, absl::string_view what) {
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", what);
  return fd;
}

absl::StatusOr<bool> HasXattr(int fd, const char* name, absl::string_view what) {
  if (::fgetxattr(fd, name, nullptr, 0) >= 0) return true;
  if (errno == ENODATA || errno == ENOTSUP || errno == EOPNOTSUPP) return false;
  return ErrnoStatus(absl::StrCat("getxattr ", name), what);
}

absl::StatusOr<std::string> ReadLink(int dirfd, const std::string& name, absl::string_view what) {
  char target[PATH_MAX];
  ssize_t n = ::readlinkat(dirfd, name.c_str(), target, sizeof(target));
  if (n < 0) return ErrnoStatus("readlink", what);
  return std::string(target, static_cast<size_t>(n));
}

// libarchive's pax writer, writing into a CompressingWriter.
class TarWriter {
 public:
  explicit TarWriter(CompressingWriter& out) : out_(out) {}
  ~TarWriter() {
    if (archive_ != nullptr) archive_write_free(archive_);
    if (entry_ != nullptr) archive_entry_free(entry_);
  }

  absl::Status Open() {
    archive_ = archive_write_new();
    entry_ = archive_entry_new();
    if (archive_ == nullptr || entry_ == nullptr) {
      return absl::ResourceExhaustedError("archive_write_new");
    }
    // Restricted PAX: plain ustar headers unless a field needs more. xattrs
    // as SCHILY.xattr records only (what Go's archive/tar, so containerd,
    // reads), not libarchive's own duplicate set. No blocking: the stream
    // ends with the two zero records, unpadded, as Go's writer ends it.
    if (archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
        archive_write_set_format_option(archive_, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(archive_, 0) != ARCHIVE_OK ||
        archive_write_open(archive_, this, nullptr, &TarWriter::WriteCallback, nullptr) !=
            ARCHIVE_OK) {
      return Error("open");
    }
    return absl::OkStatus();
  }

  // A cleared entry for the next header.
  archive_entry* NewEntry() { return archive_entry_clear(entry_); }

  absl::Status WriteHeader() {
    int r = archive_write_header(archive_, entry_);
    // WARN: a name not valid in the locale's charset, written as raw bytes.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return Error(absl::StrCat("header of ", Quote(archive_entry_pathname(entry_))));
    }
    return absl::OkStatus();
  }

  absl::Status WriteData(const char* data, size_t size) {
    if (archive_write_data(archive_, data, size) != static_cast<la_ssize_t>(size)) {
      return Error("data");
    }
    return absl::OkStatus();
  }

  absl::Status Close() {
    if (archive_write_close(archive_) != ARCHIVE_OK) return Error("close");
    return absl::OkStatus();
  }

 private:
  static la_ssize_t WriteCallback(archive* a, void* self_ptr, const void* buf, size_t size) {
    auto* self = static_cast<TarWriter*>(self_ptr);
    absl::Status s = self->out_.Write(absl::string_view(static_cast<const char*>(buf), size));
    if (!s.ok()) {
      self->sink_error_ = s;
      archive_set_error(a, EIO, "%s", std::string(s.message()).c_str());
      return -1;
    }
    return static_cast<la_ssize_t>(size);
  }

  absl::Status Error(absl::string_view what) {
    if (!sink_error_.ok()) return sink_error_;
    const char* err = archive_error_string(archive_);
    return absl::InternalError(
        absl::StrCat("tar: writing ", what, ": ", err != nullptr ? err : "unknown error"));
  }

  CompressingWriter& out_;
  archive* archive_ = nullptr;
  archive_entry* entry_ = nullptr;
  absl::Status sink_error_;
};

class Differ {
 public:
  explicit Differ(TarWriter& tar) : tar_(tar), buf_(new char[kBufferSize]) {}

  // kOverlayUpper: everything in the upperdir `dirfd` (at `rel`).
  absl::Status WalkUpper(int dirfd, const std::string& rel);

  // kCompare: what turns `lower` (-1: nothing) into `upper`, both at `rel`;
  // `upper_mtime` dates the whiteouts.
  absl::Status Compare(int lower, int upper, const std::string& rel,
                       const struct timespec& upper_mtime);

  absl::Status EmitOpaque(const std::string& dir_rel, const struct timespec& mtime) {
    return EmitWhiteout(JoinPath(dir_rel, kOpaqueMarker), mtime);
  }

 private:
  // One entry for `name` in `dirfd`, at `rel`, as `st` describes it. `fd`
  // is an open fd on a directory (xattrs are read through it); -1 else.
  absl::Status Emit(int dirfd, const std::string& name, const std::string& rel,
                    const struct stat& st, int fd);
  absl::Status EmitWhiteout(const std::string& rel, const struct timespec& mtime);
  absl::Status EmitFileData(int dirfd, const std::string& name, const std::string& rel,
                            const struct stat& st, archive_entry* entry);
  // kCompare: `name` only in upper, all of it (a directory recursively).
  absl::Status EmitAdded(int upper, const std::string& name, const std::string& rel,
                         const struct stat& st);
  absl::StatusOr<bool> Changed(int lower, int upper, const std::string& name,
                               const std::string& rel, const struct stat& l, const struct stat& u);
  absl::StatusOr<bool> SameContent(int lower, int upper, const std::string& name,
                                   const std::string& rel, const struct stat& l,
                                   const struct stat& u);

  TarWriter& tar_;
  std::unique_ptr<char[]> buf_;
  std::unique_ptr<char[]> other_buf_;  // SameContent's second buffer, when needed
  // Files with several links already emitted: the first path of each.
  absl::flat_hash_map<std::pair<dev_t, ino_t>, std::string> links_;
};

absl::Status Differ::WalkUpper(int dirfd, const std::string& rel) {
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names,
                         files::ListDirectory(dirfd, ForMessage(rel)));
  for (const std::string& name : names) {
    std::string child = JoinPath(rel, name);
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // gone meanwhile
      return ErrnoStatus("stat", child);
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      BERTH_RETURN_IF_ERROR(
          EmitWhiteout(JoinPath(rel, absl::StrCat(kWhiteoutPrefix, name)), st.st_mtim));
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (S_ISREG(st.st_mode)) {
        BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(dirfd, name, st, child));
        BERTH_ASSIGN_OR_RETURN(bool metacopy, HasXattr(fd.get(), kMetacopyXattr, child));
        if (metacopy) {
          return absl::FailedPreconditionError(
              absl::StrCat("diff: ", Quote(child),
                           " is an overlay metacopy file; its data is in a lower layer"));
        }
      }
      BERTH_RETURN_IF_ERROR(Emit(dirfd, name, child, st, -1));
      continue;
    }
    BERTH_ASSIGN_OR_RETURN(UniqueFd sub, OpenSubdir(dirfd, name, child));
    BERTH_ASSIGN_OR_RETURN(bool redirect, HasXattr(sub.get(), kRedirectXattr, child));
    if (redirect) {
      return absl::FailedPreconditionError(absl::StrCat(
          "diff: ", Quote(child), " is an overlay redirect; its content is in a lower layer"));
    }
    BERTH_RETURN_IF_ERROR(Emit(dirfd, name, child, st, sub.get()));
    BERTH_ASSIGN_OR_RETURN(std::string opaque, files::GetXattr(sub.get(), child, kOpaqueXattr));
    if (opaque == "y") BERTH_RETURN_IF_ERROR(EmitOpaque(child, st.st_mtim));
    BERTH_RETURN_IF_ERROR(WalkUpper(sub.get(), child));
  }
  return absl::OkStatus();
}

absl::Status Differ::Compare(int lower, int upper, const std::string& rel,
                             const struct timespec& upper_mtime) {
  std::vector<std::string> lower_names;
  if (lower >= 0) {
    BERTH_ASSIGN_OR_RETURN(lower_names, files::ListDirectory(lower, ForMessage(rel)));
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> upper_names,
                         files::ListDirectory(upper, ForMessage(rel)));
  size_t i = 0, j = 0;
  while (i < lower_names.size() || j < upper_names.size()) {
    int order = i == lower_names.size()   ? 1
                : j == upper_names.size() ? -1
                                          : lower_names[i].compare(upper_names[j]);
    if (order < 0) {  // only in lower: deleted
      BERTH_RETURN_IF_ERROR(
          EmitWhiteout(JoinPath(rel, absl::StrCat(kWhiteoutPrefix, lower_names[i])), upper_mtime));
      ++i;
      continue;
    }
    const std::string& name = upper_names[j];
    std::string child = JoinPath(rel, name);
    struct stat u;
    if (::fstatat(upper, name.c_str(), &u, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("stat", child);
    }
    ++j;
    if (order > 0) {  // only in upper: added
      BERTH_RETURN_IF_ERROR(EmitAdded(upper, name, child, u));
      continue;
    }
    ++i;
    struct stat l;
    if (::fstatat(lower, name.c_str(), &l, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("stat", absl::StrCat("lower ", child));
    }
    if (!SameType(l, u) || !S_ISDIR(u.st_mode)) {
      // A non-directory replacing anything (a directory included) is
      // emitted whole; applying it removes what was there.
      bool emit = !SameType(l, u);
      if (!emit) {
        BERTH_ASSIGN_OR_RETURN(emit, Changed(lower, upper, name, child, l, u));
      }
      if (emit) BERTH_RETURN_IF_ERROR(EmitAdded(upper, name, child, u));
      continue;
    }
    BERTH_ASSIGN_OR_RETURN(UniqueFd lower_sub, OpenSubdir(lower, name, child));
    BERTH_ASSIGN_OR_RETURN(UniqueFd upper_sub, OpenSubdir(upper, name, child));
    BERTH_ASSIGN_OR_RETURN(bool changed,
                           Changed(lower_sub.get(), upper_sub.get(), "", child, l, u));
    if (changed) BERTH_RETURN_IF_ERROR(Emit(upper, name, child, u, upper_sub.get()));
    BERTH_RETURN_IF_ERROR(Compare(lower_sub.get(), upper_sub.get(), child, u.st_mtim));
  }
  return absl::OkStatus();
}

absl::Status Differ::EmitAdded(int upper, const std::string& name, const std::string& rel,
                               const struct stat& st) {
  if (!S_ISDIR(st.st_mode)) return Emit(upper, name, rel, st, -1);
  BERTH_ASSIGN_OR_RETURN(UniqueFd sub, OpenSubdir(upper, name, rel));
  BERTH_RETURN_IF_ERROR(Emit(upper, name, rel, st, sub.get()));
  return Compare(-1, sub.get(), rel, st.st_mtim);
}

// Metadata first, as containerd's continuity does (fs/path.go sameFile);
// for directories only mode, owner and xattrs count. `name` "" means the
// fds are the directories themselves.
absl::StatusOr<bool> Differ::Changed(int lower, int upper, const std::string& name,
                                     const std::string& rel, const struct stat& l,
                                     const struct stat& u) {
  if (l.st_dev == u.st_dev && l.st_ino == u.st_ino) return false;  // the very same file
  if (l.st_mode != u.st_mode || l.st_uid != u.st_uid || l.st_gid != u.st_gid ||
      l.st_rdev != u.st_rdev) {
    return true;
  }
  const bool dir = name.empty();
  BERTH_ASSIGN_OR_RETURN(
      std::vector<files::Xattr> lx,
      ReadLayerXattrs(dir ? lower : -1, dir ? rel : files::ProcPath(lower, name)));
  BERTH_ASSIGN_OR_RETURN(
      std::vector<files::Xattr> ux,
      ReadLayerXattrs(dir ? upper : -1, dir ? rel : files::ProcPath(upper, name)));
  if (lx != ux) return true;
  if (dir) return false;
  if (l.st_size != u.st_size || l.st_mtim.tv_sec != u.st_mtim.tv_sec) return true;
  if (S_ISLNK(u.st_mode)) {
    // Cheap enough to check always, not only when mtimes are ambiguous.
    BERTH_ASSIGN_OR_RETURN(std::string lt, ReadLink(lower, name, rel));
    BERTH_ASSIGN_OR_RETURN(std::string ut, ReadLink(upper, name, rel));
    if (lt != ut) return true;
  }
  if (l.st_mtim.tv_nsec != u.st_mtim.tv_nsec) return true;
  // Equal mtimes without a sub-second part prove nothing: trees extracted
  // from tars (whole seconds) look alike even when their files differ.
  if (l.st_mtim.tv_nsec == 0 && S_ISREG(u.st_mode) && u.st_size > 0) {
    BERTH_ASSIGN_OR_RETURN(bool same, SameContent(lower, upper, name, rel, l, u));
    return !same;
  }
  return false;
}

absl::StatusOr<bool> Differ::SameContent(int lower, int upper, const std::string& name,
                                         const std::string& rel, const struct stat& l,
                                         const struct stat& u) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd lfd, OpenRegular(lower, name, l, rel));
  BERTH_ASSIGN_OR_RETURN(UniqueFd ufd, OpenRegular(upper, name, u, rel));
  if (other_buf_ == nullptr) other_buf_.reset(new char[kBufferSize]);
  for (;;) {
    BERTH_ASSIGN_OR_RETURN(size_t ln, ReadFull(lfd.get(), buf_.get(), kBufferSize, rel));
    BERTH_ASSIGN_OR_RETURN(size_t un, ReadFull(ufd.get(), other_buf_.get(), kBufferSize, rel));
    if (ln != un || std::memcmp(buf_.get(), other_buf_.get(), ln) != 0) return false;
    if (ln < kBufferSize) return true;
  }
}

absl::Status Differ::Emit(int dirfd, const std::string& name, const std::string& rel,
                          const struct stat& st, int fd) {
  if (S_ISSOCK(st.st_mode)) {
    log::Info("diff: socket left out (tar has no socket entries)", {{"path", Quote(rel)}});
    return absl::OkStatus();
  }
  archive_entry* entry = tar_.NewEntry();
  archive_entry_copy_pathname(entry, rel.c_str());
  archive_entry_set_uid(entry, st.st_uid);
  archive_entry_set_gid(entry, st.st_gid);
  archive_entry_set_perm(entry, st.st_mode & 07777);
  // Whole seconds, as containerd writes them: reproducible, and no PAX
  // record needed for the common entry.
  archive_entry_set_mtime(entry, st.st_mtim.tv_sec, 0);
  archive_entry_set_size(entry, 0);
  if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
    auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, rel);
    if (!first) {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_copy_hardlink(entry, it->second.c_str());
      return tar_.WriteHeader();
    }
  }
  switch (st.st_mode & S_IFMT) {
    case S_IFREG:
      archive_entry_set_filetype(entry, AE_IFREG);
      return EmitFileData(dirfd, name, rel, st, entry);
    case S_IFDIR:
      archive_entry_set_filetype(entry, AE_IFDIR);
      break;
    case S_IFLNK: {
      archive_entry_set_filetype(entry, AE_IFLNK);
      BERTH_ASSIGN_OR_RETURN(std::string target, ReadLink(dirfd, name, rel));
      archive_entry_copy_symlink(entry, target.c_str());
      break;
    }
    case S_IFCHR:
    case S_IFBLK:
      archive_entry_set_filetype(entry, S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdevmajor(entry, major(st.st_rdev));
      archive_entry_set_rdevminor(entry, minor(st.st_rdev));
      break;
    case S_IFIFO:
      archive_entry_set_filetype(entry, AE_IFIFO);
      break;
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<files::Xattr> xattrs,
                         ReadLayerXattrs(fd, fd >= 0 ? rel : files::ProcPath(dirfd, name)));
  for (const files::Xattr& x : xattrs) {
    archive_entry_xattr_add_entry(entry, x.name.c_str(), x.value.data(), x.value.size());
  }
  return tar_.WriteHeader();
}

absl::Status Differ::EmitFileData(int dirfd, const std::string& name, const std::string& rel,
                                  const struct stat& st, archive_entry* entry) {
  BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(dirfd, name, st, rel));
  BERTH_ASSIGN_OR_RETURN(std::vector<files::Xattr> xattrs, ReadLayerXattrs(fd.get(), rel));
  for (const files::Xattr& x : xattrs) {
    archive_entry_xattr_add_entry(entry, x.name.c_str(), x.value.data(), x.value.size());
  }
  archive_entry_set_size(entry, st.st_size);
  BERTH_RETURN_IF_ERROR(tar_.WriteHeader());
  int64_t left = st.st_size;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<int64_t>(left, kBufferSize));
    BERTH_ASSIGN_OR_RETURN(size_t got, ReadFull(fd.get(), buf_.get(), want, rel));
    if (got < want) {
      // The header already promised st_size bytes.
      return absl::AbortedError(absl::StrCat("diff: ", Quote(rel), " shrank while being read"));
    }
    BERTH_RETURN_IF_ERROR(tar_.WriteData(buf_.get(), got));
    left -= static_cast<int64_t>(got);
  }
  return absl::OkStatus();
}

absl::Status Differ::EmitWhiteout(const std::string& rel, const struct timespec& mtime) {
  archive_entry* entry = tar_.NewEntry();
  archive_entry_copy_pathname(entry, rel.c_str());
  archive_entry_set_filetype(entry, AE_IFREG);
  archive_entry_set_perm(entry, 0);
  archive_entry_set_size(entry, 0);
  archive_entry_set_mtime(entry, mtime.tv_sec, 0);
  return tar_.WriteHeader();
}

}  // namespace

absl::StatusOr<DiffResult> WriteDiff(int lower_dirfd, int upper_dirfd, DiffMode mode,
                                     Compression compression, ByteSink& out) {
  BERTH_ASSIGN_OR_RETURN(std::unique_ptr<CompressingWriter> writer,
                         CompressingWriter::Create(compression, out));
  TarWriter tar(*writer);
  BERTH_RETURN_IF_ERROR(tar.Open());
  Differ differ(tar);
  UniqueFd upper(::openat(upper_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!upper.valid()) return ErrnoStatus("open", "upper");
  struct stat upper_st;
  if (::fstat(upper.get(), &upper_st) != 0) return ErrnoStatus("stat", "upper");
  if (mode == DiffMode::kOverlayUpper) {
    BERTH_ASSIGN_OR_RETURN(std::string opaque, files::GetXattr(upper.get(), "upper", kOpaqueXattr));
    if (opaque == "y") BERTH_RETURN_IF_ERROR(differ.EmitOpaque("", upper_st.st_mtim));
    BERTH_RETURN_IF_ERROR(differ.WalkUpper(upper.get(), ""));
  } else {
    BERTH_RETURN_IF_ERROR(differ.Compare(lower_dirfd, upper.get(), "", upper_st.st_mtim));
  }
  BERTH_RETURN_IF_ERROR(tar.Close());
  BERTH_RETURN_IF_ERROR(writer->Finish());
  return DiffResult{writer->UncompressedDigest(), writer->uncompressed_size(),
                    writer->CompressedDigest(), writer->compressed_size()};
}

}  // namespace berth::image
