#include "tests/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/files.h"
#include "base/unique_fd.h"

extern char** environ;

namespace berth::testing {
namespace {

int ExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

struct Pipe {
  UniqueFd read, write;
};

Pipe MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// posix_spawnp with stdin, stdout and stderr from the given fds.
pid_t Spawn(const std::vector<std::string>& argv, int in, int out, int err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in, 0);
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, err, 2);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                         const std::string& input) {
  CommandResult result;
  Pipe in = MakePipe(), out = MakePipe(), err = MakePipe();
  pid_t pid = Spawn(argv, in.read.get(), out.write.get(), err.write.get());
  if (pid < 0) {
    result.err = absl::StrCat("spawn ", argv[0], ": ", std::strerror(errno));
    return result;
  }
  in.read.Reset();
  out.write.Reset();
  err.write.Reset();
  if (!input.empty()) {
    [[maybe_unused]] ssize_t n = ::write(in.write.get(), input.data(), input.size());
  }
  in.write.Reset();
  absl::Time deadline = absl::Now() + timeout;
  bool killed = false;
  while (out.read.valid() || err.read.valid()) {
    pollfd fds[2] = {{out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}};
    int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (wait_ms <= 0 || ::poll(fds, 2, wait_ms) == 0) {
      if (!killed) ::kill(pid, SIGKILL);
      killed = true;
      deadline = absl::Now() + absl::Seconds(5);
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        (i == 0 ? out.read : err.read).Reset();
        continue;
      }
      (i == 0 ? result.out : result.err).append(buf, n);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = ExitCode(status);
  if (killed) absl::StrAppend(&result.err, "\n[killed after timeout]");
  return result;
}

Process::Process(const std::vector<std::string>& argv) {
  Pipe out = MakePipe();
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  pid_ = Spawn(argv, null.get(), out.write.get(), out.write.get());
  out.write.Reset();
  if (pid_ < 0) {
    absl::MutexLock lock(&mu_);
    output_ = absl::StrCat("spawn ", argv[0], ": ", std::strerror(errno));
    eof_ = true;
    return;
  }
  reader_ = std::thread([this, fd = std::move(out.read)] {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof(buf))) > 0) {
      absl::MutexLock lock(&mu_);
      output_.append(buf, n);
    }
    absl::MutexLock lock(&mu_);
    eof_ = true;
  });
}

Process::~Process() {
  if (pid_ > 0 && !reaped_) Stop(SIGKILL);
  if (reader_.joinable()) reader_.join();
}

bool Process::WaitForOutput(const std::string& text, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return eof_ || output_.find(text) != std::string::npos;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  return output_.find(text) != std::string::npos;
}

std::string Process::Output() {
  absl::MutexLock lock(&mu_);
  return output_;
}

bool Process::Running() {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    exit_code_ = ExitCode(status);
    return false;
  }
  return true;
}

std::optional<int> Process::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return std::nullopt;
  absl::Time deadline = absl::Now() + timeout;
  // Reaping is the only way to learn of the exit without a pidfd; poll it.
  while (Running()) {
    if (absl::Now() > deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return exit_code_;
}

int Process::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  if (!reaped_) ::kill(pid_, signal);
  if (std::optional<int> code = Wait(timeout)) return *code;
  ::kill(pid_, SIGKILL);
  return *Wait(absl::InfiniteDuration());
}

std::string RunfilePath(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "berth", "/", path);
}

std::string BerthdPath() { return RunfilePath("daemon/berthd"); }

std::string PeerName(Peer peer) { return peer == Peer::kBerthd ? "berthd" : "containerd"; }

Daemon::Daemon(Peer peer) : peer_(peer) {}

Daemon::~Daemon() {
  if (process_ != nullptr) Stop();
}

absl::Status Daemon::Start(const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {peer_ == Peer::kBerthd ? BerthdPath() : "containerd"};
  // berthd finds containerd-shim-berth-v1 on its PATH, from the test's
  // runfiles when the test has it.
  if (peer_ == Peer::kBerthd &&
      ::access((ShimDir() + "/containerd-shim-berth-v1").c_str(), X_OK) == 0) {
    const char* path = std::getenv("PATH");
    argv.insert(argv.begin(),
                {"env", absl::StrCat("PATH=", ShimDir(), ":", path ? path : "/usr/bin:/bin")});
  }
  if (peer_ == Peer::kContainerd) {
    const std::string config = dir_.path() + "/containerd.toml";
    std::ofstream(config) << "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n";
    argv.insert(argv.end(), {"--config", config});
  }
  argv.insert(argv.end(), {"--root", root(), "--state", state(), "--address", address()});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(argv);
  // Both daemons say so in these words once they serve.
  if (process_->WaitForOutput("successfully booted", absl::Seconds(30))) {
    return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat(PeerName(peer_), " did not start (",
                                             absl::StrJoin(argv, " "), "); its log:\n",
                                             process_->Output()));
}

int Daemon::Stop(int signal) {
  if (process_ == nullptr) return -1;
  return process_->Stop(signal);
}

std::string Daemon::Log() { return process_ ? process_->Output() : ""; }

std::shared_ptr<grpc::Channel> Connect(const Daemon& daemon) {
  return grpc::CreateChannel("unix:" + daemon.address(), grpc::InsecureChannelCredentials());
}

CommandResult MakeImageArchive(const std::string& format, const std::string& out,
                               const std::string& name, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {"env"};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), {RunfilePath("tests/make-image-archive.sh"), format, out, name});
  return RunCommand(argv);
}

absl::StatusOr<std::unique_ptr<Process>> SubscribeEvents(const Daemon& daemon,
                                                         const std::string& filter) {
  std::vector<std::string> argv = {"ctr", "--address", daemon.address(), "events"};
  // ctr ORs its filters: the probes are heard whatever `filter` selects.
  if (!filter.empty()) argv.insert(argv.end(), {filter, "topic==\"/namespaces/create\""});
  auto events = std::make_unique<Process>(argv);
  for (int i = 0; i < 50; ++i) {
    Ctr(daemon, {"namespaces", "create", absl::StrCat("probe-", i)});
    if (events->WaitForOutput("/namespaces/create", absl::Milliseconds(100))) return events;
  }
  return absl::UnavailableError("ctr events heard nothing: " + events->Output());
}

bool WaitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 200; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

std::map<std::string, std::pair<std::string, std::string>> TaskTable(const Daemon& daemon) {
  std::map<std::string, std::pair<std::string, std::string>> table;
  for (absl::string_view line : absl::StrSplit(Ctr(daemon, {"task", "ls"}).out, '\n')) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() == 3 && fields[0] != "TASK") table[fields[0]] = {fields[1], fields[2]};
  }
  return table;
}

std::string TaskStatus(const Daemon& daemon, const std::string& id) {
  const auto table = TaskTable(daemon);
  auto found = table.find(id);
  return found == table.end() ? "" : found->second.second;
}

absl::Status WriteNotingRunc(const std::string& path, const std::string& calls) {
  return files::WriteFile(
      path, absl::StrCat("#!/bin/sh\necho \"$@\" >> ", calls, "\nexec /usr/sbin/runc \"$@\"\n"),
      0755);
}

void RemoveTasksAndContainers(const Daemon& daemon) {
  auto listed = [&](const std::vector<std::string>& args) {
    std::vector<std::string> ids = absl::StrSplit(Ctr(daemon, args).out, '\n', absl::SkipEmpty());
    return ids;
  };
  for (const std::string& id : listed({"task", "ls", "-q"})) {
    Ctr(daemon, {"task", "kill", "-s", "SIGKILL", id});
  }
  for (const std::string& id : listed({"task", "ls", "-q"})) {
    WaitUntil([&] { return TaskStatus(daemon, id) == "STOPPED"; });
    Ctr(daemon, {"task", "delete", id});
  }
  for (const std::string& id : listed({"containers", "ls", "-q"})) {
    Ctr(daemon, {"containers", "rm", id});
  }
}

CommandResult ImportBusybox(const Daemon& daemon, const std::string& dir) {
  const std::string archive = dir + "/busybox.tar";
  CommandResult r = MakeImageArchive("oci", archive, kBusybox);
  if (r.exit_code != 0) return r;
  return Ctr(daemon, {"images", "import", archive});
}

std::string ShimDir() {
  const std::string shim = RunfilePath("shim/containerd-shim-berth-v1");
  return shim.substr(0, shim.rfind('/'));
}

std::vector<pid_t> ShimPids(const Daemon& daemon, const std::string& id,
                            const std::string& binary) {
  std::vector<pid_t> pids;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator("/proc")) {
    pid_t pid;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream file(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    std::vector<std::string> argv = absl::StrSplit(cmdline, '\0');
    if (argv.empty() || argv[0].find(binary) == std::string::npos) continue;
    auto flag = [&](const std::string& name) -> std::string {
      auto at = std::find(argv.begin(), argv.end(), name);
      return at != argv.end() && at + 1 != argv.end() ? *(at + 1) : "";
    };
    if (flag("-address") != daemon.address()) continue;
    if (!id.empty() && flag("-id") != id) continue;
    pids.push_back(pid);
  }
  return pids;
}

KilledShimSockets::~KilledShimSockets() {
  for (const std::string& path : paths_) ::unlink(path.c_str());
}

void KilledShimSockets::Note(const Daemon& daemon, const std::string& id) {
  std::ifstream file(daemon.state() + "/io.containerd.runtime.v2.task/default/" + id + "/address");
  std::string address((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  absl::string_view path = absl::StripAsciiWhitespace(address);
  absl::ConsumePrefix(&path, "unix://");
  if (!path.empty()) paths_.emplace_back(path);
}

RunContainerdTidy::RunContainerdTidy() : existed_(::access("/run/containerd", F_OK) == 0) {}

RunContainerdTidy::~RunContainerdTidy() {
  if (!existed_) {
    RunCommand({"find", "/run/containerd", "-depth", "-type", "d", "-empty", "-delete"});
  }
}

std::string CheckpointMismatch(const Daemon& daemon, const std::string& id,
                               const std::string& image) {
  const CommandResult checkpoint = Ctr(daemon, {"task", "checkpoint", "--image-path", image, id});
  if (RunCommand({"criu", "check"}).exit_code == 0) {
    if (checkpoint.exit_code != 0) return "checkpoint failed: " + checkpoint.err;
    if (::access((image + "/inventory.img").c_str(), F_OK) != 0) return "no CRIU image in " + image;
  } else if (checkpoint.exit_code == 0) {
    return "checkpoint succeeded where CRIU cannot run";
  } else if (checkpoint.err.find("criu") == std::string::npos) {
    return "the error does not name criu: " + checkpoint.err;
  }
  if (TaskStatus(daemon, id) != "RUNNING") return "the task no longer runs";
  return "";
}

CommandResult InMountedSnapshot(const std::string& mount_command, const std::string& target,
                                const std::string& script) {
  return RunCommand(
      {"unshare", "-m", "--propagation", "private", "sh", "-ec",
       absl::StrCat("mkdir -p ", target, "\n", mount_command, "\nT=", target, "\n", script)});
}

CommandResult Ctr(const Daemon& daemon, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ctr", "--address", daemon.address()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

}  // namespace berth::testing
