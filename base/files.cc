#include "base/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::files {
namespace {

struct CloseDir {
  void operator()(DIR* dir) const { ::closedir(dir); }
};

bool NoXattrSupport(int err) { return err == ENOTSUP || err == EOPNOTSUPP; }

ssize_t ListNames(int fd, const std::string& path, char* buf, size_t size) {
  return fd >= 0 ? ::flistxattr(fd, buf, size) : ::llistxattr(path.c_str(), buf, size);
}

ssize_t GetValue(int fd, const std::string& path, const char* name, void* buf, size_t size) {
  return fd >= 0 ? ::fgetxattr(fd, name, buf, size) : ::lgetxattr(path.c_str(), name, buf, size);
}

// Reads what `call(buffer, size)` fills, growing the buffer while the
// value grows between the size query and the read (ERANGE). -1 with errno
// set on failure.
template <typename Call>
ssize_t ReadSized(Call call, std::string* out) {
  for (;;) {
    ssize_t size = call(nullptr, 0);
    if (size <= 0) {
      out->clear();
      return size;
    }
    out->resize(static_cast<size_t>(size));
    size = call(out->data(), out->size());
    if (size >= 0) {
      out->resize(static_cast<size_t>(size));
      return size;
    }
    if (errno != ERANGE) return -1;
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListDirectory(int dirfd, absl::string_view display) {
  // A fresh fd for the stream: fdopendir takes it over, and `dirfd` may be
  // O_PATH, which cannot be read.
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open", display);
  std::unique_ptr<DIR, CloseDir> dir(::fdopendir(fd));
  if (dir == nullptr) {
    UniqueFd owned(fd);
    return ErrnoStatus("fdopendir", display);
  }
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* ent = ::readdir(dir.get());
    if (ent == nullptr) {
      if (errno != 0) return ErrnoStatus("readdir", display);
      break;
    }
    absl::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", path);
  std::string data;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read", path);
    if (n == 0) return data;
    data.append(buffer, n);
  }
}

absl::Status WriteFile(const std::string& path, absl::string_view data, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return ErrnoStatus("open", path);
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("write", path);
    done += n;
  }
  return absl::OkStatus();
}

absl::Status MakeDirectories(const std::string& path, mode_t mode) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", dir);
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", path);
  return absl::OkStatus();
}

std::string ProcPath(int fd, absl::string_view name) {
  return absl::StrCat("/proc/self/fd/", fd, "/", name);
}

absl::StatusOr<std::vector<Xattr>> ReadXattrs(int fd, const std::string& path) {
  std::string names;
  if (ReadSized([&](char* buf, size_t size) { return ListNames(fd, path, buf, size); }, &names) <
      0) {
    if (NoXattrSupport(errno)) return std::vector<Xattr>();
    return ErrnoStatus("listxattr", path);
  }
  std::vector<Xattr> out;
  for (size_t pos = 0; pos < names.size();) {
    const char* name = names.c_str() + pos;
    pos += std::strlen(name) + 1;
    std::string value;
    if (ReadSized([&](char* buf, size_t size) { return GetValue(fd, path, name, buf, size); },
                  &value) < 0) {
      if (errno == ENODATA) continue;  // removed since it was listed
      return ErrnoStatus(absl::StrCat("getxattr ", name), path);
    }
    out.push_back(Xattr{name, std::move(value)});
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<std::string> GetXattr(int fd, const std::string& path, const char* name) {
  std::string value;
  if (ReadSized([&](char* buf, size_t size) { return GetValue(fd, path, name, buf, size); },
                &value) < 0) {
    if (errno == ENODATA || NoXattrSupport(errno)) return std::string();
    return ErrnoStatus(absl::StrCat("getxattr ", name), path);
  }
  return value;
}

absl::Status SetXattr(int fd, const std::string& path, const Xattr& xattr) {
  const char* name = xattr.name.c_str();
  int r = fd >= 0 ? ::fsetxattr(fd, name, xattr.value.data(), xattr.value.size(), 0)
                  : ::lsetxattr(path.c_str(), name, xattr.value.data(), xattr.value.size(), 0);
  if (r != 0) return ErrnoStatus(absl::StrCat("setxattr ", xattr.name), path);
  return absl::OkStatus();
}

}  // namespace berth::files
