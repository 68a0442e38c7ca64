// The runtime v2 shim as a real containerd (Debian's 1.6, private root,
// state and socket) drives it through `ctr run --runtime …`: the same
// assertions for containerd-shim-berth-v1 and for containerd's own
// containerd-shim-runc-v2, which proves them honest.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/files.h"
#include "base/status_matchers.h"
#include "base/temp_dir.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/content_client.h"
#include "tests/harness.h"

namespace berth::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// The type containerd's clients give the runtime spec's LinuxResources.
constexpr char kLinuxResources[] =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

class ShimTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    // containerd finds io.containerd.berth.v1 as containerd-shim-berth-v1
    // on its PATH.
    const char* path = ::getenv("PATH");
    ::setenv("PATH", absl::StrCat(ShimDir(), ":", path ? path : "/usr/bin:/bin").c_str(), 1);
  }

  void SetUp() override {
    ASSERT_THAT(containerd_.Start(), IsOk());
    CommandResult r = ImportBusybox(containerd_, dir_.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void TearDown() override { RemoveTasksAndContainers(containerd_); }

  CommandResult Ctr(const std::vector<std::string>& args) {
    return testing::Ctr(containerd_, args);
  }

  // `ctr …` with `input` on its stdin.
  CommandResult CtrWithInput(const std::vector<std::string>& args, const std::string& input) {
    std::vector<std::string> argv = {"ctr", "--address", containerd_.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(30), input);
  }

  // `ctr run --runtime <the runtime> <extra> busybox <id> <command>`.
  CommandResult Run(const std::vector<std::string>& extra, const std::string& id,
                    const std::vector<std::string>& command) {
    std::vector<std::string> args = {"run", "--runtime", GetParam(), "--fifo-dir", dir_.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(kBusybox);
    args.push_back(id);
    args.insert(args.end(), command.begin(), command.end());
    return Ctr(args);
  }

  std::string TaskStatus(const std::string& id) { return testing::TaskStatus(containerd_, id); }

  // Task "limited": a sleeping busybox with a 64 MiB memory limit.
  void RunLimited() {
    CommandResult r =
        Run({"-d", "--memory-limit", "67108864"}, "limited", {"/bin/busybox", "sleep", "300"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Tasks.Update through containerd's API (ctr 1.6 has no command for it).
  grpc::Status Update(const std::string& id, const std::string& type_url,
                      const std::string& resources) {
    auto tasks = ::containerd::services::tasks::v1::Tasks::NewStub(Connect(containerd_));
    ::containerd::services::tasks::v1::UpdateTaskRequest request;
    request.set_container_id(id);
    request.mutable_resources()->set_type_url(type_url);
    request.mutable_resources()->set_value(resources);
    google::protobuf::Empty empty;
    return tasks->Update(NamespacedContext("default").get(), request, &empty);
  }

  // The value `ctr task metrics <id>` gives `metric` ("" if it gives none).
  std::string Metric(const std::string& id, const std::string& metric) {
    for (absl::string_view line : absl::StrSplit(Ctr({"task", "metrics", id}).out, '\n')) {
      std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (fields.size() == 2 && fields[0] == metric) return std::string(fields[1]);
    }
    return "";
  }

  // The pid of this containerd's shim that serves task `id` (0 if none
  // does).
  pid_t ShimPid(const std::string& id) {
    std::vector<pid_t> pids = ShimPids(containerd_, id);
    return pids.size() == 1 ? pids[0] : 0;
  }

  TempDir dir_;
  KilledShimSockets killed_shims_;
  Daemon containerd_{Peer::kContainerd};
};

const RunContainerdTidy kRunContainerdTidy;

INSTANTIATE_TEST_SUITE_P(Runtimes, ShimTest,
                         ::testing::Values("io.containerd.berth.v1", "io.containerd.runc.v2"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "io.containerd.berth.v1" ? "berth" : "runc";
                         });

TEST_P(ShimTest, RunRmGivesOutputAndExitCodes) {
  CommandResult r = Run({"--rm"}, "hello", {"/bin/busybox", "echo", "hello from a container"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from a container\n");
  r = Run({"--rm"}, "three", {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_THAT(r.err, HasSubstr("err\n"));
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "") << "--rm removed them";
}

TEST_P(ShimTest, DetachedTaskListsKillsAndDeletes) {
  CommandResult r = Run({"-d"}, "sleeper", {"/bin/busybox", "sleep", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(TaskStatus("sleeper"), "RUNNING");
  r = Ctr({"task", "ps", "sleeper"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("PID"));
  // A running task cannot be deleted.
  r = Ctr({"task", "delete", "sleeper"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("stopped"));
  // PID 1 ignores SIGTERM without a handler: SIGKILL stops it.
  ASSERT_EQ(Ctr({"task", "kill", "-s", "SIGKILL", "sleeper"}).exit_code, 0);
  WaitUntil([&] { return TaskStatus("sleeper") == "STOPPED"; });
  EXPECT_EQ(TaskStatus("sleeper"), "STOPPED");
  r = Ctr({"task", "delete", "sleeper"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(TaskStatus("sleeper"), "");
  EXPECT_EQ(Ctr({"containers", "rm", "sleeper"}).exit_code, 0);
  // Killing what is gone says so.
  r = Ctr({"task", "kill", "sleeper"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("not found"));
}

// `ctr task exec` runs more processes in a running task, with their own
// output and exit codes; a duplicate exec id is refused. Pause freezes the
// task and resume thaws it.
TEST_P(ShimTest, ExecPauseAndResume) {
  CommandResult r = Run({"-d"}, "busy", {"/bin/busybox", "sleep", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"task", "exec", "--exec-id", "e1", "--fifo-dir", dir_.path(), "busy", "/bin/busybox",
           "echo", "from exec"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from exec\n");
  r = Ctr({"task", "exec", "--exec-id", "e2", "--fifo-dir", dir_.path(), "busy", "/bin/sh", "-c",
           "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  // An exec id in use: one exec waits in the background while another
  // asks for its id.
  Process waiting({"ctr", "--address", containerd_.address(), "task", "exec", "--exec-id", "same",
                   "--fifo-dir", dir_.path(), "busy", "/bin/busybox", "sleep", "30"});
  auto processes = [&] {
    std::string out = Ctr({"task", "ps", "busy"}).out;
    return std::count(out.begin(), out.end(), '\n') - 1;  // less the header
  };
  WaitUntil([&] { return processes() >= 2; });
  EXPECT_EQ(processes(), 2) << "the init and the waiting exec";
  r = Ctr({"task", "exec", "--exec-id", "same", "--fifo-dir", dir_.path(), "busy", "/bin/busybox",
           "true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  waiting.Stop(SIGKILL);

  ASSERT_EQ(Ctr({"task", "pause", "busy"}).exit_code, 0);
  EXPECT_EQ(TaskStatus("busy"), "PAUSED");
  ASSERT_EQ(Ctr({"task", "resume", "busy"}).exit_code, 0);
  EXPECT_EQ(TaskStatus("busy"), "RUNNING");
}

// `ctr task ps` lists every process in the container — children of the
// init too — and exec'd processes with their exec id.
TEST_P(ShimTest, PsListsEveryProcessInTheContainer) {
  CommandResult r = Run({"-d"}, "family", {"/bin/sh", "-c", "sleep 310 & sleep 311 & wait"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctr({"task", "exec", "-d", "--exec-id", "e1", "--fifo-dir", dir_.path(), "family",
           "/bin/busybox", "sleep", "302"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto listing = [&] { return Ctr({"task", "ps", "family"}).out; };
  auto processes = [&] {
    std::string out = listing();
    return std::count(out.begin(), out.end(), '\n') - 1;  // less the header
  };
  WaitUntil([&] { return processes() == 4; });
  EXPECT_EQ(processes(), 4) << listing() << "sh, its two sleeps and the exec";
  EXPECT_THAT(listing(), HasSubstr("e1"));
}

// `ctr task metrics`: the container's cgroup statistics as containerd's
// cgroups library gives them — its memory limit and use, its processes,
// the CPU it used — in the table and in JSON.
TEST_P(ShimTest, MetricsReportTheContainersCgroup) {
  CommandResult r = Run({"-d", "--memory-limit", "67108864"}, "measured",
                        {"/bin/sh", "-c", "sleep 310 & sleep 311 & wait"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  WaitUntil([&] { return Metric("measured", "pids.current") == "3"; });
  EXPECT_EQ(Metric("measured", "pids.current"), "3") << "sh and its two sleeps";
  EXPECT_EQ(Metric("measured", "memory.limit_in_bytes"), "67108864");
  EXPECT_THAT(Metric("measured", "memory.usage_in_bytes"), ContainsRegex("^[1-9][0-9]*$"));
  EXPECT_THAT(Metric("measured", "cpuacct.usage"), ContainsRegex("^[1-9][0-9]*$"));
  r = Ctr({"task", "metrics", "--format", "json", "measured"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part :
       {"\"pids\"", "\"cpu\"", "\"per_cpu\"", "\"memory\"", "\"total_rss\"", "\"blkio\""}) {
    EXPECT_THAT(r.out, HasSubstr(part));
  }
}

// Tasks.Update (ctr 1.6 has no command for it: through containerd's API)
// sets new cgroup limits through the runtime; an unknown task is NotFound.
TEST_P(ShimTest, UpdateSetsNewLimits) {
  RunLimited();
  const std::string resources = R"({"memory":{"limit":33554432},"pids":{"limit":50}})";
  grpc::Status status = Update("limited", kLinuxResources, resources);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Metric("limited", "memory.limit_in_bytes"), "33554432");
  EXPECT_EQ(Metric("limited", "pids.limit"), "50");
  status = Update("nothing-here", kLinuxResources, resources);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
}

// `ctr task checkpoint`: the runtime's checkpoint through CRIU. Where CRIU
// works, the image lands in the directory named and the task runs on;
// where it cannot (on these machines `criu check` fails: "vdso: Failed to
// fill self vdso symtable"), the runtime's error reaches ctr and the task
// runs on — the same on both shims.
TEST_P(ShimTest, CheckpointGoesThroughTheRuntime) {
  CommandResult r = Run({"-d"}, "ckpt", {"/bin/busybox", "sleep", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(CheckpointMismatch(containerd_, "ckpt", dir_.path() + "/ckpt-image"), "");
}

// Tasks whose specs carry the same group annotation (a pod's containers)
// share one shim, which serves each as its own task and stays until the
// last is deleted; a task without one has a shim of its own.
TEST_P(ShimTest, OneShimServesAGroup) {
  for (const std::string id : {"pod-a", "pod-b"}) {
    CommandResult r = Run({"-d", "--annotation", "io.containerd.runc.v2.group=pod-1"}, id,
                          {"/bin/busybox", "sleep", "300"});
    ASSERT_EQ(r.exit_code, 0) << id << ": " << r.err;
  }
  CommandResult r = Run({"-d"}, "alone", {"/bin/busybox", "sleep", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // This containerd's shims: each is started with its address.
  auto shims = [&] { return ShimPids(containerd_).size(); };
  EXPECT_EQ(shims(), 2u);
  EXPECT_EQ(TaskStatus("pod-a"), "RUNNING");
  EXPECT_EQ(TaskStatus("pod-b"), "RUNNING");
  r = Ctr({"task", "exec", "--exec-id", "e1", "--fifo-dir", dir_.path(), "pod-b", "/bin/busybox",
           "echo", "from pod-b"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from pod-b\n");

  ASSERT_EQ(Ctr({"task", "kill", "-s", "SIGKILL", "pod-a"}).exit_code, 0);
  WaitUntil([&] { return TaskStatus("pod-a") == "STOPPED"; });
  ASSERT_EQ(Ctr({"task", "delete", "pod-a"}).exit_code, 0);
  EXPECT_EQ(TaskStatus("pod-b"), "RUNNING") << "its shim stays for it";
  EXPECT_EQ(shims(), 2u);
  r = Ctr({"task", "exec", "--exec-id", "e2", "--fifo-dir", dir_.path(), "pod-b", "/bin/busybox",
           "echo", "still here"});
  EXPECT_EQ(r.out, "still here\n") << r.err;

  ASSERT_EQ(Ctr({"task", "kill", "-s", "SIGKILL", "pod-b"}).exit_code, 0);
  WaitUntil([&] { return TaskStatus("pod-b") == "STOPPED"; });
  ASSERT_EQ(Ctr({"task", "delete", "pod-b"}).exit_code, 0);
  WaitUntil([&] { return shims() == 1u; });
  EXPECT_EQ(shims(), 1u) << "the group's shim goes with its last task";
}

// Where this shim does more than containerd's runc shim (which fails these
// two checks: `cat` never sees the end of its input, and output nobody
// reads stops the process once the FIFO is full), for Berth's alone.
class BerthShimTest : public ShimTest {};

INSTANTIATE_TEST_SUITE_P(Runtimes, BerthShimTest, ::testing::Values("io.containerd.berth.v1"),
                         [](const ::testing::TestParamInfo<std::string>&) { return "berth"; });

// Update's resources must be the runtime spec's LinuxResources: anything
// else is InvalidArgument naming its type, and the limits stay. (The runc
// shim answers Unknown.)
TEST_P(BerthShimTest, UpdateWithResourcesOfAnotherTypeIsInvalidArgument) {
  RunLimited();
  grpc::Status status = Update("limited", "example.com/WindowsResources", "{}");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("example.com/WindowsResources"));
  EXPECT_EQ(Metric("limited", "memory.limit_in_bytes"), "67108864");
}

// Without a terminal the process's stdio goes through pipes the shim
// copies: what ctr reads reaches the process, with its end; and output
// that nobody reads (ctr run -d leaves) never stops the process.
TEST_P(BerthShimTest, StdinReachesTheProcessAndUnreadOutputNeverBlocksIt) {
  CommandResult r = CtrWithInput({"run", "--rm", "--runtime", GetParam(), "--fifo-dir", dir_.path(),
                                  kBusybox, "cat", "/bin/busybox", "cat"},
                                 "through stdin\n");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "through stdin\n");

  r = Run({"-d"}, "chatty",
          {"/bin/sh", "-c",
           "/bin/busybox seq 1 300000; /bin/busybox touch /done; /bin/busybox sleep 300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool done = false;
  for (int i = 0; i < 100 && !done; ++i) {
    done = Ctr({"task", "exec", "--exec-id", absl::StrCat("probe", i), "--fifo-dir", dir_.path(),
                "chatty", "/bin/busybox", "test", "-f", "/done"})
               .exit_code == 0;
    if (!done) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(done) << "2 MB of output nobody read stopped the process";
}

// `ctr run -t`: the process gets a terminal (the runtime's pty, passed
// through its console socket), its output comes back through it, and its
// exit code too. ctr needs a terminal of its own: script(1) gives it one.
TEST_P(ShimTest, RunWithATerminal) {
  const std::string command =
      absl::StrCat("ctr --address ", containerd_.address(), " run -t --rm --runtime ", GetParam(),
                   " --fifo-dir ", dir_.path(), " ", kBusybox,
                   " tty /bin/sh -c '/bin/busybox tty; echo on a terminal; exit 5'");
  CommandResult r = RunCommand({"script", "-qec", command, "/dev/null"}, absl::Seconds(30), "");
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("/dev/pts/"));
  EXPECT_THAT(r.out, HasSubstr("on a terminal"));
  EXPECT_EQ(TaskStatus("tty"), "");
}

// `ctr task exec -t`: an exec'd process gets a terminal of its own.
TEST_P(ShimTest, ExecWithATerminal) {
  CommandResult r = Run({"-d"}, "host", {"/bin/busybox", "sleep", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string command = absl::StrCat(
      "ctr --address ", containerd_.address(), " task exec -t --exec-id t1 ", "--fifo-dir ",
      dir_.path(), " host /bin/sh -c '/bin/busybox tty; echo exec on a terminal; exit 4'");
  r = RunCommand({"script", "-qec", command, "/dev/null"}, absl::Seconds(30), "");
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("/dev/pts/"));
  EXPECT_THAT(r.out, HasSubstr("exec on a terminal"));
}

// `--log-uri file://…`: stdout and stderr go to that file, whose directory
// the shim makes.
TEST_P(ShimTest, AFileLogUriGetsTheOutput) {
  const std::string log = dir_.path() + "/logs/file-logged.log";
  CommandResult r = Run({"--rm", "--log-uri", "file://" + log}, "file-logged",
                        {"/bin/sh", "-c", "echo to stdout; echo to stderr >&2; exit 2"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.out, "");
  absl::StatusOr<std::string> logged = files::ReadFile(log);
  ASSERT_THAT(logged, IsOk());
  EXPECT_THAT(*logged, HasSubstr("to stdout\n"));
  EXPECT_THAT(*logged, HasSubstr("to stderr\n"));
}

// `--log-uri binary://…?k=v`: the shim starts that program with the
// query as arguments, the container's id and namespace in its environment,
// stdout on fd 3 and stderr on fd 4, and waits for it to close fd 5.
TEST_P(ShimTest, ABinaryLogUriGetsTheOutput) {
  const std::string out = dir_.path() + "/binary-out";
  const std::string logger = dir_.path() + "/logger.sh";
  // The logger closes fd 5 (ready) before its copies start, which would
  // hold it open.
  ASSERT_THAT(files::WriteFile(logger,
                               "#!/bin/sh\n"
                               "dir=$2\n"
                               "echo \"$1 $CONTAINER_NAMESPACE/$CONTAINER_ID\" > $dir/env\n"
                               "exec 5>&-\n"
                               "/bin/cat <&3 > $dir/stdout &\n"
                               "/bin/cat <&4 > $dir/stderr &\n"
                               "wait\n",
                               0755),
              IsOk());
  ASSERT_THAT(files::MakeDirectories(out, 0755), IsOk());
  CommandResult r = Run({"--rm", "--log-uri", absl::StrCat("binary://", logger, "?dir=", out)},
                        "binary-logged", {"/bin/sh", "-c", "echo to stdout; echo to stderr >&2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files::ReadFile(out + "/env").value_or(""), "dir default/binary-logged\n");
  WaitUntil([&] { return !files::ReadFile(out + "/stderr").value_or("").empty(); });
  EXPECT_EQ(files::ReadFile(out + "/stdout").value_or(""), "to stdout\n");
  EXPECT_EQ(files::ReadFile(out + "/stderr").value_or(""), "to stderr\n");
}

// A task whose memory cgroup runs out kills its process, and the shim says
// so with /tasks/oom (busybox's tail keeps all of an endless line).
TEST_P(ShimTest, RunningOutOfMemoryIsAnOomEvent) {
  absl::StatusOr<std::unique_ptr<Process>> subscribed = SubscribeEvents(containerd_);
  ASSERT_THAT(subscribed, IsOk());
  Process& events = **subscribed;
  CommandResult r =
      Run({"--rm", "--memory-limit", "33554432"}, "hungry", {"/bin/busybox", "tail", "/dev/zero"});
  EXPECT_EQ(r.exit_code, 137) << r.err;
  EXPECT_TRUE(events.WaitForOutput("/tasks/oom", absl::Seconds(10))) << events.Output();
  EXPECT_THAT(events.Output(), HasSubstr("hungry"));
  events.Stop(SIGTERM);
}

// Each shim's OOM score is one above its daemon's, so that the kernel
// kills shims before the daemon.
TEST_P(ShimTest, TheShimsOomScoreIsOneAboveContainerds) {
  auto score = [](pid_t pid) {
    return files::ReadFile(absl::StrCat("/proc/", pid, "/oom_score_adj")).value_or("?");
  };
  // Raised (lowering would take CAP_SYS_RESOURCE).
  ASSERT_THAT(files::WriteFile(absl::StrCat("/proc/", containerd_.pid(), "/oom_score_adj"), "10"),
              IsOk());
  CommandResult r = Run({"-d"}, "scored", {"/bin/busybox", "sleep", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const pid_t shim = ShimPid("scored");
  ASSERT_GT(shim, 0);
  EXPECT_EQ(score(containerd_.pid()), "10\n");
  EXPECT_EQ(score(shim), "11\n");
}

// A shim killed with SIGKILL: containerd cleans up with `<shim> delete`,
// which runs the task's runtime (here a `runc` first on containerd's PATH
// that logs its calls), so the container goes too.
TEST_P(ShimTest, AKilledShimIsCleanedUpByItsRuntime) {
  const std::string bin = dir_.path() + "/bin";
  const std::string calls = dir_.path() + "/runtime-calls";
  ASSERT_THAT(files::MakeDirectories(bin, 0755), IsOk());
  ASSERT_THAT(WriteNotingRunc(bin + "/runc", calls), IsOk());
  const std::string path = ::getenv("PATH");
  containerd_.Stop();
  ::setenv("PATH", absl::StrCat(bin, ":", path).c_str(), 1);
  absl::Status started = containerd_.Start();
  ::setenv("PATH", path.c_str(), 1);
  ASSERT_THAT(started, IsOk());

  CommandResult r = Run({"-d"}, "orphan", {"/bin/busybox", "sleep", "301"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const pid_t shim = ShimPid("orphan");
  ASSERT_GT(shim, 0);
  killed_shims_.Note(containerd_, "orphan");
  ASSERT_EQ(::kill(shim, SIGKILL), 0);
  auto deleted = [&] {
    return absl::StrContains(files::ReadFile(calls).value_or(""), "delete --force orphan");
  };
  EXPECT_TRUE(WaitUntil(deleted)) << files::ReadFile(calls).value_or("");
  EXPECT_TRUE(WaitUntil([&] { return TaskStatus("orphan") != "RUNNING"; }));
  EXPECT_TRUE(WaitUntil([] {
    return RunCommand({"pgrep", "-f", "busybox sleep 301"}).exit_code != 0;
  })) << "the container's process is gone";
}

// The shim outlives containerd: killed with SIGKILL and started again,
// containerd finds the running task through the shim's address file, and
// drives it to its end as before.
TEST_P(ShimTest, ContainerdRestartedFindsTheRunningTask) {
  CommandResult r = Run({"-d"}, "survivor", {"/bin/busybox", "sleep", "300"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(TaskStatus("survivor"), "RUNNING");
  containerd_.Stop(SIGKILL);
  ASSERT_THAT(containerd_.Start(), IsOk());
  EXPECT_EQ(TaskStatus("survivor"), "RUNNING");
  ASSERT_EQ(Ctr({"task", "kill", "-s", "SIGKILL", "survivor"}).exit_code, 0);
  WaitUntil([&] { return TaskStatus("survivor") == "STOPPED"; });
  EXPECT_EQ(TaskStatus("survivor"), "STOPPED");
  r = Ctr({"task", "delete", "survivor"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out + r.err, HasSubstr("137"));
}

TEST_P(ShimTest, TheRuntimesErrorReachesTheClient) {
  CommandResult r = Run({"--rm"}, "missing", {"/no/such/binary"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("/no/such/binary"));
  EXPECT_THAT(r.err, HasSubstr("no such file or directory"));
  EXPECT_EQ(TaskStatus("missing"), "");
}

TEST_P(ShimTest, TaskEventsReachContainerd) {
  absl::StatusOr<std::unique_ptr<Process>> subscribed = SubscribeEvents(containerd_);
  ASSERT_THAT(subscribed, IsOk());
  Process& events = **subscribed;
  CommandResult r = Run({"--rm"}, "evented", {"/bin/busybox", "true"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(events.WaitForOutput("/tasks/delete", absl::Seconds(10))) << events.Output();
  for (const char* topic : {"/tasks/create", "/tasks/start", "/tasks/exit"}) {
    EXPECT_THAT(events.Output(), HasSubstr(topic));
  }
  // The cgroup's removal wakes an OOM watch too; it is no OOM.
  EXPECT_THAT(events.Output(), Not(HasSubstr("/tasks/oom")));
  events.Stop(SIGTERM);
}

}  // namespace
}  // namespace berth::testing
