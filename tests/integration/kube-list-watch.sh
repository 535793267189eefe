#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lib/kube against the replay API server: paginated list, watch events (one split across
# chunks, a heartbeat that must not wake the agent), resume from a BOOKMARK's
# resourceVersion after the server ends the stream, and from the last event's after the
# connection drops mid-stream. Loopback only, no root needed.
set -euo pipefail
. "${TWILL_SOURCE_DIR:?}/tests/kube-replay/lib.sh"
kr_certs

kr_py '
a = node("kb-node-a", 90, "10.244.1.0/24", KEYS["a"], "203.0.113.1")
b = node("kb-node-b", 91, "10.244.2.0/24", KEYS["b"], "203.0.113.2")
c = node("kb-node-c", 92, "10.244.3.0/24", KEYS["c"], "203.0.113.3")
d = node("kb-node-d", 120, "10.244.4.0/24", KEYS["d"], "203.0.113.4")
a_beat = node("kb-node-a", 110, "10.244.1.0/24", KEYS["a"], "203.0.113.1", heartbeat="2026-11-21T10:05:00Z")
b_priv = node("kb-node-b", 130, "10.244.2.0/24", KEYS["b"], "203.0.113.2", "vrack-rbx", "192.168.10.2")
c_del = node("kb-node-c", 160, "10.244.3.0/24", KEYS["c"], "203.0.113.3")
a_rekey = node("kb-node-a", 170, "10.244.1.0/24", KEYS["d"], "203.0.113.1")
json.dump({"token": "kb-token-1",
  "list": [{"body": nodelist([a, b], 100, cont="eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTAwLCJzdGFydCI6ImtiLW5vZGUtYlx1MDAwMCJ9", remaining=1)},
           {"body": nodelist([c], 100)}],
  "watch": [{"events": [event("MODIFIED", a_beat), {"sleep": 0.3}, event("ADDED", d), {"sleep": 0.3},
                        {"split": event("MODIFIED", b_priv)}, bookmark(150)], "end": "close"},
            {"events": [{"sleep": 0.3}, event("DELETED", c_del), {"sleep": 0.3}], "end": "abort"},
            {"events": [{"sleep": 0.3}, event("MODIFIED", a_rekey)], "end": "hold"}]},
  open(T + "/scenario.json", "w"))
'
kr_start "$KR_TMP/scenario.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1

"$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig" --count 5 --timeout 20 --page-limit 2 \
  >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log" || { cat "$KR_TMP/probe.log"; exit 1; }
kr_stop; cat "$KR_TMP/probe.log" >&2

kr_py '
docs = read_docs(T + "/docs.jsonl")
reqs = read_requests(T + "/requests.jsonl")
check(len(docs) == 5, "5 NodeLists handed over (the heartbeat-only MODIFIED woke nobody): %d" % len(docs))
for d in docs:
    check(d["kind"] == "NodeList" and d["apiVersion"] == "v1", "document is a v1 NodeList")
check(names(docs[0]) == ["kb-node-a", "kb-node-b", "kb-node-c"], "both list pages merged: %s" % names(docs[0]))
check(names(docs[1]) == ["kb-node-a", "kb-node-b", "kb-node-c", "kb-node-d"], "ADDED kb-node-d")
b = docs[2]["items"][1]
check(b["metadata"]["annotations"].get("twill.dev/private-network") == "vrack-rbx", "MODIFIED split across chunks applied")
check(names(docs[3]) == ["kb-node-a", "kb-node-b", "kb-node-d"], "DELETED kb-node-c")
check(docs[4]["items"][0]["metadata"]["annotations"]["twill.dev/public-key"] == KEYS["d"], "event after the dropped stream applied")
item = docs[0]["items"][0]
check(item["spec"]["podCIDR"] == "10.244.1.0/24", "spec.podCIDR kept")
check(item["status"]["addresses"][0] == {"type": "ExternalIP", "address": "203.0.113.1"}, "status.addresses kept")
check("managedFields" not in item["metadata"] and "conditions" not in item["status"], "volatile fields dropped")
gets = [r for r in reqs if r["method"] == "GET"]
check(all(r["authorization"] == "Bearer kb-token-1" for r in reqs), "bearer token on every request")
check(all(r["accept"] == "application/json" for r in reqs), "Accept: application/json")
check(gets[0]["query"] == {"limit": "2"}, "first page: limit only: %s" % gets[0]["query"])
check(gets[1]["query"].get("continue", "").startswith("eyJ2Ij") and gets[1]["query"]["limit"] == "2", "second page carries the continue token")
w = [r["query"] for r in gets if r["query"].get("watch") == "1"]
check(len(w) >= 3, "three watches: %d" % len(w))
check(w[0]["resourceVersion"] == "100" and w[0]["allowWatchBookmarks"] == "true", "watch starts at the list resourceVersion 100")
check(w[1]["resourceVersion"] == "150", "resumed from the BOOKMARK resourceVersion 150: %s" % w[1]["resourceVersion"])
check(w[2]["resourceVersion"] == "160", "resumed from the last event 160 after the drop: %s" % w[2]["resourceVersion"])
check(sum(1 for r in gets if "watch" not in r["query"]) == 2, "no re-list: resuming never lists again")
'
echo "kube-list-watch: PASS"
