#include "daemon/config.h"

#include <fcntl.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <utility>

// Debian ships toml++ as a shared library built with exceptions only (its
// symbols live in toml::v3::ex), so the no-exceptions mode would mean
// compiling the whole parser into this file. Parse errors are caught below.
#include <toml++/toml.h>

#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/status.h"
#include "base/unique_fd.h"

namespace berth::daemon {
namespace {

// sun_path holds the path and its terminating NUL.
constexpr size_t kMaxSocketPathBytes = sizeof(sockaddr_un{}.sun_path) - 1;
// A config is a few KiB; the cap stops a wrong path (/dev/zero) from being
// read forever.
constexpr size_t kMaxConfigBytes = 1 << 20;
// (uid_t)-1 is not an owner: chown reads it as "leave unchanged".
constexpr int64_t kMaxId = std::numeric_limits<uint32_t>::max() - 1;
// gRPC takes message sizes as an int.
constexpr int64_t kMaxMessageSize = std::numeric_limits<int32_t>::max();
// The range /proc/self/oom_score_adj accepts.
constexpr int64_t kMinOomScore = -1000;
constexpr int64_t kMaxOomScore = 1000;
// The task runtime plugin, whose table maps runtime names to shims.
constexpr absl::string_view kRuntimeTaskPlugin = "io.containerd.runtime.v2.task";

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// A TOML basic string. Control characters are escaped, so it also quotes
// values safely inside a one-line message.
std::string TomlString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default: {
        unsigned char byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04X", byte);
        } else {
          out += c;
        }
      }
    }
  }
  out += '"';
  return out;
}

// A key as TOML writes it: bare if it can be, else quoted (plugin ids hold dots).
std::string TomlKey(absl::string_view key) {
  bool bare = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
  return bare ? std::string(key) : TomlString(key);
}

std::string JoinKey(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? TomlKey(key) : absl::StrCat(parent, ".", TomlKey(key));
}

absl::string_view TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

template <typename T>
absl::Status Assign(T& member, absl::StatusOr<T> value) {
  if (!value.ok()) return value.status();
  member = *std::move(value);
  return absl::OkStatus();
}

// Walks a parsed document, filling a Config. Every table goes through
// ReadTable, which is where unknown keys become warnings.
class ConfigReader {
 public:
  explicit ConfigReader(absl::string_view source) : source_(source) {}

  absl::Status Read(const toml::table& doc, Config& config);

  // The warnings in line order: tables iterate in key order, not file order.
  std::vector<std::string> TakeWarnings();

 private:
  using ReadFn = absl::FunctionRef<absl::Status(const toml::node&, const std::string& path)>;
  struct Field {
    absl::string_view name;
    ReadFn read;
  };

  absl::Status ReadTable(const toml::node& node, const std::string& path,
                         std::initializer_list<Field> fields);
  absl::Status ReadVersion(const toml::node& node);
  absl::Status ReadGrpc(const toml::node& node, const std::string& path, Config::Grpc& grpc);
  absl::Status ReadDebug(const toml::node& node, const std::string& path, Config::Debug& debug);
  absl::Status ReadPlugins(const toml::node& node, const std::string& path, Config& config);
  absl::Status ReadShims(const toml::node& node, const std::string& path,
                         std::map<std::string, std::string>& shims);

  absl::StatusOr<const toml::table*> Table(const toml::node& node, absl::string_view path) const;
  absl::StatusOr<std::string> String(const toml::node& node, absl::string_view path) const;
  absl::StatusOr<std::vector<std::string>> StringArray(const toml::node& node,
                                                       absl::string_view path) const;
  absl::StatusOr<int64_t> Integer(const toml::node& node, absl::string_view path) const;
  absl::StatusOr<int64_t> IntegerIn(const toml::node& node, absl::string_view path,
                                    int64_t min, int64_t max) const;
  absl::StatusOr<std::string> AbsolutePath(const toml::node& node, absl::string_view path) const;
  absl::StatusOr<std::string> SocketPath(const toml::node& node, absl::string_view path) const;
  absl::StatusOr<std::string> LogLevel(const toml::node& node, absl::string_view path) const;

  absl::Status Invalid(const toml::node& node, absl::string_view path,
                       absl::string_view problem) const;
  absl::Status WrongType(const toml::node& node, absl::string_view path,
                         absl::string_view want) const;
  void WarnUnknown(const toml::key& key, const std::string& path);

  std::string source_;
  std::vector<std::pair<toml::source_index, std::string>> warnings_;
};

absl::Status ConfigReader::Read(const toml::table& doc, Config& config) {
  // First, so that a version 1 file is refused for what it is rather than
  // for whichever version-1-only key sorts first.
  if (const toml::node* version = doc.get("version")) BERTH_RETURN_IF_ERROR(ReadVersion(*version));
  return ReadTable(
      doc, "",
      {{"version", [](const toml::node&, const std::string&) { return absl::OkStatus(); }},
       {"root", [&](const toml::node& node, const std::string& path) {
          return Assign(config.root, AbsolutePath(node, path));
        }},
       {"state", [&](const toml::node& node, const std::string& path) {
          return Assign(config.state, AbsolutePath(node, path));
        }},
       {"disabled_plugins", [&](const toml::node& node, const std::string& path) {
          return Assign(config.disabled_plugins, StringArray(node, path));
        }},
       {"required_plugins", [&](const toml::node& node, const std::string& path) {
          return Assign(config.required_plugins, StringArray(node, path));
        }},
       {"oom_score", [&](const toml::node& node, const std::string& path) {
          return Assign(config.oom_score, IntegerIn(node, path, kMinOomScore, kMaxOomScore));
        }},
       {"grpc", [&](const toml::node& node, const std::string& path) {
          return ReadGrpc(node, path, config.grpc);
        }},
       {"debug", [&](const toml::node& node, const std::string& path) {
          return ReadDebug(node, path, config.debug);
        }},
       {"plugins", [&](const toml::node& node, const std::string& path) {
          return ReadPlugins(node, path, config);
        }}});
}

absl::Status ConfigReader::ReadTable(const toml::node& node, const std::string& path,
                                     std::initializer_list<Field> fields) {
  BERTH_ASSIGN_OR_RETURN(const toml::table* table, Table(node, path));
  for (const auto& [key, value] : *table) {
    std::string key_path = JoinKey(path, View(key.str()));
    auto field = std::find_if(fields.begin(), fields.end(),
                              [&](const Field& f) { return f.name == View(key.str()); });
    if (field == fields.end()) {
      WarnUnknown(key, key_path);
      continue;
    }
    BERTH_RETURN_IF_ERROR(field->read(value, key_path));
  }
  return absl::OkStatus();
}

absl::Status ConfigReader::ReadVersion(const toml::node& node) {
  BERTH_ASSIGN_OR_RETURN(int64_t version, Integer(node, "version"));
  if (version == 1) {
    return Invalid(node, "version",
                   "is 1: version 1 configs are not supported; Berth reads only version 2, "
                   "whose plugin tables are keyed by full id, e.g. "
                   "[plugins.\"io.containerd.gc.v1.scheduler\"]");
  }
  if (version != 2) return Invalid(node, "version", absl::StrCat("must be 2, not ", version));
  return absl::OkStatus();
}

absl::Status ConfigReader::ReadGrpc(const toml::node& node, const std::string& path,
                                    Config::Grpc& grpc) {
  auto id = [this](int64_t& member) {
    return [this, &member](const toml::node& value, const std::string& key_path) {
      return Assign(member, IntegerIn(value, key_path, 0, kMaxId));
    };
  };
  auto message_size = [this](int64_t& member) {
    return [this, &member](const toml::node& value, const std::string& key_path) {
      return Assign(member, IntegerIn(value, key_path, 1, kMaxMessageSize));
    };
  };
  return ReadTable(node, path,
                   {{"address", [&](const toml::node& value, const std::string& key_path) {
                       return Assign(grpc.address, SocketPath(value, key_path));
                     }},
                    {"uid", id(grpc.uid)},
                    {"gid", id(grpc.gid)},
                    {"max_recv_message_size", message_size(grpc.max_recv_message_size)},
                    {"max_send_message_size", message_size(grpc.max_send_message_size)}});
}

absl::Status ConfigReader::ReadDebug(const toml::node& node, const std::string& path,
                                     Config::Debug& debug) {
  return ReadTable(node, path,
                   {{"level", [&](const toml::node& value, const std::string& key_path) {
                       return Assign(debug.level, LogLevel(value, key_path));
                     }}});
}

absl::Status ConfigReader::ReadPlugins(const toml::node& node, const std::string& path,
                                       Config& config) {
  BERTH_ASSIGN_OR_RETURN(const toml::table* plugins, Table(node, path));
  for (const auto& [id, section] : *plugins) {
    const std::string section_path = JoinKey(path, View(id.str()));
    if (View(id.str()) == kRuntimeTaskPlugin) {
      BERTH_RETURN_IF_ERROR(ReadTable(
          section, section_path, {{"shims", [&](const toml::node& value, const std::string& at) {
                                     return ReadShims(value, at, config.runtime_shims);
                                   }}}));
    } else {
      // Other plugins have no keys: an empty field list makes each a warning.
      BERTH_RETURN_IF_ERROR(ReadTable(section, section_path, {}));
    }
    config.plugins.emplace(id.str());
  }
  return absl::OkStatus();
}

absl::Status ConfigReader::ReadShims(const toml::node& node, const std::string& path,
                                     std::map<std::string, std::string>& shims) {
  BERTH_ASSIGN_OR_RETURN(const toml::table* table, Table(node, path));
  for (const auto& [name, value] : *table) {
    const std::string at = JoinKey(path, View(name.str()));
    BERTH_ASSIGN_OR_RETURN(std::string binary, String(value, at));
    // A name alone, or a whole path: "bin/shim" would depend on the cwd.
    if (binary.empty() || (binary[0] != '/' && binary.find('/') != std::string::npos)) {
      return Invalid(value, at, "must be a shim's file name or absolute path");
    }
    shims[std::string(name.str())] = std::move(binary);
  }
  return absl::OkStatus();
}

absl::StatusOr<const toml::table*> ConfigReader::Table(const toml::node& node,
                                                       absl::string_view path) const {
  if (const toml::table* table = node.as_table()) return table;
  return WrongType(node, path, "a table");
}

absl::StatusOr<std::string> ConfigReader::String(const toml::node& node,
                                                 absl::string_view path) const {
  if (const toml::value<std::string>* value = node.as_string()) return value->get();
  return WrongType(node, path, "a string");
}

absl::StatusOr<std::vector<std::string>> ConfigReader::StringArray(const toml::node& node,
                                                                   absl::string_view path) const {
  const toml::array* array = node.as_array();
  if (array == nullptr) return WrongType(node, path, "an array of strings");
  std::vector<std::string> strings;
  for (size_t i = 0; i < array->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(std::string s, String((*array)[i], absl::StrCat(path, "[", i, "]")));
    strings.push_back(std::move(s));
  }
  return strings;
}

absl::StatusOr<int64_t> ConfigReader::Integer(const toml::node& node,
                                              absl::string_view path) const {
  if (const toml::value<int64_t>* value = node.as_integer()) return value->get();
  return WrongType(node, path, "an integer");
}

absl::StatusOr<int64_t> ConfigReader::IntegerIn(const toml::node& node, absl::string_view path,
                                                int64_t min, int64_t max) const {
  BERTH_ASSIGN_OR_RETURN(int64_t value, Integer(node, path));
  if (value < min || value > max) {
    return Invalid(node, path,
                   absl::StrCat("must be between ", min, " and ", max, ", not ", value));
  }
  return value;
}

absl::StatusOr<std::string> ConfigReader::AbsolutePath(const toml::node& node,
                                                       absl::string_view path) const {
  BERTH_ASSIGN_OR_RETURN(std::string value, String(node, path));
  if (value.empty()) return Invalid(node, path, "must not be empty");
  if (value.front() != '/') {
    return Invalid(node, path, absl::StrCat("must be an absolute path, not ", TomlString(value)));
  }
  // The kernel would read the path only up to the NUL: a different path.
  if (value.find('\0') != std::string::npos) {
    return Invalid(node, path, absl::StrCat("must not hold a NUL byte: ", TomlString(value)));
  }
  return value;
}

absl::StatusOr<std::string> ConfigReader::SocketPath(const toml::node& node,
                                                     absl::string_view path) const {
  BERTH_ASSIGN_OR_RETURN(std::string value, AbsolutePath(node, path));
  if (value.size() > kMaxSocketPathBytes) {
    return Invalid(node, path,
                   absl::StrCat("is ", value.size(), " bytes, over the ", kMaxSocketPathBytes,
                                "-byte limit of a unix socket path: ", TomlString(value)));
  }
  return value;
}

absl::StatusOr<std::string> ConfigReader::LogLevel(const toml::node& node,
                                                   absl::string_view path) const {
  BERTH_ASSIGN_OR_RETURN(std::string value, String(node, path));
  if (!log::ParseLevel(value).ok()) {
    return Invalid(node, path,
                   absl::StrCat("must be one of trace, debug, info, warn, warning, error, not ",
                                TomlString(value)));
  }
  return value;
}

absl::Status ConfigReader::Invalid(const toml::node& node, absl::string_view path,
                                   absl::string_view problem) const {
  return absl::InvalidArgumentError(absl::StrCat(source_, " line ", node.source().begin.line,
                                                 ": key ", TomlString(path), " ", problem));
}

absl::Status ConfigReader::WrongType(const toml::node& node, absl::string_view path,
                                     absl::string_view want) const {
  return Invalid(node, path, absl::StrCat("must be ", want, ", not ", TypeName(node.type())));
}

void ConfigReader::WarnUnknown(const toml::key& key, const std::string& path) {
  toml::source_index line = key.source().begin.line;
  warnings_.emplace_back(
      line, absl::StrCat("unknown configuration key ", TomlString(path), " at line ", line));
}

std::vector<std::string> ConfigReader::TakeWarnings() {
  std::stable_sort(warnings_.begin(), warnings_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> warnings;
  for (auto& [line, warning] : warnings_) warnings.push_back(std::move(warning));
  warnings_.clear();
  return warnings;
}

absl::StatusOr<toml::table> ParseToml(absl::string_view text, absl::string_view source) {
  try {
    return toml::parse(std::string_view(text.data(), text.size()),
                       std::string_view(source.data(), source.size()));
  } catch (const toml::parse_error& error) {
    const toml::source_position& at = error.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", at.line, ":", at.column, ": ", View(error.description())));
  }
}

absl::StatusOr<std::string> ReadConfigText(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("open", path);
  std::string text;
  char buffer[16 * 1024];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read", path);
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "read \"", path, "\": over ", kMaxConfigBytes, " bytes, too big for a config"));
    }
  }
}

std::string FormatStringArray(const std::vector<std::string>& strings) {
  return absl::StrCat(
      "[",
      absl::StrJoin(strings, ", ",
                    [](std::string* out, const std::string& s) { out->append(TomlString(s)); }),
      "]");
}

}  // namespace

absl::StatusOr<Config> ParseConfig(absl::string_view toml_text, absl::string_view source,
                                   std::vector<std::string>* warnings) {
  BERTH_ASSIGN_OR_RETURN(toml::table doc, ParseToml(toml_text, source));
  Config config;
  ConfigReader reader(source);
  BERTH_RETURN_IF_ERROR(reader.Read(doc, config));
  std::vector<std::string> found = reader.TakeWarnings();
  if (warnings != nullptr) warnings->insert(warnings->end(), found.begin(), found.end());
  return config;
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path, std::vector<std::string>* warnings) {
  BERTH_ASSIGN_OR_RETURN(std::string text, ReadConfigText(path));
  return ParseConfig(text, path, warnings);
}

std::string FormatConfig(const Config& config) {
  std::string out = absl::StrCat(
      "version = ", config.version, "\n",
      "root = ", TomlString(config.root), "\n",
      "state = ", TomlString(config.state), "\n",
      "disabled_plugins = ", FormatStringArray(config.disabled_plugins), "\n",
      "required_plugins = ", FormatStringArray(config.required_plugins), "\n",
      "oom_score = ", config.oom_score, "\n",
      "\n[grpc]\n",
      "  address = ", TomlString(config.grpc.address), "\n",
      "  uid = ", config.grpc.uid, "\n",
      "  gid = ", config.grpc.gid, "\n",
      "  max_recv_message_size = ", config.grpc.max_recv_message_size, "\n",
      "  max_send_message_size = ", config.grpc.max_send_message_size, "\n",
      "\n[debug]\n",
      "  level = ", TomlString(config.debug.level), "\n",
      "\n[plugins]\n");
  for (const std::string& id : config.plugins) {
    absl::StrAppend(&out, "  [plugins.", TomlKey(id), "]\n");
  }
  if (!config.runtime_shims.empty()) {
    absl::StrAppend(&out, "  [plugins.", TomlKey(kRuntimeTaskPlugin), ".shims]\n");
    for (const auto& [name, binary] : config.runtime_shims) {
      absl::StrAppend(&out, "    ", TomlKey(name), " = ", TomlString(binary), "\n");
    }
  }
  return out;
}

}  // namespace berth::daemon
