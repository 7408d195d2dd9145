/*
 * test_adopt.c - adoption of local files into the block cache: nothing is
 * stored unless the whole file hashes to its id; stored blocks read back
 * exactly; a cached blob is left alone; dry runs store nothing; --reflink
 * falls back to a copy where the file system cannot share extents.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/core/cache_fixture.h"
#include "core/adopt.h"
#include "util/hash.h"

static void setup(void)
{
	cache_fixture_open("/tmp/mfs-adopt-XXXXXX");
}

static void teardown(void)
{
	cache_fixture_close();
}

/* A file of n bytes (2.5 blocks when n is large) and its git blob id. */
static int make_file(size_t n, uint8_t **data, char id[41])
{
	char path[128], hdr[32];
	uint8_t sha[20];
	int hl = snprintf(hdr, sizeof(hdr), "blob %zu", n);
	uint8_t *buf = malloc((size_t)hl + 1 + n);

	*data = malloc(n);
	for (size_t i = 0; i < n; i++)
		(*data)[i] = (uint8_t)(i * 7 + i / 1000);
	memcpy(buf, hdr, (size_t)hl + 1);
	memcpy(buf + hl + 1, *data, n);
	cr_assert_eq(mfs_sha1(buf, (size_t)hl + 1 + n, sha), 0);
	mfs_hex(sha, 20, id);
	free(buf);
	snprintf(path, sizeof(path), "%s/src", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, *data, n), (ssize_t)n);
	return fd;
}

static void assert_reads_back(const char *id, const uint8_t *data, size_t n)
{
	uint8_t *buf = malloc(1 << 20);
	size_t off = 0;

	for (uint32_t i = 0; off < n; i++) {
		size_t len;
		cr_assert_eq(mfs_bs_get(bs, id, i, buf, 1 << 20, &len), 0, "block %u", i);
		cr_assert_eq(memcmp(buf, data + off, len), 0, "block %u", i);
		off += len;
	}
	cr_assert_eq(off, n);
	free(buf);
}

TestSuite(adopt, .init = setup, .fini = teardown);

Test(adopt, good_file_is_stored_then_left_alone)
{
	uint8_t *data;
	char id[41], hex[65];
	size_t n = (5u << 20) / 2;
	int fd = make_file(n, &data, id);

	cr_assert(!mfs_adopt_is_cached(ix, id));
	cr_assert_eq(mfs_adopt_fd(ix, bs, fd, n, id, NULL, hex), MFS_ADOPTED);
	cr_assert_str_eq(hex, id);
	cr_assert(mfs_adopt_is_cached(ix, id));
	assert_reads_back(id, data, n);
	cr_assert_eq(mfs_adopt_fd(ix, bs, fd, n, id, NULL, NULL), MFS_ADOPT_CACHED);
	close(fd);
	free(data);
}

Test(adopt, corrupt_file_stores_nothing)
{
	uint8_t *data;
	char id[41], hex[65];
	size_t n = 3u << 20;
	int fd = make_file(n, &data, id);

	/* the last byte differs from what the id was computed over */
	cr_assert_eq(pwrite(fd, "\xff", 1, (off_t)n - 1), 1);
	cr_assert_eq(mfs_adopt_fd(ix, bs, fd, n, id, NULL, hex), MFS_ADOPT_CORRUPT);
	cr_assert_str_neq(hex, id);
	uint64_t size;
	uint32_t bsz;
	bool v, p;
	cr_assert_eq(mfs_ix_blob_get(ix, id, &size, &bsz, &v, &p), -ENOENT);
	cr_assert(!mfs_bs_has(bs, id, 0));
	close(fd);
	free(data);
}

Test(adopt, dry_run_and_bad_input)
{
	uint8_t *data;
	char id[41];
	size_t n = 1000;
	int fd = make_file(n, &data, id);
	struct mfs_adopt_opts o = { .dry_run = true };

	cr_assert_eq(mfs_adopt_fd(ix, bs, fd, n, id, &o, NULL), MFS_ADOPTED);
	cr_assert(!mfs_adopt_is_cached(ix, id));
	cr_assert(!mfs_bs_has(bs, id, 0));
	cr_assert_eq(mfs_adopt_fd(ix, bs, fd, n, "xyz", NULL, NULL), -EINVAL);
	/* the file is shorter than claimed: an error, nothing stored */
	cr_assert_eq(mfs_adopt_fd(ix, bs, fd, n + 10, id, NULL, NULL), -EIO);
	cr_assert(!mfs_bs_has(bs, id, 0));
	close(fd);
	free(data);
}

Test(adopt, reflink_falls_back_to_copy)
{
	uint8_t *data;
	char id[41];
	size_t n = (3u << 20) + 5;
	uint64_t cloned = 0;
	int fd = make_file(n, &data, id);
	struct mfs_adopt_opts o = { .reflink = true, .cloned_bytes = &cloned };

	cr_assert_eq(mfs_adopt_fd(ix, bs, fd, n, id, &o, NULL), MFS_ADOPTED);
	/* cloned or copied, the bytes are the same */
	assert_reads_back(id, data, n);
	cr_assert(cloned == 0 || cloned == n, "%llu", (unsigned long long)cloned);
	close(fd);
	free(data);
}
