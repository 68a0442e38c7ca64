#include "services/version/version.h"

#include <memory>

#include "github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h"
#include "services/edge.h"

namespace berth::services::version {
namespace {

namespace api = ::containerd::services::version::v1;

// `ctr version` prints it as the server's revision: it says who answered.
constexpr char kRevision[] = "berth";

class VersionService final : public api::Version::CallbackService, public daemon::GrpcService {
 public:
  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* context,
                                    const google::protobuf::Empty*,
                                    api::VersionResponse* response) override {
    response->set_version(kVersion);
    response->set_revision(kRevision);
    return Finish(context, absl::OkStatus());
  }
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "version",
                     .init = [](daemon::InitContext&) -> absl::StatusOr<std::any> {
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<VersionService>());
                     }});
}

}  // namespace berth::services::version
