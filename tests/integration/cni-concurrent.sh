#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 64 ADDs at once into 64 namespaces: 64 distinct addresses, each pingable from the
# host; then 64 DELs at once leave no veth and no allocation behind.
set -euo pipefail
CN_TEST=conc
. "$(dirname "$0")/cni-lib.sh"
command -v jq >/dev/null || cn_skip "jq missing"
N=64

for i in $(seq 1 $N); do cn_pod_add "$i"; done
conf=$(cn_conf 1.1.0)
mkdir -p "$CN_STATE/out"
start=$(date +%s%N)
pids=()
for i in $(seq 1 $N); do
  ( echo "$conf" | cn_run ADD "conc$i-$$" "$(cn_pod "$i")" eth0 > "$CN_STATE/out/$i" ) &
  pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
echo "64 concurrent ADDs: $(( ($(date +%s%N) - start) / 1000000 )) ms, $fails failed"
[ "$fails" -eq 0 ] || { cat "$CN_STATE"/out/* >&2; cn_fail "$fails ADDs failed"; }

for i in $(seq 1 $N); do jq -er '.ips[0].address' "$CN_STATE/out/$i"; done > "$CN_STATE/addrs"
[ "$(wc -l < "$CN_STATE/addrs")" -eq $N ] || cn_fail "not $N addresses"
[ "$(sort -u "$CN_STATE/addrs" | wc -l)" -eq $N ] || cn_fail "duplicate addresses: $(sort "$CN_STATE/addrs" | uniq -d)"
for i in $(seq 1 $N); do
  a=$(jq -er '.ips[0].address' "$CN_STATE/out/$i")
  ip -n "$(cn_pod "$i")" -o -4 addr show dev eth0 | cn_grep "inet $a" || cn_fail "pod $i lacks $a"
  cn_host_ping "${a%/32}" || cn_fail "pod $i ($a) does not answer the host"
done
echo "$N distinct addresses, all pingable"

pids=()
for i in $(seq 1 $N); do
  ( echo "$conf" | cn_run DEL "conc$i-$$" "$(cn_pod "$i")" eth0 ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || cn_fail "a concurrent DEL failed"; done
left=$(ip -n "$CN_HOST" -o link show type veth | wc -l)
[ "$left" -eq 0 ] || cn_fail "$left veths left after DEL"
grep -rq "conc[0-9]*-$$" "$CN_STATE/ipam" && cn_fail "allocations left after DEL"
echo "PASS"
