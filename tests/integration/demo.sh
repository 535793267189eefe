#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/demo, the README's first command, run as a user runs it (as root), with a lab
# prefix of its own: it exits 0, both cross-node pings (n1 -> n2 over rack-a, n1 -> n3
# over the simulated internet) get their replies, and `twillctl status` on n1 says
# healthy. The lab the demo leaves up for exploring is then removed, and nothing of it
# may remain. Fast once built: install-deps and build-cnitool find everything present
# and `meson compile` has nothing to do.
set -euo pipefail

SRC=${TWILL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TWILL_BUILD_DIR:-$SRC/build}
LAB_BIN=$SRC/tools/twill-lab
P=dmo$(($$ % 100000))
WORK=""

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	[ -n "$WORK" ] && [ -f "$WORK/demo.out" ] && { echo "--- demo output"; cat "$WORK/demo.out"; }
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (the demo installs packages and makes namespaces)"
for t in ip jq meson ping wg wireguard-go; do
	command -v "$t" > /dev/null || skip "$t is not installed"
done
[ -x "$BUILD/tools/twilld" ] || skip "twilld is not built ($BUILD/tools/twilld)"

WORK=$(mktemp -d /tmp/demo-test.XXXXXX)
cleanup() {
	"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT
"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || true

rc=0
TWILL_LAB_PREFIX=$P TWILL_DEMO_NODES=3 TWILL_BUILD_DIR=$BUILD timeout 600 "$SRC/scripts/demo" \
	> "$WORK/demo.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "scripts/demo exited $rc"

# Each ping prints one summary; both must have their replies (the first packet of a
# tunnel may wait for the handshake, so 2 of 3 is enough, 0 or 1 is not).
n=$(grep -cE '^3 packets transmitted, [23] received' "$WORK/demo.out" || true)
[ "$n" -eq 2 ] || fail "expected two pings with replies (n1 -> n2, n1 -> n3), found $n"
grep -q "ping n2-p1 .*private network rack-a" "$WORK/demo.out" || fail "no ping n1 -> n2 over rack-a"
grep -q "ping n3-p1 .*simulated internet" "$WORK/demo.out" || fail "no ping n1 -> n3 over the internet"
grep -qE '^health: +healthy$' "$WORK/demo.out" || fail "twillctl status on n1 does not say healthy"
grep -qE '^peers: +2 up / 2 total$' "$WORK/demo.out" || fail "twillctl status does not show both peers up"
echo "ok: the demo exits 0, both pings get replies, n1 is healthy with 2 of 2 peers up"

# What the demo tells the user to explore is really there, then goes away with `down`.
"$LAB_BIN" status --prefix "$P" > /dev/null || fail "the lab the demo left up is not healthy"
"$LAB_BIN" down --prefix "$P" > /dev/null 2>&1 || fail "twill-lab down after the demo failed"
left=$(ip netns list | awk '{print $1}' | grep -E "^$P-" || true)
[ -z "$left" ] || fail "namespaces left after down: $left"
[ ! -e "/run/twill-lab/$P" ] || fail "/run/twill-lab/$P left after down"
compgen -G "/sys/fs/bpf/$P-n*" > /dev/null && fail "BPF pins left after down: $(echo /sys/fs/bpf/"$P"-n*)"
echo "ok: the demo's lab is removed by twill-lab down"
echo "PASS"
