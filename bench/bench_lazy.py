#!/usr/bin/env python3
"""bench_lazy.py - the issue-15 figures: does a lazy mount fetch only what is
read, and how many hub requests does a small file cost?

What it does: serves a generated GGUF (--gguf-size, default 88M like the
issue's model), a random file (--size, default 512M) and --small-files
small files from the hub simulator, mounts them with each binary given
(--bin, and --baseline-bin to compare with an older build in the same run)
and prints one line per figure and binary:

  inspect_gguf_fetched_per_read   bytes the simulator sent / bytes read, for
                                  `npx node-llama-cpp inspect gguf` (one 4 MiB
                                  pread); "read" is 4 MiB
  st_header_fetched_per_header    bytes sent / header size (8 + JSON), for
                                  examples/safetensors_mmap listing the tensors
                                  of a generated --st-size checkpoint (header
                                  only, through mmap); "(N x its blocks)" says
                                  how that compares with the 1 MiB blocks the
                                  header spans: 1.00 = no tensor data fetched
  st_big_header_fetched_per_header  the same with a 3 MiB header (metadata
                                  padded): a header spanning several blocks
  dd_4m_fetched_per_read          one `dd bs=4M count=1`
  rand_4k_fetched_per_read        one 4 KiB pread at a random offset
  seq_fetched_per_read            a full sequential read (1 MiB reads)
  seq_MBps                        its throughput (compare the two binaries'
                                  lines of this run, not across runs)
  small_hub_requests_per_file     hub + CDN requests per small file read
                                  after a listing (serial cat)
  small_files_per_s_serial        cat one by one, on a --latency-ms link
  small_files_per_s_parallel16    xargs -P 16 cat, same link, fresh mount
  small_parallel_vs_serial        the ratio (issue target >= 8)

Fetched bytes are read after read-ahead settled (no change for 0.5 s).
It is not a test: nothing is asserted. On a shared machine absolute rates
vary; compare ratios and the two binaries within one run.

Needs root (FUSE) and built binaries; node-llama-cpp under
tests/llama/node_modules for the inspect figure (skipped otherwise), and
examples/safetensors_mmap in --examples (default build/examples) for the
safetensors figures (skipped otherwise):
    python3 bench/bench_lazy.py --bin build/cli/modelfs \\
        [--baseline-bin /tmp/old/build/cli/modelfs] [--small-files 2000]
Everything it starts is stopped and its temp files deleted on exit.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "hubsim"))

from client import HubSim, make_repo  # noqa: E402
from benchlib import MiB, gen_random, mounted, parse_size  # noqa: E402

BLOCK = MiB  # modelfs's block: the least a header read can fetch

REPO = "BenchOrg/lazy"
LLAMA_DIR = os.path.join(SRC, "tests", "llama")


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="mfs-bench-lazy-")
        self.root = os.path.join(self.tmp, "hub")
        self.sim = None
        self.mounts = []
        self.n = 0

    def cleanup(self):
        for mp, binary in self.mounts:
            if mounted(mp):
                subprocess.run([binary, "umount", mp], capture_output=True, timeout=60)
                if mounted(mp):
                    subprocess.run(["umount", "-l", mp], capture_output=True)
        if self.sim:
            self.sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_sim(self, latency_ms):
        if self.sim:
            self.sim.stop()
        self.sim = HubSim.start(self.root, latency_ms=latency_ms,
                                stderr=subprocess.DEVNULL)

    def mount(self, binary):
        self.n += 1
        mp = os.path.join(self.tmp, "mnt%d" % self.n)
        os.makedirs(mp)
        self.mounts.append((mp, binary))
        env = dict(os.environ)
        for k in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "MODELFS_CACHE"):
            env.pop(k, None)
        env["HF_HOME"] = os.path.join(self.tmp, "hfhome")
        r = subprocess.run([binary, "mount", mp, "--cache",
                            os.path.join(self.tmp, "cache%d" % self.n),
                            "--endpoint", self.sim.hub] + self.a.mount_opt, env=env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        if r.returncode != 0 or not mounted(mp):
            raise RuntimeError("mount failed: %s%s" % (r.stdout, r.stderr))
        return mp

    def umount(self, mp, binary):
        subprocess.run([binary, "umount", mp], capture_output=True, timeout=60)

    def sent(self, name):
        return self.sim.settled_body_bytes("%s/%s" % (REPO, name))

    def requests(self):
        return sum(self.sim.stats()["requests"].values())

    def fresh(self, binary):
        """A new mount with an empty cache and zeroed counters."""
        mp = self.mount(binary)
        self.sim.reset_stats()
        return mp, os.path.join(mp, *REPO.split("/"))

    def gen_safetensors(self):
        """A generated checkpoint and the same one with a 3 MiB header;
        returns {name: header size (8 + JSON)}."""
        sdir = os.path.join(self.tmp, "st")
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "gen", "safetensors_gen.py"),
                        sdir, "--size", self.a.st_size, "--seed", "3"], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        src = os.path.join(sdir, "model.safetensors")
        with open(src, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            head = json.loads(f.read(n))
            head.setdefault("__metadata__", {})["pad"] = "x" * (3 * MiB)
            hb = json.dumps(head).encode()
            hb += b" " * (-len(hb) % 8)
            with open(os.path.join(sdir, "big-header.safetensors"), "wb") as out:
                out.write(len(hb).to_bytes(8, "little") + hb)
                shutil.copyfileobj(f, out, 16 * MiB)
        return {"model.safetensors": (src, 8 + n),
                "big-header.safetensors": (os.path.join(sdir, "big-header.safetensors"),
                                           8 + len(hb))}

    def st_header_only(self, tag, binary, sts):
        tool = os.path.join(self.a.examples, "safetensors_mmap")
        for name, label in (("model.safetensors", "st_header_fetched_per_header"),
                            ("big-header.safetensors", "st_big_header_fetched_per_header")):
            if not os.access(tool, os.X_OK):
                print("%-5s %-32s skipped (no %s)" % (tag, label, tool))
                continue
            mp, base = self.fresh(binary)
            subprocess.run([tool, os.path.join(base, name)], capture_output=True,
                           check=True, timeout=300)
            hsize = sts[name][1]
            sent = self.sent(name)
            blocks = (hsize + BLOCK - 1) // BLOCK * BLOCK
            print("%-5s %-32s %.2f  (header %d B; %.2f x its blocks)" %
                  (tag, label, sent / hsize, hsize, sent / blocks))
            self.umount(mp, binary)

    def run(self):
        a = self.a
        gguf = os.path.join(self.tmp, "m.gguf")
        subprocess.run([sys.executable, os.path.join(SRC, "tests", "gen", "gguf_gen.py"),
                        gguf, "--size", a.gguf_size, "--seed", "3"], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        big = os.path.join(self.tmp, "big.bin")
        size = parse_size(a.size)
        gen_random(big, size)
        sts = {} if a.small_only else self.gen_safetensors()
        files = {"m.gguf": gguf, "big.bin": big}
        files.update({n: path for n, (path, _) in sts.items()})
        for i in range(a.small_files):
            files["small/f%05d.txt" % i] = ("line %d\n" % i).encode() * (1 + i % 50)
        make_repo(self.root, REPO, files)
        bins = [("new", a.bin)] + ([("base", a.baseline_bin)] if a.baseline_bin else [])
        have_llama = os.path.exists(os.path.join(LLAMA_DIR, "node_modules", ".bin",
                                                 "node-llama-cpp"))
        rnd = random.Random(11)
        self.start_sim(0)
        for tag, binary in ([] if a.small_only else bins):
            if have_llama:
                mp, base = self.fresh(binary)
                subprocess.run(["npx", "--no-install", "node-llama-cpp", "inspect", "gguf",
                                os.path.join(base, "m.gguf")], cwd=LLAMA_DIR,
                               capture_output=True, timeout=300, check=True)
                print("%-5s inspect_gguf_fetched_per_read    %.2f" %
                      (tag, self.sent("m.gguf") / (4 * MiB)))
                self.umount(mp, binary)
            else:
                print("%-5s inspect_gguf_fetched_per_read    skipped (no node-llama-cpp)" % tag)
            self.st_header_only(tag, binary, sts)
            mp, base = self.fresh(binary)
            subprocess.run(["dd", "if=" + os.path.join(base, "big.bin"), "of=/dev/null",
                            "bs=4M", "count=1"], capture_output=True, check=True, timeout=120)
            print("%-5s dd_4m_fetched_per_read           %.2f" %
                  (tag, self.sent("big.bin") / (4 * MiB)))
            self.umount(mp, binary)
            mp, base = self.fresh(binary)
            fd = os.open(os.path.join(base, "big.bin"), os.O_RDONLY)
            os.pread(fd, 4096, rnd.randrange(0, size - 4096))
            os.close(fd)
            print("%-5s rand_4k_fetched_per_read         %.1f" %
                  (tag, self.sent("big.bin") / 4096))
            self.umount(mp, binary)
            mp, base = self.fresh(binary)
            t = time.perf_counter()
            with open(os.path.join(base, "big.bin"), "rb", buffering=0) as f:
                while f.read(MiB):
                    pass
            secs = time.perf_counter() - t
            print("%-5s seq_fetched_per_read             %.3f" %
                  (tag, self.sent("big.bin") / size))
            print("%-5s seq_MBps                         %.0f" % (tag, size / secs / 1e6))
            self.umount(mp, binary)
        # small files on a slow link
        self.start_sim(a.latency_ms)
        for tag, binary in bins:
            mp, base = self.fresh(binary)
            sdir = os.path.join(base, "small")
            names = sorted(os.listdir(sdir))
            paths = [os.path.join(sdir, n) for n in names]
            before = self.requests()
            t = time.perf_counter()
            for p in paths:
                with open(p, "rb") as f:
                    f.read()
            secs = time.perf_counter() - t
            per_file = (self.requests() - before) / len(paths)
            print("%-5s small_hub_requests_per_file      %.2f" % (tag, per_file))
            serial = len(paths) / secs
            print("%-5s small_files_per_s_serial         %.1f" % (tag, serial))
            self.umount(mp, binary)
            mp, base = self.fresh(binary)
            sdir = os.path.join(base, "small")
            names = sorted(os.listdir(sdir))
            t = time.perf_counter()
            subprocess.run("ls | xargs -P 16 -n 8 cat > /dev/null", shell=True, cwd=sdir,
                           check=True, timeout=1800)
            par = len(names) / (time.perf_counter() - t)
            print("%-5s small_files_per_s_parallel16     %.1f" % (tag, par))
            print("%-5s small_parallel_vs_serial         %.1f  (target >= 8)" %
                  (tag, par / serial))
            self.umount(mp, binary)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "cli", "modelfs"))
    ap.add_argument("--baseline-bin", help="an older modelfs to print the same figures for")
    ap.add_argument("--size", default="512M", help="random file for dd/random/sequential")
    ap.add_argument("--gguf-size", default="88M")
    ap.add_argument("--st-size", default="88M", help="generated safetensors checkpoint")
    ap.add_argument("--examples", default=os.path.join(SRC, "build", "examples"),
                    help="where examples/safetensors_mmap was built")
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--mount-opt", action="append", default=[],
                    help="extra `modelfs mount` argument (repeatable)")
    ap.add_argument("--small-only", action="store_true", help="only the small-file figures")
    a = ap.parse_args()
    print("info: same run; figures per binary (new = --bin, base = --baseline-bin); "
          "latency for small files %g ms" % a.latency_ms)
    b = Bench(a)
    try:
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
