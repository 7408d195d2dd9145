#!/usr/bin/env bash
# run.sh - build the libFuzzer targets with clang and run each for a while.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Targets (one per parser that reads untrusted bytes):
#   http   the request-head parser of `modelfs serve` (serve/httpd.c)
#   range  the Range header parser (serve/reply.c)
#   json   the JSON parser, strict and lenient-UTF-8 (util/json.c)
#   tree   the hub's tree-listing decoder (fetch/tree.c)
# Each is built with -fsanitize=fuzzer,address,undefined into
# $MODELFS_FUZZ_DIR (default build-fuzz/), started from the seeds in
# tests/fuzz/corpus/<target>/ plus what earlier runs found there. A crash
# leaves its input as build-fuzz/crash-<target>-*; turn it into a unit
# test. The last line counts targets: "N passed, N failed, 0 skipped".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-15}
shift || true
TARGETS=${*:-http range json tree}
OUT=${MODELFS_FUZZ_DIR:-$ROOT/build-fuzz}
CC=${CLANG:-clang}
mkdir -p "$OUT"

sources() {
	case $1 in
	http) echo serve/httpd.c util/log.c util/size.c ;;
	range) echo serve/reply.c serve/httpd.c util/log.c util/size.c util/strbuf.c ;;
	json) echo util/json.c util/log.c util/strbuf.c ;;
	tree) echo fetch/tree.c util/json.c util/repo.c util/log.c util/strbuf.c util/size.c ;;
	esac
}

pass=0
fail=0
for t in $TARGETS; do
	bin=$OUT/fuzz_$t
	srcs=()
	for s in $(sources "$t"); do srcs+=("$ROOT/$s"); done
	if ! "$CC" -std=gnu17 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
		-D_FILE_OFFSET_BITS=64 -Wall -Werror \
		-fno-sanitize-recover=undefined -I"$ROOT" -o "$bin" \
		"$ROOT/tests/fuzz/fuzz_$t.c" "${srcs[@]}" -lpthread -lm; then
		echo "fuzz $t: build FAILED"
		fail=$((fail + 1))
		continue
	fi
	corpus=$OUT/corpus-$t
	mkdir -p "$corpus"
	if [ -d "$ROOT/tests/fuzz/corpus/$t" ]; then
		cp -n "$ROOT/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
	fi
	dict=()
	[ -f "$ROOT/tests/fuzz/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$t.dict")
	if "$bin" "$corpus" "${dict[@]}" -max_total_time="$SECS" -max_len=65536 \
		-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$OUT/crash-$t-" \
		-print_final_stats=1 >"$OUT/fuzz_$t.log" 2>&1; then
		echo "fuzz $t: ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
			"$OUT/fuzz_$t.log" | grep -o '[0-9]*$') runs in ${SECS}s)"
		pass=$((pass + 1))
	else
		echo "fuzz $t: FAILED (see $OUT/fuzz_$t.log and $OUT/crash-$t-*)"
		tail -40 "$OUT/fuzz_$t.log"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
