// run_llama.mjs - load a GGUF model with the real llama.cpp inside
// node-llama-cpp and greedily complete a fixed prompt.
//
// Usage: node run_llama.mjs MODEL.gguf [--no-mmap] [--tokens N] [--prompt TEXT]
//
// Prints one JSON line on stdout: {"text": ..., "load_ms": N, "gen_ms": N,
// "mmap": bool, "tokens": N} and exits 0. Any error: a message on stderr, exit 1.
// For a split model pass the first shard (…-00001-of-0000N.gguf).
//
// What it does: CPU only, prebuilt binaries shipped in the npm package (never
// builds or downloads anything), one thread and temperature 0 so the text is
// a deterministic function of the model bytes. llama.cpp's own logs go to
// stderr so stdout stays machine-readable.
// What it does not do: no chat template, no GPU, no sampling options.
import {getLlama, LlamaCompletion} from "node-llama-cpp";

const PROMPT = "The quick brown fox jumps over the lazy dog. Once upon a time";

function parseArgs(argv) {
    const opts = {model: null, mmap: true, tokens: 8, prompt: PROMPT};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--no-mmap") opts.mmap = false;
        else if (a === "--mmap") opts.mmap = true;
        else if (a === "--tokens") opts.tokens = Number.parseInt(argv[++i], 10);
        else if (a === "--prompt") opts.prompt = argv[++i];
        else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
        else if (opts.model === null) opts.model = a;
        else throw new Error(`unexpected argument ${a}`);
    }
    if (opts.model === null)
        throw new Error("usage: node run_llama.mjs MODEL.gguf [--no-mmap] [--tokens N]");
    if (!Number.isInteger(opts.tokens) || opts.tokens < 1)
        throw new Error("--tokens must be a positive integer");
    return opts;
}

async function main() {
    const opts = parseArgs(process.argv.slice(2));
    const llama = await getLlama({
        gpu: false,
        build: "never",
        usePrebuiltBinaries: true,
        skipDownload: true,
        progressLogs: false,
        logLevel: "warn",
        // Keep stdout for the JSON result only.
        logger: (level, message) => process.stderr.write(`[llama ${level}] ${message}\n`),
    });
    const t0 = performance.now();
    const model = await llama.loadModel({
        modelPath: opts.model,
        useMmap: opts.mmap,
        useDirectIo: false,
        gpuLayers: 0,
    });
    const loadMs = performance.now() - t0;
    const context = await model.createContext({contextSize: 128, threads: 1, batchSize: 128});
    const completion = new LlamaCompletion({contextSequence: context.getSequence()});
    let tokens = 0;
    const t1 = performance.now();
    const text = await completion.generateCompletion(opts.prompt, {
        maxTokens: opts.tokens,
        temperature: 0,
        onToken: (t) => { tokens += t.length; },
    });
    const genMs = performance.now() - t1;
    const result = {
        text,
        load_ms: Math.round(loadMs),
        gen_ms: Math.round(genMs),
        mmap: model.useMmap,
        tokens,
    };
    completion.dispose();
    await context.dispose();
    await model.dispose();
    await llama.dispose();
    process.stdout.write(JSON.stringify(result) + "\n");
}

main().then(() => process.exit(0), (err) => {
    process.stderr.write(`run_llama: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
