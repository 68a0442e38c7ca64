// containerd.services.diff.v1.Diff: layers in and out of snapshots.
//
// Apply unpacks a layer blob of the request's namespace into the mounts it
// is given (what Snapshots.Prepare returned), as `ctr images import` and
// image unpacking drive it; it answers with the uncompressed layer's
// descriptor, whose digest is the diff ID. An overlay mount is written
// straight into its upperdir (whiteouts in overlay form), a bind mount into
// its source directory, anything else is mounted under the plugin's state
// directory first. Diff writes the changes between two sets of mounts as a
// compressed tar into the content store, as committing a container does.
#ifndef BERTH_SERVICES_DIFF_DIFF_H_
#define BERTH_SERVICES_DIFF_DIFF_H_

#include "daemon/plugin.h"

namespace berth::services::diff {

// Registers io.containerd.grpc.v1.diff.
void Register(daemon::Registry& registry);

}  // namespace berth::services::diff

#endif  // BERTH_SERVICES_DIFF_DIFF_H_
