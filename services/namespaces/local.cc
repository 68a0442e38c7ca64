#include "services/namespaces/local.h"

#include "absl/strings/str_cat.h"
#include "base/identifiers.h"
#include "base/log.h"
#include "services/edge.h"
#include "base/status.h"
#include "base/strings.h"
#include "github.com/containerd/containerd/api/events/namespace.pb.h"

namespace berth::services::namespaces {
namespace {

namespace event_api = ::containerd::events;

// How a namespace looks to a filter: `name` and `labels.<key>`.
class NamespaceAdaptor final : public filters::Adaptor {
 public:
  explicit NamespaceAdaptor(const store::Namespace& ns) : ns_(ns) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.empty()) return std::nullopt;
    if (path[0] == "name") return ns_.name;
    if (path[0] == "labels") {
      return filters::LabelField(ns_.labels, absl::MakeConstSpan(path).subspan(1));
    }
    return std::nullopt;
  }

 private:
  const store::Namespace& ns_;
};

template <typename Event>
Event ToEvent(const store::Namespace& ns) {
  Event event;
  event.set_name(ns.name);
  for (const auto& [key, value] : ns.labels) (*event.mutable_labels())[key] = value;
  return event;
}

}  // namespace

absl::StatusOr<store::Namespace> Local::Get(absl::string_view name) {
  return store_->GetNamespace(name);
}

absl::StatusOr<std::vector<store::Namespace>> Local::List(const filters::Filter& filter) {
  BERTH_ASSIGN_OR_RETURN(std::vector<store::Namespace> all, store_->ListNamespaces());
  std::vector<store::Namespace> matched;
  for (store::Namespace& ns : all) {
    if (filter.Match(NamespaceAdaptor(ns))) matched.push_back(std::move(ns));
  }
  return matched;
}

absl::StatusOr<store::Namespace> Local::Create(absl::string_view event_namespace,
                                               const store::Namespace& ns) {
  BERTH_RETURN_IF_ERROR(store_->CreateNamespace(ns));
  Publish(event_namespace, ns.name, "/namespaces/create", ToEvent<event_api::NamespaceCreate>(ns));
  return ns;
}

absl::StatusOr<store::Namespace> Local::Update(absl::string_view event_namespace,
                                               const store::Namespace& ns,
                                               const std::vector<std::string>& field_mask_paths) {
  BERTH_ASSIGN_OR_RETURN(store::Namespace updated, store_->UpdateNamespace(ns, field_mask_paths));
  Publish(event_namespace, updated.name, "/namespaces/update",
          ToEvent<event_api::NamespaceUpdate>(updated));
  return updated;
}

absl::Status Local::Delete(absl::string_view event_namespace, absl::string_view name) {
  BERTH_RETURN_IF_ERROR(identifiers::Validate(name));
  for (const auto& [id, snapshots] : snapshotters_) {
    bool any = false;
    // One snapshot is enough: the walk stops at the first.
    absl::Status walked = snapshotter::InNamespace(snapshots, name)->Walk([&](const snapshotter::Info&) {
      any = true;
      return absl::CancelledError();
    });
    if (!any && !walked.ok()) return walked;
    if (any) {
      return absl::FailedPreconditionError(absl::StrCat("namespace ", Quote(name),
                                                        " must be empty, but it still has snapshots in ",
                                                        Quote(id)));
    }
  }
  BERTH_RETURN_IF_ERROR(store_->DeleteNamespace(name));
  event_api::NamespaceDelete event;
  event.set_name(std::string(name));
  Publish(event_namespace, name, "/namespaces/delete", event);
  return absl::OkStatus();
}

void Local::Publish(absl::string_view event_namespace, absl::string_view name,
                    absl::string_view topic, const google::protobuf::Message& event) {
  PublishEvent(*exchange_, event_namespace.empty() ? name : event_namespace, topic, event);
}

}  // namespace berth::services::namespaces
