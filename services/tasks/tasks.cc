#include "services/tasks/tasks.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "base/status.h"
#include "base/strings.h"
#include "daemon/plugin.h"
#include "events/exchange.h"
#include "filters/filters.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h"
#include "github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h"
#include "proto/any.h"
#include "runtime/tasks.h"
#include "services/edge.h"
#include "store/metadata.h"
#include "store/namespaced_content.h"

namespace berth::services::tasks {
namespace {

namespace api = ::containerd::services::tasks::v1;
namespace shim_api = ::containerd::task::v2;
using runtime::Task;
using runtime::TaskManager;

// containerd's types.Process of a process, from its shim's State.
absl::Status ProcessState(Task& task, const std::string& exec_id,
                          ::containerd::v1::types::Process* out) {
  shim_api::StateRequest request;
  request.set_id(task.id());
  request.set_exec_id(exec_id);
  shim_api::StateResponse state;
  BERTH_RETURN_IF_ERROR(task.Call("State", request, &state));
  out->set_id(exec_id.empty() ? task.id() : exec_id);
  out->set_pid(state.pid());
  out->set_status(state.status());
  out->set_stdin(state.stdin());
  out->set_stdout(state.stdout());
  out->set_stderr(state.stderr());
  out->set_terminal(state.terminal());
  out->set_exit_status(state.exit_status());
  *out->mutable_exited_at() = state.exited_at();
  return absl::OkStatus();
}

// A Wait call: finished by the shim's answer, or by the client's (or the
// server's shutdown) cancelling it first — whichever comes first; the other
// is dropped. The shim's answer may come long after the call is gone, so
// it holds only the shared state, never the reactor itself.
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit WaitReactor(api::WaitResponse* response) : state_(std::make_shared<State>()) {
    state_->reactor = this;
    state_->response = response;
  }

  // Where the shim's answer goes.
  ttrpc::Client::Done Answer() {
    return [state = state_](absl::StatusOr<std::string> answer) {
      if (!state->Claim()) return;
      shim_api::WaitResponse waited;
      if (answer.ok() && !waited.ParseFromString(*answer)) {
        answer = absl::InternalError("the shim answered Wait with garbage");
      }
      if (!answer.ok()) return state->reactor->Finish(ToGrpcStatus(answer.status()));
      state->response->set_exit_status(waited.exit_status());
      *state->response->mutable_exited_at() = waited.exited_at();
      state->reactor->Finish(grpc::Status::OK);
    };
  }

  void OnCancel() override {
    if (state_->Claim()) Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override { delete this; }

 private:
  struct State {
    // True for the first caller only: it alone may finish the call.
    bool Claim() {
      absl::MutexLock lock(&mu);
      return !std::exchange(finished, true);
    }
    absl::Mutex mu;
    bool finished ABSL_GUARDED_BY(mu) = false;
    WaitReactor* reactor = nullptr;
    api::WaitResponse* response = nullptr;
  };
  const std::shared_ptr<State> state_;
};

class Service final : public api::Tasks::CallbackService, public daemon::GrpcService {
 public:
  Service(std::shared_ptr<TaskManager> tasks, std::shared_ptr<store::MetadataStore> metadata)
      : tasks_(std::move(tasks)), metadata_(std::move(metadata)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  // Starts the container's shim and has it create the task: its spec and
  // runtime from the container's record; rootfs, stdio and options from
  // the request.
  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const api::CreateTaskRequest* request,
                                   api::CreateTaskResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(store::Container container,
                             metadata_->GetContainer(ns, request->container_id()));
      if (request->has_checkpoint()) {
        return absl::UnimplementedError(
            absl::StrCat("task ", Quote(request->container_id()),
                         ": restoring from a checkpoint is not supported"));
      }
      TaskManager::CreateRequest create;
      create.ns = ns;
      create.id = container.id;
      create.runtime = container.runtime.name;
      create.shim_path = request->runtime_path();
      create.spec = container.spec->value;
      shim_api::CreateTaskRequest& shim = create.shim_request;
      *shim.mutable_rootfs() = request->rootfs();
      shim.set_stdin(request->stdin());
      shim.set_stdout(request->stdout());
      shim.set_stderr(request->stderr());
      shim.set_terminal(request->terminal());
      if (request->has_options()) {
        *shim.mutable_options() = request->options();
      } else if (container.runtime.options.has_value()) {
        shim.mutable_options()->set_type_url(container.runtime.options->type_url);
        shim.mutable_options()->set_value(container.runtime.options->value);
      }
      shim_api::CreateTaskResponse created;
      BERTH_RETURN_IF_ERROR(tasks_->Create(create, &created).status());
      response->set_container_id(container.id);
      response->set_pid(created.pid());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* context,
                                  const api::StartRequest* request,
                                  api::StartResponse* response) override {
    shim_api::StartRequest start;
    start.set_exec_id(request->exec_id());
    shim_api::StartResponse started;
    absl::Status done = CallShim(*context, request->container_id(), "Start", start, &started);
    response->set_pid(started.pid());
    return Finish(context, done);
  }

  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* context,
                                   const api::DeleteTaskRequest* request,
                                   api::DeleteResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      shim_api::DeleteResponse deleted;
      BERTH_RETURN_IF_ERROR(tasks_->Delete(ns, request->container_id(), &deleted));
      ToProto(request->container_id(), deleted, response);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* DeleteProcess(grpc::CallbackServerContext* context,
                                          const api::DeleteProcessRequest* request,
                                          api::DeleteResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, Find(*context, request->container_id()));
      if (request->exec_id().empty()) {
        return absl::InvalidArgumentError("an exec id is required: Delete deletes the task");
      }
      shim_api::DeleteRequest shim;
      shim.set_id(task->id());
      shim.set_exec_id(request->exec_id());
      shim_api::DeleteResponse deleted;
      BERTH_RETURN_IF_ERROR(task->Call("Delete", shim, &deleted));
      ToProto(request->exec_id(), deleted, response);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const api::GetRequest* request,
                                api::GetResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, Find(*context, request->container_id()));
      return ProcessState(*task, request->exec_id(), response->mutable_process());
    }());
  }

  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const api::ListTasksRequest* request,
                                 api::ListTasksResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::Parse(request->filter()));
      for (const std::shared_ptr<Task>& task : tasks_->List(ns)) {
        ::containerd::v1::types::Process process;
        // A task whose shim is gone meanwhile is left out.
        if (!ProcessState(*task, "", &process).ok()) continue;
        if (!filter.Match(ProcessAdaptor(process))) continue;
        *response->add_tasks() = std::move(process);
      }
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Kill(grpc::CallbackServerContext* context,
                                 const api::KillRequest* request,
                                 google::protobuf::Empty*) override {
    shim_api::KillRequest kill;
    kill.set_exec_id(request->exec_id());
    kill.set_signal(request->signal());
    kill.set_all(request->all());
    return Finish(context, CallShim(*context, request->container_id(), "Kill", kill));
  }

  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* context,
                                 const api::ExecProcessRequest* request,
                                 google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, Find(*context, request->container_id()));
      if (request->exec_id().empty())
        return absl::InvalidArgumentError("exec id must not be empty");
      if (!request->has_spec()) {
        return absl::InvalidArgumentError(
            absl::StrCat("exec ", Quote(request->exec_id()), ": a process spec is required"));
      }
      shim_api::ExecProcessRequest exec;
      exec.set_id(task->id());
      exec.set_exec_id(request->exec_id());
      exec.set_terminal(request->terminal());
      exec.set_stdin(request->stdin());
      exec.set_stdout(request->stdout());
      exec.set_stderr(request->stderr());
      *exec.mutable_spec() = request->spec();
      return task->Call("Exec", exec, nullptr);
    }());
  }

  grpc::ServerUnaryReactor* ResizePty(grpc::CallbackServerContext* context,
                                      const api::ResizePtyRequest* request,
                                      google::protobuf::Empty*) override {
    shim_api::ResizePtyRequest resize;
    resize.set_exec_id(request->exec_id());
    resize.set_width(request->width());
    resize.set_height(request->height());
    return Finish(context, CallShim(*context, request->container_id(), "ResizePty", resize));
  }

  grpc::ServerUnaryReactor* CloseIO(grpc::CallbackServerContext* context,
                                    const api::CloseIORequest* request,
                                    google::protobuf::Empty*) override {
    shim_api::CloseIORequest close;
    close.set_exec_id(request->exec_id());
    close.set_stdin(request->stdin());
    return Finish(context, CallShim(*context, request->container_id(), "CloseIO", close));
  }

  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* context,
                                  const api::PauseTaskRequest* request,
                                  google::protobuf::Empty*) override {
    return Finish(context,
                  CallShim(*context, request->container_id(), "Pause", shim_api::PauseRequest()));
  }

  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* context,
                                   const api::ResumeTaskRequest* request,
                                   google::protobuf::Empty*) override {
    return Finish(context,
                  CallShim(*context, request->container_id(), "Resume", shim_api::ResumeRequest()));
  }

  grpc::ServerUnaryReactor* ListPids(grpc::CallbackServerContext* context,
                                     const api::ListPidsRequest* request,
                                     api::ListPidsResponse* response) override {
    shim_api::PidsResponse listed;
    absl::Status done =
        CallShim(*context, request->container_id(), "Pids", shim_api::PidsRequest(), &listed);
    *response->mutable_processes() = listed.processes();
    return Finish(context, done);
  }

  // Into the image directory the runc options name, through the shim (CRIU
  // through the runtime). Checkpoints kept in the content store, as
  // containerd keeps one when no directory is named, are not made yet.
  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* context,
                                       const api::CheckpointTaskRequest* request,
                                       api::CheckpointTaskResponse*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, Find(*context, request->container_id()));
      ::containerd::runc::v1::CheckpointOptions options;
      if (request->has_options() && !proto::UnpackAny(request->options(), &options)) {
        return absl::InvalidArgumentError(
            absl::StrCat("checkpoint options of type ", Quote(request->options().type_url()),
                         " are not containerd.runc.v1.CheckpointOptions"));
      }
      if (options.image_path().empty()) {
        return absl::UnimplementedError(
            absl::StrCat("task ", Quote(task->id()),
                         ": checkpoints into the content store are not supported; name an image "
                         "path (ctr task checkpoint --image-path DIR)"));
      }
      shim_api::CheckpointTaskRequest checkpoint;
      checkpoint.set_id(task->id());
      checkpoint.set_path(options.image_path());
      *checkpoint.mutable_options() = request->options();
      return task->Call("Checkpoint", checkpoint, nullptr);
    }());
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* context,
                                   const api::UpdateTaskRequest* request,
                                   google::protobuf::Empty*) override {
    shim_api::UpdateTaskRequest update;
    *update.mutable_resources() = request->resources();
    *update.mutable_annotations() = request->annotations();
    return Finish(context, CallShim(*context, request->container_id(), "Update", update));
  }

  // The cgroup statistics of the tasks the filters select (`ctr task
  // metrics` sends id==<id>).
  grpc::ServerUnaryReactor* Metrics(grpc::CallbackServerContext* context,
                                    const api::MetricsRequest* request,
                                    api::MetricsResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(*context));
      BERTH_ASSIGN_OR_RETURN(filters::Filter filter, filters::Filter::ParseAny(request->filters()));
      for (const std::shared_ptr<Task>& task : tasks_->List(ns)) {
        // Metrics select tasks by id and namespace, as containerd's do.
        const filters::FunctionAdaptor fields(
            [&](const std::vector<std::string>& path) -> std::optional<std::string> {
              if (path.size() != 1) return std::nullopt;
              if (path[0] == "id") return task->id();
              if (path[0] == "namespace") return task->ns();
              return std::nullopt;
            });
        if (!filter.Match(fields)) continue;
        shim_api::StatsRequest stats;
        stats.set_id(task->id());
        shim_api::StatsResponse answered;
        // One task's shim that cannot answer leaves the others' figures.
        if (absl::Status asked = task->Call("Stats", stats, &answered); !asked.ok()) {
          log::Warn("a task's metrics are missing",
                    {{"id", task->id()}, {"error", asked.ToString()}});
          continue;
        }
        ::containerd::types::Metric* metric = response->add_metrics();
        *metric->mutable_timestamp() = ToTimestamp(absl::Now());
        metric->set_id(task->id());
        *metric->mutable_data() = answered.stats();
      }
      return absl::OkStatus();
    }());
  }

  // Answered when the process exits, which may be long after: the shim's
  // Wait is called without blocking, and its answer finishes the call.
  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* context,
                                 const api::WaitRequest* request,
                                 api::WaitResponse* response) override {
    absl::StatusOr<std::shared_ptr<Task>> task = Find(*context, request->container_id());
    if (!task.ok()) return Finish(context, task.status());
    shim_api::WaitRequest wait;
    wait.set_id((*task)->id());
    wait.set_exec_id(request->exec_id());
    auto* reactor = new WaitReactor(response);
    (*task)->CallAsync("Wait", wait, reactor->Answer());
    return reactor;
  }

 private:
  // The fields filters select tasks by: id, pid, status.
  static filters::FunctionAdaptor ProcessAdaptor(const ::containerd::v1::types::Process& process) {
    return filters::FunctionAdaptor(
        [&process](const std::vector<std::string>& path) -> std::optional<std::string> {
          if (path.size() != 1) return std::nullopt;
          if (path[0] == "id") return process.id();
          if (path[0] == "pid") return absl::StrCat(process.pid());
          if (path[0] == "status") {
            return absl::AsciiStrToLower(::containerd::v1::types::Status_Name(process.status()));
          }
          return std::nullopt;
        });
  }

  static void ToProto(const std::string& id, const shim_api::DeleteResponse& deleted,
                      api::DeleteResponse* out) {
    out->set_id(id);
    out->set_pid(deleted.pid());
    out->set_exit_status(deleted.exit_status());
    *out->mutable_exited_at() = deleted.exited_at();
  }

  absl::StatusOr<std::shared_ptr<Task>> Find(const grpc::CallbackServerContext& context,
                                             const std::string& id) {
    BERTH_ASSIGN_OR_RETURN(std::string ns, RequestNamespace(context));
    return tasks_->Get(ns, id);
  }

  // The request's task's shim answers `method` with `shim_request` (its id
  // set to the task's) into `answer`.
  template <typename ShimRequest>
  absl::Status CallShim(const grpc::CallbackServerContext& context, const std::string& container_id,
                        absl::string_view method, ShimRequest shim_request,
                        google::protobuf::MessageLite* answer = nullptr) {
    BERTH_ASSIGN_OR_RETURN(std::shared_ptr<Task> task, Find(context, container_id));
    shim_request.set_id(task->id());
    return task->Call(method, shim_request, answer);
  }

  const std::shared_ptr<TaskManager> tasks_;
  const std::shared_ptr<store::MetadataStore> metadata_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  // The task runtime: bundles under <state>/io.containerd.runtime.v2.task.
  registry.Register({.type = daemon::kRuntimePlugin,
                     .id = "task",
                     .requires_types = {daemon::kEventPlugin},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto exchange,
                                              ic.Get<events::Exchange>(daemon::kEventPlugin));
                       TaskManager::Options options;
                       options.state = ic.state();
                       options.daemon_address = ic.address();
                       options.ttrpc_address = daemon::TtrpcAddress(ic.address());
                       options.shims = ic.runtime_shims();
                       char self[4096];
                       ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
                       if (n > 0) options.publish_binary.assign(self, n);
                       options.publish = [exchange](const std::string& ns, const std::string& topic,
                                                    const google::protobuf::Message& event) {
                         PublishEvent(*exchange, ns, topic, event);
                       };
                       auto tasks = std::make_shared<TaskManager>(std::move(options));
                       // Shims outlive the daemon: the tasks a previous berthd started.
                       const int recovered = tasks->Recover();
                       if (recovered > 0)
                         log::Info("took back running tasks", {{"tasks", recovered}});
                       return tasks;
                     }});
  registry.Register(
      {.type = daemon::kGrpcPlugin,
       .id = "tasks",
       .requires_types = {daemon::kRuntimePlugin, daemon::kMetadataPlugin},
       .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
         BERTH_ASSIGN_OR_RETURN(auto tasks, ic.Get<TaskManager>(daemon::kRuntimePlugin));
         BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(daemon::kMetadataPlugin));
         return std::shared_ptr<daemon::GrpcService>(
             std::make_shared<Service>(std::move(tasks), db->metadata));
       }});
}

}  // namespace berth::services::tasks
