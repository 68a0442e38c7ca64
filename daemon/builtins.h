// The plugins compiled into berthd, as containerd's builtins list them.
#ifndef BERTH_DAEMON_BUILTINS_H_
#define BERTH_DAEMON_BUILTINS_H_

#include "daemon/plugin.h"

namespace berth::daemon {

void RegisterBuiltins(Registry& registry);

}  // namespace berth::daemon

#endif  // BERTH_DAEMON_BUILTINS_H_
