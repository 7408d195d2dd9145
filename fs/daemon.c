/*
 * daemon.c - mount lifecycle (see daemon.h).
 *
 * Order matters: fork first (threads do not survive fork), then open the
 * index and block store, start the hub client and fetch threads, create
 * the FUSE session and mount, report success to the waiting parent, and
 * only then run the loop. Teardown reverses it after the loop ends
 * (unmount by `modelfs umount`, fusermount -u, or SIGTERM/SIGINT).
 */
#include "fs/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/blockstore.h"
#include "core/blobio.h"
#include "core/cachestats.h"
#include "core/catalog.h"
#include "core/evict.h"
#include "fetch/hub.h"
#include "fs/fs.h"
#include "index/index.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/size.h"

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

/* Finds "major:minor" of the FUSE mount at `mp` in mountinfo without
 * touching the mount itself (a stat() would wait for our own loop). */
static int mount_devname(const char *mp, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char dev[64], path[PATH_MAX];
		if (sscanf(line, "%*d %*d %63s %*s %4095s", dev, path) == 2 &&
		    strcmp(path, mp) == 0) {
			snprintf(out, cap, "%s", dev);
			rc = 0; /* keep the last match: the newest mount on top */
		}
	}
	fclose(f);
	return rc;
}

/* The kernel's default read-ahead for a FUSE mount is 128 KiB, so a
 * populated mmap arrives as 128 KiB requests; 1 MiB requests were measured
 * 2.7x faster (PEERS.md). Root may raise it; others keep the default. */
static void raise_readahead(const char *mp)
{
	char dev[64], path[128];
	int fd;

	if (mount_devname(mp, dev, sizeof(dev)))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return;
	if (write(fd, "1024", 4) != 4)
		mfs_debug("could not raise read_ahead_kb: %s", strerror(errno));
	close(fd);
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

static int build_args(const struct mfs_mount_config *cfg, struct fuse_args *args)
{
	char opts[4096] = "ro,default_permissions,fsname=modelfs,subtype=modelfs";
	size_t o = strlen(opts);

	if (cfg->allow_other)
		o += (size_t)snprintf(opts + o, sizeof(opts) - o, ",allow_other");
	for (const char *const *p = cfg->fuse_opts; p && *p; p++) {
		int n = snprintf(opts + o, sizeof(opts) - o, ",%s", *p);
		if (n < 0 || (size_t)n >= sizeof(opts) - o)
			return -E2BIG;
		o += (size_t)n;
	}
	if (fuse_opt_add_arg(args, "modelfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -ENOMEM;
	return 0;
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

static void remove_pidfile(const char *mp)
{
	char path[PATH_MAX];

	if (mfs_mount_state_path(mp, path, sizeof(path)) == 0)
		unlink(path);
}

/* What the evictor's tick needs to persist this mount's counters. */
struct stats_ctx {
	struct mfs_statsync sync;
	struct mfs_ix *ix;
	struct mfs_blobio *bio;
	struct mfs_hub *hub;
	struct mfs_srcset *src;
};

static void stats_tick(void *vctx)
{
	struct stats_ctx *sc = vctx;

	(void)mfs_statsync_flush(&sc->sync, sc->ix, sc->bio, sc->hub, sc->src);
}

static bool blob_in_use(void *ctx, const char *id)
{
	return mfs_blobio_in_use(ctx, id);
}

/* The quota: --cache-size / MODELFS_CACHE_SIZE (remembered in the cache so
 * CLI commands agree), else what the cache remembers, else none. */
static uint64_t resolve_quota(const struct mfs_mount_config *cfg, struct mfs_ix *ix)
{
	char buf[32];
	uint64_t q = 0;

	if (cfg->cache_size) {
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)cfg->cache_size);
		(void)mfs_ix_setting_put(ix, "cache_size", buf);
		return cfg->cache_size;
	}
	if (mfs_ix_setting_get(ix, "cache_size", buf, sizeof(buf)) == 0 &&
	    mfs_parse_size(buf, &q))
		q = 0;
	return q;
}

static int serve(const struct mfs_mount_config *cfg, const char *mp, int status_fd)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct mfs_ix *ix = NULL;
	struct mfs_bs *bs = NULL;
	struct mfs_hub *hub = NULL;
	struct mfs_srcset *src = NULL;
	struct mfs_catalog *cat = NULL;
	struct mfs_blobio *bio = NULL;
	struct mfs_evictor *ev = NULL;
	struct stats_ctx stats = { .ix = NULL };
	char lock_dir[PATH_MAX + 8], trust_dir[PATH_MAX + 8];
	struct mfs_fs *fs = NULL;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	char path[PATH_MAX], msg[PATH_MAX + 256];
	bool mounted = false, handlers = false;
	int rc;

	snprintf(lock_dir, sizeof(lock_dir), "%s/locks", cfg->cache_dir);
	snprintf(trust_dir, sizeof(trust_dir), "%s/trust", cfg->cache_dir);
	snprintf(path, sizeof(path), "%s/index.db", cfg->cache_dir);
	rc = mfs_ix_open(path, &ix);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot open the index %s: %s\n", path, strerror(-rc));
		goto fail;
	}
	rc = mfs_bs_open(cfg->cache_dir, &bs);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot open the cache %s: %s\n",
			 cfg->cache_dir, strerror(-rc));
		goto fail;
	}
	if (!cfg->offline) {
		struct mfs_hub_config hc = {
			.endpoint = cfg->endpoint, .token = cfg->token,
			.connect_timeout_ms = 5000, .fetch_timeout_ms = cfg->fetch_timeout_ms,
			.max_retries = 5, .max_backoff_ms = 8000, .proxy = cfg->proxy,
		};
		if (hc.connect_timeout_ms > cfg->fetch_timeout_ms)
			hc.connect_timeout_ms = cfg->fetch_timeout_ms;
		rc = mfs_hub_new(&hc, &hub);
		if (rc) {
			snprintf(msg, sizeof(msg), "bad endpoint %s: %s\n", cfg->endpoint,
				 strerror(-rc));
			goto fail;
		}
	}
	struct mfs_cat_config cc = {
		.ref_ttl_ms = cfg->ref_ttl_ms, .dead_retry_ms = 30000, .offline = cfg->offline,
	};
	rc = mfs_cat_new(ix, hub, &cc, &cat);
	if (rc) {
		snprintf(msg, sizeof(msg), "out of memory\n");
		goto fail;
	}
	if (!cfg->offline) {
		struct mfs_srcset_config sc = {
			.mirrors = cfg->mirrors, .n_mirrors = cfg->n_mirrors,
			.peers = cfg->peers, .n_peers = cfg->n_peers,
			.hub_endpoint = cfg->endpoint, .hub_token = cfg->token,
			.peer_token = cfg->peer_token, .mirror_token = cfg->mirror_token, .prefer_mirror = cfg->prefer_mirror,
			.proxy = cfg->proxy, .fetch_timeout_ms = cfg->fetch_timeout_ms,
		};
		rc = mfs_srcset_new(&sc, hub, &src);
		if (rc) {
			snprintf(msg, sizeof(msg), "bad --mirror or --peer URL: %s\n", strerror(-rc));
			goto fail;
		}
		mfs_cat_set_mirrors(cat, src);
	}
	struct mfs_fs_config fc = {
		.ref_ttl_ms = cfg->ref_ttl_ms, .neg_ttl_ms = 5000, .quota_bytes = cfg->cache_size,
	};
	rc = mfs_fs_new(&fc, cat, ix, &fs);
	if (rc) {
		snprintf(msg, sizeof(msg), "out of memory\n");
		goto fail;
	}
	struct mfs_blobio_config bc = {
		.block_size = cfg->block_size, .fetch_threads = cfg->fetch_threads,
		.on_invalid = mfs_fs_blob_invalid, .on_invalid_ctx = fs, .lock_dir = lock_dir, .sources = src,
		.verify_strict = cfg->verify_strict, .trust_dir = trust_dir,
	};
	rc = mfs_blobio_new(&bc, bs, ix, hub, cat, &bio);
	if (rc) {
		snprintf(msg, sizeof(msg), "cannot start fetch threads: %s\n", strerror(-rc));
		goto fail;
	}
	mfs_fs_set_blobio(fs, bio);
	{
		/* Quota, eviction and statistics: a thread of their own, never
		 * the read path (core/evict.h). */
		uint64_t quota = resolve_quota(cfg, ix);
		stats.ix = ix;
		stats.bio = bio;
		stats.hub = hub;
		stats.src = src;
		mfs_statsync_init(&stats.sync, cfg->endpoint, true);
		struct mfs_evict_config ec = {
			.quota = quota, .lock_dir = lock_dir, .in_use = blob_in_use,
			.in_use_ctx = bio, .tick = stats_tick, .tick_ctx = &stats,
		};
		rc = mfs_evictor_start(&ec, ix, bs, &ev);
		if (rc) {
			snprintf(msg, sizeof(msg), "cannot start the evictor: %s\n", strerror(-rc));
			goto fail;
		}
		struct mfs_blobio_hooks hooks;
		mfs_evictor_hooks(ev, &hooks);
		mfs_blobio_set_hooks(bio, &hooks);
		if (quota)
			mfs_info("cache quota %llu bytes", (unsigned long long)quota);
	}
	rc = build_args(cfg, &args);
	if (rc) {
		snprintf(msg, sizeof(msg), "bad -o options\n");
		goto fail;
	}
	se = fuse_session_new(&args, mfs_fs_ops(), sizeof(struct fuse_lowlevel_ops), fs);
	if (!se) {
		rc = -EINVAL;
		snprintf(msg, sizeof(msg), "cannot create the FUSE session (bad -o option?)\n");
		goto fail;
	}
	mfs_fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se)) {
		rc = -EIO;
		snprintf(msg, sizeof(msg), "cannot install signal handlers\n");
		goto fail;
	}
	handlers = true;
	if (fuse_session_mount(se, mp)) {
		rc = -EIO;
		snprintf(msg, sizeof(msg), "cannot mount on %s (is /dev/fuse available, "
			 "and the mount point an empty directory?)\n", mp);
		goto fail;
	}
	mounted = true;
	raise_readahead(mp);
	write_pidfile(mp, cfg->cache_dir);
	mfs_info("mounted %s (cache %s, endpoint %s%s)", mp, cfg->cache_dir,
		 cfg->endpoint, cfg->offline ? ", offline" : "");
	report(status_fd, "OK\n");
	if (status_fd >= 0)
		close(status_fd);
	status_fd = -1;

	loop = fuse_loop_cfg_create();
	if (!loop) {
		rc = -ENOMEM;
		msg[0] = '\0';
		goto fail;
	}
	fuse_loop_cfg_set_max_threads(loop, 16);
	fuse_loop_cfg_set_clone_fd(loop, 0);
	rc = fuse_session_loop_mt(se, loop);
	mfs_info("unmounting %s", mp);
	rc = rc < 0 ? rc : 0;
	msg[0] = '\0';
fail:
	if (rc && status_fd >= 0)
		report(status_fd, msg);
	else if (rc && msg[0])
		mfs_error("%s", msg);
	if (loop)
		fuse_loop_cfg_destroy(loop);
	if (mounted) {
		fuse_session_unmount(se);
		remove_pidfile(mp);
	}
	if (handlers)
		fuse_remove_signal_handlers(se);
	/* Fetch threads stop before the layers they use go away; the evictor's
	 * thread before them (its last tick reads their counters), the evictor
	 * itself after them (they call its hooks). */
	mfs_evictor_stop(ev);
	mfs_blobio_free(bio);
	mfs_evictor_free(ev);
	if (se)
		fuse_session_destroy(se);
	mfs_fs_free(fs);
	mfs_cat_free(cat);
	mfs_srcset_free(src);
	mfs_hub_free(hub);
	mfs_bs_close(bs);
	mfs_ix_close(ix);
	fuse_opt_free_args(&args);
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
