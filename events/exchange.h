// The event exchange: the daemon's one bus for "something happened" messages.
//
// Components publish an event — a topic such as "/namespaces/create", the
// namespace it happened in, and a payload that is a serialized protobuf named
// by its type URL — and every subscriber whose predicate accepts the envelope
// receives it, in publication order. The Events service forwards envelopes
// from shims and clients into the exchange and streams them out to `ctr
// events`.
//
//   Exchange exchange;
//   Subscription sub = exchange.Subscribe(
//       [](const Envelope& e) { return e.topic == "/namespaces/create"; },
//       [&](const Envelope& e) { queue.Push(e); });
//   exchange.Publish("default", "/namespaces/create", url, bytes);  // queue sees it
//
// Delivery runs on the publisher's thread, so a sink must only hand the
// envelope off (to a queue, a reactor): never block, never publish. The exchange knows
// nothing of filters' syntax or protobuf: subscribers bring a predicate.
#ifndef BERTH_EVENTS_EXCHANGE_H_
#define BERTH_EVENTS_EXCHANGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace berth::events {

struct Envelope {
  absl::Time timestamp;
  std::string namespace_name;
  std::string topic;
  std::string type_url;  // e.g. "containerd.events.NamespaceCreate"
  std::string payload;   // the serialized event
};

// Topics are "/"-separated identifiers, as containerd requires:
// "/tasks/exit". InvalidArgument (quoting the topic) otherwise.
absl::Status ValidateTopic(absl::string_view topic);

class Exchange;

// Keeps one subscriber attached; it is detached when this goes. After the
// destructor returns, its sink is never called again.
class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&& other) noexcept;
  Subscription& operator=(Subscription&& other) noexcept;
  ~Subscription();

 private:
  friend class Exchange;
  Subscription(Exchange* exchange, uint64_t id) : exchange_(exchange), id_(id) {}
  void Detach();

  Exchange* exchange_ = nullptr;
  uint64_t id_ = 0;
};

class Exchange {
 public:
  using Predicate = std::function<bool(const Envelope&)>;
  using Sink = std::function<void(const Envelope&)>;

  Exchange() = default;
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // Stamps the envelope with the current time and delivers it.
  // InvalidArgument for a bad namespace or topic; nothing is delivered then.
  absl::Status Publish(absl::string_view namespace_name, absl::string_view topic,
                       absl::string_view type_url, std::string payload);

  // Delivers an envelope made elsewhere (a shim, another daemon) unchanged.
  // The same validation as Publish; a missing timestamp is an error too.
  absl::Status Forward(Envelope envelope);

  // REQUIRES: the exchange outlives the returned Subscription.
  Subscription Subscribe(Predicate accepts, Sink sink);

 private:
  friend class Subscription;
  struct Subscriber {
    Predicate accepts;
    Sink sink;
    // Held while the sink runs, so Detach can wait out a delivery in flight.
    absl::Mutex delivering;
    bool detached ABSL_GUARDED_BY(delivering) = false;
  };

  void Deliver(const Envelope& envelope);
  void Unsubscribe(uint64_t id);

  // Orders deliveries: envelopes reach every subscriber in one global order.
  absl::Mutex publish_mu_;
  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(publish_mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::pair<uint64_t, std::shared_ptr<Subscriber>>> subscribers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::events

#endif  // BERTH_EVENTS_EXCHANGE_H_
