// containerd.services.images.v1.Images: named images of a namespace, each
// pointing at a target descriptor, over the metadata store. An image is a
// garbage-collection root for its target (and what that target's
// containerd.io/gc.ref.content.* labels reference); deleting one schedules a
// collection, or waits for it with `sync`. Changes publish /images/create,
// /images/update and /images/delete.
#ifndef BERTH_SERVICES_IMAGES_IMAGES_H_
#define BERTH_SERVICES_IMAGES_IMAGES_H_

#include "daemon/plugin.h"

namespace berth::services::images {

// Registers io.containerd.grpc.v1.images.
void Register(daemon::Registry& registry);

}  // namespace berth::services::images

#endif  // BERTH_SERVICES_IMAGES_IMAGES_H_
