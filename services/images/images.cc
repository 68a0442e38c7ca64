#include "services/images/images.h"

#include <memory>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/status.h"
#include "events/exchange.h"
#include "filters/filters.h"
#include "github.com/containerd/containerd/api/events/image.pb.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h"
#include "services/edge.h"
#include "store/gc.h"
#include "store/namespaced_content.h"

namespace berth::services::images {
namespace {

namespace api = ::containerd::services::images::v1;

void ToProto(const store::Image& image, api::Image* out) {
  out->set_name(image.name);
  LabelsToProto(image.labels, out->mutable_labels());
  ::containerd::types::Descriptor* target = out->mutable_target();
  target->set_media_type(image.target.media_type);
  target->set_digest(image.target.digest);
  target->set_size(image.target.size);
  LabelsToProto(image.target.annotations, target->mutable_annotations());
  *out->mutable_created_at() = ToTimestamp(image.created_at);
  *out->mutable_updated_at() = ToTimestamp(image.updated_at);
}

store::Image FromProto(const api::Image& image) {
  store::Image out;
  out.name = image.name();
  out.labels = LabelsFromProto(image.labels());
  out.target.media_type = image.target().media_type();
  out.target.digest = image.target().digest();
  out.target.size = image.target().size();
  out.target.annotations = LabelsFromProto(image.target().annotations());
  return out;
}

// How an image looks to a filter, as containerd adapts it: name,
// target.digest, target.mediatype, labels.<k>, annotations.<k>.
class ImageAdaptor final : public filters::Adaptor {
 public:
  explicit ImageAdaptor(const store::Image& image) : image_(image) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.empty()) return std::nullopt;
    if (path[0] == "name") return image_.name;
    if (path[0] == "target" && path.size() == 2) {
      if (path[1] == "digest") return image_.target.digest;
      if (path[1] == "mediatype") return image_.target.media_type;
    }
    if (path[0] == "labels") {
      return filters::LabelField(image_.labels, absl::MakeConstSpan(path).subspan(1));
    }
    if (path[0] == "annotations") {
      return filters::LabelField(image_.target.annotations, absl::MakeConstSpan(path).subspan(1));
    }
    return std::nullopt;
  }

 private:
  const store::Image& image_;
};

class Service final : public api::Images::CallbackService, public daemon::GrpcService {
 public:
  Service(std::shared_ptr<store::MetadataStore> metadata,
          std::shared_ptr<events::Exchange> exchange, std::shared_ptr<store::GarbageCollector> gc)
      : metadata_(std::move(metadata)), exchange_(std::move(exchange)), gc_(std::move(gc)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const api::GetImageRequest* request,
                                api::GetImageResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(store::Image image, metadata_->GetImage(ns, request->name()));
      ToProto(image, response->mutable_image());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const api::ListImagesRequest* request,
                                 api::ListImagesResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(request->filters()));
      BERTH_ASSIGN_OR_RETURN(std::vector<store::Image> images, metadata_->ListImages(ns));
      for (const store::Image& image : images) {
        if (filter.Match(ImageAdaptor(image))) ToProto(image, response->add_images());
      }
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const api::CreateImageRequest* request,
                                   api::CreateImageResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(store::Image image,
                             metadata_->CreateImage(ns, FromProto(request->image())));
      ToProto(image, response->mutable_image());
      api::ImageCreate event;
      event.set_name(image.name);
      LabelsToProto(image.labels, event.mutable_labels());
      PublishEvent(*exchange_, ns, "/images/create", event);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* context,
                                   const api::UpdateImageRequest* request,
                                   api::UpdateImageResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      std::vector<std::string> paths(request->update_mask().paths().begin(),
                                     request->update_mask().paths().end());
      BERTH_ASSIGN_OR_RETURN(store::Image image,
                             metadata_->UpdateImage(ns, FromProto(request->image()), paths));
      ToProto(image, response->mutable_image());
      api::ImageUpdate event;
      event.set_name(image.name);
      LabelsToProto(image.labels, event.mutable_labels());
      PublishEvent(*exchange_, ns, "/images/update", event);
      // A new target may leave the old one unreferenced.
      gc_->Schedule();
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const api::DeleteImageRequest* request,
                                   google::protobuf::Empty*) override {
    // A sync delete waits for garbage collection on a gRPC callback thread:
    // the wait is bounded by one collection, never by a container.
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_RETURN_IF_ERROR(metadata_->DeleteImage(ns, request->name()));
      api::ImageDelete event;
      event.set_name(request->name());
      PublishEvent(*exchange_, ns, "/images/delete", event);
      if (request->sync()) return gc_->Collect();
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
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "images",
                     .requires_types = {daemon::kMetadataPlugin, daemon::kEventPlugin,
                                        daemon::kGcPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(daemon::kMetadataPlugin));
                       BERTH_ASSIGN_OR_RETURN(auto exchange, ic.Get<events::Exchange>(daemon::kEventPlugin));
                       BERTH_ASSIGN_OR_RETURN(auto gc, ic.Get<store::GarbageCollector>(daemon::kGcPlugin));
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<Service>(db->metadata, std::move(exchange), std::move(gc)));
                     }});
}

}  // namespace berth::services::images
