// containerd.services.leases.v1.Leases: leases hold content, ingests and
// snapshots back from garbage collection until they are deleted or expire
// (label containerd.io/gc.expire). Deleting one with `sync` waits for the
// collection that follows. Leases publish no events, as in containerd.
#ifndef BERTH_SERVICES_LEASES_LEASES_H_
#define BERTH_SERVICES_LEASES_LEASES_H_

#include "daemon/plugin.h"

namespace berth::services::leases {

// Registers io.containerd.grpc.v1.leases.
void Register(daemon::Registry& registry);

}  // namespace berth::services::leases

#endif  // BERTH_SERVICES_LEASES_LEASES_H_
