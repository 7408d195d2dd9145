"""benchlib.py - what every benchmark here needs: sizes, test files, the
mount daemon's pid and CPU time. Benchmarks print ratios; nothing here
times anything."""
import os
import random

MiB = 1 << 20


def parse_size(text):
    """'1G', '512M', '64MiB', '4096' -> bytes (binary multiples)."""
    t = text.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t.rstrip("KMG")) * mult)


def gen_random(path, size, seed=1):
    """Deterministic incompressible bytes, written 16 MiB at a time."""
    rng = random.Random(seed)
    left = size
    with open(path, "wb") as f:
        while left > 0:
            n = min(left, 16 * MiB)
            f.write(rng.randbytes(n))
            left -= n


def proc_cpu(pid):
    """utime+stime of a process and all its threads, in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, TypeError):
        return float("nan")


def mounted(mp):
    mp = os.path.realpath(mp)
    with open("/proc/self/mountinfo") as f:
        return any(len(p) > 4 and p[4] == mp for p in (line.split() for line in f))


def daemon_pid(mp):
    """The mount daemon: the process whose argv is `modelfs mount <mp> ...`."""
    want = mp.encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"mount" in argv and want in argv and os.path.basename(argv[0]) == b"modelfs":
            return int(d)
    return None
