#include "daemon/plugin.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status.h"

namespace berth::daemon {
namespace {

constexpr char kSkipPayloadUrl[] = "type.berth.dev/skip-plugin";

bool Listed(const std::vector<std::string>& list, const Registration& r) {
  return std::find(list.begin(), list.end(), r.Uri()) != list.end() ||
         std::find(list.begin(), list.end(), r.id) != list.end();
}

bool Requires(const Registration& r, const Registration& other) {
  for (const std::string& type : r.requires_types) {
    if (type == "*" || type == other.type) return true;
  }
  return false;
}

}  // namespace

absl::Status SkipPlugin(absl::string_view reason) {
  absl::Status status = absl::FailedPreconditionError(absl::StrCat("skip plugin: ", reason));
  status.SetPayload(kSkipPayloadUrl, absl::Cord("1"));
  return status;
}

bool IsSkipPlugin(const absl::Status& status) {
  return status.GetPayload(kSkipPayloadUrl).has_value();
}

InitContext::InitContext(Plugin& plugin, const std::vector<Plugin>& plugins,
                         const InitOptions& options)
    : plugin_(plugin),
      plugins_(plugins),
      options_(options),
      root_(absl::StrCat(options.root, "/", plugin.registration.Uri())),
      state_(absl::StrCat(options.state, "/", plugin.registration.Uri())) {}

absl::StatusOr<const Plugin*> InitContext::Find(absl::string_view type,
                                                absl::string_view id) const {
  for (const Plugin& plugin : plugins_) {
    if (plugin.registration.type == type && (id.empty() || plugin.registration.id == id) &&
        plugin.init_status.ok() && plugin.instance.has_value()) {
      return &plugin;
    }
  }
  return absl::NotFoundError(absl::StrCat("no plugin ", type, id.empty() ? "" : ".", id,
                                          " is loaded (", registration().Uri(), " needs it)"));
}

Registry::~Registry() {
  while (!plugins_.empty()) plugins_.pop_back();
}

void Registry::Register(Registration registration) {
  registrations_.push_back(std::move(registration));
}

// Depth-first from each registration in registration order: requirements
// first, then the plugin, so independent plugins keep their registered order.
absl::StatusOr<std::vector<Registration>> Registry::Ordered() const {
  std::set<std::string> uris;
  for (const Registration& r : registrations_) {
    if (!uris.insert(r.Uri()).second) {
      return absl::InvalidArgumentError(absl::StrCat("plugin ", r.Uri(), " is registered twice"));
    }
  }
  enum class Mark { kNone, kVisiting, kDone };
  std::vector<Mark> marks(registrations_.size(), Mark::kNone);
  std::vector<size_t> path;
  std::vector<Registration> ordered;
  std::function<absl::Status(size_t)> visit = [&](size_t i) -> absl::Status {
    if (marks[i] == Mark::kDone) return absl::OkStatus();
    if (marks[i] == Mark::kVisiting) {
      std::vector<std::string> cycle;
      auto from = std::find(path.begin(), path.end(), i);
      for (auto it = from; it != path.end(); ++it) cycle.push_back(registrations_[*it].Uri());
      cycle.push_back(registrations_[i].Uri());
      return absl::InvalidArgumentError(
          absl::StrCat("plugins require each other in a cycle: ", absl::StrJoin(cycle, " -> ")));
    }
    marks[i] = Mark::kVisiting;
    path.push_back(i);
    for (size_t j = 0; j < registrations_.size(); ++j) {
      // "*" waits for everything, but nothing waits for a "*" through another "*".
      const Registration& r = registrations_[i];
      bool wildcard = std::find(r.requires_types.begin(), r.requires_types.end(), "*") !=
                      r.requires_types.end();
      const Registration& other = registrations_[j];
      bool other_wildcard = std::find(other.requires_types.begin(), other.requires_types.end(),
                                      "*") != other.requires_types.end();
      if (j == i || !Requires(r, other) || (wildcard && other_wildcard)) continue;
      BERTH_RETURN_IF_ERROR(visit(j));
    }
    path.pop_back();
    marks[i] = Mark::kDone;
    ordered.push_back(registrations_[i]);
    return absl::OkStatus();
  };
  for (size_t i = 0; i < registrations_.size(); ++i) BERTH_RETURN_IF_ERROR(visit(i));
  return ordered;
}

absl::Status Registry::InitAll(const InitOptions& options) {
  options_ = options;
  for (const std::string& uri : options_.required) {
    bool known = std::any_of(registrations_.begin(), registrations_.end(),
                             [&](const Registration& r) { return Listed({uri}, r); });
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat("required plugin ", uri, " is not known"));
    }
  }
  BERTH_ASSIGN_OR_RETURN(std::vector<Registration> ordered, Ordered());
  // InitContexts hold references into plugins_: it must never reallocate.
  plugins_.reserve(ordered.size());
  for (Registration& registration : ordered) {
    if (Listed(options_.disabled, registration)) {
      log::Info("plugin disabled", {{"id", registration.Uri()}});
      continue;
    }
    Plugin& plugin = plugins_.emplace_back();
    plugin.registration = std::move(registration);
    const std::string uri = plugin.registration.Uri();
    log::Info("loading plugin", {{"id", uri}, {"type", plugin.registration.type}});
    InitContext context(plugin, plugins_, options_);
    absl::StatusOr<std::any> instance = plugin.registration.init(context);
    if (instance.ok()) {
      plugin.instance = *std::move(instance);
      continue;
    }
    plugin.init_status = instance.status();
    if (IsSkipPlugin(plugin.init_status)) {
      log::Info("skip loading plugin", {{"id", uri}, {"error", plugin.init_status.message()}});
    } else {
      log::Warn("failed to load plugin", {{"id", uri}, {"error", plugin.init_status.message()}});
    }
    if (Listed(options_.required, plugin.registration)) {
      return absl::Status(plugin.init_status.code(),
                          absl::StrCat("required plugin ", uri, " failed to load: ",
                                       plugin.init_status.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace berth::daemon
