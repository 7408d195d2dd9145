/*
 * sweep.c - remove stored blocks the index does not know (see sweep.h).
 *
 * The store is scanned blob by blob; each blob's index rows are read once
 * into a bitmap, and blocks missing from it are collected, then removed
 * outside the scan (removing while the store iterates its own files would
 * be asking for trouble). Before removing, the block's cross-process lock
 * is taken without waiting and the row looked up again, so a fetch that
 * stored the block and is about to write its row keeps it.
 */
#include "core/sweep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blklock.h"
#include "util/log.h"

struct orphan {
	char id[65];
	uint32_t idx;
	uint64_t bytes;
};

struct scan_ctx {
	struct mfs_ix *ix;
	char cur[65];                /* blob whose rows are in `have` */
	uint32_t *have;              /* sorted block indexes with a row */
	size_t nhave;
	struct orphan *orphans;
	size_t n, cap;
	uint64_t seen;
	int err;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int load_rows(struct scan_ctx *s, const char *id)
{
	struct mfs_ix_block *rows = NULL;
	size_t n = 0;
	int rc = mfs_ix_blob_blocks(s->ix, id, &rows, &n);

	free(s->have);
	s->have = NULL;
	s->nhave = 0;
	snprintf(s->cur, sizeof(s->cur), "%s", id);
	if (rc == -ENOENT)
		return 0; /* no blob row: every block of it is an orphan */
	if (rc)
		return rc;
	s->have = malloc((n ? n : 1) * sizeof(*s->have));
	if (!s->have) {
		free(rows);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		s->have[i] = rows[i].idx;
	s->nhave = n;
	free(rows);
	qsort(s->have, n, sizeof(*s->have), cmp_u32);
	return 0;
}

static int on_block(void *vctx, const char *id, uint32_t idx, uint64_t stored)
{
	struct scan_ctx *s = vctx;
	int rc;

	s->seen++;
	if (strcmp(id, s->cur) && (rc = load_rows(s, id))) {
		s->err = rc;
		return rc;
	}
	if (bsearch(&idx, s->have, s->nhave, sizeof(*s->have), cmp_u32))
		return 0;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		struct orphan *no = realloc(s->orphans, nc * sizeof(*no));
		if (!no) {
			s->err = -ENOMEM;
			return -ENOMEM;
		}
		s->orphans = no;
		s->cap = nc;
	}
	snprintf(s->orphans[s->n].id, sizeof(s->orphans[s->n].id), "%s", id);
	s->orphans[s->n].idx = idx;
	s->orphans[s->n].bytes = stored;
	s->n++;
	return 0;
}

/* Still without a row? (-errno if the index cannot say.) */
static int still_orphan(struct mfs_ix *ix, const struct orphan *o)
{
	struct mfs_ix_block *rows = NULL;
	size_t n = 0;
	int rc = mfs_ix_blob_blocks(ix, o->id, &rows, &n);

	if (rc == -ENOENT)
		return 1;
	if (rc)
		return rc;
	rc = 1;
	for (size_t i = 0; i < n; i++)
		if (rows[i].idx == o->idx)
			rc = 0;
	free(rows);
	return rc;
}

int mfs_sweep_orphans(struct mfs_ix *ix, struct mfs_bs *bs, const char *lock_dir,
		      struct mfs_sweep_result *res)
{
	struct scan_ctx s = { .ix = ix };
	int rc;

	memset(res, 0, sizeof(*res));
	rc = mfs_bs_scan(bs, on_block, &s);
	if (s.err)
		rc = s.err;
	res->blocks_seen = s.seen;
	for (size_t i = 0; rc == 0 && i < s.n; i++) {
		const struct orphan *o = &s.orphans[i];
		int fd = lock_dir ? mfs_blklock_open(lock_dir, o->id) : -1;
		if (lock_dir && fd < 0) {
			rc = fd;
			break;
		}
		int lr = fd >= 0 ? mfs_blklock_try(fd, o->idx, 1) : 0;
		if (lr == -EAGAIN) {
			res->busy++;
		} else if (lr) {
			rc = lr;
		} else {
			int st = still_orphan(ix, o);
			if (st < 0) {
				rc = st;
			} else if (st) {
				rc = mfs_bs_drop(bs, o->id, o->idx);
				if (rc == 0) {
					res->orphans++;
					res->orphan_bytes += o->bytes;
				}
			}
			if (fd >= 0)
				mfs_blklock_release(fd, o->idx, 1);
		}
		if (fd >= 0)
			close(fd);
	}
	if (res->orphans)
		mfs_warn("removed %llu stored block(s) (%llu bytes) the index did not know",
			 (unsigned long long)res->orphans, (unsigned long long)res->orphan_bytes);
	free(s.have);
	free(s.orphans);
	return rc;
}
