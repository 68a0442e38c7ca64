#include "snapshotter/mount.h"

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/log.h"
#include "base/status.h"
#include "base/strings.h"

namespace berth::snapshotter {
namespace {

// mount(2) copies at most one page of data, NUL included.
constexpr size_t kMaxMountData = 4096;

struct FlagOption {
  absl::string_view name;
  bool clear;  // the option turns `flag` off ("rw" clears MS_RDONLY)
  unsigned long flag;
};

constexpr FlagOption kFlagOptions[] = {
    {"async", true, MS_SYNCHRONOUS},   {"atime", true, MS_NOATIME},
    {"bind", false, MS_BIND},          {"defaults", false, 0},
    {"dev", true, MS_NODEV},           {"diratime", true, MS_NODIRATIME},
    {"dirsync", false, MS_DIRSYNC},    {"exec", true, MS_NOEXEC},
    {"mand", false, MS_MANDLOCK},      {"noatime", false, MS_NOATIME},
    {"nodev", false, MS_NODEV},        {"nodiratime", false, MS_NODIRATIME},
    {"noexec", false, MS_NOEXEC},      {"nomand", true, MS_MANDLOCK},
    {"norelatime", true, MS_RELATIME}, {"nostrictatime", true, MS_STRICTATIME},
    {"nosuid", false, MS_NOSUID},      {"rbind", false, MS_BIND | MS_REC},
    {"relatime", false, MS_RELATIME},  {"remount", false, MS_REMOUNT},
    {"ro", false, MS_RDONLY},          {"rw", true, MS_RDONLY},
    {"strictatime", false, MS_STRICTATIME}, {"suid", true, MS_NOSUID},
    {"sync", false, MS_SYNCHRONOUS},
};

struct PropagationOption {
  absl::string_view name;
  unsigned long flags;
};

constexpr PropagationOption kPropagationOptions[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

struct ParsedOptions {
  unsigned long flags = 0;
  unsigned long propagation = 0;
  std::vector<std::string> data;
};

ParsedOptions ParseOptions(const std::vector<std::string>& options) {
  ParsedOptions parsed;
  for (const std::string& option : options) {
    bool known = false;
    for (const FlagOption& flag : kFlagOptions) {
      if (option != flag.name) continue;
      known = true;
      if (flag.clear) {
        parsed.flags &= ~flag.flag;
      } else {
        parsed.flags |= flag.flag;
      }
    }
    for (const PropagationOption& propagation : kPropagationOptions) {
      if (option != propagation.name) continue;
      known = true;
      parsed.propagation = propagation.flags;
    }
    if (!known) parsed.data.push_back(option);
  }
  return parsed;
}

// The longest common leading directory of `paths`, without a trailing '/';
// "" when there is none worth changing into.
std::string CommonDirectory(const std::vector<std::string>& paths) {
  if (paths.empty()) return "";
  absl::string_view prefix = paths[0];
  for (const std::string& path : paths) {
    size_t n = 0;
    while (n < prefix.size() && n < path.size() && prefix[n] == path[n]) ++n;
    prefix = prefix.substr(0, n);
  }
  size_t slash = prefix.rfind('/');
  if (slash == absl::string_view::npos || slash == 0) return "";
  std::string dir(prefix.substr(0, slash));
  for (const std::string& path : paths) {
    // Every entry must lie strictly below the directory.
    if (path.size() <= dir.size() + 1 || path[dir.size()] != '/') return "";
  }
  return dir;
}

// Rewrites the lowerdir option in `data` relative to the lower directories'
// common parent, which it returns ("" if there is none: `data` is unchanged).
// This is what containerd's mount code does for long overlay options, so data
// that works here works there.
std::string CompactLowerdir(std::vector<std::string>& data) {
  constexpr absl::string_view kLowerdir = "lowerdir=";
  for (std::string& option : data) {
    if (!absl::StartsWith(option, kLowerdir)) continue;
    std::vector<std::string> lowers =
        absl::StrSplit(absl::string_view(option).substr(kLowerdir.size()), ':');
    std::string dir = CommonDirectory(lowers);
    if (dir.empty()) return "";
    for (std::string& lower : lowers) lower.erase(0, dir.size() + 1);
    option = absl::StrCat(kLowerdir, absl::StrJoin(lowers, ":"));
    return dir;
  }
  return "";
}

// mount(2), from working directory `cwd` when it is not empty. The change of
// directory happens on a short-lived thread that first unshares its
// filesystem attributes (CLONE_FS), so no other thread's relative paths move.
int MountSyscall(const std::string& cwd, const std::string& source, const std::string& target,
                 const std::string& type, unsigned long flags, const std::string& data) {
  auto call = [&] {
    const char* data_arg = data.empty() ? nullptr : data.c_str();
    return ::mount(source.c_str(), target.c_str(), type.c_str(), flags, data_arg) == 0 ? 0
                                                                                        : errno;
  };
  if (cwd.empty()) return call();
  int err = 0;
  std::thread worker([&] {
    if (::unshare(CLONE_FS) != 0 || ::chdir(cwd.c_str()) != 0) {
      err = errno;
      return;
    }
    err = call();
  });
  worker.join();
  return err;
}

// Mounts `mount` on `target`, appending `target` to `mounted` as soon as a
// new mount exists, so a failure in a later step still unmounts it.
absl::Status MountOne(const Mount& mount, const std::string& target,
                      std::vector<std::string>& mounted) {
  ParsedOptions parsed = ParseOptions(mount.options);
  std::string cwd;
  if (mount.type == "overlay" && absl::StrJoin(parsed.data, ",").size() + 1 > kMaxMountData) {
    cwd = CompactLowerdir(parsed.data);
  }
  std::string data = absl::StrJoin(parsed.data, ",");
  std::string op = absl::StrCat("mount ", mount.type, " ", Quote(mount.source), " on");
  if ((parsed.flags & MS_REMOUNT) == 0 || !data.empty()) {
    int err = MountSyscall(cwd, mount.source, target, mount.type, parsed.flags, data);
    if (err != 0) return ErrnoStatus(err, op, target);
    mounted.push_back(target);
  }
  if (parsed.propagation != 0 &&
      ::mount("", target.c_str(), nullptr, parsed.propagation, nullptr) != 0) {
    return ErrnoStatus(absl::StrCat(op, " (propagation)"), target);
  }
  // The kernel ignores MS_RDONLY on a new bind mount: it takes a remount.
  constexpr unsigned long kReadOnlyBind = MS_BIND | MS_RDONLY;
  if ((parsed.flags & kReadOnlyBind) == kReadOnlyBind &&
      ::mount("", target.c_str(), nullptr, parsed.flags | MS_REMOUNT, nullptr) != 0) {
    return ErrnoStatus(absl::StrCat(op, " (read-only remount)"), target);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MountTarget(const std::string& target, const Mount& mount) {
  if (mount.target.empty()) return target;
  for (absl::string_view part : absl::StrSplit(mount.target, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("mount target ", Quote(mount.target), " leaves the mountpoint"));
    }
  }
  return absl::StrCat(target, "/", mount.target);
}

}  // namespace

MountGuard::MountGuard(MountGuard&& other) noexcept : targets_(std::move(other.targets_)) {
  other.targets_.clear();
}

MountGuard& MountGuard::operator=(MountGuard&& other) noexcept {
  if (this != &other) {
    Unmount().IgnoreError();
    targets_ = std::move(other.targets_);
    other.targets_.clear();
  }
  return *this;
}

MountGuard::~MountGuard() {
  absl::Status status = Unmount();
  if (!status.ok()) log::Warn("unmount failed", {{"error", status.ToString()}});
}

absl::Status MountGuard::Unmount() {
  absl::Status first;
  for (auto it = targets_.rbegin(); it != targets_.rend(); ++it) {
    if (::umount2(it->c_str(), MNT_DETACH) != 0 && first.ok()) {
      first = ErrnoStatus("umount2", *it);
    }
  }
  targets_.clear();
  return first;
}

absl::StatusOr<MountGuard> MountAll(absl::Span<const Mount> mounts, const std::string& target) {
  MountGuard guard;
  for (const Mount& mount : mounts) {
    BERTH_ASSIGN_OR_RETURN(std::string path, MountTarget(target, mount));
    BERTH_RETURN_IF_ERROR(MountOne(mount, path, guard.targets_));
  }
  return guard;
}

namespace {

absl::StatusOr<UniqueFd> OpenDirectory(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", path);
  return fd;
}

// The value of overlay option `name=` in `mount`, if present.
std::optional<std::string> OverlayOption(const Mount& mount, absl::string_view name) {
  const std::string prefix = absl::StrCat(name, "=");
  for (const std::string& option : mount.options) {
    if (absl::StartsWith(option, prefix)) return option.substr(prefix.size());
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MountedTree>> MountedTree::Open(const std::vector<Mount>& mounts,
                                                               const std::string& scratch,
                                                               bool prefer_upper) {
  auto tree = std::unique_ptr<MountedTree>(new MountedTree());
  if (mounts.empty()) return absl::InvalidArgumentError("no mounts given");
  if (mounts.size() == 1 && mounts[0].type == "overlay" && prefer_upper) {
    std::optional<std::string> upper = OverlayOption(mounts[0], "upperdir");
    if (upper.has_value()) {
      BERTH_ASSIGN_OR_RETURN(tree->dir_, OpenDirectory(*upper));
      tree->path_ = *upper;
      tree->overlay_upper_ = true;
      if (std::optional<std::string> lower = OverlayOption(mounts[0], "lowerdir")) {
        for (absl::string_view dir : absl::StrSplit(*lower, ':')) {
          BERTH_ASSIGN_OR_RETURN(UniqueFd fd, OpenDirectory(std::string(dir)));
          tree->lowers_.push_back(std::move(fd));
        }
      }
      return tree;
    }
  }
  if (mounts.size() == 1 && (mounts[0].type == "bind" || mounts[0].type == "rbind")) {
    BERTH_ASSIGN_OR_RETURN(tree->dir_, OpenDirectory(mounts[0].source));
    tree->path_ = mounts[0].source;
    return tree;
  }
  std::string target = absl::StrCat(scratch, "/mount-XXXXXX");
  if (::mkdtemp(target.data()) == nullptr) return ErrnoStatus("mkdtemp", target);
  tree->mountpoint_ = target;
  BERTH_ASSIGN_OR_RETURN(tree->guard_, MountAll(mounts, target));
  BERTH_ASSIGN_OR_RETURN(tree->dir_, OpenDirectory(target));
  tree->path_ = target;
  return tree;
}

MountedTree::~MountedTree() {
  dir_.Reset();
  lowers_.clear();
  if (!mountpoint_.empty()) {
    guard_.Unmount().IgnoreError();
    ::rmdir(mountpoint_.c_str());
  }
}

std::vector<int> MountedTree::lower_fds() const {
  std::vector<int> fds;
  for (const UniqueFd& fd : lowers_) fds.push_back(fd.get());
  return fds;
}

}  // namespace berth::snapshotter
