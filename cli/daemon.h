/*
 * daemon.h - a mount's whole life as a process: daemonise, open the cache
 * context (core/context.h), mount and serve it (fs/mount.h) until unmounted
 * or signalled, keep the mount's pidfile, tear down.
 *
 * In the background mode the process forks before any thread exists; the
 * parent waits on a pipe until the child reports that the kernel mount is
 * live (or why it failed), so `modelfs mount` returns only once the mount
 * can be used, with an exit status that says whether it worked.
 */
#ifndef MFS_CLI_DAEMON_H
#define MFS_CLI_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mfs_mount_config {
	const char *mountpoint;
	const char *cache_dir;
	const char *endpoint;
	const char *token;          /* NULL = anonymous; never logged */
	bool offline;
	bool foreground;
	bool allow_other;
	const char *const *fuse_opts; /* extra -o values, NULL-terminated */
	uint32_t block_size;
	int64_t ref_ttl_ms;
	int64_t fetch_timeout_ms;
	uint64_t cache_size;        /* explicit quota in bytes (remembered in the
				     * cache); 0 = the remembered one, if any */
	int fetch_threads;
	/* Sources beyond the hub (fetch/source.h); none when offline. */
	const char *const *mirrors; /* HF-compatible endpoints */
	size_t n_mirrors;
	const char *const *peers;   /* `modelfs serve` URLs, asked by content id */
	size_t n_peers;
	const char *peer_token;     /* Bearer for peers; never logged */
	const char *mirror_token;   /* Bearer for mirrors (NULL: none); never logged */
	bool prefer_mirror;         /* mirrors before the hub */
	bool verify_strict;         /* --verify strict: nothing unverified is served */
	const char *proxy;          /* NULL: libcurl's environment (https_proxy...) */
};

/* Returns the process exit status for `modelfs mount` (0 ok, 1 failure).
 * In background mode it returns in the parent; the child never returns. */
int mfs_mount_run(const struct mfs_mount_config *cfg);

/* Where mount state files live (pid per mountpoint). */
int mfs_mount_state_path(const char *mountpoint_real, char *out, size_t cap);

#endif
