#!/usr/bin/env python3
"""bench_prefetch.py - the issue-4 prefetch benchmark (not a test).

Serves one file (1 GiB of random bytes by default, an LFS file so every
request goes through the 302 to the CDN) from the hub simulator shaped like
a real link: every connection capped at --conn-rate-mbps (default 400
megabits/s = 50 MB/s) and --latency-ms (default 20) added to every answer.
Then, in one run, it times:

  curl_1       one `curl -L` stream of the file
  curl_8       8 parallel `curl -L -r` range requests covering the file
  prefetch     `modelfs prefetch ORG/NAME --jobs 8` into an empty cache
               (resolution, listing, fetching, storing and the sha256
               verification included: the command returns when the file is
               verified)

  mount      (root only; --no-mount skips it) a cold sequential read
               (1 MiB read()s) through `modelfs mount --fetch-threads JOBS`
               on an empty cache, after a stat (resolution not counted)

and prints the ratios

  prefetch_vs_1_curl:   prefetch rate / curl_1 rate   [target >= 7; limit 8]
  prefetch_vs_8_curl:   prefetch rate / curl_8 rate   [target >= 0.9]
  mount_cold_vs_1_curl: mount read rate / curl_1 rate [target >= 6]

plus info lines (rates, CPU, bytes the simulator sent / file size).
Usage: python3 bench/bench_prefetch.py --bin BUILD/cli/modelfs [--size 1G]
       [--jobs 8] [--conn-rate-mbps 400] [--latency-ms 20] [--repeat N]
Cleans up the simulator and its temp files on exit, failure or SIGTERM.
"""
import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "hubsim"))
from client import HubSim, make_repo  # noqa: E402
from benchlib import daemon_pid, gen_random, mounted, parse_size, proc_cpu  # noqa: E402

MiB = 1 << 20
REPO, FNAME = "Bench/prefetch", "model.bin"


def mb_s(nbytes, secs):
    return nbytes / secs / 1e6


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="mfs-bench-prefetch-", dir=a.tmpdir)
        self.sim = None
        self.simlog = None

    def cleanup(self):
        mp = os.path.join(self.tmp, "mnt")
        if os.path.isdir(mp) and mounted(mp):
            subprocess.run([self.a.bin, "umount", mp], capture_output=True, timeout=120)
            if mounted(mp):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        if self.sim:
            self.sim.stop()
        if self.simlog:
            self.simlog.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def url(self):
        return "%s/%s/resolve/main/%s" % (self.sim.hub, REPO, FNAME)

    def curl_1(self, size):
        t = time.perf_counter()
        r = subprocess.run(["curl", "-sS", "-L", "-o", "/dev/null", "-w", "%{size_download}",
                            self.url()], capture_output=True, text=True, timeout=900)
        secs = time.perf_counter() - t
        if r.returncode != 0 or int(r.stdout or 0) != size:
            raise RuntimeError("curl failed: %s %s" % (r.stdout, r.stderr))
        return secs

    def curl_n(self, size, n):
        part = (size + n - 1) // n
        procs = []
        t = time.perf_counter()
        for i in range(n):
            lo, hi = i * part, min(size, (i + 1) * part) - 1
            procs.append(subprocess.Popen(
                ["curl", "-sS", "-L", "-r", "%d-%d" % (lo, hi), "-o", "/dev/null", "-w",
                 "%{size_download}", self.url()], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
        got = 0
        for p in procs:
            out, err = p.communicate(timeout=900)
            if p.returncode != 0:
                raise RuntimeError("curl -r failed: %s" % err)
            got += int(out or 0)
        secs = time.perf_counter() - t
        if got != size:
            raise RuntimeError("curl ranges got %d of %d bytes" % (got, size))
        return secs

    def prefetch(self, size, run):
        cache = os.path.join(self.tmp, "cache%d" % run)
        env = dict(os.environ)
        for k in ("HF_TOKEN", "HF_HUB_OFFLINE", "MODELFS_CACHE", "MODELFS_CACHE_SIZE"):
            env.pop(k, None)
        env.update({"HF_ENDPOINT": self.sim.hub, "HF_HOME": os.path.join(self.tmp, "hfhome")})
        self.sim.reset_stats()
        cpu0 = child_cpu()
        t = time.perf_counter()
        r = subprocess.run([self.a.bin, "prefetch", REPO, "--jobs", str(self.a.jobs),
                            "--cache", cache], env=env, capture_output=True, text=True,
                           timeout=900, stdin=subprocess.DEVNULL)
        secs = time.perf_counter() - t
        cpu = child_cpu() - cpu0
        if r.returncode != 0:
            raise RuntimeError("prefetch failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
        sent = self.sim.stats()["body_bytes"].get("%s/%s" % (REPO, FNAME), 0)
        shutil.rmtree(cache, ignore_errors=True)
        return secs, cpu, sent

    def mount_cold(self, size, run):
        """Seconds and daemon CPU seconds of a cold sequential read."""
        mp = os.path.join(self.tmp, "mnt")
        cache = os.path.join(self.tmp, "mcache%d" % run)
        os.makedirs(mp, exist_ok=True)
        env = dict(os.environ, HF_HOME=os.path.join(self.tmp, "hfhome"))
        for k in ("HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "MODELFS_CACHE"):
            env.pop(k, None)
        subprocess.run([self.a.bin, "mount", mp, "--cache", cache, "--endpoint", self.sim.hub,
                        "--fetch-threads", str(self.a.jobs)], env=env, check=True,
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        try:
            path = os.path.join(mp, *REPO.split("/"), FNAME)
            os.stat(path)
            pid = daemon_pid(mp)
            cpu0 = proc_cpu(pid)
            buf = bytearray(MiB)
            got, t = 0, time.perf_counter()
            fd = os.open(path, os.O_RDONLY)
            try:
                while True:
                    n = os.readv(fd, [buf])
                    if n == 0:
                        break
                    got += n
            finally:
                os.close(fd)
            secs = time.perf_counter() - t
            cpu = proc_cpu(pid) - cpu0
        finally:
            subprocess.run([self.a.bin, "umount", mp], capture_output=True, timeout=120)
            shutil.rmtree(cache, ignore_errors=True)
        if got != size:
            raise RuntimeError("mount read %d of %d bytes" % (got, size))
        return secs, cpu

    def run(self):
        a = self.a
        size = parse_size(a.size)
        root = os.path.join(self.tmp, "hub")
        src = os.path.join(self.tmp, FNAME)
        print("info: generating %d MiB of random bytes" % (size // MiB), flush=True)
        gen_random(src, size)
        make_repo(root, REPO, {FNAME: src})
        self.simlog = open(os.path.join(self.tmp, "hubsim.log"), "ab")
        self.sim = HubSim.start(root, stderr=self.simlog)
        # The simulator hashes an LFS file on its first /resolve (~1 s/GiB):
        # do that unshaped, before anything is timed.
        subprocess.run(["curl", "-sS", "-L", "-r", "0-0", "-o", "/dev/null", self.url()],
                       check=True, timeout=300)
        self.sim.configure(conn_rate_mbps=a.conn_rate_mbps, latency_ms=a.latency_ms)
        print("info: link: %d Mbit/s (%.0f MB/s) per connection, %d ms latency; "
              "file %d MiB; --jobs %d" % (a.conn_rate_mbps, a.conn_rate_mbps / 8,
                                          a.latency_ms, size // MiB, a.jobs), flush=True)
        r1, r8, rm = [], [], []
        for run in range(a.repeat):
            c1 = self.curl_1(size)
            c8 = self.curl_n(size, 8)
            p, cpu, sent = self.prefetch(size, run)
            print("info: run %d: curl_1 %.1f MB/s, curl_8 %.1f MB/s, prefetch %.1f MB/s "
                  "(%.2f s, modelfs CPU %.2f s, sent/size %.3f)"
                  % (run + 1, mb_s(size, c1), mb_s(size, c8), mb_s(size, p), p, cpu,
                     sent / size), flush=True)
            r1.append(c1 / p)
            r8.append(c8 / p)
            if not a.no_mount:
                m, mcpu = self.mount_cold(size, run)
                print("info: run %d: mount cold read %.1f MB/s (%.2f s, daemon CPU %.2f s)"
                      % (run + 1, mb_s(size, m), m, mcpu), flush=True)
                rm.append(c1 / m)
        r1.sort()
        r8.sort()
        m = len(r1) // 2
        print("prefetch_vs_1_curl: %.2f  [target >= 7; limit %d]" % (r1[m], a.jobs))
        print("prefetch_vs_8_curl: %.2f  [target >= 0.9]" % r8[m])
        if rm:
            rm.sort()
            print("mount_cold_vs_1_curl: %.2f  [target >= 6; limit %d]" % (rm[m], a.jobs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "cli", "modelfs"))
    ap.add_argument("--size", default="1G")
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--conn-rate-mbps", type=int, default=400)
    ap.add_argument("--latency-ms", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-mount", action="store_true", help="skip the mount figure (no root)")
    ap.add_argument("--tmpdir", default=None)
    a = ap.parse_args(argv)
    b = Bench(a)

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        b.run()
    finally:
        b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
