#include "services/leases/leases.h"


#include <memory>

#include "absl/strings/escaping.h"
#include "base/random.h"
#include "base/status.h"
#include "filters/filters.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"
#include "services/edge.h"
#include "store/gc.h"
#include "store/namespaced_content.h"

namespace berth::services::leases {
namespace {

namespace api = ::containerd::services::leases::v1;

// A lease id for a client that names none: random, like containerd's
// clients make them.
std::string GeneratedId() { return RandomHex(16); }

void ToProto(const store::Lease& lease, api::Lease* out) {
  out->set_id(lease.id);
  *out->mutable_created_at() = ToTimestamp(lease.created_at);
  LabelsToProto(lease.labels, out->mutable_labels());
}

store::LeaseResource FromProto(const api::Resource& resource) {
  return store::LeaseResource{.type = resource.type(), .id = resource.id()};
}

// How a lease looks to a filter: id and labels.
class LeaseAdaptor final : public filters::Adaptor {
 public:
  explicit LeaseAdaptor(const store::Lease& lease) : lease_(lease) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.empty()) return std::nullopt;
    if (path[0] == "id") return lease_.id;
    if (path[0] == "labels") return filters::LabelField(lease_.labels, absl::MakeConstSpan(path).subspan(1));
    return std::nullopt;
  }

 private:
  const store::Lease& lease_;
};

class Service final : public api::Leases::CallbackService, public daemon::GrpcService {
 public:
  Service(std::shared_ptr<store::MetadataStore> metadata,
          std::shared_ptr<store::GarbageCollector> gc)
      : metadata_(std::move(metadata)), gc_(std::move(gc)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const api::CreateRequest* request,
                                   api::CreateResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      store::Lease lease;
      lease.id = request->id().empty() ? GeneratedId() : request->id();
      lease.labels = LabelsFromProto(request->labels());
      BERTH_ASSIGN_OR_RETURN(store::Lease created, metadata_->CreateLease(ns, lease));
      ToProto(created, response->mutable_lease());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const api::DeleteRequest* request,
                                   google::protobuf::Empty*) override {
    // A sync delete waits for garbage collection, on a gRPC callback thread:
    // the wait is bounded by one collection, never by a container.
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(metadata_->DeleteLease(ns, request->id()));
      if (request->sync()) return gc_->Collect();
      gc_->Schedule();
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const api::ListRequest* request,
                                 api::ListResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(request->filters()));
      BERTH_ASSIGN_OR_RETURN(std::vector<store::Lease> leases, metadata_->ListLeases(ns));
      for (const store::Lease& lease : leases) {
        if (filter.Match(LeaseAdaptor(lease))) ToProto(lease, response->add_leases());
      }
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* AddResource(grpc::CallbackServerContext* context,
                                        const api::AddResourceRequest* request,
                                        google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      return metadata_->AddLeaseResource(ns, request->id(), FromProto(request->resource()));
    }());
  }

  grpc::ServerUnaryReactor* DeleteResource(grpc::CallbackServerContext* context,
                                           const api::DeleteResourceRequest* request,
                                           google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(
          metadata_->DeleteLeaseResource(ns, request->id(), FromProto(request->resource())));
      gc_->Schedule();
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* ListResources(grpc::CallbackServerContext* context,
                                          const api::ListResourcesRequest* request,
                                          api::ListResourcesResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(std::vector<store::LeaseResource> resources,
                             metadata_->ListLeaseResources(ns, request->id()));
      for (const store::LeaseResource& resource : resources) {
        api::Resource* out = response->add_resources();
        out->set_id(resource.id);
        out->set_type(resource.type);
      }
      return absl::OkStatus();
    }());
  }

 private:
  const std::shared_ptr<store::MetadataStore> metadata_;
  const std::shared_ptr<store::GarbageCollector> gc_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "leases",
                     .requires_types = {daemon::kMetadataPlugin, daemon::kGcPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(daemon::kMetadataPlugin));
                       BERTH_ASSIGN_OR_RETURN(auto gc, ic.Get<store::GarbageCollector>(daemon::kGcPlugin));
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<Service>(db->metadata, std::move(gc)));
                     }});
}

}  // namespace berth::services::leases
