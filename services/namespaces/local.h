// The namespaces logic behind the gRPC translator: validation, the store and
// events, with domain types only.
#ifndef BERTH_SERVICES_NAMESPACES_LOCAL_H_
#define BERTH_SERVICES_NAMESPACES_LOCAL_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "events/exchange.h"
#include "filters/filters.h"
#include "google/protobuf/message.h"
#include "snapshotter/snapshotter.h"
#include "store/metadata.h"

namespace berth::services::namespaces {

class Local {
 public:
  // `snapshotters` by id: a namespace that still has snapshots in one of
  // them cannot be deleted, as containerd refuses it.
  Local(std::shared_ptr<store::MetadataStore> store, std::shared_ptr<events::Exchange> exchange,
        std::map<std::string, std::shared_ptr<snapshotter::Snapshotter>> snapshotters)
      : store_(std::move(store)),
        exchange_(std::move(exchange)),
        snapshotters_(std::move(snapshotters)) {}

  absl::StatusOr<store::Namespace> Get(absl::string_view name);
  absl::StatusOr<std::vector<store::Namespace>> List(const filters::Filter& filter);

  // `event_namespace` is the namespace the request itself named (events are
  // published there, as containerd does); empty publishes in the namespace
  // being changed.
  absl::StatusOr<store::Namespace> Create(absl::string_view event_namespace,
                                          const store::Namespace& ns);
  absl::StatusOr<store::Namespace> Update(absl::string_view event_namespace,
                                          const store::Namespace& ns,
                                          const std::vector<std::string>& field_mask_paths);
  absl::Status Delete(absl::string_view event_namespace, absl::string_view name);

 private:
  // In the request's namespace, else in the one changed.
  void Publish(absl::string_view event_namespace, absl::string_view name,
               absl::string_view topic, const google::protobuf::Message& event);

  std::shared_ptr<store::MetadataStore> store_;
  std::shared_ptr<events::Exchange> exchange_;
  std::map<std::string, std::shared_ptr<snapshotter::Snapshotter>> snapshotters_;
};

}  // namespace berth::services::namespaces

#endif  // BERTH_SERVICES_NAMESPACES_LOCAL_H_
