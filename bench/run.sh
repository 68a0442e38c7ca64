#!/usr/bin/env bash
# bench/run.sh [N]
#
# `ctr run --rm busybox … /bin/busybox true` latency — container, snapshot,
# bundle, shim, runtime create and start, exit, delete, all of it as a user
# waits for it — against berthd (Berth's shim) and a private containerd
# (its runc shim), alternating, N times each, in one run on this machine
# (see lib.sh); then daemon + shim memory per sleeping container, 10 of
# them on each. Prints medians and berthd/containerd ratios; never passes
# or fails on time. Needs root, `bazel build //daemon:berthd
# //shim:containerd-shim-berth-v1`, Debian's containerd and runc.
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$top/bazel-bin/shim:$PATH"   # berthd finds its shim here
source "$(dirname "$0")/lib.sh"
N=${1:-30}

"$top/tests/make-image-archive.sh" oci "$d/busybox.tar" docker.io/library/busybox:latest >/dev/null
image=docker.io/library/busybox:latest
for sock in "$berth_sock" "$ctrd_sock"; do
  ctr --address "$sock" images import "$d/busybox.tar" >/dev/null
  # One run first: caches warm for both.
  ctr --address "$sock" run --rm --fifo-dir "$d" "$image" warm /bin/busybox true >/dev/null
done

berth_ms=() ctrd_ms=()
for i in $(seq "$N"); do
  berth_ms+=("$(ms_of ctr --address "$berth_sock" run --rm --fifo-dir "$d" "$image" "r$i" /bin/busybox true)")
  ctrd_ms+=("$(ms_of ctr --address "$ctrd_sock" run --rm --fifo-dir "$d" "$image" "r$i" /bin/busybox true)")
done
bm=$(median "${berth_ms[@]}") cm=$(median "${ctrd_ms[@]}")
echo "ctr run --rm … true, median of $N: berthd ${bm} ms, containerd ${cm} ms, ratio $(ratio "$bm" "$cm")"

# Memory per sleeping container: the daemon's growth plus its shims.
per_container() {  # per_container SOCKET DAEMON_PID SHIM_PATTERN
  local sock=$1 pid=$2 pattern=$3 before after shims=0 i p
  before=$(status_field "$pid" VmRSS)
  for i in $(seq 10); do
    ctr --address "$sock" run -d --fifo-dir "$d" "$image" "s$i" /bin/busybox sleep 3600 >/dev/null
  done
  sleep 2
  after=$(status_field "$pid" VmRSS)
  for p in $(pgrep -f "$pattern -namespace .* -address $sock"); do
    shims=$((shims + $(status_field "$p" VmRSS)))
  done
  remove_tasks "$sock"
  awk -v a="$after" -v b="$before" -v s="$shims" 'BEGIN{printf "%.2f", ((a-b)+s)/10/1024}'
}
bmem=$(per_container "$berth_sock" "$berthd_pid" containerd-shim-berth-v1)
cmem=$(per_container "$ctrd_sock" "$containerd_pid" containerd-shim-runc-v2)
echo "daemon growth + shim RSS per sleeping container (10): berthd ${bmem} MB, containerd ${cmem} MB, ratio $(ratio "$bmem" "$cmem")"
