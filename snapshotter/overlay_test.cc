// The conformance suite on overlayfs, and what only overlay promises: its
// mount data, the on-disk form of whiteouts, its depth limit, the probe.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "snapshotter/mount.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/snapshotter_suite.h"

namespace berth::snapshotter {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<std::unique_ptr<Snapshotter>> OpenOverlay(const std::string& root) {
  absl::StatusOr<OverlayOptions> options = ProbeOverlay(root);
  if (!options.ok()) return options.status();
  return NewOverlaySnapshotter(root, *options);
}

INSTANTIATE_TEST_SUITE_P(Overlay, SnapshotterSuite,
                         ::testing::Values(SuiteParam{"overlay", OpenOverlay}), SuiteParamName);

}  // namespace
}  // namespace berth::snapshotter
