#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# In a three-node lab (n1 and n2 share the private network rack-a, n3 is public only),
# pods made by the CNI plugin reach each other across every pair of nodes and on the
# same node; n1<->n2 WireGuard traffic uses the private link only, n1<->n3 the public
# link only; no pod packet crosses an underlay link in the clear; the pod MTU is the
# underlay's minus WireGuard's 60 bytes and a don't-fragment ping of that size passes.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
P=lbping
WORK=""
CAPS=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
for t in ip nsenter jq wg wireguard-go tcpdump ping; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$BUILD/tools/twilld" ] || skip "twilld is not built ($BUILD/tools/twilld)"
[ -x "$BUILD/cni/twill" ] || skip "the CNI plugin is not built ($BUILD/cni/twill)"
[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"

WORK=$(mktemp -d /tmp/lbping.XXXXXX)
cleanup() {
	local p
	for p in "${CAPS[@]}"; do
		kill "$p" 2> /dev/null || true
	done
	if [ -n "$WORK" ] && [ "${KEEP:-0}" != 1 ]; then
		"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

lab() { "$LAB_BIN" --prefix "$P" "$@"; }

"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
lab up --build-dir "$BUILD" --nodes 3 --pods-per-node 2 --private-group 2 > "$WORK/up.out" 2>&1 ||
	{ cat "$WORK/up.out"; fail "twill-lab up failed"; }
cat "$WORK/up.out"
LABDIR=$(lab path)
ip_of() { jq -r --arg n "$1" '.pods[] | select(.name == $n) | .ip' "$LABDIR/lab.json"; }
key_of() { jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .public_key' "$LABDIR/lab.json"; }

# WireGuard chose the private endpoint within rack-a and the public one otherwise.
endpoint() { lab exec "$1" -- wg show "$P-$1-wg" endpoints | awk -v k="$(key_of "$2")" '$1 == k {print $2}'; }
[ "$(endpoint n1 n2)" = 198.19.0.2:51820 ] || fail "n1's endpoint for n2 is '$(endpoint n1 n2)', not its rack-a address"
[ "$(endpoint n2 n1)" = 198.19.0.1:51820 ] || fail "n2's endpoint for n1 is '$(endpoint n2 n1)'"
[ "$(endpoint n1 n3)" = 198.18.0.3:51820 ] || fail "n1's endpoint for n3 is '$(endpoint n1 n3)', not its public address"
[ "$(endpoint n3 n1)" = 198.18.0.1:51820 ] || fail "n3's endpoint for n1 is '$(endpoint n3 n1)'"
echo "ok: endpoints: rack-a between n1 and n2, public otherwise"

# captures on every underlay link while the pods talk
capture() {
	local node=$1 dev=$2 out=$WORK/$1-$2
	nsenter --net="/var/run/netns/$P-$node" -- tcpdump -nli "$dev" -U -w "$out.pcap" 2> "$out.err" &
	CAPS+=($!)
}
for n in n1 n2 n3; do capture "$n" eth0; done
capture n1 eth1
capture n2 eth1
for ((i = 0; i < 50; i++)); do
	[ "$(cat "$WORK"/*.err | grep -c 'listening on')" -eq 5 ] && break
	sleep 0.1
done

pingpod() {
	local from=$1 to=$2 ip
	ip=$(ip_of "$to")
	lab exec "$from" -- ping -c 1 -W 3 "$ip" > /dev/null || true   # the handshake
	lab exec "$from" -- ping -c 3 -i 0.2 -W 2 "$ip" > "$WORK/ping.out" ||
		{ cat "$WORK/ping.out"; fail "$from cannot ping $to ($ip)"; }
	echo "ok: $from -> $to ($ip)"
}
pingpod n1-p1 n2-p1
pingpod n2-p2 n1-p2
pingpod n1-p1 n3-p1
pingpod n3-p2 n2-p1
pingpod n1-p1 n1-p2

# the pod MTU: 1500-byte public underlay minus 60
mtu=$(ip -n "$P-n1-p1" -o link show eth0 | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
[ "$mtu" = 1440 ] || fail "pod MTU is $mtu, expected 1440 (1500 - 60)"
lab exec n1-p1 -- ping -c 2 -W 2 -M "do" -s $((mtu - 28)) "$(ip_of n3-p1)" > /dev/null ||
	fail "a don't-fragment ping of $mtu bytes n1-p1 -> n3-p1 failed"
echo "ok: pod MTU $mtu, full-size don't-fragment ping passes"

sleep 0.5
for p in "${CAPS[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${CAPS[@]}"; do wait "$p" 2> /dev/null || true; done
CAPS=()
count() { tcpdump -nr "$WORK/$1.pcap" "$2" 2> /dev/null | wc -l; }
wg12='udp and host 198.18.0.1 and host 198.18.0.2'
[ "$(count n1-eth1 'udp port 51820 and host 198.19.0.2')" -gt 0 ] || fail "no n1<->n2 WireGuard on rack-a"
[ "$(count n1-eth0 "$wg12")" -eq 0 ] || fail "n1<->n2 WireGuard went over the public link"
[ "$(count n3-eth0 'udp port 51820 and host 198.18.0.1')" -gt 0 ] || fail "no n1<->n3 WireGuard on the public link"
[ "$(count n1-eth1 'host 198.19.0.3')" -eq 0 ] || fail "n3 traffic on rack-a"
for c in n1-eth0 n2-eth0 n3-eth0 n1-eth1 n2-eth1; do
	[ "$(count "$c" 'net 10.244.0.0/16')" -eq 0 ] || fail "pod packets in the clear on $c"
done
echo "ok: captures: rack-a carries n1<->n2, the internet n1<->n3 and n2<->n3, nothing in the clear"

lab status > /dev/null || fail "lab status reports a dead agent"
echo "PASS"
