#!/usr/bin/env python3
"""test_xetref.py - modelfs's Xet hashing (xet/, via modelfs-xethash) against
xet-core's own chunker and hashes (the WASM in @huggingface/hub, run by
xetref.mjs): identical chunk boundaries, chunk hashes and file hashes.

Inputs: edge sizes (0, 1, 8 KiB +- 1, 64 KiB, 128 KiB +- 1), noise, zeros,
low-entropy text, generated GGUF and safetensors models (tests/gen), and one
file of 1 GiB. Environment: MODELFS_XETHASH (the built tool; default
build/xet/modelfs-xethash). Needs node and tests/hfjs/node_modules (the
suite's one pinned @huggingface/hub; tests/install-deps.sh runs `npm ci`
there); missing ones fail, not skip.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
TOOL = os.environ.get("MODELFS_XETHASH", os.path.join(SRC, "build", "xet", "modelfs-xethash"))
GEN = os.path.join(SRC, "tests", "gen")
KIB = 1024


def ours(path):
    out = subprocess.run([TOOL, "--json", path], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def reference(paths):
    out = subprocess.run(["node", os.path.join(HERE, "xetref.mjs")] + paths,
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def noise(n, seed):
    return random.Random(seed).randbytes(n)


class XetRef(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="xetref-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, data):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def compare(self, paths):
        refs = reference(paths)
        self.assertEqual(len(refs), len(paths))
        for p, ref in zip(paths, refs):
            got = ours(p)
            size = os.path.getsize(p)
            self.assertEqual(ref["size"], size, p)
            self.assertEqual(got["size"], size, p)
            # Boundaries first: a mismatch there explains any hash mismatch.
            self.assertEqual([c[:2] for c in got["chunks"]], [c[:2] for c in ref["chunks"]],
                             "chunk boundaries of %s" % p)
            self.assertEqual(got["chunks"], ref["chunks"], "chunk hashes of %s" % p)
            self.assertEqual(got["xetHash"], ref["xetHash"], "file hash of %s" % p)
        return refs

    def test_edge_sizes(self):
        sizes = [0, 1, 8 * KIB - 1, 8 * KIB, 8 * KIB + 1, 64 * KIB,
                 128 * KIB - 1, 128 * KIB, 128 * KIB + 1, 256 * KIB + 3]
        paths = [self.write("edge-%d" % n, noise(n, n)) for n in sizes]
        refs = self.compare(paths)
        self.assertEqual(refs[0]["chunks"], [])
        self.assertEqual(len(refs[1]["chunks"]), 1)
        # 128 KiB + 1 of noise holds at least two chunks (MAX is 128 KiB).
        self.assertGreaterEqual(len(refs[8]["chunks"]), 2)

    def test_noise_zeros_text(self):
        text = b"".join(b"line %d of a low-entropy file\n" % (i % 5000) for i in range(300000))
        paths = [self.write("noise", noise(24 << 20, 1)),
                 self.write("zeros", bytes(3 << 20)),
                 self.write("text", text),
                 # A file built from repeated blocks: identical chunks repeat.
                 self.write("repeat", noise(200 * KIB, 2) * 12)]
        refs = self.compare(paths)
        # Noise has content-defined cuts, not only forced MAX ones.
        lens = [c[1] for c in refs[0]["chunks"]]
        self.assertGreater(len(set(lens)), 50)
        self.assertTrue(all(c[1] == 128 * KIB for c in refs[1]["chunks"][:-1]))

    def test_generated_models(self):
        gg = os.path.join(self.tmp, "m.gguf")
        subprocess.run([sys.executable, os.path.join(GEN, "gguf_gen.py"), gg, "--size", "40M",
                        "--seed", "5"], check=True, capture_output=True)
        st = os.path.join(self.tmp, "st")
        subprocess.run([sys.executable, os.path.join(GEN, "safetensors_gen.py"), st, "--size", "24M",
                        "--shards", "2", "--seed", "6"], check=True, capture_output=True)
        paths = [gg] + sorted(os.path.join(st, f) for f in os.listdir(st))
        self.assertGreaterEqual(len(paths), 4)
        self.compare(paths)

    def test_one_gib(self):
        # Streamed in pieces by both sides; 1 GiB + 1 so the tail is short.
        p = os.path.join(self.tmp, "big")
        rng = random.Random(9)
        block = rng.randbytes(7 << 20)
        with open(p, "wb") as f:
            left = (1 << 30) + 1
            i = 0
            while left:
                # Vary each 7 MiB block so the file does not repeat.
                b = block[i % 1000:] + block[:i % 1000]
                b = b[:left]
                f.write(b)
                left -= len(b)
                i += 1
        try:
            ref = self.compare([p])[0]
            self.assertGreater(len(ref["chunks"]), 10000)
        finally:
            os.unlink(p)


if __name__ == "__main__":
    unittest.main()
