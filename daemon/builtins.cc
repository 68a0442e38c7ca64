#include "daemon/builtins.h"

#include <memory>

#include "base/status.h"
#include "events/exchange.h"
#include "services/containers/containers.h"
#include "services/content/content.h"
#include "services/diff/diff.h"
#include "services/events/events.h"
#include "services/health/health.h"
#include "services/images/images.h"
#include "services/introspection/introspection.h"
#include "services/leases/leases.h"
#include "services/namespaces/namespaces.h"
#include "services/snapshots/snapshots.h"
#include "services/tasks/tasks.h"
#include "services/version/version.h"
#include "snapshotter/snapshotter.h"
#include "store/content_store.h"
#include "store/gc.h"
#include "store/namespaced_content.h"

namespace berth::daemon {
namespace {

// Beyond the collections deletions trigger: expired leases go within this.
constexpr absl::Duration kGcPeriod = absl::Minutes(1);

}  // namespace

void RegisterBuiltins(Registry& registry) {
  registry.Register({.type = kEventPlugin,
                     .id = "exchange",
                     .init = [](InitContext&) -> absl::StatusOr<std::any> {
                       return std::make_shared<events::Exchange>();
                     }});
  registry.Register({.type = kContentPlugin,
                     .id = "content",
                     .init = [](InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(std::unique_ptr<store::ContentStore> blobs,
                                              store::ContentStore::Open(ic.root()));
                       return std::shared_ptr<store::ContentStore>(std::move(blobs));
                     }});
  registry.Register({.type = kMetadataPlugin,
                     .id = "sqlite",
                     .requires_types = {kContentPlugin},
                     .init = [](InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto blobs, ic.Get<store::ContentStore>(kContentPlugin));
                       BERTH_ASSIGN_OR_RETURN(std::unique_ptr<store::MetadataStore> metadata,
                                              store::MetadataStore::Open(ic.root() + "/meta.db"));
                       auto db = std::make_shared<store::Database>();
                       db->metadata = std::move(metadata);
                       db->content = std::make_shared<store::NamespacedContent>(blobs, db->metadata);
                       return db;
                     }});
  registry.Register({.type = kGcPlugin,
                     .id = "scheduler",
                     .requires_types = {kMetadataPlugin, kSnapshotPlugin},
                     .init = [](InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(auto db, ic.Get<store::Database>(kMetadataPlugin));
                       return std::make_shared<store::GarbageCollector>(
                           db->metadata, db->content,
                           ic.GetAll<snapshotter::Snapshotter>(kSnapshotPlugin), kGcPeriod);
                     }});
  // Snapshotters: each keeps its layers and its own SQLite metadata under
  // <root>/io.containerd.snapshotter.v1.<id>, as containerd lays them out.
  registry.Register({.type = kSnapshotPlugin,
                     .id = "native",
                     .init = [](InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(std::unique_ptr<snapshotter::Snapshotter> native,
                                              snapshotter::NewNativeSnapshotter(ic.root()));
                       return std::shared_ptr<snapshotter::Snapshotter>(std::move(native));
                     }});
  registry.Register({.type = kSnapshotPlugin,
                     .id = "overlayfs",
                     .init = [](InitContext& ic) -> absl::StatusOr<std::any> {
                       // A root where overlay cannot work fails this plugin
                       // alone, with the probe's reason; native still serves.
                       BERTH_ASSIGN_OR_RETURN(snapshotter::OverlayOptions options,
                                              snapshotter::ProbeOverlay(ic.root()));
                       BERTH_ASSIGN_OR_RETURN(std::unique_ptr<snapshotter::Snapshotter> overlay,
                                              snapshotter::NewOverlaySnapshotter(ic.root(), options));
                       return std::shared_ptr<snapshotter::Snapshotter>(std::move(overlay));
                     }});
  services::containers::Register(registry);
  services::content::Register(registry);
  services::diff::Register(registry);
  services::events::Register(registry);
  services::health::Register(registry);
  services::images::Register(registry);
  services::introspection::Register(registry);
  services::leases::Register(registry);
  services::namespaces::Register(registry);
  services::snapshots::Register(registry);
  services::tasks::Register(registry);
  services::version::Register(registry);
}

}  // namespace berth::daemon
