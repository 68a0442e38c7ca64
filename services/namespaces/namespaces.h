// containerd.services.namespaces.v1.Namespaces: create, list, label and
// remove namespaces, kept in the metadata store; every change is published
// on the event exchange (/namespaces/create, /namespaces/update,
// /namespaces/delete).
#ifndef BERTH_SERVICES_NAMESPACES_NAMESPACES_H_
#define BERTH_SERVICES_NAMESPACES_NAMESPACES_H_

#include "daemon/plugin.h"

namespace berth::services::namespaces {

// Registers io.containerd.service.v1.namespaces-service (the logic) and
// io.containerd.grpc.v1.namespaces (the gRPC translator in front of it).
void Register(daemon::Registry& registry);

}  // namespace berth::services::namespaces

#endif  // BERTH_SERVICES_NAMESPACES_NAMESPACES_H_
