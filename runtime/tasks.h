// Tasks as berthd runs them: each through a runtime v2 shim, as containerd
// does (runtime/v2 in its tree).
//
// The model. A task is a container's running side: its init process and
// the processes exec'd into it. The daemon does not run them itself; it
// starts a shim per task (or per group: see shim/shim.h), which holds the
// processes, outlives the daemon, and answers containerd.task.v2.Task over
// ttrpc. A TaskManager keeps, per namespace and container id, the task's
// bundle — <state>/<ns>/<id>, holding the OCI spec as config.json, the
// rootfs mount point, the shim's `address` file and which shim binary it
// is (`shim`) — and a connection to its shim. The bundles are all the
// state there is: a daemon that starts again takes its tasks back from
// them (Recover).
//
//   TaskManager::Create  writes the bundle, runs `<shim> … start` in it,
//                        connects, and calls the shim's Create
//   Task::Call           any Task method on that task's shim
//   TaskManager::Delete  the shim's Delete and Shutdown, then the bundle goes
//
// Which shim: the container's runtime name. io.containerd.berth.v1 and —
// because a plain `ctr run` asks for them — io.containerd.runc.v2 and
// io.containerd.runc.v1 are Berth's own containerd-shim-berth-v1 (found
// beside berthd, else on PATH); `shims` in the options maps any name to
// another binary, and another name io.containerd.<x>.<v> is
// containerd-shim-<x>-<v> on PATH, as containerd finds it.
//
// A shim that dies while the daemon runs is noticed at once (its
// connection ends): the task is cleaned up after it — the container
// killed, its rootfs unmounted, its bundle removed — and /tasks/exit
// published.
//
// Thread safety: every method may be called from any thread at once.
#ifndef BERTH_RUNTIME_TASKS_H_
#define BERTH_RUNTIME_TASKS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "github.com/containerd/containerd/runtime/v2/task/shim.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/message_lite.h"
#include "runtime/shim_logs.h"
#include "ttrpc/ttrpc.h"

namespace berth::runtime {

// One task's shim connection.
class Task {
 public:
  Task(std::string ns, std::string id, std::string bundle, std::unique_ptr<ttrpc::Client> shim);

  const std::string& ns() const { return ns_; }
  const std::string& id() const { return id_; }
  const std::string& bundle() const { return bundle_; }

  // `method` of containerd.task.v2.Task with `request`; the response is
  // parsed into `response` (nullptr: ignored). The shim's errors keep their
  // codes.
  absl::Status Call(absl::string_view method, const google::protobuf::MessageLite& request,
                    google::protobuf::MessageLite* response);

  // As Call, without waiting: `done` gets the response's bytes or the error
  // (Unavailable when the shim goes), on the connection's thread.
  void CallAsync(absl::string_view method, const google::protobuf::MessageLite& request,
                 ttrpc::Client::Done done);

  // `gone` runs (on the connection's thread) once the shim ends the
  // connection: it died, or shut down.
  void OnShimGone(std::function<void()> gone);

 private:
  const std::string ns_;
  const std::string id_;
  const std::string bundle_;
  const std::unique_ptr<ttrpc::Client> shim_;
};

class TaskManager {
 public:
  struct Options {
    std::string state;                         // bundles go in <state>/<ns>/<id>
    std::string daemon_address;                // berthd's gRPC socket: the shims' -address
    std::string ttrpc_address;                 // where shims publish events (TTRPC_ADDRESS)
    std::string publish_binary;                // the shims' -publish-binary
    std::map<std::string, std::string> shims;  // runtime name → shim binary
    // Publishes an event the daemon makes itself: /tasks/exit for a task
    // whose shim died (its shim would have, but is gone).
    std::function<void(const std::string& ns, const std::string& topic,
                       const google::protobuf::Message& event)>
        publish;
  };
  explicit TaskManager(Options options);
  // Stops watching for dead shims; the shims and their tasks go on.
  ~TaskManager();

  // What a task is created from: the container's record and the client's
  // request.
  struct CreateRequest {
    std::string ns;
    std::string id;
    std::string runtime;  // its name
    // The shim binary to run instead of the runtime name's (an absolute
    // path, as a client's runtime_path gives it), or "".
    std::string shim_path;
    std::string spec;  // the OCI spec's JSON: config.json
    // To the shim's Create: bundle is set here; rootfs, stdio, terminal,
    // options and checkpoint come from the caller.
    containerd::task::v2::CreateTaskRequest shim_request;
  };

  // Creates task `request.id` of `request.ns`. AlreadyExists if it has
  // one; FailedPrecondition naming a runtime without a shim binary; the
  // shim's or its runtime's error otherwise — and then nothing is left:
  // no shim, no bundle, no mount.
  absl::StatusOr<std::shared_ptr<Task>> Create(const CreateRequest& request,
                                               containerd::task::v2::CreateTaskResponse* response);

  // NotFound naming it if `ns` has no task `id`.
  absl::StatusOr<std::shared_ptr<Task>> Get(absl::string_view ns, absl::string_view id);

  // `ns`'s tasks, by id.
  std::vector<std::shared_ptr<Task>> List(absl::string_view ns);

  // Deletes the task through its shim (the shim's Delete answer goes to
  // `response`), shuts the shim down and removes the bundle. The shim's
  // error (FailedPrecondition for a running task) leaves everything as it
  // was.
  absl::Status Delete(absl::string_view ns, absl::string_view id,
                      containerd::task::v2::DeleteResponse* response);

  // At start-up: takes back every task a bundle in the state directory
  // names, through its shim's address — shims outlive the daemon, so
  // running tasks keep running and ones that exited meanwhile keep their
  // exit status. A bundle whose shim is gone is cleaned up with the shim
  // binary's `delete` (which kills what is left of the container and
  // unmounts its rootfs) and removed. Returns how many tasks it took back.
  int Recover();

 private:
  // The shim binary for runtime `name` (see above).
  absl::StatusOr<std::string> ShimBinary(absl::string_view name) const;
  std::string BundlePath(absl::string_view ns, absl::string_view id) const;
  // Drops the entry of (ns, id), a task or a placeholder.
  void Forget(const std::string& ns, const std::string& id);
  // Runs the bundle's shim binary's `delete`, which cleans up after a shim
  // that is gone; its answer (empty if it failed, which is logged).
  containerd::task::v2::DeleteResponse DeleteThroughShim(const std::string& ns,
                                                         const std::string& id);
  // Runs `<shim> … <action>` in `bundle` ("start": the address it prints;
  // "delete": its DeleteResponse).
  absl::StatusOr<std::string> RunShim(const std::string& binary, const std::string& ns,
                                      const std::string& id, const std::string& bundle,
                                      const std::string& action);
  // Takes back the task of one bundle, or cleans it up (see Recover).
  absl::Status RecoverBundle(const std::string& ns, const std::string& id);

  // Keeps `task` and watches its shim: if the connection ends while the
  // task is still kept, the shim died, and the janitor cleans up after it.
  void Keep(std::shared_ptr<Task> task);
  // The janitor's thread: a dead shim's task goes as its shim's `delete`
  // has it go (the container killed, the rootfs unmounted), its bundle is
  // removed and /tasks/exit published.
  void CleanUpDeadShims();
  void CleanUpDeadShim(const std::shared_ptr<Task>& task);

  const Options options_;
  ShimLogs logs_;
  // Tasks whose shims died, for the janitor.
  absl::Mutex dead_mu_;
  std::vector<std::shared_ptr<Task>> dead_ ABSL_GUARDED_BY(dead_mu_);
  bool stopping_ ABSL_GUARDED_BY(dead_mu_) = false;
  absl::Mutex mu_;
  // (namespace, id) → task; a null task: being created.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Task>> tasks_ ABSL_GUARDED_BY(mu_);
  std::thread janitor_;
};

}  // namespace berth::runtime

#endif  // BERTH_RUNTIME_TASKS_H_
