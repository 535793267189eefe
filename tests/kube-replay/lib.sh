# SPDX-License-Identifier: Apache-2.0
# Shared by tests/integration/kube-*.sh: a throwaway CA, the replay server on loopback,
# kubeconfig files. Everything lives in one mktemp folder removed by the trap.
KR_SRC="${TWILL_SOURCE_DIR:?}/tests/kube-replay"
KR_PROBE="${TWILL_BUILD_DIR:?}/tests/kube-replay/kube-probe"
KR_PID=

for tool in python3 openssl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (scripts/install-deps)"; exit 1; }
done
[ -x "$KR_PROBE" ] || { echo "FAIL: $KR_PROBE was not built"; exit 1; }

KR_TMP=$(mktemp -d /tmp/kb-kube.XXXXXX)
kr_cleanup() {
  if [ -n "$KR_PID" ]; then kill "$KR_PID" 2>/dev/null || true; wait "$KR_PID" 2>/dev/null || true; fi
  rm -rf "$KR_TMP"
}
trap kr_cleanup EXIT

# kr_certs: ca.crt, server.crt (127.0.0.1), client.crt (CN system:node:kb-node-a), other-ca.crt
kr_certs() {
  local d=$KR_TMP ext=$KR_TMP/ext
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -days 1 \
    -subj /CN=kb-test-ca 2>/dev/null
  openssl req -x509 "${ec[@]}" -keyout "$d/other-ca.key" -out "$d/other-ca.crt" -days 1 \
    -subj /CN=kb-other-ca 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$ext.srv"
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >"$ext.cli"
  openssl req "${ec[@]}" -keyout "$d/server.key" -out "$d/server.csr" -subj /CN=kube-apiserver 2>/dev/null
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/server.crt" -days 1 -extfile "$ext.srv" 2>/dev/null
  openssl req "${ec[@]}" -keyout "$d/client.key" -out "$d/client.csr" \
    -subj "/O=system:nodes/CN=system:node:kb-node-a" 2>/dev/null
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/client.crt" -days 1 -extfile "$ext.cli" 2>/dev/null
}

# kr_start SCENARIO.json [server args...]: starts the replay server, sets KR_PORT
kr_start() {
  local scenario=$1
  shift
  rm -f "$KR_TMP/port" "$KR_TMP/requests.jsonl"
  python3 "$KR_SRC/replay-server.py" --scenario "$scenario" --dir "$KR_TMP" \
    --cert "$KR_TMP/server.crt" --key "$KR_TMP/server.key" --max-seconds 60 "$@" \
    2>>"$KR_TMP/server.log" &
  KR_PID=$!
  for _ in $(seq 50); do
    [ -s "$KR_TMP/port" ] && break
    sleep 0.1
  done
  [ -s "$KR_TMP/port" ] || { echo "FAIL: replay server did not start"; cat "$KR_TMP/server.log"; exit 1; }
  KR_PORT=$(cat "$KR_TMP/port")
  touch "$KR_TMP/requests.jsonl"
}

kr_stop() {
  if [ -n "$KR_PID" ]; then kill "$KR_PID" 2>/dev/null || true; wait "$KR_PID" 2>/dev/null || true; fi
  KR_PID=
}

# kr_kubeconfig FILE TOKEN: certificate-authority-data and a bearer token
kr_kubeconfig() {
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kb-replay
  cluster:
    server: https://127.0.0.1:$KR_PORT
    certificate-authority-data: $(base64 -w0 "$KR_TMP/ca.crt")
contexts:
- name: kb
  context:
    cluster: kb-replay
    user: kb-agent
current-context: kb
users:
- name: kb-agent
  user:
    token: $2
KC
}

# kr_py 'python code': runs with kubeobjects imported and T set to the temp folder
kr_py() {
  PYTHONPATH="$KR_SRC" KR_TMP="$KR_TMP" python3 -c "
import os, json, sys
from kubeobjects import *
T = os.environ['KR_TMP']
$1"
}
