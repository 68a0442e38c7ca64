// The service edge: where gRPC requests become domain calls and absl::Status
// becomes grpc::Status. Every service in services/ goes through these, so
// there is exactly one mapping of errors (as containerd's errgrpc.ToGRPC is
// called on every return) and one reading of the request's namespace.
#ifndef BERTH_SERVICES_EDGE_H_
#define BERTH_SERVICES_EDGE_H_

#include <functional>
#include <map>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "events/exchange.h"
#include "google/protobuf/message.h"
#include "google/protobuf/map.h"
#include "google/protobuf/timestamp.pb.h"

namespace berth::services {

// The gRPC metadata key that carries the namespace of a request.
inline constexpr char kNamespaceMetadataKey[] = "containerd-namespace";
// The gRPC metadata key that ties what a request creates to a lease.
inline constexpr char kLeaseMetadataKey[] = "containerd-lease";

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

// A server stream whose messages come from `next`, one write in flight at a
// time: `next` fills the next message and returns true, or returns false
// when the stream is complete, or an error that ends the call with it. It
// runs on gRPC's callback threads, so it must not wait on anything but the
// disk.
template <typename Response>
grpc::ServerWriteReactor<Response>* StreamFrom(
    std::function<absl::StatusOr<bool>(Response*)> next);

// The lease a request names in its `containerd-lease` metadata, or "".
std::string RequestLease(const grpc::CallbackServerContext& context);

// Publishes `event` in namespace `ns` on `topic`, its type named by its
// message (`containerd.events.ContentDelete`). A failure is logged, not
// returned: the change the event reports is already committed.
void PublishEvent(berth::events::Exchange& exchange, absl::string_view ns, absl::string_view topic,
                  const google::protobuf::Message& event);

// An absl::Time as a protobuf Timestamp, to the nanosecond.
google::protobuf::Timestamp ToTimestamp(absl::Time t);

// Labels between protobuf maps and std::map.
std::map<std::string, std::string> LabelsFromProto(
    const google::protobuf::Map<std::string, std::string>& labels);
void LabelsToProto(const std::map<std::string, std::string>& labels,
                   google::protobuf::Map<std::string, std::string>* out);

namespace edge_internal {

template <typename Response>
class GeneratedStream final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit GeneratedStream(std::function<absl::StatusOr<bool>(Response*)> next)
      : next_(std::move(next)) {
    WriteNext();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status::CANCELLED);
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    message_.Clear();
    absl::StatusOr<bool> more = next_(&message_);
    if (!more.ok() || !*more) {
      this->Finish(ToGrpcStatus(more.status()));
      return;
    }
    this->StartWrite(&message_);
  }

  std::function<absl::StatusOr<bool>(Response*)> next_;
  Response message_;
};

}  // namespace edge_internal

template <typename Response>
grpc::ServerWriteReactor<Response>* StreamFrom(
    std::function<absl::StatusOr<bool>(Response*)> next) {
  return new edge_internal::GeneratedStream<Response>(std::move(next));
}

}  // namespace berth::services

#endif  // BERTH_SERVICES_EDGE_H_
