#!/usr/bin/env bash
# bench/content_ingest.sh [MIB] [N]
#
# `ctr content ingest` of N fresh random blobs of MIB MiB each (default 256,
# 3), berthd beside a private containerd in one run (see lib.sh); prints the
# median throughput of each and the ratio. Never passes or fails on time.
source "$(dirname "$0")/lib.sh"

mib=${1:-256}
n=${2:-3}
b_ms=() c_ms=()
for i in $(seq "$n"); do
  # A new blob each round, so neither daemon finds it already stored.
  head -c "$((mib << 20))" /dev/urandom >"$d/blob"
  b_ms+=("$(ms_of ctr --address "$berth_sock" content ingest "bench-$i" <"$d/blob")")
  c_ms+=("$(ms_of ctr --address "$ctrd_sock" content ingest "bench-$i" <"$d/blob")")
done
rm -f "$d/blob"
bm=$(median "${b_ms[@]}")
cm=$(median "${c_ms[@]}")
throughput() { awk -v m="$mib" -v ms="$1" 'BEGIN{printf "%.1f", m / (ms / 1000)}'; }
echo "ctr content ingest of $mib MiB, median of $n: berthd ${bm} ms ($(throughput "$bm") MiB/s), containerd ${cm} ms ($(throughput "$cm") MiB/s), time ratio $(ratio "$bm" "$cm")"
