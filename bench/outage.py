#!/usr/bin/env python3
"""outage.py - issue 10: what a reader sees while the hub half-fails.

What it does: for every outage mode of the hub simulator (accept then close
without a reply, reset after the headers, 503 forever, 429 with
Retry-After: 3600, a 10 KB/s trickle, a black hole made with a drop rule in
a network namespace) and role (hub and CDN together, the CDN alone), runs
the matrix of tests/integration/outage_matrix.py on a fresh simulator and
mount (--fetch-timeout 10) and prints one markdown table row of measured
times: cached read/stat/readdir (worst of three), an uncached small file, an
uncached LFS block, open + MAP_POPULATE of an uncached file, and recovery
(outage lifted -> an uncached read succeeds). Each cell says what the
reader got (EIO, ok, or "killed": the loader was stuck in populate and
SIGKILL took that long). A first row measures the same cells with a healthy
hub: the baseline of this run; the last column gives the worst failing
cell as a ratio to the healthy uncached read.

What it does not do: assert anything (tests/integration/test_outage.py
does, with the issue's limits). Times come from a shared 2-core machine:
read them as orders of magnitude. Needs root (FUSE; the black hole needs
`ip netns` and nftables, else that row is skipped) and a built binary:
    python3 bench/outage.py --bin build/cli/modelfs [--modes close,503]
Everything it starts is stopped and removed on exit.
"""
import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=None, help="modelfs binary (default build/cli/modelfs)")
    ap.add_argument("--modes", default=None, help="comma-separated subset of the modes")
    ap.add_argument("--roles", default="all,cdn")
    a = ap.parse_args()
    if a.bin:
        os.environ["MODELFS_BIN"] = os.path.abspath(a.bin)
    import harness  # noqa: E402 - reads MODELFS_BIN at import
    import outage_matrix as om  # noqa: E402

    class Case(harness.MountCase):
        def runTest(self):
            pass

    modes = a.modes.split(",") if a.modes else om.MODES
    cells = ["cached", "small", "lfs", "populate", "recovery"]
    print("| mode | role | " + " | ".join(cells) + " | worst failure / healthy read |")
    print("|---" * (len(cells) + 3) + "|")

    def fmt(c):
        secs, outcome, _ = c
        return "%s %s" % ("%.3f s" % secs if secs is not None else "-", outcome)

    healthy = None
    for mode in ["none"] + modes:
        for role in (["all"] if mode == "none" else a.roles.split(",")):
            if mode == "blackhole" and not om.netns_supported():
                print("| blackhole | %s | (skipped: needs root and ip netns) |" % role)
                continue
            case = Case()
            case.setUp()
            try:
                run = om.OutageRun(case, mode, role)
                res = run.measure()
            finally:
                case.doCleanups()
            if mode == "none":
                healthy = max(res["small"][0], res["lfs"][0])
                ratio = "baseline"
            else:
                failed = [res[k][0] for k in ("small", "lfs") if res[k][1] != "ok"]
                ratio = "%.2fx" % (max(failed) / healthy) if failed and healthy else "-"
            print("| %s | %s | %s | %s |" % ("healthy" if mode == "none" else mode, role,
                                           " | ".join(fmt(res[c]) for c in cells), ratio),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
