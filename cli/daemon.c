/*
 * daemon.c - the mount process's lifecycle (see daemon.h).
 *
 * Order matters: fork first (threads do not survive fork), then open the
 * cache context, then fs/mount.c mounts and reports through a callback,
 * which writes the pidfile and tells the waiting parent "OK"; only then
 * does the loop run. Teardown reverses it after the loop ends (unmount by
 * `modelfs umount`, fusermount -u, or SIGTERM/SIGINT).
 */
#include "cli/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/context.h"
#include "core/sweep.h"
#include "fs/mount.h"
#include "util/hash.h"
#include "util/log.h"

int mfs_mount_state_path(const char *mountpoint_real, char *out, size_t cap)
{
	const char *base = getuid() == 0 ? "/run/modelfs" : getenv("XDG_RUNTIME_DIR");
	char dir[PATH_MAX];
	int n;

	if (!base || !*base)
		base = "/tmp";
	n = snprintf(dir, sizeof(dir), "%s%s", base, getuid() == 0 ? "" : "/modelfs");
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	(void)mkdir(dir, 0755);
	n = snprintf(out, cap, "%s/mount-%016llx.pid", dir,
		     (unsigned long long)mfs_xxh64(mountpoint_real, strlen(mountpoint_real), 0));
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static void report(int fd, const char *msg)
{
	if (fd >= 0) {
		size_t len = strlen(msg);
		if (write(fd, msg, len) != (ssize_t)len)
			mfs_debug("status pipe closed");
	}
}

static int wait_for_child(int fd, pid_t pid)
{
	char buf[1024];
	size_t len = 0;
	ssize_t r;

	while (len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	close(fd);
	if (strncmp(buf, "OK", 2) == 0)
		return 0;
	if (len == 0) {
		int st;
		waitpid(pid, &st, 0);
		fprintf(stderr, "modelfs: mount daemon exited before mounting\n");
	} else {
		fprintf(stderr, "modelfs: %s", buf);
	}
	return 1;
}

/* "PID\nMOUNTPOINT\nCACHE DIR\n": umount waits on the pid, status lists
 * the mounts of its own cache. */
static void write_pidfile(const char *mp, const char *cache_dir)
{
	char path[PATH_MAX];
	FILE *f;

	if (mfs_mount_state_path(mp, path, sizeof(path)))
		return;
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%d\n%s\n%s\n", (int)getpid(), mp, cache_dir);
	fclose(f);
}

/* Next to the pid file: the sources' up/down states, for `modelfs status`
 * (fetch/source.h: mfs_srcset_health_write). */
static int health_path(const char *mp, char *out, size_t cap)
{
	size_t n;

	if (mfs_mount_state_path(mp, out, cap))
		return -ENAMETOOLONG;
	n = strlen(out);
	if (n < 4 || n + 3 >= cap)
		return -ENAMETOOLONG;
	snprintf(out + n - 4, cap - (n - 4), ".health");
	return 0;
}

static void remove_pidfile(const char *mp)
{
	char path[PATH_MAX];

	if (mfs_mount_state_path(mp, path, sizeof(path)) == 0)
		unlink(path);
	if (health_path(mp, path, sizeof(path)) == 0)
		unlink(path);
}

struct mounted_ctx {
	const char *mp, *cache_dir;
	int *status_fd;
	bool live;               /* the mount came up (pidfile written) */
};

/* The mount is live: record it and release the waiting parent. */
static void on_mounted(void *arg)
{
	struct mounted_ctx *m = arg;

	write_pidfile(m->mp, m->cache_dir);
	m->live = true;
	report(*m->status_fd, "OK\n");
	if (*m->status_fd >= 0)
		close(*m->status_fd);
	*m->status_fd = -1;
}

static int serve(const struct mfs_mount_config *cfg, const char *mp, int status_fd)
{
	struct mfs_ctx *ctx = NULL;
	char why[PATH_MAX + 256];
	struct mounted_ctx m = { .mp = mp, .cache_dir = cfg->cache_dir, .status_fd = &status_fd };
	int rc;

	struct mfs_ctx_config cc = {
		.cache_dir = cfg->cache_dir, .endpoint = cfg->endpoint, .token = cfg->token,
		.offline = cfg->offline, .fetch = true,
		.mirrors = cfg->mirrors, .n_mirrors = cfg->n_mirrors,
		.peers = cfg->peers, .n_peers = cfg->n_peers,
		.peer_token = cfg->peer_token, .mirror_token = cfg->mirror_token,
		.prefer_mirror = cfg->prefer_mirror, .proxy = cfg->proxy,
		.fetch_timeout_ms = cfg->fetch_timeout_ms, .ref_ttl_ms = cfg->ref_ttl_ms,
		.quota = cfg->cache_size, .verify_strict = cfg->verify_strict,
	};
	rc = mfs_ctx_open(&cc, &ctx, why, sizeof(why));
	if (rc == 0) {
		/* Blocks a crash or a failed index write left behind would escape
		 * the quota forever; a failed sweep is reported, not fatal. */
		struct mfs_sweep_result sr;
		int src = mfs_sweep_orphans(ctx->ix, ctx->bs, ctx->lock_dir, &sr);
		if (src)
			mfs_error("could not sweep blocks the index does not know: %s",
				  strerror(-src));

		char hpath[PATH_MAX];
		if (health_path(mp, hpath, sizeof(hpath)))
			hpath[0] = '\0';
		struct mfs_mount_opts mo = {
			.health_file = hpath[0] ? hpath : NULL,
			.mountpoint = mp, .allow_other = cfg->allow_other,
			.fuse_opts = cfg->fuse_opts, .ref_ttl_ms = cfg->ref_ttl_ms,
			.block_size = cfg->block_size, .fetch_threads = cfg->fetch_threads,
			.mounted = on_mounted, .arg = &m,
		};
		rc = mfs_mount_serve(ctx, &mo, why, sizeof(why));
		if (m.live)
			remove_pidfile(mp);
	}
	if (rc && why[0]) {
		size_t n = strlen(why);
		if (n + 1 < sizeof(why))
			memcpy(why + n, "\n", 2);
		if (status_fd >= 0)
			report(status_fd, why);
		else
			mfs_error("%s", why);
	}
	mfs_ctx_close(ctx);
	return rc ? 1 : 0;
}

int mfs_mount_run(const struct mfs_mount_config *cfg)
{
	char mp[PATH_MAX], logpath[PATH_MAX + 16];
	struct stat st;
	int pfd[2];
	pid_t pid;

	if (!realpath(cfg->mountpoint, mp) || stat(mp, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "modelfs: mount point %s: %s\n", cfg->mountpoint,
			errno ? strerror(errno) : "not a directory");
		return 1;
	}
	if (mkdir(cfg->cache_dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "modelfs: cannot create cache directory %s: %s\n",
			cfg->cache_dir, strerror(errno));
		return 1;
	}
	/* The daemon changes directory to /: make the cache path absolute. */
	char cache_real[PATH_MAX];
	struct mfs_mount_config c = *cfg;
	if (!realpath(cfg->cache_dir, cache_real)) {
		fprintf(stderr, "modelfs: cache directory %s: %s\n", cfg->cache_dir,
			strerror(errno));
		return 1;
	}
	c.cache_dir = cache_real;
	cfg = &c;
	if (cfg->foreground)
		return serve(cfg, mp, -1);

	if (pipe(pfd)) {
		perror("modelfs: pipe");
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("modelfs: fork");
		return 1;
	}
	if (pid > 0) {
		close(pfd[1]);
		return wait_for_child(pfd[0], pid);
	}
	/* Child: detach, log to the cache directory, serve. */
	close(pfd[0]);
	setsid();
	snprintf(logpath, sizeof(logpath), "%s/modelfs.log", cfg->cache_dir);
	int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int nullfd = open("/dev/null", O_RDWR);
	if (nullfd >= 0) {
		dup2(nullfd, STDIN_FILENO);
		dup2(nullfd, STDOUT_FILENO);
		close(nullfd);
	}
	if (logfd >= 0) {
		dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	if (chdir("/"))
		mfs_debug("chdir: %s", strerror(errno));
	_exit(serve(cfg, mp, pfd[1]));
}
