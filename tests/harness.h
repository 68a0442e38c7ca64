// What integration tests stand on: running commands (the real `ctr`), and a
// real daemon — berthd, or containerd as the reference peer — on its own
// temporary root, state directory and socket under /tmp, stopped and removed
// when the test ends.
//
//   Daemon berthd;  // or Daemon containerd(Peer::kContainerd);
//   ASSERT_THAT(berthd.Start(), IsOk());
//   CommandResult r = Ctr(berthd, {"namespaces", "ls"});
//   EXPECT_EQ(r.exit_code, 0) << r.err;
//
// Tests of behaviour containerd's API defines run against both peers: the
// same assertions passing on containerd prove them honest.
#ifndef BERTH_TESTS_HARNESS_H_
#define BERTH_TESTS_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/temp_dir.h"

namespace berth::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal if killed
  std::string out;
  std::string err;
};

// Runs argv[0] (searched on PATH) to completion, feeding it `input`; killed
// after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(30), const std::string& input = "");

// A child process whose stdout and stderr are collected by a thread. Killed
// (SIGKILL) and reaped on destruction unless it was waited for.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Waits until the output (stdout and stderr together) contains `text`, or
  // the process exits, or `timeout` passes. True if the text appeared.
  bool WaitForOutput(const std::string& text, absl::Duration timeout);
  std::string Output();
  // Waits up to `timeout` for the process to exit by itself: its exit code,
  // or nullopt if it is still running.
  std::optional<int> Wait(absl::Duration timeout);
  // Sends `signal`, then SIGKILL if it has not exited within `timeout`;
  // returns the exit code (128 + signal if killed).
  int Stop(int signal, absl::Duration timeout = absl::Seconds(10));
  bool Running();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::thread reader_;
  absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

// A file of the test's data (`data` in BUILD), by its path in the workspace.
std::string RunfilePath(absl::string_view path);

// The berthd binary this test was built with.
std::string BerthdPath();

enum class Peer { kBerthd, kContainerd };

// "berthd" or "containerd", for test names.
std::string PeerName(Peer peer);

class Daemon {
 public:
  explicit Daemon(Peer peer = Peer::kBerthd);
  ~Daemon();

  // Starts the daemon with --root, --state and --address in its temp dir
  // plus `extra_args`, and waits until it serves. containerd runs without
  // its CRI plugin, which would reach beyond the temp dir. On failure the
  // status carries the daemon's log.
  absl::Status Start(const std::vector<std::string>& extra_args = {});
  // Sends `signal` and returns the exit code.
  int Stop(int signal = SIGTERM);

  const std::string& dir() const { return dir_.path(); }
  std::string root() const { return dir_.path() + "/root"; }
  std::string state() const { return dir_.path() + "/state"; }
  std::string address() const { return dir_.path() + "/daemon.sock"; }
  Peer peer() const { return peer_; }
  // Its pid while it runs; -1 before Start.
  pid_t pid() const { return process_ == nullptr ? -1 : process_->pid(); }
  std::string Log();

 private:
  Peer peer_;
  TempDir dir_;
  std::unique_ptr<Process> process_;
};

// A gRPC channel to the daemon's socket.
std::shared_ptr<grpc::Channel> Connect(const Daemon& daemon);

// `ctr --address <the daemon's socket> args...`.
CommandResult Ctr(const Daemon& daemon, const std::vector<std::string>& args);

// tests/make-image-archive.sh FORMAT OUT NAME, with `env` ("KEY=value":
// the script's options) in its environment; it prints a digest.
CommandResult MakeImageArchive(const std::string& format, const std::string& out,
                               const std::string& name, const std::vector<std::string>& env = {});

// Starts `ctr events` on `daemon` for the topics `filter` selects (""
// for all) and creates namespaces ("probe-N") until it hears one: the
// subscription is asynchronous, and once it has heard one, what follows is
// heard too. Unavailable, quoting what it printed, if it hears nothing in
// 5 s.
absl::StatusOr<std::unique_ptr<Process>> SubscribeEvents(const Daemon& daemon,
                                                         const std::string& filter = "");

// Polls `done` every 50 ms for up to 10 s; its last answer.
bool WaitUntil(const std::function<bool()>& done);

// `ctr task ls` of the default namespace: id → (pid, status).
std::map<std::string, std::pair<std::string, std::string>> TaskTable(const Daemon& daemon);

// The STATUS column `ctr task ls` gives task `id` of the default namespace
// ("" when it lists none).
std::string TaskStatus(const Daemon& daemon, const std::string& id);

// Writes at `path` a runc that appends its arguments, a line a call, to
// `calls`, then runs /usr/sbin/runc with them.
absl::Status WriteNotingRunc(const std::string& path, const std::string& calls);

// What a failed case may leave in the default namespace: every task is
// killed (SIGKILL) and deleted, every container removed.
void RemoveTasksAndContainers(const Daemon& daemon);

// The test image MakeImageArchive builds from busybox-static.
inline constexpr char kBusybox[] = "docker.io/library/busybox:latest";

// Imports (and unpacks) kBusybox into `daemon`, building its archive in
// `dir`.
CommandResult ImportBusybox(const Daemon& daemon, const std::string& dir);

// The directory containerd-shim-berth-v1 is in, in the test's runfiles.
std::string ShimDir();

// The shims serving `daemon` (started with its -address) whose program's
// name contains `binary`, for task `id` if `id` is not empty: by their
// command lines, so never a process some other daemon started.
std::vector<pid_t> ShimPids(const Daemon& daemon, const std::string& id = "",
                            const std::string& binary = "containerd-shim-");

// Unlinks, when it goes, the sockets of the shims a test kills: a killed
// shim cannot, and containerd's runc shim keeps them under /run/containerd
// whatever containerd's state dir.
class KilledShimSockets {
 public:
  KilledShimSockets() = default;
  KilledShimSockets(const KilledShimSockets&) = delete;
  KilledShimSockets& operator=(const KilledShimSockets&) = delete;
  ~KilledShimSockets();
  // Notes the socket of the shim of `daemon`'s task `id` (default
  // namespace), from its bundle's address file.
  void Note(const Daemon& daemon, const std::string& id);

 private:
  std::vector<std::string> paths_;
};

// containerd's runc shim keeps runc's state and its sockets under
// /run/containerd whatever containerd's state dir. One of these for a test
// binary removes, when it goes, the empty directories left there — unless
// /run/containerd was there before.
class RunContainerdTidy {
 public:
  RunContainerdTidy();
  ~RunContainerdTidy();

 private:
  bool existed_;
};

// Runs `ctr task checkpoint --image-path <image> <id>` on `daemon` and
// returns "" if it did what this host allows — where `criu check` passes,
// success and CRIU's image in `image`; where CRIU cannot run (these
// machines' kernel), a failure whose message names criu (the runtime's own
// error) — and the task runs on. Else what went wrong.
std::string CheckpointMismatch(const Daemon& daemon, const std::string& id,
                               const std::string& image);

// Runs the `mount …` command ctr printed for a snapshot inside a private
// mount namespace, then `script` with $T the mount point: the mount goes
// with the namespace, whatever happens.
CommandResult InMountedSnapshot(const std::string& mount_command, const std::string& target,
                                const std::string& script);

}  // namespace berth::testing

#endif  // BERTH_TESTS_HARNESS_H_
