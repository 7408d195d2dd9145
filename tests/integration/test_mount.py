"""test_mount.py - the lazy mount, end to end: namespace, reads, caching.

Every test mounts a real FUSE filesystem against the real hub simulator
and checks both what a user sees and what crossed the wire (the
simulator's counters).
"""
import errno
import json
import mmap
import os
import stat
import subprocess
import threading
import time
import urllib.request

from harness import (MountCase, cache_blocks, make_repo, rand_bytes, read_file, set_repo_json,
                     sha256, wait_until)

MiB = 1 << 20


class Namespace(MountCase):
    def setUp(self):
        super().setUp()
        self.cfg = b'{"architectures": ["LlamaForCausalLM"]}\n'
        self.weights = rand_bytes(3 * MiB + 123, seed=1)
        make_repo(self.root, "TheOrg/tiny", {
            "config.json": self.cfg,
            "model.gguf": self.weights,
            "sub/dir/notes.txt": b"hello\n",
        }, tags={"v1.0": "main"})
        make_repo(self.root, "TheOrg/tiny", {"config.json": b'{"pr": 1}\n'}, branch="refs/pr/1")
        make_repo(self.root, "DataOrg/set", {"data.csv": b"a,b\n1,2\n"}, repo_type="dataset")
        self.start_sim()
        self.mp = self.mount()

    def api(self, path):
        with urllib.request.urlopen(self.sim.hub + path) as r:
            return json.loads(r.read())

    def test_symlinks_point_at_commit_directories(self):
        info = self.api("/api/models/TheOrg/tiny/revision/main")
        commit = info["sha"]
        org = os.path.join(self.mp, "TheOrg")
        self.assertEqual(os.readlink(os.path.join(org, "tiny")), "tiny@" + commit)
        self.assertEqual(os.readlink(os.path.join(org, "tiny@main")), "tiny@" + commit)
        self.assertEqual(os.readlink(os.path.join(org, "tiny@v1.0")), "tiny@" + commit)
        pr = self.api("/api/models/TheOrg/tiny/revision/refs%2Fpr%2F1")["sha"]
        self.assertNotEqual(pr, commit)
        self.assertEqual(os.readlink(os.path.join(org, "tiny@refs%2Fpr%2F1")), "tiny@" + pr)
        self.assertFileEqual(os.path.join(org, "tiny@refs%2Fpr%2F1", "config.json"),
                             b'{"pr": 1}\n')
        d = os.path.join(org, "tiny@" + commit)
        self.assertTrue(stat.S_ISDIR(os.lstat(d).st_mode))
        self.assertEqual(sorted(os.listdir(d)), ["config.json", "model.gguf", "sub"])
        self.assertEqual(os.listdir(os.path.join(d, "sub", "dir")), ["notes.txt"])

    def test_attributes(self):
        info = self.api("/api/models/TheOrg/tiny/revision/main")
        base = os.path.join(self.mp, "TheOrg", "tiny")
        st = os.stat(os.path.join(base, "model.gguf"))
        self.assertEqual(st.st_size, len(self.weights))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o444)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(base, "sub")).st_mode), 0o555)
        # st_mtime is the commit date the hub reports.
        want = time.mktime(time.strptime(info["lastModified"][:19], "%Y-%m-%dT%H:%M:%S"))
        want -= time.timezone
        self.assertAlmostEqual(st.st_mtime, want, delta=1.0)
        # A stable inode per (commit, path): same after a remount.
        ino = st.st_ino
        self.umount(self.mp)
        self.mp = self.mount()
        self.assertEqual(os.stat(os.path.join(self.mp, "TheOrg", "tiny", "model.gguf")).st_ino,
                         ino)
        sv = os.statvfs(self.mp)
        self.assertEqual(sv.f_bsize, 4096)
        self.assertTrue(sv.f_flag & os.ST_RDONLY)

    def test_unknown_names_are_enoent(self):
        for p in ("NoSuchOrg", "TheOrg/nope", "TheOrg/tiny@nobranch", "TheOrg/tiny/missing.txt",
                  "TheOrg/tiny@" + "0" * 40, "TheOrg/bad..name", "TheOrg/tiny@", "datasets/x/y"):
            self.assertOSError(errno.ENOENT, os.stat, os.path.join(self.mp, p))

    def test_readdir_lists_what_the_index_knows(self):
        os.stat(os.path.join(self.mp, "TheOrg", "tiny", "config.json"))
        os.stat(os.path.join(self.mp, "TheOrg", "tiny@v1.0"))
        self.assertIn("TheOrg", os.listdir(self.mp))
        self.assertIn("datasets", os.listdir(self.mp))
        names = os.listdir(os.path.join(self.mp, "TheOrg"))
        self.assertIn("tiny", names)
        self.assertIn("tiny@v1.0", names)
        # readdir's inode numbers are the ones lookup gives.
        for d in (os.path.join(self.mp, "TheOrg"), os.path.join(self.mp, "TheOrg", "tiny")):
            with os.scandir(d) as it:
                for e in it:
                    self.assertEqual(e.inode(), os.lstat(e.path).st_ino, e.path)

    def test_datasets(self):
        p = os.path.join(self.mp, "datasets", "DataOrg", "set", "data.csv")
        self.assertFileEqual(p, b"a,b\n1,2\n")
        self.assertIn("DataOrg", os.listdir(os.path.join(self.mp, "datasets")))
        # A dataset org is not a model org.
        self.assertOSError(errno.ENOENT, os.stat, os.path.join(self.mp, "DataOrg", "set"))

    def test_read_only(self):
        p = os.path.join(self.mp, "TheOrg", "tiny", "config.json")
        for flags in (os.O_WRONLY, os.O_RDWR):
            with self.assertRaises(OSError) as cm:
                os.open(p, flags)
            self.assertIn(cm.exception.errno, (errno.EROFS, errno.EACCES))
        with self.assertRaises(OSError):
            os.mkdir(os.path.join(self.mp, "TheOrg", "tiny", "newdir"))

    def test_regular_files_via_resolve_cache_lfs_via_cdn(self):
        base = os.path.join(self.mp, "TheOrg", "tiny")
        self.assertFileEqual(os.path.join(base, "config.json"), self.cfg)
        self.assertFileEqual(os.path.join(base, "model.gguf"), self.weights)
        self.assertFileEqual(os.path.join(base, "sub", "dir", "notes.txt"), b"hello\n")
        st = self.sim.stats()
        self.assertGreaterEqual(st["requests"]["resolve-cache"], 2)
        self.assertGreaterEqual(st["requests"]["cdn"], 1)
        self.assertEqual(st["body_bytes"]["TheOrg/tiny/model.gguf"], len(self.weights))
        self.assertEqual(st["cdn_auth_seen"], 0)


class ReadPath(MountCase):
    def setUp(self):
        super().setUp()
        self.big = rand_bytes(24 * MiB + 4321, seed=2)
        make_repo(self.root, "Org/big", {"w.safetensors": self.big, "README.md": b"# hi\n"})
        make_repo(self.root, "Org/copy", {"same.safetensors": self.big})
        self.start_sim()
        self.mp = self.mount()
        self.path = os.path.join(self.mp, "Org", "big", "w.safetensors")

    def test_sequential_read_fetches_each_byte_once(self):
        with open(self.path, "rb") as f:
            got = b""
            while True:
                chunk = f.read(128 * 1024)
                if not chunk:
                    break
                got += chunk
        self.assertTrue(got == self.big)
        fetched = self.body_bytes("Org/big/w.safetensors")
        self.assertLessEqual(fetched, len(self.big) * 1.02)
        self.assertGreaterEqual(fetched, len(self.big))

    def test_random_reads(self):
        import random
        rnd = random.Random(7)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for _ in range(200):
                off = rnd.randrange(0, len(self.big))
                n = rnd.randrange(1, 300000)
                self.assertEqual(os.pread(fd, n, off), self.big[off:off + n])
            self.assertEqual(os.pread(fd, 10, len(self.big)), b"")
            self.assertEqual(os.pread(fd, 10, len(self.big) - 3), self.big[-3:])
        finally:
            os.close(fd)

    def test_eight_concurrent_readers_fetch_once(self):
        errors = []

        def reader(i):
            try:
                with open(self.path, "rb") as f:
                    if f.read() != self.big:
                        errors.append("reader %d got wrong bytes" % i)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        ts = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(self.body_bytes("Org/big/w.safetensors"), len(self.big))

    def test_reopen_and_remount_fetch_nothing(self):
        self.assertFileEqual(self.path, self.big)
        self.sim.reset_stats()
        self.assertFileEqual(self.path, self.big)          # page cache (keep_cache)
        self.umount(self.mp)
        self.mp = self.mount()
        self.assertFileEqual(os.path.join(self.mp, "Org", "big", "w.safetensors"), self.big)
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0)

    def test_identical_content_stored_once(self):
        self.assertFileEqual(self.path, self.big)
        self.sim.reset_stats()
        self.assertFileEqual(os.path.join(self.mp, "Org", "copy", "same.safetensors"), self.big)
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0)

    def test_mmap_shared_private_populate(self):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            m = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            self.assertEqual(sha256(m[:]), sha256(self.big))
            m.close()
            m = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
            self.assertEqual(m[len(self.big) - 100:], self.big[-100:])
            m.close()
            m = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ)
            self.assertEqual(sha256(m[:]), sha256(self.big))
            m.close()
        finally:
            os.close(fd)

    def test_header_read_fetches_little(self):
        with open(self.path, "rb") as f:
            for _ in range(64):
                f.read(4096)
        self.assertLess(self.body_bytes("Org/big/w.safetensors"), 0.1 * len(self.big))

    def test_ls_and_warm_reads_answer_while_a_fetch_stalls(self):
        readme = os.path.join(self.mp, "Org", "big", "README.md")
        self.assertFileEqual(readme, b"# hi\n")
        # Opened before the stall: open() of an incomplete file probes its
        # source and refuses within 0.8 s when the probe stalls (issue 10),
        # so only a read of a file already open waits on the stalled fetch.
        f = open(self.path, "rb")
        self.addCleanup(f.close)
        self.sim.fault("stall", route="cdn", when="before", seconds=6, count=-1)
        done = threading.Event()

        def slow():
            try:
                f.read(MiB)
            except OSError:
                pass
            done.set()
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        for _ in range(20):
            os.listdir(os.path.join(self.mp, "Org", "big"))
            os.stat(self.path)
            self.assertFileEqual(readme, b"# hi\n")
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertFalse(done.is_set(), "the stalled read should still be waiting")
        self.sim.clear_faults()
        t.join(60)


class CacheIntegrity(MountCase):
    def setUp(self):
        super().setUp()
        self.big = rand_bytes(6 * MiB + 5, seed=3)
        self.small = b"tokenizer " * 1000
        make_repo(self.root, "Org/m", {"w.bin": self.big, "tok.json": self.small})
        self.start_sim()

    def blocks(self, cache="cache"):
        return cache_blocks(os.path.join(self.tmp, cache))

    def test_corrupt_block_on_disk_is_refetched_never_served(self):
        mp = self.mount()
        self.assertFileEqual(os.path.join(mp, "Org", "m", "w.bin"), self.big)
        self.umount(mp)
        victims = self.blocks()
        self.assertGreater(len(victims), 3)
        for v in victims:
            with open(v.data_path, "r+b") as f:
                f.seek(v.offset + v.stored // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0xFF]))
        self.sim.reset_stats()
        mp = self.mount()
        self.assertFileEqual(os.path.join(mp, "Org", "m", "w.bin"), self.big)
        self.assertFileEqual(os.path.join(mp, "Org", "m", "tok.json"), self.small)
        self.assertGreaterEqual(self.sim.stats()["body_bytes_total"], len(self.big))
        self.assertIn("checksum", self.log_of())

    def test_small_files_compressed_weights_raw(self):
        mp = self.mount()
        self.assertFileEqual(os.path.join(mp, "Org", "m", "tok.json"), self.small)
        self.assertFileEqual(os.path.join(mp, "Org", "m", "w.bin"), self.big)
        # A reply leaves before its block reaches the disk (the store runs
        # after the hand-off), so the last block may still be in flight:
        # wait for every block, then weigh them.
        def stored():
            return sum(v.stored_bytes for v in self.blocks())
        self.assertTrue(wait_until(lambda: stored() > len(self.big), 10),
                        "stored %d, weights alone are %d" % (stored(), len(self.big)))
        # tok.json (10 kB of repetitive text) compresses; random weights don't.
        self.assertLess(stored(), len(self.big) + len(self.small) // 2)

    def test_corrupted_transfer_of_small_file_is_not_served(self):
        mp = self.mount()
        self.sim.fault("corrupt", route="resolve-cache", path="tok.json", count=-1)
        self.assertOSError(errno.EIO, read_file, os.path.join(mp, "Org", "m", "tok.json"))
        self.assertIn("does not match its hash", self.log_of())
        self.sim.clear_faults()
        self.assertFileEqual(os.path.join(mp, "Org", "m", "tok.json"), self.small)

    def test_corrupted_large_blob_is_dropped_and_refetched(self):
        mp = self.mount()
        self.sim.fault("corrupt", route="cdn", count=1)
        path = os.path.join(mp, "Org", "m", "w.bin")
        try:
            read_file(path)
        except OSError:
            pass
        self.assertTrue(wait_until(lambda: "does not match its hash" in self.log_of(), 10))
        self.sim.clear_faults()
        # Its blocks were dropped and the kernel's pages invalidated.
        self.assertTrue(wait_until(lambda: read_file(path) == self.big, 20))
