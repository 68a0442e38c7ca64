#include "services/snapshots/snapshots.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "base/status.h"
#include "base/strings.h"
#include "events/exchange.h"
#include "github.com/containerd/containerd/api/events/snapshot.pb.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h"
#include "services/edge.h"
#include "snapshotter/snapshotter.h"
#include "store/gc.h"
#include "store/namespaced_content.h"

namespace berth::services::snapshots {
namespace {

namespace api = ::containerd::services::snapshots::v1;
using snapshotter::Snapshotter;

constexpr char kDefaultSnapshotter[] = "overlayfs";
constexpr char kDefaultSnapshotterLabel[] = "containerd.io/defaults/snapshotter";
constexpr int kListBatch = 100;

api::Kind ToProto(snapshotter::Kind kind) {
  switch (kind) {
    case snapshotter::Kind::kView:
      return api::VIEW;
    case snapshotter::Kind::kActive:
      return api::ACTIVE;
    case snapshotter::Kind::kCommitted:
      return api::COMMITTED;
  }
  return api::UNKNOWN;
}

void ToProto(const snapshotter::Info& info, api::Info* out) {
  out->set_name(info.name);
  out->set_parent(info.parent);
  out->set_kind(ToProto(info.kind));
  *out->mutable_created_at() = ToTimestamp(info.created);
  *out->mutable_updated_at() = ToTimestamp(info.updated);
  LabelsToProto(info.labels, out->mutable_labels());
}

void ToProto(const std::vector<snapshotter::Mount>& mounts,
             google::protobuf::RepeatedPtrField<::containerd::types::Mount>* out) {
  for (const snapshotter::Mount& mount : mounts) {
    ::containerd::types::Mount* m = out->Add();
    m->set_type(mount.type);
    m->set_source(mount.source);
    m->set_target(mount.target);
    for (const std::string& option : mount.options) m->add_options(option);
  }
}

// A request as the snapshotter it names sees it: the namespace's own view of
// that snapshotter, and the names the events and lease need.
struct Target {
  std::string ns;
  std::string name;  // the snapshotter's id: "overlayfs", "native"
  std::unique_ptr<Snapshotter> snapshots;
};

class Service final : public api::Snapshots::CallbackService, public daemon::GrpcService {
 public:
  Service(std::map<std::string, std::shared_ptr<Snapshotter>> snapshotters,
          std::shared_ptr<store::MetadataStore> metadata, std::shared_ptr<events::Exchange> exchange,
          std::shared_ptr<store::GarbageCollector> gc)
      : snapshotters_(std::move(snapshotters)),
        metadata_(std::move(metadata)),
        exchange_(std::move(exchange)),
        gc_(std::move(gc)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Prepare(grpc::CallbackServerContext* context,
                                    const api::PrepareSnapshotRequest* request,
                                    api::PrepareSnapshotResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      absl::ReaderMutexLock hold(&gc_->snapshot_references());
      BERTH_RETURN_IF_ERROR(Claim(target, *context, request->key()));
      BERTH_ASSIGN_OR_RETURN(
          std::vector<snapshotter::Mount> mounts,
          target.snapshots->Prepare(request->key(), request->parent(),
                                    LabelsFromProto(request->labels())));
      ToProto(mounts, response->mutable_mounts());
      ::containerd::events::SnapshotPrepare event;
      event.set_key(request->key());
      event.set_parent(request->parent());
      PublishEvent(*exchange_, target.ns, "/snapshot/prepare", event);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* View(grpc::CallbackServerContext* context,
                                 const api::ViewSnapshotRequest* request,
                                 api::ViewSnapshotResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      absl::ReaderMutexLock hold(&gc_->snapshot_references());
      BERTH_RETURN_IF_ERROR(Claim(target, *context, request->key()));
      BERTH_ASSIGN_OR_RETURN(std::vector<snapshotter::Mount> mounts,
                             target.snapshots->View(request->key(), request->parent(),
                                                    LabelsFromProto(request->labels())));
      ToProto(mounts, response->mutable_mounts());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Mounts(grpc::CallbackServerContext* context,
                                   const api::MountsRequest* request,
                                   api::MountsResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      BERTH_ASSIGN_OR_RETURN(std::vector<snapshotter::Mount> mounts,
                             target.snapshots->Mounts(request->key()));
      ToProto(mounts, response->mutable_mounts());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const api::CommitSnapshotRequest* request,
                                   google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      absl::ReaderMutexLock hold(&gc_->snapshot_references());
      BERTH_RETURN_IF_ERROR(Claim(target, *context, request->name()));
      BERTH_RETURN_IF_ERROR(target.snapshots->Commit(request->name(), request->key(),
                                                     LabelsFromProto(request->labels())));
      ::containerd::events::SnapshotCommit event;
      event.set_key(request->key());
      event.set_name(request->name());
      PublishEvent(*exchange_, target.ns, "/snapshot/commit", event);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Remove(grpc::CallbackServerContext* context,
                                   const api::RemoveSnapshotRequest* request,
                                   google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      BERTH_RETURN_IF_ERROR(target.snapshots->Remove(request->key()));
      ::containerd::events::SnapshotRemove event;
      event.set_key(request->key());
      PublishEvent(*exchange_, target.ns, "/snapshot/remove", event);
      // Its parents may be held by nothing else now.
      gc_->Schedule();
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Stat(grpc::CallbackServerContext* context,
                                 const api::StatSnapshotRequest* request,
                                 api::StatSnapshotResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      BERTH_ASSIGN_OR_RETURN(snapshotter::Info info, target.snapshots->Stat(request->key()));
      ToProto(info, response->mutable_info());
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* context,
                                   const api::UpdateSnapshotRequest* request,
                                   api::UpdateSnapshotResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      snapshotter::Info info;
      info.name = request->info().name();
      info.labels = LabelsFromProto(request->info().labels());
      std::vector<std::string> paths(request->update_mask().paths().begin(),
                                     request->update_mask().paths().end());
      absl::ReaderMutexLock hold(&gc_->snapshot_references());
      BERTH_ASSIGN_OR_RETURN(snapshotter::Info updated, target.snapshots->Update(info, paths));
      ToProto(updated, response->mutable_info());
      return absl::OkStatus();
    }());
  }

  grpc::ServerWriteReactor<api::ListSnapshotsResponse>* List(
      grpc::CallbackServerContext* context, const api::ListSnapshotsRequest* request) override {
    auto infos = std::make_shared<std::vector<snapshotter::Info>>();
    absl::Status status = [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      std::vector<std::string> filters(request->filters().begin(), request->filters().end());
      return target.snapshots->Walk(
          [&](const snapshotter::Info& info) {
            infos->push_back(info);
            return absl::OkStatus();
          },
          filters);
    }();
    size_t next = 0;
    return StreamFrom<api::ListSnapshotsResponse>(
        [status, infos, next](api::ListSnapshotsResponse* out) mutable -> absl::StatusOr<bool> {
          if (!status.ok()) return status;
          if (next >= infos->size()) return false;
          for (int n = 0; n < kListBatch && next < infos->size(); ++n) {
            ToProto((*infos)[next++], out->add_info());
          }
          return true;
        });
  }

  grpc::ServerUnaryReactor* Usage(grpc::CallbackServerContext* context,
                                  const api::UsageRequest* request,
                                  api::UsageResponse* response) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      BERTH_ASSIGN_OR_RETURN(snapshotter::Usage usage, target.snapshots->Usage(request->key()));
      response->set_size(usage.size);
      response->set_inodes(usage.inodes);
      return absl::OkStatus();
    }());
  }

  grpc::ServerUnaryReactor* Cleanup(grpc::CallbackServerContext* context,
                                    const api::CleanupRequest* request,
                                    google::protobuf::Empty*) override {
    return Finish(context, [&]() -> absl::Status {
      BERTH_ASSIGN_OR_RETURN(Target target, Resolve(*context, request->snapshotter()));
      return target.snapshots->Cleanup();
    }());
  }

 private:
  // The namespace's view of the snapshotter the request names; an empty
  // name means the namespace's default (its containerd.io/defaults/
  // snapshotter label), else overlayfs. containerd answers an unknown
  // snapshotter with InvalidArgument, and so does Berth.
  absl::StatusOr<Target> Resolve(const grpc::CallbackServerContext& context,
                                 const std::string& requested) {
    Target target;
    BERTH_ASSIGN_OR_RETURN(target.ns, RequestNamespace(context));
    target.name = requested;
    if (target.name.empty()) {
      absl::StatusOr<store::Namespace> ns = metadata_->GetNamespace(target.ns);
      if (ns.ok() && ns->labels.count(kDefaultSnapshotterLabel)) {
        target.name = ns->labels.at(kDefaultSnapshotterLabel);
      } else {
        target.name = kDefaultSnapshotter;
      }
    }
    auto found = snapshotters_.find(target.name);
    if (found == snapshotters_.end()) {
      std::vector<std::string> loaded;
      for (const auto& [name, unused] : snapshotters_) loaded.push_back(name);
      return absl::InvalidArgumentError(absl::StrCat("snapshotter ", Quote(target.name),
                                                     " is not loaded (loaded: ",
                                                     absl::StrJoin(loaded, ", "), ")"));
    }
    target.snapshots = snapshotter::InNamespace(found->second, target.ns);
    return target;
  }

  // Before creating `key`: the namespace exists from then on (as containerd
  // creates it with its first object), and a request's lease holds the
  // snapshot, so a collection can never see it unheld.
  absl::Status Claim(const Target& target, const grpc::CallbackServerContext& context,
                     const std::string& key) {
    // A read first: creating is a write transaction, and almost always the
    // namespace is there.
    if (absl::IsNotFound(metadata_->GetNamespace(target.ns).status())) {
      store::Namespace created_namespace;
      created_namespace.name = target.ns;
      absl::Status created = metadata_->CreateNamespace(created_namespace);
      if (!created.ok() && !absl::IsAlreadyExists(created)) return created;
    }
    const std::string lease = RequestLease(context);
    if (lease.empty()) return absl::OkStatus();
    return metadata_->AddLeaseResource(
        target.ns, lease,
        store::LeaseResource{.type = absl::StrCat("snapshots/", target.name), .id = key});
  }


  const std::map<std::string, std::shared_ptr<Snapshotter>> snapshotters_;
  const std::shared_ptr<store::MetadataStore> metadata_;
  const std::shared_ptr<events::Exchange> exchange_;
  const std::shared_ptr<store::GarbageCollector> gc_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register(
      {.type = daemon::kGrpcPlugin,
       .id = "snapshots",
       .requires_types = {daemon::kSnapshotPlugin, daemon::kMetadataPlugin, daemon::kEventPlugin,
                          daemon::kGcPlugin},
       .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
         auto snapshotters = ic.GetAll<Snapshotter>(daemon::kSnapshotPlugin);
         BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(daemon::kMetadataPlugin));
         BERTH_ASSIGN_OR_RETURN(auto exchange, ic.Get<events::Exchange>(daemon::kEventPlugin));
         BERTH_ASSIGN_OR_RETURN(auto gc, ic.Get<store::GarbageCollector>(daemon::kGcPlugin));
         return std::shared_ptr<daemon::GrpcService>(std::make_shared<Service>(
             std::move(snapshotters), db->metadata, std::move(exchange), std::move(gc)));
       }});
}

}  // namespace berth::services::snapshots
