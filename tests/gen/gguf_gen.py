#!/usr/bin/env python3
"""gguf_gen.py - generate small but complete llama-architecture GGUF v3 models.

Usage:
    gguf_gen.py OUT.gguf --size 64M [--seed 1] [--split N]

What it does: picks n_embd / n_layer / n_ff / vocab so that the file is close
to --size (30 MB .. 1 GB and beyond), synthesizes a SentencePiece-style
vocabulary (<unk>, <s>, </s>, 256 byte tokens, word pieces), and writes a GGUF
v3 file (or N shards named like llama.cpp's gguf-split: OUT-00001-of-0000N.gguf)
that real llama.cpp loads and runs. Weights are Q8_0 (f16 scale + 32 int8 per
block) with pseudo-random int8 payloads and a fixed per-tensor scale chosen so
activations stay near unit size: generation produces tokens, never NaN.

Determinism: every tensor draws from its own random.Random seeded by
(seed, tensor name), so the bytes depend only on --seed and --size, and a
split model holds exactly the same tensor bytes as the unsplit one (so both
generate the same text).

What it does not do: no other architectures or quantization types, no merges
(BPE) tokenizer, no attempt at a meaningful model. Python 3 stdlib only.
A one-line JSON summary (files, dims, bytes, seconds) goes to stdout.
"""
import argparse
import array
import json
import math
import os
import random
import struct
import sys
import time

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# GGUF metadata value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, \
    T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(13)
_SCALAR_FMT = {T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h",
               T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?",
               T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d"}
_ARRAY_CODE = {T_INT32: "i", T_FLOAT32: "f", T_UINT32: "I"}

# ggml tensor types used here.
GGML_F32 = 0
GGML_Q8_0 = 8
Q8_0_BLOCK = 32          # elements per block
Q8_0_BYTES = 34          # f16 scale + 32 int8

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_BYTE = 1, 2, 3, 6

MAX_LAYERS = 16
CHUNK_BLOCKS = 1 << 19   # Q8_0 blocks generated per write (~17 MB)


def parse_size(text):
    """'64M' -> 67108864; K/M/G are binary multiples, a bare number is bytes."""
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = 1
    if t and t[-1] in "KMGT":
        mult = 1024 ** ("KMGT".index(t[-1]) + 1)
        t = t[:-1]
    try:
        val = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError("bad size: %r" % text)
    if val <= 0:
        raise argparse.ArgumentTypeError("size must be positive: %r" % text)
    return int(val * mult)


def align(n, a=ALIGNMENT):
    return (n + a - 1) // a * a


def q8_bytes(n_elements):
    return n_elements // Q8_0_BLOCK * Q8_0_BYTES


def choose_dims(target):
    """Smallest width whose layer count (<= MAX_LAYERS) lands the file near target."""
    mib = 1024 * 1024
    if target >= 512 * mib:
        n_vocab = 32000
    elif target >= 160 * mib:
        n_vocab = 16000
    elif target >= 48 * mib:
        n_vocab = 8000
    else:
        n_vocab = 4000
    header_est = n_vocab * 24 + 64 * 1024
    widths = [256, 384, 512, 640, 768, 1024, 1280, 1536, 2048, 2560, 3072,
              4096, 5120, 6144, 8192]
    for d in widths:
        n_head = d // 64
        n_head_kv = n_head // 2 if n_head % 2 == 0 else n_head
        d_kv = n_head_kv * 64
        # Same rounding as llama's 8/3 * d, kept a multiple of 256 (so of 32).
        n_ff = (int(d * 8 / 3) + 255) // 256 * 256
        per_layer = (2 * q8_bytes(d * d) + 2 * q8_bytes(d * d_kv) +
                     3 * q8_bytes(d * n_ff) + 2 * 4 * d)
        fixed = 2 * q8_bytes(n_vocab * d) + 4 * d + header_est
        n_layer = max(1, round((target - fixed) / per_layer))
        if n_layer <= MAX_LAYERS or d == widths[-1]:
            break
    return {"n_vocab": n_vocab, "n_embd": d, "n_layer": n_layer,
            "n_ff": n_ff, "n_head": n_head, "n_head_kv": n_head_kv,
            "n_ctx": 2048}


_WORDS = (
    "the of and to in a is that for it as was with be by on not he I this are "
    "or his from at which but have an they you were her she there one all we "
    "their can has more been if no when will would who so what up out about "
    "into than them only other its new some time could these two may then do "
    "first any my now such like our over man me even most made after also did "
    "many before must through back years where much your way well down should "
    "because each just those people how too little state good very make world "
    "still own see men work long get here between both life being under never "
    "day same another know while last might us great old year off come since "
    "against go came right used take three model file data cache block read"
).split()
_SUBWORDS = (
    "ing ed er es en th he in an re on at or ou it is al ar st nt le se ng ion "
    "tion ly ent ter ers ation ment ness able ous ive est com pro con per pre "
    "dis un im ex ch sh wh qu ll ss ee oo ea ai ay ow ck"
).split()


def build_vocab(n_vocab):
    """SentencePiece-like vocabulary: specials, 256 byte tokens, word pieces."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL]
    for b in range(256):
        tokens.append("<0x%02X>" % b)
        types.append(TOKEN_BYTE)
    seen = set(tokens)
    lower = "abcdefghijklmnopqrstuvwxyz"
    cands = ["\u2581"]
    cands += ["\u2581" + w for w in _WORDS]
    cands += list(lower) + list(lower.upper()) + list("0123456789")
    cands += list(".,!?'\";:-()[]{}/\\@#$%&*+=<>_~`|")
    cands += ["\u2581" + c for c in lower + lower.upper()]
    cands += _SUBWORDS + ["\u2581" + s for s in _SUBWORDS]
    cands += [w for w in _WORDS]

    def gen():
        for c in cands:
            yield c
        for a in lower:
            for b in lower:
                yield "\u2581" + a + b
                yield a + b
        for a in lower:
            for b in lower:
                for c in lower:
                    yield "\u2581" + a + b + c
                    yield a + b + c
        n = 0
        while True:       # only reached for vocabularies above ~36k
            yield "\u2581tok%d" % n
            n += 1

    it = gen()
    while len(tokens) < n_vocab:
        t = next(it)
        if t in seen:
            continue
        seen.add(t)
        tokens.append(t)
        types.append(TOKEN_NORMAL)
    # Earlier pieces merge first, as in llama's tokenizer.model.
    scores = [0.0 if ty != TOKEN_NORMAL else -float(i)
              for i, ty in enumerate(types)]
    return tokens, scores, types


def enc_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def enc_kv(key, vtype, value, elem_type=None):
    out = [enc_str(key), struct.pack("<I", vtype)]
    if vtype == T_STRING:
        out.append(enc_str(value))
    elif vtype == T_ARRAY:
        out.append(struct.pack("<IQ", elem_type, len(value)))
        if elem_type == T_STRING:
            out.extend(enc_str(v) for v in value)
        else:
            arr = array.array(_ARRAY_CODE[elem_type], value)
            if sys.byteorder != "little":
                arr.byteswap()
            out.append(arr.tobytes())
    else:
        out.append(struct.pack(_SCALAR_FMT[vtype], value))
    return b"".join(out)


def model_kvs(hp, name):
    tokens, scores, types = build_vocab(hp["n_vocab"])
    head_dim = hp["n_embd"] // hp["n_head"]
    return [
        enc_kv("general.architecture", T_STRING, "llama"),
        enc_kv("general.name", T_STRING, name),
        enc_kv("general.alignment", T_UINT32, ALIGNMENT),
        enc_kv("general.file_type", T_UINT32, 7),   # LLAMA_FTYPE_MOSTLY_Q8_0
        enc_kv("llama.context_length", T_UINT32, hp["n_ctx"]),
        enc_kv("llama.embedding_length", T_UINT32, hp["n_embd"]),
        enc_kv("llama.block_count", T_UINT32, hp["n_layer"]),
        enc_kv("llama.feed_forward_length", T_UINT32, hp["n_ff"]),
        enc_kv("llama.rope.dimension_count", T_UINT32, head_dim),
        enc_kv("llama.rope.freq_base", T_FLOAT32, 10000.0),
        enc_kv("llama.attention.head_count", T_UINT32, hp["n_head"]),
        enc_kv("llama.attention.head_count_kv", T_UINT32, hp["n_head_kv"]),
        enc_kv("llama.attention.layer_norm_rms_epsilon", T_FLOAT32, 1e-5),
        enc_kv("llama.vocab_size", T_UINT32, hp["n_vocab"]),
        enc_kv("tokenizer.ggml.model", T_STRING, "llama"),
        enc_kv("tokenizer.ggml.tokens", T_ARRAY, tokens, T_STRING),
        enc_kv("tokenizer.ggml.scores", T_ARRAY, scores, T_FLOAT32),
        enc_kv("tokenizer.ggml.token_type", T_ARRAY, types, T_INT32),
        enc_kv("tokenizer.ggml.bos_token_id", T_UINT32, 1),
        enc_kv("tokenizer.ggml.eos_token_id", T_UINT32, 2),
        enc_kv("tokenizer.ggml.unknown_token_id", T_UINT32, 0),
        enc_kv("tokenizer.ggml.add_bos_token", T_BOOL, True),
        enc_kv("tokenizer.ggml.add_eos_token", T_BOOL, False),
    ]


def tensor_list(hp):
    """(name, ne (fastest dim first, as GGUF stores it), ggml type)."""
    d, ff, v = hp["n_embd"], hp["n_ff"], hp["n_vocab"]
    d_kv = hp["n_head_kv"] * (d // hp["n_head"])
    ts = [("token_embd.weight", [d, v], GGML_Q8_0)]
    for i in range(hp["n_layer"]):
        p = "blk.%d." % i
        ts += [(p + "attn_norm.weight", [d], GGML_F32),
               (p + "attn_q.weight", [d, d], GGML_Q8_0),
               (p + "attn_k.weight", [d, d_kv], GGML_Q8_0),
               (p + "attn_v.weight", [d, d_kv], GGML_Q8_0),
               (p + "attn_output.weight", [d, d], GGML_Q8_0),
               (p + "ffn_norm.weight", [d], GGML_F32),
               (p + "ffn_gate.weight", [d, ff], GGML_Q8_0),
               (p + "ffn_up.weight", [d, ff], GGML_Q8_0),
               (p + "ffn_down.weight", [ff, d], GGML_Q8_0)]
    ts += [("output_norm.weight", [d], GGML_F32),
           ("output.weight", [d, v], GGML_Q8_0)]
    return ts


def n_elements(ne):
    n = 1
    for x in ne:
        n *= x
    return n


def tensor_nbytes(ne, gtype):
    n = n_elements(ne)
    if gtype == GGML_F32:
        return 4 * n
    assert ne[0] % Q8_0_BLOCK == 0, "Q8_0 rows must be a multiple of 32"
    return q8_bytes(n)


def q8_scale(name, ne):
    """Scale giving unit-variance outputs: int8 uniform has std ~74, so a dot
    product over ne0 inputs of unit size has std 74 * scale * sqrt(ne0)."""
    if name == "token_embd.weight":
        return 0.01
    return 1.0 / (74.0 * math.sqrt(ne[0]))


def write_tensor(f, seed, name, ne, gtype):
    n = n_elements(ne)
    if gtype == GGML_F32:
        # Norm weights of ones, like a freshly initialized RMSNorm.
        arr = array.array("f", [1.0]) * n
        if sys.byteorder != "little":
            arr.byteswap()
        f.write(arr.tobytes())
        return
    rng = random.Random("gguf:%d:%s" % (seed, name))
    scale = struct.pack("<e", q8_scale(name, ne))
    left = n // Q8_0_BLOCK
    while left:
        nb = min(left, CHUNK_BLOCKS)
        # The whole chunk is random; then the first two bytes of every 34-byte
        # block are overwritten with the f16 scale. Two strided slice stores
        # instead of a per-block loop keep this at a few hundred MB/s.
        buf = bytearray(rng.randbytes(nb * Q8_0_BYTES))
        buf[0::Q8_0_BYTES] = scale[0:1] * nb
        buf[1::Q8_0_BYTES] = scale[1:2] * nb
        f.write(buf)
        left -= nb


def write_gguf(path, kvs, tensors, seed):
    """Write one GGUF file holding `tensors` with metadata entries `kvs`."""
    infos = []
    off = 0
    for name, ne, gtype in tensors:
        off = align(off)
        infos.append(enc_str(name) + struct.pack("<I", len(ne)) +
                     struct.pack("<%dQ" % len(ne), *ne) +
                     struct.pack("<IQ", gtype, off))
        off += tensor_nbytes(ne, gtype)
    header = (GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(tensors),
                                       len(kvs)) + b"".join(kvs) + b"".join(infos))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(b"\0" * (align(len(header)) - len(header)))
        pos = 0
        for name, ne, gtype in tensors:
            pad = align(pos) - pos
            f.write(b"\0" * pad)
            pos += pad
            write_tensor(f, seed, name, ne, gtype)
            pos += tensor_nbytes(ne, gtype)
    os.replace(tmp, path)


def plan_shards(tensors, n_split):
    """Cut the ordered tensor list into n_split runs of roughly equal bytes."""
    if n_split > len(tensors):
        raise ValueError("--split %d exceeds tensor count %d" % (n_split, len(tensors)))
    sizes = [tensor_nbytes(ne, t) for _, ne, t in tensors]
    total = sum(sizes)
    shards = [[] for _ in range(n_split)]
    acc = 0
    k = 0
    for i, (t, sz) in enumerate(zip(tensors, sizes)):
        remaining_tensors = len(tensors) - i      # this one included
        later_shards = n_split - 1 - k
        # Move on when this shard has its share, or when every remaining
        # tensor is needed to give each later shard at least one.
        if shards[k] and later_shards > 0 and (
                acc >= total * (k + 1) / n_split or
                remaining_tensors <= later_shards):
            k += 1
        shards[k].append(t)
        acc += sz
    assert all(shards), "empty shard"
    return shards


def split_paths(out, n_split):
    prefix = out[:-5] if out.endswith(".gguf") else out
    return ["%s-%05d-of-%05d.gguf" % (prefix, i + 1, n_split) for i in range(n_split)]


def generate(out, size, seed=1, n_split=1):
    t0 = time.monotonic()
    hp = choose_dims(size)
    tensors = tensor_list(hp)
    name = "modelfs-test-%s-seed%d" % (hp["n_embd"], seed)
    kvs = model_kvs(hp, name)
    if n_split <= 1:
        paths = [out]
        write_gguf(out, kvs, tensors, seed)
    else:
        paths = split_paths(out, n_split)
        for i, (p, ts) in enumerate(zip(paths, plan_shards(tensors, n_split))):
            skv = [enc_kv("split.no", T_UINT16, i),
                   enc_kv("split.count", T_UINT16, n_split),
                   enc_kv("split.tensors.count", T_INT32, len(tensors))]
            # As gguf-split does: only the first shard carries the model metadata.
            write_gguf(p, (kvs if i == 0 else []) + skv, ts, seed)
    summary = dict(hp)
    summary.update(files=paths, n_tensors=len(tensors),
                   bytes=sum(os.path.getsize(p) for p in paths),
                   seconds=round(time.monotonic() - t0, 3))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output path (OUT.gguf)")
    ap.add_argument("--size", type=parse_size, default=parse_size("64M"),
                    help="approximate file size, e.g. 32M, 1G (default 64M)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split", type=int, default=1,
                    help="write N shards OUT-0000k-of-0000N.gguf")
    a = ap.parse_args(argv)
    if a.split < 1 or a.split > 99999:
        ap.error("--split must be in 1..99999")
    try:
        summary = generate(a.out, a.size, a.seed, a.split)
    except (OSError, ValueError) as e:
        print("gguf_gen: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
