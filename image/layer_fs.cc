#include "image/layer_fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::image::layer_internal {

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

absl::Status RemoveAllAt(int dirfd, const char* name, absl::string_view what) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != EISDIR) return ErrnoStatus("unlinkat", what);
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno != ENOTEMPTY && errno != EEXIST) return ErrnoStatus("rmdir", what);
  // O_NOFOLLOW: had `name` just become a symlink, we must not empty its target.
  UniqueFd dir(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir.valid()) return ErrnoStatus("open", what);
  BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names, files::ListDirectory(dir.get(), what));
  for (const std::string& child : names) {
    BERTH_RETURN_IF_ERROR(RemoveAllAt(dir.get(), child.c_str(), absl::StrCat(what, "/", child)));
  }
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return ErrnoStatus("rmdir", what);
  }
  return absl::OkStatus();
}

bool IsOverlayXattr(absl::string_view name) { return absl::StartsWith(name, "trusted.overlay."); }

absl::StatusOr<std::vector<files::Xattr>> ReadLayerXattrs(int fd, const std::string& path) {
  BERTH_ASSIGN_OR_RETURN(std::vector<files::Xattr> xattrs, files::ReadXattrs(fd, path));
  xattrs.erase(std::remove_if(xattrs.begin(), xattrs.end(),
                              [](const files::Xattr& x) { return IsOverlayXattr(x.name); }),
               xattrs.end());
  return xattrs;
}

}  // namespace berth::image::layer_internal
