#!/usr/bin/env python3
"""hubsim.py - a local simulator of the Hugging Face Hub HTTP API for tests.

What it does: serves repositories laid out as folders under --root with the
URL grammar, headers, redirects, auth/gating errors, paging and Range
semantics that docs/architecture.md ("The hub's HTTP API") describes; a
second origin plays the LFS CDN (signed, expiring URLs); a third "control" origin injects faults,
shapes bandwidth, switches the hub/CDN offline and reports exact traffic
statistics so tests can assert what a client fetched.

What it does not do: Xet CAS / reconstruction, uploads, spaces runtime, HTML
pages, gzip. Python 3.11 standard library only.

Layout: ROOT/{models,datasets}/<org>/<name>/<branch folder>/<files...>, an
optional repo.json next to the branch folders and an optional
ROOT/tokens.json. See README.md for the full contract.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import mimetypes
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

CHUNK = 4 << 20
DEFAULT_LFS_EXT = [".gguf", ".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5",
                   ".msgpack", ".model", ".tflite", ".ot", ".npz", ".zip", ".tar",
                   ".gz", ".parquet", ".arrow"]
DEFAULT_LFS_MIN = 10 * 1024 * 1024
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
ROUTES = ("api", "resolve", "resolve-cache", "cdn", "raw", "other")
FAULT_KINDS = {"status", "reset", "stall", "corrupt", "ignore_range", "short", "long",
               "bad_content_range", "expire_urls", "drop_headers", "hostile_tree"}
# Body-mutating faults only make sense on file content responses; matching them
# against API JSON or redirect bodies would silently burn their count.
CONTENT_KINDS = {"corrupt", "ignore_range", "short", "long", "bad_content_range"}
RANGES_CAP = 10000
# Whole-origin outage modes (POST /_sim/outage): what a half-failed hub, CDN,
# mirror or proxied peer does to every request until set back to "none".
OUTAGE_MODES = {"none", "close", "reset_after_headers", "503", "429", "trickle"}
HEX40 = re.compile(r"^[0-9a-f]{40}$")
HEXPFX = re.compile(r"^[0-9a-f]{7,39}$")
WINDOW = 300


def log(*a):
    print("hubsim:", *a, file=sys.stderr, flush=True)


def iso(ts_ns):
    dt = datetime.datetime.fromtimestamp(ts_ns / 1e9, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def truthy(v):
    return str(v).strip().lower() in ("1", "true", "yes", "on")


def lfs_pointer(sha256, size):
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (sha256, size)).encode()


def git_sha1_bytes(data):
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def fake_xet(sha256):
    return hashlib.sha256(b"hubsim-xet:" + sha256.encode()).hexdigest()


# Real xetHash values (repos with "xet": true in repo.json) come from the C
# implementation, modelfs-xethash (its own tests compare it with xet-core):
# Python's stdlib has no BLAKE3. --xethash or MODELFS_XETHASH, else the
# default build directory.
XETHASH = [os.environ.get("MODELFS_XETHASH") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "build", "xet", "modelfs-xethash")]


def real_xet(path):
    import subprocess
    try:
        out = subprocess.run([XETHASH[0], path], check=True, capture_output=True,
                             text=True, timeout=600).stdout
    except (OSError, subprocess.SubprocessError) as ex:
        raise RuntimeError("xetHash of %s needs modelfs-xethash (%s): %s"
                           % (path, XETHASH[0], ex))
    return out.split()[0]


# --------------------------------------------------------------------------
# Content hashing (lazy, cached by (path, size, mtime_ns))
# --------------------------------------------------------------------------
class HashCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.d = {}  # protected by lock: key -> {"sha1": .., "sha256": ..}

    def get(self, path, st, want):
        key = (path, st.st_size, st.st_mtime_ns)
        with self.lock:
            ent = dict(self.d.get(key, {}))
        if want in ent:
            return ent[want]
        if want == "xet":
            val = real_xet(path)
            with self.lock:
                self.d.setdefault(key, {})[want] = val
            return val
        if want == "sha1":
            h = hashlib.sha1(b"blob %d\0" % st.st_size)
        else:
            h = hashlib.sha256()
        with open(path, "rb") as f:
            buf = bytearray(CHUNK)
            mv = memoryview(buf)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(mv[:n])
        val = h.hexdigest()
        with self.lock:
            self.d.setdefault(key, {})[want] = val
        return val


class FileEntry:
    __slots__ = ("path", "abs", "size", "mtime_ns", "lfs", "oid", "sha256", "pointer", "xet")

    def alive(self):
        try:
            st = os.stat(self.abs)
        except OSError:
            return False
        return st.st_size == self.size and st.st_mtime_ns == self.mtime_ns


class Snapshot:
    """Immutable file map of one commit, plus lazily built directory index."""

    def __init__(self, rtype, rid, files, fallback_ns):
        self.rtype, self.rid, self.files = rtype, rid, files
        h = hashlib.sha1(("commit\n%s/%s\n" % (rtype, rid)).encode())
        for p in sorted(files):
            h.update(("%s %s\n" % (p, files[p].oid)).encode())
        self.commit = h.hexdigest()
        mt = max((e.mtime_ns for e in files.values()), default=fallback_ns)
        self.date = iso(mt)
        self.created_ns = min((e.mtime_ns for e in files.values()), default=fallback_ns)
        self._lock = threading.Lock()
        self._index = None

    def index(self):
        with self._lock:
            if self._index is None:
                self._index = self._build_index()
            return self._index

    def _build_index(self):
        children = {"": []}
        for p in self.files:
            parts = p.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in children:
                    children[d] = []
                    children["/".join(parts[:i - 1])].append((d, True))
            children["/".join(parts[:-1])].append((p, False))
        oids = {}
        for d in sorted(children, key=lambda x: -x.count("/") - (1 if x else 0)):
            h = hashlib.sha1(b"tree\n")
            for c, isdir in sorted(children[d]):
                h.update(("%s %s\n" % (c, oids[c] if isdir else self.files[c].oid)).encode())
            oids[d] = h.hexdigest()
        for d in children:
            children[d].sort(key=lambda x: (not x[1], x[0]))
        flat = sorted([(d, True) for d in children if d] + [(p, False) for p in self.files])
        return {"children": children, "dir_oids": oids, "flat": flat}


# --------------------------------------------------------------------------
# Repo scanning
# --------------------------------------------------------------------------
class RepoState:
    def __init__(self, rtype, org, name, folder):
        self.rtype, self.org, self.name, self.folder = rtype, org, name, folder
        self.rid = org + "/" + name
        self.lock = threading.Lock()
        self.sig = None      # protected by lock: [(path, mtime_ns)]
        self.view = None     # protected by lock: immutable dict, see scan()


def stat_sig(path):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size if not os.path.isdir(path) else 0)
    except OSError:
        return None


class Sim:
    def __init__(self, args):
        self.root = os.path.abspath(args.root)
        self.host = args.host
        self.secret = os.urandom(32)
        self.lock = threading.RLock()
        self.config = {  # protected by lock
            "latency_ms": float(args.latency_ms), "conn_rate_mbps": float(args.conn_rate_mbps),
            "url_ttl": int(args.url_ttl), "quota_api": 1000000, "quota_resolvers": 10000000,
            "quota_pages": 1000000,
            "list_page": 1000}  # repos per page of /api/{t}s (the hub pages them)
        self.faults = []       # protected by lock
        self.fault_seq = 0     # protected by lock
        # What tests asked for and what happened, never reset (reset_stats
        # and clear leave it): fault id -> {id, kind, route, count, fired},
        # and Authorization headers the CDN saw. GET /_sim/oracle.
        self.fault_record = {}  # protected by lock
        self.cdn_auth_ever = 0  # protected by lock
        self.rl_used = {}      # protected by lock: bucket -> count in window
        self.rl_window = time.time()  # protected by lock
        self.hashes = HashCache()
        self.repos_lock = threading.Lock()
        self.repos = {}        # protected by repos_lock: (rtype, org, name) -> RepoState
        self.commits = {}      # protected by repos_lock: commit -> Snapshot (never dropped)
        self.cdn_index = {}    # protected by repos_lock: sha256 -> {rid: {(abs, path): FileEntry}}
        self.tokens_cache = (None, {})
        self.listeners = {}
        self.offline_flag = False
        self.outage = {}       # protected by lock: role -> mode (absent = none)
        self.trickle_bps = 10240
        self.upstream = getattr(args, "upstream", None)
        self.reset_stats()

    # ---------------- stats ----------------
    def reset_stats(self):
        with self.lock:
            self.stats = {"requests": {r: 0 for r in ROUTES}, "requests_by_path": {},
                          "body_bytes": {}, "body_bytes_total": 0, "ranges": [],
                          "cdn_auth_seen": 0, "auth_seen_hub": 0, "connections": 0,
                          "connections_hub": 0, "connections_cdn": 0, "faults_applied": 0,
                          "outage_hits": {}}

    def stat_inc(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def count_request(self, route, key):
        with self.lock:
            self.stats["requests"][route] += 1
            k = "%s:%s" % (route, key)
            self.stats["requests_by_path"][k] = self.stats["requests_by_path"].get(k, 0) + 1

    def count_bytes(self, key, n):
        if n == 0:
            return
        with self.lock:
            self.stats["body_bytes"][key] = self.stats["body_bytes"].get(key, 0) + n
            self.stats["body_bytes_total"] += n

    def count_range(self, route, key, start, end):
        with self.lock:
            if len(self.stats["ranges"]) < RANGES_CAP:
                self.stats["ranges"].append([route, key, start, end])

    def snapshot_stats(self):
        with self.lock:
            return json.loads(json.dumps(self.stats))

    # ---------------- config / rate limit ----------------
    def cfg(self, k):
        with self.lock:
            return self.config[k]

    def ratelimit(self, bucket):
        """Count one request in bucket; returns (remaining, reset_secs, quota)."""
        with self.lock:
            now = time.time()
            if now - self.rl_window >= WINDOW:
                self.rl_window = now - ((now - self.rl_window) % WINDOW)
                self.rl_used = {}
            self.rl_used[bucket] = self.rl_used.get(bucket, 0) + 1
            q = int(self.config.get("quota_" + bucket, 1000000))
            rem = q - self.rl_used[bucket]
            t = max(1, int(WINDOW - (now - self.rl_window)))
            return rem, t, q

    # ---------------- outage modes ----------------
    def set_outage(self, role, mode, trickle_bps=None):
        if mode not in OUTAGE_MODES:
            raise ValueError("unknown outage mode %r" % mode)
        roles = ("hub", "cdn") if role == "all" else (role,)
        for r in roles:
            if r not in ("hub", "cdn"):
                raise ValueError("outage: role must be hub, cdn or all")
        with self.lock:
            for r in roles:
                if mode == "none":
                    self.outage.pop(r, None)
                else:
                    self.outage[r] = mode
            if trickle_bps is not None:
                self.trickle_bps = max(1, int(trickle_bps))
            return dict(self.outage)

    def outage_mode(self, role):
        """The outage mode of role ("none" when healthy); counts a hit."""
        with self.lock:
            mode = self.outage.get(role, "none")
            if mode != "none":
                k = "%s:%s" % (role, mode)
                self.stats["outage_hits"][k] = self.stats["outage_hits"].get(k, 0) + 1
            return mode

    # ---------------- faults ----------------
    def add_fault(self, spec):
        kind = spec.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r" % kind)
        f = dict(spec)
        f.setdefault("route", "any")
        if f["route"] not in ROUTES + ("any",):
            raise ValueError("unknown fault route %r" % f["route"])
        if kind == "stall" and f.get("when", "before") not in ("before", "mid"):
            raise ValueError("stall: when must be 'before' or 'mid'")
        if kind == "status" and not 100 <= int(f.get("status", 500)) <= 599:
            raise ValueError("status: bad status")
        f.setdefault("count", 1)
        f.setdefault("skip", 0)
        f["count"], f["skip"] = int(f["count"]), int(f["skip"])
        with self.lock:
            self.fault_seq += 1
            f["id"] = self.fault_seq
            self.faults.append(f)
            self.fault_record[f["id"]] = {"id": f["id"], "kind": kind, "route": f["route"],
                                          "count": f["count"], "fired": 0}
        return f["id"]

    def take_fault(self, kind, route, match):
        """Consume and return the first active fault of kind matching this request."""
        with self.lock:
            for f in self.faults:
                if f["kind"] != kind or f["count"] == 0:
                    continue
                if f["route"] not in ("any", route):
                    continue
                sub = f.get("path")
                if sub and not any(sub in m for m in match):
                    continue
                if f["skip"] > 0:
                    f["skip"] -= 1
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                self.faults = [x for x in self.faults if x["count"] != 0]
                self.stats["faults_applied"] += 1
                self.fault_record[f["id"]]["fired"] += 1
                return dict(f)
        return None

    # ---------------- tokens ----------------
    def tokens(self):
        p = os.path.join(self.root, "tokens.json")
        sig = stat_sig(p)
        with self.lock:
            if self.tokens_cache[0] == sig:
                return self.tokens_cache[1]
        toks = {}
        if sig is not None:
            try:
                with open(p) as f:
                    toks = json.load(f)
            except (OSError, ValueError) as e:
                log("bad tokens.json:", e)
        with self.lock:
            self.tokens_cache = (sig, toks)
        return toks

    # ---------------- repos ----------------
    def repo_folder(self, tdir, org, name):
        for s in (org, name):
            if not s or s.startswith(".") or "/" in s or "\\" in s or s in ("..",):
                return None
        return os.path.join(self.root, tdir, org, name)

    def get_repo(self, tdir, org, name):
        folder = self.repo_folder(tdir, org, name)
        if folder is None or not os.path.isdir(folder):
            return None
        key = (tdir, org, name)
        with self.repos_lock:
            st = self.repos.get(key)
            if st is None:
                st = self.repos[key] = RepoState(TYPES[tdir], org, name, folder)
        with st.lock:
            if st.sig is None or any(stat_sig(p) != s for p, s in st.sig):
                try:
                    self.scan(st)
                except OSError as e:
                    log("scan failed", folder, e)
                    return None
            return st.view

    def rescan(self):
        with self.repos_lock:
            self.repos = {}

    def scan(self, st):
        folder = st.folder
        sig = [(folder, stat_sig(folder))]
        conf_path = os.path.join(folder, "repo.json")
        sig.append((conf_path, stat_sig(conf_path)))
        conf = {}
        if os.path.exists(conf_path):
            try:
                with open(conf_path) as f:
                    conf = json.load(f)
            except ValueError as e:
                log("bad repo.json", conf_path, e)
        exts = [e.lower() if e.startswith(".") else "." + e.lower()
                for e in conf.get("lfs_extensions", DEFAULT_LFS_EXT)]
        lfs_min = int(conf.get("lfs_min_size", DEFAULT_LFS_MIN))
        branch_dirs = dict(conf.get("branch_dirs", {}))
        mapped = set(branch_dirs.values())
        folders = sorted(e.name for e in os.scandir(folder)
                         if e.is_dir() and not e.name.startswith(".hubsim"))
        branches_dirs = {}
        for fd in folders:
            if fd in mapped:
                continue
            m = re.match(r"^pr-(\d+)$", fd)
            bname = "refs/pr/%s" % m.group(1) if m else fd
            if bname not in branch_dirs:
                branches_dirs[bname] = fd
        for b, fd in branch_dirs.items():
            if fd in folders:
                branches_dirs[b] = fd
        snaps = {}
        for bname, fd in branches_dirs.items():
            bpath = os.path.join(folder, fd)
            files = {}
            for dirpath, dirnames, filenames in os.walk(bpath):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".hubsim"))
                sig.append((dirpath, stat_sig(dirpath)))
                for fn in filenames:
                    if fn.startswith(".hubsim"):
                        continue
                    ab = os.path.join(dirpath, fn)
                    try:
                        s = os.stat(ab)
                    except OSError:
                        continue
                    if not os.path.isfile(ab):
                        continue
                    rel = os.path.relpath(ab, bpath).replace(os.sep, "/")
                    e = FileEntry()
                    e.path, e.abs, e.size, e.mtime_ns = rel, ab, s.st_size, s.st_mtime_ns
                    low = fn.lower()
                    e.lfs = s.st_size > 0 and (s.st_size >= lfs_min
                                               or any(low.endswith(x) for x in exts))
                    if e.lfs:
                        e.sha256 = self.hashes.get(ab, s, "sha256")
                        e.pointer = lfs_pointer(e.sha256, e.size)
                        e.oid = git_sha1_bytes(e.pointer)
                        # Xet repos: the real xetHash; "xet": false: none;
                        # unset: a fake one (unverifiable, as before).
                        xc = conf.get("xet")
                        e.xet = (self.hashes.get(ab, s, "xet") if xc is True
                                 else None if xc is False else fake_xet(e.sha256))
                    else:
                        e.xet = None
                        e.sha256 = None
                        e.pointer = None
                        e.oid = self.hashes.get(ab, s, "sha1")
                    files[rel] = e
            snaps[bname] = Snapshot(st.rtype, st.rid, files, stat_sig(bpath)[0])
        with self.repos_lock:
            for s in snaps.values():
                old = self.commits.get(s.commit)
                # keep the existing object when unchanged so its index cache survives
                if old is None or any(old.files[p].abs != s.files[p].abs
                                      or not old.files[p].alive() for p in old.files):
                    self.commits[s.commit] = s
                for e in s.files.values():
                    if e.lfs:
                        per = self.cdn_index.setdefault(e.sha256, {}).setdefault(st.rid, {})
                        per[(e.abs, e.path)] = e
            snaps = {b: self.commits[s.commit] for b, s in snaps.items()}
        gated = conf.get("gated", False)
        if gated is True:
            gated = "auto"
        st.view = {
            "rtype": st.rtype, "org": st.org, "name": st.name, "rid": st.rid,
            "tdir": st.rtype + "s", "conf": conf, "branches": snaps,
            "tags": dict(conf.get("tags", {})),
            "default": conf.get("default_branch", "main"),
            "private": bool(conf.get("private", False)), "gated": gated or False,
            "disabled": bool(conf.get("disabled", False)),
            "tokens": list(conf.get("tokens", [])),
            "created": min([s.created_ns for s in snaps.values()] or [stat_sig(folder)[0]]),
        }
        st.sig = sig

    def find_renamed(self, tdir, rid):
        base = os.path.join(self.root, tdir)
        try:
            orgs = os.listdir(base)
        except OSError:
            return None
        for org in sorted(orgs):
            try:
                names = os.listdir(os.path.join(base, org))
            except OSError:
                continue
            for name in sorted(names):
                p = os.path.join(base, org, name, "repo.json")
                if not os.path.isfile(p):
                    continue
                try:
                    with open(p) as f:
                        conf = json.load(f)
                except (OSError, ValueError):
                    continue
                if rid in conf.get("renamed_from", []):
                    return org + "/" + name
        return None

    def list_repos(self, tdir, author=None):
        base = os.path.join(self.root, tdir)
        out = []
        try:
            orgs = sorted(os.listdir(base)) if author is None else [author]
        except OSError:
            return out
        for org in orgs:
            try:
                names = sorted(os.listdir(os.path.join(base, org)))
            except OSError:
                continue
            for name in names:
                v = self.get_repo(tdir, org, name)
                if v is not None:
                    out.append(v)
        return out

    def resolve_rev(self, v, rev):
        """Return the Snapshot a revision names in this repo view, or None."""
        br = v["branches"]
        if rev.startswith("refs/heads/"):
            rev = rev[len("refs/heads/"):]
        elif rev.startswith("refs/tags/"):
            rev = rev[len("refs/tags/"):]
            if rev not in v["tags"]:
                return None
        if rev in br:
            return br[rev]
        if rev in v["tags"]:
            tgt = v["tags"][rev]
            if tgt in br:
                return br[tgt]
            rev = tgt
        if HEX40.match(rev) or HEXPFX.match(rev):
            for s in br.values():
                if s.commit.startswith(rev):
                    return s
            with self.repos_lock:
                if rev in self.commits:
                    s = self.commits[rev]
                    return s if (s.rtype, s.rid) == (v["rtype"], v["rid"]) else None
                if HEXPFX.match(rev):
                    hits = [s for c, s in self.commits.items() if c.startswith(rev)
                            and (s.rtype, s.rid) == (v["rtype"], v["rid"])]
                    if len(hits) == 1:
                        return hits[0]
        return None

    def cdn_lookup(self, sha256, rid):
        """-> (repo id, FileEntry) still on disk with that content, preferring rid."""
        with self.repos_lock:
            d = {r: list(m.values()) for r, m in self.cdn_index.get(sha256, {}).items()}
        for r in ([rid] if rid in d else []) + sorted(x for x in d if x != rid):
            for e in d[r]:
                if e.alive():
                    return r, e
        return None, None

    def sign(self, sha256, expires):
        return hmac.new(self.secret, ("%s|%d" % (sha256, expires)).encode(),
                        hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------
class Resp:
    def __init__(self, status, headers=None, body=b"", content=None):
        self.status = status
        self.headers = list(headers or [])
        self.body = body
        self.content = content  # Content or None
        self.close = False

    def hdr(self, k, v):
        self.headers.append((k, str(v)))
        return self


class Content:
    """A file (or in-memory blob) served with Range support."""

    def __init__(self, route, key, total, abs_path=None, data=None):
        self.route, self.key, self.total = route, key, total
        self.abs, self.data = abs_path, data
        self.start, self.end = 0, total - 1   # inclusive; end = -1 for empty
        self.partial = False
        self.range_asked = False

    def read(self, fd, off, n):
        """Read n bytes at body offset off; past EOF pads with 'X' (long fault)."""
        out = b""
        if off < self.total:
            k = min(n, self.total - off)
            out = self.data[off:off + k] if self.data is not None else os.pread(fd, k, off)
            if len(out) < k:
                raise OSError("file shrank while serving")
        return out + b"X" * (n - len(out))


def json_resp(status, obj, headers=()):
    return Resp(status, headers, json.dumps(obj).encode(),).hdr(
        "Content-Type", "application/json; charset=utf-8")


def err(status, msg, code=None, headers=()):
    r = json_resp(status, {"error": msg}, headers)
    if code:
        r.hdr("X-Error-Code", code)
    r.hdr("X-Error-Message", msg)
    return r


def xml_err(status, code, msg):
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message></Error>' % (code, msg)).encode()
    return Resp(status, [("Content-Type", "application/xml")], body)


def parse_range(h, total):
    """-> None (no/ignored range), 'bad' (416), or (start, end_inclusive)."""
    if not h:
        return None
    m = re.match(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", h)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # malformed or multi-range: serve the whole file (RFC 9110 allows)
    a, b = m.group(1), m.group(2)
    if a == "":
        n = int(b)
        if n == 0 or total == 0:
            return "bad"
        return (max(0, total - n), total - 1)
    a = int(a)
    if a >= total:
        return "bad"
    b = int(b) if b != "" else total - 1
    if b < a:
        return None
    return (a, min(b, total - 1))


def content_resp(ctx, content, headers):
    rng = parse_range(ctx.headers.get("Range"), content.total)
    content.range_asked = rng is not None
    if rng == "bad":
        r = Resp(416, headers, b"Requested Range Not Satisfiable")
        r.hdr("Content-Range", "bytes */%d" % content.total)
        r.hdr("Content-Type", "text/plain; charset=utf-8")
        return r
    r = Resp(206 if rng else 200, headers, content=content)
    if rng:
        content.start, content.end, content.partial = rng[0], rng[1], True
    r.hdr("Accept-Ranges", "bytes")
    return r


# --------------------------------------------------------------------------
# Request context / routing
# --------------------------------------------------------------------------
class Ctx:
    pass


def split_rev(segs):
    """segs are raw (still percent-encoded) path segments starting at the rev."""
    if not segs:
        return None, []
    s0 = urllib.parse.unquote(segs[0])
    if s0 == "refs" and len(segs) >= 3 and segs[1] in ("pr", "convert", "heads", "tags"):
        return "refs/%s/%s" % (segs[1], urllib.parse.unquote(segs[2])), segs[3:]
    return s0, segs[1:]


def join_path(segs):
    return "/".join(urllib.parse.unquote(s) for s in segs if s != "").strip("/")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    block_on_close = False

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if not isinstance(e, (OSError, ValueError)):
            super().handle_error(request, client_address)


class Listener:
    def __init__(self, sim, role, host, port):
        self.sim, self.role, self.host, self.port = sim, role, host, port
        self.lock = threading.Lock()
        self.conns = set()   # protected by lock
        self.srv = None
        self.start()

    def start(self):
        srv = Server((self.host, self.port), Handler)
        srv.sim, srv.role, srv.listener = self.sim, self.role, self
        self.port = srv.server_address[1]
        self.srv = srv
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True, name="hubsim-" + self.role).start()

    def stop(self, drop=True):
        srv, self.srv = self.srv, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        if drop:
            with self.lock:
                conns = list(self.conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hubsim/1.0"
    sys_version = ""

    def log_message(self, fmt, *args):
        if VERBOSE:
            log("%s %s" % (self.server.role, fmt % args))

    def setup(self):
        super().setup()
        self.sim = self.server.sim
        self.role = self.server.role
        s = self.connection
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.tokens_b = 0.0
        self.tokens_t = time.monotonic()
        with self.server.listener.lock:
            self.server.listener.conns.add(s)
        if self.role != "control":
            with self.sim.lock:
                self.sim.stats["connections"] += 1
                self.sim.stats["connections_" + self.role] += 1

    def finish(self):
        with self.server.listener.lock:
            self.server.listener.conns.discard(self.connection)
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def handle(self):
        self.close_connection = True
        try:
            self.handle_one_request()
            while not self.close_connection:
                self.handle_one_request()
        except (OSError, ValueError):
            pass

    def do_GET(self):
        self.dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # ---------------- plumbing ----------------
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = b""
            while True:
                line = self.rfile.readline(65537)
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(n)
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def dispatch(self):
        body = self.read_body()
        raw = self.path
        if raw.startswith("http://") or raw.startswith("https://"):
            raw = "/" + raw.split("/", 3)[3] if raw.count("/") >= 3 else "/"
        path, _, query = raw.partition("?")
        ctx = Ctx()
        ctx.method, ctx.raw, ctx.path, ctx.query = self.command, raw, path, query
        ctx.q = urllib.parse.parse_qs(query, keep_blank_values=True)
        ctx.headers, ctx.body = self.headers, body
        ctx.upath = urllib.parse.unquote(path)
        ctx.route, ctx.key, ctx.bucket = "other", ctx.upath, "pages"
        ctx.file_key = None
        if self.role == "control":
            resp = self.control(ctx)
            resp.hdr("Content-Length", len(resp.body))
            self.write_head(resp)
            if ctx.method != "HEAD":
                self.connection.sendall(resp.body)
            return
        ctx.outage = self.sim.outage_mode(self.role)
        if ctx.outage == "close":
            self.close_now()  # accepted, request read, no reply at all
            return
        try:
            if self.sim.upstream and self.role == "hub":
                resp = self.proxy(ctx)
            elif self.role == "cdn":
                ctx.route = "cdn"
                resp = self.cdn(ctx)
            else:
                resp = self.hub(ctx)
        except Exception:  # noqa: BLE001 - a simulator bug must still answer
            import traceback
            log("internal error on %s %s\n%s" % (ctx.method, ctx.raw, traceback.format_exc()))
            resp = err(500, "hubsim internal error")
        self.send(ctx, resp)

    def write_head(self, resp):
        reason = http.server.BaseHTTPRequestHandler.responses.get(resp.status, ("X",))[0]
        lines = ["HTTP/1.1 %d %s" % (resp.status, reason),
                 "Date: " + self.date_time_string(), "Server: hubsim"]
        for k, v in resp.headers:
            lines.append("%s: %s" % (k, v))
        if self.close_connection or resp.close:
            self.close_connection = True
            lines.append("Connection: close")
        self.connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def close_now(self, rst=False):
        self.close_connection = True
        if rst:
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            except OSError:
                pass
        else:
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            self.connection.close()
        except OSError:
            pass

    def rate(self):
        """Bytes/s this connection may send now (0 = unlimited)."""
        with self.sim.lock:
            if self.sim.outage.get(self.role) == "trickle":
                return float(self.sim.trickle_bps)
            return self.sim.config["conn_rate_mbps"] * 125000.0

    def shape(self, n):
        rate = self.rate()
        if rate <= 0:
            return
        now = time.monotonic()
        burst = max(16384.0, rate * 0.02)
        self.tokens_b = min(burst, self.tokens_b + (now - self.tokens_t) * rate)
        self.tokens_t = now
        self.tokens_b -= n
        if self.tokens_b < 0:
            time.sleep(-self.tokens_b / rate)

    def sleep(self, secs):
        end = time.monotonic() + secs
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    # ---------------- response writer (faults, shaping, stats) ----------------
    def send(self, ctx, resp):
        sim = self.sim
        c = resp.content
        match = [ctx.raw, ctx.upath]
        if ctx.file_key:
            match.append(ctx.file_key)
        route = ctx.route
        sim.count_request(route, ctx.key)
        if self.role == "hub" and ctx.headers.get("Authorization") is not None:
            sim.stat_inc("auth_seen_hub")
        f_status = sim.take_fault("status", route, match)
        if ctx.outage in ("503", "429"):
            f_status = {"status": int(ctx.outage)}
            if ctx.outage == "429":
                f_status["retry_after"] = 3600
        if f_status:
            st = int(f_status.get("status", 500))
            resp = err(st, f_status.get("message", "Simulated error %d" % st))
            if f_status.get("retry_after") is not None:
                resp.hdr("Retry-After", f_status["retry_after"])
            if f_status.get("ratelimit_reset") is not None:
                ctx.rl_override = int(f_status["ratelimit_reset"])
            c = None
        is_get = ctx.method != "HEAD"
        faults = {}
        for k in ("reset", "stall", "drop_headers"):
            faults[k] = sim.take_fault(k, route, match)
        if ctx.outage == "reset_after_headers":
            faults["reset"] = {"after_bytes": 0}
        if c is not None and resp.status in (200, 206):
            for k in ("ignore_range", "bad_content_range"):
                faults[k] = sim.take_fault(k, route, match)
            if is_get:
                for k in ("corrupt", "short", "long"):
                    faults[k] = sim.take_fault(k, route, match)
        fd = None
        try:
            if c is not None and c.abs is not None and resp.status in (200, 206):
                try:
                    fd = os.open(c.abs, os.O_RDONLY)
                except OSError:
                    resp, c = err(404, "Entry not found", "EntryNotFound"), None
            body_len = len(resp.body)
            headers = list(resp.headers)
            if c is not None and resp.status in (200, 206):
                f = faults.get("ignore_range")
                if f and c.partial:
                    c.start, c.end, c.partial = 0, c.total - 1, False
                    resp.status = 200
                f = faults.get("long")
                extra = int(f.get("extra", 16)) if f else 0
                framing = bool(f and f.get("mode") == "framing")
                if f and not framing:
                    c.end += extra
                    extra = 0
                body_len = c.end - c.start + 1
                f = faults.get("bad_content_range")
                if f or c.partial:
                    d = int(f.get("delta", 1)) if f else 0
                    resp.status = 206
                    headers.append(("Content-Range", "bytes %d-%d/%d"
                                    % (c.start + d, c.end + d, c.total)))
            headers.append(("Content-Length", str(body_len)))
            headers += self.common_headers(ctx)
            f = faults.get("drop_headers")
            if f:
                drop = {h.lower() for h in f.get("headers", [])}
                headers = [(k, v) for k, v in headers if k.lower() not in drop]
            resp.headers = headers
            # ---- timing faults before headers ----
            lat = sim.cfg("latency_ms")
            if lat > 0:
                self.sleep(lat / 1000.0)
            f = faults.get("stall")
            if f and f.get("when", "before") == "before":
                self.sleep(float(f.get("seconds", 5)))
                if f.get("then_close"):
                    self.close_now()
                    return
            self.write_head(resp)
            fr = faults.get("reset")
            if not is_get or resp.status in (204, 304):
                if fr:
                    self.close_now(rst=True)
                return
            if c is None:
                self.write_small(resp.body, faults)
                return
            if c.end >= c.start:
                sim.count_range(c.route, c.key, c.start, min(c.end, c.total - 1))
            self.write_content(c, fd, body_len, faults, extra if framing else 0)
        finally:
            if fd is not None:
                os.close(fd)

    def common_headers(self, ctx):
        out = []
        trace = ctx.headers.get("X-Amzn-Trace-Id")
        rid = "Root=1-%08x-%s" % (int(time.time()), os.urandom(12).hex())
        out.append(("X-Request-Id", rid + (";" + trace if trace else "")))
        if self.role == "hub":
            b = ctx.bucket
            rem, t, q = getattr(ctx, "rl", (None, None, None))
            if rem is None:
                rem, t, q = self.sim.ratelimit(b)
            ov = getattr(ctx, "rl_override", None)
            if ov is not None:
                rem, t = 0, ov
            out.append(("RateLimit", '"%s";r=%d;t=%d' % (b, max(rem, 0), t)))
            out.append(("RateLimit-Policy", '"fixed window";"%s";q=%d;w=%d' % (b, q, WINDOW)))
            out.append(("X-Powered-By", "huggingface-moon"))
            out.append(("Vary", "Origin"))
        else:
            out.append(("Via", "1.1 hubsim.cloudfront.net (CloudFront)"))
            out.append(("X-Cache", "Miss from cloudfront"))
        return out

    def write_small(self, body, faults):
        """Non-content bodies (JSON, redirects, errors): reset/stall still apply."""
        self.write_stream(lambda off, n: body[off:off + n], len(body), faults, None, None)

    def write_content(self, c, fd, body_len, faults, framing_extra):
        key = c.key
        sim = self.sim
        fast = (not any(faults.get(k) for k in ("reset", "stall", "corrupt", "short"))
                and framing_extra == 0 and self.rate() <= 0
                and c.abs is not None and c.end < c.total)
        if fast:
            # Counted before it is sent, the unsent rest taken back if the
            # send fails: a client that has every byte may read the stats
            # before this thread would get to count after the last send.
            off, left = c.start, body_len
            sock = self.connection.fileno()
            sim.count_bytes(key, body_len)
            try:
                while left > 0:
                    n = os.sendfile(sock, fd, off, min(left, 1 << 30))
                    if n == 0:
                        raise OSError("sendfile: EOF")
                    off += n
                    left -= n
            finally:
                sim.count_bytes(key, -left)
            return
        self.write_stream(lambda off, n: c.read(fd, c.start + off, n), body_len, faults,
                          key, framing_extra)

    def write_stream(self, reader, total, faults, key, framing_extra):
        sim = self.sim
        events = []
        f = faults.get("stall")
        if f and f.get("when", "before") == "mid":
            events.append((int(f.get("after_bytes", 0)), "stall", f))
        f = faults.get("reset")
        if f:
            events.append((int(f.get("after_bytes", 0)), "reset", f))
        f = faults.get("short")
        if f:
            events.append((int(f.get("after_bytes", total // 2)), "short", f))
        events = sorted((min(max(p, 0), total), i, k, f) for i, (p, k, f) in enumerate(events))
        corrupt = faults.get("corrupt")
        cpos = int(corrupt.get("offset", total // 2)) if corrupt else -1
        rate = self.rate()
        csize = 1 << 20 if rate <= 0 else int(min(65536, max(4096, rate / 50)))
        pos = 0
        while True:
            while events and events[0][0] == pos:
                _, _, kind, f = events.pop(0)
                if kind == "stall":
                    self.sleep(float(f.get("seconds", 5)))
                    if f.get("then_close"):
                        self.close_now()
                        return
                elif kind == "reset":
                    self.close_now(rst=True)
                    return
                elif kind == "short":
                    self.close_now()
                    return
            if pos >= total:
                break
            stop = min(total, pos + csize, events[0][0] if events else total)
            data = reader(pos, stop - pos)
            if pos <= cpos < stop:
                b = bytearray(data)
                b[cpos - pos] ^= 0xFF
                data = bytes(b)
            self.shape(len(data))
            # counted before the client can have it; taken back if
            # the send fails
            if key is not None:
                sim.count_bytes(key, len(data))
            try:
                self.connection.sendall(data)
            except BaseException:
                if key is not None:
                    sim.count_bytes(key, -len(data))
                raise
            pos = stop
        if framing_extra:
            self.connection.sendall(b"X" * framing_extra)
            self.close_connection = True

    # ---------------- control ----------------
    def control(self, ctx):
        sim = self.sim
        p = ctx.path.rstrip("/")
        try:
            data = json.loads(ctx.body or b"{}") if ctx.body.strip() else {}
        except ValueError:
            return err(400, "bad JSON body")
        m = ctx.method
        try:
            if p == "/_sim/fault" and m == "POST":
                return json_resp(200, {"id": sim.add_fault(data)})
            if p == "/_sim/oracle" and m == "GET":
                with sim.lock:
                    return json_resp(200, {"cdn_auth_ever": sim.cdn_auth_ever,
                                           "faults": list(sim.fault_record.values())})
            if p == "/_sim/faults" and m == "GET":
                with sim.lock:
                    return json_resp(200, list(sim.faults))
            if p == "/_sim/clear" and m == "POST":
                with sim.lock:
                    sim.faults = []
                return json_resp(200, {"ok": True})
            if p == "/_sim/offline" and m == "POST":
                sim_set_offline(sim, bool(data.get("offline", True)))
                return json_resp(200, {"offline": sim.offline_flag})
            if p == "/_sim/outage" and m == "POST":
                return json_resp(200, sim.set_outage(data.get("role", "all"),
                                                     data.get("mode", "none"),
                                                     data.get("trickle_bps")))
            if p == "/_sim/config" and m in ("POST", "GET"):
                with sim.lock:
                    for k, v in data.items():
                        if k not in sim.config:
                            return err(400, "unknown config key %s" % k)
                        sim.config[k] = type(sim.config[k])(v)
                        if k.startswith("quota_"):
                            sim.rl_used = {}  # a new quota starts a fresh window
                            sim.rl_window = time.time()
                    return json_resp(200, dict(sim.config))
            if p == "/_sim/rescan" and m == "POST":
                sim.rescan()
                return json_resp(200, {"ok": True})
            if p == "/_sim/stats" and m == "GET":
                return json_resp(200, sim.snapshot_stats())
            if p == "/_sim/reset_stats" and m == "POST":
                sim.reset_stats()
                return json_resp(200, {"ok": True})
            if p == "/_sim/health":
                return json_resp(200, {"ok": True, "offline": sim.offline_flag})
        except (ValueError, TypeError) as e:
            return err(400, str(e))
        return err(404, "no such control route")

    # ---------------- reverse proxy (--upstream) ----------------
    def proxy(self, ctx):
        """Forwards the request to --upstream and returns its answer whole, so
        the outage modes and faults apply to any HTTP source (a peer)."""
        import http.client
        u = urllib.parse.urlsplit(self.sim.upstream)
        hdrs = {k: v for k, v in ctx.headers.items()
                if k.lower() in ("range", "authorization", "accept-encoding")}
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
        try:
            conn.request(ctx.method, ctx.raw, body=ctx.body or None, headers=hdrs)
            r = conn.getresponse()
            body = r.read() if ctx.method != "HEAD" else b""
            out = Resp(r.status, body=body)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "connection", "transfer-encoding",
                                     "date", "server"):
                    out.hdr(k, v)
            return out
        except OSError as e:
            return err(502, "upstream: %s" % e)
        finally:
            conn.close()

    # ---------------- CDN ----------------
    def cdn(self, ctx):
        sim = self.sim
        m = re.match(r"^/cdn/([0-9a-f]{64})$", ctx.path)
        sha = m.group(1) if m else None
        rid = (ctx.q.get("repo") or [""])[0]
        found = None
        if sha:
            frid, e = sim.cdn_lookup(sha, rid)
            if e is not None:
                found = (frid, e)
                ctx.key = e.path
                ctx.file_key = "%s/%s" % (frid, e.path)
        if ctx.headers.get("Authorization") is not None:
            sim.stat_inc("cdn_auth_seen")
            with sim.lock:
                sim.cdn_auth_ever += 1
            return xml_err(400, "InvalidArgument",
                           "Only one auth mechanism allowed; Authorization header not allowed")
        if not sha:
            return xml_err(404, "NoSuchKey", "The specified key does not exist.")
        match = [ctx.raw, ctx.upath] + ([ctx.file_key] if ctx.file_key else [])
        if sim.take_fault("expire_urls", "cdn", match):
            return xml_err(403, "AccessDenied", "Request has expired")
        try:
            exp = int((ctx.q.get("Expires") or [""])[0])
            sig = (ctx.q.get("Signature") or [""])[0]
        except ValueError:
            return xml_err(403, "AccessDenied", "Invalid URL signature")
        if not hmac.compare_digest(sig, sim.sign(sha, exp)):
            return xml_err(403, "AccessDenied", "Invalid URL signature")
        if exp < time.time():
            return xml_err(403, "AccessDenied", "Request has expired")
        if not found:
            return xml_err(404, "NoSuchKey", "The specified key does not exist.")
        frid, e = found
        c = Content("cdn", ctx.file_key, e.size, abs_path=e.abs)
        hdrs = [("Content-Type", "application/octet-stream"),
                ("ETag", '"%s"' % (e.xet or fake_xet(sha))),
                ("Last-Modified", self.date_time_string(e.mtime_ns / 1e9)),
                ("Cache-Control", "public, max-age=604800, immutable"),
                ("Content-Disposition", disposition(e.path))]
        return content_resp(ctx, c, hdrs)

    # ---------------- hub ----------------
    def hub(self, ctx):
        sim = self.sim
        segs = ctx.path.split("/")[1:]
        # classify route for stats / ratelimit buckets / fault matching
        if segs[:2] == ["api", "resolve-cache"]:
            ctx.route, ctx.bucket = "resolve-cache", "resolvers"
        elif segs[:1] == ["api"]:
            ctx.route, ctx.bucket = "api", "api"
        else:
            s = segs[1:] if segs[:1] in (["datasets"], ["spaces"], ["models"]) else segs
            if len(s) >= 3 and s[2] == "resolve":
                ctx.route, ctx.bucket = "resolve", "resolvers"
            elif len(s) >= 3 and s[2] == "raw":
                ctx.route = "raw"
        ctx.key = ctx.upath
        rem, t, q = sim.ratelimit(ctx.bucket)
        ctx.rl = (rem, t, q)
        try:
            resp = self.hub_route(ctx, segs)
        except OSError as e:
            log("error", ctx.path, e)
            resp = err(500, "Internal error: %s" % e)
        if rem < 0 and resp.status < 300:
            resp = err(429, "You have exceeded our hourly quotas for action: %s. "
                       "Retry later." % ctx.bucket)
        return resp

    def auth(self, ctx):
        """-> ('anon'|token, error Resp or None)."""
        h = ctx.headers.get("Authorization")
        if h is None:
            return None, None
        m = re.match(r"^\s*Bearer\s+(\S+)\s*$", h, re.I)
        toks = self.sim.tokens()
        if not m or m.group(1) not in toks:
            return None, err(401, "Invalid credentials in Authorization header")
        return m.group(1), None

    def has_access(self, v, tok):
        if tok is None:
            return False
        if tok in v["tokens"]:
            return True
        info = self.sim.tokens().get(tok) or {}
        if not isinstance(info, dict):
            return False
        return info.get("user") == v["org"] or v["org"] in info.get("orgs", [])

    def open_repo(self, ctx, tdir, org, name, gate):
        """Auth + lookup + rename + private/disabled/gated checks.

        -> (view, tok, None) or (None, None, error/redirect Resp)."""
        sim = self.sim
        tok, e = self.auth(ctx)
        if e:
            return None, None, e
        org, name = urllib.parse.unquote(org), urllib.parse.unquote(name)
        v = sim.get_repo(tdir, org, name)
        if v is None:
            new = sim.find_renamed(tdir, org + "/" + name)
            if new:
                loc = ctx.path.replace("/%s/%s" % (org, name), "/" + new, 1)
                if ctx.query:
                    loc += "?" + ctx.query
                r = Resp(307, [("Location", loc), ("Content-Type", "text/plain; charset=utf-8")],
                         ("Temporary Redirect. Redirecting to %s" % loc).encode())
                return None, None, r
        if v is None or (v["private"] and not self.has_access(v, tok)):
            if tok is None:
                return None, None, err(401, "Repository not found", "RepoNotFound")
            return None, None, err(404, "Repository not found", "RepoNotFound")
        if v["disabled"]:
            return None, None, err(403, "Access to this resource is disabled.")
        if gate and v["gated"] and not self.has_access(v, tok):
            kind = v["rtype"]
            if tok is None:
                msg = ("Access to %s %s is restricted. You must have access to it and be "
                       "authenticated to access it. Please log in." % (kind, v["rid"]))
                return None, None, err(401, msg, "GatedRepo")
            url = "%s/%s%s" % (HUB_URL[0], PREFIX[kind], v["rid"])
            msg = ("Access to %s %s is restricted and you are not in the authorized list. "
                   "Visit %s to ask for access." % (kind, v["rid"], url))
            return None, None, err(403, msg, "GatedRepo")
        return v, tok, None

    def snap(self, v, rev):
        s = self.sim.resolve_rev(v, rev)
        if s is None:
            return None, err(404, "Invalid rev id: %s" % rev, "RevisionNotFound")
        return s, None

    def hub_route(self, ctx, segs):
        segs = [s for s in segs]
        while len(segs) > 1 and segs[-1] == "":
            segs.pop()
        if segs[:1] == ["api"]:
            if len(segs) >= 6 and segs[1] == "resolve-cache" and segs[2] in TYPES:
                return self.r_resolve_cache(ctx, segs[2], segs[3], segs[4], segs[5:])
            if len(segs) == 2 and segs[1] in TYPES and ctx.method in ("GET", "HEAD"):
                return self.r_list(ctx, segs[1])
            if len(segs) >= 4 and segs[1] in TYPES:
                return self.r_api_repo(ctx, segs[1], segs[2], segs[3], segs[4:])
            return err(404, "Sorry, we can't find the page you are looking for.")
        tdir = "models"
        if segs and segs[0] in ("datasets", "spaces"):
            tdir, segs = segs[0], segs[1:]
        if len(segs) >= 5 and segs[2] in ("resolve", "raw") and ctx.method in ("GET", "HEAD"):
            rev, rest = split_rev(segs[3:])
            path = join_path(rest)
            ctx.key = path
            if segs[2] == "resolve":
                return self.r_resolve(ctx, tdir, segs[0], segs[1], rev, path)
            return self.r_raw(ctx, tdir, segs[0], segs[1], rev, path)
        return err(404, "Sorry, we can't find the page you are looking for.")

    # ---- /api/{t}s?author=
    # Paged like the tree listing: at most list_page repos (or `limit`, if
    # smaller) per page, then Link rel="next" with an opaque cursor and every
    # other query parameter kept. `limit` caps the page, as huggingface_hub
    # relies on only through the Link chain.
    def r_list(self, ctx, tdir):
        tok, e = self.auth(ctx)
        if e:
            return e
        author = (ctx.q.get("author") or [None])[0]
        search = (ctx.q.get("search") or [""])[0]
        with self.sim.lock:
            page_max = int(self.sim.config["list_page"])
        try:
            limit = int((ctx.q.get("limit") or [str(page_max)])[0])
        except ValueError:
            return err(400, "Invalid limit")
        if limit <= 0:
            return err(400, "Invalid limit")
        limit = min(limit, page_max)
        off = 0
        cur = (ctx.q.get("cursor") or [None])[0]
        if cur:
            try:
                off = int(json.loads(base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4)))["o"])
            except (ValueError, KeyError, TypeError):
                return err(400, "Invalid cursor")
        out = []
        if author is not None and self.sim.repo_folder(tdir, author, "x") is None:
            return json_resp(200, [])
        for v in self.sim.list_repos(tdir, author):
            if v["private"] and not self.has_access(v, tok):
                continue
            if search and search.lower() not in v["rid"].lower():
                continue
            info = self.repo_info(v, v["branches"].get(v["default"]), False)
            info.pop("siblings", None)
            out.append(info)
        r = json_resp(200, out[off:off + limit])
        if off + limit < len(out):
            cd = {"o": off + limit, "n": random.randrange(1 << 30)}
            cursor = base64.urlsafe_b64encode(json.dumps(cd).encode()).decode().rstrip("=")
            params = [(k, x) for k, vals in ctx.q.items() if k != "cursor" for x in vals]
            params.append(("cursor", cursor))
            url = "%s%s?%s" % (HUB_URL[0], ctx.path, urllib.parse.urlencode(params))
            r.hdr("Link", '<%s>; rel="next"' % url)
        return r

    def repo_info(self, v, s, blobs):
        d = {"_id": hashlib.sha1(("id:" + v["rtype"] + v["rid"]).encode()).hexdigest()[:24],
             "id": v["rid"]}
        if v["rtype"] == "model":
            d["modelId"] = v["rid"]
        d.update({"author": v["org"], "private": v["private"], "gated": v["gated"],
                  "disabled": v["disabled"], "downloads": 0, "likes": 0, "tags": [],
                  "createdAt": iso(v["created"])})
        if s is not None:
            d["sha"] = s.commit
            d["lastModified"] = s.date
            sib = []
            for p in sorted(s.files):
                e = s.files[p]
                x = {"rfilename": p}
                if blobs:
                    x["size"] = e.size
                    x["blobId"] = e.oid
                    if e.lfs:
                        x["lfs"] = {"sha256": e.sha256, "size": e.size,
                                    "pointerSize": len(e.pointer)}
                sib.append(x)
            d["siblings"] = sib
            d["usedStorage"] = sum(e.size for e in s.files.values())
        return d

    # ---- /api/{t}s/{org}/{name}/...
    def r_api_repo(self, ctx, tdir, org, name, rest):
        op = rest[0] if rest else ""
        gate = False
        v, tok, e = self.open_repo(ctx, tdir, org, name, gate)
        if e:
            return e
        m = ctx.method
        if op in ("", "revision") and m in ("GET", "HEAD"):
            rev = v["default"]
            if op == "revision":
                if len(rest) < 2:
                    return err(404, "Sorry, we can't find the page you are looking for.")
                rev = join_path(rest[1:]) if len(rest) > 2 else urllib.parse.unquote(rest[1])
            s, e = self.snap(v, rev)
            if e:
                return e
            blobs = truthy((ctx.q.get("blobs") or ["false"])[0])
            info = self.repo_info(v, s, blobs)
            exp = ctx.q.get("expand") or ctx.q.get("expand[]")
            if exp:
                if blobs:
                    return err(400, "blobs cannot be combined with expand")
                known = set(info) | {"cardData", "config", "safetensors", "gguf",
                                     "pipeline_tag", "library_name", "spaces",
                                     "securityRepoStatus", "trendingScore", "xetEnabled"}
                bad = [x for x in exp if x not in known]
                if bad:
                    return err(400, "Invalid expand value: %s" % ",".join(bad))
                info = {k: info[k] for k in ["_id", "id"] + exp if k in info}
            return json_resp(200, info).hdr("X-Repo-Commit", s.commit)
        if op == "tree" and len(rest) >= 2 and m in ("GET", "HEAD"):
            rev, prest = split_rev(rest[1:])
            s, e = self.snap(v, rev)
            if e:
                return e
            return self.r_tree(ctx, v, s, join_path(prest))
        if op == "paths-info" and len(rest) >= 2 and m == "POST":
            rev = join_path(rest[1:]) if len(rest) > 2 else urllib.parse.unquote(rest[1])
            s, e = self.snap(v, rev)
            if e:
                return e
            return self.r_paths_info(ctx, v, s)
        if op == "refs" and len(rest) == 1 and m in ("GET", "HEAD"):
            return self.r_refs(ctx, v)
        if op == "commits" and m in ("GET", "HEAD"):
            rev = v["default"] if len(rest) < 2 else (
                join_path(rest[1:]) if len(rest) > 2 else urllib.parse.unquote(rest[1]))
            s, e = self.snap(v, rev)
            if e:
                return e
            return json_resp(200, [{"id": s.commit, "authors": [{"user": v["org"]}],
                                    "date": s.date, "title": "Snapshot %s" % s.commit[:7],
                                    "message": ""}])
        if op == "treesize" and len(rest) >= 2 and m in ("GET", "HEAD"):
            rev, prest = split_rev(rest[1:])
            s, e = self.snap(v, rev)
            if e:
                return e
            p = join_path(prest)
            tot = sum(x.size for q, x in s.files.items() if not p or q == p
                      or q.startswith(p + "/"))
            return json_resp(200, {"path": p, "size": tot})
        return err(404, "Sorry, we can't find the page you are looking for.")

    def entry_json(self, s, path, isdir, expand):
        ix = s.index()
        if isdir:
            d = {"type": "directory", "oid": ix["dir_oids"][path], "size": 0, "path": path}
        else:
            e = s.files[path]
            d = {"type": "file", "oid": e.oid, "size": e.size, "path": path}
            if e.lfs:
                d["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(e.pointer)}
                if e.xet:
                    d["xetHash"] = e.xet
        if expand:
            d["lastCommit"] = {"id": s.commit, "title": "Snapshot %s" % s.commit[:7],
                               "date": s.date}
            if not isdir:
                d["securityFileStatus"] = {"status": "safe"}
        return d

    def r_tree(self, ctx, v, s, path):
        q = ctx.q
        recursive = truthy((q.get("recursive") or ["false"])[0])
        expand = truthy((q.get("expand") or ["false"])[0])
        ix = s.index()
        if path and path not in ix["children"]:
            if path in s.files:
                items = [(path, False)]
            else:
                return err(404, "Entry not found", "EntryNotFound")
        elif recursive:
            pre = path + "/" if path else ""
            items = [x for x in ix["flat"] if x[0].startswith(pre)]
        else:
            items = ix["children"][path]
        try:
            limit = int((q.get("limit") or [str(50 if expand else 1000)])[0])
        except ValueError:
            return err(400, "Invalid limit")
        if limit <= 0:
            return err(400, "Invalid limit")
        off = 0
        cur = (q.get("cursor") or [None])[0]
        if cur:
            try:
                cd = json.loads(base64.urlsafe_b64decode(cur + "=" * (-len(cur) % 4)))
                off = int(cd["offset"])
                want = cd.get("file_name")
                if want is not None and not (off < len(items) and items[off][0] == want):
                    pos = [i for i, x in enumerate(items) if x[0] == want]
                    off = pos[0] if pos else off
            except (ValueError, KeyError, TypeError):
                return err(400, "Invalid cursor")
        page = items[off:off + limit]
        out = [self.entry_json(s, p, isdir, expand) for p, isdir in page]
        f = self.sim.take_fault("hostile_tree", "api", [ctx.raw, ctx.upath])
        if f:
            out += list(f.get("entries", []))
        r = json_resp(200, out)
        nxt = off + limit
        if nxt < len(items):
            cd = {"offset": nxt, "file_name": items[nxt][0],
                  "n": random.randrange(1 << 30)}
            cursor = base64.urlsafe_b64encode(json.dumps(cd).encode()).decode().rstrip("=")
            params = [(k, x) for k, vals in q.items() if k != "cursor" for x in vals]
            if "limit" not in q:
                params.append(("limit", str(limit)))
            params.append(("cursor", cursor))
            url = "%s%s?%s" % (HUB_URL[0], ctx.path, urllib.parse.urlencode(params))
            r.hdr("Link", '<%s>; rel="next"' % url)
        r.hdr("X-Repo-Commit", s.commit)
        return r

    def r_paths_info(self, ctx, v, s):
        body = ctx.body
        ctype = (ctx.headers.get("Content-Type") or "").lower()
        paths, expand = [], False
        parsed = None
        if "json" in ctype or (body.strip()[:1] in (b"{", b"[")):
            try:
                parsed = json.loads(body or b"{}")
            except ValueError:
                return err(400, "Invalid JSON body")
            if isinstance(parsed, list):
                parsed = {"paths": parsed}
            if not isinstance(parsed, dict):
                return err(400, "Invalid body")
            paths = parsed.get("paths", [])
            expand = truthy(parsed.get("expand", False))
        else:
            fq = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            paths = fq.get("paths", []) + fq.get("paths[]", [])
            expand = truthy((fq.get("expand") or ["false"])[0])
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list):
            return err(400, "paths must be a list")
        ix = s.index()
        out, seen = [], set()
        for p in paths:
            if not isinstance(p, str):
                continue
            p = p.strip("/")
            if p in seen:
                continue
            seen.add(p)
            if p in s.files:
                out.append(self.entry_json(s, p, False, expand))
            elif p and p in ix["children"]:
                out.append(self.entry_json(s, p, True, expand))
        return json_resp(200, out).hdr("X-Repo-Commit", s.commit)

    def r_refs(self, ctx, v):
        prs = truthy((ctx.q.get("include_prs") or ["0"])[0])
        d = {"branches": [], "converts": [], "tags": []}
        if prs:
            d["pullRequests"] = []
        for b, s in sorted(v["branches"].items()):
            if b.startswith("refs/pr/"):
                if prs:
                    d["pullRequests"].append({"name": b[8:], "ref": b, "targetCommit": s.commit})
            elif b.startswith("refs/convert/"):
                d["converts"].append({"name": b[13:], "ref": b, "targetCommit": s.commit})
            else:
                d["branches"].append({"name": b, "ref": "refs/heads/" + b,
                                      "targetCommit": s.commit})
        for t in sorted(v["tags"]):
            s = self.sim.resolve_rev(v, t)
            if s is not None:
                d["tags"].append({"name": t, "ref": "refs/tags/" + t, "targetCommit": s.commit})
        return json_resp(200, d)

    # ---- resolve / raw / resolve-cache
    def if_none_match(self, ctx, etag):
        inm = ctx.headers.get("If-None-Match")
        if not inm:
            return False
        for t in inm.split(","):
            t = t.strip()
            if t.startswith("W/"):
                t = t[2:]
            if t == "*" or t.strip('"') == etag:
                return True
        return False

    def lfs_redirect(self, ctx, v, s, e):
        ttl = self.sim.cfg("url_ttl")
        exp = int(time.time()) + int(ttl)
        loc = "%s/cdn/%s?%s" % (CDN_URL[0], e.sha256, urllib.parse.urlencode(
            [("repo", v["rid"]), ("commit", s.commit), ("Expires", str(exp)),
             ("Signature", self.sim.sign(e.sha256, exp))]))
        body = ("Found. Redirecting to %s" % loc).encode()
        return Resp(302, [("Location", loc), ("X-Repo-Commit", s.commit),
                          ("X-Linked-Etag", '"%s"' % e.sha256), ("X-Linked-Size", str(e.size)),
                          ("ETag", '"%s"' % e.sha256), ("Accept-Ranges", "bytes"),
                          ("Content-Type", "text/plain; charset=utf-8")]
                    + ([("X-Xet-Hash", e.xet)] if e.xet else []), body)

    def r_resolve(self, ctx, tdir, org, name, rev, path):
        v, tok, e = self.open_repo(ctx, tdir, org, name, True)
        if e:
            return e
        ctx.file_key = "%s/%s" % (v["rid"], path)
        s, e = self.snap(v, rev)
        if e:
            return e
        ent = s.files.get(path)
        if ent is None or not ent.alive():
            # not in the tree, or an old commit whose folder was deleted/changed
            return err(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", s.commit)])
        etag = ent.sha256 if ent.lfs else ent.oid
        if self.if_none_match(ctx, etag):
            r = Resp(304, [("X-Repo-Commit", s.commit), ("ETag", '"%s"' % etag)])
            if ent.lfs:
                r.hdr("X-Linked-Etag", '"%s"' % etag).hdr("X-Linked-Size", ent.size)
            return r
        if ent.lfs:
            return self.lfs_redirect(ctx, v, s, ent)
        loc = "/api/resolve-cache/%s/%s/%s/%s?%s" % (
            v["tdir"], v["rid"], s.commit, urllib.parse.quote(path),
            urllib.parse.urlencode([("etag", '"%s"' % ent.oid)]))
        return Resp(307, [("Location", loc), ("X-Repo-Commit", s.commit),
                          ("Content-Type", "text/plain; charset=utf-8")],
                    ("Temporary Redirect. Redirecting to %s" % loc).encode())

    def r_resolve_cache(self, ctx, tdir, org, name, rest):
        rev, prest = split_rev(rest)
        path = join_path(prest)
        ctx.key = path
        v, tok, e = self.open_repo(ctx, tdir, org, name, True)
        if e:
            return e
        ctx.file_key = "%s/%s" % (v["rid"], path)
        s, e = self.snap(v, rev)
        if e:
            return e
        ent = s.files.get(path)
        if ent is None or not ent.alive():
            return err(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", s.commit)])
        if ent.lfs:
            return self.lfs_redirect(ctx, v, s, ent)
        c = Content("resolve-cache", ctx.file_key, ent.size, abs_path=ent.abs)
        return content_resp(ctx, c, [
            ("ETag", '"%s"' % ent.oid), ("X-Repo-Commit", s.commit),
            ("Content-Type", guess_type(path)), ("Content-Disposition", disposition(path)),
            ("Last-Modified", self.date_time_string(ent.mtime_ns / 1e9))])

    def r_raw(self, ctx, tdir, org, name, rev, path):
        v, tok, e = self.open_repo(ctx, tdir, org, name, True)
        if e:
            return e
        ctx.file_key = "%s/%s" % (v["rid"], path)
        s, e = self.snap(v, rev)
        if e:
            return e
        ent = s.files.get(path)
        if ent is None or (not ent.lfs and not ent.alive()):
            return err(404, "Entry not found", "EntryNotFound", [("X-Repo-Commit", s.commit)])
        if ent.lfs:
            c = Content("raw", ctx.file_key, len(ent.pointer), data=ent.pointer)
        else:
            c = Content("raw", ctx.file_key, ent.size, abs_path=ent.abs)
        return content_resp(ctx, c, [("ETag", '"%s"' % ent.oid), ("X-Repo-Commit", s.commit),
                                     ("Content-Type", "text/plain; charset=utf-8")])


def guess_type(path):
    t = mimetypes.guess_type(path)[0]
    if t is None:
        return "application/octet-stream"
    if t.startswith("text/") or t == "application/json":
        return t + "; charset=utf-8"
    return t


def disposition(path):
    fn = path.rsplit("/", 1)[-1]
    ascii_fn = fn.encode("ascii", "replace").decode().replace('"', "_")
    return "inline; filename*=UTF-8''%s; filename=\"%s\";" % (urllib.parse.quote(fn), ascii_fn)


def sim_set_offline(sim, off):
    with sim.lock:
        if off == sim.offline_flag:
            return
        sim.offline_flag = off
    for role in ("hub", "cdn"):
        lst = sim.listeners[role]
        if off:
            lst.stop(drop=True)
        else:
            for _ in range(50):
                try:
                    lst.start()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                log("could not rebind %s port %d" % (role, lst.port))


VERBOSE = False
HUB_URL = [""]
CDN_URL = [""]


def main(argv=None):
    global VERBOSE
    ap = argparse.ArgumentParser(description="Hugging Face Hub simulator")
    ap.add_argument("--root", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cdn-port", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--conn-rate-mbps", type=float, default=0)
    ap.add_argument("--url-ttl", type=int, default=3600)
    ap.add_argument("--ready-file")
    ap.add_argument("--upstream", help="proxy every hub-port request to this base URL "
                    "(e.g. a `modelfs serve` peer) so outage modes apply to it")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--xethash", help="modelfs-xethash binary (real xetHash for Xet repos)")
    args = ap.parse_args(argv)
    if args.xethash:
        XETHASH[0] = args.xethash
    VERBOSE = args.verbose
    sim = Sim(args)
    sim.listeners["hub"] = Listener(sim, "hub", args.host, args.port)
    sim.listeners["cdn"] = Listener(sim, "cdn", args.host, args.cdn_port)
    sim.listeners["control"] = Listener(sim, "control", args.host, args.control_port)
    HUB_URL[0] = sim.listeners["hub"].url
    CDN_URL[0] = sim.listeners["cdn"].url
    stop = threading.Event()

    def on_sig(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)
    ready = json.dumps({"hub": HUB_URL[0], "cdn": CDN_URL[0],
                        "control": sim.listeners["control"].url, "pid": os.getpid()})
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(ready + "\n")
        os.replace(tmp, args.ready_file)
    sys.stdout.write(ready + "\n")
    sys.stdout.flush()
    while not stop.wait(0.2):
        pass
    for lst in sim.listeners.values():
        try:
            lst.stop(drop=True)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
