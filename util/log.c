/*
 * log.c - the process-wide log sink: one timestamped line per event,
 *
 *     2026-11-26T10:00:00.123Z modelfs[1234] INFO message
 *
 * written with a single fprintf under a mutex so lines from concurrent FUSE
 * workers never interleave. The sink is deliberately process-wide (log.h
 * says so): it is the one piece of global state in util/, and it is all
 * behind the mutex or atomic.
 * It does not rotate files, filter secrets (callers never pass them) or
 * buffer: each line is flushed so a crash loses nothing already logged.
 */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static struct {
	pthread_mutex_t lock;
	FILE *file;              /* protected by lock; NULL means stderr */
	atomic_int level;        /* read on every call without the lock */
} sink = { PTHREAD_MUTEX_INITIALIZER, NULL, MFS_LOG_INFO };

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void mfs_log_set_level(enum mfs_log_level lvl)
{
	if (lvl < MFS_LOG_ERROR)
		lvl = MFS_LOG_ERROR;
	if (lvl > MFS_LOG_DEBUG)
		lvl = MFS_LOG_DEBUG;
	atomic_store(&sink.level, (int)lvl);
}

enum mfs_log_level mfs_log_level(void)
{
	return (enum mfs_log_level)atomic_load(&sink.level);
}

void mfs_log_set_file(FILE *f)
{
	pthread_mutex_lock(&sink.lock);
	sink.file = f;
	pthread_mutex_unlock(&sink.lock);
}

void mfs_log_init_from_env(void)
{
	const char *v = getenv("MODELFS_LOG");

	if (!v || !*v)
		return;
	for (int i = 0; i <= MFS_LOG_DEBUG; i++) {
		if (strcasecmp(v, level_names[i]) == 0) {
			mfs_log_set_level((enum mfs_log_level)i);
			return;
		}
	}
	if (strcasecmp(v, "warning") == 0)
		mfs_log_set_level(MFS_LOG_WARN);
	/* An unknown value keeps the current level rather than failing start-up. */
}

void mfs_log(enum mfs_log_level lvl, const char *fmt, ...)
{
	char msg[2048], ts[96];
	struct timespec now;
	struct tm tm;
	va_list ap;
	FILE *f;

	if ((int)lvl > atomic_load(&sink.level) || lvl < MFS_LOG_ERROR)
		return;

	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* Strip a trailing newline so every event is exactly one line. */
	size_t ml = strlen(msg);
	while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == '\r'))
		msg[--ml] = '\0';

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(now.tv_nsec / 1000000) % 1000);

	pthread_mutex_lock(&sink.lock);
	f = sink.file ? sink.file : stderr;
	fprintf(f, "%s modelfs[%ld] %s %s%s\n", ts, (long)getpid(), level_names[lvl],
		msg, (size_t)n >= sizeof(msg) ? "..." : "");
	fflush(f);
	pthread_mutex_unlock(&sink.lock);
}
