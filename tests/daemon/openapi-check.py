#!/usr/bin/env python3
"""docs/vireod-api.yaml against the routes vireod really serves.

1. The routes of `vireod --list-routes` (its dispatch table) and the
   file's paths and methods are the same set.
2. A running vireod (temporary state dir and socket, no VM started) is
   asked every route of the file: none answers "no such endpoint" or 405,
   and each status is one the file lists for that operation; a path not in
   the file answers 404 "no such endpoint" and a method not in it 405 with
   an Allow header naming the file's methods.

The file is read line by line (paths at two spaces, methods at four,
response codes at eight), so no YAML library is needed.

    openapi-check.py VIREOD VMM YAML
"""
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

vireod, vmm, yaml_path = sys.argv[1:4]
METHODS = {"get", "put", "post", "delete", "patch"}


def read_spec(path):
    ops = {}          # (METHOD, path) -> set of status codes
    cur_path = cur_op = None
    in_responses = False
    in_paths = False
    for line in open(path):
        if re.match(r"^\S", line):
            in_paths = line.startswith("paths:")
            continue
        if not in_paths:
            continue
        m = re.match(r"^  (/\S*):\s*$", line)
        if m:
            cur_path, cur_op, in_responses = m.group(1), None, False
            continue
        m = re.match(r"^    (\w+):\s*$", line)
        if m:
            cur_op = m.group(1).upper() if m.group(1) in METHODS else None
            if cur_op:
                ops[(cur_op, cur_path)] = set()
            in_responses = False
            continue
        if cur_op and re.match(r"^      responses:\s*$", line):
            in_responses = True
            continue
        if cur_op and re.match(r"^      \w", line):
            in_responses = False
            continue
        m = re.match(r"^        '(\d{3})':\s*$", line)
        if m and in_responses and cur_op:
            ops[(cur_op, cur_path)].add(int(m.group(1)))
    return ops


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


def request(sock, method, path, body=None):
    c = UnixHTTPConnection(sock)
    c.request(method, path, body=body,
              headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse()
    status, allow = r.status, r.getheader("Allow")
    # the event stream does not end: read no further than its headers
    data = b"" if path.startswith("/events") and status == 200 else r.read()
    c.close()
    return status, data.decode(errors="replace"), allow


def fill(path):
    """A path of the file with its parameters filled in (none exists)."""
    return (path.replace("{name}", "no-such-vm").replace("{pool}", "no-such-pool")
            .replace("{volume}", "no-such-volume").replace("{network}", "no-such-network")
            .replace("{snapshot}", "no-such-snap"))


failures = []
spec = read_spec(yaml_path)
if not spec:
    sys.exit(f"FAIL: no operations found in {yaml_path}")
served = set()
for line in subprocess.run([vireod, "--list-routes"], check=True, capture_output=True,
                           text=True).stdout.splitlines():
    method, path = line.split()
    served.add((method, path))
for op in sorted(served - spec.keys()):
    failures.append(f"served but not in {yaml_path}: {op[0]} {op[1]}")
for op in sorted(spec.keys() - served):
    failures.append(f"in {yaml_path} but not served: {op[0]} {op[1]}")
print(f"{len(served)} routes served, {len(spec)} operations in the file")

tmp = tempfile.mkdtemp(prefix="vireod-openapi.")
sock = os.path.join(tmp, "sock")
log = open(os.path.join(tmp, "log"), "w")
d = subprocess.Popen([vireod, "--foreground", "--state-dir", os.path.join(tmp, "state"),
                      "--run-dir", os.path.join(tmp, "run"), "--socket", sock, "--vmm", vmm],
                     stdout=log, stderr=subprocess.STDOUT)
try:
    for _ in range(300):
        if os.path.exists(sock):
            break
        if d.poll() is not None:
            sys.exit("FAIL: vireod ended at start")
        time.sleep(0.1)
    # invalid (no kernel): 400
    bodies = {("POST", "/vms"): '{"name": "x"}', ("PUT", "/vms/{name}"): '{"name": "x"}'}
    for (method, path), codes in sorted(spec.items()):
        url = fill(path)
        status, body, _ = request(sock, method, url, bodies.get((method, path)))
        print(f"{method} {url} -> {status} {body[:100]}")
        if status == 405 or (status == 404 and "no such endpoint" in body):
            failures.append(f"{method} {path}: not served ({status} {body})")
        elif status not in codes:
            failures.append(f"{method} {path}: answered {status}, not among the file's {sorted(codes)}")
    # what is not in the file is not served
    for url in ("/vms/x/frobnicate", "/pools/x/volumes/y/z", "/vms/", "/pools/x/"):
        status, body, _ = request(sock, "GET", url)
        if status != 404 or "no such endpoint" not in body:
            failures.append(f"GET {url} answered {status} {body}")
    for path in {p for _, p in spec}:
        url = fill(path)
        methods = {m for m, p in spec if p == path}
        for m in sorted({"GET", "PUT", "POST", "DELETE", "PATCH"} - methods):
            status, body, allow = request(sock, m, url)
            got = set((allow or "").replace(" ", "").split(",")) - {""}
            if status != 405 or got != methods:
                failures.append(f"{m} {url}: answered {status} (Allow: {allow}), expected 405 "
                                f"with Allow {sorted(methods)}")
finally:
    d.terminate()
    rc = d.wait(timeout=60)
    log.close()
    if rc != 0:
        failures.append(f"vireod exit status {rc} after SIGTERM")
    out = open(os.path.join(tmp, "log")).read()
    if "Sanitizer" in out or "runtime error" in out:
        failures.append("sanitizer report from vireod:\n" + out)
    shutil.rmtree(tmp, ignore_errors=True)

for f in failures:
    print("FAIL:", f)
if failures:
    sys.exit(1)
print("openapi-check: ok")
