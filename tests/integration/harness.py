"""harness.py - real mounts against the real hub simulator, cleaned up always.

Each test gets a temporary directory holding the simulator's repository
root, one or more cache directories and mount points. Everything a test
starts (simulator, mount daemons) is registered for cleanup before it is
used, so a failing assertion still unmounts and stops it. On failure the
daemon log of every mount is printed, which is usually the whole story.

Two oracles hold for every test, checked at its end for every simulator
it started (start_sim, srvutil.start_second_sim): the CDN never saw an
Authorization header, and every fault the test told a simulator to inject
fired at least once (assertFired checks exact counts). Either failing
fails the test.

Environment: MODELFS_BIN (the built binary), MODELFS_BUILD (the build
directory, for examples/), set by tests/integration/meson.build.
"""
import errno
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "hubsim"))

from client import HubSim, make_repo, set_repo_json, write_tokens  # noqa: E402,F401

MODELFS = os.environ.get("MODELFS_BIN", os.path.join(SRC, "build", "cli", "modelfs"))
BUILD = os.environ.get("MODELFS_BUILD", os.path.join(SRC, "build"))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fuse_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 4 and parts[4] == path:
                return True
    return False


def rand_bytes(n, seed):
    """Deterministic incompressible bytes (fast: sha256 counter blocks)."""
    out = bytearray()
    blk = hashlib.sha256(str(seed).encode()).digest()
    # 1 MiB of pseudo-random bytes, then varied by xor with a counter so
    # big files are not periodic (dedup-by-block would otherwise hide bugs).
    base = bytearray()
    h = blk
    while len(base) < (1 << 20):
        h = hashlib.sha256(h).digest()
        base += h
    i = 0
    while len(out) < n:
        tag = hashlib.sha256(blk + i.to_bytes(8, "little")).digest()
        chunk = bytearray(base)
        chunk[0:32] = tag
        chunk[len(chunk) // 2:len(chunk) // 2 + 32] = tag
        out += chunk
        i += 1
    return bytes(out[:n])


class MountCase(unittest.TestCase):
    """Base class: self.tmp, self.root (simulator repos), helpers below."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mfs-it-")
        self.root = os.path.join(self.tmp, "hub")
        os.makedirs(self.root)
        self.sim = None
        self.mounts = []  # (mountpoint, cache)
        self.addCleanup(self._cleanup)

    # --- simulator ---------------------------------------------------------
    def start_sim(self, **kw):
        log = open(os.path.join(self.tmp, "hubsim.log"), "ab")
        self.addCleanup(log.close)
        self.sim = HubSim.start(self.root, stderr=log, **kw)
        self.check_sim(self.sim)
        return self.sim

    def check_sim(self, sim, faults_must_fire=True):
        """At the end of the test (before `sim` stops: call this after
        registering its stop), fail the test if its CDN ever saw an
        Authorization header, or if a fault it was told to inject never
        fired (a fault test whose fault did not happen proves nothing)."""
        self.addCleanup(self._check_oracle, sim, faults_must_fire)

    def _check_oracle(self, sim, faults_must_fire):
        if sim.proc.poll() is not None:
            return  # stopped by the test itself
        o = sim.oracle()
        problems = []
        if o["cdn_auth_ever"]:
            problems.append("the CDN saw an Authorization header %d time(s): the token "
                            "must never leave the hub" % o["cdn_auth_ever"])
        if faults_must_fire:
            for f in o["faults"]:
                if f["fired"] == 0:
                    problems.append("fault %d (%s on %s) was never injected" %
                                    (f["id"], f["kind"], f["route"]))
        if problems:
            raise AssertionError("simulator %s: %s" % (sim.hub, "; ".join(problems)))

    def assertFired(self, sim, fault_id, times=None):
        """The fault fired (exactly `times` times if given)."""
        n = sim.fired(fault_id)
        if times is None:
            self.assertGreater(n, 0, "fault %d never fired" % fault_id)
        else:
            self.assertEqual(n, times, "fault %d fired %d times, not %d" % (fault_id, n, times))

    # --- mounts ------------------------------------------------------------
    def run_modelfs(self, *args, env=None, timeout=60, check=False):
        e = dict(os.environ)
        for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT",
                  "MODELFS_CACHE", "HF_TOKEN_PATH"):
            e.pop(k, None)
        e["HF_HOME"] = os.path.join(self.tmp, "hfhome")
        if env:
            e.update(env)
        r = subprocess.run([MODELFS] + list(args), env=e, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            self.fail("modelfs %s failed (%d): %s%s" % (" ".join(args), r.returncode,
                                                          r.stdout, r.stderr))
        return r

    def mount(self, name="mnt", cache="cache", args=(), env=None, endpoint=True):
        mp = os.path.join(self.tmp, name)
        cache_dir = os.path.join(self.tmp, cache)
        os.makedirs(mp, exist_ok=True)
        self.mounts.append((mp, cache_dir))
        argv = ["mount", mp, "--cache", cache_dir]
        if endpoint and self.sim is not None:
            argv += ["--endpoint", self.sim.hub]
        argv += list(args)
        self.run_modelfs(*argv, env=env, check=True)
        self.assertTrue(fuse_mounted(mp), "mount returned 0 but %s is not mounted" % mp)
        return mp

    def umount(self, mp):
        r = self.run_modelfs("umount", mp)
        if r.returncode != 0:
            self.fail("umount %s failed: %s" % (mp, r.stderr))
        self.assertFalse(fuse_mounted(mp))

    def log_of(self, cache="cache"):
        p = os.path.join(self.tmp, cache, "modelfs.log")
        if not os.path.exists(p):
            return ""
        with open(p, errors="replace") as f:
            return f.read()

    def _cleanup(self):
        failed = self._outcome_failed()
        for mp, cache in self.mounts:
            if fuse_mounted(mp):
                r = subprocess.run([MODELFS, "umount", mp], capture_output=True, timeout=60)
                if r.returncode != 0 and fuse_mounted(mp):
                    subprocess.run(["umount", "-l", mp], capture_output=True)
            if failed:
                p = os.path.join(cache, "modelfs.log")
                if os.path.exists(p):
                    with open(p, errors="replace") as f:
                        sys.stdout.write("---- %s ----\n%s\n" % (p, f.read()[-6000:]))
        if self.sim is not None:
            self.sim.stop()  # check_sim's cleanup ran before this one
        if failed:
            p = os.path.join(self.tmp, "hubsim.log")
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    sys.stdout.write("---- hubsim.log ----\n%s\n" % f.read()[-3000:])
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _outcome_failed(self):
        # Python 3.11+: _Outcome.success is this test's own verdict (the
        # shared result would count earlier tests' failures too).
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        if hasattr(outcome, "success"):
            return not outcome.success
        errors = getattr(outcome, "errors", None)
        return bool(errors and any(e for _, e in errors))

    # --- assertions ----------------------------------------------------------
    def body_bytes(self, key):
        return self.sim.stats()["body_bytes"].get(key, 0)

    def assertFileEqual(self, path, data):
        with open(path, "rb") as f:
            got = f.read()
        self.assertEqual(len(got), len(data), path)
        self.assertTrue(got == data, "content of %s differs" % path)

    def assertOSError(self, err, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.errno, err,
                         "expected %s, got %s" % (errno.errorcode[err], cm.exception))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def wait_until(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


# --- the block store's files (cache/blockstore.c documents the format) -----

_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5, _M = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5, (1 << 64) - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M


def _xround(acc, v):
    return (_rotl((acc + v * _P2) & _M, 31) * _P1) & _M


def xxh64(data, seed=0):
    """XXH64 (for records: short inputs, speed does not matter)."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed, (seed - _P1) & _M]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _xround(v[k], int.from_bytes(data[i + 8 * k:i + 8 * k + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M
        for k in range(4):
            h = ((h ^ _xround(0, v[k])) * _P1 + _P4) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        h ^= _xround(0, int.from_bytes(data[i:i + 8], "little"))
        h = (_rotl(h, 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        h ^= (int.from_bytes(data[i:i + 4], "little") * _P1) & _M
        h = (_rotl(h, 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M
        h = (_rotl(h, 11) * _P1) & _M
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M
    h ^= h >> 29
    h = (h * _P3) & _M
    return h ^ (h >> 32)


class CachedBlock:
    """One block present in a cache: its record and where its payload is."""

    def __init__(self, rec_path, data_path, idx, rec, slot):
        self.rec_path, self.data_path, self.idx, self.rec = rec_path, data_path, idx, rec
        self.codec = rec[4]
        self.raw = int.from_bytes(rec[8:12], "little")
        self.stored = int.from_bytes(rec[12:16], "little")
        self.offset = idx * slot          # of the payload in data_path
        self.stored_bytes = 32 + self.stored  # what the index counts

    def rec_offset(self):
        return 32 + 32 * self.idx


def seal_record(rec, idx):
    """A record with its own checksum made right for block idx."""
    return rec[:24] + xxh64(rec[:24], idx).to_bytes(8, "little")


def cache_blocks(cache_dir):
    """Every block with a valid record under cache_dir/blobs, as CachedBlock."""
    out = []
    for rec_path in sorted(glob.glob(os.path.join(cache_dir, "blobs", "??", "*.rec"))):
        with open(rec_path, "rb") as f:
            body = f.read()
        slot = int.from_bytes(body[8:12], "little")
        for off in range(32, len(body) - 31, 32):
            rec, idx = body[off:off + 32], (off - 32) // 32
            if rec[:4] == b"MFSR" and seal_record(rec, idx) == rec:
                out.append(CachedBlock(rec_path, rec_path[:-4], idx, rec, slot))
    return out
