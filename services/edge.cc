#include "services/edge.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "base/identifiers.h"
#include "base/log.h"

namespace berth::services {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<std::string> OptionalRequestNamespace(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kNamespaceMetadataKey);
  if (it == metadata.end()) return std::string();
  std::string name(it->second.data(), it->second.size());
  if (absl::Status status = identifiers::Validate(name); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("namespace \"", name, "\" from request metadata: ", status.message()));
  }
  return name;
}

absl::StatusOr<std::string> RequestNamespace(const grpc::CallbackServerContext& context) {
  absl::StatusOr<std::string> name = OptionalRequestNamespace(context);
  if (name.ok() && name->empty()) {
    return absl::FailedPreconditionError("namespace is required");
  }
  return name;
}

std::string RequestLease(const grpc::CallbackServerContext& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kLeaseMetadataKey);
  if (it == metadata.end()) return std::string();
  return std::string(it->second.data(), it->second.size());
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

std::map<std::string, std::string> LabelsFromProto(
    const google::protobuf::Map<std::string, std::string>& labels) {
  return std::map<std::string, std::string>(labels.begin(), labels.end());
}

void PublishEvent(berth::events::Exchange& exchange, absl::string_view ns, absl::string_view topic,
                  const google::protobuf::Message& event) {
  absl::Status published = exchange.Publish(ns, topic, event.GetDescriptor()->full_name(),
                                            event.SerializeAsString());
  if (!published.ok()) {
    log::Warn("publishing event failed", {{"topic", topic}, {"error", published.message()}});
  }
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

void LabelsToProto(const std::map<std::string, std::string>& labels,
                   google::protobuf::Map<std::string, std::string>* out) {
  out->clear();
  for (const auto& [key, value] : labels) (*out)[key] = value;
}

}  // namespace berth::services
