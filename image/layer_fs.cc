#include "image/layer_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::image::layer_internal {
namespace {

struct CloseDir {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

bool NoXattrSupport(int err) { return err == ENOTSUP || err == EOPNOTSUPP; }

ssize_t ListXattrNames(int fd, const std::string& path, char* buf, size_t size) {
  return fd >= 0 ? ::flistxattr(fd, buf, size) : ::llistxattr(path.c_str(), buf, size);
}

ssize_t GetXattrValue(int fd, const std::string& path, const char* name, void* buf, size_t size) {
  return fd >= 0 ? ::fgetxattr(fd, name, buf, size) : ::lgetxattr(path.c_str(), name, buf, size);
}

}  // namespace

void CleanPath(absl::string_view path, std::string* out) {
  out->clear();
  while (!path.empty()) {
    size_t slash = path.find('/');
    absl::string_view part = path.substr(0, slash);
    path.remove_prefix(slash == absl::string_view::npos ? path.size() : slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      size_t last = out->rfind('/');
      out->resize(last == std::string::npos ? 0 : last);
      continue;
    }
    if (!out->empty()) out->push_back('/');
    out->append(part.data(), part.size());
  }
}

std::string CleanPath(absl::string_view path) {
  std::string out;
  CleanPath(path, &out);
  return out;
}

std::pair<absl::string_view, absl::string_view> SplitParent(absl::string_view clean) {
  size_t slash = clean.rfind('/');
  if (slash == absl::string_view::npos) return {absl::string_view(), clean};
  return {clean.substr(0, slash), clean.substr(slash + 1)};
}

std::string JoinPath(absl::string_view parent, absl::string_view name) {
  return parent.empty() ? std::string(name) : absl::StrCat(parent, "/", name);
}

int OpenInRoot(int root, const std::string& rel, int flags) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* path = rel.empty() ? "." : rel.c_str();
  // EAGAIN: a rename elsewhere raced the ".." checks; the kernel asks for a
  // retry. Nothing renames inside a target being applied, so a few suffice.
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, root, path, &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EAGAIN || attempt == 8) return -errno;
  }
}

std::string ProcPath(int dirfd, absl::string_view name) {
  return absl::StrCat("/proc/self/fd/", dirfd, "/", name);
}

absl::Status RemoveAllAt(int dirfd, const char* name, absl::string_view what) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR) return ErrnoStatus("unlinkat", what);
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != ENOTEMPTY && errno != EEXIST) return ErrnoStatus("rmdir", what);
  // O_NOFOLLOW: had `name` just become a symlink, we must not empty its target.
  UniqueFd dir(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus("open", what);
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir.get(), what));
  for (const std::string& child : names) {
    BERTH_RETURN_IF_ERROR(RemoveAllAt(dir.get(), child.c_str(), absl::StrCat(what, "/", child)));
  }
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus("rmdir", what);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ListDir(int dirfd, absl::string_view what) {
  // A fresh fd for the stream: fdopendir takes it over, and `dirfd` may be
  // O_PATH, which cannot be read.
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", what);
  std::unique_ptr<DIR, CloseDir> dir(::fdopendir(fd));
  if (dir == nullptr) {
    UniqueFd owned(fd);
    return ErrnoStatus("fdopendir", what);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* ent = ::readdir(dir.get());
    if (ent == nullptr) {
      if (errno != 0) return ErrnoStatus("readdir", what);
      break;
    }
    absl::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool IsOverlayXattr(absl::string_view name) { return absl::StartsWith(name, "trusted.overlay."); }

absl::StatusOr<std::vector<Xattr>> ReadXattrs(int fd, const std::string& path) {
  std::vector<Xattr> out;
  std::string names;
  for (;;) {
    ssize_t size = ListXattrNames(fd, path, nullptr, 0);
    if (size < 0) {
      if (NoXattrSupport(errno)) return out;
      return ErrnoStatus("listxattr", path);
    }
    if (size == 0) return out;
    names.resize(static_cast<size_t>(size));
    size = ListXattrNames(fd, path, names.data(), names.size());
    if (size >= 0) {
      names.resize(static_cast<size_t>(size));
      break;
    }
    if (errno != ERANGE) return ErrnoStatus("listxattr", path);  // ERANGE: it grew; again
  }
  for (size_t pos = 0; pos < names.size();) {
    const char* name = names.c_str() + pos;
    pos += std::strlen(name) + 1;
    if (IsOverlayXattr(name)) continue;
    BERTH_ASSIGN_OR_RETURN(std::string value, GetXattr(fd, path, name));
    out.push_back(Xattr{name, std::move(value)});
  }
  std::sort(out.begin(), out.end(),
            [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<std::string> GetXattr(int fd, const std::string& path, const char* name) {
  std::string value;
  for (;;) {
    ssize_t size = GetXattrValue(fd, path, name, nullptr, 0);
    if (size < 0) {
      if (errno == ENODATA || NoXattrSupport(errno)) return std::string();
      return ErrnoStatus(absl::StrCat("getxattr ", name), path);
    }
    value.resize(static_cast<size_t>(size));
    if (size == 0) return value;
    size = GetXattrValue(fd, path, name, value.data(), value.size());
    if (size >= 0) {
      value.resize(static_cast<size_t>(size));
      return value;
    }
    if (errno != ERANGE) return ErrnoStatus(absl::StrCat("getxattr ", name), path);
  }
}

}  // namespace berth::image::layer_internal
