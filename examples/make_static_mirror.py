#!/usr/bin/env python3
"""make_static_mirror.py - lay out a static copy of Hub repositories that a
plain web server (nginx) can serve as a `modelfs mount --mirror URL`.

What it does:
  - asks an HF-compatible endpoint (the Hub, a `modelfs serve`, a simulator)
    for each repository's API answers and stores them as files:
        /api/{models,datasets}/ORG/NAME                      repo info
        /api/.../ORG/NAME/revision/REV                       the revision asked
                                                              (default: main, if it
                                                              is the default branch)
                                                              and the commit sha
        /api/.../ORG/NAME/tree/SHA?recursive=true&expand=false
                                                              the WHOLE recursive
                                                              listing, all pages
                                                              merged (no Link)
        /api/models?author=ORG&limit=1                        org lookup
    each stored as `<that path>/@.json` (org lookup: api/<type>s/ORG/@author.json),
    because one URL path is both an answer and the parent of others, and '@'
    never occurs in a repo or org name;
  - downloads every file of the commit to `[datasets/]ORG/NAME/resolve/SHA/PATH`
    (following /resolve redirects, never sending the token off the endpoint's
    origin) and checks it against the listing: sha256 for LFS files, git blob
    sha1 for the others; a mismatch is an error and nothing is kept;
  - prints (or writes) an nginx `server {}` block serving that directory:
    file bytes straight from disk (nginx answers Range with 206 natively),
    API answers with `try_files $uri/@.json`, the query ignored.

What it does not do: mirror refs that were not asked for, paths-info,
`/raw`, private-repo access control (serve only what may be public), or
keep a mirror up to date (run it again; old commits stay valid: their
URLs contain the commit sha).

modelfs verifies every mirrored blob against the hub's listing (or the last
one it knows), so a stale or tampered mirror costs bandwidth, not
correctness.

Usage:
  make_static_mirror.py OUT ORG/NAME[@REV] [datasets/ORG/NAME[@REV]] ...
      [--endpoint URL] [--token TOKEN] [--nginx-conf FILE] [--listen HOST:PORT]
Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN.
Python 3 standard library only; importable (lay_out_repo, nginx_server_block).
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import urllib.parse

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
MAX_HOPS = 5


class MirrorError(RuntimeError):
    pass


def _origin(url):
    u = urllib.parse.urlsplit(url)
    return (u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80))


def _request(url, token, endpoint, method="GET"):
    """One request with redirects followed by hand: the Authorization header
    goes only to the endpoint's own origin (never to a CDN). Returns an open
    http.client response with status 200, or raises MirrorError."""
    for _ in range(MAX_HOPS + 1):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise MirrorError("refusing non-http URL %s" % url)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(u.hostname, u.port, timeout=60)
        target = u.path + ("?" + u.query if u.query else "")
        headers = {"User-Agent": "modelfs-make-static-mirror/1", "Accept-Encoding": "identity"}
        if token and _origin(url) == _origin(endpoint):
            headers["Authorization"] = "Bearer " + token
        conn.request(method, target, headers=headers)
        r = conn.getresponse()
        if r.status in (301, 302, 303, 307, 308) and r.getheader("Location"):
            url = urllib.parse.urljoin(url, r.getheader("Location"))
            r.read()
            conn.close()
            continue
        if r.status != 200:
            body = r.read(300)
            conn.close()
            raise MirrorError("%s %s -> %d %s" % (method, url, r.status, body[:200]))
        r._mirror_conn = conn  # closed by the caller through _close
        return r
    raise MirrorError("too many redirects for %s" % url)


def _close(r):
    r.close()
    r._mirror_conn.close()


def _get_json_bytes(url, token, endpoint):
    """(body bytes, Link rel=next URL or None)."""
    r = _request(url, token, endpoint)
    try:
        body = r.read()
        link = r.getheader("Link") or ""
    finally:
        _close(r)
    nxt = None
    m = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
    if m:
        nxt = urllib.parse.urljoin(url, m.group(1))
        if _origin(nxt) != _origin(endpoint):
            raise MirrorError("tree next link leaves the endpoint: %s" % nxt)
    json.loads(body)  # must be JSON, or it is not an API answer worth storing
    return body, nxt


def _write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _safe_rel(path):
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise MirrorError("refusing unsafe path in listing: %r" % path)
    return os.path.join(*parts)


def _parse_repo(spec):
    """'org/name[@rev]' or 'datasets/org/name[@rev]' -> (type, org, name, rev)."""
    rev = None
    if "@" in spec:
        spec, rev = spec.split("@", 1)
    rtype = "model"
    for pfx, t in (("datasets/", "dataset"), ("models/", "model")):
        if spec.startswith(pfx):
            spec, rtype = spec[len(pfx):], t
    parts = spec.split("/")
    if len(parts) != 2 or not all(NAME_RE.match(p) for p in parts):
        raise MirrorError("bad repo id %r (want ORG/NAME)" % spec)
    return rtype, parts[0], parts[1], rev


def _download(url, dst, token, endpoint, size, want, algo):
    """Streams url into dst, checking size and digest before it is kept."""
    r = _request(url, token, endpoint)
    h = hashlib.sha256() if algo == "sha256" else hashlib.sha1(b"blob %d\0" % size)
    got = 0
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dst), prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
                h.update(chunk)
                f.write(chunk)
        if got != size or h.hexdigest() != want:
            raise MirrorError("%s: got %d bytes with %s %s, listing says %d bytes %s"
                              % (url, got, algo, h.hexdigest(), size, want))
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    finally:
        _close(r)


def lay_out_repo(out, spec, endpoint, token=None, files=True, log=None):
    """Mirrors one repo (spec as on the command line) into `out`.
    Returns {"commit": sha, "files": n, "bytes": total}."""
    endpoint = endpoint.rstrip("/")
    rtype, org, name, rev = _parse_repo(spec)
    api = "/api/%ss" % rtype
    rid = "%s/%s" % (org, name)
    q = urllib.parse.quote

    def store(urlpath, body):
        _write_atomic(os.path.join(out, *urlpath.strip("/").split("/"), "@.json"), body)

    # repo info: the default answer, the asked revision, and the commit itself
    body, _ = _get_json_bytes(endpoint + "%s/%s" % (api, rid), token, endpoint)
    store("%s/%s" % (api, rid), body)
    info = json.loads(body)
    if rev:
        body, _ = _get_json_bytes(endpoint + "%s/%s/revision/%s" % (api, rid, q(rev, safe="")),
                                  token, endpoint)
        # nginx matches the decoded URI, so the file lives under the plain rev
        _safe_rel(rev)
        store("%s/%s/revision/%s" % (api, rid, rev), body)
        info = json.loads(body)
    else:
        # `ORG/NAME@main` (and tools that always name the branch) ask for it
        try:
            body, _ = _get_json_bytes(endpoint + "%s/%s/revision/main" % (api, rid), token,
                                      endpoint)
            if json.loads(body).get("sha") == info.get("sha"):
                store("%s/%s/revision/main" % (api, rid), body)
        except MirrorError:
            pass  # the default branch has another name
    sha = info.get("sha")
    if not isinstance(sha, str) or not re.match(r"^[0-9a-f]{40}$", sha):
        raise MirrorError("%s: repo info has no commit sha" % rid)
    body, _ = _get_json_bytes(endpoint + "%s/%s/revision/%s" % (api, rid, sha), token, endpoint)
    store("%s/%s/revision/%s" % (api, rid, sha), body)

    # the whole listing, every page, as one answer without a next link
    entries = []
    url = endpoint + "%s/%s/tree/%s?recursive=true&expand=false" % (api, rid, sha)
    pages = 0
    while url:
        pages += 1
        if pages > 10000:
            raise MirrorError("%s: too many tree pages" % rid)
        body, url = _get_json_bytes(url, token, endpoint)
        page = json.loads(body)
        if not isinstance(page, list):
            raise MirrorError("%s: tree page is not a list" % rid)
        entries.extend(page)
    store("%s/%s/tree/%s" % (api, rid, sha), json.dumps(entries).encode())

    # org lookup (GET /api/models?author=ORG&limit=1): the hub's own answer
    body, _ = _get_json_bytes(endpoint + "%s?author=%s&limit=1" % (api, q(org, safe="")),
                              token, endpoint)
    _write_atomic(os.path.join(out, "api", rtype + "s", org, "@author.json"), body)

    n = total = 0
    base = os.path.join(out, *(["datasets"] if rtype == "dataset" else []), org, name,
                        "resolve", sha)
    for e in entries:
        if not files or not isinstance(e, dict) or e.get("type") != "file":
            continue
        path, size = e.get("path"), e.get("size")
        lfs = e.get("lfs") if isinstance(e.get("lfs"), dict) else None
        if not isinstance(path, str) or not isinstance(size, int) or size < 0:
            raise MirrorError("%s: bad tree entry %r" % (rid, e))
        dst = os.path.join(base, _safe_rel(path))
        want, algo = (lfs["oid"], "sha256") if lfs else (e.get("oid"), "sha1")
        if lfs and lfs.get("size", size) != size:
            raise MirrorError("%s: %s: lfs size disagrees with size" % (rid, path))
        if not os.path.exists(dst):
            url = endpoint + "/%s%s/resolve/%s/%s" % ("datasets/" if rtype == "dataset" else "",
                                                       rid, sha, q(path))
            _download(url, dst, token, endpoint, size, want, algo)
        n += 1
        total += size
        if log:
            log("%s@%s: %s (%d bytes)" % (rid, sha[:10], path, size))
    return {"commit": sha, "files": n, "bytes": total}


def nginx_server_block(root, listen):
    """An nginx `server {}` block serving a directory made by lay_out_repo."""
    root = os.path.abspath(root)
    return """server {
    listen %(listen)s;
    root %(root)s;
    autoindex off;
    # API answers: stored as <path>/@.json (the query is not part of $uri)
    location /api/ {
        default_type application/json;
        try_files $uri/@.json =404;
    }
    # org lookup: /api/models?author=ORG&limit=1 (ORG checked: it names a file;
    # a named capture, because the `if` regex would clobber $1)
    location ~ ^/api/(?<mfs_type>models|datasets)$ {
        default_type application/json;
        if ($arg_author !~ "^[A-Za-z0-9][A-Za-z0-9._-]*$") {
            return 404;
        }
        try_files /api/$mfs_type/$arg_author/@author.json =404;
    }
    # file bytes: /ORG/NAME/resolve/SHA/PATH, straight from disk (Range -> 206)
    location / {
        default_type application/octet-stream;
    }
}
""" % {"listen": listen, "root": root}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="directory to fill (the nginx root)")
    ap.add_argument("repos", nargs="+", help="ORG/NAME[@REV] or datasets/ORG/NAME[@REV]")
    ap.add_argument("--endpoint", default=os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    ap.add_argument("--token", default=os.environ.get("HF_TOKEN"))
    ap.add_argument("--metadata-only", action="store_true", help="API answers only, no files")
    ap.add_argument("--nginx-conf", help="write the server block here (default: print it)")
    ap.add_argument("--listen", default="127.0.0.1:8080", help="for the server block")
    a = ap.parse_args(argv)
    try:
        for spec in a.repos:
            r = lay_out_repo(a.out, spec, a.endpoint, a.token, files=not a.metadata_only,
                             log=lambda m: print(m, file=sys.stderr))
            print("%s: commit %s, %d files, %d bytes" % (spec, r["commit"], r["files"],
                                                         r["bytes"]), file=sys.stderr)
    except (MirrorError, OSError, ValueError) as e:
        print("make_static_mirror: %s" % e, file=sys.stderr)
        return 1
    block = nginx_server_block(a.out, a.listen)
    if a.nginx_conf:
        with open(a.nginx_conf, "w") as f:
            f.write(block)
    else:
        sys.stdout.write(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
