// containerd.services.events.v1.Events: publish and forward events into the
// daemon's exchange, and stream them out to subscribers (`ctr events`),
// filtered with containerd's filter syntax over `namespace`, `topic` and the
// event's own fields (`event.name`, `event.labels."a.b"`).
#ifndef BERTH_SERVICES_EVENTS_EVENTS_H_
#define BERTH_SERVICES_EVENTS_EVENTS_H_

#include "daemon/plugin.h"

namespace berth::services::events {

// Registers io.containerd.grpc.v1.events.
void Register(daemon::Registry& registry);

}  // namespace berth::services::events

#endif  // BERTH_SERVICES_EVENTS_EVENTS_H_
