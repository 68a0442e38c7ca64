// The conformance suite through one namespace's view of an overlayfs
// snapshotter: InNamespace must keep every promise of snapshotter.h.
#include "gtest/gtest.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/snapshotter_suite.h"

namespace berth::snapshotter {
namespace {

absl::StatusOr<std::unique_ptr<Snapshotter>> NamespacedOverlay(const std::string& root) {
  absl::StatusOr<OverlayOptions> options = ProbeOverlay(root);
  if (!options.ok()) return options.status();
  absl::StatusOr<std::unique_ptr<Snapshotter>> overlay = NewOverlaySnapshotter(root, *options);
  if (!overlay.ok()) return overlay.status();
  return InNamespace(std::shared_ptr<Snapshotter>(*std::move(overlay)), "team-a");
}

INSTANTIATE_TEST_SUITE_P(Namespaced, SnapshotterSuite,
                         ::testing::Values(SuiteParam{"namespaced_overlayfs", NamespacedOverlay,
                                                      kMaxKeyLength}),
                         SuiteParamName);

}  // namespace
}  // namespace berth::snapshotter
