"""test_summarize.py - tests/summarize.py counts what each suite printed:
criterion passes, failures, crashes and skips, pyrun.py's three numbers,
meson's SKIP results, programs that died without a count, sanitizer
reports; and its last line keeps the "N passed, N failed" prefix that
scripts match, followed by ", N skipped"."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARIZE = os.path.join(HERE, "..", "summarize.py")

CRIT_OUT = ("[RUN ] a::ok\n[PASS] a::ok: (0.00s)\n[RUN ] a::sk\n[SKIP] a::sk: no SHA-NI\n"
            "[SKIP] a::sk2: nope\n"
            "[====] Synthesis: Tested: 3 | Passing: 2 | Failing: 1 | Crashing: 0\n")


def run(entries, env=None):
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "meson-logs"))
        with open(os.path.join(d, "meson-logs", "testlog.json"), "w") as f:
            for e in entries:
                f.write(json.dumps(e) + "\n")
        e = dict(os.environ)
        e.pop("SANITIZER_LOG_DIR", None)
        e.update(env or {})
        r = subprocess.run([sys.executable, SUMMARIZE, d], capture_output=True, text=True,
                           env=e)
    return r.returncode, r.stdout.strip().splitlines()[-1]


class Summarize(unittest.TestCase):
    def test_criterion_skips_are_counted(self):
        rc, last = run([{"name": "u", "result": "FAIL", "stdout": CRIT_OUT}])
        self.assertEqual(last, "2 passed, 1 failed, 2 skipped")
        self.assertEqual(rc, 1)

    def test_pyrun_counts_and_meson_skip(self):
        rc, last = run([{"name": "p", "result": "OK", "stdout": "5 passed, 0 failed, 3 skipped\n"},
                        {"name": "s", "result": "SKIP", "stdout": ""}])
        self.assertEqual(last, "5 passed, 0 failed, 4 skipped")
        self.assertEqual(rc, 0, "skips alone do not fail a run")

    def test_a_crash_without_a_count_fails(self):
        rc, last = run([{"name": "c", "result": "FAIL", "stdout": "Segmentation fault\n"},
                        {"name": "t", "result": "TIMEOUT",
                         "stdout": "1 passed, 0 failed, 0 skipped\n"}])
        self.assertEqual(last, "1 passed, 2 failed, 0 skipped")
        self.assertEqual(rc, 1)

    def test_sanitizer_report_fails(self):
        with tempfile.TemporaryDirectory() as logs:
            with open(os.path.join(logs, "asan.123"), "w") as f:
                f.write("ERROR: LeakSanitizer: detected memory leaks\n")
            rc, last = run([{"name": "p", "result": "OK",
                             "stdout": "1 passed, 0 failed, 0 skipped\n"}],
                           env={"SANITIZER_LOG_DIR": logs})
        self.assertEqual(last, "1 passed, 1 failed, 0 skipped")
        self.assertEqual(rc, 1)

    def test_last_line_keeps_the_old_prefix(self):
        _, last = run([{"name": "p", "result": "OK", "stdout": "1 passed, 0 failed, 0 skipped\n"}])
        self.assertRegex(last, r"^\d+ passed, \d+ failed(, \d+ skipped)?$")
        self.assertTrue(re.match(r"^(\d+) passed, (\d+) failed", last))


if __name__ == "__main__":
    unittest.main()
