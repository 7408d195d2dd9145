"""test_cache_cmds.py - prefetch, pin, unpin, ls, status, gc, verify and the
cache quota, against the real simulator and real mounts.

What crossed the wire is read from the simulator's counters (body_bytes per
file), what the cache holds from `ls --json` / `status --json` and the block
files on disk; file contents are compared byte for byte with what the
simulator serves.
"""
import json
import os
import signal
import subprocess
import threading
import time

from harness import (MODELFS, SRC, MountCase, cache_blocks, make_repo, rand_bytes, read_file, seal_record,
                     set_repo_json, wait_until)

MiB = 1 << 20
CMDS = ("prefetch", "pin", "unpin", "ls", "status", "gc", "verify")


class CacheCase(MountCase):
    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.tmp, "cache")

    def mf(self, *args, env=None, timeout=120):
        e = {"MODELFS_CACHE": self.cache}
        if self.sim is not None:
            e["HF_ENDPOINT"] = self.sim.hub
        if env:
            e.update(env)
        return self.run_modelfs(*args, env=e, timeout=timeout)

    def ok(self, *args, **kw):
        r = self.mf(*args, **kw)
        self.assertEqual(r.returncode, 0, "modelfs %s: %s%s" % (" ".join(args), r.stdout,
                                                               r.stderr))
        return r

    def popen(self, *args):
        e = dict(os.environ)
        for k in ("HF_TOKEN", "HF_HUB_OFFLINE", "MODELFS_CACHE_SIZE"):
            e.pop(k, None)
        e.update({"MODELFS_CACHE": self.cache, "HF_ENDPOINT": self.sim.hub,
                  "HF_HOME": os.path.join(self.tmp, "hfhome")})
        p = subprocess.Popen([MODELFS] + list(args), env=e, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

        def reap():
            if p.poll() is None:
                p.kill()
            p.communicate()
        self.addCleanup(reap)
        return p

    def ls(self, repo=None):
        r = self.ok("ls", "--json", *([repo] if repo else []))
        return json.loads(r.stdout)

    def status(self):
        return json.loads(self.ok("status", "--json").stdout)

    def block_files(self):
        return cache_blocks(self.cache)


class Usage(CacheCase):
    def test_help_for_every_command(self):
        top = self.run_modelfs("--help")
        for cmd in CMDS:
            self.assertIn(cmd, top.stdout)
            r = self.run_modelfs(cmd, "--help")
            self.assertEqual(r.returncode, 0, cmd)
            self.assertIn("usage: modelfs " + cmd, r.stdout)

    def test_bad_arguments_exit_2_with_one_clear_line(self):
        make_repo(self.root, "Org/m", {"a.txt": b"a\n"})
        self.start_sim()
        for argv in (["prefetch"], ["prefetch", "not-a-repo"], ["prefetch", "Org/m", "--jobs", "0"],
                     ["prefetch", "Org/m", "--include", "[abc"], ["prefetch", "Org/m", "--bogus"],
                     ["prefetch", "Org/missing"], ["prefetch", "Org/m@nobranch"],
                     ["pin"], ["pin", "a/b/c/d"], ["unpin"], ["gc", "--to", "12Q"], ["gc", "x"],
                     ["gc"], ["ls", "a", "b"], ["ls", "bad"], ["status", "extra"],
                     ["verify", "x y"]):
            r = self.mf(*argv)
            self.assertEqual(r.returncode, 2, "%s: %s" % (argv, r.stderr))
            self.assertTrue(r.stderr.startswith("modelfs "), argv)
        r = self.mf("prefetch", "Org/m", env={"MODELFS_CACHE_SIZE": "lots"})
        self.assertEqual(r.returncode, 2)
        # Nothing was fetched for a bad command line.
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0)


class Prefetch(CacheCase):
    def test_prefetch_fetches_once_lists_and_verifies(self):
        w = rand_bytes(24 * MiB + 5, seed=3)
        make_repo(self.root, "Org/m", {"config.json": b'{"x": 1}\n', "w.gguf": w,
                                       "docs/readme.md": b"# hi\n"})
        make_repo(self.root, "Data/set", {"d.csv": b"a,b\n"}, repo_type="dataset")
        self.start_sim()
        r = self.ok("prefetch", "Org/m", "--include", "*.json")
        self.assertIn("verified 1 file", r.stdout)
        self.assertEqual(self.sim.stats()["body_bytes"], {"Org/m/config.json": 9})
        [row] = self.ls()
        self.assertEqual((row["repo"], row["files"], row["pinned"]), ("Org/m", 3, False))
        self.assertEqual(row["cached_bytes"], 9)
        self.ok("prefetch", "Org/m", "--exclude", "docs/*", "--jobs", "4")
        bb = self.sim.stats()["body_bytes"]
        self.assertEqual(bb.get("Org/m/w.gguf"), len(w))
        self.assertNotIn("Org/m/docs/readme.md", bb)
        self.ok("prefetch", "Org/m", "datasets/Data/set")
        again = self.ok("prefetch", "Org/m")
        self.assertIn("fetched 0 B", again.stdout)
        bb = self.sim.stats()["body_bytes"]
        small = 9 + 5 + 4
        self.assertEqual(sum(bb.values()), len(w) + small)  # every byte once
        rows = {x["repo"]: x for x in self.ls()}
        self.assertEqual(rows["Org/m"]["complete_pct"], 100.0)
        self.assertEqual(rows["Data/set"]["type"], "dataset")
        self.assertEqual([x["repo"] for x in self.ls("datasets/Data/set")], ["Data/set"])
        st = self.status()
        self.assertEqual(st["cache_dir"], os.path.realpath(self.cache))
        self.assertEqual(st["blobs"], 4)
        self.assertGreaterEqual(st["used_bytes"], len(w))
        self.assertEqual(st["bytes_fetched"], len(w) + small)
        [src_bytes] = st["sources"].values()  # file bodies plus API answers
        self.assertGreaterEqual(src_bytes, len(w) + small)
        # The cached bytes read back identically through a mount.
        mp = self.mount()
        self.assertEqual(read_file(os.path.join(mp, "Org", "m", "w.gguf")), w)
        self.assertEqual(sum(self.sim.stats()["body_bytes"].values()), len(w) + small)

    def test_progress_lines_when_not_a_terminal(self):
        make_repo(self.root, "Org/m", {"w.bin": rand_bytes(32 * MiB, seed=4)})
        self.start_sim(conn_rate_mbps=40)  # 5 MB/s per stream, 2 streams: ~3 s
        r = self.ok("prefetch", "Org/m", "--jobs", "2")
        lines = [l for l in r.stdout.splitlines() if l.startswith("prefetch: ")]
        self.assertTrue(lines, r.stdout)
        self.assertRegex(lines[-1], r"prefetch: [\d.]+% .* of 32 MiB, .*/s, ETA .*, Org/m/w.bin")

    def test_interrupted_prefetch_resumes_fetching_only_missing_blocks(self):
        size = 64 * MiB
        make_repo(self.root, "Org/m", {"w.bin": rand_bytes(size, seed=5)})
        self.start_sim(conn_rate_mbps=80)  # 10 MB/s per stream
        p = self.popen("prefetch", "Org/m", "--jobs", "2")
        self.assertTrue(wait_until(lambda: self.sim.stats()["body_bytes_total"] > 12 * MiB, 30))
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 130, out + err)
        self.assertIn("interrupted", out)
        first = self.sim.stats()["body_bytes_total"]
        self.assertLess(first, size)
        r = self.ok("prefetch", "Org/m")
        # In-flight fetches finished and were kept: not a byte twice.
        self.assertEqual(self.sim.stats()["body_bytes_total"], size, r.stdout)

    def test_killed_prefetch_resumes_from_the_blocks_on_disk(self):
        size = 48 * MiB
        make_repo(self.root, "Org/m", {"w.bin": rand_bytes(size, seed=6)})
        self.start_sim(conn_rate_mbps=80)
        p = self.popen("prefetch", "Org/m", "--jobs", "2")
        self.assertTrue(wait_until(lambda: self.sim.stats()["body_bytes_total"] > 10 * MiB, 30))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        # Let the simulator notice the dead connections before counting.
        time.sleep(1.5)
        on_disk = len(self.block_files())
        self.assertGreater(on_disk, 0)
        self.assertLess(on_disk, size // MiB)
        self.sim.reset_stats()
        self.ok("prefetch", "Org/m")
        self.assertEqual(self.sim.stats()["body_bytes_total"], size - on_disk * MiB)

    def test_prefetch_and_mount_reading_the_same_file_fetch_it_once(self):
        size = 48 * MiB
        data = rand_bytes(size, seed=7)
        make_repo(self.root, "Org/m", {"w.bin": data})
        self.start_sim(conn_rate_mbps=160)  # 20 MB/s per stream: both run together
        mp = self.mount(cache="cache")
        path = os.path.join(mp, "Org", "m", "w.bin")
        got = {}
        reader = threading.Thread(target=lambda: got.update(data=read_file(path)))
        p = self.popen("prefetch", "Org/m", "--jobs", "4")
        time.sleep(0.2)
        reader.start()
        reader.join(120)
        out, err = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertTrue(got.get("data") == data, "mount read wrong bytes")
        self.assertEqual(self.sim.stats()["body_bytes"]["Org/m/w.bin"], size)


class Pins(CacheCase):
    def test_pin_update_unpin_and_offline_reads(self):
        one = {"a.txt": b"one\n", "w.bin": rand_bytes(6 * MiB, seed=8)}
        make_repo(self.root, "Org/m", one)
        self.start_sim()
        r = self.ok("pin", "Org/m@main")
        self.assertIn("pinned", r.stdout)
        [row] = self.ls()
        self.assertTrue(row["pinned"])
        self.assertEqual(row["complete_pct"], 100.0)
        c1 = row["commit"]
        # Offline hub, fresh mount: everything pinned reads, no network.
        self.sim.offline(True)
        mp = self.mount()
        for name, data in one.items():
            self.assertEqual(read_file(os.path.join(mp, "Org", "m@main", name)), data)
        self.umount(mp)
        self.sim.offline(False)
        self.sim.reset_stats()
        mp = self.mount(name="mnt2", args=["--offline"])
        for name, data in one.items():
            self.assertEqual(read_file(os.path.join(mp, "Org", "m@main", name)), data)
        self.assertEqual(sum(self.sim.stats()["requests"].values()), 0)
        self.umount(mp)
        # The branch moves: pin again keeps c1, --update adds the new commit.
        make_repo(self.root, "Org/m", {"a.txt": b"two\n"}, folder="v2")
        set_repo_json(self.root, "Org/m", branch_dirs={"main": "v2"})
        self.sim.rescan()
        self.ok("pin", "Org/m@main")
        self.assertEqual([x["commit"] for x in self.ls() if x["pinned"]], [c1])
        r = self.ok("pin", "--update")
        self.assertIn("now also pins", r.stdout)
        pinned = [x["commit"] for x in self.ls() if x["pinned"]]
        self.assertEqual(len(pinned), 2)
        self.assertIn(c1, pinned)
        self.assertEqual(self.status()["pinned_bytes"], 4 + 6 * MiB + 4)
        # gc cannot take pinned data; after unpin it can.
        r = self.mf("gc", "--to", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("pinned", r.stderr)
        self.assertGreaterEqual(self.status()["used_bytes"], 6 * MiB)
        r = self.mf("unpin", "Org/other")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not pinned", r.stderr)
        self.ok("unpin", "Org/m@main")
        self.assertEqual([x for x in self.ls() if x["pinned"]], [])
        self.assertEqual(self.status()["pinned_bytes"], 0)
        self.ok("gc", "--to", "0")
        self.assertEqual(self.status()["used_bytes"], 0)

    def test_pin_refuses_more_than_the_quota(self):
        make_repo(self.root, "Org/a", {"w.bin": rand_bytes(3 * MiB, seed=9)})
        make_repo(self.root, "Org/b", {"w.bin": rand_bytes(3 * MiB, seed=10)})
        self.start_sim()
        env = {"MODELFS_CACHE_SIZE": "5M"}
        self.ok("pin", "Org/a", env=env)
        r = self.mf("pin", "Org/b", env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("quota", r.stderr)
        self.assertEqual(self.sim.stats()["body_bytes"].get("Org/b/w.bin", 0), 0)
        self.assertEqual([x["repo"] for x in self.ls() if x["pinned"]], ["Org/a"])

    def test_pin_models_example(self):
        make_repo(self.root, "Org/a", {"a.txt": b"a\n"})
        make_repo(self.root, "Org/b", {"b.txt": b"b\n"}, tags={"v1": "main"})
        make_repo(self.root, "Sets/d", {"d.csv": b"1\n"}, repo_type="dataset")
        self.start_sim()
        lst = os.path.join(self.tmp, "models.txt")
        with open(lst, "w") as f:
            f.write("# models we need\nOrg/a\n\n  Org/b@v1   # tagged\ndatasets/Sets/d@main\n")
        env = dict(os.environ, MODELFS=MODELFS, MODELFS_CACHE=self.cache,
                   HF_ENDPOINT=self.sim.hub, HF_HOME=os.path.join(self.tmp, "hfhome"))
        script = os.path.join(SRC, "examples", "pin_models.sh")
        r = subprocess.run([script, lst], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(sorted(x["repo"] for x in self.ls() if x["pinned"]),
                         ["Org/a", "Org/b", "Sets/d"])
        with open(lst, "a") as f:
            f.write("Org/missing\n")
        r = subprocess.run([script, lst], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1)
        self.assertIn("failed: Org/missing", r.stderr)


class Quota(CacheCase):
    def test_tiny_quota_keeps_pinned_data_and_ends_under_the_quota(self):
        files = {}
        for i in range(5):
            files[i] = rand_bytes(40 * 1000 * 1000, seed=20 + i)
            make_repo(self.root, "Org/q%d" % i, {"w.bin": files[i]})
        self.start_sim()
        quota = 180 * MiB
        mp = self.mount(args=["--cache-size", "180M"])
        self.ok("pin", "Org/q0")  # the quota the mount stored applies to the CLI
        r = self.mf("pin", "Org/q1", "Org/q2", "Org/q3", "Org/q4")
        self.assertEqual(r.returncode, 1)
        self.assertIn("quota", r.stderr)
        for i in range(1, 5):
            self.assertTrue(read_file(os.path.join(mp, "Org", "q%d" % i, "w.bin")) == files[i])
        self.assertTrue(wait_until(lambda: self.status()["used_bytes"] <= quota, 30),
                        self.status())
        st = self.status()
        self.assertEqual(st["quota_bytes"], quota)
        rows = {x["repo"]: x for x in self.ls()}
        self.assertEqual(rows["Org/q0"]["complete_pct"], 100.0)  # pinned: untouched
        self.assertTrue(rows["Org/q0"]["pinned"])
        self.assertLess(min(rows["Org/q%d" % i]["complete_pct"] for i in range(1, 5)), 100.0)
        # Evicted blocks come back (refetched), right bytes.
        self.assertTrue(read_file(os.path.join(mp, "Org", "q1", "w.bin")) == files[1])
        self.assertIn("evicted", self.log_of())
        self.assertTrue(wait_until(lambda: self.status()["used_bytes"] <= quota, 30))

    def test_a_file_larger_than_the_quota_still_streams(self):
        data = rand_bytes(48 * MiB, seed=30)
        make_repo(self.root, "Org/big", {"w.bin": data})
        self.start_sim()
        mp = self.mount(args=["--cache-size", "16M"])
        self.assertTrue(read_file(os.path.join(mp, "Org", "big", "w.bin")) == data)
        self.assertTrue(wait_until(lambda: self.status()["used_bytes"] <= 16 * MiB, 30))

    def test_blocks_evicted_under_a_mount_are_fetched_again(self):
        size = 320 * MiB  # more than the daemon keeps decoded in memory (256 MiB)
        data = rand_bytes(size, seed=31)
        make_repo(self.root, "Org/m", {"w.bin": data})
        self.start_sim()
        mp = self.mount()
        path = os.path.join(mp, "Org", "m", "w.bin")
        f = open(path, "rb")
        self.addCleanup(f.close)
        self.assertTrue(f.read() == data)
        # The fetch of the last blocks keeps them locked while it hashes
        # the file; gc leaves locked blocks alone, so ask until it is done.
        self.assertTrue(wait_until(lambda: self.mf("gc", "--to", "0").returncode == 0, 30))
        self.assertEqual(self.block_files(), [])
        with open("/proc/sys/vm/drop_caches", "w") as dc:
            dc.write("3\n")
        before = self.sim.stats()["body_bytes_total"]
        f.seek(0)
        self.assertTrue(f.read(30 * MiB) == data[:30 * MiB])
        self.assertGreaterEqual(self.sim.stats()["body_bytes_total"] - before, 30 * MiB)


class Verify(CacheCase):
    def test_verify_drops_a_corrupted_file(self):
        good = rand_bytes(3 * MiB, seed=40)
        make_repo(self.root, "Org/m", {"a.bin": good, "b.txt": b"fine\n"})
        self.start_sim()
        self.ok("prefetch", "Org/m")
        r = self.ok("verify")
        self.assertIn("verified 2 files", r.stdout)
        # Blocks that each pass their own checks but hold wrong bytes: swap
        # two blocks of the big file, payloads and records (resealed for
        # their new index), so only the file's sha256 can tell.
        blocks = sorted((v for v in self.block_files() if v.raw > 1000), key=lambda v: v.idx)
        self.assertEqual(len(blocks), 3)
        a, b = blocks[0], blocks[1]
        self.assertEqual((a.raw, a.codec, b.raw, b.codec), (MiB, 0, MiB, 0))
        with open(a.data_path, "r+b") as f:
            f.seek(a.offset)
            pa = f.read(a.stored)
            f.seek(b.offset)
            pb = f.read(b.stored)
            f.seek(a.offset)
            f.write(pb)
            f.seek(b.offset)
            f.write(pa)
        with open(a.rec_path, "r+b") as f:
            f.seek(a.rec_offset())
            f.write(seal_record(b.rec, a.idx))
            f.seek(b.rec_offset())
            f.write(seal_record(a.rec, b.idx))
        r = self.mf("verify", "Org/m")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("bad:", r.stdout)
        self.assertEqual(len([v for v in self.block_files() if v.raw > 1000]), 0)
        self.ok("verify")  # what is left is good
        self.sim.reset_stats()
        self.ok("prefetch", "Org/m")
        self.assertEqual(self.sim.stats()["body_bytes_total"], len(good))
