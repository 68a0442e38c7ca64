#include "runtime/tasks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/files.h"
#include "base/identifiers.h"
#include "base/log.h"
#include "base/status.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"

extern char** environ;

namespace berth::runtime {
namespace {

namespace shim_api = ::containerd::task::v2;

constexpr char kTaskService[] = "containerd.task.v2.Task";
constexpr char kBerthShim[] = "containerd-shim-berth-v1";
// A shim's start and delete commands: each does its work and exits
// (start forks the serving shim first).
constexpr absl::Duration kShimCommandTimeout = absl::Seconds(10);

// Runtime names Berth's own shim serves unless the options map them.
bool ServedByBerthShim(absl::string_view name) {
  return name == "io.containerd.berth.v1" || name == "io.containerd.runc.v2" ||
         name == "io.containerd.runc.v1";
}

std::string Dirname(const std::string& path) { return path.substr(0, path.rfind('/')); }

// `name` in `dir`, else on PATH; "" if neither.
std::string FindBinary(const std::string& name, const std::string& dir) {
  if (!dir.empty()) {
    const std::string beside = dir + "/" + name;
    if (::access(beside.c_str(), X_OK) == 0) return beside;
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Removes a bundle without ever descending into a directory: its rootfs
// is unmounted first, and a directory that is not empty (a rootfs still
// mounted after all) stays, with a warning, rather than lose a container's
// files.
void RemoveBundle(const std::string& bundle) {
  ::umount2((bundle + "/rootfs").c_str(), MNT_DETACH);
  UniqueFd dir(::open(bundle.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return;
  absl::StatusOr<std::vector<std::string>> names = files::ListDirectory(dir.get(), bundle);
  for (const std::string& name : names.value_or(std::vector<std::string>{})) {
    if (::unlinkat(dir.get(), name.c_str(), 0) == 0) continue;
    if (errno == EISDIR && ::unlinkat(dir.get(), name.c_str(), AT_REMOVEDIR) == 0) continue;
    log::Warn("a task's bundle keeps an entry it cannot remove",
              {{"bundle", bundle}, {"entry", name}, {"error", std::strerror(errno)}});
  }
  dir.Reset();
  ::rmdir(bundle.c_str());
}

}  // namespace

Task::Task(std::string ns, std::string id, std::string bundle, std::unique_ptr<ttrpc::Client> shim)
    : ns_(std::move(ns)), id_(std::move(id)), bundle_(std::move(bundle)), shim_(std::move(shim)) {}

absl::Status Task::Call(absl::string_view method, const google::protobuf::MessageLite& request,
                        google::protobuf::MessageLite* response) {
  ttrpc::CallOptions options;
  options.metadata = {{ttrpc::kNamespaceKey, ns_}};
  BERTH_ASSIGN_OR_RETURN(std::string answer,
                         shim_->Call(kTaskService, method, request.SerializeAsString(), options));
  if (response != nullptr && !response->ParseFromString(answer)) {
    return absl::InternalError(
        absl::StrCat("the shim of task ", Quote(id_), " answered ", method, " with garbage"));
  }
  return absl::OkStatus();
}

void Task::OnShimGone(std::function<void()> gone) { shim_->OnClose(std::move(gone)); }

void Task::CallAsync(absl::string_view method, const google::protobuf::MessageLite& request,
                     ttrpc::Client::Done done) {
  ttrpc::CallOptions options;
  options.metadata = {{ttrpc::kNamespaceKey, ns_}};
  shim_->CallAsync(kTaskService, method, request.SerializeAsString(), options, std::move(done));
}

TaskManager::TaskManager(Options options) : options_(std::move(options)) {
  janitor_ = std::thread([this] { CleanUpDeadShims(); });
}

TaskManager::~TaskManager() {
  {
    absl::MutexLock lock(&dead_mu_);
    stopping_ = true;
  }
  janitor_.join();
}

void TaskManager::Keep(std::shared_ptr<Task> task) {
  std::weak_ptr<Task> watched = task;
  {
    absl::MutexLock lock(&mu_);
    tasks_[std::make_pair(task->ns(), task->id())] = task;
  }
  task->OnShimGone([this, watched] {
    std::shared_ptr<Task> dead = watched.lock();
    if (dead == nullptr) return;
    absl::MutexLock lock(&dead_mu_);
    dead_.push_back(std::move(dead));
  });
}

void TaskManager::CleanUpDeadShims() {
  for (;;) {
    std::vector<std::shared_ptr<Task>> dead;
    {
      absl::MutexLock lock(&dead_mu_);
      auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(dead_mu_) {
        return stopping_ || !dead_.empty();
      };
      dead_mu_.Await(absl::Condition(&due));
      if (stopping_) return;
      dead.swap(dead_);
    }
    for (const std::shared_ptr<Task>& task : dead) CleanUpDeadShim(task);
  }
}

void TaskManager::CleanUpDeadShim(const std::shared_ptr<Task>& task) {
  {
    absl::MutexLock lock(&mu_);
    auto kept = tasks_.find(std::make_pair(task->ns(), task->id()));
    // Deleted meanwhile (its shim shut down as it should), or replaced.
    if (kept == tasks_.end() || kept->second != task) return;
    // Held as being created until the bundle is gone: no new task of this
    // id may write into it meanwhile.
    kept->second = nullptr;
  }
  log::Warn("a task's shim died; cleaning up after it",
            {{"namespace", task->ns()}, {"id", task->id()}});
  const shim_api::DeleteResponse deleted = DeleteThroughShim(task->ns(), task->id());
  logs_.Remove(task->bundle());
  RemoveBundle(task->bundle());
  Forget(task->ns(), task->id());
  if (options_.publish) {
    ::containerd::events::TaskExit exit;
    exit.set_container_id(task->id());
    exit.set_id(task->id());
    exit.set_pid(deleted.pid());
    exit.set_exit_status(deleted.exit_status());
    *exit.mutable_exited_at() = deleted.exited_at();
    options_.publish(task->ns(), "/tasks/exit", exit);
  }
}

absl::StatusOr<std::string> TaskManager::ShimBinary(absl::string_view name) const {
  std::string binary;
  if (auto mapped = options_.shims.find(std::string(name)); mapped != options_.shims.end()) {
    binary = mapped->second;
  } else if (ServedByBerthShim(name)) {
    binary = kBerthShim;
  } else {
    // io.containerd.<x>.<v> → containerd-shim-<x>-<v>, as containerd finds it.
    std::vector<absl::string_view> parts = absl::StrSplit(name, '.');
    if (parts.size() < 4 || parts[0] != "io" || parts[1] != "containerd") {
      return absl::InvalidArgumentError(
          absl::StrCat("runtime ", Quote(name), " is not io.containerd.<name>.<version>"));
    }
    binary = absl::StrCat("containerd-shim-", parts[parts.size() - 2], "-", parts.back());
  }
  if (absl::StrContains(binary, '/')) return binary;
  // Beside berthd (the shims' -publish-binary), else on PATH.
  std::string found = FindBinary(binary, Dirname(options_.publish_binary));
  if (found.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("runtime ", Quote(name), ": its shim ",
                                                      Quote(binary),
                                                      " is neither beside berthd nor on PATH"));
  }
  return found;
}

absl::StatusOr<std::string> TaskManager::RunShim(const std::string& binary, const std::string& ns,
                                                 const std::string& id, const std::string& bundle,
                                                 const std::string& action) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus("pipe", "shim start");
  UniqueFd read_end(out[0]), write_end(out[1]);
  // The shim's messages, then those of the shim it leaves serving.
  const std::string log_path = bundle + "/shim.log";
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log.valid()) return ErrnoStatus("open", log_path);
  std::vector<std::string> args = {binary,
                                   "-namespace",
                                   ns,
                                   "-address",
                                   options_.daemon_address,
                                   "-publish-binary",
                                   options_.publish_binary,
                                   "-id",
                                   id};
  if (action == "delete") args.insert(args.end(), {"-bundle", bundle});
  args.push_back(action);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "TTRPC_ADDRESS=")) env.push_back(*e);
  }
  env.push_back("TTRPC_ADDRESS=" + options_.ttrpc_address);
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork", binary);
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(write_end.get(), 1);
    ::dup2(log.get(), 2);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::chdir(bundle.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  write_end.Reset();
  std::string address;
  char buffer[512];
  const absl::Time deadline = absl::Now() + kShimCommandTimeout;
  for (;;) {
    pollfd readable{read_end.get(), POLLIN, 0};
    const int wait_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    int ready = ::poll(&readable, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return absl::DeadlineExceededError(absl::StrCat(action, " shim ", binary,
                                                      ": no answer within ",
                                                      absl::FormatDuration(kShimCommandTimeout)));
    }
    ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    address.append(buffer, n);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string why(absl::StripAsciiWhitespace(files::ReadFile(log_path).value_or("")));
    return absl::UnknownError(
        absl::StrCat(action, " shim ", binary, ": ", why.empty() ? "it failed" : why));
  }
  return action == "start" ? std::string(absl::StripAsciiWhitespace(address)) : address;
}

absl::StatusOr<std::shared_ptr<Task>> TaskManager::Create(const CreateRequest& request,
                                                          shim_api::CreateTaskResponse* response) {
  BERTH_RETURN_IF_ERROR(identifiers::Validate(request.ns));
  BERTH_RETURN_IF_ERROR(identifiers::Validate(request.id));
  const auto key = std::make_pair(request.ns, request.id);
  {
    absl::MutexLock lock(&mu_);
    if (!tasks_.emplace(key, nullptr).second) {
      return absl::AlreadyExistsError(absl::StrCat("task ", Quote(request.id), " in namespace ",
                                                   Quote(request.ns), ": already exists"));
    }
  }
  const std::string bundle = BundlePath(request.ns, request.id);
  absl::StatusOr<std::shared_ptr<Task>> created = [&]() -> absl::StatusOr<std::shared_ptr<Task>> {
    std::string binary = request.shim_path;
    if (binary.empty()) {
      BERTH_ASSIGN_OR_RETURN(binary, ShimBinary(request.runtime));
    } else if (binary[0] != '/' || ::access(binary.c_str(), X_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("runtime path ", Quote(binary), " is not an absolute path to a program"));
    }
    BERTH_RETURN_IF_ERROR(files::MakeDirectories(bundle + "/rootfs", 0711));
    BERTH_RETURN_IF_ERROR(files::WriteFile(bundle + "/config.json", request.spec, 0600));
    // For a daemon that starts again and finds this shim gone.
    BERTH_RETURN_IF_ERROR(files::WriteFile(bundle + "/shim", binary, 0600));
    BERTH_RETURN_IF_ERROR(logs_.Add(bundle));
    BERTH_ASSIGN_OR_RETURN(std::string address,
                           RunShim(binary, request.ns, request.id, bundle, "start"));
    BERTH_ASSIGN_OR_RETURN(std::unique_ptr<ttrpc::Client> shim, ttrpc::Client::Dial(address));
    auto task = std::make_shared<Task>(request.ns, request.id, bundle, std::move(shim));
    shim_api::CreateTaskRequest shim_request = request.shim_request;
    shim_request.set_id(request.id);
    shim_request.set_bundle(bundle);
    absl::Status made = task->Call("Create", shim_request, response);
    if (!made.ok()) {
      // A shim that holds no task ends on Shutdown (one of a group's stays).
      shim_api::ShutdownRequest shutdown;
      shutdown.set_id(request.id);
      task->Call("Shutdown", shutdown, nullptr).IgnoreError();
      return made;
    }
    return task;
  }();
  if (!created.ok()) {
    absl::Status failed = created.status();
    // A shim that went away says why in its log, which goes with the bundle.
    if (absl::IsUnavailable(failed)) {
      std::string log(
          absl::StripAsciiWhitespace(files::ReadFile(bundle + "/shim.log").value_or("")));
      if (log.size() > 2048) log = log.substr(log.size() - 2048);
      if (!log.empty())
        failed = absl::UnavailableError(absl::StrCat(failed.message(), "; the shim logged: ", log));
    }
    logs_.Remove(bundle);
    RemoveBundle(bundle);
    absl::MutexLock lock(&mu_);
    tasks_.erase(key);
    return failed;
  }
  Keep(*created);  // in the placeholder's place
  return created;
}

absl::StatusOr<std::shared_ptr<Task>> TaskManager::Get(absl::string_view ns, absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto found = tasks_.find(std::make_pair(std::string(ns), std::string(id)));
  if (found == tasks_.end() || found->second == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("task ", Quote(id), " in namespace ", Quote(ns), ": not found"));
  }
  return found->second;
}

std::vector<std::shared_ptr<Task>> TaskManager::List(absl::string_view ns) {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<Task>> out;
  for (auto it = tasks_.lower_bound(std::make_pair(std::string(ns), std::string()));
       it != tasks_.end() && it->first.first == ns; ++it) {
    if (it->second != nullptr) out.push_back(it->second);
  }
  return out;
}

absl::Status TaskManager::Delete(absl::string_view ns, absl::string_view id,
                                 shim_api::DeleteResponse* response) {
  BERTH_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, Get(ns, id));
  shim_api::DeleteRequest request;
  request.set_id(task->id());
  BERTH_RETURN_IF_ERROR(task->Call("Delete", request, response));
  {
    // No longer kept before its shim ends, so that the end is no death;
    // held as being created until the bundle is gone, so that no new task
    // of this id writes into it meanwhile.
    absl::MutexLock lock(&mu_);
    tasks_[std::make_pair(task->ns(), task->id())] = nullptr;
  }
  shim_api::ShutdownRequest shutdown;
  shutdown.set_id(task->id());
  // Its answer may not come: the shim ends.
  task->Call("Shutdown", shutdown, nullptr).IgnoreError();
  logs_.Remove(task->bundle());
  RemoveBundle(task->bundle());
  Forget(task->ns(), task->id());
  return absl::OkStatus();
}

std::string TaskManager::BundlePath(absl::string_view ns, absl::string_view id) const {
  return absl::StrCat(options_.state, "/", ns, "/", id);
}

void TaskManager::Forget(const std::string& ns, const std::string& id) {
  absl::MutexLock lock(&mu_);
  tasks_.erase(std::make_pair(ns, id));
}

shim_api::DeleteResponse TaskManager::DeleteThroughShim(const std::string& ns,
                                                        const std::string& id) {
  const std::string bundle = BundlePath(ns, id);
  shim_api::DeleteResponse deleted;
  absl::StatusOr<std::string> binary = files::ReadFile(bundle + "/shim");
  if (!binary.ok()) return deleted;  // Create never got as far as a shim
  absl::StatusOr<std::string> out = RunShim(*binary, ns, id, bundle, "delete");
  if (out.ok()) {
    deleted.ParseFromString(*out);
  } else {
    log::Warn("cleaning up after a dead shim failed",
              {{"namespace", ns}, {"id", id}, {"error", out.status().ToString()}});
  }
  return deleted;
}

absl::Status TaskManager::RecoverBundle(const std::string& ns, const std::string& id) {
  const std::string bundle = BundlePath(ns, id);
  absl::StatusOr<std::string> address = files::ReadFile(bundle + "/address");
  if (address.ok()) {
    absl::StatusOr<std::unique_ptr<ttrpc::Client>> shim =
        ttrpc::Client::Dial(std::string(absl::StripAsciiWhitespace(*address)));
    if (shim.ok()) {
      auto task = std::make_shared<Task>(ns, id, bundle, *std::move(shim));
      shim_api::StateRequest state;
      state.set_id(id);
      absl::Status held = task->Call("State", state, nullptr);
      if (held.ok()) {
        if (absl::Status copied = logs_.Add(bundle); !copied.ok()) {
          log::Warn("a shim's log is not copied", {{"error", copied.ToString()}});
        }
        Keep(std::move(task));
        return absl::OkStatus();
      }
      log::Warn("a shim no longer holds its task",
                {{"namespace", ns}, {"id", id}, {"error", held.ToString()}});
    }
  }
  // The shim is gone (or never served): its `delete` cleans up after it.
  DeleteThroughShim(ns, id);
  RemoveBundle(bundle);
  return absl::NotFoundError(
      absl::StrCat("task ", Quote(id), " in namespace ", Quote(ns), ": its shim is gone"));
}

int TaskManager::Recover() {
  int recovered = 0;
  UniqueFd state(::open(options_.state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!state.valid()) return 0;
  for (const std::string& ns :
       files::ListDirectory(state.get(), options_.state).value_or(std::vector<std::string>{})) {
    if (!identifiers::Validate(ns).ok()) continue;
    const std::string dir = absl::StrCat(options_.state, "/", ns);
    UniqueFd tasks(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!tasks.valid()) continue;
    for (const std::string& id :
         files::ListDirectory(tasks.get(), dir).value_or(std::vector<std::string>{})) {
      if (!identifiers::Validate(id).ok()) continue;
      absl::Status taken = RecoverBundle(ns, id);
      if (taken.ok()) {
        ++recovered;
      } else {
        log::Info("a task was not taken back", {{"error", taken.ToString()}});
      }
    }
  }
  return recovered;
}

}  // namespace berth::runtime
