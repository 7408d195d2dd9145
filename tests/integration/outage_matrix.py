"""outage_matrix.py - one mount driven through one outage mode of the hub
simulator, every cell of the issue-10 matrix measured: shared by
test_outage.py (asserts the limits) and bench/outage.py (prints the times).

Modes: the simulator's whole-origin outages (close, reset_after_headers,
503, 429, trickle) and a black hole: the simulator runs in a network
namespace this module makes (a veth pair with private addresses, nothing
else) and an nftables drop rule inside it swallows every packet to the
hub/CDN ports. Roles: "all" (hub and CDN fail together) or "cdn" (only the
LFS CDN fails; the hub answers).

Cells, each a (seconds, outcome) pair:
  cached    max of: a 256 KiB read of a fully cached file, stat, readdir
  small     open + read of an uncached small (non-LFS) file
  lfs       open + 64 KiB read of an uncached LFS file
  populate  open + mmap(MAP_POPULATE) of an uncached LFS file in a child;
            when the open is let through and populate does not finish in
            3 s, the child is SIGKILLed and the time to its death measured
  recovery  the outage lifted: time until an uncached read succeeds (the
            bytes are checked)
"""
import errno
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import make_repo, rand_bytes  # noqa: E402

MiB = 1 << 20
FETCH_TIMEOUT = 10
MODES = ["close", "reset_after_headers", "503", "429", "trickle", "blackhole"]
ROLES = ["all", "cdn"]

# The bounds (seconds). None: no number given, "did not hang" is
# fetch-timeout plus slack.
HANG = FETCH_TIMEOUT + 6
LIMIT_FAIL = 1.0        # an uncached read with no source up fails within 1 s
LIMIT_CACHED = 0.05     # cached read, stat, readdir
LIMIT_RECOVERY = 2.0    # hub answers again -> an uncached read succeeds
LIMIT_KILL = 1.0        # SIGKILL of a loader stuck in populate


def netns_supported():
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["ip", "netns", "list"], capture_output=True)
    return r.returncode == 0


class Netns:
    """A namespace with one veth pair; the simulator listens on the inside
    address. Everything is removed by close()."""

    def __init__(self):
        n = os.getpid() % 200 + 20
        self.name = "mfsout%d" % os.getpid()
        self.host_if, self.ns_if = "mfo%dh" % os.getpid(), "mfo%dn" % os.getpid()
        self.host_ip, self.ns_ip = "10.213.%d.1" % n, "10.213.%d.2" % n
        self.ports = []
        self.created = False

    def sh(self, *argv, check=True):
        r = subprocess.run(list(argv), capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
        return r

    def create(self):
        self.sh("ip", "netns", "add", self.name)
        self.created = True
        self.sh("ip", "link", "add", self.host_if[:15], "type", "veth", "peer", "name",
                self.ns_if[:15], "netns", self.name)
        self.sh("ip", "addr", "add", self.host_ip + "/30", "dev", self.host_if[:15])
        self.sh("ip", "link", "set", self.host_if[:15], "up")
        self.sh("ip", "-n", self.name, "addr", "add", self.ns_ip + "/30", "dev",
                self.ns_if[:15])
        self.sh("ip", "-n", self.name, "link", "set", self.ns_if[:15], "up")
        self.sh("ip", "-n", self.name, "link", "set", "lo", "up")

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def blackhole(self, ports):
        ports = ", ".join(str(p) for p in ports)
        self.sh("ip", "netns", "exec", self.name, "nft", "add table inet mfsbh")
        self.sh("ip", "netns", "exec", self.name, "nft",
                "add chain inet mfsbh in { type filter hook input priority 0; }")
        self.sh("ip", "netns", "exec", self.name, "nft",
                "add rule inet mfsbh in tcp dport { %s } counter drop" % ports)

    def dropped_packets(self):
        r = self.sh("ip", "netns", "exec", self.name, "nft", "list table inet mfsbh",
                    check=False)
        for word in r.stdout.split("packets")[1:]:
            return int(word.split()[0])
        return 0

    def lift(self):
        self.sh("ip", "netns", "exec", self.name, "nft", "delete table inet mfsbh",
                check=False)

    def close(self):
        if self.created:
            self.sh("ip", "netns", "del", self.name, check=False)
            self.sh("ip", "link", "del", self.host_if[:15], check=False)
            self.created = False


def timed(fn):
    """(seconds, "ok" | errno name, value)."""
    t0 = time.monotonic()
    try:
        v = fn()
        return time.monotonic() - t0, "ok", v
    except OSError as e:
        return time.monotonic() - t0, errno.errorcode.get(e.errno, str(e.errno)), None


def read_at(path, off, n):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, off)
    finally:
        os.close(fd)


POPULATE = r"""
import mmap, os, sys, time
t = time.monotonic()
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
except OSError as e:
    print("open-err %d %.4f" % (e.errno, time.monotonic() - t), flush=True)
    sys.exit(0)
print("open-ok %.4f" % (time.monotonic() - t), flush=True)
try:
    m = mmap.mmap(fd, 0, mmap.MAP_SHARED | mmap.MAP_POPULATE, mmap.PROT_READ)
    print("populated %.4f" % (time.monotonic() - t), flush=True)
except OSError as e:
    print("mmap-err %d %.4f" % (e.errno, time.monotonic() - t), flush=True)
"""


def populate_cell(path, stuck_s=3.0):
    """(seconds, outcome, detail): open refused, populated, or killed."""
    p = subprocess.Popen([sys.executable, "-c", POPULATE, path], stdout=subprocess.PIPE,
                         text=True)
    try:
        first = p.stdout.readline().split()
        if not first:
            return None, "no-output", None
        if first[0] == "open-err":
            return float(first[2]), errno.errorcode.get(int(first[1]), first[1]), None
        # open let through: populate either completes or the loader is stuck
        t0 = time.monotonic()
        while time.monotonic() - t0 < stuck_s and p.poll() is None:
            time.sleep(0.05)
        rest = p.stdout.read().split() if p.poll() is not None else []
        if rest:
            return float(rest[1]) if rest[0] == "populated" else float(rest[2]), rest[0], None
        t1 = time.monotonic()
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        return time.monotonic() - t1, "killed", None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


class OutageRun:
    """One mode x role on a fresh simulator and mount of `case` (a
    harness.MountCase). Call measure(); results in self.cells."""

    def __init__(self, case, mode, role="all"):
        self.case, self.mode, self.role = case, mode, role
        self.cells = {}
        self.fault_fired = None
        self.ns = None

    def setup(self):
        c = self.case
        self.files = {
            "cached.gguf": rand_bytes(2 * MiB, seed=101),
            "w1.gguf": rand_bytes(3 * MiB, seed=102),
            "w2.gguf": rand_bytes(3 * MiB, seed=103),
            "w3.gguf": rand_bytes(3 * MiB, seed=104),
            "small-a.txt": b"a" * 1000,
            "small-r.txt": b"r" * 1000,
        }
        make_repo(c.root, "Org/m", self.files)
        if self.mode == "blackhole":
            self.ns = Netns()
            c.addCleanup(self.ns.close)
            self.ns.create()
            c.start_sim(host=self.ns.ns_ip, prefix=self.ns.prefix())
        else:
            c.start_sim()
        self.mp = c.mount(args=["--fetch-timeout", str(FETCH_TIMEOUT)])
        self.repo = os.path.join(self.mp, "Org", "m")
        # metadata and one whole file cached while the hub is fine
        os.listdir(self.repo)
        for n in self.files:
            os.stat(os.path.join(self.repo, n))
        with open(os.path.join(self.repo, "cached.gguf"), "rb") as f:
            assert f.read() == self.files["cached.gguf"]

    def start_outage(self):
        sim = self.case.sim
        if self.mode == "none":     # the healthy baseline (bench/outage.py)
            return
        if self.mode == "blackhole":
            ports = [sim.cdn_port] if self.role == "cdn" else [sim.hub_port, sim.cdn_port]
            self.ns.blackhole(ports)
        else:
            sim.outage(self.mode, role="cdn" if self.role == "cdn" else "all")

    def lift_outage(self):
        if self.mode == "none":
            return
        if self.mode == "blackhole":
            self.fault_fired = self.ns.dropped_packets()
            self.ns.lift()
        else:
            hits = self.case.sim.stats().get("outage_hits", {})
            self.fault_fired = sum(hits.values())
            self.case.sim.outage("none", role="all")

    def p(self, name):
        return os.path.join(self.repo, name)

    def cached_cell(self):
        """Worst of: a cached read, stat, readdir; the third value names the
        times of each (best of three tries each)."""
        worst, outcome, each = 0.0, "ok", {}
        for name, fn in (("read", lambda: read_at(self.p("cached.gguf"), 512 * 1024,
                                                   256 * 1024)),
                         ("stat", lambda: os.stat(self.p("w1.gguf"))),
                         ("readdir", lambda: os.listdir(self.repo))):
            # best of three: a scheduling hiccup on a loaded machine is not
            # a wait on a source (that would cost every try)
            t, o, _ = min((timed(fn) for _ in range(3)), key=lambda r: r[0])
            each[name] = round(t, 4)
            worst = max(worst, t)
            if o != "ok":
                outcome = o
        return worst, outcome, each

    def status(self):
        """`modelfs status --json` of this mount's cache, parsed."""
        import json
        r = self.case.run_modelfs("status", "--cache", os.path.join(self.case.tmp, "cache"),
                                  "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def measure(self, during=None):
        self.setup()
        self.start_outage()
        self.cells["cached"] = self.cached_cell()
        self.cells["small"] = timed(lambda: read_at(self.p("small-a.txt"), 0, 4096))
        self.cells["lfs"] = timed(lambda: read_at(self.p("w1.gguf"), MiB, 64 * 1024))
        self.cells["populate"] = populate_cell(self.p("w2.gguf"))
        self.cells["cached2"] = self.cached_cell()
        if during:
            during(self)
        self.lift_outage()
        t0 = time.monotonic()
        want = self.files["w3.gguf"][2 * MiB:2 * MiB + 65536]
        got, outcome = None, "timeout"
        while time.monotonic() - t0 < HANG:
            t, o, v = timed(lambda: read_at(self.p("w3.gguf"), 2 * MiB, 65536))
            if o == "ok":
                got, outcome = v, "ok" if v == want else "WRONG-BYTES"
                break
            time.sleep(0.1)
        self.cells["recovery"] = (time.monotonic() - t0, outcome, got)
        return self.cells


def goes_down(mode):
    """Modes that take the failing origin down (the others answer: 429 is
    an answer, a trickle delivers bytes)."""
    return mode in ("close", "reset_after_headers", "503", "blackhole")


def expected(mode, role):
    """What each cell should end with (an outcome or a tuple of the
    acceptable ones), and its limit in seconds."""
    fail = ("EIO", LIMIT_FAIL)
    small = ("ok", HANG) if role == "cdn" or mode == "trickle" else fail
    # a trickle still delivers: a 64 KiB read may complete (it is answered
    # as soon as its own bytes arrived) or fail at --fetch-timeout
    lfs = (("ok", "EIO"), HANG) if mode == "trickle" else fail
    populate = ("killed", LIMIT_KILL) if mode == "trickle" else fail
    return {"cached": ("ok", LIMIT_CACHED), "cached2": ("ok", LIMIT_CACHED), "small": small,
            "lfs": lfs, "populate": populate, "recovery": ("ok", LIMIT_RECOVERY)}
