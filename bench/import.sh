#!/usr/bin/env bash
# bench/import.sh [IMAGEDIR]
#
# `ctr images import` with unpack of the ≈292 MiB (uncompressed) five-layer
# image in its gzip, zstd and uncompressed variants, berthd beside a private
# containerd in one run (see lib.sh), each daemon importing each variant
# fresh (the image and its content are removed with --sync between rounds).
# The images come from ../shared/anchors/make-images.sh, built into IMAGEDIR
# (default /tmp/berth-bench-images, kept for the next run). Prints seconds,
# MiB/s of uncompressed data and berthd/containerd throughput ratios; never
# passes or fails on time. Needs root, `bazel build //daemon:berthd`.
source "$(dirname "$0")/lib.sh"

images=${1:-/tmp/berth-bench-images}
if [ ! -f "$images/bigdata-raw.oci.tar" ]; then
  "$top/../shared/anchors/make-images.sh" "$images" >&2
fi
mib=292

import_s() {  # import_s SOCKET VARIANT: wall seconds of one import with unpack
  local s=$EPOCHREALTIME
  ctr --address "$1" images import "$images/bigdata-$2.oci.tar" >/dev/null 2>>"$d/cmd.err"
  local e=$EPOCHREALTIME
  ctr --address "$1" images rm --sync "localhost/bigdata:$2" >/dev/null 2>>"$d/cmd.err"
  ctr --address "$1" snapshots ls -q 2>/dev/null | tac | while read -r key; do
    ctr --address "$1" snapshots rm "$key" >/dev/null 2>&1 || true
  done
  awk -v s="$s" -v e="$e" 'BEGIN{printf "%.2f", e - s}'
}
throughput() { awk -v m="$mib" -v s="$1" 'BEGIN{printf "%.1f", m / s}'; }

for variant in gzip zstd raw; do
  b=$(import_s "$berth_sock" "$variant")
  c=$(import_s "$ctrd_sock" "$variant")
  echo "import with unpack, $variant ($mib MiB): berthd ${b} s ($(throughput "$b") MiB/s), containerd ${c} s ($(throughput "$c") MiB/s), throughput ratio $(ratio "$c" "$b")"
done
if [ -s "$d/cmd.err" ]; then echo "bench: some commands failed:" >&2; head -5 "$d/cmd.err" >&2; fi
