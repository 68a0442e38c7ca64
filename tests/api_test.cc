// containerd's v1 API as clients meet it, run against berthd and against a
// real containerd (Debian's 1.6) with the same assertions: what passes on
// containerd is what containerd does, so berthd passing it interoperates.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "base/status_matchers.h"
#include "github.com/containerd/containerd/api/events/namespace.pb.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ApiTest : public ::testing::TestWithParam<Peer> {
 protected:
  ApiTest() : daemon_(GetParam()) {}
  void SetUp() override { ASSERT_THAT(daemon_.Start(), IsOk()); }

  CommandResult Ctr(const std::vector<std::string>& args) { return testing::Ctr(daemon_, args); }

  Daemon daemon_;
};

INSTANTIATE_TEST_SUITE_P(Peers, ApiTest, ::testing::Values(Peer::kBerthd, Peer::kContainerd),
                         [](const ::testing::TestParamInfo<Peer>& info) {
                           return PeerName(info.param);
                         });

TEST_P(ApiTest, CtrPluginsFilters) {
  CommandResult r = Ctr({"plugins", "ls", "-q", "type==io.containerd.grpc.v1,id~=^ver"});
  EXPECT_EQ(r.out, "version\n") << r.err;
  r = Ctr({"plugins", "ls", "-q", "id==version", "id==namespaces"});
  EXPECT_EQ(r.out, "namespaces\nversion\n") << r.err;
  r = Ctr({"plugins", "ls", "-q", "type==io.containerd.bogus"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  r = Ctr({"plugins", "ls", "type=="});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("[type==]: expected value or quoted: invalid argument"));
}

struct BadNamespaceCommand {
  const char* name;
  std::vector<std::string> args;
  const char* error;  // as ctr prints the gRPC status
};

TEST_P(ApiTest, CtrNamespacesCreateListLabelRemove) {
  CommandResult r = Ctr({"namespaces", "create", "team-a", "owner=alice"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"namespaces", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("team-a"));
  EXPECT_THAT(r.out, HasSubstr("owner=alice"));

  r = Ctr({"namespaces", "label", "team-a", "tier=gold", "owner="});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"namespaces", "ls", "-q"});
  EXPECT_EQ(r.out, "team-a\n");
  r = Ctr({"namespaces", "ls"});
  EXPECT_THAT(r.out, HasSubstr("tier=gold"));
  EXPECT_THAT(r.out, Not(HasSubstr("owner=")));

  r = Ctr({"namespaces", "rm", "team-a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "team-a\n");
  r = Ctr({"namespaces", "ls", "-q"});
  EXPECT_EQ(r.out, "");
}


TEST_P(ApiTest, BadNamespaceRequestsFailClearlyAndChangeNothing) {
  ASSERT_EQ(Ctr({"namespaces", "create", "kept", "a=b"}).exit_code, 0);
  const BadNamespaceCommand cases[] = {
      {"Duplicate", {"namespaces", "create", "kept"}, "already exists"},
      {"SlashInName", {"namespaces", "create", "a/b"}, "invalid argument"},
      {"LeadingDash", {"namespaces", "create", "-x"}, ""},
      {"TrailingDot", {"namespaces", "create", "x."}, "invalid argument"},
      {"TooLong", {"namespaces", "create", std::string(77, 'a')}, "invalid argument"},
  };
  for (const BadNamespaceCommand& c : cases) {
    CommandResult r = Ctr(c.args);
    EXPECT_NE(r.exit_code, 0) << c.name;
    EXPECT_THAT(r.err + r.out, HasSubstr(c.error)) << c.name;
  }
  CommandResult r = Ctr({"namespaces", "ls", "-q"});
  EXPECT_EQ(r.out, "kept\n");
  r = Ctr({"namespaces", "ls"});
  EXPECT_THAT(r.out, HasSubstr("a=b"));
}


TEST_P(ApiTest, NamespaceErrorsCarryContainerdCodes) {
  namespace api = containerd::services::namespaces::v1;
  auto stub = api::Namespaces::NewStub(Connect(daemon_));
  auto create = [&](const std::string& name) {
    api::CreateNamespaceRequest request;
    request.mutable_namespace_()->set_name(name);
    api::CreateNamespaceResponse response;
    grpc::ClientContext context;
    // As ctr does: containerd publishes the event in the caller's namespace.
    context.AddMetadata("containerd-namespace", "default");
    return stub->Create(&context, request, &response);
  };
  grpc::Status status = create("Has Space");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("Has Space"));
  ASSERT_TRUE(create("once").ok());
  status = create("once");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("once"));

  api::GetNamespaceRequest get;
  get.set_name("once");
  api::GetNamespaceResponse got;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Get(&context, get, &got).ok());
  EXPECT_EQ(got.namespace_().name(), "once");
}


TEST_P(ApiTest, NamespacesSurviveRestart) {
  ASSERT_EQ(Ctr({"namespaces", "create", "durable", "x=1"}).exit_code, 0);
  ASSERT_EQ(daemon_.Stop(), 0) << daemon_.Log();
  ASSERT_THAT(daemon_.Start(), IsOk());
  CommandResult r = Ctr({"namespaces", "ls"});
  EXPECT_THAT(r.out, HasSubstr("durable x=1"));
}


TEST_P(ApiTest, ServerUuidPersistsAcrossRestarts) {
  auto uuid = [&] {
    auto stub = containerd::services::introspection::v1::Introspection::NewStub(Connect(daemon_));
    grpc::ClientContext context;
    google::protobuf::Empty empty;
    containerd::services::introspection::v1::ServerResponse response;
    EXPECT_TRUE(stub->Server(&context, empty, &response).ok());
    return response.uuid();
  };
  std::string first = uuid();
  EXPECT_EQ(first.size(), 36u);
  ASSERT_EQ(daemon_.Stop(), 0);
  ASSERT_THAT(daemon_.Start(), IsOk());
  EXPECT_EQ(uuid(), first);
}


TEST_P(ApiTest, CtrEventsSeesNamespaceEvents) {
  Process events({"ctr", "--address", daemon_.address(), "events"});
  // Subscription is asynchronous: publish until the subscriber has heard one.
  bool heard = false;
  for (int i = 0; i < 50 && !heard; ++i) {
    std::string name = absl::StrCat("watched-", i);
    ASSERT_EQ(Ctr({"namespaces", "create", name}).exit_code, 0);
    heard = events.WaitForOutput("/namespaces/create", absl::Milliseconds(100));
  }
  ASSERT_TRUE(heard) << events.Output();
  ASSERT_EQ(Ctr({"namespaces", "label", "watched-0", "k=v"}).exit_code, 0);
  ASSERT_EQ(Ctr({"namespaces", "rm", "watched-0"}).exit_code, 0);
  EXPECT_TRUE(events.WaitForOutput("/namespaces/delete", absl::Seconds(10))) << events.Output();
  std::string output = events.Output();
  EXPECT_THAT(output, HasSubstr("/namespaces/update"));
  EXPECT_THAT(output, HasSubstr("\"name\":\"watched-0\""));
  events.Stop(SIGTERM);
}


TEST_P(ApiTest, CtrEventsFilterSelectsTopicAndEventFields) {
  // One filter string: its selectors are ANDed (several strings are ORed).
  Process events({"ctr", "--address", daemon_.address(), "events",
                  "topic==\"/namespaces/delete\",event.name~=\"^keep\""});
  bool heard = false;
  for (int i = 0; i < 50 && !heard; ++i) {
    std::string name = absl::StrCat("keep-", i);
    ASSERT_EQ(Ctr({"namespaces", "create", name}).exit_code, 0);
    ASSERT_EQ(Ctr({"namespaces", "rm", name}).exit_code, 0);
    heard = events.WaitForOutput("/namespaces/delete", absl::Milliseconds(100));
  }
  ASSERT_TRUE(heard) << events.Output();
  ASSERT_EQ(Ctr({"namespaces", "create", "other"}).exit_code, 0);
  ASSERT_EQ(Ctr({"namespaces", "rm", "other"}).exit_code, 0);
  ASSERT_EQ(Ctr({"namespaces", "create", "keep-last"}).exit_code, 0);
  ASSERT_EQ(Ctr({"namespaces", "rm", "keep-last"}).exit_code, 0);
  ASSERT_TRUE(events.WaitForOutput("keep-last", absl::Seconds(10))) << events.Output();
  std::string output = events.Output();
  EXPECT_THAT(output, Not(HasSubstr("/namespaces/create")));
  EXPECT_THAT(output, Not(HasSubstr("\"other\"")));
  events.Stop(SIGTERM);
}


TEST_P(ApiTest, CtrEventsWithBadFilterFails) {
  CommandResult r = RunCommand({"timeout", "10", "ctr", "--address", daemon_.address(), "events", "topic=="});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("[topic==]: expected value or quoted"));
}


// grpc.health.v1.Health/Check with an empty request (service ""): the answer
// is HealthCheckResponse{status: SERVING}, field 1 = 1, on the wire 08 01.
TEST_P(ApiTest, HealthCheckSaysServing) {
  grpc::GenericStub stub(Connect(daemon_));
  grpc::ClientContext context;
  grpc::Slice no_bytes("");
  grpc::ByteBuffer request(&no_bytes, 1), response;
  grpc::Status status;
  absl::Mutex mu;
  bool done = false;
  grpc::StubOptions options;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", options, &request, &response,
                 [&](grpc::Status s) {
                   absl::MutexLock lock(&mu);
                   status = s;
                   done = true;
                 });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&done));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}


// Publish and Forward through the Events service reach `ctr events`; bad
// topics and missing namespaces are refused.
TEST_P(ApiTest, PublishAndForwardReachSubscribers) {
  namespace api = containerd::services::events::v1;
  auto stub = api::Events::NewStub(Connect(daemon_));
  containerd::events::NamespaceCreate event;
  event.set_name("published");
  auto publish = [&](const std::string& topic, const char* ns) {
    api::PublishRequest request;
    request.set_topic(topic);
    request.mutable_event()->set_type_url("containerd.events.NamespaceCreate");
    request.mutable_event()->set_value(event.SerializeAsString());
    google::protobuf::Empty empty;
    grpc::ClientContext context;
    if (ns != nullptr) context.AddMetadata("containerd-namespace", ns);
    return stub->Publish(&context, request, &empty);
  };
  Process events({"ctr", "--address", daemon_.address(), "events", "topic~=\"^/test/\""});
  bool heard = false;
  for (int i = 0; i < 50 && !heard; ++i) {
    ASSERT_TRUE(publish("/test/publish", "team").ok());
    heard = events.WaitForOutput("/test/publish", absl::Milliseconds(100));
  }
  ASSERT_TRUE(heard) << events.Output();
  EXPECT_THAT(events.Output(), HasSubstr("team /test/publish {\"name\":\"published\"}"));

  api::ForwardRequest forward;
  api::Envelope* envelope = forward.mutable_envelope();
  envelope->mutable_timestamp()->set_seconds(1700000000);
  envelope->set_namespace_("elsewhere");
  envelope->set_topic("/test/forward");
  envelope->mutable_event()->set_type_url("containerd.events.NamespaceCreate");
  envelope->mutable_event()->set_value(event.SerializeAsString());
  google::protobuf::Empty empty;
  grpc::ClientContext context;
  ASSERT_TRUE(stub->Forward(&context, forward, &empty).ok());
  EXPECT_TRUE(events.WaitForOutput("elsewhere /test/forward", absl::Seconds(10))) << events.Output();
  EXPECT_THAT(events.Output(), HasSubstr("2023-11-14 22:13:20 +0000 UTC elsewhere /test/forward"));

  EXPECT_EQ(publish("no-slash", "team").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(publish("/bad topic", "team").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(publish("/test/x", nullptr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  events.Stop(SIGTERM);
  EXPECT_THAT(events.Output(), Not(HasSubstr("no-slash")));
}

// A daemon stopped while a subscriber streams still stops cleanly, and the
// subscriber's stream ends.
TEST_P(ApiTest, StopsCleanlyWithASubscriberAttached) {
  Process events({"ctr", "--address", daemon_.address(), "events"});
  bool heard = false;
  for (int i = 0; i < 50 && !heard; ++i) {
    ASSERT_EQ(Ctr({"namespaces", "create", absl::StrCat("n", i)}).exit_code, 0);
    heard = events.WaitForOutput("/namespaces/create", absl::Milliseconds(100));
  }
  ASSERT_TRUE(heard);
  EXPECT_EQ(daemon_.Stop(), 0) << daemon_.Log();
  EXPECT_TRUE(events.Wait(absl::Seconds(10)).has_value()) << "ctr events still runs";
}

}  // namespace
}  // namespace berth::testing
