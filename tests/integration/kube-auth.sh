#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Credentials and errors: a rejected token (401) is reported clearly and retried with
# exponential back-off, 403 and 5xx are retried, the in-cluster token file is re-read
# (kubelet rotates projected tokens), client certificates from a kubeconfig reach the
# server, and a server whose certificate the CA did not sign is refused.
set -euo pipefail
. "${TWILL_SOURCE_DIR:?}/tests/kube-replay/lib.sh"
kr_certs

kr_py '
a = node("kb-node-a", 90, "10.244.1.0/24", KEYS["a"], "203.0.113.1")
json.dump({"token": "kb-right", "list": [{"body": nodelist([a], 100)}]}, open(T + "/s401.json", "w"))
json.dump({"list": [{"status": 403, "body": status(403, "Forbidden", "nodes is forbidden: User \"system:serviceaccount:kube-system:twill\" cannot list resource \"nodes\" in API group \"\" at the cluster scope")},
                    {"status": 503}, {"body": nodelist([a], 100)}],
           "watch": [{"status": 500}, {"events": [{"sleep": 0.2}], "end": "close"},
                     {"events": [{"sleep": 0.2}, event("DELETED", a)], "end": "hold"}]},
          open(T + "/s403.json", "w"))
json.dump({"list": [{"body": nodelist([a], 100)}]}, open(T + "/sok.json", "w"))
'

echo "== 401: wrong token, clear message, bounded exponential back-off"
kr_start "$KR_TMP/s401.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-wrong
if "$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig" --count 1 --timeout 3 \
    >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log"; then
  echo "FAIL: a rejected token produced a topology"; exit 1
fi
kr_stop
grep -m1 "401 Unauthorized" "$KR_TMP/probe.log"
grep -q "rejected the credentials" "$KR_TMP/probe.log" || { echo "FAIL: 401 not explained"; exit 1; }
kr_py '
reqs = read_requests(T + "/requests.jsonl")
t = [r["time"] for r in reqs]
gaps = [round(y - x, 3) for x, y in zip(t, t[1:])]
print("retries at gaps", gaps)
check(3 <= len(reqs) <= 15, "retried, but boundedly: %d requests in 3 s" % len(reqs))
check(all(r["authorization"] == "Bearer kb-wrong" for r in reqs), "the configured token was sent")
check(gaps[0] < max(gaps[-2:]) and max(gaps[-2:]) >= 0.3, "back-off grows to its cap (0.4 s +-20%%)")
'

echo "== 403, 503 on list, 500 on watch: retried until the topology arrives"
kr_start "$KR_TMP/s403.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1
"$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig" --count 2 --timeout 10 \
  >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log" || { cat "$KR_TMP/probe.log"; exit 1; }
kr_stop
grep -m1 "403 Forbidden" "$KR_TMP/probe.log"
grep -q "HTTP 500" "$KR_TMP/probe.log" || { echo "FAIL: watch 500 not logged"; exit 1; }
kr_py '
docs = read_docs(T + "/docs.jsonl")
check(names(docs[0]) == ["kb-node-a"] and names(docs[1]) == [], "topology after the errors, then the DELETED")
kinds = [("watch@" + r["query"]["resourceVersion"]) if r["query"].get("watch") else "list" for r in read_requests(T + "/requests.jsonl")]
check(kinds == ["list", "list", "list", "watch@100", "watch@100", "watch@100"], "list retried, watch resumed at 100: %s" % kinds)
# two failed lists must not carry over: the 500 on the watch waits the first step again
# (100 ms +-20%), not the fourth (400 ms)
w = [r["time"] for r in read_requests(T + "/requests.jsonl") if r["query"].get("watch")]
check(w[1] - w[0] < 0.3, "back-off starts again after a good list: watch retried %.2f s after its 500" % (w[1] - w[0]))
'

echo "== in-cluster: service account files, token re-read on every request"
mkdir -p "$KR_TMP/sa"
cp "$KR_TMP/ca.crt" "$KR_TMP/sa/ca.crt"
echo "kb-sa-token-1" >"$KR_TMP/sa/token"
kr_py '
a = node("kb-node-a", 90, "10.244.1.0/24", KEYS["a"], "203.0.113.1")
b = node("kb-node-b", 120, "10.244.2.0/24", KEYS["b"], "203.0.113.2")
json.dump({"list": [{"body": nodelist([a], 100)}],
           "watch": [{"events": [{"sleep": 0.5}], "end": "close"},
                     {"events": [{"sleep": 0.2}, event("ADDED", b)], "end": "hold"}]},
          open(T + "/sic.json", "w"))
'
kr_start "$KR_TMP/sic.json"
rm -f "$KR_TMP/docs.jsonl"
(
  for _ in $(seq 50); do [ -s "$KR_TMP/docs.jsonl" ] && break; sleep 0.05; done
  echo "kb-sa-token-2" >"$KR_TMP/sa/token.new" && mv "$KR_TMP/sa/token.new" "$KR_TMP/sa/token"
) &
rotator=$!
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$KR_PORT \
  "$KR_PROBE" watch --in-cluster "$KR_TMP/sa" --count 2 --timeout 10 \
  >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log" || { cat "$KR_TMP/probe.log"; exit 1; }
wait "$rotator"
kr_stop
kr_py '
reqs = read_requests(T + "/requests.jsonl")
auth = [r["authorization"] for r in reqs]
check(auth[0] == "Bearer kb-sa-token-1", "first request with the mounted token")
check(auth[-1] == "Bearer kb-sa-token-2", "rotated token used after the file changed: %s" % auth)
check(reqs[0]["user_agent"].startswith("twilld/"), "User-Agent twilld/<version>")
'

echo "== kubeconfig with client-certificate-data / client-key-data (no token)"
kr_start "$KR_TMP/sok.json" --client-ca "$KR_TMP/ca.crt"
cat >"$KR_TMP/kubeconfig-cert" <<KC
apiVersion: v1
kind: Config
current-context: kb-cert
contexts:
- name: kb-cert
  context: {cluster: kb, user: kb-node}
clusters:
- name: kb
  cluster:
    server: https://127.0.0.1:$KR_PORT/
    certificate-authority: ca.crt
users:
- name: kb-node
  user:
    client-certificate-data: $(base64 -w0 "$KR_TMP/client.crt")
    client-key-data: $(base64 -w0 "$KR_TMP/client.key")
KC
"$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig-cert" --count 1 --timeout 10 \
  >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log" || { cat "$KR_TMP/probe.log"; exit 1; }
kr_stop
kr_py '
reqs = read_requests(T + "/requests.jsonl")
check(reqs[0]["client_cn"] == "system:node:kb-node-a", "client certificate presented: %s" % reqs[0]["client_cn"])
check(reqs[0]["authorization"] is None, "no bearer token without one configured")
'

echo "== a server certificate from another CA is refused"
kr_start "$KR_TMP/sok.json"
kr_kubeconfig "$KR_TMP/kubeconfig" kb-token-1
sed -i "s|certificate-authority-data: .*|certificate-authority-data: $(base64 -w0 "$KR_TMP/other-ca.crt")|" "$KR_TMP/kubeconfig"
if "$KR_PROBE" watch --kubeconfig "$KR_TMP/kubeconfig" --count 1 --timeout 2 \
    >"$KR_TMP/docs.jsonl" 2>"$KR_TMP/probe.log"; then
  echo "FAIL: an unverified server was trusted"; exit 1
fi
kr_stop
grep -m1 -i "certificate" "$KR_TMP/probe.log"
[ ! -s "$KR_TMP/requests.jsonl" ] || { echo "FAIL: a request reached the untrusted server"; exit 1; }
echo "kube-auth: PASS"
