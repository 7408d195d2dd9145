/*
 * size.c - parsing and printing of human sizes ("1.5T", "500M", "4MiB")
 * and seconds, and the two clocks modelfs uses.
 *
 * Multiples are always binary (k = 1024), as in most storage tools; "MB"
 * means MiB too. Fractions are computed exactly in integers (no float
 * rounding), so "1.5T" is exactly 3 << 39. Exponents ("1e3"), signs and
 * unknown suffixes are rejected rather than guessed.
 * Plain integers (counts, ports) are strict too: the whole string must be
 * the number. It does not parse durations with units ("5m"): only plain
 * seconds.
 */
#include "util/size.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SIZE_LIMIT (UINT64_C(1) << 62)

/* Parses "<digits>[.<digits>]" into an integer part and a fraction of
 * frac_num / frac_den; returns the position after the number or NULL. */
static const char *parse_decimal(const char *s, uint64_t *ip, uint64_t *frac_num,
				 uint64_t *frac_den, bool *overflow)
{
	uint64_t v = 0, fn = 0, fd = 1;
	bool any = false;

	*overflow = false;
	while (*s >= '0' && *s <= '9') {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			*overflow = true;
		else
			v = v * 10 + d;
		any = true;
		s++;
	}
	if (*s == '.') {
		s++;
		bool fany = false;
		while (*s >= '0' && *s <= '9') {
			/* Keep up to 18 fractional digits; more cannot matter. */
			if (fd < UINT64_C(1000000000000000000)) {
				fn = fn * 10 + (uint64_t)(*s - '0');
				fd *= 10;
			}
			fany = true;
			s++;
		}
		if (!fany)
			return NULL;
	}
	if (!any)
		return NULL;
	*ip = v;
	*frac_num = fn;
	*frac_den = fd;
	return s;
}

int mfs_parse_int(const char *s, long min, long max, long *out)
{
	bool neg = false, overflow = false;
	unsigned long v = 0;
	const char *p = s;

	if (!s)
		return -EINVAL;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > ((unsigned long)LONG_MAX + 1 - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	if (*p)
		return -EINVAL;
	if (overflow || (!neg && v > (unsigned long)LONG_MAX))
		return -ERANGE;
	/* v <= LONG_MAX + 1 here; only -(LONG_MAX + 1) needs the detour. */
	long x = neg ? (v ? -(long)(v - 1) - 1 : 0) : (long)v;
	if (x < min || x > max)
		return -ERANGE;
	*out = x;
	return 0;
}

int mfs_parse_size(const char *s, uint64_t *out)
{
	uint64_t ip, fn, fd, mult = 1;
	bool overflow;
	const char *p;
	int shift = 0;

	if (!s)
		return -EINVAL;
	p = parse_decimal(s, &ip, &fn, &fd, &overflow);
	if (!p)
		return -EINVAL;
	if (*p) {
		static const char units[] = "KMGTPE";
		const char *u = strchr(units, *p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		if (*p == 'b' || *p == 'B') {
			if (p[1])
				return -EINVAL;
		} else {
			if (!u || !*u)
				return -EINVAL;
			shift = 10 * (int)(u - units + 1);
			p++;
			/* Accept "K", "KB", "KiB" (any case). */
			if (*p == 'i' || *p == 'I') {
				p++;
				if (*p != 'b' && *p != 'B')
					return -EINVAL;
			}
			if (*p == 'b' || *p == 'B')
				p++;
			if (*p)
				return -EINVAL;
		}
	}
	if (shift == 0 && fn)
		return -EINVAL; /* a fraction of a byte */
	if (overflow)
		return -ERANGE;
	mult = UINT64_C(1) << shift;
	if (ip > SIZE_LIMIT >> shift)
		return -ERANGE;
	uint64_t v = ip << shift;
	/* fn/fd * 2^shift: fd <= 1e18 and 2^shift <= 2^60 would overflow, so
	 * split the multiplier to keep the product in range. */
	if (fn) {
		unsigned __int128 f = (unsigned __int128)fn * mult / fd;
		v += (uint64_t)f;
	}
	if (v > SIZE_LIMIT)
		return -ERANGE;
	*out = v;
	return 0;
}

char *mfs_format_size(uint64_t bytes, char *buf, size_t buflen)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

	if (!buf || buflen == 0)
		return buf;
	if (bytes < 1024) {
		snprintf(buf, buflen, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	int u = 0;
	double v = (double)bytes / 1024.0;
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	/* One decimal, without a trailing ".0" on round values. */
	if (v >= 100.0 || (v - (double)(uint64_t)v) < 0.05)
		snprintf(buf, buflen, "%.0f %s", v, units[u]);
	else
		snprintf(buf, buflen, "%.1f %s", v, units[u]);
	return buf;
}

int mfs_parse_seconds(const char *s, int64_t *ms_out)
{
	uint64_t ip, fn, fd;
	bool overflow;
	const char *p;

	if (!s)
		return -EINVAL;
	p = parse_decimal(s, &ip, &fn, &fd, &overflow);
	if (!p || *p)
		return -EINVAL;
	if (overflow || ip > (uint64_t)INT64_MAX / 1000 - 1)
		return -ERANGE;
	/* Round fractions to the nearest millisecond. */
	*ms_out = (int64_t)(ip * 1000 + (fn * 1000 + fd / 2) / fd);
	return 0;
}

static int64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mfs_now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t mfs_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}
