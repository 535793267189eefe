#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Debian's bandwidth plugin chained after twill, through cnitool, on the conflist the
# agent writes, with the BPF dataplane pinned: a pod with limits gets the plugin's tbf
# on its host veth and its ifb device, and no BPF endpoint or program (they would clash
# with the plugin's ingress qdisc and bypass its tbf), yet still answers; CHECK passes,
# and twillctl does not flag it. A pod without limits still gets the BPF program. DEL
# removes it all.
set -euo pipefail
CN_TEST=bw
. "$(dirname "$0")/cni-lib.sh"
CNITOOL=${TWILL_CNITOOL:-/var/cache/twill-test/cnitool/cnitool}
HELPER=$TWILL_BUILD_DIR/tests/integration/twill-dp-helper
RENDER=${TWILL_CONFLIST_RENDER:-$TWILL_BUILD_DIR/tests/integration/conflist-render}
TWILLCTL=$TWILL_BUILD_DIR/tools/twillctl
# CI installs and builds all of these (scripts/test): a missing one is a regression
[ -x "$CNITOOL" ] || cn_fail "cnitool not built at $CNITOOL (tests/setup/build-cnitool builds it)"
[ -x /usr/lib/cni/bandwidth ] || cn_fail "Debian containernetworking-plugins missing (scripts/install-deps)"
[ -x "$HELPER" ] || cn_fail "twill-dp-helper not built"
[ -x "$RENDER" ] || cn_fail "conflist-render not built"
for c in jq tc bpftool; do command -v "$c" >/dev/null || cn_fail "$c missing (scripts/install-deps)"; done

PIN=/sys/fs/bpf/cn-bw-$$
CN_EXTRA_CLEANUP='rm -f /var/lib/cni/results/"$CN_NET"-*; "$HELPER" unpin "$PIN" >/dev/null 2>&1 || true'
nsenter --net="/var/run/netns/$CN_HOST" "$HELPER" load "$PIN" >/dev/null 2>>"$CN_STATE/stderr.log" \
  || cn_fail "cannot load the BPF dataplane as root: $(tail -2 "$CN_STATE/stderr.log")"

mkdir -p "$CN_STATE/bin" "$CN_STATE/net.d"
ln -s "$TWILL" "$CN_STATE/bin/twill"
for p in portmap bandwidth loopback; do ln -s "/usr/lib/cni/$p" "$CN_STATE/bin/$p"; done
"$RENDER" "$CN_CIDR_PREFIX.0/24" 1440 "$CN_STATE" "$PIN" "$CN_STATE/twill.log" \
  | jq --arg n "$CN_NET" '.name = $n | .plugins[0].logLevel = "debug"' \
  > "$CN_STATE/net.d/10-twill.conflist"
jq -e '.plugins | map(.type) == ["twill", "portmap", "bandwidth"]' "$CN_STATE/net.d/10-twill.conflist" \
  >/dev/null || cn_fail "the agent's conflist is not twill + portmap + bandwidth"

# tool CAP_ARGS COMMAND NETNS
tool() {
  local caps=$1; shift
  nsenter --net="/var/run/netns/$CN_HOST" env NETCONFPATH="$CN_STATE/net.d" \
    CNI_PATH="$CN_STATE/bin" CAP_ARGS="$caps" "$CNITOOL" "$1" "$CN_NET" "/var/run/netns/$2" \
    2>>"$CN_STATE/stderr.log"
}
has_endpoint() {   # the map key is the address in network order: its four bytes
  bpftool map lookup pinned "$PIN/twill_endpoints" key $(echo "$1" | tr . ' ') >/dev/null 2>&1
}
LIMITS='{"bandwidth":{"ingressRate":8000000,"ingressBurst":800000,"egressRate":4000000,"egressBurst":400000}}'

cn_pod_add 1
pod=$(cn_pod 1)
cn_log "cnitool add with bandwidth limits"
out=$(tool "$LIMITS" add "$pod") || cn_fail "cnitool add with limits failed: $(tail -5 "$CN_STATE/stderr.log")"
ip=$(echo "$out" | jq -er '.ips[0].address'); ip=${ip%/32}
hv=$(echo "$out" | jq -er '.interfaces[0].name')
tc -n "$CN_HOST" qdisc show dev "$hv" | cn_grep "qdisc tbf" \
  || cn_fail "no tbf on $hv: $(tc -n "$CN_HOST" qdisc show dev "$hv")"
tc -n "$CN_HOST" qdisc show dev "$hv" | cn_grep "qdisc ingress" \
  || cn_fail "no ingress qdisc on $hv (egress limit): $(tc -n "$CN_HOST" qdisc show dev "$hv")"
ifb=$(ip -n "$CN_HOST" -o link show type ifb | awk -F': ' '{print $2}' | cut -d@ -f1)
[ -n "$ifb" ] || cn_fail "the bandwidth plugin made no ifb device"
tc -n "$CN_HOST" qdisc show dev "$ifb" | cn_grep "qdisc tbf" || cn_fail "no tbf on $ifb"
has_endpoint "$ip" && cn_fail "pod $ip with limits is in the endpoint map: BPF would bypass the tbf"
tc -n "$CN_HOST" filter show dev "$hv" ingress 2>/dev/null | cn_grep twill_pod \
  && cn_fail "twill's program is attached to $hv"
ip -n "$CN_HOST" -d link show "$hv" | cn_grep "alias twill $CN_NET path:kernel eth0 " \
  || cn_fail "host veth alias: $(ip -n "$CN_HOST" -d link show "$hv" | grep alias)"
grep -q "runtimeConfig.bandwidth sets limits: no BPF endpoint or program" "$CN_STATE/twill.log" \
  || cn_fail "ADD did not log the kernel path"
cn_host_ping "$ip" || cn_fail "host cannot ping pod $ip on the kernel path"

cn_log "CHECK passes and twillctl does not flag the pod"
# Debian's portmap 1.1.1 may fail CHECK on IPv4-only pods (containernetworking/plugins#819)
if ! tool "$LIMITS" check "$pod"; then
  tail -1 "$CN_STATE/stderr.log" | cn_grep "could not check ipv6 dnat" \
    || cn_fail "cnitool check failed: $(tail -3 "$CN_STATE/stderr.log")"
fi
prev=$(echo "$out" | jq -c .)
jq -c --argjson prev "$prev" --argjson rc "$LIMITS" \
  '.plugins[0] + {cniVersion: .cniVersion, name: .name, prevResult: $prev, runtimeConfig: $rc}' \
  "$CN_STATE/net.d/10-twill.conflist" > "$CN_STATE/check.json"
# no match must reach the message below, not end the script through pipefail
id=$(ls /var/lib/cni/results | grep -- "^$CN_NET-" | head -1 | sed "s/^$CN_NET-//; s/-eth0\$//") || true
[ -n "$id" ] || cn_fail "no cached result for $CN_NET"
cn_run CHECK "$id" "$pod" eth0 < "$CN_STATE/check.json" || cn_fail "twill CHECK of the kernel-path pod failed"
# twillctl joins the IPAM store only for the pod CIDR the agent's node state names
jq -n --arg cidr "$CN_CIDR_PREFIX.0/24" --arg pin "$PIN" '{nodeName: "n1", podCIDR: $cidr,
  clusterCIDR: "10.0.0.0/8", wgDevice: "twill0", backend: "userspace", bpfPinDir: $pin,
  lastError: "", mtu: 1440, listenPort: 51820, lastReconcile: 0, dataplaneLoaded: true,
  strict: false}' > "$CN_STATE/node.json"
ctl=$(nsenter --net="/var/run/netns/$CN_HOST" "$TWILLCTL" --state-dir "$CN_STATE" --bpf-pin-dir "$PIN" \
  --network "$CN_NET" --json pods) || true
echo "$ctl" | jq -e --arg ip "$ip" '.pods[] | select(.pod_ip == $ip) | .ok and .problem == null and .warning == null' \
  >/dev/null || cn_fail "twillctl pods flags the kernel-path pod: $ctl"

cn_log "a pod without limits still gets the BPF program"
cn_pod_add 2
out2=$(tool '{}' add "$(cn_pod 2)") || cn_fail "cnitool add without limits failed: $(tail -5 "$CN_STATE/stderr.log")"
ip2=$(echo "$out2" | jq -er '.ips[0].address'); ip2=${ip2%/32}
hv2=$(echo "$out2" | jq -er '.interfaces[0].name')
has_endpoint "$ip2" || cn_fail "pod $ip2 without limits is not in the endpoint map"
tc -n "$CN_HOST" filter show dev "$hv2" ingress | cn_grep twill_pod || cn_fail "no twill program on $hv2"
tc -n "$CN_HOST" qdisc show dev "$hv2" | cn_grep "qdisc tbf" && cn_fail "tbf on $hv2 without limits"
cn_host_ping "$ip2" || cn_fail "host cannot ping pod $ip2"

cn_log "cnitool del removes the veth, the ifb, the address"
tool "$LIMITS" del "$pod" || cn_fail "cnitool del failed: $(tail -3 "$CN_STATE/stderr.log")"
ip -n "$CN_HOST" link show "$hv" >/dev/null 2>&1 && cn_fail "host veth $hv survived del"
[ -z "$(ip -n "$CN_HOST" -o link show type ifb)" ] || cn_fail "ifb survived del: $(ip -n "$CN_HOST" -o link show type ifb)"
grep -q "$ip\"" "$CN_STATE/ipam/$CN_NET/store.json" && cn_fail "address $ip not released"
tool '{}' del "$(cn_pod 2)" || cn_fail "cnitool del 2 failed"
has_endpoint "$ip2" && cn_fail "endpoint $ip2 survived del"
[ -z "$(ip -n "$CN_HOST" -o link show type veth)" ] || cn_fail "veths left: $(ip -n "$CN_HOST" -o link show type veth)"
echo "PASS"
