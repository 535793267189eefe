#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The node agent in a three-node lab (n1 and n2 share the private network rack-a with
# MTU 9000, every node has a public link with MTU 1500), userspace WireGuard:
# - each pair uses the endpoint the topology rule picks, seen in `wg show` and in
#   captures on every underlay link (n2<->n3 only on the public link);
# - the MTU follows the smallest underlay in use: 1500 - 60 = 1440;
# - a fourth node added to the topology while an n1->n2 pod ping runs becomes
#   reachable, and the running ping loses nothing;
# - n1's agent restarted with --metrics: every peer has rx/tx bytes and seconds since
#   its handshake, and the reconcile and error counters are there; every peer has the
#   default persistent keepalive of 25 s;
# - kill -9 of the agent and a restart: the ping runs on, the restarted agent adopts
#   every peer unchanged, including one whose endpoint WireGuard roamed to another
#   address (it stays where it roamed);
# - a bad topology, or one without this node, keeps the last good state and is reported
#   in node.json and the error counter; drift (a deleted route or peer) is repaired by
#   the periodic resync alone, and on SIGHUP; a removed node loses its peer and route;
# - --keepalive 7 sets every peer's persistent keepalive to 7;
# - SIGTERM leaves the dataplane running; `twilld cleanup` removes what the agent made
#   but keeps the key.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
P=agr$(($$ % 100000))
WORK=""
BG=()

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	if [ -n "${LABDIR:-}" ]; then
		for l in "$LABDIR"/n*/twilld.log; do
			[ -e "$l" ] && { echo "--- $l"; tail -n 20 "$l"; }
		done
	fi
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
# CI installs every tool (scripts/install-deps) and builds everything: missing is a failure
for t in ip nsenter jq wg wireguard-go tcpdump ping curl; do
	command -v "$t" > /dev/null || fail "$t is not installed (scripts/install-deps installs it)"
done
[ -x "$LAB_BIN" ] || fail "tools/twill-lab is not in this tree"
[ -x "$BUILD/tools/twilld" ] || fail "twilld is not built ($BUILD/tools/twilld)"
[ -x "$BUILD/cni/twill" ] || fail "the CNI plugin is not built ($BUILD/cni/twill)"
[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"

WORK=$(mktemp -d /tmp/agrc.XXXXXX)
cleanup() {
	local p
	for p in "${BG[@]}"; do
		kill "$p" 2> /dev/null || true
	done
	if [ "${KEEP:-0}" != 1 ]; then
		"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

lab() { "$LAB_BIN" --prefix "$P" "$@"; }
in_ns() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" -- "$@"; }

"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
lab up --build-dir "$BUILD" --nodes 3 --pods-per-node 1 --private-group 2 > "$WORK/up.out" 2>&1 ||
	{ cat "$WORK/up.out"; fail "twill-lab up failed"; }
LABDIR=$(lab path)
TOPO=$LABDIR/topology.json
ip_of() { jq -r --arg n "$1" '.pods[] | select(.name == $n) | .ip' "$LABDIR/lab.json"; }
key_of() { jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .public_key' "$LABDIR/lab.json"; }
wgdev() { echo "$P-$1-wg"; }
endpoint() { in_ns "$P-$1" wg show "$(wgdev "$1")" endpoints | awk -v k="$(key_of "$2")" '$1 == k {print $2}'; }
npeers() { in_ns "$P-$1" wg show "$(wgdev "$1")" peers | wc -l; }
endpoint_is() { [ "$(endpoint "$1" "$2")" = "$3" ]; }
agent_pid() { cat "$LABDIR/$1/twilld.pid"; }

# restart_agent NODE [FLAGS...]: SIGTERM, then the same command line plus FLAGS; waits
# for the first reconcile and prints its log line
restart_agent() {
	local node=$1 pid newpid
	shift
	pid=$(agent_pid "$node")
	mapfile -d '' -t ARGS < "/proc/$pid/cmdline"
	kill -TERM "$pid"
	wait_for 5 bash -c "! kill -0 $pid 2> /dev/null" || fail "$node's agent ignored SIGTERM"
	setsid nsenter --net="/var/run/netns/$P-$node" -- "${ARGS[@]}" "$@" < /dev/null \
		>> "$LABDIR/$node/twilld.out" 2>&1 &
	newpid=$!
	echo "$newpid" > "$LABDIR/$node/twilld.pid"
	wait_for 10 grep -q "twilld\[$newpid\] info: agent: reconciled" "$LABDIR/$node/twilld.log" ||
		fail "the restarted agent on $node did not reconcile"
	grep "twilld\[$newpid\] info: agent: reconciled" "$LABDIR/$node/twilld.log" | head -n 1
}
keepalives() { in_ns "$P-$1" wg show "$(wgdev "$1")" persistent-keepalive | awk '{print $2}' | sort -u | xargs; }

# wait_for SECONDS CMD...: polls a condition, bounded
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

pingpod() {
	local from=$1 to=$2 ip
	ip=$(ip_of "$to")
	wait_for 10 in_ns "$P-$from" ping -c 1 -W 1 "$ip" > /dev/null ||
		fail "$from cannot ping $to ($ip)"
}

# --- endpoints, MTU, captures ---------------------------------------------------------
[ "$(npeers n1)" = 2 ] || fail "n1 has $(npeers n1) peers, expected 2"
[ "$(endpoint n1 n2)" = 198.19.0.2:51820 ] || fail "n1 reaches n2 at '$(endpoint n1 n2)', not its rack-a address"
[ "$(endpoint n2 n1)" = 198.19.0.1:51820 ] || fail "n2 reaches n1 at '$(endpoint n2 n1)'"
[ "$(endpoint n1 n3)" = 198.18.0.3:51820 ] || fail "n1 reaches n3 at '$(endpoint n1 n3)', not its public address"
[ "$(endpoint n2 n3)" = 198.18.0.3:51820 ] || fail "n2 reaches n3 at '$(endpoint n2 n3)'"
[ "$(endpoint n3 n2)" = 198.18.0.2:51820 ] || fail "n3 reaches n2 at '$(endpoint n3 n2)'"
echo "ok: wg show: rack-a endpoints between n1 and n2, public ones with n3"

for n in n1 n2 n3; do
	mtu=$(jq -r '.plugins[0].mtu' "$LABDIR/$n/net.d/10-twill.conflist")
	[ "$mtu" = 1440 ] || fail "$n conflist MTU is $mtu, expected 1440 (public 1500 - 60)"
	dmtu=$(ip -n "$P-$n" -o link show "$(wgdev "$n")" | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
	[ "$dmtu" = 1440 ] || fail "$n WireGuard device MTU is $dmtu, expected 1440"
done
echo "ok: MTU 1440 on every device and conflist"

capture() {
	local node=$1 dev=$2 out=$WORK/$1-$2
	in_ns "$P-$node" tcpdump -nli "$dev" -U -w "$out.pcap" 2> "$out.err" &
	BG+=($!)
}
for c in n1:eth0 n1:eth1 n2:eth0 n2:eth1 n3:eth0; do capture "${c%:*}" "${c#*:}"; done
wait_for 10 bash -c "[ \$(cat $WORK/*.err | grep -c 'listening on') -eq 5 ]" || fail "tcpdump did not start"
pingpod n1-p1 n2-p1
pingpod n2-p1 n3-p1
pingpod n3-p1 n1-p1
in_ns "$P-n1-p1" ping -c 3 -i 0.2 -W 2 "$(ip_of n2-p1)" > /dev/null || fail "n1-p1 -> n2-p1"
in_ns "$P-n2-p1" ping -c 3 -i 0.2 -W 2 "$(ip_of n3-p1)" > /dev/null || fail "n2-p1 -> n3-p1"
in_ns "$P-n1-p1" ping -c 3 -i 0.2 -W 2 "$(ip_of n3-p1)" > /dev/null || fail "n1-p1 -> n3-p1"
sleep 0.5
for p in "${BG[@]}"; do kill "$p" 2> /dev/null || true; done
for p in "${BG[@]}"; do wait "$p" 2> /dev/null || true; done
BG=()
count() { tcpdump -nr "$WORK/$1.pcap" "$2" 2> /dev/null | wc -l; }
[ "$(count n1-eth1 'udp port 51820 and host 198.19.0.1 and host 198.19.0.2')" -gt 0 ] || fail "no n1<->n2 WireGuard on rack-a"
[ "$(count n1-eth0 'udp and host 198.18.0.1 and host 198.18.0.2')" -eq 0 ] || fail "n1<->n2 WireGuard on the public link"
[ "$(count n2-eth0 'udp and host 198.18.0.2 and host 198.18.0.1')" -eq 0 ] || fail "n2<->n1 WireGuard on the public link"
[ "$(count n1-eth0 'udp port 51820 and host 198.18.0.3')" -gt 0 ] || fail "no n1<->n3 WireGuard on the public link"
[ "$(count n2-eth0 'udp port 51820 and host 198.18.0.3')" -gt 0 ] || fail "no n2<->n3 WireGuard on the public link"
[ "$(count n2-eth1 'host 198.18.0.3 or host 198.19.0.3')" -eq 0 ] || fail "n3 traffic on rack-a"
for c in n1-eth0 n1-eth1 n2-eth0 n2-eth1 n3-eth0; do
	[ "$(count "$c" 'net 10.244.0.0/16')" -eq 0 ] || fail "pod packets in the clear on $c"
done
echo "ok: captures: n1<->n2 only on rack-a, n1<->n3 and n2<->n3 only on the public links"

# --- metrics and keepalive: n1's agent restarted (SIGTERM) with --metrics and --resync 2 --
[ "$(keepalives n1)" = 25 ] || fail "n1's peers have persistent keepalive '$(keepalives n1)', not the default 25"
MPORT=$((9200 + $$ % 700))
line=$(restart_agent n1 --metrics "127.0.0.1:$MPORT" --resync 2)
[[ $line == *"peers +0 -0 ~0 =2"* ]] || fail "a clean restart changed peers: $line"
echo "ok: default persistent keepalive 25 on every peer; a clean restart changes nothing"
scrape() { in_ns "$P-n1" curl -sf -m 5 "http://127.0.0.1:$MPORT/metrics" > "$WORK/$1.prom" || fail "no answer from n1's metrics endpoint"; }
metric() { awk -v m="$2" '$1 == m {print $2}' "$WORK/$1.prom"; }
scrape m1
for peer in n2 n3; do
	labels="{peer=\"$peer\",public_key=\"$(key_of "$peer")\"}"
	for m in twill_peer_rx_bytes_total twill_peer_tx_bytes_total; do
		v=$(metric m1 "$m$labels")
		[ -n "$v" ] && [ "$v" -gt 0 ] || fail "$m$labels is '$v': $(grep "$peer" "$WORK/m1.prom")"
	done
	v=$(metric m1 "twill_peer_seconds_since_handshake$labels")
	[ -n "$v" ] && [ "$v" -ge 0 ] && [ "$v" -lt 180 ] || fail "twill_peer_seconds_since_handshake$labels is '$v'"
done
[ "$(metric m1 twill_peers)" = 2 ] || fail "twill_peers is '$(metric m1 twill_peers)'"
[ "$(metric m1 twill_reconciles_total)" -ge 1 ] || fail "twill_reconciles_total is '$(metric m1 twill_reconciles_total)'"
[ "$(metric m1 twill_reconcile_errors_total)" = 0 ] || fail "twill_reconcile_errors_total is '$(metric m1 twill_reconcile_errors_total)'"
echo "ok: metrics: rx/tx bytes and seconds since handshake for n2 and n3, reconciles $(metric m1 twill_reconciles_total), errors 0"

# --- a fourth node joins while n1-p1 pings n2-p1 --------------------------------------
# ping_start NAME FROM TO: a ping every 0.1 s until ping_check NAME stops it with SIGINT
# (however long the action takes) and checks that every echo sent before the last was
# answered; the last may still have been in flight when the signal came.
ping_start() {
	nsenter --net="/var/run/netns/$P-$2" -- ping -n -i 0.1 -w 300 -W 2 "$(ip_of "$3")" \
		> "$WORK/$1.ping" 2>&1 &
	eval "PING_$1=$!"
	BG+=($!)
}
ping_check() {
	local pid sent missing
	eval "pid=\$PING_$1"
	kill -0 "$pid" 2> /dev/null || { cat "$WORK/$1.ping"; fail "ping $1 stopped during the action"; }
	kill -INT "$pid"
	wait "$pid" || true
	sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$WORK/$1.ping")
	[ -n "$sent" ] && [ "$sent" -gt 10 ] || { cat "$WORK/$1.ping"; fail "ping $1 sent too few echoes"; }
	missing=$(comm -23 <(seq 1 $((sent - 1)) | sort) \
		<(grep -o 'icmp_seq=[0-9]* ttl' "$WORK/$1.ping" | tr -dc '0-9\n' | sort -u) | sort -n | head -n 5 | xargs)
	[ -z "$missing" ] || { tail -n 5 "$WORK/$1.ping"; fail "ping $1 lost echoes (icmp_seq $missing ...)"; }
	echo "ok: $sent echoes, none lost, during $1"
}

ping_start join n1-p1 n2-p1
sleep 1
t0=$SECONDS
lab add-node --pods 1 > "$WORK/add.out" 2>&1 || { cat "$WORK/add.out"; fail "twill-lab add-node failed"; }
echo "ok: twill-lab add-node took $((SECONDS - t0)) s"
wait_for 10 bash -c "[ \$(nsenter --net=/var/run/netns/$P-n1 wg show $(wgdev n1) peers | wc -l) = 3 ]" ||
	fail "n1 did not add n4 as a peer"
[ "$(endpoint n1 n4)" = 198.18.0.4:51820 ] || fail "n1 reaches n4 at '$(endpoint n1 n4)'"
pingpod n1-p1 n4-p1
pingpod n4-p1 n2-p1
ip -n "$P-n1" route show 10.244.4.0/24 | grep -q "dev $(wgdev n1)" || fail "n1 has no route to n4's pods"
echo "ok: n4 joined: peer, route, pods reachable both ways"
ping_check join

# --- kill -9 and restart n1's agent while the pods talk -------------------------------
pid=$(agent_pid n1)
[ "$(basename "$(readlink -f "/proc/$pid/exe")")" = twilld ] || fail "pid $pid is not twilld"
mapfile -d '' -t ARGS < "/proc/$pid/cmdline"
# n2 sends to n1's public address first, so n1 sees n2 roam to 198.18.0.2 and answers
# there (what a NAT between them would cause); the agents leave it: the topology did not
# change. (n1 speaking first would pull n2 back to rack-a: WireGuard roams both ways.)
in_ns "$P-n2" wg set "$(wgdev n2)" peer "$(key_of n1)" endpoint 198.18.0.1:51820
pingpod n2-p1 n1-p1
wait_for 10 endpoint_is n1 n2 198.18.0.2:51820 ||
	fail "n1 did not see n2 roam to 198.18.0.2 (endpoint '$(endpoint n1 n2)')"
ping_start restart n1-p1 n2-p1
sleep 1
kill -9 "$pid"
wait_for 5 bash -c "! kill -0 $pid 2> /dev/null" || fail "agent $pid survived kill -9"
sleep 1
setsid nsenter --net="/var/run/netns/$P-n1" -- "${ARGS[@]}" < /dev/null >> "$LABDIR/n1/twilld.out" 2>&1 &
newpid=$!
echo "$newpid" > "$LABDIR/n1/twilld.pid"
wait_for 10 grep -q "twilld\[$newpid\] info: agent: reconciled" "$LABDIR/n1/twilld.log" ||
	fail "the restarted agent did not reconcile"
line=$(grep "twilld\[$newpid\] info: agent: reconciled" "$LABDIR/n1/twilld.log" | head -n 1)
[[ $line == *"peers +0 -0 ~0 =3"* ]] || fail "the restarted agent changed peers: $line"
[[ $line == *"routes ~0 -0"* ]] || fail "the restarted agent changed routes: $line"
[ "$(endpoint n1 n2)" = 198.18.0.2:51820 ] || fail "the restart moved n2's roamed endpoint to '$(endpoint n1 n2)'"
echo "ok: restarted agent adopted the device, n2's roamed endpoint kept: ${line#*reconciled }"
ping_check restart
in_ns "$P-n2" wg set "$(wgdev n2)" peer "$(key_of n1)" endpoint 198.19.0.1:51820
pingpod n2-p1 n1-p1
wait_for 10 endpoint_is n1 n2 198.19.0.2:51820 || fail "n2 did not roam back to rack-a: '$(endpoint n1 n2)'"

# --- a bad topology keeps the last good state -----------------------------------------
cp "$TOPO" "$WORK/good.json"
printf '{"kind":"NodeList","items":[{"metadata":{"name":"n1"}' > "$TOPO.tmp"
mv "$TOPO.tmp" "$TOPO"
wait_for 5 bash -c "jq -e '.lastError != \"\"' $LABDIR/n1/state/node.json > /dev/null" ||
	fail "n1's node.json does not report the bad topology"
grep -q 'error: topology: invalid JSON' "$LABDIR/n1/twilld.log" || fail "no log line for the invalid JSON"
jq '.items[1].metadata.annotations["twill.dev/public-key"] = "bm90IGEga2V5"' \
	"$WORK/good.json" > "$TOPO.tmp"
mv "$TOPO.tmp" "$TOPO"
wait_for 5 grep -q "node 'n2': annotation twill.dev/public-key 'bm90IGEga2V5' is not a base64" \
	"$LABDIR/n1/twilld.log" || fail "no log line naming n2's bad key"
[ "$(npeers n1)" = 3 ] || fail "a bad topology changed n1's peers"
in_ns "$P-n1-p1" ping -c 2 -i 0.2 -W 2 "$(ip_of n2-p1)" > /dev/null || fail "pods stopped talking on a bad topology"
# this node missing: n1 keeps what it has (the others drop n1, as they should)
jq '.items |= map(select(.metadata.name != "n1"))' "$WORK/good.json" > "$TOPO.tmp"
mv "$TOPO.tmp" "$TOPO"
wait_for 5 bash -c "jq -e '.lastError | test(\"node .n1. is not in the topology\")' $LABDIR/n1/state/node.json > /dev/null" ||
	fail "n1's node.json does not say n1 is missing: $(jq -r .lastError "$LABDIR/n1/state/node.json")"
[ "$(npeers n1)" = 3 ] || fail "n1 missing from the topology changed its peers: $(npeers n1)"
[ "$(ip -n "$P-n1" route show dev "$(wgdev n1)" | grep -c /24)" = 3 ] || fail "n1 missing from the topology changed its routes"
[ -e "$LABDIR/n1/net.d/10-twill.conflist" ] || fail "n1 missing from the topology removed its conflist"
scrape m2
[ "$(metric m2 twill_reconcile_errors_total)" -ge 3 ] ||
	fail "3 rejected topologies, twill_reconcile_errors_total is '$(metric m2 twill_reconcile_errors_total)'"
[ "$(metric m2 twill_reconciles_total)" -gt "$(metric m1 twill_reconciles_total)" ] || fail "twill_reconciles_total did not grow"
cp "$WORK/good.json" "$TOPO.tmp"
mv "$TOPO.tmp" "$TOPO"
wait_for 5 bash -c "jq -e '.lastError == \"\"' $LABDIR/n1/state/node.json > /dev/null" ||
	fail "n1's node.json still reports an error after the good topology came back"
pingpod n1-p1 n2-p1
echo "ok: bad topologies (invalid JSON, bad key, this node missing) logged and counted ($(metric m2 twill_reconcile_errors_total) errors), last good state kept"

# --- drift on the node is repaired: by the periodic resync (n1, every 2 s), on SIGHUP (n2)
ip -n "$P-n1" route del 10.244.3.0/24
in_ns "$P-n1" wg set "$(wgdev n1)" peer "$(key_of n3)" remove
wait_for 6 bash -c "ip -n $P-n1 route show 10.244.3.0/24 | grep -q 'dev $(wgdev n1)'" ||
	fail "the periodic resync did not restore the route to n3's pods"
wait_for 6 bash -c "[ \$(nsenter --net=/var/run/netns/$P-n1 wg show $(wgdev n1) peers | wc -l) = 3 ]" ||
	fail "the periodic resync did not restore n3's peer"
pingpod n1-p1 n3-p1
echo "ok: a deleted route and peer came back without a signal (periodic resync)"
ip -n "$P-n2" route del 10.244.3.0/24
in_ns "$P-n2" wg set "$(wgdev n2)" peer "$(key_of n3)" remove
sleep 1
[ -z "$(ip -n "$P-n2" route show 10.244.3.0/24)" ] || fail "n2's route came back before SIGHUP: the test shows nothing"
kill -HUP "$(agent_pid n2)"
wait_for 5 bash -c "ip -n $P-n2 route show 10.244.3.0/24 | grep -q 'dev $(wgdev n2)'" ||
	fail "SIGHUP did not restore the route to n3's pods"
wait_for 5 bash -c "[ \$(nsenter --net=/var/run/netns/$P-n2 wg show $(wgdev n2) peers | wc -l) = 3 ]" ||
	fail "SIGHUP did not restore n3's peer"
pingpod n2-p1 n3-p1
echo "ok: a deleted route and peer came back on SIGHUP"

# --- a removed node loses its peer and route ------------------------------------------
jq '.items |= map(select(.metadata.name != "n4"))' "$WORK/good.json" > "$TOPO.tmp"
mv "$TOPO.tmp" "$TOPO"
wait_for 5 bash -c "[ \$(nsenter --net=/var/run/netns/$P-n1 wg show $(wgdev n1) peers | wc -l) = 2 ]" ||
	fail "n1 kept n4's peer"
[ -z "$(ip -n "$P-n1" route show 10.244.4.0/24)" ] || fail "n1 kept the route to n4's pods"
in_ns "$P-n1-p1" ping -c 2 -i 0.2 -W 2 "$(ip_of n2-p1)" > /dev/null || fail "n1-p1 -> n2-p1 after removing n4"
cp "$WORK/good.json" "$TOPO.tmp"
mv "$TOPO.tmp" "$TOPO"
echo "ok: removed node: peer and route gone"

# --- --keepalive ----------------------------------------------------------------------
npeers_is() { [ "$(npeers "$1")" = "$2" ]; }
wait_for 5 npeers_is n3 3 || fail "n3 did not take n4 back: $(npeers n3) peers"
line=$(restart_agent n3 --keepalive 7)
[[ $line == *"peers +0 -0 ~3 =0"* ]] || fail "--keepalive 7 did not update n3's 3 peers: $line"
[ "$(keepalives n3)" = 7 ] || fail "n3's peers have persistent keepalive '$(keepalives n3)' after --keepalive 7"
echo "ok: --keepalive 7: every peer of n3 has persistent keepalive 7"

# --- SIGTERM leaves the dataplane; cleanup removes it ---------------------------------
pid=$(agent_pid n3)
mapfile -d '' -t ARGS < "/proc/$pid/cmdline"
kill -TERM "$pid"
wait_for 5 bash -c "! kill -0 $pid 2> /dev/null" || fail "n3's agent ignored SIGTERM"
in_ns "$P-n1-p1" ping -c 2 -i 0.2 -W 2 "$(ip_of n3-p1)" > /dev/null || fail "n3's pods unreachable after its agent stopped"
ip -n "$P-n3" link show "$(wgdev n3)" > /dev/null 2>&1 || fail "SIGTERM removed n3's device"
echo "ok: SIGTERM: agent gone, dataplane still carries pod traffic"
CLEAN=("${ARGS[0]}" cleanup "${ARGS[@]:1}")
in_ns "$P-n3" "${CLEAN[@]}" > "$WORK/cleanup.out" 2>&1 || { cat "$WORK/cleanup.out"; fail "twilld cleanup failed"; }
! ip -n "$P-n3" link show "$(wgdev n3)" > /dev/null 2>&1 || fail "cleanup left n3's device"
[ ! -e "/var/run/wireguard/$(wgdev n3).sock" ] || fail "cleanup left wireguard-go running"
[ ! -e "$LABDIR/n3/net.d/10-twill.conflist" ] || fail "cleanup left the conflist"
[ ! -e "$LABDIR/n3/state/node.json" ] || fail "cleanup left node.json"
[ -e "$LABDIR/n3/state/private.key" ] || fail "cleanup removed the private key"
[ -z "$(ip -n "$P-n3" route show dev "$(wgdev n3)" 2> /dev/null)" ] || fail "cleanup left routes"
echo "ok: cleanup removed device, routes, conflist and node state; the key stays"

echo "PASS"
