"""test_memory.py - the daemon's memory is bounded by what the kernel
holds: walking a 200 000-file repository creates 200 000 inodes, and once
the kernel drops its caches (and sends FORGET for them) the daemon frees
them and its RSS returns near where it was before the walk.
"""
import os
import sys
import time

from harness import MountCase, make_repo, wait_until
from srvutil import rss_kb

FILES = 200000
DIRS = 200


def daemon_pid(mp):
    """The mount daemon: the process whose pidfile names this mount point."""
    run = "/run/modelfs" if os.getuid() == 0 else os.path.join(
        os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "modelfs")
    for name in os.listdir(run):
        if not name.endswith(".pid"):
            continue
        try:
            with open(os.path.join(run, name)) as f:
                pid, where = f.read().split("\n")[:2]
        except (OSError, ValueError):
            continue
        if where == mp:
            return int(pid)
    return None


def drop_kernel_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")  # dentries and inodes: the kernel FORGETs ours


class ForgetFreesInodes(MountCase):
    def test_walk_drop_caches_rss_returns_near_baseline(self):
        if os.getuid() != 0:
            self.skipTest("dropping the kernel's caches needs root")
        make_repo(self.root, "Org/huge", {"README.md": b"huge\n"})
        self.start_sim()
        per = FILES // DIRS
        entries = [{"type": "directory", "path": "d%03d" % d, "oid": "%040x" % (d + 1),
                    "size": 0} for d in range(DIRS)]
        entries += [{"type": "file", "path": "d%03d/f%04d.bin" % (i // per, i % per),
                     "oid": "%040x" % (i + 1000), "size": 1} for i in range(FILES)]
        self.sim.fault("hostile_tree", route="api", count=-1, entries=entries)
        mp = self.mount()
        base = os.path.join(mp, "Org", "huge")
        pid = daemon_pid(os.path.realpath(mp))
        self.assertIsNotNone(pid, "no pidfile for %s" % mp)
        with open("/proc/%d/maps" % pid) as f:
            # ASan's quarantine keeps freed memory on purpose: the walk and
            # the frees still run (the sanitizer checks them), RSS is not.
            asan = "libasan" in f.read()

        # The baseline includes the repository's tree (the catalogue keeps
        # it) and one directory's worth of everything else.
        names = sorted(os.listdir(base))
        self.assertEqual(len(names), DIRS + 1)
        for f in os.listdir(os.path.join(base, "d000")):
            os.lstat(os.path.join(base, "d000", f))
        drop_kernel_caches()
        time.sleep(2)
        rss0 = rss_kb(pid)

        n = 0
        for d in names:
            if not d.startswith("d"):
                continue
            p = os.path.join(base, d)
            for f in os.listdir(p):
                os.lstat(os.path.join(p, f))
                n += 1
        self.assertEqual(n, FILES)
        rss1 = rss_kb(pid)
        grown = rss1 - rss0
        drop_kernel_caches()
        near = rss0 + max(grown // 4, 8 * 1024)
        if not asan:
            wait_until(lambda: rss_kb(pid) <= near, timeout=60, step=0.5)
        else:
            time.sleep(5)
        rss2 = rss_kb(pid)
        # Everything still works after the inodes came and went.
        self.assertEqual(len(os.listdir(os.path.join(base, "d199"))), per)
        self.assertEqual(os.lstat(os.path.join(base, "d007", "f0003.bin")).st_size, 1)
        with open(os.path.join(base, "README.md"), "rb") as f:
            self.assertEqual(f.read(), b"huge\n")
        if asan:
            self.skipTest("RSS says nothing under AddressSanitizer (walk and frees ran)")
        sys.stdout.write("\nRSS: %d KiB before the walk, %d KiB after %d lookups, %d KiB after "
                         "drop_caches (%.0f%% of the growth left)\n" %
                         (rss0, rss1, FILES, rss2, 100.0 * (rss2 - rss0) / max(grown, 1)))
        # The walk must have cost something, or this test shows nothing.
        self.assertGreater(grown, 20 * 1024, "RSS %d -> %d KiB over the walk" % (rss0, rss1))
        self.assertLessEqual(rss2, near, "RSS %d -> %d -> %d KiB" % (rss0, rss1, rss2))
