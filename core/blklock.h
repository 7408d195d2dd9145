/*
 * blklock.h - cross-process locks on blocks of a blob, so two processes
 * sharing one cache (a mount and a `modelfs prefetch`, two mounts) fetch
 * each block once.
 *
 * One lock file per blob, <dir>/<content id>; block i is byte i of it, locked
 * with open-file-description locks (F_OFD_SETLK): released by the kernel
 * when the holder dies, so a killed prefetch never leaves a block locked.
 * Within one process the block layer already hands each block to one fetch
 * thread, and every thread of the process shares the blob's descriptor, so
 * these locks only ever contend between processes.
 *
 * It does not know what a block is or where it comes from; callers (blobio,
 * the evictor) decide what to do while holding a lock. The lock files are
 * empty and never removed (removing one while held would split the lock).
 */
#ifndef MFS_CORE_BLKLOCK_H
#define MFS_CORE_BLKLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Opens (creating dir and file) the lock file of blob id; returns an fd
 * (O_CLOEXEC) or -errno. */
int mfs_blklock_open(const char *dir, const char *id);

/* Tries to lock blocks [first, first+count) without waiting: 0 when held,
 * -EAGAIN when another process holds one of them, other -errno on failure. */
int mfs_blklock_try(int fd, uint32_t first, uint32_t count);

/* Waits until no other process holds block idx, polling up to timeout_ms;
 * does not keep the lock. 0, or -ETIMEDOUT. */
int mfs_blklock_wait(int fd, uint32_t idx, int64_t timeout_ms);

void mfs_blklock_release(int fd, uint32_t first, uint32_t count);

#endif
