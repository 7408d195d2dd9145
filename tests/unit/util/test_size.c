/*
 * test_size.c - human size and seconds parsing/printing, and the clocks.
 * Expected values are computed from the definitions (k = 1024) in the test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "util/size.h"

static uint64_t ps(const char *s)
{
	uint64_t v = 0;
	int rc = mfs_parse_size(s, &v);
	cr_assert_eq(rc, 0, "<%s> rc %d", s, rc);
	return v;
}

Test(size, parse_valid)
{
	const uint64_t K = 1024, M = K * K, G = M * K, T = G * K, P = T * K, E = P * K;
	cr_assert_eq(ps("0"), 0);
	cr_assert_eq(ps("4096"), 4096);
	cr_assert_eq(ps("64k"), 64 * K);
	cr_assert_eq(ps("64K"), 64 * K);
	cr_assert_eq(ps("500M"), 500 * M);
	cr_assert_eq(ps("4MiB"), 4 * M);
	cr_assert_eq(ps("4mib"), 4 * M);
	cr_assert_eq(ps("4MB"), 4 * M);
	cr_assert_eq(ps("20G"), 20 * G);
	cr_assert_eq(ps("1.5T"), T + T / 2);
	cr_assert_eq(ps("0.5K"), 512);
	cr_assert_eq(ps("2P"), 2 * P);
	cr_assert_eq(ps("4E"), 4 * E, "exactly 2^62 is the largest accepted");
	cr_assert_eq(ps("12B"), 12);
	cr_assert_eq(ps("1.25G"), G + G / 4);
}

Test(size, parse_invalid)
{
	const char *bad[] = { "", "-1", "12Q", "1e3", "K", ".5K", "1.", "1.K", " 1", "1 ", "1KiX",
			      "1Ki", "+5", "0x10", "1,5G", "1.5", "5 M", "M5" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 777;
		cr_assert_eq(mfs_parse_size(bad[i], &v), -EINVAL, "<%s>", bad[i]);
		cr_assert_eq(v, 777, "output untouched on error");
	}
	uint64_t v;
	cr_assert_eq(mfs_parse_size(NULL, &v), -EINVAL);
	const char *big[] = { "18446744073709551616", "99999999999999999999999", "5E", "4.5E",
			      "4611686018427387905", "16777216T" };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		cr_assert_eq(mfs_parse_size(big[i], &v), -ERANGE, "<%s>", big[i]);
	cr_assert_eq(mfs_parse_size("4611686018427387904", &v), 0);
}

Test(size, parse_int)
{
	long v = 777;
	cr_assert_eq(mfs_parse_int("8", 1, 64, &v), 0);
	cr_assert_eq(v, 8);
	cr_assert_eq(mfs_parse_int("-3", -5, 5, &v), 0);
	cr_assert_eq(v, -3);
	cr_assert_eq(mfs_parse_int("0", 0, 0, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(mfs_parse_int("9223372036854775807", 0, LONG_MAX, &v), 0);
	cr_assert_eq(v, LONG_MAX);
	cr_assert_eq(mfs_parse_int("-9223372036854775808", LONG_MIN, 0, &v), 0);
	cr_assert_eq(v, LONG_MIN);

	/* What atoi accepted or turned into 0 without a word. */
	const char *bad[] = { "8x", "", "x8", " 8", "8 ", "+8", "0x10", "1e3", "8.0", "-", "--1",
			      "8\n", "1,000" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 777;
		cr_assert_eq(mfs_parse_int(bad[i], 0, 100, &v), -EINVAL, "<%s>", bad[i]);
		cr_assert_eq(v, 777, "output untouched on error");
	}
	cr_assert_eq(mfs_parse_int(NULL, 0, 100, &v), -EINVAL);
	const char *range[] = { "0", "65", "-1", "9223372036854775808", "99999999999999999999",
				"-9223372036854775809" };
	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		v = 777;
		cr_assert_eq(mfs_parse_int(range[i], 1, 64, &v), -ERANGE, "<%s>", range[i]);
		cr_assert_eq(v, 777);
	}
}

Test(size, format)
{
	char buf[32];
	cr_assert_str_eq(mfs_format_size(0, buf, sizeof(buf)), "0 B");
	cr_assert_str_eq(mfs_format_size(1023, buf, sizeof(buf)), "1023 B");
	cr_assert_str_eq(mfs_format_size(1024, buf, sizeof(buf)), "1 KiB");
	cr_assert_str_eq(mfs_format_size(1536, buf, sizeof(buf)), "1.5 KiB");
	cr_assert_str_eq(mfs_format_size(UINT64_C(3) << 39, buf, sizeof(buf)), "1.5 TiB");
	cr_assert_str_eq(mfs_format_size(UINT64_C(4) << 20, buf, sizeof(buf)), "4 MiB");
	cr_assert_str_eq(mfs_format_size(UINT64_MAX, buf, sizeof(buf)), "16 EiB");
	/* Round trip: what we print parses back to within the printed precision. */
	uint64_t v;
	mfs_format_size(UINT64_C(1536) << 20, buf, sizeof(buf));
	char compact[32];
	size_t j = 0;
	for (size_t i = 0; buf[i]; i++)
		if (buf[i] != ' ')
			compact[j++] = buf[i];
	compact[j] = '\0';
	cr_assert_eq(mfs_parse_size(compact, &v), 0, "%s", compact);
	cr_assert_eq(v, UINT64_C(1536) << 20);
	char tiny[4];
	mfs_format_size(123456789, tiny, sizeof(tiny));
	cr_assert_eq(strlen(tiny), 3, "truncated, still terminated");
}

Test(size, seconds)
{
	int64_t ms;
	cr_assert_eq(mfs_parse_seconds("60", &ms), 0);
	cr_assert_eq(ms, 60000);
	cr_assert_eq(mfs_parse_seconds("0.5", &ms), 0);
	cr_assert_eq(ms, 500);
	cr_assert_eq(mfs_parse_seconds("0", &ms), 0);
	cr_assert_eq(ms, 0);
	cr_assert_eq(mfs_parse_seconds("1.2345", &ms), 0);
	cr_assert_eq(ms, 1235);
	cr_assert_eq(mfs_parse_seconds("0.0004", &ms), 0);
	cr_assert_eq(ms, 0);
	const char *bad[] = { "", "-1", "1e3", "1s", "abc", ".5", " 1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mfs_parse_seconds(bad[i], &ms), -EINVAL, "<%s>", bad[i]);
	cr_assert_eq(mfs_parse_seconds("99999999999999999999", &ms), -ERANGE);
}

Test(size, clocks)
{
	int64_t a = mfs_now_ms();
	struct timespec ts = { 0, 30 * 1000000 };
	nanosleep(&ts, NULL);
	int64_t b = mfs_now_ms();
	cr_assert_geq(b - a, 29);
	cr_assert_lt(b - a, 5000);
	int64_t w = mfs_wall_ms();
	int64_t sys = (int64_t)time(NULL) * 1000;
	cr_assert_lt(w - sys < 0 ? sys - w : w - sys, 2000);
}
