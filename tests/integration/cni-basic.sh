#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ADD, CHECK, DEL, GC, STATUS and VERSION by direct exec with the CNI environment, in
# every supported spec version; the pod's address, routes and neighbour are read back
# with `ip -n`, the host pings the pod, and errors carry the spec's codes.
set -euo pipefail
CN_TEST=basic
. "$(dirname "$0")/cni-lib.sh"
command -v jq >/dev/null || cn_skip "jq missing"

n=0
for v in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
  n=$((n + 1))
  id="basic-$v-$$"
  pod=$(cn_pod "$n"); cn_pod_add "$n"
  cn_log "ADD in $v"
  out=$(cn_conf "$v" | cn_run ADD "$id" "$pod" eth0) || cn_fail "ADD $v failed: $out"
  [ "$(echo "$out" | cn_jq .cniVersion)" = "$v" ] || cn_fail "result not in $v: $out"
  addr=$(echo "$out" | cn_jq '.ips[0].address')
  ip=${addr%/32}
  [ "$addr" = "$ip/32" ] || cn_fail "address $addr is not a /32"
  case $v in
    0.*) [ "$(echo "$out" | cn_jq '.ips[0].version')" = 4 ] || cn_fail "$v ips lack version: $out" ;;
    *) echo "$out" | jq -e '.ips[0] | has("version") | not' >/dev/null || cn_fail "$v ips carry version" ;;
  esac
  [ "$(echo "$out" | cn_jq '.ips[0].gateway')" = 169.254.1.1 ] || cn_fail "gateway: $out"
  [ "$(echo "$out" | cn_jq '.ips[0].interface')" = 1 ] || cn_fail "interface index: $out"
  [ "$(echo "$out" | cn_jq '.interfaces[1].sandbox')" = "/var/run/netns/$pod" ] || cn_fail "sandbox: $out"
  [ "$(echo "$out" | cn_jq '.routes[0].dst')" = 0.0.0.0/0 ] || cn_fail "routes: $out"
  [ "$(echo "$out" | cn_jq '.dns.nameservers[0]')" = 10.96.0.10 ] || cn_fail "dns: $out"
  if [ "$v" = 1.1.0 ]; then
    [ "$(echo "$out" | cn_jq '.interfaces[1].mtu')" = 1440 ] || cn_fail "1.1.0 mtu: $out"
    [ "$(echo "$out" | cn_jq '.interfaces[0].mtu')" = 1440 ] || cn_fail "1.1.0 host mtu: $out"
  else   # the field came with 1.1.0
    echo "$out" | jq -e '.interfaces | all(has("mtu") | not)' >/dev/null || cn_fail "$v carries mtu: $out"
  fi
  hv=$(cn_hostveth "$id" eth0)
  [ "$(echo "$out" | cn_jq '.interfaces[0].name')" = "$hv" ] || cn_fail "host veth name: $out"
  hmac=$(echo "$out" | cn_jq '.interfaces[0].mac')
  pmac=$(echo "$out" | cn_jq '.interfaces[1].mac')

  # what the pod really has
  ip -n "$pod" -o -4 addr show dev eth0 | cn_grep "inet $ip/32" || cn_fail "pod lacks $ip/32"
  ip -n "$pod" link show eth0 | cn_grep "mtu 1440" || cn_fail "pod mtu is not 1440"
  ip -n "$pod" link show eth0 | cn_grep -i "$pmac" || cn_fail "pod mac is not $pmac"
  ip -n "$pod" route show | cn_grep "^default via 169.254.1.1 dev eth0" || cn_fail "pod default route: $(ip -n "$pod" route)"
  ip -n "$pod" route show | cn_grep "^169.254.1.1 dev eth0 .*scope link" || cn_fail "pod gateway route"
  ip -n "$pod" neigh show 169.254.1.1 dev eth0 | cn_grep -i "lladdr $hmac PERMANENT" || cn_fail "pod neighbour: $(ip -n "$pod" neigh)"
  # what the host has
  ip -n "$CN_HOST" link show "$hv" | cn_grep "state UP" || cn_fail "host veth $hv not up"
  ip -n "$CN_HOST" -o -4 addr show dev "$hv" | cn_grep inet && cn_fail "host veth has an IPv4 address"
  ip -n "$CN_HOST" route show "$ip/32" | cn_grep "dev $hv .*scope link" || cn_fail "host route to $ip"
  [ "$(ip netns exec "$CN_HOST" cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || cn_fail "forwarding off"
  [ "$(ip netns exec "$CN_HOST" cat /proc/sys/net/ipv4/conf/"$hv"/rp_filter)" = 1 ] || cn_fail "rp_filter"
  cn_host_ping "$ip" || cn_fail "host cannot ping pod $ip"

  cn_log "CHECK in $v"
  if [ "$v" != 0.3.0 ] && [ "$v" != 0.3.1 ]; then
    err=$(cn_conf "$v" "\"prevResult\":$out" | cn_run CHECK "$id" "$pod" eth0) || cn_fail "CHECK $v failed: $err"
  else
    err=$(cn_conf "$v" "\"prevResult\":$out" | cn_run CHECK "$id" "$pod" eth0) && cn_fail "CHECK allowed in $v"
    echo "$err" | jq -e '.code == 1' >/dev/null || cn_fail "CHECK in $v: $err"
  fi

  cn_log "DEL in $v (twice)"
  cn_conf "$v" | cn_run DEL "$id" "$pod" eth0 || cn_fail "DEL $v failed"
  ip -n "$CN_HOST" link show "$hv" >/dev/null 2>&1 && cn_fail "host veth $hv survived DEL"
  ip -n "$pod" link show eth0 >/dev/null 2>&1 && cn_fail "pod eth0 survived DEL"
  grep -q "$id" "$CN_STATE"/ipam/"$CN_NET"/* 2>/dev/null && cn_fail "address of $id not released"
  cn_conf "$v" | cn_run DEL "$id" "$pod" eth0 || cn_fail "second DEL $v failed"
done

cn_log "CHECK names what differs"
pod=$(cn_pod 10); cn_pod_add 10
out=$(cn_conf 1.1.0 | cn_run ADD chk-$$ "$pod" eth0) || cn_fail "ADD failed"
ip=$(echo "$out" | cn_jq '.ips[0].address'); ip=${ip%/32}
hv=$(echo "$out" | cn_jq '.interfaces[0].name')
hmac=$(echo "$out" | cn_jq '.interfaces[0].mac')
check() { cn_conf 1.1.0 "\"prevResult\":$out" | cn_run CHECK chk-$$ "$pod" eth0; }
# check_fails WHAT REGEX: CHECK must fail with code 102 and a message matching REGEX
check_fails() {
  local err
  err=$(check) && cn_fail "CHECK passed $1"
  echo "$err" | jq -e --arg re "$2" '.code == 102 and (.msg | test($re))' >/dev/null \
    || cn_fail "CHECK $1: $err (wanted code 102 and /$2/)"
  echo "   $1: $(echo "$err" | jq -r .msg)"
}
check || cn_fail "CHECK of a healthy pod failed"
ip -n "$CN_HOST" route del "$ip/32" dev "$hv"
check_fails "without the host route" "host route $ip/32 dev $hv is missing"
ip -n "$CN_HOST" route add "$ip/32" dev lo
check_fails "with the host route on lo" "host route $ip/32 goes to 'lo', not to host veth '$hv'"
ip -n "$CN_HOST" route replace "$ip/32" dev "$hv" scope link
check || cn_fail "CHECK failed with the host route back"
ip -n "$pod" route del 169.254.1.1 dev eth0
check_fails "without the gateway route" "gateway route 169.254.1.1 dev eth0 scope link is missing"
ip -n "$pod" route add 169.254.1.1 dev eth0 scope link
ip -n "$pod" neigh del 169.254.1.1 dev eth0
check_fails "without the gateway neighbour" "gateway neighbour 169.254.1.1 on 'eth0' is missing"
ip -n "$pod" neigh replace 169.254.1.1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent
check_fails "with a wrong gateway MAC" "has MAC 02:00:00:00:00:01, host veth '$hv' has $hmac"
ip -n "$pod" neigh replace 169.254.1.1 lladdr "$hmac" dev eth0 nud reachable
check_fails "with a learnt gateway neighbour" "gateway neighbour 169.254.1.1 on 'eth0' is not permanent"
ip -n "$pod" neigh replace 169.254.1.1 lladdr "$hmac" dev eth0 nud permanent
check || cn_fail "CHECK failed with the gateway restored"
ip -n "$pod" route del default
check_fails "without the default route" "0.0.0.0/0"
ip -n "$pod" addr flush dev eth0
check_fails "without the address" "lacks address"
err=$(cn_conf 1.1.0 | cn_run CHECK chk-$$ "$pod" eth0) && cn_fail "CHECK without prevResult passed"
echo "$err" | jq -e '.code == 7 and (.msg | test("prevResult"))' >/dev/null || cn_fail "CHECK error: $err"
err=$(cn_conf 1.1.0 "\"prevResult\":$out" | cn_run CHECK stranger-$$ "$pod" eth0) && cn_fail "CHECK of an unknown container passed"
echo "$err" | jq -e --arg id "stranger-$$" '.code == 3 and (.msg | contains($id))' >/dev/null \
  || cn_fail "CHECK of an unknown container: $err"

cn_log "DEL after the netns was deleted releases the address"
ip netns del "$pod"
cn_conf 1.1.0 | cn_run DEL chk-$$ "$pod" eth0 || cn_fail "DEL without netns failed"
grep -q "chk-$$" "$CN_STATE"/ipam/"$CN_NET"/* 2>/dev/null && cn_fail "address not released after netns deletion"
out=$(cn_conf 1.1.0 | cn_run DEL never-added-$$ "" eth0) || cn_fail "DEL of an unknown container failed: $out"

cn_log "DEL releases with no pod CIDR at hand and after a pod CIDR change"
net2="$CN_NET-del"
store2="$CN_STATE/ipam/$net2/store.json"
conf2() { cn_conf 1.1.0 | jq -c --arg n "$net2" '.name = $n'; }
for i in 30 31 32; do
  cn_pod_add $i
  conf2 | cn_run ADD "del$i-$$" "$(cn_pod $i)" eth0 >/dev/null || cn_fail "ADD del$i failed"
done
# no podCIDR or mtu in the config and no node.json: the store's own pod CIDR
conf2 | jq -c 'del(.podCIDR, .mtu)' | cn_run DEL "del30-$$" "$(cn_pod 30)" eth0 || cn_fail "DEL without podCIDR failed"
ip -n "$CN_HOST" link show "$(cn_hostveth "del30-$$" eth0)" >/dev/null 2>&1 && cn_fail "DEL without podCIDR left the veth"
grep -q "del30-$$" "$store2" && cn_fail "DEL without podCIDR left the allocation"
# the node's pod CIDR changed since the pod was added
conf2 | jq -c '.podCIDR = "10.255.254.0/24"' | cn_run DEL "del31-$$" "$(cn_pod 31)" eth0 \
  || cn_fail "DEL after a pod CIDR change failed"
ip -n "$CN_HOST" link show "$(cn_hostveth "del31-$$" eth0)" >/dev/null 2>&1 && cn_fail "DEL after a pod CIDR change left the veth"
grep -q "del31-$$" "$store2" && cn_fail "DEL after a pod CIDR change left the allocation"

cn_log "DEL with a corrupt store unwires the pod, then reports the store, untouched"
printf '{"version": 1, "pod_cidr": ' > "$store2"
sum=$(sha256sum < "$store2")
err=$(conf2 | cn_run DEL "del32-$$" "$(cn_pod 32)" eth0) && cn_fail "DEL passed with a corrupt store"
echo "$err" | jq -e '.code == 5 and (.msg | test("corrupt"))' >/dev/null || cn_fail "DEL error: $err"
ip -n "$CN_HOST" link show "$(cn_hostveth "del32-$$" eth0)" >/dev/null 2>&1 && cn_fail "DEL with a corrupt store left the veth"
ip -n "$(cn_pod 32)" link show eth0 >/dev/null 2>&1 && cn_fail "DEL with a corrupt store left the pod's eth0"
[ "$(sha256sum < "$store2")" = "$sum" ] || cn_fail "DEL rewrote the corrupt store"
rm -rf "$CN_STATE/ipam/$net2"

cn_log "a stopped process holding the IPAM lock: ADD gives up with code 11, naming the lock"
lock="$CN_STATE/ipam/$CN_NET/lock"
python3 -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); time.sleep(300)' "$lock" &
holder=$!
CN_EXTRA_CLEANUP='kill -KILL "$holder" 2>/dev/null || true'
for _ in $(seq 1 100); do flock -n "$lock" true || break; sleep 0.05; done
flock -n "$lock" true && cn_fail "the lock holder did not take the lock"
kill -STOP "$holder"
cn_pod_add 33
t0=$(date +%s%N)
err=$(cn_conf 1.1.0 | cn_run ADD "lock-$$" "$(cn_pod 33)" eth0) && cn_fail "ADD passed while the lock was held"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "$err" | jq -e --arg lock "$lock" '.code == 11 and (.msg | contains($lock))' >/dev/null \
  || cn_fail "ADD with the lock held: $err"
[ "$ms" -ge 9000 ] && [ "$ms" -lt 60000 ] || cn_fail "ADD gave up after $ms ms, not about 10 s"
echo "   gave up after $ms ms: $(echo "$err" | jq -r .msg)"
[ -z "$(ip -n "$(cn_pod 33)" -o link show | grep -v ' lo:')" ] || cn_fail "ADD that gave up left an interface"
kill -KILL "$holder"; wait "$holder" 2>/dev/null || true
out=$(cn_conf 1.1.0 | cn_run ADD "lock-$$" "$(cn_pod 33)" eth0) || cn_fail "ADD after the holder died failed: $out"
cn_conf 1.1.0 | cn_run DEL "lock-$$" "$(cn_pod 33)" eth0 || cn_fail "DEL lock-$$ failed"

cn_log "GC keeps valid attachments and removes the rest"
for i in 11 12 13; do
  cn_pod_add $i
  cn_conf 1.1.0 | cn_run ADD "gc$i-$$" "$(cn_pod $i)" eth0 >/dev/null || cn_fail "ADD gc$i"
done
cn_conf 1.1.0 "\"cni.dev/valid-attachments\":[{\"containerID\":\"gc12-$$\",\"ifname\":\"eth0\"}]" \
  | cn_run GC "" "" "" || cn_fail "GC failed"
for i in 11 13; do
  ip -n "$CN_HOST" link show "$(cn_hostveth "gc$i-$$" eth0)" >/dev/null 2>&1 && cn_fail "GC left the veth of gc$i"
  grep -q "gc$i-$$" "$CN_STATE"/ipam/"$CN_NET"/* 2>/dev/null && cn_fail "GC left the address of gc$i"
done
ip -n "$CN_HOST" link show "$(cn_hostveth "gc12-$$" eth0)" >/dev/null || cn_fail "GC removed a valid veth"
ip12=$(ip -n "$(cn_pod 12)" -o -4 addr show dev eth0 | awk '{print $4}')
cn_host_ping "${ip12%/32}" || cn_fail "valid pod unreachable after GC"
cn_conf 1.1.0 "\"cni.dev/attachments\":[]" | cn_run GC "" "" "" || cn_fail "GC with cni.dev/attachments failed"
ip -n "$CN_HOST" link show "$(cn_hostveth "gc12-$$" eth0)" >/dev/null 2>&1 && cn_fail "GC kept an invalid veth"
cn_log "GC removes an untagged veth only once it stayed untagged"
# A veth is untagged between an ADD's creating and tagging it: the in-flight one (tagged
# for another network a moment later) stays; one that stays untagged goes.
ip -n "$CN_HOST" link add tw00000000000aa type veth peer name gc-peer-a
ip -n "$CN_HOST" link add tw00000000000bb type veth peer name gc-peer-b
ip -n "$CN_HOST" link add tw00000000000cc type veth peer name gc-peer-c
ip -n "$CN_HOST" link set tw00000000000cc alias "something else"
t0=$(date +%s%N)
cn_conf 1.1.0 "\"cni.dev/valid-attachments\":[]" | cn_run GC "" "" "" &
gc_pid=$!
sleep 0.5
ip -n "$CN_HOST" link set tw00000000000bb alias "twill other-net eth0 in-flight"
wait "$gc_pid" || cn_fail "GC with untagged veths failed"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
ip -n "$CN_HOST" link show tw00000000000aa >/dev/null 2>&1 && cn_fail "GC left a veth untagged for ${ms} ms"
ip -n "$CN_HOST" link show tw00000000000bb >/dev/null 2>&1 || cn_fail "GC removed a veth an ADD in flight tagged"
ip -n "$CN_HOST" link show tw00000000000cc >/dev/null 2>&1 || cn_fail "GC removed a veth tagged by someone else"
[ "$ms" -ge 3000 ] || cn_fail "GC removed an untagged veth after only ${ms} ms"
ip -n "$CN_HOST" link del tw00000000000bb; ip -n "$CN_HOST" link del tw00000000000cc
err=$(cn_conf 1.1.0 | cn_run GC "" "" "") && cn_fail "GC without attachments passed"
echo "$err" | jq -e '.code == 7 and (.msg | test("valid-attachments"))' >/dev/null || cn_fail "GC error: $err"

cn_log "STATUS, VERSION and errors"
cn_conf 1.1.0 | cn_run STATUS "" "" "" || cn_fail "STATUS failed on a healthy network"
err=$(printf '{"cniVersion":"1.1.0","name":"%s","type":"twill","stateDir":"%s"}' "$CN_NET" "$CN_STATE/none" \
  | cn_run STATUS "" "" "") && cn_fail "STATUS passed without pod CIDR"
echo "$err" | jq -e '.code == 50 and (.msg | test("podCIDR"))' >/dev/null || cn_fail "STATUS error: $err"
err=$(echo '{"cniVersion":"1.1.0","name":"x"' | cn_run STATUS "" "" "") && cn_fail "STATUS passed on bad JSON"
echo "$err" | jq -e '.code == 50' >/dev/null || cn_fail "STATUS error: $err"
out=$(echo '{"cniVersion":"1.0.0"}' | cn_run VERSION "" "" "") || cn_fail "VERSION failed"
echo "$out" | jq -e '.supportedVersions == ["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]' >/dev/null || cn_fail "VERSION: $out"
cn_pod_add 20
err=$(cn_conf 0.2.0 | cn_run ADD e1-$$ "$(cn_pod 20)" eth0) && cn_fail "ADD accepted 0.2.0"
echo "$err" | jq -e '.code == 1' >/dev/null || cn_fail "version error: $err"
err=$(cn_conf 1.0.0 | cn_run ADD "" "$(cn_pod 20)" eth0) && cn_fail "ADD without CNI_CONTAINERID"
echo "$err" | jq -e '.code == 4 and (.msg | test("CNI_CONTAINERID"))' >/dev/null || cn_fail "env error: $err"
err=$(cn_conf 1.0.0 | cn_run ADD e2-$$ "$(cn_pod 20)" "waytoolongifname0") && cn_fail "ADD with long ifname"
echo "$err" | jq -e '.code == 4 and (.msg | test("CNI_IFNAME"))' >/dev/null || cn_fail "env error: $err"
err=$(cn_conf 1.0.0 '"mtu":5' | cn_run ADD e3-$$ "$(cn_pod 20)" eth0) && cn_fail "ADD with duplicate mtu"
echo "$err" | jq -e '.code == 6' >/dev/null || cn_fail "decode error: $err"
err=$(echo '{"cniVersion":"1.0.0","name":"n","type":"twill","podCIDR":"10.1.1.0/24","mtu":9}' \
  | cn_run ADD e4-$$ "$(cn_pod 20)" eth0) && cn_fail "ADD with mtu 9"
echo "$err" | jq -e '.code == 7 and (.msg | test("mtu"))' >/dev/null || cn_fail "config error: $err"
err=$(cn_conf 1.0.0 | cn_run BOGUS e5-$$ "$(cn_pod 20)" eth0) && cn_fail "unknown command accepted"
echo "$err" | jq -e '.code == 4 and (.msg | test("CNI_COMMAND"))' >/dev/null || cn_fail "command error: $err"
# nothing of the failed ADDs is left behind
[ -z "$(ip -n "$(cn_pod 20)" -o link show | grep -v ' lo:')" ] || cn_fail "failed ADD left an interface"
echo "PASS"
