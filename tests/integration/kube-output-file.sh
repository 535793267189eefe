#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kube_watch_opts.output_path: every NodeList handed to the caller is also in the file,
# written atomically (no temporary file left, mode 0644) before the eventfd fires.
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
"$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig" --output "$KR_TMP/state/nodes.json" \
  --count 2 --timeout 10 >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log" \
  || { cat "$KR_TMP/probe.log"; exit 1; }
kr_stop
kr_py '
docs = read_docs(T + "/docs.jsonl")
f = T + "/state/nodes.json"
check(json.load(open(f)) == docs[-1], "the file holds the last NodeList handed over")
check(names(docs[-1]) == ["kb-node-a", "kb-node-b", "kb-node-c"], "the ADDED event reached the file")
check(oct(os.stat(f).st_mode & 0o777) == "0o644", "file mode 0644")
check(os.listdir(T + "/state") == ["nodes.json"], "no temporary file left behind")
'
echo "kube-output-file: PASS"
