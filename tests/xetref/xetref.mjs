// xetref.mjs - ground truth for modelfs's Xet hashing: runs xet-core's own
// chunker and hashes (the WASM build vendored by @huggingface/hub, pinned in
// tests/hfjs/package.json) over files and prints, per file, one JSON line in the format
// of `modelfs-xethash --json`:
//   {"size":N,"xetHash":"..","chunks":[[offset,len,"chunk hash"],..]}
// Usage: node xetref.mjs FILE...    (also: --merkle JSON, see below)
// It checks the decoded WASM against the checksum the package records.
import { readFileSync, openSync, readSync, closeSync } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// One pinned @huggingface/hub for the whole test suite: tests/hfjs/package.json.
const vend = join(here, "../hfjs/node_modules/@huggingface/hub/src/vendor/xet-chunk");

// The base64 module is TypeScript; take the constants out of it as text.
const b64src = readFileSync(join(vend, "chunker_wasm_bg.wasm.base64.ts"), "utf8");
const b64 = b64src.match(/const wasmBase64 = `([^`]*)`/)[1].replace(/\s+/g, "");
const wantSha = b64src.match(/XET_CORE_WASM_SHA256 = "([0-9a-f]{64})"/)[1];
const wasm = Buffer.from(b64, "base64");
const gotSha = createHash("sha256").update(wasm).digest("hex");
if (gotSha !== wantSha) {
	console.error(`xetref: WASM checksum ${gotSha} != ${wantSha}`);
	process.exit(2);
}
const mod = await import(join(vend, "chunker_wasm_bg.js"));
mod.initSync({ module: wasm });

const TARGET = 64 * 1024;

function hashFile(path) {
	const chunker = new mod.Chunker(TARGET);
	const chunks = [];
	let off = 0;
	const take = (list) => {
		for (const c of list ?? []) {
			chunks.push([off, c.length, c.hash]);
			off += c.length;
		}
	};
	const fd = path === "-" ? 0 : openSync(path, "r");
	const buf = Buffer.alloc(4 << 20);
	for (;;) {
		const n = readSync(fd, buf, 0, buf.length, null);
		if (n === 0) break;
		take(chunker.add_data(buf.subarray(0, n)));
	}
	if (fd !== 0) closeSync(fd);
	take(chunker.finish());
	chunker.free();
	const xetHash = mod.compute_file_hash(chunks.map(([, length, hash]) => ({ hash, length })));
	return { size: off, xetHash, chunks };
}

const args = process.argv.slice(2);
if (args[0] === "--merkle") {
	// --merkle '[["hash",len],..]' -> {"xorb":..,"file":..} for a given leaf list.
	const leaves = JSON.parse(args[1]).map(([hash, length]) => ({ hash, length }));
	console.log(JSON.stringify({ xorb: mod.compute_xorb_hash(leaves), file: mod.compute_file_hash(leaves) }));
} else {
	for (const p of args) console.log(JSON.stringify(hashFile(p)));
}
