// grpc.health.v1.Health, registered as containerd registers it
// (io.containerd.grpc.v1.healthcheck): SERVING while berthd serves.
#ifndef BERTH_SERVICES_HEALTH_HEALTH_H_
#define BERTH_SERVICES_HEALTH_HEALTH_H_

#include "daemon/plugin.h"

namespace berth::services::health {

void Register(daemon::Registry& registry);

}  // namespace berth::services::health

#endif  // BERTH_SERVICES_HEALTH_HEALTH_H_
