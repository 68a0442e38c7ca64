#include "shim/shim.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/files.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/status.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"
#include "github.com/containerd/containerd/api/services/ttrpc/events/v1/events.pb.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "nlohmann/json.hpp"
#include "proto/any.h"
#include "shim/cgroups.h"
#include "snapshotter/mount.h"

namespace berth::shim {
namespace {

namespace task = ::containerd::task::v2;
namespace types = ::containerd::v1::types;

constexpr char kTaskService[] = "containerd.task.v2.Task";
constexpr char kVersion[] = "berth-shim-v1";
// The OCI runtime binary unless the task's options name another.
constexpr char kDefaultRuntime[] = "runc";
// In the bundle: the OCI runtime binary and its root, one a line.
constexpr char kRuntimeFile[] = "runtime";
// What Update's resources must be: the name containerd's typeurl gives the
// runtime spec's LinuxResources.
constexpr char kLinuxResourcesType[] = "opencontainers/runtime-spec/1/LinuxResources";

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
}

google::protobuf::Timestamp Now() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  google::protobuf::Timestamp out;
  out.set_seconds(ts.tv_sec);
  out.set_nanos(static_cast<int32_t>(ts.tv_nsec));
  return out;
}

// Where the OCI runtime keeps its state: beside the daemon's socket, as
// containerd's runc shim has it (/run/containerd/runc/<namespace>).
std::string RuntimeRoot(const Flags& flags) {
  return absl::StrCat(Dirname(flags.address), "/runc/", flags.ns);
}

// The last "msg" runc's JSON log holds: the reason a runtime command failed.
std::string LastRuntimeError(const std::string& log_path) {
  absl::StatusOr<std::string> log = files::ReadFile(log_path);
  if (!log.ok()) return "";
  absl::string_view last;
  for (absl::string_view line : absl::StrSplit(*log, '\n')) {
    if (absl::StrContains(line, "\"level\":\"error\"")) last = line;
  }
  size_t at = last.find("\"msg\":\"");
  if (at == absl::string_view::npos) return std::string(last);
  at += 7;
  size_t end = last.find("\",", at);
  return std::string(
      last.substr(at, end == absl::string_view::npos ? absl::string_view::npos : end - at));
}

// In a forked child: the signal state a program expects — the shim blocks
// SIGCHLD (for its signalfd) and ignores SIGPIPE, and both would survive
// the exec — then `argv`, with `envp` (nullptr: the shim's environment and
// a PATH search).
[[noreturn]] void ExecChild(char* const argv[], char* const envp[]) {
  ::sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (envp == nullptr) {
    ::execvp(argv[0], argv);
  } else {
    ::execve(argv[0], argv, envp);
  }
  ::_exit(127);
}

// A close-on-exec pipe; errors name `what`.
absl::Status MakePipe(UniqueFd& read, UniqueFd& write, absl::string_view what) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("pipe", what);
  read.Reset(p[0]);
  write.Reset(p[1]);
  return absl::OkStatus();
}

// Runs the OCI runtime with `args` and waits for it; its stdio is
// `stdio` (-1: /dev/null). The error names the command and what the
// runtime logged.
absl::Status RunRuntime(const std::string& binary, const std::string& root,
                        const std::string& log_path, const std::vector<std::string>& args,
                        const int stdio[3]) {
  std::vector<std::string> argv = {binary,   "--root",       root,  "--log",
                                   log_path, "--log-format", "json"};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", binary);
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(stdio[fd] >= 0 ? stdio[fd] : null, fd);
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ExecChild(cargv.data(), nullptr);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  std::string why = LastRuntimeError(log_path);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && why.empty()) why = "cannot run it";
  return absl::UnknownError(
      absl::StrCat(binary, " ", args.empty() ? "" : args[0], ": ", why.empty() ? "failed" : why));
}

// Copies what one fd yields into another, on the loop, until the first
// ends (then calls `on_end`). When the second cannot take more: kDrop
// drops it (output nobody reads must stop neither the process nor the
// loop); kWait stops reading until it can (input is not to be lost).
class Pump {
 public:
  enum class Full { kDrop, kWait };

  static absl::StatusOr<std::unique_ptr<Pump>> Start(ttrpc::EventLoop& loop, int from, int to,
                                                     Full full, std::function<void()> on_end = {}) {
    auto pump = std::unique_ptr<Pump>(new Pump(loop, from, to, full, std::move(on_end)));
    for (int fd : {from, to}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    BERTH_RETURN_IF_ERROR(loop.Add(from, EPOLLIN, [p = pump.get()](uint32_t) { p->Copy(); }));
    return pump;
  }
  ~Pump() { Stop(); }

  // Copies what `from` holds now, without waiting for more.
  void Drain() {
    while (reading_ && Copy()) {
    }
  }

  void Stop() {
    // While output is pending, the loop watches `to` instead of `from`.
    if (reading_ && pending_.empty()) loop_.Remove(from_);
    if (!pending_.empty()) loop_.Remove(to_);
    reading_ = false;
    pending_.clear();
  }

 private:
  Pump(ttrpc::EventLoop& loop, int from, int to, Full full, std::function<void()> on_end)
      : loop_(loop), from_(from), to_(to), full_(full), on_end_(std::move(on_end)) {}

  // One read and its writes; false when nothing more can be read now.
  bool Copy() {
    if (!pending_.empty()) return false;
    char buf[16384];
    ssize_t n = ::read(from_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) return true;
    if (n < 0 && errno == EAGAIN) return false;
    if (n <= 0) {  // the end (a pty's master reads EIO once its process is gone)
      Stop();
      if (on_end_) on_end_();
      return false;
    }
    Write(absl::string_view(buf, n));
    return pending_.empty();
  }

  void Write(absl::string_view data) {
    while (!data.empty()) {
      ssize_t w = ::write(to_, data.data(), data.size());
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      data.remove_prefix(w);
    }
    if (data.empty() || full_ == Full::kDrop || errno != EAGAIN) return;
    pending_.assign(data.data(), data.size());
    // Out of the loop rather than masked: epoll reports a hang-up whatever
    // the mask, and a closed `from` would wake the loop for ever.
    loop_.Remove(from_);
    loop_.Add(to_, EPOLLOUT, [this](uint32_t) { Flush(); }).IgnoreError();
  }

  void Flush() {
    std::string pending = std::move(pending_);
    pending_.clear();
    loop_.Remove(to_);
    loop_.Add(from_, EPOLLIN, [this](uint32_t) { Copy(); }).IgnoreError();
    Write(pending);
  }

  ttrpc::EventLoop& loop_;
  const int from_;
  const int to_;
  const Full full_;
  std::function<void()> on_end_;
  bool reading_ = true;
  std::string pending_;  // kWait: what `to` has yet to take
};

// The fd a process sent on a unix socket with SCM_RIGHTS (the runtime's
// console socket protocol: the pty master).
absl::StatusOr<UniqueFd> ReceiveFd(int socket) {
  char data[256];
  iovec iov{data, sizeof(data)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC) < 0)
    return ErrnoStatus("recvmsg", "console socket");
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
    return absl::InternalError("the runtime sent no terminal on the console socket");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  return UniqueFd(fd);
}

// A listening unix socket in a private temporary directory, for the
// runtime's --console-socket; removed when it goes.
class ConsoleSocket {
 public:
  static absl::StatusOr<ConsoleSocket> Create() {
    ConsoleSocket socket;
    char dir[] = "/tmp/berth-pty-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return ErrnoStatus("mkdtemp", dir);
    socket.dir_ = dir;
    BERTH_ASSIGN_OR_RETURN(socket.listener_, ttrpc::ListenUnix(socket.path()));
    return socket;
  }
  ConsoleSocket() = default;
  ConsoleSocket(ConsoleSocket&& other) noexcept
      : dir_(std::exchange(other.dir_, "")), listener_(std::move(other.listener_)) {}
  ~ConsoleSocket() {
    listener_.Reset();
    if (!dir_.empty()) {
      ::unlink(path().c_str());
      ::rmdir(dir_.c_str());
    }
  }

  std::string path() const { return dir_ + "/c"; }

  // The master the runtime sent (it has connected and sent it before it
  // exits).
  absl::StatusOr<UniqueFd> Receive() {
    UniqueFd connection(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!connection.valid()) return ErrnoStatus("accept", path());
    return ReceiveFd(connection.get());
  }

 private:
  std::string dir_;
  UniqueFd listener_;
};

// One process of the task: its init ("" exec id) or an exec'd one.
struct Process {
  std::string exec_id;
  std::string stdin_path, stdout_path, stderr_path;
  bool terminal = false;
  std::string spec;  // an exec's OCI process, as JSON
  int pid = 0;
  types::Status status = types::CREATED;
  uint32_t exit_status = 0;
  google::protobuf::Timestamp exited_at;
  std::vector<ttrpc::Reply> waiters;
  // What the shim copies between: the client's FIFOs, and the process's
  // pipes (or, with a terminal, its pty master); the copies come last so
  // that they stop before the fds close.
  UniqueFd console, console_input, stdin_fifo, stdout_fifo, stderr_fifo, stdin_pipe, stdout_pipe,
      stderr_pipe;
  std::unique_ptr<Pump> input, output, errors;

  void DrainOutput() {
    if (output != nullptr) output->Drain();
    if (errors != nullptr) errors->Drain();
  }
};

// Tells of OOM kills in the memory cgroup of a process: cgroup v1's
// memory.oom_control through cgroup.event_control (an eventfd the kernel
// signals on each OOM, and once more when the cgroup goes), or cgroup v2's
// memory.events (inotify; its oom_kill count). Removed from the loop when
// destroyed.
class OomWatch {
 public:
  // Nullptr when the task is in no memory cgroup this host has.
  static absl::StatusOr<std::unique_ptr<OomWatch>> Start(ttrpc::EventLoop& loop,
                                                         const Cgroups& cgroups,
                                                         std::function<void()> on_oom) {
    std::unique_ptr<OomWatch> watch(new OomWatch(loop, std::move(on_oom)));
    if (auto memory = cgroups.v1.find("memory"); memory != cgroups.v1.end()) {
      BERTH_RETURN_IF_ERROR(watch->WatchV1(memory->second));
    } else if (const std::string events = cgroups.v2 + "/memory.events";
               !cgroups.v2.empty() && ::access(events.c_str(), R_OK) == 0) {
      BERTH_RETURN_IF_ERROR(watch->WatchV2(events));
    } else {
      return nullptr;
    }
    return watch;
  }

  ~OomWatch() {
    if (fd_.valid()) loop_.Remove(fd_.get());
  }

 private:
  OomWatch(ttrpc::EventLoop& loop, std::function<void()> on_oom)
      : loop_(loop), on_oom_(std::move(on_oom)) {}

  absl::Status WatchV1(const std::string& dir) {
    const std::string control = dir + "/memory.oom_control";
    fd_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd_.valid()) return ErrnoStatus("eventfd", control);
    UniqueFd oom_control(::open(control.c_str(), O_RDONLY | O_CLOEXEC));
    if (!oom_control.valid()) return ErrnoStatus("open", control);
    BERTH_RETURN_IF_ERROR(files::WriteFile(dir + "/cgroup.event_control",
                                           absl::StrCat(fd_.get(), " ", oom_control.get())));
    return loop_.Add(fd_.get(), EPOLLIN, [this, control](uint32_t) {
      uint64_t count;
      if (::read(fd_.get(), &count, sizeof count) != sizeof count) return;
      if (::access(control.c_str(), F_OK) != 0) {  // the cgroup went
        loop_.Remove(fd_.get());
        fd_.Reset();
        return;
      }
      on_oom_();
    });
  }

  absl::Status WatchV2(const std::string& events) {
    fd_.Reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd_.valid()) return ErrnoStatus("inotify_init", events);
    if (::inotify_add_watch(fd_.get(), events.c_str(), IN_MODIFY) < 0) {
      return ErrnoStatus("inotify_add_watch", events);
    }
    kills_ = OomKills(events);
    return loop_.Add(fd_.get(), EPOLLIN, [this, events](uint32_t) {
      char buf[4096];
      while (::read(fd_.get(), buf, sizeof buf) > 0) {
      }
      const uint64_t kills = OomKills(events);
      if (kills > kills_) on_oom_();
      kills_ = kills;
    });
  }

  ttrpc::EventLoop& loop_;
  std::function<void()> on_oom_;
  UniqueFd fd_;
  uint64_t kills_ = 0;
};

// One task this shim holds.
struct Task {
  std::string id;
  std::string bundle;
  std::string runtime = kDefaultRuntime;
  std::string runtime_root;
  snapshotter::MountGuard rootfs;
  Process init;
  std::map<std::string, Process> execs;
  Cgroups cgroups;  // the init's, once created
  std::unique_ptr<OomWatch> oom;

  // Runs the OCI runtime's `args` for this task (stdio: -1 is /dev/null).
  absl::Status Runtime(const std::vector<std::string>& args, const int stdio[3] = nullptr) const {
    const int none[3] = {-1, -1, -1};
    return RunRuntime(runtime, runtime_root, bundle + "/log.json", args,
                      stdio != nullptr ? stdio : none);
  }
};

// Where a process's output goes, as containerd's clients name it: a FIFO
// (its path), a file (file://PATH), or a logging program
// (binary://PATH?key=value&…, whose query becomes its arguments).
struct OutputUri {
  enum Kind { kFifo, kFile, kBinary } kind = kFifo;
  std::string path;
  std::vector<std::string> args;
};

// %XX escapes (and, in a query, '+' for a space) decoded, as Go's net/url.
std::string Unescape(absl::string_view text, bool query) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    int value = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        absl::SimpleHexAtoi(text.substr(i + 1, 2), &value)) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(query && text[i] == '+' ? ' ' : text[i]);
    }
  }
  return out;
}

absl::StatusOr<OutputUri> ParseOutputUri(const std::string& uri) {
  OutputUri out;
  absl::string_view rest = uri;
  if (absl::ConsumePrefix(&rest, "file://")) {
    out.kind = OutputUri::kFile;
  } else if (absl::ConsumePrefix(&rest, "binary://")) {
    out.kind = OutputUri::kBinary;
  } else {
    return out;  // a FIFO, opened by the stdio path as given
  }
  absl::string_view query;
  if (size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  out.path = Unescape(rest, false);
  if (out.path.empty() || out.path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("log URI ", Quote(uri), " names no absolute path"));
  }
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    out.args.push_back(Unescape(kv.first, true));
    if (!kv.second.empty()) out.args.push_back(Unescape(kv.second, true));
  }
  return out;
}

// Starts a binary:// logging program as containerd's runc shim does: the
// URI's query as its arguments, CONTAINER_ID and CONTAINER_NAMESPACE its
// whole environment, the process's stdout on its fd 3 and stderr on fd 4;
// it is ready once it closes fd 5. `out`/`err` get the pipes' other ends,
// for the process. The program outlives this call; the shim reaps it.
absl::Status StartLogger(const OutputUri& uri, const std::string& id, const std::string& ns,
                         UniqueFd& out, UniqueFd& err) {
  if (::access(uri.path.c_str(), X_OK) != 0) return ErrnoStatus("logging binary", uri.path);
  UniqueFd ends[3][2];  // stdout, stderr, ready: {read, write}
  for (auto& end : ends) BERTH_RETURN_IF_ERROR(MakePipe(end[0], end[1], "logging binary"));
  std::vector<std::string> env = {"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=" + ns};
  std::vector<char*> argv = {const_cast<char*>(uri.path.c_str())};
  for (const std::string& arg : uri.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", uri.path);
  if (pid == 0) {
    // Above the targets first, so that no dup2 overwrites a source (and
    // close-on-exec: the program holds fd 5 alone).
    const int sources[3] = {::fcntl(ends[0][0].get(), F_DUPFD_CLOEXEC, 10),
                            ::fcntl(ends[1][0].get(), F_DUPFD_CLOEXEC, 10),
                            ::fcntl(ends[2][1].get(), F_DUPFD_CLOEXEC, 10)};
    for (int i = 0; i < 3; ++i) {
      if (sources[i] < 0 || ::dup2(sources[i], 3 + i) < 0) ::_exit(127);
    }
    ::setsid();
    ExecChild(argv.data(), envp.data());
  }
  ends[2][1].Reset();
  pollfd ready = {ends[2][0].get(), POLLIN, 0};
  char byte;
  if (::poll(&ready, 1, 10000) != 1 || ::read(ends[2][0].get(), &byte, 1) < 0) {
    ::kill(pid, SIGKILL);
    return absl::DeadlineExceededError(
        absl::StrCat("logging binary ", Quote(uri.path), " did not close fd 5 within 10 s"));
  }
  out = std::move(ends[0][1]);
  err = std::move(ends[1][1]);
  return absl::OkStatus();
}

// The number a file holds (a pid file, /proc/<pid>/oom_score_adj).
std::optional<int> ReadIntFile(const std::string& path) {
  absl::StatusOr<std::string> text = files::ReadFile(path);
  int value = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return std::nullopt;
  }
  return value;
}

class TaskService {
 public:
  TaskService(const Flags& flags, ttrpc::EventLoop& loop) : flags_(flags), loop_(loop) {}

  void Register(ttrpc::Server& server) {
    auto add = [&](const char* method, auto handler) {
      server.Register(kTaskService, method,
                      [this, handler](const ttrpc::CallContext&, std::string payload,
                                      ttrpc::Reply reply) { (this->*handler)(payload, reply); });
    };
    add("Create", &TaskService::Create);
    add("Start", &TaskService::Start);
    add("State", &TaskService::State);
    add("Wait", &TaskService::Wait);
    add("Kill", &TaskService::Kill);
    add("Delete", &TaskService::Delete);
    add("Exec", &TaskService::Exec);
    add("Pause", &TaskService::Pause);
    add("Resume", &TaskService::Resume);
    add("Pids", &TaskService::Pids);
    add("Stats", &TaskService::Stats);
    add("Update", &TaskService::Update);
    add("Checkpoint", &TaskService::Checkpoint);
    add("ResizePty", &TaskService::ResizePty);
    add("CloseIO", &TaskService::CloseIO);
    add("Connect", &TaskService::Connect);
    add("Shutdown", &TaskService::Shutdown);
  }

  // SIGCHLD: reaps every child; an exit of one of the task's processes
  // completes it.
  void Reap() {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      auto [task, process] = ByPid(pid);
      if (process == nullptr) continue;
      process->status = types::STOPPED;
      process->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      process->exited_at = Now();
      process->DrainOutput();  // what it wrote reaches the client before its exit does
      std::string done = WaitResponseOf(*process);
      for (ttrpc::Reply& waiter : process->waiters) waiter(done);
      process->waiters.clear();
      ::containerd::events::TaskExit event;
      event.set_container_id(task->id);
      event.set_id(ProcessId(*task, *process));
      event.set_pid(process->pid);
      event.set_exit_status(process->exit_status);
      *event.mutable_exited_at() = process->exited_at;
      Publish("/tasks/exit", event);
    }
  }

 private:
  template <typename Request>
  static absl::StatusOr<Request> Parse(const std::string& payload) {
    Request request;
    if (!request.ParseFromString(payload)) {
      return absl::InvalidArgumentError(absl::StrCat("malformed ", request.GetTypeName()));
    }
    return request;
  }

  // A request naming a task, and that task.
  template <typename Request>
  struct TaskCall {
    Request request;
    Task* task;
  };

  // Parse, for a request naming a task: NotFound unless this shim holds it.
  template <typename Request>
  absl::StatusOr<TaskCall<Request>> ParseForTask(const std::string& payload) {
    BERTH_ASSIGN_OR_RETURN(Request request, Parse<Request>(payload));
    auto found = tasks_.find(request.id());
    if (found == tasks_.end()) {
      return absl::NotFoundError(absl::StrCat("task ", Quote(request.id()), ": not found"));
    }
    return TaskCall<Request>{std::move(request), &found->second};
  }

  // A request naming one of a task's processes, the task and the process.
  template <typename Request>
  struct ProcessCall {
    Request request;
    Task* task;
    Process* process;
  };

  // ParseForTask, and the process the request names (NotFound if none).
  template <typename Request>
  absl::StatusOr<ProcessCall<Request>> ParseForProcess(const std::string& payload) {
    BERTH_ASSIGN_OR_RETURN(TaskCall<Request> call, ParseForTask<Request>(payload));
    BERTH_ASSIGN_OR_RETURN(Process * process, Find(*call.task, call.request.exec_id()));
    return ProcessCall<Request>{std::move(call.request), call.task, process};
  }

  // The task's process `exec_id` ("" for its init); NotFound if none.
  static absl::StatusOr<Process*> Find(Task& task, const std::string& exec_id) {
    if (exec_id.empty()) return &task.init;
    auto it = task.execs.find(exec_id);
    if (it == task.execs.end()) {
      return absl::NotFoundError(
          absl::StrCat("exec ", Quote(exec_id), " of task ", Quote(task.id), ": not found"));
    }
    return &it->second;
  }

  // The running process `pid` is, and its task (nullptrs if none).
  std::pair<Task*, Process*> ByPid(int pid) {
    if (pid <= 0) return {nullptr, nullptr};
    for (auto& [task_id, task] : tasks_) {
      if (task.init.pid == pid) return {&task, &task.init};
      for (auto& [id, process] : task.execs) {
        if (process.pid == pid && process.status != types::STOPPED) return {&task, &process};
      }
    }
    return {nullptr, nullptr};
  }

  // The id containerd knows a process by: its exec id, or the task's for
  // the init.
  static const std::string& ProcessId(const Task& task, const Process& process) {
    return process.exec_id.empty() ? task.id : process.exec_id;
  }

  static std::string WaitResponseOf(const Process& process) {
    task::WaitResponse response;
    response.set_exit_status(process.exit_status);
    *response.mutable_exited_at() = process.exited_at;
    return response.SerializeAsString();
  }

  // Forwards an event to the daemon's ttrpc events service, if it has one.
  // A connection per event, on this thread: an idle shim keeps no client,
  // and events are few.
  void Publish(const std::string& topic, const google::protobuf::MessageLite& event) {
    const char* address = std::getenv("TTRPC_ADDRESS");
    if (address == nullptr || *address == '\0') return;
    ::containerd::services::events::ttrpc::v1::ForwardRequest request;
    auto* envelope = request.mutable_envelope();
    *envelope->mutable_timestamp() = Now();
    envelope->set_namespace_(flags_.ns);
    envelope->set_topic(topic);
    proto::PackAny(event, envelope->mutable_event());
    ttrpc::CallOptions options;
    options.timeout = absl::Seconds(5);
    options.metadata = {{ttrpc::kNamespaceKey, flags_.ns}};
    absl::StatusOr<std::string> sent =
        ttrpc::CallOnce(address, "containerd.services.events.ttrpc.v1.Events", "Forward",
                        request.SerializeAsString(), options);
    if (!sent.ok()) {
      log::Warn("shim: publishing an event failed",
                {{"topic", topic}, {"error", sent.status().ToString()}});
    }
  }

  // The process's stdio without a terminal: pipes, whose far ends (for the
  // runtime to hand the process) go to `ends`/`fds`, copied to and from the
  // client's FIFOs on the loop. A FIFO of output is opened read-write, so
  // the open never waits for a reader, and closed when the process's side
  // ends, so the client sees its end; stdin is read only once the client
  // writes (a FIFO no writer has opened yet raises no event), and its end
  // closes the process's.
  absl::Status PipeStdio(const Task& task, Process& process, UniqueFd ends[3], int fds[3]) {
    if (!process.stdin_path.empty()) {
      BERTH_RETURN_IF_ERROR(MakePipe(ends[0], process.stdin_pipe, "stdio"));
      Process* p = &process;
      BERTH_RETURN_IF_ERROR(
          StartInput(process, process.stdin_pipe.get(), [p] { p->stdin_pipe.Reset(); }));
      fds[0] = ends[0].get();
    }
    BERTH_ASSIGN_OR_RETURN(OutputUri uri, ParseOutputUri(process.stdout_path));
    if (uri.kind != OutputUri::kFifo) {
      // One destination for stdout and stderr, the process's own fds: the
      // shim copies nothing.
      if (uri.kind == OutputUri::kFile) {
        BERTH_RETURN_IF_ERROR(files::MakeDirectories(Dirname(uri.path), 0755));
        ends[1].Reset(::open(uri.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
        if (!ends[1].valid()) return ErrnoStatus("open", uri.path);
        ends[2].Reset(::fcntl(ends[1].get(), F_DUPFD_CLOEXEC, 0));
        if (!ends[2].valid()) return ErrnoStatus("dup", uri.path);
      } else {
        BERTH_RETURN_IF_ERROR(StartLogger(uri, task.id, flags_.ns, ends[1], ends[2]));
      }
      fds[1] = ends[1].get();
      fds[2] = ends[2].get();
      return absl::OkStatus();
    }
    struct Output {
      const std::string& path;
      UniqueFd& fifo;
      UniqueFd& pipe;
      std::unique_ptr<Pump>& pump;
      int fd;
    };
    for (Output out :
         {Output{process.stdout_path, process.stdout_fifo, process.stdout_pipe, process.output, 1},
          Output{process.stderr_path, process.stderr_fifo, process.stderr_pipe, process.errors,
                 2}}) {
      if (out.path.empty()) continue;
      BERTH_RETURN_IF_ERROR(MakePipe(out.pipe, ends[out.fd], "stdio"));
      UniqueFd* fifo = &out.fifo;
      BERTH_RETURN_IF_ERROR(
          StartOutput(out.path, out.fifo, out.pipe.get(), out.pump, [fifo] { fifo->Reset(); }));
      fds[out.fd] = ends[out.fd].get();
    }
    return absl::OkStatus();
  }

  // Copies the client's stdin FIFO into `to`, holding back what `to` cannot
  // take yet; `on_end` runs when the client's side ends.
  absl::Status StartInput(Process& process, int to, std::function<void()> on_end = {}) {
    process.stdin_fifo.Reset(::open(process.stdin_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!process.stdin_fifo.valid()) return ErrnoStatus("open", process.stdin_path);
    BERTH_ASSIGN_OR_RETURN(process.input, Pump::Start(loop_, process.stdin_fifo.get(), to,
                                                      Pump::Full::kWait, std::move(on_end)));
    return absl::OkStatus();
  }

  // Copies `from` into the client's output FIFO `path` (opened, as `fifo`,
  // read-write: the open never waits for a reader), dropping what nobody
  // reads; `on_end` runs when `from` ends.
  absl::Status StartOutput(const std::string& path, UniqueFd& fifo, int from,
                           std::unique_ptr<Pump>& pump, std::function<void()> on_end = {}) {
    fifo.Reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fifo.valid()) return ErrnoStatus("open", path);
    BERTH_ASSIGN_OR_RETURN(
        pump, Pump::Start(loop_, from, fifo.get(), Pump::Full::kDrop, std::move(on_end)));
    return absl::OkStatus();
  }

  // Takes the pty master the runtime sent and copies between it and the
  // process's FIFOs.
  absl::Status AttachTerminal(Process& process, ConsoleSocket& socket) {
    BERTH_ASSIGN_OR_RETURN(process.console, socket.Receive());
    if (!process.stdout_path.empty()) {
      BERTH_RETURN_IF_ERROR(StartOutput(process.stdout_path, process.stdout_fifo,
                                        process.console.get(), process.output));
    }
    if (!process.stdin_path.empty()) {
      // A second fd of the master: the input waits for it to be writable
      // while the output reads the first.
      process.console_input.Reset(::fcntl(process.console.get(), F_DUPFD_CLOEXEC, 0));
      if (!process.console_input.valid()) return ErrnoStatus("dup", "terminal");
      BERTH_RETURN_IF_ERROR(StartInput(process, process.console_input.get()));
    }
    return absl::OkStatus();
  }

  void ResizePty(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<ProcessCall<task::ResizePtyRequest>> call =
        ParseForProcess<task::ResizePtyRequest>(payload);
    if (!call.ok()) return reply(call.status());
    const task::ResizePtyRequest& request = call->request;
    Process& process = *call->process;
    if (!process.console.valid()) {
      return reply(absl::FailedPreconditionError("the process has no terminal to resize"));
    }
    winsize size{};
    size.ws_col = static_cast<unsigned short>(request.width());
    size.ws_row = static_cast<unsigned short>(request.height());
    if (::ioctl(process.console.get(), TIOCSWINSZ, &size) != 0)
      return reply(ErrnoStatus("resize", "terminal"));
    reply(std::string());
  }

  // Closing stdin ends what the shim copies into the process, which then
  // reads the end of its input.
  void CloseIO(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<ProcessCall<task::CloseIORequest>> call =
        ParseForProcess<task::CloseIORequest>(payload);
    if (!call.ok()) return reply(call.status());
    const task::CloseIORequest& request = call->request;
    Process& process = *call->process;
    if (request.stdin() && process.input != nullptr) {
      process.input.reset();
      process.stdin_fifo.Reset();
      process.stdin_pipe.Reset();  // the process reads its end
    }
    reply(std::string());
  }

  // Runs the runtime command `args` (the container id last) that makes
  // `process`, with its stdio (PipeStdio) or a terminal (through a console
  // socket); its pid comes from `pid_file`.
  absl::StatusOr<int> RunWithStdio(const Task& task, Process& process,
                                   std::vector<std::string> args, const std::string& pid_file) {
    UniqueFd ends[3];
    int fds[3] = {-1, -1, -1};
    std::optional<ConsoleSocket> console;
    if (process.terminal) {
      BERTH_ASSIGN_OR_RETURN(ConsoleSocket made, ConsoleSocket::Create());
      console.emplace(std::move(made));
      args.insert(args.end() - 1, {"--console-socket", console->path()});
    } else {
      BERTH_RETURN_IF_ERROR(PipeStdio(task, process, ends, fds));
    }
    BERTH_RETURN_IF_ERROR(task.Runtime(args, fds));
    const int pid = ReadIntFile(pid_file).value_or(0);
    if (pid <= 0) return absl::InternalError("no pid file from the runtime");
    if (console.has_value()) {
      if (absl::Status attached = AttachTerminal(process, *console); !attached.ok()) {
        ::kill(pid, SIGKILL);
        return attached;
      }
    }
    return pid;
  }

  void Create(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<task::CreateTaskRequest> request = Parse<task::CreateTaskRequest>(payload);
    if (!request.ok()) return reply(request.status());
    if (tasks_.contains(request->id())) {
      return reply(
          absl::AlreadyExistsError(absl::StrCat("task ", Quote(request->id()), " exists")));
    }
    Task t;
    t.init.terminal = request->terminal();
    t.id = request->id();
    t.bundle = request->bundle();
    t.init.stdin_path = request->stdin();
    t.init.stdout_path = request->stdout();
    t.init.stderr_path = request->stderr();
    t.runtime_root = RuntimeRoot(flags_);
    if (request->has_options()) {
      ::containerd::runc::v1::Options options;
      if (proto::UnpackAny(request->options(), &options)) {
        if (!options.binary_name().empty()) t.runtime = options.binary_name();
        if (!options.root().empty()) t.runtime_root = absl::StrCat(options.root(), "/", flags_.ns);
      }
    }
    if (absl::Status made = files::MakeDirectories(t.runtime_root, 0711); !made.ok())
      return reply(made);
    // For `delete`, which cleans up after this shim is gone.
    if (absl::Status saved = files::WriteFile(t.bundle + "/" + kRuntimeFile,
                                              absl::StrCat(t.runtime, "\n", t.runtime_root, "\n"));
        !saved.ok()) {
      return reply(saved);
    }
    if (request->rootfs_size() > 0) {
      std::vector<snapshotter::Mount> mounts;
      for (const auto& m : request->rootfs()) {
        mounts.push_back(snapshotter::Mount{
            m.type(), m.source(), m.target(), {m.options().begin(), m.options().end()}});
      }
      const std::string rootfs = t.bundle + "/rootfs";
      ::mkdir(rootfs.c_str(), 0711);
      absl::StatusOr<snapshotter::MountGuard> guard = snapshotter::MountAll(mounts, rootfs);
      if (!guard.ok()) return reply(guard.status());
      t.rootfs = *std::move(guard);
    }
    const std::string pid_file = t.bundle + "/init.pid";
    // In place before the runtime runs: the copies of its stdio point into it.
    Task& created = tasks_.emplace(t.id, std::move(t)).first->second;
    absl::StatusOr<int> pid = RunWithStdio(
        created, created.init,
        {"create", "--bundle", created.bundle, "--pid-file", pid_file, created.id}, pid_file);
    if (!pid.ok()) {
      created.Runtime({"delete", "--force", created.id}).IgnoreError();
      tasks_.erase(std::string(created.id));  // its MountGuard unmounts the rootfs
      return reply(pid.status());
    }
    created.init.pid = *pid;
    // The runtime put the init in the container's cgroups before create
    // returned; they outlive it until the runtime's delete.
    absl::StatusOr<Cgroups> cgroups = CgroupsOf(*pid);
    if (cgroups.ok()) {
      created.cgroups = *std::move(cgroups);
    } else {
      log::Warn("shim: the task's cgroups are unknown", {{"error", cgroups.status().ToString()}});
    }
    absl::StatusOr<std::unique_ptr<OomWatch>> oom =
        OomWatch::Start(loop_, created.cgroups, [this, id = created.id] {
          ::containerd::events::TaskOOM event;
          event.set_container_id(id);
          Publish("/tasks/oom", event);
        });
    if (oom.ok()) {
      created.oom = *std::move(oom);
    } else {
      log::Warn("shim: no OOM events for this task", {{"error", oom.status().ToString()}});
    }
    ::containerd::events::TaskCreate event;
    event.set_container_id(created.id);
    event.set_bundle(created.bundle);
    *event.mutable_rootfs() = request->rootfs();
    event.mutable_io()->set_stdin(created.init.stdin_path);
    event.mutable_io()->set_stdout(created.init.stdout_path);
    event.mutable_io()->set_stderr(created.init.stderr_path);
    event.set_pid(*pid);
    Publish("/tasks/create", event);
    task::CreateTaskResponse response;
    response.set_pid(*pid);
    reply(response.SerializeAsString());
  }

  void Exec(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<TaskCall<task::ExecProcessRequest>> call =
        ParseForTask<task::ExecProcessRequest>(payload);
    if (!call.ok()) return reply(call.status());
    const task::ExecProcessRequest* request = &call->request;
    Task& t = *call->task;
    if (request->exec_id().empty()) return reply(absl::InvalidArgumentError("exec id is empty"));
    if (t.execs.contains(request->exec_id())) {
      return reply(
          absl::AlreadyExistsError(absl::StrCat("exec ", Quote(request->exec_id()), " exists")));
    }
    if (t.init.status != types::RUNNING) {
      return reply(
          absl::FailedPreconditionError(absl::StrCat("task ", Quote(t.id), " is not running")));
    }
    Process process;
    process.exec_id = request->exec_id();
    process.terminal = request->terminal();
    process.stdin_path = request->stdin();
    process.stdout_path = request->stdout();
    process.stderr_path = request->stderr();
    process.spec = request->spec().value();
    t.execs.emplace(process.exec_id, std::move(process));
    ::containerd::events::TaskExecAdded event;
    event.set_container_id(t.id);
    event.set_exec_id(request->exec_id());
    Publish("/tasks/exec-added", event);
    reply(std::string());
  }

  void Start(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<ProcessCall<task::StartRequest>> call =
        ParseForProcess<task::StartRequest>(payload);
    if (!call.ok()) return reply(call.status());
    Task& t = *call->task;
    Process& process = *call->process;
    if (process.status != types::CREATED || (!process.exec_id.empty() && process.pid != 0)) {
      return reply(absl::FailedPreconditionError(
          absl::StrCat("process ", Quote(ProcessId(t, process)), " was started already")));
    }
    if (process.exec_id.empty()) {
      if (absl::Status started = t.Runtime({"start", t.id}); !started.ok()) return reply(started);
      if (process.status == types::CREATED) process.status = types::RUNNING;
      ::containerd::events::TaskStart event;
      event.set_container_id(t.id);
      event.set_pid(process.pid);
      Publish("/tasks/start", event);
    } else {
      const std::string spec_file = absl::StrCat(t.bundle, "/exec-", process.exec_id, ".json");
      const std::string pid_file = absl::StrCat(t.bundle, "/exec-", process.exec_id, ".pid");
      if (absl::Status written = files::WriteFile(spec_file, process.spec); !written.ok()) {
        return reply(written);
      }
      absl::StatusOr<int> pid = RunWithStdio(
          t, process, {"exec", "--process", spec_file, "--detach", "--pid-file", pid_file, t.id},
          pid_file);
      ::unlink(spec_file.c_str());
      ::unlink(pid_file.c_str());
      if (!pid.ok()) return reply(pid.status());
      process.pid = *pid;
      if (process.status == types::CREATED) process.status = types::RUNNING;
      ::containerd::events::TaskExecStarted event;
      event.set_container_id(t.id);
      event.set_exec_id(process.exec_id);
      event.set_pid(process.pid);
      Publish("/tasks/exec-started", event);
    }
    task::StartResponse response;
    response.set_pid(process.pid);
    reply(response.SerializeAsString());
  }

  void State(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<ProcessCall<task::StateRequest>> call =
        ParseForProcess<task::StateRequest>(payload);
    if (!call.ok()) return reply(call.status());
    Process& process = *call->process;
    task::StateResponse response;
    response.set_id(call->task->id);
    response.set_bundle(call->task->bundle);
    response.set_pid(process.pid);
    response.set_status(process.status);
    response.set_stdin(process.stdin_path);
    response.set_stdout(process.stdout_path);
    response.set_stderr(process.stderr_path);
    response.set_terminal(process.terminal);
    response.set_exit_status(process.exit_status);
    response.set_exec_id(process.exec_id);
    if (process.status == types::STOPPED) *response.mutable_exited_at() = process.exited_at;
    reply(response.SerializeAsString());
  }

  void Wait(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<ProcessCall<task::WaitRequest>> call =
        ParseForProcess<task::WaitRequest>(payload);
    if (!call.ok()) return reply(call.status());
    Process& process = *call->process;
    if (process.status != types::STOPPED) {
      process.waiters.push_back(reply);
      return;
    }
    reply(WaitResponseOf(process));
  }

  void Kill(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<ProcessCall<task::KillRequest>> call =
        ParseForProcess<task::KillRequest>(payload);
    if (!call.ok()) return reply(call.status());
    const task::KillRequest& request = call->request;
    const Task& t = *call->task;
    Process& process = *call->process;
    if (process.status == types::STOPPED || process.pid == 0) {
      return reply(absl::NotFoundError(
          absl::StrCat("process ", Quote(ProcessId(t, process)), " already finished")));
    }
    if (!process.exec_id.empty()) {
      // runc signals a container's init; an exec is signalled directly.
      if (::kill(process.pid, static_cast<int>(request.signal())) != 0) {
        return reply(ErrnoStatus("kill", process.exec_id));
      }
      return reply(std::string());
    }
    std::vector<std::string> args = {"kill"};
    if (request.all()) args.push_back("--all");
    args.push_back(t.id);
    args.push_back(absl::StrCat(request.signal()));
    if (absl::Status killed = t.Runtime(args); !killed.ok()) return reply(killed);
    reply(std::string());
  }

  void Delete(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<ProcessCall<task::DeleteRequest>> call =
        ParseForProcess<task::DeleteRequest>(payload);
    if (!call.ok()) return reply(call.status());
    Task& t = *call->task;
    Process& process = *call->process;
    if (process.status == types::RUNNING || process.status == types::PAUSED) {
      return reply(absl::FailedPreconditionError(
          absl::StrCat("process ", Quote(ProcessId(t, process)),
                       " must be stopped before deletion: it is running")));
    }
    if (!process.exec_id.empty()) {
      task::DeleteResponse response;
      response.set_pid(process.pid);
      response.set_exit_status(process.exit_status);
      *response.mutable_exited_at() = process.exited_at;
      t.execs.erase(process.exec_id);
      return reply(response.SerializeAsString());
    }
    // A task created but never started is deleted by force (its init waits).
    std::vector<std::string> args = {"delete"};
    if (process.status == types::CREATED) args.push_back("--force");
    args.push_back(t.id);
    if (absl::Status deleted = t.Runtime(args); !deleted.ok()) return reply(deleted);
    if (process.status == types::CREATED) {
      Reap();  // the forced delete killed the init
      if (process.status != types::STOPPED) {
        process.status = types::STOPPED;
        process.exit_status = 128 + SIGKILL;
        process.exited_at = Now();
      }
    }
    t.rootfs.Unmount().IgnoreError();
    task::DeleteResponse response;
    response.set_pid(process.pid);
    response.set_exit_status(process.exit_status);
    *response.mutable_exited_at() = process.exited_at;
    ::containerd::events::TaskDelete event;
    event.set_container_id(t.id);
    event.set_pid(process.pid);
    event.set_exit_status(process.exit_status);
    *event.mutable_exited_at() = response.exited_at();
    tasks_.erase(std::string(t.id));  // a copy: the key goes with the task
    Publish("/tasks/delete", event);
    reply(response.SerializeAsString());
  }

  // Pause and Resume freeze and thaw the container's cgroup through the
  // runtime.
  void Pause(const std::string& payload, const ttrpc::Reply& reply) {
    Freeze<task::PauseRequest>(payload, reply, "pause", types::RUNNING, types::PAUSED);
  }
  void Resume(const std::string& payload, const ttrpc::Reply& reply) {
    Freeze<task::ResumeRequest>(payload, reply, "resume", types::PAUSED, types::RUNNING);
  }
  template <typename Request>
  void Freeze(const std::string& payload, const ttrpc::Reply& reply, const std::string& command,
              types::Status from, types::Status to) {
    absl::StatusOr<TaskCall<Request>> call = ParseForTask<Request>(payload);
    if (!call.ok()) return reply(call.status());
    Task& t = *call->task;
    if (t.init.status != from) {
      return reply(absl::FailedPreconditionError(absl::StrCat("task ", Quote(t.id), " cannot ",
                                                              command, ": it is ",
                                                              types::Status_Name(t.init.status))));
    }
    if (absl::Status done = t.Runtime({command, t.id}); !done.ok()) return reply(done);
    t.init.status = to;
    if (to == types::PAUSED) {
      ::containerd::events::TaskPaused event;
      event.set_container_id(t.id);
      Publish("/tasks/paused", event);
    } else {
      ::containerd::events::TaskResumed event;
      event.set_container_id(t.id);
      Publish("/tasks/resumed", event);
    }
    reply(std::string());
  }

  // Every process in the container's cgroup (its children too, as the
  // runtime's `ps` lists them); exec'd ones carry their exec id.
  void Pids(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<TaskCall<task::PidsRequest>> call = ParseForTask<task::PidsRequest>(payload);
    if (!call.ok()) return reply(call.status());
    absl::StatusOr<std::vector<pid_t>> pids = ProcessesIn(call->task->cgroups);
    if (!pids.ok()) return reply(pids.status());
    task::PidsResponse response;
    for (pid_t pid : *pids) {
      ::containerd::v1::types::ProcessInfo* info = response.add_processes();
      info->set_pid(pid);
      for (const auto& [id, process] : call->task->execs) {
        if (process.pid != pid || process.status == types::STOPPED) continue;
        ::containerd::runc::v1::ProcessDetails details;
        details.set_exec_id(id);
        proto::PackAny(details, info->mutable_info());
      }
    }
    reply(response.SerializeAsString());
  }

  void Stats(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<TaskCall<task::StatsRequest>> call = ParseForTask<task::StatsRequest>(payload);
    if (!call.ok()) return reply(call.status());
    absl::StatusOr<google::protobuf::Any> stats = StatsOf(call->task->cgroups);
    if (!stats.ok()) return reply(stats.status());
    task::StatsResponse response;
    *response.mutable_stats() = *std::move(stats);
    reply(response.SerializeAsString());
  }

  // New cgroup limits for the container: the runtime's `update`, given the
  // OCI LinuxResources the request carries (JSON, as containerd marshals
  // runtime-spec types).
  void Update(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<TaskCall<task::UpdateTaskRequest>> call =
        ParseForTask<task::UpdateTaskRequest>(payload);
    if (!call.ok()) return reply(call.status());
    const Task& t = *call->task;
    const google::protobuf::Any& resources = call->request.resources();
    if (!absl::EndsWith(resources.type_url(), kLinuxResourcesType)) {
      return reply(absl::InvalidArgumentError(absl::StrCat(
          "resources of type ", Quote(resources.type_url()), " are not ", kLinuxResourcesType)));
    }
    if (t.init.status == types::STOPPED) {
      return reply(absl::FailedPreconditionError(
          absl::StrCat("task ", Quote(t.id), " cannot be updated: it has stopped")));
    }
    const std::string file = t.bundle + "/resources.json";
    if (absl::Status written = files::WriteFile(file, resources.value(), 0600); !written.ok()) {
      return reply(written);
    }
    absl::Status updated = t.Runtime({"update", "--resources", file, t.id});
    ::unlink(file.c_str());
    if (!updated.ok()) return reply(updated);
    reply(std::string());
  }

  // The container's state to an image directory through the runtime's
  // checkpoint (CRIU), with the options containerd's runc shim takes:
  // where (the request's path, else the options' image path), and whether
  // the container stops after.
  void Checkpoint(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<TaskCall<task::CheckpointTaskRequest>> call =
        ParseForTask<task::CheckpointTaskRequest>(payload);
    if (!call.ok()) return reply(call.status());
    Task& t = *call->task;
    ::containerd::runc::v1::CheckpointOptions options;
    if (call->request.has_options() && !proto::UnpackAny(call->request.options(), &options)) {
      return reply(absl::InvalidArgumentError(
          absl::StrCat("checkpoint options of type ", Quote(call->request.options().type_url()),
                       " are not containerd.runc.v1.CheckpointOptions")));
    }
    std::string image = call->request.path();
    if (image.empty()) image = options.image_path();
    if (image.empty()) {
      return reply(absl::InvalidArgumentError("a checkpoint needs an image path"));
    }
    if (t.init.status != types::RUNNING && t.init.status != types::PAUSED) {
      return reply(absl::FailedPreconditionError(
          absl::StrCat("task ", Quote(t.id), " cannot be checkpointed: it is not running")));
    }
    const std::string work =
        options.work_path().empty() ? t.bundle + "/criu-work" : options.work_path();
    std::vector<std::string> args = {"checkpoint", "--image-path", image, "--work-path", work};
    if (!options.exit()) args.push_back("--leave-running");
    if (options.open_tcp()) args.push_back("--tcp-established");
    if (options.external_unix_sockets()) args.push_back("--ext-unix-sk");
    if (options.terminal()) args.push_back("--shell-job");
    if (options.file_locks()) args.push_back("--file-locks");
    for (const std::string& ns : options.empty_namespaces()) {
      args.insert(args.end(), {"--empty-ns", ns});
    }
    if (!options.cgroups_mode().empty()) {
      args.insert(args.end(), {"--manage-cgroups-mode", options.cgroups_mode()});
    }
    args.push_back(t.id);
    if (absl::Status done = t.Runtime(args); !done.ok()) return reply(done);
    reply(std::string());
  }

  void Connect(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<task::ConnectRequest> request = Parse<task::ConnectRequest>(payload);
    if (!request.ok()) return reply(request.status());
    task::ConnectResponse response;
    response.set_shim_pid(static_cast<uint32_t>(::getpid()));
    if (auto found = tasks_.find(request->id()); found != tasks_.end()) {
      response.set_task_pid(found->second.init.pid);
    }
    response.set_version(kVersion);
    reply(response.SerializeAsString());
  }

  // Ends the shim once it holds no task (the last of a group's gone), as
  // containerd's shims do.
  void Shutdown(const std::string& payload, const ttrpc::Reply& reply) {
    absl::StatusOr<task::ShutdownRequest> request = Parse<task::ShutdownRequest>(payload);
    if (!request.ok()) return reply(request.status());
    reply(std::string());
    if (tasks_.empty()) loop_.Stop();
  }

  const Flags& flags_;
  ttrpc::EventLoop& loop_;
  // By id: one, or a group's (see Start).
  std::map<std::string, Task> tasks_;
};

}  // namespace

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!absl::StartsWith(arg, "-")) {
      if (!flags.action.empty())
        return absl::InvalidArgumentError(absl::StrCat("unexpected argument ", Quote(arg)));
      flags.action = arg;
      continue;
    }
    while (absl::StartsWith(arg, "-")) arg.erase(0, 1);
    std::string value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
    } else if (arg == "debug" || arg == "v") {
      continue;  // boolean flags containerd may pass
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag -", arg, " needs a value"));
    }
    if (arg == "namespace") {
      flags.ns = value;
    } else if (arg == "address") {
      flags.address = value;
    } else if (arg == "id") {
      flags.id = value;
    } else if (arg == "bundle") {
      flags.bundle = value;
    } else if (arg == "publish-binary") {
      flags.publish_binary = value;
    } else if (arg != "socket") {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag -", arg));
    }
  }
  if (flags.action != "" && flags.action != "start" && flags.action != "delete") {
    return absl::InvalidArgumentError(absl::StrCat("unknown action ", Quote(flags.action)));
  }
  if (flags.ns.empty() || flags.id.empty()) {
    return absl::InvalidArgumentError("-namespace and -id are required");
  }
  return flags;
}

std::string SocketPath(const Flags& flags) {
  Sha256 hash;
  hash.Update(absl::StrCat(flags.address, "\n", flags.ns, "\n", flags.id));
  std::string dir =
      absl::StrCat(flags.address.empty() ? "/run/berth" : Dirname(flags.address), "/s");
  std::string path = absl::StrCat(dir, "/", hash.Hex());
  // A socket path holds 107 bytes: a deep address directory falls back.
  if (path.size() > 107) path = absl::StrCat("/run/berth/s/", hash.Hex());
  return path;
}

// The serving shim's OOM score: one above its daemon's (the start
// command's parent), as containerd's shims set theirs, so that the kernel
// kills a shim before its daemon. Lowering a score takes CAP_SYS_RESOURCE,
// which hosts like these withhold: a score that cannot go lower stays as it
// is, and the shim says so once.
void AdjustOomScore(pid_t shim) {
  auto score_file = [](pid_t pid) { return absl::StrCat("/proc/", pid, "/oom_score_adj"); };
  std::optional<int> daemon = ReadIntFile(score_file(::getppid()));
  std::optional<int> current = ReadIntFile(score_file(shim));
  if (!daemon.has_value() || !current.has_value()) return;
  const int wanted = std::min(*daemon + 1, 1000);
  absl::Status set = files::WriteFile(score_file(shim), absl::StrCat(wanted));
  if (!set.ok() && wanted < *current) {
    log::Warn("shim: cannot lower the OOM score without CAP_SYS_RESOURCE; it stays",
              {{"score", *current}, {"wanted", wanted}});
  } else if (!set.ok()) {
    log::Warn("shim: cannot set the OOM score", {{"error", set.ToString()}});
  }
}

// The annotations that give a task a group, all of whose tasks one shim
// serves (a pod's containers: containerd's CRI sets the second), in the
// order containerd's runc shim reads them.
constexpr const char* kGroupAnnotations[] = {"io.containerd.runc.v2.group",
                                             "io.kubernetes.cri.sandbox-id"};

// The group of the task whose bundle is the working directory: a grouping
// annotation of its config.json, else the task alone.
std::string GroupOf(const Flags& flags) {
  absl::StatusOr<std::string> config = files::ReadFile("config.json");
  if (!config.ok()) return flags.id;
  const nlohmann::json spec = nlohmann::json::parse(*config, nullptr, /*allow_exceptions=*/false);
  if (!spec.is_object()) return flags.id;
  auto annotations = spec.find("annotations");
  if (annotations == spec.end() || !annotations->is_object()) return flags.id;
  for (const char* key : kGroupAnnotations) {
    auto group = annotations->find(key);
    if (group != annotations->end() && group->is_string() && !group->get<std::string>().empty()) {
      return group->get<std::string>();
    }
  }
  return flags.id;
}

int Start(const Flags& flags, const char* self) {
  Flags group = flags;
  group.id = GroupOf(flags);
  const std::string path = SocketPath(group);
  const std::string address = "unix://" + path;
  auto print_address = [&] {
    if (absl::Status written = files::WriteFile("address", address); !written.ok()) {
      std::fprintf(stderr, "%s\n", written.ToString().c_str());
      return false;
    }
    std::printf("%s", address.c_str());
    std::fflush(stdout);
    return true;
  };
  if (absl::Status s = files::MakeDirectories(Dirname(path), 0700); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<UniqueFd> listener = ttrpc::ListenUnix(path);
  if (absl::IsAlreadyExists(listener.status())) {
    // A live shim of the task's group serves it too; one for the same
    // task alone is an error containerd reports. A socket left by a shim
    // that is gone: take its place.
    if (ttrpc::Client::Dial(path).ok()) {
      if (group.id != flags.id) return print_address() ? 0 : 1;
      std::fprintf(stderr, "a shim already serves %s\n", path.c_str());
      return 1;
    }
    ::unlink(path.c_str());
    listener = ttrpc::ListenUnix(path);
  }
  if (!listener.ok()) {
    std::fprintf(stderr, "%s\n", listener.status().ToString().c_str());
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    ::unlink(path.c_str());
    return 1;
  }
  if (pid == 0) {
    ::setsid();
    // The serving shim finds its socket at fd 3, open across the exec (a
    // dup2 onto itself would leave close-on-exec set).
    if (listener->get() != 3) ::dup2(listener->get(), 3);
    ::fcntl(3, F_SETFD, 0);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    std::vector<std::string> args = {self,     "-namespace", flags.ns,     "-id",
                                     flags.id, "-address",   flags.address};
    if (!flags.publish_binary.empty()) {
      args.push_back("-publish-binary");
      args.push_back(flags.publish_binary);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(self, argv.data());
    ::_exit(127);
  }
  AdjustOomScore(pid);
  return print_address() ? 0 : 1;
}

int Delete(const Flags& flags) {
  const std::string bundle = flags.bundle.empty() ? "." : flags.bundle;
  // The runtime and root Create used, if it got that far.
  std::string runtime = kDefaultRuntime, root = RuntimeRoot(flags);
  if (absl::StatusOr<std::string> saved = files::ReadFile(bundle + "/" + kRuntimeFile);
      saved.ok()) {
    std::vector<std::string> lines = absl::StrSplit(*saved, '\n');
    if (lines.size() >= 2 && !lines[0].empty() && !lines[1].empty()) {
      runtime = lines[0];
      root = lines[1];
    }
  }
  const int none[3] = {-1, -1, -1};
  absl::Status deleted =
      RunRuntime(runtime, root, bundle + "/log.json", {"delete", "--force", flags.id}, none);
  if (!deleted.ok())
    log::Warn("shim delete: the runtime's delete failed", {{"error", deleted.ToString()}});
  ::umount2((bundle + "/rootfs").c_str(), MNT_DETACH);
  task::DeleteResponse response;
  response.set_exit_status(128 + SIGKILL);
  *response.mutable_exited_at() = Now();
  std::string out = response.SerializeAsString();
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return 0;
}

int Serve(const Flags& flags) {
  // containerd reads the shim's log from the `log` FIFO in the bundle.
  int log_fd = ::open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (log_fd >= 0) {
    ::fcntl(log_fd, F_SETFL, ::fcntl(log_fd, F_GETFL) & ~O_NONBLOCK);
    ::dup2(log_fd, 2);
    ::close(log_fd);
  }
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    log::Warn("shim: cannot become a child subreaper", {{"error", std::strerror(errno)}});
  }
  ::sigset_t mask;
  ::sigemptyset(&mask);
  ::sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  UniqueFd signals(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  absl::StatusOr<std::unique_ptr<ttrpc::EventLoop>> loop = ttrpc::EventLoop::Create();
  if (!signals.valid() || !loop.ok()) {
    log::Error("shim: cannot set up its event loop");
    return 1;
  }
  ttrpc::Server server(**loop);
  TaskService service(flags, **loop);
  service.Register(server);
  absl::Status status = (*loop)->Add(signals.get(), EPOLLIN, [&](uint32_t) {
    signalfd_siginfo info;
    while (::read(signals.get(), &info, sizeof(info)) == sizeof(info)) {
    }
    service.Reap();
  });
  // The socket's path (named after the task's group, see Start), to
  // remove at the end.
  sockaddr_un bound{};
  socklen_t length = sizeof bound;
  const bool named = ::getsockname(3, reinterpret_cast<sockaddr*>(&bound), &length) == 0 &&
                     length > sizeof(sa_family_t) && bound.sun_path[0] != '\0';
  if (status.ok()) status = server.Serve(UniqueFd(3));
  if (status.ok()) status = (*loop)->Run();
  if (named) ::unlink(bound.sun_path);
  if (!status.ok()) {
    log::Error("shim: serving failed", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}

}  // namespace berth::shim
