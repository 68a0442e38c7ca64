// Parsing and validation of manifests, indexes and configs; chain IDs;
// platform normalization and selection. JSON goes through nlohmann/json; each
// field is fetched by one small helper that checks its type, so that every
// error names the field's path (`layers[1].digest`).
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/digest.h"
#include "base/status.h"
#include "image/image.h"
#include "base/sha256.h"

namespace berth::image {
namespace {

using Json = nlohmann::json;

// "<doc> <path>: <why>", e.g. "manifest layers[0].size: must be >= 0, got -1".
absl::Status FieldError(absl::string_view doc, absl::string_view path,
                        absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(doc, " ", path, ": ", why));
}

// "<doc> <path>: must be <what>, got <the JSON type of value>".
absl::Status TypeError(absl::string_view doc, absl::string_view path, absl::string_view what,
                       const Json& value) {
  return FieldError(doc, path, absl::StrCat("must be ", what, ", got ", value.type_name()));
}

std::string Join(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

absl::StatusOr<Json> ParseJson(absl::string_view doc, absl::string_view text) {
  try {
    Json json = Json::parse(text.begin(), text.end());
    if (!json.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(doc, ": top level must be a JSON object, got ", json.type_name()));
    }
    return json;
  } catch (const Json::parse_error& e) {
    // e.what() carries the byte position; keep it for whoever debugs the blob.
    return absl::InvalidArgumentError(absl::StrCat(doc, ": invalid JSON: ", e.what()));
  }
}

// The member `key` of `obj`, or nullptr if absent or null.
const Json* Member(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// Reads an optional string member into *out (left alone if absent).
absl::Status GetString(absl::string_view doc, const Json& obj, absl::string_view path,
                       const char* key, std::string* out) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) {
    return TypeError(doc, Join(path, key), "a string", *v);
  }
  *out = v->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetRequiredString(absl::string_view doc, const Json& obj, absl::string_view path,
                               const char* key, std::string* out) {
  if (Member(obj, key) == nullptr) return FieldError(doc, Join(path, key), "is required");
  BERTH_RETURN_IF_ERROR(GetString(doc, obj, path, key, out));
  if (out->empty()) return FieldError(doc, Join(path, key), "must not be empty");
  return absl::OkStatus();
}

absl::Status GetStringArray(absl::string_view doc, const Json& obj, absl::string_view path,
                            const char* key, std::vector<std::string>* out) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  std::string field = Join(path, key);
  if (!v->is_array()) {
    return TypeError(doc, field, "an array", *v);
  }
  out->clear();
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_string()) {
      return TypeError(doc, absl::StrCat(field, "[", i, "]"), "a string", e);
    }
    out->push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status GetStringMap(absl::string_view doc, const Json& obj, absl::string_view path,
                          const char* key, std::map<std::string, std::string>* out) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return absl::OkStatus();
  std::string field = Join(path, key);
  if (!v->is_object()) {
    return TypeError(doc, field, "an object", *v);
  }
  out->clear();
  for (const auto& [k, e] : v->items()) {
    if (!e.is_string()) {
      return TypeError(doc, absl::StrCat(field, "[\"", k, "\"]"), "a string", e);
    }
    (*out)[k] = e.get<std::string>();
  }
  return absl::OkStatus();
}

// schemaVersion: required, and 2 (the only version either format has had
// since Docker schema 1, which the caller handles before this).
absl::Status CheckSchemaVersion(absl::string_view doc, const Json& obj, int* out) {
  const Json* v = Member(obj, "schemaVersion");
  if (v == nullptr) return FieldError(doc, "schemaVersion", "is required");
  if (!v->is_number_integer()) {
    return TypeError(doc, "schemaVersion", "an integer", *v);
  }
  if (v->get<int64_t>() != 2) {
    return FieldError(doc, "schemaVersion", absl::StrCat("must be 2, got ", v->dump()));
  }
  *out = 2;
  return absl::OkStatus();
}

absl::StatusOr<Platform> ParsePlatform(absl::string_view doc, const Json& obj,
                                       absl::string_view path) {
  if (!obj.is_object()) {
    return TypeError(doc, path, "an object", obj);
  }
  Platform p;
  BERTH_RETURN_IF_ERROR(GetRequiredString(doc, obj, path, "os", &p.os));
  BERTH_RETURN_IF_ERROR(GetRequiredString(doc, obj, path, "architecture", &p.architecture));
  BERTH_RETURN_IF_ERROR(GetString(doc, obj, path, "variant", &p.variant));
  BERTH_RETURN_IF_ERROR(GetString(doc, obj, path, "os.version", &p.os_version));
  return p;
}

absl::StatusOr<Descriptor> ParseDescriptor(absl::string_view doc, const Json& obj,
                                           absl::string_view path) {
  if (!obj.is_object()) {
    return TypeError(doc, path, "an object", obj);
  }
  Descriptor d;
  BERTH_RETURN_IF_ERROR(GetRequiredString(doc, obj, path, "mediaType", &d.media_type));
  BERTH_RETURN_IF_ERROR(GetRequiredString(doc, obj, path, "digest", &d.digest));
  if (absl::Status s = digest::Validate(d.digest); !s.ok()) {
    return FieldError(doc, Join(path, "digest"), s.message());
  }
  const Json* size = Member(obj, "size");
  std::string size_field = Join(path, "size");
  if (size == nullptr) return FieldError(doc, size_field, "is required");
  if (!size->is_number_integer()) {
    return TypeError(doc, size_field, "an integer", *size);
  }
  if (size->is_number_unsigned()) {
    uint64_t u = size->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return FieldError(doc, size_field, absl::StrCat("is too large: ", u));
    }
    d.size = static_cast<int64_t>(u);
  } else {
    d.size = size->get<int64_t>();
  }
  if (d.size < 0) {
    return FieldError(doc, size_field, absl::StrCat("must be >= 0, got ", d.size));
  }
  BERTH_RETURN_IF_ERROR(GetStringMap(doc, obj, path, "annotations", &d.annotations));
  BERTH_RETURN_IF_ERROR(GetStringArray(doc, obj, path, "urls", &d.urls));
  if (const Json* p = Member(obj, "platform"); p != nullptr) {
    BERTH_ASSIGN_OR_RETURN(d.platform, ParsePlatform(doc, *p, Join(path, "platform")));
  }
  return d;
}

absl::StatusOr<std::vector<Descriptor>> ParseDescriptors(absl::string_view doc, const Json& obj,
                                                         const char* key, bool required) {
  std::vector<Descriptor> out;
  const Json* v = Member(obj, key);
  if (v == nullptr) {
    if (required) return FieldError(doc, key, "is required");
    return out;
  }
  if (!v->is_array()) {
    return TypeError(doc, key, "an array", *v);
  }
  for (size_t i = 0; i < v->size(); ++i) {
    BERTH_ASSIGN_OR_RETURN(Descriptor d,
                           ParseDescriptor(doc, (*v)[i], absl::StrCat(key, "[", i, "]")));
    out.push_back(std::move(d));
  }
  return out;
}

bool IsSchema1MediaType(absl::string_view media_type) {
  return media_type == kMediaTypeDockerManifestV1 ||
         media_type == kMediaTypeDockerManifestV1Signed;
}

}  // namespace

absl::StatusOr<Manifest> ParseManifest(absl::string_view json) {
  constexpr absl::string_view kDoc = "manifest";
  BERTH_ASSIGN_OR_RETURN(Json root, ParseJson(kDoc, json));
  Manifest m;
  BERTH_RETURN_IF_ERROR(GetString(kDoc, root, "", "mediaType", &m.media_type));
  // Schema 1 is told apart from a merely wrong version: it is a real format,
  // just one Berth (like containerd 2.x) no longer reads.
  const Json* version = Member(root, "schemaVersion");
  if (IsSchema1MediaType(m.media_type) ||
      (version != nullptr && version->is_number_integer() && version->get<int64_t>() == 1)) {
    return absl::FailedPreconditionError(
        "manifest: Docker schema 1 manifests are not supported; re-push the image "
        "with a schema 2 or OCI manifest");
  }
  BERTH_RETURN_IF_ERROR(CheckSchemaVersion(kDoc, root, &m.schema_version));
  if (!m.media_type.empty() && m.media_type != kMediaTypeOciManifest &&
      m.media_type != kMediaTypeDockerManifest) {
    return FieldError(kDoc, "mediaType",
                      absl::StrCat("is not a manifest media type: \"", m.media_type, "\""));
  }
  const Json* config = Member(root, "config");
  if (config == nullptr) return FieldError(kDoc, "config", "is required");
  BERTH_ASSIGN_OR_RETURN(m.config, ParseDescriptor(kDoc, *config, "config"));
  BERTH_ASSIGN_OR_RETURN(m.layers, ParseDescriptors(kDoc, root, "layers", /*required=*/true));
  BERTH_RETURN_IF_ERROR(GetStringMap(kDoc, root, "", "annotations", &m.annotations));
  return m;
}

absl::StatusOr<Index> ParseIndex(absl::string_view json) {
  constexpr absl::string_view kDoc = "index";
  BERTH_ASSIGN_OR_RETURN(Json root, ParseJson(kDoc, json));
  Index index;
  BERTH_RETURN_IF_ERROR(CheckSchemaVersion(kDoc, root, &index.schema_version));
  BERTH_RETURN_IF_ERROR(GetString(kDoc, root, "", "mediaType", &index.media_type));
  if (!index.media_type.empty() && index.media_type != kMediaTypeOciIndex &&
      index.media_type != kMediaTypeDockerManifestList) {
    return FieldError(kDoc, "mediaType",
                      absl::StrCat("is not an index media type: \"", index.media_type, "\""));
  }
  BERTH_ASSIGN_OR_RETURN(index.manifests,
                         ParseDescriptors(kDoc, root, "manifests", /*required=*/true));
  BERTH_RETURN_IF_ERROR(GetStringMap(kDoc, root, "", "annotations", &index.annotations));
  return index;
}

absl::StatusOr<ImageConfig> ParseConfig(absl::string_view json) {
  constexpr absl::string_view kDoc = "config";
  BERTH_ASSIGN_OR_RETURN(Json root, ParseJson(kDoc, json));
  ImageConfig c;
  BERTH_RETURN_IF_ERROR(GetRequiredString(kDoc, root, "", "architecture", &c.architecture));
  BERTH_RETURN_IF_ERROR(GetRequiredString(kDoc, root, "", "os", &c.os));
  BERTH_RETURN_IF_ERROR(GetString(kDoc, root, "", "variant", &c.variant));
  BERTH_RETURN_IF_ERROR(GetString(kDoc, root, "", "os.version", &c.os_version));

  const Json* rootfs = Member(root, "rootfs");
  if (rootfs == nullptr) return FieldError(kDoc, "rootfs", "is required");
  if (!rootfs->is_object()) {
    return TypeError(kDoc, "rootfs", "an object", *rootfs);
  }
  std::string type;
  BERTH_RETURN_IF_ERROR(GetRequiredString(kDoc, *rootfs, "rootfs", "type", &type));
  if (type != "layers") {
    return FieldError(kDoc, "rootfs.type", absl::StrCat("must be \"layers\", got \"", type, "\""));
  }
  BERTH_RETURN_IF_ERROR(GetStringArray(kDoc, *rootfs, "rootfs", "diff_ids", &c.diff_ids));
  for (size_t i = 0; i < c.diff_ids.size(); ++i) {
    if (absl::Status s = digest::Validate(c.diff_ids[i]); !s.ok()) {
      return FieldError(kDoc, absl::StrCat("rootfs.diff_ids[", i, "]"), s.message());
    }
  }

  const Json* rc = Member(root, "config");
  if (rc == nullptr) return c;
  if (!rc->is_object()) {
    return TypeError(kDoc, "config", "an object", *rc);
  }
  BERTH_RETURN_IF_ERROR(GetStringArray(kDoc, *rc, "config", "Env", &c.env));
  BERTH_RETURN_IF_ERROR(GetStringArray(kDoc, *rc, "config", "Cmd", &c.cmd));
  BERTH_RETURN_IF_ERROR(GetStringArray(kDoc, *rc, "config", "Entrypoint", &c.entrypoint));
  BERTH_RETURN_IF_ERROR(GetString(kDoc, *rc, "config", "WorkingDir", &c.working_dir));
  BERTH_RETURN_IF_ERROR(GetString(kDoc, *rc, "config", "User", &c.user));
  BERTH_RETURN_IF_ERROR(GetStringMap(kDoc, *rc, "config", "Labels", &c.labels));
  BERTH_RETURN_IF_ERROR(GetString(kDoc, *rc, "config", "StopSignal", &c.stop_signal));
  if (const Json* ports = Member(*rc, "ExposedPorts"); ports != nullptr) {
    // A set in Go's JSON: keys carry the meaning, values are always {}.
    if (!ports->is_object()) {
      return TypeError(kDoc, "config.ExposedPorts", "an object", *ports);
    }
    for (const auto& [port, unused] : ports->items()) c.exposed_ports.push_back(port);
    std::sort(c.exposed_ports.begin(), c.exposed_ports.end());
  }
  return c;
}

absl::StatusOr<std::string> ChainId(absl::Span<const std::string> diff_ids) {
  if (diff_ids.empty()) return absl::InvalidArgumentError("chain ID of no layers");
  std::string chain;
  for (size_t i = 0; i < diff_ids.size(); ++i) {
    if (absl::Status s = digest::Validate(diff_ids[i]); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("diff_ids[", i, "]: ", s.message()));
    }
    chain = i == 0 ? diff_ids[0] : Sha256Digest(absl::StrCat(chain, " ", diff_ids[i]));
  }
  return chain;
}

Platform DefaultPlatform() { return Platform{"linux", "amd64", "", ""}; }

Platform NormalizePlatform(Platform p) {
  p.os = absl::AsciiStrToLower(p.os);
  std::string& arch = p.architecture;
  std::string& variant = p.variant;
  arch = absl::AsciiStrToLower(arch);
  if (arch == "i386") {
    arch = "386";
    variant.clear();
  } else if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    arch = "amd64";
    if (variant == "v1") variant.clear();  // v1 is the amd64 baseline.
  } else if (arch == "aarch64" || arch == "arm64") {
    arch = "arm64";
    if (variant == "8" || variant == "v8") variant.clear();
  } else if (arch == "armhf") {
    arch = "arm";
    variant = "v7";
  } else if (arch == "armel") {
    arch = "arm";
    variant = "v6";
  } else if (arch == "arm") {
    if (variant.empty() || variant == "7") {
      variant = "v7";
    } else if (variant == "5" || variant == "6" || variant == "8") {
      variant = absl::StrCat("v", variant);
    }
  }
  return p;
}

bool PlatformMatches(const Platform& want, const Platform& have) {
  Platform w = NormalizePlatform(want);
  Platform h = NormalizePlatform(have);
  return w.os == h.os && w.architecture == h.architecture &&
         (w.variant.empty() || w.variant == h.variant);
}

std::string PlatformString(const Platform& p) {
  std::string s = absl::StrCat(p.os, "/", p.architecture);
  if (!p.variant.empty()) absl::StrAppend(&s, "/", p.variant);
  return s;
}

absl::StatusOr<Descriptor> SelectManifest(const Index& index, const Platform& want) {
  const Descriptor* untagged = nullptr;
  std::vector<std::string> available;
  for (const Descriptor& d : index.manifests) {
    if (!d.platform.has_value()) {
      if (untagged == nullptr) untagged = &d;
      continue;
    }
    if (PlatformMatches(want, *d.platform)) return d;
    available.push_back(PlatformString(*d.platform));
  }
  if (untagged != nullptr) return *untagged;
  return absl::NotFoundError(absl::StrCat(
      "no manifest for platform ", PlatformString(want), " in index; available: ",
      available.empty() ? "none" : absl::StrJoin(available, ", ")));
}

}  // namespace berth::image
