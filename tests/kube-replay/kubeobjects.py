# SPDX-License-Identifier: Apache-2.0
"""Kubernetes objects as kube-apiserver serialises them, for replay scenarios and checks."""
import json

KEYS = {  # WireGuard public keys (base64 of 32 bytes), made up for the tests
    "a": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    "b": "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=",
    "c": "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=",
    "d": "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=",
}


def node(name, rv, cidr, key=None, public_ip=None, private_net=None, private_ip=None,
         heartbeat="2026-11-21T10:00:00Z"):
    ann = {"node.alpha.kubernetes.io/ttl": "0",
           "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    if key:
        ann["twill.dev/public-key"] = key
    if private_net:
        ann["twill.dev/private-network"] = private_net
        ann["twill.dev/private-ip"] = private_ip
    addrs = [{"type": "InternalIP", "address": private_ip or "10.0.0.1"},
             {"type": "Hostname", "address": name}]
    if public_ip:
        addrs.insert(0, {"type": "ExternalIP", "address": public_ip})
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {
            "name": name, "uid": "uid-" + name, "resourceVersion": str(rv),
            "creationTimestamp": "2026-11-20T08:00:00Z",
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            "annotations": ann,
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                               "apiVersion": "v1", "time": heartbeat,
                               "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}],
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "capacity": {"cpu": "32", "memory": "131072Mi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": heartbeat,
                            "lastTransitionTime": "2026-11-20T08:01:00Z",
                            "message": "kubelet is posting ready status"}],
            "addresses": addrs,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.31.2", "osImage": "Debian GNU/Linux 12"},
        },
    }


def nodelist(items, rv, cont=None, remaining=None):
    meta = {"resourceVersion": str(rv)}
    if cont:
        meta["continue"] = cont
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    # kube-apiserver leaves kind/apiVersion out of list items
    items = [{k: v for k, v in n.items() if k not in ("kind", "apiVersion")} for n in items]
    return {"kind": "NodeList", "apiVersion": "v1", "metadata": meta, "items": items}


def event(typ, obj):
    return {"type": typ, "object": obj}


def bookmark(rv):
    return {"type": "BOOKMARK", "object": {"kind": "Node", "apiVersion": "v1",
            "metadata": {"resourceVersion": str(rv), "creationTimestamp": None},
            "spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                                   "nodeInfo": {}}}}


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def gone_event(old, new):
    return {"type": "ERROR", "object": status(
        410, "Expired", "too old resource version: %s (%s)" % (old, new))}


def read_docs(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_requests(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def names(doc):
    return [n["metadata"]["name"] for n in doc["items"]]


def check(cond, msg):
    if not cond:
        raise SystemExit("FAIL: " + msg)
    print("ok: " + msg)
