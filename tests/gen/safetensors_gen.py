#!/usr/bin/env python3
"""safetensors_gen.py - generate a Hugging Face style llama checkpoint in safetensors.

Usage:
    safetensors_gen.py OUTDIR --size 64M [--shards 3] [--dtype bf16|f16] [--seed 1]

What it does: picks llama dimensions so the checkpoint is close to --size and
writes OUTDIR/model-0000k-of-0000N.safetensors (or OUTDIR/model.safetensors for
one shard), OUTDIR/model.safetensors.index.json ({"metadata": {"total_size"},
"weight_map"}) and a matching OUTDIR/config.json. Each safetensors file is an
8-byte little-endian header length, a JSON header (dtype, shape, data_offsets
per tensor, "__metadata__": {"format": "pt"}) padded with spaces to a multiple
of 8, then the tensors back to back in header order.

Values: matrices are normal(0, 0.02) like a freshly initialized model, norms are
ones. Small tensors use random.gauss per element; big ones index a table of
65536 normal samples (already encoded as bf16/f16) with random 16-bit indices,
which keeps generation fast (~10 s for 256 MB) and the byte statistics realistic
(zstd ratios are close to those of real bf16/f16 weights). Every tensor has its
own random.Random seeded by (seed, name): output is deterministic.

What it does not do: no other architectures or dtypes, no tied embeddings.
Python 3 stdlib only. A one-line JSON summary goes to stdout.
"""
import argparse
import array
import json
import os
import random
import struct
import sys
import time

STD = 0.02
TABLE_SIZE = 65536
SMALL = 65536            # tensors up to this many elements use random.gauss
CHUNK = 1 << 20          # elements generated per write
MAX_LAYERS = 16


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


def choose_dims(target, elem_size=2):
    mib = 1024 * 1024
    if target >= 512 * mib:
        n_vocab = 32000
    elif target >= 160 * mib:
        n_vocab = 16000
    elif target >= 48 * mib:
        n_vocab = 8000
    else:
        n_vocab = 4000
    widths = [128, 256, 384, 512, 640, 768, 1024, 1280, 1536, 2048, 2560,
              3072, 4096, 5120, 6144, 8192]
    for d in widths:
        n_head = max(1, d // 64)
        n_head_kv = n_head // 2 if n_head % 2 == 0 else n_head
        d_kv = n_head_kv * (d // n_head)
        n_ff = (int(d * 8 / 3) + 255) // 256 * 256
        per_layer = elem_size * (2 * d * d + 2 * d * d_kv + 3 * d * n_ff + 2 * d)
        fixed = elem_size * (2 * n_vocab * d + d)
        n_layer = max(1, round((target - fixed) / per_layer))
        if n_layer <= MAX_LAYERS or d == widths[-1]:
            break
    return {"n_vocab": n_vocab, "n_embd": d, "n_layer": n_layer, "n_ff": n_ff,
            "n_head": n_head, "n_head_kv": n_head_kv}


def tensor_list(hp):
    """(name, shape) in the order of a transformers LlamaForCausalLM state dict."""
    d, ff, v = hp["n_embd"], hp["n_ff"], hp["n_vocab"]
    d_kv = hp["n_head_kv"] * (d // hp["n_head"])
    ts = [("model.embed_tokens.weight", [v, d])]
    for i in range(hp["n_layer"]):
        p = "model.layers.%d." % i
        ts += [(p + "self_attn.q_proj.weight", [d, d]),
               (p + "self_attn.k_proj.weight", [d_kv, d]),
               (p + "self_attn.v_proj.weight", [d_kv, d]),
               (p + "self_attn.o_proj.weight", [d, d]),
               (p + "mlp.gate_proj.weight", [ff, d]),
               (p + "mlp.up_proj.weight", [ff, d]),
               (p + "mlp.down_proj.weight", [d, ff]),
               (p + "input_layernorm.weight", [d]),
               (p + "post_attention_layernorm.weight", [d])]
    ts += [("model.norm.weight", [d]), ("lm_head.weight", [v, d])]
    return ts


def numel(shape):
    n = 1
    for x in shape:
        n *= x
    return n


def encode16(x, dtype):
    """One float -> its 16-bit pattern (bf16 with round-to-nearest-even, or f16)."""
    if dtype == "f16":
        return struct.unpack("<H", struct.pack("<e", x))[0]
    u = struct.unpack("<I", struct.pack("<f", x))[0]
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


def normal_table(seed, dtype):
    rng = random.Random("safetensors:%d:table" % seed)
    return tuple(encode16(rng.gauss(0.0, STD), dtype) for _ in range(TABLE_SIZE))


def to_le_bytes(arr):
    if sys.byteorder != "little":
        arr.byteswap()
    return arr.tobytes()


def tensor_chunks(seed, name, shape, dtype, table):
    """Yield the tensor's bytes in chunks."""
    n = numel(shape)
    if len(shape) == 1:              # norm weights: ones
        yield to_le_bytes(array.array("H", [encode16(1.0, dtype)]) * n)
        return
    rng = random.Random("safetensors:%d:%s" % (seed, name))
    if n <= SMALL:
        yield to_le_bytes(array.array("H", (encode16(rng.gauss(0.0, STD), dtype)
                                           for _ in range(n))))
        return
    left = n
    while left:
        k = min(left, CHUNK)
        idx = array.array("H", rng.randbytes(2 * k))
        if sys.byteorder != "little":
            idx.byteswap()           # indices defined by little-endian bytes
        yield to_le_bytes(array.array("H", [table[i] for i in idx]))
        left -= k


def plan_shards(tensors, n_shards, elem_size):
    if n_shards > len(tensors):
        raise ValueError("--shards %d exceeds tensor count %d" % (n_shards, len(tensors)))
    sizes = [numel(s) * elem_size for _, s in tensors]
    total = sum(sizes)
    shards = [[] for _ in range(n_shards)]
    acc = 0
    k = 0
    for i, (t, sz) in enumerate(zip(tensors, sizes)):
        later = n_shards - 1 - k
        if shards[k] and later > 0 and (acc >= total * (k + 1) / n_shards or
                                        len(tensors) - i <= later):
            k += 1
        shards[k].append(t)
        acc += sz
    return shards


def build_header(tensors, st_dtype, elem_size):
    hdr = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape in tensors:
        nb = numel(shape) * elem_size
        hdr[name] = {"dtype": st_dtype, "shape": shape, "data_offsets": [off, off + nb]}
        off += nb
    raw = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return raw, off


def write_file(path, tensors, seed, dtype, table):
    st_dtype = "BF16" if dtype == "bf16" else "F16"
    header, nbytes = build_header(tensors, st_dtype, 2)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for name, shape in tensors:
            for chunk in tensor_chunks(seed, name, shape, dtype, table):
                f.write(chunk)
    os.replace(tmp, path)
    return nbytes


def write_config(outdir, hp, dtype):
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": hp["n_embd"], "intermediate_size": hp["n_ff"],
        "num_hidden_layers": hp["n_layer"], "num_attention_heads": hp["n_head"],
        "num_key_value_heads": hp["n_head_kv"], "vocab_size": hp["n_vocab"],
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "hidden_act": "silu", "tie_word_embeddings": False,
        "torch_dtype": "bfloat16" if dtype == "bf16" else "float16",
        "bos_token_id": 1, "eos_token_id": 2,
    }
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def generate(outdir, size, n_shards=1, dtype="bf16", seed=1):
    t0 = time.monotonic()
    os.makedirs(outdir, exist_ok=True)
    hp = choose_dims(size)
    tensors = tensor_list(hp)
    table = normal_table(seed, dtype)
    groups = plan_shards(tensors, n_shards, 2)
    if n_shards == 1:
        names = ["model.safetensors"]
    else:
        names = ["model-%05d-of-%05d.safetensors" % (i + 1, n_shards)
                 for i in range(n_shards)]
    weight_map = {}
    total = 0
    for fname, group in zip(names, groups):
        total += write_file(os.path.join(outdir, fname), group, seed, dtype, table)
        for name, _ in group:
            weight_map[name] = fname
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(outdir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    write_config(outdir, hp, dtype)
    summary = dict(hp)
    summary.update(files=[os.path.join(outdir, n) for n in names],
                   n_tensors=len(tensors), dtype=dtype, total_size=total,
                   seconds=round(time.monotonic() - t0, 3))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--size", type=parse_size, default=parse_size("64M"))
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--dtype", choices=["bf16", "f16"], default="bf16")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    if a.shards < 1 or a.shards > 99999:
        ap.error("--shards must be in 1..99999")
    try:
        summary = generate(a.outdir, a.size, a.shards, a.dtype, a.seed)
    except (OSError, ValueError) as e:
        print("safetensors_gen: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
