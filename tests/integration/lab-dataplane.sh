#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The BPF dataplane in the lab (agents, CNI plugin, wireguard-go), issue 4:
#  - cross-node ICMP and TCP between pods, and same-node pod-to-pod, with the per-reason
#    counters proving the packets took the BPF path (to_wireguard, wg_to_pod,
#    to_local_pod), not the kernel route;
#  - strict mode: a peer removed from the topology under running traffic: its pods'
#    packets are dropped and counted (drop_no_route) and the underlay captures hold
#    zero plaintext pod packets;
#  - the dataplane survives the agent: kill -9 and restart under a running iperf3,
#    which completes; counters are not reset.
# Skips (77) until the CNI plugin attaches twill_pod_ingress (datapath_pod_add).
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
HELPER=$BUILD/tests/integration/twill-dp-helper
P=dpl$(($$ % 100000))
WORK=""
BG=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, bpf)"
for t in ip nsenter jq wg wireguard-go tcpdump ping iperf3 timeout setsid; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$BUILD/tools/twilld" ] || skip "twilld is not built ($BUILD/tools/twilld)"
[ -x "$BUILD/cni/twill" ] || skip "the CNI plugin is not built ($BUILD/cni/twill)"
[ -x "$HELPER" ] || skip "twill-dp-helper is not built"
CNI_COMMAND=VERSION "$BUILD/cni/twill" < /dev/null 2> /dev/null | grep -q cniVersion ||
	skip "the CNI plugin does not answer VERSION yet (placeholder)"
[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"

WORK=$(mktemp -d /tmp/dplab.XXXXXX)
cleanup() {
	local p
	set +e
	for p in "${BG[@]}"; do kill "$p" 2> /dev/null; done
	if [ -n "$WORK" ] && [ "${KEEP:-0}" != 1 ]; then
		"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

lab() { "$LAB_BIN" --prefix "$P" "$@"; }
"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
lab up --build-dir "$BUILD" --nodes 3 --pods-per-node 2 --private-group 2 > "$WORK/up.out" 2>&1 ||
	{ cat "$WORK/up.out"; fail "twill-lab up failed"; }
LABDIR=$(lab path)
ip_of() { jq -r --arg n "$1" '.pods[] | select(.name == $n) | .ip' "$LABDIR/lab.json"; }
pin_of() { echo "/sys/fs/bpf/$P-$1"; }
counter() { "$HELPER" counters "$(pin_of "$1")" | awk -v r="$2" '$1 == r { print $2 }'; }
has_route() { "$HELPER" routes "$(pin_of "$1")" | grep -q "^$2 "; }

# Is the pod program on n1's host veths? Without it there is no BPF pod path to test.
attached=0
for l in $(ip -n "$P-n1" -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1); do
	[ "$(nsenter --net="/var/run/netns/$P-n1" -- "$HELPER" query "$l" ingress 2> /dev/null)" = \
		twill_pod_ingress ] && attached=$((attached + 1))
done
[ "$attached" -ge 2 ] || skip "the CNI plugin does not attach twill_pod_ingress to host veths yet"
echo "ok: twill_pod_ingress on $attached host veths of n1"

# --- BPF path, counted ----------------------------------------------------------------
n1_wg=$(counter n1 to_wireguard) n2_in=$(counter n2 wg_to_pod) n1_local=$(counter n1 to_local_pod)
lab exec n1-p1 -- ping -c 1 -W 3 "$(ip_of n2-p1)" > /dev/null || true   # the handshake
lab exec n1-p1 -- ping -c 5 -i 0.2 -W 2 "$(ip_of n2-p1)" > /dev/null || fail "n1-p1 -> n2-p1 ICMP"
lab exec n1-p1 -- ping -c 5 -i 0.2 -W 2 "$(ip_of n1-p2)" > /dev/null || fail "n1-p1 -> n1-p2 ICMP"
[ $(($(counter n1 to_wireguard) - n1_wg)) -ge 5 ] || fail "n1 to_wireguard did not count the pings"
[ $(($(counter n2 wg_to_pod) - n2_in)) -ge 5 ] || fail "n2 wg_to_pod did not count the pings"
[ $(($(counter n1 to_local_pod) - n1_local)) -ge 10 ] || fail "n1 to_local_pod did not count the pings"
echo "ok: ICMP cross-node and same-node took the BPF path"

n1_wg=$(counter n1 to_wireguard)
lab exec n3-p1 -- timeout 20 iperf3 -s -1 -p 5301 > /dev/null 2>&1 & BG+=($!)
sleep 0.5
lab exec n1-p1 -- timeout 20 iperf3 -c "$(ip_of n3-p1)" -p 5301 -t 2 > "$WORK/iperf.out" 2>&1 ||
	{ cat "$WORK/iperf.out"; fail "n1-p1 -> n3-p1 TCP"; }
grep receiver "$WORK/iperf.out" || true
[ $(($(counter n1 to_wireguard) - n1_wg)) -ge 100 ] || fail "n1 to_wireguard did not count the TCP flow"
echo "ok: TCP cross-node took the BPF path"

# --- strict mode: remove n3 under running traffic ---------------------------------------
capture() { # node dev
	nsenter --net="/var/run/netns/$P-$1" -- timeout 40 tcpdump -nli "$2" -U \
		-w "$WORK/$1-$2.pcap" 2> "$WORK/$1-$2.err" & BG+=($!)
}
capture n1 eth0
capture n1 eth1
capture n3 eth0
for _ in $(seq 50); do
	[ "$(cat "$WORK"/*.err | grep -c 'listening on')" -eq 3 ] && break
	sleep 0.1
done
drops=$(counter n1 drop_no_route)
lab exec n1-p1 -- ping -i 0.05 -w 8 -W 1 "$(ip_of n3-p1)" > /dev/null 2>&1 & PING=$!
sleep 1
cp "$LABDIR/topology.json" "$WORK/topology.full.json"
jq 'del(.items[] | select(.metadata.name == "n3"))' "$WORK/topology.full.json" > "$LABDIR/topology.json.tmp"
mv "$LABDIR/topology.json.tmp" "$LABDIR/topology.json"
for _ in $(seq 100); do has_route n1 10.244.3.0/24 || break; sleep 0.1; done
has_route n1 10.244.3.0/24 && fail "n1 kept the BPF route to the removed node n3"
wait "$PING" || true
[ $(($(counter n1 drop_no_route) - drops)) -ge 5 ] ||
	fail "drop_no_route on n1 rose by $(($(counter n1 drop_no_route) - drops)) only"
cp "$WORK/topology.full.json" "$LABDIR/topology.json.tmp"
mv "$LABDIR/topology.json.tmp" "$LABDIR/topology.json"
for _ in $(seq 100); do has_route n1 10.244.3.0/24 && break; sleep 0.1; done
has_route n1 10.244.3.0/24 || fail "n1 did not get n3's route back"
sleep 0.5
for p in "${BG[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${BG[@]}"; do wait "$p" 2> /dev/null || true; done
BG=()
for c in n1-eth0 n1-eth1 n3-eth0; do
	n=$(tcpdump -nr "$WORK/$c.pcap" 'net 10.244.0.0/16' 2> /dev/null | wc -l)
	[ "$n" -eq 0 ] || fail "$n plaintext pod packets on $c while n3 was removed"
done
echo "ok: n3 removed under traffic: drops counted, nothing in the clear on the underlay"

# --- the dataplane survives the agent ---------------------------------------------------
lab exec n1-p1 -- ping -c 1 -W 3 "$(ip_of n3-p1)" > /dev/null || true   # the handshake again
n1_wg=$(counter n1 to_wireguard)
lab exec n2-p1 -- timeout 30 iperf3 -s -1 -p 5302 > /dev/null 2>&1 & BG+=($!)
sleep 0.5
lab exec n1-p1 -- timeout 30 iperf3 -c "$(ip_of n2-p1)" -p 5302 -t 6 > "$WORK/iperf2.out" 2>&1 &
IPERF=$!
sleep 2
pid=$(cat "$LABDIR/n1/twilld.pid")
kill -9 "$pid"
node=$(jq '.nodes[] | select(.name == "n1")' "$LABDIR/lab.json")
field() { jq -r ".$1" <<< "$node"; }
setsid nsenter --net="/var/run/netns/$P-n1" -- "$BUILD/tools/twilld" \
	--topology "$LABDIR/topology.json" --node n1 --state-dir "$(field state_dir)" \
	--cni-conf-dir "$(field cni_conf_dir)" --bpf-pin-dir "$(field bpf_pin_dir)" \
	--wg-device "$(field wg_device)" --wg-backend userspace \
	--cluster-cidr "$(jq -r .cluster_cidr "$LABDIR/lab.json")" --log-file "$(field log)" \
	< /dev/null >> "$LABDIR/n1/twilld.out" 2>&1 &
echo "$!" > "$LABDIR/n1/twilld.pid"
wait "$IPERF" || { cat "$WORK/iperf2.out"; fail "iperf3 across the agent's kill -9 and restart failed"; }
grep receiver "$WORK/iperf2.out" || true
[ "$(counter n1 to_wireguard)" -ge "$n1_wg" ] || fail "counters were reset by the agent restart"
lab exec n1-p1 -- ping -c 2 -W 2 "$(ip_of n3-p1)" > /dev/null || fail "n1-p1 -> n3-p1 after the restart"
echo "ok: an iperf3 across kill -9 + restart of n1's agent completed"

echo "PASS"
