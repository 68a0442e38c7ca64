#include "services/health/health.h"

#include <memory>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

namespace berth::services::health {
namespace {

// gRPC's own health service; the builder adds it when this is enabled before
// BuildAndStart, which is when the daemon calls Register.
class HealthService final : public daemon::GrpcService {
 public:
  void Register(grpc::ServerBuilder&) override { grpc::EnableDefaultHealthCheckService(true); }
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "healthcheck",
                     .init = [](daemon::InitContext&) -> absl::StatusOr<std::any> {
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<HealthService>());
                     }});
}

}  // namespace berth::services::health
