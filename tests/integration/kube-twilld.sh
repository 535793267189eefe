#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# twilld --kubeconfig end to end, against the replay API server, both inside one
# network namespace (its own loopback): the agent publishes its public key with a
# PATCH, configures WireGuard (userspace, no BPF) from the listed nodes, and follows a
# node ADDED through the watch. Then SIGTERM and `twilld cleanup`.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespace)"; exit 77; }
[ -x "${TWILL_BUILD_DIR:?}/tools/twilld" ] || { echo "SKIP: tools/twilld is not built"; exit 77; }
for t in ip nsenter wg wireguard-go; do
  command -v "$t" >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
. "${TWILL_SOURCE_DIR:?}/tests/kube-replay/lib.sh"
TWILLD=$TWILL_BUILD_DIR/tools/twilld
NS=kb-ktw
DEV=kb-ktw0
AGENT_PID=
ARGS=()
test_cleanup() {
  if [ -n "$AGENT_PID" ]; then kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; fi
  if ip netns list | grep -qw "$NS"; then
    nsenter --net="/var/run/netns/$NS" -- "$TWILLD" cleanup "${ARGS[@]}" >/dev/null 2>&1 || true
  fi
  kr_cleanup_ns
}
kr_cleanup_ns() {
  # wireguard-go of our device only, by the PID its socket names
  pkill -f "wireguard-go $DEV\$" 2>/dev/null || true
  rm -f "/var/run/wireguard/$DEV.sock"
  ip netns del "$NS" 2>/dev/null || true
  kr_cleanup
}
trap test_cleanup EXIT

kr_certs
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add kb-ktw-u type veth peer name kb-ktw-p
ip -n "$NS" link set kb-ktw-p up
ip -n "$NS" addr add 192.0.2.1/24 dev kb-ktw-u
ip -n "$NS" link set kb-ktw-u up

S=$KR_TMP/state
ARGS=(--node kb-node-a --state-dir "$S" --cni-conf-dir "$KR_TMP/net.d"
      --bpf-pin-dir "/sys/fs/bpf/kb-ktw" --wg-device "$DEV" --wg-backend userspace --no-bpf
      --cluster-cidr 10.244.0.0/16 --resync 0)
key=$("$TWILLD" --show-public-key --state-dir "$S")
KEY="$key" kr_py '
a = node("kb-node-a", 90, "10.244.1.0/24", os.environ["KEY"], "192.0.2.1")
b = node("kb-node-b", 91, "10.244.2.0/24", KEYS["b"], "192.0.2.2")
c = node("kb-node-c", 120, "10.244.3.0/24", KEYS["c"], "192.0.2.3")
json.dump({"token": "kb-token-1", "list": [{"body": nodelist([a, b], 100)}],
           "watch": [{"events": [{"sleep": 1.5}, event("ADDED", c)], "end": "hold"}]},
          open(T + "/scenario.json", "w"))
'
# the server lives in the namespace, on its loopback, like the agent
rm -f "$KR_TMP/port"
nsenter --net="/var/run/netns/$NS" -- python3 "$KR_SRC/replay-server.py" \
  --scenario "$KR_TMP/scenario.json" --dir "$KR_TMP" --cert "$KR_TMP/server.crt" \
  --key "$KR_TMP/server.key" --max-seconds 60 2>>"$KR_TMP/server.log" &
KR_PID=$!
for _ in $(seq 50); do [ -s "$KR_TMP/port" ] && break; sleep 0.1; done
KR_PORT=$(cat "$KR_TMP/port")
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1

nsenter --net="/var/run/netns/$NS" -- "$TWILLD" --kubeconfig "$KR_TMP/kubeconfig" "${ARGS[@]}" \
  >"$KR_TMP/twilld.out" 2>&1 &
AGENT_PID=$!
peers() { nsenter --net="/var/run/netns/$NS" -- wg show "$DEV" peers 2>/dev/null || true; }
for _ in $(seq 100); do
  peers | grep -q "${KEY_C:=gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=}" && break
  sleep 0.1
done
cat "$KR_TMP/twilld.out" >&2
nsenter --net="/var/run/netns/$NS" -- wg show "$DEV" >&2 || true
nsenter --net="/var/run/netns/$NS" -- wg show "$DEV" endpoints >"$KR_TMP/endpoints"
kill "$AGENT_PID"
wait "$AGENT_PID" || { echo "FAIL: twilld did not exit cleanly on SIGTERM"; exit 1; }
AGENT_PID=

KEY="$key" kr_py '
reqs = read_requests(T + "/requests.jsonl")
eps = dict(l.split() for l in open(T + "/endpoints"))
check(eps.get(KEYS["b"]) == "192.0.2.2:51820", "peer kb-node-b from the list at its public endpoint: %s" % eps)
check(eps.get(KEYS["c"]) == "192.0.2.3:51820", "peer kb-node-c from the watch ADDED event")
patch = [r for r in reqs if r["method"] == "PATCH"]
check(len(patch) == 1 and patch[0]["path"] == "/api/v1/nodes/kb-node-a" and
      json.loads(patch[0]["body"])["metadata"]["annotations"]["twill.dev/public-key"] == os.environ["KEY"],
      "twilld published its own public key once")
check(os.path.exists(T + "/state/kube-nodes.json"), "the synced NodeList is kept in the state folder")
'
nsenter --net="/var/run/netns/$NS" -- "$TWILLD" cleanup "${ARGS[@]}"
! ip -n "$NS" link show "$DEV" >/dev/null 2>&1 || { echo "FAIL: cleanup left $DEV"; exit 1; }
echo "kube-twilld: PASS"
