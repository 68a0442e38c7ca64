// containerd.services.version.v1.Version: which berthd is answering.
#ifndef BERTH_SERVICES_VERSION_VERSION_H_
#define BERTH_SERVICES_VERSION_VERSION_H_

#include "daemon/plugin.h"

namespace berth::services::version {

// Berth's release, as `ctr version` prints it under "Server".
inline constexpr char kVersion[] = "0.1.0";

// Registers io.containerd.grpc.v1.version.
void Register(daemon::Registry& registry);

}  // namespace berth::services::version

#endif  // BERTH_SERVICES_VERSION_VERSION_H_
