#!/usr/bin/env bash
# bench/version.sh [N]
#
# `ctr version` round trips, raw Version RPC round trips on one connection
# (the daemon's own cost, without ctr's start-up) and idle memory, berthd
# beside a private
# containerd started by this script, in one run on this machine. Prints the
# figures and berthd/containerd ratios; never passes or fails on time.
#
# Both daemons run on their own root, state and socket under a temp dir in
# /tmp, inside a private mount namespace; the script stops both and removes
# everything it made. Needs root, a built //daemon:berthd and
# //bench:version_rtt, and Debian's containerd.
set -euo pipefail
export LC_ALL=C

if [ -z "${BENCH_IN_NS:-}" ]; then
  BENCH_IN_NS=1 exec unshare -m --propagation private -- "$BASH" "$0" "$@"
fi

N=${1:-200}
top=$(cd "$(dirname "$0")/.." && pwd)
berthd_bin="$top/bazel-bin/daemon/berthd"
rtt_bin="$top/bazel-bin/bench/version_rtt"
[ -x "$berthd_bin" ] && [ -x "$rtt_bin" ] || {
  echo "bench: bazel build //daemon:berthd //bench:version_rtt first" >&2; exit 1; }

d=$(mktemp -d /tmp/berth-bench-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  umount -R "$d" 2>/dev/null || true
  rm -rf "$d"
}
trap cleanup EXIT

wait_for() {  # wait_for SOCKET
  for _ in $(seq 300); do
    ctr --address "$1" version >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench: nothing answers on $1" >&2
  return 1
}

"$berthd_bin" --root "$d/berth/root" --state "$d/berth/state" --address "$d/berth.sock" \
  2>"$d/berthd.log" &
pids+=($!)
berthd_pid=$!
: >"$d/containerd.toml"
containerd --config "$d/containerd.toml" --root "$d/ctrd/root" --state "$d/ctrd/state" \
  --address "$d/ctrd.sock" 2>"$d/containerd.log" &
pids+=($!)
containerd_pid=$!
wait_for "$d/berth.sock"
wait_for "$d/ctrd.sock"

# Median of N `ctr version` calls in ms, alternating the daemons so both see
# the same machine load.
declare -a berth_ms ctrd_ms
for _ in $(seq "$N"); do
  s=$EPOCHREALTIME; ctr --address "$d/berth.sock" version >/dev/null; e=$EPOCHREALTIME
  berth_ms+=("$(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", (e-s)*1000}')")
  s=$EPOCHREALTIME; ctr --address "$d/ctrd.sock" version >/dev/null; e=$EPOCHREALTIME
  ctrd_ms+=("$(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", (e-s)*1000}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
bm=$(median "${berth_ms[@]}")
cm=$(median "${ctrd_ms[@]}")

read -r b_rtt b_p99 < <("$rtt_bin" "$d/berth.sock" $((N * 10)))
read -r c_rtt c_p99 < <("$rtt_bin" "$d/ctrd.sock" $((N * 10)))

# Idle memory after the round trips have settled.
sleep 2
field() { awk -v f="$2:" '$1==f {print $2}' "/proc/$1/status"; }
b_rss=$(field "$berthd_pid" VmRSS); c_rss=$(field "$containerd_pid" VmRSS)
b_thr=$(field "$berthd_pid" Threads); c_thr=$(field "$containerd_pid" Threads)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "ctr version median over $N calls: berthd ${bm} ms, containerd ${cm} ms, ratio $(ratio "$bm" "$cm")"
echo "Version RPC on one connection, $((N * 10)) calls: berthd median ${b_rtt} us (p99 ${b_p99}), containerd ${c_rtt} us (p99 ${c_p99}), ratio $(ratio "$b_rtt" "$c_rtt")"
echo "idle RSS: berthd $((b_rss / 1024)).$(((b_rss % 1024) * 10 / 1024)) MB ($b_thr threads), containerd $((c_rss / 1024)).$(((c_rss % 1024) * 10 / 1024)) MB ($c_thr threads), ratio $(ratio "$b_rss" "$c_rss")"
