#!/usr/bin/env python3
"""bench_compare.py - modelfs side by side with `rclone mount` and `httpdirfs`.

What it does, in one run and against one server: the hub simulator serves a
repository (a random file, and with --llama a generated GGUF) once, so that
examples/make_static_mirror.py can lay it out for nginx; then the simulator
goes offline and nginx is the only source. nginx listens twice: unshaped,
and with every request capped by `limit_rate` (--rate-mbps, default 400
Mbit/s = 50 MB/s per connection). Against each, every tool gets a fresh
mount on an empty cache:

  modelfs    modelfs mount --endpoint http://nginx (the static mirror
             answers the hub API; file bytes: ranged GETs, trusted like the
             hub's as rclone and httpdirfs trust theirs). With
             --modelfs-source mirror it is `--mirror http://nginx` instead:
             then the trust model holds a mirror's bytes until the whole file
             verified, so the first random read fetches the whole file.
  rclone     rclone mount :http: --http-url http://nginx/files/
             --vfs-cache-mode full  (nginx autoindex for the listing)
  httpdirfs  httpdirfs --cache --cache-location DIR --no-range-check
             http://nginx/files/  (1.2.5's own range check rejects nginx's
             206 answers: "does not support HTTP range requests")

and the same figures, each printed next to a baseline measured in this run:

  cold_seq     cold sequential read (1 MiB read()s) / one `curl` of the file
               to /dev/null from the same nginx (rate ratio, higher is better);
               the daemon's CPU seconds per GiB read (from /proc); bytes nginx
               sent / bytes read
  warm         re-read of the same bytes on the same mount / reading a copy
               on /dev/shm (rate ratio)
  rand4k       --rand-reads 4 KiB pread()s at random offsets on a fresh mount
               with an empty cache: median and p90 latency in ms, the median
               divided by one ranged 4 KiB GET to nginx (urllib, new
               connection each, median); bytes nginx sent per read
  llama        (--llama) node-llama-cpp's loadModel() from a fresh mount /
               (curl -o of the GGUF + loadModel() of that local copy); lower
               is better

A read slower than --time-limit seconds is cut there and its rate is taken
over what was read ("cut" is printed); warm then re-reads that prefix. Each
tool's figures come from its own mounts, unmounted before the next tool
starts. Nothing is asserted: it is a benchmark. The machine's load moves
absolute rates a lot; compare the ratios and CPU s/GiB of one run.

Needs root (FUSE mounts), nginx, curl, rclone and httpdirfs (Debian:
`apt-get install nginx curl rclone httpdirfs`), a built modelfs, and with
--llama tests/llama/node_modules (cd tests/llama && npm install). One
command, about 2-4 minutes with the defaults:

    python3 bench/bench_compare.py --bin build/cli/modelfs

Options: --size 256M, --rate-mbps 400, --rand-reads 40, --time-limit 20,
--modelfs-source endpoint|mirror,
--tools modelfs,rclone,httpdirfs, --nets plain,capped, --llama
(--llama-size 256M), --fetch-threads 8, --tmpdir DIR, --keep.
Everything it starts (simulator, nginx, mounts) is stopped and its temp
files removed on exit, failure or SIGTERM.
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "hubsim"))
sys.path.insert(0, os.path.join(SRC, "tests", "gen"))
sys.path.insert(0, os.path.join(SRC, "examples"))

from client import HubSim, make_repo  # noqa: E402
from benchlib import daemon_pid, gen_random, mounted, parse_size, proc_cpu  # noqa: E402
import make_static_mirror  # noqa: E402
import nginxrun  # noqa: E402
from nginxrun import NGINX, free_port  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
REPO = "BenchOrg/cmp"
FNAME = "model.bin"
GGUF = "model.gguf"
RUNNER = os.path.join(SRC, "tests", "llama", "run_llama.mjs")
LOG_FORMAT = "'$request_method $uri $status $body_bytes_sent'"


def timed_read(path, limit_s, nbytes=None):
    """Sequential 1 MiB reads: (bytes, seconds, complete?)."""
    buf = bytearray(MiB)
    fd = os.open(path, os.O_RDONLY)
    n, t0 = 0, time.perf_counter()
    try:
        while nbytes is None or n < nbytes:
            got = os.readv(fd, [buf])
            if got == 0:
                break
            n += got
            if time.perf_counter() - t0 > limit_s:
                break
    finally:
        os.close(fd)
    secs = time.perf_counter() - t0
    return n, secs, nbytes is None and n == os.stat(path).st_size or n == nbytes


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="bench-cmp-", dir=a.tmpdir)
        self.sim = self.simlog = None
        self.nginx = self.nginxlog = None
        self.mounts = []   # (mountpoint, proc or None)
        self.procs = []
        self.rows = []     # (net, tool, figure, value, baseline text)

    # --- plumbing ----------------------------------------------------------
    def cleanup(self):
        for mp, _ in reversed(self.mounts):
            self.umount(mp)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.sim:
            self.sim.stop()
        if self.simlog:
            self.simlog.close()
        if self.nginxlog:
            self.nginxlog.close()
        if self.a.keep:
            print("info: kept %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
            shutil.rmtree(self.shm, ignore_errors=True)

    def umount(self, mp):
        entry = next((m for m in self.mounts if m[0] == mp), None)
        if entry is None:
            return
        self.mounts.remove(entry)
        proc = entry[1]
        if mounted(mp):
            if proc is None:
                subprocess.run([self.a.bin, "umount", mp], capture_output=True, timeout=120)
            else:
                subprocess.run(["fusermount3", "-u", mp], capture_output=True, timeout=60)
                if mounted(mp):
                    subprocess.run(["fusermount", "-u", mp], capture_output=True, timeout=60)
            if mounted(mp):
                subprocess.run(["umount", "-l", mp], capture_output=True)
        if proc is not None:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        else:
            for _ in range(100):
                if daemon_pid(mp) is None:
                    break
                time.sleep(0.05)

    def log_pos(self):
        return os.path.getsize(self.access) if os.path.exists(self.access) else 0

    def sent_since(self, pos, name):
        """Bytes nginx sent for `name` since log offset pos."""
        time.sleep(0.3)  # a request cut by the client is logged when nginx notices
        total = 0
        with open(self.access) as f:
            f.seek(pos)
            for line in f:
                parts = line.split()
                if len(parts) == 4 and parts[1].endswith("/" + name):
                    total += int(parts[3])
        return total

    # --- setup -------------------------------------------------------------
    def setup(self):
        a = self.a
        root = os.path.join(self.tmp, "hub")
        os.makedirs(root)
        src = os.path.join(self.tmp, FNAME)
        gen_random(src, a.size, seed=11)
        files = {FNAME: src}
        if a.llama:
            import gguf_gen
            gg = os.path.join(self.tmp, GGUF)
            gguf_gen.generate(gg, a.llama_size, seed=5)
            files[GGUF] = gg
        contents = {}
        for k, p in files.items():
            with open(p, "rb") as f:
                contents[k] = f.read()
        make_repo(root, REPO, contents)
        contents = None
        self.simlog = open(os.path.join(self.tmp, "hubsim.log"), "ab")
        self.sim = HubSim.start(root, stderr=self.simlog)
        www = os.path.join(self.tmp, "www")
        r = make_static_mirror.lay_out_repo(www, REPO, self.sim.hub)
        self.commit = r["commit"]
        files_dir = os.path.join(www, *REPO.split("/"), "resolve", self.commit)
        self.sim.offline(True)  # nginx is the only source from here on
        for k in files:
            os.unlink(files[k])  # the mirror holds the bytes now
        # tmpfs copy for the warm baseline
        self.shm = tempfile.mkdtemp(prefix="bench-cmp-", dir="/dev/shm")
        self.shm_file = os.path.join(self.shm, FNAME)
        shutil.copyfile(os.path.join(files_dir, FNAME), self.shm_file)
        # nginx: the mirror layout for modelfs, an autoindexed /files/ for
        # rclone and httpdirfs, each unshaped and capped
        d = os.path.join(self.tmp, "nginx")
        os.makedirs(os.path.join(d, "logs"))
        self.ports = {"plain": free_port(), "capped": free_port()}
        servers = []
        for net, port in self.ports.items():
            block = make_static_mirror.nginx_server_block(www, "127.0.0.1:%d" % port)
            # httpdirfs asks for /files (it drops the slash): same listing
            extra = "    location /files/ {\n        alias %s/;\n        autoindex on;\n" \
                    "        default_type application/octet-stream;\n    }\n" \
                    "    location = /files {\n        rewrite ^ /files/ last;\n    }\n" % files_dir
            if net == "capped":
                extra += "    limit_rate %d;\n" % (a.rate_mbps * 1000 * 1000 // 8)
            servers.append(block.replace("    autoindex off;\n", "    autoindex off;\n" + extra, 1))
        self.nginxlog = open(os.path.join(d, "logs", "stderr.log"), "ab")
        self.nginx, self.access = nginxrun.start(d, "\n".join(servers), LOG_FORMAT,
                                                 self.nginxlog, error_level="warn",
                                                 worker_connections=1024,
                                                 http_extra="    tcp_nopush on;\n")
        self.procs.append(self.nginx)
        for port in self.ports.values():
            nginxrun.wait_listening(self.nginx, port)
        print("info: %s %.0f MiB (random)%s, nginx plain :%d, capped :%d at %d Mbit/s per "
              "connection" % (FNAME, a.size / MiB,
                              ", %s %.0f MiB" % (GGUF, a.llama_size / MiB) if a.llama else "",
                              self.ports["plain"], self.ports["capped"], a.rate_mbps))

    def url(self, net, name=FNAME):
        return "http://127.0.0.1:%d/%s/resolve/%s/%s" % (self.ports[net], REPO, self.commit, name)

    # --- tools ---------------------------------------------------------------
    def mount(self, tool, net, tag):
        mp = os.path.join(self.tmp, "mnt-%s-%s-%s" % (tool, net, tag))
        cache = os.path.join(self.tmp, "cache-%s-%s-%s" % (tool, net, tag))
        os.makedirs(mp)
        os.makedirs(cache)
        base = "http://127.0.0.1:%d" % self.ports[net]
        proc = None
        if tool == "modelfs":
            e = dict(os.environ, HF_HOME=os.path.join(self.tmp, "hf"))
            for k in ("HF_TOKEN", "HF_ENDPOINT", "MODELFS_CACHE", "HF_HUB_OFFLINE"):
                e.pop(k, None)
            src = ["--endpoint", base] if self.a.modelfs_source == "endpoint" else \
                ["--endpoint", self.sim.hub, "--mirror", base]
            subprocess.run([self.a.bin, "mount", mp, "--cache", cache] + src +
                           ["--fetch-threads", str(self.a.fetch_threads)],
                           env=e, check=True, timeout=60, stdin=subprocess.DEVNULL,
                           capture_output=True)
            self.mounts.append((mp, None))
            path = os.path.join(mp, *REPO.split("/"))
            pid = daemon_pid(mp)
        else:
            if tool == "rclone":
                argv = ["rclone", "mount", ":http:", mp, "--http-url", base + "/files/",
                        "--vfs-cache-mode", "full", "--cache-dir", cache, "--read-only"]
                env = dict(os.environ, RCLONE_CONFIG=os.path.join(self.tmp, "rclone.conf"))
            else:
                argv = ["httpdirfs", "-f", "--cache", "--cache-location", cache, "--no-range-check",
                        base + "/files/", mp]
                env = dict(os.environ)
            log = open(os.path.join(self.tmp, "%s-%s-%s.log" % (tool, net, tag)), "ab")
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log)
            log.close()
            self.mounts.append((mp, proc))
            end = time.monotonic() + 30
            while not mounted(mp):
                if proc.poll() is not None or time.monotonic() > end:
                    with open(log.name, errors="replace") as lf:
                        tail = lf.read()[-300:]
                    raise RuntimeError("%s did not mount: %s" % (tool, tail))
                time.sleep(0.05)
            path = mp
            pid = proc.pid
        # name resolution and listing are not part of any figure
        for _ in range(100):
            try:
                os.stat(os.path.join(path, FNAME))
                break
            except OSError:
                time.sleep(0.1)
        return mp, path, pid

    def add(self, net, tool, fig, value, note=""):
        self.rows.append((net, tool, fig, value, note))
        print("%s %s %s: %s%s" % (net, tool, fig, value, ("  (%s)" % note) if note else ""),
              flush=True)

    # --- figures -------------------------------------------------------------
    def baselines(self, net):
        t = time.perf_counter()
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
                            self.url(net)], capture_output=True, text=True, timeout=600)
        secs = time.perf_counter() - t
        if r.returncode != 0 or int(r.stdout or 0) != self.a.size:
            raise RuntimeError("curl failed: %s %s" % (r.stdout, r.stderr))
        curl = self.a.size / secs
        lat = []
        rng = random.Random(3)
        for _ in range(20):
            off = rng.randrange(self.a.size // 4096) * 4096
            req = urllib.request.Request(self.url(net),
                                         headers={"Range": "bytes=%d-%d" % (off, off + 4095)})
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=30) as resp:
                resp.read()
            lat.append(time.perf_counter() - t)
        get4k = statistics.median(lat)
        print("info: %s baselines: curl %.0f MB/s, one ranged 4 KiB GET %.2f ms" %
              (net, curl / 1e6, get4k * 1e3), flush=True)
        return curl, get4k

    def tmpfs_rate(self, nbytes):
        best = 0
        for _ in range(2):
            n, s, _ = timed_read(self.shm_file, 60, nbytes)
            best = max(best, n / s)
        return best

    def seq(self, tool, net, curl):
        mp, path, pid = self.mount(tool, net, "seq")
        f = os.path.join(path, FNAME)
        pos = self.log_pos()
        cpu0 = proc_cpu(pid)
        n, secs, complete = timed_read(f, self.a.time_limit)
        cpu = proc_cpu(pid) - cpu0
        rate = n / secs
        n2, secs2, _ = timed_read(f, 120, n)
        warm = n2 / secs2
        self.umount(mp)
        sent = self.sent_since(pos, FNAME)
        cut = "" if complete else ", cut after %.0f s at %.0f MiB" % (secs, n / MiB)
        self.add(net, tool, "cold_seq_vs_curl", "%.2f" % (rate / curl),
                 "%.0f MB/s vs curl %.0f MB/s%s" % (rate / 1e6, curl / 1e6, cut))
        self.add(net, tool, "cold_cpu_s_per_GiB", "%.2f" % (cpu / (n / GiB)),
                 "%.2f CPU s for %.0f MiB" % (cpu, n / MiB))
        self.add(net, tool, "cold_fetched_vs_read", "%.3f" % (sent / n), "%d of %d bytes" % (sent, n))
        tmpfs = self.tmpfs_rate(n2)
        self.add(net, tool, "warm_vs_tmpfs", "%.2f" % (warm / tmpfs),
                 "%.0f MB/s vs tmpfs %.0f MB/s" % (warm / 1e6, tmpfs / 1e6))

    def rand4k(self, tool, net, get4k):
        mp, path, _ = self.mount(tool, net, "rand")
        f = os.path.join(path, FNAME)
        fd = os.open(f, os.O_RDONLY)
        rng = random.Random(7)
        pos = self.log_pos()
        lat = []
        try:
            for _ in range(self.a.rand_reads):
                off = rng.randrange(self.a.size // 4096) * 4096
                t = time.perf_counter()
                b = os.pread(fd, 4096, off)
                lat.append(time.perf_counter() - t)
                if len(b) != 4096:
                    raise RuntimeError("%s: short read at %d" % (tool, off))
        finally:
            os.close(fd)
        self.umount(mp)
        sent = self.sent_since(pos, FNAME)
        lat.sort()
        med, p90 = statistics.median(lat), lat[int(len(lat) * 0.9)]
        self.add(net, tool, "rand4k_ms", "%.2f" % (med * 1e3),
                 "median of %d; p90 %.2f ms; %.1f x one ranged GET (%.2f ms)" %
                 (len(lat), p90 * 1e3, med / get4k, get4k * 1e3))
        self.add(net, tool, "rand4k_fetched_KiB_per_read", "%.0f" % (sent / len(lat) / 1024),
                 "%d bytes for %d reads" % (sent, len(lat)))

    def llama_load(self, path):
        t = time.perf_counter()
        r = subprocess.run(["node", RUNNER, path], capture_output=True, text=True,
                           timeout=self.a.time_limit * 6 + 60, cwd=os.path.dirname(RUNNER),
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError("llama load of %s failed: %s" % (path, r.stderr[-1000:]))
        return time.perf_counter() - t

    def llama_base(self, net):
        local = os.path.join(self.tmp, "dl.gguf")
        t = time.perf_counter()
        subprocess.run(["curl", "-sS", "-f", "-o", local, self.url(net, GGUF)], check=True,
                       timeout=900)
        dl = time.perf_counter() - t
        os.sync()
        load = self.llama_load(local)
        os.unlink(local)
        return dl, load

    def llama(self, tool, net, base):
        mp, path, _ = self.mount(tool, net, "llama")
        try:
            secs = self.llama_load(os.path.join(path, GGUF))
            note = "%.1f s vs download %.1f s + local load %.1f s" % (secs, base[0], base[1])
            self.add(net, tool, "llama_cold_vs_download", "%.2f" % (secs / sum(base)), note)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            self.add(net, tool, "llama_cold_vs_download", "n/a", str(e)[:200])
        self.umount(mp)

    def run(self):
        self.setup()
        tools = self.a.tools.split(",")
        for net in self.a.nets.split(","):
            curl, get4k = self.baselines(net)
            lbase = self.llama_base(net) if self.a.llama else None
            for tool in tools:
                try:
                    self.seq(tool, net, curl)
                    self.rand4k(tool, net, get4k)
                    if lbase:
                        self.llama(tool, net, lbase)
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    self.add(net, tool, "error", "n/a", str(e)[:300])
                    for mp, _ in list(self.mounts):
                        self.umount(mp)
        self.table(tools)

    def table(self, tools):
        figs = []
        for net, _, fig, _, _ in self.rows:
            if (net, fig) not in figs:
                figs.append((net, fig))
        vals = {(n, t, f): v for n, t, f, v, _ in self.rows}
        print()
        print("| net | figure | " + " | ".join(tools) + " |")
        print("|---|---|" + "---|" * len(tools))
        for net, fig in figs:
            print("| %s | %s | %s |" % (net, fig, " | ".join(vals.get((net, t, fig), "-")
                                                                for t in tools)))
        print("\nload: %s" % open("/proc/loadavg").read().strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("MODELFS_BIN",
                                                    os.path.join(SRC, "build", "cli", "modelfs")))
    ap.add_argument("--size", type=parse_size, default=256 * MiB)
    ap.add_argument("--rate-mbps", type=int, default=400, help="cap per connection, Mbit/s")
    ap.add_argument("--rand-reads", type=int, default=40)
    ap.add_argument("--time-limit", type=float, default=20.0,
                    help="seconds after which a cold read is cut")
    ap.add_argument("--tools", default="modelfs,rclone,httpdirfs")
    ap.add_argument("--nets", default="plain,capped")
    ap.add_argument("--llama", action="store_true", help="also a llama.cpp cold load")
    ap.add_argument("--llama-size", type=parse_size, default=256 * MiB)
    ap.add_argument("--fetch-threads", type=int, default=8)
    ap.add_argument("--modelfs-source", choices=("endpoint", "mirror"), default="endpoint",
                    help="nginx as modelfs's --endpoint (its bytes trusted like the hub's, as "
                    "rclone and httpdirfs trust theirs) or as a --mirror (bytes held until "
                    "the whole file verifies)")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    for tool in ["curl", NGINX] + [t for t in a.tools.split(",") if t != "modelfs"]:
        if not shutil.which(tool):
            sys.exit("bench_compare.py: %s is not installed (apt-get install %s)" %
                     (tool, os.path.basename(tool)))
    if not os.access(a.bin, os.X_OK):
        sys.exit("bench_compare.py: no modelfs binary at %s (use --bin)" % a.bin)
    if a.llama and not os.path.isdir(os.path.join(SRC, "tests", "llama", "node_modules")):
        sys.exit("bench_compare.py: --llama needs tests/llama/node_modules (npm install there)")
    b = Bench(a)
    b.shm = "/nonexistent"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        b.run()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
