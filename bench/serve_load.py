#!/usr/bin/env python3
"""serve_load.py - `modelfs serve` under load (issue 12): wrk with many
concurrent clients on cached content, with and without slowloris
connections held open at the same time, and the server's RSS.

    python3 bench/serve_load.py --bin build/cli/modelfs
        [--conns 200] [--secs 30] [--loris 50] [--path-size 16K]

It starts the hub simulator with one public repo, a `modelfs serve
--pull-through` node in front of it, fills the node's cache with one GET,
then runs wrk twice against /Org/m/resolve/main/<file>:
  baseline  --conns clients for --secs seconds, nothing else
  loaded    the same while --loris slowloris connections trickle a header
            byte each second (reconnecting when the server drops them)
and prints wrk's p50/p99 latency, requests/s, errors of each run, the
ratio loaded/baseline, and the server's RSS before, at most during, and
after. Nothing here passes or fails; tests/integration/test_serve_load.py
runs a short version that asserts no errors and bounded RSS. Figures on a
shared machine move with other load: compare the ratio, not the absolutes.

The functions (Slowloris, RssSampler, run_wrk) are shared with that test.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


class Slowloris:
    """n connections that each send a request head one byte per interval
    and never finish it; a connection the server closes is reopened."""

    HEAD = b"GET /api/models/Org/m HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000

    def __init__(self, host, port, n, interval=1.0):
        self.addr = (host, port)
        self.n = n
        self.interval = interval
        self.stop_ev = threading.Event()
        self.reconnects = 0
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self):
        try:
            s = socket.create_connection(self.addr, 5)
            s.setblocking(False)
            return [s, 0]
        except OSError:
            return None

    def _run(self):
        conns = [self._open() for _ in range(self.n)]
        while not self.stop_ev.wait(self.interval):
            for i, c in enumerate(conns):
                if c is None:
                    conns[i] = self._open()
                    continue
                s, off = c
                try:
                    s.send(self.HEAD[off % len(self.HEAD):off % len(self.HEAD) + 1])
                    c[1] += 1
                    self.sent += 1
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    s.close()
                    self.reconnects += 1
                    conns[i] = self._open()
        for c in conns:
            if c:
                c[0].close()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(10)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Largest VmRSS of a process, sampled every 0.2 s."""

    def __init__(self, pid):
        self.pid = pid
        self.max_kb = rss_kb(pid)
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.wait(0.2):
            try:
                self.max_kb = max(self.max_kb, rss_kb(self.pid))
            except OSError:
                return

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_ev.set()
        self.thread.join(5)
        return self.max_kb


def _ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url, conns, secs, threads=2, timeout_s=10):
    """Runs wrk --latency; returns a dict of what it printed."""
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % secs,
                          "--timeout", "%ds" % timeout_s, "--latency", url],
                         capture_output=True, text=True, timeout=secs + 120)
    text = out.stdout + out.stderr
    r = {"text": text, "non2xx": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
        r["p" + pct] = _ms(*m.groups()) if m else float("nan")
    m = re.search(r"(\d+) requests in", text)
    r["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["connect"], r["read"], r["write"], r["timeout"] = map(int, m.groups())
    r["errors"] = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return r


def describe(name, r):
    return ("%s: %d requests, %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d "
            "(non-2xx %d, connect %d, read %d, write %d, timeout %d)" %
            (name, r["requests"], r["rps"], r["p50"], r["p99"], r["errors"], r["non2xx"],
             r["connect"], r["read"], r["write"], r["timeout"]))


def main():
    sys.path.insert(0, os.path.join(SRC, "tests", "hubsim"))
    from client import HubSim, make_repo  # noqa: E402
    from benchlib import parse_size  # noqa: E402

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "cli", "modelfs"))
    ap.add_argument("--conns", type=int, default=200)
    ap.add_argument("--secs", type=int, default=30)
    ap.add_argument("--loris", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--path-size", default="16K")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("serve_load: wrk is not installed (tests/install-deps.sh installs it)")
    tmp = tempfile.mkdtemp(prefix="mfs-serve-load-")
    sim = serve = None
    try:
        root = os.path.join(tmp, "hub")
        size = parse_size(a.path_size)
        make_repo(root, "Org/m", {"f.bin": os.urandom(size)})
        sim = HubSim.start(root, stderr=subprocess.DEVNULL)
        env = {k: v for k, v in os.environ.items()
               if k not in ("HF_TOKEN", "MODELFS_PEER_TOKEN", "HF_HUB_OFFLINE")}
        env["HF_HOME"] = os.path.join(tmp, "hfhome")
        serve = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:0", "--cache",
                                  os.path.join(tmp, "cache"), "--pull-through",
                                  "--endpoint", sim.hub, "--max-conns", "1024"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        url = serve.stdout.readline().decode().split()[-1]
        target = url + "/Org/m/resolve/main/f.bin"
        subprocess.run(["curl", "-sf", "-o", "/dev/null", target], check=True)
        port = int(url.rsplit(":", 1)[1])
        rss0 = rss_kb(serve.pid)
        print("info: serve %s, file %d bytes (cached), %d clients x %d s, %d slowloris; "
              "shared machine: absolute figures move with other load" %
              (url, size, a.conns, a.secs, a.loris))
        sampler = RssSampler(serve.pid).start()
        base = run_wrk(target, a.conns, a.secs, a.threads)
        print(describe("baseline", base))
        loris = Slowloris("127.0.0.1", port, a.loris).start()
        time.sleep(2)
        loaded = run_wrk(target, a.conns, a.secs, a.threads)
        loris.stop()
        rss_max = sampler.stop()
        print(describe("with %d slowloris" % a.loris, loaded))
        print("slowloris: %d bytes trickled, %d connections dropped by the server and reopened"
              % (loris.sent, loris.reconnects))
        print("p99_loaded_vs_baseline: %.2f" % (loaded["p99"] / base["p99"]
                                               if base["p99"] else float("nan")))
        print("rps_loaded_vs_baseline: %.2f" % (loaded["rps"] / base["rps"]
                                               if base["rps"] else float("nan")))
        print("rss_kib: before %d, max during %d, after %d" %
              (rss0, rss_max, rss_kb(serve.pid)))
    finally:
        if serve:
            serve.terminate()
            try:
                serve.wait(10)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
            serve.stdout.close()
        if sim:
            sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
