#!/usr/bin/env python3
"""httpd_vs_mhd.py - serve/httpd.c against libmicrohttpd on the same
trivial server (bench/httpd_vs_mhd.c: a 16 KiB body from memory, 8
threads), each under wrk alone and with slowloris connections open.

    python3 bench/httpd_vs_mhd.py --bin build/bench/httpd_vs_mhd
        [--conns 200] [--secs 15] [--loris 50]

Prints requests/s, p50/p99 and errors for each server and run, and the
ratios mhd/ours. The two servers alternate (ours, mhd, ours, mhd) so drift
in the machine's load hits both; figures are still noisy on a shared box.
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_load import RssSampler, Slowloris, describe, run_wrk  # noqa: E402


def measure(binary, which, conns, secs, loris_n):
    p = subprocess.Popen([binary, which], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        port = int(p.stdout.readline())
        url = "http://127.0.0.1:%d/x" % port
        sampler = RssSampler(p.pid).start()
        loris = Slowloris("127.0.0.1", port, loris_n).start() if loris_n else None
        if loris:
            time.sleep(2)
        r = run_wrk(url, conns, secs)
        if loris:
            loris.stop()
        r["rss_max_kb"] = sampler.stop()
        return r
    finally:
        p.stdin.close()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--conns", type=int, default=200)
    ap.add_argument("--secs", type=int, default=15)
    ap.add_argument("--loris", type=int, default=50)
    a = ap.parse_args()
    print("info: %d clients x %d s, then with %d slowloris; shared machine: "
          "compare the ratios" % (a.conns, a.secs, a.loris))
    res = {}
    for loris in (0, a.loris):
        for which in ("ours", "mhd"):
            r = measure(a.bin, which, a.conns, a.secs, loris)
            res[(which, loris)] = r
            print(describe("%s%s" % (which, " + %d slowloris" % loris if loris else ""), r)
                  + ", rss max %d KiB" % r["rss_max_kb"])
    for loris in (0, a.loris):
        o, m = res[("ours", loris)], res[("mhd", loris)]
        tag = "loris" if loris else "plain"
        print("mhd_vs_ours_rps_%s: %.2f" % (tag, m["rps"] / o["rps"] if o["rps"] else 0))
        print("mhd_vs_ours_p99_%s: %.2f" % (tag, m["p99"] / o["p99"] if o["p99"] else 0))


if __name__ == "__main__":
    main()
