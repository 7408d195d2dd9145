"""test_trust.py - the trust model (README "Trust model"): only the hub's
hashes are trusted. A corrupting mirror preferred over an honest hub never
gets a wrong byte to a reader (LFS and Xet files, one sequential pass); a
lying peer behind a proxy (flipped data bytes, flipped hashes in the chunk
list, a truncated list, another file's list) with the hub offline makes
reads fail with EIO or return exact bytes, never wrong ones; Xet files read
from a peer stay lazy (chunk-verified); --verify strict with a corrupting
CDN serves no wrong byte: not through a mount, not through `serve
--pull-through`, and `prefetch` fails clearly (and, interrupted, leaves its
unverified blocks held for later readers). Every fault test checks that its
fault fired.
"""
import errno
import http.client
import http.server
import os
import shutil
import signal
import struct
import subprocess
import threading
import urllib.parse

from harness import MODELFS, MountCase, cache_blocks, make_repo, rand_bytes, read_file, wait_until
from srvutil import start_second_sim, start_serve

MiB = 1 << 20


class LyingProxy:
    """An HTTP proxy in front of a `modelfs serve` peer that lies on demand.

    mode: "pass", "flip_data" (one byte of every /blobs body), "flip_list"
    (one byte of a chunk hash in /chunks), "truncate_list" (drops the last
    chunk and fixes count and size so the list still parses), "other_list"
    (answers /chunks/<h> with the list of other_xet)."""

    def __init__(self, upstream, mode="pass", other_xet=None):
        self.up = urllib.parse.urlsplit(upstream)
        self.mode = mode
        self.other_xet = other_xet
        self.lock = threading.Lock()
        self.blob_bytes = 0      # protected by lock
        self.lists = 0           # protected by lock
        self.lies = 0            # protected by lock
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_HEAD(self):
                self.forward(head=True)

            def do_GET(self):
                self.forward(head=False)

            def forward(self, head):
                path = self.path
                is_list = path.startswith("/chunks/")
                if is_list and proxy.mode == "other_list":
                    path = "/chunks/" + proxy.other_xet
                c = http.client.HTTPConnection(proxy.up.hostname, proxy.up.port, timeout=30)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() in ("range", "authorization")}
                c.request("HEAD" if head else "GET", path, headers=hdrs)
                r = c.getresponse()
                body = r.read()
                c.close()
                body = proxy.rewrite(path, r.status, body, head)
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("content-type", "content-range", "etag", "accept-ranges"):
                        self.send_header(k, v)
                if head:
                    self.send_header("Content-Length", r.getheader("Content-Length", "0"))
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        # modelfs hangs up on a body it caught lying: not an error here.
        self.srv.handle_error = lambda request, client_address: None
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def rewrite(self, path, status, body, head):
        if head or status not in (200, 206) or not body:
            return body
        with self.lock:
            if path.startswith("/blobs/"):
                self.blob_bytes += len(body)
                if self.mode == "flip_data":
                    b = bytearray(body)
                    b[len(b) // 2] ^= 0x01
                    self.lies += 1
                    return bytes(b)
            elif path.startswith("/chunks/"):
                self.lists += 1
                if self.mode == "flip_list" and len(body) > 20 + 36:
                    b = bytearray(body)
                    b[20 + 36 + 4 + 7] ^= 0x80    # second chunk's hash
                    self.lies += 1
                    return bytes(b)
                if self.mode == "truncate_list" and len(body) > 20 + 36:
                    size, n = struct.unpack_from("<QI", body, 8)
                    last = struct.unpack_from("<I", body, len(body) - 36)[0]
                    self.lies += 1
                    return body[:8] + struct.pack("<QI", size - last, n - 1) + body[20:-36]
                if self.mode == "other_list":
                    self.lies += 1
        return body

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def xet_of(sim, repo, path):
    import json
    st, _, b = http_get("%s/api/models/%s/tree/main" % (sim.hub, repo))
    for e in json.loads(b):
        if e["path"] == path:
            return e["xetHash"]
    raise KeyError(path)


def http_get(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", u.path + ("?" + u.query if u.query else ""))
    r = c.getresponse()
    b = r.read()
    c.close()
    return r.status, r.headers, b


def read_exact_or_eio(case, path, want):
    """The only two acceptable outcomes: exact bytes, or EIO."""
    try:
        got = read_file(path)
    except OSError as e:
        case.assertEqual(e.errno, errno.EIO, "unexpected error %s" % e)
        return False
    case.assertEqual(len(got), len(want))
    case.assertTrue(got == want, "WRONG BYTES served from %s" % path)
    return True


class CorruptingMirror(MountCase):
    """A preferred mirror that corrupts every body, an honest hub: one
    sequential pass returns the exact bytes (nothing from the mirror is
    served before the whole file verified)."""

    def setUp(self):
        super().setUp()
        self.lfs = rand_bytes(24 * MiB + 11, seed=71)
        self.xet = rand_bytes(16 * MiB + 3, seed=72)
        make_repo(self.root, "Org/l", {"w.bin": self.lfs})
        make_repo(self.root, "Org/x", {"w.safetensors": self.xet}, xet=True)
        self.mroot = os.path.join(self.tmp, "mirror-root")
        shutil.copytree(self.root, self.mroot)
        self.start_sim()
        self.mirror = start_second_sim(self, self.mroot)
        self.mirror.fault("corrupt", route="any", count=-1)

    def one_pass(self, rel, want):
        mp = self.mount(args=["--mirror", self.mirror.hub, "--prefer", "mirror"])
        with open(os.path.join(mp, *rel.split("/")), "rb", buffering=0) as f:
            got = bytearray()
            while True:
                b = f.read(MiB)
                if not b:
                    break
                got += b
        self.assertEqual(len(got), len(want))
        self.assertTrue(got == want, "a sequential pass returned wrong bytes")
        self.assertGreater(self.mirror.stats()["faults_applied"], 0, "the fault did not fire")
        self.assertIn("sent bad data", self.log_of())

    def test_lfs_one_pass_exact(self):
        self.one_pass("Org/l/w.bin", self.lfs)

    def test_xet_one_pass_exact(self):
        self.one_pass("Org/x/w.safetensors", self.xet)


class StrictCdn(MountCase):
    def test_verify_strict_corrupting_cdn_no_wrong_byte(self):
        data = rand_bytes(8 * MiB + 5, seed=73)
        make_repo(self.root, "Org/s", {"w.bin": data})
        self.start_sim()
        # The CDN corrupts its first two answers: strict holds the hub's
        # bytes too until the file verified, so the pass is exact.
        self.sim.fault("corrupt", route="cdn", count=2)
        mp = self.mount(args=["--verify", "strict"])
        p = os.path.join(mp, "Org", "s", "w.bin")
        read_exact_or_eio(self, p, data)
        self.assertGreater(self.sim.stats()["faults_applied"], 0, "the fault did not fire")
        self.assertIn("does not match its hash", self.log_of())
        self.assertFileEqual(p, data)


class LyingPeer(MountCase):
    """Node A caches an Xet repo from the hub and serves it; node B reads
    through a proxy in front of A that lies, with the hub offline."""

    def setUp(self):
        super().setUp()
        self.w = rand_bytes(6 * MiB + 5, seed=81)
        self.x = rand_bytes(2 * MiB + 7, seed=82)
        make_repo(self.root, "Org/x", {"w.bin": self.w, "x.bin": self.x}, xet=True)
        self.start_sim()
        self.xet_w = xet_of(self.sim, "Org/x", "w.bin")
        self.xet_x = xet_of(self.sim, "Org/x", "x.bin")
        mpa = self.mount("mnta", "cacheA")
        self.assertFileEqual(os.path.join(mpa, "Org", "x", "w.bin"), self.w)
        self.assertFileEqual(os.path.join(mpa, "Org", "x", "x.bin"), self.x)
        self.umount(mpa)
        self.peer, _ = start_serve(self, "cacheA")

    def node_b(self, mode, hub_offline=True):
        self.proxy = LyingProxy(self.peer, mode, other_xet=self.xet_x)
        self.addCleanup(self.proxy.stop)
        mp = self.mount("mntb", "cacheB", args=["--peer", self.proxy.url,
                                                "--fetch-timeout", "10"])
        d = os.path.join(mp, "Org", "x")
        self.assertEqual(os.stat(os.path.join(d, "w.bin")).st_size, len(self.w))
        if hub_offline:
            self.sim.offline(True)
        self.sim.reset_stats()
        return d

    def test_serve_answers_chunk_lists(self):
        st, h, body = http_get("%s/chunks/%s" % (self.peer, self.xet_w))
        self.assertEqual(st, 200)
        size, n = struct.unpack_from("<QI", body, 8)
        self.assertEqual(body[:8], b"MFSXETC1")
        self.assertEqual(size, len(self.w))
        self.assertEqual(len(body), 20 + 36 * n)
        self.assertEqual(http_get("%s/chunks/%s" % (self.peer, "0" * 64))[0], 404)
        self.assertEqual(http_get("%s/chunks/xyz" % self.peer)[0], 400)

    def test_honest_peer_chunk_verified_hub_offline(self):
        d = self.node_b("pass")
        self.assertFileEqual(os.path.join(d, "w.bin"), self.w)
        self.assertGreaterEqual(self.proxy.lists, 1)
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0)
        # Chunk-verified: never held.
        self.assertNotIn("held until", self.log_of("cacheB"))

    def test_flipped_data_hub_offline_eio_or_exact(self):
        d = self.node_b("flip_data")
        read_exact_or_eio(self, os.path.join(d, "w.bin"), self.w)
        read_exact_or_eio(self, os.path.join(d, "x.bin"), self.x)
        self.assertGreater(self.proxy.lies, 0, "the fault did not fire")
        self.assertIn("does not match the hub's xetHash chunk list", self.log_of("cacheB"))

    def test_flipped_data_hub_online_refetched_exact(self):
        d = self.node_b("flip_data", hub_offline=False)
        self.assertFileEqual(os.path.join(d, "w.bin"), self.w)
        self.assertGreater(self.proxy.lies, 0, "the fault did not fire")
        self.assertGreater(self.sim.stats()["body_bytes_total"], 0)

    def lying_list(self, mode):
        d = self.node_b(mode)
        # The list is refused; the peer's honest bytes are held until the
        # whole file verified, then served: exact (or EIO), never wrong.
        read_exact_or_eio(self, os.path.join(d, "w.bin"), self.w)
        self.assertGreater(self.proxy.lies, 0, "the fault did not fire")
        self.assertIn("failed its check", self.log_of("cacheB"))
        self.assertNotIn("does not match the hub's xetHash chunk list", self.log_of("cacheB"))

    def test_flipped_list_hub_offline(self):
        self.lying_list("flip_list")

    def test_truncated_list_hub_offline(self):
        self.lying_list("truncate_list")

    def test_other_files_list_hub_offline(self):
        self.lying_list("other_list")


class LazyXetPeer(MountCase):
    def test_4k_at_40m_of_64m_moves_at_most_2m(self):
        data = rand_bytes(64 * MiB, seed=91)
        make_repo(self.root, "Org/big", {"w.safetensors": data}, xet=True)
        self.start_sim()
        mpa = self.mount("mnta", "cacheA")
        self.assertFileEqual(os.path.join(mpa, "Org", "big", "w.safetensors"), data)
        self.umount(mpa)
        peer, _ = start_serve(self, "cacheA")
        proxy = LyingProxy(peer, "pass")
        self.addCleanup(proxy.stop)
        mp = self.mount("mntb", "cacheB", args=["--peer", proxy.url])
        p = os.path.join(mp, "Org", "big", "w.safetensors")
        os.stat(p)
        self.sim.offline(True)
        with open(p, "rb", buffering=0) as f:
            f.seek(40 * MiB)
            self.assertEqual(f.read(4096), data[40 * MiB:40 * MiB + 4096])
        self.assertEqual(proxy.lists, 1)
        print("info: 4 KiB at 40 MiB of a 64 MiB Xet file moved %d bytes of /blobs"
              % proxy.blob_bytes)
        self.assertLessEqual(proxy.blob_bytes, 2 * MiB, "not lazy: %d bytes" % proxy.blob_bytes)
        self.assertGreater(proxy.blob_bytes, 0)


class StrictPrefetch(MountCase):
    """`modelfs prefetch --verify strict` with a CDN that corrupts bodies:
    the run fails with a clear message, nothing corrupted is kept as
    verified or left where a later reader would be served it, and a run
    once the fault cleared succeeds."""

    def setUp(self):
        super().setUp()
        self.data = rand_bytes(12 * MiB + 9, seed=74)
        make_repo(self.root, "Org/s", {"w.bin": self.data})
        self.start_sim()
        self.cache = os.path.join(self.tmp, "cache")

    def prefetch(self, *extra):
        return self.run_modelfs("prefetch", "Org/s", "--cache", self.cache, "--endpoint",
                                self.sim.hub, "--verify", "strict", *extra, timeout=120)

    def test_corrupting_cdn_fails_clearly_then_succeeds(self):
        f = self.sim.fault("corrupt", route="cdn", count=-1)
        r = self.prefetch()
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Org/s/w.bin: content does not match its hash", r.stdout + r.stderr)
        self.assertFired(self.sim, f)
        # Nothing of it is verified or kept.
        self.assertEqual(cache_blocks(self.cache), [])
        self.sim.clear_faults()
        self.sim.reset_stats()
        r = self.prefetch()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.sim.stats()["body_bytes_total"], len(self.data))
        self.sim.offline(True)
        mp = self.mount()
        self.assertFileEqual(os.path.join(mp, "Org", "s", "w.bin"), self.data)

    def test_interrupted_run_leaves_no_corrupted_block_a_mount_serves(self):
        # The first CDN answer is corrupted and the run is interrupted
        # before the file could be checked: the corrupted blocks are on
        # disk, unverified. A mount on the same cache (default --verify
        # sources, which serves the hub's bytes as they arrive) must not
        # serve them as if checked: strict prefetch marked them held.
        self.sim.configure(conn_rate_mbps=40)  # 5 MB/s per stream
        f = self.sim.fault("corrupt", route="cdn", count=1)
        p = subprocess.Popen([MODELFS, "prefetch", "Org/s", "--cache", self.cache, "--endpoint",
                              self.sim.hub, "--verify", "strict", "--jobs", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertTrue(wait_until(lambda: len(cache_blocks(self.cache)) >= 2, 60))
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 130, out + err)
        self.assertFired(self.sim, f)
        self.assertLess(len(cache_blocks(self.cache)), len(self.data) // MiB)
        self.sim.configure(conn_rate_mbps=0)
        mp = self.mount()
        self.assertFileEqual(os.path.join(mp, "Org", "s", "w.bin"), self.data)
        self.assertIn("does not match its hash", self.log_of())


def get_prefix(url):
    """(status, body) of a GET; a body cut short is returned as far as it
    came (the connection dropping mid-body is an error, not wrong bytes)."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        c.request("GET", u.path)
        r = c.getresponse()
        try:
            body = r.read()
        except http.client.IncompleteRead as e:
            body = e.partial
        except (ConnectionError, OSError):
            body = b""
        return r.status, body
    finally:
        c.close()


class StrictServe(MountCase):
    """`modelfs serve --pull-through --verify strict` in front of a CDN that
    corrupts bodies: a client gets an error or the exact bytes, never a
    wrong byte (not even the first ones of a body cut short)."""

    def setUp(self):
        super().setUp()
        self.a = rand_bytes(12 * MiB + 9, seed=75)
        self.b = rand_bytes(6 * MiB + 1, seed=76)
        make_repo(self.root, "Org/s", {"a.bin": self.a, "b.bin": self.b})
        self.start_sim()
        self.url, _ = start_serve(self, "cache", "--pull-through", "--endpoint", self.sim.hub,
                                  "--verify", "strict")

    def get(self, name, want):
        st, body = get_prefix("%s/Org/s/resolve/main/%s" % (self.url, name))
        if st == 200:
            self.assertTrue(body == want[:len(body)], "serve sent WRONG BYTES of %s" % name)
        return st, body

    def test_corrupted_answers_are_refetched_exact(self):
        f = self.sim.fault("corrupt", route="cdn", count=2)
        self.assertEqual(self.get("a.bin", self.a), (200, self.a))
        self.assertFired(self.sim, f, 2)
        with open(os.path.join(self.tmp, "serve-0-cache.log"), errors="replace") as log:
            self.assertIn("does not match its hash", log.read())

    def test_always_corrupted_is_an_error_then_exact_once_cleared(self):
        f = self.sim.fault("corrupt", route="cdn", count=-1)
        st, body = self.get("b.bin", self.b)
        self.assertNotEqual((st, body), (200, self.b), "the fault did not bite")
        self.assertGreaterEqual(st, 500)
        self.assertFired(self.sim, f)
        self.sim.clear_faults()
        self.assertEqual(self.get("b.bin", self.b), (200, self.b))
