#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lib/wgctl's userspace back end against real wireguard-go: two namespaces joined by a
# veth pair, a device in each created and configured through wgctl (tests/integration/
# wgctl-tool), read back and compared with `wg show dump`, a ping across the tunnel, peer
# removal, an endpoint update that leaves the other peer alone, a daemon killed with -9,
# and a 5000-peer set/get whose times are printed (not asserted).
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, TUN)"
for c in wireguard-go wg ip ping nsenter pgrep; do
	command -v "$c" >/dev/null || skip "$c is not installed"
done
[ -c /dev/net/tun ] || skip "no /dev/net/tun"
TOOL=${TWILL_WGCTL_TOOL:-${TWILL_BUILD_DIR:-build}/tests/integration/wgctl-tool}
[ -x "$TOOL" ] || skip "wgctl-tool not built at $TOOL"

id=$(( $$ % 100000 ))
NSA=wg-nsa-$id NSB=wg-nsb-$id NSN=wg-nsn-$id
DEVA=wgt-a$id DEVB=wgt-b$id DEVN=wgt-n$id
VETHA=wgv-a$id VETHB=wgv-b$id
TMP=$(mktemp -d /tmp/wg-itest-XXXXXX)

daemon_pids() { pgrep -f "^/usr/bin/wireguard-go $1\$" || true; }

cleanup() {
	set +e
	for d in "$DEVA" "$DEVB" "$DEVN"; do
		for p in $(daemon_pids "$d"); do kill "$p" 2>/dev/null; done
	done
	for n in "$NSA" "$NSB" "$NSN"; do
		[ -e "/var/run/netns/$n" ] && ip netns del "$n"
	done
	sleep 0.2
	for d in "$DEVA" "$DEVB" "$DEVN"; do
		for p in $(daemon_pids "$d"); do kill -9 "$p" 2>/dev/null; done
		rm -f "/var/run/wireguard/$d.sock"
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

ina() { nsenter --net="/var/run/netns/$NSA" "$@"; }
inb() { nsenter --net="/var/run/netns/$NSB" "$@"; }
# The peer line of `wgctl-tool show` for a public key, split on tabs into $F.
peer_fields() { # dev-runner dev key
	local line
	line=$("$1" "$TOOL" show "$2" | awk -F'\t' -v k="$3" '$1 == k')
	IFS=$'\t' read -r -a F <<<"$line"
}

ip netns add "$NSA"
ip netns add "$NSB"
ip link add "$VETHA" netns "$NSA" type veth peer name "$VETHB" netns "$NSB"
ip -n "$NSA" addr add 192.0.2.1/24 dev "$VETHA"
ip -n "$NSB" addr add 192.0.2.2/24 dev "$VETHB"
for n in "$NSA" "$NSB"; do ip -n "$n" link set lo up; done
ip -n "$NSA" link set "$VETHA" up
ip -n "$NSB" link set "$VETHB" up

echo "== backend choice and device creation"
[ "$(ina "$TOOL" backend "$DEVA")" = userspace ] || fail "AUTO did not pick userspace here"
ina "$TOOL" exists "$DEVA" && fail "$DEVA exists before creation"
ina "$TOOL" --backend userspace create "$DEVA" 2>"$TMP/create.log" || { cat "$TMP/create.log"; fail "create $DEVA"; }
inb "$TOOL" --backend userspace create "$DEVB" 2>/dev/null || fail "create $DEVB"
ina "$TOOL" exists "$DEVA" || fail "$DEVA does not exist after creation"
ip -n "$NSA" link show "$DEVA" >/dev/null || fail "$DEVA is not in $NSA"
ip -n "$NSB" link show "$DEVB" >/dev/null || fail "$DEVB is not in $NSB"
ina "$TOOL" create "$DEVA" 2>/dev/null && fail "second create of $DEVA succeeded"

echo "== configuration through wgctl_set, read back through wgctl_get"
( umask 077
  for k in a b c d; do wg genkey >"$TMP/$k.key"; wg pubkey <"$TMP/$k.key" >"$TMP/$k.pub"; done )
PUBA=$(cat "$TMP/a.pub") PUBB=$(cat "$TMP/b.pub") PUBC=$(cat "$TMP/c.pub") PUBD=$(cat "$TMP/d.pub")
ina "$TOOL" set "$DEVA" private-key "$TMP/a.key" listen-port 51820 \
	peer "$PUBB" endpoint 192.0.2.2:51820 allowed-ips 10.99.0.2/32,10.98.2.0/24 \
	peer "$PUBC" endpoint 192.0.2.3:51820 allowed-ips 10.98.3.0/24,fd00:98:3::/64 persistent-keepalive 0
inb "$TOOL" set "$DEVB" private-key "$TMP/b.key" listen-port 51820 \
	peer "$PUBA" endpoint 192.0.2.1:51820 allowed-ips 10.99.0.1/32

ina "$TOOL" show "$DEVA" | grep -v '^#' >"$TMP/ours"
ina wg show "$DEVA" dump >"$TMP/theirs"
# wg sorts peers by handshake time: compare as sets of lines
diff -u <(sort "$TMP/theirs") <(sort "$TMP/ours") || fail "wgctl_get and wg show disagree"
IFS=$'\t' read -r -a D <"$TMP/ours"
[ "${D[0]}" = "$(cat "$TMP/a.key")" ] && [ "${D[1]}" = "$PUBA" ] && [ "${D[2]}" = 51820 ] ||
	fail "device line: ${D[*]}"
peer_fields ina "$DEVA" "$PUBB"
[ "${F[2]}" = 192.0.2.2:51820 ] && [ "${F[3]}" = 10.99.0.2/32,10.98.2.0/24 ] && [ "${F[4]}" = 0 ] ||
	fail "peer B as set: ${F[*]}"
peer_fields ina "$DEVA" "$PUBC"
[ "${F[3]}" = 10.98.3.0/24,fd00:98:3::/64 ] || fail "peer C as set: ${F[*]}"
want_idx=$(ip -n "$NSA" -o link show "$DEVA" | cut -d: -f1)
grep -qx "# ifindex $want_idx" <(ina "$TOOL" show "$DEVA") || fail "ifindex is not $want_idx"

echo "== traffic across the tunnel"
ip -n "$NSA" addr add 10.99.0.1/24 dev "$DEVA"
ip -n "$NSB" addr add 10.99.0.2/24 dev "$DEVB"
ip -n "$NSA" link set "$DEVA" up
ip -n "$NSB" link set "$DEVB" up
ip netns exec "$NSA" ping -c 3 -i 0.2 -w 10 10.99.0.2 >/dev/null || fail "no ping across the tunnel"
peer_fields ina "$DEVA" "$PUBB"
hs1=${F[4]} rx1=${F[5]} tx1=${F[6]}
now=$(date +%s)
[ "$hs1" -gt 0 ] && [ $((now - hs1)) -lt 60 ] || fail "no recent handshake with B: ${F[*]}"
[ "$rx1" -gt 0 ] && [ "$tx1" -gt 0 ] || fail "no bytes counted: ${F[*]}"
ip netns exec "$NSA" ping -c 2 -i 0.2 -w 10 10.99.0.2 >/dev/null || fail "second ping"
peer_fields ina "$DEVA" "$PUBB"
[ "${F[5]}" -gt "$rx1" ] && [ "${F[6]}" -gt "$tx1" ] || fail "rx/tx did not advance: ${F[*]}"
echo "   handshake at $hs1, rx $rx1 -> ${F[5]}, tx $tx1 -> ${F[6]}"
inb "$TOOL" set "$DEVB" peer "$PUBA" persistent-keepalive 25
peer_fields inb "$DEVB" "$PUBA"
[ "${F[4]}" -gt 0 ] && [ "${F[7]}" = 25 ] && [ "${F[3]}" = 10.99.0.1/32 ] ||
	fail "B's view of A: ${F[*]}"

echo "== an endpoint update leaves the other peer alone"
sleep 1.1 # a new handshake would now carry a later second
ina "$TOOL" set "$DEVA" peer "$PUBC" update-only endpoint '[fd00::3]:51999'
peer_fields ina "$DEVA" "$PUBC"
[ "${F[2]}" = '[fd00::3]:51999' ] || fail "C's endpoint not updated: ${F[*]}"
[ "${F[3]}" = 10.98.3.0/24,fd00:98:3::/64 ] || fail "C's allowed IPs changed: ${F[*]}"
peer_fields ina "$DEVA" "$PUBB"
[ "${F[4]}" = "$hs1" ] && [ "${F[2]}" = 192.0.2.2:51820 ] || fail "B was touched: ${F[*]}"
ina "$TOOL" set "$DEVA" peer "$PUBD" update-only endpoint 192.0.2.4:1
ina "$TOOL" show "$DEVA" | grep -q "^$PUBD" && fail "update-only created peer D"

echo "== peer removal"
ina "$TOOL" set "$DEVA" peer "$PUBC" remove
ina "$TOOL" show "$DEVA" | grep -q "^$PUBC" && fail "peer C still present after remove"
ina "$TOOL" show "$DEVA" | grep -q "^$PUBB" || fail "peer B lost with C's removal"
ip netns exec "$NSA" ping -c 1 -w 5 10.99.0.2 >/dev/null || fail "tunnel broken by C's removal"

echo "== deletion"
pid=$(daemon_pids "$DEVA")
[ -n "$pid" ] || fail "no wireguard-go process for $DEVA"
ina "$TOOL" delete "$DEVA" 2>/dev/null || fail "delete $DEVA"
[ -e "/var/run/wireguard/$DEVA.sock" ] && fail "socket of $DEVA left behind"
ip -n "$NSA" link show "$DEVA" >/dev/null 2>&1 && fail "link $DEVA left behind"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "wireguard-go $pid still runs"
ina "$TOOL" delete "$DEVA" 2>/dev/null && fail "deleting a missing device succeeded"

echo "== a daemon killed with -9 leaves a stale socket; the device can be made again"
kill -9 "$(daemon_pids "$DEVB")"
for _ in $(seq 50); do ip -n "$NSB" link show "$DEVB" >/dev/null 2>&1 || break; sleep 0.1; done
inb "$TOOL" exists "$DEVB" && fail "a stale socket counts as a device"
inb "$TOOL" show "$DEVB" 2>/dev/null && fail "reading a dead daemon succeeded"
inb "$TOOL" create "$DEVB" 2>/dev/null || fail "re-create $DEVB after kill -9"
inb "$TOOL" show "$DEVB" >/dev/null || fail "show re-created $DEVB"
inb "$TOOL" delete "$DEVB" 2>/dev/null || fail "delete $DEVB"

echo "== 5000 peers through the UAPI socket"
ip netns add "$NSN"
nsenter --net="/var/run/netns/$NSN" "$TOOL" create "$DEVN" 2>/dev/null || fail "create $DEVN"
nsenter --net="/var/run/netns/$NSN" "$TOOL" bench "$DEVN" 5000 || fail "5000-peer set/get"
[ "$(wg show "$DEVN" peers | wc -l)" = 5000 ] || fail "wg does not see 5000 peers"
nsenter --net="/var/run/netns/$NSN" "$TOOL" delete "$DEVN" 2>/dev/null || fail "delete $DEVN"

echo "PASS"
