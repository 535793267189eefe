#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The agent's side of the BPF dataplane, on one node namespace (no lab): an uplink eth0
# that carries the default route (no peer behind it), eth1 towards the one peer, a pod
# made by the CNI plugin.
# - the underlay guard sits on eth1 (peer endpoint) and on eth0 (default route): a packet
#   between two pod addresses routed out of eth0 is dropped there, never seen on the wire;
# - a restart that finds a pinned map of another layout recreates it, and the pod's veth
#   then runs the new program, bound to the new map (not the orphaned one);
# - a --no-bpf start removes an earlier run's pins and programs: pods use kernel routes.
set -euo pipefail
BUILD=${TWILL_BUILD_DIR:?}
TWILLD=$BUILD/tools/twilld
PLUGIN=$BUILD/cni/twill
T=agdp$(($$ % 100000))
N=$T-node U=$T-up R=$T-peer POD=$T-pod
WG=$T-wg
PINS=/sys/fs/bpf/$T
WORK=""
agent_pid=""
tcpdump_pid=""
fail() {
	echo "FAIL: $*"
	[ -z "$WORK" ] || tail -n 20 "$WORK/twilld.log" 2> /dev/null
	exit 1
}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (namespaces, BPF)"; exit 77; }
[ -e /dev/net/tun ] || { echo "SKIP: no /dev/net/tun for wireguard-go"; exit 77; }
for t in ip nsenter jq wg wireguard-go tcpdump ping bpftool tc; do
	command -v "$t" > /dev/null || fail "$t is not installed (scripts/install-deps installs it)"
done
[ -x "$TWILLD" ] || fail "twilld is not built"
[ -x "$PLUGIN" ] || fail "the CNI plugin is not built"

WORK=$(mktemp -d /tmp/agdp.XXXXXX)
ST=$WORK/state NETD=$WORK/net.d
in_n() { nsenter --net="/var/run/netns/$N" -- "$@"; }
stop_agent() {
	[ -z "$agent_pid" ] || { kill "$agent_pid" 2> /dev/null || true; wait "$agent_pid" 2> /dev/null || true; }
	agent_pid=""
}
cleanup() {
	set +e
	[ -z "$tcpdump_pid" ] || kill "$tcpdump_pid" 2> /dev/null
	stop_agent
	in_n "$TWILLD" cleanup --state-dir "$ST" --cni-conf-dir "$NETD" --bpf-pin-dir "$PINS" \
		--wg-device "$WG" --wg-backend userspace > /dev/null 2>&1
	for ns in "$POD" "$N" "$U" "$R"; do ip netns del "$ns" 2> /dev/null; done
	rm -rf "$PINS" "$WORK"
}
trap cleanup EXIT

for ns in "$N" "$U" "$R" "$POD"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$N" link add eth0 type veth peer name up0 netns "$U"
ip -n "$N" link add eth1 type veth peer name peer0 netns "$R"
ip -n "$N" addr add 203.0.113.1/24 dev eth0
ip -n "$N" addr add 198.18.0.1/24 dev eth1
ip -n "$U" addr add 203.0.113.254/24 dev up0
ip -n "$R" addr add 198.18.0.2/24 dev peer0
for l in "$N:eth0" "$N:eth1" "$U:up0" "$R:peer0"; do ip -n "${l%:*}" link set "${l#*:}" up; done
ip -n "$N" route add default via 203.0.113.254 dev eth0

pub1=$("$TWILLD" --show-public-key --state-dir "$ST" 2> /dev/null)
pub2=$(wg genkey | wg pubkey)
jq -n --arg k1 "$pub1" --arg k2 "$pub2" '{apiVersion: "v1", kind: "NodeList", items: [
  {metadata: {name: "n1", annotations: {"twill.dev/public-key": $k1}}, spec: {podCIDR: "10.244.1.0/24"},
   status: {addresses: [{type: "ExternalIP", address: "198.18.0.1"}]}},
  {metadata: {name: "n2", annotations: {"twill.dev/public-key": $k2}}, spec: {podCIDR: "10.244.2.0/24"},
   status: {addresses: [{type: "ExternalIP", address: "198.18.0.2"}]}}]}' > "$WORK/topology.json"

start_agent() {   # start_agent [extra flags]: waits for its first reconcile
	local lines
	lines=0
	[ ! -e "$WORK/twilld.log" ] || lines=$(wc -l < "$WORK/twilld.log")
	setsid nsenter --net="/var/run/netns/$N" -- "$TWILLD" --topology "$WORK/topology.json" \
		--node n1 --state-dir "$ST" --cni-conf-dir "$NETD" --bpf-pin-dir "$PINS" \
		--wg-device "$WG" --wg-backend userspace --cluster-cidr 10.244.0.0/16 \
		--log-file "$WORK/twilld.log" "$@" < /dev/null > /dev/null 2>&1 &
	agent_pid=$!
	for _ in $(seq 1 100); do
		tail -n +"$((lines + 1))" "$WORK/twilld.log" 2> /dev/null | grep -q 'agent: reconciled' && return 0
		kill -0 "$agent_pid" 2> /dev/null || fail "twilld exited"
		sleep 0.1
	done
	fail "twilld did not reconcile within 10 s"
}
prog_on() {   # prog_on DEV ingress|egress: the twill program there, if any (guard, pod, wg)
	case $(in_n tc filter show dev "$1" "$2" 2> /dev/null | grep -o ' name twill_[a-z_]*' | head -n 1) in
	" name twill_underlay"*) echo guard ;;
	" name twill_pod"*) echo pod ;;
	" name twill_wg"*) echo wg ;;
	" name twill"*) echo other ;;
	esac
}
prog_id_on() {
	in_n tc filter show dev "$1" "$2" 2> /dev/null | grep -o ' id [0-9]*' | head -n 1 | awk '{print $2}'
}

start_agent
[ "$(prog_on eth1 egress)" = guard ] || fail "no guard on eth1, the peer's link"
[ "$(prog_on eth0 egress)" = guard ] || fail "no guard on eth0, the default route's link"
echo "ok: underlay guard on eth1 (peer endpoint) and eth0 (default route)"

# a pod through the plugin, with the conflist the agent wrote
jq -c '.plugins[0] + {cniVersion: .cniVersion, name: .name}' "$NETD/10-twill.conflist" > "$WORK/pod.conf"
cni() {
	nsenter --net="/var/run/netns/$N" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=pod1 \
		CNI_NETNS="/var/run/netns/$POD" CNI_IFNAME=eth0 CNI_PATH="$(dirname "$PLUGIN")" \
		"$PLUGIN" < "$WORK/pod.conf"
}
cni ADD > "$WORK/add.json" 2> "$WORK/add.err" || { cat "$WORK/add.json" "$WORK/add.err"; fail "CNI ADD failed"; }
pod_ip=$(jq -r '.ips[0].address' "$WORK/add.json")
pod_ip=${pod_ip%/*}
veth=$(in_n ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -vx 'eth0\|eth1' | head -n 1)
[ -n "$veth" ] || fail "no host veth for the pod"
[ "$(prog_on "$veth" ingress)" = pod ] || fail "the plugin attached no program to $veth"

# pod-range traffic the stack routes out of the uplink: the guard drops it on eth0
ip -n "$N" route add 10.244.9.0/24 via 203.0.113.254 dev eth0
ip netns exec "$U" tcpdump -nli up0 -U -w "$WORK/up0.pcap" 'ip and net 10.244.0.0/16' 2> "$WORK/tcpdump.err" &
tcpdump_pid=$!
for _ in $(seq 1 50); do grep -q 'listening on' "$WORK/tcpdump.err" && break; sleep 0.1; done
in_n ping -n -c 3 -i 0.2 -W 1 -I 10.244.1.1 10.244.9.9 > /dev/null 2>&1 || true
in_n ping -n -c 1 -W 1 -I 203.0.113.1 203.0.113.254 > /dev/null || fail "the node's own traffic on eth0 is blocked"
sleep 0.5
kill "$tcpdump_pid"; wait "$tcpdump_pid" 2> /dev/null || true
tcpdump_pid=""
seen=$(tcpdump -nr "$WORK/up0.pcap" 2> /dev/null | wc -l)
[ "$seen" -eq 0 ] || fail "$seen pod-range packets left through eth0 in plaintext"
ip -n "$N" route del 10.244.9.0/24
echo "ok: 3 pod-range echoes routed to the uplink: none on the wire; the node's own ping passes"

# --- a pinned map of another layout: recreated, and the pod runs the new program -------
stop_agent
old_prog=$(prog_id_on "$veth" ingress)
rm -f "$PINS/twill_routes"
bpftool map create "$PINS/twill_routes" type hash key 4 value 4 entries 8 name twill_routes
start_agent
grep -q "pinned map '$PINS/twill_routes' does not match" "$WORK/twilld.log" || fail "the incompatible map was not reported"
routes_id=$(bpftool -j map show pinned "$PINS/twill_routes" | jq .id)
[ "$(bpftool -j map show pinned "$PINS/twill_routes" | jq -r .type)" = lpm_trie ] || fail "the route map was not recreated"
new_prog=$(prog_id_on "$veth" ingress)
bpftool -j prog show id "$new_prog" | jq -e --argjson m "$routes_id" '.map_ids | index($m) != null' > /dev/null ||
	fail "the pod's program (id $new_prog, was $old_prog) does not use the current route map (id $routes_id)"
echo "ok: route map recreated (id $routes_id); pod veth program $old_prog -> $new_prog, bound to it"

# --- --no-bpf: an earlier run's pins and programs go -----------------------------------
stop_agent
start_agent --no-bpf
grep -q "agent: --no-bpf: removed the BPF pins in '$PINS'" "$WORK/twilld.log" || fail "the unpin was not logged"
[ -z "$(ls -A "$PINS" 2> /dev/null)" ] || fail "--no-bpf left pins: $(ls "$PINS")"
for p in "$veth:ingress" "eth0:egress" "eth1:egress" "$WG:ingress"; do
	[ -z "$(prog_on "${p%:*}" "${p#*:}")" ] || fail "--no-bpf left $(prog_on "${p%:*}" "${p#*:}") on ${p%:*}"
done
[ "$(jq -r .dataplaneLoaded "$ST/node.json")" = false ] || fail "node.json says the dataplane is loaded"
ip netns exec "$POD" ping -n -c 2 -i 0.2 -W 1 10.244.1.1 > /dev/null || fail "the pod cannot reach its node over kernel routes"
echo "ok: --no-bpf removed the pins and every program; the pod ($pod_ip) reaches its node over kernel routes"
cni DEL > /dev/null 2>&1 || fail "CNI DEL failed"
echo "PASS"
