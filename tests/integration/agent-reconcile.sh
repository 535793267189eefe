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
# - kill -9 of the agent and a restart: the ping runs on, the restarted agent adopts
#   every peer unchanged;
# - a bad topology keeps the last good state and is reported in node.json; drift (a
#   deleted route or peer) is repaired on SIGHUP; a removed node loses its peer and route;
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
agent_pid() { cat "$LABDIR/$1/twilld.pid"; }

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
echo "ok: restarted agent adopted the device: ${line#*reconciled }"
ping_check restart

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
cp "$WORK/good.json" "$TOPO.tmp"
mv "$TOPO.tmp" "$TOPO"
wait_for 5 bash -c "jq -e '.lastError == \"\"' $LABDIR/n1/state/node.json > /dev/null" ||
	fail "n1's node.json still reports an error after the good topology came back"
echo "ok: bad topologies (invalid JSON, bad key) logged, last good state kept"

# --- drift on the node is repaired (SIGHUP; the periodic resync does the same) ---------
ip -n "$P-n1" route del 10.244.3.0/24
in_ns "$P-n1" wg set "$(wgdev n1)" peer "$(key_of n3)" remove
kill -HUP "$(agent_pid n1)"
wait_for 5 bash -c "ip -n $P-n1 route show 10.244.3.0/24 | grep -q 'dev $(wgdev n1)'" ||
	fail "SIGHUP did not restore the route to n3's pods"
wait_for 5 bash -c "[ \$(nsenter --net=/var/run/netns/$P-n1 wg show $(wgdev n1) peers | wc -l) = 3 ]" ||
	fail "SIGHUP did not restore n3's peer"
pingpod n1-p1 n3-p1
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
