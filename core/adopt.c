/*
 * adopt.c - verified adoption of local files into the block cache (see
 * adopt.h).
 *
 * Two passes over the source: the first hashes it, the second stores its
 * blocks (with --reflink, as extents shared with the source where the file
 * systems allow: raw, uncompressed, no bytes written). Storing while hashing would let a mount that shares the cache
 * read blocks of a file that later turns out corrupt (and a put replaces
 * a block another process may hold good), so nothing is written before
 * the whole file is known good. The second pass usually reads from the
 * page cache.
 */
#include "core/adopt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/hash.h"

#define ADOPT_BLOCK (1u << 20)          /* block size asked for a new blob */
#define ADOPT_PROGRESS (64ull << 20)    /* progress callback granularity */

bool mfs_adopt_is_cached(struct mfs_ix *ix, const char *id)
{
	uint64_t size;
	uint32_t bsize;
	bool verified, pinned, all = true;

	if (mfs_ix_blob_get(ix, id, &size, &bsize, &verified, &pinned) || !verified || !bsize)
		return false;
	uint32_t n = (uint32_t)((size + bsize - 1) / bsize);
	uint8_t *bm = calloc((n + 7) / 8 + 1, 1);
	if (!bm || mfs_ix_blocks_get(ix, id, bm, n)) {
		free(bm);
		return false;
	}
	for (uint32_t i = 0; i < n && all; i++)
		all = bm[i / 8] & (1u << (i % 8));
	free(bm);
	return all;
}

static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO; /* the file shrank under us */
		got += (size_t)r;
	}
	return 0;
}

static void progress(const struct mfs_adopt_opts *o, const char *phase, uint64_t done,
		     uint64_t total, uint64_t *next)
{
	if (!o->progress || (done < *next && done < total))
		return;
	*next = done + ADOPT_PROGRESS;
	o->progress(o->progress_ctx, phase, done, total);
}

/* Pass 1. 1 if the content is `id`, 0 if not, -errno. */
static int hash_source(int fd, uint64_t size, const char *id, uint8_t *buf,
		       const struct mfs_adopt_opts *o, char *hex_out)
{
	struct mfs_digest d = MFS_DIGEST_IDLE;
	uint64_t next = 0;
	int rc = mfs_digest_start_for_id(&d, id, size);

	for (uint64_t off = 0; rc == 0 && off < size;) {
		size_t len = size - off < ADOPT_BLOCK ? (size_t)(size - off) : ADOPT_BLOCK;
		rc = read_full(fd, buf, len, off);
		if (rc == 0) {
			mfs_digest_update(&d, buf, len);
			off += len;
			progress(o, "verify", off, size, &next);
		}
	}
	if (rc == 0)
		rc = mfs_digest_matches_id(&d, id, hex_out);
	mfs_digest_release(&d);
	return rc;
}

/* Pass 2: every block, then the verified mark. */
static int store_blocks(struct mfs_ix *ix, struct mfs_bs *bs, int fd, uint64_t size,
			const char *id, uint8_t **bufp, const struct mfs_adopt_opts *o)
{
	uint8_t *buf = *bufp;
	uint32_t bsize = ADOPT_BLOCK;
	uint64_t next = 0;
	int rc = mfs_ix_blob_ensure(ix, id, size, &bsize);

	if (rc == 0 && (bsize == 0 || bsize > (64u << 20)))
		rc = -EIO; /* the index's block size is not one we can buffer */
	for (uint64_t off = 0, idx = 0; rc == 0 && off < size; idx++) {
		size_t len = size - off < bsize ? (size_t)(size - off) : bsize;
		struct mfs_bs_stats st;
		if (len > ADOPT_BLOCK) {
			uint8_t *nb = realloc(buf, len);
			if (!nb)
				return -ENOMEM;
			*bufp = buf = nb;
		}
		rc = read_full(fd, buf, len, off);
		if (rc == 0 && o->reflink)
			rc = mfs_bs_put_clone(bs, id, (uint32_t)idx, bsize, buf, len, fd, off, &st);
		else if (rc == 0)
			rc = mfs_bs_put(bs, id, (uint32_t)idx, bsize, buf, len, 1, &st);
		if (rc == 0 && st.cloned && o->cloned_bytes)
			*o->cloned_bytes += len;
		if (rc == 0)
			rc = mfs_ix_block_add(ix, id, (uint32_t)idx, st.stored_bytes);
		off += len;
		progress(o, "store", off, size, &next);
	}
	if (rc == 0)
		rc = mfs_ix_blob_set_verified(ix, id, true);
	return rc;
}

int mfs_adopt_fd(struct mfs_ix *ix, struct mfs_bs *bs, int fd, uint64_t size, const char *id,
		 const struct mfs_adopt_opts *o, char *hex_out)
{
	static const struct mfs_adopt_opts none = { 0 };
	size_t idlen = strlen(id);
	uint8_t *buf;
	int rc;

	if (!o)
		o = &none;
	if ((idlen != 40 && idlen != 64) || !mfs_hex_valid(id, idlen) || size > MFS_SIZE_MAX)
		return -EINVAL;
	if (mfs_adopt_is_cached(ix, id))
		return MFS_ADOPT_CACHED;
	if (o->dry_run)
		return MFS_ADOPTED;
	buf = malloc(ADOPT_BLOCK);
	if (!buf)
		return -ENOMEM;
	rc = hash_source(fd, size, id, buf, o, hex_out);
	if (rc == 1)
		rc = store_blocks(ix, bs, fd, size, id, &buf, o);
	else if (rc == 0)
		rc = MFS_ADOPT_CORRUPT;
	free(buf);
	return rc;
}
