// Mounting the mounts a snapshotter returns.
//
//   BERTH_ASSIGN_OR_RETURN(std::vector<Mount> mounts, snapshotter.Prepare("ctr-1", "sha256:L2"));
//   BERTH_ASSIGN_OR_RETURN(MountGuard rootfs, MountAll(mounts, "/run/berth/ctr-1/rootfs"));
//   ...                                  // rootfs is unmounted when `rootfs` goes
//
// Options are read as mount(8) and containerd's mount package read them:
// known flags ("ro", "rw", "bind", "rbind", "nosuid", "noexec", "nodev",
// "relatime", propagation such as "rprivate" …) become mount(2) flags, the rest
// are joined with ',' into the filesystem's data. A read-only bind mount is a
// bind followed by a read-only remount, since the kernel ignores MS_RDONLY on
// the bind itself.
//
// Overlay options longer than a page (the most mount(2) copies) are mounted
// the way containerd does it: from the lower directories' common parent, with
// lowerdir entries relative to it. The working directory is changed on a
// thread of its own that has unshared its filesystem attributes, so the rest
// of the process never sees it change.
#ifndef BERTH_SNAPSHOTTER_MOUNT_H_
#define BERTH_SNAPSHOTTER_MOUNT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/unique_fd.h"
#include "snapshotter/snapshotter.h"

namespace berth::snapshotter {

// Owns mounts: unmounts them (last first, lazily with MNT_DETACH, so a busy
// mount cannot make cleanup fail) when it goes, unless released. Move-only.
class MountGuard {
 public:
  MountGuard() = default;
  MountGuard(MountGuard&& other) noexcept;
  MountGuard& operator=(MountGuard&& other) noexcept;
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  ~MountGuard();

  // Unmounts now, last mount first; every mount is tried, the first error
  // is returned. The guard owns nothing afterwards.
  absl::Status Unmount();

  // Leaves the mounts in place; the caller now owns them.
  void Release() { targets_.clear(); }

 private:
  friend absl::StatusOr<MountGuard> MountAll(absl::Span<const Mount> mounts,
                                             const std::string& target);

  std::vector<std::string> targets_;  // in mount order
};

// Mounts `mounts` one over another on `target` (each at `target` joined with
// its own `target`, which must not contain ".." components), in order. On
// failure whatever was mounted is unmounted again and the error names the
// mount(2) call: `mount overlay on "/run/x": Invalid argument`.
absl::StatusOr<MountGuard> MountAll(absl::Span<const Mount> mounts, const std::string& target);

// The directory tree a list of mounts shows, open for writing or reading a
// layer (the Diff service's Apply and Diff), mounted only when it must be:
//  - a single overlay mount, when `prefer_upper`: its upperdir, which holds
//    just that snapshot's own changes, with its lowerdirs open beside it;
//  - a single bind mount: its source;
//  - anything else: mounted on a new directory under `scratch`, unmounted
//    and removed when the MountedTree goes.
class MountedTree {
 public:
  static absl::StatusOr<std::unique_ptr<MountedTree>> Open(const std::vector<Mount>& mounts,
                                                           const std::string& scratch,
                                                           bool prefer_upper);
  ~MountedTree();
  MountedTree(const MountedTree&) = delete;
  MountedTree& operator=(const MountedTree&) = delete;

  int dir() const { return dir_.get(); }
  // Where dir() was opened.
  const std::string& path() const { return path_; }
  // dir() is an overlay upperdir (whiteouts are stored as overlayfs does).
  bool overlay_upper() const { return overlay_upper_; }
  // The upperdir's lower layers, topmost first; empty otherwise.
  std::vector<int> lower_fds() const;

 private:
  MountedTree() = default;

  UniqueFd dir_;
  std::string path_;
  std::vector<UniqueFd> lowers_;
  bool overlay_upper_ = false;
  std::string mountpoint_;
  MountGuard guard_;
};

}  // namespace berth::snapshotter

#endif  // BERTH_SNAPSHOTTER_MOUNT_H_
