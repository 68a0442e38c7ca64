#include "events/exchange.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/identifiers.h"
#include "base/status.h"

namespace berth::events {

absl::Status ValidateTopic(absl::string_view topic) {
  if (topic.empty() || topic[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("topic \"", topic, "\" must start with \"/\""));
  }
  for (absl::string_view component : absl::StrSplit(topic.substr(1), '/')) {
    if (!identifiers::Validate(component).ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic \"", topic, "\": component \"", component, "\" is not a valid identifier"));
    }
  }
  return absl::OkStatus();
}

Subscription::Subscription(Subscription&& other) noexcept
    : exchange_(std::exchange(other.exchange_, nullptr)), id_(other.id_) {}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Detach();
    exchange_ = std::exchange(other.exchange_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

Subscription::~Subscription() { Detach(); }

void Subscription::Detach() {
  if (exchange_ != nullptr) std::exchange(exchange_, nullptr)->Unsubscribe(id_);
}

absl::Status Exchange::Publish(absl::string_view namespace_name, absl::string_view topic,
                               absl::string_view type_url, std::string payload) {
  return Forward(Envelope{
      .timestamp = absl::Now(),
      .namespace_name = std::string(namespace_name),
      .topic = std::string(topic),
      .type_url = std::string(type_url),
      .payload = std::move(payload),
  });
}

absl::Status Exchange::Forward(Envelope envelope) {
  if (absl::Status status = identifiers::Validate(envelope.namespace_name); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event namespace \"", envelope.namespace_name, "\": ", status.message()));
  }
  BERTH_RETURN_IF_ERROR(ValidateTopic(envelope.topic));
  if (envelope.timestamp == absl::InfinitePast() || envelope.timestamp == absl::UnixEpoch()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event on topic \"", envelope.topic, "\" has no timestamp"));
  }
  if (envelope.type_url.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("event on topic \"", envelope.topic, "\" has no payload type"));
  }
  Deliver(envelope);
  return absl::OkStatus();
}

void Exchange::Deliver(const Envelope& envelope) {
  absl::MutexLock order(&publish_mu_);
  std::vector<std::shared_ptr<Subscriber>> subscribers;
  {
    absl::MutexLock lock(&mu_);
    subscribers.reserve(subscribers_.size());
    for (const auto& [id, subscriber] : subscribers_) subscribers.push_back(subscriber);
  }
  for (const std::shared_ptr<Subscriber>& subscriber : subscribers) {
    absl::MutexLock lock(&subscriber->delivering);
    if (!subscriber->detached && subscriber->accepts(envelope)) subscriber->sink(envelope);
  }
}

Subscription Exchange::Subscribe(Predicate accepts, Sink sink) {
  auto subscriber = std::make_shared<Subscriber>();
  subscriber->accepts = std::move(accepts);
  subscriber->sink = std::move(sink);
  absl::MutexLock lock(&mu_);
  uint64_t id = next_id_++;
  subscribers_.emplace_back(id, std::move(subscriber));
  return Subscription(this, id);
}

void Exchange::Unsubscribe(uint64_t id) {
  std::shared_ptr<Subscriber> subscriber;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = subscribers_.begin(); it != subscribers_.end(); ++it) {
      if (it->first == id) {
        subscriber = std::move(it->second);
        subscribers_.erase(it);
        break;
      }
    }
  }
  if (subscriber == nullptr) return;
  absl::MutexLock lock(&subscriber->delivering);
  subscriber->detached = true;
}

}  // namespace berth::events
