#include "services/containers/containers.h"

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "events/exchange.h"
#include "filters/filters.h"
#include "github.com/containerd/containerd/api/events/container.pb.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h"
#include "services/edge.h"
#include "store/gc.h"
#include "store/namespaced_content.h"

namespace berth::services::containers {
namespace {

namespace api = ::containerd::services::containers::v1;
namespace events_api = ::containerd::events;

store::TypedValue FromProto(const google::protobuf::Any& any) {
  return {any.type_url(), any.value()};
}

void ToProto(const store::TypedValue& value, google::protobuf::Any* out) {
  out->set_type_url(value.type_url);
  out->set_value(value.value);
}

void ToProto(const store::Container& container, api::Container* out) {
  out->set_id(container.id);
  LabelsToProto(container.labels, out->mutable_labels());
  out->set_image(container.image);
  out->mutable_runtime()->set_name(container.runtime.name);
  if (container.runtime.options.has_value()) {
    ToProto(*container.runtime.options, out->mutable_runtime()->mutable_options());
  }
  if (container.spec.has_value()) ToProto(*container.spec, out->mutable_spec());
  out->set_snapshotter(container.snapshotter);
  out->set_snapshot_key(container.snapshot_key);
  *out->mutable_created_at() = ToTimestamp(container.created_at);
  *out->mutable_updated_at() = ToTimestamp(container.updated_at);
  for (const auto& [name, extension] : container.extensions) {
    ToProto(extension, &(*out->mutable_extensions())[name]);
  }
}

// Absent messages stay absent: the store refuses a container without a
// spec, and keeps runtime options only if they were sent.
store::Container FromProto(const api::Container& container) {
  store::Container out;
  out.id = container.id();
  out.labels = LabelsFromProto(container.labels());
  out.image = container.image();
  out.runtime.name = container.runtime().name();
  if (container.runtime().has_options()) {
    out.runtime.options = FromProto(container.runtime().options());
  }
  if (container.has_spec()) out.spec = FromProto(container.spec());
  out.snapshotter = container.snapshotter();
  out.snapshot_key = container.snapshot_key();
  for (const auto& [name, extension] : container.extensions()) {
    out.extensions.emplace(name, FromProto(extension));
  }
  return out;
}

// How a container looks to a filter, as containerd 1.6 adapts it: id,
// image, runtime.name and labels.<k>; other fields are absent. containerd
// reports an empty string field absent.
class ContainerAdaptor final : public filters::Adaptor {
 public:
  explicit ContainerAdaptor(const store::Container& container) : container_(container) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.empty()) return std::nullopt;
    if (path[0] == "id") return NonEmpty(container_.id);
    if (path[0] == "image") return NonEmpty(container_.image);
    if (path[0] == "runtime" && path.size() == 2 && path[1] == "name") {
      return NonEmpty(container_.runtime.name);
    }
    if (path[0] == "labels") {
      return filters::LabelField(container_.labels, absl::MakeConstSpan(path).subspan(1));
    }
    return std::nullopt;
  }

 private:
  static std::optional<std::string> NonEmpty(const std::string& value) {
    if (value.empty()) return std::nullopt;
    return value;
  }

  const store::Container& container_;
};

// The containers of the request's namespace that its filters match.
absl::StatusOr<std::vector<store::Container>> Matching(store::MetadataStore& metadata,
                                                       const grpc::CallbackServerContext& context,
                                                       const api::ListContainersRequest& request) {
  BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(context));
  BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(request.filters()));
  BERTH_ASSIGN_OR_RETURN(std::vector<store::Container> all, metadata.ListContainers(ns));
  std::vector<store::Container> matching;
  for (store::Container& container : all) {
    if (filter.Match(ContainerAdaptor(container))) matching.push_back(std::move(container));
  }
  return matching;
}

class Service final : public api::Containers::CallbackService, public daemon::GrpcService {
 public:
  Service(std::shared_ptr<store::MetadataStore> metadata,
          std::shared_ptr<events::Exchange> exchange, std::shared_ptr<store::GarbageCollector> gc)
      : metadata_(std::move(metadata)), exchange_(std::move(exchange)), gc_(std::move(gc)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const api::GetContainerRequest* request,
                                api::GetContainerResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(store::Container container,
                             metadata_->GetContainer(ns, request->id()));
      ToProto(container, response->mutable_container());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const api::ListContainersRequest* request,
                                 api::ListContainersResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::vector<store::Container> containers,
                             Matching(*metadata_, *context, *request));
      for (const store::Container& container : containers) {
        ToProto(container, response->add_containers());
      }
      return absl::OkStatus();
    }());
  }

  // One container a message, as containerd sends them.
  grpc::ServerWriteReactor<api::ListContainerMessage>* ListStream(
      grpc::CallbackServerContext* context, const api::ListContainersRequest* request) override {
    auto containers = std::make_shared<absl::StatusOr<std::vector<store::Container>>>(
        Matching(*metadata_, *context, *request));
    size_t next = 0;
    return StreamFrom<api::ListContainerMessage>(
        [containers, next](api::ListContainerMessage* out) mutable -> absl::StatusOr<bool> {
          if (!containers->ok()) return containers->status();
          if (next >= (*containers)->size()) return false;
          ToProto((**containers)[next++], out->mutable_container());
          return true;
        });
  }

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const api::CreateContainerRequest* request,
                                   api::CreateContainerResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(store::Container container,
                             metadata_->CreateContainer(ns, FromProto(request->container())));
      ToProto(container, response->mutable_container());
      events_api::ContainerCreate event;
      event.set_id(container.id);
      event.set_image(container.image);
      event.mutable_runtime()->set_name(container.runtime.name);
      if (container.runtime.options.has_value()) {
        ToProto(*container.runtime.options, event.mutable_runtime()->mutable_options());
      }
      PublishEvent(*exchange_, ns, "/containers/create", event);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* context,
                                   const api::UpdateContainerRequest* request,
                                   api::UpdateContainerResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      std::vector<std::string> paths(request->update_mask().paths().begin(),
                                     request->update_mask().paths().end());
      BERTH_ASSIGN_OR_RETURN(
          store::Container container,
          metadata_->UpdateContainer(ns, FromProto(request->container()), paths));
      ToProto(container, response->mutable_container());
      events_api::ContainerUpdate event;
      event.set_id(container.id);
      event.set_image(container.image);
      LabelsToProto(container.labels, event.mutable_labels());
      event.set_snapshot_key(container.snapshot_key);
      PublishEvent(*exchange_, ns, "/containers/update", event);
      // A new snapshot key or new labels may leave what the old ones named
      // unreferenced.
      gc_->Schedule();
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const api::DeleteContainerRequest* request,
                                   google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(metadata_->DeleteContainer(ns, request->id()));
      events_api::ContainerDelete event;
      event.set_id(request->id());
      PublishEvent(*exchange_, ns, "/containers/delete", event);
      gc_->Schedule();
      return absl::OkStatus();
    }());
  }

 private:
  const std::shared_ptr<store::MetadataStore> metadata_;
  const std::shared_ptr<events::Exchange> exchange_;
  const std::shared_ptr<store::GarbageCollector> gc_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register(
      {.type = daemon::kGrpcPlugin,
       .id = "containers",
       .requires_types = {daemon::kMetadataPlugin, daemon::kEventPlugin, daemon::kGcPlugin},
       .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
         BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(daemon::kMetadataPlugin));
         BERTH_ASSIGN_OR_RETURN(auto exchange, ic.Get<events::Exchange>(daemon::kEventPlugin));
         BERTH_ASSIGN_OR_RETURN(auto gc, ic.Get<store::GarbageCollector>(daemon::kGcPlugin));
         return std::shared_ptr<daemon::GrpcService>(
             std::make_shared<Service>(db->metadata, std::move(exchange), std::move(gc)));
       }});
}

}  // namespace berth::services::containers
