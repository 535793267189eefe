#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# twillctl against a real three-node lab (n1 and n2 share the private network rack-a,
# n3 is public only): every command's table and --json output is checked against the
# lab's own record of the topology, then against faults made by hand: a kernel route
# deleted, a host veth deleted, a node removed from the topology (strict-mode drop), the
# counters reset under `counters --watch`, and n2's agent killed (every command still
# answers from the sources, with its exit status).
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
for t in ip nsenter jq wg wireguard-go ping bpftool; do
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

N1P1=$(ip_of n1-p1); N1P2=$(ip_of n1-p2); N2P1=$(ip_of n2-p1); N3P1=$(ip_of n3-p1)
PUB3=$(node_field n3 public_ip); PRIV2=$(node_field n2 private_ip)
KEY1=$(node_field n1 public_key); KEY2=$(node_field n2 public_key); KEY3=$(node_field n3 public_key)
PRIVKEY1=$(cat "$(node_field n1 state_dir)/private.key")

# A node that just came up, before any pod traffic: WireGuard has not shaken hands yet
# (no keepalive in the lab), and that is no reason to call it unhealthy.
ctl n1 --json peers
expect_rc 0 "peers on a fresh, idle node"
jqo 'all(.peers[]; (.stale | not) and (if .handshake_age == null then .pending and .configured_age < 180 else true end))' "peers --json on a fresh node"
ctl n1 status
expect_rc 0 "status on a fresh, idle node"
has "^health: +healthy$" "status on a fresh node"
has "^peers: +[0-2] up / 2 total" "status on a fresh node"
ok "fresh idle node: healthy, peers without a handshake are pending ($(grep '^peers:' "$WORK/last.out" | sed 's/^peers: *//'))"

# Traffic to both peers gives every tunnel of n1 a handshake (the lab sets no keepalive).
for dst in "$N2P1" "$N3P1"; do
	lab exec n1-p1 -- ping -c 2 -W 2 "$dst" > /dev/null || fail "n1-p1 cannot ping $dst"
done

# --- status, key -------------------------------------------------------------------
ctl n1 status
expect_rc 0 "status on a healthy node"
has "^health: +healthy$" "status"
has "twill_pod_ingress on 2 of 2 pod veths" "status"
has "^node: +n1$" "status"
has "peers: +2 up / 2 total" "status"
has "twill_wg_ingress on $P-n1-wg ingress" "status"
has "twill_underlay_guard on eth0 egress" "status"
row "^public key: " "$KEY1" "status public key"
ctl n1 --json status
jqo '.node == "n1" and .peers_up == 2 and .peers_total == 2 and .pods == 2 and .dataplane_loaded' "status --json"
jqo '.healthy == true and (.problems | length) == 0' "status --json healthy"
[ "$(jq -r .public_key "$WORK/last.out")" = "$KEY1" ] || fail "status --json public key"
ok "status: healthy, both peers up, programs listed, public key"

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
has "program: +twill_pod_ingress on tw[0-9a-f]{13} ingress" "trace to n3"
has "match: +route map entry 10\.244\.3\.0/24" "trace to n3"
has "verdict: +redirect to $P-n1-wg \(TWILL_R_TO_WIREGUARD\)" "trace to n3"
row "peer: +n3 " "$KEY3" "trace to n3"
has "endpoint: +$PUB3:51820" "trace to n3"
has "path: +public" "trace to n3"
has "MTU: +[0-9]+ \($P-n1-wg\), pod MTU [0-9]+" "trace to n3"
ctl n1 --json trace "$N1P1" "$N3P1"
jqo ".path == \"public\" and (.private | not) and .peer.endpoint == \"$PUB3:51820\" and .peer.node == \"n3\" and .out_ifname == \"$P-n1-wg\"" "trace --json to n3"
jqo '.verdict == "redirect" and .dropped_by == null and .reason == "TWILL_R_TO_WIREGUARD" and .match_cidr == "10.244.3.0/24"' "trace --json to n3"
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
has "verdict: +redirect to tw[0-9a-f]{13} \(TWILL_R_TO_LOCAL_POD\)" "trace to a local pod"
ok "trace n1-p1 -> n1-p2: $(grep -E "^  verdict:" "$WORK/last.out" | sed "s/^  verdict: *//")"

# --- counters ----------------------------------------------------------------------
R=TWILL_R_TO_WIREGUARD
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

# A reload restarts the counters from zero (zeroed here with bpftool, on every CPU):
# the watch must show a rate of 0 for that interval, not the wrap of an unsigned
# subtraction, and say the counters were reset.
nsenter --net="/var/run/netns/$P-n1" -- "$CTL" --state-dir "$(node_field n1 state_dir)" \
	--json counters --watch 1 --count 3 > "$WORK/watch.out" 2> "$WORK/watch.err" &
WATCH=$!
sleep 1.5
for r in $(seq 0 8); do
	bpftool map update pinned "$(node_field n1 bpf_pin_dir)/twill_counters" \
		key $r 0 0 0 value 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 > /dev/null ||
		fail "bpftool cannot zero counter $r"
done
wait "$WATCH" || fail "counters --watch across a reset: exit status $?"
[ "$(jq -s length "$WORK/watch.out")" = 3 ] || fail "counters --watch --count 3 printed $(jq -s length "$WORK/watch.out") objects"
jq -s -e 'map(select(.reset)) | length == 1' "$WORK/watch.out" > /dev/null ||
	{ cat "$WORK/watch.out"; fail "counters --watch did not say the counters were reset"; }
jq -s -e 'all(.[]; all(.rates[]; .packets_per_sec >= 0 and .packets_per_sec < 1e7 and
	.bytes_per_sec >= 0 and .bytes_per_sec < 1e10))' "$WORK/watch.out" > /dev/null ||
	{ cat "$WORK/watch.out"; fail "counters --watch shows an absurd rate across the reset"; }
jq -s -e '.[] | select(.reset) | .rates[] | select(.reason == "TWILL_R_TO_WIREGUARD") | .packets_per_sec == 0' \
	"$WORK/watch.out" > /dev/null || { cat "$WORK/watch.out"; fail "to_wireguard's rate across the reset is not 0"; }
ok "counters --watch: a reset shows rate 0 and 'reset', not a wrapped subtraction"

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
jqo 'all(.pods[]; .in_endpoint_map and .warning == null)' "pods --json"
VETH=$(jq -r --arg ip "$N1P2" '.pods[] | select(.pod_ip == $ip) | .host_veth' "$WORK/last.out")
ip -n "$P-n1" link del "$VETH"
ctl n1 pods
expect_rc 1 "pods after ip link del"
has "$N1P2 .*allocation without veth" "pods flags the deleted veth"
has "$N1P1 .*twill_pod_ingress +ok$" "pods keeps n1-p1 ok"
ctl n1 --json pods
jqo ".pods[] | select(.pod_ip == \"$N1P2\") | (.ok | not) and .host_veth == null and (.problem | test(\"allocation without veth\"))" "pods --json"
ok "pods: the deleted veth $VETH of $N1P2 is flagged"

# --- trace when WireGuard has no peer for the route's CIDR: a drop -------------------
nsenter --net="/var/run/netns/$P-n1" wg set "$P-n1-wg" peer "$KEY3" remove
ctl n1 trace "$N1P1" "$N3P1"
expect_rc 1 "trace with n3's peer removed by hand"
has "verdict: +drop: WireGuard has no peer for $N3P1" "trace with n3's peer removed by hand"
has "WireGuard drops it \(no peer\)" "trace with n3's peer removed by hand"
ctl n1 --json trace "$N1P1" "$N3P1"
jqo '.verdict == "drop" and .dropped_by == "wireguard" and .reason == "TWILL_R_TO_WIREGUARD"' "trace --json with n3's peer removed"
nsenter --net="/var/run/netns/$P-n1" wg set "$P-n1-wg" peer "$KEY3" allowed-ips 10.244.3.0/24 \
	endpoint "$PUB3:51820"
ctl n1 trace "$N1P1" "$N3P1"
expect_rc 0 "trace with n3's peer put back"
ok "trace with n3's WireGuard peer removed by hand: drop by WireGuard, exit 1"

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
# the route may go a moment after the peer: wait for the dataplane's own verdict
for _ in $(seq 1 40); do
	ctl n1 --json trace "$N1P1" "$N3P1"
	[ "$(jq -r .reason "$WORK/last.out")" = TWILL_R_DROP_NO_ROUTE ] && break
	sleep 0.25
done
ctl n1 trace "$N1P1" "$N3P1"
expect_rc 1 "trace to a removed node"
has "verdict: +drop: TWILL_R_DROP_NO_ROUTE" "trace to a removed node"
has "strict mode" "trace to a removed node"
ctl n1 --json trace "$N1P1" "$N3P1"
expect_rc 1 "trace --json to a removed node"
jqo '.verdict == "drop" and .dropped_by == "twill" and .reason == "TWILL_R_DROP_NO_ROUTE" and .match == "none" and .peer == null' "trace --json to a removed node"
ok "trace n1-p1 -> n3-p1 after n3 left: TWILL_R_DROP_NO_ROUTE, exit 1"

# --- the agent down: every command still answers from the sources --------------------
# n2 has dropped n3 too and has a fresh handshake with n1 before its agent goes.
for _ in $(seq 1 60); do
	nsenter --net="/var/run/netns/$P-n2" wg show "$P-n2-wg" peers | grep -qF "$KEY3" || break
	sleep 0.5
done
lab exec n2-p1 -- ping -c 2 -W 2 "$N1P1" > /dev/null || fail "n2-p1 cannot ping n1-p1"
N2P2=$(ip_of n2-p2)
AGENT2=$(cat "$LABDIR/n2/twilld.pid")
kill -9 "$AGENT2"
# gone, or a zombie PID 1 has yet to reap
for _ in $(seq 1 20); do
	case $(awk '{print $3}' "/proc/$AGENT2/stat" 2> /dev/null || true) in "" | Z) break ;; esac
	sleep 0.25
done
case $(awk '{print $3}' "/proc/$AGENT2/stat" 2> /dev/null || true) in
"" | Z) ;;
*) fail "n2's agent (pid $AGENT2) survived kill -9" ;;
esac
ctl n2 status
expect_rc 0 "status with the agent down"
has "^node: +n2$" "status with the agent down"
has "^peers: +1 up / 1 total$" "status with the agent down"
has "^health: +healthy$" "status with the agent down"
ctl n2 --json status
expect_rc 0 "status --json with the agent down"
jqo '.dataplane_loaded and .wg_device_present and .node == "n2" and .healthy' "status --json with the agent down"
ctl n2 peers
expect_rc 0 "peers with the agent down"
row "^n1 +10\.244\.1\.0/24 +$(node_field n1 private_ip):51820 +rack-a .* ok +" "$KEY1" "peers with the agent down"
ctl n2 routes
expect_rc 0 "routes with the agent down"
has "^10\.244\.1\.0/24 +n1 .* ok$" "routes with the agent down"
ctl n2 pods
expect_rc 0 "pods with the agent down"
has "$N2P1 .*twill_pod_ingress +ok$" "pods with the agent down"
has "$N2P2 .*twill_pod_ingress +ok$" "pods with the agent down"
ctl n2 counters
expect_rc 0 "counters with the agent down"
has "^to_wireguard +[1-9][0-9]* " "counters with the agent down"
ctl n2 key
expect_rc 0 "key with the agent down"
[ "$(cat "$WORK/last.out")" = "$KEY2" ] || fail "key with the agent down prints '$(cat "$WORK/last.out")'"
ctl n2 trace "$N2P1" "$N1P1"
expect_rc 0 "trace with the agent down"
has "verdict: +redirect to $P-n2-wg \(TWILL_R_TO_WIREGUARD\)" "trace with the agent down"
has "path: +rack-a" "trace with the agent down"
ctl n2 trace "$N2P1" "$N3P1"
expect_rc 1 "trace to the removed node with the agent down"
has "verdict: +drop: TWILL_R_DROP_NO_ROUTE" "trace to the removed node with the agent down"
ok "agent down: status, peers, routes, pods, counters, key and trace answer from the node (0; a dropped trace 1)"

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
echo "PASS"
