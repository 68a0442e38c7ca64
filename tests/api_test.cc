// containerd's v1 API as clients meet it, run against berthd and against a
// real containerd (Debian's 1.6) with the same assertions: what passes on
// containerd is what containerd does, so berthd passing it interoperates.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_matchers.h"
#include "github.com/containerd/containerd/api/events/namespace.pb.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/content_client.h"
#include "tests/harness.h"

namespace berth::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class ApiTest : public ::testing::TestWithParam<Peer> {
 protected:
  ApiTest() : daemon_(GetParam()) {}
  void SetUp() override { ASSERT_THAT(daemon_.Start(), IsOk()); }

  CommandResult Ctr(const std::vector<std::string>& args) { return testing::Ctr(daemon_, args); }

  // Runs a garbage collection in namespace `ns` and waits for it. After an
  // import containerd collects in the background, and a collection takes
  // snapshots nothing holds — such as one `ctr snapshots view` makes just
  // then; waiting for it first keeps a test's own snapshots.
  void Collect(const std::string& ns = "default") {
    Ctr({"-n", ns, "leases", "create", "--id", "collect"});
    Ctr({"-n", ns, "leases", "rm", "--sync", "collect"});
  }

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
  CommandResult r =
      RunCommand({"timeout", "10", "ctr", "--address", daemon_.address(), "events", "topic=="});
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
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
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
  EXPECT_TRUE(events.WaitForOutput("elsewhere /test/forward", absl::Seconds(10)))
      << events.Output();
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

namespace content_api = ::containerd::services::content::v1;

TEST_P(ApiTest, CtrContentIngestGetLabelRemove) {
  const std::string data = RandomBytes(3 << 20);
  const std::string digest = Sha256(data);
  CommandResult r =
      RunCommand({"ctr", "--address", daemon_.address(), "content", "ingest", "upload-1"},
                 absl::Seconds(60), data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"content", "ls", "-q"});
  EXPECT_THAT(r.out, HasSubstr(digest)) << r.err;
  r = Ctr({"content", "get", digest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out == data) << "ctr content get returned " << r.out.size() << " bytes";

  r = Ctr({"content", "label", digest, "owner=alice", "containerd.io/gc.root=now"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"content", "ls"});
  EXPECT_THAT(r.out, HasSubstr("owner=alice"));
  EXPECT_THAT(Ctr({"content", "ls", "-q", "labels.owner==alice"}).out, HasSubstr(digest));
  EXPECT_EQ(Ctr({"content", "ls", "-q", "labels.owner==bob"}).out, "");

  // The blob is shared on disk but another namespace does not see it.
  EXPECT_EQ(ContentInfo(daemon_, "other", digest).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(ContentInfo(daemon_, "default", digest).ok());

  r = Ctr({"content", "rm", digest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Ctr({"content", "ls", "-q"}).out, "");
  EXPECT_EQ(ContentInfo(daemon_, "default", digest).error_code(), grpc::StatusCode::NOT_FOUND);
  r = Ctr({"content", "get", digest});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("not found"));
}

struct BadContentCall {
  const char* name;
  std::vector<std::string> args;
  const char* error;
};

TEST_P(ApiTest, BadContentRequestsFailClearly) {
  const BadContentCall cases[] = {
      {"InfoOfBadDigest", {"content", "get", "sha256:xyz"}, "invalid"},
      {"InfoOfUppercaseDigest", {"content", "get", "sha256:" + std::string(64, 'A')}, "invalid"},
      {"GetMissing", {"content", "get", "sha256:" + std::string(64, 'a')}, "not found"},
      {"LabelMissing", {"content", "label", "sha256:" + std::string(64, 'a'), "a=b"}, "not found"},
  };
  for (const BadContentCall& c : cases) {
    CommandResult r = Ctr(c.args);
    EXPECT_NE(r.exit_code, 0) << c.name;
    EXPECT_THAT(r.err, HasSubstr(c.error)) << c.name;
  }
}

TEST_P(ApiTest, CommitWithWrongDigestKeepsTheIngestForRetry) {
  const std::string data = RandomBytes(1 << 20);
  const std::string wrong = "sha256:" + std::string(64, 'a');
  // Unleased content may be collected at any moment.
  ASSERT_EQ(Ctr({"leases", "create", "--id", "hold"}).exit_code, 0);
  grpc::Status status = WriteBlob(daemon_, "default", "hold", "retry-me", data, wrong);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(ContentInfo(daemon_, "default", wrong).error_code(), grpc::StatusCode::NOT_FOUND);
  CommandResult r = Ctr({"content", "active"});
  EXPECT_THAT(r.out, HasSubstr("retry-me"));
  // The retry resumes at the offset reached and commits.
  ASSERT_TRUE(WriteBlob(daemon_, "default", "hold", "retry-me", data, Sha256(data)).ok());
  EXPECT_TRUE(ContentInfo(daemon_, "default", Sha256(data)).ok());
  EXPECT_THAT(Ctr({"content", "active"}).out, Not(HasSubstr("retry-me")));
}

// The content errors containerd's clients act on, with containerd's codes:
// a ref another stream holds is Unavailable (retry), a Read past the end is
// OutOfRange, committing content the namespace has is AlreadyExists and
// releases the ingest; a client gone mid-write leaves a resumable ingest.
TEST_P(ApiTest, ContentErrorsCarryContainerdCodes) {
  const std::string data = RandomBytes(1 << 16);
  const std::string digest = Sha256(data);
  ASSERT_EQ(Ctr({"leases", "create", "--id", "hold"}).exit_code, 0);
  ASSERT_TRUE(WriteBlob(daemon_, "default", "hold", "first", data).ok());

  auto stub = content_api::Content::NewStub(Connect(daemon_));
  {
    // A stream holds "busy" until it ends; the client then goes away
    // without a commit, as a killed client would.
    auto context = NamespacedContext("default");
    auto holder = stub->Write(context.get());
    content_api::WriteContentRequest request;
    content_api::WriteContentResponse response;
    request.set_action(content_api::WRITE);
    request.set_ref("busy");
    request.set_total(static_cast<int64_t>(data.size()));
    request.set_data(data.substr(0, 1000));
    ASSERT_TRUE(holder->Write(request) && holder->Read(&response));
    EXPECT_EQ(response.offset(), 1000);
    grpc::Status second = WriteBlob(daemon_, "default", "", "busy", data);
    EXPECT_EQ(second.error_code(), grpc::StatusCode::UNAVAILABLE) << second.error_message();
    context->TryCancel();
    holder->Finish();
  }
  // The ingest stays with what was written; once the daemon has seen the
  // client go, the ref can be taken again.
  content_api::StatusResponse ingest;
  for (int i = 0; i < 100; ++i) {
    content_api::StatusRequest request;
    request.set_ref("busy");
    ingest.Clear();
    ASSERT_TRUE(stub->Status(NamespacedContext("default").get(), request, &ingest).ok());
    if (WriteWithoutCommit(daemon_, "default", "", "busy", "").ok()) break;
    ::usleep(20'000);
  }
  EXPECT_EQ(ingest.status().offset(), 1000);

  content_api::ReadContentRequest read;
  read.set_digest(digest);
  read.set_offset(static_cast<int64_t>(data.size()) + 1);
  auto context = NamespacedContext("default");
  auto reader = stub->Read(context.get(), read);
  content_api::ReadContentResponse chunk;
  while (reader->Read(&chunk)) {
  }
  grpc::Status past_end = reader->Finish();
  EXPECT_EQ(past_end.error_code(), grpc::StatusCode::OUT_OF_RANGE) << past_end.error_message();

  grpc::Status again = WriteBlob(daemon_, "default", "hold", "again", data, digest);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::ALREADY_EXISTS) << again.error_message();
  EXPECT_THAT(Ctr({"content", "active"}).out, Not(HasSubstr("again")));
}

// Deleting content publishes /content/delete with its digest.
TEST_P(ApiTest, ContentDeleteIsPublished) {
  Process events({"ctr", "--address", daemon_.address(), "events", "topic==\"/content/delete\""});
  ASSERT_EQ(Ctr({"leases", "create", "--id", "hold"}).exit_code, 0);
  bool heard = false;
  std::string digest;
  // Subscription is asynchronous: delete until the subscriber has heard one.
  for (int i = 0; i < 50 && !heard; ++i) {
    const std::string data = RandomBytes(64);
    digest = Sha256(data);
    ASSERT_TRUE(WriteBlob(daemon_, "default", "hold", absl::StrCat("event-", i), data).ok());
    ASSERT_EQ(Ctr({"content", "rm", digest}).exit_code, 0);
    heard = events.WaitForOutput(digest, absl::Milliseconds(100));
  }
  EXPECT_TRUE(heard) << events.Output();
  EXPECT_THAT(events.Output(), HasSubstr("/content/delete"));
  events.Stop(SIGTERM);
}

TEST_P(ApiTest, CtrLeasesCreateListRemove) {
  CommandResult r = Ctr({"leases", "create", "--id", "hold-1", "team=a"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"leases", "ls"});
  EXPECT_THAT(r.out, HasSubstr("hold-1"));
  EXPECT_THAT(r.out, HasSubstr("team=a"));
  EXPECT_EQ(Ctr({"leases", "ls", "-q", "labels.team==b"}).out, "");
  // Ids as ctr generates them ("1700000000--B3F") and other odd ones.
  for (const std::string id : {"1700000000--B3F", "bad/id"}) {
    r = Ctr({"leases", "create", "--id", id});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Ctr({"leases", "rm", id}).exit_code, 0);
  }
  r = Ctr({"leases", "create", "--id", "hold-1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  ASSERT_EQ(Ctr({"leases", "rm", "hold-1"}).exit_code, 0);
  EXPECT_EQ(Ctr({"leases", "ls", "-q"}).out, "");
}

// Content written under a lease survives collections while the lease lives
// and is collected once it is deleted.
TEST_P(ApiTest, LeaseHoldsContentUntilItIsDeleted) {
  ASSERT_EQ(Ctr({"leases", "create", "--id", "hold"}).exit_code, 0);
  ASSERT_EQ(Ctr({"leases", "create", "--id", "other"}).exit_code, 0);
  const std::string data = RandomBytes(1 << 20);
  const std::string digest = Sha256(data);
  ASSERT_TRUE(WriteBlob(daemon_, "default", "hold", "held", data).ok());
  // Deleting another lease with --sync runs a whole collection.
  ASSERT_EQ(Ctr({"leases", "rm", "--sync", "other"}).exit_code, 0);
  EXPECT_TRUE(ContentInfo(daemon_, "default", digest).ok());
  ASSERT_EQ(Ctr({"leases", "rm", "--sync", "hold"}).exit_code, 0);
  EXPECT_EQ(ContentInfo(daemon_, "default", digest).error_code(), grpc::StatusCode::NOT_FOUND);
}

// kill -9 of the daemon in the middle of a Write: after a restart the ingest
// reports the offset every acknowledged chunk reached, the write resumes
// there, and the committed blob matches its digest.
TEST_P(ApiTest, WriteResumesAfterTheDaemonIsKilled) {
  const std::string data = RandomBytes(24 << 20);
  const std::string digest = Sha256(data);
  constexpr int64_t kAcknowledged = 8 << 20;
  {
    auto stub = content_api::Content::NewStub(Connect(daemon_));
    auto context = NamespacedContext("default");
    auto stream = stub->Write(context.get());
    content_api::WriteContentRequest request;
    content_api::WriteContentResponse response;
    request.set_action(content_api::STAT);
    request.set_ref("crash");
    request.set_total(static_cast<int64_t>(data.size()));
    ASSERT_TRUE(stream->Write(request) && stream->Read(&response));
    for (int64_t offset = 0; offset < kAcknowledged; offset += 1 << 20) {
      request.set_action(content_api::WRITE);
      request.set_offset(offset);
      request.set_data(data.substr(offset, 1 << 20));
      ASSERT_TRUE(stream->Write(request) && stream->Read(&response));
      ASSERT_EQ(response.offset(), offset + (1 << 20));
    }
    EXPECT_EQ(daemon_.Stop(SIGKILL), 128 + SIGKILL);
    context->TryCancel();
  }
  ASSERT_THAT(daemon_.Start(), IsOk());
  auto stub = content_api::Content::NewStub(Connect(daemon_));
  content_api::StatusRequest request;
  request.set_ref("crash");
  content_api::StatusResponse response;
  grpc::Status status = stub->Status(NamespacedContext("default").get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status().offset(), kAcknowledged);
  // Unleased content may be collected at any moment.
  ASSERT_EQ(Ctr({"leases", "create", "--id", "hold"}).exit_code, 0);
  ASSERT_TRUE(WriteBlob(daemon_, "default", "hold", "crash", data, digest).ok());
  CommandResult r = Ctr({"content", "get", digest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out == data);
}

// ctr snapshots, end to end: a layer written through its mounts, committed,
// seen through a child's overlay and a view; listing, info, usage, labels;
// removal in the only order that works.
TEST_P(ApiTest, CtrSnapshotsPrepareWriteCommitViewRemove) {
  TempDir dir;
  const std::string target = dir.path() + "/mnt";
  CommandResult r = Ctr({"snapshots", "prepare", "base"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"snapshots", "mounts", target, "base"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = InMountedSnapshot(r.out, target,
                        "echo layer-one > $T/hello; mkdir $T/dir; echo gone > $T/dir/old");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Ctr({"snapshots", "commit", "layer1", "base"}).exit_code, 0);

  ASSERT_EQ(Ctr({"snapshots", "prepare", "top", "layer1"}).exit_code, 0);
  r = Ctr({"snapshots", "mounts", target, "top"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string top_mount = r.out;
  r = InMountedSnapshot(top_mount, target, "cat $T/hello; rm $T/dir/old; echo two > $T/second");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "layer-one\n");
  ASSERT_EQ(Ctr({"snapshots", "commit", "layer2", "top"}).exit_code, 0);

  ASSERT_EQ(Ctr({"snapshots", "view", "look", "layer2"}).exit_code, 0);
  r = Ctr({"snapshots", "mounts", target, "look"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = InMountedSnapshot(
      r.out, target,
      "cat $T/hello $T/second; ls -A $T/dir; touch $T/new 2>/dev/null && echo writable || true");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "layer-one\ntwo\n");  // the whiteout hides dir/old; the view is read-only

  r = Ctr({"snapshots", "ls"});
  EXPECT_THAT(r.out, ContainsRegex("layer1 +Committed"));
  EXPECT_THAT(r.out, ContainsRegex("layer2 +layer1 +Committed"));
  EXPECT_THAT(r.out, ContainsRegex("look +layer2 +View"));
  r = Ctr({"snapshots", "tree"});
  EXPECT_THAT(r.out, HasSubstr("layer1"));
  EXPECT_THAT(r.out, HasSubstr("layer2"));
  r = Ctr({"snapshots", "info", "layer2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"Parent\": \"layer1\""));
  EXPECT_THAT(r.out, HasSubstr("\"Kind\": \"Committed\""));
  ASSERT_EQ(Ctr({"snapshots", "label", "layer2", "team=a"}).exit_code, 0);
  EXPECT_THAT(Ctr({"snapshots", "info", "layer2"}).out, HasSubstr("\"team\": \"a\""));
  r = Ctr({"snapshots", "usage", "layer1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("layer1"));

  // A parent with children stays.
  r = Ctr({"snapshots", "rm", "layer1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(Ctr({"snapshots", "ls"}).out, HasSubstr("layer1"));
  ASSERT_EQ(Ctr({"snapshots", "rm", "look"}).exit_code, 0);
  ASSERT_EQ(Ctr({"snapshots", "rm", "layer2"}).exit_code, 0);
  ASSERT_EQ(Ctr({"snapshots", "rm", "layer1"}).exit_code, 0);
  r = Ctr({"snapshots", "ls"});
  EXPECT_THAT(r.out, Not(HasSubstr("layer")));
}

// Each bad request fails with containerd's code and changes nothing.
TEST_P(ApiTest, BadSnapshotRequestsFailClearly) {
  ASSERT_EQ(Ctr({"snapshots", "prepare", "active"}).exit_code, 0);
  ASSERT_EQ(Ctr({"snapshots", "prepare", "base"}).exit_code, 0);
  ASSERT_EQ(Ctr({"snapshots", "commit", "committed", "base"}).exit_code, 0);
  ASSERT_EQ(Ctr({"snapshots", "view", "view", "committed"}).exit_code, 0);
  const std::string before = Ctr({"snapshots", "ls"}).out;
  struct Case {
    std::vector<std::string> args;
    std::string error;
  } cases[] = {
      {{"snapshots", "prepare", "x", "missing-parent"}, "not found"},
      {{"snapshots", "prepare", "active"}, "already exists"},
      {{"snapshots", "commit", "c2", "view"}, "failed precondition"},
      {{"snapshots", "commit", "c3", "committed"}, "failed precondition"},
      {{"snapshots", "commit", "committed", "active"}, "already exists"},
      {{"snapshots", "rm", "committed"}, "failed precondition"},
      {{"snapshots", "rm", "nope"}, "not found"},
      {{"snapshots", "info", "nope"}, "not found"},
      {{"snapshots", "mounts", "/tmp/unused", "nope"}, "not found"},
      {{"snapshots", "--snapshotter", "zfs-nope", "ls"}, "snapshotter"},
  };
  for (const Case& c : cases) {
    CommandResult r = Ctr(c.args);
    EXPECT_NE(r.exit_code, 0) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(r.err, HasSubstr(c.error)) << absl::StrJoin(c.args, " ");
  }
  EXPECT_EQ(Ctr({"snapshots", "ls"}).out, before);
}

// Each namespace and each snapshotter has its own keys; a request's lease
// holds the snapshot it prepares.
TEST_P(ApiTest, SnapshotsAreKeptPerNamespaceAndSnapshotter) {
  ASSERT_EQ(Ctr({"-n", "team-a", "snapshots", "prepare", "shared-key"}).exit_code, 0);
  EXPECT_THAT(Ctr({"-n", "team-b", "snapshots", "ls"}).out, Not(HasSubstr("shared-key")));
  ASSERT_EQ(Ctr({"-n", "team-b", "snapshots", "prepare", "shared-key"}).exit_code, 0);
  ASSERT_EQ(Ctr({"-n", "team-b", "snapshots", "rm", "shared-key"}).exit_code, 0);
  EXPECT_THAT(Ctr({"-n", "team-a", "snapshots", "ls"}).out, HasSubstr("shared-key"));
  EXPECT_THAT(Ctr({"namespaces", "ls", "-q"}).out, HasSubstr("team-a"));

  CommandResult r = Ctr({"-n", "team-a", "snapshots", "--snapshotter", "native", "prepare", "n1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Ctr({"-n", "team-a", "snapshots", "--snapshotter", "native", "ls"}).out,
              HasSubstr("n1"));
  EXPECT_THAT(Ctr({"-n", "team-a", "snapshots", "ls"}).out, Not(HasSubstr("n1")));

  ASSERT_EQ(Ctr({"-n", "team-a", "leases", "create", "--id", "hold"}).exit_code, 0);
  namespace snapshots_api = ::containerd::services::snapshots::v1;
  auto stub = snapshots_api::Snapshots::NewStub(Connect(daemon_));
  snapshots_api::PrepareSnapshotRequest prepare;
  prepare.set_snapshotter("overlayfs");
  prepare.set_key("leased");
  snapshots_api::PrepareSnapshotResponse prepared;
  grpc::Status status =
      stub->Prepare(NamespacedContext("team-a", "hold").get(), prepare, &prepared);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(prepared.mounts_size(), 1);
  EXPECT_EQ(prepared.mounts(0).type(), "bind");
  auto leases = ::containerd::services::leases::v1::Leases::NewStub(Connect(daemon_));
  ::containerd::services::leases::v1::ListResourcesRequest list;
  list.set_id("hold");
  ::containerd::services::leases::v1::ListResourcesResponse resources;
  status = leases->ListResources(NamespacedContext("team-a").get(), list, &resources);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(resources.resources_size(), 1);
  EXPECT_EQ(resources.resources(0).type(), "snapshots/overlayfs");
  EXPECT_EQ(resources.resources(0).id(), "leased");
}

// Prepare, commit and remove publish their events.
TEST_P(ApiTest, SnapshotChangesArePublished) {
  Process events({"ctr", "--address", daemon_.address(), "events", "topic~=\"^/snapshot/\""});
  bool heard = false;
  // Subscription is asynchronous: prepare until the subscriber has heard one.
  for (int i = 0; i < 50 && !heard; ++i) {
    ASSERT_EQ(Ctr({"snapshots", "prepare", absl::StrCat("probe-", i)}).exit_code, 0);
    heard = events.WaitForOutput("/snapshot/prepare", absl::Milliseconds(100));
  }
  ASSERT_TRUE(heard) << events.Output();
  ASSERT_EQ(Ctr({"snapshots", "commit", "done", "probe-0"}).exit_code, 0);
  ASSERT_EQ(Ctr({"snapshots", "rm", "done"}).exit_code, 0);
  EXPECT_TRUE(events.WaitForOutput("/snapshot/remove", absl::Seconds(10))) << events.Output();
  const std::string output = events.Output();
  EXPECT_THAT(output, HasSubstr("/snapshot/commit"));
  EXPECT_THAT(output, HasSubstr("\"name\":\"done\""));
  EXPECT_THAT(output, HasSubstr("\"key\":\"done\""));
  events.Stop(SIGTERM);
}

// A namespace holding snapshots cannot be deleted; once they go, it can.
TEST_P(ApiTest, NamespaceWithSnapshotsCannotBeDeleted) {
  ASSERT_EQ(Ctr({"-n", "busy", "snapshots", "prepare", "k"}).exit_code, 0);
  CommandResult r = Ctr({"namespaces", "rm", "busy"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("must be empty"));
  EXPECT_THAT(Ctr({"-n", "busy", "snapshots", "ls"}).out, HasSubstr("k"));
  ASSERT_EQ(Ctr({"-n", "busy", "snapshots", "rm", "k"}).exit_code, 0);
  r = Ctr({"namespaces", "rm", "busy"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Ctr({"namespaces", "ls", "-q"}).out, Not(HasSubstr("busy")));
}

// The keys of the committed snapshots in a `ctr snapshots ls` listing.
std::vector<std::string> CommittedSnapshots(const std::string& listing) {
  std::vector<std::string> keys;
  for (absl::string_view line : absl::StrSplit(listing, '\n')) {
    if (absl::StrContains(line, "Committed")) keys.emplace_back(line.substr(0, line.find(' ')));
  }
  return keys;
}

// Garbage collection takes the snapshots nothing refers to: an image's
// layers go with the image, unless a snapshot labelled containerd.io/
// gc.root sits on them; an unlabelled one goes; the layers' directories
// leave the disk.
TEST_P(ApiTest, CollectionTakesTheSnapshotsNothingRefersTo) {
  TempDir dir;
  CommandResult r = ImportBusybox(daemon_, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Collect();
  // The image holds its layers through the label ctr set on its config.
  const std::vector<std::string> layers = CommittedSnapshots(Ctr({"snapshots", "ls"}).out);
  ASSERT_FALSE(layers.empty());
  const std::string top = layers.back();

  // ctr labels what it prepares containerd.io/gc.root; "loose" loses it.
  ASSERT_EQ(Ctr({"snapshots", "prepare", "rooted", top}).exit_code, 0);
  EXPECT_THAT(Ctr({"snapshots", "info", "rooted"}).out, HasSubstr("containerd.io/gc.root"));
  ASSERT_EQ(Ctr({"snapshots", "prepare", "loose", top}).exit_code, 0);
  ASSERT_EQ(Ctr({"-n", "other", "snapshots", "prepare", "loose"}).exit_code, 0);
  for (const std::string ns : {"default", "other"}) {
    ASSERT_EQ(Ctr({"-n", ns, "snapshots", "label", "loose", "containerd.io/gc.root="}).exit_code,
              0);
  }
  ASSERT_EQ(Ctr({"images", "rm", "--sync", kBusybox}).exit_code, 0);
  r = Ctr({"snapshots", "ls"});
  EXPECT_THAT(r.out, HasSubstr("rooted"));
  EXPECT_THAT(r.out, Not(HasSubstr("loose")));
  EXPECT_EQ(CommittedSnapshots(r.out), layers) << "the rooted snapshot keeps its parents";
  EXPECT_THAT(Ctr({"-n", "other", "snapshots", "ls"}).out, Not(HasSubstr("loose")))
      << "a collection in one namespace is a collection in all";

  // Without its label the rooted snapshot goes, and its parents with it.
  ASSERT_EQ(Ctr({"snapshots", "label", "rooted", "containerd.io/gc.root="}).exit_code, 0);
  Collect();
  EXPECT_THAT(Ctr({"snapshots", "ls"}).out, Not(HasSubstr("rooted")));
  EXPECT_THAT(CommittedSnapshots(Ctr({"snapshots", "ls"}).out), ::testing::IsEmpty());
  const std::string snapshots_dir =
      daemon_.root() + "/io.containerd.snapshotter.v1.overlayfs/snapshots";
  // Both daemons delete the directories after the call that collects.
  std::string left;
  for (int i = 0; i < 100; ++i) {
    r = RunCommand({"ls", "-A", snapshots_dir});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    left = r.out;
    if (left.empty()) break;
    ::usleep(50'000);
  }
  EXPECT_EQ(left, "") << "directories of collected snapshots";
}

// An OCI archive built in the test, imported without unpacking: the image
// and its blobs are listed and complete, can be labelled, tagged, exported
// and removed, and its content goes with the last image that held it.
TEST_P(ApiTest, CtrImagesImportListTagExportRemove) {
  TempDir dir;
  const std::string archive = dir.path() + "/busybox.tar";
  CommandResult made = MakeImageArchive("oci", archive, "docker.io/library/busybox:latest");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string manifest(absl::StripTrailingAsciiWhitespace(made.out));
  absl::StatusOr<std::unique_ptr<Process>> subscribed =
      SubscribeEvents(daemon_, "topic~=\"^/images/\"");
  ASSERT_THAT(subscribed, IsOk());
  Process& events = **subscribed;

  CommandResult r = Ctr({"images", "import", "--no-unpack", archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"images", "ls"});
  EXPECT_THAT(r.out, HasSubstr("docker.io/library/busybox:latest"));
  EXPECT_THAT(r.out, HasSubstr(manifest));
  r = Ctr({"images", "check"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("complete (2/2)"));
  EXPECT_THAT(Ctr({"images", "ls", "-q", "name~=busybox"}).out, HasSubstr("busybox"));
  EXPECT_EQ(Ctr({"images", "ls", "-q", "name==nothing"}).out, "");

  ASSERT_EQ(Ctr({"images", "label", "docker.io/library/busybox:latest", "team=a"}).exit_code, 0);
  EXPECT_THAT(Ctr({"images", "ls"}).out, HasSubstr("team=a"));
  ASSERT_EQ(
      Ctr({"images", "tag", "docker.io/library/busybox:latest", "example.com/copy:1"}).exit_code,
      0);
  EXPECT_THAT(Ctr({"images", "ls", "-q"}).out, HasSubstr("example.com/copy:1"));

  const std::string exported = dir.path() + "/exported.tar";
  r = Ctr({"images", "export", exported, "docker.io/library/busybox:latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand({"tar", "tf", exported});
  EXPECT_THAT(r.out, HasSubstr("blobs/sha256/" + manifest.substr(7)));

  // A missing image is named, and nothing changes.
  r = Ctr({"images", "rm", "nothing:here"});
  EXPECT_THAT(r.err, HasSubstr("nothing:here"));
  EXPECT_THAT(Ctr({"images", "ls", "-q"}).out, HasSubstr("example.com/copy:1"));

  ASSERT_EQ(Ctr({"images", "rm", "--sync", "example.com/copy:1"}).exit_code, 0);
  EXPECT_THAT(Ctr({"content", "ls", "-q"}).out, HasSubstr(manifest)) << "still held";
  ASSERT_EQ(Ctr({"images", "rm", "--sync", "docker.io/library/busybox:latest"}).exit_code, 0);
  EXPECT_EQ(Ctr({"images", "ls", "-q"}).out, "");
  EXPECT_EQ(Ctr({"content", "ls", "-q"}).out, "") << "collected with the last image";

  EXPECT_TRUE(events.WaitForOutput("/images/delete", absl::Seconds(10))) << events.Output();
  EXPECT_THAT(events.Output(), HasSubstr("/images/create"));
  EXPECT_THAT(events.Output(), HasSubstr("/images/update"));
  events.Stop(SIGTERM);
}

// `ctr images import` unpacks through Diff.Apply into a committed snapshot
// whose files are the layer's; a container-like change on top comes back
// out of Diff.Diff (`ctr snapshots diff`) as a layer naming just the change.
TEST_P(ApiTest, CtrImagesImportUnpacksAndSnapshotsDiffWritesALayer) {
  TempDir dir;
  CommandResult r = ImportBusybox(daemon_, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"images", "check"});
  EXPECT_THAT(r.out, ContainsRegex("complete \\(2/2\\).* true"));
  r = Ctr({"snapshots", "ls"});
  std::string layer;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StrContains(line, "Committed")) layer = std::string(line.substr(0, line.find(' ')));
  }
  ASSERT_THAT(layer, HasSubstr("sha256:")) << r.out;

  Collect();
  ASSERT_EQ(Ctr({"snapshots", "prepare", "work", layer}).exit_code, 0);
  r = Ctr({"snapshots", "mounts", dir.path() + "/mnt", "work"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = InMountedSnapshot(r.out, dir.path() + "/mnt",
                        "cmp $T/bin/busybox /bin/busybox && readlink $T/bin/sh && "
                        "echo changed > $T/new-file && rm $T/bin/sh");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "busybox\n");

  r = RunCommand(
      {"sh", "-c",
       absl::StrCat("ctr --address ", daemon_.address(), " snapshots diff work | tar -tzvf -")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("new-file"));
  EXPECT_THAT(r.out, HasSubstr("bin/.wh.sh"));
  EXPECT_THAT(r.out, Not(HasSubstr("bin/busybox")));
}

// A `docker save` archive imports and unpacks too (docker media types, an
// uncompressed layer); the committed snapshot is named by the layer's diff
// ID, and it holds busybox.
TEST_P(ApiTest, CtrImagesImportsADockerSaveArchive) {
  TempDir dir;
  const std::string archive = dir.path() + "/busybox-docker.tar";
  CommandResult r = MakeImageArchive("docker", archive, "busybox:latest");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string diff_id(absl::StripTrailingAsciiWhitespace(r.out));
  r = Ctr({"images", "import", archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"images", "ls"});
  EXPECT_THAT(r.out, HasSubstr("docker.io/library/busybox:latest"));
  EXPECT_THAT(r.out, HasSubstr("application/vnd.docker.distribution.manifest.v2+json"));
  r = Ctr({"images", "check"});
  EXPECT_THAT(r.out, ContainsRegex("complete \\(2/2\\).* true"));
  // One layer: its chain ID is its diff ID.
  Collect();
  ASSERT_EQ(Ctr({"snapshots", "view", "look", diff_id}).exit_code, 0)
      << Ctr({"snapshots", "ls"}).out;
  r = Ctr({"snapshots", "mounts", dir.path() + "/mnt", "look"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = InMountedSnapshot(r.out, dir.path() + "/mnt",
                        "cmp $T/bin/busybox /bin/busybox && readlink $T/bin/sh");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "busybox\n");
}

// An image index of two platforms (linux/amd64 and linux/arm64/v8): a plain
// import takes and unpacks the host's platform alone, so exporting every
// platform fails naming the missing arm64 blob; `--all-platforms` takes both
// platforms' content (unpacking still only the host's), and then exports
// every platform.
TEST_P(ApiTest, CtrImagesImportOfAMultiPlatformIndex) {
  TempDir dir;
  const std::string archive = dir.path() + "/multi.tar";
  CommandResult r = MakeImageArchive("oci", archive, "docker.io/library/multi:latest", {"ARM64=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string index(absl::StripTrailingAsciiWhitespace(r.out));
  // After a collection: the import also writes an index of what it took,
  // which nothing holds once its lease goes (containerd collects it later).
  auto content_count = [&](const std::string& ns) {
    Collect(ns);
    std::string out = Ctr({"-n", ns, "content", "ls", "-q"}).out;
    return std::count(out.begin(), out.end(), '\n');
  };

  r = Ctr({"-n", "host", "images", "import", archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"-n", "host", "images", "ls"});
  EXPECT_THAT(r.out, HasSubstr("application/vnd.oci.image.index.v1+json"));
  EXPECT_THAT(r.out, HasSubstr(index));
  EXPECT_THAT(Ctr({"-n", "host", "images", "check"}).out,
              ContainsRegex("complete \\(2/2\\).* true"));
  EXPECT_EQ(content_count("host"), 4) << "index, and the amd64 manifest, config and layer";
  r = Ctr({"-n", "host", "images", "export", "--all-platforms", dir.path() + "/all.tar",
           "docker.io/library/multi:latest"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("not found"));
  r = Ctr({"-n", "host", "images", "export", dir.path() + "/host.tar",
           "docker.io/library/multi:latest"});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = Ctr({"-n", "every", "images", "import", "--all-platforms", archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(content_count("every"), 7) << "and the arm64 manifest, config and layer";
  r = Ctr({"-n", "every", "snapshots", "ls"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << "a header and the amd64 layer:\n"
                                                             << r.out;
  r = Ctr({"-n", "every", "images", "export", "--all-platforms", dir.path() + "/all.tar",
           "docker.io/library/multi:latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand({"tar", "tf", dir.path() + "/all.tar"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 7 + 5)
      << "7 blobs, index.json, oci-layout, "
         "manifest.json and two directories:\n"
      << r.out;
}

// Archives whose images cannot be unpacked: each import fails naming what
// is wrong, leaves no committed snapshot and no mount, and a good image
// imports after them all.
TEST_P(ApiTest, CtrImagesImportOfBadArchivesFailsNamingTheProblem) {
  TempDir dir;
  struct Case {
    std::string brk;
    std::string error;  // in ctr's message, whichever daemon answers
  };
  const std::vector<Case> cases = {
      {"truncate", "unexpected"},  // a gzip layer cut in half ("unexpected EOF"/"end")
      {"missing", "not found"},    // the manifest names a layer the archive lacks
      {"digest", "not found"},     // a blob whose bytes are not its name: never stored
      {"json", "JSON"},            // a config that is not JSON
      {"media", "application/vnd.example.unknown.layer"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.brk);
    const std::string archive = dir.path() + "/" + c.brk + ".tar";
    CommandResult r = MakeImageArchive("oci", archive, "docker.io/library/" + c.brk + ":latest",
                                       {"BREAK=" + c.brk});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = Ctr({"images", "import", archive});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr(c.error));
    EXPECT_EQ(Ctr({"snapshots", "ls"}).out.find("Committed"), std::string::npos);
    EXPECT_THAT(RunCommand({"findmnt", "-rn", "-o", "TARGET"}).out, Not(HasSubstr(daemon_.root())));
  }
  const std::string good = dir.path() + "/good.tar";
  ASSERT_EQ(MakeImageArchive("oci", good, "docker.io/library/busybox:latest").exit_code, 0);
  CommandResult r = Ctr({"images", "import", good});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(Ctr({"images", "check"}).out, ContainsRegex("busybox.*complete \\(2/2\\).* true"));
}

// Writes an uncompressed tar at `path` with python3's tarfile, which writes
// names as given: `entries` is a Python list of (name, type, data or link).
CommandResult WriteTar(const std::string& path, const std::string& entries) {
  return RunCommand({"python3", "-c",
                     absl::StrCat("import io, tarfile\n"
                                  "with tarfile.open('",
                                  path,
                                  "', 'w', format=tarfile.GNU_FORMAT) as t:\n"
                                  "  for name, kind, x in ",
                                  entries,
                                  ":\n"
                                  "    i = tarfile.TarInfo(name); i.type = kind; i.mode = 0o644\n"
                                  "    if kind == tarfile.REGTYPE:\n"
                                  "      i.size = len(x); t.addfile(i, io.BytesIO(x))\n"
                                  "    else:\n"
                                  "      i.linkname = x; t.addfile(i)\n")});
}

// A layer that tries to write outside the snapshot: `..` and absolute
// names, and files written through symlinks it plants (absolute, and
// relative with too many `..`). Everything lands inside the snapshot, as
// if it were `/`; the directory the symlinks name stays empty. A hard link
// to a file outside fails the import, naming the entry.
TEST_P(ApiTest, CtrImagesImportKeepsEscapingEntriesInside) {
  TempDir dir;
  const std::string outside = dir.path() + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  const std::string climb = absl::StrJoin(std::vector<std::string>(20, ".."), "/");
  const std::string layer = dir.path() + "/evil-layer.tar";
  CommandResult r = WriteTar(layer, absl::StrCat("[('../dotdot', tarfile.REGTYPE, b'dotdot'),"
                                                 " ('/absolute', tarfile.REGTYPE, b'absolute'),"
                                                 " ('evil', tarfile.SYMTYPE, '",
                                                 outside,
                                                 "'),"
                                                 " ('evil/pwned', tarfile.REGTYPE, b'pwned'),"
                                                 " ('up', tarfile.SYMTYPE, '",
                                                 climb, outside,
                                                 "'),"
                                                 " ('up/pwned2', tarfile.REGTYPE, b'pwned2')]"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string archive = dir.path() + "/evil.tar";
  r = MakeImageArchive("oci", archive, "docker.io/library/evil:latest", {"LAYER_TAR=" + layer});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"images", "import", archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(RunCommand({"ls", "-A", outside}).out, "");

  std::string committed;
  for (absl::string_view line : absl::StrSplit(Ctr({"snapshots", "ls"}).out, '\n')) {
    if (absl::StrContains(line, "Committed"))
      committed = std::string(line.substr(0, line.find(' ')));
  }
  Collect();
  ASSERT_EQ(Ctr({"snapshots", "view", "look", committed}).exit_code, 0);
  r = Ctr({"snapshots", "mounts", dir.path() + "/mnt", "look"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = InMountedSnapshot(r.out, dir.path() + "/mnt",
                        absl::StrCat("cd $T && cat dotdot absolute .", outside, "/pwned .", outside,
                                     "/pwned2 && readlink evil"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, absl::StrCat("dotdotabsolutepwnedpwned2", outside, "\n"));

  const std::string link_layer = dir.path() + "/link-layer.tar";
  ASSERT_EQ(
      WriteTar(link_layer, absl::StrCat("[('stolen', tarfile.LNKTYPE, '", climb, "/etc/passwd')]"))
          .exit_code,
      0);
  const std::string link_archive = dir.path() + "/link.tar";
  ASSERT_EQ(MakeImageArchive("oci", link_archive, "docker.io/library/link:latest",
                             {"LAYER_TAR=" + link_layer})
                .exit_code,
            0);
  r = Ctr({"images", "import", link_archive});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("stolen"));
  EXPECT_THAT(RunCommand({"findmnt", "-rn", "-o", "TARGET"}).out, Not(HasSubstr(daemon_.root())));
}

// ===================== containers =====================

// Container c1's snapshot, an active one on a layer, in `ctr snapshots ls`.
constexpr char kContainerSnapshot[] = "(^|\n)c1 +sha256:[0-9a-f]+ +Active";

// `json` parsed and printed back with sorted keys, by Python's json module:
// two texts of one JSON value print the same.
std::string CanonicalJson(const std::string& json) {
  CommandResult r =
      RunCommand({"python3", "-c",
                  "import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))"},
                 absl::Seconds(30), json);
  EXPECT_EQ(r.exit_code, 0) << r.err << json;
  return r.out;
}

namespace containers_api = ::containerd::services::containers::v1;

// ctr containers, end to end: a container made from an imported image has
// the image's snapshot under it and a spec ctr reads back; it is listed,
// labelled, filtered, and removed with its snapshot; each change is
// published.
TEST_P(ApiTest, CtrContainersCreateListInfoLabelRemove) {
  TempDir dir;
  CommandResult r = ImportBusybox(daemon_, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  absl::StatusOr<std::unique_ptr<Process>> events =
      SubscribeEvents(daemon_, "topic~=\"^/containers/\"");
  ASSERT_THAT(events, IsOk());

  r = Ctr({"containers", "create", kBusybox, "c1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"containers", "ls"});
  EXPECT_THAT(r.out, ContainsRegex("c1 +docker.io/library/busybox:latest +io.containerd.runc.v2"));
  EXPECT_THAT(Ctr({"snapshots", "ls"}).out, ContainsRegex(kContainerSnapshot));

  r = Ctr({"containers", "info", "c1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"SnapshotKey\": \"c1\""));
  EXPECT_THAT(r.out, HasSubstr("\"Snapshotter\": \"overlayfs\""));
  EXPECT_THAT(r.out, HasSubstr("\"type_url\": \"containerd.runc.v1.Options\""));
  // The spec ctr prints is the one stored: the image's command, and the
  // very JSON value the Containers service returns.
  r = Ctr({"containers", "info", "--spec", "c1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ContainsRegex("\"args\": \\[\\s*\"/bin/sh\"\\s*\\]"));
  auto stub = containers_api::Containers::NewStub(Connect(daemon_));
  containers_api::GetContainerRequest get;
  get.set_id("c1");
  containers_api::GetContainerResponse got;
  grpc::Status status = stub->Get(NamespacedContext("default").get(), get, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.container().spec().type_url(),
            "types.containerd.io/opencontainers/runtime-spec/1/Spec");
  EXPECT_EQ(CanonicalJson(r.out), CanonicalJson(got.container().spec().value()));

  ASSERT_EQ(Ctr({"containers", "label", "c1", "team=a"}).exit_code, 0);
  EXPECT_THAT(Ctr({"containers", "info", "c1"}).out, HasSubstr("\"team\": \"a\""));
  EXPECT_EQ(Ctr({"containers", "ls", "-q", "labels.team==a"}).out, "c1\n");
  EXPECT_EQ(Ctr({"containers", "ls", "-q", "labels.team==b"}).out, "");
  EXPECT_EQ(Ctr({"containers", "ls", "-q", "image==docker.io/library/busybox:latest"}).out, "c1\n");
  EXPECT_EQ(Ctr({"containers", "ls", "-q", "runtime.name~=runc,id==c1"}).out, "c1\n");
  EXPECT_EQ(Ctr({"containers", "ls", "-q", "id==c2", "labels.team"}).out, "c1\n");
  // containerd 1.6 filters on nothing else.
  EXPECT_EQ(Ctr({"containers", "ls", "-q", "snapshotter==overlayfs"}).out, "");
  r = Ctr({"containers", "ls", "id=="});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("invalid argument"));

  r = Ctr({"containers", "rm", "c1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "");
  EXPECT_THAT(Ctr({"snapshots", "ls"}).out, Not(ContainsRegex(kContainerSnapshot)))
      << "ctr removes it";

  ASSERT_TRUE((*events)->WaitForOutput("/containers/delete", absl::Seconds(10)))
      << (*events)->Output();
  const std::string output = (*events)->Output();
  EXPECT_THAT(output, ContainsRegex("/containers/create \\{\"id\":\"c1\",\"image\":\"docker.io/"
                                    "library/busybox:latest\",\"runtime\":\\{\"name\":"
                                    "\"io.containerd.runc.v2\""));
  EXPECT_THAT(output, ContainsRegex("/containers/update \\{\"id\":\"c1\".*\"team\":\"a\""));
  EXPECT_THAT(output, HasSubstr("/containers/delete {\"id\":\"c1\"}"));
  (*events)->Stop(SIGTERM);
}

// A container holds its snapshot, and with it the image's layers, through
// collections, even once the image is gone; removed without its snapshot
// (--keep-snapshot), the next collection takes them all.
TEST_P(ApiTest, AContainerKeepsItsSnapshotFromCollection) {
  TempDir dir;
  CommandResult r = ImportBusybox(daemon_, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"containers", "create", kBusybox, "c1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> layers = CommittedSnapshots(Ctr({"snapshots", "ls"}).out);
  ASSERT_FALSE(layers.empty());

  ASSERT_EQ(Ctr({"images", "rm", "--sync", kBusybox}).exit_code, 0);
  r = Ctr({"snapshots", "ls"});
  EXPECT_THAT(r.out, ContainsRegex(kContainerSnapshot));
  EXPECT_EQ(CommittedSnapshots(r.out), layers) << "the container's snapshot keeps its parents";

  r = Ctr({"containers", "rm", "--keep-snapshot", "c1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Collect();
  r = Ctr({"snapshots", "ls"});
  EXPECT_THAT(r.out, Not(ContainsRegex(kContainerSnapshot)));
  EXPECT_THAT(CommittedSnapshots(r.out), ::testing::IsEmpty());
}

// A namespace holding a container cannot be deleted; once it goes, it can.
TEST_P(ApiTest, NamespaceWithAContainerCannotBeDeleted) {
  auto stub = containers_api::Containers::NewStub(Connect(daemon_));
  containers_api::CreateContainerRequest create;
  create.mutable_container()->set_id("c1");
  create.mutable_container()->mutable_runtime()->set_name("io.containerd.runc.v2");
  create.mutable_container()->mutable_spec()->set_type_url("example.com/Spec");
  containers_api::CreateContainerResponse created;
  grpc::Status status = stub->Create(NamespacedContext("busy").get(), create, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  CommandResult r = Ctr({"namespaces", "rm", "busy"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("must be empty, but it still has containers"));
  EXPECT_EQ(Ctr({"-n", "busy", "containers", "ls", "-q"}).out, "c1\n");
  ASSERT_EQ(Ctr({"-n", "busy", "containers", "rm", "c1"}).exit_code, 0);
  r = Ctr({"namespaces", "rm", "busy"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// Each bad request fails with containerd's code, naming what is wrong, and
// changes nothing.
TEST_P(ApiTest, BadContainerRequestsFailClearly) {
  TempDir dir;
  CommandResult r = ImportBusybox(daemon_, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(Ctr({"containers", "create", "--label", "a=b", kBusybox, "c1"}).exit_code, 0);
  const std::string before = Ctr({"containers", "info", "c1"}).out;
  struct Case {
    const char* name;
    std::vector<std::string> args;
    std::vector<std::string> errors;  // each in ctr's message
  } cases[] = {
      {"SlashInId",
       {"containers", "create", kBusybox, "bad/id"},
       {"\"bad/id\"", "invalid argument"}},
      {"TrailingDotInId", {"containers", "create", kBusybox, "x."}, {"\"x.\"", "invalid argument"}},
      {"DuplicateId", {"containers", "create", kBusybox, "c1"}, {"\"c1\"", "already exists"}},
      {"RemoveUnknown", {"containers", "rm", "nope"}, {"\"nope\"", "not found"}},
      {"InfoOfUnknown", {"containers", "info", "nope"}, {"\"nope\"", "not found"}},
      {"LabelUnknown", {"containers", "label", "nope", "a=b"}, {"\"nope\"", "not found"}},
  };
  for (const Case& c : cases) {
    r = Ctr(c.args);
    EXPECT_NE(r.exit_code, 0) << c.name;
    for (const std::string& error : c.errors) EXPECT_THAT(r.err, HasSubstr(error)) << c.name;
  }
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "c1\n");
  EXPECT_EQ(Ctr({"containers", "info", "c1"}).out, before);
}

// The Containers service's own calls: each mask path replaces its field or
// entry alone, a whole update keeps the snapshotter and runtime, the spec
// comes back byte for byte, and each bad request carries containerd's code.
TEST_P(ApiTest, ContainerUpdateFollowsTheFieldMask) {
  auto stub = containers_api::Containers::NewStub(Connect(daemon_));
  auto any = [](const std::string& type_url, const std::string& value) {
    google::protobuf::Any out;
    out.set_type_url(type_url);
    out.set_value(value);
    return out;
  };
  auto create = [&](const containers_api::Container& container,
                    containers_api::Container* out = nullptr) {
    containers_api::CreateContainerRequest request;
    *request.mutable_container() = container;
    containers_api::CreateContainerResponse response;
    grpc::Status status = stub->Create(NamespacedContext("default").get(), request, &response);
    if (out != nullptr) *out = response.container();
    return status;
  };
  auto update = [&](const containers_api::Container& container,
                    const std::vector<std::string>& paths, containers_api::Container* out) {
    containers_api::UpdateContainerRequest request;
    *request.mutable_container() = container;
    for (const std::string& path : paths) request.mutable_update_mask()->add_paths(path);
    containers_api::UpdateContainerResponse response;
    grpc::Status status = stub->Update(NamespacedContext("default").get(), request, &response);
    *out = response.container();
    return status;
  };
  auto labels = [](const containers_api::Container& container) {
    return std::map<std::string, std::string>(container.labels().begin(), container.labels().end());
  };
  auto extensions = [](const containers_api::Container& container) {
    std::map<std::string, std::string> out;
    for (const auto& [name, value] : container.extensions()) {
      out[name] = value.type_url() + "=" + value.value();
    }
    return out;
  };

  containers_api::Container first;
  first.set_id("c1");
  (*first.mutable_labels())["keep"] = "1";
  (*first.mutable_labels())["drop"] = "2";
  first.set_image("example.com/a:1");
  first.mutable_runtime()->set_name("io.containerd.runc.v2");
  // Not as any JSON library would write it: stored, not re-encoded.
  const std::string spec_json = "{ \"ociVersion\" : \"1.0.2\",\n\t\"z\": 1, \"a\": [ ] }";
  *first.mutable_spec() = any("types.containerd.io/opencontainers/runtime-spec/1/Spec", spec_json);
  first.set_snapshotter("overlayfs");
  first.set_snapshot_key("k1");
  (*first.mutable_extensions())["kept"] = any("example.com/Kept", "k");
  containers_api::Container got;
  grpc::Status status = create(first, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.spec().value(), spec_json);
  EXPECT_FALSE(got.runtime().has_options());

  containers_api::Container change = first;
  change.clear_labels();
  (*change.mutable_labels())["new"] = "3";
  change.set_image("example.com/b:2");
  *change.mutable_spec() = any("example.com/Spec", "other");
  change.set_snapshot_key("k2");
  change.clear_extensions();
  (*change.mutable_extensions())["added"] = any("example.com/Added", "a");
  status = update(change, {"labels.new", "labels.drop", "extensions.added"}, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(labels(got), (std::map<std::string, std::string>{{"keep", "1"}, {"new", "3"}}));
  EXPECT_EQ(extensions(got), (std::map<std::string, std::string>{{"added", "example.com/Added=a"},
                                                                 {"kept", "example.com/Kept=k"}}));
  EXPECT_EQ(got.image(), "example.com/a:1");
  EXPECT_EQ(got.spec().value(), spec_json);

  status = update(change, {"image", "snapshotkey", "spec"}, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.image(), "example.com/b:2");
  EXPECT_EQ(got.snapshot_key(), "k2");
  EXPECT_EQ(got.spec().type_url(), "example.com/Spec");
  EXPECT_EQ(labels(got).size(), 2u);

  // No mask: labels, spec, image, snapshot key and extensions whole; the
  // snapshotter and runtime must stay.
  containers_api::Container whole = first;
  (*whole.mutable_extensions())["kept"] = any("example.com/Kept", "new");
  status = update(whole, {}, &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(labels(got), labels(first));
  EXPECT_EQ(got.image(), "example.com/a:1");
  EXPECT_EQ(got.snapshot_key(), "k1");
  EXPECT_EQ(got.spec().value(), spec_json);
  EXPECT_EQ(extensions(got)["kept"], "example.com/Kept=new");
  EXPECT_GE(got.updated_at().seconds(), got.created_at().seconds());

  struct BadUpdate {
    const char* name;
    containers_api::Container container;
    std::vector<std::string> paths;
    grpc::StatusCode code;
  };
  containers_api::Container moved = first;
  moved.set_snapshotter("native");
  containers_api::Container rerun = first;
  rerun.mutable_runtime()->set_name("io.containerd.runc.v1");
  containers_api::Container no_spec = first;
  no_spec.clear_spec();
  containers_api::Container ghost = first;
  ghost.set_id("ghost");
  containers_api::Container no_id = first;
  no_id.clear_id();
  const BadUpdate bad_updates[] = {
      {"RuntimePath", rerun, {"runtime"}, grpc::StatusCode::INVALID_ARGUMENT},
      {"UnknownPath", first, {"created_at"}, grpc::StatusCode::INVALID_ARGUMENT},
      {"NamelessExtension", first, {"extensions."}, grpc::StatusCode::INVALID_ARGUMENT},
      {"NewSnapshotter", moved, {}, grpc::StatusCode::INVALID_ARGUMENT},
      {"NewRuntime", rerun, {}, grpc::StatusCode::INVALID_ARGUMENT},
      {"SpecRemoved", no_spec, {"spec"}, grpc::StatusCode::INVALID_ARGUMENT},
      {"NoId", no_id, {}, grpc::StatusCode::INVALID_ARGUMENT},
      {"Unknown", ghost, {}, grpc::StatusCode::NOT_FOUND},
  };
  for (const BadUpdate& c : bad_updates) {
    EXPECT_EQ(update(c.container, c.paths, &got).error_code(), c.code) << c.name;
  }

  containers_api::Container no_runtime = first;
  no_runtime.set_id("c2");
  no_runtime.mutable_runtime()->clear_name();
  containers_api::Container spec_missing = no_spec;
  spec_missing.set_id("c2");
  containers_api::Container key_alone = first;
  key_alone.set_id("c2");
  key_alone.clear_snapshotter();
  const std::pair<containers_api::Container, grpc::StatusCode> bad_creates[] = {
      {first, grpc::StatusCode::ALREADY_EXISTS},
      {no_runtime, grpc::StatusCode::INVALID_ARGUMENT},
      {spec_missing, grpc::StatusCode::INVALID_ARGUMENT},
      {key_alone, grpc::StatusCode::INVALID_ARGUMENT},
  };
  for (const auto& [container, code] : bad_creates) {
    status = create(container);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
  }

  // Nothing of that changed the container.
  containers_api::GetContainerRequest get;
  get.set_id("c1");
  containers_api::GetContainerResponse stored;
  ASSERT_TRUE(stub->Get(NamespacedContext("default").get(), get, &stored).ok());
  EXPECT_EQ(stored.container().spec().value(), spec_json);
  EXPECT_EQ(stored.container().runtime().name(), "io.containerd.runc.v2");
  EXPECT_EQ(stored.container().snapshotter(), "overlayfs");

  // ListStream: one container a message.
  ASSERT_TRUE(create([&] {
                containers_api::Container second = first;
                second.set_id("c2");
                return second;
              }())
                  .ok());
  containers_api::ListContainersRequest list;
  auto context = NamespacedContext("default");
  auto stream = stub->ListStream(context.get(), list);
  containers_api::ListContainerMessage message;
  std::vector<std::string> streamed;
  while (stream->Read(&message)) streamed.push_back(message.container().id());
  ASSERT_TRUE(stream->Finish().ok());
  std::sort(streamed.begin(), streamed.end());
  EXPECT_EQ(streamed, (std::vector<std::string>{"c1", "c2"}));

  containers_api::DeleteContainerRequest erase;
  erase.set_id("ghost");
  google::protobuf::Empty empty;
  EXPECT_EQ(stub->Delete(NamespacedContext("default").get(), erase, &empty).error_code(),
            grpc::StatusCode::NOT_FOUND);
  erase.set_id("c1");
  EXPECT_TRUE(stub->Delete(NamespacedContext("default").get(), erase, &empty).ok());
  EXPECT_EQ(stub->Get(NamespacedContext("default").get(), get, &stored).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace berth::testing
