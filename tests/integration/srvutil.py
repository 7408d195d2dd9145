"""srvutil.py - helpers for tests that run `modelfs serve` nodes.

Every process started here is registered with the test's cleanups before it
is used, so a failed assertion still stops it.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from harness import MODELFS, SRC, HubSim

sys.path.insert(0, os.path.join(SRC, "bench"))
from serve_load import rss_kb  # noqa: E402,F401  (shared with the load bench)
import nginxrun  # noqa: E402  (shared with the benches)
from nginxrun import free_port  # noqa: E402,F401


def start_serve(case, cache, *args, port=0, env=None):
    """Starts `modelfs serve` on 127.0.0.1:port; returns (url, proc)."""
    e = dict(os.environ)
    for k in ("HF_TOKEN", "HF_ENDPOINT", "MODELFS_PEER_TOKEN", "MODELFS_PEERS",
              "MODELFS_MIRRORS", "HF_HUB_OFFLINE"):
        e.pop(k, None)
    e["HF_HOME"] = os.path.join(case.tmp, "hfhome")
    if env:
        e.update(env)
    log = open(os.path.join(case.tmp, "serve-%d-%s.log" % (port, os.path.basename(cache))), "ab")
    case.addCleanup(log.close)
    p = subprocess.Popen([MODELFS, "serve", "--listen", "127.0.0.1:%d" % port,
                          "--cache", os.path.join(case.tmp, cache)] + list(args),
                         stdout=subprocess.PIPE, stderr=log, env=e, stdin=subprocess.DEVNULL)
    case.addCleanup(stop_proc, p)
    line = p.stdout.readline().decode()
    if not line.startswith("listening on "):
        raise RuntimeError("modelfs serve did not start: %r" % line)
    return line.split()[-1], p


def stop_proc(p):
    nginxrun.stop(p, signal.SIGTERM)
    if p.stdout:
        p.stdout.close()


def start_second_sim(case, root):
    log = open(os.path.join(case.tmp, "hubsim-%s.log" % os.path.basename(root)), "ab")
    case.addCleanup(log.close)
    sim = HubSim.start(root, stderr=log)
    case.addCleanup(sim.stop)
    case.check_sim(sim)  # runs before the stop above (cleanups are LIFO)
    return sim


def http(url, method="GET", headers=None, data=None, timeout=30):
    """(status, headers, body) without raising on 4xx/5xx."""
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def wait_port_closed(url, timeout=5):
    host, port = url.split("//")[1].split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), 0.2).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False


def raw(url, payload, timeout=5, source=None):
    """Sends payload on a fresh connection; returns all the server sends."""
    port = int(url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout,
                                 source_address=(source, 0) if source else None)
    try:
        s.sendall(payload)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()
