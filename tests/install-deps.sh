#!/usr/bin/env bash
# install-deps.sh - everything modelfs needs to build, test and run its demo
# on a fresh Debian 12, installed from Debian's packages and npm only.
# Needs root (or sudo). Safe to run again: apt and npm skip what is there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
	SUDO=sudo
fi

PKGS=(build-essential meson ninja-build pkg-config
      libfuse3-dev fuse3 libcurl4-openssl-dev libsqlite3-dev libzstd-dev libcriterion-dev
      libssl-dev libxxhash-dev
      python3 curl nginx-light ca-certificates xfsprogs e2fsprogs
      iproute2 nftables  # the outage matrix's black hole: a netns with a drop rule
      clang libclang-rt-dev wrk)  # libFuzzer targets (tests/fuzz), serve load bench
command -v node >/dev/null || PKGS+=(nodejs npm)

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update" >&2
$SUDO apt-get update -q >/dev/null
echo "install-deps: apt-get install ${PKGS[*]}" >&2
$SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}" >/dev/null

# nginx-light starts a default site on :80 when installed; tests start their
# own instances and nothing here needs the system one.
if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then
	$SUDO systemctl stop nginx || true
fi

# /dev/fuse must exist for mounts (it does on Debian kernels with fuse built in).
[ -e /dev/fuse ] || $SUDO modprobe fuse 2>/dev/null || true
[ -e /dev/fuse ] || { echo "install-deps: /dev/fuse is missing; FUSE mounts cannot work here" >&2; exit 1; }

if [ "${1:-}" != "--no-npm" ]; then
	here=$(cd "$(dirname "$0")" && pwd)
	if [ ! -d "$here/llama/node_modules/node-llama-cpp" ]; then
		echo "install-deps: npm install node-llama-cpp (tests/llama)" >&2
		(cd "$here/llama" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	fi
	# tests/hfjs's @huggingface/hub is also the Xet hashing ground truth
	# (tests/xetref: xet-core's chunker and hashes, as WASM).
	if [ ! -d "$here/hfjs/node_modules/@huggingface/hub" ]; then
		echo "install-deps: npm ci @huggingface/hub (tests/hfjs)" >&2
		(cd "$here/hfjs" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	fi
fi
