#!/usr/bin/env bash
# run-all.sh - the whole test suite, from a fresh Debian 12 to one count.
#
#   1. installs dependencies (tests/install-deps.sh)
#   2. builds (warnings are errors here) and runs every suite (unit,
#      hubsim, gen, integration, fuzz: each libFuzzer target of tests/fuzz
#      for 15 s, a crash fails the run); also compiles with clang at -O3, which
#      warns about other things than gcc does (no tests run on that build)
#   3. builds again with AddressSanitizer + UBSan and runs the C suites
#      (unit, integration: the mount daemon itself runs sanitized);
#      any sanitizer report (leaks included) fails the run
#   4. prints per-test counts and, last, "N passed, N failed, N skipped"
# Needs root (FUSE mounts, apt). Exit status 0 only if everything passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${MODELFS_BUILD_DIR:-$ROOT/build}
ASAN=${MODELFS_ASAN_DIR:-$ROOT/build-asan}

bash tests/install-deps.sh || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

step() { echo; echo "==== $* ===="; }

setup() {  # dir, extra meson args...
	local dir=$1; shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

rc=0
step "build ($BUILD)"
if setup "$BUILD" -Dwerror=true && ninja -C "$BUILD"; then
	step "tests"
	meson test -C "$BUILD" --print-errorlogs --no-rebuild || rc=1
else
	rc=1
	rm -f "$BUILD/meson-logs/testlog.json"
fi

# A compile-only build: clang, release (-O3), warnings as errors. It counts
# as one test in the summary so a clang-only warning fails the run.
CLANG=${MODELFS_CLANG_DIR:-$ROOT/build-clang}
step "clang -O3 build ($CLANG)"
mkdir -p "$CLANG/meson-logs"
if command -v clang >/dev/null && CC=clang setup "$CLANG" --buildtype=release -Dwerror=true \
	&& ninja -C "$CLANG"; then
	echo '{"name": "clang-O3-build", "result": "OK", "stdout": ""}' >"$CLANG/meson-logs/testlog.json"
else
	rc=1
	echo '{"name": "clang-O3-build", "result": "FAIL", "stdout": ""}' >"$CLANG/meson-logs/testlog.json"
fi

export SANITIZER_LOG_DIR="$ROOT/build-asan-reports"
rm -rf "$SANITIZER_LOG_DIR" && mkdir -p "$SANITIZER_LOG_DIR"
step "sanitizer build ($ASAN)"
if setup "$ASAN" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false && ninja -C "$ASAN"; then
	step "sanitizer tests"
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$SANITIZER_LOG_DIR/asan" \
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$SANITIZER_LOG_DIR/ubsan" \
		meson test -C "$ASAN" --print-errorlogs --no-rebuild --suite unit --suite integration || rc=1
else
	rc=1
	rm -f "$ASAN/meson-logs/testlog.json"
fi

step "summary"
python3 tests/summarize.py "$BUILD" "$CLANG" "$ASAN" || rc=1
exit $rc
