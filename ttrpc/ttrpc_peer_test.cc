// The Client against a real ttrpc server: Debian's containerd-shim-runc-v2,
// started the way containerd starts it (a bundle directory holding the
// `log` FIFO, `start` printing the socket's address), then called on
// containerd.task.v2.Task: Connect, State of a task it does not have
// (NotFound, as a google.rpc.Status), and Shutdown, after which it exits.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/status_matchers.h"
#include "base/temp_dir.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ttrpc/ttrpc.h"

namespace berth::ttrpc {
namespace {

using ::testing::HasSubstr;
namespace task = ::containerd::task::v2;

constexpr char kTask[] = "containerd.task.v2.Task";

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST(RuncShimPeer, ConnectStateAndShutdownOverTtrpc) {
  if (::access("/usr/bin/containerd-shim-runc-v2", X_OK) != 0) {
    GTEST_SKIP() << "containerd-shim-runc-v2 is not installed (tools/dev test installs it)";
  }
  TempDir dir;
  const std::string bundle = dir.path() + "/bundle";
  ASSERT_EQ(::mkdir(bundle.c_str(), 0700), 0);
  // start reads the bundle's OCI spec for its grouping annotations.
  std::ofstream(bundle + "/config.json") << "{\"ociVersion\": \"1.0.2\"}";
  // The shim logs into this FIFO, which containerd would read; so do we.
  ASSERT_EQ(::mkfifo((bundle + "/log").c_str(), 0600), 0);
  int log_fd = ::open((bundle + "/log").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(log_fd, 0);
  UniqueFd log(log_fd);

  // A containerd address of this test's own: the shim's socket is named
  // after it, so it is this test's alone.
  const std::string command =
      absl::StrCat("cd ", bundle, " && TTRPC_ADDRESS=", dir.path(), "/events.sock ",
                   "containerd-shim-runc-v2 -namespace berth-test -address ", dir.path(),
                   "/containerd.sock -publish-binary /bin/true -id peer start </dev/null");
  FILE* start = ::popen(command.c_str(), "r");
  ASSERT_NE(start, nullptr);
  char buf[512];
  std::string address;
  while (size_t n = std::fread(buf, 1, sizeof(buf), start)) address.append(buf, n);
  ASSERT_EQ(::pclose(start), 0) << address;
  address = std::string(absl::StripAsciiWhitespace(address));
  ASSERT_TRUE(absl::StartsWith(address, "unix://")) << address;
  const std::string socket_path = address.substr(7);

  absl::StatusOr<std::unique_ptr<Client>> client = Client::Dial(address);
  ASSERT_THAT(client, IsOk());
  CallOptions options;
  options.metadata = {{kNamespaceKey, "berth-test"}};
  options.timeout = absl::Seconds(10);

  task::ConnectRequest connect;
  connect.set_id("peer");
  absl::StatusOr<std::string> reply =
      (*client)->Call(kTask, "Connect", connect.SerializeAsString(), options);
  ASSERT_THAT(reply, IsOk());
  task::ConnectResponse connected;
  ASSERT_TRUE(connected.ParseFromString(*reply));
  const pid_t shim = static_cast<pid_t>(connected.shim_pid());
  ASSERT_GT(shim, 0);
  EXPECT_TRUE(Alive(shim));

  task::StateRequest state;
  state.set_id("nothing-here");
  reply = (*client)->Call(kTask, "State", state.SerializeAsString(), options);
  EXPECT_THAT(reply, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(reply.status().message(), HasSubstr("not found"));

  // Concurrent calls on the one connection, answered by stream id.
  std::vector<std::thread> threads;
  std::atomic<int> answered = 0;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 25; ++j) {
        if ((*client)->Call(kTask, "Connect", connect.SerializeAsString(), options).ok())
          ++answered;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(answered, 100);

  reply = (*client)->Call("containerd.task.v2.Nothing", "State", "", options);
  EXPECT_THAT(reply, StatusIs(absl::StatusCode::kUnimplemented));

  task::ShutdownRequest shutdown;
  shutdown.set_id("peer");
  shutdown.set_now(true);
  // It may exit before answering: both are a shutdown.
  reply = (*client)->Call(kTask, "Shutdown", shutdown.SerializeAsString(), options);
  if (!reply.ok()) {
    EXPECT_THAT(reply, StatusIs(absl::StatusCode::kUnavailable));
  }
  for (int i = 0; i < 200 && Alive(shim); ++i) ::usleep(25'000);
  if (Alive(shim)) {
    ADD_FAILURE() << "the shim did not exit on Shutdown";
    ::kill(shim, SIGKILL);  // ours: started by this test
  }
  client->reset();
  ::unlink(socket_path.c_str());
}

}  // namespace
}  // namespace berth::ttrpc
