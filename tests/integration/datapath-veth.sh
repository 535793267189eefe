#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real BPF redirect paths, without the agent or the CNI plugin: two "nodes" (netns)
# joined by an underlay veth, wireguard-go on each, pods (netns) behind host veths.
# No kernel route exists for any pod CIDR on either node, so every pod packet that
# arrives went through the programs; the counters say which branch carried it.
#  - same node: pod1 -> pod2 veth to veth (to_local_pod)
#  - cross node: pod1 -> WireGuard -> node2 -> WireGuard ingress -> pod3 (to_wireguard,
#    wg_to_pod), ICMP and TCP, and the underlay carries only WireGuard UDP
#  - strict: a cluster address without a route is dropped (drop_no_route)
#  - guard: pod-sourced cluster traffic leaving by the underlay is dropped (drop_escaped)
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, bpf)"
for t in ip wireguard-go wg ping nsenter tcpdump iperf3 timeout; do
	command -v "$t" >/dev/null || skip "missing $t"
done
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
BUILD=${TWILL_BUILD_DIR:-$(dirname "$0")/../../build}
HELPER=$BUILD/tests/integration/twill-dp-helper
[ -x "$HELPER" ] || skip "helper not built at $HELPER"

S=$(printf '%04x' $(( $$ % 65536 )))
N1=dp-n1-$S N2=dp-n2-$S P1=dp-p1-$S P2=dp-p2-$S P3=dp-p3-$S
WG1=dpwg1-$S WG2=dpwg2-$S
PIN1=/sys/fs/bpf/dp-it-$S-n1 PIN2=/sys/fs/bpf/dp-it-$S-n2
TMP=$(mktemp -d /tmp/dp-it-XXXXXX)
PIDS=()

cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for ns in $P1 $P2 $P3; do ip netns del "$ns" 2>/dev/null; done
	# Deleting the TUN devices ends wireguard-go (started in the foreground, by PID above).
	ip -n "$N1" link del "$WG1" 2>/dev/null
	ip -n "$N2" link del "$WG2" 2>/dev/null
	for ns in $N1 $N2; do ip netns del "$ns" 2>/dev/null; done
	rm -f "/var/run/wireguard/$WG1.sock" "/var/run/wireguard/$WG2.sock"
	"$HELPER" unpin "$PIN1" 2>/dev/null
	"$HELPER" unpin "$PIN2" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

in_ns() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" "$@"; }
dp() { local ns=$1; shift; in_ns "$ns" "$HELPER" "$@"; }
counter() { dp "$1" counters "$2" | awk -v r="$3" '$1 == r { print $2 }'; }
fail() { echo "FAIL: $*"; exit 1; }

for ns in $N1 $N2 $P1 $P2 $P3; do ip netns add "$ns"; ip -n "$ns" link set lo up; done

# underlay
ip -n "$N1" link add ul0 type veth peer name ul0 netns "$N2"
ip -n "$N1" addr add 192.168.77.1/24 dev ul0
ip -n "$N2" addr add 192.168.77.2/24 dev ul0
ip -n "$N1" link set ul0 up
ip -n "$N2" link set ul0 up

# pods: /32 address, default route through a link-local gateway with a permanent
# neighbour entry for the host veth's MAC (what the CNI plugin sets up)
add_pod() { # node pod hostif ip
	local node=$1 pod=$2 hostif=$3 ip=$4 hmac
	ip -n "$node" link add "$hostif" type veth peer name eth0 netns "$pod"
	ip -n "$node" link set "$hostif" up
	ip -n "$pod" addr add "$ip/32" dev eth0
	ip -n "$pod" link set eth0 mtu 1420 up
	hmac=$(ip -n "$node" -o link show "$hostif" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	ip -n "$pod" route add 169.254.1.1 dev eth0 scope link
	ip -n "$pod" route add default via 169.254.1.1 dev eth0
	ip -n "$pod" neigh add 169.254.1.1 lladdr "$hmac" dev eth0 nud permanent
}
pod_mac() { ip -n "$1" -o link show eth0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }
add_pod "$N1" "$P1" dph1 10.77.1.5
add_pod "$N1" "$P2" dph2 10.77.1.6
add_pod "$N2" "$P3" dph3 10.77.2.5

# WireGuard (userspace), one peer each, allowed IPs = the other node's /24
(umask 077; wg genkey > "$TMP/k1"; wg genkey > "$TMP/k2")
in_ns "$N1" wireguard-go -f "$WG1" >"$TMP/wg1.log" 2>&1 & PIDS+=($!)
in_ns "$N2" wireguard-go -f "$WG2" >"$TMP/wg2.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do
	[ -S "/var/run/wireguard/$WG1.sock" ] && [ -S "/var/run/wireguard/$WG2.sock" ] && break
	sleep 0.1
done
[ -S "/var/run/wireguard/$WG2.sock" ] || fail "wireguard-go did not start"
in_ns "$N1" wg set "$WG1" private-key "$TMP/k1" listen-port 51831 \
	peer "$(wg pubkey < "$TMP/k2")" allowed-ips 10.77.2.0/24 endpoint 192.168.77.2:51832
in_ns "$N2" wg set "$WG2" private-key "$TMP/k2" listen-port 51832 \
	peer "$(wg pubkey < "$TMP/k1")" allowed-ips 10.77.1.0/24 endpoint 192.168.77.1:51831
ip -n "$N1" link set "$WG1" mtu 1420 up
ip -n "$N2" link set "$WG2" mtu 1420 up

# the dataplane, as the agent (load, config, routes, wg + guard) and CNI (endpoints) do
dp "$N1" load "$PIN1"
dp "$N2" load "$PIN2"
dp "$N1" config "$PIN1" 10.77.0.0/16 10.77.1.0/24 "$WG1" 1
dp "$N2" config "$PIN2" 10.77.0.0/16 10.77.2.0/24 "$WG2" 1
dp "$N1" route "$PIN1" 10.77.2.0/24 "$WG1" 192.168.77.2
dp "$N2" route "$PIN2" 10.77.1.0/24 "$WG2" 192.168.77.1
dp "$N1" attach-wg "$PIN1" "$WG1"
dp "$N2" attach-wg "$PIN2" "$WG2"
dp "$N1" attach-guard "$PIN1" ul0
dp "$N2" attach-guard "$PIN2" ul0
dp "$N1" endpoint "$PIN1" 10.77.1.5 dph1 "$(pod_mac "$P1")"
dp "$N1" endpoint "$PIN1" 10.77.1.6 dph2 "$(pod_mac "$P2")"
dp "$N2" endpoint "$PIN2" 10.77.2.5 dph3 "$(pod_mac "$P3")"
[ "$(dp "$N1" query dph1 ingress)" = twill_pod_ingress ] || fail "query on dph1"
[ "$(dp "$N1" query "$WG1" ingress)" = twill_wg_ingress ] || fail "query on $WG1"
[ "$(dp "$N1" query ul0 egress)" = twill_underlay_guard ] || fail "query on ul0"

echo "== same node: pod1 -> pod2, veth to veth"
before=$(counter "$N1" "$PIN1" to_local_pod)
in_ns "$P1" ping -c 3 -i 0.2 -W 2 10.77.1.6 > "$TMP/ping1" || fail "same-node ping"
after=$(counter "$N1" "$PIN1" to_local_pod)
[ $((after - before)) -ge 6 ] || fail "to_local_pod rose by $((after - before)), want >= 6"
echo "ok: to_local_pod +$((after - before))"
# one routing hop, as with kernel forwarding: the reply left pod2 with TTL 64
grep -q 'ttl=63' "$TMP/ping1" || { cat "$TMP/ping1"; fail "same-node reply TTL is not 63"; }
echo "ok: TTL decremented once on the same node"

echo "== cross node: pod1 -> WireGuard -> pod3 (ICMP), underlay captured"
in_ns "$N2" timeout 20 tcpdump -i ul0 -n -U -w "$TMP/ul.pcap" >/dev/null 2>&1 & PIDS+=($!)
sleep 1
in_ns "$P1" ping -c 5 -i 0.2 -W 2 10.77.2.5 > "$TMP/ping2" || fail "cross-node ping"
grep -q 'ttl=62' "$TMP/ping2" || { cat "$TMP/ping2"; fail "cross-node reply TTL is not 62"; }
echo "ok: TTL decremented once per node (62)"
echo "== cross node: TCP (iperf3, 2 s)"
in_ns "$P3" timeout 15 iperf3 -s -1 -p 5201 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
in_ns "$P1" timeout 15 iperf3 -c 10.77.2.5 -p 5201 -t 2 > "$TMP/iperf.txt" 2>&1 ||
	{ cat "$TMP/iperf.txt"; fail "cross-node TCP"; }
grep -E 'receiver' "$TMP/iperf.txt" || true
echo "== same node: TCP (iperf3, 2 s)"
in_ns "$P2" timeout 15 iperf3 -s -1 -p 5202 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
in_ns "$P1" timeout 15 iperf3 -c 10.77.1.6 -p 5202 -t 2 > "$TMP/iperf2.txt" 2>&1 ||
	{ cat "$TMP/iperf2.txt"; fail "same-node TCP"; }
grep -E 'receiver' "$TMP/iperf2.txt" || true
sleep 1
kill "${PIDS[2]}" 2>/dev/null || true
wait "${PIDS[2]}" 2>/dev/null || true
for c in to_wireguard wg_to_pod; do
	for n in "$N1:$PIN1" "$N2:$PIN2"; do
		v=$(counter "${n%%:*}" "${n#*:}" $c)
		[ "$v" -ge 5 ] || fail "$c on ${n%%:*} is $v, want >= 5"
		echo "ok: $c on ${n%%:*} = $v"
	done
done
plain=$(tcpdump -r "$TMP/ul.pcap" -n 'net 10.77.0.0/16' 2>/dev/null | wc -l)
wgpk=$(tcpdump -r "$TMP/ul.pcap" -n 'udp port 51831 or udp port 51832' 2>/dev/null | wc -l)
[ "$plain" -eq 0 ] || fail "$plain plaintext pod packets on the underlay"
[ "$wgpk" -gt 0 ] || fail "no WireGuard UDP on the underlay"
echo "ok: underlay saw $wgpk WireGuard packets, 0 plaintext pod packets"

echo "== strict: cluster address with no route is dropped"
before=$(counter "$N1" "$PIN1" drop_no_route)
in_ns "$P1" ping -c 2 -i 0.2 -W 1 10.77.3.1 >/dev/null && fail "ping to an unrouted node answered"
after=$(counter "$N1" "$PIN1" drop_no_route)
[ $((after - before)) -ge 2 ] || fail "drop_no_route rose by $((after - before))"
echo "ok: drop_no_route +$((after - before))"

echo "== guard: pod-sourced cluster traffic leaving by the underlay is dropped"
ip -n "$N1" addr add 10.77.1.254/32 dev lo
ip -n "$N1" route add 10.77.2.0/24 via 192.168.77.2 dev ul0
before=$(counter "$N1" "$PIN1" drop_escaped)
in_ns "$N1" ping -c 2 -i 0.2 -W 1 -I 10.77.1.254 10.77.2.5 >/dev/null && fail "escaped packet answered"
after=$(counter "$N1" "$PIN1" drop_escaped)
[ $((after - before)) -ge 2 ] || fail "drop_escaped rose by $((after - before))"
echo "ok: drop_escaped +$((after - before))"
ip -n "$N1" route del 10.77.2.0/24
in_ns "$P1" ping -c 2 -i 0.2 -W 2 10.77.2.5 >/dev/null || fail "tunnel traffic after the guard test"

echo "== bpf_redirect() instead of bpf_redirect_peer() (TWILL_CFG_F_NO_REDIRECT_PEER)"
dp "$N1" config "$PIN1" 10.77.0.0/16 10.77.1.0/24 "$WG1" 1 1
dp "$N2" config "$PIN2" 10.77.0.0/16 10.77.2.0/24 "$WG2" 1 1
before=$(counter "$N1" "$PIN1" to_local_pod)
in_ns "$P1" ping -c 2 -i 0.2 -W 2 10.77.1.6 >/dev/null || fail "same-node ping without redirect_peer"
in_ns "$P1" ping -c 2 -i 0.2 -W 2 10.77.2.5 >/dev/null || fail "cross-node ping without redirect_peer"
after=$(counter "$N1" "$PIN1" to_local_pod)
[ $((after - before)) -ge 4 ] || fail "to_local_pod rose by $((after - before)), want >= 4"
echo "ok: both delivery modes work"

echo "== agent restart under traffic: reload and re-attach keep a TCP flow and the state"
dp "$N1" config "$PIN1" 10.77.0.0/16 10.77.1.0/24 "$WG1" 1
dp "$N2" config "$PIN2" 10.77.0.0/16 10.77.2.0/24 "$WG2" 1
in_ns "$P3" timeout 20 iperf3 -s -1 -p 5203 >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
in_ns "$P1" timeout 20 iperf3 -c 10.77.2.5 -p 5203 -t 4 > "$TMP/iperf3.txt" 2>&1 & IPERF=$!
sleep 1.5
before=$(counter "$N1" "$PIN1" to_wireguard)
for n in "$N1:$PIN1:$WG1:dph1 dph2" "$N2:$PIN2:$WG2:dph3"; do
	IFS=: read -r ns pin wgdev pods <<< "$n"
	dp "$ns" load "$pin"
	dp "$ns" attach-wg "$pin" "$wgdev"
	dp "$ns" attach-guard "$pin" ul0
	for p in $pods; do dp "$ns" attach-pod "$pin" "$p"; done
done
after=$(counter "$N1" "$PIN1" to_wireguard)
[ "$after" -ge "$before" ] || fail "counters reset by the reload"
wait "$IPERF" || { cat "$TMP/iperf3.txt"; fail "TCP flow broke across the reload"; }
grep -E 'receiver' "$TMP/iperf3.txt" || true
echo "ok: TCP flow completed across reload + re-attach"
in_ns "$P1" ping -c 2 -i 0.2 -W 2 10.77.2.5 >/dev/null || fail "cross-node ping after reload"
in_ns "$P1" ping -c 2 -i 0.2 -W 2 10.77.1.6 >/dev/null || fail "same-node ping after reload"

echo "== CNI DEL: pod2 unregistered, its address is dropped (strict), not routed"
dp "$N1" pod-del "$PIN1" 10.77.1.6 dph2
[ -z "$(dp "$N1" query dph2 ingress 2>/dev/null)" ] || fail "pod program still on dph2"
before=$(counter "$N1" "$PIN1" drop_no_route)
in_ns "$P1" ping -c 1 -W 1 10.77.1.6 >/dev/null && fail "unregistered pod still reached"
after=$(counter "$N1" "$PIN1" drop_no_route)
[ $((after - before)) -ge 1 ] || fail "drop_no_route rose by $((after - before))"
dp "$N1" pod-del "$PIN1" 10.77.1.6 dph2 || fail "second DEL is not idempotent"
echo "ok: DEL removed the endpoint and the filter"

echo "PASS"
