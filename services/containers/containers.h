// containerd.services.containers.v1.Containers: the containers of a
// namespace — what to run (an OCI spec, a runtime, a root filesystem
// snapshot), not running processes — over the metadata store. A container
// is a garbage-collection root for its snapshot and for what its
// containerd.io/gc.ref.* labels name; deleting one schedules a collection.
// Changes publish /containers/create, /containers/update and
// /containers/delete.
#ifndef BERTH_SERVICES_CONTAINERS_CONTAINERS_H_
#define BERTH_SERVICES_CONTAINERS_CONTAINERS_H_

#include "daemon/plugin.h"

namespace berth::services::containers {

// Registers io.containerd.grpc.v1.containers.
void Register(daemon::Registry& registry);

}  // namespace berth::services::containers

#endif  // BERTH_SERVICES_CONTAINERS_CONTAINERS_H_
