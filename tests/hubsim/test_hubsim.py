"""test_hubsim.py - unittest suite for the hub simulator (hubsim.py + client.py).

What it covers: every hub route (repo info, revision, tree + paging, paths-info,
refs, listing, commits, resolve, resolve-cache, raw, CDN), Range handling, the
auth / gated / disabled / renamed matrices, every fault kind, offline on the
same ports, latency, per-connection rate shaping, stats accounting, rescan and
branch moves, and an unshaped 512 MiB throughput measurement (printed).

What it does not do: test any modelfs C code. Expected digests and commit ids
are computed here independently from the rules in docs/architecture.md / README.md.
Run: python3 tests/pyrun.py tests/hubsim/test_hubsim.py
"""
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from client import (HubSim, HubSimError, make_repo, set_repo_json, write_tokens,  # noqa: E402
                    repo_dir)

LFS_EXT = (".gguf", ".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack",
           ".model", ".tflite", ".ot", ".npz", ".zip", ".tar", ".gz", ".parquet", ".arrow")


# ---------------------------------------------------------------- helpers
def gsha1(data):
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\x00" + data).hexdigest()


def pointer(data):
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (hashlib.sha256(data).hexdigest(), len(data))).encode()


def expected_commit(rtype, rid, files, lfs_min=10485760, exts=LFS_EXT):
    """files: {path: bytes}; independent implementation of the commit rule."""
    lines = []
    for p in sorted(files):
        d = files[p]
        is_lfs = len(d) > 0 and (len(d) >= lfs_min or p.lower().endswith(tuple(exts)))
        lines.append("%s %s\n" % (p, gsha1(pointer(d)) if is_lfs else gsha1(d)))
    return hashlib.sha1(("commit\n%s/%s\n" % (rtype, rid) + "".join(lines)).encode()).hexdigest()


def req(url, method="GET", headers=None, body=None, timeout=30):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body,
                     headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, r.headers, data
    finally:
        conn.close()


def jget(url, headers=None):
    st, h, b = req(url, headers=headers)
    return st, h, (json.loads(b) if b and h.get("Content-Type", "").startswith(
        "application/json") else b)


def fetch(sim, url, headers=None, method="GET", max_hops=5):
    """Follow redirects like a careful client: relative = same host with auth,
    absolute cross-host = no Authorization. Returns (status, headers, body, hops)."""
    hops = []
    headers = dict(headers or {})
    for _ in range(max_hops):
        st, h, b = req(url, method=method, headers=headers)
        hops.append((st, h))
        if st in (301, 302, 307, 308):
            loc = h["Location"]
            if loc.startswith("/"):
                u = urllib.parse.urlsplit(url)
                url = "%s://%s%s" % (u.scheme, u.netloc, loc)
            else:
                url = loc
                headers.pop("Authorization", None)
            continue
        return st, h, b, hops
    raise AssertionError("too many redirects")


def raw_get(url, headers=None, timeout=10):
    """Raw-socket GET: returns (status line, headers dict lower-case, body bytes,
    end: 'eof' | 'reset' | 'complete'). Reads until EOF so framing faults show."""
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        hs = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n"
                   % (u.path + ("?" + u.query if u.query else ""), hs)).encode())
        buf = b""
        end = "eof"
        while True:
            try:
                ch = s.recv(1 << 20)
            except ConnectionResetError:
                end = "reset"
                break
            if not ch:
                break
            buf += ch
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hd = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hd[k.strip().lower()] = v.strip()
        return lines[0], hd, body, end
    finally:
        s.close()


def rnd(n, seed):
    out = bytearray()
    h = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h * 64
    return bytes(out[:n])


def iso_ns(ns):
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


# ---------------------------------------------------------------- fixture
MAIN = {
    "config.json": b'{"model_type": "test"}\n',
    "README.md": b"# hello\n",
    "model.safetensors": rnd(300000, "st"),
    "big.dat": rnd(250000, "big"),           # LFS by size (lfs_min_size=200000)
    "empty.bin": b"",                        # LFS extension but empty -> regular
    "sub/dir/file.txt": b"deep file\n",
    "sub/w.bin": rnd(5000, "w"),
    "weird name+(1).txt": b"weird\n",
}
DEV = {"config.json": b'{"model_type": "dev"}\n', "dev.txt": b"dev only\n"}
PR1 = {"config.json": b'{"model_type": "pr"}\n'}
MANY = {("d%d/" % (i % 4) if i % 3 else "") + "f%02d.txt" % i: b"x%d" % i for i in range(60)}


def build_root(root):
    make_repo(root, "org/model", MAIN, lfs_min_size=200000, tags={"v1.0": "main"})
    make_repo(root, "org/model", DEV, branch="dev")
    make_repo(root, "org/model", PR1, branch="refs/pr/1")
    make_repo(root, "org/many", MANY)
    make_repo(root, "org/private", {"p.txt": b"secret\n", "p.gguf": rnd(1000, "p")},
              private=True, tokens=["hf_bob"])
    make_repo(root, "org/gated", {"g.txt": b"gated\n", "g.gguf": rnd(1000, "g")},
              gated="manual", tokens=["hf_bob"])
    make_repo(root, "org/disabled", {"d.txt": b"d\n"}, disabled=True)
    make_repo(root, "org/newname", {"n.txt": b"n\n"}, renamed_from=["org/oldname"])
    make_repo(root, "org/ds", {"data.parquet": rnd(4000, "pq"), "train.csv": b"a,b\n1,2\n"},
              repo_type="dataset")
    write_tokens(root, {"hf_alice": "alice", "hf_bob": "bob"})
    # hidden files are ignored
    with open(os.path.join(repo_dir(root, "org/model"), "main", ".hubsim-note"), "w") as f:
        f.write("ignored")


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hubsim-test-")
        build_root(cls.tmp)
        cls.sim = HubSim.start(cls.tmp)
        cls.C_MAIN = expected_commit("model", "org/model", MAIN, 200000)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.sim.clear_faults()
        self.sim.configure(latency_ms=0, conn_rate_mbps=0, url_ttl=3600)
        self.sim.reset_stats()

    def api(self, suffix, rid="org/model", t="models", headers=None):
        return jget("%s/api/%s/%s%s" % (self.sim.hub, t, rid, suffix), headers)

    def res_url(self, path, rev="main", rid="org/model", pre=""):
        return "%s/%s%s/resolve/%s/%s" % (self.sim.hub, pre, rid,
                                          urllib.parse.quote(rev, safe=""),
                                          urllib.parse.quote(path))


# ---------------------------------------------------------------- metadata
class TestMetadata(Base):
    def test_process_ready_line(self):
        self.assertTrue(self.sim.hub.startswith("http://127.0.0.1:"))
        self.assertNotEqual(self.sim.hub_port, self.sim.cdn_port)
        self.assertIsInstance(self.sim.pid, int)
        self.assertEqual(self.sim.pid, self.sim.proc.pid)

    def test_repo_info(self):
        st, h, d = self.api("")
        self.assertEqual(st, 200)
        self.assertEqual(h["Content-Type"], "application/json; charset=utf-8")
        self.assertEqual(d["sha"], self.C_MAIN)
        self.assertEqual(h["X-Repo-Commit"], self.C_MAIN)
        for k in ("_id", "id", "modelId", "author", "sha", "lastModified", "createdAt",
                  "private", "gated", "disabled", "siblings", "tags", "downloads", "likes"):
            self.assertIn(k, d)
        self.assertEqual((d["id"], d["modelId"], d["author"]), ("org/model",) * 2 + ("org",))
        self.assertEqual((d["private"], d["gated"], d["disabled"]), (False, False, False))
        self.assertEqual(sorted(s["rfilename"] for s in d["siblings"]), sorted(MAIN))
        self.assertNotIn("size", d["siblings"][0])
        bdir = os.path.join(repo_dir(self.tmp, "org/model"), "main")
        mt = max(os.stat(os.path.join(bdir, p)).st_mtime_ns for p in MAIN)
        self.assertEqual(d["lastModified"], iso_ns(mt))
        self.assertRegex(d["lastModified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$")

    def test_repo_info_blobs(self):
        st, h, d = self.api("?blobs=true")
        sib = {s["rfilename"]: s for s in d["siblings"]}
        for p in ("model.safetensors", "big.dat", "sub/w.bin"):
            data = MAIN[p]
            self.assertEqual(sib[p]["size"], len(data))
            self.assertEqual(sib[p]["blobId"], gsha1(pointer(data)))
            self.assertEqual(sib[p]["lfs"], {"sha256": hashlib.sha256(data).hexdigest(),
                                             "size": len(data),
                                             "pointerSize": len(pointer(data))})
        for p in ("config.json", "empty.bin", "weird name+(1).txt"):
            self.assertNotIn("lfs", sib[p])
            self.assertEqual(sib[p]["blobId"], gsha1(MAIN[p]))
        self.assertEqual(sib["empty.bin"]["blobId"], "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")

    def test_repo_info_expand_filter(self):
        st, h, d = self.api("?expand=sha&expand=private")
        self.assertEqual(st, 200)
        self.assertEqual(set(d), {"_id", "id", "sha", "private"})
        st, h, d = self.api("?expand=bogus")
        self.assertEqual(st, 400)

    def test_dataset_info(self):
        st, h, d = self.api("", rid="org/ds", t="datasets")
        self.assertEqual(st, 200)
        self.assertNotIn("modelId", d)
        self.assertEqual(d["sha"], expected_commit(
            "dataset", "org/ds", {"data.parquet": rnd(4000, "pq"), "train.csv": b"a,b\n1,2\n"}))

    def test_revisions(self):
        c_dev = expected_commit("model", "org/model", DEV)
        c_pr = expected_commit("model", "org/model", PR1)
        cases = {"dev": c_dev, "refs%2Fpr%2F1": c_pr, "refs/pr/1": c_pr, "v1.0": self.C_MAIN,
                 "main": self.C_MAIN, self.C_MAIN: self.C_MAIN, c_dev[:10]: c_dev,
                 "refs%2Fheads%2Fdev": c_dev}
        for rev, want in cases.items():
            st, h, d = self.api("/revision/" + rev)
            self.assertEqual((st, d["sha"], h["X-Repo-Commit"]), (200, want, want), rev)
        st, h, d = self.api("/revision/nope")
        self.assertEqual(st, 404)
        self.assertEqual(h["X-Error-Code"], "RevisionNotFound")
        self.assertEqual(h["X-Error-Message"], "Invalid rev id: nope")
        self.assertEqual(d, {"error": "Invalid rev id: nope"})
        st, h, d = self.api("/revision/" + "0" * 40)
        self.assertEqual((st, h["X-Error-Code"]), (404, "RevisionNotFound"))

    def test_commit_stable_across_restart(self):
        with HubSim.start(self.tmp) as other:
            st, h, d = jget(other.hub + "/api/models/org/model")
            self.assertEqual(d["sha"], self.C_MAIN)

    def test_tree_root_and_recursive(self):
        st, h, d = self.api("/tree/main")
        self.assertEqual(st, 200)
        self.assertEqual(h["X-Repo-Commit"], self.C_MAIN)
        top = sorted(e["path"] for e in d)
        self.assertEqual(top, sorted({p.split("/")[0] for p in MAIN}))
        st, h, d = self.api("/tree/main?recursive=true")
        paths = {e["path"]: e for e in d}
        self.assertEqual(set(paths), set(MAIN) | {"sub", "sub/dir"})
        self.assertEqual(paths["sub"]["type"], "directory")
        self.assertEqual(paths["sub"]["size"], 0)
        self.assertRegex(paths["sub"]["oid"], r"^[0-9a-f]{40}$")
        self.assertEqual(set(paths["sub"]), {"type", "oid", "size", "path"})
        e = paths["config.json"]
        self.assertEqual(e, {"type": "file", "oid": gsha1(MAIN["config.json"]),
                             "size": len(MAIN["config.json"]), "path": "config.json"})
        e = paths["model.safetensors"]
        data = MAIN["model.safetensors"]
        self.assertEqual(e["oid"], gsha1(pointer(data)))
        self.assertEqual(e["size"], len(data))
        self.assertEqual(e["lfs"], {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": len(pointer(data))})
        self.assertNotIn("lfs", paths["empty.bin"])
        self.assertIn("lfs", paths["big.dat"])
        self.assertNotIn(".hubsim-note", paths)
        self.assertNotIn("repo.json", paths)
        # directory oids are stable across requests
        st, h, d2 = self.api("/tree/main?recursive=true")
        self.assertEqual(d, d2)

    def test_tree_subpath_encodings(self):
        a = self.api("/tree/main/sub%2Fdir")
        b = self.api("/tree/main/sub/dir")
        self.assertEqual((a[0], b[0]), (200, 200))
        self.assertEqual(a[2], b[2])
        self.assertEqual([e["path"] for e in a[2]], ["sub/dir/file.txt"])
        st, h, d = self.api("/tree/main/sub?recursive=true")
        self.assertEqual(sorted(e["path"] for e in d), ["sub/dir", "sub/dir/file.txt",
                                                        "sub/w.bin"])
        st, h, d = self.api("/tree/refs%2Fpr%2F1")
        self.assertEqual([e["path"] for e in d], ["config.json"])
        st, h, d = self.api("/tree/refs/pr/1")
        self.assertEqual([e["path"] for e in d], ["config.json"])
        st, h, d = self.api("/tree/main/nope")
        self.assertEqual((st, h["X-Error-Code"]), (404, "EntryNotFound"))
        st, h, d = self.api("/tree/nope")
        self.assertEqual((st, h["X-Error-Code"]), (404, "RevisionNotFound"))

    def test_tree_expand(self):
        st, h, d = self.api("/tree/main?expand=true")
        for e in d:
            self.assertEqual(e["lastCommit"]["id"], self.C_MAIN)
            self.assertIn("date", e["lastCommit"])

    def _walk(self, url):
        out, pages, links = [], 0, []
        while url:
            st, h, d = jget(url)
            self.assertEqual(st, 200, url)
            out += d
            pages += 1
            link = h.get("Link")
            url = None
            if link:
                m = re.match(r'^<([^>]+)>;\s*rel="next"$', link)
                self.assertTrue(m, link)
                url = m.group(1)
                links.append(url)
        return out, pages, links

    def test_tree_paging(self):
        base = self.sim.hub + "/api/models/org/many/tree/main?recursive=true&expand=false"
        full, pages, _ = self._walk(base)
        self.assertEqual(pages, 1)
        self.assertEqual(len(full), 60 + 4)
        paged, pages, links = self._walk(base + "&limit=7")
        self.assertEqual(pages, (64 + 6) // 7)
        self.assertEqual(len(paged), 64)
        self.assertEqual(sorted(json.dumps(e, sort_keys=True) for e in paged),
                         sorted(json.dumps(e, sort_keys=True) for e in full))
        for ln in links:
            self.assertTrue(ln.startswith(self.sim.hub + "/api/models/org/many/tree/main?"))
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(ln).query)
            self.assertEqual((q["recursive"], q["expand"], q["limit"]),
                             (["true"], ["false"], ["7"]))
            cur = q["cursor"][0]
            self.assertFalse(cur.isdigit(), "cursor must be opaque")
            base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4))
        # a forged cursor is rejected
        st, h, d = jget(base + "&cursor=%21%21notbase64")
        self.assertEqual(st, 400)
        # non-recursive paging of the root
        paged, pages, _ = self._walk(self.sim.hub + "/api/models/org/many/tree/main?limit=5")
        self.assertEqual(len(paged), 20 + 4)
        self.assertEqual(pages, 5)

    def test_tree_expand_default_limit(self):
        url = self.sim.hub + "/api/models/org/many/tree/main?recursive=true&expand=true"
        st, h, d = jget(url)
        self.assertEqual(len(d), 50)
        self.assertIn("Link", h)
        allp, pages, _ = self._walk(url)
        self.assertEqual((len(allp), pages), (64, 2))

    def test_paths_info(self):
        url = self.sim.hub + "/api/models/org/model/paths-info/main"
        form = "paths=config.json&paths=sub&paths=nope&paths=model.safetensors&expand=false"
        st, h, b = req(url, "POST", {"Content-Type": "application/x-www-form-urlencoded"}, form)
        self.assertEqual(st, 200)
        d = {e["path"]: e for e in json.loads(b)}
        self.assertEqual(set(d), {"config.json", "sub", "model.safetensors"})
        self.assertEqual(d["sub"]["type"], "directory")
        self.assertEqual(d["model.safetensors"]["lfs"]["oid"],
                         hashlib.sha256(MAIN["model.safetensors"]).hexdigest())
        st, h, b = req(url, "POST", {"Content-Type": "application/json"},
                       json.dumps({"paths": ["sub/dir/file.txt", "x"], "expand": True}))
        d = json.loads(b)
        self.assertEqual([e["path"] for e in d], ["sub/dir/file.txt"])
        self.assertEqual(d[0]["lastCommit"]["id"], self.C_MAIN)
        st, h, b = req(url, "POST", {"Content-Type": "application/json"},
                       json.dumps({"paths": "README.md"}))
        self.assertEqual([e["path"] for e in json.loads(b)], ["README.md"])
        st, h, b = req(url, "POST", {"Content-Type": "application/json"},
                       json.dumps({"paths": ["a", "b"]}))
        self.assertEqual((st, json.loads(b)), (200, []))
        st, h, b = req(self.sim.hub + "/api/models/org/model/paths-info/refs%2Fpr%2F1", "POST",
                       {"Content-Type": "application/x-www-form-urlencoded"}, "paths=dev.txt")
        self.assertEqual(json.loads(b), [])

    def test_refs(self):
        st, h, d = self.api("/refs")
        self.assertEqual(st, 200)
        br = {b["name"]: b for b in d["branches"]}
        self.assertEqual(set(br), {"main", "dev"})
        self.assertEqual(br["main"]["ref"], "refs/heads/main")
        self.assertEqual(br["main"]["targetCommit"], self.C_MAIN)
        self.assertEqual(d["tags"], [{"name": "v1.0", "ref": "refs/tags/v1.0",
                                      "targetCommit": self.C_MAIN}])
        self.assertEqual(d["converts"], [])
        self.assertNotIn("pullRequests", d)
        st, h, d = self.api("/refs?include_prs=1")
        self.assertEqual(d["pullRequests"], [{"name": "1", "ref": "refs/pr/1",
                                              "targetCommit": expected_commit(
                                                  "model", "org/model", PR1)}])
        for r in d["branches"] + d["tags"] + d["pullRequests"]:
            st2, _, d2 = self.api("/revision/" + urllib.parse.quote(r["ref"], safe=""))
            self.assertEqual(d2["sha"], r["targetCommit"])

    def test_list_author(self):
        st, h, d = jget(self.sim.hub + "/api/models?author=org")
        ids = {x["id"] for x in d}
        self.assertIn("org/model", ids)
        self.assertIn("org/gated", ids)
        self.assertNotIn("org/private", ids)
        self.assertEqual([x["sha"] for x in d if x["id"] == "org/model"], [self.C_MAIN])
        st, h, d = jget(self.sim.hub + "/api/models?author=org",
                        {"Authorization": "Bearer hf_bob"})
        self.assertIn("org/private", {x["id"] for x in d})
        st, h, d = jget(self.sim.hub + "/api/models?author=org",
                        {"Authorization": "Bearer hf_alice"})
        self.assertNotIn("org/private", {x["id"] for x in d})
        st, h, d = jget(self.sim.hub + "/api/models?author=nobody")
        self.assertEqual((st, d), (200, []))
        st, h, d = jget(self.sim.hub + "/api/models?author=org&limit=2")
        self.assertEqual(len(d), 2)
        st, h, d = jget(self.sim.hub + "/api/datasets?author=org")
        self.assertEqual([x["id"] for x in d], ["org/ds"])

    def test_list_author_pages_with_link(self):
        """Like the hub: list_page repos per page, then Link rel="next" (absolute,
        opaque cursor, other parameters kept) until the last page has none."""
        self.sim.configure(list_page=2)
        self.addCleanup(self.sim.configure, list_page=1000)
        url, seen, pages = self.sim.hub + "/api/models?author=org", [], 0
        while url:
            st, h, d = jget(url, {"Authorization": "Bearer hf_bob"})
            self.assertEqual(st, 200)
            self.assertLessEqual(len(d), 2)
            seen += [x["id"] for x in d]
            pages += 1
            link = h.get("Link")
            url = None
            if link:
                m = re.match(r'<([^>]+)>; rel="next"', link)
                self.assertTrue(m, link)
                url = m.group(1)
                self.assertTrue(url.startswith(self.sim.hub + "/api/models?"), url)
                self.assertIn("author=org", url)
        st, h, d = jget(self.sim.hub + "/api/models?author=org", {"Authorization": "Bearer hf_bob"})
        self.assertEqual(len(seen), len(set(seen)))
        self.assertIn("org/private", seen)
        self.assertGreaterEqual(pages, 3)
        self.assertEqual(len(d), 2)
        st, _, _ = jget(self.sim.hub + "/api/models?author=org&cursor=!!")
        self.assertEqual(st, 400)

    def test_commits(self):
        st, h, d = self.api("/commits/main")
        self.assertEqual(st, 200)
        self.assertEqual(d[0]["id"], self.C_MAIN)

    def test_common_headers(self):
        st, h, b = req(self.sim.hub + "/api/models/org/model",
                       headers={"X-Amzn-Trace-Id": "trace-1234"})
        self.assertRegex(h["X-Request-Id"], r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};trace-1234$")
        self.assertRegex(h["RateLimit"], r'^"api";r=\d+;t=\d+$')
        self.assertRegex(h["RateLimit-Policy"], r'^"fixed window";"api";q=\d+;w=300$')
        st, h, b = req(self.res_url("config.json"))
        self.assertRegex(h["RateLimit"], r'^"resolvers";r=\d+;t=\d+$')
        self.assertIn("X-Request-Id", h)
        st, h, b = req(self.sim.hub + "/api/models/org/nosuch")
        self.assertIn("RateLimit", h)

    def test_quota_429(self):
        try:
            self.sim.configure(quota_api=3)
            codes, rems = [], []
            for _ in range(4):
                st, h, b = req(self.sim.hub + "/api/models/org/model")
                codes.append(st)
                rems.append(h["RateLimit"])
            self.assertEqual(codes, [200, 200, 200, 429])
            self.assertEqual(rems[0], '"api";r=2;t=%s' % rems[0].rsplit("=", 1)[1])
            self.assertIn(";r=0;", rems[3])
            st, h, b = req(self.res_url("config.json"))
            self.assertEqual(st, 307)  # other bucket unaffected
        finally:
            self.sim.configure(quota_api=1000000)


# ---------------------------------------------------------------- file routes
class TestFiles(Base):
    def test_resolve_regular(self):
        st, h, b = req(self.res_url("config.json"))
        self.assertEqual(st, 307)
        sha1 = gsha1(MAIN["config.json"])
        self.assertEqual(h["Location"], "/api/resolve-cache/models/org/model/%s/config.json"
                         "?etag=%%22%s%%22" % (self.C_MAIN, sha1))
        self.assertEqual(h["X-Repo-Commit"], self.C_MAIN)
        self.assertEqual(int(h["Content-Length"]), len(b))
        st, h2, body, hops = fetch(self.sim, self.res_url("config.json"))
        self.assertEqual((st, body), (200, MAIN["config.json"]))
        self.assertEqual(h2["ETag"], '"%s"' % sha1)
        self.assertEqual(h2["X-Repo-Commit"], self.C_MAIN)
        self.assertEqual(h2["Accept-Ranges"], "bytes")
        self.assertEqual(int(h2["Content-Length"]), len(MAIN["config.json"]))
        self.assertEqual(h2["Content-Disposition"],
                         "inline; filename*=UTF-8''config.json; filename=\"config.json\";")
        # query string dropped (what huggingface_hub does) still works; HEAD has no body
        loc = h["Location"].split("?")[0]
        st, h3, b3 = req(self.sim.hub + loc, "HEAD")
        self.assertEqual((st, b3, h3["ETag"]), (200, b"", '"%s"' % sha1))
        self.assertEqual(int(h3["Content-Length"]), len(MAIN["config.json"]))
        st, h4, b4 = req(self.res_url("config.json"), "HEAD")
        self.assertEqual((st, b4, h4["Location"]), (307, b"", h["Location"]))

    def test_resolve_lfs(self):
        data = MAIN["model.safetensors"]
        sha256 = hashlib.sha256(data).hexdigest()
        for method in ("GET", "HEAD"):
            st, h, b = req(self.res_url("model.safetensors"), method)
            self.assertEqual(st, 302)
            loc = h["Location"]
            self.assertTrue(loc.startswith(self.sim.cdn + "/cdn/" + sha256 + "?"), loc)
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
            self.assertEqual(q["repo"], ["org/model"])
            self.assertEqual(q["commit"], [self.C_MAIN])
            self.assertGreater(int(q["Expires"][0]), time.time() + 3000)
            self.assertRegex(q["Signature"][0], r"^[0-9a-f]{64}$")
            self.assertEqual(h["X-Repo-Commit"], self.C_MAIN)
            self.assertEqual(h["X-Linked-Etag"], '"%s"' % sha256)
            self.assertEqual(h["X-Linked-Size"], str(len(data)))
            self.assertEqual(h["ETag"], '"%s"' % sha256)
            self.assertEqual(h["Accept-Ranges"], "bytes")
            self.assertEqual(h["Content-Type"], "text/plain; charset=utf-8")
            self.assertGreater(int(h["Content-Length"]), 0)
            if method == "GET":
                self.assertEqual(int(h["Content-Length"]), len(b))
        st, h, b = req(loc)
        self.assertEqual((st, b), (200, data))
        self.assertRegex(h["ETag"], r'^"[0-9a-f]{64}"$')
        self.assertNotEqual(h["ETag"], '"%s"' % sha256)
        self.assertNotIn("X-Repo-Commit", h)
        # LFS by size, dataset prefix, and sub folder
        st, h, b, _ = fetch(self.sim, self.res_url("big.dat"))
        self.assertEqual(b, MAIN["big.dat"])
        st, h, b, hops = fetch(self.sim, self.res_url("data.parquet", rid="org/ds",
                                                      pre="datasets/"))
        self.assertEqual((st, b, hops[0][0]), (200, rnd(4000, "pq"), 302))
        st, h, b, hops = fetch(self.sim, self.res_url("train.csv", rid="org/ds",
                                                      pre="datasets/"))
        self.assertEqual(hops[0][1]["Location"].split("/")[3], "datasets")
        self.assertEqual(b, b"a,b\n1,2\n")

    def test_resolve_encodings_and_revs(self):
        st, h, b, _ = fetch(self.sim, self.res_url("weird name+(1).txt"))
        self.assertEqual((st, b), (200, b"weird\n"))
        st, h, b, _ = fetch(self.sim, self.res_url("sub/dir/file.txt"))
        self.assertEqual(b, b"deep file\n")
        c_pr = expected_commit("model", "org/model", PR1)
        st, h, b, hops = fetch(self.sim, self.res_url("config.json", rev="refs/pr/1"))
        self.assertEqual((b, hops[0][1]["X-Repo-Commit"]), (PR1["config.json"], c_pr))
        st, h, b, hops = fetch(self.sim, self.sim.hub + "/org/model/resolve/refs/pr/1/config.json")
        self.assertEqual(b, PR1["config.json"])
        st, h, b, hops = fetch(self.sim, self.res_url("config.json", rev=self.C_MAIN))
        self.assertEqual(b, MAIN["config.json"])
        st, h, b, hops = fetch(self.sim, self.res_url("config.json", rev="v1.0"))
        self.assertEqual(b, MAIN["config.json"])
        st, h, b = req(self.res_url("empty.bin"))
        self.assertEqual(st, 307)
        st, h, b, _ = fetch(self.sim, self.res_url("empty.bin"))
        self.assertEqual((st, b, h["Content-Length"]), (200, b"", "0"))

    def test_resolve_errors(self):
        st, h, b = req(self.res_url("nope.txt"))
        self.assertEqual((st, h["X-Error-Code"], h["X-Repo-Commit"]),
                         (404, "EntryNotFound", self.C_MAIN))
        st, h, b = req(self.res_url("sub"))
        self.assertEqual((st, h["X-Error-Code"]), (404, "EntryNotFound"))
        st, h, b = req(self.res_url("config.json", rev="nope"))
        self.assertEqual((st, h["X-Error-Code"], h["X-Error-Message"]),
                         (404, "RevisionNotFound", "Invalid rev id: nope"))
        st, h, b = req(self.sim.hub + "/org/nosuch/resolve/main/x")
        self.assertEqual((st, h["X-Error-Code"]), (401, "RepoNotFound"))

    def test_if_none_match(self):
        sha1 = gsha1(MAIN["config.json"])
        st, h, b = req(self.res_url("config.json"), headers={"If-None-Match": '"%s"' % sha1})
        self.assertEqual((st, b, h["X-Repo-Commit"]), (304, b"", self.C_MAIN))
        st, h, b = req(self.res_url("config.json"), headers={"If-None-Match": '"abc"'})
        self.assertEqual(st, 307)
        sha256 = hashlib.sha256(MAIN["model.safetensors"]).hexdigest()
        st, h, b = req(self.res_url("model.safetensors"),
                       headers={"If-None-Match": 'W/"%s"' % sha256})
        self.assertEqual(st, 304)

    def test_raw(self):
        base = self.sim.hub + "/org/model/raw/main/"
        st, h, b = req(base + "config.json")
        self.assertEqual((st, b, h["ETag"]), (200, MAIN["config.json"],
                                              '"%s"' % gsha1(MAIN["config.json"])))
        ptr = pointer(MAIN["model.safetensors"])
        st, h, b = req(base + "model.safetensors")
        self.assertEqual((st, b, h["ETag"]), (200, ptr, '"%s"' % gsha1(ptr)))
        self.assertEqual(h["X-Repo-Commit"], self.C_MAIN)
        st, h, b = req(base + "model.safetensors", headers={"Range": "bytes=0-6"})
        self.assertEqual((st, b, h["Content-Range"]), (206, b"version", "bytes 0-6/%d" % len(ptr)))
        st, h, b = req(base + "nope")
        self.assertEqual(st, 404)
        st, h, b = req(self.sim.hub + "/datasets/org/ds/raw/main/train.csv", "HEAD")
        self.assertEqual((st, b, h["Content-Length"]), (200, b"", "8"))
        s = self.sim.stats()
        self.assertEqual(s["requests"]["raw"], 5)
        self.assertEqual(s["body_bytes"]["org/model/model.safetensors"], len(ptr) + 7)

    def _ranges(self, url, data):
        n = len(data)
        cases = [("bytes=0-9", 0, 9), ("bytes=10-", 10, n - 1), ("bytes=-5", n - 5, n - 1),
                 ("bytes=%d-%d" % (n - 3, n + 100), n - 3, n - 1), ("bytes=7-7", 7, 7)]
        for rng, a, b in cases:
            st, h, body = req(url, headers={"Range": rng})
            self.assertEqual(st, 206, rng)
            self.assertEqual(body, data[a:b + 1], rng)
            self.assertEqual(h["Content-Range"], "bytes %d-%d/%d" % (a, b, n))
            self.assertEqual(int(h["Content-Length"]), b - a + 1)
        st, h, body = req(url, headers={"Range": "bytes=%d-" % n})
        self.assertEqual((st, h["Content-Range"]), (416, "bytes */%d" % n))
        st, h, body = req(url)
        self.assertEqual((st, body), (200, data))
        self.assertNotIn("Content-Range", h)

    def test_ranges_resolve_cache_and_cdn(self):
        st, h, b = req(self.res_url("config.json"))
        self._ranges(self.sim.hub + h["Location"], MAIN["config.json"])
        st, h, b = req(self.res_url("model.safetensors"))
        self._ranges(h["Location"], MAIN["model.safetensors"])
        # Range passed through the 307 hop by a client still works end-to-end
        st, h, body, _ = fetch(self.sim, self.res_url("sub/w.bin"), {"Range": "bytes=100-199"})
        self.assertEqual((st, body), (206, MAIN["sub/w.bin"][100:200]))

    def test_stats_exact_bytes(self):
        st, h, b = req(self.res_url("model.safetensors"))
        cdn = h["Location"]
        st, h, b = req(self.res_url("config.json"))
        rc = self.sim.hub + h["Location"]
        self.sim.reset_stats()
        req(cdn, headers={"Range": "bytes=0-999"})
        req(cdn, headers={"Range": "bytes=5000-"})
        req(cdn, "HEAD")
        req(rc, headers={"Range": "bytes=2-5"})
        req(rc)
        conn = http.client.HTTPConnection("127.0.0.1", self.sim.hub_port)   # keep-alive
        for _ in range(3):
            conn.request("GET", urllib.parse.urlsplit(rc).path,
                         headers={"Authorization": "Bearer hf_alice", "Range": "bytes=0-0"})
            self.assertEqual(conn.getresponse().read(), b"{")
        conn.close()
        s = self.sim.stats()
        n = len(MAIN["model.safetensors"])
        nc = len(MAIN["config.json"])
        self.assertEqual(s["body_bytes"]["org/model/model.safetensors"], 1000 + n - 5000)
        self.assertEqual(s["body_bytes"]["org/model/config.json"], 4 + nc + 3)
        self.assertEqual(s["body_bytes_total"], 1000 + n - 5000 + 4 + nc + 3)
        self.assertEqual(s["requests"]["cdn"], 3)
        self.assertEqual(s["requests"]["resolve-cache"], 5)
        self.assertEqual(s["requests_by_path"]["cdn:model.safetensors"], 3)
        self.assertEqual(s["requests_by_path"]["resolve-cache:config.json"], 5)
        self.assertEqual(s["ranges"], [
            ["cdn", "org/model/model.safetensors", 0, 999],
            ["cdn", "org/model/model.safetensors", 5000, n - 1],
            ["resolve-cache", "org/model/config.json", 2, 5],
            ["resolve-cache", "org/model/config.json", 0, nc - 1]] +
            [["resolve-cache", "org/model/config.json", 0, 0]] * 3)
        self.assertEqual(s["auth_seen_hub"], 3)
        self.assertEqual(s["connections"], 6)
        self.assertEqual(s["cdn_auth_seen"], 0)
        for k in ("api", "resolve", "resolve-cache", "cdn", "raw", "other"):
            self.assertIn(k, s["requests"])
        st, h, b = jget(self.sim.hub + "/api/models/org/model/tree/main")
        self.assertEqual(self.sim.stats()["requests_by_path"]["api:/api/models/org/model/tree/main"], 1)

    def test_parallel_keepalive_ranges(self):
        data = MAIN["model.safetensors"]
        st, h, b = req(self.res_url("model.safetensors"))
        u = urllib.parse.urlsplit(h["Location"])
        self.sim.reset_stats()
        errors, total = [], [0]
        lock = threading.Lock()

        def worker(k):
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            try:
                for i in range(40):
                    a = (k * 7919 + i * 4099) % (len(data) - 5000)
                    conn.request("GET", u.path + "?" + u.query,
                                 headers={"Range": "bytes=%d-%d" % (a, a + 4095)})
                    r = conn.getresponse()
                    body = r.read()
                    if r.status != 206 or body != data[a:a + 4096]:
                        errors.append((k, i, r.status))
                    with lock:
                        total[0] += len(body)
            finally:
                conn.close()
        th = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        [t.start() for t in th]
        [t.join() for t in th]
        self.assertEqual(errors, [])
        s = self.sim.stats()
        self.assertEqual((s["connections"], s["requests"]["cdn"], len(s["ranges"])), (4, 160, 160))
        self.assertEqual(s["body_bytes_total"], total[0])
        self.assertEqual(total[0], 160 * 4096)

    def test_cdn_signature_expiry_auth(self):
        st, h, b = req(self.res_url("model.safetensors"))
        loc = h["Location"]
        bad = re.sub(r"Signature=[0-9a-f]{4}", "Signature=0000", loc)
        st, h, b = req(bad)
        self.assertEqual(st, 403)
        self.assertIn(b"<Code>AccessDenied</Code>", b)
        bad = re.sub(r"Expires=\d+", "Expires=%d" % (int(time.time()) + 99999), loc)
        self.assertEqual(req(bad)[0], 403)
        st, h, b = req(loc, headers={"Authorization": "Bearer hf_alice"})
        self.assertEqual(st, 400)
        self.assertEqual(self.sim.stats()["cdn_auth_seen"], 1)
        self.sim.configure(url_ttl=-5)
        st, h, b = req(self.res_url("model.safetensors"))
        st, h, b = req(h["Location"])
        self.assertEqual(st, 403)
        self.assertIn(b"expired", b)
        self.sim.configure(url_ttl=1)
        st, h, b = req(self.res_url("model.safetensors"))
        self.assertEqual(req(h["Location"])[0], 200)
        time.sleep(2.1)
        self.assertEqual(req(h["Location"])[0], 403)


# ---------------------------------------------------------------- auth
class TestAuth(Base):
    TOK = {"anon": {}, "invalid": {"Authorization": "Bearer hf_nope"},
           "alice": {"Authorization": "Bearer hf_alice"},
           "bob": {"Authorization": "Bearer hf_bob"}}

    def routes(self, rid, f_small, f_lfs):
        h = self.sim.hub
        return {
            "info": ("GET", "%s/api/models/%s" % (h, rid), None),
            "revision": ("GET", "%s/api/models/%s/revision/main" % (h, rid), None),
            "tree": ("GET", "%s/api/models/%s/tree/main" % (h, rid), None),
            "refs": ("GET", "%s/api/models/%s/refs" % (h, rid), None),
            "paths-info": ("POST", "%s/api/models/%s/paths-info/main" % (h, rid),
                           "paths=" + f_small),
            "resolve": ("GET", "%s/%s/resolve/main/%s" % (h, rid, f_small), None),
            "resolve-lfs": ("HEAD", "%s/%s/resolve/main/%s" % (h, rid, f_lfs), None),
            "resolve-cache": ("GET", "%s/api/resolve-cache/models/%s/main/%s"
                              % (h, rid, f_small), None),
            "raw": ("GET", "%s/%s/raw/main/%s" % (h, rid, f_small), None),
        }

    def call(self, spec, who):
        m, url, body = spec
        hd = dict(self.TOK[who])
        if body:
            hd["Content-Type"] = "application/x-www-form-urlencoded"
        return req(url, m, hd, body)

    def test_invalid_token_everywhere(self):
        for name, spec in self.routes("org/model", "config.json", "model.safetensors").items():
            st, h, b = self.call(spec, "invalid")
            self.assertEqual(st, 401, name)
            self.assertEqual(h["X-Error-Message"], "Invalid credentials in Authorization header")
        st, h, b = req(self.sim.hub + "/api/models?author=org", headers=self.TOK["invalid"])
        self.assertEqual(st, 401)

    def test_private_matrix(self):
        for name, spec in self.routes("org/private", "p.txt", "p.gguf").items():
            st, h, b = self.call(spec, "anon")
            self.assertEqual((st, h["X-Error-Code"], h["X-Error-Message"]),
                             (401, "RepoNotFound", "Repository not found"), name)
            if spec[0] != "HEAD":
                self.assertEqual(json.loads(b), {"error": "Repository not found"})
            st, h, b = self.call(spec, "alice")
            self.assertEqual((st, h["X-Error-Code"]), (404, "RepoNotFound"), name)
            st, h, b = self.call(spec, "bob")
            self.assertIn(st, (200, 302, 307), name)
        # missing repo looks the same as private
        for name, spec in self.routes("org/ghost", "a", "b").items():
            self.assertEqual(self.call(spec, "anon")[0], 401, name)
            self.assertEqual(self.call(spec, "alice")[0], 404, name)
        st, h, b, _ = fetch(self.sim, self.sim.hub + "/org/private/resolve/main/p.gguf",
                            self.TOK["bob"])
        self.assertEqual((st, b), (200, rnd(1000, "p")))

    def test_owner_has_access(self):
        make_repo(self.tmp, "alice/mine", {"m.txt": b"mine"}, private=True)
        st, h, b = req(self.sim.hub + "/api/models/alice/mine", headers=self.TOK["alice"])
        self.assertEqual(st, 200)
        self.assertEqual(req(self.sim.hub + "/api/models/alice/mine",
                             headers=self.TOK["bob"])[0], 404)

    def test_gated_matrix(self):
        open_routes = ("info", "revision", "tree", "refs", "paths-info")
        for name, spec in self.routes("org/gated", "g.txt", "g.gguf").items():
            for who in ("anon", "alice", "bob"):
                st, h, b = self.call(spec, who)
                if name in open_routes or who == "bob":
                    self.assertIn(st, (200, 302, 307), (name, who))
                    continue
                self.assertEqual(h["X-Error-Code"], "GatedRepo", (name, who))
                if who == "anon":
                    self.assertEqual(st, 401)
                    self.assertEqual(h["X-Error-Message"],
                                     "Access to model org/gated is restricted. You must have "
                                     "access to it and be authenticated to access it. "
                                     "Please log in.")
                else:
                    self.assertEqual(st, 403)
                    self.assertTrue(h["X-Error-Message"].startswith(
                        "Access to model org/gated is restricted and you are not in the "
                        "authorized list. Visit "), h["X-Error-Message"])
        st, h, d = jget(self.sim.hub + "/api/models/org/gated")
        self.assertEqual(d["gated"], "manual")

    def test_disabled(self):
        for url in ("/api/models/org/disabled", "/org/disabled/resolve/main/d.txt"):
            st, h, b = req(self.sim.hub + url)
            self.assertEqual((st, h["X-Error-Message"]),
                             (403, "Access to this resource is disabled."))

    def test_renamed(self):
        st, h, b = req(self.sim.hub + "/api/models/org/oldname/tree/main?recursive=true")
        self.assertEqual((st, h["Location"]),
                         (307, "/api/models/org/newname/tree/main?recursive=true"))
        st, h, b = req(self.sim.hub + "/org/oldname/resolve/main/n.txt")
        self.assertEqual((st, h["Location"]), (307, "/org/newname/resolve/main/n.txt"))
        st, h, b, hops = fetch(self.sim, self.sim.hub + "/org/oldname/resolve/main/n.txt")
        self.assertEqual((st, b, len(hops)), (200, b"n\n", 3))
        self.assertEqual(hops[1][1]["X-Repo-Commit"],
                         expected_commit("model", "org/newname", {"n.txt": b"n\n"}))


# ---------------------------------------------------------------- faults
class TestFaults(Base):
    def cdn_url(self, path="model.safetensors"):
        st, h, b = req(self.res_url(path))
        return h["Location"]

    def test_status_fault(self):
        self.sim.fault("status", status=503, route="api", count=2, retry_after=3)
        url = self.sim.hub + "/api/models/org/model"
        r1, r2, r3 = req(url), req(url), req(url)
        self.assertEqual([r1[0], r2[0], r3[0]], [503, 503, 200])
        self.assertEqual(r1[1]["Retry-After"], "3")
        self.assertIn("RateLimit", r1[1])
        self.sim.fault("status", status=429, ratelimit_reset=7)
        st, h, b = req(self.res_url("config.json"))
        self.assertEqual((st, h["RateLimit"]), (429, '"resolvers";r=0;t=7'))
        # route filter: an api fault does not hit resolve
        self.sim.fault("status", status=500, route="api")
        self.assertEqual(req(self.res_url("config.json"))[0], 307)
        self.assertEqual(req(url)[0], 500)
        for code in (408, 502, 504):
            self.sim.fault("status", status=code, route="cdn")
            self.assertEqual(req(self.cdn_url())[0], code)

    def test_oracle_records_what_fired(self):
        # The record tests use to check their faults fired: it keeps
        # consumed and cleared faults, and reset_stats does not touch it.
        url = self.sim.hub + "/api/models/org/model"
        a = self.sim.fault("status", status=503, route="api", count=2)
        b = self.sim.fault("status", status=500, route="cdn", count=1)
        self.assertEqual([req(url)[0] for _ in range(3)], [503, 503, 200])
        self.sim.clear_faults()
        self.sim.reset_stats()
        self.assertEqual(self.sim.fired(a), 2)
        self.assertEqual(self.sim.fired(b), 0)
        rec = {f["id"]: f for f in self.sim.oracle()["faults"]}
        self.assertEqual((rec[b]["kind"], rec[b]["route"], rec[b]["count"]), ("status", "cdn", 1))
        before = self.sim.oracle()["cdn_auth_ever"]
        req(self.cdn_url(), headers={"Authorization": "Bearer x"})
        self.sim.reset_stats()
        self.assertEqual(self.sim.oracle()["cdn_auth_ever"], before + 1)

    def test_skip_count_path_forever_clear(self):
        self.sim.fault("status", status=500, route="resolve", path="README.md", skip=1, count=-1)
        self.assertEqual(req(self.res_url("config.json"))[0], 307)
        self.assertEqual(req(self.res_url("README.md"))[0], 307)   # skipped
        for _ in range(3):
            self.assertEqual(req(self.res_url("README.md"))[0], 500)
        self.assertEqual(len(self.sim.faults()), 1)
        self.sim.clear_faults()
        self.assertEqual(req(self.res_url("README.md"))[0], 307)
        # path also matches the repo file of a CDN request
        url = self.cdn_url("big.dat")
        self.sim.fault("status", status=503, route="cdn", path="org/model/big.dat")
        self.assertEqual(req(self.cdn_url())[0], 200)
        self.assertEqual(req(url)[0], 503)

    def test_reset(self):
        url = self.cdn_url()
        self.sim.fault("reset", route="cdn", after_bytes=1000)
        line, h, body, end = raw_get(url)
        self.assertIn("200", line)
        self.assertEqual(int(h["content-length"]), len(MAIN["model.safetensors"]))
        self.assertEqual(end, "reset")
        self.assertLessEqual(len(body), 1000)
        self.assertEqual(self.sim.stats()["body_bytes"]["org/model/model.safetensors"], 1000)
        self.assertEqual(req(url)[0], 200)

    def test_stall_before_and_mid(self):
        url = self.cdn_url()
        self.sim.fault("stall", route="cdn", when="before", seconds=1.0)
        t = time.monotonic()
        st, h, b = req(url)
        self.assertGreaterEqual(time.monotonic() - t, 0.95)
        self.assertEqual(b, MAIN["model.safetensors"])
        self.sim.fault("stall", route="cdn", when="mid", after_bytes=1234, seconds=1.0)
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        conn.request("GET", u.path + "?" + u.query)
        r = conn.getresponse()
        t = time.monotonic()
        first = r.read(1234)
        t1 = time.monotonic() - t
        rest = r.read()
        t2 = time.monotonic() - t
        conn.close()
        self.assertEqual(first + rest, MAIN["model.safetensors"])
        self.assertLess(t1, 0.5)
        self.assertGreaterEqual(t2, 0.95)
        self.sim.fault("stall", route="api", when="before", seconds=0.2, then_close=True)
        line, h, body, end = raw_get(self.sim.hub + "/api/models/org/model")
        self.assertEqual((line, body), ("", b""))
        self.sim.fault("stall", route="cdn", when="mid", after_bytes=10, seconds=0.2,
                       then_close=True)
        line, h, body, end = raw_get(url)
        self.assertEqual((len(body), end), (10, "eof"))

    def test_stall_timeout_client(self):
        self.sim.fault("stall", route="resolve", seconds=3)
        with self.assertRaises(socket.timeout):
            req(self.res_url("config.json"), timeout=0.5)

    def test_corrupt(self):
        url = self.cdn_url()
        data = MAIN["model.safetensors"]
        self.sim.fault("corrupt", route="cdn", offset=10)
        st, h, b = req(url, headers={"Range": "bytes=100-199"})
        exp = bytearray(data[100:200])
        exp[10] ^= 0xFF
        self.assertEqual((st, b), (206, bytes(exp)))
        self.sim.fault("corrupt", route="resolve-cache")
        st, h, b, _ = fetch(self.sim, self.res_url("sub/dir/file.txt"))
        good = MAIN["sub/dir/file.txt"]
        diff = [i for i in range(len(good)) if good[i] != b[i]]
        self.assertEqual(diff, [len(good) // 2])
        # content-only kinds are not consumed by API responses
        self.sim.fault("corrupt")
        self.assertEqual(self.api_ok(), True)
        st, h, b, _ = fetch(self.sim, self.res_url("config.json"))
        self.assertNotEqual(b, MAIN["config.json"])

    def api_ok(self):
        st, h, d = jget(self.sim.hub + "/api/models/org/model")
        return st == 200 and d["sha"] == self.C_MAIN

    def test_ignore_range(self):
        url = self.cdn_url()
        self.sim.fault("ignore_range", route="cdn")
        st, h, b = req(url, headers={"Range": "bytes=0-9"})
        self.assertEqual((st, b), (200, MAIN["model.safetensors"]))
        self.assertNotIn("Content-Range", h)
        st, h, b = req(url, headers={"Range": "bytes=0-9"})
        self.assertEqual((st, len(b)), (206, 10))

    def test_short(self):
        url = self.cdn_url()
        self.sim.fault("short", route="cdn", after_bytes=100)
        line, h, body, end = raw_get(url)
        self.assertEqual(int(h["content-length"]), len(MAIN["model.safetensors"]))
        self.assertEqual((body, end), (MAIN["model.safetensors"][:100], "eof"))
        self.sim.fault("short", route="cdn", after_bytes=100)
        with self.assertRaises(http.client.IncompleteRead):
            req(url)

    def test_long(self):
        data = MAIN["model.safetensors"]
        url = self.cdn_url()
        self.sim.fault("long", route="cdn", extra=16)
        st, h, b = req(url, headers={"Range": "bytes=0-99"})
        self.assertEqual((st, len(b), h["Content-Range"]),
                         (206, 116, "bytes 0-115/%d" % len(data)))
        self.assertEqual(b, data[:116])
        self.sim.fault("long", route="cdn", extra=16, mode="framing")
        line, h, body, end = raw_get(url, {"Range": "bytes=0-99"})
        self.assertEqual(int(h["content-length"]), 100)
        self.assertEqual(body, data[:100] + b"X" * 16)

    def test_bad_content_range(self):
        data = MAIN["model.safetensors"]
        self.sim.fault("bad_content_range", route="cdn", delta=5)
        st, h, b = req(self.cdn_url(), headers={"Range": "bytes=1000-1099"})
        self.assertEqual((st, h["Content-Range"], b),
                         (206, "bytes 1005-1104/%d" % len(data), data[1000:1100]))

    def test_expire_urls(self):
        url = self.cdn_url()
        self.sim.fault("expire_urls", count=2)
        self.assertEqual(req(self.res_url("config.json"))[0], 307)  # not consumed by hub
        st, h, b = req(url)
        self.assertEqual(st, 403)
        self.assertIn(b"AccessDenied", b)
        self.assertEqual(req(url)[0], 403)
        self.assertEqual(req(url)[0], 200)

    def test_drop_headers(self):
        self.sim.fault("drop_headers", route="resolve", headers=["X-Repo-Commit", "X-Linked-Size"])
        st, h, b = req(self.res_url("model.safetensors"))
        self.assertEqual(st, 302)
        self.assertNotIn("X-Repo-Commit", h)
        self.assertNotIn("X-Linked-Size", h)
        self.assertIn("X-Linked-Etag", h)
        st, h, b = req(self.res_url("model.safetensors"))
        self.assertIn("X-Repo-Commit", h)

    def test_hostile_tree(self):
        bad = [{"type": "file", "oid": "zz", "size": -1, "path": "../../etc/passwd"},
               {"type": "weird"}, "not-an-object"]
        self.sim.fault("hostile_tree", path="org/model", entries=bad)
        st, h, d = jget(self.sim.hub + "/api/models/org/model/tree/main")
        self.assertEqual(d[-3:], bad)
        self.assertEqual(len(d), len({p.split("/")[0] for p in MAIN}) + 3)
        st, h, d = jget(self.sim.hub + "/api/models/org/model/tree/main")
        self.assertNotIn("not-an-object", d)

    def test_reset_on_api(self):
        self.sim.fault("reset", route="api", after_bytes=5)
        line, h, body, end = raw_get(self.sim.hub + "/api/models/org/model")
        self.assertEqual((len(body) <= 5, end), (True, "reset"))


# ---------------------------------------------------------------- network behaviour
class TestNetwork(Base):
    def test_offline_same_ports(self):
        hub_port, cdn_port = self.sim.hub_port, self.sim.cdn_port
        st, h, b = req(self.res_url("model.safetensors"))
        cdn = h["Location"]
        conn = http.client.HTTPConnection("127.0.0.1", hub_port, timeout=5)
        conn.request("GET", "/api/models/org/model")
        self.assertEqual(conn.getresponse().read()[:1], b"{")
        self.sim.offline(True)
        try:
            for port in (hub_port, cdn_port):
                with self.assertRaises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
            with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
                conn.request("GET", "/api/models/org/model")
                conn.getresponse().read()
            self.assertIn("requests", self.sim.stats())    # control still answers
        finally:
            conn.close()
            self.sim.offline(False)
        self.assertEqual(req(self.sim.hub + "/api/models/org/model")[0], 200)
        self.assertEqual(req(cdn)[0], 200)   # same port, URL still valid

    def test_latency(self):
        self.sim.configure(latency_ms=300)
        t = time.monotonic()
        self.assertEqual(req(self.sim.hub + "/api/models/org/model")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.29)
        t = time.monotonic()
        self.sim.stats()     # control is never delayed
        self.assertLess(time.monotonic() - t, 0.25)

    def test_latency_flag(self):
        with HubSim.start(self.tmp, latency_ms=200) as s2:
            t = time.monotonic()
            req(s2.hub + "/api/models/org/model")
            self.assertGreaterEqual(time.monotonic() - t, 0.19)

    def test_conn_rate(self):
        size = 3 * 1000 * 1000
        make_repo(self.tmp, "org/rate", {"a.bin": rnd(size, "ra"), "b.bin": rnd(size, "rb")})
        urls = []
        for p in ("a.bin", "b.bin"):
            st, h, b = req(self.res_url(p, rid="org/rate"))
            urls.append(h["Location"])
        mbps = 80   # = 10 MB/s per connection
        self.sim.configure(conn_rate_mbps=mbps)
        t = time.monotonic()
        st, h, b = req(urls[0])
        single = size / (time.monotonic() - t)
        self.assertEqual(len(b), size)
        res = {}

        def get(i):
            res[i] = req(urls[i])[2]
        t = time.monotonic()
        th = [threading.Thread(target=get, args=(i,)) for i in range(2)]
        [x.start() for x in th]
        [x.join() for x in th]
        double = 2 * size / (time.monotonic() - t)
        self.assertEqual([len(res[0]), len(res[1])], [size, size])
        cap = mbps * 125000
        print("\n  conn_rate %d Mbps (cap %.1f MB/s): one conn %.2f MB/s, two conns %.2f MB/s"
              % (mbps, cap / 1e6, single / 1e6, double / 1e6))
        self.assertLess(single, cap * 1.25)
        self.assertGreater(single, cap * 0.5)
        self.assertGreater(double / single, 1.5)

    def test_sigterm_clean_exit(self):
        s2 = HubSim.start(self.tmp)
        s2.proc.terminate()
        self.assertEqual(s2.proc.wait(10), 0)
        s2.stop()

    def test_ready_file_and_fixed_ports(self):
        rf = os.path.join(self.tmp, ".hubsim-ready.json")
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        with HubSim.start(self.tmp, port=port, ready_file=rf) as s2:
            with open(rf) as f:
                info = json.load(f)
            self.assertEqual(info["hub"], "http://127.0.0.1:%d" % port)
            self.assertEqual(info["cdn"], s2.cdn)
            self.assertEqual(info["pid"], s2.pid)


# ---------------------------------------------------------------- mutable repos
class TestOutageModes(Base):
    """POST /_sim/outage: whole-origin failure modes, per role, counted."""

    def tearDown(self):
        self.sim.outage("none")

    def test_each_mode_on_the_hub(self):
        url = self.res_url("config.json")
        self.sim.outage("close", role="hub")
        line, _, body, end = raw_get(url)
        self.assertEqual((line, body), ("", b""))     # no status line at all
        self.sim.outage("reset_after_headers", role="hub")
        line, hd, body, end = raw_get(url)
        self.assertTrue(line.startswith("HTTP/1.1 307"), line)  # to resolve-cache
        self.assertEqual((body, end), (b"", "reset"))
        self.sim.outage("503", role="hub")
        self.assertEqual(req(url)[0], 503)
        self.sim.outage("429", role="hub")
        st, h, _ = req(url)
        self.assertEqual((st, h["Retry-After"]), (429, "3600"))
        self.sim.outage("none", role="hub")
        self.assertEqual(req(url)[0], 307)
        hits = self.sim.stats()["outage_hits"]
        for m in ("close", "reset_after_headers", "503", "429"):
            self.assertEqual(hits.get("hub:" + m), 1, hits)

    def test_cdn_only_and_trickle(self):
        st, h, _ = req(self.res_url("model.safetensors"))
        cdn = h["Location"]
        self.sim.outage("503", role="cdn")
        self.assertEqual(req(self.res_url("model.safetensors"))[0], 302)  # hub fine
        self.assertEqual(req(cdn)[0], 503)
        self.sim.outage("trickle", role="cdn", trickle_bps=40000)
        t0 = time.monotonic()
        st, _, body = req(cdn, headers={"Range": "bytes=0-79999"})
        took = time.monotonic() - t0
        self.assertEqual((st, len(body)), (206, 80000))
        self.assertGreater(took, 1.2)   # 80 kB at 40 kB/s (16 kB burst)
        self.assertEqual(self.sim.stats()["outage_hits"].get("cdn:trickle"), 1)

    def test_bad_mode_is_400(self):
        with self.assertRaises(HubSimError):
            self.sim.outage("sometimes")


class TestRescanAndMoves(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hubsim-mut-")
        self.sim = HubSim.start(self.tmp)

    def tearDown(self):
        self.sim.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def info(self, rev=None):
        suffix = "" if rev is None else "/revision/" + rev
        return jget(self.sim.hub + "/api/models/o/r" + suffix)

    def test_rescan_sees_new_files(self):
        f1 = {"a.txt": b"one"}
        make_repo(self.tmp, "o/r", f1)
        st, h, d = self.info()
        c1 = d["sha"]
        self.assertEqual(c1, expected_commit("model", "o/r", f1))
        make_repo(self.tmp, "o/r", {"new/b.txt": b"two"})
        self.sim.rescan()
        st, h, d = self.info()
        f2 = {"a.txt": b"one", "new/b.txt": b"two"}
        self.assertEqual(d["sha"], expected_commit("model", "o/r", f2))
        self.assertIn("new/b.txt", [s["rfilename"] for s in d["siblings"]])
        # a new repo appears without rescan too
        make_repo(self.tmp, "o/r2", {"x": b"x"})
        self.assertEqual(jget(self.sim.hub + "/api/models/o/r2")[0], 200)

    def test_branch_move_keeps_old_commit(self):
        old = {"w.gguf": rnd(3000, "old"), "c.txt": b"old"}
        new = {"w.gguf": rnd(3000, "new"), "c.txt": b"new"}
        make_repo(self.tmp, "o/r", old)
        c_old = self.info()[2]["sha"]
        make_repo(self.tmp, "o/r", new, folder="main-v2")
        set_repo_json(self.tmp, "o/r", branch_dirs={"main": "main-v2"})
        self.sim.rescan()
        st, h, d = self.info()
        c_new = d["sha"]
        self.assertEqual(c_new, expected_commit("model", "o/r", new))
        st, h, refs = jget(self.sim.hub + "/api/models/o/r/refs")
        self.assertEqual([b["name"] for b in refs["branches"]], ["main"])
        # the old commit still resolves and serves its bytes
        self.assertEqual(self.info(c_old)[2]["sha"], c_old)
        for p in old:
            st, h, b, _ = fetch(self.sim, "%s/o/r/resolve/%s/%s" % (self.sim.hub, c_old, p))
            self.assertEqual((st, b), (200, old[p]))
            st, h, b, _ = fetch(self.sim, "%s/o/r/resolve/main/%s" % (self.sim.hub, p))
            self.assertEqual(b, new[p])
        # delete the old folder: commit metadata still known, content gone
        shutil.rmtree(os.path.join(repo_dir(self.tmp, "o/r"), "main"))
        self.sim.rescan()
        st, h, b = req("%s/api/resolve-cache/models/o/r/%s/c.txt" % (self.sim.hub, c_old))
        self.assertEqual(st, 404)
        st, h, b = req("%s/o/r/resolve/%s/w.gguf" % (self.sim.hub, c_old))
        self.assertEqual((st, h["X-Error-Code"], h["X-Repo-Commit"]),
                         (404, "EntryNotFound", c_old))
        self.assertEqual(self.info(c_old)[2]["sha"], c_old)

    def test_lfs_config(self):
        files = {"a.txt": b"x" * 100, "b.custom": b"y" * 10, "c.bin": b"z"}
        make_repo(self.tmp, "o/r", files, lfs_extensions=[".custom"], lfs_min_size=50)
        st, h, d = jget(self.sim.hub + "/api/models/o/r/tree/main")
        lfs = {e["path"]: "lfs" in e for e in d}
        self.assertEqual(lfs, {"a.txt": True, "b.custom": True, "c.bin": False})
        self.assertEqual(self.info()[2]["sha"],
                         expected_commit("model", "o/r", files, 50, (".custom",)))

    def test_default_branch_and_tag_to_commit(self):
        make_repo(self.tmp, "o/r", {"a": b"1"}, branch="release")
        c = expected_commit("model", "o/r", {"a": b"1"})
        set_repo_json(self.tmp, "o/r", default_branch="release", tags={"t": c})
        self.sim.rescan()
        self.assertEqual(self.info()[2]["sha"], c)
        self.assertEqual(self.info("t")[2]["sha"], c)
        self.assertEqual(self.info("main")[0], 404)


# ---------------------------------------------------------------- throughput
class TestThroughput(unittest.TestCase):
    SIZE = 512 << 20

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hubsim-big-")
        block = os.urandom(1 << 20)
        d = os.path.join(repo_dir(cls.tmp, "org/big"), "main")
        os.makedirs(d)
        cls.path = os.path.join(d, "big.safetensors")
        h = hashlib.sha256()
        with open(cls.path, "wb") as f:
            for i in range(cls.SIZE >> 20):
                b = block[:-8] + i.to_bytes(8, "little")
                f.write(b)
                h.update(b)
        cls.sha256 = h.hexdigest()
        cls.sim = HubSim.start(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_unshaped_throughput(self):
        st, h, b = req(self.sim.hub + "/org/big/resolve/main/big.safetensors", timeout=120)
        self.assertEqual(st, 302)
        self.assertEqual(h["X-Linked-Etag"], '"%s"' % self.sha256)
        u = urllib.parse.urlsplit(h["Location"])
        buf = bytearray(self.SIZE)
        mv = memoryview(buf)
        best = 0.0
        for _ in range(2):
            s = socket.create_connection((u.hostname, u.port), timeout=60)
            s.sendall(("GET %s?%s HTTP/1.1\r\nHost: x\r\n\r\n" % (u.path, u.query)).encode())
            t = time.monotonic()
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
            head, _, rest = head.partition(b"\r\n\r\n")
            self.assertIn(b" 200 ", head.split(b"\r\n")[0] + b" ")
            mv[:len(rest)] = rest
            got = len(rest)
            while got < self.SIZE:
                n = s.recv_into(mv[got:], min(self.SIZE - got, 8 << 20))
                if n == 0:
                    break
                got += n
            dt = time.monotonic() - t
            s.close()
            self.assertEqual(got, self.SIZE)
            best = max(best, self.SIZE / dt / 1e9)
        self.assertEqual(hashlib.sha256(buf).hexdigest(), self.sha256)
        msg = "\n  unshaped 512 MiB over one connection (python recv_into): %.2f GB/s" % best
        if shutil.which("curl"):
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}",
                                  h["Location"]], capture_output=True, text=True, timeout=120)
            if out.returncode == 0:
                msg += "; curl: %.2f GB/s" % (float(out.stdout) / 1e9)
        print(msg)
        s = self.sim.stats()
        self.assertEqual(s["body_bytes"]["org/big/big.safetensors"],
                         self.SIZE * (3 if shutil.which("curl") else 2))


# ---------------------------------------------------------------- xet
class TestXet(unittest.TestCase):
    """Repos with "xet": true publish real xetHash values (computed by
    modelfs-xethash), checked here against xet-core's own code (the WASM in
    @huggingface/hub, tests/xetref/xetref.mjs)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hubsim-xet-")
        cls.big = rnd(3 * 1024 * 1024 + 77, "xet-big")
        cls.small = rnd(5000, "xet-small")
        make_repo(cls.tmp, "org/xet", {"model.safetensors": cls.big, "w/a.bin": cls.small,
                                       "config.json": b"{}"}, xet=True)
        make_repo(cls.tmp, "org/lfs", {"model.safetensors": cls.big}, xet=False)
        make_repo(cls.tmp, "org/legacy", {"model.safetensors": cls.big})
        cls.sim = HubSim.start(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def reference(self, data):
        p = os.path.join(self.tmp, "ref-input")
        with open(p, "wb") as f:
            f.write(data)
        out = subprocess.run(["node", os.path.join(SRC, "tests", "xetref", "xetref.mjs"), p],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)["xetHash"]

    def test_tree_and_resolve_carry_real_xet_hash(self):
        tree = jget("%s/api/models/org/xet/tree/main?recursive=true" % self.sim.hub)[2]
        by = {e["path"]: e for e in tree}
        want_big, want_small = self.reference(self.big), self.reference(self.small)
        self.assertEqual(by["model.safetensors"]["xetHash"], want_big)
        self.assertEqual(by["w/a.bin"]["xetHash"], want_small)
        self.assertNotIn("xetHash", by["config.json"])
        st, h, _ = req("%s/org/xet/resolve/main/model.safetensors" % self.sim.hub, "HEAD")
        self.assertEqual(st, 302)
        self.assertEqual(h["X-Xet-Hash"], want_big)
        st, h, b = req("%s/api/models/org/xet/paths-info/main" % self.sim.hub, "POST",
                       {"Content-Type": "application/x-www-form-urlencoded"}, "paths=w/a.bin")
        self.assertEqual(json.loads(b)[0]["xetHash"], want_small)

    def test_non_xet_repos(self):
        tree = jget("%s/api/models/org/lfs/tree/main" % self.sim.hub)[2]
        self.assertNotIn("xetHash", tree[0])
        st, h, _ = req("%s/org/lfs/resolve/main/model.safetensors" % self.sim.hub, "HEAD")
        self.assertNotIn("X-Xet-Hash", h)
        # Unset: the old fake value, which is not the file's real xetHash.
        tree = jget("%s/api/models/org/legacy/tree/main" % self.sim.hub)[2]
        self.assertRegex(tree[0]["xetHash"], r"^[0-9a-f]{64}$")
        self.assertNotEqual(tree[0]["xetHash"], self.reference(self.big))


if __name__ == "__main__":
    unittest.main(verbosity=2)
