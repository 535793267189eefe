#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An HTTPS server on loopback that answers like a Kubernetes API server for Nodes.

It replays a scenario (JSON) of responses in the exact wire form kube-apiserver uses:
NodeList bodies with metadata.resourceVersion and continue tokens, watch streams as
chunked newline-delimited JSON events (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR), and
Status objects for 401/403/404/410. Every request is appended to requests.jsonl so a
test can assert what the client sent. It stops by itself after --max-seconds.

Scenario:
  {"token": "T",                      # optional: other bearer tokens get 401 Unauthorized
   "list":  [{"status": 200, "body": {...}}, ...],   # GET /api/v1/nodes (no watch)
   "watch": [{"status": 200, "events": [EVENT | {"sleep": s} | {"split": EVENT}],
              "end": "close" | "hold"}, ...],          # GET /api/v1/nodes?watch=1
   "patch": [{"status": 200, "body": {...}}, ...]}    # PATCH /api/v1/nodes/NAME
Each kind has its own queue. When a queue runs dry: list repeats its last answer, a
watch holds the stream open without events (until timeoutSeconds, at most 30 s), and
a patch answers 200 with a Node.
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 410: "Expired",
           500: "InternalError", 503: "ServiceUnavailable"}


class State:
    def __init__(self, scenario, log_path):
        self.lock = threading.Lock()
        self.queues = {k: list(scenario.get(k, [])) for k in ("list", "watch", "patch")}
        self.last = {}
        self.token = scenario.get("token")
        self.log = open(log_path, "a", buffering=1)

    def next(self, kind):
        with self.lock:
            q = self.queues[kind]
            if q:
                self.last[kind] = q.pop(0)
                return self.last[kind]
            if kind == "list":
                return self.last.get("list")
            return None

    def record(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-replay"

    def log_message(self, fmt, *args):
        sys.stderr.write("replay: " + (fmt % args) + "\n")

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def handle_any(self, method):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        cert = self.connection.getpeercert()
        client_cn = None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        client_cn = v
        st.record({"time": time.time(), "method": method, "path": url.path,
                   "query": {k: v[0] for k, v in query.items()},
                   "authorization": self.headers.get("Authorization"),
                   "content_type": self.headers.get("Content-Type"),
                   "accept": self.headers.get("Accept"),
                   "user_agent": self.headers.get("User-Agent"),
                   "client_cn": client_cn, "body": body})
        if st.token is not None and self.headers.get("Authorization") != "Bearer " + st.token:
            self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
            return
        if method == "PATCH" and url.path.startswith("/api/v1/nodes/"):
            self.answer(st.next("patch"), "patch", url.path.rsplit("/", 1)[1], body)
        elif method == "GET" and url.path == "/api/v1/nodes":
            if query.get("watch", ["0"])[0] in ("1", "true"):
                self.watch(st.next("watch"), query)
            else:
                self.answer(st.next("list"), "list", None, body)
        else:
            self.send_json(404, status_obj(404, "NotFound", "the server could not find "
                                           "the requested resource"))

    def answer(self, resp, kind, name, body):
        if resp is None:
            if kind == "patch":
                node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name}}
                node["metadata"].update(json.loads(body).get("metadata", {}))
                self.send_json(200, node)
            else:
                self.send_json(500, status_obj(500, "InternalError", "no scenario"))
            return
        code = resp.get("status", 200)
        obj = resp.get("body")
        if obj is None:
            obj = status_obj(code, REASONS.get(code, "Unknown"), resp.get("message", ""))
        self.send_json(code, obj)

    def watch(self, resp, query):
        timeout = min(float(query.get("timeoutSeconds", ["30"])[0]), 30.0)
        if resp is not None and resp.get("status", 200) != 200:
            self.answer(resp, "watch", None, "")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        events = resp.get("events", []) if resp else []
        end = resp.get("end", "close") if resp else "hold"
        try:
            for ev in events:
                if "sleep" in ev:
                    time.sleep(ev["sleep"])
                elif "split" in ev:
                    line = json.dumps(ev["split"]).encode() + b"\n"
                    half = len(line) // 2
                    self.chunk(line[:half])
                    time.sleep(0.1)
                    self.chunk(line[half:])
                elif "raw" in ev:
                    self.chunk(ev["raw"].encode())
                else:
                    self.chunk(json.dumps(ev).encode() + b"\n")
            if end == "hold":
                deadline = time.time() + timeout
                while time.time() < deadline:
                    time.sleep(0.1)
            elif end == "abort":
                # the connection drops in the middle of the stream (no last chunk)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def do_GET(self):
        self.handle_any("GET")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--dir", required=True, help="writes port and requests.jsonl here")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca", help="ask for client certificates signed by this CA")
    ap.add_argument("--max-seconds", type=float, default=60)
    args = ap.parse_args()

    with open(args.scenario) as f:
        scenario = json.load(f)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.state = State(scenario, os.path.join(args.dir, "requests.jsonl"))
    port = httpd.server_address[1]
    tmp = os.path.join(args.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, os.path.join(args.dir, "port"))
    threading.Timer(args.max_seconds, lambda: os._exit(0)).start()
    try:
        httpd.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
