"""test_gen.py - tests of the model generators, the mmap examples, and real llama.cpp.

What it covers:
- gguf_gen.py / safetensors_gen.py: same seed -> identical bytes (sha256),
  other seed -> different bytes; the files are parsed here by an independent
  reader (GGUF header, every KV, alignment, tensor offsets inside the file,
  Q8_0 block scales; safetensors header padding, contiguous offsets, dtype
  and shape sizes, index.json consistency, value statistics); shards hold
  exactly the bytes of the unsplit model.
- examples/gguf_info.c and examples/safetensors_mmap.c, built here with cc
  (under ASan+UBSan when the compiler supports it) or taken from meson via
  $GGUF_INFO / $SAFETENSORS_MMAP: output agrees with the Python reader and
  with checksums computed in Python; only header (and asked-for tensor) pages
  become resident; truncated, hostile and fuzzed files give exit 1, never a
  crash or sanitizer report.
- When tests/llama/node_modules exists: node-llama-cpp's llama.cpp loads a
  ~32 MB generated model with and without mmap and as 3 shards, and produces
  the same text each time.

It does not test 1 GB generation (too slow for a unit run: see README).
"""
import atexit
import ctypes
import hashlib
import json
import math
import mmap
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GGUF_GEN = os.path.join(HERE, "gguf_gen.py")
ST_GEN = os.path.join(HERE, "safetensors_gen.py")
LLAMA_DIR = os.path.join(ROOT, "tests", "llama")
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")

TOOLS = {}        # name -> (path, sanitized?)


class _Tmp:
    """Scratch directory, made on first use and removed at exit. (pyrun.py
    loads test files without registering them in sys.modules, so unittest
    would not call a setUpModule here.)"""
    path = None

    def __fspath__(self):
        if _Tmp.path is None:
            _Tmp.path = tempfile.mkdtemp(prefix="modelfs-gen-")
            atexit.register(shutil.rmtree, _Tmp.path, True)
        return _Tmp.path


TMP = _Tmp()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                return h.hexdigest()
            h.update(b)


def run_gen(script, *args):
    r = subprocess.run([sys.executable, script] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError("%s failed: %s" % (script, r.stderr))
    return json.loads(r.stdout)


_CACHE = {}


def gguf_model(name, *args):
    """Generate once per test run (cached by name)."""
    if name not in _CACHE:
        _CACHE[name] = run_gen(GGUF_GEN, os.path.join(TMP, name), *args)
    return _CACHE[name]


def st_model(name, *args):
    if name not in _CACHE:
        _CACHE[name] = run_gen(ST_GEN, os.path.join(TMP, name), *args)
    return _CACHE[name]


# ---------------------------------------------------------------- GGUF reader
# Written from the GGUF spec, independently of gguf_gen.py's writer.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
            7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_TYPE_BLOCK = {0: (1, 4), 1: (1, 2), 8: (32, 34), 30: (1, 2)}


class GGUF:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.size = len(self.raw)
        self.pos = 0
        assert self._take(4) == b"GGUF", "bad magic"
        self.version, = self._unpack("<I")
        self.n_tensors, self.n_kv = self._unpack("<QQ")
        self.kv = {}
        self.kv_order = []
        for _ in range(self.n_kv):
            key = self._str()
            vtype, = self._unpack("<I")
            self.kv[key] = (vtype, self._value(vtype))
            self.kv_order.append(key)
        self.alignment = self.kv.get("general.alignment", (4, 32))[1]
        self.tensors = []
        for _ in range(self.n_tensors):
            name = self._str()
            nd, = self._unpack("<I")
            ne = list(self._unpack("<%dQ" % nd))
            gtype, off = self._unpack("<IQ")
            self.tensors.append((name, ne, gtype, off))
        self.table_end = self.pos
        a = self.alignment
        self.data_offset = (self.pos + a - 1) // a * a

    def _take(self, n):
        if self.pos + n > self.size:
            raise ValueError("truncated")
        b = self.raw[self.pos:self.pos + n]
        self.pos += n
        return b

    def _unpack(self, fmt):
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))

    def _str(self):
        n, = self._unpack("<Q")
        return self._take(n).decode("utf-8")

    def _value(self, t):
        if t == 8:
            return self._str()
        if t == 9:
            et, n = self._unpack("<IQ")
            return [self._value(et) for _ in range(n)]
        return self._unpack(_SCALARS[t])[0]

    def nbytes(self, ne, gtype):
        blk, sz = _TYPE_BLOCK[gtype]
        n = 1
        for x in ne:
            n *= x
        assert ne[0] % blk == 0
        return n // blk * sz

    def tensor_bytes(self, name):
        for n, ne, t, off in self.tensors:
            if n == name:
                s = self.data_offset + off
                return self.raw[s:s + self.nbytes(ne, t)]
        raise KeyError(name)


def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    hlen, = struct.unpack("<Q", raw[:8])
    header = raw[8:8 + hlen]
    return raw, hlen, header, json.loads(header)


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


# --------------------------------------------------------- examples building
def build_tools():
    """Build both examples with cc into TMP, with sanitizers when possible."""
    if TOOLS:
        return TOOLS
    cc = os.environ.get("CC", "cc")
    base = ["-std=c17", "-D_GNU_SOURCE", "-D_FILE_OFFSET_BITS=64", "-Wall",
            "-Wextra", "-Werror", "-O1", "-g"]
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
           "-fno-omit-frame-pointer"]
    for name in ("gguf_info", "safetensors_mmap"):
        src = os.path.join(ROOT, "examples", name + ".c")
        out = os.path.join(TMP, name)
        sanitized = True
        r = subprocess.run([cc] + base + san + ["-o", out, src],
                           capture_output=True, text=True)
        if r.returncode == 0:
            probe = subprocess.run([out], capture_output=True, env=tool_env())
            sanitized = probe.returncode == 2       # usage error, sanitizer runtime works
        if r.returncode != 0 or not sanitized:
            sanitized = False
            r = subprocess.run([cc] + base + ["-o", out, src],
                               capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("cannot build %s: %s" % (name, r.stderr))
        TOOLS[name] = (out, sanitized)
    return TOOLS


def tool_env():
    env = dict(os.environ)
    # Sanitizer findings must not look like the tools' own exit 1.
    env["ASAN_OPTIONS"] = "exitcode=99:detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "exitcode=98:print_stacktrace=1"
    return env


def run_tool(name, *args, exe=None):
    exe = exe or build_tools()[name][0]
    return subprocess.run([exe] + [str(a) for a in args], capture_output=True,
                          env=tool_env(), timeout=120)


# --------------------------------------------------------- page residency
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                       ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def resident_pages(path):
    """Indices of the file's pages present in the page cache (mincore)."""
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            n = (size + PAGE - 1) // PAGE
            vec = (ctypes.c_ubyte * n)()
            if _libc.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
            return [i for i in range(n) if vec[i] & 1]
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


# ======================================================================= tests
class GgufGenTest(unittest.TestCase):
    def test_deterministic_same_seed_other_seed_differs(self):
        a = gguf_model("a.gguf", "--size", "32M", "--seed", "1")
        b = run_gen(GGUF_GEN, os.path.join(TMP, "b.gguf"), "--size", "32M", "--seed", "1")
        c = run_gen(GGUF_GEN, os.path.join(TMP, "c.gguf"), "--size", "32M", "--seed", "2")
        self.assertEqual(sha256(a["files"][0]), sha256(b["files"][0]))
        self.assertNotEqual(sha256(a["files"][0]), sha256(c["files"][0]))
        os.unlink(b["files"][0])
        os.unlink(c["files"][0])

    def test_size_near_target(self):
        for size, name in ((32 * MIB, "a.gguf"), (64 * MIB, "m64.gguf")):
            s = gguf_model(name, "--size", str(size))
            real = os.path.getsize(s["files"][0])
            self.assertGreater(real, 0.8 * size, name)
            self.assertLess(real, 1.25 * size, name)

    def test_structure(self):
        s = gguf_model("a.gguf", "--size", "32M", "--seed", "1")
        g = GGUF(s["files"][0])
        self.assertEqual(g.version, 3)
        self.assertEqual(g.n_kv, len(g.kv))
        kv = {k: v[1] for k, v in g.kv.items()}
        self.assertEqual(kv["general.architecture"], "llama")
        self.assertEqual(kv["general.alignment"], 32)
        self.assertEqual(kv["tokenizer.ggml.model"], "llama")
        d, nl, ff = (kv["llama.embedding_length"], kv["llama.block_count"],
                     kv["llama.feed_forward_length"])
        nh, nkv = kv["llama.attention.head_count"], kv["llama.attention.head_count_kv"]
        self.assertEqual(d % nh, 0)
        self.assertEqual(nh % nkv, 0)
        self.assertEqual(kv["llama.rope.dimension_count"], d // nh)
        toks = kv["tokenizer.ggml.tokens"]
        nv = len(toks)
        self.assertEqual(kv.get("llama.vocab_size", nv), nv)
        self.assertEqual(len(kv["tokenizer.ggml.scores"]), nv)
        self.assertEqual(len(kv["tokenizer.ggml.token_type"]), nv)
        self.assertEqual(len(set(toks)), nv, "duplicate tokens")
        self.assertEqual(toks[:3], ["<unk>", "<s>", "</s>"])
        types = kv["tokenizer.ggml.token_type"]
        self.assertEqual(types[:3], [2, 3, 3])
        for b in range(256):
            self.assertEqual(toks[3 + b], "<0x%02X>" % b)
            self.assertEqual(types[3 + b], 6)
        self.assertIn("\u2581the", toks)
        self.assertTrue(all(t == 1 for t in types[259:]))
        self.assertEqual(toks[kv["tokenizer.ggml.bos_token_id"]], "<s>")
        self.assertEqual(toks[kv["tokenizer.ggml.eos_token_id"]], "</s>")
        self.assertEqual(toks[kv["tokenizer.ggml.unknown_token_id"]], "<unk>")

        # Tensor set and shapes follow from the hyperparameters read above.
        shapes = {n: ne for n, ne, _, _ in g.tensors}
        self.assertEqual(len(shapes), g.n_tensors)
        self.assertEqual(g.n_tensors, 3 + 9 * nl)
        dkv = nkv * (d // nh)
        self.assertEqual(shapes["token_embd.weight"], [d, nv])
        self.assertEqual(shapes["output.weight"], [d, nv])
        self.assertEqual(shapes["output_norm.weight"], [d])
        for i in range(nl):
            p = "blk.%d." % i
            self.assertEqual(shapes[p + "attn_q.weight"], [d, d])
            self.assertEqual(shapes[p + "attn_k.weight"], [d, dkv])
            self.assertEqual(shapes[p + "attn_v.weight"], [d, dkv])
            self.assertEqual(shapes[p + "attn_output.weight"], [d, d])
            self.assertEqual(shapes[p + "ffn_gate.weight"], [d, ff])
            self.assertEqual(shapes[p + "ffn_up.weight"], [d, ff])
            self.assertEqual(shapes[p + "ffn_down.weight"], [ff, d])
            self.assertEqual(shapes[p + "attn_norm.weight"], [d])
            self.assertEqual(shapes[p + "ffn_norm.weight"], [d])

        # Alignment, bounds, no overlap, and the file ends with the last tensor.
        self.assertEqual(g.data_offset % 32, 0)
        self.assertTrue(all(b == 0 for b in g.raw[g.table_end:g.data_offset]))
        extents = []
        for name, ne, t, off in g.tensors:
            self.assertEqual(off % 32, 0, name)
            self.assertIn(t, (0, 8), name)
            if t == 0:
                self.assertEqual(len(ne), 1, "only norms are F32")
            end = g.data_offset + off + g.nbytes(ne, t)
            self.assertLessEqual(end, g.size, name)
            extents.append((off, off + g.nbytes(ne, t)))
        extents.sort()
        for (b0, e0), (b1, _) in zip(extents, extents[1:]):
            self.assertLessEqual(e0, b1)
        self.assertEqual(g.data_offset + extents[-1][1], g.size)

        # Q8_0 blocks: one positive finite f16 scale per tensor; F32 norms are 1.
        for name, ne, t, off in g.tensors:
            data = g.tensor_bytes(name)
            if t == 0:
                self.assertEqual(set(struct.unpack("<%df" % ne[0], data)), {1.0})
                continue
            scales = {data[i:i + 2] for i in range(0, min(len(data), 34 * 200), 34)}
            self.assertEqual(len(scales), 1, name)
            sc, = struct.unpack("<e", scales.pop())
            self.assertTrue(0 < sc < 0.1 and math.isfinite(sc), (name, sc))
            payload = data[2:34 * 50]
            self.assertGreater(len(set(payload)), 100, "int8 payload not random")

    def test_split_matches_unsplit(self):
        whole = GGUF(gguf_model("a.gguf", "--size", "32M", "--seed", "1")["files"][0])
        s = gguf_model("s.gguf", "--size", "32M", "--seed", "1", "--split", "3")
        self.assertEqual([os.path.basename(p) for p in s["files"]],
                         ["s-%05d-of-00003.gguf" % i for i in (1, 2, 3)])
        seen = {}
        for i, p in enumerate(s["files"]):
            g = GGUF(p)
            kv = {k: v for k, v in g.kv.items()}
            self.assertEqual(kv["split.no"], (2, i))
            self.assertEqual(kv["split.count"], (2, 3))
            self.assertEqual(kv["split.tensors.count"], (5, whole.n_tensors))
            if i == 0:
                for k in whole.kv_order:
                    self.assertEqual(kv[k], whole.kv[k], k)
            else:
                self.assertEqual(set(kv), {"split.no", "split.count",
                                           "split.tensors.count"})
            self.assertGreater(g.n_tensors, 0)
            for name, ne, t, off in g.tensors:
                self.assertEqual(off % 32, 0)
                self.assertLessEqual(g.data_offset + off + g.nbytes(ne, t), g.size)
                seen[name] = hashlib.sha256(g.tensor_bytes(name)).digest()
        self.assertEqual(len(seen), whole.n_tensors)
        for name, ne, t, off in whole.tensors:
            self.assertEqual(seen[name], hashlib.sha256(whole.tensor_bytes(name)).digest(),
                             name)

    def test_bad_arguments(self):
        r = subprocess.run([sys.executable, GGUF_GEN, os.path.join(TMP, "x.gguf"),
                            "--size", "lots"], capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        r = subprocess.run([sys.executable, GGUF_GEN, os.path.join(TMP, "x.gguf"),
                            "--size", "1M", "--split", "100000"], capture_output=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(TMP, "x.gguf")))


class SafetensorsGenTest(unittest.TestCase):
    def test_deterministic(self):
        a = st_model("sa", "--size", "32M", "--shards", "3", "--seed", "1")
        b = run_gen(ST_GEN, os.path.join(TMP, "sb"), "--size", "32M", "--shards", "3",
                    "--seed", "1")
        c = run_gen(ST_GEN, os.path.join(TMP, "sc"), "--size", "32M", "--shards", "3",
                    "--seed", "2")
        for fa, fb, fc in zip(a["files"], b["files"], c["files"]):
            self.assertEqual(sha256(fa), sha256(fb))
            self.assertNotEqual(sha256(fa), sha256(fc))
        shutil.rmtree(os.path.join(TMP, "sb"))
        shutil.rmtree(os.path.join(TMP, "sc"))

    def check_dir(self, outdir, n_shards, dtype):
        idx = json.load(open(os.path.join(outdir, "model.safetensors.index.json")))
        names = (["model.safetensors"] if n_shards == 1 else
                 ["model-%05d-of-%05d.safetensors" % (i + 1, n_shards)
                  for i in range(n_shards)])
        self.assertEqual(sorted(set(idx["weight_map"].values())), names)
        total = 0
        all_tensors = {}
        for fname in names:
            raw, hlen, header, hdr = st_read(os.path.join(outdir, fname))
            self.assertEqual(hlen % 8, 0)
            self.assertEqual(header, header.rstrip(b" ") + b" " * (len(header) -
                                                                   len(header.rstrip(b" "))))
            self.assertEqual(hdr.pop("__metadata__"), {"format": "pt"})
            pos = 0
            for name, ent in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
                self.assertEqual(ent["dtype"], dtype.upper())
                b, e = ent["data_offsets"]
                self.assertEqual(b, pos, "offsets not contiguous")
                self.assertEqual(e - b, 2 * math.prod(ent["shape"]), name)
                pos = e
                self.assertEqual(idx["weight_map"][name], fname)
                all_tensors[name] = ent["shape"]
            self.assertEqual(8 + hlen + pos, len(raw), "data does not end the file")
            total += pos
        self.assertEqual(idx["metadata"]["total_size"], total)
        self.assertEqual(set(idx["weight_map"]), set(all_tensors))
        cfg = json.load(open(os.path.join(outdir, "config.json")))
        d, nl = cfg["hidden_size"], cfg["num_hidden_layers"]
        self.assertEqual(all_tensors["model.embed_tokens.weight"], [cfg["vocab_size"], d])
        self.assertEqual(all_tensors["model.layers.%d.mlp.down_proj.weight" % (nl - 1)],
                         [d, cfg["intermediate_size"]])
        self.assertEqual(len(all_tensors), 3 + 9 * nl)
        return all_tensors

    def decode(self, path, name, dtype, limit=200000):
        raw, hlen, _, hdr = st_read(path)
        b, e = hdr[name]["data_offsets"]
        data = raw[8 + hlen + b:8 + hlen + min(e, b + 2 * limit)]
        n = len(data) // 2
        if dtype == "f16":
            return struct.unpack("<%de" % n, data)
        wide = bytearray(4 * n)
        wide[2::4] = data[0::2]
        wide[3::4] = data[1::2]
        return struct.unpack("<%df" % n, bytes(wide))

    def test_structure_and_values(self):
        for dtype, shards, name in (("bf16", 3, "sa"), ("f16", 1, "sf16")):
            s = st_model(name, "--size", "32M", "--shards", str(shards), "--seed", "1",
                         "--dtype", dtype)
            real = sum(os.path.getsize(p) for p in s["files"])
            self.assertGreater(real, 0.8 * 32 * MIB)
            self.assertLess(real, 1.25 * 32 * MIB)
            outdir = os.path.join(TMP, name)
            self.check_dir(outdir, shards, dtype)
            idx = json.load(open(os.path.join(outdir, "model.safetensors.index.json")))
            wm = idx["weight_map"]
            big = "model.layers.0.mlp.up_proj.weight"
            small = "model.layers.0.self_attn.k_proj.weight"
            for t in (big, small):
                vals = self.decode(os.path.join(outdir, wm[t]), t, dtype)
                mean = sum(vals) / len(vals)
                std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
                self.assertLess(abs(mean), 0.002, (dtype, t))
                self.assertAlmostEqual(std, 0.02, delta=0.002, msg=(dtype, t))
                self.assertGreater(len(set(vals)), 1000)
            norm = "model.layers.0.input_layernorm.weight"
            self.assertEqual(set(self.decode(os.path.join(outdir, wm[norm]), norm, dtype)),
                             {1.0})


class ExamplesTest(unittest.TestCase):
    def test_gguf_info_agrees_with_python(self):
        for name, args in (("a.gguf", ("--size", "32M", "--seed", "1")),
                           ("s.gguf", ("--size", "32M", "--seed", "1", "--split", "3"))):
            for path in gguf_model(name, *args)["files"]:
                g = GGUF(path)
                r = run_tool("gguf_info", "--json", path)
                self.assertEqual(r.returncode, 0, r.stderr)
                j = json.loads(r.stdout)
                self.assertEqual(j["n_tensors"], g.n_tensors)
                self.assertEqual(j["tensors"], len(g.tensors))
                self.assertEqual(j["n_kv"], len(g.kv))
                self.assertEqual(j["data_offset"], g.data_offset)
                self.assertEqual(j["file_size"], g.size)
                self.assertEqual(j["tensor_bytes"],
                                 sum(g.nbytes(ne, t) for _, ne, t, _ in g.tensors))
                self.assertEqual(j["architecture"],
                                 g.kv.get("general.architecture", (8, None))[1])
                r = run_tool("gguf_info", path)
                self.assertEqual(r.returncode, 0, r.stderr)
                text = r.stdout.decode()
                for tname, ne, t, off in g.tensors:
                    self.assertIn('"%s" %s [%s] offset %d' % (
                        tname, {0: "F32", 8: "Q8_0"}[t], ", ".join(map(str, ne)), off), text)

    def test_meson_built_examples(self):
        exe_g, exe_s = os.environ.get("GGUF_INFO"), os.environ.get("SAFETENSORS_MMAP")
        if not exe_g or not exe_s:
            self.skipTest("GGUF_INFO / SAFETENSORS_MMAP not set (not run by meson)")
        path = gguf_model("a.gguf", "--size", "32M", "--seed", "1")["files"][0]
        r = run_tool("gguf_info", "--json", path, exe=exe_g)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["n_tensors"], GGUF(path).n_tensors)
        st = st_model("sa", "--size", "32M", "--shards", "3", "--seed", "1")["files"][0]
        r = run_tool("safetensors_mmap", st, exe=exe_s)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_safetensors_checksums(self):
        s = st_model("sa", "--size", "32M", "--shards", "3", "--seed", "1")
        for path in s["files"]:
            raw, hlen, _, hdr = st_read(path)
            hdr.pop("__metadata__")
            r = run_tool("safetensors_mmap", path)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.decode().splitlines()
            self.assertIn("%d tensors" % len(hdr), lines[0])
            for name, ent in hdr.items():
                self.assertIn("  %s %s [%s] offsets [%d, %d)" % (
                    name, ent["dtype"], ", ".join(map(str, ent["shape"])),
                    *ent["data_offsets"]), lines)
            # Checksum the smallest matrix of this shard (Python FNV is slow).
            name = min((n for n in hdr if len(hdr[n]["shape"]) == 2),
                       key=lambda n: math.prod(hdr[n]["shape"]))
            b, e = hdr[name]["data_offsets"]
            want = fnv1a64(raw[8 + hlen + b:8 + hlen + e])
            r = run_tool("safetensors_mmap", path, name)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.decode().splitlines()[-1],
                             "checksum %s fnv1a64=%016x bytes=%d" % (name, want, e - b))
        r = run_tool("safetensors_mmap", s["files"][0], "no.such.tensor")
        self.assertEqual(r.returncode, 1)

    def _fresh_copy(self, src, dst):
        shutil.copyfile(src, dst)
        drop_cache(dst)
        if resident_pages(dst):
            self.skipTest("cannot drop page cache here")

    def test_only_needed_pages_touched(self):
        g_src = gguf_model("a.gguf", "--size", "32M", "--seed", "1")["files"][0]
        g = GGUF(g_src)
        path = os.path.join(TMP, "resident.gguf")
        self._fresh_copy(g_src, path)
        r = run_tool("gguf_info", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        pages = resident_pages(path)
        self.assertTrue(pages, "gguf_info read nothing?")
        # Header and tensor table only (the table ends before data_offset).
        self.assertLessEqual(max(pages), g.data_offset // PAGE)
        os.unlink(path)

        s = st_model("sa", "--size", "32M", "--shards", "3", "--seed", "1")
        path = os.path.join(TMP, "resident.safetensors")
        raw, hlen, _, hdr = st_read(s["files"][1])     # not `path`: reading caches it
        del raw
        self._fresh_copy(s["files"][1], path)
        name = "model.layers.%d.mlp.up_proj.weight" % 3
        if name not in hdr:
            name = [n for n in hdr if n.endswith("up_proj.weight")][0]
        b, e = hdr[name]["data_offsets"]
        r = run_tool("safetensors_mmap", path, name)
        self.assertEqual(r.returncode, 0, r.stderr)
        lo, hi = (8 + hlen + b) // PAGE, (8 + hlen + e - 1) // PAGE
        pages = set(resident_pages(path))
        self.assertTrue(set(range(lo, hi + 1)) <= pages, "tensor not read?")
        header_pages = set(range(0, (8 + hlen - 1) // PAGE + 1))
        extra = sorted(pages - header_pages - set(range(lo, hi + 1)))
        self.assertEqual(extra[:10], [], "%d unexpected pages" % len(extra))
        os.unlink(path)


# ------------------------------------------------------------ hostile inputs
def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gkv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def gtensor(name, ne, gtype, off):
    return gstr(name) + struct.pack("<I", len(ne)) + b"".join(
        struct.pack("<Q", x) for x in ne) + struct.pack("<IQ", gtype, off)


def gguf_bytes(kvs, tensors, data=b"", version=3, n_kv=None, n_tensors=None):
    head = b"GGUF" + struct.pack("<IQQ", version,
                                 len(tensors) if n_tensors is None else n_tensors,
                                 len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(tensors)
    head += b"\0" * (-len(head) % 32)
    return head + data


def small_gguf():
    """A valid GGUF using every metadata type, and three small tensors."""
    kvs = [gkv("general.architecture", 8, gstr("llama")),
           gkv("general.alignment", 4, struct.pack("<I", 32)),
           gkv("t.u8", 0, struct.pack("<B", 200)), gkv("t.i8", 1, struct.pack("<b", -5)),
           gkv("t.u16", 2, struct.pack("<H", 65000)), gkv("t.i16", 3, struct.pack("<h", -300)),
           gkv("t.i32", 5, struct.pack("<i", -70000)), gkv("t.f32", 6, struct.pack("<f", 0.5)),
           gkv("t.bool", 7, struct.pack("<?", True)),
           gkv("t.u64", 10, struct.pack("<Q", 1 << 40)),
           gkv("t.i64", 11, struct.pack("<q", -(1 << 40))),
           gkv("t.f64", 12, struct.pack("<d", 2.25)),
           gkv("t.arr", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", 7, -8, 9)),
           gkv("t.strs", 9, struct.pack("<IQ", 8, 2) + gstr("x\"y") + gstr("z")),
           gkv("t.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 2) +
               struct.pack("<2I", 1, 2))]
    tensors = [gtensor("a", [4], 0, 0), gtensor("b", [32, 2], 8, 32),
               gtensor("c", [2, 2], 1, 128)]
    data = struct.pack("<4f", 1, 2, 3, 4) + b"\0" * 16 + b"\x11" * 68 + b"\0" * 28 + b"\x22" * 8
    return gguf_bytes(kvs, tensors, data)


def st_bytes(header, data=b"", hlen=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def small_st():
    hdr = {"__metadata__": {"format": "pt", "k": "v"},
           "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
           "a\u00e9\"b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
           "s": {"dtype": "I8", "shape": [], "data_offsets": [22, 23]}}
    return st_bytes(hdr, bytes(range(23)))


class HostileInputTest(unittest.TestCase):
    def write(self, name, content):
        p = os.path.join(TMP, name)
        with open(p, "wb") as f:
            f.write(content)
        return p

    def assert_rejected(self, tool, content, *extra, label=""):
        p = self.write("hostile.bin", content)
        r = run_tool(tool, p, *extra)
        self.assertEqual(r.returncode, 1, "%s %s: rc %d stderr %s" % (
            tool, label, r.returncode, r.stderr[-2000:]))
        self.assertIn(tool.encode() + b": ", r.stderr, label)

    def test_valid_small_files_print_every_type(self):
        p = self.write("small.gguf", small_gguf())
        r = run_tool("gguf_info", p)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        for want in ('"t.u8" (u8) = 200', '"t.i8" (i8) = -5', '"t.u16" (u16) = 65000',
                     '"t.i16" (i16) = -300', '"t.i32" (i32) = -70000', '"t.f32" (f32) = 0.5',
                     '"t.bool" (bool) = true', '"t.u64" (u64) = 1099511627776',
                     '"t.i64" (i64) = -1099511627776', '"t.f64" (f64) = 2.25',
                     '[3 items of i32] [7, -8, 9]', '[2 items of string] ["x\\"y", "z"]',
                     '[1 items of array] [[2 items of u32] [1, 2]]',
                     '"b" Q8_0 [32, 2] offset 32', '"c" F16 [2, 2] offset 128'):
            self.assertIn(want, out)
        p = self.write("small.safetensors", small_st())
        r = run_tool("safetensors_mmap", p, "a\u00e9\"b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode().splitlines()[-1],
                         "checksum a\u00e9\"b fnv1a64=%016x bytes=6" % fnv1a64(bytes(range(16, 22))))

    def test_gguf_hostile(self):
        ok = small_gguf()
        huge = (1 << 64) - 1
        arch = gkv("general.architecture", 8, gstr("llama"))
        cases = {
            "empty": b"", "short": b"GGU", "magic": b"GGUX" + ok[4:],
            "version1": ok[:4] + struct.pack("<I", 1) + ok[8:],
            "version99": ok[:4] + struct.pack("<I", 99) + ok[8:],
            "n_kv huge": gguf_bytes([arch], [], n_kv=huge),
            "n_tensors huge": gguf_bytes([arch], [], n_tensors=1 << 62),
            "key len huge": b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 63) + b"k" * 64,
            "str len huge": gguf_bytes([gkv("k", 8, struct.pack("<Q", huge))], []),
            "array overflow": gguf_bytes([gkv("k", 9, struct.pack("<IQ", 4, 1 << 62))], []),
            "array of strings huge": gguf_bytes([gkv("k", 9, struct.pack("<IQ", 8, 1 << 40))], []),
            "array depth": gguf_bytes([gkv("k", 9, struct.pack("<IQ", 9, 1) * 64)], []),
            "value type": gguf_bytes([gkv("k", 99, b"\0" * 8)], []),
            "elem type": gguf_bytes([gkv("k", 9, struct.pack("<IQ", 77, 1))], []),
            "alignment 0": gguf_bytes([gkv("general.alignment", 4, struct.pack("<I", 0))], []),
            "alignment 3": gguf_bytes([gkv("general.alignment", 4, struct.pack("<I", 3))], []),
            "alignment str": gguf_bytes([gkv("general.alignment", 8, gstr("32"))], []),
            "n_dims 0": gguf_bytes([arch], [gtensor("t", [], 0, 0)], b"\0" * 32),
            "n_dims 5": gguf_bytes([arch], [gtensor("t", [1] * 5, 0, 0)], b"\0" * 32),
            "n_dims huge": gguf_bytes([arch], [gstr("t") + struct.pack("<I", 1 << 31)]),
            "tensor type": gguf_bytes([arch], [gtensor("t", [4], 99, 0)], b"\0" * 32),
            "removed type 4": gguf_bytes([arch], [gtensor("t", [32], 4, 0)], b"\0" * 32),
            "dims overflow": gguf_bytes([arch], [gtensor("t", [1 << 62, 1 << 62], 0, 0)],
                                        b"\0" * 32),
            "dim > int64": gguf_bytes([arch], [gtensor("t", [1 << 63], 24, 0)], b"\0" * 32),
            "q8 partial block": gguf_bytes([arch], [gtensor("t", [31], 8, 0)], b"\0" * 64),
            "unaligned": gguf_bytes([arch], [gtensor("t", [1], 0, 4)], b"\0" * 64),
            "offset past end": gguf_bytes([arch], [gtensor("t", [1], 0, 1 << 20)], b"\0" * 64),
            "offset wraps": gguf_bytes([arch], [gtensor("t", [8], 0, huge - 31)], b"\0" * 64),
            "data past end": gguf_bytes([arch], [gtensor("t", [64], 0, 0)], b"\0" * 64),
        }
        for label, content in cases.items():
            self.assert_rejected("gguf_info", content, label=label)
        for cut in list(range(0, len(ok) - 1, 7)) + [len(ok) - 1]:
            self.assert_rejected("gguf_info", ok[:cut], label="cut %d" % cut)

    def test_gguf_truncated_real_model(self):
        src = gguf_model("a.gguf", "--size", "32M", "--seed", "1")["files"][0]
        g = GGUF(src)
        with open(src, "rb") as f:
            head = f.read(g.data_offset + 4096)
        for cut in (24, 100, 1000, g.table_end // 2, g.table_end - 1, g.data_offset,
                    g.data_offset + 4096):
            self.assert_rejected("gguf_info", head[:cut], label="cut %d" % cut)
        p = os.path.join(TMP, "trunc.gguf")
        shutil.copyfile(src, p)
        os.truncate(p, g.size - 1)
        r = run_tool("gguf_info", p)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"past end of file", r.stderr)
        os.unlink(p)

    def test_safetensors_hostile(self):
        ok = small_st()
        f32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
        deep = b'{"__metadata__":' + b"[" * 100000 + b"]" * 100000 + b"}"
        cases = {
            "empty": b"", "short": b"\x08\0\0", "hlen huge": struct.pack("<Q", (1 << 64) - 1),
            "hlen > file": st_bytes({"w": f32}, b"\0" * 8, hlen=4096),
            "hlen over cap": struct.pack("<Q", 100 * MIB + 8) + b" " * 64,
            "not object": st_bytes(b"[1,2]"),
            "truncated json": st_bytes(b'{"w": {"dtype": "F32", "shape": [2'),
            "trailing": st_bytes(b'{} x'),
            "unknown dtype": st_bytes({"w": dict(f32, dtype="Q4")}, b"\0" * 8),
            "negative dim": st_bytes({"w": dict(f32, shape=[-2])}, b"\0" * 8),
            "float dim": st_bytes({"w": dict(f32, shape=[1.5])}, b"\0" * 8),
            "dim overflow": st_bytes({"w": dict(f32, shape=[1 << 32] * 3)}, b"\0" * 8),
            "dim > u64": st_bytes(b'{"w":{"dtype":"F32","shape":[99999999999999999999],'
                                  b'"data_offsets":[0,8]}}', b"\0" * 8),
            "too many dims": st_bytes({"w": dict(f32, shape=[1] * 9 + [2])}, b"\0" * 8),
            "size mismatch": st_bytes({"w": dict(f32, data_offsets=[0, 12])}, b"\0" * 12),
            "end < begin": st_bytes({"w": dict(f32, data_offsets=[8, 0])}, b"\0" * 8),
            "past end": st_bytes({"w": dict(f32, data_offsets=[8, 16])}, b"\0" * 8),
            "overlap": st_bytes({"w": f32, "v": f32}, b"\0" * 8),
            "gap": st_bytes({"w": dict(f32, data_offsets=[8, 16])}, b"\0" * 16),
            "uncovered": st_bytes({"w": f32}, b"\0" * 16),
            "missing field": st_bytes({"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
            "metadata not object": st_bytes({"__metadata__": [1], "w": f32}, b"\0" * 8),
            "deep nesting": st_bytes(deep),
            "bad escape": st_bytes(b'{"a\\x":{}}'),
            "short \\u": st_bytes(b'{"a\\u12"}'),
            "lone surrogate": st_bytes(b'{"a\\ud800":' + json.dumps(f32).encode() + b"}",
                                       b"\0" * 8),
            "nul in name": st_bytes(b'{"a\\u0000":' + json.dumps(f32).encode() + b"}",
                                    b"\0" * 8),
            "control char": st_bytes(b'{"a\nb":' + json.dumps(f32).encode() + b"}", b"\0" * 8),
            "bad literal": st_bytes(b'{"__metadata__":{"k":tru}}'),
            "bad number": st_bytes(b'{"__metadata__":{"k":1e}}'),
        }
        for label, content in cases.items():
            self.assert_rejected("safetensors_mmap", content, label=label)
        for cut in range(0, len(ok) - 1, 5):
            self.assert_rejected("safetensors_mmap", ok[:cut], label="cut %d" % cut)

    def test_fuzz_no_crash(self):
        rng = random.Random(1234)
        for tool, base in (("gguf_info", small_gguf()), ("safetensors_mmap", small_st())):
            p = os.path.join(TMP, "fuzz.bin")
            counts = {0: 0, 1: 0}
            for i in range(250):
                b = bytearray(base)
                for _ in range(rng.randint(1, 6)):
                    op = rng.random()
                    pos = rng.randrange(len(b))
                    if op < 0.6:
                        b[pos] = rng.randrange(256)
                    elif op < 0.8:
                        b[pos:pos + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8,
                                                     struct.pack("<Q", 1 << 62)])
                    else:
                        del b[pos:]
                        if not b:
                            break
                with open(p, "wb") as f:
                    f.write(b)
                r = run_tool(tool, p, "w") if tool == "safetensors_mmap" else run_tool(tool, p)
                self.assertIn(r.returncode, (0, 1), "%s case %d: rc %d %s" % (
                    tool, i, r.returncode, r.stderr[-2000:]))
                counts[r.returncode] += 1
            # The fuzzer must actually reach both outcomes to mean anything.
            self.assertGreater(counts[1], 50, tool)


@unittest.skipUnless(os.path.isdir(os.path.join(LLAMA_DIR, "node_modules", "node-llama-cpp"))
                     and shutil.which("node"), "tests/llama/node_modules not installed")
class LlamaCppTest(unittest.TestCase):
    def run_llama(self, path, *flags):
        r = subprocess.run(["node", os.path.join(LLAMA_DIR, "run_llama.mjs"), path] +
                           list(flags), capture_output=True, text=True, timeout=300,
                           cwd=LLAMA_DIR)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        res = json.loads(r.stdout)
        self.assertIsInstance(res["text"], str)
        self.assertGreater(len(res["text"]), 0)
        self.assertGreaterEqual(res["tokens"], 1)
        self.assertNotIn("nan", res["text"].lower())
        return res

    def test_load_mmap_nommap_split_same_text(self):
        path = gguf_model("a.gguf", "--size", "32M", "--seed", "1")["files"][0]
        a = self.run_llama(path)
        b = self.run_llama(path, "--no-mmap")
        self.assertTrue(a["mmap"])
        self.assertFalse(b["mmap"])
        self.assertEqual(a["text"], b["text"])
        self.assertEqual(self.run_llama(path)["text"], a["text"], "not deterministic")
        split = gguf_model("s.gguf", "--size", "32M", "--seed", "1", "--split", "3")
        c = self.run_llama(split["files"][0])
        self.assertEqual(c["text"], a["text"], "split model generates other text")
        other = gguf_model("o.gguf", "--size", "32M", "--seed", "7")["files"][0]
        self.assertNotEqual(self.run_llama(other)["text"], a["text"],
                            "text does not depend on the weights?")

    def test_broken_model_fails_cleanly(self):
        src = gguf_model("a.gguf", "--size", "32M", "--seed", "1")["files"][0]
        p = os.path.join(TMP, "broken.gguf")
        with open(src, "rb") as f, open(p, "wb") as o:
            o.write(f.read(200000))
        r = subprocess.run(["node", os.path.join(LLAMA_DIR, "run_llama.mjs"), p],
                           capture_output=True, text=True, timeout=300, cwd=LLAMA_DIR)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("run_llama:", r.stderr)


if __name__ == "__main__":
    unittest.main()
