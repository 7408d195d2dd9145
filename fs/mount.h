/*
 * mount.h - one FUSE mount of a cache context: create the filesystem on
 * it, start its block layer, mount, run the session loop until unmounted
 * or signalled, unmount, stop the block layer.
 *
 * What it does not do: open or close the context (core/context.h), fork,
 * write pidfiles or logs (cli/daemon.c does; it learns that the mount is
 * live through the `mounted` callback).
 */
#ifndef MFS_FS_MOUNT_H
#define MFS_FS_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/context.h"

struct mfs_mount_opts {
	const char *mountpoint;        /* absolute path of an existing directory */
	bool allow_other;
	const char *const *fuse_opts;  /* extra -o values, NULL-terminated */
	int64_t ref_ttl_ms;            /* kernel cache time of ref symlinks */
	uint32_t block_size;           /* 0: block layer default */
	int fetch_threads;             /* 0: block layer default */
	const char *health_file;       /* core/context.h mfs_ctx_io; NULL: none */
	/* Called once the kernel mount is live, before the loop runs. */
	void (*mounted)(void *arg);
	void *arg;
};

/* 0 after a clean unmount; -errno with a one-line reason in why when the
 * mount could not be set up or the loop failed. ctx's I/O is stopped on
 * return either way; ctx stays open. */
int mfs_mount_serve(struct mfs_ctx *ctx, const struct mfs_mount_opts *o, char *why,
		    size_t cap);

#endif
