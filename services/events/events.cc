#include "services/events/events.h"

#include <deque>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "base/status.h"
#include "events/exchange.h"
#include "filters/filters.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/time_util.h"
#include "services/edge.h"
#include "ttrpc/ttrpc.h"

namespace berth::services::events {
namespace {

namespace api = ::containerd::services::events::v1;
namespace ttrpc_api = ::containerd::services::events::ttrpc::v1;
using ::berth::events::Envelope;
using ::berth::events::Exchange;
using ::google::protobuf::util::TimeUtil;

// A subscriber that falls this far behind is cut off rather than let the
// daemon's memory grow without bound.
constexpr size_t kMaxQueuedEvents = 4096;

// The value at `path` in a protobuf message, by field names, the way
// containerd's generated Field methods read events: strings, numbers and
// bools as text, maps of strings by key, nested messages recursively.
std::optional<std::string> MessageField(const google::protobuf::Message& message,
                                        const std::vector<std::string>& path, size_t at) {
  if (at >= path.size()) return std::nullopt;
  const google::protobuf::Descriptor* descriptor = message.GetDescriptor();
  const google::protobuf::FieldDescriptor* field = descriptor->FindFieldByName(path[at]);
  if (field == nullptr) return std::nullopt;
  const google::protobuf::Reflection* reflection = message.GetReflection();
  using FD = google::protobuf::FieldDescriptor;
  if (field->is_map()) {
    const FD* key = field->message_type()->map_key();
    const FD* value = field->message_type()->map_value();
    if (at + 1 >= path.size() || key->cpp_type() != FD::CPPTYPE_STRING ||
        value->cpp_type() != FD::CPPTYPE_STRING) {
      return std::nullopt;
    }
    for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
      const google::protobuf::Message& entry = reflection->GetRepeatedMessage(message, field, i);
      const google::protobuf::Reflection* entry_reflection = entry.GetReflection();
      if (entry_reflection->GetString(entry, key) == path[at + 1]) {
        return entry_reflection->GetString(entry, value);
      }
    }
    return std::nullopt;
  }
  if (field->is_repeated()) return std::nullopt;
  bool last = at + 1 == path.size();
  switch (field->cpp_type()) {
    case FD::CPPTYPE_MESSAGE:
      if (last || !reflection->HasField(message, field)) return std::nullopt;
      return MessageField(reflection->GetMessage(message, field), path, at + 1);
    case FD::CPPTYPE_STRING:
      if (!last) return std::nullopt;
      return reflection->GetString(message, field);
    case FD::CPPTYPE_BOOL:
      if (!last) return std::nullopt;
      return reflection->GetBool(message, field) ? "true" : "false";
    case FD::CPPTYPE_INT32:
      if (!last) return std::nullopt;
      return std::to_string(reflection->GetInt32(message, field));
    case FD::CPPTYPE_UINT32:
      if (!last) return std::nullopt;
      return std::to_string(reflection->GetUInt32(message, field));
    case FD::CPPTYPE_INT64:
      if (!last) return std::nullopt;
      return std::to_string(reflection->GetInt64(message, field));
    case FD::CPPTYPE_UINT64:
      if (!last) return std::nullopt;
      return std::to_string(reflection->GetUInt64(message, field));
    case FD::CPPTYPE_ENUM:
      if (!last) return std::nullopt;
      return reflection->GetEnum(message, field)->name();
    default:
      return std::nullopt;
  }
}

// How an envelope looks to a filter: namespace, topic, and event.<field>…
// with the payload decoded by its type URL when a filter asks for it.
class EnvelopeAdaptor final : public filters::Adaptor {
 public:
  explicit EnvelopeAdaptor(const Envelope& envelope) : envelope_(envelope) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.empty()) return std::nullopt;
    if (path[0] == "namespace") return NonEmpty(envelope_.namespace_name);
    if (path[0] == "topic") return NonEmpty(envelope_.topic);
    if (path[0] == "event" && path.size() > 1) {
      const google::protobuf::Message* event = Decoded();
      if (event != nullptr) return MessageField(*event, path, 1);
    }
    return std::nullopt;
  }

 private:
  static std::optional<std::string> NonEmpty(const std::string& s) {
    if (s.empty()) return std::nullopt;
    return s;
  }

  const google::protobuf::Message* Decoded() const {
    if (decoded_ != nullptr) return decoded_.get();
    absl::string_view name = envelope_.type_url;
    if (size_t slash = name.rfind('/'); slash != absl::string_view::npos) {
      name = name.substr(slash + 1);
    }
    const google::protobuf::Descriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            std::string(name));
    if (descriptor == nullptr) return nullptr;
    const google::protobuf::Message* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
    if (prototype == nullptr) return nullptr;
    decoded_.reset(prototype->New());
    if (!decoded_->ParseFromString(envelope_.payload)) decoded_.reset();
    return decoded_.get();
  }

  const Envelope& envelope_;
  mutable std::unique_ptr<google::protobuf::Message> decoded_;
};

void ToProto(const Envelope& envelope, api::Envelope* out) {
  *out->mutable_timestamp() = ToTimestamp(envelope.timestamp);
  out->set_namespace_(envelope.namespace_name);
  out->set_topic(envelope.topic);
  out->mutable_event()->set_type_url(envelope.type_url);
  out->mutable_event()->set_value(envelope.payload);
}

// Streams matching envelopes to one client, one write in flight at a time.
// The exchange's sink only queues; writes continue from OnWriteDone.
class SubscribeReactor final : public grpc::ServerWriteReactor<api::Envelope> {
 public:
  SubscribeReactor(Exchange& exchange, filters::Filter filter) {
    subscription_ =
        exchange.Subscribe([filter = std::move(filter)](
                               const Envelope& e) { return filter.Match(EnvelopeAdaptor(e)); },
                           [this](const Envelope& e) { Enqueue(e); });
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    queue_.pop_front();
    if (!ok) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    subscription_ = berth::events::Subscription();  // waits out a delivery in flight
    delete this;
  }

 private:
  void Enqueue(const Envelope& envelope) {
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    if (queue_.size() >= kMaxQueuedEvents) {
      log::Warn("events subscriber too slow; closing its stream", {{"queued", queue_.size()}});
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "event subscriber fell too far behind"));
      return;
    }
    ToProto(envelope, &queue_.emplace_back());
    WriteNextLocked();
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || queue_.empty()) {
      if (finishing_ && !writing_ && !finished_) {
        finished_ = true;
        Finish(final_status_);
      }
      return;
    }
    if (finishing_) {
      queue_.clear();
      WriteNextLocked();
      return;
    }
    writing_ = true;
    StartWrite(&queue_.front());
  }

  // Finish waits for the write in flight: gRPC allows one operation at a time.
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    final_status_ = std::move(status);
    if (!writing_) queue_.clear();
    WriteNextLocked();
  }

  absl::Mutex mu_;
  std::deque<api::Envelope> queue_ ABSL_GUARDED_BY(mu_);  // front() is in flight when writing_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
  berth::events::Subscription subscription_;
};

// An envelope as a client forwards it: the gRPC API's, or the ttrpc one
// shims send (the same fields).
template <typename EnvelopeProto>
Envelope FromProto(const EnvelopeProto& envelope) {
  absl::Time when =
      envelope.has_timestamp()
          ? absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(envelope.timestamp()))
          : absl::InfinitePast();
  return Envelope{
      .timestamp = when,
      .namespace_name = envelope.namespace_(),
      .topic = envelope.topic(),
      .type_url = envelope.event().type_url(),
      .payload = envelope.event().value(),
  };
}

// containerd.services.events.ttrpc.v1.Events/Forward on the daemon's ttrpc
// socket: the shims' task events, re-published to subscribers.
class TtrpcForwarder final : public daemon::TtrpcService {
 public:
  explicit TtrpcForwarder(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}

  void Register(ttrpc::Server& server) override {
    server.Register("containerd.services.events.ttrpc.v1.Events", "Forward",
                    [this](const ttrpc::CallContext&, std::string payload, ttrpc::Reply reply) {
                      ttrpc_api::ForwardRequest request;
                      if (!request.ParseFromString(payload)) {
                        return reply(absl::InvalidArgumentError("malformed ForwardRequest"));
                      }
                      absl::Status forwarded = exchange_->Forward(FromProto(request.envelope()));
                      if (!forwarded.ok()) return reply(forwarded);
                      reply(std::string());
                    });
  }

 private:
  const std::shared_ptr<Exchange> exchange_;
};

class Service final : public api::Events::CallbackService, public daemon::GrpcService {
 public:
  explicit Service(std::shared_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Publish(grpc::CallbackServerContext* context,
                                    const api::PublishRequest* request,
                                    google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      return exchange_->Publish(ns, request->topic(), request->event().type_url(),
                                request->event().value());
    }());
  }

  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* context,
                                    const api::ForwardRequest* request,
                                    google::protobuf::Empty*) override {
    return Finish(context, exchange_->Forward(FromProto(request->envelope())));
  }

  grpc::ServerWriteReactor<api::Envelope>* Subscribe(
      grpc::CallbackServerContext*, const api::SubscribeRequest* request) override {
    absl::StatusOr<filters::Filter> filter = filters::Filter::ParseAny(request->filters());
    if (!filter.ok()) {
      return StreamFrom<api::Envelope>(
          [status = filter.status()](api::Envelope*) -> absl::StatusOr<bool> { return status; });
    }
    return new SubscribeReactor(*exchange_, *std::move(filter));
  }

 private:
  std::shared_ptr<Exchange> exchange_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "events",
                     .requires_types = {daemon::kEventPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto exchange,
                                              ic.Get<Exchange>(daemon::kEventPlugin));
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<Service>(std::move(exchange)));
                     }});
  registry.Register({.type = daemon::kTtrpcPlugin,
                     .id = "events",
                     .requires_types = {daemon::kEventPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto exchange,
                                              ic.Get<Exchange>(daemon::kEventPlugin));
                       return std::shared_ptr<daemon::TtrpcService>(
                           std::make_shared<TtrpcForwarder>(std::move(exchange)));
                     }});
}

}  // namespace berth::services::events
