"""nginxrun.py - a throwaway nginx for tests and benchmarks
(tests/integration/test_nginx.py, bench/bench_compare.py): its own config,
pid, logs and temp paths in one directory, `daemon off;` so the caller owns
the process, and a wait for its ports.

It writes no `server {}` block itself (the caller's, e.g. from
examples/make_static_mirror.py) and does not register cleanups: stop() is
for the caller to run, failed or not.
"""
import os
import shutil
import signal
import socket
import subprocess
import time

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(d, servers, log_format, stderr, error_level="info", worker_connections=256,
          http_extra=""):
    """Runs nginx as root from directory d with the given `server {}` blocks
    (text). log_format is the format string of access log d/logs/access.log,
    in nginx syntax (quoted). stderr: a file object for nginx's own output.
    Returns (Popen, access log path)."""
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    conf = os.path.join(d, "nginx.conf")
    access = os.path.join(d, "logs", "access.log")
    with open(conf, "w") as f:
        f.write("""daemon off;
master_process on;
worker_processes 1;
user root;
pid %(d)s/nginx.pid;
error_log %(d)s/logs/error.log %(level)s;
events { worker_connections %(conns)d; }
http {
    log_format mfs %(fmt)s;
    access_log %(access)s mfs;
    client_body_temp_path %(d)s/client_body;
    proxy_temp_path %(d)s/proxy_temp;
    fastcgi_temp_path %(d)s/fastcgi_temp;
    uwsgi_temp_path %(d)s/uwsgi_temp;
    scgi_temp_path %(d)s/scgi_temp;
    sendfile on;
%(extra)s%(servers)s
}
""" % {"d": d, "level": error_level, "conns": worker_connections, "fmt": log_format,
       "access": access, "extra": http_extra, "servers": servers})
    p = subprocess.Popen([NGINX, "-p", d, "-c", conf], stdin=subprocess.DEVNULL,
                         stdout=stderr, stderr=stderr)
    return p, access


def wait_listening(p, port, timeout=10):
    """Returns once 127.0.0.1:port accepts; raises if nginx exits first or
    the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError("nginx exited (%d) before listening" % p.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx is not listening on %d" % port)


def stop(p, sig=signal.SIGQUIT):
    """Sends sig (for nginx SIGQUIT: graceful, workers finish), then SIGKILL
    after 10 s. Any process: srvutil stops `modelfs serve` with SIGTERM."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
