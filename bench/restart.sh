#!/usr/bin/env bash
# bench/restart.sh [COUNT]   (default 100)
#
# Restart to ready with COUNT live containers: each daemon (berthd with
# Berth's shim, a private containerd with its runc shim; see lib.sh) runs
# COUNT sleeping busybox containers, is killed with SIGKILL and started
# again; the figure is the time from the start until `ctr task ls` lists all
# COUNT tasks RUNNING again. Prints both and the berthd/containerd ratio;
# never passes or fails on time. Needs root, `bazel build //daemon:berthd
# //shim:containerd-shim-berth-v1`, Debian's containerd and runc.
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$top/bazel-bin/shim:$PATH"   # berthd finds its shim here
source "$(dirname "$0")/lib.sh"
N=${1:-100}
image=docker.io/library/busybox:latest
"$top/tests/make-image-archive.sh" oci "$d/busybox.tar" "$image" >/dev/null

# restart SOCKET START_FUNCTION PID: kill -9, start again (in this shell,
# so that the exit trap stops it), wait for N RUNNING; sets restart_ms.
restart() {
  local sock=$1 start=$2 pid=$3 s
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  local kept=() p
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  pids=("${kept[@]}")
  s=$EPOCHREALTIME
  "$start"
  local deadline=$((SECONDS + 60))
  until [ "$(ctr --address "$sock" task ls 2>/dev/null | grep -c RUNNING)" -eq "$N" ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "bench: $sock did not list $N running tasks within 60 s" >&2
      exit 1
    fi
    sleep 0.01
  done
  restart_ms=$(awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN{printf "%.1f", (e-s)*1000}')
}

for sock in "$berth_sock" "$ctrd_sock"; do
  ctr --address "$sock" images import "$d/busybox.tar" >/dev/null
  for i in $(seq "$N"); do
    ctr --address "$sock" run -d --fifo-dir "$d" "$image" "k$i" /bin/busybox sleep 3600 >/dev/null
  done
done
restart "$berth_sock" start_berthd "$berthd_pid"
b=$restart_ms
restart "$ctrd_sock" start_containerd "$containerd_pid"
c=$restart_ms
echo "restart to ready with $N live containers: berthd ${b} ms, containerd ${c} ms, ratio $(ratio "$b" "$c")"
for sock in "$berth_sock" "$ctrd_sock"; do remove_tasks "$sock"; done
