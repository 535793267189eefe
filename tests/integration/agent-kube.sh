#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# twilld with the API server as its topology source (--kubeconfig), against the replay
# API server: this node is registered without a public key yet (a fresh node), the agent
# still configures its peers from the node list, publishes its key with a PATCH, adds a
# node the watch reports ADDED and removes one reported DELETED. Everything runs inside
# one throwaway network namespace (the replay server on its loopback, userspace
# WireGuard), so nothing touches the host's network. (lib/kube publishes from a thread
# of its own and keeps its watch open, so both events come on one watch.)
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -n "${LOG:-}" ] && [ -e "$LOG" ] && tail -n 30 "$LOG"; exit 1; }

BUILD=${TWILL_BUILD_DIR:?}
TWILLD=$BUILD/tools/twilld
NS=agk-$$
DEV=agk$$-wg

if [ -z "${AGK_INSIDE:-}" ]; then
	[ "$(id -u)" -eq 0 ] || skip "needs root (a network namespace, a WireGuard device)"
	# CI installs every tool (scripts/install-deps) and builds everything: missing fails
	for t in ip nsenter wg wireguard-go python3 openssl; do
		command -v "$t" > /dev/null || { echo "FAIL: $t is not installed (scripts/install-deps)"; exit 1; }
	done
	[ -x "$TWILLD" ] || { echo "FAIL: twilld is not built"; exit 1; }
	[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"
	((${#DEV} <= 15)) || DEV=agk-wg$((RANDOM % 10000))
	outer_cleanup() {
		local p
		for p in $(ip netns pids "$NS" 2> /dev/null); do
			kill "$p" 2> /dev/null || true
		done
		ip netns del "$NS" 2> /dev/null || true
	}
	trap outer_cleanup EXIT
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	# the peers' public addresses are reachable over a 1500-byte link: MTU 1440
	ip -n "$NS" link add agk0 type veth peer name agk1
	ip -n "$NS" addr add 203.0.113.254/24 dev agk0
	ip -n "$NS" link set agk0 up
	ip -n "$NS" link set agk1 up
	AGK_INSIDE=1 AGK_DEV=$DEV nsenter --net="/var/run/netns/$NS" -- "$0" "$@"
	exit $?
fi

DEV=$AGK_DEV
. "${TWILL_SOURCE_DIR:?}/tests/kube-replay/lib.sh"
kr_certs
STATE=$KR_TMP/state
LOG=$KR_TMP/twilld.log
AGENT=
inner_cleanup() {
	if [ -n "$AGENT" ]; then kill "$AGENT" 2> /dev/null || true; wait "$AGENT" 2> /dev/null || true; fi
	"$TWILLD" cleanup --state-dir "$STATE" --cni-conf-dir "$KR_TMP/net.d" \
		--bpf-pin-dir "/sys/fs/bpf/$DEV" --wg-device "$DEV" --wg-backend userspace \
		> /dev/null 2>&1 || true
	[ "${KEEP:-0}" = 1 ] && { echo "kept $KR_TMP"; return; }
	kr_cleanup
}
trap inner_cleanup EXIT

kr_py '
a = node("kb-node-a", 90, "10.244.1.0/24", None, "203.0.113.1")
b = node("kb-node-b", 91, "10.244.2.0/24", KEYS["b"], "203.0.113.2")
c = node("kb-node-c", 92, "10.244.3.0/24", KEYS["c"], "203.0.113.3", "rack-a", "198.19.0.3")
d = node("kb-node-d", 120, "10.244.4.0/24", KEYS["d"], "203.0.113.4")
json.dump({"token": "kb-token-1",
  "patch": [{"status": 200, "body": a}, {"status": 200, "body": a}, {"status": 200, "body": a}],
  "list": [{"body": nodelist([a, b, c], 100)}],
  "watch": [{"events": [{"sleep": 2.0}, event("ADDED", d), {"sleep": 2.0}, event("DELETED", c)],
             "end": "hold"}]},
  open(T + "/scenario.json", "w"))
'
kr_start "$KR_TMP/scenario.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1

"$TWILLD" --kubeconfig "$KR_TMP/kubeconfig" --node kb-node-a --state-dir "$STATE" \
	--cni-conf-dir "$KR_TMP/net.d" --bpf-pin-dir "/sys/fs/bpf/$DEV" --wg-device "$DEV" \
	--wg-backend userspace --no-bpf --log-file "$LOG" > "$KR_TMP/twilld.out" 2>&1 &
AGENT=$!

peers() { wg show "$DEV" peers 2> /dev/null | sort | tr '\n' ' '; }
key() { PYTHONPATH="$KR_SRC" python3 -c "from kubeobjects import KEYS; print(KEYS['$1'])"; }
want() { printf '%s\n' "$@" | sort | tr '\n' ' '; }
wait_peers() {
	local w i
	w=$(want "$@")
	for ((i = 0; i < 100; i++)); do
		[ "$(peers)" = "$w" ] && return 0
		kill -0 "$AGENT" 2> /dev/null || fail "twilld exited"
		sleep 0.05
	done
	fail "peers are '$(peers)', expected '$w'"
}

for ((i = 0; i < 100; i++)); do
	grep -q 'reconciled 3 nodes: peers +2 -0 ~0 =0' "$LOG" 2> /dev/null && break
	sleep 0.1
done
grep -q 'reconciled 3 nodes: peers +2 -0 ~0 =0' "$LOG" || fail "the listed nodes b and c did not become peers"
echo "ok: fresh node (no key annotation yet): peers b and c from the listed nodes"
[ "$(jq -r '.plugins[0].mtu' "$KR_TMP/net.d/10-twill.conflist")" = 1440 ] || fail "conflist MTU is not 1440"
[ "$(jq -r '.plugins[0].podCIDR' "$KR_TMP/net.d/10-twill.conflist")" = 10.244.1.0/24 ] || fail "conflist pod CIDR"
# the two events may come faster than we look: the final peers and the agent's log tell
wait_peers "$(key b)" "$(key d)"
grep -q 'reconciled 4 nodes: peers +1 -0 ~0 =2' "$LOG" || fail "no reconcile added kb-node-d"
grep -q 'reconciled 3 nodes: peers +0 -1 ~0 =2' "$LOG" || fail "no reconcile removed kb-node-c"
echo "ok: ADDED kb-node-d became a peer"
[ -z "$(ip route show 10.244.3.0/24)" ] || fail "the route to the deleted node's pods stayed"
echo "ok: DELETED kb-node-c lost its peer and route"

mykey=$("$TWILLD" --show-public-key --state-dir "$STATE" 2> /dev/null)
for ((i = 0; i < 50; i++)); do
	grep -q "$mykey" "$KR_TMP/requests.jsonl" && break
	sleep 0.1
done
kr_py "
reqs = [r for r in read_requests(T + '/requests.jsonl') if r['method'] == 'PATCH']
check(len(reqs) >= 1, 'the agent published its key')
check(reqs[0]['path'] == '/api/v1/nodes/kb-node-a', 'PATCH of its own node: %s' % reqs[0]['path'])
check('$mykey' in json.dumps(reqs[0]), 'with its public key')
"
echo "ok: the public key was published on kb-node-a"

kill -TERM "$AGENT"
wait "$AGENT" || fail "twilld exited non-zero on SIGTERM"
AGENT=
[ -n "$(peers)" ] || fail "SIGTERM removed the peers"
echo "ok: SIGTERM left the device configured"
echo "PASS"
