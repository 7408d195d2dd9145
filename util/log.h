/*
 * log.h - one line per event, to stderr (foreground) or a log file (daemon).
 *
 * Nothing secret may ever be passed here: tokens are kept out of every
 * message by construction (fetch/ never formats a header it sends).
 */
#ifndef MFS_UTIL_LOG_H
#define MFS_UTIL_LOG_H

#include <stdio.h>

enum mfs_log_level { MFS_LOG_ERROR = 0, MFS_LOG_WARN, MFS_LOG_INFO, MFS_LOG_DEBUG };

/* Process-wide sink; default stderr at INFO. MODELFS_LOG=debug|info|warn|error
 * is read by mfs_log_init_from_env(). */
void mfs_log_init_from_env(void);
void mfs_log_set_level(enum mfs_log_level lvl);
void mfs_log_set_file(FILE *f); /* not owned; NULL restores stderr */
enum mfs_log_level mfs_log_level(void);

void mfs_log(enum mfs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define mfs_error(...) mfs_log(MFS_LOG_ERROR, __VA_ARGS__)
#define mfs_warn(...) mfs_log(MFS_LOG_WARN, __VA_ARGS__)
#define mfs_info(...) mfs_log(MFS_LOG_INFO, __VA_ARGS__)
#define mfs_debug(...) \
	do { if (mfs_log_level() >= MFS_LOG_DEBUG) mfs_log(MFS_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
