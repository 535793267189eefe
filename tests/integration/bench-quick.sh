#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `twill-bench --quick --json` produces a number for every figure of every mode
# (plain, twill, wg-routes, vxlan-wg on the public and the private path; same-node
# twill and ptp; CNI ADD/DEL; agent reconcile), and leaves nothing behind. The values
# are not checked: this machine is shared, a benchmark's numbers mean nothing here.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
BENCH=$BUILD/tools/twill-bench
P=bn
OUT=""

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -z "$OUT" ] || cat "$OUT"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
for t in ip nsenter jq iperf3 ping wireguard-go tc; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$BENCH" ] || skip "$BENCH is not built"
[ -x "$BUILD/tools/twilld" ] && [ -x "$BUILD/cni/twill" ] || skip "twilld or the CNI plugin is not built"
[ -c /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"
ip netns add "$P-probe" 2> /dev/null || skip "cannot create network namespaces here"
ip netns delete "$P-probe"

OUT=$(mktemp /tmp/bench-quick.XXXXXX)
trap 'rm -f "$OUT"' EXIT
start=$SECONDS
TWILL_BUILD_DIR=$BUILD timeout 540 "$BENCH" --quick --json --prefix "$P" > "$OUT" ||
	fail "twill-bench --quick --json exited with $?"
echo "twill-bench --quick took $((SECONDS - start)) s"

# every path, every mode: path MTU, MSS, throughput, latency are numbers
missing=$(jq -r '
	def num: type == "number";
	[ (["public", "private"][] as $p | ["plain", "twill", "wg-routes", "vxlan-wg"][] as $m |
	   ["path_mtu", "tcp_mss", "gbps", "rtt_ms", "tcp_rr_us", "pod_mtu"][] as $f |
	   select((.paths[$p].modes[$m][$f] | num) | not) | "\($p) \($m) \($f)"),
	  (["twill", "ptp"][] as $k | ["path_mtu", "tcp_mss", "gbps", "rtt_ms", "tcp_rr_us"][] as $f |
	   select((.same_node[$k][$f] | num) | not) | "same node \($k) \($f)"),
	  (["twill", "ptp+host-local"][] as $k | ["add_ms", "del_ms"][] as $f |
	   select((.cni.plugins[$k][$f].median | num) | not) | "cni \($k) \($f)"),
	  (select((.scale.from_scratch | length) < 2) | "scale: fewer than 2 sizes"),
	  (.scale.from_scratch[]? | select((.total_ms | num) and (.wall_ms | num) and .ok | not)
	   | "scale \(.nodes_in_topology) nodes"),
	  (select((.scale.one_node_change.total_ms | num) | not) | "scale one-node change"),
	  (.targets[] | select(.value == null) | "target \(.name)")
	] | .[]' "$OUT")
[ -z "$missing" ] || fail "no number for: $(echo "$missing" | paste -sd, -)"
jq -e '.paths.public.modes.twill.bpf_filters > 0' "$OUT" > /dev/null ||
	fail "the twill mode ran without any BPF program attached"

# nothing left behind
left=$(ip netns list | awk '{print $1}' | grep -E "^($P(pub|prv)-|$P-)" || true)
[ -z "$left" ] || fail "namespaces left: $left"
for f in /run/twill-lab/${P}pub /run/twill-lab/${P}prv /sys/fs/bpf/$P-scale /var/run/wireguard/$P-scale-wg.sock; do
	[ ! -e "$f" ] || fail "$f left behind"
done
for f in /var/run/wireguard/"$P"pub-* /var/run/wireguard/"$P"prv-*; do
	[ ! -e "$f" ] || fail "$f left behind"
done
echo "PASS: every mode produced numbers; nothing left behind"
