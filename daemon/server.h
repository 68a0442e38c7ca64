// Serving: everything berthd does between reading its configuration and
// exiting. Serve prepares the root and state directories (mode 0700), takes
// the root's lock so a second berthd on the same root refuses to start,
// inits the plugins, serves gRPC on the unix socket (mode 0660, the stale
// socket of a crashed daemon replaced) and returns after SIGTERM or SIGINT,
// once every plugin has shut down.
#ifndef BERTH_DAEMON_SERVER_H_
#define BERTH_DAEMON_SERVER_H_

#include "absl/status/status.h"
#include "daemon/config.h"

namespace berth::daemon {

// REQUIRES: called from main before any thread starts (it blocks the stop
// signals in every thread it will create).
absl::Status Serve(const Config& config);

}  // namespace berth::daemon

#endif  // BERTH_DAEMON_SERVER_H_
