// Plugins: how berthd is assembled from parts, in the spirit of containerd's
// plugin registry.
//
// Every part of the daemon — the metadata store, the event exchange, each gRPC
// service — is a plugin: a Registration with a type ("io.containerd.grpc.v1"),
// an id ("namespaces"), the types it requires, and an init function that
// builds its instance. The Registry orders registrations so that every plugin
// inits after all plugins of the types it requires, then inits them one by
// one. A plugin that fails to init is recorded with its error (introspection
// shows it) and the others still start; a plugin may also decline with
// SkipPlugin("no overlayfs here"). Its dependents then fail to find it and are
// recorded failed in turn.
//
//   Registry registry;
//   registry.Register({.type = kGrpcPlugin, .id = "version", .init =
//       [](InitContext&) -> absl::StatusOr<std::any> {
//         return std::shared_ptr<GrpcService>(std::make_shared<VersionService>()); }});
//   BERTH_RETURN_IF_ERROR(registry.InitAll(options));
//   for (auto& service : registry.Instances<GrpcService>(kGrpcPlugin)) ...
//
// An instance is held as std::any containing a std::shared_ptr<T>; Get<T>
// checks the type. Instances are destroyed in reverse init order.
#ifndef BERTH_DAEMON_PLUGIN_H_
#define BERTH_DAEMON_PLUGIN_H_

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace grpc {
class ServerBuilder;
}

namespace berth::ttrpc {
class Server;
}  // namespace berth::ttrpc

namespace berth::daemon {

// Plugin types, named as containerd names them so introspection reads alike.
inline constexpr char kContentPlugin[] = "io.containerd.content.v1";
inline constexpr char kEventPlugin[] = "io.containerd.event.v1";
inline constexpr char kGcPlugin[] = "io.containerd.gc.v1";
inline constexpr char kGrpcPlugin[] = "io.containerd.grpc.v1";
inline constexpr char kMetadataPlugin[] = "io.containerd.metadata.v1";
inline constexpr char kRuntimePlugin[] = "io.containerd.runtime.v2";
inline constexpr char kServicePlugin[] = "io.containerd.service.v1";
inline constexpr char kSnapshotPlugin[] = "io.containerd.snapshotter.v1";
inline constexpr char kTtrpcPlugin[] = "io.containerd.ttrpc.v1";

// What an io.containerd.grpc.v1 plugin's instance is: it adds its service(s)
// to the server before the server starts.
class GrpcService {
 public:
  virtual ~GrpcService() = default;
  virtual void Register(grpc::ServerBuilder& builder) = 0;
};

// What an io.containerd.ttrpc.v1 plugin's instance is: it adds its methods
// to the daemon's ttrpc server (on <address>.ttrpc, where shims publish
// their events) before that serves.
class TtrpcService {
 public:
  virtual ~TtrpcService() = default;
  virtual void Register(ttrpc::Server& server) = 0;
};

// Where shims publish their events: containerd's <address>.ttrpc beside
// the daemon's gRPC socket.
inline std::string TtrpcAddress(const std::string& address) { return address + ".ttrpc"; }

class InitContext;

struct Registration {
  std::string type;
  std::string id;
  // Types whose plugins must init before this one; "*" means every other type.
  std::vector<std::string> requires_types = {};
  std::function<absl::StatusOr<std::any>(InitContext&)> init;

  std::string Uri() const { return absl::StrCat(type, ".", id); }
};

// A plugin after InitAll: what introspection reports.
struct Plugin {
  Registration registration;
  std::map<std::string, std::string> exports;
  std::vector<std::string> capabilities;
  absl::Status init_status;  // OK, a SkipPlugin status, or the failure
  std::any instance;         // empty unless init_status is OK
};

// The status an init returns to decline: the plugin is listed as skipped.
absl::Status SkipPlugin(absl::string_view reason);
bool IsSkipPlugin(const absl::Status& status);

struct InitOptions {
  std::string root;     // each plugin gets <root>/<type>.<id>
  std::string state;    // and <state>/<type>.<id>
  std::string address;  // the daemon's gRPC socket
  std::vector<std::string> disabled;  // plugin URIs or ids never initialised
  std::vector<std::string> required;  // plugin URIs whose failure stops InitAll
  std::map<std::string, std::string> runtime_shims;  // the config's: runtime name → shim
};

class InitContext {
 public:
  const Registration& registration() const { return plugin_.registration; }
  const std::string& root() const { return root_; }
  const std::string& state() const { return state_; }
  const std::string& address() const { return options_.address; }
  const std::map<std::string, std::string>& runtime_shims() const {
    return options_.runtime_shims;
  }

  std::map<std::string, std::string>& exports() { return plugin_.exports; }
  std::vector<std::string>& capabilities() { return plugin_.capabilities; }

  // Every plugin known to the registry, live: by the time a request is
  // served, InitAll has finished and the list no longer changes.
  const std::vector<Plugin>& plugins() const { return plugins_; }

  // The first initialised plugin of `type` (with `id`, if given). NotFound
  // if there is none (it failed, was skipped or disabled), Internal if it is
  // not a T.
  template <typename T>
  absl::StatusOr<std::shared_ptr<T>> Get(absl::string_view type, absl::string_view id = {}) const {
    absl::StatusOr<const Plugin*> plugin = Find(type, id);
    if (!plugin.ok()) return plugin.status();
    const auto* instance = std::any_cast<std::shared_ptr<T>>(&(*plugin)->instance);
    if (instance == nullptr) {
      return absl::InternalError(absl::StrCat("plugin ", (*plugin)->registration.Uri(),
                                              " is not of the type ", registration().Uri(),
                                              " expects"));
    }
    return *instance;
  }

  // Every initialised plugin of `type`, by id; plugins whose instance is not
  // a T are left out.
  template <typename T>
  std::map<std::string, std::shared_ptr<T>> GetAll(absl::string_view type) const {
    std::map<std::string, std::shared_ptr<T>> out;
    for (const Plugin& plugin : plugins_) {
      if (plugin.registration.type != type || !plugin.init_status.ok()) continue;
      if (const auto* instance = std::any_cast<std::shared_ptr<T>>(&plugin.instance)) {
        out.emplace(plugin.registration.id, *instance);
      }
    }
    return out;
  }

 private:
  friend class Registry;
  InitContext(Plugin& plugin, const std::vector<Plugin>& plugins, const InitOptions& options);
  absl::StatusOr<const Plugin*> Find(absl::string_view type, absl::string_view id) const;

  Plugin& plugin_;
  const std::vector<Plugin>& plugins_;
  const InitOptions& options_;
  std::string root_;
  std::string state_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();  // destroys instances in reverse init order

  void Register(Registration registration);

  // Orders the registrations and inits each one, logging what happens.
  // InvalidArgument for a duplicate URI, a cycle among requirements (naming
  // the plugins on it) or an unknown required plugin; the failure of a
  // required plugin is returned as that plugin's error. Called once.
  absl::Status InitAll(const InitOptions& options);

  // In init order, disabled plugins left out.
  const std::vector<Plugin>& plugins() const { return plugins_; }

  // The instances of every initialised plugin of `type`, in init order.
  template <typename T>
  std::vector<std::shared_ptr<T>> Instances(absl::string_view type) const {
    std::vector<std::shared_ptr<T>> instances;
    for (const Plugin& plugin : plugins_) {
      if (plugin.registration.type != type || !plugin.init_status.ok()) continue;
      if (const auto* instance = std::any_cast<std::shared_ptr<T>>(&plugin.instance)) {
        instances.push_back(*instance);
      }
    }
    return instances;
  }

 private:
  absl::StatusOr<std::vector<Registration>> Ordered() const;

  std::vector<Registration> registrations_;
  InitOptions options_;
  std::vector<Plugin> plugins_;
};

}  // namespace berth::daemon

#endif  // BERTH_DAEMON_PLUGIN_H_
