#!/usr/bin/env bash
# bench/version.sh [N]
#
# `ctr version` round trips, raw Version RPC round trips on one connection
# (the daemon's own cost, without ctr's start-up) and idle memory: berthd
# beside a private containerd, in one run on this machine (see lib.sh).
# Prints figures and berthd/containerd ratios; never passes or fails on time.
# Needs root, `bazel build //daemon:berthd //bench:version_rtt`, Debian's
# containerd.
source "$(dirname "$0")/lib.sh"

N=${1:-200}
rtt_bin="$top/bazel-bin/bench/version_rtt"
[ -x "$rtt_bin" ] || { echo "bench: bazel build //bench:version_rtt first" >&2; exit 1; }

# Alternating the daemons, so both see the same machine load.
berth_ms=() ctrd_ms=()
for _ in $(seq "$N"); do
  berth_ms+=("$(ms_of ctr --address "$berth_sock" version)")
  ctrd_ms+=("$(ms_of ctr --address "$ctrd_sock" version)")
done
bm=$(median "${berth_ms[@]}")
cm=$(median "${ctrd_ms[@]}")
read -r b_rtt b_p99 < <("$rtt_bin" "$berth_sock" $((N * 10)))
read -r c_rtt c_p99 < <("$rtt_bin" "$ctrd_sock" $((N * 10)))

# Idle memory after the round trips have settled.
sleep 2
b_rss=$(status_field "$berthd_pid" VmRSS) c_rss=$(status_field "$containerd_pid" VmRSS)
b_thr=$(status_field "$berthd_pid" Threads) c_thr=$(status_field "$containerd_pid" Threads)

echo "ctr version median over $N calls: berthd ${bm} ms, containerd ${cm} ms, ratio $(ratio "$bm" "$cm")"
echo "Version RPC on one connection, $((N * 10)) calls: berthd median ${b_rtt} us (p99 ${b_p99}), containerd ${c_rtt} us (p99 ${c_p99}), ratio $(ratio "$b_rtt" "$c_rtt")"
echo "idle RSS: berthd $(ratio "$b_rss" 1024) MB ($b_thr threads), containerd $(ratio "$c_rss" 1024) MB ($c_thr threads), ratio $(ratio "$b_rss" "$c_rss")"
