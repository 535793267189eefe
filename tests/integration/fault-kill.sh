#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kill test (issue 7): FL_KILL_OPS (default 1000) CNI operations against the real
# plugin, 8 at a time, with SIGKILL at random moments into a share of them. A killed
# ADD is either torn down by DEL (as a runtime does) or left for GC; a killed DEL is
# retried or left for GC. While it runs, a sampler checks that no address is on two pod
# interfaces at once. Then GC with the attachments that are really alive, and:
#   - every live pod holds exactly the address its ADD returned, no address twice;
#   - the store holds exactly the live attachments (nothing leaked);
#   - the host holds exactly the live pods' veths (no orphan), the pods nothing else.
set -euo pipefail
FL_TEST=kill
. "$(dirname "$0")/fault-lib.sh"

OPS=${FL_KILL_OPS:-1000}
WORKERS=8
SLOTS=3                     # pod namespaces per worker, reused all along
KILL_PCT=40                 # share of operations that get a SIGKILL timer
per_worker=$(( (OPS + WORKERS - 1) / WORKERS ))

fl_host_setup
# With the BPF dataplane pinned the plugin also registers every pod in the endpoint map:
# that map must end up exactly as clean as the store.
DP=$TWILL_BUILD_DIR/tests/integration/twill-dp-helper
PIN=/sys/fs/bpf/$FL_TAG           # the bpfPinDir fl_conf names
bpf=no
if [ -x "$DP" ] && nsenter --net="/var/run/netns/$FL_HOST" "$DP" load "$PIN" >/dev/null 2>&1; then
  bpf=yes
  FL_EXTRA_CLEANUP='"$DP" unpin "$PIN" >/dev/null 2>&1; rm -rf "$PIN"'
fi
echo "BPF dataplane pinned for the plugin: $bpf"
conf=$(fl_conf 1.1.0)
echo "$conf" > "$FL_STATE/conf.json"
mkdir -p "$FL_STATE/run"
for w in $(seq 1 $WORKERS); do
  for s in $(seq 1 $SLOTS); do
    ip netns add "$(fl_pod "$w-$s")"
  done
done

# How long one whole ADD and DEL take, launched exactly as the workers launch them: the
# kill moments spread over that span (x2 for the 8-way contention on this machine).
t0=$(date +%s%N)
echo "$conf" | fl_run ADD "probe$$" "$(fl_pod 1-1)" probe >/dev/null || fl_fail "probe ADD failed"
echo "$conf" | fl_run DEL "probe$$" "$(fl_pod 1-1)" probe >/dev/null || fl_fail "probe DEL failed"
T_US=$(( ($(date +%s%N) - t0) / 1000 ))
echo "one ADD + DEL takes ${T_US} us here; kill moments are spread over 0..$((T_US * 2)) us"

# run_op W VERB ID IFNAME SLOT KILL: prints the exit code; stdout of the plugin in $out_file
run_op() {
  local verb=$1 id=$2 ifn=$3 slot=$4 kill=$5 d=1000 rc=0
  if [ "$kill" = yes ]; then
    d=$(awk -v r=$RANDOM -v t=$T_US 'BEGIN { printf "%.6f", t * 2 * (r % 1000) / 1000 / 1e6 }')
  fi
  timeout -s KILL "$d" nsenter --net="/var/run/netns/$FL_HOST" env -i PATH="$PATH" \
    CNI_COMMAND="$verb" CNI_CONTAINERID="$id" CNI_NETNS="/var/run/netns/$(fl_pod "$slot")" \
    CNI_IFNAME="$ifn" CNI_PATH="$(dirname "$TWILL")" "$TWILL" \
    < "$FL_STATE/conf.json" > "$out_file" 2>>"$FL_STATE/stderr.log" || rc=$?
  echo "$rc"
}

# One worker: a runtime that creates and deletes pods in its slots. Log lines:
#   OP verb id ifname slot kill rc   every plugin execution (kill: a SIGKILL timer was armed)
#   LIVE id ifname slot addr      at the end, what the runtime believes is running
worker() {
  local w=$1 log=$FL_STATE/run/w$1.log op s k rc id ifn addr
  local -a live_id live_ifn live_addr
  out_file=$FL_STATE/run/w$w.out
  RANDOM=$((w * 7919 + $$))
  for op in $(seq 1 "$per_worker"); do
    s=$((RANDOM % SLOTS + 1))
    k=no; [ $((RANDOM % 100)) -lt $KILL_PCT ] && k=yes
    if [ -z "${live_id[$s]:-}" ]; then
      id="k$w-$op-$$" ifn="e$op"
      rc=$(run_op ADD "$id" "$ifn" "$w-$s" $k)
      echo "OP ADD $id $ifn $w-$s $k $rc" >> "$log"
      if [ "$rc" -eq 0 ]; then
        addr=$(jq -er '.ips[0].address' "$out_file") || { echo "BAD ADD output: $(cat "$out_file")" >> "$log"; continue; }
        live_id[$s]=$id live_ifn[$s]=$ifn live_addr[$s]=${addr%/32}
      elif [ "$rc" -eq 137 ] && [ $((RANDOM % 2)) -eq 0 ]; then
        # the runtime saw the ADD fail: it tears the pod down
        rc=$(run_op DEL "$id" "$ifn" "$w-$s" no)
        echo "OP DEL $id $ifn $w-$s no $rc" >> "$log"
      elif [ "$rc" -ne 137 ]; then
        echo "ERROR ADD $id $ifn rc=$rc $(cat "$out_file")" >> "$log"
      fi
    else
      id=${live_id[$s]} ifn=${live_ifn[$s]}
      rc=$(run_op DEL "$id" "$ifn" "$w-$s" $k)
      echo "OP DEL $id $ifn $w-$s $k $rc" >> "$log"
      live_id[$s]=""
      if [ "$rc" -eq 137 ] && [ $((RANDOM % 2)) -eq 0 ]; then
        rc=$(run_op DEL "$id" "$ifn" "$w-$s" no)
        echo "OP DEL $id $ifn $w-$s no $rc" >> "$log"
      elif [ "$rc" -ne 0 ] && [ "$rc" -ne 137 ]; then
        echo "ERROR DEL $id $ifn rc=$rc $(cat "$out_file")" >> "$log"
      fi
    fi
  done
  for s in $(seq 1 $SLOTS); do
    [ -z "${live_id[$s]:-}" ] || echo "LIVE ${live_id[$s]} ${live_ifn[$s]} $w-$s ${live_addr[$s]}" >> "$log"
  done
}

# pod_addrs: "slot ifname address" of every pod interface in every slot namespace
pod_addrs() {
  local w s
  for w in $(seq 1 $WORKERS); do
    for s in $(seq 1 $SLOTS); do
      ip -n "$(fl_pod "$w-$s")" -o -4 addr show 2>/dev/null | awk -v slot="$w-$s" '$2 != "lo" { split($4, a, "/"); print slot, $2, a[1] }'
    done
  done
}

# The sampler: while the workers run, no address may sit on two pod interfaces. A DEL
# removes the veth before it frees the address, so even a snapshot spread over time
# cannot see a freed-and-reused address twice unless it really is twice.
sampler() {
  local n=0 checked=0 dup
  while [ ! -e "$FL_STATE/run/done" ]; do
    pod_addrs > "$FL_STATE/run/sample"
    checked=$((checked + $(wc -l < "$FL_STATE/run/sample")))
    dup=$(awk '{print $3}' "$FL_STATE/run/sample" | sort | uniq -d)
    if [ -n "$dup" ]; then
      echo "DUPLICATE $dup"; grep -F "$dup" "$FL_STATE/run/sample"
    fi
    n=$((n + 1))
  done > "$FL_STATE/run/sampler.log"
  echo "SAMPLES $n $checked" >> "$FL_STATE/run/sampler.log"
}

fl_log "$((per_worker * WORKERS)) operations by $WORKERS workers, ${KILL_PCT}% with a SIGKILL timer"
start=$SECONDS
sampler & sampler_pid=$!
pids=()
for w in $(seq 1 $WORKERS); do
  worker "$w" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
touch "$FL_STATE/run/done"
wait "$sampler_pid"
run_s=$((SECONDS - start))

cat "$FL_STATE"/run/w*.log > "$FL_STATE/run/all.log"
ops=$(grep -c '^OP ' "$FL_STATE/run/all.log" || true)
adds=$(grep -c '^OP ADD ' "$FL_STATE/run/all.log" || true)
dels=$(grep -c '^OP DEL ' "$FL_STATE/run/all.log" || true)
armed=$(grep -c '^OP .* yes [0-9]*$' "$FL_STATE/run/all.log" || true)
kills=$(grep -c '^OP .* 137$' "$FL_STATE/run/all.log" || true)
kadds=$(grep -c '^OP ADD .* 137$' "$FL_STATE/run/all.log" || true)
kdels=$(grep -c '^OP DEL .* 137$' "$FL_STATE/run/all.log" || true)
grep '^LIVE ' "$FL_STATE/run/all.log" | awk '{print $2, $3, $4, $5}' | sort > "$FL_STATE/run/live"
live=$(wc -l < "$FL_STATE/run/live")
read -r _ samples sampled < <(grep '^SAMPLES' "$FL_STATE/run/sampler.log")
echo "ran $ops plugin executions ($adds ADD, $dels DEL) in ${run_s}s; $armed SIGKILL timers armed, $kills landed before the plugin finished ($kadds ADD, $kdels DEL); $live pods alive"
echo "sampler: $samples snapshots, $sampled pod addresses checked for duplicates during the run"

if grep -q '^ERROR\|^BAD' "$FL_STATE/run/all.log"; then
  grep '^ERROR\|^BAD' "$FL_STATE/run/all.log" | head -5
  fl_fail "$(grep -c '^ERROR\|^BAD' "$FL_STATE/run/all.log") operations failed without being killed"
fi
[ "$ops" -ge "$OPS" ] || fl_fail "only $ops operations ran"
[ "$kills" -gt 0 ] || fl_fail "no operation was killed: the kill timing is off"
if grep -q DUPLICATE "$FL_STATE/run/sampler.log"; then
  grep -A3 DUPLICATE "$FL_STATE/run/sampler.log" | head -10
  fl_fail "an address was on two pod interfaces at once during the run"
fi

fl_log "before GC: $(jq '.allocations | length' "$FL_STATE/ipam/$FL_NET/store.json") allocations, $(ip -n "$FL_HOST" -o link show type veth | wc -l) host veths, $live live pods"
valid=$(awk '{printf "%s{\"containerID\":\"%s\",\"ifname\":\"%s\"}", (NR > 1 ? "," : ""), $1, $2}' "$FL_STATE/run/live")
fl_conf 1.1.0 "\"cni.dev/valid-attachments\":[$valid]" > "$FL_STATE/gc.json"
# GC itself is killed too, at random moments: the next one must finish the job
gc_kills=0
for i in 1 2 3 4; do
  d=$(awk -v r=$RANDOM -v t=$T_US 'BEGIN { printf "%.6f", t * (r % 1000) / 1000 / 1e6 }')
  rc=$(timeout -s KILL "$d" nsenter --net="/var/run/netns/$FL_HOST" env -i PATH="$PATH" CNI_COMMAND=GC \
    "$TWILL" < "$FL_STATE/gc.json" > /dev/null 2>>"$FL_STATE/stderr.log"; echo $?)
  [ "$rc" -ne 137 ] || gc_kills=$((gc_kills + 1))
done
echo "4 GCs with a SIGKILL timer: $gc_kills killed before they finished"
gc_released_before=0
fl_run GC "" "" "" < "$FL_STATE/gc.json" || fl_fail "GC failed"
released=$(( $(grep -c 'GC: released' "$FL_STATE/twill.log" || true) - gc_released_before ))
veths_removed=$(grep -c 'GC: removing host veth' "$FL_STATE/twill.log" || true)
echo "GCs released $released leaked allocations and removed $veths_removed orphan host veths"

# 1. the pods: exactly the live set, each with the address its ADD returned, none twice
pod_addrs | sort > "$FL_STATE/run/pods"
awk '{print $3, $2, $4}' "$FL_STATE/run/live" | sort > "$FL_STATE/run/want-pods"
if ! diff -u "$FL_STATE/run/want-pods" "$FL_STATE/run/pods"; then
  fl_fail "pod interfaces after GC differ from the live pods (- expected, + found)"
fi
dup=$(awk '{print $3}' "$FL_STATE/run/pods" | sort | uniq -d)
[ -z "$dup" ] || fl_fail "addresses on two pods: $dup"
# 2. the store: exactly the live attachments
jq -r '.allocations[] | "\(.container_id) \(.ifname) \(.address)"' "$FL_STATE/ipam/$FL_NET/store.json" | sort > "$FL_STATE/run/store"
awk '{print $1, $2, $4}' "$FL_STATE/run/live" | sort > "$FL_STATE/run/want-store"
if ! diff -u "$FL_STATE/run/want-store" "$FL_STATE/run/store"; then
  fl_fail "store allocations after GC differ from the live pods (- expected, + found)"
fi
# 3. the host: exactly the live pods' veths
ip -n "$FL_HOST" -o link show type veth | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | sort > "$FL_STATE/run/veths"
awk '{print $1, $2}' "$FL_STATE/run/live" | fl_hostveths | sort > "$FL_STATE/run/want-veths"
if ! diff -u "$FL_STATE/run/want-veths" "$FL_STATE/run/veths"; then
  fl_fail "host veths after GC differ from the live pods' (- expected, + found)"
fi
# 4. the BPF endpoint map: exactly the live pods, each on its own host veth
if [ "$bpf" = yes ]; then
  nsenter --net="/var/run/netns/$FL_HOST" "$DP" endpoints "$PIN" | awk '{print $1, $3}' | sort > "$FL_STATE/run/endpoints"
  while read -r id ifn _ a; do
    v=$(echo "$id $ifn" | fl_hostveths)
    echo "$a $(ip -n "$FL_HOST" -o link show "$v" | cut -d: -f1)"
  done < "$FL_STATE/run/live" | sort > "$FL_STATE/run/want-endpoints"
  if ! diff -u "$FL_STATE/run/want-endpoints" "$FL_STATE/run/endpoints"; then
    fl_fail "BPF endpoint map after GC differs from the live pods (- expected, + found)"
  fi
  echo "BPF endpoint map: $(wc -l < "$FL_STATE/run/endpoints") entries, exactly the live pods on their host veths"
fi
# 5. the live pods work: each answers the host's ping (bounded: one try each)
unreach=0
while read -r _ _ _ a; do
  ip netns exec "$FL_HOST" ping -c1 -W1 -q "$a" >/dev/null 2>&1 || unreach=$((unreach + 1))
done < "$FL_STATE/run/live"
[ "$unreach" -eq 0 ] || fl_fail "$unreach of $live live pods do not answer ping"
echo "checked $live live pods: address in the pod == ADD result == store, all distinct, all answer ping; $(wc -l < "$FL_STATE/run/veths") host veths, all owned"
echo "PASS"
