"""test_hfcache.py - the mount as a huggingface_hub cache (issue 14, part 1).

What it covers, against the hub simulator:
- models--<org>--<name>/ and datasets--<org>--<name>/ at the root: looked up
  on demand, listed by readdir next to the orgs once the cache knows them;
- refs/<branch> holds the 40-hex commit (no newline), refs/refs/pr/1 nests;
- snapshots/<commit>/<path> are symlinks to ../../blobs/<etag> with one more
  ../ per directory level, for any commit; blobs/<etag> reads as the file
  (sha256 for LFS files, git sha1 otherwise); everything is read-only;
- Hugging Face's own JS client (@huggingface/hub, tests/hfjs): with the mount
  as cacheDir, downloadFileToCacheDir returns a path under the mount and
  downloads nothing (revision = commit: no request at all; revision "main":
  one paths-info call, no file bytes); scanCacheDir lists the repos.
Needs tests/hfjs/node_modules (tests/install-deps.sh runs `npm ci` there);
without it the JS tests FAIL saying so.
"""
import errno
import hashlib
import json
import os
import shutil
import stat
import subprocess
import threading
import time
import urllib.request

from harness import SRC, MountCase, make_repo, rand_bytes, read_file, wait_until

HFJS_DIR = os.path.join(SRC, "tests", "hfjs")
HFJS = os.path.join(HFJS_DIR, "hfjs.mjs")
MiB = 1 << 20


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hfjs_problem():
    if shutil.which("node") is None:
        return "node is not installed (tests/hfjs needs node >= 18)"
    if not os.path.isdir(os.path.join(HFJS_DIR, "node_modules", "@huggingface", "hub")):
        return ("tests/hfjs/node_modules is missing: run `cd tests/hfjs && npm ci` "
                "(tests/install-deps.sh does)")
    return None


def hfjs(*args, timeout=120):
    """Runs tests/hfjs/hfjs.mjs; returns its JSON answer."""
    r = subprocess.run(["node", HFJS] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, cwd=HFJS_DIR, stdin=subprocess.DEVNULL,
                       env={k: v for k, v in os.environ.items()
                            if not k.startswith("HF_") and k != "HUGGINGFACE_HUB_CACHE"})
    lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if not lines:
        raise AssertionError("hfjs %s: no answer (rc %d): %s" % (args[0], r.returncode, r.stderr))
    return json.loads(lines[-1])


class HfCacheBase(MountCase):
    def setUp(self):
        super().setUp()
        self.files = {
            "config.json": b'{"architectures": ["LlamaForCausalLM"]}\n',
            "model.safetensors": rand_bytes(3 * MiB + 17, seed=14),
            "sub/dir/notes.txt": b"hello\n",
            "tokenizer.json": b'{"v": 1}\n',
        }
        make_repo(self.root, "TheOrg/tiny", self.files, tags={"v1.0": "main"})
        make_repo(self.root, "TheOrg/tiny", {"config.json": b'{"pr": 1}\n'}, branch="refs/pr/1")
        make_repo(self.root, "DataOrg/set", {"data.csv": b"a,b\n1,2\n"}, repo_type="dataset")
        self.start_sim()

    def api(self, path):
        with urllib.request.urlopen(self.sim.hub + path) as r:
            return json.loads(r.read())

    def commit(self, rev="main", rid="TheOrg/tiny", t="models"):
        return self.api("/api/%s/%s/revision/%s" % (t, rid, rev.replace("/", "%2F")))["sha"]

    def etag(self, path):
        data = self.files[path]
        if path.endswith(".safetensors"):
            return hashlib.sha256(data).hexdigest()
        return git_sha1(data)

    def file_bytes(self):
        st = self.sim.stats()
        return sum(v for k, v in st["body_bytes"].items())


class Layout(HfCacheBase):
    def setUp(self):
        super().setUp()
        self.mp = self.mount()
        self.repo = os.path.join(self.mp, "models--TheOrg--tiny")

    def test_concurrent_readers_of_a_ref_file(self):
        """Eight threads open, read and close refs/main 100 times each: every
        read is the commit and the daemon lives (a ref read answered from
        the open file's memory let a RELEASE on another worker free it under
        the reply; the sanitized daemon aborted 1 run in 1 here)."""
        ref = os.path.join(self.repo, "refs", "main")
        want = self.commit().encode()
        bad = []

        def reader():
            try:
                for _ in range(100):
                    got = read_file(ref)
                    if got != want:
                        bad.append(got)
            except OSError as e:
                bad.append(e)
        ts = [threading.Thread(target=reader) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(bad, [])
        self.assertEqual(sorted(os.listdir(os.path.join(self.repo, "refs")))[:1], ["main"])

    def test_refs_hold_the_commit_without_newline(self):
        c = self.commit()
        self.assertEqual(read_file(os.path.join(self.repo, "refs", "main")), c.encode())
        self.assertEqual(read_file(os.path.join(self.repo, "refs", "v1.0")), c.encode())
        pr = self.commit("refs/pr/1")
        self.assertNotEqual(pr, c)
        self.assertEqual(read_file(os.path.join(self.repo, "refs", "refs", "pr", "1")),
                         pr.encode())
        st = os.stat(os.path.join(self.repo, "refs", "main"))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_size, 40)
        self.assertOSError(errno.ENOENT, os.stat, os.path.join(self.repo, "refs", "nobranch"))
        self.assertOSError(errno.ENOENT, os.stat, os.path.join(self.repo, "refs", c))
        self.assertIn("main", os.listdir(os.path.join(self.repo, "refs")))
        self.assertIn("refs", os.listdir(os.path.join(self.repo, "refs")))

    def test_snapshots_link_to_blobs_like_huggingface_hub(self):
        c = self.commit()
        snap = os.path.join(self.repo, "snapshots", c)
        self.assertEqual(sorted(os.listdir(snap)),
                         ["config.json", "model.safetensors", "sub", "tokenizer.json"])
        self.assertEqual(os.readlink(os.path.join(snap, "config.json")),
                         "../../blobs/" + self.etag("config.json"))
        self.assertEqual(os.readlink(os.path.join(snap, "model.safetensors")),
                         "../../blobs/" + self.etag("model.safetensors"))
        self.assertEqual(os.readlink(os.path.join(snap, "sub", "dir", "notes.txt")),
                         "../../../../blobs/" + self.etag("sub/dir/notes.txt"))
        for p, data in self.files.items():
            full = os.path.join(snap, *p.split("/"))
            self.assertTrue(stat.S_ISLNK(os.lstat(full).st_mode), p)
            self.assertEqual(os.lstat(full).st_size, len(os.readlink(full)))
            self.assertEqual(os.path.realpath(full),
                             os.path.join(os.path.realpath(self.repo), "blobs", self.etag(p)))
            self.assertFileEqual(full, data)
        self.assertIn(c, os.listdir(os.path.join(self.repo, "snapshots")))
        blobs = os.listdir(os.path.join(self.repo, "blobs"))
        self.assertEqual(sorted(blobs), sorted(self.etag(p) for p in self.files))
        st = os.stat(os.path.join(self.repo, "blobs", self.etag("model.safetensors")))
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(st.st_size, len(self.files["model.safetensors"]))

    def test_any_commit_and_datasets(self):
        pr = self.commit("refs/pr/1")
        snap = os.path.join(self.repo, "snapshots", pr)
        self.assertFileEqual(os.path.join(snap, "config.json"), b'{"pr": 1}\n')
        self.assertOSError(errno.ENOENT, os.stat,
                           os.path.join(self.repo, "snapshots", "0" * 40))
        self.assertOSError(errno.ENOENT, os.stat,
                           os.path.join(self.repo, "snapshots", pr.upper()))
        self.assertOSError(errno.ENOENT, os.stat,
                           os.path.join(self.repo, "blobs", "ab" * 20))
        ds = os.path.join(self.mp, "datasets--DataOrg--set")
        c = self.commit(rid="DataOrg/set", t="datasets")
        self.assertEqual(read_file(os.path.join(ds, "refs", "main")), c.encode())
        self.assertFileEqual(os.path.join(ds, "snapshots", c, "data.csv"), b"a,b\n1,2\n")
        self.assertOSError(errno.ENOENT, os.stat, os.path.join(self.mp, "models--TheOrg--nope"))
        self.assertOSError(errno.ENOENT, os.stat, os.path.join(self.mp, "models--TheOrg"))
        self.assertOSError(errno.ENOENT, os.stat, os.path.join(self.mp, "models--a--b--c"))
        root = os.listdir(self.mp)
        for name in ("TheOrg", "datasets", "models--TheOrg--tiny", "datasets--DataOrg--set"):
            self.assertIn(name, root)
        self.assertEqual(sorted(os.listdir(self.repo)), ["blobs", "refs", "snapshots"])

    def test_read_only(self):
        c = self.commit()
        snap = os.path.join(self.repo, "snapshots", c)
        self.assertOSError(errno.EROFS, os.mkdir, os.path.join(self.repo, ".locks"))
        self.assertOSError(errno.EROFS, os.symlink, "x", os.path.join(snap, "new"))
        self.assertOSError(errno.EROFS, open, os.path.join(self.repo, "refs", "main"), "wb")
        self.assertOSError(errno.EROFS, open,
                           os.path.join(self.repo, "blobs", self.etag("config.json")), "ab")
        # hf_hub_download makes .locks/<repo folder> (exist_ok) before it
        # returns a snapshot file it already has: that must not fail
        locks = os.path.join(self.mp, ".locks", "models--TheOrg--tiny")
        os.makedirs(locks, exist_ok=True)
        os.makedirs(os.path.join(self.repo, "blobs"), exist_ok=True)
        os.makedirs(os.path.join(self.repo, "snapshots", c, "sub", "dir"), exist_ok=True)
        self.assertEqual(os.listdir(locks), [])
        self.assertOSError(errno.EROFS, open, os.path.join(locks, "x.lock"), "w")
        self.assertNotIn(".locks", os.listdir(self.mp))


class MovingRef(MountCase):
    def test_refs_follow_ref_ttl(self):
        from harness import set_repo_json
        make_repo(self.root, "Org/m", {"v.txt": b"one\n"})
        make_repo(self.root, "Org/m", {"v.txt": b"two\n"}, folder="main-v2")
        self.start_sim()
        # a TTL long enough that a loaded machine still reads twice within it
        mp = self.mount(args=["--ref-ttl", "4"])
        ref = os.path.join(mp, "models--Org--m", "refs", "main")
        old = read_file(ref).decode()
        set_repo_json(self.root, "Org/m", branch_dirs={"main": "main-v2"})
        self.sim.rescan()
        self.assertEqual(read_file(ref).decode(), old, "within the TTL: the known commit")
        time.sleep(4.5)
        new = read_file(ref).decode()
        self.assertNotEqual(new, old)
        snap = os.path.join(mp, "models--Org--m", "snapshots")
        self.assertFileEqual(os.path.join(snap, new, "v.txt"), b"two\n")
        self.assertFileEqual(os.path.join(snap, old, "v.txt"), b"one\n")
        self.assertIn(new, os.listdir(snap))


class HuggingFaceJs(HfCacheBase):
    def setUp(self):
        super().setUp()
        problem = hfjs_problem()
        if problem:
            self.fail(problem)
        self.mp = self.mount()

    def test_download_to_cache_dir_downloads_nothing(self):
        c = self.commit()
        # warm the catalog the way a first user would (listing the commit)
        os.listdir(os.path.join(self.mp, "TheOrg", "tiny@" + c))
        self.sim.reset_stats()
        for path in self.files:
            r = hfjs("download", self.sim.hub, self.mp, "TheOrg/tiny", path, c)
            self.assertNotIn("error", r, r)
            want = os.path.join(self.mp, "models--TheOrg--tiny", "snapshots", c, path)
            self.assertEqual(r["path"], want)
            self.assertFileEqual(r["path"], self.files[path])
        total = sum(len(v) for v in self.files.values())
        wait_until(lambda: self.sim.stats()["body_bytes_total"] >= total)
        st = self.sim.stats()
        self.assertEqual(st["body_bytes_total"], total,
                         "the mount itself fetched each file once, nothing more")
        self.assertEqual(st["requests"].get("api", 0), 0,
                         "revision = commit: the JS client asked the hub nothing")

    def test_download_main_asks_paths_info_only(self):
        c = self.commit()
        os.listdir(os.path.join(self.mp, "TheOrg", "tiny@" + c))
        for path in self.files:  # bytes into the block cache first
            read_file(os.path.join(self.mp, "TheOrg", "tiny@" + c, path))
        # the simulator counts a body after sending it: let the count land
        total = sum(len(v) for v in self.files.values())
        self.assertTrue(wait_until(lambda: self.sim.stats()["body_bytes_total"] >= total))
        self.sim.reset_stats()
        for path in self.files:
            r = hfjs("download", self.sim.hub, self.mp, "TheOrg/tiny", path, "main")
            self.assertNotIn("error", r, r)
            self.assertTrue(r["path"].startswith(self.mp + os.sep), r["path"])
            self.assertFileEqual(r["path"], self.files[path])
        st = self.sim.stats()
        by = st["requests_by_path"]
        self.assertEqual(sum(v for k, v in by.items() if "paths-info" in k), len(self.files), by)
        file_bytes = sum(v for k, v in st["body_bytes"].items() if "paths-info" not in k)
        self.assertEqual(file_bytes, 0, st["body_bytes"])
        print("hfjs revision=main: %d paths-info calls, %d file bytes from the hub"
              % (len(self.files), file_bytes))

    def test_scan_cache_dir_lists_repos(self):
        c = self.commit()
        read_file(os.path.join(self.mp, "models--TheOrg--tiny", "refs", "main"))
        os.listdir(os.path.join(self.mp, "TheOrg", "tiny@" + c))
        self.sim.reset_stats()
        r = hfjs("scan", self.mp, timeout=300)
        self.assertNotIn("error", r, r)
        repos = {x["id"]: x for x in r["repos"]}
        self.assertIn("TheOrg/tiny", repos, r)
        tiny = repos["TheOrg/tiny"]
        self.assertEqual(tiny["type"], "model")
        revs = {v["commit"]: v for v in tiny["revisions"]}
        self.assertIn(c, revs)
        self.assertIn("main", revs[c]["refs"])
        top = {os.path.basename(f["path"]): f for f in revs[c]["files"]}
        self.assertEqual(sorted(top), ["config.json", "model.safetensors", "tokenizer.json"])
        self.assertEqual(top["model.safetensors"]["size"], len(self.files["model.safetensors"]))
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0, "a scan reads no file bytes")


class OrgListing(HfCacheBase):
    """ls <mount>/<org>/ lists the org's repos from GET /api/{t}s?author=
    (issue 14, part 3): every page, cached for --ref-ttl, private repos only
    with a token that sees them, what the cache knows when the hub is gone."""

    def setUp(self):
        super().setUp()
        for n in ("alpha", "beta", "gamma", "delta"):
            make_repo(self.root, "TheOrg/" + n, {"f.txt": n.encode()})
        make_repo(self.root, "TheOrg/secret", {"s.txt": b"s"}, private=True, tokens=["hf_bob"])
        from harness import write_tokens
        write_tokens(self.root, {"hf_bob": "bob"})
        self.sim.rescan()
        self.sim.configure(list_page=2)

    def repos(self, d):
        return sorted(x for x in os.listdir(d) if "@" not in x)

    def listing_requests(self):
        by = self.sim.stats()["requests_by_path"]
        return sum(v for k, v in by.items() if k.startswith("api:") and "/" not in k[4:])

    def test_all_pages_cached_for_ref_ttl_private_with_token(self):
        mp = self.mount(args=["--ref-ttl", "5"], env={"HF_TOKEN": "hf_bob"})
        org = os.path.join(mp, "TheOrg")
        os.stat(org)
        self.sim.reset_stats()
        want = ["alpha", "beta", "delta", "gamma", "secret", "tiny"]
        self.assertEqual(self.repos(org), want)
        api = self.sim.stats()["requests"]["api"]
        self.assertEqual(api, 3, "6 repos at 2 per page: 3 pages")
        self.assertEqual(self.repos(org), want)
        self.assertEqual(self.sim.stats()["requests"]["api"], api, "cached for --ref-ttl")
        time.sleep(5.5)
        self.assertEqual(self.repos(org), want)
        self.assertEqual(self.sim.stats()["requests"]["api"], api + 3, "asked again after the TTL")
        self.assertEqual(self.repos(os.path.join(mp, "datasets", "DataOrg")), ["set"])
        print("org listing: %d repos, 3 pages of 2 per hub listing; 3 ls within and "
              "after --ref-ttl made %d listing requests" % (len(want), api + 3))

    def test_private_hidden_without_token(self):
        mp = self.mount()
        self.assertEqual(self.repos(os.path.join(mp, "TheOrg")),
                         ["alpha", "beta", "delta", "gamma", "tiny"])

    def test_hub_unreachable_lists_what_the_cache_knows(self):
        mp = self.mount(args=["--ref-ttl", "1"])
        os.readlink(os.path.join(mp, "TheOrg", "beta"))
        self.umount(mp)
        self.sim.offline()
        mp = self.mount(name="mnt2")
        self.assertEqual(self.repos(os.path.join(mp, "TheOrg")), ["beta"])


def tree_state(root):
    """Everything about a directory tree an import could change: per path,
    type, size, mode, mtime and content digest (or link target)."""
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            p = os.path.join(dp, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p), st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", st.st_mode, st.st_mtime_ns)
            else:
                out[rel] = ("f", st.st_size, st.st_mode, st.st_mtime_ns,
                            hashlib.sha256(read_file(p)).hexdigest())
    return out


class Import(HfCacheBase):
    """modelfs import (issue 14, part 2): a real huggingface_hub cache built
    by @huggingface/hub's snapshotDownload against the simulator, imported
    with the hub offline, read byte-exact from an --offline mount with zero
    bytes from the simulator; the source is never modified."""

    def setUp(self):
        super().setUp()
        problem = hfjs_problem()
        if problem:
            self.fail(problem)
        self.hf = os.path.join(self.tmp, "hfhub")
        r = hfjs("snapshot", self.sim.hub, self.hf, "TheOrg/tiny", "main")
        self.assertNotIn("error", r, r)
        r = hfjs("snapshot", self.sim.hub, self.hf, "DataOrg/set", "main", "dataset")
        self.assertNotIn("error", r, r)
        self.c = self.commit()
        self.cds = self.commit(rid="DataOrg/set", t="datasets")

    def cache_blob_files(self, cache="cache"):
        d = os.path.join(self.tmp, cache, "blobs")
        return [f for _, _, fns in os.walk(d) for f in fns if not f.endswith(".rec")] \
            if os.path.isdir(d) else []

    def test_import_offline_then_read_offline_byte_exact(self):
        before = tree_state(self.hf)
        self.assertIn(os.path.join("models--TheOrg--tiny", "refs", "main"), before)
        self.sim.offline()
        self.sim.reset_stats()
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"),
                             "--endpoint", self.sim.hub, self.hf, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("5 files adopted", r.stdout)
        self.assertIn("0 corrupt", r.stdout)
        self.assertIn("verified, adopted", r.stderr)
        self.assertIn("recorded from the folder", r.stderr)
        self.assertEqual(tree_state(self.hf), before, "the source cache was modified")
        mp = self.mount(args=["--offline"])
        for p, data in self.files.items():
            self.assertFileEqual(os.path.join(mp, "TheOrg", "tiny@" + self.c, p), data)
            self.assertFileEqual(os.path.join(mp, "models--TheOrg--tiny", "snapshots", self.c,
                                              p), data)
        self.assertEqual(os.readlink(os.path.join(mp, "TheOrg", "tiny@main")), "tiny@" + self.c)
        self.assertEqual(os.readlink(os.path.join(mp, "TheOrg", "tiny")), "tiny@" + self.c)
        self.assertFileEqual(os.path.join(mp, "datasets", "DataOrg", "set@" + self.cds,
                                          "data.csv"), b"a,b\n1,2\n")
        self.assertEqual(sorted(os.listdir(os.path.join(mp, "TheOrg", "tiny@" + self.c))),
                         ["config.json", "model.safetensors", "sub", "tokenizer.json"])
        st = self.sim.stats()
        self.assertEqual(st["body_bytes_total"], 0)
        print("import: %d bytes imported, %d bytes from the simulator during import + "
              "offline reads" % (sum(len(v) for v in self.files.values()) + 8,
                                 st["body_bytes_total"]))
        # a second import finds everything cached
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"), "--offline",
                             self.hf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 files adopted", r.stdout)
        self.assertIn("5 already cached", r.stdout)

    def test_dry_run_stores_nothing(self):
        before = tree_state(self.hf)
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"), "--offline",
                             "--dry-run", self.hf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("dry run: 5 files would be adopted", r.stdout)
        self.assertIn("would adopt", r.stderr)
        self.assertEqual(self.cache_blob_files(), [])
        self.assertEqual(tree_state(self.hf), before)

    def test_corrupt_blob_reported_and_skipped(self):
        bad = os.path.join(self.hf, "models--TheOrg--tiny", "blobs",
                           self.etag("model.safetensors"))
        with open(bad, "r+b") as f:
            f.seek(12345)
            b = f.read(1)
            f.seek(12345)
            f.write(bytes([b[0] ^ 0x40]))
        before = tree_state(self.hf)
        self.sim.offline()
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"), "--offline",
                             self.hf)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("CORRUPT", r.stderr)
        self.assertIn(self.etag("model.safetensors"), r.stderr)
        self.assertIn("4 files adopted", r.stdout)
        self.assertIn("1 corrupt", r.stdout)
        self.assertEqual(tree_state(self.hf), before)
        mp = self.mount(args=["--offline"])
        snap = os.path.join(mp, "TheOrg", "tiny@" + self.c)
        self.assertFileEqual(os.path.join(snap, "config.json"), self.files["config.json"])
        self.assertOSError(errno.EIO, read_file, os.path.join(snap, "model.safetensors"))

    def test_partial_snapshot_completed_by_the_hub_later(self):
        """A snapshot holding one file of its commit, imported offline, is what
        the commit is known to have offline; the first mount that reaches the
        hub replaces it with the full listing."""
        part = os.path.join(self.tmp, "hf-partial")
        r = hfjs("download", self.sim.hub, part, "TheOrg/tiny", "config.json", self.c)
        self.assertNotIn("error", r, r)
        self.sim.offline()
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"),
                             "--endpoint", self.sim.hub, part)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 files adopted", r.stdout)
        mp = self.mount(args=["--offline"])
        d = os.path.join(mp, "TheOrg", "tiny@" + self.c)
        self.assertEqual(os.listdir(d), ["config.json"])
        self.umount(mp)
        self.sim.offline(False)
        mp = self.mount(name="mnt2")
        d = os.path.join(mp, "TheOrg", "tiny@" + self.c)
        self.assertEqual(sorted(os.listdir(d)),
                         ["config.json", "model.safetensors", "sub", "tokenizer.json"])
        self.sim.reset_stats()
        self.assertFileEqual(os.path.join(d, "config.json"), self.files["config.json"])
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0, "the imported file is cached")

    def test_help_and_usage(self):
        r = self.run_modelfs("import", "--help")
        self.assertEqual(r.returncode, 0)
        for w in ("--dry-run", "--reflink", "--local-dir", "HF_HUB_CACHE"):
            self.assertIn(w, r.stdout)
        self.assertEqual(self.run_modelfs("import", "--bogus").returncode, 2)
        self.assertEqual(self.run_modelfs("import", "a", "b").returncode, 2)
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"), "--offline",
                             env={"HF_HUB_CACHE": self.hf})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("5 files adopted", r.stdout)


class ImportLocalDir(HfCacheBase):
    """modelfs import --local-dir DIR REPO@COMMIT: an `hf download
    --local-dir` folder, verified against the hub's listing when it answers,
    else against the .cache/huggingface/download/<path>.metadata files
    huggingface_hub writes there."""

    def make_local_dir(self, commit, metadata=True):
        d = os.path.join(self.tmp, "local")
        for p, data in self.files.items():
            f = os.path.join(d, *p.split("/"))
            os.makedirs(os.path.dirname(f), exist_ok=True)
            with open(f, "wb") as fh:
                fh.write(data)
            if metadata:
                m = os.path.join(d, ".cache", "huggingface", "download", *p.split("/"))
                os.makedirs(os.path.dirname(m), exist_ok=True)
                with open(m + ".metadata", "w") as fh:
                    fh.write("%s\n%s\n%f\n" % (commit, self.etag(p), time.time()))
        return d

    def test_offline_against_metadata(self):
        c = self.commit()
        d = self.make_local_dir(c)
        with open(os.path.join(d, "stray.txt"), "w") as fh:
            fh.write("no metadata")
        self.sim.offline()
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"), "--offline",
                             "--local-dir", d, "TheOrg/tiny@" + c)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("4 files adopted", r.stdout)
        self.assertIn("stray.txt: no .cache/huggingface metadata", r.stderr)
        mp = self.mount(args=["--offline"])
        for p, data in self.files.items():
            self.assertFileEqual(os.path.join(mp, "TheOrg", "tiny@" + c, p), data)
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0)

    def test_online_against_listing_catches_corruption(self):
        c = self.commit()
        d = self.make_local_dir(c, metadata=False)
        with open(os.path.join(d, "tokenizer.json"), "wb") as fh:
            fh.write(b'{"v": 2}\n')
        self.sim.reset_stats()
        r = self.run_modelfs("import", "--cache", os.path.join(self.tmp, "cache"),
                             "--endpoint", self.sim.hub, "--local-dir", d, "TheOrg/tiny@main")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("verifying against the hub's listing", r.stderr)
        self.assertIn("3 files adopted", r.stdout)
        self.assertIn("1 corrupt", r.stdout)
        self.assertEqual(self.sim.stats()["body_bytes_total"], 0, "listings only, no file bytes")
        self.sim.offline()
        mp = self.mount(args=["--offline"])
        snap = os.path.join(mp, "TheOrg", "tiny@" + c)
        self.assertFileEqual(os.path.join(snap, "model.safetensors"),
                             self.files["model.safetensors"])
        self.assertOSError(errno.EIO, read_file, os.path.join(snap, "tokenizer.json"))


class ImportReflink(HfCacheBase):
    """modelfs import --reflink: on a file system with reflinks (a loop-mounted
    XFS here, mkfs.xfs from xfsprogs) the cache shares the source's extents
    (FIEMAP reports them shared, no bytes written); elsewhere (ext4) it copies.
    Either way every file reads back byte-exact offline."""

    def setUp(self):
        super().setUp()
        problem = hfjs_problem()
        if problem:
            self.fail(problem)
        if shutil.which("mkfs.xfs") is None or shutil.which("filefrag") is None:
            self.fail("mkfs.xfs (xfsprogs) and filefrag (e2fsprogs) are needed: "
                      "tests/install-deps.sh installs them")

    def xfs(self):
        img = os.path.join(self.tmp, "xfs.img")
        mnt = os.path.join(self.tmp, "xfs")
        os.makedirs(mnt)
        with open(img, "wb") as f:
            f.truncate(512 << 20)
        subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", img], check=True)
        subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        return mnt

    def blob_data_file(self, cache, cid):
        return os.path.join(cache, "blobs", cid[:2], cid)

    def import_and_read(self, base):
        hf = os.path.join(base, "hfhub")
        cache = os.path.join(base, "cache")
        r = hfjs("snapshot", self.sim.hub, hf, "TheOrg/tiny", "main")
        self.assertNotIn("error", r, r)
        c = self.commit()
        self.sim.offline()
        r = self.run_modelfs("import", "--reflink", "--cache", cache, "--offline", hf,
                             timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("4 files adopted", r.stdout)
        mp = self.mount(cache=os.path.relpath(cache, self.tmp), args=["--offline"])
        for p, data in self.files.items():
            self.assertFileEqual(os.path.join(mp, "TheOrg", "tiny@" + c, p), data)
        self.umount(mp)
        return r.stdout, cache

    def test_reflink_shares_extents_on_xfs(self):
        out, cache = self.import_and_read(self.xfs())
        big = self.etag("model.safetensors")
        ff = subprocess.run(["filefrag", "-v", self.blob_data_file(cache, big)],
                            capture_output=True, text=True).stdout
        self.assertIn("shared", ff, ff)
        line = [x for x in out.splitlines() if x.startswith("reflink:")][0]
        self.assertNotIn("reflink: 0 B", line)
        print(line.strip())

    def test_reflink_copies_where_it_cannot(self):
        out, cache = self.import_and_read(os.path.join(self.tmp, "plain"))
        line = [x for x in out.splitlines() if x.startswith("reflink:")][0]
        self.assertTrue(line.startswith("reflink: 0 B of"), line)
        print(line.strip(), "(on %s)" % subprocess.run(
            ["stat", "-f", "-c", "%T", self.tmp], capture_output=True, text=True).stdout.strip())
