// The image model: descriptors, manifests, indexes and configs, parsed from
// their JSON, plus the chain IDs that name unpacked layers and the platform
// rules that pick one manifest out of a multi-platform image.
//
// The model. An image is reached through a descriptor: a media type, a
// digest and a size naming one blob in the content store. The blob it names
// is either
//
//   a manifest   (OCI image manifest, or Docker schema 2 manifest): one
//                config descriptor plus the layer descriptors, bottom first;
//   an index     (OCI image index, or Docker manifest list): descriptors of
//                per-platform manifests, each tagged with the os/architecture
//                (and variant) it runs on.
//
// The config (JSON) holds the platform, the runtime defaults (Env, Cmd,
// Entrypoint, ...) and rootfs.diff_ids: the digests of the *uncompressed*
// layer tars, one per manifest layer, in the same order. A manifest lists the
// compressed blobs; the config lists what they unpack to.
//
// Unpacking layer n gives a snapshot that holds layers 0..n stacked, so it is
// named by the whole stack, not by diff_ids[n] alone: its chain ID,
//
//   chain(0) = diff_ids[0]
//   chain(n) = sha256(chain(n-1) + " " + diff_ids[n])
//
// (the OCI image spec's ChainID; containerd names committed snapshots so).
//
// A worked example. Pulling `alpine` on an arm64 host: the tag resolves to an
// index descriptor; ParseIndex lists manifests for linux/amd64,
// linux/arm64/v8, linux/arm/v7, ...; SelectManifest(index,
// NormalizePlatform({"linux", "aarch64"})) picks the linux/arm64/v8 entry;
// ParseManifest on that blob gives its config descriptor and one gzip layer;
// ParseConfig on the config gives one diff_id, whose ChainId is the diff_id
// itself — the snapshot key the layer is unpacked under.
//
// Validation. All parsers treat their input as untrusted: every digest goes
// through digest::Validate, every size must be an integer >= 0, and fields of
// the wrong JSON type are errors, not silently skipped. JSON null counts as
// absent (Docker writes `"Cmd": null`). Unknown fields are ignored, as the
// OCI spec requires. Every error is InvalidArgument naming the field and what
// was wrong with it, except Docker schema 1 (see ParseManifest).
//
// Threads: everything here is a pure function of its arguments.
#ifndef BERTH_IMAGE_IMAGE_H_
#define BERTH_IMAGE_IMAGE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace berth::image {

// Media types. OCI first, then Docker's, which containerd accepts alike.
inline constexpr absl::string_view kMediaTypeOciIndex =
    "application/vnd.oci.image.index.v1+json";
inline constexpr absl::string_view kMediaTypeOciManifest =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr absl::string_view kMediaTypeOciConfig =
    "application/vnd.oci.image.config.v1+json";
inline constexpr absl::string_view kMediaTypeOciLayer =
    "application/vnd.oci.image.layer.v1.tar";
inline constexpr absl::string_view kMediaTypeOciLayerGzip =
    "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr absl::string_view kMediaTypeOciLayerZstd =
    "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr absl::string_view kMediaTypeOciLayerNondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr absl::string_view kMediaTypeOciLayerNondistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr absl::string_view kMediaTypeOciLayerNondistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

inline constexpr absl::string_view kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr absl::string_view kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr absl::string_view kMediaTypeDockerConfig =
    "application/vnd.docker.container.image.v1+json";
inline constexpr absl::string_view kMediaTypeDockerLayer =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr absl::string_view kMediaTypeDockerForeignLayer =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// Schema 1 (signed, v1-compatible history): recognized only to be refused.
inline constexpr absl::string_view kMediaTypeDockerManifestV1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr absl::string_view kMediaTypeDockerManifestV1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// What an image runs on. JSON names: os, architecture, variant, os.version.
struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;
};

// A pointer to one blob. `platform` is set only for index entries that
// carry one; `urls` only for foreign/nondistributable layers.
struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
  std::vector<std::string> urls;
};

struct Manifest {
  int schema_version = 2;
  std::string media_type;  // As written; empty if the JSON omits it (OCI allows).
  Descriptor config;
  std::vector<Descriptor> layers;  // Bottom layer first.
  std::map<std::string, std::string> annotations;
};

struct Index {
  int schema_version = 2;
  std::string media_type;  // As written; may be empty.
  std::vector<Descriptor> manifests;
  std::map<std::string, std::string> annotations;
};

struct ImageConfig {
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, bottom layer first.
  // The runtime defaults (the config's `config` object; all optional).
  std::vector<std::string> env;  // "KEY=value".
  std::vector<std::string> cmd;
  std::vector<std::string> entrypoint;
  std::string working_dir;
  std::string user;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // The keys, e.g. "80/tcp"; sorted.
  std::string stop_signal;
};

// Parses an image manifest, OCI or Docker schema 2. schemaVersion must be 2;
// mediaType, if present, must be an OCI or Docker v2 manifest type; config
// must be present and be a valid descriptor; layers must be an array of them.
// Docker schema 1 (schemaVersion 1, or a v1 media type) is FailedPrecondition:
// it is well-formed but unsupported, and must be re-pushed as schema 2.
// Anything else wrong is InvalidArgument naming the field.
absl::StatusOr<Manifest> ParseManifest(absl::string_view json);

// Parses an OCI image index or a Docker manifest list. schemaVersion must be
// 2; mediaType, if present, must be one of the two; manifests must be present.
// Errors are InvalidArgument naming the field.
absl::StatusOr<Index> ParseIndex(absl::string_view json);

// Parses an image config (OCI or Docker, the same JSON). architecture and os
// are required; rootfs.type must be "layers"; every rootfs.diff_ids entry must
// be a valid digest. Errors are InvalidArgument naming the field.
absl::StatusOr<ImageConfig> ParseConfig(absl::string_view json);

// The chain ID of the stack diff_ids[0..n-1] (see the model above), as
// `sha256:<hex>`. InvalidArgument for an empty span or an invalid diff_id.
absl::StatusOr<std::string> ChainId(absl::Span<const std::string> diff_ids);

// linux/amd64, no variant: what Berth pulls when not told otherwise.
Platform DefaultPlatform();

// The canonical spelling, as containerd's platforms.Normalize: os and
// architecture lowercased; x86_64/x86-64 -> amd64 (variant v1 dropped);
// aarch64 -> arm64 (variant 8/v8 dropped: v8 is arm64's only baseline);
// armhf -> arm/v7, armel -> arm/v6, plain arm -> arm/v7, arm variant "N" ->
// "vN"; i386 -> 386. os_version is kept as is.
Platform NormalizePlatform(Platform platform);

// True if an image built for `have` runs where `want` is asked for: after
// normalizing both, os and architecture are equal, and the variants are equal
// or `want` names none. Strict like containerd's platforms.Only for amd64: an
// amd64 want does not take 386 images.
bool PlatformMatches(const Platform& want, const Platform& have);

// "os/architecture[/variant]", for messages.
std::string PlatformString(const Platform& platform);

// The first entry of `index` whose platform matches `want`. An entry without
// a platform is taken only if no entry matches (containerd treats untagged
// entries as matching anything; a tagged match is preferred here). NotFound
// naming `want` and the platforms the index offers if nothing fits.
absl::StatusOr<Descriptor> SelectManifest(const Index& index, const Platform& want);

}  // namespace berth::image

#endif  // BERTH_IMAGE_IMAGE_H_
