"""client.py - start/stop and drive the hub simulator (hubsim.py) from tests.

What it does: spawns hubsim.py as a subprocess (HubSim.start), talks to its
control port (faults, stats, offline, config, rescan), and writes repository
folders in the layout hubsim serves (make_repo, write_tokens, set_repo_json).
Also small helpers to compute the digests the Hub publishes (git blob sha1,
LFS pointer), for tests that want independently derived expectations.

What it does not do: it is not an HTTP client for the Hub API itself; tests
use urllib/http.client or the C client under test for that.

Example:
    with HubSim.start(root) as sim:
        sim.fault("status", status=503, route="cdn", count=2)
        ... GET sim.hub + "/org/name/resolve/main/model.gguf" ...
        assert sim.stats()["requests"]["cdn"] == 3
"""
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
HUBSIM = os.path.join(HERE, "hubsim.py")


class HubSimError(RuntimeError):
    pass


class HubSim:
    """A running simulator. Attributes: hub, cdn, control (base URLs), pid, proc."""

    def __init__(self, proc, info):
        self.proc = proc
        self.hub = info["hub"]
        self.cdn = info["cdn"]
        self.control = info["control"]
        self.pid = info["pid"]
        self.hub_port = int(self.hub.rsplit(":", 1)[1])
        self.cdn_port = int(self.cdn.rsplit(":", 1)[1])
        self.control_port = int(self.control.rsplit(":", 1)[1])

    @classmethod
    def start(cls, root, host="127.0.0.1", port=0, cdn_port=0, control_port=0,
              latency_ms=0, conn_rate_mbps=0, url_ttl=3600, ready_file=None,
              verbose=False, stderr=None, timeout=20.0, upstream=None, prefix=()):
        """Spawn hubsim.py and wait (at most `timeout` s) for its ready line.

        conn_rate_mbps is in megabits per second (1 Mbps = 125000 bytes/s).
        upstream: proxy the hub port to this URL (outage modes for a peer).
        prefix: command words put in front (e.g. ip netns exec NS)."""
        cmd = list(prefix) + [sys.executable, HUBSIM, "--root", str(root), "--host", host,
               "--port", str(port), "--cdn-port", str(cdn_port),
               "--control-port", str(control_port), "--latency-ms", str(latency_ms),
               "--conn-rate-mbps", str(conn_rate_mbps), "--url-ttl", str(url_ttl)]
        if ready_file:
            cmd += ["--ready-file", str(ready_file)]
        if verbose:
            cmd.append("--verbose")
        if upstream:
            cmd += ["--upstream", upstream]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr,
                                stdin=subprocess.DEVNULL)
        line = b""
        deadline = time.monotonic() + timeout
        try:
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HubSimError("hubsim did not become ready within %.0f s" % timeout)
                r, _, _ = select.select([proc.stdout], [], [], left)
                if not r:
                    continue
                ch = os.read(proc.stdout.fileno(), 4096)
                if not ch:
                    raise HubSimError("hubsim exited early (rc=%s)" % proc.wait())
                line += ch
            info = json.loads(line.decode().splitlines()[0])
        except BaseException:
            _kill(proc)
            raise
        return cls(proc, info)

    # ---------------- control API ----------------
    def _ctl(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise HubSimError("control %s %s -> %d %s" % (method, path, e.code,
                                                          e.read().decode(errors="replace")))

    def fault(self, kind, **params):
        """Add a fault (see README.md); returns its id."""
        spec = dict(params)
        spec["kind"] = kind
        return self._ctl("POST", "/_sim/fault", spec)["id"]

    def faults(self):
        return self._ctl("GET", "/_sim/faults")

    def oracle(self):
        """{"cdn_auth_ever", "faults": [{id, kind, route, count, fired}]};
        never reset."""
        return self._ctl("GET", "/_sim/oracle")

    def fired(self, fault_id):
        """How often the fault with this id fired so far."""
        for f in self.oracle()["faults"]:
            if f["id"] == fault_id:
                return f["fired"]
        raise HubSimError("no fault %r" % fault_id)

    def clear_faults(self):
        self._ctl("POST", "/_sim/clear", {})

    def stats(self):
        return self._ctl("GET", "/_sim/stats")

    def reset_stats(self):
        self._ctl("POST", "/_sim/reset_stats", {})

    def settled_body_bytes(self, key, quiet=0.5, timeout=20.0):
        """Body bytes sent for key ("org/name/path") once the count stopped
        changing for `quiet` seconds (a client's read-ahead may still be
        running after its reader got the bytes)."""
        get = lambda: self.stats()["body_bytes"].get(key, 0)  # noqa: E731
        deadline = time.monotonic() + timeout
        last, since = get(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            v = get()
            if v != last:
                last, since = v, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return last

    def offline(self, flag=True):
        self._ctl("POST", "/_sim/offline", {"offline": bool(flag)})

    def outage(self, mode, role="all", trickle_bps=None):
        """Whole-origin outage: none, close, reset_after_headers, 503, 429
        (Retry-After: 3600), trickle (trickle_bps, default 10 KB/s)."""
        body = {"role": role, "mode": mode}
        if trickle_bps is not None:
            body["trickle_bps"] = trickle_bps
        return self._ctl("POST", "/_sim/outage", body)

    def configure(self, **kw):
        """latency_ms, conn_rate_mbps (megabits/s, 0 = unlimited), url_ttl (s),
        quota_api, quota_resolvers, quota_pages, list_page (repos per listing page)."""
        return self._ctl("POST", "/_sim/config", kw)

    def rescan(self):
        self._ctl("POST", "/_sim/rescan", {})

    def stop(self):
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def __del__(self):
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ---------------- URL helpers ----------------
    def resolve_url(self, repo_id, path, rev="main", repo_type="model"):
        import urllib.parse
        pre = "" if repo_type == "model" else repo_type + "s/"
        return "%s/%s%s/resolve/%s/%s" % (self.hub, pre, repo_id,
                                          urllib.parse.quote(rev, safe=""),
                                          urllib.parse.quote(path))

    def api_url(self, repo_id, suffix="", repo_type="model"):
        return "%s/api/%ss/%s%s" % (self.hub, repo_type, repo_id, suffix)


def _kill(proc):
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except OSError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


# ---------------- repository builders ----------------
def repo_dir(root, repo_id, repo_type="model"):
    return os.path.join(str(root), repo_type + "s", *repo_id.split("/"))


def make_repo(root, repo_id, files=None, branch="main", repo_type="model", folder=None,
              **repo_json):
    """Write files into ROOT/{type}s/<org>/<name>/<folder or branch>/.

    files: {"path/in/repo": bytes | str (source file path, hard-linked or copied)}.
    Extra keyword arguments are merged into repo.json (private, gated, tags, ...).
    A branch named refs/pr/N is written to folder pr-N. Returns the repo folder."""
    rd = repo_dir(root, repo_id, repo_type)
    if folder is None:
        folder = branch
        if branch.startswith("refs/pr/"):
            folder = "pr-" + branch[len("refs/pr/"):]
    bd = os.path.join(rd, folder)
    os.makedirs(bd, exist_ok=True)
    for p, src in (files or {}).items():
        dst = os.path.join(bd, *p.split("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            os.unlink(dst)
        if isinstance(src, (bytes, bytearray, memoryview)):
            with open(dst, "wb") as f:
                f.write(src)
        else:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
    if repo_json:
        set_repo_json(root, repo_id, repo_type, **repo_json)
    return rd


def set_repo_json(root, repo_id, repo_type="model", **kw):
    """Merge kw into the repo's repo.json (creating it)."""
    rd = repo_dir(root, repo_id, repo_type)
    os.makedirs(rd, exist_ok=True)
    p = os.path.join(rd, "repo.json")
    conf = {}
    if os.path.exists(p):
        with open(p) as f:
            conf = json.load(f)
    conf.update(kw)
    tmp = p + ".tmp"
    with open(tmp, "w") as f:
        json.dump(conf, f, indent=1)
    os.replace(tmp, p)
    return p


def write_tokens(root, tokens):
    """tokens: {"hf_alice": "alice"} or {"hf_alice": {"user": "alice", "orgs": [...]}}."""
    d = {t: (u if isinstance(u, dict) else {"user": u}) for t, u in tokens.items()}
    p = os.path.join(str(root), "tokens.json")
    with open(p, "w") as f:
        json.dump(d, f, indent=1)
    return p


# ---------------- digests (what the Hub publishes) ----------------
def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + bytes(data)).hexdigest()


def lfs_pointer(data_or_sha256, size=None):
    if size is None:
        size = len(data_or_sha256)
        data_or_sha256 = hashlib.sha256(data_or_sha256).hexdigest()
    return ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
            % (data_or_sha256, size)).encode()
