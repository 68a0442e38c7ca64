// The conformance suite on the native (copying) snapshotter.
#include "gtest/gtest.h"
#include "snapshotter/snapshotter.h"
#include "snapshotter/snapshotter_suite.h"

namespace berth::snapshotter {
namespace {

INSTANTIATE_TEST_SUITE_P(Native, SnapshotterSuite,
                         ::testing::Values(SuiteParam{"native",
                                                      [](const std::string& root) {
                                                        return NewNativeSnapshotter(root);
                                                      }}),
                         SuiteParamName);

}  // namespace
}  // namespace berth::snapshotter
