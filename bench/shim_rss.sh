#!/usr/bin/env bash
# bench/shim_rss.sh [COUNT...]   (default: 10 50)
#
# Memory of the shims that hold sleeping containers: a private containerd
# (see lib.sh) runs COUNT busybox containers with containerd-shim-berth-v1,
# then COUNT with its own containerd-shim-runc-v2, one shim per container,
# and prints each kind's mean RSS, PSS and USS per shim (from
# /proc/PID/smaps_rollup) and threads. Figures only; never passes or fails.
# Needs root, `bazel build //daemon:berthd //shim:containerd-shim-berth-v1`.
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$top/bazel-bin/shim:$PATH"   # before lib.sh starts containerd
source "$(dirname "$0")/lib.sh"
[ -x "$top/bazel-bin/shim/containerd-shim-berth-v1" ] || {
  echo "bench: bazel build //shim:containerd-shim-berth-v1 first" >&2; exit 1; }

c() { ctr --address "$ctrd_sock" "$@"; }
"$top/tests/make-image-archive.sh" oci "$d/busybox.tar" docker.io/library/busybox:latest >/dev/null
c images import "$d/busybox.tar" >/dev/null

measure() {  # measure RUNTIME COUNT
  local runtime=$1 n=$2 i pids
  for i in $(seq "$n"); do
    c run -d --fifo-dir "$d" --runtime "$runtime" docker.io/library/busybox:latest "b$i" \
      /bin/busybox sleep 3600 >/dev/null 2>>"$d/cmd.err"
  done
  sleep 1
  pids=$(pgrep -f "containerd-shim-$([ "$runtime" = io.containerd.berth.v1 ] && echo berth-v1 || echo runc-v2) -namespace")
  for p in $pids; do
    awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} /^Private_(Clean|Dirty):/ {u+=$2} END {printf "%d %d %d ", r, p, u}' \
      "/proc/$p/smaps_rollup"
    awk '/^Threads:/ {print $2}' "/proc/$p/status"
  done | awk -v rt="$runtime" -v n="$n" '{r+=$1; p+=$2; u+=$3; t+=$4; k++}
    END {printf "%-24s %3d containers, %3d shims: per shim RSS %5.2f MB, PSS %5.2f MB, USS %5.2f MB, %.1f threads\n",
         rt, n, k, r/k/1024, p/k/1024, u/k/1024, t/k}'
  for i in $(seq "$n"); do c task kill -s SIGKILL "b$i" >/dev/null 2>&1; done
  sleep 1
  for i in $(seq "$n"); do
    c task delete "b$i" >/dev/null 2>&1
    c containers rm "b$i" >/dev/null 2>&1
  done
}

for n in "${@:-10 50}"; do
  for n1 in $n; do
    measure io.containerd.berth.v1 "$n1"
    measure io.containerd.runc.v2 "$n1"
  done
done
if [ -s "$d/cmd.err" ]; then echo "bench: some commands failed:" >&2; head -5 "$d/cmd.err" >&2; fi
