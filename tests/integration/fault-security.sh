#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Security (issue 7), on one node namespace running twilld (userspace WireGuard, metrics
# on the node's loopback, debug logging):
#   - the private key file is 0600 and its folder 0700, as twilld creates them;
#   - the private key, in base64 and in hex (either case), appears in none of: the agent's
#     log file and output, the metrics endpoint, any twillctl command (text and --json),
#     the state and CNI config folders besides the key file, wireguard-go's command line
#     and environment, the CNI plugin's log;
#   - container ids and interface names follow the CNI spec: the edge cases the spec
#     allows are accepted, the ones it forbids are refused with code 4.
set -euo pipefail
FL_TEST=sec
. "$(dirname "$0")/fault-lib.sh"
TWILLD=$TWILL_BUILD_DIR/tools/twilld
TWILLCTL=$TWILL_BUILD_DIR/tools/twillctl
for c in wg wireguard-go curl xxd; do
  command -v "$c" >/dev/null || fl_fail "$c is missing (scripts/install-deps installs it)"
done
[ -x "$TWILLD" ] || fl_fail "twilld is not built"
[ -x "$TWILLCTL" ] || fl_fail "twillctl is not built"
[ -e /dev/net/tun ] || fl_skip "no /dev/net/tun for wireguard-go"

NODE=$FL_HOST                       # the node's namespace (the plugin's host side too)
WG=fls$$-wg
PINS=/sys/fs/bpf/fl-sec-$$
ST=$FL_STATE/state                  # does not exist yet: twilld makes it
NETD=$FL_STATE/net.d
LOG=$FL_STATE/twilld.log
PORT=$((9100 + $$ % 800))
agent_pid=""
FL_EXTRA_CLEANUP='[ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null; sleep 0.2;
  nsenter --net="/var/run/netns/$NODE" "$TWILLD" cleanup --state-dir "$ST" --cni-conf-dir "$NETD" \
    --bpf-pin-dir "$PINS" --wg-device "$WG" --wg-backend userspace >/dev/null 2>&1; rm -rf "$PINS"'
fl_host_setup
ip -n "$NODE" link add eth0 type veth peer name eth0p
ip -n "$NODE" link set eth0p up
ip -n "$NODE" addr add 198.18.0.1/24 dev eth0
ip -n "$NODE" link set eth0 up

# n1 is this node, n2 a peer (its key made here: a peer's key is public anyway)
pub1=$("$TWILLD" --show-public-key --state-dir "$ST" 2>"$FL_STATE/showkey.err")
pub2=$(wg genkey | wg pubkey)
jq -n --arg k1 "$pub1" --arg k2 "$pub2" --arg cidr "$FL_CIDR_PREFIX.0/24" '{apiVersion: "v1", kind: "NodeList", items: [
  {metadata: {name: "n1", annotations: {"twill.dev/public-key": $k1}}, spec: {podCIDR: $cidr},
   status: {addresses: [{type: "ExternalIP", address: "198.18.0.1"}]}},
  {metadata: {name: "n2", annotations: {"twill.dev/public-key": $k2}}, spec: {podCIDR: "10.244.202.0/24"},
   status: {addresses: [{type: "ExternalIP", address: "198.18.0.2"}]}}]}' > "$FL_STATE/topology.json"

fl_log "key file and folder as twilld made them"
mode_dir=$(stat -c %a "$ST") mode_key=$(stat -c %a "$ST/private.key")
echo "$ST: $mode_dir, $ST/private.key: $mode_key"
[ "$mode_dir" = 700 ] || fl_fail "state folder has mode $mode_dir, not 700"
[ "$mode_key" = 600 ] || fl_fail "private key has mode $mode_key, not 600"
[ "$(stat -c %u "$ST/private.key")" = 0 ] || fl_fail "private key not owned by root"

fl_log "twilld with metrics on 127.0.0.1:$PORT, debug log"
setsid nsenter --net="/var/run/netns/$NODE" "$TWILLD" --topology "$FL_STATE/topology.json" --node n1 \
  --state-dir "$ST" --cni-conf-dir "$NETD" --bpf-pin-dir "$PINS" --wg-device "$WG" \
  --wg-backend userspace --cluster-cidr 10.0.0.0/8 --metrics "127.0.0.1:$PORT" --log-level debug \
  --log-file "$LOG" < /dev/null > "$FL_STATE/twilld.out" 2>&1 &
agent_pid=$!
for _ in $(seq 1 100); do [ -e "$NETD/10-twill.conflist" ] && break; sleep 0.1; done
[ -e "$NETD/10-twill.conflist" ] || { cat "$FL_STATE/twilld.out"; fl_fail "twilld wrote no CNI config"; }
# a pod through the plugin, logging at debug, so its log is checked too
ip netns add "$(fl_pod 1)"
jq -c --arg log "$FL_STATE/cni.log" '.plugins[0] + {cniVersion: .cniVersion, name: .name, logLevel: "debug", logFile: $log}' \
  "$NETD/10-twill.conflist" > "$FL_STATE/pod.conf"
fl_run ADD pod1 "$(fl_pod 1)" eth0 < "$FL_STATE/pod.conf" > /dev/null || fl_fail "pod ADD failed: $(tail -n 3 "$FL_STATE/stderr.log")"

# every place that could leak, captured into files
out=$FL_STATE/seen
mkdir -p "$out"
nsenter --net="/var/run/netns/$NODE" curl -s -m 5 "http://127.0.0.1:$PORT/metrics" > "$out/metrics" ||
  fl_fail "metrics endpoint does not answer"
grep -q '^twill_peers 1' "$out/metrics" || fl_fail "metrics do not show the peer: $(head -n 5 "$out/metrics")"
for cmd in status peers routes pods key counters; do
  for fmt in text json; do
    flag=-v; [ "$fmt" = text ] || flag=--json
    nsenter --net="/var/run/netns/$NODE" "$TWILLCTL" --state-dir "$ST" --topology "$FL_STATE/topology.json" \
      "$flag" "$cmd" > "$out/twillctl-$cmd-$fmt" 2>&1 || true
    [ -s "$out/twillctl-$cmd-$fmt" ] || fl_fail "twillctl $cmd ($fmt) printed nothing"
  done
done
grep -q "$pub1" "$out/twillctl-key-text" || fl_fail "twillctl key does not print the public key"
wgpid=""
for p in $(pgrep -x wireguard-go || true); do
  case "$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)" in *"wireguard-go $WG ") wgpid=$p ;; esac
done
[ -n "$wgpid" ] || fl_fail "no wireguard-go for $WG"
tr '\0' '\n' < "/proc/$wgpid/cmdline" > "$out/wireguard-go-cmdline"
tr '\0' '\n' < "/proc/$wgpid/environ" > "$out/wireguard-go-environ"
cp "$LOG" "$out/twilld.log"; cp "$FL_STATE/twilld.out" "$out/twilld.out"; cp "$FL_STATE/showkey.err" "$out/showkey.err"
cp "$FL_STATE/cni.log" "$out/cni.log"; cp "$FL_STATE/stderr.log" "$out/cni.stderr"
(cd "$ST" && find . -type f ! -name private.key -exec cat {} +) > "$out/state-files"
cat "$NETD"/* > "$out/cni-conf"

fl_log "the private key leaks nowhere"
b64=$(tr -d '\n' < "$ST/private.key")
hex=$(base64 -d < "$ST/private.key" | xxd -p -c 64)
[ ${#b64} -eq 44 ] && [ ${#hex} -eq 64 ] || fl_fail "cannot read the key back"
leaks=0 files=0 bytes=0
for f in "$out"/*; do
  files=$((files + 1)) bytes=$((bytes + $(stat -c %s "$f")))
  # the key's first 16 base64 characters or 16 hex digits are enough to count as a leak
  if grep -qF -e "$b64" -e "${b64:0:16}" "$f" || grep -qiF -e "$hex" -e "${hex:0:16}" "$f"; then
    echo "LEAK in $(basename "$f")"; leaks=$((leaks + 1))
  fi
done
echo "checked $files outputs ($bytes bytes): twilld log $(wc -l < "$out/twilld.log") lines, metrics $(wc -l < "$out/metrics") lines, twillctl 6 commands x text/json, state and CNI config files, wireguard-go cmdline/environ, plugin log"
[ "$leaks" -eq 0 ] || fl_fail "the private key appears in $leaks outputs"
# the check itself can fail: the key file does contain it
grep -qF "$b64" "$ST/private.key" || fl_fail "the leak check cannot see the key"

fl_log "container ids and interface names as the CNI spec says"
ok=0
accept() {   # container id, ifname the spec allows: ADD works, DEL cleans
  local id=$1 ifn=$2 res
  res=$(fl_run ADD "$id" "$(fl_pod 1)" "$ifn" < "$FL_STATE/pod.conf") ||
    fl_fail "spec-valid container id '$id' / ifname '$ifn' refused: $res"
  fl_run DEL "$id" "$(fl_pod 1)" "$ifn" < "$FL_STATE/pod.conf" > /dev/null || fl_fail "DEL '$id' '$ifn' failed"
  printf 'accepted  id %-22.22s ifname %s\n' "'$id'" "'$ifn'"; ok=$((ok + 1))
}
refuse() {   # what the spec forbids: code 4 naming the variable
  local id=$1 ifn=$2 var=$3 res
  res=$(fl_run ADD "$id" "$(fl_pod 1)" "$ifn" < "$FL_STATE/pod.conf") && fl_fail "'$id' / '$ifn' accepted"
  [ "$(jq -r .code <<<"$res")" = 4 ] && [[ $(jq -r .msg <<<"$res") == *"$var"* ]] ||
    fl_fail "'$id' / '$ifn': expected code 4 naming $var, got $res"
  [[ $(jq -r .msg <<<"$res") != *[[:cntrl:]]* ]] || fl_fail "the message quotes a control character raw: $res"
  printf 'refused   id %-22.22s ifname %-18s %s\n' "'$id'" "$(printf '%q' "$ifn")" "$(jq -r .msg <<<"$res" | cut -c1-70)"; ok=$((ok + 1))
}
accept a eth1
accept 9 eth1
accept "A.b_c-D" eth1
accept "$(printf 'x%.0s' $(seq 1 255))" eth1
accept c1 eth-0.1_a
accept c2 abcdefghijklmno          # 15 characters
accept c3 ...                       # only '.' and '..' are forbidden
refuse ".a" eth1 CNI_CONTAINERID
refuse "-a" eth1 CNI_CONTAINERID
refuse "a:b" eth1 CNI_CONTAINERID
refuse "a+b" eth1 CNI_CONTAINERID
refuse "$(printf 'x%.0s' $(seq 1 256))" eth1 CNI_CONTAINERID
refuse c5 abcdefghijklmnop CNI_IFNAME    # 16 characters
refuse c5 $'eth\n1' CNI_IFNAME
refuse c5 $'eth\v1' CNI_IFNAME
refuse c5 $'eth\r1' CNI_IFNAME
refuse c5 $'eth\f1' CNI_IFNAME
refuse c5 "a:b" CNI_IFNAME
refuse c5 "a/b" CNI_IFNAME
refuse c5 $'eth\x7f' CNI_IFNAME
refuse c5 é1 CNI_IFNAME                  # stricter than the spec: the store keeps ASCII
echo "$ok spec cases"
echo "PASS"
