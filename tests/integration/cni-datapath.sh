#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# With the BPF dataplane pinned (as the agent pins it), ADD registers the pod in the
# endpoint map and attaches the pod program to its host veth; CHECK notices a missing
# endpoint; DEL (even when it cannot release the address) and GC remove the endpoint;
# the pod still answers the host.
set -euo pipefail
CN_TEST=dp
. "$(dirname "$0")/cni-lib.sh"
HELPER=$TWILL_BUILD_DIR/tests/integration/twill-dp-helper
[ -x "$HELPER" ] || cn_skip "twill-dp-helper not built"
command -v bpftool >/dev/null || cn_skip "bpftool missing"
command -v jq >/dev/null || cn_skip "jq missing"
command -v tc >/dev/null || cn_skip "tc missing"

PIN=/sys/fs/bpf/cn-dp-$$
CN_EXTRA_CLEANUP='"$HELPER" unpin "$PIN" >/dev/null 2>&1 || true'
nsenter --net="/var/run/netns/$CN_HOST" "$HELPER" load "$PIN" >/dev/null 2>>"$CN_STATE/stderr.log" \
  || cn_skip "cannot load the BPF dataplane here: $(tail -2 "$CN_STATE/stderr.log")"

conf() { cn_conf 1.1.0 "\"bpfPinDir\":\"$PIN\"${1:+,$1}"; }
has_endpoint() {   # the map key is the address in network order: its four bytes
  bpftool map lookup pinned "$PIN/twill_endpoints" key $(echo "$1" | tr . ' ') >/dev/null 2>&1
}

cn_pod_add 1
pod=$(cn_pod 1)
cn_log "ADD registers the endpoint and attaches the pod program"
out=$(conf | cn_run ADD "dp1-$$" "$pod" eth0) || cn_fail "ADD failed: $out"
ip=$(echo "$out" | jq -er '.ips[0].address'); ip=${ip%/32}
hv=$(echo "$out" | jq -er '.interfaces[0].name')
has_endpoint "$ip" || cn_fail "no endpoint for $ip in $PIN/twill_endpoints"
tc -n "$CN_HOST" filter show dev "$hv" ingress | cn_grep twill_pod || cn_fail "no pod program on $hv ingress: $(tc -n "$CN_HOST" filter show dev "$hv" ingress)"
cn_host_ping "$ip" || cn_fail "host cannot ping pod $ip with the dataplane attached"

cn_log "CHECK passes, then names the missing endpoint"
conf "\"prevResult\":$out" | cn_run CHECK "dp1-$$" "$pod" eth0 || cn_fail "CHECK failed"
bpftool map delete pinned "$PIN/twill_endpoints" key $(echo "$ip" | tr . ' ')
err=$(conf "\"prevResult\":$out" | cn_run CHECK "dp1-$$" "$pod" eth0) && cn_fail "CHECK passed without the endpoint"
echo "$err" | jq -e '.msg | test("BPF endpoint")' >/dev/null || cn_fail "CHECK error: $err"
out=$(conf | cn_run ADD "dp1-$$" "$pod" eth0) || cn_fail "re-ADD failed: $out"
has_endpoint "$ip" || cn_fail "re-ADD did not register $ip"

cn_log "STATUS reports the BPF dataplane"
conf | cn_run STATUS "" "" "" || cn_fail "STATUS failed"
tail -1 "$CN_STATE/stderr.log" | cn_grep "dataplane: BPF" || cn_fail "STATUS did not report BPF: $(tail -1 "$CN_STATE/stderr.log")"

cn_log "DEL removes the endpoint"
conf | cn_run DEL "dp1-$$" "$pod" eth0 || cn_fail "DEL failed"
has_endpoint "$ip" && cn_fail "endpoint $ip survived DEL"

cn_log "DEL removes the endpoint after a pod CIDR change and with a corrupt store"
for i in 3 4; do
  cn_pod_add $i
  out=$(conf | cn_run ADD "dp$i-$$" "$(cn_pod $i)" eth0) || cn_fail "ADD $i failed: $out"
  eval "ip$i=\$(echo \"\$out\" | jq -er '.ips[0].address')"
done
ip3=${ip3%/32} ip4=${ip4%/32}
has_endpoint "$ip3" && has_endpoint "$ip4" || cn_fail "no endpoints for $ip3 and $ip4"
conf | jq -c '.podCIDR = "10.255.253.0/24"' | cn_run DEL "dp3-$$" "$(cn_pod 3)" eth0 \
  || cn_fail "DEL after a pod CIDR change failed"
has_endpoint "$ip3" && cn_fail "endpoint $ip3 survived DEL after a pod CIDR change"
printf 'not json' > "$CN_STATE/ipam/$CN_NET/store.json"
err=$(conf | cn_run DEL "dp4-$$" "$(cn_pod 4)" eth0) && cn_fail "DEL passed with a corrupt store"
echo "$err" | jq -e '.code == 5 and (.msg | test("corrupt"))' >/dev/null || cn_fail "DEL error: $err"
has_endpoint "$ip4" && cn_fail "endpoint $ip4 survived DEL with a corrupt store"
ip -n "$CN_HOST" link show "$(cn_hostveth "dp4-$$" eth0)" >/dev/null 2>&1 && cn_fail "veth of dp4 survived DEL"
rm -f "$CN_STATE/ipam/$CN_NET/store.json"

cn_log "GC removes the endpoints of what it collects"
cn_pod_add 2
out=$(conf | cn_run ADD "dp2-$$" "$(cn_pod 2)" eth0) || cn_fail "ADD 2 failed"
ip2=$(echo "$out" | jq -er '.ips[0].address'); ip2=${ip2%/32}
has_endpoint "$ip2" || cn_fail "no endpoint for $ip2"
conf '"cni.dev/valid-attachments":[]' | cn_run GC "" "" "" || cn_fail "GC failed"
has_endpoint "$ip2" && cn_fail "endpoint $ip2 survived GC"
echo "PASS"
