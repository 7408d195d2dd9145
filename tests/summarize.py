#!/usr/bin/env python3
"""summarize.py - one closing count for every suite of one or more builds.

Reads meson-logs/testlog.json of each build directory given and counts test
cases, not test programs: criterion's "Synthesis: Tested: N | Passing: N |
Failing: N | Crashing: N" line plus its "[SKIP]" lines (criterion leaves
skipped tests out of Tested; tests/meson.build makes it print them), and
pyrun.py's "N passed, N failed, N skipped". A program that failed without
printing a count counts as one failure (a crash before its summary); a
program meson reports as skipped (exit 77) counts as one skip. Also fails
the run when a sanitizer left a report in SANITIZER_LOG_DIR. Prints
per-suite lines, then as its LAST line "N passed, N failed, N skipped".
Exit 0 only if nothing failed (skips do not fail a run, but they show).
"""
import glob
import json
import os
import re
import sys

CRIT = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
CRIT_SKIP = re.compile(r"^\[SKIP\] ", re.M)
PY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped\s*$", re.M)


def count(entry):
    """(passed, failed, skipped) test cases of one meson test entry."""
    out = (entry.get("stdout") or "") + "\n" + (entry.get("stderr") or "")
    m = CRIT.findall(out)
    if m:
        tested, passing, failing, crashing = map(int, m[-1])
        p, f = passing, failing + crashing + max(0, tested - passing - failing - crashing)
        s = len(CRIT_SKIP.findall(out))
    else:
        m = PY.findall(out)
        if m:
            p, f, s = map(int, m[-1])
        elif entry.get("result") == "SKIP":
            p, f, s = 0, 0, 1
        else:
            p, f, s = (1, 0, 0) if entry.get("result") == "OK" else (0, 1, 0)
    if entry.get("result") not in ("OK", "EXPECTEDFAIL", "SKIP") and f == 0:
        f = 1  # the program failed (timeout, crash after its summary, leak exit code)
    return p, f, s


def main(builds):
    total_p = total_f = total_s = 0
    for b in builds:
        path = os.path.join(b, "meson-logs", "testlog.json")
        if not os.path.exists(path):
            print("%s: no test log (build or test step failed)" % b)
            total_f += 1
            continue
        with open(path) as fh:
            for line in fh:
                e = json.loads(line)
                p, f, s = count(e)
                total_p += p
                total_f += f
                total_s += s
                print("%-12s %-28s %4d passed %3d failed %3d skipped  %s" % (
                    os.path.basename(b.rstrip("/")), e["name"], p, f, s, e.get("result")))
    logdir = os.environ.get("SANITIZER_LOG_DIR")
    if logdir:
        reports = [p for p in glob.glob(os.path.join(logdir, "*")) if os.path.getsize(p) > 0]
        for p in reports:
            print("sanitizer report: %s" % p)
            with open(p, errors="replace") as fh:
                print(fh.read()[-4000:])
        total_f += len(reports)
    print("%d passed, %d failed, %d skipped" % (total_p, total_f, total_s))
    return 0 if total_f == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
