#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `twill-lab up` then `down` leaves the machine as it was: namespaces, root-namespace
# links, BPF pins, twilld, wireguard-go and tcpdump processes, WireGuard sockets, the
# lab folder and libcni's result cache. Also after an `up` killed midway (SIGKILL),
# after an `up` whose agents fail, and after an `up` refused because twilld or the
# plugin is not built (no silent network-only lab). `exec` hands every word after the
# node to the command. Any difference fails: run it alone (meson runs integration tests
# one at a time).
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
# per run: copies of this test in other worktrees may run at the same time
P=lbu$(($$ % 100000))
WORK=""

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
for t in ip nsenter jq wg; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$BUILD/tools/twilld" ] || skip "twilld is not built ($BUILD/tools/twilld)"
[ -x "$BUILD/cni/twill" ] || skip "the CNI plugin is not built ($BUILD/cni/twill)"
ip netns add "$P-probe" 2> /dev/null || skip "cannot create network namespaces here"
ip netns delete "$P-probe"

WORK=$(mktemp -d /tmp/lbud.XXXXXX)
cleanup() {
	"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
	[ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT

lab() { "$LAB_BIN" --prefix "$P" "$@"; }
lab_up() { "$LAB_BIN" up --prefix "$P" --build-dir "$BUILD" "$@"; }

lsq() { ls -A "$1" 2> /dev/null | sort || true; }

snapshot() {
	local out=$1
	{
		echo "## netns"
		ip netns list | awk '{print $1}' | sort
		echo "## root links"
		ip -o link | awk -F': ' '{print $2}' | sort
		echo "## bpf pins"
		lsq /sys/fs/bpf
		echo "## processes"
		ps -eo args= | awk '$1 ~ /(^|\/)(twilld|wireguard-go|tcpdump)$/' | sort
		echo "## wireguard sockets"
		lsq /var/run/wireguard
		echo "## /run/twill-lab"
		find /run/twill-lab 2> /dev/null | sort || true
		echo "## cni results"
		lsq /var/lib/cni/results
	} > "$out"
}

# compare BEFORE AFTER: any difference is something the lab left behind (or removed)
compare() {
	local d
	d=$(diff "$1" "$2" | grep -E '^[<>]' || true)
	[ -n "$d" ] || return 0
	echo "the machine is not as it was ('<' before, '>' after):"
	echo "$d"
	return 1
}

# A lab left by an earlier, interrupted run of this test would spoil the snapshot.
"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true

# 1. a full up, then down
snapshot "$WORK/before"
lab_up --nodes 3 --pods-per-node 2 > "$WORK/up.out" 2>&1 || { cat "$WORK/up.out"; fail "up failed"; }
cat "$WORK/up.out"
for ns in "$P-n1" "$P-n2" "$P-n3" "$P-inet" "$P-rack-a"; do
	[ -e "/var/run/netns/$ns" ] || fail "up made no namespace $ns"
done
[ "$(ip -n "$P-n1" -o link show eth1 | grep -o 'mtu [0-9]*')" = "mtu 9000" ] || fail "n1 private link MTU"
[ "$(ip -n "$P-n3" -o link show eth0 | grep -o 'mtu [0-9]*')" = "mtu 1500" ] || fail "n3 public link MTU"
ip -n "$P-n3" -o link show eth1 > /dev/null 2>&1 && fail "n3 is not in rack-a but has a private link"
jq -e '.kind == "NodeList" and (.items | length) == 3
	and .items[0].metadata.annotations["twill.dev/private-network"] == "rack-a"
	and .items[2].metadata.annotations["twill.dev/private-network"] == null
	and ([.items[].spec.podCIDR] == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"])
	and ([.items[].metadata.annotations["twill.dev/public-key"] | length == 44] | all)' \
	"/run/twill-lab/$P/topology.json" > /dev/null || fail "topology is not the expected NodeList"
lab exec n1 -- ping -c 1 -W 2 198.18.0.3 > /dev/null || fail "n1 cannot reach n3 on the public network"
lab exec n1 -- ping -c 1 -W 2 -M "do" -s 8972 198.19.0.2 > /dev/null || fail "n1 -> n2 private path is not 9000 bytes"
ip -n "$P-n1" route get 1.1.1.1 | grep -q "via 198.18.0.254" || fail "node default route is not the lab router"
[ "$(jq '.pods | length' "/run/twill-lab/$P/lab.json")" -eq 6 ] || fail "expected 6 pods"
ip -n "$P-n2-p1" -4 -o addr show eth0 | grep -q ' 10\.244\.2\.' || fail "pod n2-p1 has no address in 10.244.2.0/24"
lab status > /dev/null || fail "status of a healthy lab is not 0"
# exec: options end at the node; the command gets every word after it
out=$(lab exec n1 echo --json --prefix x -- -c 1) || fail "exec n1 echo ... failed"
[ "$out" = "--json --prefix x -- -c 1" ] || fail "exec ate the command's options: echo printed '$out'"
out=$(lab exec n1 -- echo --json) || fail "exec n1 -- echo --json failed"
[ "$out" = "--json" ] || fail "exec n1 -- echo --json printed '$out'"
lab exec n1-p1 ping -c 1 -W 2 "$(lab ip n2-p1)" > /dev/null || fail "exec n1-p1 ping -c 1 ... (no --) failed"
lab ctl n1 --json key | jq -e '.public_key | length == 44' > /dev/null ||
	fail "ctl n1 --json key did not hand --json to twillctl"
echo "ok: exec and ctl hand the words after the node to the command"
lab down
lab down > /dev/null || fail "a second down is not a no-op"
snapshot "$WORK/after"
compare "$WORK/before" "$WORK/after" || fail "up + down changed the machine"
echo "ok: up + down"

# 2. up killed with SIGKILL midway, then down
snapshot "$WORK/before2"
# its own process group, so that SIGKILL takes its children too, as a crash would
setsid "$LAB_BIN" up --prefix "$P" --build-dir "$BUILD" --nodes 3 --pods-per-node 2 \
	> "$WORK/up2.out" 2>&1 &
up_pid=$!
# kill it while it makes pods (agents, WireGuard, pins, libcni's cache and a half-made
# pod all exist then)
for ((i = 0; i < 400; i++)); do
	ls /run/twill-lab/$P/n2/pods/p1.json > /dev/null 2>&1 && break
	sleep 0.05
done
kill -KILL -- "-$up_pid" 2> /dev/null || true
wait "$up_pid" 2> /dev/null || true
echo "killed up midway; it had made: $(ip netns list | awk '{print $1}' | grep -cE "^$P-") namespaces"
lab down
snapshot "$WORK/after2"
compare "$WORK/before2" "$WORK/after2" || fail "down after a killed up left something"
echo "ok: down after a killed up"

# 3. down with no state folder at all: it finds the namespaces by name
lab_up --nodes 2 --pods-per-node 0 --no-agent > "$WORK/up4.out" 2>&1 || { cat "$WORK/up4.out"; fail "up --no-agent failed"; }
rm -rf "/run/twill-lab/$P"
lab down
[ -z "$(ip netns list | awk '{print $1}' | grep -E "^$P-")" ] || fail "down without state left namespaces"
echo "ok: down without a state folder"

# 4. an up whose agents die: it fails, and removes what it made by itself
mkdir -p "$WORK/fake/tools" "$WORK/fake/cni"
cat > "$WORK/fake/tools/twilld" <<'EOF'
#!/bin/sh
# an agent that can make a key but dies at once
if [ "$1" = --show-public-key ]; then wg genkey | wg pubkey; exit 0; fi
echo "fake twilld: exiting" >&2
exit 1
EOF
printf '#!/bin/sh\nexit 1\n' > "$WORK/fake/cni/twill"
chmod +x "$WORK/fake/tools/twilld" "$WORK/fake/cni/twill"
snapshot "$WORK/before3"
if "$LAB_BIN" up --prefix "$P" --build-dir "$WORK/fake" --nodes 2 > "$WORK/up3.out" 2>&1; then
	fail "up with dying agents succeeded"
fi
grep -q "exited before writing its CNI config" "$WORK/up3.out" || { cat "$WORK/up3.out"; fail "no reason given"; }
snapshot "$WORK/after3"
compare "$WORK/before3" "$WORK/after3" || fail "a failed up left something"
echo "ok: failed up cleans up after itself"

# 4b. an up without twilld or the CNI plugin is refused, not turned into a network-only
# lab; --no-agent still asks for one
mkdir -p "$WORK/empty/tools" "$WORK/empty/cni"
snapshot "$WORK/before4"
if "$LAB_BIN" up --prefix "$P" --build-dir "$WORK/empty" --nodes 2 > "$WORK/up6.out" 2>&1; then
	cat "$WORK/up6.out"
	fail "up without twilld built a lab"
fi
grep -q "twilld not found.*--no-agent" "$WORK/up6.out" || { cat "$WORK/up6.out"; fail "up without twilld does not say why"; }
cp "$BUILD/tools/twilld" "$WORK/empty/tools/twilld"
if "$LAB_BIN" up --prefix "$P" --build-dir "$WORK/empty" --nodes 2 > "$WORK/up6.out" 2>&1; then
	cat "$WORK/up6.out"
	fail "up without the CNI plugin built a lab"
fi
grep -q "CNI plugin not found.*--no-agent" "$WORK/up6.out" || { cat "$WORK/up6.out"; fail "up without the plugin does not say why"; }
snapshot "$WORK/after4"
compare "$WORK/before4" "$WORK/after4" || fail "a refused up left something"
echo "ok: up without twilld or the CNI plugin is refused and makes nothing"

# 5. pods through both CNI client paths, with a stand-in agent that configures Debian's
# ptp plugin: exercises CNI ADD/DEL and libcni's cache independently of twilld. Both
# are installed by scripts/install-deps (containernetworking-plugins, build-cnitool).
[ -x /usr/lib/cni/ptp ] && [ -x /usr/lib/cni/host-local ] ||
	fail "Debian's ptp and host-local plugins are missing (scripts/install-deps)"
cat > "$WORK/fake/tools/twilld" <<'EOF'
#!/bin/bash
# stand-in agent: a key, a ptp conflist for the node's pod CIDR, then it idles
if [ "$1" = --show-public-key ]; then
	[ -f "$3/private.key" ] || (umask 077 && wg genkey > "$3/private.key")
	wg pubkey < "$3/private.key"
	exit 0
fi
[ "$1" = cleanup ] && exit 0
while [ $# -gt 0 ]; do
	case $1 in
	--node) node=$2 ;; --state-dir) st=$2 ;; --cni-conf-dir) cd=$2 ;; --topology) topo=$2 ;;
	esac
	shift
done
cidr=$(jq -r --arg n "$node" '.items[] | select(.metadata.name == $n) | .spec.podCIDR' "$topo")
jq -n --arg cidr "$cidr" --arg dir "$st/ipam" '{cniVersion: "1.0.0", name: "twill", plugins: [
	{type: "ptp", mtu: 1440, ipam: {type: "host-local", subnet: $cidr, dataDir: $dir}},
	{type: "portmap", capabilities: {portMappings: true}}]}' > "$cd/10-twill.conflist.tmp"
mv "$cd/10-twill.conflist.tmp" "$cd/10-twill.conflist"
echo '{}' > "$st/node.json"
while sleep 1; do :; done
EOF
for client in cnitool direct; do
	snapshot "$WORK/before5"
	if ! "$LAB_BIN" up --prefix "$P" --build-dir "$WORK/fake" --nodes 2 --pods-per-node 2 \
		--cni-client "$client" > "$WORK/up5.out" 2>&1; then
		cat "$WORK/up5.out"
		fail "up with a stand-in agent failed ($client)"
	fi
	lab exec n1-p1 -- ping -c 1 -W 2 "$(lab ip n1-p2)" > /dev/null || fail "pods on n1 cannot talk ($client)"
	mapfile -t pods < <(ip netns list | awk '{print $1}' | grep -E "^$P-n[0-9]+-p[0-9]+$" || true)
	[ "${#pods[@]}" -eq 4 ] || fail "expected 4 pod namespaces, got ${#pods[@]}"
	lab down > /dev/null 2>&1
	snapshot "$WORK/after5"
	compare "$WORK/before5" "$WORK/after5" || fail "up + down with pods ($client) left something"
	echo "ok: pods through $client, then down"
done
echo "PASS"
