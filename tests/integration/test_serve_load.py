"""test_serve_load.py - a short, bounded version of bench/serve_load.py
(issue 12): wrk with 100 concurrent clients on cached content while 20
slowloris connections trickle header bytes. No request may fail, the
slowloris connections must be cut by the server (the whole-request
deadline), and the server's RSS must stay bounded.
"""
import os
import shutil
import sys
import time
import unittest

from harness import SRC, MountCase, make_repo, rand_bytes
from srvutil import http, rss_kb, start_serve

sys.path.insert(0, os.path.join(SRC, "bench"))
from serve_load import RssSampler, Slowloris, describe, run_wrk  # noqa: E402


@unittest.skipUnless(shutil.which("wrk"), "wrk is not installed (tests/install-deps.sh)")
class Load(MountCase):
    def test_many_clients_and_slowloris_no_errors_bounded_rss(self):
        data = rand_bytes(16 * 1024, seed=151)
        make_repo(self.root, "Org/m", {"f.bin": data})
        self.start_sim()
        url, p = start_serve(self, "cache", "--pull-through", "--endpoint", self.sim.hub)
        target = url + "/Org/m/resolve/main/f.bin"
        self.assertEqual(http(target)[:3:2], (200, data))
        rss0 = rss_kb(p.pid)
        sampler = RssSampler(p.pid).start()
        loris = Slowloris("127.0.0.1", int(url.rsplit(":", 1)[1]), 20).start()
        self.addCleanup(loris.stop)
        time.sleep(1)
        r = run_wrk(target, 100, 13)  # longer than the 10 s request deadline
        loris.stop()
        rss_max = sampler.stop()
        print(describe("wrk 100 clients + 20 slowloris", r))
        print("rss_kib: before %d, max %d; slowloris reopened %d" %
              (rss0, rss_max, loris.reconnects))
        self.assertGreater(r["requests"], 1000, r["text"])
        self.assertEqual(r["errors"], 0, r["text"])
        self.assertGreater(loris.reconnects, 0, "the server never cut a slowloris connection")
        self.assertLess(rss_max - rss0, 64 * 1024, "RSS grew from %d to %d KiB" % (rss0, rss_max))
        self.assertIsNone(p.poll())
        self.assertEqual(http(target)[:3:2], (200, data))
