// containerd.services.introspection.v1.Introspection: which plugins this
// berthd loaded (with their errors) and the server's persistent UUID.
#ifndef BERTH_SERVICES_INTROSPECTION_INTROSPECTION_H_
#define BERTH_SERVICES_INTROSPECTION_INTROSPECTION_H_

#include "daemon/plugin.h"

namespace berth::services::introspection {

// Registers io.containerd.grpc.v1.introspection; it inits after every other
// plugin so it can report them all.
void Register(daemon::Registry& registry);

}  // namespace berth::services::introspection

#endif  // BERTH_SERVICES_INTROSPECTION_INTROSPECTION_H_
