/*
 * mount.c - a FUSE mount over a cache context (see mount.h).
 *
 * Order matters: the filesystem exists before the block layer (it is the
 * layer's on_invalid callback), the block layer before the session, the
 * kernel mount last; the `mounted` callback runs only when the mount can
 * be used. Teardown reverses it: unmount, stop fetch threads and the
 * evictor (they call into the filesystem), destroy the session, free the
 * filesystem.
 */
#include "fs/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "util/log.h"

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
 * 2.7x faster (docs/architecture.md, "A read's path"). Root may raise it;
 * others keep the default. */
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

static int build_args(const struct mfs_mount_opts *o, struct fuse_args *args)
{
	char opts[4096] = "ro,default_permissions,fsname=modelfs,subtype=modelfs";
	size_t n = strlen(opts);

	if (o->allow_other)
		n += (size_t)snprintf(opts + n, sizeof(opts) - n, ",allow_other");
	for (const char *const *p = o->fuse_opts; p && *p; p++) {
		int k = snprintf(opts + n, sizeof(opts) - n, ",%s", *p);
		if (k < 0 || (size_t)k >= sizeof(opts) - n)
			return -E2BIG;
		n += (size_t)k;
	}
	if (fuse_opt_add_arg(args, "modelfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -ENOMEM;
	return 0;
}

static int fail(int rc, char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
	return rc;
}

int mfs_mount_serve(struct mfs_ctx *ctx, const struct mfs_mount_opts *o, char *why,
		    size_t cap)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	struct mfs_fs *fs = NULL;
	bool mounted = false, handlers = false;
	int rc;

	why[0] = '\0';
	struct mfs_fs_config fc = {
		.ref_ttl_ms = o->ref_ttl_ms, .neg_ttl_ms = 5000, .quota_bytes = ctx->quota,
	};
	rc = mfs_fs_new(&fc, ctx->cat, ctx->ix, &fs);
	if (rc) {
		fail(rc, why, cap, "cannot create the filesystem: %s", strerror(-rc));
		goto out;
	}
	struct mfs_ctx_io io = {
		.block_size = o->block_size, .fetch_threads = o->fetch_threads,
		.on_invalid = mfs_fs_blob_invalid, .on_invalid_ctx = fs, .persist_stats = true,
		.health_file = o->health_file,
	};
	rc = mfs_ctx_start_io(ctx, &io, why, cap);
	if (rc)
		goto out;
	mfs_fs_set_blobio(fs, ctx->bio);
	rc = build_args(o, &args);
	if (rc) {
		fail(rc, why, cap, "bad -o options");
		goto out;
	}
	se = fuse_session_new(&args, mfs_fs_ops(), sizeof(struct fuse_lowlevel_ops), fs);
	if (!se) {
		rc = fail(-EINVAL, why, cap, "cannot create the FUSE session (bad -o option?)");
		goto out;
	}
	mfs_fs_set_session(fs, se);
	if (fuse_set_signal_handlers(se)) {
		rc = fail(-EIO, why, cap, "cannot install signal handlers");
		goto out;
	}
	handlers = true;
	if (fuse_session_mount(se, o->mountpoint)) {
		rc = fail(-EIO, why, cap, "cannot mount on %s (is /dev/fuse available, and the "
			  "mount point an empty directory?)", o->mountpoint);
		goto out;
	}
	mounted = true;
	raise_readahead(o->mountpoint);
	mfs_info("mounted %s (cache %s, endpoint %s%s)", o->mountpoint, ctx->dir,
		 ctx->endpoint, ctx->offline ? ", offline" : "");
	if (o->mounted)
		o->mounted(o->arg);

	loop = fuse_loop_cfg_create();
	if (!loop) {
		rc = fail(-ENOMEM, why, cap, "out of memory");
		goto out;
	}
	fuse_loop_cfg_set_max_threads(loop, 16);
	fuse_loop_cfg_set_clone_fd(loop, 0);
	rc = fuse_session_loop_mt(se, loop);
	mfs_info("unmounting %s", o->mountpoint);
	if (rc > 0)
		rc = 0; /* a signal ended the loop */
	else if (rc < 0)
		fail(rc, why, cap, "the FUSE loop failed: %s", strerror(-rc));
out:
	if (loop)
		fuse_loop_cfg_destroy(loop);
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		fuse_remove_signal_handlers(se);
	/* Offloaded lookups and opens use the block layer and the session. */
	if (fs)
		mfs_fs_quiesce(fs);
	/* Fetch threads and the evictor call into fs: stop them before it goes. */
	mfs_ctx_stop_io(ctx);
	if (se)
		fuse_session_destroy(se);
	mfs_fs_free(fs);
	fuse_opt_free_args(&args);
	return rc;
}
