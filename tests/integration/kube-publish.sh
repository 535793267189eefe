#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Publishing the node's public key: a merge-patch PATCH of the twill.dev/public-key
# annotation, by hand (kube_publish_public_key) and by the watch's publisher thread,
# which waits for its node to register (404), publishes when the node appears without
# our key, retries a failed PATCH with back-off, and never interrupts the watch.
set -euo pipefail
. "${TWILL_SOURCE_DIR:?}/tests/kube-replay/lib.sh"
kr_certs

kr_py '
json.dump({"patch": [{"status": 404, "body": status(404, "NotFound", "nodes \"kb-node-z\" not found")}]},
          open(T + "/s1.json", "w"))
b = node("kb-node-b", 91, "10.244.2.0/24", KEYS["b"], "203.0.113.2")
a_new = node("kb-node-a", 120, "10.244.1.0/24", None, "203.0.113.1")
a_keyed = node("kb-node-a", 130, "10.244.1.0/24", KEYS["a"], "203.0.113.1")
json.dump({"patch": [{"status": 404, "body": status(404, "NotFound", "nodes \"kb-node-a\" not found")},
                     {"status": 503}],
           "list": [{"body": nodelist([b], 100)}],
           "watch": [{"events": [{"sleep": 0.3}, event("ADDED", a_new), {"sleep": 1.0},
                                 event("MODIFIED", a_keyed)], "end": "hold"}]},
          open(T + "/s2.json", "w"))
'
key=$(PYTHONPATH="$KR_SRC" python3 -c 'from kubeobjects import KEYS; print(KEYS["a"])')

echo "== kube_publish_public_key: one PATCH, then a 404 for an unknown node"
kr_start "$KR_TMP/s1.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1
if "$KR_PROBE" publish --kubeconfig "$KR_TMP/kubeconfig" --node kb-node-z --key "$key" 2>"$KR_TMP/probe.log"; then
  echo "FAIL: publishing on a missing node succeeded"; exit 1
fi
grep -m1 "not found" "$KR_TMP/probe.log"
"$KR_PROBE" publish --kubeconfig "$KR_TMP/kubeconfig" --node kb-node-a --key "$key"
if "$KR_PROBE" publish --kubeconfig "$KR_TMP/kubeconfig" --node kb-node-a --key "not-a-key" 2>>"$KR_TMP/probe.log"; then
  echo "FAIL: a malformed key was sent"; exit 1
fi
kr_stop
kr_py '
reqs = read_requests(T + "/requests.jsonl")
check(len(reqs) == 2, "two PATCHes reached the server, the malformed key none: %d" % len(reqs))
r = reqs[1]
check(r["method"] == "PATCH" and r["path"] == "/api/v1/nodes/kb-node-a", "PATCH /api/v1/nodes/kb-node-a")
check(r["content_type"] == "application/merge-patch+json", "Content-Type %s" % r["content_type"])
check(json.loads(r["body"]) == {"metadata": {"annotations": {"twill.dev/public-key": KEYS["a"]}}}, "merge-patch body %s" % r["body"])
check(r["authorization"] == "Bearer kb-token-1", "bearer token sent")
'

echo "== the watch publishes once its node registers, retrying a 503"
kr_start "$KR_TMP/s2.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1
"$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig" --node kb-node-a --key "$key" \
  --count 3 --timeout 15 --linger 800 >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log" \
  || { cat "$KR_TMP/probe.log"; exit 1; }
kr_stop
cat "$KR_TMP/probe.log" >&2
kr_py '
docs = read_docs(T + "/docs.jsonl")
reqs = read_requests(T + "/requests.jsonl")
kinds = [r["method"] + ("@" + r["query"]["resourceVersion"] if r["query"].get("watch") else "") for r in reqs]
check(sorted(kinds[:2]) == ["GET", "PATCH"] and kinds[2:] == ["GET@100", "PATCH", "PATCH"],
      "PATCH (404) beside the list, one watch, PATCH on ADDED (503), retried PATCH: %s" % kinds)
check(0.05 <= reqs[4]["time"] - reqs[3]["time"] < 1.0, "retried after a back-off: %.2f s" % (reqs[4]["time"] - reqs[3]["time"]))
check(json.loads(reqs[4]["body"]) == {"metadata": {"annotations": {"twill.dev/public-key": KEYS["a"]}}}, "the public key, nothing else")
check([names(d) for d in docs] == [["kb-node-b"], ["kb-node-a", "kb-node-b"], ["kb-node-a", "kb-node-b"]], "NodeLists")
check(docs[2]["items"][0]["metadata"]["annotations"]["twill.dev/public-key"] == KEYS["a"], "our key seen back, no further PATCH")
# everything the agent asks of the API server, as RBAC verbs: what twill-rbac.yaml grants
def verb(r):
    one = r["path"].startswith("/api/v1/nodes/")
    if r["method"] == "GET":
        return "get" if one else ("watch" if r["query"].get("watch") else "list")
    return r["method"].lower() if one else r["method"].lower() + " (collection)"
verbs = sorted(set(verb(r) for r in reqs))
check(verbs == ["list", "patch", "watch"], "RBAC verbs used: %s (twill-rbac.yaml grants list, watch, patch)" % verbs)
'
echo "kube-publish: PASS"
