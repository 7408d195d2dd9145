#!/bin/sh
# llama_cpp.sh - llama.cpp reading a model straight from a modelfs mount.
#
# Usage: examples/llama_cpp.sh [ORG/NAME] [FILE.gguf] [PROMPT]
#
# The commands a user copies, in order: mount every Hugging Face repository
# under ~/models, look at a repository (nothing is downloaded yet), optionally
# prefetch or pin the model so it is on disk before it is needed, run
# llama-cli on the mounted path, and unmount. llama.cpp maps the file and the
# kernel reads it through the mount, so the first load streams the file in
# (8 parallel range requests ahead of the loader) and every later load reads
# the local block cache.
#
# Settings come from the environment so the same script runs anywhere:
#   MODELS     mount point                      (default ~/models)
#   MODELFS    the modelfs command               (default modelfs)
#   LLAMA_CLI  llama.cpp's CLI                   (default llama-cli)
#   HF_ENDPOINT, MODELFS_CACHE, HF_TOKEN         read by modelfs itself
#   UMOUNT=1   unmount at the end (default: leave it mounted for more runs)
# What it does not do: install llama.cpp or modelfs, or choose a model for you.
# tests/integration/test_examples.py runs this script against the hub simulator.
set -eu

REPO=${1:-TheOrg/tiny-llama}
FILE=${2:-model-q8_0.gguf}
PROMPT=${3:-Once upon a time}
MODELS=${MODELS:-$HOME/models}
MODELFS=${MODELFS:-modelfs}
LLAMA_CLI=${LLAMA_CLI:-llama-cli}

# 1. Mount (returns once the mount is live; the daemon logs to the cache dir).
#    Add --allow-other to share it with other users, --fetch-threads N for
#    more parallel range requests on a fast link.
mkdir -p "$MODELS"
if ! grep -qs " $(cd "$MODELS" && pwd -P) " /proc/self/mountinfo; then
    "$MODELFS" mount "$MODELS"
fi

# 2. Browse: <org>/<name> is a symlink to <name>@<commit>; sizes are known,
#    no file byte has been fetched.
ls -l "$MODELS/$REPO/"

# 3. Optional, before a flight or a demo: fetch the model now (prefetch), or
#    fetch it and keep it forever whatever the cache quota (pin). Both work
#    with or without a running mount, on the same cache.
if "$MODELFS" prefetch --help >/dev/null 2>&1; then
    "$MODELFS" prefetch "$REPO" --include "$FILE"
    "$MODELFS" pin "$REPO" --include "$FILE"
else
    echo "note: this modelfs has no prefetch/pin commands; the load below fetches lazily" >&2
fi

# 4. Run llama.cpp on the mounted path, exactly as on a local file.
"$LLAMA_CLI" -m "$MODELS/$REPO/$FILE" -p "$PROMPT" -n 16

# 5. Unmount when done (waits for the daemon to finish writing its cache).
if [ "${UMOUNT:-0}" = 1 ]; then
    "$MODELFS" umount "$MODELS"
fi
