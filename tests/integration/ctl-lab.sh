#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# twillctl against a real three-node lab (n1 and n2 share the private network rack-a,
# n3 is public only): every command's table and --json output is checked against the
# lab's own record of the topology, then against faults made by hand: a kernel route
# deleted, a host veth deleted, a node removed from the topology (strict-mode drop).
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
CTL=$BUILD/tools/twillctl
P=ctl$(($$ % 100000))
WORK=""

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	[ -n "$WORK" ] && [ -f "$WORK/last.out" ] &&
		{ echo "--- last twillctl output"; cat "$WORK/last.out" "$WORK/last.err"; }
	exit 1
}
ok() { echo "ok: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, BPF)"
for t in ip nsenter jq wg wireguard-go ping; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$CTL" ] || skip "twillctl is not built ($CTL)"
[ -x "$BUILD/tools/twilld" ] || skip "twilld is not built ($BUILD/tools/twilld)"
[ -x "$BUILD/cni/twill" ] || skip "the CNI plugin is not built ($BUILD/cni/twill)"
[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"

WORK=$(mktemp -d /tmp/ct-lab.XXXXXX)
cleanup() {
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
LABDIR=$(lab path)
node_field() { jq -r --arg n "$1" --arg f "$2" '.nodes[] | select(.name == $n) | .[$f]' "$LABDIR/lab.json"; }
ip_of() { jq -r --arg n "$1" '.pods[] | select(.name == $n) | .ip' "$LABDIR/lab.json"; }

# ctl NODE ARGS...: twillctl inside the node's namespace, exit status in $RC, output in
# $WORK/last.out. nsenter, not `ip netns exec`, which would hide /sys/fs/bpf.
RC=0
ctl() {
	local node=$1
	shift
	RC=0
	nsenter --net="/var/run/netns/$P-$node" -- "$CTL" --state-dir "$(node_field "$node" state_dir)" \
		--topology "$LABDIR/topology.json" "$@" > "$WORK/last.out" 2> "$WORK/last.err" || RC=$?
}
expect_rc() { [ "$RC" = "$1" ] || fail "$2: exit status $RC, expected $1"; }
has() { grep -qE -- "$1" "$WORK/last.out" || fail "$2: output lacks /$1/"; }
# row REGEX FIXED WHAT: a line matching REGEX also holds FIXED (keys hold regex characters)
row() { grep -E -- "$1" "$WORK/last.out" | grep -qF -- "$2" || fail "$3: no line /$1/ with '$2'"; }
jqo() { jq -er "$1" "$WORK/last.out" > /dev/null 2>&1 || fail "$2: --json output fails '$1'"; }

# CT_SIMULATE_CNI_BPF=1 registers every pod with twill-dp-helper (datapath_pod_add), as
# the CNI plugin is meant to, to check the BPF pod path before the plugin does it.
if [ "${CT_SIMULATE_CNI_BPF:-0}" = 1 ]; then
	[ -x "$BUILD/tests/integration/twill-dp-helper" ] || skip "twill-dp-helper is not built"
	for pod in $(jq -r '.pods[].name' "$LABDIR/lab.json"); do
		node=${pod%%-*}
		pip=$(ip_of "$pod")
		dev=$(ip -n "$P-$node" -j route show "$pip/32" | jq -r '.[0].dev')
		mac=$(lab exec "$pod" -- cat /sys/class/net/eth0/address)
		nsenter --net="/var/run/netns/$P-$node" -- "$BUILD/tests/integration/twill-dp-helper" \
			endpoint "$(node_field "$node" bpf_pin_dir)" "$pip" "$dev" "$mac" > /dev/null ||
			fail "simulated CNI registration of $pod"
	done
	echo "note: the pods' endpoints were registered by twill-dp-helper, not by the CNI plugin"
fi
N1P1=$(ip_of n1-p1); N1P2=$(ip_of n1-p2); N2P1=$(ip_of n2-p1); N3P1=$(ip_of n3-p1)
PUB3=$(node_field n3 public_ip); PRIV2=$(node_field n2 private_ip)
KEY1=$(node_field n1 public_key); KEY2=$(node_field n2 public_key); KEY3=$(node_field n3 public_key)
PRIVKEY1=$(cat "$(node_field n1 state_dir)/private.key")

# Traffic to both peers gives every tunnel of n1 a handshake (the lab sets no keepalive).
for dst in "$N2P1" "$N3P1"; do
	lab exec n1-p1 -- ping -c 2 -W 2 "$dst" > /dev/null || fail "n1-p1 cannot ping $dst"
done

# Until the CNI plugin registers endpoints and attaches twill_pod_ingress, pods are
# routed by the kernel: twillctl must say so, and the checks of the BPF pod path wait.
ctl n1 --json pods
PODPROG=$(jq -r 'if (.pods | length) == 2 and all(.pods[]; .program == "twill_pod_ingress")
	then "yes" else "no" end' "$WORK/last.out")
WAITING=()
if [ "$PODPROG" = no ]; then
	echo "note: the CNI plugin attached no twill_pod_ingress: checking the kernel-stack path"
	WAITING+=("BPF pod path (healthy status and pods, pod-program trace, to_wireguard counter, strict-mode drop)")
fi

# --- status, key -------------------------------------------------------------------
ctl n1 status
expect_rc 0 "status on a healthy node"
if [ "$PODPROG" = yes ]; then
	has "^health: +healthy$" "status"
	has "twill_pod_ingress on 2 of 2 pod veths" "status"
else
	has "^health: +healthy, with warnings$" "status"
	has "~ warning: pod $(ip_of n1-p1) veth tw[0-9a-f]{13}: no endpoint map entry; no program attached \(kernel path\)" "status"
fi
has "^node: +n1$" "status"
has "peers: +2 up / 2 total" "status"
has "twill_wg_ingress on $P-n1-wg ingress" "status"
has "twill_underlay_guard on eth0 egress" "status"
row "^public key: " "$KEY1" "status public key"
ctl n1 --json status
jqo '.node == "n1" and .peers_up == 2 and .peers_total == 2 and .pods == 2 and .dataplane_loaded' "status --json"
jqo '.healthy == true and (.problems | length) == 0' "status --json healthy"
[ "$(jq -r .public_key "$WORK/last.out")" = "$KEY1" ] || fail "status --json public key"
if [ "$PODPROG" = yes ]; then h=healthy; else h="healthy with warnings (pods on the kernel path)"; fi
ok "status: $h, both peers up, programs listed, public key"

ctl n1 key
expect_rc 0 "key"
[ "$(cat "$WORK/last.out")" = "$KEY1" ] || fail "key prints '$(cat "$WORK/last.out")', not n1's public key"
ok "key: n1's public key"

# --- peers -------------------------------------------------------------------------
ctl n1 peers
expect_rc 0 "peers"
row "^n2 +10\.244\.2\.0/24 +$PRIV2:51820 +rack-a .* ok +" "$KEY2" "peers n2 row"
row "^n3 +10\.244\.3\.0/24 +$PUB3:51820 +public .* ok +" "$KEY3" "peers n3 row"
ctl n1 --json peers
jqo ".peers | map(select(.node == \"n2\" and .path == \"rack-a\" and .private and .endpoint == \"$PRIV2:51820\")) | length == 1" "peers --json n2"
jqo ".peers | map(select(.node == \"n3\" and .path == \"public\" and (.private | not) and .endpoint == \"$PUB3:51820\" and .handshake_age != null)) | length == 1" "peers --json n3"
ok "peers: n2 over rack-a at $PRIV2, n3 public at $PUB3"

# --- trace -------------------------------------------------------------------------
ctl n1 trace "$N1P1" "$N3P1"
expect_rc 0 "trace to n3"
if [ "$PODPROG" = yes ]; then
	has "program: +twill_pod_ingress on tw[0-9a-f]{13} ingress" "trace to n3"
	has "match: +route map entry 10\.244\.3\.0/24" "trace to n3"
	has "verdict: +redirect to $P-n1-wg \(TWILL_R_TO_WIREGUARD\)" "trace to n3"
else
	has "program: +none" "trace to n3"
	has "verdict: +kernel stack, out via $P-n1-wg" "trace to n3"
fi
row "peer: +n3 " "$KEY3" "trace to n3"
has "endpoint: +$PUB3:51820" "trace to n3"
has "path: +public" "trace to n3"
has "MTU: +[0-9]+ \($P-n1-wg\), pod MTU [0-9]+" "trace to n3"
ctl n1 --json trace "$N1P1" "$N3P1"
jqo ".path == \"public\" and (.private | not) and .peer.endpoint == \"$PUB3:51820\" and .peer.node == \"n3\" and .out_ifname == \"$P-n1-wg\"" "trace --json to n3"
[ "$PODPROG" = no ] || jqo '.reason == "TWILL_R_TO_WIREGUARD" and .match_cidr == "10.244.3.0/24"' "trace --json to n3"
ok "trace n1-p1 -> n3-p1: public path to $PUB3:51820"

ctl n1 trace "$N1P1" "$N2P1"
expect_rc 0 "trace to n2"
row "peer: +n2 " "$KEY2" "trace to n2"
has "endpoint: +$PRIV2:51820" "trace to n2"
has "path: +rack-a" "trace to n2"
ctl n1 --json trace "$N1P1" "$N2P1"
jqo ".path == \"rack-a\" and .private and .peer.endpoint == \"$PRIV2:51820\"" "trace --json to n2"
ok "trace n1-p1 -> n2-p1: private path rack-a to $PRIV2:51820"

ctl n1 trace "$N1P1" "$N1P2"
expect_rc 0 "trace to a local pod"
if [ "$PODPROG" = yes ]; then
	has "verdict: +redirect to tw[0-9a-f]{13} \(TWILL_R_TO_LOCAL_POD\)" "trace to a local pod"
else
	has "verdict: +kernel stack, out via tw[0-9a-f]{13}" "trace to a local pod"
fi
ok "trace n1-p1 -> n1-p2: $(grep -E "^  verdict:" "$WORK/last.out" | sed "s/^  verdict: *//")"

# --- counters ----------------------------------------------------------------------
# With the pod program the requests count as to_wireguard; without it the replies
# still pass twill_wg_ingress (pass_stack).
if [ "$PODPROG" = yes ]; then R=TWILL_R_TO_WIREGUARD; else R=TWILL_R_PASS_STACK; fi
ctl n1 --json counters
expect_rc 0 "counters"
before=$(jq -r --arg r "$R" '.counters[] | select(.reason == $r) | .packets' "$WORK/last.out")
lab exec n1-p1 -- ping -c 3 -i 0.2 -W 2 "$N2P1" > /dev/null || fail "n1-p1 cannot ping $N2P1"
ctl n1 --json counters
after=$(jq -r --arg r "$R" '.counters[] | select(.reason == $r) | .packets' "$WORK/last.out")
[ "$after" -ge $((before + 3)) ] || fail "$R went from $before to $after after 3 pings"
ctl n1 counters
has "^$(echo "${R#TWILL_R_}" | tr A-Z a-z) +$after " "counters table"
ctl n1 --json counters --watch 1 --count 2
expect_rc 0 "counters --watch"
[ "$(jq -s 'length' "$WORK/last.out")" = 2 ] || fail "counters --watch 1 --count 2 printed $(jq -s length "$WORK/last.out") objects"
jq -s -e 'all(.[]; .rates | length == 9)' "$WORK/last.out" > /dev/null || fail "counters --watch rates"
ok "counters: $R $before -> $after after 3 pings; --watch prints rates"

# --- routes: a kernel route deleted by hand ----------------------------------------
ctl n1 routes
expect_rc 0 "routes on a healthy node"
has "^10\.244\.2\.0/24 +n2 +$P-n1-wg -> $PRIV2 private +10\.244\.2\.0/24 dev $P-n1-wg .* ok$" "routes n2 row"
for attempt in 1 2 3; do
	ip -n "$P-n1" route del 10.244.2.0/24 dev "$P-n1-wg" 2> /dev/null || true
	ctl n1 routes
	[ "$RC" = 1 ] && break # the agent's resync may have put it back in between
done
expect_rc 1 "routes after ip route del"
has "^10\.244\.2\.0/24 .*(no kernel route|kernel route .* not $P-n1-wg)" "routes flags the deleted route"
has "^10\.244\.3\.0/24 .* ok$" "routes keeps n3's row ok"
ctl n1 --json routes
jqo '(.healthy | not) and (.routes[] | select(.cidr == "10.244.2.0/24") | (.ok | not) and .bpf != null and .wireguard != null)' "routes --json"
ctl n1 status
expect_rc 1 "status with a route disagreement"
has "route 10\.244\.2\.0/24" "status lists the route problem"
ip -n "$P-n1" route replace 10.244.2.0/24 dev "$P-n1-wg"
ok "routes: the deleted kernel route is flagged, status unhealthy"

# --- pods: a host veth deleted by hand ---------------------------------------------
ctl n1 --json pods
expect_rc 0 "pods on a healthy node"
jqo '.healthy and (.pods | length == 2 and all(.[]; .ok and (.host_veth | test("^tw[0-9a-f]{13}$")) and (.container_id | length) > 0))' "pods --json"
[ "$PODPROG" = no ] || jqo 'all(.pods[]; .in_endpoint_map and .warning == null)' "pods --json"
VETH=$(jq -r --arg ip "$N1P2" '.pods[] | select(.pod_ip == $ip) | .host_veth' "$WORK/last.out")
ip -n "$P-n1" link del "$VETH"
ctl n1 pods
expect_rc 1 "pods after ip link del"
has "$N1P2 .*allocation without veth" "pods flags the deleted veth"
[ "$PODPROG" = no ] || has "$N1P1 .*twill_pod_ingress +ok$" "pods keeps n1-p1 ok"
ctl n1 --json pods
jqo ".pods[] | select(.pod_ip == \"$N1P2\") | (.ok | not) and .host_veth == null and (.problem | test(\"allocation without veth\"))" "pods --json"
ok "pods: the deleted veth $VETH of $N1P2 is flagged"

# --- trace after n3 is removed from the topology: strict-mode drop ------------------
jq --arg n n3 '.items |= map(select(.metadata.name != $n))' "$LABDIR/topology.json" > "$WORK/topo.json"
cp "$WORK/topo.json" "$LABDIR/topology.json.ct" && mv "$LABDIR/topology.json.ct" "$LABDIR/topology.json"
gone=no
for _ in $(seq 1 60); do
	if ! nsenter --net="/var/run/netns/$P-n1" wg show "$P-n1-wg" peers | grep -qF "$KEY3"; then
		gone=yes
		break
	fi
	sleep 0.5
done
[ "$gone" = yes ] || fail "n1's agent did not remove n3's peer within 30 s"
ctl n1 trace "$N1P1" "$N3P1"
if [ "$PODPROG" = yes ]; then
	expect_rc 1 "trace to a removed node"
	has "verdict: +drop: TWILL_R_DROP_NO_ROUTE" "trace to a removed node"
	has "strict mode" "trace to a removed node"
	ctl n1 --json trace "$N1P1" "$N3P1"
	jqo '.verdict == "drop" and .reason == "TWILL_R_DROP_NO_ROUTE" and .match == "none" and .peer == null' "trace --json to a removed node"
	ok "trace n1-p1 -> n3-p1 after n3 left: TWILL_R_DROP_NO_ROUTE"
else
	ctl n1 --json trace "$N1P1" "$N3P1"
	jqo '.peer == null and .dst_kind == "cluster range (no node owns it)" and .match == "none"' \
		"trace --json to a removed node"
	ok "trace n1-p1 -> n3-p1 after n3 left: no peer, $(jq -r '.verdict + " " + (.reason // "")' "$WORK/last.out")"
fi

# --- the agent down: twillctl still answers from the sources ------------------------
kill -9 "$(cat "$LABDIR/n2/twilld.pid")"
for _ in $(seq 1 20); do kill -0 "$(cat "$LABDIR/n2/twilld.pid")" 2> /dev/null || break; sleep 0.25; done
ctl n2 trace "$N2P1" "$N1P1"
has "path: +rack-a" "trace with the agent down"
ctl n2 --json status
jqo '.dataplane_loaded and .wg_device_present and .node == "n2"' "status with the agent down"
ok "agent down: trace and status still read the node"

# --- usage and secrecy -------------------------------------------------------------
ctl n1 trace "$N1P1"
expect_rc 2 "trace with one argument"
ctl n1 frobnicate
expect_rc 2 "unknown command"
for c in status peers routes pods counters key; do
	ctl n1 "$c" --help
	expect_rc 0 "$c --help"
	ctl n1 --json "$c"
	if grep -qF "$PRIVKEY1" "$WORK/last.out" "$WORK/last.err"; then fail "$c prints the private key"; fi
	ctl n1 "$c"
	if grep -qF "$PRIVKEY1" "$WORK/last.out" "$WORK/last.err"; then fail "$c prints the private key"; fi
done
ok "usage errors exit 2; no command prints the private key"
if [ "${#WAITING[@]}" -gt 0 ]; then
	echo "SKIP: everything else passed; waiting for the CNI plugin's BPF registration: ${WAITING[*]}"
	exit 77
fi
echo "PASS"
