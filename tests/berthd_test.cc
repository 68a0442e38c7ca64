// berthd as a user meets it: started on a private root, driven by the real
// `ctr` from Debian's containerd package and by plain gRPC clients.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_matchers.h"
#include "base/unique_fd.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "gtest/gtest.h"
#include "tests/content_client.h"
#include "tests/harness.h"

namespace berth::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

int Mode(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return -1;
  return st.st_mode & 07777;
}

class BerthdTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(berthd_.Start(), IsOk()); }

  CommandResult Ctr(const std::vector<std::string>& args) { return testing::Ctr(berthd_, args); }

  Daemon berthd_;
};

TEST_F(BerthdTest, CtrVersionReportsBerth) {
  CommandResult r = Ctr({"version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Server:\n  Version:  0.1.0\n  Revision: berth"));
}

TEST_F(BerthdTest, DirectoriesArePrivateAndSocketsAreGroupOnly) {
  EXPECT_EQ(Mode(berthd_.root()), 0700);
  EXPECT_EQ(Mode(berthd_.state()), 0700);
  // The gRPC socket and the ttrpc one shims publish events on.
  for (const std::string& socket : {berthd_.address(), berthd_.address() + ".ttrpc"}) {
    struct stat st;
    ASSERT_EQ(::lstat(socket.c_str(), &st), 0) << socket;
    EXPECT_TRUE(S_ISSOCK(st.st_mode)) << socket;
    EXPECT_EQ(st.st_mode & 0777, 0660) << socket;
  }
}

// `ctr plugins ls` rows as "TYPE ID STATUS", columns split on whitespace.
std::set<std::string> PluginRows(const std::string& out) {
  std::set<std::string> rows;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (cols.size() == 4) rows.insert(absl::StrCat(cols[0], " ", cols[1], " ", cols[3]));
  }
  return rows;
}

TEST_F(BerthdTest, CtrPluginsListsEveryServiceAsOk) {
  CommandResult r = Ctr({"plugins", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PluginRows(r.out), (std::set<std::string>{
                                   "TYPE ID STATUS",
                                   "io.containerd.content.v1 content ok",
                                   "io.containerd.event.v1 exchange ok",
                                   "io.containerd.gc.v1 scheduler ok",
                                   "io.containerd.metadata.v1 sqlite ok",
                                   "io.containerd.runtime.v2 task ok",
                                   "io.containerd.service.v1 namespaces-service ok",
                                   "io.containerd.snapshotter.v1 native ok",
                                   "io.containerd.snapshotter.v1 overlayfs ok",
                                   "io.containerd.grpc.v1 containers ok",
                                   "io.containerd.grpc.v1 content ok",
                                   "io.containerd.grpc.v1 diff ok",
                                   "io.containerd.grpc.v1 events ok",
                                   "io.containerd.grpc.v1 healthcheck ok",
                                   "io.containerd.grpc.v1 images ok",
                                   "io.containerd.grpc.v1 introspection ok",
                                   "io.containerd.grpc.v1 leases ok",
                                   "io.containerd.grpc.v1 namespaces ok",
                                   "io.containerd.grpc.v1 snapshots ok",
                                   "io.containerd.grpc.v1 tasks ok",
                                   "io.containerd.grpc.v1 version ok",
                                   "io.containerd.ttrpc.v1 events ok",
                               }))
      << r.out;
}

// A reflection client made from the reflection service's own descriptors,
// which the gRPC reflection library carries: it lists what berthd serves.
std::set<std::string> ReflectedServices(const Daemon& berthd) {
  // Naming the plugin links the library, and with it the descriptors.
  [[maybe_unused]] volatile auto keep = &grpc::reflection::InitProtoReflectionServerBuilderPlugin;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* request_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
  const auto* response_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  EXPECT_NE(request_type, nullptr);
  EXPECT_NE(response_type, nullptr);
  if (request_type == nullptr || response_type == nullptr) return {};
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> request(factory.GetPrototype(request_type)->New());
  request->GetReflection()->SetString(request.get(), request_type->FindFieldByName("list_services"),
                                      "*");
  grpc::GenericStub stub(Connect(berthd));
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  void* tag;
  bool ok;
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  std::string bytes = request->SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  std::set<std::string> services;
  if (!ok) return services;
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(in.Dump(&slices).ok());
  std::string received;
  for (const grpc::Slice& s : slices)
    received.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::unique_ptr<google::protobuf::Message> response(factory.GetPrototype(response_type)->New());
  EXPECT_TRUE(response->ParseFromString(received));
  const auto* list_field = response_type->FindFieldByName("list_services_response");
  const google::protobuf::Message& list =
      response->GetReflection()->GetMessage(*response, list_field);
  const auto* service_field = list.GetDescriptor()->FindFieldByName("service");
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field); ++i) {
    const google::protobuf::Message& service =
        list.GetReflection()->GetRepeatedMessage(list, service_field, i);
    services.insert(service.GetReflection()->GetString(
        service, service.GetDescriptor()->FindFieldByName("name")));
  }
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return services;
}

TEST_F(BerthdTest, ReflectionListsEveryService) {
  std::set<std::string> services = ReflectedServices(berthd_);
  for (const char* name :
       {"containerd.services.version.v1.Version", "containerd.services.namespaces.v1.Namespaces",
        "containerd.services.introspection.v1.Introspection",
        "containerd.services.events.v1.Events", "containerd.services.snapshots.v1.Snapshots",
        "containerd.services.containers.v1.Containers", "containerd.services.tasks.v1.Tasks",
        "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}) {
    EXPECT_TRUE(services.count(name)) << name;
  }
}

// Where containerd 1.6 is lax, Berth answers with the code the request
// deserves: containerd ignores List's filter, creates a namespace when asked
// to label a missing one, reports a missing namespace's Delete and a bad
// Subscribe filter as Unknown.
TEST_F(BerthdTest, NamespaceAndEventErrorsAreStricterThanContainerd) {
  namespace api = containerd::services::namespaces::v1;
  auto stub = api::Namespaces::NewStub(Connect(berthd_));
  api::ListNamespacesRequest list;
  list.set_filter("name~=\"(\"");
  api::ListNamespacesResponse listed;
  grpc::ClientContext c1;
  grpc::Status status = stub->List(&c1, list, &listed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("name~="));

  api::UpdateNamespaceRequest update;
  update.mutable_namespace_()->set_name("ghost");
  (*update.mutable_namespace_()->mutable_labels())["a"] = "b";
  update.mutable_update_mask()->add_paths("labels.a");
  api::UpdateNamespaceResponse updated;
  grpc::ClientContext c2;
  status = stub->Update(&c2, update, &updated);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Ctr({"namespaces", "ls", "-q"}).out, "");

  api::DeleteNamespaceRequest remove;
  remove.set_name("nope");
  google::protobuf::Empty empty;
  grpc::ClientContext c3;
  status = stub->Delete(&c3, remove, &empty);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nope"));

  CommandResult r =
      RunCommand({"timeout", "10", "ctr", "--address", berthd_.address(), "events", "topic=="});
  EXPECT_THAT(r.err, HasSubstr("code = InvalidArgument"));
}

// A layer of an unknown media type is InvalidArgument, naming the type;
// containerd 1.6 says Unknown ("no processor for media-type").
TEST_F(BerthdTest, UnknownLayerMediaTypeIsInvalidArgument) {
  TempDir dir;
  const std::string archive = dir.path() + "/media.tar";
  CommandResult r =
      MakeImageArchive("oci", archive, "docker.io/library/media:latest", {"BREAK=media"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"images", "import", archive});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err,
              HasSubstr("unsupported layer media type \"application/vnd.example.unknown.layer\": "
                        "invalid argument"));
}

TEST_F(BerthdTest, CollectionAbortsTheIngestsOfAnExpiredLease) {
  ASSERT_EQ(Ctr({"leases", "create", "--id", "brief", "--expires", "1s"}).exit_code, 0);
  ASSERT_EQ(Ctr({"leases", "create", "--id", "lasting"}).exit_code, 0);
  const std::string data = RandomBytes(1 << 20);
  ASSERT_TRUE(WriteWithoutCommit(berthd_, "default", "brief", "left-behind", data).ok());
  ASSERT_TRUE(WriteWithoutCommit(berthd_, "default", "lasting", "kept", data).ok());
  ASSERT_THAT(Ctr({"content", "active"}).out, HasSubstr("left-behind"));
  ::sleep(2);
  // Deleting another lease with --sync waits for a whole collection.
  ASSERT_EQ(Ctr({"leases", "create", "--id", "trigger"}).exit_code, 0);
  ASSERT_EQ(Ctr({"leases", "rm", "--sync", "trigger"}).exit_code, 0);
  CommandResult r = Ctr({"content", "active"});
  EXPECT_THAT(r.out, Not(HasSubstr("left-behind")));
  EXPECT_THAT(r.out, HasSubstr("kept"));
  EXPECT_EQ(Ctr({"leases", "ls", "-q"}).out, "lasting\n");
}

// A blob a crash left on disk without its record (the rename happened, the
// record's transaction did not) is removed once berthd starts again;
// recorded blobs stay.
TEST_F(BerthdTest, StartupRemovesBlobsWithoutARecord) {
  ASSERT_EQ(Ctr({"leases", "create", "--id", "hold"}).exit_code, 0);
  const std::string kept = RandomBytes(4096);
  ASSERT_TRUE(WriteBlob(berthd_, "default", "hold", "kept", kept).ok());
  ASSERT_EQ(berthd_.Stop(), 0);
  const std::string blobs = berthd_.root() + "/io.containerd.content.v1.content/blobs/sha256/";
  const std::string orphan = RandomBytes(4096);
  const std::string orphan_path = blobs + Sha256(orphan).substr(7);
  std::ofstream(orphan_path, std::ios::binary) << orphan;
  ASSERT_EQ(::access(orphan_path.c_str(), F_OK), 0);
  ASSERT_THAT(berthd_.Start(), IsOk());
  for (int i = 0; i < 100 && ::access(orphan_path.c_str(), F_OK) == 0; ++i) ::usleep(50'000);
  EXPECT_NE(::access(orphan_path.c_str(), F_OK), 0) << orphan_path << " is still there";
  EXPECT_EQ(::access((blobs + Sha256(kept).substr(7)).c_str(), F_OK), 0);
  EXPECT_TRUE(ContentInfo(berthd_, "default", Sha256(kept)).ok());
}

// Beyond containerd, whose service requires the snapshotter field (its Go
// client fills it in): an empty field means the namespace's default, its
// containerd.io/defaults/snapshotter label, else overlayfs.
TEST_F(BerthdTest, EmptySnapshotterMeansTheNamespaceDefault) {
  ASSERT_EQ(Ctr({"namespaces", "create", "copies", "containerd.io/defaults/snapshotter=native"})
                .exit_code,
            0);
  namespace api = ::containerd::services::snapshots::v1;
  auto stub = api::Snapshots::NewStub(Connect(berthd_));
  for (const std::string ns : {"copies", "default"}) {
    api::PrepareSnapshotRequest prepare;
    prepare.set_key("picked");
    api::PrepareSnapshotResponse prepared;
    grpc::Status status = stub->Prepare(NamespacedContext(ns).get(), prepare, &prepared);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_THAT(Ctr({"-n", "copies", "snapshots", "--snapshotter", "native", "ls"}).out,
              HasSubstr("picked"));
  EXPECT_THAT(Ctr({"-n", "copies", "snapshots", "--snapshotter", "overlayfs", "ls"}).out,
              Not(HasSubstr("picked")));
  EXPECT_THAT(Ctr({"snapshots", "--snapshotter", "overlayfs", "ls"}).out, HasSubstr("picked"));
}

// Layer blobs are unpacked as soon as they are written, while the client
// still writes the rest; Diff.Apply then moves the finished tree into the
// snapshot ("diff applied … early=true" in the debug log) and it holds
// exactly the layer. Trees nobody took are gone after a restart.
TEST(EarlyUnpack, ImportUsesTreesUnpackedAtCommitAndRestartClearsTheRest) {
  Daemon berthd(Peer::kBerthd);
  ASSERT_THAT(berthd.Start({"--log-level", "debug"}), IsOk());
  TempDir dir;
  // 2 MiB of random bytes: a layer over the size early unpacking starts at.
  CommandResult r =
      RunCommand({"sh", "-ec",
                  absl::StrCat("cd ", dir.path(),
                               " && mkdir -p src/data/sub && head -c 2097152 /dev/urandom "
                               "> src/data/sub/random && echo hi > src/data/hello && "
                               "tar --owner=0 --group=0 -C src -cf layer.tar data")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string archive = dir.path() + "/early.tar";
  r = MakeImageArchive("oci", archive, "docker.io/library/early:latest",
                       {"LAYER_TAR=" + dir.path() + "/layer.tar"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  r = Ctr(berthd, {"images", "import", archive});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(berthd.Log(), ContainsRegex("msg=\"diff applied\".* early=true"));
  std::string committed;
  for (absl::string_view line : absl::StrSplit(Ctr(berthd, {"snapshots", "ls"}).out, '\n')) {
    if (absl::StrContains(line, "Committed"))
      committed = std::string(line.substr(0, line.find(' ')));
  }
  ASSERT_EQ(Ctr(berthd, {"snapshots", "view", "look", committed}).exit_code, 0);
  r = Ctr(berthd, {"snapshots", "mounts", dir.path() + "/mnt", "look"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = InMountedSnapshot(r.out, dir.path() + "/mnt",
                        absl::StrCat("cmp $T/data/sub/random ", dir.path(),
                                     "/src/data/sub/random && cat $T/data/hello && ls -A $T"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hi\ndata\n");

  // Written but never applied: its tree waits, and goes with a restart.
  ASSERT_EQ(Ctr(berthd, {"-n", "other", "images", "import", "--no-unpack", archive}).exit_code, 0);
  const std::string early = berthd.root() + "/io.containerd.grpc.v1.diff/early";
  for (int i = 0; i < 100 && Names(early).empty(); ++i) ::usleep(50'000);
  EXPECT_EQ(Names(early).size(), 1u);
  berthd.Stop();
  EXPECT_FALSE(Exists(early));
  ASSERT_THAT(berthd.Start({"--log-level", "debug"}), IsOk());
  EXPECT_TRUE(Names(early).empty());
}

// What berthd exports, a real containerd imports to the same digests.
TEST_F(BerthdTest, ExportReimportsIntoContainerdWithTheSameDigest) {
  TempDir dir;
  const std::string archive = dir.path() + "/busybox.tar";
  CommandResult r = MakeImageArchive("oci", archive, "docker.io/library/busybox:latest");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string manifest(absl::StripTrailingAsciiWhitespace(r.out));
  ASSERT_EQ(Ctr({"images", "import", archive}).exit_code, 0);
  const std::string exported = dir.path() + "/exported.tar";
  r = Ctr({"images", "export", exported, "docker.io/library/busybox:latest"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  Daemon containerd(Peer::kContainerd);
  ASSERT_THAT(containerd.Start(), IsOk());
  r = testing::Ctr(containerd, {"images", "import", exported});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = testing::Ctr(containerd, {"images", "ls"});
  EXPECT_THAT(r.out, HasSubstr("docker.io/library/busybox:latest"));
  EXPECT_THAT(r.out, HasSubstr(manifest));
  r = testing::Ctr(containerd, {"images", "check"});
  EXPECT_THAT(r.out, HasSubstr("complete (2/2)"));
}

TEST_F(BerthdTest, SigtermStopsCleanlyAndRemovesTheSockets) {
  EXPECT_EQ(berthd_.Stop(), 0);
  EXPECT_EQ(::access(berthd_.address().c_str(), F_OK), -1);
  EXPECT_EQ(::access((berthd_.address() + ".ttrpc").c_str(), F_OK), -1);
  EXPECT_THAT(berthd_.Log(), HasSubstr("berthd stopped"));
}

TEST_F(BerthdTest, SecondDaemonOnTheSameRootRefuses) {
  CommandResult r =
      RunCommand({BerthdPath(), "--root", berthd_.root(), "--state", berthd_.state() + "2",
                  "--address", berthd_.dir() + "/second.sock"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is already using root"));
  EXPECT_EQ(Ctr({"version"}).exit_code, 0);
}

// Start-up failures: each exits 1 with a message naming the problem.
class BerthdStartupTest : public ::testing::Test {
 protected:
  CommandResult RunBerthd(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {
        BerthdPath(),           "--root",    dir_.path() + "/root",  "--state",
        dir_.path() + "/state", "--address", dir_.path() + "/b.sock"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, absl::Seconds(20));
  }
  std::string WriteConfig(const std::string& text) {
    std::string path = dir_.path() + "/config.toml";
    std::ofstream(path) << text;
    return path;
  }
  TempDir dir_;
};

TEST_F(BerthdStartupTest, SocketPathTooLong) {
  CommandResult r = RunBerthd({"--address", "/tmp/" + std::string(120, 's') + ".sock"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("107"));
}

TEST_F(BerthdStartupTest, UnwritableRoot) {
  std::ofstream(dir_.path() + "/file") << "x";
  CommandResult r = RunBerthd({"--root", dir_.path() + "/file/root"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir_.path() + "/file/root"));
}

TEST_F(BerthdStartupTest, ConfigWithWrongTypeNamesKeyAndLine) {
  std::string config = WriteConfig("version = 2\n\n[grpc]\n  uid = \"root\"\n");
  CommandResult r = RunBerthd({"--config", config});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("grpc.uid"));
  EXPECT_THAT(r.err, HasSubstr("4"));
}

TEST_F(BerthdStartupTest, MissingConfigFile) {
  CommandResult r = RunBerthd({"--config", dir_.path() + "/none.toml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("none.toml"));
}

TEST_F(BerthdStartupTest, BadLogLevelFlag) {
  CommandResult r = RunBerthd({"--log-level", "loud"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("loud"));
}

TEST_F(BerthdStartupTest, UnknownFlag) {
  CommandResult r = RunBerthd({"--frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--frobnicate"));
}

TEST_F(BerthdStartupTest, UnknownConfigKeyWarnsAndStarts) {
  std::string config = WriteConfig("version = 2\n[grpc]\n  adress = \"/x\"\n");
  Daemon berthd;
  ASSERT_THAT(berthd.Start({"--config", config}), IsOk());
  EXPECT_THAT(berthd.Log(), HasSubstr("grpc.adress"));
  EXPECT_EQ(Ctr(berthd, {"version"}).exit_code, 0);
}

TEST_F(BerthdStartupTest, StaleSocketIsReplaced) {
  Daemon berthd;
  // A socket file nobody listens on, as a crashed daemon leaves behind.
  ASSERT_EQ(::mkdir(berthd.state().c_str(), 0700), 0);
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    berthd.address().copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ASSERT_THAT(berthd.Start(), IsOk());
  EXPECT_EQ(Ctr(berthd, {"version"}).exit_code, 0);
}

TEST_F(BerthdStartupTest, BrokenMetadataFailsItsPluginsAndTheRestServe) {
  Daemon berthd;
  std::string dir = berthd.root() + "/io.containerd.metadata.v1.sqlite";
  ASSERT_EQ(::mkdir(berthd.root().c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string garbage = "this is not a database, and must stay as it is\n";
  std::ofstream(dir + "/meta.db") << garbage;
  ASSERT_THAT(berthd.Start(), IsOk());
  CommandResult r = Ctr(berthd, {"plugins", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> rows = PluginRows(r.out);
  EXPECT_TRUE(rows.count("io.containerd.metadata.v1 sqlite error")) << r.out;
  EXPECT_TRUE(rows.count("io.containerd.service.v1 namespaces-service error")) << r.out;
  EXPECT_TRUE(rows.count("io.containerd.grpc.v1 version ok")) << r.out;
  EXPECT_EQ(Ctr(berthd, {"version"}).exit_code, 0);
  r = Ctr(berthd, {"namespaces", "ls"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("not implemented"));
  std::ifstream in(dir + "/meta.db");
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, garbage);
}

TEST_F(BerthdStartupTest, ConfigDumpShowsFileAndFlagsTogether) {
  std::string config = WriteConfig("version = 2\n[debug]\n  level = \"debug\"\n");
  CommandResult r =
      RunCommand({BerthdPath(), "--config", config, "--root", "/srv/berth", "config", "dump"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("root = \"/srv/berth\""));
  EXPECT_THAT(r.out, HasSubstr("level = \"debug\""));
  EXPECT_THAT(r.out, HasSubstr("address = \"/run/berth/berth.sock\""));
}

TEST_F(BerthdStartupTest, SigintStopsCleanly) {
  Daemon berthd;
  ASSERT_THAT(berthd.Start({"--log-level", "debug"}), IsOk());
  EXPECT_EQ(Ctr(berthd, {"version"}).exit_code, 0);
  // A person's Ctrl-C does what SIGTERM does.
  EXPECT_EQ(berthd.Stop(SIGINT), 0);
  EXPECT_THAT(berthd.Log(), HasSubstr("msg=\"stopping berthd\" signal=Interrupt"));
  EXPECT_THAT(berthd.Log(), HasSubstr("berthd stopped"));
  EXPECT_EQ(::access(berthd.address().c_str(), F_OK), -1);
}

TEST_F(BerthdStartupTest, ConfigDefaultPrintsTheDefaults) {
  CommandResult r = RunCommand({BerthdPath(), "config", "default"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("version = 2"));
  EXPECT_THAT(r.out, HasSubstr("/var/lib/berth"));
  EXPECT_THAT(r.out, HasSubstr("/run/berth/berth.sock"));
}

}  // namespace
}  // namespace berth::testing
