// The overlayfs snapshotter (see NewOverlaySnapshotter in snapshotter.h) and
// the probe that says whether overlayfs works on a filesystem.
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/files.h"
#include "base/status.h"
#include "base/strings.h"
#include "snapshotter/fs.h"
#include "snapshotter/local.h"
#include "snapshotter/mount.h"
#include "snapshotter/snapshotter.h"

namespace berth::snapshotter {
namespace {

// OVL_MAX_STACK: the most lower layers one overlay mount takes.
constexpr size_t kMaxLowerLayers = 500;

// mount(2) copies at most one page of options, NUL included.
constexpr size_t kMaxMountData = 4096;

// <root>/l: one short symbolic link per snapshot, to its fs directory.
constexpr const char* kLinks = "l";

constexpr absl::string_view kDigits = "0123456789abcdefghijklmnopqrstuvwxyz";

// A snapshot's link name: its id in base 36, six characters for the first
// two billion ids, so 500 of them fit in a page with room to spare.
std::string LinkName(int64_t id) {
  std::string name;
  do {
    name.insert(name.begin(), kDigits[id % 36]);
    id /= 36;
  } while (id > 0);
  return name;
}

// The id a link name stands for, if it is one LinkName makes.
std::optional<int64_t> ParseLinkName(absl::string_view name) {
  if (name.empty() || name.size() > 12) return std::nullopt;
  int64_t id = 0;
  for (char c : name) {
    size_t digit = kDigits.find(c);
    if (digit == absl::string_view::npos) return std::nullopt;
    id = id * 36 + static_cast<int64_t>(digit);
  }
  if (LinkName(id) != name) return std::nullopt;
  return id;
}

absl::Status RemoveLink(int root, const std::string& name) {
  UniqueFd links(::openat(root, kLinks, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!links.valid()) return ErrnoStatus("open", kLinks);
  if (::unlinkat(links.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    return ErrnoStatus("unlink", absl::StrCat(kLinks, "/", name));
  }
  return absl::OkStatus();
}

size_t OptionsLength(const std::vector<std::string>& options) {
  return absl::StrJoin(options, ",").size();
}

class OverlayDriver final : public Driver {
 public:
  explicit OverlayDriver(OverlayOptions options) : options_(options) {}

  absl::Status Init(const Layout& layout, int root) override {
    // Overlay splits its options at ',' and lowerdir at ':'; '\' escapes.
    if (layout.root().find_first_of(",:\\") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "overlay snapshotter root ", Quote(layout.root()),
          " contains ',', ':' or '\\', which overlay mount options cannot hold"));
    }
    layout_.emplace(layout);
    if (::mkdirat(root, kLinks, 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir", absl::StrCat(layout.root(), "/", kLinks));
    }
    return absl::OkStatus();
  }

  absl::Status CheckDepth(size_t depth) const override {
    if (depth <= kMaxLowerLayers) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("a parent chain of ", depth, " layers is deeper than overlayfs stacks (",
                     kMaxLowerLayers, " lower layers)"));
  }

  absl::Status Populate(int root, int dir, int64_t id, Kind kind,
                        const std::vector<int64_t>& chain) override {
    const std::string display = layout_->SnapshotDir(id);
    BERTH_RETURN_IF_ERROR(fs::MakeDirectory(dir, Layout::kFs, 0755, display));
    if (kind == Kind::kActive) {
      BERTH_RETURN_IF_ERROR(fs::MakeDirectory(dir, Layout::kWork, 0700, display));
    }
    if (!chain.empty()) BERTH_RETURN_IF_ERROR(InheritRootAttributes(root, dir, chain[0]));
    return MakeLink(root, id);
  }

  std::vector<Mount> Mounts(int64_t id, Kind kind,
                            const std::vector<int64_t>& chain) const override {
    const std::string access = kind == Kind::kView ? "ro" : "rw";
    if (chain.empty()) {
      return {Mount{"bind", layout_->FsDir(id), "", {access, "rbind"}}};
    }
    if (kind == Kind::kView && chain.size() == 1) {
      // Overlay wants two lowers at least when there is no upper.
      return {Mount{"bind", layout_->FsDir(chain[0]), "", {"ro", "rbind"}}};
    }
    std::vector<std::string> options;
    if (options_.index_off) options.push_back("index=off");
    if (options_.userxattr) options.push_back("userxattr");
    if (kind == Kind::kActive) {
      options.push_back(absl::StrCat("workdir=", layout_->WorkDir(id)));
      options.push_back(absl::StrCat("upperdir=", layout_->FsDir(id)));
    }
    options.push_back(Lowerdir(chain, false));
    if (OptionsLength(options) + 1 > kMaxMountData) options.back() = Lowerdir(chain, true);
    return {Mount{"overlay", "overlay", "", std::move(options)}};
  }

  absl::Status Forget(int root, int64_t id) override { return RemoveLink(root, LinkName(id)); }

  absl::Status Sweep(int root, const std::set<int64_t>& live) override {
    UniqueFd links(::openat(root, kLinks, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!links.valid()) return ErrnoStatus("open", absl::StrCat(layout_->root(), "/", kLinks));
    BERTH_ASSIGN_OR_RETURN(std::vector<std::string> names,
                           files::ListDirectory(links.get(), kLinks));
    for (const std::string& name : names) {
      std::optional<int64_t> id = ParseLinkName(name);
      if (id.has_value() && live.contains(*id)) continue;
      log::Info("removing overlay link that belongs to no snapshot",
                {{"root", layout_->root()}, {"name", name}});
      BERTH_RETURN_IF_ERROR(RemoveLink(root, name));
    }
    return absl::OkStatus();
  }

 private:
  // "lowerdir=" and `chain`'s fs directories, nearest first: by their own
  // paths, or by their links in <root>/l when `short_names`.
  std::string Lowerdir(const std::vector<int64_t>& chain, bool short_names) const {
    std::vector<std::string> lowers;
    lowers.reserve(chain.size());
    for (int64_t id : chain) {
      lowers.push_back(short_names ? absl::StrCat(layout_->root(), "/", kLinks, "/", LinkName(id))
                                   : layout_->FsDir(id));
    }
    return absl::StrCat("lowerdir=", absl::StrJoin(lowers, ":"));
  }

  // The merged tree's root directory is the upper one's: give it the
  // parent's owner and mode, or a layer that changed them (an image whose
  // root is not root:root 0755) would lose the change.
  absl::Status InheritRootAttributes(int root, int dir, int64_t parent) {
    const std::string parent_fs = layout_->FsDir(parent);
    BERTH_ASSIGN_OR_RETURN(UniqueFd snapshots,
                           fs::OpenDirectory(root, Layout::kSnapshots, parent_fs));
    BERTH_ASSIGN_OR_RETURN(UniqueFd parent_dir,
                           fs::OpenDirectory(snapshots.get(), absl::StrCat(parent), parent_fs));
    struct stat st;
    if (::fstatat(parent_dir.get(), Layout::kFs, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("stat", parent_fs);
    }
    if (::fchownat(dir, Layout::kFs, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoStatus("chown", "fs");
    }
    if (::fchmodat(dir, Layout::kFs, st.st_mode & 07777, 0) != 0) {
      return ErrnoStatus("chmod", "fs");
    }
    return absl::OkStatus();
  }

  absl::Status MakeLink(int root, int64_t id) {
    UniqueFd links(::openat(root, kLinks, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!links.valid()) return ErrnoStatus("open", absl::StrCat(layout_->root(), "/", kLinks));
    const std::string name = LinkName(id);
    const std::string target = absl::StrCat("../", Layout::kSnapshots, "/", id, "/", Layout::kFs);
    const std::string display = absl::StrCat(layout_->root(), "/", kLinks, "/", name);
    if (::symlinkat(target.c_str(), links.get(), name.c_str()) == 0) return absl::OkStatus();
    // A link left by a creation that crashed before its row was written,
    // whose id is handed out again: replace it.
    if (errno == EEXIST) {
      if (::unlinkat(links.get(), name.c_str(), 0) != 0) return ErrnoStatus("unlink", display);
      if (::symlinkat(target.c_str(), links.get(), name.c_str()) == 0) return absl::OkStatus();
    }
    return ErrnoStatus("symlink", display);
  }

  const OverlayOptions options_;
  std::optional<Layout> layout_;  // set by Init
};

// ---- Probing ----

std::string FilesystemName(const std::string& path) {
  struct statfs st;
  if (::statfs(path.c_str(), &st) != 0) return "unknown";
  switch (static_cast<unsigned long>(st.f_type)) {
    case EXT4_SUPER_MAGIC:
      return "ext4";
    case XFS_SUPER_MAGIC:
      return "xfs";
    case BTRFS_SUPER_MAGIC:
      return "btrfs";
    case TMPFS_MAGIC:
      return "tmpfs";
    case OVERLAYFS_SUPER_MAGIC:
      return "overlayfs";
    case NFS_SUPER_MAGIC:
      return "nfs";
    case 0x65735546:  // FUSE_SUPER_MAGIC
      return "fuse";
    case 0x2fc12fc1:  // ZFS
      return "zfs";
    case MSDOS_SUPER_MAGIC:
      return "vfat";
    default:
      return absl::StrCat("type 0x", absl::Hex(st.f_type));
  }
}

absl::Status MakeProbeTree(const std::string& dir) {
  for (const char* sub : {"lower", "lower/d", "upper", "work", "merged"}) {
    std::string path = absl::StrCat(dir, "/", sub);
    if (::mkdir(path.c_str(), 0755) != 0) return ErrnoStatus("mkdir", path);
  }
  for (const char* file : {"lower/x", "lower/d/f"}) {
    std::string path = absl::StrCat(dir, "/", file);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return ErrnoStatus("create", path);
  }
  return absl::OkStatus();
}

// Deletes a lower file and replaces a lower directory through the overlay
// at `dir`/merged; overlay records the first as a whiteout and the second as
// an opaque directory, which takes an xattr on the upper filesystem.
absl::Status ExerciseOverlay(const std::string& dir, const OverlayOptions& options) {
  const std::string merged = absl::StrCat(dir, "/merged");
  std::string path = absl::StrCat(merged, "/x");
  if (::unlink(path.c_str()) != 0) return ErrnoStatus("delete a lower file: unlink", path);
  path = absl::StrCat(merged, "/d/f");
  if (::unlink(path.c_str()) != 0) return ErrnoStatus("delete a lower file: unlink", path);
  path = absl::StrCat(merged, "/d");
  if (::rmdir(path.c_str()) != 0) return ErrnoStatus("delete a lower directory: rmdir", path);
  if (::mkdir(path.c_str(), 0755) != 0) return ErrnoStatus("make an opaque directory: mkdir", path);

  struct stat st;
  path = absl::StrCat(dir, "/upper/x");
  if (::lstat(path.c_str(), &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat("overlayfs left no whiteout (a 0/0 character device) at ", Quote(path)));
  }
  path = absl::StrCat(dir, "/upper/d");
  const char* opaque = options.userxattr ? "user.overlay.opaque" : "trusted.overlay.opaque";
  char value[8];
  ssize_t n = ::lgetxattr(path.c_str(), opaque, value, sizeof(value));
  if (n != 1 || value[0] != 'y') {
    return absl::FailedPreconditionError(
        absl::StrCat("overlayfs did not mark ", Quote(path), " opaque (", opaque, ")"));
  }
  return absl::OkStatus();
}

// The option sets worth trying, most preferred first.
std::vector<OverlayOptions> Candidates() {
  // The kernel lists the parameter when it knows the option.
  bool index_known = ::access("/sys/module/overlay/parameters/index", F_OK) == 0;
  std::vector<OverlayOptions> candidates;
  for (bool userxattr : {false, true}) {
    if (index_known) candidates.push_back({true, userxattr});
    candidates.push_back({false, userxattr});
  }
  return candidates;
}

absl::StatusOr<OverlayOptions> ProbeIn(const std::string& dir) {
  BERTH_RETURN_IF_ERROR(MakeProbeTree(dir));
  absl::Status last;
  for (const OverlayOptions& options : Candidates()) {
    Mount mount{"overlay", "overlay", "", {}};
    if (options.index_off) mount.options.push_back("index=off");
    if (options.userxattr) mount.options.push_back("userxattr");
    mount.options.push_back(absl::StrCat("lowerdir=", dir, "/lower"));
    mount.options.push_back(absl::StrCat("upperdir=", dir, "/upper"));
    mount.options.push_back(absl::StrCat("workdir=", dir, "/work"));
    absl::StatusOr<MountGuard> guard = MountAll({mount}, absl::StrCat(dir, "/merged"));
    if (!guard.ok()) {
      last = guard.status();
      continue;
    }
    absl::Status exercised = ExerciseOverlay(dir, options);
    BERTH_RETURN_IF_ERROR(guard->Unmount());
    BERTH_RETURN_IF_ERROR(exercised);
    return options;
  }
  return last;
}

}  // namespace

absl::StatusOr<OverlayOptions> ProbeOverlay(const std::string& root) {
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("root ", Quote(root), " is not absolute"));
  }
  BERTH_RETURN_IF_ERROR(files::MakeDirectories(root, 0700));
  char resolved[PATH_MAX];
  if (::realpath(root.c_str(), resolved) == nullptr) return ErrnoStatus("realpath", root);
  const std::string real = resolved;
  BERTH_ASSIGN_OR_RETURN(UniqueFd root_fd, fs::OpenDirectory(AT_FDCWD, real, real));
  std::string dir = absl::StrCat(real, "/overlay-probe-XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) return ErrnoStatus("mkdtemp", dir);
  absl::StatusOr<OverlayOptions> options = ProbeIn(dir);
  absl::Status removed = fs::RemoveTree(root_fd.get(), dir.substr(real.size() + 1), dir);
  if (!options.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("overlayfs does not work in ", Quote(root),
                                                      " (on ", FilesystemName(root),
                                                      "): ", options.status().message()));
  }
  BERTH_RETURN_IF_ERROR(removed);
  return options;
}

absl::StatusOr<std::unique_ptr<Snapshotter>> NewOverlaySnapshotter(const std::string& root,
                                                                   OverlayOptions options) {
  return LocalSnapshotter::Open(root, std::make_unique<OverlayDriver>(options));
}

}  // namespace berth::snapshotter
