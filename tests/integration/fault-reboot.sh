#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Reboot (issue 7): pods are made by twill and, beside them, by Debian's ptp + host-local.
# Then what a node reboot does: every pod namespace and every host veth is gone, the
# state folders on disk are kept. host-local keeps every address reserved for pods that
# no longer exist (the leak this test shows); twill gives them all back through CNI GC
# with an empty cni.dev/valid-attachments, as a runtime sends after a reboot, and the
# whole /24 is usable again.
set -euo pipefail
FL_TEST=boot
. "$(dirname "$0")/fault-lib.sh"
N=${FL_REBOOT_PODS:-16}
CNI_BIN=/usr/lib/cni

fl_host_setup
conf=$(fl_conf 1.1.0)
hl_net="$FL_TAG-hl"
hl_prefix="10.$((150 + ($$ + 1) % 100)).$(( ($$ / 100 + 1) % 250 ))"
hl_conf=$(printf '{"cniVersion":"1.0.0","name":"%s","type":"ptp","ipam":{"type":"host-local","subnet":"%s.0/24","dataDir":"%s/host-local"}}' \
  "$hl_net" "$hl_prefix" "$FL_STATE")
[ -x "$CNI_BIN/ptp" ] && [ -x "$CNI_BIN/host-local" ] ||
  fl_fail "Debian's ptp and host-local are missing from $CNI_BIN (containernetworking-plugins, scripts/install-deps)"

hl_run() {   # hl_run VERB ID NETNS-NAME IFNAME
  echo "$hl_conf" | nsenter --net="/var/run/netns/$FL_HOST" env -i PATH="$PATH" CNI_COMMAND="$1" \
    CNI_CONTAINERID="$2" CNI_NETNS="/var/run/netns/$3" CNI_IFNAME="$4" CNI_PATH="$CNI_BIN" \
    "$CNI_BIN/ptp" 2>>"$FL_STATE/stderr.log"
}
twill_allocs() { jq '.allocations | length' "$FL_STATE/ipam/$FL_NET/store.json"; }
hl_reserved() { find "$FL_STATE/host-local/$hl_net" -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l; }

fl_log "boot 1: $N pods with twill and $N with ptp + host-local"
for i in $(seq 1 "$N"); do
  ip netns add "$(fl_pod "$i")"
  echo "$conf" | fl_run ADD "pod$i-$$" "$(fl_pod "$i")" eth0 >/dev/null || fl_fail "twill ADD $i failed"
  hl_run ADD "pod$i-$$" "$(fl_pod "$i")" net1 >/dev/null || fl_fail "ptp ADD $i failed"
done
[ "$(twill_allocs)" -eq "$N" ] || fl_fail "twill holds $(twill_allocs) allocations, expected $N"
echo "twill: $(twill_allocs) addresses allocated; host veths: $(ip -n "$FL_HOST" -o link show type veth | wc -l)"

fl_log "reboot: every pod namespace and host veth disappears, $FL_STATE stays"
for i in $(seq 1 "$N"); do ip netns del "$(fl_pod "$i")"; done
ip netns del "$FL_HOST"
fl_host_setup
[ "$(ip -n "$FL_HOST" -o link show type veth | wc -l)" -eq 0 ] || fl_fail "veths survived the reboot"

fl_log "boot 2"
leaked=$(hl_reserved)
echo "host-local: $leaked of $N addresses still reserved in $FL_STATE/host-local/$hl_net for pods that no longer exist: LEAKED (ptp/host-local 1.1.1 have no GC)"
[ "$leaked" -eq "$N" ] || fl_fail "expected host-local to keep its $N reservations, it kept $leaked (the contrast is wrong)"
before=$(twill_allocs)
echo "twill: $before addresses held before GC"
[ "$before" -eq "$N" ] || fl_fail "twill lost allocations across the reboot before any GC ($before of $N)"
fl_conf 1.1.0 '"cni.dev/valid-attachments":[]' | fl_run GC "" "" "" || fl_fail "GC failed"
after=$(twill_allocs)
released=$(grep -c 'GC: released' "$FL_STATE/twill.log" || true)
echo "twill: GC with an empty cni.dev/valid-attachments released $released; $after addresses held: nothing leaked"
[ "$after" -eq 0 ] || fl_fail "$after addresses leaked after GC: $(jq -c .allocations "$FL_STATE/ipam/$FL_NET/store.json")"
[ "$released" -eq "$N" ] || fl_fail "GC logged $released releases, expected $N"


fl_log "the /24 serves new pods"
for i in $(seq 1 "$N"); do
  ip netns add "$(fl_pod "b$i")"
  out=$(echo "$conf" | fl_run ADD "boot2-$i-$$" "$(fl_pod "b$i")" eth0) || fl_fail "ADD after reboot failed: $out"
done
[ "$(twill_allocs)" -eq "$N" ] || fl_fail "after $N new ADDs the store holds $(twill_allocs)"
dups=$(jq -r '.allocations[].address' "$FL_STATE/ipam/$FL_NET/store.json" | sort | uniq -d)
[ -z "$dups" ] || fl_fail "duplicate addresses: $dups"
echo "$N new pods got $N distinct addresses; twill STATUS: $(fl_conf 1.1.0 | fl_run STATUS "" "" "" >/dev/null && echo ready || echo 'NOT ready')"
for i in $(seq 1 "$N"); do
  echo "$conf" | fl_run DEL "boot2-$i-$$" "$(fl_pod "b$i")" eth0 >/dev/null || fl_fail "DEL failed"
done
[ "$(twill_allocs)" -eq 0 ] || fl_fail "DEL left $(twill_allocs) allocations"

# --- a runtime that never sends GC: the agent's boot-time check --------------------------
TWILLD=$TWILL_BUILD_DIR/tools/twilld
[ -x "$TWILLD" ] || fl_fail "twilld is not built: the boot-time check cannot run"
command -v wireguard-go >/dev/null || fl_fail "wireguard-go is missing (scripts/install-deps installs it)"
[ -e /dev/net/tun ] || fl_skip "no /dev/net/tun for wireguard-go: everything but the agent's boot-time check passed"
WG=flb$$-wg
agent_args=(--node n1 --state-dir "$FL_STATE" --cni-conf-dir "$FL_STATE/net.d" --bpf-pin-dir "/sys/fs/bpf/fl-boot-$$"
  --wg-device "$WG" --wg-backend userspace --no-bpf --cluster-cidr 10.0.0.0/8 --log-file "$FL_STATE/twilld.log")
FL_EXTRA_CLEANUP='nsenter --net="/var/run/netns/$FL_HOST" "$TWILLD" cleanup "${agent_args[@]}" >/dev/null 2>&1'
fl_log "boot 3: $N pods and one that survives; then a reboot that only the agent sees"
for i in $(seq 1 "$N") keep; do
  ip netns add "$(fl_pod "c$i")"
  echo "$conf" | fl_run ADD "boot3-$i-$$" "$(fl_pod "c$i")" eth0 >/dev/null || fl_fail "ADD $i (boot 3) failed"
done
for i in $(seq 1 "$N"); do ip netns del "$(fl_pod "c$i")"; done
# This machine cannot reboot for a test: the store's allocation times are moved before
# this boot instead, exactly what a real reboot makes of them. The survivor is moved too:
# its host veth must keep it (a wall clock stepped forward after boot looks the same).
booted=$(( $(date +%s) - $(cut -d. -f1 /proc/uptime) ))
jq --arg t "$(date -u -d "@$((booted - 3600))" +%Y-%m-%dT%H:%M:%SZ)" '.allocations[].allocated_at = $t' \
  "$FL_STATE/ipam/$FL_NET/store.json" > "$FL_STATE/store.tmp"
cat "$FL_STATE/store.tmp" > "$FL_STATE/ipam/$FL_NET/store.json"
echo "twill: $(twill_allocs) addresses held, all allocated before this boot; no GC will come"
pub=$("$TWILLD" --show-public-key --state-dir "$FL_STATE" 2>/dev/null) || fl_fail "twilld cannot make its key"
jq -n --arg k "$pub" --arg cidr "$FL_CIDR_PREFIX.0/24" '{kind: "NodeList", items: [{metadata: {name: "n1",
  annotations: {"twill.dev/public-key": $k}}, spec: {podCIDR: $cidr},
  status: {addresses: [{type: "ExternalIP", address: "198.18.0.1"}]}}]}' > "$FL_STATE/topology.json"
nsenter --net="/var/run/netns/$FL_HOST" "$TWILLD" --once --topology "$FL_STATE/topology.json" "${agent_args[@]}" \
  > "$FL_STATE/twilld.out" 2>&1 || { cat "$FL_STATE/twilld.out"; fl_fail "twilld --once failed"; }
grep 'allocated before this boot' "$FL_STATE/twilld.log" | head -n 2 | sed 's/^.*info: /twilld: /'
left=$(jq -r '.allocations[].container_id' "$FL_STATE/ipam/$FL_NET/store.json")
echo "twill: after the agent's start $(twill_allocs) address held: ${left:-none}"
[ "$left" = "boot3-keep-$$" ] || fl_fail "the boot-time check kept '$left', expected only the survivor boot3-keep-$$"
echo "$conf" | fl_run DEL "boot3-keep-$$" "$(fl_pod ckeep)" eth0 >/dev/null || fl_fail "DEL of the survivor failed"
[ "$(twill_allocs)" -eq 0 ] || fl_fail "$(twill_allocs) allocations leaked"
echo "PASS"
