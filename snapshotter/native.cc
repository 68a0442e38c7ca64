// The native snapshotter (see NewNativeSnapshotter in snapshotter.h): every
// snapshot is a full copy of its parent, mounted with a bind mount.
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status.h"
#include "snapshotter/fs.h"
#include "snapshotter/local.h"
#include "snapshotter/snapshotter.h"

namespace berth::snapshotter {
namespace {

class NativeDriver final : public Driver {
 public:
  absl::Status Init(const Layout& layout, int /*root*/) override {
    layout_.emplace(layout);
    return absl::OkStatus();
  }

  // A copy has no depth to run out of.
  absl::Status CheckDepth(size_t /*depth*/) const override { return absl::OkStatus(); }

  absl::Status Populate(int root, int dir, int64_t id, Kind /*kind*/,
                        const std::vector<int64_t>& chain) override {
    const std::string display = layout_->FsDir(id);
    BERTH_RETURN_IF_ERROR(fs::MakeDirectory(dir, Layout::kFs, 0755, display));
    if (chain.empty()) return absl::OkStatus();
    // The parent is a full tree already: one copy of it is the whole chain.
    const std::string parent = layout_->FsDir(chain[0]);
    BERTH_ASSIGN_OR_RETURN(UniqueFd snapshots, fs::OpenDirectory(root, Layout::kSnapshots, parent));
    BERTH_ASSIGN_OR_RETURN(UniqueFd parent_dir,
                           fs::OpenDirectory(snapshots.get(), absl::StrCat(chain[0]), parent));
    BERTH_ASSIGN_OR_RETURN(UniqueFd src, fs::OpenDirectory(parent_dir.get(), Layout::kFs, parent));
    BERTH_ASSIGN_OR_RETURN(UniqueFd dst, fs::OpenDirectory(dir, Layout::kFs, display));
    return fs::CopyTree(src.get(), dst.get(), parent);
  }

  std::vector<Mount> Mounts(int64_t id, Kind kind,
                            const std::vector<int64_t>& /*chain*/) const override {
    return {Mount{"bind", layout_->FsDir(id), "", {kind == Kind::kView ? "ro" : "rw", "rbind"}}};
  }

  absl::Status Forget(int /*root*/, int64_t /*id*/) override { return absl::OkStatus(); }

  absl::Status Sweep(int /*root*/, const std::set<int64_t>& /*live*/) override {
    return absl::OkStatus();
  }

 private:
  std::optional<Layout> layout_;  // set by Init
};

}  // namespace

absl::StatusOr<std::unique_ptr<Snapshotter>> NewNativeSnapshotter(const std::string& root) {
  return LocalSnapshotter::Open(root, std::make_unique<NativeDriver>());
}

}  // namespace berth::snapshotter
