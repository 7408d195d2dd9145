#!/usr/bin/env python3
"""bench_llama.py - how long until llama.cpp has loaded a model from a modelfs mount.

Usage: bench_llama.py [--bin BUILD/cli/modelfs] [--size 1G] [--model FILE.gguf]
                      [--fetch-threads 8] [--rate-mbps 400] [--latency-ms 20]
                      [--repeat 1] [--debug-log] [--strace] [--keep]

What it does: generates a llama GGUF (tests/gen/gguf_gen.py, 1 GiB by
default, ~5 s) unless --model is given, serves it from the hub simulator
twice - shaped (per-connection cap --rate-mbps megabits/s = 50 MB/s, and
--latency-ms per request) and unshaped - and for each prints, all measured
in this run:
  cold_vs_download  cold load from the mount (empty cache, fresh mount)
                    / (curl -o of the file + load of that local copy)
                    [target <= 0.6 shaped: streaming ahead of the loader
                    must beat downloading first]
  cold_vs_warm      cold load / warm load (same mount again: page cache)
  warm_vs_local     warm load from the mount / load of the local copy
                    [target <= 1.1]
  info lines: the times behind them, the load from a fresh mount on the
  now-full block cache (no page cache for the FUSE file), bytes the
  simulator sent, and the daemon's CPU seconds in the cold load.
A "load" is the loadModel() call of node-llama-cpp 3.21.1 (tests/llama/
run_llama.mjs: mmap, CPU, reads the GGUF header, then maps and populates the
whole file); the process wall time (node start + load + 8 tokens) is printed
next to it. The local copy is the one curl just wrote (in the page cache, as
a user who just downloaded it would have it).

--debug-log runs the cold mount with MODELFS_LOG=debug and prints the tail of
the daemon log; --strace attaches `strace -c -f` to the daemon during the
cold load and prints the syscall summary.

What it does not do: assert anything (figures move 2x on a shared 2-core
box: compare ratios, not times), drop the machine's page cache, or use a GPU.
Needs tests/llama/node_modules, curl, FUSE (root), ~3x the model size free
under $TMPDIR.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "hubsim"))
from client import HubSim, make_repo  # noqa: E402
from benchlib import daemon_pid, mounted, proc_cpu  # noqa: E402

RUNNER = os.path.join(SRC, "tests", "llama", "run_llama.mjs")
GGUF_GEN = os.path.join(SRC, "tests", "gen", "gguf_gen.py")
REPO, FNAME = "Bench/llama", "model-q8_0.gguf"


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="bench-llama-")
        self.sim = None
        self.simlog = None
        self.mounts = []
        self.procs = []

    # --- plumbing --------------------------------------------------------------
    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for mp in self.mounts:
            if mounted(mp):
                r = subprocess.run([self.a.bin, "umount", mp], capture_output=True, timeout=120)
                if r.returncode != 0 and mounted(mp):
                    subprocess.run(["umount", "-l", mp], capture_output=True)
        if self.sim:
            self.sim.stop()
        if self.simlog:
            self.simlog.close()
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("info: kept %s" % self.tmp)

    def mount(self, name, env=None):
        mp = os.path.join(self.tmp, name)
        cache = os.path.join(self.tmp, name + "-cache")
        os.makedirs(mp)
        self.mounts.append(mp)
        e = dict(os.environ, HF_HOME=os.path.join(self.tmp, "hf"))
        for k in ("HF_TOKEN", "HF_ENDPOINT", "MODELFS_CACHE", "HF_HUB_OFFLINE"):
            e.pop(k, None)
        e.update(env or {})
        subprocess.run([self.a.bin, "mount", mp, "--cache", cache, "--endpoint", self.sim.hub,
                        "--fetch-threads", str(self.a.fetch_threads)], env=e, check=True,
                       timeout=60, stdin=subprocess.DEVNULL)
        return mp, cache

    def umount(self, mp):
        subprocess.run([self.a.bin, "umount", mp], check=True, timeout=120,
                       capture_output=True)

    def load(self, path):
        """(loadModel seconds, process wall seconds, text)."""
        t0 = time.perf_counter()
        r = subprocess.run(["node", RUNNER, path], capture_output=True, text=True, timeout=900,
                           cwd=os.path.dirname(RUNNER), stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("llama load of %s failed: %s" % (path, r.stderr[-2000:]))
        out = json.loads(r.stdout.strip().splitlines()[-1])
        return out["load_ms"] / 1000.0, wall, out["text"]

    def fetched(self):
        return self.sim.stats()["body_bytes"].get("%s/%s" % (REPO, FNAME), 0)

    # --- one configuration -----------------------------------------------------
    def phase(self, label, size, ref_text):
        url = self.sim.resolve_url(REPO, FNAME)
        local = os.path.join(self.tmp, "downloaded-%s.gguf" % label)
        t0 = time.perf_counter()
        subprocess.run(["curl", "-sS", "-fL", "-o", local, url], check=True, timeout=1800)
        dl = time.perf_counter() - t0
        os.sync()  # writeback of the download must not land in the local load
        local_load, local_wall, text = self.load(local)
        if text != ref_text:
            raise RuntimeError("downloaded copy generates different text")
        os.unlink(local)

        colds, warms, wall_c = [], [], []
        extra = None
        for i in range(self.a.repeat):
            env = {"MODELFS_LOG": "debug"} if self.a.debug_log else None
            mp, cache = self.mount("%s-%d" % (label, i), env=env)
            path = os.path.join(mp, *REPO.split("/"), FNAME)
            os.stat(path)  # name resolution is not part of the load
            pid = daemon_pid(mp)
            strace = None
            if self.a.strace and pid:
                strace = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o",
                                           os.path.join(self.tmp, "strace-%s.txt" % label)],
                                          stderr=subprocess.DEVNULL)
                self.procs.append(strace)
                time.sleep(0.5)
            self.sim.reset_stats()
            cpu0 = proc_cpu(pid)
            cold, cwall, text = self.load(path)
            cpu = proc_cpu(pid) - cpu0
            sent = self.fetched()
            rng = [e - s + 1 for route, _, s, e in self.sim.stats()["ranges"]
                   if route == "cdn"]
            if strace:
                strace.send_signal(signal.SIGINT)
                strace.wait(30)
            if text != ref_text:
                raise RuntimeError("mount generated different text (cold)")
            warm, wwall, text = self.load(path)
            if text != ref_text:
                raise RuntimeError("mount generated different text (warm)")
            colds.append(cold)
            warms.append(warm)
            wall_c.append(cwall)
            if i == self.a.repeat - 1:
                # The block cache alone: a new mount has no page cache for the file.
                self.umount(mp)
                mp2 = os.path.join(self.tmp, "%s-bc" % label)
                os.makedirs(mp2)
                self.mounts.append(mp2)
                subprocess.run([self.a.bin, "mount", mp2, "--cache", cache, "--endpoint",
                                self.sim.hub, "--fetch-threads", str(self.a.fetch_threads)],
                               check=True, timeout=60, capture_output=True,
                               env=dict(os.environ, HF_HOME=os.path.join(self.tmp, "hf")))
                bc, _, text = self.load(os.path.join(mp2, *REPO.split("/"), FNAME))
                if text != ref_text:
                    raise RuntimeError("mount generated different text (block cache)")
                extra = (bc, sent, cpu, cwall, wwall, rng)
                if self.a.debug_log:
                    with open(os.path.join(cache, "modelfs.log"), errors="replace") as f:
                        lines = f.read().splitlines()
                    print("info: %s daemon log (%d lines), last 15:" % (label, len(lines)))
                    for line in lines[-15:]:
                        print("    " + line)
                self.umount(mp2)
            else:
                self.umount(mp)
        cold, warm = statistics.median(colds), statistics.median(warms)
        bc, sent, cpu, cwall, wwall, rng = extra
        base = dl + local_load
        print("%s cold_vs_download: %.2f  (cold load %.2f s vs curl -o %.2f s + local load "
              "%.2f s = %.2f s)%s" % (label, cold / base, cold, dl, local_load, base,
                                      "  [target <= 0.6]" if label == "shaped" else ""))
        print("%s cold_vs_warm: %.2f  (cold %.2f s, warm %.2f s)" % (label, cold / warm, cold,
                                                                  warm))
        print("%s warm_vs_local: %.2f  (warm %.2f s, local %.2f s)  [target <= 1.1]"
              % (label, warm / local_load, warm, local_load))
        print("info: %s block-cache load (fresh mount, no page cache) %.2f s = %.2f x local; "
              "cold: %.1f MB/s, sent %.3f x size, daemon CPU %.1f s; process wall: local "
              "%.2f s, cold %.2f s, warm %.2f s; runs %s"
              % (label, bc, bc / local_load, size / cold / 1e6, sent / size, cpu, local_wall,
                 cwall, wwall, " ".join("%.2f" % c for c in colds)))
        if rng:
            print("info: %s cold load: %d CDN range requests, median %.2f MiB, max %.2f MiB"
                  % (label, len(rng), statistics.median(rng) / (1 << 20), max(rng) / (1 << 20)))
        if self.a.strace:
            p = os.path.join(self.tmp, "strace-%s.txt" % label)
            if os.path.exists(p):
                print("info: %s strace -c of the daemon during the cold load:" % label)
                with open(p) as f:
                    for line in f.read().splitlines()[:14]:
                        print("    " + line)

    def run(self):
        a = self.a
        root = os.path.join(self.tmp, "hub")
        os.makedirs(root)
        src = os.path.join(self.tmp, FNAME)
        t0 = time.perf_counter()
        if a.model:
            try:
                os.link(a.model, src)
            except OSError:
                shutil.copyfile(a.model, src)
        else:
            subprocess.run([sys.executable, GGUF_GEN, src, "--size", a.size], check=True,
                           stdout=subprocess.DEVNULL, timeout=600)
        size = os.path.getsize(src)
        make_repo(root, REPO, {FNAME: src})
        print("info: %s %.2f GiB (%s in %.1f s), fetch threads %d, %s"
              % (FNAME, size / (1 << 30), "given" if a.model else "generated",
                 time.perf_counter() - t0, a.fetch_threads, time.strftime("%Y-%m-%d %H:%M")))
        ref_load, _, ref_text = self.load(src)  # also warms the page cache of the source
        self.simlog = open(os.path.join(self.tmp, "hubsim.log"), "ab")
        self.sim = HubSim.start(root, stderr=self.simlog)
        # Let the simulator hash the file once (first /resolve of an LFS file)
        # before anything is timed.
        subprocess.run(["curl", "-sS", "-L", "-r", "0-0", "-o", "/dev/null",
                        self.sim.resolve_url(REPO, FNAME)], check=True, timeout=300)
        self.sim.configure(conn_rate_mbps=a.rate_mbps, latency_ms=a.latency_ms)
        print("info: shaped = %d Mbit/s (%.0f MB/s) per connection, %d ms latency"
              % (a.rate_mbps, a.rate_mbps / 8, a.latency_ms))
        self.phase("shaped", size, ref_text)
        self.sim.configure(conn_rate_mbps=0, latency_ms=0)
        self.phase("unshaped", size, ref_text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "cli", "modelfs"))
    ap.add_argument("--size", default="1G")
    ap.add_argument("--model", help="use this GGUF instead of generating one")
    ap.add_argument("--fetch-threads", type=int, default=8)
    ap.add_argument("--rate-mbps", type=int, default=400, help="megabits/s per connection")
    ap.add_argument("--latency-ms", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1, help="cold/warm runs (median)")
    ap.add_argument("--debug-log", action="store_true")
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    if not os.path.isdir(os.path.join(SRC, "tests", "llama", "node_modules", "node-llama-cpp")):
        sys.exit("bench_llama.py: run `cd tests/llama && npm install --no-audit --no-fund` first")
    if not os.access(a.bin, os.X_OK):
        sys.exit("bench_llama.py: no modelfs binary at %s (use --bin)" % a.bin)
    b = Bench(a)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
