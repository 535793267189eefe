#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SIGKILL of the plugin at moments spread over ADD: whatever it left, a retried ADD
# succeeds, and DEL or GC removes every address and every host veth. The kill moments
# home in on the part of ADD after the allocation (too early: later next time; ADD
# finished: earlier), so kills do land inside ADD; the test fails if none does.
set -euo pipefail
CN_TEST=kill
. "$(dirname "$0")/cni-lib.sh"
command -v timeout >/dev/null || cn_skip "timeout missing"
MAX=40      # attempts at most
WANT=6      # kills that land after the allocation, before stopping early
conf=$(cn_conf 1.1.0)
echo "$conf" > "$CN_STATE/conf.json"
killed=0 mid=0

# how long a whole ADD takes here, launched the same way (median of 3): kills spread over it
for p in 1 2 3; do
  cn_pod_add "probe$p"
  t0=$(date +%s%N)
  nsenter --net="/var/run/netns/$CN_HOST" timeout --foreground -s KILL 5 env -i CNI_COMMAND=ADD \
    CNI_CONTAINERID="probe$p-$$" CNI_NETNS="/var/run/netns/$(cn_pod "probe$p")" CNI_IFNAME=eth0 \
    "$TWILL" < "$CN_STATE/conf.json" >/dev/null 2>>"$CN_STATE/stderr.log" || cn_fail "probe ADD failed"
  echo $(( ($(date +%s%N) - t0) / 1000 ))
  echo "$conf" | cn_run DEL "probe$p-$$" "$(cn_pod "probe$p")" eth0 || cn_fail "probe DEL failed"
done > "$CN_STATE/probes"
T=$(sort -n "$CN_STATE/probes" | sed -n 2p)
echo "a full ADD takes about ${T} us here"

N=0
lo=$((T / 5)) hi=$((T * 11 / 10))   # kill window in us: 20% to 110% of a full ADD
for i in $(seq 1 $MAX); do
  [ "$mid" -ge "$WANT" ] && [ "$i" -gt 12 ] && break
  N=$i
  cn_pod_add "$i"
  # a random moment in the window (the start of an ADD is exec and loading)
  us=$(( lo + RANDOM % (hi - lo + 1) ))
  d=$(awk -v us=$us 'BEGIN { printf "%.6f", us / 1e6 }')
  ( nsenter --net="/var/run/netns/$CN_HOST" timeout --foreground -s KILL "$d" env -i \
      CNI_COMMAND=ADD CNI_CONTAINERID="kill$i-$$" CNI_NETNS="/var/run/netns/$(cn_pod "$i")" \
      CNI_IFNAME=eth0 "$TWILL" < "$CN_STATE/conf.json" >/dev/null 2>>"$CN_STATE/stderr.log" \
      && echo 0 > "$CN_STATE/rc" || echo $? > "$CN_STATE/rc" ) 2>/dev/null
  rc=$(cat "$CN_STATE/rc")
  alloc=no veth=no
  grep -rq "kill$i-$$" "$CN_STATE/ipam" 2>/dev/null && alloc=yes
  ip -n "$CN_HOST" link show "$(cn_hostveth "kill$i-$$" eth0)" >/dev/null 2>&1 && veth=yes
  if [ "$rc" -eq 137 ]; then
    killed=$((killed + 1))
    if [ "$alloc" = no ] && [ "$veth" = no ]; then
      lo=$(( lo + (us - lo) / 2 ))   # killed before allocating: a bit later next time
    else
      mid=$((mid + 1))
    fi
  elif [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
    hi=$(( hi - (hi - us) / 2 ))     # ADD finished first: a bit earlier
  fi
  # timing here is noisy: the window never shrinks below a tenth of an ADD
  [ $((hi - lo)) -ge $((T / 10)) ] || { lo=$(( (lo + hi - T / 10) / 2 )); hi=$((lo + T / 10)); }
  echo "ADD $i, kill after ${d}s: exit $rc, left allocation=$alloc veth=$veth"
  case $((i % 3)) in
    0) # the runtime retries ADD: it must succeed and give a working pod
       out=$(echo "$conf" | cn_run ADD "kill$i-$$" "$(cn_pod "$i")" eth0) || cn_fail "retried ADD $i failed: $out"
       a=$(echo "$out" | jq -er '.ips[0].address')
       cn_host_ping "${a%/32}" || cn_fail "retried pod $i unreachable"
       echo "$conf" | cn_run DEL "kill$i-$$" "$(cn_pod "$i")" eth0 || cn_fail "DEL $i failed" ;;
    1) echo "$conf" | cn_run DEL "kill$i-$$" "$(cn_pod "$i")" eth0 || cn_fail "DEL $i failed" ;;
    2) : ;;   # left to GC
  esac
done
echo "$killed of $N ADDs killed, $mid of them after allocating"
cn_conf 1.1.0 '"cni.dev/valid-attachments":[]' | cn_run GC "" "" "" || cn_fail "GC failed"

left=$(ip -n "$CN_HOST" -o link show type veth | wc -l)
[ "$left" -eq 0 ] || cn_fail "$left host veths leaked: $(ip -n "$CN_HOST" -o link show type veth)"
grep -rq "kill[0-9]*-$$" "$CN_STATE/ipam" && cn_fail "leaked allocations: $(ls -R "$CN_STATE/ipam")"
for i in $(seq 1 $N); do
  [ -z "$(ip -n "$(cn_pod "$i")" -o link show | grep -v ' lo:')" ] || cn_fail "pod $i kept an interface"
done
# the store is still sound: a fresh ADD works
cn_pod_add 99
out=$(echo "$conf" | cn_run ADD "after-$$" "$(cn_pod 99)" eth0) || cn_fail "ADD after the kills failed: $out $(tail -3 "$CN_STATE/stderr.log")"
[ "$mid" -gt 0 ] || cn_fail "no kill landed inside an ADD in $N tries (window ${lo}-${hi} us): nothing proven"
echo "PASS"
