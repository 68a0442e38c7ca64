# Sourced by the bench/*.sh scripts: a private berthd and a private
# containerd side by side, each on its own root, state and socket under one
# temp dir in /tmp, inside a private mount namespace; both stopped and
# everything removed on exit. Sets: d (the temp dir), berthd_pid,
# containerd_pid, berth_sock, ctrd_sock, top (the repository).
set -euo pipefail
export LC_ALL=C

if [ -z "${BENCH_IN_NS:-}" ]; then
  BENCH_IN_NS=1 exec unshare -m --propagation private -- "$BASH" "$0" "$@"
fi

top=$(cd "$(dirname "$0")/.." && pwd)
berthd_bin="$top/bazel-bin/daemon/berthd"
[ -x "$berthd_bin" ] || { echo "bench: bazel build //daemon:berthd first" >&2; exit 1; }

d=$(mktemp -d /tmp/berth-bench-XXXXXX)
pids=()
# containerd's runc shim keeps its sockets and runc's state under
# /run/containerd whatever containerd's state dir: its empty directories
# go at the end, unless they were there before.
[ -e /run/containerd ] && had_run_containerd=1 || had_run_containerd=0
# remove_tasks SOCKET: kills every task of the default namespace, waits (up
# to 30 s) for them to stop, deletes them and every container — so that no
# shim or container outlives a bench, whatever stopped it.
remove_tasks() {
  local sock=$1 id
  ctr --address "$sock" task ls -q 2>/dev/null | while read -r id; do
    ctr --address "$sock" task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for _ in $(seq 300); do
    ctr --address "$sock" task ls 2>/dev/null | grep -qE 'RUNNING|PAUSED' || break
    sleep 0.1
  done
  ctr --address "$sock" task ls -q 2>/dev/null | while read -r id; do
    ctr --address "$sock" task delete "$id" >/dev/null 2>&1 || true
  done
  ctr --address "$sock" containers ls -q 2>/dev/null | while read -r id; do
    ctr --address "$sock" containers rm "$id" >/dev/null 2>&1 || true
  done
}
cleanup() {
  for sock in "${berth_sock:-}" "${ctrd_sock:-}"; do
    [ -S "$sock" ] && remove_tasks "$sock"
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  umount -R "$d" 2>/dev/null || true
  rm -rf "$d"
  [ "$had_run_containerd" = 1 ] || find /run/containerd -depth -type d -empty -delete 2>/dev/null || true
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

berth_sock="$d/berth.sock"
ctrd_sock="$d/ctrd.sock"
# start_berthd / start_containerd: (again, after a kill) in the background;
# they set berthd_pid / containerd_pid.
start_berthd() {
  "$berthd_bin" --root "$d/berth/root" --state "$d/berth/state" --address "$berth_sock" \
    >/dev/null 2>>"$d/berthd.log" &
  berthd_pid=$!
  pids+=("$berthd_pid")
}
start_containerd() {
  printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$d/containerd.toml"
  containerd --config "$d/containerd.toml" --root "$d/ctrd/root" --state "$d/ctrd/state" \
    --address "$ctrd_sock" >/dev/null 2>>"$d/containerd.log" &
  containerd_pid=$!
  pids+=("$containerd_pid")
}
start_berthd
start_containerd
wait_for "$berth_sock"
wait_for "$ctrd_sock"

# ms_of CMD...: runs CMD (output discarded) and prints its wall time in ms.
ms_of() {
  local s=$EPOCHREALTIME
  # A failure is no timing: it stops the bench (set -e).
  "$@" >/dev/null 2>>"$d/cmd.err" || { echo "bench: failed: $*" >&2; return 1; }
  awk -v s="$s" -v e="$EPOCHREALTIME" 'BEGIN{printf "%.3f", (e-s)*1000}'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
status_field() { awk -v f="$2:" '$1==f {print $2}' "/proc/$1/status"; }
