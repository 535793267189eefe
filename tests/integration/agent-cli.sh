#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# twilld's start-up choices, without a network:
# - the node name: --node, else $NODE_NAME as given, else the hostname as kubelet names
#   the Node (trimmed, lowercased, domain kept), read in a private UTS namespace;
# - the state folder: one made 0755 beforehand (kubelet's hostPath DirectoryOrCreate,
#   mkdir -p) is tightened to 0700 and the key created in it; a key file others can read
#   is refused with a message naming it.
set -euo pipefail
BUILD=${TWILL_BUILD_DIR:?}
TWILLD=$BUILD/tools/twilld
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (a UTS namespace, chown)"; exit 77; }
[ -x "$TWILLD" ] || fail "twilld is not built ($TWILLD)"
command -v unshare > /dev/null || fail "unshare is missing (util-linux, scripts/install-deps)"
WORK=$(mktemp -d /tmp/agcli.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

got=$(NODE_NAME=Worker-A "$TWILLD" --show-node-name)
[ "$got" = Worker-A ] || fail "NODE_NAME=Worker-A gave '$got' (spec.nodeName is taken as is)"
got=$(NODE_NAME=worker-a "$TWILLD" --show-node-name --node worker-b)
[ "$got" = worker-b ] || fail "--node worker-b with NODE_NAME set gave '$got'"
echo "ok: --node, then NODE_NAME as given"
hosted() {   # hosted HOSTNAME: what twilld picks with neither --node nor NODE_NAME
	env -u NODE_NAME unshare -u python3 -c '
import os, socket, sys
socket.sethostname(sys.argv[1])
os.execv(sys.argv[2], [sys.argv[2], "--show-node-name"])' "$1" "$TWILLD"
}
for c in "Worker-01.Example.COM:worker-01.example.com" "NODE7:node7" " node-8 :node-8" "n9:n9"; do
	got=$(hosted "${c%:*}")
	[ "$got" = "${c##*:}" ] || fail "hostname '${c%:*}' gave node name '$got', kubelet would use '${c##*:}'"
	echo "ok: hostname '${c%:*}' -> node '$got'"
done
[ "$(hostname)" = "$(cat /proc/sys/kernel/hostname)" ] || fail "the test changed this machine's hostname"

ST=$WORK/state
install -d -m 0755 "$ST"
pub=$("$TWILLD" --show-public-key --state-dir "$ST" 2> "$WORK/err") ||
	{ cat "$WORK/err"; fail "twilld refused a 0755 state folder"; }
[ ${#pub} -eq 44 ] || fail "no public key printed: '$pub'"
[ "$(stat -c %a "$ST")" = 700 ] || fail "state folder left at $(stat -c %a "$ST")"
[ "$(stat -c %a "$ST/private.key")" = 600 ] || fail "key file mode $(stat -c %a "$ST/private.key")"
grep -q "key folder '$ST' had mode 0755: tightened to 0700" "$WORK/err" || { cat "$WORK/err"; fail "the tightening was not logged"; }
echo "ok: a 0755 state folder is tightened to 0700 (logged), key 0600"
pub2=$("$TWILLD" --show-public-key --state-dir "$ST" 2> /dev/null)
[ "$pub2" = "$pub" ] || fail "the key changed on the second start"
chmod 0644 "$ST/private.key"
if "$TWILLD" --show-public-key --state-dir "$ST" > "$WORK/out" 2> "$WORK/err"; then
	fail "a key file readable by others was used"
fi
grep -q "key file '$ST/private.key' has mode 0644" "$WORK/err" || { cat "$WORK/err"; fail "no message naming the open key file"; }
[ ! -s "$WORK/out" ] || fail "printed a key from an open key file"
echo "ok: a key file others can read is refused"
echo "PASS"
