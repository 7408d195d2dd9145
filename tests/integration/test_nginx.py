"""test_nginx.py - a real nginx as a modelfs mirror, two ways:

  - a static mirror: examples/make_static_mirror.py copies a repository from
    the hub simulator (its real API answers, its files checked by hash) into
    a directory that nginx serves from disk; with the hub OFFLINE a mount
    given `--mirror <nginx>` lists and reads everything, byte-identical,
    through ranged requests nginx answers with 206; bytes tampered with on
    the mirror are caught by the blob hash and served right from the hub;
  - a caching reverse proxy (proxy_cache + the slice module) in front of
    the simulator's hub and CDN origins (the CDN redirect rewritten with
    proxy_redirect): a second mount with an empty modelfs cache reads the
    same files again and the simulator sends no file bytes at all.

Each test starts its own nginx (as root, prefix, config, pid, logs and temp
paths in the test's directory, a free 127.0.0.1 port, `daemon off;`) and
stops it in cleanup, failed or not.
"""
import os
import sys
import unittest

from harness import SRC, MountCase, make_repo, rand_bytes, read_file, wait_until
from srvutil import free_port, http

sys.path.insert(0, os.path.join(SRC, "examples"))
sys.path.insert(0, os.path.join(SRC, "bench"))
import make_static_mirror  # noqa: E402
import nginxrun  # noqa: E402
from nginxrun import NGINX, wait_listening  # noqa: E402

MiB = 1 << 20

# $request_uri: as the client sent it ($uri is rewritten by try_files);
# $upstream_cache_status is '-' when nothing was proxied (static mirror)
LOG_FORMAT = '\'$request_method $request_uri $status "$http_range" $body_bytes_sent ' \
             '$upstream_cache_status\''


def start_nginx(case, servers):
    """Runs nginx with the given `server {}` blocks; returns the access log
    path. Stopped (SIGQUIT, then SIGKILL) by the test's cleanups."""
    d = os.path.join(case.tmp, "nginx")
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    errlog = open(os.path.join(d, "logs", "stderr.log"), "ab")
    case.addCleanup(errlog.close)
    p, access = nginxrun.start(d, servers, LOG_FORMAT, errlog)
    case.addCleanup(stop_nginx, case, p, d)
    return p, access


def stop_nginx(case, p, d):
    nginxrun.stop(p)
    if case._outcome_failed():
        err = os.path.join(d, "logs", "error.log")
        if os.path.exists(err):
            with open(err, errors="replace") as f:
                sys.stdout.write("---- nginx error.log ----\n%s\n" % f.read()[-4000:])


def access_lines(path):
    """[(method, path without query, status, range, body_bytes, cache_status)]"""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                m, uri, st, rest = line.split(" ", 3)
                uri = uri.split("?", 1)[0]
                rng, rest = rest[1:].split('" ', 1)
                nb, cache = rest.split()
                out.append((m, uri, int(st), rng, int(nb), cache))
    return out


@unittest.skipUnless(os.path.exists(NGINX), "nginx is not installed (tests/install-deps.sh)")
class NginxCase(MountCase):
    def setUp(self):
        super().setUp()
        self.lfs = rand_bytes(5 * MiB + 77, seed=91)          # LFS (by extension)
        self.reg = rand_bytes(2 * MiB + 5, seed=92)           # regular, several blocks
        self.cfg = b'{"model_type": "llama"}\n'
        self.files = {"w.safetensors": self.lfs, "sub/tokenizer.json": self.reg,
                      "config.json": self.cfg}
        make_repo(self.root, "Org/m", self.files)
        self.start_sim()

    def read_all(self, mp):
        d = os.path.join(mp, "Org", "m")
        self.assertEqual(sorted(os.listdir(d)), ["config.json", "sub", "w.safetensors"])
        self.assertEqual(os.listdir(os.path.join(d, "sub")), ["tokenizer.json"])
        for p, data in self.files.items():
            self.assertEqual(os.stat(os.path.join(d, p)).st_size, len(data))
            self.assertFileEqual(os.path.join(d, p), data)


class StaticMirror(NginxCase):
    def setUp(self):
        super().setUp()
        self.www = os.path.join(self.tmp, "www")
        r = make_static_mirror.lay_out_repo(self.www, "Org/m", self.sim.hub)
        self.assertEqual(r["files"], 3)
        self.assertEqual(r["bytes"], sum(len(v) for v in self.files.values()))
        self.commit = r["commit"]
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.nginx, self.access = start_nginx(
            self, make_static_mirror.nginx_server_block(self.www, "127.0.0.1:%d" % self.port))
        wait_listening(self.nginx, self.port)

    def test_answers_are_the_hubs(self):
        # nginx hands back exactly what the hub said, query ignored, JSON typed
        for path in ("/api/models/Org/m", "/api/models/Org/m/revision/" + self.commit,
                     "/api/models?author=Org&limit=1"):
            st, h, body = http(self.url + path)
            st2, _, body2 = http(self.sim.hub + path)
            self.assertEqual((st, st2), (200, 200), path)
            self.assertEqual(body, body2, path)
            self.assertEqual(h["Content-Type"], "application/json", path)
        st, _, _ = http(self.url + "/api/models?author=../../etc&limit=1")
        self.assertEqual(st, 404)
        st, _, _ = http(self.url + "/api/models?author=Nobody&limit=1")
        self.assertEqual(st, 404)
        st, h, body = http(self.url + "/Org/m/resolve/%s/w.safetensors" % self.commit,
                           headers={"Range": "bytes=1048576-1048675"})
        self.assertEqual(st, 206)
        self.assertEqual(h["Content-Range"], "bytes 1048576-1048675/%d" % len(self.lfs))
        self.assertEqual(body, self.lfs[MiB:MiB + 100])

    def test_hub_offline_static_mirror_serves_everything(self):
        self.sim.offline(True)
        self.sim.reset_stats()
        mp = self.mount(args=["--mirror", self.url, "--fetch-timeout", "10"])
        self.read_all(mp)
        st = self.sim.stats()
        self.assertEqual(st["body_bytes_total"], 0)
        self.assertEqual(sum(st["requests"].values()), 0)
        log = access_lines(self.access)
        # metadata came from nginx: repo info and the stored recursive tree
        uris = [u for _, u, s, _, _, _ in log if s == 200]
        self.assertIn("/api/models/Org/m/tree/%s" % self.commit, uris)
        # file bytes: ranged GETs answered 206 by nginx, covering every byte
        base = "/Org/m/resolve/%s/" % self.commit
        for p, data in self.files.items():
            got = [(s, r, n) for m, u, s, r, n, _ in log if m == "GET" and u == base + p]
            self.assertTrue(got, "no GET of %s in nginx's log" % p)
            self.assertTrue(all(s == 206 and r.startswith("bytes=") for s, r, _ in got), got)
            self.assertGreaterEqual(sum(n for _, _, n in got), len(data))
        # the LFS file was read in more than one ranged piece (1 MiB blocks)
        lfs_gets = [r for m, u, s, r, _, _ in log if m == "GET" and u == base + "w.safetensors"]
        self.assertGreater(len(set(lfs_gets)), 1, lfs_gets)

    def test_tampered_mirror_bytes_are_caught(self):
        # The mirror's copy of the LFS file is altered in place (same size):
        # with the mirror preferred, the blob hash catches it, the mirror is
        # demoted and the right bytes come from the hub.
        path = os.path.join(self.www, "Org", "m", "resolve", self.commit, "w.safetensors")
        with open(path, "r+b") as f:
            f.seek(3 * MiB + 10)
            f.write(bytes([self.lfs[3 * MiB + 10] ^ 0xFF]))
        mp = self.mount(args=["--mirror", self.url, "--prefer", "mirror"])
        p = os.path.join(mp, "Org", "m", "w.safetensors")
        read_file(p)
        self.assertTrue(wait_until(lambda: "sent bad data" in self.log_of(), 15),
                        "tampered mirror not detected")
        # core/blobio.c logs the mismatch before it drops the blocks and the
        # kernel's pages, so a read right after the log line may still see
        # the old pages: wait (bounded) for the right bytes, then re-check.
        self.assertTrue(wait_until(lambda: read_file(p) == self.lfs, 10, 0.2),
                        "right bytes never served after the mismatch")
        self.assertFileEqual(p, self.lfs)
        self.assertGreater(self.sim.stats()["body_bytes"].get("Org/m/w.safetensors", 0), 0)


class CachingProxy(NginxCase):
    def setUp(self):
        super().setUp()
        self.port, self.cdn_port = free_port(), free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        d = os.path.join(self.tmp, "nginx")
        # Only content is cached, in 1 MiB slices (any client Range is served
        # from whole slices; each slice is fetched once with a Range of its
        # own). The CDN's signed query changes per redirect, but its path is
        # the content hash: the key leaves the query out. API answers and
        # /resolve redirects pass through uncached (refs move; URLs expire).
        cache = """
        slice 1m;
        proxy_cache mfs;
        proxy_cache_key %s$slice_range;
        proxy_set_header Range $slice_range;
        proxy_cache_valid 200 206 10m;
        proxy_http_version 1.1;"""
        servers = """
    proxy_cache_path %(d)s/cache levels=1:2 keys_zone=mfs:1m max_size=256m inactive=10m
                     use_temp_path=off;
    server {
        listen 127.0.0.1:%(port)d;
        location /api/resolve-cache/ {
            proxy_pass %(hub)s;%(cache_hub)s
        }
        location / {
            proxy_pass %(hub)s;
            proxy_http_version 1.1;
            # the hub's 302 to its CDN now points at the CDN's cache below
            proxy_redirect %(cdn)s/ http://127.0.0.1:%(cdn_port)d/;
        }
    }
    server {
        listen 127.0.0.1:%(cdn_port)d;
        location / {
            proxy_pass %(cdn)s;%(cache_cdn)s
        }
    }
""" % {"d": d, "port": self.port, "cdn_port": self.cdn_port, "hub": self.sim.hub,
       "cdn": self.sim.cdn, "cache_hub": cache % "$uri$is_args$args",
       "cache_cdn": cache % "$uri"}
        os.makedirs(d, exist_ok=True)
        self.nginx, self.access = start_nginx(self, servers)
        wait_listening(self.nginx, self.port)
        wait_listening(self.nginx, self.cdn_port)

    def test_second_reader_is_served_from_nginx_cache(self):
        total = sum(len(v) for v in self.files.values())
        mp = self.mount(args=["--mirror", self.url, "--prefer", "mirror"])
        self.read_all(mp)
        st = self.sim.stats()
        # cold: every content byte crossed the proxy, from both origins
        self.assertGreaterEqual(st["body_bytes_total"], total)
        self.assertGreater(st["requests"]["cdn"], 0)
        self.assertGreater(st["requests"]["resolve-cache"], 0)
        log = access_lines(self.access)
        misses = [u for _, u, _, _, _, c in log if c == "MISS"]
        self.assertTrue(any(u.startswith("/cdn/") for u in misses), log)
        self.assertTrue(any(u.startswith("/api/resolve-cache/") for u in misses), log)
        self.umount(mp)

        # a second machine (empty modelfs cache) behind the same proxy
        self.sim.reset_stats()
        n_before = len(log)
        mp2 = self.mount("mnt2", "cache2", args=["--mirror", self.url, "--prefer", "mirror"])
        self.read_all(mp2)
        st = self.sim.stats()
        self.assertEqual(st["body_bytes_total"], 0, st["body_bytes"])
        self.assertEqual((st["requests"]["cdn"], st["requests"]["resolve-cache"]), (0, 0))
        # what still reaches the hub: metadata and the uncached redirects
        self.assertGreater(st["requests"]["api"], 0)
        self.assertGreater(st["requests"]["resolve"], 0)
        log2 = access_lines(self.access)[n_before:]
        content = [(u, s, c) for m, u, s, _, _, c in log2
                   if m == "GET" and (u.startswith("/cdn/") or u.startswith("/api/resolve-cache/"))]
        self.assertTrue(content, log2)
        self.assertTrue(all(c == "HIT" and s == 206 for _, s, c in content), content)
        self.assertGreaterEqual(sum(n for m, u, s, _, n, c in log2 if c == "HIT"), total)

