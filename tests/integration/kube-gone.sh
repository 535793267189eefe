#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 410 Gone, the three ways kube-apiserver says it: an ERROR event with a Status of code
# 410 inside the watch stream, an HTTP 410 answer to the watch, and an HTTP 410 to a
# list page whose continue token expired. Each must lead to a fresh list (no continue
# token, no resourceVersion) and a NodeList reflecting that list.
set -euo pipefail
. "${TWILL_SOURCE_DIR:?}/tests/kube-replay/lib.sh"
kr_certs

kr_py '
a = node("kb-node-a", 90, "10.244.1.0/24", KEYS["a"], "203.0.113.1")
b = node("kb-node-b", 91, "10.244.2.0/24", KEYS["b"], "203.0.113.2")
c = node("kb-node-c", 110, "10.244.3.0/24", KEYS["c"], "203.0.113.3")
d = node("kb-node-d", 250, "10.244.4.0/24", KEYS["d"], "203.0.113.4")
expired = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results."
json.dump({
  "list": [{"body": nodelist([a, b], 100)},
           {"body": nodelist([a, c], 200)},
           {"body": nodelist([a], 300, cont="kb-continue-1")},
           {"status": 410, "body": status(410, "Expired", expired)},
           {"body": nodelist([a, c, d], 300)}],
  "watch": [{"events": [{"sleep": 0.3}, event("ADDED", c), {"sleep": 0.3}, gone_event(110, 190)], "end": "close"},
            {"status": 410, "body": status(410, "Expired", "too old resource version: 200 (250)")},
            {"events": [], "end": "hold"}]},
  open(T + "/scenario.json", "w"))
'
kr_start "$KR_TMP/scenario.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1

"$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig" --count 4 --timeout 20 --linger 300 \
  >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log" || { cat "$KR_TMP/probe.log"; exit 1; }
kr_stop
cat "$KR_TMP/probe.log" >&2

kr_py '
docs = read_docs(T + "/docs.jsonl")
reqs = [r["query"] for r in read_requests(T + "/requests.jsonl")]
check([names(d) for d in docs] == [["kb-node-a", "kb-node-b"], ["kb-node-a", "kb-node-b", "kb-node-c"],
      ["kb-node-a", "kb-node-c"], ["kb-node-a", "kb-node-c", "kb-node-d"]],
      "NodeLists follow each re-list: %s" % [names(d) for d in docs])
kinds = ["watch@" + q["resourceVersion"] if q.get("watch") else ("list+continue" if "continue" in q else "list") for q in reqs]
check(kinds == ["list", "watch@100", "list", "watch@200", "list", "list+continue", "list", "watch@300"],
      "request sequence: %s" % kinds)
check(all("resourceVersion" not in q for q in reqs if not q.get("watch")), "re-lists start from scratch (no resourceVersion)")
'
grep -q "410 Gone" "$KR_TMP/probe.log" || { echo "FAIL: no 410 message in the log"; exit 1; }
echo "kube-gone: PASS"
