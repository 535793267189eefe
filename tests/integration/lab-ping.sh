#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The lab as the demo uses it: three nodes (n1 and n2 share the private network rack-a,
# n3 is on the simulated internet only), two pods per node made by the CNI plugin.
# Every pod reaches a pod on every node; the n1<->n2 traffic leaves by the private link
# and the n1<->n3 traffic by the public one (interface counters); a don't-fragment ping
# of the pod MTU (1500 - 60) passes on both paths; twillctl finds every node healthy.
# The agent's own endpoint and capture checks live in agent-reconcile.sh.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
# per run: copies of this test in other worktrees may run at the same time
P=lbp$(($$ % 100000))
WORK=""

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	local l
	for l in /run/twill-lab/$P/n*/twilld.log; do
		[ -e "$l" ] && { echo "--- $l"; tail -n 20 "$l"; }
	done
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
for t in ip nsenter jq wg wireguard-go ping; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$BUILD/tools/twilld" ] || skip "twilld is not built ($BUILD/tools/twilld)"
[ -x "$BUILD/cni/twill" ] || skip "the CNI plugin is not built ($BUILD/cni/twill)"
[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"

WORK=$(mktemp -d /tmp/lbping.XXXXXX)
cleanup() {
	"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

lab() { "$LAB_BIN" --prefix "$P" "$@"; }

"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
lab up --build-dir "$BUILD" --nodes 3 --pods-per-node 2 --private-group 2 > "$WORK/up.out" 2>&1 ||
	{ cat "$WORK/up.out"; fail "twill-lab up failed"; }
cat "$WORK/up.out"
LABDIR=$(lab path)
ip_of() { jq -r --arg n "$1" '.pods[] | select(.name == $n) | .ip' "$LABDIR/lab.json"; }

pingpod() {
	local from=$1 to=$2 ip
	ip=$(ip_of "$to")
	[ -n "$ip" ] || fail "no pod $to in lab.json"
	lab exec "$from" -- ping -c 1 -W 3 "$ip" > /dev/null || true   # the WireGuard handshake
	lab exec "$from" -- ping -c 3 -i 0.2 -W 2 "$ip" > "$WORK/ping.out" ||
		{ cat "$WORK/ping.out"; fail "$from cannot ping $to ($ip)"; }
	echo "ok: $from -> $to ($ip)"
}
for from in n1-p1 n2-p2 n3-p1; do
	for to in n1-p2 n2-p1 n3-p2; do
		pingpod "$from" "$to"
	done
done

# which underlay link carries each pair, from the node's interface counters
tx() { ip -n "$P-$1" -s -j link show "$2" | jq '.[0].stats64.tx.packets'; }
path_check() {
	local node=$1 to=$2 via=$3 other=$4 a0 b0 a1 b1
	a0=$(tx "$node" "$via")
	b0=$(tx "$node" "$other")
	lab exec "$node-p1" -- ping -c 20 -i 0.05 -W 2 "$(ip_of "$to")" > /dev/null ||
		fail "$node-p1 -> $to lost packets"
	a1=$(tx "$node" "$via")
	b1=$(tx "$node" "$other")
	((a1 - a0 >= 20)) || fail "$node -> ${to%-*}: only $((a1 - a0)) packets left by $via"
	((b1 - b0 < 10)) || fail "$node -> ${to%-*}: $((b1 - b0)) packets left by $other"
	echo "ok: $node -> ${to%-*} leaves by $via ($((a1 - a0)) packets; $((b1 - b0)) on $other)"
}
path_check n1 n2-p1 eth1 eth0
path_check n1 n3-p1 eth0 eth1

mtu=$(ip -n "$P-n1-p1" -o link show eth0 | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
[ "$mtu" = 1440 ] || fail "pod MTU is $mtu, expected 1440 (1500 - 60)"
for to in n2-p1 n3-p1; do
	lab exec n1-p1 -- ping -c 2 -W 2 -M "do" -s $((mtu - 28)) "$(ip_of "$to")" > /dev/null ||
		fail "a don't-fragment ping of $mtu bytes n1-p1 -> $to failed"
done
echo "ok: pod MTU $mtu; full-size don't-fragment pings pass on both paths"

# twillctl, run on every node through the lab, finds each node healthy (exit 0; 1 is
# unhealthy, 2 and 3 mean it could not run). TWILL_LAB_TEST_HEALTH=0 only shows it.
for n in n1 n2 n3; do
	rc=0
	lab ctl "$n" status > "$WORK/ctl.out" 2>&1 || rc=$?
	((rc <= 1)) || { cat "$WORK/ctl.out"; fail "twillctl could not run on $n (exit $rc)"; }
	echo "twillctl on $n: $(grep '^health:' "$WORK/ctl.out" | sed 's/^health: *//')"
	if ((rc == 1)); then
		sed -n '/^health:/,$p' "$WORK/ctl.out" | tail -n +2
		[ "${TWILL_LAB_TEST_HEALTH:-1}" = 0 ] || fail "twillctl: $n is not healthy"
	fi
done
rc=0
lab exec n1 -- twillctl status > /dev/null 2>&1 || rc=$?
((rc <= 1)) || fail "exec n1 -- twillctl status could not run (exit $rc)"
lab status > /dev/null || fail "lab status reports a dead agent"
echo "ok: twillctl finds every node healthy; every agent is alive"
echo "PASS"
