// The gRPC translator: proto in, a call on Local, proto out.
#include <memory>

#include "base/status.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"
#include "services/edge.h"
#include "services/namespaces/local.h"
#include "services/namespaces/namespaces.h"
#include "store/namespaced_content.h"

namespace berth::services::namespaces {
namespace {

namespace api = ::containerd::services::namespaces::v1;

void ToProto(const store::Namespace& ns, api::Namespace* out) {
  out->set_name(ns.name);
  LabelsToProto(ns.labels, out->mutable_labels());
}

store::Namespace FromProto(const api::Namespace& ns) {
  return store::Namespace{.name = ns.name(), .labels = LabelsFromProto(ns.labels())};
}

class Service final : public api::Namespaces::CallbackService, public daemon::GrpcService {
 public:
  explicit Service(std::shared_ptr<Local> local) : local_(std::move(local)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const api::GetNamespaceRequest* request,
                                api::GetNamespaceResponse* response) override {
    absl::StatusOr<store::Namespace> ns = local_->Get(request->name());
    if (ns.ok()) ToProto(*ns, response->mutable_namespace_());
    return Finish(context, ns.status());
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const api::ListNamespacesRequest* request,
                                 api::ListNamespacesResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      std::vector<std::string> expressions;
      if (!request->filter().empty()) expressions.push_back(request->filter());
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(expressions));
      BERTH_ASSIGN_OR_RETURN(std::vector<store::Namespace> all, local_->List(filter));
      for (const store::Namespace& ns : all) ToProto(ns, response->add_namespaces());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const api::CreateNamespaceRequest* request,
                                   api::CreateNamespaceResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string event_namespace, OptionalRequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(store::Namespace created,
                             local_->Create(event_namespace, FromProto(request->namespace_())));
      ToProto(created, response->mutable_namespace_());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* context,
                                   const api::UpdateNamespaceRequest* request,
                                   api::UpdateNamespaceResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string event_namespace, OptionalRequestNamespace(*context));
      std::vector<std::string> paths(request->update_mask().paths().begin(),
                                     request->update_mask().paths().end());
      BERTH_ASSIGN_OR_RETURN(
          store::Namespace updated,
          local_->Update(event_namespace, FromProto(request->namespace_()), paths));
      ToProto(updated, response->mutable_namespace_());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const api::DeleteNamespaceRequest* request,
                                   google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string event_namespace, OptionalRequestNamespace(*context));
      return local_->Delete(event_namespace, request->name());
    }());
  }

 private:
  std::shared_ptr<Local> local_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kServicePlugin,
                     .id = "namespaces-service",
                     .requires_types = {daemon::kMetadataPlugin, daemon::kEventPlugin,
                                        daemon::kSnapshotPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto db,
                                              ic.Get<store::Database>(daemon::kMetadataPlugin));
                       BERTH_ASSIGN_OR_RETURN(auto exchange,
                                              ic.Get<events::Exchange>(daemon::kEventPlugin));
                       return std::make_shared<Local>(
                           db->metadata, std::move(exchange),
                           ic.GetAll<snapshotter::Snapshotter>(daemon::kSnapshotPlugin));
                     }});
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "namespaces",
                     .requires_types = {daemon::kServicePlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto local, ic.Get<Local>(daemon::kServicePlugin, "namespaces-service"));
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<Service>(std::move(local)));
                     }});
}

}  // namespace berth::services::namespaces
