#include "services/introspection/introspection.h"

#include <algorithm>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/random.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "filters/filters.h"
#include "github.com/containerd/containerd/api/services/introspection/v1/introspection.grpc.pb.h"
#include "services/edge.h"

namespace berth::services::introspection {
namespace {

namespace api = ::containerd::services::introspection::v1;

// How a plugin looks to a filter, as containerd adapts it: type, id and the
// capabilities joined by ",".
class PluginAdaptor final : public filters::Adaptor {
 public:
  explicit PluginAdaptor(const daemon::Plugin& plugin) : plugin_(plugin) {}
  std::optional<std::string> Field(const std::vector<std::string>& path) const override {
    if (path.size() != 1) return std::nullopt;
    if (path[0] == "type") return plugin_.registration.type;
    if (path[0] == "id") return plugin_.registration.id;
    if (path[0] == "capabilities" && !plugin_.capabilities.empty()) {
      return absl::StrJoin(plugin_.capabilities, ",");
    }
    return std::nullopt;
  }

 private:
  const daemon::Plugin& plugin_;
};

std::string NewUuid() {
  const std::string random = RandomBytes(16);
  unsigned char b[16];
  std::copy(random.begin(), random.end(), b);
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

// The server's UUID lives in <plugin root>/uuid: read it, or make it once and
// write it durably (temp file, fsync, rename) so it never changes.
absl::StatusOr<std::string> LoadOrCreateUuid(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir", dir);
  const std::string path = dir + "/uuid";
  if (UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); fd.valid()) {
    char buf[64];
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) return ErrnoStatus("read", path);
    std::string uuid(buf, n);
    while (!uuid.empty() && (uuid.back() == '\n' || uuid.back() == ' ')) uuid.pop_back();
    if (uuid.size() == 36) return uuid;
  } else if (errno != ENOENT) {
    return ErrnoStatus("open", path);
  }
  std::string uuid = NewUuid();
  const std::string temp = path + ".tmp";
  {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return ErrnoStatus("open", temp);
    if (::write(fd.get(), uuid.data(), uuid.size()) != static_cast<ssize_t>(uuid.size())) {
      return ErrnoStatus("write", temp);
    }
    if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", temp);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) return ErrnoStatus("rename", temp);
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid() || ::fsync(dir_fd.get()) != 0) return ErrnoStatus("fsync", dir);
  return uuid;
}

void ToProto(const daemon::Plugin& plugin, api::Plugin* out) {
  out->set_type(plugin.registration.type);
  out->set_id(plugin.registration.id);
  for (const std::string& type : plugin.registration.requires_types) out->add_requires_(type);
  for (const auto& [key, value] : plugin.exports) (*out->mutable_exports())[key] = value;
  for (const std::string& capability : plugin.capabilities) out->add_capabilities(capability);
  if (!plugin.init_status.ok()) {
    out->mutable_init_err()->set_code(static_cast<int>(plugin.init_status.code()));
    out->mutable_init_err()->set_message(std::string(plugin.init_status.message()));
  }
}

class Service final : public api::Introspection::CallbackService, public daemon::GrpcService {
 public:
  Service(const std::vector<daemon::Plugin>& plugins, std::string uuid)
      : plugins_(plugins), uuid_(std::move(uuid)) {}

  void Register(grpc::ServerBuilder& builder) override { builder.RegisterService(this); }

  grpc::ServerUnaryReactor* Plugins(grpc::CallbackServerContext* context,
                                    const api::PluginsRequest* request,
                                    api::PluginsResponse* response) override {
    absl::StatusOr<filters::Filter> filter = filters::Filter::ParseAny(request->filters());
    if (filter.ok()) {
      for (const daemon::Plugin& plugin : plugins_) {
        if (filter->Match(PluginAdaptor(plugin))) ToProto(plugin, response->add_plugins());
      }
    }
    return Finish(context, filter.status());
  }

  grpc::ServerUnaryReactor* Server(grpc::CallbackServerContext* context,
                                   const google::protobuf::Empty*,
                                   api::ServerResponse* response) override {
    response->set_uuid(uuid_);
    return Finish(context, absl::OkStatus());
  }

 private:
  const std::vector<daemon::Plugin>& plugins_;  // the registry's; fixed once serving
  const std::string uuid_;
};

}  // namespace

void Register(daemon::Registry& registry) {
  registry.Register({.type = daemon::kGrpcPlugin,
                     .id = "introspection",
                     .requires_types = {"*"},
                     .init = [](daemon::InitContext& ic) -> absl::StatusOr<std::any> {
                       BERTH_ASSIGN_OR_RETURN(std::string uuid, LoadOrCreateUuid(ic.root()));
                       return std::shared_ptr<daemon::GrpcService>(
                           std::make_shared<Service>(ic.plugins(), std::move(uuid)));
                     }});
}

}  // namespace berth::services::introspection
