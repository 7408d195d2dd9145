"""test_cli.py - the modelfs command's contract: help, usage errors, exit
codes, and refs that move while mounted."""
import os
import time
import urllib.request
import json

from harness import MODELFS, MountCase, make_repo, set_repo_json


class Usage(MountCase):
    def test_help_everywhere(self):
        r = self.run_modelfs("--help")
        self.assertEqual(r.returncode, 0)
        for cmd in ("mount", "umount"):
            self.assertIn(cmd, r.stdout)
            h = self.run_modelfs(cmd, "--help")
            self.assertEqual(h.returncode, 0, cmd)
            self.assertIn("usage: modelfs " + cmd, h.stdout)

    def test_bad_usage_exits_2_with_a_message(self):
        for argv in ([], ["frobnicate"], ["mount"], ["mount", "/tmp", "--bogus"],
                     ["mount", "/tmp", "--block-size", "3M"],
                     ["mount", "/tmp", "--cache-size", "12Q"],
                     ["mount", "/tmp", "--endpoint", "ftp://x"],
                     ["umount"], ["umount", "a", "b"]):
            r = self.run_modelfs(*argv)
            self.assertEqual(r.returncode, 2, argv)
            self.assertTrue(r.stderr.strip(), argv)

    def test_integer_options_are_strict(self):
        # atoi() read "8x" as 8 and "x" as 0; every integer option now
        # takes only a whole decimal number in its range.
        cache = os.path.join(self.tmp, "c")
        for argv in (["mount", "/tmp", "--fetch-threads", "8x"],
                     ["mount", "/tmp", "--fetch-threads", " 8"],
                     ["mount", "/tmp", "--fetch-threads", "0"],
                     ["serve", "--cache", cache, "--workers", "8x"],
                     ["serve", "--cache", cache, "--max-conns", "1e3"],
                     ["serve", "--cache", cache, "--listen", "127.0.0.1:80x"],
                     ["prefetch", "--cache", cache, "--jobs", "4k", "org/name"]):
            r = self.run_modelfs(*argv)
            self.assertEqual(r.returncode, 2, argv)
            self.assertIn("not '" if "--listen" not in argv else "bad port", r.stderr, argv)

    def test_runtime_failures_exit_1(self):
        r = self.run_modelfs("mount", os.path.join(self.tmp, "missing"), "--cache",
                             os.path.join(self.tmp, "c"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing", r.stderr)
        r = self.run_modelfs("umount", self.tmp)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a modelfs mount", r.stderr)

    def test_version(self):
        r = self.run_modelfs("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^modelfs \d+\.\d+")


class MovingRefs(MountCase):
    def test_branch_move_shows_after_ttl_and_old_commit_stays(self):
        make_repo(self.root, "Org/m", {"v.txt": b"one\n"})
        make_repo(self.root, "Org/m", {"v.txt": b"two\n"}, folder="main-v2")
        self.start_sim()
        mp = self.mount(args=["--ref-ttl", "1"])
        link = os.path.join(mp, "Org", "m")
        old = os.readlink(link)
        f = open(os.path.join(mp, "Org", old, "v.txt"), "rb")  # open across the move
        set_repo_json(self.root, "Org/m", branch_dirs={"main": "main-v2"})
        self.sim.rescan()
        time.sleep(1.5)
        new = os.readlink(link)
        self.assertNotEqual(new, old)
        self.assertEqual(f.read(), b"one\n")
        f.close()
        self.assertFileEqual(os.path.join(mp, "Org", new, "v.txt"), b"two\n")
        self.assertFileEqual(os.path.join(mp, "Org", "m", "v.txt"), b"two\n")
        self.assertFileEqual(os.path.join(mp, "Org", old, "v.txt"), b"one\n")
