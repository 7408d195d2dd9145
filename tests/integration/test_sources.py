"""test_sources.py - mirrors and peers behind one mount: failover when the
hub is down, bad bytes from a mirror caught and refetched from the hub,
peers asked first, a peer dying mid-transfer. Each test checks content and
the counters of every simulator involved.
"""
import json
import os
import shutil
import socket
import threading
import time

from harness import MountCase, make_repo, rand_bytes, read_file, sha256, wait_until
from srvutil import start_second_sim, start_serve

MiB = 1 << 20


def file_bytes(sim, key):
    return sim.stats()["body_bytes"].get(key, 0)


class Mirror(MountCase):
    def setUp(self):
        super().setUp()
        self.big = rand_bytes(3 * MiB + 123, seed=51)   # several blocks
        self.small = b'{"mirror": "test"}\n' * 50          # one block
        make_repo(self.root, "Org/m", {"w.bin": self.big, "config.json": self.small})
        # the mirror serves a copy of the same repositories (same commits)
        self.mroot = os.path.join(self.tmp, "mirror-root")
        shutil.copytree(self.root, self.mroot)
        self.start_sim()
        self.mirror = start_second_sim(self, self.mroot)

    def test_hub_offline_mirror_serves_everything(self):
        mp = self.mount(args=["--mirror", self.mirror.hub, "--fetch-timeout", "10"])
        self.sim.offline(True)
        d = os.path.join(mp, "Org", "m")
        self.assertEqual(sorted(os.listdir(d)), ["config.json", "w.bin"])
        self.assertFileEqual(os.path.join(d, "w.bin"), self.big)
        self.assertFileEqual(os.path.join(d, "config.json"), self.small)
        st = self.sim.stats()
        self.assertEqual(st["body_bytes_total"], 0)
        self.assertGreaterEqual(file_bytes(self.mirror, "Org/m/w.bin"), len(self.big))
        self.assertGreaterEqual(file_bytes(self.mirror, "Org/m/config.json"), len(self.small))
        self.assertGreater(self.mirror.stats()["requests"]["api"], 0)

    def test_prefetch_from_mirror_with_hub_offline(self):
        self.sim.offline(True)
        r = self.run_modelfs("prefetch", "Org/m", "--cache", os.path.join(self.tmp, "cache"),
                             "--endpoint", self.sim.hub, "--mirror", self.mirror.hub)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertGreaterEqual(file_bytes(self.mirror, "Org/m/w.bin"), len(self.big))
        # Everything is now local: an offline mount serves it with no source.
        mp = self.mount(args=["--offline"])
        self.assertFileEqual(os.path.join(mp, "Org", "m", "w.bin"), self.big)
        self.assertFileEqual(os.path.join(mp, "Org", "m", "config.json"), self.small)

    def test_prefetch_rejects_a_bad_mirror_url(self):
        r = self.run_modelfs("prefetch", "Org/m", "--cache", os.path.join(self.tmp, "cache"),
                             "--mirror", "ftp://nope")
        self.assertEqual(r.returncode, 2)
        self.assertIn("mirror", r.stderr)

    def test_mirror_from_environment(self):
        mp = self.mount(env={"MODELFS_MIRRORS": "," + self.mirror.hub + ","})
        self.sim.offline(True)
        self.assertFileEqual(os.path.join(mp, "Org", "m", "config.json"), self.small)
        self.assertGreater(file_bytes(self.mirror, "Org/m/config.json"), 0)

    def test_preferred_mirror_corrupting_is_caught_and_demoted(self):
        self.mirror.fault("corrupt", route="any", count=-1)
        mp = self.mount(args=["--mirror", self.mirror.hub, "--prefer", "mirror"])
        d = os.path.join(mp, "Org", "m")
        # One block: verified before a byte is served -> right at once.
        self.assertFileEqual(os.path.join(d, "config.json"), self.small)
        self.assertGreater(self.mirror.stats()["faults_applied"], 0)
        self.assertGreaterEqual(file_bytes(self.sim, "Org/m/config.json"), len(self.small))
        self.assertIn("sent bad data", self.log_of())
        # The mirror is demoted now: the big file comes from the hub only.
        before = file_bytes(self.mirror, "Org/m/w.bin")
        self.assertFileEqual(os.path.join(d, "w.bin"), self.big)
        self.assertEqual(file_bytes(self.mirror, "Org/m/w.bin"), before)
        self.assertGreaterEqual(file_bytes(self.sim, "Org/m/w.bin"), len(self.big))

    def test_mirror_bytes_are_held_until_the_file_verifies(self):
        # Trust model (README): a mirror's bytes reach no reader before the
        # whole file verified. The first 4 KiB read waits until all of w.bin
        # came from the (honest) mirror and matched the hub's sha256; once
        # the mirror is caught lying about config.json, what it sent for
        # w.bin is verified already and stays.
        self.mirror.fault("corrupt", route="any", path="config.json", count=-1)
        mp = self.mount(args=["--mirror", self.mirror.hub, "--prefer", "mirror"])
        d = os.path.join(mp, "Org", "m")
        with open(os.path.join(d, "w.bin"), "rb", buffering=0) as held:
            self.assertEqual(held.read(4096), self.big[:4096])
            self.assertGreaterEqual(file_bytes(self.mirror, "Org/m/w.bin"), len(self.big))
            self.assertEqual(file_bytes(self.sim, "Org/m/w.bin"), 0)
            self.assertIn("held until the whole file verifies", self.log_of())
            self.assertFileEqual(os.path.join(d, "config.json"), self.small)
            self.assertIn("sent bad data", self.log_of())
            held.seek(0)
            self.assertTrue(held.readall() == self.big)
        self.assertEqual(file_bytes(self.sim, "Org/m/w.bin"), 0)

    def test_status_shows_each_sources_health(self):
        self.mirror.fault("corrupt", route="any", count=-1)
        mp = self.mount(args=["--mirror", self.mirror.hub, "--prefer", "mirror"])
        self.assertFileEqual(os.path.join(mp, "Org", "m", "config.json"), self.small)
        self.assertFileEqual(os.path.join(mp, "Org", "m", "w.bin"), self.big)
        self.umount(mp)  # flushes the daemon's counters
        r = self.run_modelfs("status", "--json", "--cache", os.path.join(self.tmp, "cache"))
        self.assertEqual(r.returncode, 0, r.stderr)
        health = json.loads(r.stdout)["source_health"]
        self.assertGreaterEqual(health[self.mirror.hub]["bad_data"], 1)
        self.assertGreaterEqual(health[self.sim.hub]["bytes"], len(self.big))
        self.assertNotIn(os.path.realpath(mp),
                         [m["mountpoint"] for m in json.loads(r.stdout)["mounts"]])
        text = self.run_modelfs("status", "--cache", os.path.join(self.tmp, "cache")).stdout
        self.assertIn(self.mirror.hub, text)
        self.assertIn("bad data", text)

    def test_multiblock_corruption_is_dropped_and_refetched_from_hub(self):
        self.mirror.fault("corrupt", route="any", count=-1)
        mp = self.mount(args=["--mirror", self.mirror.hub, "--prefer", "mirror"])
        p = os.path.join(mp, "Org", "m", "w.bin")
        # A mirror's blocks are held until the whole blob verifies; the
        # blob hash at completion catches the lie, drops every block and
        # demotes the mirror; the hub's blocks then reach the reader.
        read_file(p)
        self.assertTrue(wait_until(lambda: "does not match its hash" in self.log_of(), 15),
                        "corruption not detected")
        self.assertIn("sent bad data", self.log_of())
        self.assertFileEqual(p, self.big)
        self.assertGreaterEqual(file_bytes(self.sim, "Org/m/w.bin"), len(self.big))


class Peers(MountCase):
    def setUp(self):
        super().setUp()
        self.data = rand_bytes(6 * MiB + 5, seed=61)
        self.data2 = rand_bytes(2 * MiB + 7, seed=62)
        make_repo(self.root, "Org/p", {"w.bin": self.data, "x.bin": self.data2})
        self.start_sim()
        # node A: fill its cache through a mount, then serve it
        mpa = self.mount("mnta", "cacheA")
        self.assertFileEqual(os.path.join(mpa, "Org", "p", "w.bin"), self.data)
        self.assertFileEqual(os.path.join(mpa, "Org", "p", "x.bin"), self.data2)
        self.umount(mpa)
        self.peer, self.peer_proc = start_serve(self, "cacheA")

    def test_reads_come_from_the_peer_not_the_hub(self):
        mp = self.mount("mntb", "cacheB", args=["--peer", self.peer])
        d = os.path.join(mp, "Org", "p")
        self.assertEqual(os.stat(os.path.join(d, "w.bin")).st_size, len(self.data))
        self.sim.reset_stats()
        self.assertFileEqual(os.path.join(d, "w.bin"), self.data)
        req = self.sim.stats()["requests"]
        self.assertEqual((req["resolve"], req["resolve-cache"], req["cdn"]), (0, 0, 0))
        # hub offline: still served by the peer
        self.sim.offline(True)
        self.assertFileEqual(os.path.join(d, "x.bin"), self.data2)
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0)

    def test_peer_killed_mid_transfer_reader_completes_from_hub(self):
        # A peer that starts a 206 for the range asked, sends 300 KB of the
        # right bytes, then dies (socket reset).
        data = self.data
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        self.addCleanup(lsock.close)
        asked = []

        def dying_peer():
            while True:
                try:
                    c, _ = lsock.accept()
                except OSError:
                    return
                try:
                    req = b""
                    while b"\r\n\r\n" not in req:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        req += chunk
                    line = req.split(b"\r\n")[0].decode()
                    asked.append(line)
                    rng = [h for h in req.split(b"\r\n") if h.lower().startswith(b"range:")]
                    a, b = 0, len(data) - 1
                    if rng:
                        spec = rng[0].split(b"=")[1].decode()
                        a = int(spec.split("-")[0])
                        b = int(spec.split("-")[1]) if spec.split("-")[1] else len(data) - 1
                    if line.startswith("HEAD"):
                        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
                    else:
                        c.sendall(b"HTTP/1.1 206 Partial Content\r\nContent-Length: %d\r\n"
                                  b"Content-Range: bytes %d-%d/%d\r\n\r\n"
                                  % (b - a + 1, a, b, len(data)))
                        c.sendall(data[a:a + 300000])
                        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
                finally:
                    c.close()

        t = threading.Thread(target=dying_peer, daemon=True)
        t.start()
        url = "http://127.0.0.1:%d" % lsock.getsockname()[1]
        mp = self.mount("mntb", "cacheB", args=["--peer", url])
        self.assertFileEqual(os.path.join(mp, "Org", "p", "w.bin"), self.data)
        self.assertTrue(any("/blobs/" + sha256(self.data) in a for a in asked), asked)
        hub = file_bytes(self.sim, "Org/p/w.bin")
        self.assertGreater(hub, 0)

    def test_dead_peer_is_skipped(self):
        self.peer_proc.kill()
        self.peer_proc.wait()
        mp = self.mount("mntb", "cacheB", args=["--peer", self.peer])
        t0 = time.monotonic()
        self.assertFileEqual(os.path.join(mp, "Org", "p", "w.bin"), self.data)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertGreaterEqual(file_bytes(self.sim, "Org/p/w.bin"), 2 * len(self.data))
