/*
 * blklock.c - per-block cross-process locks (see blklock.h).
 *
 * Waiting polls F_OFD_SETLK instead of blocking in F_OFD_SETLKW: a blocked
 * F_SETLKW cannot be bounded, and a holder stuck on a dead network must not
 * hang every other process past its own fetch timeout.
 */
#include "core/blklock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/size.h"

int mfs_blklock_open(const char *dir, const char *id)
{
	char path[PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, id);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	}
	return fd < 0 ? -errno : fd;
}

static int setlk(int fd, short type, uint32_t first, uint32_t count)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)first;
	fl.l_len = (off_t)count;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EACCES || errno == EAGAIN ? -EAGAIN : -errno;
}

int mfs_blklock_try(int fd, uint32_t first, uint32_t count)
{
	if (fd < 0 || count == 0)
		return -EINVAL;
	return setlk(fd, F_WRLCK, first, count);
}

int mfs_blklock_wait(int fd, uint32_t idx, int64_t timeout_ms)
{
	int64_t deadline = mfs_now_ms() + timeout_ms;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int rc;

	for (;;) {
		rc = setlk(fd, F_WRLCK, idx, 1);
		if (rc == 0) {
			(void)setlk(fd, F_UNLCK, idx, 1);
			return 0;
		}
		if (rc != -EAGAIN)
			return rc;
		if (mfs_now_ms() >= deadline)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
}

void mfs_blklock_release(int fd, uint32_t first, uint32_t count)
{
	if (fd >= 0 && count)
		(void)setlk(fd, F_UNLCK, first, count);
}
