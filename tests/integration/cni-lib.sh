# SPDX-License-Identifier: Apache-2.0
# Shared set-up for the CNI integration tests (sourced, not run). Every test gets its own
# "host" namespace (the plugin runs there, so host veths, routes and sysctls never touch
# the machine's real network), pod namespaces named cn-<test>-<pid>-<n>, and a mktemp
# state folder; the trap removes all of it.

: "${TWILL_BUILD_DIR:?set by meson}"
TWILL=$TWILL_BUILD_DIR/cni/twill

cn_skip() { echo "SKIP: $*"; exit 77; }
cn_fail() { echo "FAIL: $*" >&2; exit 1; }
cn_log() { echo "== $*"; }

[ "$(id -u)" -eq 0 ] || cn_skip "needs root for network namespaces"
[ -x "$TWILL" ] || cn_skip "$TWILL not built"
command -v ip >/dev/null || cn_skip "iproute2 missing"
command -v nsenter >/dev/null || cn_skip "nsenter missing"

CN_TAG="cn-${CN_TEST:-t}-$$"
CN_HOST="$CN_TAG-h"
CN_STATE=$(mktemp -d "/tmp/$CN_TAG.XXXXXX")
CN_NET="$CN_TAG"
CN_CIDR_PREFIX=${CN_CIDR_PREFIX:-10.$((100 + $$ % 100)).$(( ($$ / 100) % 250 ))}

cn_cleanup() {
  local ns
  # every namespace this test made carries its tag (and this shell's pid)
  for ns in $(ip netns list | awk '{print $1}' | grep -- "^$CN_TAG-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$CN_STATE"
  [ -z "${CN_EXTRA_CLEANUP:-}" ] || eval "$CN_EXTRA_CLEANUP"
}
trap cn_cleanup EXIT

ip netns add "$CN_HOST"
ip -n "$CN_HOST" link set lo up
# the node's own address (.1) on the host side: source of the host's pings to pods
ip -n "$CN_HOST" addr add "$CN_CIDR_PREFIX.1/32" dev lo

# cn_conf VERSION [extra json members]
cn_conf() {
  local v=$1 extra=${2:-}
  printf '{"cniVersion":"%s","name":"%s","type":"twill","podCIDR":"%s.0/24","mtu":1440,"stateDir":"%s","logLevel":"debug","logFile":"%s/twill.log","dns":{"nameservers":["10.96.0.10"]}%s}' \
    "$v" "$CN_NET" "$CN_CIDR_PREFIX" "$CN_STATE" "$CN_STATE" "${extra:+,$extra}"
}

cn_pod() { echo "$CN_TAG-p$1"; }    # the pod namespace name for index $1
cn_pod_add() { ip netns add "$(cn_pod "$1")"; }

# cn_run COMMAND CONTAINERID NETNS IFNAME < config ; stdout: the plugin's stdout
cn_run() {
  local cmd=$1 id=$2 ns=$3 ifn=$4 nspath=
  [ -z "$ns" ] || nspath=/var/run/netns/$ns
  nsenter --net="/var/run/netns/$CN_HOST" env -i PATH="$PATH" CNI_COMMAND="$cmd" \
    CNI_CONTAINERID="$id" CNI_NETNS="$nspath" CNI_IFNAME="$ifn" CNI_PATH="$(dirname "$TWILL")" \
    "$TWILL" 2>>"$CN_STATE/stderr.log"
}

cn_hostveth() {   # same FNV-1a 64 as lib/cni_plugin.c
  python3 - "$1" "$2" <<'PY'
import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode() + b"\0" + sys.argv[2].encode():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("tw%013x" % (h & 0xfffffffffffff))
PY
}

cn_host_ping() { ip netns exec "$CN_HOST" ping -c1 -W2 -q "$1" >/dev/null; }

cn_jq() { jq -er "$1"; }

# grep -q on a pipe can make the writer die of SIGPIPE, which pipefail reports as failure
cn_grep() { grep "$@" >/dev/null; }
