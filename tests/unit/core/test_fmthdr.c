/*
 * test_fmthdr.c - criterion tests of core/fmthdr.h: where a GGUF or
 * safetensors header ends, from a prefix of the file, and that hostile or
 * foreign bytes end the parse as OTHER instead of a crash or a loop.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmthdr.h"
#include "tests/unit/core/ggufgen.h"

static uint8_t buf[1 << 16];

Test(fmthdr, gguf_data_offset_is_the_aligned_end_of_tensor_infos)
{
	struct mfs_fmthdr h;
	size_t n = gguf_head(buf, sizeof(buf), 100);

	cr_assert_eq(mfs_fmthdr_parse(buf, n, 1 << 30, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_GGUF);
	cr_assert_eq(h.done, 1);
	cr_assert_eq(h.data_off, (n + 63) / 64 * 64);
}

Test(fmthdr, gguf_prefix_too_short_asks_for_more)
{
	struct mfs_fmthdr h;
	size_t n = gguf_head(buf, sizeof(buf), 1000);

	cr_assert_eq(mfs_fmthdr_parse(buf, n / 2, 1 << 30, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_GGUF);
	cr_assert_eq(h.done, 0);
	cr_assert_gt(h.data_off, 1000);
	cr_assert_leq(h.data_off, n / 2);
}

Test(fmthdr, safetensors_data_after_the_json)
{
	struct mfs_fmthdr h;
	uint64_t len = 5000;

	memset(buf, ' ', sizeof(buf));
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)(len >> (8 * i));
	buf[8] = '{';
	cr_assert_eq(mfs_fmthdr_parse(buf, 4096, 1 << 20, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_SAFETENSORS);
	cr_assert_eq(h.done, 1);
	cr_assert_eq(h.data_off, 8 + len);
	/* a length beyond the file is no safetensors header */
	cr_assert_eq(mfs_fmthdr_parse(buf, 4096, 4000, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_OTHER);
}

Test(fmthdr, hostile_counts_and_lengths_are_other)
{
	struct mfs_fmthdr h;
	size_t n = gguf_head(buf, sizeof(buf), 10);

	/* n_kv = 2^60 */
	buf[16 + 7] = 0x10;
	cr_assert_eq(mfs_fmthdr_parse(buf, n, 1 << 30, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_OTHER);
	/* a key length beyond the file */
	n = gguf_head(buf, sizeof(buf), 10);
	memset(buf + 24, 0xff, 8);
	cr_assert_eq(mfs_fmthdr_parse(buf, n, 1 << 30, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_OTHER);
	/* an unknown value type */
	n = gguf_head(buf, sizeof(buf), 10);
	buf[24 + 8 + 12] = 77;
	cr_assert_eq(mfs_fmthdr_parse(buf, n, 1 << 30, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_OTHER);
	/* version 1 */
	n = gguf_head(buf, sizeof(buf), 10);
	buf[4] = 1;
	cr_assert_eq(mfs_fmthdr_parse(buf, n, 1 << 30, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_OTHER);
}

Test(fmthdr, random_bytes_and_tiny_files)
{
	struct mfs_fmthdr h;

	srand(3);
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)rand() % 4096;
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rand();
		if (round % 2)
			memcpy(buf, "GGUF", n < 4 ? n : 4);
		cr_assert_eq(mfs_fmthdr_parse(buf, n, n + (size_t)(rand() % 100000), &h), 0);
		cr_assert(h.fmt != MFS_FMT_GGUF || h.done || h.data_off <= n);
	}
	cr_assert_eq(mfs_fmthdr_parse(buf, 0, 0, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_OTHER);
	memcpy(buf, "GGU", 3);
	cr_assert_eq(mfs_fmthdr_parse(buf, 3, 3, &h), 0);
	cr_assert_eq(h.fmt, MFS_FMT_OTHER);
}
