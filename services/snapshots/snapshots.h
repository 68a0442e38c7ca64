// containerd.services.snapshots.v1.Snapshots: every loaded snapshotter
// (overlayfs, native), chosen by the request's `snapshotter` field — or, when
// it is empty, by the namespace's `containerd.io/defaults/snapshotter` label,
// else overlayfs. Each namespace sees only its own snapshots. Requests with a
// `containerd-lease` add what they create to that lease; prepare, commit and
// remove publish /snapshot/prepare, /snapshot/commit and /snapshot/remove.
#ifndef BERTH_SERVICES_SNAPSHOTS_SNAPSHOTS_H_
#define BERTH_SERVICES_SNAPSHOTS_SNAPSHOTS_H_

#include "daemon/plugin.h"

namespace berth::services::snapshots {

// Registers io.containerd.grpc.v1.snapshots.
void Register(daemon::Registry& registry);

}  // namespace berth::services::snapshots

#endif  // BERTH_SERVICES_SNAPSHOTS_SNAPSHOTS_H_
