// hfjs.mjs - drives Hugging Face's own JS client (@huggingface/hub, pinned in
// package.json) for tests/integration/test_hfcache.py. One JSON line out.
//
//   node hfjs.mjs download HUB CACHEDIR REPO PATH REVISION [TYPE]
//        downloadFileToCacheDir -> {"path": <pointer path it returned>}
//   node hfjs.mjs scan CACHEDIR
//        scanCacheDir -> {"repos": [{id, type, files, size, revisions:
//                          [{commit, refs, files: [{path, blob, size}]}]}], "warnings": n}
//   node hfjs.mjs snapshot HUB CACHEDIR REPO REVISION [TYPE]
//        snapshotDownload -> {"path": <snapshot folder>}
//
// It does not check anything itself: the Python test compares what the
// client returned with the mount and the simulator's byte counters.
import { downloadFileToCacheDir, scanCacheDir, snapshotDownload } from "@huggingface/hub";

const [cmd, ...a] = process.argv.slice(2);
const repoOf = (name, type) => ({ type: type || "model", name });

try {
	let out;
	if (cmd === "download") {
		const [hubUrl, cacheDir, repo, path, revision, type] = a;
		out = { path: await downloadFileToCacheDir({ hubUrl, cacheDir, repo: repoOf(repo, type), path, revision }) };
	} else if (cmd === "snapshot") {
		const [hubUrl, cacheDir, repo, revision, type] = a;
		out = { path: await snapshotDownload({ hubUrl, cacheDir, repo: repoOf(repo, type), revision }) };
	} else if (cmd === "scan") {
		const r = await scanCacheDir(a[0]);
		out = {
			warnings: r.warnings.map(String),
			repos: r.repos.map((x) => ({
				id: x.id.name, type: x.id.type, files: x.filesCount, size: x.size,
				revisions: x.revisions.map((v) => ({
					commit: v.commitOid, refs: v.refs,
					files: v.files.map((f) => ({ path: f.path, blob: f.blob.path, size: f.blob.size })),
				})),
			})),
		};
	} else {
		throw new Error("usage: hfjs.mjs download|snapshot|scan ...");
	}
	process.stdout.write(JSON.stringify(out) + "\n");
} catch (e) {
	process.stdout.write(JSON.stringify({ error: String(e && e.stack || e) }) + "\n");
	process.exitCode = 1;
}
