#!/bin/sh
# pin_models.sh - pin every model listed in a file, one REPO[@REV] per line,
# so they are on disk (and stay there) before anyone needs them; e.g. from
# cron or a machine's provisioning:
#
#     # models.txt
#     TheOrg/tiny-llama@v1.0
#     TheOrg/embedder            # default branch
#     datasets/TheOrg/eval-set@main
#
#     examples/pin_models.sh models.txt --update
#
# Blank lines and '#' comments are skipped; extra arguments go to every
# `modelfs pin` (e.g. --update, --cache DIR, --include '*.gguf'). Every line
# is tried; exits 1 if any failed (listed at the end), 2 on bad usage.
# MODELFS names the binary (default: modelfs on PATH).
set -u

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
	echo "usage: pin_models.sh FILE [modelfs pin options...]" >&2
	exit 2
fi
list=$1
shift
if [ ! -r "$list" ]; then
	echo "pin_models.sh: cannot read $list" >&2
	exit 2
fi
MODELFS=${MODELFS:-modelfs}

failed=""
while IFS= read -r line || [ -n "$line" ]; do
	line=${line%%#*}
	# trim blanks around the entry
	line=$(printf '%s' "$line" | tr -d '\r' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
	[ -z "$line" ] && continue
	echo "== $line"
	if ! "$MODELFS" pin "$line" "$@"; then
		failed="$failed $line"
	fi
done < "$list"

if [ -n "$failed" ]; then
	echo "pin_models.sh: failed:$failed" >&2
	exit 1
fi
exit 0
