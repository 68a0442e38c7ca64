#include "daemon/builtins.h"

#include <memory>

#include "base/status.h"
#include "events/exchange.h"
#include "services/events/events.h"
#include "services/health/health.h"
#include "services/introspection/introspection.h"
#include "services/namespaces/namespaces.h"
#include "services/version/version.h"
#include "store/metadata.h"

namespace berth::daemon {

void RegisterBuiltins(Registry& registry) {
  registry.Register({.type = kEventPlugin,
                     .id = "exchange",
                     .init = [](InitContext&) -> absl::StatusOr<std::any> {
                       return std::make_shared<events::Exchange>();
                     }});
  registry.Register({.type = kMetadataPlugin,
                     .id = "sqlite",
                     .init = [](InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(std::unique_ptr<store::MetadataStore> store,
                                              store::MetadataStore::Open(ic.root() + "/meta.db"));
                       return std::shared_ptr<store::MetadataStore>(std::move(store));
                     }});
  services::events::Register(registry);
  services::health::Register(registry);
  services::introspection::Register(registry);
  services::namespaces::Register(registry);
  services::version::Register(registry);
}

}  // namespace berth::daemon
