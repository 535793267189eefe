#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Agent faults (issue 7), in a two-node lab (prefix "fla<pid>"):
#  1. wireguard-go killed on n1: the agent notices within seconds (its health check),
#     re-creates the device with the same key, port, peers, address, routes and BPF
#     attach; the pods talk again; `twillctl status` shows the recovery.
#  2. the topology file truncated mid-write (half a document, written in place): the
#     agent logs the error, keeps the last good state (peers, routes, traffic), and
#     `twillctl status` shows the error; the full document clears it.
#  3. SIGKILL of the agent in the middle of a large reconcile (200 nodes added): the
#     restarted agent converges exactly (peers, routes), and converges back when the
#     nodes leave; the pods keep talking; `twillctl status` names the killed agent as
#     its last recovery, and a clean restart (SIGTERM) afterwards reports none.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
P=fla$(( $$ % 100000 ))       # the lab prefix: 8 characters at most, unique per run
WORK=""
RECOVER_MAX_S=${FL_RECOVER_MAX_S:-10}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -z "${LABDIR:-}" ] || tail -n 15 "$LABDIR/n1/twilld.log" 2>/dev/null; exit 1; }
say() { echo "== $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, bpf)"
# CI installs every tool (scripts/install-deps) and builds everything: missing is a failure
for t in ip nsenter jq wg wireguard-go ping timeout setsid python3; do
  command -v "$t" > /dev/null || fail "$t is not installed (scripts/install-deps installs it)"
done
[ -x "$BUILD/tools/twilld" ] || fail "twilld is not built"
[ -x "$BUILD/tools/twillctl" ] || fail "twillctl is not built"
[ -x "$BUILD/cni/twill" ] || fail "the CNI plugin is not built"
[ -e /dev/net/tun ] || skip "no /dev/net/tun for wireguard-go"

WORK=$(mktemp -d /tmp/fl-agent.XXXXXX)
cleanup() {
  set +e
  if [ "${KEEP:-0}" != 1 ]; then
    "$LAB_BIN" down --prefix "$P" > /dev/null 2>&1
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

lab() { "$LAB_BIN" --prefix "$P" "$@"; }
"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
lab up --build-dir "$BUILD" --nodes 2 --pods-per-node 1 --private-group 0 > "$WORK/up.out" 2>&1 ||
  { cat "$WORK/up.out"; fail "twill-lab up failed"; }
LABDIR=$(lab path)
TOPO=$LABDIR/topology.json
WG=$P-n1-wg
ip_of() { jq -r --arg n "$1" '.pods[] | select(.name == $n) | .ip' "$LABDIR/lab.json"; }
DST=$(ip_of n2-p1)
n1() { nsenter --net="/var/run/netns/$P-n1" -- "$@"; }
pod_ping() { lab exec n1-p1 -- ping -c 1 -W 1 -q "$DST" > /dev/null 2>&1; }
# until COMMAND succeeds or MAX seconds pass; prints the seconds it took
wait_for() {
  local max=$1 t0; shift
  t0=$(date +%s%N)
  while ! "$@"; do
    [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt "$max" ] || return 1
    sleep 0.1
  done
  awk -v ns=$(( $(date +%s%N) - t0 )) 'BEGIN { printf "%.1f\n", ns / 1e9 }'
}
wg_dump() { n1 wg show "$WG" dump 2>/dev/null; }
peers() { wg_dump | tail -n +2 | wc -l; }
routes() { ip -n "$P-n1" -4 route show dev "$WG" 2>/dev/null | grep -c '/24' || true; }
device_facts() {   # public key, port, .1 address, routes to remote /24s, BPF on the device
  local pub port
  read -r _ pub port _ < <(wg_dump | head -n 1)
  echo "key=$pub port=$port addr=$(ip -n "$P-n1" -4 -o addr show dev "$WG" | awk '{print $4}') routes=$(routes) peers=$(peers) bpf=$(n1 tc filter show dev "$WG" ingress 2>/dev/null | grep -o 'twill_[a-z_]*' | head -n 1)"
}

wait_for 20 pod_ping > /dev/null || fail "n1-p1 cannot reach n2-p1 ($DST) after lab up"
before=$(device_facts)
echo "n1 device: $before"

# --- 1. wireguard-go killed -------------------------------------------------------------
say "1. SIGKILL of wireguard-go behind $WG"
wgpid=""
for p in $(pgrep -x wireguard-go || true); do
  case "$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" in
    "wireguard-go $WG " | */wireguard-go" $WG ") wgpid=$p ;;
  esac
done
[ -n "$wgpid" ] || fail "no wireguard-go process for $WG"
# a ping every 50 ms across the kill measures the outage (bounded: 120 probes, 6 s)
lab exec n1-p1 -- ping -i 0.05 -c 120 -W 1 -q "$DST" > "$WORK/ping-during" 2>&1 & ping_pid=$!
sleep 0.5
kill -KILL "$wgpid"
t=$(wait_for "$RECOVER_MAX_S" sh -c "ip -n $P-n1 link show $WG >/dev/null 2>&1 && [ \"\$(nsenter --net=/var/run/netns/$P-n1 wg show $WG peers 2>/dev/null | wc -l)\" -ge 1 ]") ||
  fail "the device was not re-created within ${RECOVER_MAX_S}s"
echo "device re-created with its peer ${t}s after the kill"
t2=$(wait_for "$RECOVER_MAX_S" pod_ping) || fail "pods did not regain connectivity within ${RECOVER_MAX_S}s of the re-creation"
echo "pods talk again ${t2}s later"
wait "$ping_pid" || true
read -r sent recv < <(awk '/packets transmitted/ { print $1, $4 }' "$WORK/ping-during")
echo "ping every 50 ms across the kill: $recv of $sent answered, outage about $(( (sent - recv) * 50 )) ms"
[ "${recv:-0}" -gt 0 ] && [ $((sent - recv)) -lt 100 ] || fail "pods did not keep talking across the kill: $(cat "$WORK/ping-during")"
after=$(device_facts)
echo "n1 device: $after"
[ "$after" = "$before" ] || fail "the re-created device differs: before '$before', after '$after'"
grep -q "WireGuard device '$WG' lost" "$LABDIR/n1/twilld.log" || fail "the agent did not log the loss"
lab ctl n1 status > "$WORK/status1" 2>&1 || true
grep 'last recovery' "$WORK/status1" || { cat "$WORK/status1"; fail "twillctl status does not show the recovery"; }
n1 "$BUILD/tools/twillctl" --state-dir "$LABDIR/n1/state" --topology "$TOPO" --json status > "$WORK/status1.json" 2>/dev/null || true
jq -e '.last_recovery | test("lost.*re-created")' "$WORK/status1.json" > /dev/null ||
  fail "twillctl status --json has no last_recovery"

# --- 2. topology truncated mid-write ----------------------------------------------------
say "2. topology file truncated mid-write"
cp "$TOPO" "$WORK/topology.good"
size=$(stat -c %s "$TOPO")
errs0=$(grep -c "rejected" "$LABDIR/n1/twilld.log" || true)
head -c $((size / 2)) "$WORK/topology.good" > "$TOPO"   # in place: O_TRUNC, then half
wait_for 10 sh -c "[ \$(grep -c rejected '$LABDIR/n1/twilld.log') -gt $errs0 ]" > /dev/null ||
  fail "the agent logged no error for the half document"
grep "rejected" "$LABDIR/n1/twilld.log" | tail -n 1
grep -q "topology: invalid JSON" "$LABDIR/n1/twilld.log" || fail "the log does not say what is wrong with the document"
sleep 0.5
lab ctl n1 status > "$WORK/status2" 2>&1 || true
grep 'last error:.*rejected' "$WORK/status2" || { cat "$WORK/status2"; fail "twillctl status does not show the topology error"; }
[ "$(device_facts)" = "$before" ] || fail "the last good state was not kept: $(device_facts)"
pod_ping || fail "pods lost connectivity on a truncated topology"
echo "last good state kept: $(device_facts); pods talk"
cp "$WORK/topology.good" "$TOPO.tmp" && mv "$TOPO.tmp" "$TOPO"
wait_for 10 sh -c "! $LAB_BIN --prefix $P ctl n1 status 2>/dev/null | grep -q 'last error:.*rejected'" > /dev/null ||
  fail "the error stays after the document was repaired"
echo "error cleared once the full document is back"

# --- 3. SIGKILL in the middle of a large reconcile --------------------------------------
say "3. SIGKILL of the agent in the middle of a 200-node reconcile"
python3 - "$WORK/topology.good" "$WORK/topology.big" <<'PY'
import base64, copy, json, os, sys
doc = json.load(open(sys.argv[1]))
tmpl = doc["items"][0]
for k in range(200):
    n = copy.deepcopy(tmpl)
    n["metadata"]["name"] = "fake%d" % k
    n["metadata"]["annotations"] = {
        "twill.dev/public-key": base64.b64encode(os.urandom(32)).decode(),
        "twill.dev/wireguard-port": "51820"}
    n["spec"] = {"podCIDR": "10.244.%d.0/24" % (20 + k), "podCIDRs": ["10.244.%d.0/24" % (20 + k)]}
    n["status"]["addresses"] = [{"type": "ExternalIP", "address": "198.18.%d.%d" % (1 + k // 250, 1 + k % 250)}]
    doc["items"].append(n)
json.dump(doc, open(sys.argv[2], "w"))
PY
mid=no
for attempt in 1 2 3 4 5; do
  pid=$(lab agent n1 pid)
  lines0=$(wc -l < "$LABDIR/n1/twilld.log")
  cp "$WORK/topology.big" "$TOPO.tmp" && mv "$TOPO.tmp" "$TOPO"
  # the debounce is 100 ms; the kill lands after it, while peers and routes are applied
  sleep "0.$((10 + attempt * 3))"
  kill -KILL "$pid"
  tail -n +"$((lines0 + 1))" "$LABDIR/n1/twilld.log" > "$WORK/killed.log"
  n_peers=$(peers)
  if grep -q "changed: reconciling" "$WORK/killed.log" && ! grep -q "reconciled" "$WORK/killed.log"; then
    mid=yes
    echo "attempt $attempt: killed mid-reconcile ($n_peers of 201 peers applied, $(routes) of 201 routes)"
  else
    echo "attempt $attempt: the kill missed the reconcile ($n_peers peers applied)"
  fi
  lab agent n1 start > /dev/null || fail "the agent did not restart"
  wait_for 30 sh -c "[ \"\$(nsenter --net=/var/run/netns/$P-n1 wg show $WG peers | wc -l)\" -eq 201 ] && [ \"\$(ip -n $P-n1 -4 route show dev $WG | grep -c /24)\" -eq 201 ]" > /dev/null ||
    fail "the restarted agent did not converge on 201 peers and routes: $(peers) peers, $(routes) routes"
  [ "$mid" = no ] || break
  cp "$WORK/topology.good" "$TOPO.tmp" && mv "$TOPO.tmp" "$TOPO"
  wait_for 20 sh -c "[ \"\$(nsenter --net=/var/run/netns/$P-n1 wg show $WG peers | wc -l)\" -eq 1 ]" > /dev/null || fail "did not converge back to 1 peer"
done
[ "$mid" = yes ] || fail "no kill landed in the middle of a reconcile in 5 attempts"
echo "restarted agent converged: $(peers) peers, $(routes) routes"
lab ctl n1 status > "$WORK/status3" 2>&1 || true
grep "last recovery:.*previous agent (pid $pid) ended without a clean exit" "$WORK/status3" ||
  { cat "$WORK/status3"; fail "twillctl status does not say that agent $pid was killed"; }
pod_ping || fail "pods lost connectivity after the restart"
cp "$WORK/topology.good" "$TOPO.tmp" && mv "$TOPO.tmp" "$TOPO"
wait_for 20 sh -c "[ \"\$(nsenter --net=/var/run/netns/$P-n1 wg show $WG peers | wc -l)\" -eq 1 ] && [ \"\$(ip -n $P-n1 -4 route show dev $WG | grep -c /24)\" -eq 1 ]" > /dev/null ||
  fail "200 nodes left the topology but n1 keeps $(peers) peers and $(routes) routes"
[ "$(device_facts)" = "$before" ] || fail "n1 did not return to its first state: $(device_facts)"
wait_for 10 pod_ping > /dev/null || fail "pods cannot talk at the end"
echo "back to the 2-node state: $(device_facts); pods talk"
# a clean stop (SIGTERM) is not taken for a crash by the next agent
lab agent n1 restart > /dev/null || fail "the agent did not restart"
lab ctl n1 status > "$WORK/status4" 2>&1 || true
! grep -q "ended without a clean exit" "$WORK/status4" ||
  { cat "$WORK/status4"; fail "a SIGTERM'd agent was reported as killed"; }
echo "a clean restart reports no recovery"
echo "PASS"
