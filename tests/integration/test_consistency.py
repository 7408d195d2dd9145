"""test_consistency.py - the block store and the index agree: a block whose
index row could not be written does not stay on disk (it would escape the
quota and eviction forever), and blocks the index does not know (a crash
between the two writes) are swept at mount, by `gc` and by `verify`.

Index failures are injected with an SQLite trigger on the cache's own
index; rows are made to go missing by deleting them.
"""
import os
import sqlite3

from harness import MountCase, make_repo, rand_bytes

MiB = 1 << 20


def disk_bytes(cache):
    """Allocated bytes of the block store (sparse files count what they
    hold); the index, logs and lock files excluded."""
    total = 0
    for d, _, files in os.walk(cache):
        if os.path.basename(d) == "locks":
            continue
        for f in files:
            if f.startswith("index.db") or f.endswith(".log"):
                continue
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


class DiskAndIndexAgree(MountCase):
    def setUp(self):
        super().setUp()
        self.data = rand_bytes(3 * MiB + 5, seed=61)
        make_repo(self.root, "Org/m", {"w.bin": self.data})
        self.start_sim()
        self.cache = os.path.join(self.tmp, "cache")

    def sql(self, *stmts):
        con = sqlite3.connect(os.path.join(self.cache, "index.db"), timeout=30)
        try:
            for s in stmts:
                con.execute(s)
            con.commit()
        finally:
            con.close()

    def cmd(self, *args):
        return self.run_modelfs(*args, "--cache", self.cache, check=True)

    def prefetch(self):
        self.cmd("prefetch", "Org/m", "--endpoint", self.sim.hub)
        self.assertGreater(disk_bytes(self.cache), 3 * MiB)

    def test_a_block_whose_row_failed_is_not_left_on_disk(self):
        mp = self.mount()
        os.stat(os.path.join(mp, "Org", "m", "w.bin"))  # index exists, tree known
        self.umount(mp)
        self.sql("CREATE TRIGGER test_fail_blocks BEFORE INSERT ON blocks "
                 "BEGIN SELECT RAISE(FAIL, 'injected by test_consistency'); END")
        mp = self.mount(name="m2")
        # The reader still gets the right bytes (from memory)...
        self.assertFileEqual(os.path.join(mp, "Org", "m", "w.bin"), self.data)
        self.umount(mp)
        self.assertIn("could not record block", self.log_of())
        # ...and nothing stayed on disk behind the index's back.
        self.assertLess(disk_bytes(self.cache), 64 * 1024)
        self.sql("DROP TRIGGER test_fail_blocks")
        r = self.cmd("gc", "--to", "1G")
        self.assertNotIn("the index did not know", r.stdout)

    def test_gc_verify_and_mount_sweep_blocks_the_index_does_not_know(self):
        for how in ("gc", "verify", "mount"):
            self.prefetch()
            self.sql("DELETE FROM blocks")
            before = disk_bytes(self.cache)
            if how == "mount":
                mp = self.mount(name="m-" + how)
                self.umount(mp)
                self.assertIn("the index did not know", self.log_of())
            else:
                r = self.cmd(how, *(["--to", "1G"] if how == "gc" else []))
                self.assertRegex(r.stdout, r"removed \d+ stored blocks? the index did not know",
                                 how)
            after = disk_bytes(self.cache)
            self.assertLess(after, before - 3 * MiB, "%s: %d -> %d bytes" % (how, before, after))
            # Swept means consistent: a second look finds nothing.
            r = self.cmd("gc", "--to", "1G")
            self.assertNotIn("the index did not know", r.stdout, how)
