# SPDX-License-Identifier: Apache-2.0
# Shared set-up for the fault tests (sourced, not run). Every name carries the tag
# fl-<test>-<pid>: a "host" namespace where the plugin runs (its veths, routes and
# sysctls never touch the machine's own network), pod namespaces, a mktemp state folder.
# The trap removes all of it, by name, even on failure.

: "${TWILL_BUILD_DIR:?set by meson}"
TWILL=$TWILL_BUILD_DIR/cni/twill

fl_skip() { echo "SKIP: $*"; exit 77; }
fl_fail() { echo "FAIL: $*" >&2; exit 1; }
fl_log() { echo "== $*"; }

[ "$(id -u)" -eq 0 ] || fl_skip "needs root for network namespaces"
# CI installs every tool (scripts/install-deps) and builds everything: a missing one there
# is a regression, not a reason to skip
[ -x "$TWILL" ] || fl_fail "$TWILL is not built"
for c in ip nsenter jq python3 timeout; do
  command -v "$c" >/dev/null || fl_fail "$c is missing (scripts/install-deps installs it)"
done

FL_TAG="fl-${FL_TEST:-t}-$$"
FL_HOST="$FL_TAG-h"
FL_STATE=$(mktemp -d "/tmp/$FL_TAG.XXXXXX")
FL_NET="$FL_TAG"
FL_CIDR_PREFIX=${FL_CIDR_PREFIX:-10.$((150 + $$ % 100)).$(( ($$ / 100) % 250 ))}
FL_EXTRA_CLEANUP=${FL_EXTRA_CLEANUP:-}

fl_cleanup() {
  local ns
  [ -z "$FL_EXTRA_CLEANUP" ] || eval "$FL_EXTRA_CLEANUP" || true
  for ns in $(ip netns list | awk '{print $1}' | grep -- "^$FL_TAG-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$FL_STATE"
}
trap fl_cleanup EXIT

fl_host_setup() {
  ip netns add "$FL_HOST"
  ip -n "$FL_HOST" link set lo up
  ip -n "$FL_HOST" addr add "$FL_CIDR_PREFIX.1/32" dev lo
}

# fl_conf VERSION [extra json members]
fl_conf() {
  local v=$1 extra=${2:-}
  printf '{"cniVersion":"%s","name":"%s","type":"twill","podCIDR":"%s.0/24","mtu":1440,"stateDir":"%s","bpfPinDir":"/sys/fs/bpf/%s","logLevel":"info","logFile":"%s/twill.log"%s}' \
    "$v" "$FL_NET" "$FL_CIDR_PREFIX" "$FL_STATE" "$FL_TAG" "$FL_STATE" "${extra:+,$extra}"
}

fl_pod() { echo "$FL_TAG-p$1"; }

# fl_run COMMAND CONTAINERID NETNS-NAME IFNAME < config ; stdout: the plugin's stdout
fl_run() {
  local cmd=$1 id=$2 ns=$3 ifn=$4 nspath=
  [ -z "$ns" ] || nspath=/var/run/netns/$ns
  nsenter --net="/var/run/netns/$FL_HOST" env -i PATH="$PATH" CNI_COMMAND="$cmd" \
    CNI_CONTAINERID="$id" CNI_NETNS="$nspath" CNI_IFNAME="$ifn" CNI_PATH="$(dirname "$TWILL")" \
    "$TWILL" 2>>"$FL_STATE/stderr.log"
}

# Host veth name of (container id, ifname), one per line "id ifname": same FNV-1a 64
# as lib/cni_plugin.c.
fl_hostveths() {
  python3 -c '
import sys
for line in sys.stdin:
    cid, ifn = line.split()
    h = 0xcbf29ce484222325
    for b in cid.encode() + b"\0" + ifn.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    print("tw%013x" % (h & 0xfffffffffffff))
'
}

# The whole state folder: every entry's path, mode and type, and every file's sha256.
fl_tree_hash() {
  (cd "$1" && find . -mindepth 1 -printf '%p %m %y\n' | LC_ALL=C sort &&
   find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
}
