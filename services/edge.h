// The service edge: where gRPC requests become domain calls and absl::Status
// becomes grpc::Status. Every service in services/ goes through these, so
// there is exactly one mapping of errors (as containerd's errgrpc.ToGRPC is
// called on every return) and one reading of the request's namespace.
#ifndef BERTH_SERVICES_EDGE_H_
#define BERTH_SERVICES_EDGE_H_

#include <map>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/map.h"

namespace berth::services {

// The gRPC metadata key that carries the namespace of a request.
inline constexpr char kNamespaceMetadataKey[] = "containerd-namespace";

// absl and gRPC share the canonical codes, so the code carries over as is;
// the message is kept, so clients print `ctr: namespace "x": not found`.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The namespace named by the request's metadata: FailedPrecondition
// ("namespace is required") when it names none, InvalidArgument quoting it
// when it is not a valid identifier.
absl::StatusOr<std::string> RequestNamespace(const grpc::CallbackServerContext& context);

// The same, or an empty string when the request names none.
absl::StatusOr<std::string> OptionalRequestNamespace(const grpc::CallbackServerContext& context);

// Finishes a unary call with `status`, mapped.
grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status);

// Labels between protobuf maps and std::map.
std::map<std::string, std::string> LabelsFromProto(
    const google::protobuf::Map<std::string, std::string>& labels);
void LabelsToProto(const std::map<std::string, std::string>& labels,
                   google::protobuf::Map<std::string, std::string>* out);

}  // namespace berth::services

#endif  // BERTH_SERVICES_EDGE_H_
