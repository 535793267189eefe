#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kube_topology_start, what `twilld --kube/--kubeconfig` runs: the first list is in
# STATE_DIR/kube-nodes.json before it returns, watch events rewrite the file, and with
# the API server unreachable it returns after the first-sync wait leaving the file of
# the last run untouched (a node rebooting during an API outage still comes up).
set -euo pipefail
. "${TWILL_SOURCE_DIR:?}/tests/kube-replay/lib.sh"
kr_certs
mkdir -p "$KR_TMP/state"

kr_py '
a = node("kb-node-a", 90, "10.244.1.0/24", KEYS["a"], "203.0.113.1")
b = node("kb-node-b", 91, "10.244.2.0/24", KEYS["b"], "203.0.113.2")
c = node("kb-node-c", 120, "10.244.3.0/24", KEYS["c"], "203.0.113.3")
json.dump({"list": [{"body": nodelist([a, b], 100)}],
           "watch": [{"events": [{"sleep": 0.3}, event("ADDED", c)], "end": "hold"}]},
          open(T + "/scenario.json", "w"))
'
kr_start "$KR_TMP/scenario.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1

echo "== first sync before returning"
path=$("$KR_PROBE" topology --kubeconfig "$KR_TMP/kubeconfig" --state-dir "$KR_TMP/state" \
  --linger 0 2>"$KR_TMP/probe.log")
[ "$path" = "$KR_TMP/state/kube-nodes.json" ] || { echo "FAIL: path '$path'"; exit 1; }
cp "$path" "$KR_TMP/first.json"
echo "== watch events rewrite the file"
"$KR_PROBE" topology --kubeconfig "$KR_TMP/kubeconfig" --state-dir "$KR_TMP/state" \
  --linger 1500 >/dev/null 2>>"$KR_TMP/probe.log"
kr_stop
kr_py '
first = json.load(open(T + "/first.json"))
now = json.load(open(T + "/state/kube-nodes.json"))
check(names(first) == ["kb-node-a", "kb-node-b"], "the list was written before kube_topology_start returned")
check(names(now) == ["kb-node-a", "kb-node-b", "kb-node-c"], "the ADDED event rewrote the file")
check(oct(os.stat(T + "/state/kube-nodes.json").st_mode & 0o777) == "0o644", "file mode 0644")
check(not [f for f in os.listdir(T + "/state") if f != "kube-nodes.json"], "no temporary file left behind")
'

echo "== API server unreachable: bounded wait, last file kept"
start=$(date +%s%N)
"$KR_PROBE" topology --kubeconfig "$KR_TMP/kubeconfig" --state-dir "$KR_TMP/state" \
  --first-sync 700 --linger 0 >/dev/null 2>"$KR_TMP/probe.log"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep -m1 "no node list" "$KR_TMP/probe.log"
kr_py "
check(names(json.load(open(T + '/state/kube-nodes.json'))) == ['kb-node-a', 'kb-node-b', 'kb-node-c'], 'the last synced file is untouched')
check(600 <= $ms < 5000, 'returned after the first-sync wait: $ms ms')
"
echo "kube-topology-file: PASS"
