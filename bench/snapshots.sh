#!/usr/bin/env bash
# bench/snapshots.sh [N]
#
# `ctr snapshots prepare` and `ctr snapshots rm` of N fresh keys (default
# 50), on a committed parent holding a small tree, berthd beside a private
# containerd in one run (see lib.sh), the daemons alternating. Prints
# medians and berthd/containerd ratios; never passes or fails on time.
# Then the same through raw RPCs on one connection (bench/snapshot_rtt.cc),
# the daemon's own cost without ctr's start-up.
# Needs root, `bazel build //daemon:berthd //bench:snapshot_rtt`, Debian's
# containerd.
source "$(dirname "$0")/lib.sh"

N=${1:-50}
rtt_bin="$top/bazel-bin/bench/snapshot_rtt"
[ -x "$rtt_bin" ] || { echo "bench: bazel build //bench:snapshot_rtt first" >&2; exit 1; }
for sock in "$berth_sock" "$ctrd_sock"; do
  ctr --address "$sock" snapshots prepare base >/dev/null
  ctr --address "$sock" snapshots commit layer base
done

b_prep=() c_prep=() b_rm=() c_rm=()
for i in $(seq "$N"); do
  b_prep+=("$(ms_of ctr --address "$berth_sock" snapshots prepare "k-$i" layer)")
  c_prep+=("$(ms_of ctr --address "$ctrd_sock" snapshots prepare "k-$i" layer)")
done
for i in $(seq "$N"); do
  b_rm+=("$(ms_of ctr --address "$berth_sock" snapshots rm "k-$i")")
  c_rm+=("$(ms_of ctr --address "$ctrd_sock" snapshots rm "k-$i")")
done
if [ -s "$d/cmd.err" ]; then echo "bench: some commands failed:" >&2; head -5 "$d/cmd.err" >&2; fi
bp=$(median "${b_prep[@]}") cp=$(median "${c_prep[@]}")
br=$(median "${b_rm[@]}") cr=$(median "${c_rm[@]}")
echo "ctr snapshots prepare, median of $N: berthd ${bp} ms, containerd ${cp} ms, ratio $(ratio "$bp" "$cp")"
echo "ctr snapshots rm, median of $N: berthd ${br} ms, containerd ${cr} ms, ratio $(ratio "$br" "$cr")"
read -r b_prep_us b_rm_us < <("$rtt_bin" "$berth_sock" $((N * 4)))
read -r c_prep_us c_rm_us < <("$rtt_bin" "$ctrd_sock" $((N * 4)))
echo "Prepare RPC, median of $((N * 4)): berthd ${b_prep_us} us, containerd ${c_prep_us} us, ratio $(ratio "$b_prep_us" "$c_prep_us")"
echo "Remove RPC, median of $((N * 4)): berthd ${b_rm_us} us, containerd ${c_rm_us} us, ratio $(ratio "$b_rm_us" "$c_rm_us")"
