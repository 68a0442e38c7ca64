#!/usr/bin/env bash
# bench/import.sh [IMAGEDIR]
#
# `ctr images import` with unpack of the ≈292 MiB (uncompressed) five-layer
# image in its gzip, zstd and uncompressed variants, berthd beside a private
# containerd in one run (see lib.sh), each daemon importing each variant
# fresh, each in a namespace of its own.
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

# Each round imports into a namespace of its own and nothing is deleted
# until the end: a snapshot left in the namespace would let the round skip
# its unpack (the client stats each chain ID), and ext4 makes inode
# allocation slow for a minute after many deletions, which would charge one
# daemon for the other's cleanup.
# berthd makes each layer durable (one syncfs) before its snapshot is
# committed, containerd 1.6 leaves it to writeback; `sync` before each round
# keeps one daemon's dirty pages from being written on the other's time.
import_s() {  # import_s SOCKET VARIANT: wall seconds of one import with unpack
  sync
  local s=$EPOCHREALTIME
  ctr --address "$1" -n "bench-$2" images import "$images/bigdata-$2.oci.tar" >/dev/null \
    2>>"$d/cmd.err"
  awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN{printf "%.2f", e - s}'
}
throughput() { awk -v m="$mib" -v s="$1" 'BEGIN{printf "%.1f", m / s}'; }

for variant in gzip zstd raw; do
  b=$(import_s "$berth_sock" "$variant")
  c=$(import_s "$ctrd_sock" "$variant")
  echo "import with unpack, $variant ($mib MiB): berthd ${b} s ($(throughput "$b") MiB/s), containerd ${c} s ($(throughput "$c") MiB/s), throughput ratio $(ratio "$c" "$b")"
done
if [ -s "$d/cmd.err" ]; then echo "bench: some commands failed:" >&2; head -5 "$d/cmd.err" >&2; fi
