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
have_hl=no
[ -x "$CNI_BIN/ptp" ] && [ -x "$CNI_BIN/host-local" ] && have_hl=yes

hl_run() {   # hl_run VERB ID NETNS-NAME IFNAME
  echo "$hl_conf" | nsenter --net="/var/run/netns/$FL_HOST" env -i PATH="$PATH" CNI_COMMAND="$1" \
    CNI_CONTAINERID="$2" CNI_NETNS="/var/run/netns/$3" CNI_IFNAME="$4" CNI_PATH="$CNI_BIN" \
    "$CNI_BIN/ptp" 2>>"$FL_STATE/stderr.log"
}
twill_allocs() { jq '.allocations | length' "$FL_STATE/ipam/$FL_NET/store.json"; }
hl_reserved() { find "$FL_STATE/host-local/$hl_net" -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l; }

fl_log "boot 1: $N pods with twill${have_hl/yes/ and $N with ptp + host-local}"
for i in $(seq 1 "$N"); do
  ip netns add "$(fl_pod "$i")"
  echo "$conf" | fl_run ADD "pod$i-$$" "$(fl_pod "$i")" eth0 >/dev/null || fl_fail "twill ADD $i failed"
  if [ "$have_hl" = yes ]; then
    hl_run ADD "pod$i-$$" "$(fl_pod "$i")" net1 >/dev/null || fl_fail "ptp ADD $i failed"
  fi
done
[ "$(twill_allocs)" -eq "$N" ] || fl_fail "twill holds $(twill_allocs) allocations, expected $N"
echo "twill: $(twill_allocs) addresses allocated; host veths: $(ip -n "$FL_HOST" -o link show type veth | wc -l)"

fl_log "reboot: every pod namespace and host veth disappears, $FL_STATE stays"
for i in $(seq 1 "$N"); do ip netns del "$(fl_pod "$i")"; done
ip netns del "$FL_HOST"
fl_host_setup
[ "$(ip -n "$FL_HOST" -o link show type veth | wc -l)" -eq 0 ] || fl_fail "veths survived the reboot"

fl_log "boot 2"
if [ "$have_hl" = yes ]; then
  leaked=$(hl_reserved)
  echo "host-local: $leaked of $N addresses still reserved in $FL_STATE/host-local/$hl_net for pods that no longer exist: LEAKED (ptp/host-local 1.1.1 have no GC)"
  [ "$leaked" -eq "$N" ] || fl_fail "expected host-local to keep its $N reservations, it kept $leaked (the contrast is wrong)"
else
  echo "host-local: not installed, no contrast shown"
fi
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
echo "PASS"
