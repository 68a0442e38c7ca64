#!/usr/bin/env bash
# bench/gc_pause.sh [BLOBS]
#
# Garbage collection of BLOBS (default 10000) unreferenced blobs while a
# client keeps calling Content.Info: the collection's duration and the
# longest Info that overlapped it, berthd beside a private containerd in one
# run (see lib.sh). Prints figures and ratios; never passes or fails on time.
# Needs root, `bazel build //daemon:berthd //bench:gc_pause`, Debian's
# containerd.
source "$(dirname "$0")/lib.sh"

blobs=${1:-10000}
gc_bin="$top/bazel-bin/bench/gc_pause"
[ -x "$gc_bin" ] || { echo "bench: bazel build //bench:gc_pause first" >&2; exit 1; }

read -r b_gc b_max b_p99 b_calls b_left < <("$gc_bin" "$berth_sock" "$blobs")
read -r c_gc c_max c_p99 c_calls c_left < <("$gc_bin" "$ctrd_sock" "$blobs")
echo "GC of $blobs unreferenced blobs: berthd ${b_gc} ms, containerd ${c_gc} ms, ratio $(ratio "$b_gc" "$c_gc")"
echo "Info during GC, longest: berthd ${b_max} ms (p99 ${b_p99}, $b_calls calls), containerd ${c_max} ms (p99 ${c_p99}, $c_calls calls)"
echo "records left (the probe only): berthd $b_left, containerd $c_left"
