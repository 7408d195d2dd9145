"""test_serve_trust.py - `modelfs serve` as a trust boundary (issue 12):
no private byte leaks through a mirror, a stale visibility, a hash or an
enumeration; no credential goes to a mirror unless named for it; tokens
stay out of /proc/*/cmdline; slow clients cannot stop the server.
Each test is written against a behaviour the code before the issue got
wrong.
"""
import json
import os
import shutil
import socket
import sqlite3
import threading
import time

from harness import MountCase, make_repo, rand_bytes, set_repo_json, sha256, write_tokens
from srvutil import http, raw, start_second_sim, start_serve

MiB = 1 << 20
TOKEN = "peer-s3cret-token"


def token_file(case, value, name="peer.token"):
    p = os.path.join(case.tmp, name)
    with open(p, "w") as f:
        f.write(value + "\n")
    os.chmod(p, 0o600)
    return p


def auth(tok=TOKEN):
    return {"Authorization": "Bearer " + tok}


class MirrorTrust(MountCase):
    """A hub, a second simulator as a mirror holding a copy of the repos."""

    def setUp(self):
        super().setUp()
        self.data = rand_bytes(MiB + 77, seed=121)
        write_tokens(self.root, {"hf_alice": {"user": "alice", "orgs": ["Lab"]}})
        make_repo(self.root, "Lab/priv", {"p.bin": self.data}, private=True)
        make_repo(self.root, "Org/pub", {"q.bin": self.data[:4096]})
        self.mroot = os.path.join(self.tmp, "mirror-root")
        shutil.copytree(self.root, self.mroot)
        self.start_sim()

    def test_a_mirror_saying_public_cannot_make_a_private_repo_public(self):
        # The mirror's copy (out of date, or hostile) says "private": false.
        set_repo_json(self.mroot, "Lab/priv", private=False)
        mirror = start_second_sim(self, self.mroot)
        self.sim.offline(True)
        url, _ = start_serve(self, "cache", "--pull-through", "--endpoint", self.sim.hub,
                             "--mirror", mirror.hub, "--peer-token-file",
                             token_file(self, TOKEN))
        st, _, body = http(url + "/Lab/priv/resolve/main/p.bin")
        self.assertEqual(st, 401)
        self.assertNotIn(self.data[:64], body)
        # the mirror was asked (the repo is reachable through it)...
        self.assertGreater(mirror.stats()["requests"]["api"], 0)
        # ...and with the peer token the bytes are there, so the 401 above
        # is the access rule, not a failure to fetch
        st, _, body = http(url + "/Lab/priv/resolve/main/p.bin", headers=auth())
        self.assertEqual((st, body), (200, self.data))
        st, _, body = http(url + "/blobs/" + sha256(self.data))
        self.assertIn(st, (401, 404))
        self.assertNotIn(self.data[:64], body)
        st, _, body = http(url + "/api/models/Lab/priv")
        self.assertEqual(st, 401)
        self.assertNotIn(b"p.bin", body)

    def test_mirrors_get_no_credential_unless_one_is_named(self):
        write_tokens(self.mroot, {"hf_mirror": {"user": "m", "orgs": []}})
        mirror = start_second_sim(self, self.mroot)
        self.sim.offline(True)
        url, p = start_serve(self, "cache", "--pull-through", "--endpoint", self.sim.hub,
                             "--mirror", mirror.hub, "--peer-token-file",
                             token_file(self, TOKEN))
        st, _, body = http(url + "/Org/pub/resolve/main/q.bin", headers=auth())
        self.assertEqual((st, body), (200, self.data[:4096]))
        self.assertGreater(mirror.stats()["requests"]["api"], 0)
        self.assertEqual(mirror.stats()["auth_seen_hub"], 0)
        # named for the mirror: sent, and only that token
        url2, _ = start_serve(self, "cache2", "--pull-through", "--endpoint", self.sim.hub,
                              "--mirror", mirror.hub, "--peer-token-file",
                              token_file(self, TOKEN),
                              "--mirror-token-file", token_file(self, "hf_mirror", "m.token"))
        mirror.reset_stats()
        st, _, body = http(url2 + "/Org/pub/resolve/main/q.bin", headers=auth())
        self.assertEqual((st, body), (200, self.data[:4096]))
        self.assertGreater(mirror.stats()["auth_seen_hub"], 0)

    def test_peer_token_file_keeps_the_token_out_of_the_command_line(self):
        self.sim.offline(False)
        url, p = start_serve(self, "cache", "--pull-through", "--endpoint", self.sim.hub,
                             "--token-file", token_file(self, "hf_alice", "hf.token"),
                             "--peer-token-file", token_file(self, TOKEN))
        with open("/proc/%d/cmdline" % p.pid, "rb") as f:
            self.assertNotIn(TOKEN.encode(), f.read())
        st, _, body = http(url + "/Lab/priv/resolve/main/p.bin", headers=auth())
        self.assertEqual((st, body), (200, self.data))
        st, _, _ = http(url + "/Lab/priv/resolve/main/p.bin", headers=auth("wrong"))
        self.assertEqual(st, 401)
        # an empty or missing token file is an error, not "no token"
        empty = token_file(self, "", "empty.token")
        r = self.run_modelfs("serve", "--listen", "127.0.0.1:0", "--cache",
                             os.path.join(self.tmp, "c3"), "--peer-token-file", empty)
        self.assertNotEqual(r.returncode, 0)


def status(answer):
    head = answer.split(b"\r\n", 1)[0]
    return int(head.split()[1]) if head.startswith(b"HTTP/1.1 ") else None


def body_of(answer):
    return answer.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in answer else b""


class Hostile(MountCase):
    """A pull-through node in front of the hub, public content cached."""

    def setUp(self):
        super().setUp()
        self.data = rand_bytes(64 * 1024 + 3, seed=131)
        make_repo(self.root, "Org/pub", {"c.bin": self.data, "q.bin": self.data[:5000]})
        self.start_sim()

    def serve(self, *args):
        url, p = start_serve(self, "cache", "--pull-through", "--endpoint", self.sim.hub,
                             "--peer-token-file", token_file(self, TOKEN), *args)
        st, _, body = http(url + "/Org/pub/resolve/main/c.bin")
        self.assertEqual((st, body), (200, self.data))
        return url, p

    def test_24_slow_posts_do_not_stop_a_get(self):
        url, p = self.serve()
        port = int(url.rsplit(":", 1)[1])
        slow = []
        self.addCleanup(lambda: [s.close() for s in slow])
        for _ in range(24):
            s = socket.create_connection(("127.0.0.1", port), 5)
            s.sendall(b"POST /api/models/Org/pub/paths-info/main HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: 1000\r\n\r\npaths=")
            slow.append(s)
        stop = threading.Event()

        def trickle():  # one byte per second on each: never a stall of io_ms
            while not stop.wait(1.0):
                for s in slow:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
        t = threading.Thread(target=trickle)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)
        time.sleep(2.5)  # every slow POST has its head in and trickles its body
        t0 = time.monotonic()
        st, _, body = http(url + "/api/models/Org/pub", timeout=10)
        took = time.monotonic() - t0
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["id"], "Org/pub")
        self.assertLess(took, 3.0, "a GET waited %.1f s behind slow POSTs" % took)
        self.assertIsNone(p.poll())

    def test_one_client_address_cannot_take_every_worker(self):
        url, p = self.serve("--workers", "4")
        # every fetch of q.bin from the hub stalls 10 s: each request for it
        # holds a worker that long
        self.sim.fault("stall", route="any", path="q.bin", seconds=10, count=-1)
        results = []

        def get_q():
            results.append(http(url + "/Org/pub/resolve/main/q.bin", timeout=60)[0])
        threads = [threading.Thread(target=get_q) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            self.addCleanup(t.join)
        time.sleep(1.5)
        self.assertGreater(self.sim.stats()["faults_applied"], 0)
        # another address gets a worker at once for cached content
        t0 = time.monotonic()
        ans = raw(url, b"GET /Org/pub/resolve/main/c.bin HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n", timeout=15, source="127.0.0.2")
        took = time.monotonic() - t0
        self.assertEqual((status(ans), body_of(ans)), (200, self.data))
        self.assertLess(took, 5.0, "waited %.1f s for a worker" % took)

    def test_control_characters_in_header_values_are_refused(self):
        url, _ = self.serve()
        for hdr in (b"X-A: a\nTransfer-Encoding: chunked", b"X-A: a\rb", b"X-A: a\x01b",
                    b"X-A: a\x7fb"):
            ans = raw(url, b"GET /api/models/Org/pub HTTP/1.1\r\n" + hdr +
                      b"\r\nConnection: close\r\n\r\n")
            self.assertEqual(status(ans), 400, hdr)
        ans = raw(url, b"GET /api/models/Org/pub HTTP/1.1\r\nX-A: a\tb\r\n"
                  b"Connection: close\r\n\r\n")
        self.assertEqual(status(ans), 200)

    def test_a_large_paths_info_arriving_with_its_head_is_answered(self):
        url, _ = self.serve()
        body = b"paths=c.bin" + b"".join(b"&paths=nope%05d" % i for i in range(1500))
        self.assertGreater(len(body), 20000)
        ans = raw(url, b"POST /api/models/Org/pub/paths-info/main HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        self.assertEqual(status(ans), 200, ans[:200])
        self.assertEqual([e["path"] for e in json.loads(body_of(ans))], ["c.bin"])

    def test_paths_info_does_not_cut_a_path_at_an_embedded_nul(self):
        url, _ = self.serve()
        st, _, body = http(url + "/api/models/Org/pub/paths-info/main", method="POST",
                           data=b'{"paths": ["c.bin\\u0000x", "q.bin"]}',
                           headers={"Content-Type": "application/json"})
        self.assertEqual(st, 200)
        self.assertEqual([e["path"] for e in json.loads(body)], ["q.bin"])
        st, _, body = http(url + "/api/models/Org/pub/paths-info/main", method="POST",
                           data=b'{"paths": "c.bin\\u0000"}',
                           headers={"Content-Type": "application/json"})
        self.assertEqual((st, json.loads(body)), (200, []))


class Visibility(MountCase):
    """A pull-through node holding a hub token that can see Lab's repos."""

    def setUp(self):
        super().setUp()
        self.data = rand_bytes(200 * 1024 + 9, seed=141)
        self.other = rand_bytes(50 * 1024 + 1, seed=142)
        write_tokens(self.root, {"hf_alice": {"user": "alice", "orgs": ["Lab"]}})
        make_repo(self.root, "Lab/x", {"x.bin": self.data})
        make_repo(self.root, "Lab/x", {"x.bin": self.data}, branch="dev")
        make_repo(self.root, "Lab/priv", {"p.bin": self.data[:1000]}, private=True)
        make_repo(self.root, "Lab/priv2", {"o.bin": self.other}, private=True)
        self.start_sim()
        self.url, self.proc = start_serve(
            self, "cache", "--pull-through", "--endpoint", self.sim.hub,
            "--token-file", token_file(self, "hf_alice", "hf.token"),
            "--peer-token-file", token_file(self, TOKEN))

    def test_a_repo_turning_private_is_no_longer_served_by_hash(self):
        sid = sha256(self.data)
        st, _, body = http(self.url + "/Lab/x/resolve/main/x.bin")
        self.assertEqual((st, body), (200, self.data))
        st, _, body = http(self.url + "/blobs/" + sid)
        self.assertEqual((st, body), (200, self.data))
        # the repo turns private on the hub; the node learns it the next
        # time it asks (here: another branch, asked by a token holder)
        set_repo_json(self.root, "Lab/x", private=True)
        self.sim.rescan()
        st, _, _ = http(self.url + "/api/models/Lab/x/revision/dev", headers=auth())
        self.assertEqual(st, 200)
        st, _, body = http(self.url + "/blobs/" + sid)
        self.assertEqual(st, 404)
        self.assertNotIn(self.data[:64], body)
        st, _, body = http(self.url + "/Lab/x/resolve/main/x.bin")
        self.assertEqual(st, 401)
        self.assertNotIn(self.data[:64], body)
        # the token still opens it
        st, _, body = http(self.url + "/blobs/" + sid, headers=auth())
        self.assertEqual((st, body), (200, self.data))

    def test_private_repos_cannot_be_enumerated(self):
        # the node knows Lab/priv (a token holder read it)
        st, _, _ = http(self.url + "/Lab/priv/resolve/main/p.bin", headers=auth())
        self.assertEqual(st, 200)
        answers = {}
        for name, path in (("private", "/api/models/Lab/priv"),
                           ("missing", "/api/models/Lab/nope"),
                           ("private rev", "/api/models/Lab/priv/revision/nobranch"),
                           ("private tree", "/api/models/Lab/priv/tree/main"),
                           ("private file", "/Lab/priv/resolve/main/p.bin"),
                           ("private missing file", "/Lab/priv/resolve/main/nope.bin"),
                           ("missing file", "/Lab/nope/resolve/main/p.bin")):
            st, h, body = http(self.url + path)
            answers[name] = (st, h.get("X-Error-Code"), body)
        self.assertEqual(len(set(answers.values())), 1, answers)
        self.assertEqual(answers["missing"][0], 401)
        # by hash: private content and content nobody holds look the same
        a = http(self.url + "/blobs/" + sha256(self.data[:1000]))
        b = http(self.url + "/blobs/" + "ab" * 32)
        self.assertEqual((a[0], a[2]), (b[0], b[2]))
        self.assertEqual(a[0], 404)
        # the same with a wrong token: 401 for everything
        for path in ("/api/models/Lab/priv", "/api/models/Lab/nope",
                     "/blobs/" + sha256(self.data[:1000]), "/blobs/" + "ab" * 32):
            self.assertEqual(http(self.url + path, headers=auth("wrong"))[0], 401, path)

    def test_hints_from_clients_without_the_token_are_ignored(self):
        commit = json.loads(http(self.sim.hub + "/api/models/Lab/priv2/revision/main",
                                 headers={"Authorization": "Bearer hf_alice"})[2])["sha"]
        oid = sha256(self.other)
        hint = "?repo=models/Lab/priv2&commit=%s&path=o.bin" % commit
        self.sim.reset_stats()
        st, _, body = http(self.url + "/blobs/" + oid + hint)
        self.assertEqual(st, 404)
        self.assertNotIn(self.other[:64], body)
        # the node did not list the private tree for the anonymous client
        self.assertEqual(self.sim.stats()["requests"]["api"], 0)
        st, _, body = http(self.url + "/blobs/" + oid + hint, headers=auth())
        self.assertEqual((st, body), (200, self.other))
        self.assertGreater(self.sim.stats()["requests"]["api"], 0)


class PullBudget(MountCase):
    def test_pull_through_work_is_rate_limited_per_client(self):
        make_repo(self.root, "Org/pub", {"a.bin": b"a" * 100})
        self.start_sim()
        url, _ = start_serve(self, "cache", "--pull-through", "--endpoint", self.sim.hub)
        self.sim.reset_stats()
        codes = [http(url + "/api/models/Org/nope%d" % i)[0] for i in range(80)]
        self.assertIn(429, codes)
        self.assertLessEqual(codes.count(401), 60)  # burst 40 + 10/s refill
        api = self.sim.stats()["requests"]["api"]
        self.assertLessEqual(api, 60, "the hub was asked %d times" % api)
        # another client is not held back; nor is what needs no pull-through
        ans = raw(url, b"GET /api/models/Org/pub HTTP/1.1\r\nConnection: close\r\n\r\n",
                  source="127.0.0.2")
        self.assertEqual(status(ans), 200)
        self.assertEqual(http(url + "/api/models/Org/pub")[0], 200)
