#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Kubernetes Services over the BPF dataplane, in the lab. kube-proxy DNATs a pod's
# connection to a ClusterIP in the host stack; the backend's reply must cross the same
# host's conntrack to be translated back (src backend -> ClusterIP). Twill's programs
# would otherwise redirect the reply straight into the client pod (twill_wg_ingress
# across nodes, twill_pod_ingress on the same node) and the client would drop it.
#  - an nft DNAT rule on n1 plays kube-proxy: 10.96.0.10:80 -> an HTTP server in a pod
#    on n2, 10.96.0.11:80 -> one in another pod on n1 (same-node backend);
#  - a client pod on n1 fetches both ClusterIPs; pass_nat on n1 rises;
#  - ordinary pod-to-pod traffic still takes the fast path (to_wireguard, wg_to_pod,
#    to_local_pod rise; pass_nat does not);
#  - twillctl status says Services support is on.
# The conntrack lookup itself cannot be exercised by BPF_PROG_TEST_RUN (no way to make
# a conntrack entry for a test skb), hence this test.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
HELPER=$BUILD/tests/integration/twill-dp-helper
P=sv$(($$ % 10000))
WORK=""
BG=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, bpf)"
for t in ip nsenter jq wg wireguard-go nft curl timeout /usr/bin/python3; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$BUILD/tools/twilld" ] || skip "twilld is not built ($BUILD/tools/twilld)"
[ -x "$BUILD/cni/twill" ] || skip "the CNI plugin is not built ($BUILD/cni/twill)"
[ -x "$HELPER" ] || skip "twill-dp-helper is not built"
[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"
[ -r /proc/net/nf_conntrack ] || [ -d /proc/sys/net/netfilter ] ||
	skip "no nf_conntrack in this kernel: Services support cannot be active"

WORK=$(mktemp -d /tmp/sv-services.XXXXXX)
cleanup() {
	local p
	set +e
	# each server runs in a session of its own: kill the whole group (twill-lab, timeout
	# and python), not only the shell that started it
	for p in "${BG[@]}"; do kill -- "-$p" 2> /dev/null || kill "$p" 2> /dev/null; done
	for p in "${BG[@]}"; do wait "$p" 2> /dev/null; done
	if [ "${KEEP:-0}" != 1 ]; then
		"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

lab() { "$LAB_BIN" --prefix "$P" "$@"; }
lab up --build-dir "$BUILD" --nodes 3 --pods-per-node 2 > "$WORK/up.out" 2>&1 ||
	{ cat "$WORK/up.out"; fail "twill-lab up failed"; }
LABDIR=$(lab path)
ip_of() { jq -r --arg n "$1" '.pods[] | select(.name == $n) | .ip' "$LABDIR/lab.json"; }
counter() { "$HELPER" counters "/sys/fs/bpf/$P-$1" | awk -v r="$2" '$1 == r { v = $2 } END { print v + 0 }'; }

CLIENT=n1-p1
REMOTE=$(ip_of n2-p1)   # backend on another node
LOCAL=$(ip_of n1-p2)    # backend on the client's node
[ -n "$REMOTE" ] && [ -n "$LOCAL" ] && [ "$REMOTE" != null ] || fail "no pod addresses in lab.json"

# One HTTP server per backend pod, each serving a file that names it.
for b in n2-p1 n1-p2; do
	mkdir -p "$WORK/www-$b"
	echo "svc-ok $b" > "$WORK/www-$b/id"
	setsid "$LAB_BIN" --prefix "$P" exec "$b" -- timeout 120 /usr/bin/python3 -m http.server 8080 \
		--directory "$WORK/www-$b" > "$WORK/http-$b.log" 2>&1 < /dev/null & BG+=($!)
done

# kube-proxy's part, in n1's namespace: DNAT in prerouting (pod traffic) and output.
nsenter --net="/var/run/netns/$P-n1" -- nft -f - <<EOF
table ip twill_svc_test {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		ip daddr 10.96.0.10 tcp dport 80 dnat to $REMOTE:8080
		ip daddr 10.96.0.11 tcp dport 80 dnat to $LOCAL:8080
	}
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 10.96.0.10 tcp dport 80 dnat to $REMOTE:8080
		ip daddr 10.96.0.11 tcp dport 80 dnat to $LOCAL:8080
	}
}
EOF

fetch() { # pod url
	lab exec "$1" -- curl -s --max-time 4 "$2" 2> /dev/null
}
wait_ready() { # pod url
	local _
	for _ in $(seq 40); do
		fetch "$1" "$2" > /dev/null && return 0
		sleep 0.25
	done
	return 1
}
# The servers answer pod-to-pod first (this also does the WireGuard handshake).
wait_ready "$CLIENT" "http://$REMOTE:8080/id" || fail "$CLIENT cannot reach the backend $REMOTE directly"
wait_ready "$CLIENT" "http://$LOCAL:8080/id" || fail "$CLIENT cannot reach the backend $LOCAL directly"

# --- ordinary pod-to-pod: the fast path, nothing handed to the stack as NATed ------------
n1_wg=$(counter n1 to_wireguard) n1_in=$(counter n1 wg_to_pod) n1_loc=$(counter n1 to_local_pod)
n1_nat=$(counter n1 pass_nat) n2_nat=$(counter n2 pass_nat)
for _ in 1 2 3; do
	[ "$(fetch "$CLIENT" "http://$REMOTE:8080/id")" = "svc-ok n2-p1" ] || fail "pod-to-pod $CLIENT -> $REMOTE"
	[ "$(fetch "$CLIENT" "http://$LOCAL:8080/id")" = "svc-ok n1-p2" ] || fail "pod-to-pod $CLIENT -> $LOCAL"
done
[ $(($(counter n1 to_wireguard) - n1_wg)) -ge 9 ] || fail "n1 to_wireguard did not count pod-to-pod TCP"
[ $(($(counter n1 wg_to_pod) - n1_in)) -ge 9 ] || fail "n1 wg_to_pod did not count pod-to-pod TCP"
[ $(($(counter n1 to_local_pod) - n1_loc)) -ge 18 ] || fail "n1 to_local_pod did not count same-node TCP"
[ "$(counter n1 pass_nat)" -eq "$n1_nat" ] || fail "pod-to-pod packets on n1 were counted as NATed"
[ "$(counter n2 pass_nat)" -eq "$n2_nat" ] || fail "pod-to-pod packets on n2 were counted as NATed"
echo "ok: pod-to-pod TCP (cross-node and same-node) on the fast path, pass_nat unchanged"

# --- Services: ClusterIP with a backend on another node, then on the same node ------------
n1_nat=$(counter n1 pass_nat)
for _ in 1 2 3; do
	out=$(fetch "$CLIENT" "http://10.96.0.10/id") ||
		fail "$CLIENT -> ClusterIP 10.96.0.10:80 (backend $REMOTE on n2) failed"
	[ "$out" = "svc-ok n2-p1" ] || fail "ClusterIP 10.96.0.10 answered '$out'"
done
remote_nat=$(($(counter n1 pass_nat) - n1_nat))
[ "$remote_nat" -ge 3 ] || fail "n1 pass_nat rose by $remote_nat only for the cross-node Service"
echo "ok: ClusterIP -> backend on n2: replies took n1's stack (pass_nat +$remote_nat)"

n1_nat=$(counter n1 pass_nat)
for _ in 1 2 3; do
	out=$(fetch "$CLIENT" "http://10.96.0.11/id") ||
		fail "$CLIENT -> ClusterIP 10.96.0.11:80 (backend $LOCAL on n1) failed"
	[ "$out" = "svc-ok n1-p2" ] || fail "ClusterIP 10.96.0.11 answered '$out'"
done
local_nat=$(($(counter n1 pass_nat) - n1_nat))
[ "$local_nat" -ge 3 ] || fail "n1 pass_nat rose by $local_nat only for the same-node Service"
echo "ok: ClusterIP -> backend on n1: replies took n1's stack (pass_nat +$local_nat)"

# --- still the fast path afterwards ------------------------------------------------------
n1_wg=$(counter n1 to_wireguard) n1_in=$(counter n1 wg_to_pod)
[ "$(fetch "$CLIENT" "http://$REMOTE:8080/id")" = "svc-ok n2-p1" ] || fail "pod-to-pod after the Services"
[ $(($(counter n1 to_wireguard) - n1_wg)) -ge 3 ] && [ $(($(counter n1 wg_to_pod) - n1_in)) -ge 3 ] ||
	fail "pod-to-pod after the Services left the fast path"
echo "ok: pod-to-pod still on the fast path"

# --- reported -------------------------------------------------------------------------
TWILLCTL=$BUILD/tools/twillctl lab ctl n1 status > "$WORK/status.out" 2>&1 || true
grep -q '^services: *on' "$WORK/status.out" || { cat "$WORK/status.out"; fail "twillctl status does not say Services support is on"; }
# (exit status 1 means "unhealthy": not what this test looks at)
nsenter --net="/var/run/netns/$P-n1" -- "$BUILD/tools/twillctl" --state-dir "$LABDIR/n1/state" \
	status --json > "$WORK/status.json" 2> /dev/null || true
jq -e '.services_nat == true' "$WORK/status.json" > /dev/null ||
	fail "twillctl status --json has no services_nat: true"
echo "ok: twillctl status reports Services support on"

echo "PASS"
