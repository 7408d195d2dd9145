"""test_examples.py - every file in examples/ run against a real mount, so none can rot.

What it covers:
- safetensors_mmap through the mount on a generated 3-shard checkpoint
  (model-0000N-of-00003.safetensors + model.safetensors.index.json): the
  listing equals the one of the local file, the checksum of one named tensor
  equals FNV-1a 64 computed here in Python from the local file, and the
  simulator served only the header's and that tensor's 1 MiB blocks (plus
  <= 2 MiB of kernel read-ahead); the other shards are not touched;
- gguf_info through the mount prints what it prints for the local file;
- examples/llama_cpp.sh run as a user would (mount, ls, prefetch/pin when the
  command exists, llama-cli -m <mounted path>, umount), with LLAMA_CLI set to
  a shim that runs the real llama.cpp in node-llama-cpp: its text equals a
  local run with the same prompt;
- (examples/pin_models.sh belongs to the cache commands and is run by
  tests/integration/test_cache_cmds.py);
- examples/modelfs.service: `systemd-analyze verify` (binary path pointed at
  the build), every option of ExecStart is one `modelfs mount --help` lists,
  and its ExecStartPre/ExecStart/ExecStop lines, run with /models and the
  cache moved into the test directory, mount with allow_other (another user
  reads a file) and unmount.
It does not boot systemd or install anything outside the test directory.
Needs tests/llama/node_modules for the llama.cpp script (fails, not skips,
when it is missing: CI installs it).
"""
import atexit
import json
import os
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile

from harness import BUILD, MODELFS, SRC, MountCase, fuse_mounted, make_repo

EXAMPLES = os.path.join(SRC, "examples")
ST_GEN = os.path.join(SRC, "tests", "gen", "safetensors_gen.py")
GGUF_GEN = os.path.join(SRC, "tests", "gen", "gguf_gen.py")
ST_MMAP = os.path.join(BUILD, "examples", "safetensors_mmap")
GGUF_INFO = os.path.join(BUILD, "examples", "gguf_info")
LLAMA_DIR = os.path.join(SRC, "tests", "llama")
MiB = 1 << 20
SHARDS = ["model-%05d-of-00003.safetensors" % i for i in (1, 2, 3)]

SHIM = r"""#!/bin/sh
# llama-cli stand-in: -m MODEL -p PROMPT -n TOKENS -> the real llama.cpp in node-llama-cpp.
m= p= n=8
while [ $# -gt 0 ]; do
    case "$1" in
        -m) m=$2; shift 2 ;;
        -p) p=$2; shift 2 ;;
        -n) n=$2; shift 2 ;;
        *) echo "shim: unsupported option $1" >&2; exit 2 ;;
    esac
done
exec node "%s" "$m" --prompt "$p" --tokens "$n"
""" % os.path.join(LLAMA_DIR, "run_llama.mjs")


class _Files:
    """Generated models, made once per process, removed at exit."""
    dir = None

    @classmethod
    def get(cls):
        if cls.dir is None:
            cls.dir = tempfile.mkdtemp(prefix="mfs-examples-")
            atexit.register(shutil.rmtree, cls.dir, True)
            subprocess.run([sys.executable, ST_GEN, os.path.join(cls.dir, "st"), "--size",
                            "32M", "--shards", "3", "--seed", "5"], check=True,
                           stdout=subprocess.DEVNULL, timeout=300)
            subprocess.run([sys.executable, GGUF_GEN, os.path.join(cls.dir, "m.gguf"),
                            "--size", "32M", "--seed", "9"], check=True,
                           stdout=subprocess.DEVNULL, timeout=120)
        return cls.dir


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def st_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        hdr = json.loads(f.read(n))
    hdr.pop("__metadata__", None)
    return 8 + n, hdr


def blocks(start, end):
    """The set of 1 MiB block indexes covering [start, end)."""
    return set(range(start // MiB, (end - 1) // MiB + 1)) if end > start else set()


def run(args, timeout=120, **kw):
    """subprocess.run, but a timeout kills the whole process group (a script's
    children too) so nothing outlives the test."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
        raise AssertionError("%s did not end within %d s" % (" ".join(args), timeout))
    return subprocess.CompletedProcess(args, p.returncode, out, err)


class Readers(MountCase):
    def setUp(self):
        super().setUp()
        d = _Files.get()
        files = {n: os.path.join(d, "st", n) for n in SHARDS}
        files["model.safetensors.index.json"] = os.path.join(d, "st",
                                                            "model.safetensors.index.json")
        files["config.json"] = os.path.join(d, "st", "config.json")
        files["m.gguf"] = os.path.join(d, "m.gguf")
        make_repo(self.root, "Org/st", files)
        self.local = os.path.join(d, "st")
        self.start_sim()
        self.mp = self.mount(args=["--fetch-timeout", "10"])
        self.base = os.path.join(self.mp, "Org", "st")

    def test_safetensors_one_tensor_fetches_only_its_blocks(self):
        with open(os.path.join(self.base, "model.safetensors.index.json")) as f:
            weight_map = json.load(f)["weight_map"]
        shard = SHARDS[1]
        local = os.path.join(self.local, shard)
        size = os.path.getsize(local)
        data_start, hdr = st_header(local)
        # The biggest tensor of the middle shard lying well inside the file,
        # so neither the header's blocks nor end-of-file hide extra fetches.
        inside = [(v["data_offsets"][1] - v["data_offsets"][0], k) for k, v in hdr.items()
                  if weight_map.get(k) == shard
                  and data_start + v["data_offsets"][0] >= 2 * MiB
                  and data_start + v["data_offsets"][1] <= size - 3 * MiB]
        self.assertTrue(inside, "no tensor in the middle of %s: generator changed?" % shard)
        _, name = max(inside)
        b, e = (data_start + x for x in hdr[name]["data_offsets"])
        with open(local, "rb") as f:
            f.seek(b)
            want_sum = "%016x" % fnv1a64(f.read(e - b))

        r = run([ST_MMAP, os.path.join(self.base, shard), name])
        self.assertEqual(r.returncode, 0, r.stderr)
        lr = run([ST_MMAP, local, name])
        self.assertEqual(lr.returncode, 0, lr.stderr)
        got, ref = r.stdout.splitlines(), lr.stdout.splitlines()
        # The first line names the file; everything else must be identical.
        self.assertEqual(got[0].split(" (", 1)[1], ref[0].split(" (", 1)[1])
        self.assertEqual(got[1:], ref[1:])
        for k, v in hdr.items():  # names, dtypes and shapes are all listed
            self.assertIn("  %s %s [%s]" % (k, v["dtype"].upper(),
                                             ", ".join(map(str, v["shape"]))), r.stdout)
        self.assertEqual(got[-1], "checksum %s fnv1a64=%s bytes=%d" % (name, want_sum, e - b))

        st = self.sim.stats()["body_bytes"]
        need = len(blocks(0, data_start) | blocks(b, e)) * MiB
        fetched = st.get("Org/st/" + shard, 0)
        self.assertGreaterEqual(fetched, min(need, size) - MiB)
        self.assertLessEqual(fetched, need + 2 * MiB,
                             "fetched %d bytes of %s for a %d-byte tensor (budget %d)"
                             % (fetched, shard, e - b, need + 2 * MiB))
        for other in (SHARDS[0], SHARDS[2]):
            self.assertEqual(st.get("Org/st/" + other, 0), 0, other)

    def test_gguf_info_prints_what_it_prints_locally(self):
        local = os.path.join(_Files.get(), "m.gguf")
        for extra in ([], ["--json"]):
            r = run([GGUF_INFO] + extra + [os.path.join(self.base, "m.gguf")])
            lr = run([GGUF_INFO] + extra + [local])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.replace(os.path.join(self.base, "m.gguf"), "F"),
                             lr.stdout.replace(local, "F"))
        self.assertLess(self.sim.stats()["body_bytes"].get("Org/st/m.gguf", 0),
                        0.05 * os.path.getsize(local))


class Scripts(MountCase):
    def setUp(self):
        super().setUp()
        self.gguf = os.path.join(_Files.get(), "m.gguf")
        make_repo(self.root, "TheOrg/tiny-llama", {"model-q8_0.gguf": self.gguf,
                                                   "config.json": b"{}"})
        self.start_sim()

    def env(self, **kw):
        e = dict(os.environ)
        for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_TOKEN_PATH"):
            e.pop(k, None)
        e.update(HF_HOME=os.path.join(self.tmp, "hfhome"), HF_ENDPOINT=self.sim.hub,
                 MODELFS_CACHE=os.path.join(self.tmp, "cache"), MODELFS=MODELFS)
        e.update(kw)
        return e

    def modelfs_has(self, command):
        r = run([MODELFS, "--help"], timeout=30)
        return any(line.split()[:1] == [command] for line in r.stdout.splitlines())

    def test_llama_cpp_script(self):
        if not os.path.isdir(os.path.join(LLAMA_DIR, "node_modules", "node-llama-cpp")):
            self.fail("tests/llama/node_modules is missing: run "
                      "`cd tests/llama && npm install --no-audit --no-fund` (CI does)")
        shim = os.path.join(self.tmp, "llama-cli")
        with open(shim, "w") as f:
            f.write(SHIM)
        os.chmod(shim, 0o755)
        models = os.path.join(self.tmp, "models")
        self.mounts.append((models, os.path.join(self.tmp, "cache")))
        prompt = "Once upon a time"
        r = run(["sh", os.path.join(EXAMPLES, "llama_cpp.sh"), "TheOrg/tiny-llama",
                 "model-q8_0.gguf", prompt],
                env=self.env(MODELS=models, LLAMA_CLI=shim, UMOUNT="1"), timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("model-q8_0.gguf", r.stdout)   # the ls step
        out = json.loads(r.stdout.strip().splitlines()[-1])
        local = run([shim, "-m", self.gguf, "-p", prompt, "-n", "16"], timeout=120)
        self.assertEqual(local.returncode, 0, local.stderr)
        self.assertEqual(out["text"], json.loads(local.stdout)["text"])
        self.assertEqual(out["tokens"], 16)
        self.assertFalse(fuse_mounted(models), "UMOUNT=1 left the mount behind")
        got = self.sim.stats()["body_bytes"].get("TheOrg/tiny-llama/model-q8_0.gguf", 0)
        self.assertGreaterEqual(got, os.path.getsize(self.gguf))
        if self.modelfs_has("prefetch"):
            # prefetch + pin + the load on the same cache: one copy crossed the wire.
            self.assertNotIn("no prefetch/pin", r.stderr)
            self.assertLessEqual(got, 1.02 * os.path.getsize(self.gguf))


class SystemdUnit(MountCase):
    UNIT = os.path.join(EXAMPLES, "modelfs.service")

    def unit(self):
        sections, cur = {}, None
        with open(self.UNIT) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                if line.startswith("["):
                    cur = sections.setdefault(line.strip("[]"), [])
                    continue
                k, _, v = line.partition("=")
                cur.append((k.strip(), v.strip()))
        return sections

    def exec_lines(self, key):
        return [shlex.split(v) for k, v in self.unit()["Service"] if k == key]

    def test_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("no systemd-analyze; the option and run tests still apply")
        # verify insists the ExecStart binary exists: point it at the build.
        text = open(self.UNIT).read().replace("/usr/local/bin/modelfs", MODELFS)
        p = os.path.join(self.tmp, "modelfs.service")
        with open(p, "w") as f:
            f.write(text)
        r = run(["systemd-analyze", "verify", p], timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "")

    def test_options_are_ones_modelfs_mount_lists(self):
        (start,) = self.exec_lines("ExecStart")
        (stop,) = self.exec_lines("ExecStop")
        self.assertEqual(start[0], stop[0])
        self.assertEqual(start[1:3], ["mount", "/models"])
        self.assertEqual(stop[1:], ["umount", "/models"])
        helptext = run([MODELFS, "mount", "--help"]).stdout
        for a in start[3:]:
            if a.startswith("-"):
                self.assertRegex(helptext, r"(^|\s|,)%s(\s|$)" % a, a)
        self.assertIn("--allow-other", start)
        svc = dict(self.unit()["Service"])
        self.assertEqual(svc["Type"], "forking")  # mount returns once live
        self.assertEqual(dict(self.unit()["Install"])["WantedBy"], "multi-user.target")

    def test_unit_commands_mount_for_everyone_and_unmount(self):
        os.chmod(self.tmp, 0o755)  # the other user must reach the mount point
        mp = os.path.join(self.tmp, "models")
        cache = os.path.join(self.tmp, "varcache")
        self.mounts.append((mp, cache))
        make_repo(self.root, "Org/m", {"config.json": b'{"a": 1}\n'})
        self.start_sim()

        def sub(argv):
            out = []
            for a in argv:
                a = a.replace("/usr/local/bin/modelfs", MODELFS)
                a = a.replace("/var/cache/modelfs", cache)
                if a == "/models":
                    a = mp
                out.append(a)
            return out

        env = dict(os.environ, HF_ENDPOINT=self.sim.hub, HF_HOME=os.path.join(self.tmp, "hf"))
        for key in ("ExecStartPre", "ExecStart"):
            for argv in self.exec_lines(key):
                r = run(sub(argv), env=env)
                self.assertEqual(r.returncode, 0, "%s: %s" % (argv, r.stderr))
        self.assertTrue(fuse_mounted(mp))
        opts = [line.split() for line in open("/proc/self/mountinfo")
                if line.split()[4] == os.path.realpath(mp)][0]
        self.assertIn("allow_other", opts[-1].split(","))
        path = os.path.join(mp, "Org", "m", "config.json")
        if shutil.which("setpriv") and os.geteuid() == 0:
            r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                     "cat", path])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, '{"a": 1}\n')
        for argv in self.exec_lines("ExecStop"):
            r = run(sub(argv), env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(fuse_mounted(mp))
