#!/usr/bin/env python3
"""bench_trust.py - the cost of the trust model on a cold read from a peer
(issue 11; not a test).

Node A prefetches one Xet-backed file (random bytes, 256 MiB by default)
from the hub simulator and serves its cache (`modelfs serve`, which also
answers GET /chunks/<xetHash>). Node B mounts with `--peer A`, lists the
file, the hub goes offline, and B reads the whole file cold (empty cache,
1 MiB reads). Timed in the same run, alternating, best of --repeat:

  verified     this build: the chunk list is checked against the xetHash
               and every 64 KiB chunk's BLAKE3 before its bytes are served
  unverified   --unverified-bin: the same commit built with
               -Dtrust_checks=false (bytes from a peer served as they
               arrive, no chunk list), same peer

and prints `peer_verified_vs_unverified` (target >= 0.8) plus the rates and
the mount daemon's CPU seconds. Optional `--held`: also reads a copy of the
file from a repo without xetHash (no chunk list: held until the whole file
verified, then served) and prints `peer_held_vs_unverified`.
Usage: python3 bench/bench_trust.py --bin BUILD/cli/modelfs
       --unverified-bin OLD/cli/modelfs [--size 256M] [--repeat 2] [--held]
Needs root (FUSE). Cleans up mounts, servers and temp files on exit.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "hubsim"))
from client import HubSim, make_repo  # noqa: E402
from benchlib import daemon_pid, gen_random, mounted, parse_size, proc_cpu  # noqa: E402

MiB = 1 << 20


def run(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kw)


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="mfs-bench-trust-")
        self.sim = self.serve = None
        self.mounts = []

    def cleanup(self):
        for mp, binp in self.mounts:
            if mounted(mp):
                subprocess.run([binp, "umount", mp], capture_output=True)
        if self.serve:
            self.serve.terminate()
            self.serve.wait(10)
        if self.sim:
            self.sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def setup(self):
        a = self.a
        root = os.path.join(self.tmp, "hub")
        src = os.path.join(self.tmp, "model.safetensors")
        gen_random(src, a.size, seed=11)
        make_repo(root, "Bench/xet", {"model.safetensors": src}, xet=True)
        make_repo(root, "Bench/lfs", {"model.safetensors": src}, xet=False)
        env = dict(os.environ, MODELFS_XETHASH=a.xethash)
        self.sim = HubSim.start(root, stderr=open(os.path.join(self.tmp, "sim.log"), "ab"))
        cache_a = os.path.join(self.tmp, "cacheA")
        for repo in ("Bench/xet", "Bench/lfs"):
            run(a.bin, "prefetch", repo, "--cache", cache_a, "--endpoint", self.sim.hub,
                env=env, timeout=900)
        self.serve = subprocess.Popen([a.bin, "serve", "--listen", "127.0.0.1:0", "--cache",
                                       cache_a], stdout=subprocess.PIPE,
                                      stderr=open(os.path.join(self.tmp, "serve.log"), "ab"),
                                      stdin=subprocess.DEVNULL)
        line = self.serve.stdout.readline().decode()
        self.peer = line.split()[-1]

    def cold_read(self, binp, repo, tag):
        mp = os.path.join(self.tmp, "mnt-" + tag)
        cache = os.path.join(self.tmp, "cache-" + tag)
        shutil.rmtree(cache, ignore_errors=True)
        os.makedirs(mp, exist_ok=True)
        self.sim.offline(False)
        run(binp, "mount", mp, "--cache", cache, "--endpoint", self.sim.hub,
            "--peer", self.peer)
        self.mounts.append((mp, binp))
        try:
            p = os.path.join(mp, *repo.split("/"), "model.safetensors")
            os.stat(p)
            self.sim.offline(True)
            pid = daemon_pid(mp)
            cpu0 = proc_cpu(pid) if pid else 0.0
            n = 0
            t0 = time.monotonic()
            with open(p, "rb", buffering=0) as f:
                while True:
                    b = f.read(MiB)
                    if not b:
                        break
                    n += len(b)
            secs = time.monotonic() - t0
            cpu = (proc_cpu(pid) - cpu0) if pid else 0.0
        finally:
            subprocess.run([binp, "umount", mp], capture_output=True)
        if n != self.a.size:
            raise RuntimeError("%s: read %d of %d bytes" % (tag, n, self.a.size))
        return n / secs / 1e6, cpu

    def main(self):
        a = self.a
        self.setup()
        best = {}
        kinds = [("unverified", a.unverified_bin, "Bench/xet"), ("verified", a.bin, "Bench/xet")]
        if a.held:
            kinds.append(("held", a.bin, "Bench/lfs"))
        for r in range(a.repeat):
            for tag, binp, repo in (kinds if r % 2 == 0 else kinds[::-1]):
                rate, cpu = self.cold_read(binp, repo, tag)
                print("info: run %d %-10s %7.0f MB/s  daemon cpu %.2f s" % (r, tag, rate, cpu))
                if rate > best.get(tag, (0, 0))[0]:
                    best[tag] = (rate, cpu)
        print("bench_trust: %d MiB Xet file, cold read from a peer, hub offline, best of %d "
              "(shared machine: absolute rates vary)" % (a.size // MiB, a.repeat))
        for tag in best:
            print("peer_cold_%-11s %7.0f MB/s" % (tag, best[tag][0]))
        print("peer_verified_vs_unverified  %.2f  [target >= 0.8]"
              % (best["verified"][0] / best["unverified"][0]))
        if "held" in best:
            print("peer_held_vs_unverified      %.2f" % (best["held"][0] / best["unverified"][0]))


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--unverified-bin", required=True)
    ap.add_argument("--xethash", default=None, help="modelfs-xethash (default: next to --bin)")
    ap.add_argument("--size", type=parse_size, default=parse_size("256M"))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--held", action="store_true")
    a = ap.parse_args()
    if not a.xethash:
        a.xethash = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.bin))),
                                 "xet", "modelfs-xethash")
    return a


if __name__ == "__main__":
    b = Bench(parse())
    try:
        b.main()
    finally:
        b.cleanup()
