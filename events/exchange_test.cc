#include "events/exchange.h"

#include <string>
#include <thread>
#include <vector>

#include "base/status_matchers.h"
#include "gtest/gtest.h"

namespace berth::events {
namespace {

using ::absl::StatusCode;

std::vector<std::string> Topics(const std::vector<Envelope>& envelopes) {
  std::vector<std::string> topics;
  for (const Envelope& e : envelopes) topics.push_back(e.topic);
  return topics;
}

TEST(Exchange, DeliversToMatchingSubscribersInOrder) {
  Exchange exchange;
  std::vector<Envelope> all, creates;
  Subscription a = exchange.Subscribe([](const Envelope&) { return true; },
                                      [&](const Envelope& e) { all.push_back(e); });
  Subscription b = exchange.Subscribe(
      [](const Envelope& e) { return e.topic == "/namespaces/create"; },
      [&](const Envelope& e) { creates.push_back(e); });
  ASSERT_THAT(exchange.Publish("default", "/namespaces/create", "t", "1"), IsOk());
  ASSERT_THAT(exchange.Publish("default", "/namespaces/delete", "t", "2"), IsOk());
  EXPECT_EQ(Topics(all), (std::vector<std::string>{"/namespaces/create", "/namespaces/delete"}));
  EXPECT_EQ(Topics(creates), (std::vector<std::string>{"/namespaces/create"}));
  EXPECT_EQ(all[0].namespace_name, "default");
  EXPECT_EQ(all[1].payload, "2");
  EXPECT_GT(all[0].timestamp, absl::UnixEpoch());
}

TEST(Exchange, DetachedSubscriberHearsNothingMore) {
  Exchange exchange;
  int heard = 0;
  {
    Subscription sub = exchange.Subscribe([](const Envelope&) { return true; },
                                          [&](const Envelope&) { ++heard; });
    ASSERT_THAT(exchange.Publish("default", "/a", "t", ""), IsOk());
  }
  ASSERT_THAT(exchange.Publish("default", "/a", "t", ""), IsOk());
  EXPECT_EQ(heard, 1);
}

TEST(Exchange, MovedSubscriptionStaysAttachedOnce) {
  Exchange exchange;
  int heard = 0;
  Subscription outer;
  {
    Subscription inner = exchange.Subscribe([](const Envelope&) { return true; },
                                            [&](const Envelope&) { ++heard; });
    outer = std::move(inner);
  }
  ASSERT_THAT(exchange.Publish("default", "/a", "t", ""), IsOk());
  EXPECT_EQ(heard, 1);
}

TEST(Exchange, ConcurrentPublishersReachEverySubscriberInOneOrder) {
  Exchange exchange;
  std::vector<std::string> first, second;
  Subscription a = exchange.Subscribe([](const Envelope&) { return true; },
                                      [&](const Envelope& e) { first.push_back(e.payload); });
  Subscription b = exchange.Subscribe([](const Envelope&) { return true; },
                                      [&](const Envelope& e) { second.push_back(e.payload); });
  std::vector<std::thread> publishers;
  for (int t = 0; t < 4; ++t) {
    publishers.emplace_back([&exchange, t] {
      for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(exchange.Publish("default", "/a", "t", std::to_string(t * 1000 + i)).ok());
      }
    });
  }
  for (std::thread& t : publishers) t.join();
  EXPECT_EQ(first.size(), 800u);
  EXPECT_EQ(first, second);
}

struct BadEvent {
  const char* name;
  const char* namespace_name;
  const char* topic;
  const char* type_url;
};

TEST(Exchange, RejectsBadEventsAndDeliversNothing) {
  const BadEvent cases[] = {
      {"EmptyTopic", "default", "", "t"},
      {"TopicWithoutLeadingSlash", "default", "tasks/exit", "t"},
      {"TopicTrailingSlash", "default", "/tasks/", "t"},
      {"TopicDoubleSlash", "default", "/tasks//exit", "t"},
      {"TopicWithSpace", "default", "/tasks/ex it", "t"},
      {"TopicRoot", "default", "/", "t"},
      {"EmptyNamespace", "", "/tasks/exit", "t"},
      {"NamespaceWithSlash", "a/b", "/tasks/exit", "t"},
      {"NoTypeUrl", "default", "/tasks/exit", ""},
  };
  Exchange exchange;
  int heard = 0;
  Subscription sub = exchange.Subscribe([](const Envelope&) { return true; },
                                        [&](const Envelope&) { ++heard; });
  for (const BadEvent& c : cases) {
    absl::Status status = exchange.Publish(c.namespace_name, c.topic, c.type_url, "");
    EXPECT_THAT(status, StatusIs(StatusCode::kInvalidArgument)) << c.name;
  }
  EXPECT_EQ(heard, 0);
}

TEST(Exchange, ForwardKeepsTheEnvelopeAndNeedsATimestamp) {
  Exchange exchange;
  std::vector<Envelope> heard;
  Subscription sub = exchange.Subscribe([](const Envelope&) { return true; },
                                        [&](const Envelope& e) { heard.push_back(e); });
  absl::Time when = absl::FromUnixSeconds(1700000000);
  ASSERT_THAT(exchange.Forward({when, "k8s.io", "/tasks/exit", "containerd.events.TaskExit", "x"}),
              IsOk());
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].timestamp, when);
  EXPECT_EQ(heard[0].namespace_name, "k8s.io");
  EXPECT_THAT(exchange.Forward({absl::InfinitePast(), "k8s.io", "/tasks/exit", "t", ""}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(heard.size(), 1u);
}

}  // namespace
}  // namespace berth::events
