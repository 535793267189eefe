#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# twill through cnitool (libcni 1.1.2, what containerd, CRI-O and podman use), on the
# conflist the agent writes: twill first, Debian's portmap and bandwidth after it.
# libcni 1.1.2 reads its cniVersion and ignores cniVersions; portmap gets twill's
# result as prevResult and its DNAT reaches a server in the pod; CHECK and DEL pass
# through the chain; DEL twice is fine.
set -euo pipefail
CN_TEST=tool
. "$(dirname "$0")/cni-lib.sh"
CNITOOL=${TWILL_CNITOOL:-/var/cache/twill-test/cnitool/cnitool}
[ -x "$CNITOOL" ] || cn_skip "cnitool not built at $CNITOOL (tests/setup/build-cnitool builds it)"
[ -x /usr/lib/cni/portmap ] || cn_skip "Debian containernetworking-plugins missing"
command -v iptables >/dev/null || cn_skip "iptables missing (portmap needs it)"
command -v jq >/dev/null || cn_skip "jq missing"
command -v python3 >/dev/null || cn_skip "python3 missing"

RENDER=${TWILL_CONFLIST_RENDER:-$TWILL_BUILD_DIR/tests/integration/conflist-render}
[ -x "$RENDER" ] || cn_skip "conflist-render not built"

mkdir -p "$CN_STATE/bin" "$CN_STATE/net.d"
ln -s "$TWILL" "$CN_STATE/bin/twill"
for p in portmap bandwidth loopback; do ln -s "/usr/lib/cni/$p" "$CN_STATE/bin/$p"; done
# the conflist the agent writes (twill + portmap + bandwidth, cniVersion 1.0.0 and
# cniVersions for libcni >= 1.2), under this test's network name, no BPF dataplane
"$RENDER" "$CN_CIDR_PREFIX.0/24" 1440 "$CN_STATE" "$CN_STATE/no-bpf" "$CN_STATE/twill.log" \
  | jq --arg n "$CN_NET" '.name = $n | .plugins[0].logLevel = "debug"' \
  > "$CN_STATE/net.d/10-twill.conflist"
jq -e '.cniVersion == "1.0.0" and .cniVersions == ["1.0.0", "1.1.0"]' \
  "$CN_STATE/net.d/10-twill.conflist" >/dev/null || cn_fail "conflist versions: $(cat "$CN_STATE/net.d/10-twill.conflist")"
# cnitool caches results under /var/lib/cni/results/<network>-*: ours carry $CN_NET
CN_EXTRA_CLEANUP='rm -f /var/lib/cni/results/"$CN_NET"-*; kill "${SERVER_PID:-}" 2>/dev/null || true'

tool() {
  nsenter --net="/var/run/netns/$CN_HOST" env NETCONFPATH="$CN_STATE/net.d" \
    CNI_PATH="$CN_STATE/bin" \
    CAP_ARGS='{"portMappings":[{"hostPort":18080,"containerPort":8080,"protocol":"tcp"}]}' \
    "$CNITOOL" "$@" 2>>"$CN_STATE/stderr.log"
}

cn_pod_add 1
pod=$(cn_pod 1)
cn_log "cnitool add"
out=$(tool add "$CN_NET" "/var/run/netns/$pod") || cn_fail "cnitool add failed: $out $(tail -5 "$CN_STATE/stderr.log")"
addr=$(echo "$out" | jq -er '.ips[0].address'); ip=${addr%/32}
[ "$(echo "$out" | jq -er .cniVersion)" = 1.0.0 ] || cn_fail "result version: $out"
ip -n "$pod" -o -4 addr show dev eth0 | cn_grep "inet $addr" || cn_fail "pod lacks $addr"
ip -n "$pod" route | cn_grep "^default via 169.254.1.1 dev eth0" || cn_fail "pod default route"
cn_host_ping "$ip" || cn_fail "host cannot ping $ip"

cn_log "portmap got twill's prevResult: DNAT to $ip:8080"
rules=$(ip netns exec "$CN_HOST" iptables -t nat -S)
echo "$rules" | cn_grep -- "--to-destination $ip:8080" || cn_fail "no portmap DNAT to $ip:8080: $rules"
ip netns exec "$pod" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.sendall(b"hello from the pod\n"); c.close()' "$ip" &
SERVER_PID=$!
got=""
for _ in $(seq 1 50); do
  got=$(ip netns exec "$CN_HOST" python3 -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 18080), timeout=2); print(s.recv(64).decode().strip())' \
    "$CN_CIDR_PREFIX.1" 2>/dev/null) && break
  sleep 0.1
done
[ "$got" = "hello from the pod" ] || cn_fail "host port 18080 did not reach the pod (got '$got')"
wait "$SERVER_PID" || true

cn_log "cnitool check"
# Debian's portmap 1.1.1 fails CHECK on IPv4-only pods whenever ip6tables works
# (containernetworking/plugins#819): the chain's CHECK may fail only with that message,
# and twill's own CHECK through libcni, on the same cached result, must pass.
if ! tool check "$CN_NET" "/var/run/netns/$pod"; then
  tail -1 "$CN_STATE/stderr.log" | cn_grep "could not check ipv6 dnat" \
    || cn_fail "cnitool check failed: $(tail -3 "$CN_STATE/stderr.log")"
  echo "(portmap's CHECK hit its IPv6 bug, as expected for 1.1.1)"
fi
mkdir -p "$CN_STATE/net.d-twill"
jq '.plugins |= [.[0]]' "$CN_STATE/net.d/10-twill.conflist" > "$CN_STATE/net.d-twill/10-twill.conflist"
NETCONFPATH="$CN_STATE/net.d-twill" nsenter --net="/var/run/netns/$CN_HOST" \
  env CNI_PATH="$CN_STATE/bin" NETCONFPATH="$CN_STATE/net.d-twill" \
  "$CNITOOL" check "$CN_NET" "/var/run/netns/$pod" 2>>"$CN_STATE/stderr.log" \
  || cn_fail "twill CHECK through cnitool failed: $(tail -3 "$CN_STATE/stderr.log")"
ip -n "$pod" route del default
if nsenter --net="/var/run/netns/$CN_HOST" env CNI_PATH="$CN_STATE/bin" \
    NETCONFPATH="$CN_STATE/net.d-twill" "$CNITOOL" check "$CN_NET" "/var/run/netns/$pod" \
    2>>"$CN_STATE/stderr.log"; then
  cn_fail "twill CHECK through cnitool passed without the pod's default route"
fi
ip -n "$pod" route add default via 169.254.1.1 dev eth0

cn_log "cnitool del (twice)"
hv=$(echo "$out" | jq -er '.interfaces[0].name')
tool del "$CN_NET" "/var/run/netns/$pod" || cn_fail "cnitool del failed"
ip -n "$CN_HOST" link show "$hv" >/dev/null 2>&1 && cn_fail "host veth $hv survived del"
ip netns exec "$CN_HOST" iptables -t nat -S | cn_grep -- "--to-destination $ip:8080" && cn_fail "portmap rule survived del"
grep -rq "cnitool-" "$CN_STATE/ipam" && cn_fail "address not released"
tool del "$CN_NET" "/var/run/netns/$pod" || cn_fail "second cnitool del failed"

cn_log "a pod whose netns is gone: del still releases"
cn_pod_add 2
out=$(tool add "$CN_NET" "/var/run/netns/$(cn_pod 2)") || cn_fail "second add failed"
ip netns del "$(cn_pod 2)"
tool del "$CN_NET" "/var/run/netns/$(cn_pod 2)" || cn_fail "del without netns failed"
grep -rq "cnitool-" "$CN_STATE/ipam" && cn_fail "address not released after the netns was gone"
echo "PASS"
