#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input (issue 7): one table of malformed inputs across the CNI environment, the CNI
# network configuration, topology documents and the state files (IPAM store, node.json,
# private key). Each must be refused with a message naming the field at fault, with the
# spec's error code in the JSON on stdout for the plugin, and the state folder must be
# byte for byte what it was (every file's content and mode hashed before and after).
#
# Table rows (one call each):
#   P name code substr VERB CONTAINERID NETNS IFNAME CONFIG     the plugin, one verb
#   S name code substr log-substr SETUP CONFIG                  the plugin on a bad state file
#   T name substr DOCUMENT                                      the topology parser
#   N name substr SETUP                                         the node.json reader
#   K name substr SETUP                                         twilld's private key
# "-" leaves a CNI_* variable unset; NETNS "@pod" is a real pod namespace. CONFIG and
# DOCUMENT are "@good", "jq:FILTER" (applied to the good one) or literal text.
set -euo pipefail
FL_TEST=bad
. "$(dirname "$0")/fault-lib.sh"
PARSE=${TWILL_FAULT_PARSE:-$TWILL_BUILD_DIR/tests/integration/fault-parse}
TWILLD=$TWILL_BUILD_DIR/tools/twilld
[ -x "$PARSE" ] || fl_skip "fault-parse not built"
[ -x "$TWILLD" ] || fl_skip "twilld not built"

fl_host_setup
POD=$(fl_pod 1)
ip netns add "$POD"
ST=$FL_STATE/state            # the state folder under test (hashed)
WK=$FL_STATE/work             # logs and scratch, outside it
mkdir -p "$ST" "$WK"
chmod 0700 "$ST"
GOOD_CONF=$(jq -nc --arg net "$FL_NET" --arg cidr "$FL_CIDR_PREFIX.0/24" --arg st "$ST" \
  '{cniVersion: "1.1.0", name: $net, type: "twill", podCIDR: $cidr, mtu: 1440, stateDir: $st,
    bpfPinDir: ("/sys/fs/bpf/" + $net)}')

# A state folder as a node has it: one live pod in the store, node.json, the key.
echo "$GOOD_CONF" | nsenter --net="/var/run/netns/$FL_HOST" env -i CNI_COMMAND=ADD CNI_CONTAINERID=live1 \
  CNI_NETNS="/var/run/netns/$POD" CNI_IFNAME=eth0 "$TWILL" > "$WK/add.json" 2>"$WK/add.err" ||
  fl_fail "the set-up ADD failed: $(cat "$WK/add.json" "$WK/add.err")"
"$TWILLD" --show-public-key --state-dir "$ST" > /dev/null 2>"$WK/key.err" || fl_fail "twilld cannot make a key"
jq -n --arg cidr "$FL_CIDR_PREFIX.0/24" '{nodeName: "n1", podCIDR: $cidr, clusterCIDR: "10.0.0.0/8",
  mtu: 1440, wgDevice: "fl-bad-wg", backend: "userspace", listenPort: 51820, bpfPinDir: "/sys/fs/bpf/fl-bad",
  dataplaneLoaded: false, strict: true, lastReconcile: 0, lastError: ""}' > "$ST/node.json"
cp -a "$ST" "$WK/pristine"
STORE=$ST/ipam/$FL_NET/store.json

K1=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
K2=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
GOOD_TOPO=$(jq -nc --arg k1 "$K1" --arg k2 "$K2" '{apiVersion: "v1", kind: "NodeList", items: [
  {metadata: {name: "n1", annotations: {"twill.dev/public-key": $k1, "twill.dev/wireguard-port": "51820",
     "twill.dev/private-network": "rack-a", "twill.dev/private-ip": "192.168.0.1"}},
   spec: {podCIDR: "10.244.1.0/24"}, status: {addresses: [{type: "ExternalIP", address: "198.18.0.1"}]}},
  {metadata: {name: "n2", annotations: {"twill.dev/public-key": $k2}},
   spec: {podCIDR: "10.244.2.0/24"}, status: {addresses: [{type: "InternalIP", address: "198.18.0.2"}]}}]}')

# the good inputs are accepted, or the table proves nothing
echo "$GOOD_TOPO" > "$WK/topology.json"
"$PARSE" topology "$WK/topology.json" > /dev/null 2>&1 || fl_fail "the good topology is rejected"
"$PARSE" nodestate "$ST" > /dev/null 2>&1 || fl_fail "the good node.json is rejected"

pass=0 failed=0 n=0
declare -A seen
HASH0=$(fl_tree_hash "$ST")
# the hash sees a one-byte change and a mode change, or the table proves nothing
echo " " >> "$ST/node.json"
[ "$(fl_tree_hash "$ST")" != "$HASH0" ] || fl_fail "the tree hash misses a content change"
cp "$WK/pristine/node.json" "$ST/node.json"; chmod 0640 "$ST/node.json"
[ "$(fl_tree_hash "$ST")" != "$HASH0" ] || fl_fail "the tree hash misses a mode change"
rm -rf "$ST" && cp -a "$WK/pristine" "$ST"
[ "$(fl_tree_hash "$ST")" = "$HASH0" ] || fl_fail "the tree hash is not stable"

text_of() {   # text_of GOOD SPEC
  case $2 in
    @good) printf '%s' "$1" ;;
    jq:*) jq -c "${2#jq:}" <<<"$1" ;;
    *) printf '%s' "$2" ;;
  esac
}

# verdict NAME OK DETAIL: one line per case; the state must be unchanged whatever happened
verdict() {
  local name=$1 ok=$2 detail=$3 h
  n=$((n + 1))
  [ -z "${seen[$name]:-}" ] || fl_fail "case name '$name' is used twice"
  seen[$name]=1
  h=$(fl_tree_hash "$ST")
  if [ "$h" != "$HASH_BEFORE" ]; then
    ok=no detail="STATE CHANGED: $(diff <(echo "$HASH_BEFORE") <(echo "$h") | grep '^[<>]' | head -n 3 | tr '\n' ' ') | $detail"
  fi
  if [ "$ok" = yes ]; then
    pass=$((pass + 1)); printf 'ok   %-28s %s\n' "$name" "$detail"
  else
    failed=$((failed + 1)); printf 'FAIL %-28s %s\n' "$name" "$detail"
  fi
  # the next case starts from the node's real state
  rm -rf "$ST" && cp -a "$WK/pristine" "$ST"
}

run_plugin() {   # run_plugin VERB ID NETNS IFNAME < config; stdout in $WK/out, stderr in $WK/err
  local -a e=(PATH="$PATH")
  [ "$1" = - ] || e+=(CNI_COMMAND="$1")
  [ "$2" = - ] || e+=(CNI_CONTAINERID="$2")
  case $3 in -) ;; @pod) e+=(CNI_NETNS="/var/run/netns/$POD") ;; *) e+=(CNI_NETNS="$3") ;; esac
  [ "$4" = - ] || e+=(CNI_IFNAME="$4")
  local rc=0
  nsenter --net="/var/run/netns/$FL_HOST" env -i "${e[@]}" "$TWILL" > "$WK/out" 2> "$WK/err" || rc=$?
  echo "$rc"
}

check_cni_error() {   # NAME CODE SUBSTR RC [LOG-SUBSTR]
  local name=$1 code=$2 sub=$3 rc=$4 logsub=${5:-} got msg
  got=$(jq -r '.code // empty' "$WK/out" 2>/dev/null || true)
  msg=$(jq -r '(.msg // "") + ((.details // "") | if . == "" then "" else ": " + . end)' "$WK/out" 2>/dev/null || cat "$WK/out")
  if [ "$rc" -eq 0 ]; then
    verdict "$name" no "accepted (exit 0): $(head -c 200 "$WK/out")"
  elif [ "$got" != "$code" ]; then
    verdict "$name" no "code '$got', expected $code: $msg"
  elif [[ $msg != *"$sub"* ]]; then
    verdict "$name" no "message lacks '$sub': $msg"
  elif [ -n "$logsub" ] && ! grep -qF -- "$logsub" "$WK/err"; then
    verdict "$name" no "log lacks '$logsub': $(tail -n 2 "$WK/err" | tr '\n' ' ')"
  else
    verdict "$name" yes "code $code: $msg${logsub:+ | log: $(grep -F -- "$logsub" "$WK/err" | head -n 1 | sed 's/^.*\(info\|warn\|error\): //')}"
  fi
}

P() {
  local name=$1 code=$2 sub=$3 verb=$4 id=$5 netns=$6 ifn=$7 conf=$8 rc
  HASH_BEFORE=$HASH0
  rc=$(text_of "$GOOD_CONF" "$conf" | run_plugin "$verb" "$id" "$netns" "$ifn")
  check_cni_error "$name" "$code" "$sub" "$rc"
}

S() {
  local name=$1 code=$2 sub=$3 logsub=$4 setup=$5 conf=$6 rc
  eval "$setup"
  HASH_BEFORE=$(fl_tree_hash "$ST")
  rc=$(text_of "$GOOD_CONF" "$conf" | run_plugin ADD "new$n" @pod "eth$n")
  check_cni_error "$name" "$code" "$sub" "$rc" "$logsub"
}

T() {
  local name=$1 sub=$2 doc=$3 rc=0
  HASH_BEFORE=$HASH0
  text_of "$GOOD_TOPO" "$doc" > "$WK/topology.json"
  "$PARSE" topology "$WK/topology.json" > "$WK/out" 2> "$WK/err" || rc=$?
  if [ "$rc" -eq 0 ]; then verdict "$name" no "accepted: $(cat "$WK/out")"
  elif ! grep -qF -- "$sub" "$WK/err"; then verdict "$name" no "message lacks '$sub': $(head -n 2 "$WK/err" | tr '\n' ' ')"
  else verdict "$name" yes "$(grep -F -- "$sub" "$WK/err" | head -n 1 | sed 's/^.*error: //')"; fi
}

N() {
  local name=$1 sub=$2 setup=$3 rc=0
  eval "$setup"
  HASH_BEFORE=$(fl_tree_hash "$ST")
  "$PARSE" nodestate "$ST" > "$WK/out" 2> "$WK/err" || rc=$?
  if [ "$rc" -eq 0 ]; then verdict "$name" no "accepted: $(cat "$WK/out")"
  elif ! grep -qF -- "$sub" "$WK/err"; then verdict "$name" no "message lacks '$sub': $(head -n 2 "$WK/err" | tr '\n' ' ')"
  else verdict "$name" yes "$(grep -F -- "$sub" "$WK/err" | head -n 1 | sed 's/^.*error: //')"; fi
}

K() {
  local name=$1 sub=$2 setup=$3 rc=0
  eval "$setup"
  HASH_BEFORE=$(fl_tree_hash "$ST")
  "$TWILLD" --show-public-key --state-dir "$ST" > "$WK/out" 2> "$WK/err" || rc=$?
  if [ "$rc" -eq 0 ]; then verdict "$name" no "accepted: $(cat "$WK/out")"
  elif ! grep -qF -- "$sub" "$WK/err"; then verdict "$name" no "message lacks '$sub': $(head -n 2 "$WK/err" | tr '\n' ' ')"
  else verdict "$name" yes "$(grep -F -- "$sub" "$WK/err" | head -n 1 | sed 's/^.*error: //')"; fi
}

LONG_ID=$(printf 'a%.0s' $(seq 1 300))
NODE_JQ() { jq -c "$1" "$ST/node.json" > "$WK/n.json" && cat "$WK/n.json" > "$ST/node.json"; }
NOCIDR='jq:del(.podCIDR) | del(.mtu)'

fl_log "CNI environment"
P env-no-command            4 CNI_COMMAND     -       c1 @pod eth1 @good
P env-unknown-command       4 CNI_COMMAND     FROB    c1 @pod eth1 @good
P env-lowercase-command     4 CNI_COMMAND     add     c1 @pod eth1 @good
P env-no-containerid        4 CNI_CONTAINERID ADD     -  @pod eth1 @good
P env-containerid-dash      4 CNI_CONTAINERID ADD     -abc @pod eth1 @good
P env-containerid-under     4 CNI_CONTAINERID ADD     _abc @pod eth1 @good
P env-containerid-slash     4 CNI_CONTAINERID ADD     a/b @pod eth1 @good
P env-containerid-space     4 CNI_CONTAINERID ADD     "a b" @pod eth1 @good
P env-containerid-shell     4 CNI_CONTAINERID ADD     'a;rm' @pod eth1 @good
P env-containerid-300       4 CNI_CONTAINERID ADD     "$LONG_ID" @pod eth1 @good
P env-containerid-utf8      4 CNI_CONTAINERID ADD     "pod-é" @pod eth1 @good
P env-no-netns              4 CNI_NETNS       ADD     c1 - eth1 @good
P env-netns-relative        4 CNI_NETNS       ADD     c1 var/run/netns/x eth1 @good
P env-netns-missing         4 CNI_NETNS       ADD     c1 /var/run/netns/fl-none-$$ eth1 @good
P env-netns-directory       4 CNI_NETNS       ADD     c1 /tmp eth1 @good
P env-netns-regular-file    4 CNI_NETNS       ADD     c1 "$WK/add.json" eth1 @good
P env-no-ifname             4 CNI_IFNAME      ADD     c1 @pod - @good
P env-ifname-16             4 CNI_IFNAME      ADD     c1 @pod eth0123456789abc @good
P env-ifname-slash          4 CNI_IFNAME      ADD     c1 @pod eth/1 @good
P env-ifname-colon          4 CNI_IFNAME      ADD     c1 @pod eth:1 @good
P env-ifname-dot            4 CNI_IFNAME      ADD     c1 @pod . @good
P env-ifname-dotdot         4 CNI_IFNAME      ADD     c1 @pod .. @good
P env-ifname-space          4 CNI_IFNAME      ADD     c1 @pod "eth 1" @good
P env-ifname-tab            4 CNI_IFNAME      ADD     c1 @pod "$(printf 'eth\t1')" @good
P env-del-bad-containerid   4 CNI_CONTAINERID DEL     'x$y' @pod eth1 @good
P env-check-bad-ifname      4 CNI_IFNAME      CHECK   c1 @pod ../x @good

fl_log "CNI network configuration"
P conf-empty                6 "decode"        ADD c1 @pod eth1 ''
P conf-truncated            6 "decode"        ADD c1 @pod eth1 '{"cniVersion":"1.1.0","name":"x"'
P conf-array                6 "not a JSON object" ADD c1 @pod eth1 '[]'
P conf-no-cniversion        7 cniVersion      ADD c1 @pod eth1 'jq:del(.cniVersion)'
P conf-cniversion-020       1 cniVersion      ADD c1 @pod eth1 'jq:.cniVersion = "0.2.0"'
P conf-cniversion-200       1 cniVersion      ADD c1 @pod eth1 'jq:.cniVersion = "2.0.0"'
P conf-cniversion-number    7 cniVersion      ADD c1 @pod eth1 'jq:.cniVersion = 1'
P conf-no-name              7 '"name"'        ADD c1 @pod eth1 'jq:del(.name)'
P conf-name-dotdot          7 '"name"'        ADD c1 @pod eth1 'jq:.name = ".."'
P conf-name-slash           7 '"name"'        ADD c1 @pod eth1 'jq:.name = "a/../../etc"'
P conf-name-number          7 '"name"'        ADD c1 @pod eth1 'jq:.name = 42'
P conf-no-type              7 '"type"'        ADD c1 @pod eth1 'jq:del(.type)'
P conf-ipam-section         2 '"ipam"'        ADD c1 @pod eth1 'jq:.ipam = {type: "host-local"}'
P conf-podcidr-23           7 podCIDR         ADD c1 @pod eth1 'jq:.podCIDR = "10.1.2.0/23"'
P conf-podcidr-octet        7 podCIDR         ADD c1 @pod eth1 'jq:.podCIDR = "300.1.2.0/24"'
P conf-podcidr-hostbits     7 podCIDR         ADD c1 @pod eth1 'jq:.podCIDR = "10.1.2.7/24"'
P conf-podcidr-ipv6         7 podCIDR         ADD c1 @pod eth1 'jq:.podCIDR = "fd00::/64"'
P conf-podcidr-number       7 podCIDR         ADD c1 @pod eth1 'jq:.podCIDR = 24'
P conf-mtu-string           7 '"mtu"'         ADD c1 @pod eth1 'jq:.mtu = "1500"'
P conf-mtu-small            7 '"mtu"'         ADD c1 @pod eth1 'jq:.mtu = 100'
P conf-mtu-huge             7 '"mtu"'         ADD c1 @pod eth1 'jq:.mtu = 70000'
P conf-statedir-relative    7 stateDir        ADD c1 @pod eth1 'jq:.stateDir = "var/lib/twill"'
P conf-loglevel             7 logLevel        ADD c1 @pod eth1 'jq:.logLevel = "loud"'
P conf-dns-string           7 '"dns"'         ADD c1 @pod eth1 'jq:.dns = "8.8.8.8"'
P conf-dns-nameservers      7 dns.nameservers ADD c1 @pod eth1 'jq:.dns = {nameservers: [8]}'
P conf-gc-no-attachments    7 cni.dev/valid-attachments GC - - - @good
P conf-gc-attachments-obj   7 cni.dev/valid-attachments GC - - - 'jq:.["cni.dev/valid-attachments"] = {}'
P conf-gc-attachment-noif   7 cni.dev/valid-attachments GC - - - 'jq:.["cni.dev/valid-attachments"] = [{containerID: "live1"}]'
P conf-check-no-prevresult  7 prevResult      CHECK live1 @pod eth0 @good
P conf-check-prevresult-str 7 prevResult      CHECK live1 @pod eth0 'jq:.prevResult = "ok"'

fl_log "state files"
S state-store-garbage      5 "corrupt" "is corrupt"  'echo "not json" > "$STORE"' @good
S state-store-truncated    5 "corrupt" "is corrupt"  'head -c 40 "$WK/pristine/ipam/$FL_NET/store.json" > "$STORE"' @good
S state-store-dup-address  5 "corrupt" "is corrupt"  'jq -c ".allocations += .allocations" "$WK/pristine/ipam/$FL_NET/store.json" > "$STORE"' @good
S state-store-outside-cidr 5 "corrupt" "is corrupt"  'jq -c ".allocations[0].address = \"192.0.2.9\"" "$WK/pristine/ipam/$FL_NET/store.json" > "$STORE"' @good
S state-store-bad-version  5 "corrupt" "is corrupt"  'jq -c ".version = 99" "$WK/pristine/ipam/$FL_NET/store.json" > "$STORE"' @good
S state-store-other-cidr   7 "another podCIDR" "was made for pod CIDR" 'jq -c ".pod_cidr = \"10.9.9.0/24\" | .allocations = []" "$WK/pristine/ipam/$FL_NET/store.json" > "$STORE"' @good
S state-store-directory    5 "IPAM store" "not a regular file" 'rm -f "$STORE"; mkdir "$STORE"' @good
S state-nodejson-garbage   5 "node state" "invalid JSON" 'echo "{" > "$ST/node.json"' "$NOCIDR"
S state-nodejson-no-cidr   5 "node state" "podCIDR"      'NODE_JQ "del(.podCIDR)"' "$NOCIDR"
S state-nodejson-mtu-str   5 "node state" "mtu"          'NODE_JQ ".mtu = \"1440\""' "$NOCIDR"
N nodestate-bad-cidr       "podCIDR '10.1.2.0/99'"       'NODE_JQ ".podCIDR = \"10.1.2.0/99\""'
N nodestate-port-range     "listenPort"                  'NODE_JQ ".listenPort = 70000"'
N nodestate-array          "not a JSON object"           'echo "[]" > "$ST/node.json"'
K key-mode-0644            "has mode 0644"               'chmod 0644 "$ST/private.key"'
K key-mode-0640            "has mode 0640"               'chmod 0640 "$ST/private.key"'
K key-folder-other-owner   "is owned by uid 65534"       'chown 65534 "$ST"'
K key-garbage              "does not hold one base64 WireGuard key" 'echo "not a key" > "$ST/private.key"'
K key-short                "does not hold one base64 WireGuard key" 'echo "AAAA" > "$ST/private.key"'
K key-empty                "does not hold one base64 WireGuard key" ': > "$ST/private.key"'
K key-directory            "not a regular file"          'rm -f "$ST/private.key"; mkdir -m 0700 "$ST/private.key"'

fl_log "topology documents"
T topo-invalid-json        "invalid JSON"                '{"kind": "NodeList", items: []}'
T topo-half-document       "invalid JSON"                "${GOOD_TOPO:0:$(( ${#GOOD_TOPO} / 2 ))}"
T topo-not-object          "not a JSON object"           '[1,2]'
T topo-kind-number         "kind"                        'jq:.kind = 5'
T topo-kind-pod            "kind 'Pod'"                  'jq:.kind = "Pod"'
T topo-no-items            "items"                       'jq:del(.items)'
T topo-item-string         "items[0]"                    'jq:.items[0] = "n1"'
T topo-no-name             "metadata.name"               'jq:del(.items[0].metadata.name)'
T topo-podcidr-25          "spec.podCIDR '10.244.1.0/25'" 'jq:.items[0].spec.podCIDR = "10.244.1.0/25"'
T topo-podcidr-garbage     "spec.podCIDR 'ten'"          'jq:.items[0].spec.podCIDR = "ten"'
T topo-podcidr-overlap     "overlaps"                    'jq:.items[1].spec.podCIDR = "10.244.1.0/24"'
T topo-duplicate-node      "appears twice"               'jq:.items[1].metadata.name = "n1"'
T topo-bad-public-key      "twill.dev/public-key"        'jq:.items[1].metadata.annotations["twill.dev/public-key"] = "abc"'
T topo-same-public-key     "same twill.dev/public-key"   'jq:.items[1].metadata.annotations["twill.dev/public-key"] = .items[0].metadata.annotations["twill.dev/public-key"]'
T topo-port-70000          "twill.dev/wireguard-port"    'jq:.items[0].metadata.annotations["twill.dev/wireguard-port"] = "70000"'
T topo-port-word           "twill.dev/wireguard-port"    'jq:.items[0].metadata.annotations["twill.dev/wireguard-port"] = "http"'
T topo-private-ip          "twill.dev/private-ip"        'jq:.items[0].metadata.annotations["twill.dev/private-ip"] = "192.168.0"'
T topo-annotations-list    "metadata.annotations"        'jq:.items[0].metadata.annotations = []'
T topo-addresses-object    "status.addresses"            'jq:.items[0].status.addresses = {}'
T topo-address-not-ip      "status.addresses"            'jq:.items[0].status.addresses[0].address = "node-1.example"'

echo "$n cases: $pass passed, $failed failed; state folder hashed before and after each"
[ "$n" -ge 40 ] || fl_fail "only $n cases"
[ "$failed" -eq 0 ] || fl_fail "$failed of $n malformed inputs were not refused cleanly"
[ "$(fl_tree_hash "$ST")" = "$HASH0" ] || fl_fail "the state folder differs from the start"
echo "PASS"
