// The image model against hand-written manifests, indexes and configs in the
// shapes registries serve (OCI and Docker), each malformed field, chain IDs
// checked against sha256sum, and platform normalization and selection.
#include "image/image.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/sha256.h"

namespace berth::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// A well-formed digest of one repeated hex digit.
std::string D(char c) { return absl::StrCat("sha256:", std::string(64, c)); }

Platform P(std::string os, std::string arch, std::string variant = "") {
  Platform p;
  p.os = std::move(os);
  p.architecture = std::move(arch);
  p.variant = std::move(variant);
  return p;
}

const std::string kOciManifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": ")" + D('1') + R"(",
    "size": 1469
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": ")" + D('2') + R"(",
      "size": 3408729
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": ")" + D('3') + R"(",
      "size": 0,
      "annotations": {"org.example.note": "empty"}
    }
  ],
  "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"}
})";

const std::string kDockerManifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {
    "mediaType": "application/vnd.docker.container.image.v1+json",
    "size": 7023,
    "digest": ")" + D('4') + R"("
  },
  "layers": [
    {
      "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "size": 32654,
      "digest": ")" + D('5') + R"("
    },
    {
      "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
      "size": 1024,
      "digest": ")" + D('6') + R"(",
      "urls": ["https://example.com/layer.tar.gz"]
    }
  ]
})";

// A manifest with `field` (a JSON fragment for one layer) as its only layer.
std::string ManifestWithLayer(const std::string& layer) {
  return absl::StrCat(R"({"schemaVersion": 2, "config": {"mediaType": ")", kMediaTypeOciConfig,
                      R"(", "digest": ")", D('1'), R"(", "size": 2}, "layers": [)", layer,
                      "]}");
}

TEST(ParseManifestTest, Oci) {
  absl::StatusOr<Manifest> m = ParseManifest(kOciManifest);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->schema_version, 2);
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->config.media_type, kMediaTypeOciConfig);
  EXPECT_EQ(m->config.digest, D('1'));
  EXPECT_EQ(m->config.size, 1469);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].media_type, kMediaTypeOciLayerGzip);
  EXPECT_EQ(m->layers[0].digest, D('2'));
  EXPECT_EQ(m->layers[0].size, 3408729);
  EXPECT_EQ(m->layers[1].media_type, kMediaTypeOciLayerZstd);
  EXPECT_EQ(m->layers[1].size, 0);
  EXPECT_THAT(m->layers[1].annotations, ElementsAre(Pair("org.example.note", "empty")));
  EXPECT_FALSE(m->layers[0].platform.has_value());
  EXPECT_THAT(m->annotations,
              ElementsAre(Pair("org.opencontainers.image.created", "2024-01-02T03:04:05Z")));
}

TEST(ParseManifestTest, DockerSchema2) {
  absl::StatusOr<Manifest> m = ParseManifest(kDockerManifest);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(m->config.media_type, kMediaTypeDockerConfig);
  EXPECT_EQ(m->config.digest, D('4'));
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].media_type, kMediaTypeDockerLayer);
  EXPECT_EQ(m->layers[1].media_type, kMediaTypeDockerForeignLayer);
  EXPECT_THAT(m->layers[1].urls, ElementsAre("https://example.com/layer.tar.gz"));
  EXPECT_TRUE(m->annotations.empty());
}

TEST(ParseManifestTest, MediaTypeIsOptional) {
  // OCI makes mediaType optional (older tools omit it).
  absl::StatusOr<Manifest> m = ParseManifest(ManifestWithLayer(""));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->media_type, "");
  EXPECT_TRUE(m->layers.empty());
}

TEST(ParseManifestTest, InvalidJsonNamesPosition) {
  absl::StatusOr<Manifest> m = ParseManifest(R"({"schemaVersion": 2,, })");
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m.status().message(), HasSubstr("invalid JSON"));
  EXPECT_THAT(m.status().message(), HasSubstr("column 21"));
  EXPECT_THAT(ParseManifest(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseManifest("[]"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ParseManifestTest, SchemaVersion) {
  absl::StatusOr<Manifest> m = ParseManifest(R"({"schemaVersion": 3, "config": {}})");
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m.status().message(), HasSubstr("schemaVersion: must be 2, got 3"));
  m = ParseManifest(R"({"config": {}})");
  EXPECT_THAT(m.status().message(), HasSubstr("schemaVersion: is required"));
  m = ParseManifest(R"({"schemaVersion": "2"})");
  EXPECT_THAT(m.status().message(), HasSubstr("schemaVersion: must be an integer"));
}

TEST(ParseManifestTest, DockerSchema1IsRefused) {
  absl::StatusOr<Manifest> m = ParseManifest(
      R"({"schemaVersion": 1, "name": "library/busybox", "tag": "latest",
          "architecture": "amd64", "fsLayers": [], "history": []})");
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(m.status().message(), HasSubstr("schema 1"));
  m = ParseManifest(absl::StrCat(R"({"schemaVersion": 2, "mediaType": ")",
                                 kMediaTypeDockerManifestV1Signed, R"("})"));
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ParseManifestTest, IndexMediaTypeIsNotAManifest) {
  absl::StatusOr<Manifest> m = ParseManifest(
      absl::StrCat(R"({"schemaVersion": 2, "mediaType": ")", kMediaTypeOciIndex, R"("})"));
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m.status().message(), HasSubstr("mediaType: is not a manifest media type"));
}

TEST(ParseManifestTest, MissingConfig) {
  absl::StatusOr<Manifest> m = ParseManifest(R"({"schemaVersion": 2, "layers": []})");
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m.status().message(), HasSubstr("manifest config: is required"));
}

TEST(ParseManifestTest, MissingLayers) {
  std::string json = ManifestWithLayer("");
  json = json.substr(0, json.find(R"(, "layers")")) + "}";
  absl::StatusOr<Manifest> m = ParseManifest(json);
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m.status().message(), HasSubstr("layers: is required"));
}

TEST(ParseManifestTest, BadDescriptors) {
  struct Case {
    std::string layer;
    std::string message;
  };
  const std::string gz = absl::StrCat(R"("mediaType": ")", kMediaTypeOciLayerGzip, R"(")");
  const std::vector<Case> cases = {
      {absl::StrCat("{", gz, R"(, "digest": "sha256:abc", "size": 1})"),
       "layers[0].digest: "},
      {absl::StrCat("{", gz, R"(, "digest": ")", D('A'), R"(", "size": 1})"),
       "layers[0].digest: "},
      {absl::StrCat("{", gz, R"(, "digest": ")", D('a'), R"(", "size": -1})"),
       "layers[0].size: must be >= 0, got -1"},
      {absl::StrCat("{", gz, R"(, "digest": ")", D('a'), R"(", "size": 1.5})"),
       "layers[0].size: must be an integer"},
      {absl::StrCat("{", gz, R"(, "digest": ")", D('a'), R"("})"), "layers[0].size: is required"},
      {absl::StrCat("{", gz, R"(, "size": 1})"), "layers[0].digest: is required"},
      {absl::StrCat(R"({"digest": ")", D('a'), R"(", "size": 1})"),
       "layers[0].mediaType: is required"},
      {absl::StrCat("{", gz, R"(, "digest": 7, "size": 1})"),
       "layers[0].digest: must be a string, got number"},
      {absl::StrCat("{", gz, R"(, "digest": ")", D('a'), R"(", "size": 1, "urls": [1]})"),
       "layers[0].urls[0]: must be a string"},
      {absl::StrCat("{", gz, R"(, "digest": ")", D('a'),
                    R"(", "size": 1, "annotations": {"k": 1}})"),
       "layers[0].annotations[\"k\"]: must be a string"},
      {"\"layer\"", "layers[0]: must be an object, got string"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.layer);
    absl::StatusOr<Manifest> m = ParseManifest(ManifestWithLayer(c.layer));
    EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(m.status().message(), HasSubstr(c.message));
  }
  // The config descriptor is checked the same way.
  absl::StatusOr<Manifest> m = ParseManifest(absl::StrCat(
      R"({"schemaVersion": 2, "config": {"mediaType": "x", "digest": "md5:00", "size": 1},
          "layers": []})"));
  EXPECT_THAT(m.status().message(), HasSubstr("config.digest: "));
}

const std::string kMultiArchIndex = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + D('a') +
                                     R"(", "size": 1000,
     "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + D('b') +
                                     R"(", "size": 1001,
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + D('c') +
                                     R"(", "size": 1002,
     "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")" + D('d') +
                                     R"(", "size": 1003,
     "platform": {"architecture": "386", "os": "linux"}}
  ],
  "annotations": {"org.opencontainers.image.ref.name": "3.19"}
})";

TEST(ParseIndexTest, OciIndex) {
  absl::StatusOr<Index> index = ParseIndex(kMultiArchIndex);
  ASSERT_THAT(index, IsOk());
  EXPECT_EQ(index->media_type, kMediaTypeOciIndex);
  ASSERT_EQ(index->manifests.size(), 4u);
  EXPECT_EQ(index->manifests[1].digest, D('b'));
  EXPECT_EQ(index->manifests[1].size, 1001);
  ASSERT_TRUE(index->manifests[1].platform.has_value());
  EXPECT_EQ(index->manifests[1].platform->os, "linux");
  EXPECT_EQ(index->manifests[1].platform->architecture, "arm64");
  EXPECT_EQ(index->manifests[1].platform->variant, "v8");
  EXPECT_THAT(index->annotations, ElementsAre(Pair("org.opencontainers.image.ref.name", "3.19")));
}

TEST(ParseIndexTest, DockerManifestList) {
  absl::StatusOr<Index> index = ParseIndex(absl::StrCat(R"({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
      {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
       "size": 527, "digest": ")",
                                                        D('e'), R"(",
       "platform": {"architecture": "amd64", "os": "windows",
                    "os.version": "10.0.17763.5329"}}
    ]})"));
  ASSERT_THAT(index, IsOk());
  EXPECT_EQ(index->media_type, kMediaTypeDockerManifestList);
  ASSERT_EQ(index->manifests.size(), 1u);
  EXPECT_EQ(index->manifests[0].media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(index->manifests[0].platform->os, "windows");
  EXPECT_EQ(index->manifests[0].platform->os_version, "10.0.17763.5329");
}

TEST(ParseIndexTest, Errors) {
  EXPECT_THAT(ParseIndex("{").status().message(), HasSubstr("index: invalid JSON"));
  EXPECT_THAT(ParseIndex(R"({"schemaVersion": 1, "manifests": []})").status().message(),
              HasSubstr("schemaVersion: must be 2, got 1"));
  EXPECT_THAT(ParseIndex(R"({"schemaVersion": 2})").status().message(),
              HasSubstr("manifests: is required"));
  EXPECT_THAT(ParseIndex(absl::StrCat(R"({"schemaVersion": 2, "mediaType": ")",
                                      kMediaTypeOciManifest, R"(", "manifests": []})"))
                  .status()
                  .message(),
              HasSubstr("mediaType: is not an index media type"));
  absl::StatusOr<Index> bad = ParseIndex(absl::StrCat(
      R"({"schemaVersion": 2, "manifests": [{"mediaType": "m", "digest": ")", D('a'),
      R"(", "size": -5}]})"));
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(bad.status().message(), HasSubstr("manifests[0].size: must be >= 0, got -5"));
  bad = ParseIndex(absl::StrCat(
      R"({"schemaVersion": 2, "manifests": [{"mediaType": "m", "digest": ")", D('a'),
      R"(", "size": 5, "platform": {"os": "linux"}}]})"));
  EXPECT_THAT(bad.status().message(), HasSubstr("manifests[0].platform.architecture: is required"));
}

const std::string kConfig = R"({
  "architecture": "arm64",
  "variant": "v8",
  "os": "linux",
  "created": "2024-01-02T03:04:05Z",
  "config": {
    "User": "nobody:nogroup",
    "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
    "Entrypoint": ["/docker-entrypoint.sh"],
    "Cmd": ["nginx", "-g", "daemon off;"],
    "WorkingDir": "/srv",
    "Labels": {"maintainer": "NGINX Docker Maintainers"},
    "StopSignal": "SIGQUIT"
  },
  "rootfs": {
    "type": "layers",
    "diff_ids": [")" + D('7') + R"(", ")" + D('8') + R"("]
  },
  "history": [{"created_by": "ADD file:abc in /"}]
})";

TEST(ParseConfigTest, Full) {
  absl::StatusOr<ImageConfig> c = ParseConfig(kConfig);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->architecture, "arm64");
  EXPECT_EQ(c->variant, "v8");
  EXPECT_EQ(c->os, "linux");
  EXPECT_THAT(c->diff_ids, ElementsAre(D('7'), D('8')));
  EXPECT_THAT(c->env, ElementsAre(
                          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "LANG=C.UTF-8"));
  EXPECT_THAT(c->entrypoint, ElementsAre("/docker-entrypoint.sh"));
  EXPECT_THAT(c->cmd, ElementsAre("nginx", "-g", "daemon off;"));
  EXPECT_EQ(c->working_dir, "/srv");
  EXPECT_EQ(c->user, "nobody:nogroup");
  EXPECT_THAT(c->labels, ElementsAre(Pair("maintainer", "NGINX Docker Maintainers")));
  EXPECT_THAT(c->exposed_ports, ElementsAre("53/udp", "8080/tcp"));
  EXPECT_EQ(c->stop_signal, "SIGQUIT");
}

TEST(ParseConfigTest, MinimalWithNulls) {
  // Docker writes nulls for unset fields; they read as absent.
  absl::StatusOr<ImageConfig> c = ParseConfig(
      R"({"architecture": "amd64", "os": "linux",
          "config": {"Cmd": null, "Env": null, "Labels": null, "ExposedPorts": null},
          "rootfs": {"type": "layers", "diff_ids": []}})");
  ASSERT_THAT(c, IsOk());
  EXPECT_TRUE(c->cmd.empty());
  EXPECT_TRUE(c->labels.empty());
  EXPECT_TRUE(c->diff_ids.empty());
}

TEST(ParseConfigTest, Errors) {
  struct Case {
    std::string json;
    std::string message;
  };
  const std::string layers = R"("rootfs": {"type": "layers", "diff_ids": []})";
  const std::vector<Case> cases = {
      {"nope", "config: invalid JSON"},
      {absl::StrCat(R"({"os": "linux", )", layers, "}"), "architecture: is required"},
      {absl::StrCat(R"({"architecture": "amd64", )", layers, "}"), "os: is required"},
      {R"({"architecture": "amd64", "os": "linux"})", "rootfs: is required"},
      {R"({"architecture": "amd64", "os": "linux", "rootfs": {"type": "tarballs",
          "diff_ids": []}})",
       R"(rootfs.type: must be "layers", got "tarballs")"},
      {R"({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}})",
       "rootfs.type: is required"},
      {R"({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
          "diff_ids": ["sha256:xyz"]}})",
       "rootfs.diff_ids[0]: "},
      {R"({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
          "diff_ids": "sha256:xyz"}})",
       "rootfs.diff_ids: must be an array"},
      {absl::StrCat(R"({"architecture": "amd64", "os": "linux", "config": {"Cmd": "sh"}, )",
                    layers, "}"),
       "config.Cmd: must be an array, got string"},
      {absl::StrCat(R"({"architecture": "amd64", "os": "linux", "config": {"User": 0}, )",
                    layers, "}"),
       "config.User: must be a string, got number"},
      {absl::StrCat(
           R"({"architecture": "amd64", "os": "linux", "config": {"ExposedPorts": ["80"]}, )",
           layers, "}"),
       "config.ExposedPorts: must be an object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    absl::StatusOr<ImageConfig> config = ParseConfig(c.json);
    EXPECT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(config.status().message(), HasSubstr(c.message));
  }
}

std::string ChainIdOrError(const std::vector<std::string>& ids) {
  absl::StatusOr<std::string> chain = ChainId(ids);
  return chain.ok() ? *chain : chain.status().ToString();
}

// Expected values from the shell, independent of this code:
//   A=sha256:$(printf 'a%.0s' {1..64}) B=... C=...
//   printf "$A $B" | sha256sum
//   printf "sha256:<that> $C" | sha256sum
constexpr char kChainAB[] =
    "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c";
constexpr char kChainABC[] =
    "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588";

TEST(ChainIdTest, OneLayerIsItsDiffId) {
  std::vector<std::string> ids = {D('a')};
  EXPECT_EQ(ChainIdOrError(ids), D('a'));
}

TEST(ChainIdTest, TwoLayers) {
  std::vector<std::string> ids = {D('a'), D('b')};
  EXPECT_EQ(ChainIdOrError(ids), std::string(kChainAB));
  EXPECT_EQ(ChainIdOrError(ids), Sha256Digest(absl::StrCat(D('a'), " ", D('b'))));
}

TEST(ChainIdTest, ThreeLayers) {
  std::vector<std::string> ids = {D('a'), D('b'), D('c')};
  EXPECT_EQ(ChainIdOrError(ids), std::string(kChainABC));
  EXPECT_EQ(ChainIdOrError(ids), Sha256Digest(absl::StrCat(kChainAB, " ", D('c'))));
}

TEST(ChainIdTest, Errors) {
  EXPECT_THAT(ChainId({}), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<std::string> ids = {D('a'), "sha256:nothex"};
  absl::StatusOr<std::string> chain = ChainId(ids);
  EXPECT_THAT(chain, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(chain.status().message(), HasSubstr("diff_ids[1]"));
}

TEST(PlatformTest, Default) {
  Platform p = DefaultPlatform();
  EXPECT_EQ(PlatformString(p), "linux/amd64");
  EXPECT_EQ(p.variant, "");
}

TEST(PlatformTest, NormalizeTable) {
  struct Case {
    Platform in;
    std::string want;
  };
  const std::vector<Case> cases = {
      {P("linux", "amd64"), "linux/amd64"},
      {P("Linux", "x86_64"), "linux/amd64"},
      {P("linux", "x86-64"), "linux/amd64"},
      {P("linux", "amd64", "v1"), "linux/amd64"},
      {P("linux", "amd64", "v3"), "linux/amd64/v3"},
      {P("linux", "aarch64"), "linux/arm64"},
      {P("linux", "arm64", "v8"), "linux/arm64"},
      {P("linux", "arm64", "8"), "linux/arm64"},
      {P("linux", "arm64", "v9"), "linux/arm64/v9"},
      {P("linux", "armhf"), "linux/arm/v7"},
      {P("linux", "armel"), "linux/arm/v6"},
      {P("linux", "arm"), "linux/arm/v7"},
      {P("linux", "arm", "6"), "linux/arm/v6"},
      {P("linux", "arm", "v5"), "linux/arm/v5"},
      {P("linux", "i386"), "linux/386"},
      {P("WINDOWS", "AMD64"), "windows/amd64"},
      {P("linux", "riscv64"), "linux/riscv64"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(PlatformString(NormalizePlatform(c.in)), c.want) << PlatformString(c.in);
  }
  Platform win{"windows", "amd64", "", "10.0.17763.5329"};
  EXPECT_EQ(NormalizePlatform(win).os_version, "10.0.17763.5329");
}

TEST(PlatformTest, Matches) {
  const Platform amd64 = P("linux", "amd64");
  EXPECT_TRUE(PlatformMatches(amd64, P("linux", "x86_64")));
  EXPECT_FALSE(PlatformMatches(amd64, P("linux", "386")));
  EXPECT_FALSE(PlatformMatches(amd64, P("windows", "amd64")));
  EXPECT_FALSE(PlatformMatches(amd64, P("linux", "arm64")));
  // An empty wanted variant takes any; a named one must be equal.
  EXPECT_TRUE(PlatformMatches(amd64, P("linux", "amd64", "v3")));
  EXPECT_FALSE(PlatformMatches(P("linux", "amd64", "v3"), amd64));
  // arm64: no variant and v8 are the same thing.
  EXPECT_TRUE(PlatformMatches(P("linux", "arm64"), P("linux", "arm64", "v8")));
  EXPECT_TRUE(PlatformMatches(P("linux", "arm64", "v8"), P("linux", "arm64")));
  EXPECT_TRUE(PlatformMatches(P("linux", "aarch64"), P("linux", "arm64", "v8")));
  // arm: armhf is v7, which is not v6.
  EXPECT_TRUE(PlatformMatches(P("linux", "armhf"), P("linux", "arm", "v7")));
  EXPECT_FALSE(PlatformMatches(P("linux", "armel"), P("linux", "arm", "v7")));
  EXPECT_TRUE(PlatformMatches(P("linux", "i386"), P("linux", "386")));
}

TEST(SelectManifestTest, MultiArch) {
  absl::StatusOr<Index> index = ParseIndex(kMultiArchIndex);
  ASSERT_THAT(index, IsOk());
  struct Case {
    Platform want;
    char digest;
  };
  const std::vector<Case> cases = {
      {DefaultPlatform(), 'a'},         {P("linux", "x86_64"), 'a'},
      {P("linux", "arm64"), 'b'},        {P("linux", "aarch64"), 'b'},
      {P("linux", "arm64", "v8"), 'b'},  {P("linux", "arm", "v7"), 'c'},
      {P("linux", "armhf"), 'c'},        {P("linux", "i386"), 'd'},
      {P("linux", "386"), 'd'},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Descriptor> d = SelectManifest(*index, c.want);
    ASSERT_THAT(d, IsOk()) << PlatformString(c.want);
    EXPECT_EQ(d->digest, D(c.digest)) << PlatformString(c.want);
  }
}

TEST(SelectManifestTest, NotFoundNamesWantAndAvailable) {
  absl::StatusOr<Index> index = ParseIndex(kMultiArchIndex);
  ASSERT_THAT(index, IsOk());
  for (const Platform& want : std::vector<Platform>{
           P("linux", "riscv64"), P("windows", "amd64"), P("linux", "armel")}) {
    absl::StatusOr<Descriptor> d = SelectManifest(*index, want);
    EXPECT_THAT(d, StatusIs(absl::StatusCode::kNotFound));
    EXPECT_THAT(d.status().message(), HasSubstr(PlatformString(want)));
    EXPECT_THAT(d.status().message(),
                HasSubstr("available: linux/amd64, linux/arm64/v8, linux/arm/v7, linux/386"));
  }
  EXPECT_THAT(SelectManifest(Index{}, DefaultPlatform()).status().message(),
              HasSubstr("available: none"));
}

TEST(SelectManifestTest, UntaggedEntryIsTheFallback) {
  Index index;
  Descriptor untagged;
  untagged.media_type = std::string(kMediaTypeOciManifest);
  untagged.digest = D('e');
  Descriptor arm64 = untagged;
  arm64.digest = D('f');
  arm64.platform = P("linux", "arm64");
  index.manifests = {untagged, arm64};
  EXPECT_THAT(SelectManifest(index, P("linux", "aarch64")), IsOk());
  EXPECT_EQ(SelectManifest(index, P("linux", "aarch64"))->digest, D('f'));
  EXPECT_EQ(SelectManifest(index, DefaultPlatform())->digest, D('e'));
}

}  // namespace
}  // namespace berth::image
