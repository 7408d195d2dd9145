/*
 * simproc.h - start, drive and stop the hub simulator (tests/hubsim/hubsim.py)
 * from C tests.
 *
 * What it does: spawns `python3 hubsim.py --root DIR --port 0 ...`, waits
 * (bounded) for its ready line, sends control requests (faults, offline,
 * config, stats) over libcurl to 127.0.0.1 only, and kills the process.
 * Also small file helpers to lay out simulator repos in a temp dir.
 * What it does not do: speak the hub API (the code under test does that).
 */
#ifndef MFS_TEST_SIMPROC_H
#define MFS_TEST_SIMPROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/json.h"

struct simproc {
	pid_t pid;
	char hub[128];
	char cdn[128];
	char control[128];
};

/* Starts the simulator serving `root`; 0 or -errno (timeout: -ETIMEDOUT). */
int simproc_start(struct simproc *sp, const char *root);
/* SIGTERM, then SIGKILL if it lingers; always reaps. Idempotent. */
void simproc_stop(struct simproc *sp);

/* POST (body != NULL) or GET to control `path` ("/_sim/fault"); the
 * response body is returned in *out (malloc'd) if out != NULL. Returns the
 * HTTP status, or -errno. */
int simproc_control(struct simproc *sp, const char *path, const char *body, char **out);
/* GET /_sim/stats parsed; caller frees with mfs_json_free. */
int simproc_stats(struct simproc *sp, struct mfs_json **out);
/* Integer at stats[a][b] (b may be NULL), -1 if absent. */
int64_t simproc_stat(struct simproc *sp, const char *a, const char *b);

/* Writes `len` bytes to root/rel, creating parent directories. */
int simproc_write_file(const char *root, const char *rel, const void *data, size_t len);
/* Recursively deletes a directory tree. */
void simproc_rmtree(const char *path);

#endif
