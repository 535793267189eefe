#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The deployment files, statically: the manifests parse and ask for exactly what the
# agent needs, and the systemd unit passes systemd-analyze. Nothing here talks to a
# cluster (there is none on this machine).
set -euo pipefail
src=${TWILL_SOURCE_DIR:?}
build=${TWILL_BUILD_DIR:?}
python3 -c 'import yaml' 2>/dev/null || { echo "FAIL: python3-yaml is missing (scripts/install-deps)"; exit 1; }

python3 - "$src/deploy/kubernetes" <<'PY'
import sys, yaml
d = sys.argv[1]

def check(cond, msg):
    if not cond:
        raise SystemExit("FAIL: " + msg)
    print("ok: " + msg)

docs = {}
for f in ("twill-rbac.yaml", "twill.yaml", "twill-cleanup.yaml"):
    for doc in yaml.safe_load_all(open(d + "/" + f)):
        docs[(doc["kind"], doc["metadata"]["name"])] = doc
check(set(docs) == {("ServiceAccount", "twill"), ("ClusterRole", "twill"),
                    ("ClusterRoleBinding", "twill"), ("DaemonSet", "twill"),
                    ("DaemonSet", "twill-cleanup")}, "objects: %s" % sorted(docs))
rules = docs[("ClusterRole", "twill")]["rules"]
check(rules == [{"apiGroups": [""], "resources": ["nodes"],
                 "verbs": ["list", "watch", "patch"]}], "least RBAC: nodes list/watch/patch")
crb = docs[("ClusterRoleBinding", "twill")]
check(crb["subjects"] == [{"kind": "ServiceAccount", "name": "twill", "namespace": "kube-system"}]
      and crb["roleRef"]["name"] == "twill", "binding ties the ServiceAccount to the role")
ds = docs[("DaemonSet", "twill")]
spec = ds["spec"]["template"]["spec"]
check(ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items(),
      "selector matches the pod labels")
check(spec["hostNetwork"] is True and spec["serviceAccountName"] == "twill", "host network, own ServiceAccount")
check(spec["priorityClassName"] == "system-node-critical", "system-node-critical")
check({"operator": "Exists"} in spec["tolerations"], "tolerates every taint")
agent = spec["containers"][0]
check("--kube" in agent["command"], "agent reads the topology from the API server")
env = {e["name"]: e for e in agent["env"]}
check(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", "NODE_NAME from the downward API")
check(agent["securityContext"].get("privileged") is True, "privileged (bidirectional propagation needs it)")
vols = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"]}
mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
for path in ("/sys/fs/bpf", "/var/lib/twill", "/etc/cni/net.d", "/opt/cni/bin", "/var/run/wireguard", "/lib/modules"):
    check(path in mounts and vols[mounts[path]["name"]] == path, "host %s mounted at the same path" % path)
check(mounts["/sys/fs/bpf"].get("mountPropagation") == "Bidirectional", "bpffs mounted Bidirectional")
check(mounts["/lib/modules"].get("readOnly") is True, "/lib/modules read-only")
init = spec["initContainers"][0]
check(any(m["mountPath"] == "/host/opt/cni/bin" for m in init["volumeMounts"]) and "mv -f" in init["command"][-1],
      "init container installs the plugin with an atomic rename")
clean = docs[("DaemonSet", "twill-cleanup")]["spec"]["template"]["spec"]
check("twilld cleanup" in clean["initContainers"][0]["command"][-1], "uninstall runs twilld cleanup on every node")
check({"operator": "Exists"} in clean["tolerations"], "cleanup reaches tainted nodes too")
PY

unit="$build/deploy/twilld.service"
for line in KillMode=process Restart=always After=network-online.target \
            EnvironmentFile=-/etc/default/twill; do
  grep -qx "$line" "$unit" || { echo "FAIL: $unit lacks $line"; exit 1; }
  echo "ok: unit has $line"
done
command -v systemd-analyze >/dev/null ||
  { echo "FAIL: systemd-analyze is missing (package systemd, scripts/install-deps)"; exit 1; }
tmp=$(mktemp -d /tmp/kb-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# the binary is not installed here: verify everything else
sed 's|^ExecStart=[^ ]*|ExecStart=/bin/true|' "$unit" >"$tmp/twilld.service"
systemd-analyze verify "$tmp/twilld.service"
echo "ok: systemd-analyze verify"
echo "kube-manifests: PASS"
