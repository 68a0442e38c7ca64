// containerd.services.tasks.v1.Tasks: the running side of containers, each
// task through its shim (runtime/tasks.h). Create takes the container's
// spec and runtime from its record and the rootfs mounts, stdio and options
// from the request; every other call goes to the task's shim, whose errors
// (NotFound, FailedPrecondition for a started task's Start or a running
// task's Delete …) keep their codes. Wait is answered when the process
// exits, without a thread waiting for it.
#ifndef BERTH_SERVICES_TASKS_TASKS_H_
#define BERTH_SERVICES_TASKS_TASKS_H_

#include "daemon/plugin.h"

namespace berth::services::tasks {

// Registers io.containerd.runtime.v2.task (the task manager) and
// io.containerd.grpc.v1.tasks.
void Register(daemon::Registry& registry);

}  // namespace berth::services::tasks

#endif  // BERTH_SERVICES_TASKS_TASKS_H_
