#!/usr/bin/env python3
"""pyrun.py - run Python unittest files and close with one counting line.

Usage: pyrun.py FILE.py [FILE.py ...] [-k PATTERN]

Each file is loaded as a module and its unittest tests run verbosely. The
last line is "N passed, N failed, N skipped" (errors count as failed), which
.ci/run sums with the criterion suites. Exit status 0 only if nothing failed
and at least one test ran.
"""
import importlib.util
import os
import sys
import unittest


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv):
    files, pattern = [], None
    it = iter(argv)
    for a in it:
        if a == "-k":
            pattern = next(it)
        else:
            files.append(a)
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = ["*%s*" % pattern]
    suite = unittest.TestSuite()
    for f in files:
        suite.addTests(loader.loadTestsFromModule(load(f)))
    res = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    sys.stdout.flush()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 0 if failed == 0 and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
