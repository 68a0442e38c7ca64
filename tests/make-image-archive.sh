#!/bin/sh
# tests/make-image-archive.sh oci|docker OUT.tar NAME
#
# Writes an archive of one linux/amd64 image named NAME whose one layer holds
# Debian's busybox-static as /bin/busybox with /bin/sh linking to it:
#  - oci: an OCI image layout — a gzip layer, config, manifest, and
#    index.json naming the image (the io.containerd.image.name annotation
#    `ctr images import` reads); prints the manifest's digest;
#  - docker: what `docker save` writes — manifest.json with RepoTags, the
#    config, and <id>/layer.tar uncompressed; prints the layer's diff ID.
#
# For the oci format, to test what bad input does:
#   LAYER_TAR=FILE  the layer is FILE (an uncompressed tar) instead;
#   BREAK=truncate  the gzip layer is cut in half (its digest still names
#                   the bytes stored), so only unpacking finds it broken;
#   BREAK=missing   the manifest names a layer the archive does not hold;
#   BREAK=digest    the layer is stored under a digest its bytes do not have;
#   BREAK=json      the config is not JSON;
#   BREAK=media     the layer has a media type nobody knows.
# ARM64=1 makes the image an index of two platforms: linux/amd64 as above,
# and linux/arm64/v8 whose one layer holds a file /arch reading "arm64";
# the index's digest is printed.
set -eu
format=$1 out=$2 name=$3
brk=${BREAK:-}
work=$(mktemp -d /tmp/berth-oci-XXXXXX)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/root/bin" "$work/layout/blobs/sha256"
cp /bin/busybox "$work/root/bin/busybox"
ln -s busybox "$work/root/bin/sh"
if [ -n "${LAYER_TAR:-}" ]; then
  cp "$LAYER_TAR" "$work/layer.tar"
else
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/root" -cf "$work/layer.tar" bin
fi
diff_id=$(sha256sum "$work/layer.tar" | cut -c1-64)
config_json=$(printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_id")

if [ "$format" = docker ]; then
  mkdir -p "$work/save/$diff_id"
  cp "$work/layer.tar" "$work/save/$diff_id/layer.tar"
  printf '1.0' >"$work/save/$diff_id/VERSION"
  printf '%s' "$config_json" >"$work/config.json"
  config=$(sha256sum "$work/config.json" | cut -c1-64)
  cp "$work/config.json" "$work/save/$config.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
    "$config" "$name" "$diff_id" >"$work/save/manifest.json"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/save" -cf "$out" .
  echo "sha256:$diff_id"
  exit 0
fi
gzip -n -c "$work/layer.tar" >"$work/layer.tar.gz"
if [ "$brk" = truncate ]; then
  head -c "$(($(stat -c %s "$work/layer.tar.gz") / 2))" "$work/layer.tar.gz" >"$work/cut.gz"
  mv "$work/cut.gz" "$work/layer.tar.gz"
fi

blob() {  # blob FILE: stores FILE as a blob, prints "digest size"
  d=$(sha256sum "$1" | cut -c1-64)
  cp "$1" "$work/layout/blobs/sha256/$d"
  echo "$d $(stat -c %s "$1")"
}
set -- $(blob "$work/layer.tar.gz"); layer=$1 layer_size=$2
layer_media=application/vnd.oci.image.layer.v1.tar+gzip
case $brk in
  missing) rm "$work/layout/blobs/sha256/$layer" ;;
  digest)  # the digest of other bytes, of the same size
    mv "$work/layout/blobs/sha256/$layer" "$work/layer.bin"
    layer=$(printf 'other' | sha256sum | cut -c1-64)
    cp "$work/layer.bin" "$work/layout/blobs/sha256/$layer" ;;
  json) config_json='{"architecture": "amd64", "os": "linux", "rootfs": ' ;;
  media) layer_media=application/vnd.example.unknown.layer ;;
esac
printf '%s' "$config_json" >"$work/config.json"
set -- $(blob "$work/config.json"); config=$1 config_size=$2
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"%s","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer_media" "$layer" "$layer_size" >"$work/manifest.json"
set -- $(blob "$work/manifest.json"); manifest=$1 manifest_size=$2
top_media=application/vnd.oci.image.manifest.v1+json top=$manifest top_size=$manifest_size
if [ "${ARM64:-0}" = 1 ]; then
  mkdir -p "$work/arm"
  printf 'arm64' >"$work/arm/arch"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/arm" -cf "$work/arm.tar" arch
  arm_diff=$(sha256sum "$work/arm.tar" | cut -c1-64)
  gzip -n -c "$work/arm.tar" >"$work/arm.tar.gz"
  set -- $(blob "$work/arm.tar.gz"); arm_layer=$1 arm_layer_size=$2
  printf '{"architecture":"arm64","variant":"v8","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$arm_diff" >"$work/arm-config.json"
  set -- $(blob "$work/arm-config.json"); arm_config=$1 arm_config_size=$2
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$arm_config" "$arm_config_size" "$arm_layer" "$arm_layer_size" >"$work/arm-manifest.json"
  set -- $(blob "$work/arm-manifest.json"); arm_manifest=$1 arm_manifest_size=$2
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}' \
    "$manifest" "$manifest_size" "$arm_manifest" "$arm_manifest_size" >"$work/image-index.json"
  set -- $(blob "$work/image-index.json"); top=$1 top_size=$2
  top_media=application/vnd.oci.image.index.v1+json
fi
printf '{"schemaVersion":2,"manifests":[{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
  "$top_media" "$top" "$top_size" "$name" >"$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/layout" -cf "$out" oci-layout index.json blobs
echo "sha256:$top"
