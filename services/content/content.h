// containerd.services.content.v1.Content: blobs by digest as a namespace
// sees them — info, labels, listing, deletion, streamed reads, and the
// resumable Write stream with its ingest statuses — over the namespaced
// content store; deletions publish /content/delete and schedule garbage
// collection.
#ifndef BERTH_SERVICES_CONTENT_CONTENT_H_
#define BERTH_SERVICES_CONTENT_CONTENT_H_

#include "daemon/plugin.h"

namespace berth::services::content {

// Registers io.containerd.grpc.v1.content.
void Register(daemon::Registry& registry);

}  // namespace berth::services::content

#endif  // BERTH_SERVICES_CONTENT_CONTENT_H_
