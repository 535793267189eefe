#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# twillctl on a node where nothing runs (an empty namespace and a hand-written node
# state): exit codes, --help for every command, the health verdict naming a failed
# reconcile and a missing dataplane, --json that parses, `key` printing the public
# key derived from the key file, never the private key, and exit 3 (cannot run) for a
# missing or unreadable state folder and for pinned maps a non-root user may not open.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
CTL=$BUILD/tools/twillctl
NS=ct-usage
WORK=""

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "$WORK/out" ] && cat "$WORK/out" "$WORK/err"; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (a network namespace)"
for t in ip nsenter jq wg setpriv; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$CTL" ] || skip "twillctl is not built ($CTL)"
HELPER=$BUILD/tests/integration/twill-dp-helper
[ -x "$HELPER" ] || skip "twill-dp-helper is not built"
PIN=/sys/fs/bpf/$NS-pins

WORK=$(mktemp -d /tmp/ct-usage.XXXXXX)
cleanup() {
	ip netns del "$NS" 2> /dev/null || true
	"$HELPER" unpin "$PIN" > /dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del "$NS" 2> /dev/null || true
ip netns add "$NS"

RC=0
ctl() {
	RC=0
	nsenter --net="/var/run/netns/$NS" -- "$CTL" --state-dir "$WORK/state" \
		--bpf-pin-dir "/sys/fs/bpf/$NS-none" "$@" > "$WORK/out" 2> "$WORK/err" || RC=$?
}
expect_rc() { [ "$RC" = "$1" ] || fail "$2: exit status $RC, expected $1"; }

# usage errors: 2
for args in "" "frobnicate" "trace 10.0.0.1" "trace a b" "peers extra" "counters --count 3" \
	"counters --watch 0" "status --watch" "--wg-device 0123456789abcdefg status"; do
	# shellcheck disable=SC2086
	ctl $args
	expect_rc 2 "twillctl $args"
done
echo "ok: usage errors exit 2"

# --help explains every column
ctl --help
expect_rc 0 "--help"
declare -A COLUMNS=(
	[status]="node|pod CIDR|wireguard|public key|pod MTU|strict mode|dataplane|services|programs|peers|pods|last reconcile|last error|last recovery|health"
	[peers]="NODE|POD CIDR|ENDPOINT|PATH|HANDSHAKE|RX, TX|KEEPALIVE|STATUS|pending|STALE|PUBLIC KEY"
	[routes]="CIDR|NODE|BPF|KERNEL|WIREGUARD|STATUS"
	[pods]="CONTAINER|IFNAME|POD IP|HOST VETH|MAC|PROGRAM|STATUS"
	[trace]="program|match|verdict|peer|endpoint|path|MTU"
	[counters]="REASON|PACKETS|BYTES|DESCRIPTION|PKT/S|BYTES/S"
	[key]="public key"
)
for c in "${!COLUMNS[@]}"; do
	ctl "$c" --help
	expect_rc 0 "$c --help"
	IFS='|' read -r -a cols <<< "${COLUMNS[$c]}"
	for col in "${cols[@]}"; do
		grep -qF -- "$col" "$WORK/out" || fail "$c --help does not explain '$col'"
	done
done
echo "ok: --help of every command explains its columns"

# nothing at all: unhealthy, and says why
mkdir -m 700 "$WORK/state"
ctl --json status
expect_rc 1 "status without node state"
jq -e '(.healthy | not) and (.problems | any(test("no node state")))' "$WORK/out" > /dev/null ||
	fail "status --json without node state"
echo "ok: no node state: unhealthy"

# the agent's state says the dataplane is loaded and the last reconcile failed
cat > "$WORK/state/node.json" <<EOF
{"nodeName": "ct-node", "podCIDR": "10.244.7.0/24", "clusterCIDR": "10.244.0.0/16",
 "mtu": 1440, "wgDevice": "ct-usage-wg", "backend": "userspace", "listenPort": 51820,
 "bpfPinDir": "/sys/fs/bpf/$NS-none", "dataplaneLoaded": true, "strict": true,
 "lastReconcile": $(($(date +%s) - 30)), "lastError": "cannot set route 10.244.9.0/24"}
EOF
ctl status
expect_rc 1 "status with a failed reconcile"
grep -qE "^node: +ct-node$" "$WORK/out" || fail "status names the node"
grep -qE "^health: +UNHEALTHY" "$WORK/out" || fail "status verdict"
grep -qF "the agent's last reconcile failed: cannot set route 10.244.9.0/24" "$WORK/out" ||
	fail "status names the failed reconcile"
grep -qF "dataplane not loaded" "$WORK/out" || fail "status names the missing dataplane"
ctl --json status
jq -e '.node == "ct-node" and .pod_cidr == "10.244.7.0/24" and .dataplane_loaded == false and
	.last_error == "cannot set route 10.244.9.0/24" and (.healthy | not)' "$WORK/out" > /dev/null ||
	fail "status --json with a failed reconcile"
ctl counters
expect_rc 1 "counters without a dataplane"
for c in peers routes pods; do
	ctl --json "$c"
	jq -e . "$WORK/out" > /dev/null || fail "$c --json does not parse"
done
ctl --json trace 10.244.7.5 10.244.9.9
jq -e '.src_kind == "this node'"'"'s pod CIDR (no such pod)" and .program == null' "$WORK/out" > /dev/null ||
	fail "trace --json on an empty node"
echo "ok: failed reconcile and missing dataplane make status unhealthy; --json parses"

# key: the public key from the key file; the private key never appears
(umask 077 && wg genkey > "$WORK/state/private.key")
PUB=$(wg pubkey < "$WORK/state/private.key")
PRIV=$(cat "$WORK/state/private.key")
ctl key
expect_rc 0 "key"
[ "$(cat "$WORK/out")" = "$PUB" ] || fail "key prints '$(cat "$WORK/out")', not $PUB"
ctl --json key
[ "$(jq -r .public_key "$WORK/out")" = "$PUB" ] || fail "key --json"
for c in status "--json status" key "--json key"; do
	# shellcheck disable=SC2086
	ctl $c
	if grep -qF "$PRIV" "$WORK/out" "$WORK/err"; then fail "twillctl $c prints the private key"; fi
done
ctl status
grep -qF "$PUB" "$WORK/out" || fail "status shows the public key from the key file"
echo "ok: key prints the public key; the private key is never printed"

# cannot run: 3, for every command, with the reason on stderr
ctl_in() { # STATE-DIR PIN-DIR [setpriv...] -- ARGS...
	local st=$1 pin=$2
	shift 2
	local as=()
	while [ "$1" != -- ]; do as+=("$1"); shift; done
	shift
	RC=0
	nsenter --net="/var/run/netns/$NS" -- "${as[@]}" "$CTL" --state-dir "$st" \
		--bpf-pin-dir "$pin" "$@" > "$WORK/out" 2> "$WORK/err" || RC=$?
}
for c in status peers routes pods counters key "trace 10.244.7.5 10.244.9.9" "--json status"; do
	# shellcheck disable=SC2086
	ctl_in "$WORK/no-such-folder" "/sys/fs/bpf/$NS-none" -- $c
	expect_rc 3 "twillctl $c without a state folder"
	grep -qF "no state folder '$WORK/no-such-folder'" "$WORK/err" || fail "twillctl $c: exit 3 without the reason"
done
: > "$WORK/a-file"
ctl_in "$WORK/a-file" "/sys/fs/bpf/$NS-none" -- status
expect_rc 3 "status with a file for a state folder"
echo "ok: a missing state folder, or a file in its place: exit 3 for every command"

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
for c in status key pods; do
	ctl_in "$WORK/state" "/sys/fs/bpf/$NS-none" "${NOBODY[@]}" -- "$c"
	expect_rc 3 "twillctl $c as nobody on a root-only (0700) state folder"
	grep -qF "run it as root" "$WORK/err" || fail "twillctl $c as nobody: exit 3 without the reason"
done
# a state folder anyone may read, and a real dataplane pinned: the maps are root's
mkdir -m 755 "$WORK/public" && chmod 711 "$WORK"
"$HELPER" load "$PIN" > /dev/null 2>&1 || fail "twill-dp-helper cannot pin a dataplane at $PIN"
ctl_in "$WORK/public" "$PIN" -- --json status
expect_rc 1 "status as root with pins and no node.json"
jq -e '.dataplane_loaded' "$WORK/out" > /dev/null || fail "root cannot open the pinned dataplane"
for c in status counters; do
	ctl_in "$WORK/public" "$PIN" "${NOBODY[@]}" -- "$c"
	expect_rc 3 "twillctl $c as nobody with root's pinned maps"
	grep -qF "run it as root" "$WORK/err" || fail "twillctl $c as nobody with pins: exit 3 without the reason"
done
echo "ok: not root: exit 3 (state folder or pinned maps), never a health verdict"
echo PASS
