/*
 * size.h - human sizes, plain integers and durations on the command line.
 */
#ifndef MFS_UTIL_SIZE_H
#define MFS_UTIL_SIZE_H

#include <stdint.h>
#include <stddef.h>

/* "4096", "500M", "4MiB", "20G", "1.5T", "64k" (binary multiples; "MB" also
 * binary like most tools). 0 on success, -EINVAL on anything else,
 * -ERANGE above 2^62. */
int mfs_parse_size(const char *s, uint64_t *out);
/* A plain decimal integer in [min, max]: optional '-', digits, nothing
 * else (no spaces, signs '+', hex, suffixes: "8x" is an error, unlike
 * atoi). 0 on success, -EINVAL if not such a number, -ERANGE if outside
 * [min, max]; *out is untouched on error. Every integer option uses it. */
int mfs_parse_int(const char *s, long min, long max, long *out);
/* "1.5 GiB"-style, into buf. Returns buf. */
char *mfs_format_size(uint64_t bytes, char *buf, size_t buflen);
/* Non-negative decimal seconds ("60", "0.5") to milliseconds. */
int mfs_parse_seconds(const char *s, int64_t *ms_out);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in milliseconds. */
int64_t mfs_now_ms(void);
int64_t mfs_wall_ms(void);

#endif
