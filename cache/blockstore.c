/*
 * blockstore.c - the block cache on disk: per blob, one sparse data file
 * and one record file under <root>/blobs/<id[0:2]>/ (see blockstore.h).
 *
 * The record file's format is in bs_format.h.
 *
 * Why this is crash safe without temp files or fsync: a put of block i
 * (1) clears record i if it was set, (2) pwrites the payload into the slot,
 * (3) pwrites the record. kill -9 between any two steps leaves record i
 * absent or describing a complete payload (a 32-byte pwrite inside one page
 * is not split by a signal); a power cut can still reorder what reaches the
 * disk, which is why every get checks the record's own checksum and the
 * XXH64 of the payload: a mismatch clears the record, punches the slot
 * and returns -EBADMSG (the caller refetches). fsync per block would halve
 * cold-read throughput and buys nothing the checksums do not.
 *
 * Concurrency. Within a process, puts, gets and drops of one block are
 * serialized by a striped rwlock of the open blob (gets share it). Across
 * processes (mount daemon, `modelfs prefetch`, `serve`), step (1) makes a
 * get that read a payload while another process rewrote it see a different
 * record when it re-reads the record after a checksum mismatch: it then
 * retries instead of dropping the new block.
 *
 * Open blobs are kept in a small table of descriptors (BS_OPEN_MAX, least
 * recently used closed first) so a block costs one pwrite (raw) and one
 * 32-byte pwrite, not an open/write/rename/close. A blob removed by another
 * process is noticed by fstat (st_nlink 0) and reopened.
 *
 * zstd contexts and the scratch buffer for compressed payloads come from a
 * small mutex-protected pool (one entry per thread concurrently inside
 * put/get), so no call allocates a context.
 *
 * It does not decide what to evict, keep an index, or fetch anything.
 */
#include "cache/blockstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "cache/bs_format.h"
#include "cache/bs_migrate.h"
#include "util/hash.h"

#define BS_SAMPLE_LEN (64 * 1024)
#define BS_STALE_SECS 3600
#define BS_OPEN_MAX 32
#define BS_STRIPES 16
#define BS_GET_TRIES 8
/* Reopens of a blob a concurrent drop keeps removing before giving up. */
#define BS_OPEN_TRIES 64

struct bs_ctx {
	struct bs_ctx *next;     /* protected by mfs_bs.pool_lock while pooled */
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	void *scratch;           /* compressed payload buffer */
	size_t scratch_cap;
};

/* One open blob. id, fds and slot are fixed after open. */
struct bs_blob {
	char id[65];
	int data_fd, rec_fd;
	uint32_t slot;
	unsigned refs;           /* protected by mfs_bs.lock */
	bool in_table;           /* protected by mfs_bs.lock */
	uint64_t used;           /* LRU stamp; protected by mfs_bs.lock */
	pthread_rwlock_t stripe[BS_STRIPES]; /* block idx % BS_STRIPES */
};

struct mfs_bs {
	char *root;
	int blobs_fd;                /* <root>/blobs, O_DIRECTORY */
	pthread_mutex_t lock;
	struct bs_blob *open[BS_OPEN_MAX]; /* protected by lock */
	uint64_t clock;              /* protected by lock */
	pthread_mutex_t pool_lock;
	struct bs_ctx *pool;         /* protected by pool_lock */
};


/* ------------------------------------------------------------ records */

static int rec_read(struct bs_blob *b, uint32_t idx, uint8_t r[BS_REC_LEN])
{
	ssize_t n = bs_pread_most(b->rec_fd, r, BS_REC_LEN, bs_rec_off(idx));

	if (n < 0)
		return (int)n;
	if (n < BS_REC_LEN)
		memset(r + n, 0, BS_REC_LEN - (size_t)n); /* past the end: absent */
	return 0;
}

/* ------------------------------------------------------------- context pool */

static struct bs_ctx *ctx_get(struct mfs_bs *bs)
{
	struct bs_ctx *c;

	pthread_mutex_lock(&bs->pool_lock);
	c = bs->pool;
	if (c)
		bs->pool = c->next;
	pthread_mutex_unlock(&bs->pool_lock);
	if (!c)
		c = calloc(1, sizeof(*c));
	return c;
}

static void ctx_put(struct mfs_bs *bs, struct bs_ctx *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&bs->pool_lock);
	c->next = bs->pool;
	bs->pool = c;
	pthread_mutex_unlock(&bs->pool_lock);
}

static void ctx_free(struct bs_ctx *c)
{
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c->scratch);
	free(c);
}

static int ctx_scratch(struct bs_ctx *c, size_t need)
{
	if (need <= c->scratch_cap)
		return 0;
	void *p = malloc(need);
	if (!p)
		return -ENOMEM;
	free(c->scratch);
	c->scratch = p;
	c->scratch_cap = need;
	return 0;
}

/* ------------------------------------------------------------- open blobs */

static void blob_free(struct bs_blob *b)
{
	if (b->data_fd >= 0)
		close(b->data_fd);
	if (b->rec_fd >= 0)
		close(b->rec_fd);
	for (int i = 0; i < BS_STRIPES; i++)
		pthread_rwlock_destroy(&b->stripe[i]);
	free(b);
}

static void blob_release(struct mfs_bs *bs, struct bs_blob *b)
{
	bool last;

	if (!b)
		return;
	pthread_mutex_lock(&bs->lock);
	last = --b->refs == 0 && !b->in_table;
	pthread_mutex_unlock(&bs->lock);
	if (last)
		blob_free(b);
}

/* Takes b out of the table (it stays usable by whoever holds it). Called
 * with bs->lock held. */
static void table_remove_locked(struct mfs_bs *bs, struct bs_blob *b)
{
	for (int i = 0; i < BS_OPEN_MAX; i++)
		if (bs->open[i] == b) {
			bs->open[i] = NULL;
			b->in_table = false;
			if (b->refs == 0)
				blob_free(b);
			return;
		}
}

/* Opens a file of the blob: read-write, or read-only where the cache is
 * not writable to us (a `modelfs verify` of someone's read-only cache). */
static int open_rel(struct mfs_bs *bs, const char *rel, bool create)
{
	int fl = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0);
	int fd = openat(bs->blobs_fd, rel, fl, 0600);

	if (fd < 0 && !create && (errno == EACCES || errno == EROFS || errno == EPERM))
		fd = openat(bs->blobs_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/* Opens the files of blob id (creating them with slot `create_slot` when
 * non-zero). Called with bs->lock held so that no drop_blob of this process
 * runs between opening the record file and the data file. */
static int blob_open_locked(struct mfs_bs *bs, const char *id, uint32_t create_slot,
			    struct bs_blob **out)
{
	char rel[BS_REL_MAX];
	uint8_t h[BS_HDR_LEN];
	struct bs_blob *b = calloc(1, sizeof(*b));
	bool create = create_slot != 0;
	ssize_t n;
	int rc;

	if (!b)
		return -ENOMEM;
	b->data_fd = b->rec_fd = -1;
	for (int i = 0; i < BS_STRIPES; i++)
		pthread_rwlock_init(&b->stripe[i], NULL);
	memcpy(b->id, id, strlen(id) + 1);
	/* The record file first: a data file without one is an orphan that
	 * scan removes, never a blob. */
	bs_rel_rec(id, rel);
	rc = open_rel(bs, rel, create);
	if (rc == -ENOENT && create) {
		char fan[3] = { id[0], id[1], '\0' };
		if (mkdirat(bs->blobs_fd, fan, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			goto fail;
		}
		rc = open_rel(bs, rel, create);
	}
	if (rc < 0)
		goto fail;
	b->rec_fd = rc;
	n = bs_pread_most(b->rec_fd, h, BS_HDR_LEN, 0);
	if (n < 0) {
		rc = (int)n;
		goto fail;
	}
	if (n == BS_HDR_LEN && (b->slot = bs_hdr_slot(h)) != 0) {
		/* an existing blob */
	} else if (create && n == 0) {
		bs_hdr_encode(h, create_slot);
		if ((rc = bs_pwrite_full(b->rec_fd, h, BS_HDR_LEN, 0)) < 0)
			goto fail;
		b->slot = create_slot;
	} else {
		/* A header torn by a crash while the blob was created (or
		 * damaged): nothing in this blob can be trusted. */
		rc = create || n > 0 ? -EBADMSG : -ENOENT;
		goto fail;
	}
	bs_rel_data(id, rel);
	if ((rc = open_rel(bs, rel, create)) < 0)
		goto fail;
	b->data_fd = rc;
	*out = b;
	return 0;
fail:
	blob_free(b);
	return rc;
}

static void unlink_blob_files(struct mfs_bs *bs, const char *id)
{
	char rel[BS_REL_MAX];

	bs_rel_rec(id, rel);
	(void)unlinkat(bs->blobs_fd, rel, 0);
	bs_rel_data(id, rel);
	(void)unlinkat(bs->blobs_fd, rel, 0);
}

/* Removes blob id from the table and from disk. Called with bs->lock held. */
static void drop_blob_locked(struct mfs_bs *bs, const char *id)
{
	for (int i = 0; i < BS_OPEN_MAX; i++)
		if (bs->open[i] && strcmp(bs->open[i]->id, id) == 0) {
			table_remove_locked(bs, bs->open[i]);
			break;
		}
	unlink_blob_files(bs, id);
}

/* A referenced open blob (normalized id). create_slot != 0: create it if
 * absent, and recreate it if it was stored with another slot size.
 * -ENOENT when absent and not creating. */
static int blob_get(struct mfs_bs *bs, const char *id, uint32_t create_slot,
		    struct bs_blob **out)
{
	struct bs_blob *b = NULL;
	struct stat st;
	int rc = 0, free_i = -1, lru_i = -1;

	for (int attempt = 0; attempt < BS_OPEN_TRIES; attempt++) {
		pthread_mutex_lock(&bs->lock);
		b = NULL;
		for (int i = 0; i < BS_OPEN_MAX; i++) {
			struct bs_blob *o = bs->open[i];
			if (o && strcmp(o->id, id) == 0) {
				b = o;
				break;
			}
		}
		if (!b) {
			rc = blob_open_locked(bs, id, create_slot, &b);
			if (rc == -EBADMSG && create_slot) {
				/* Torn header: start the blob over. */
				unlink_blob_files(bs, id);
				rc = blob_open_locked(bs, id, create_slot, &b);
			}
			if (rc < 0) {
				pthread_mutex_unlock(&bs->lock);
				return rc;
			}
			free_i = lru_i = -1;
			for (int i = 0; i < BS_OPEN_MAX; i++) {
				struct bs_blob *o = bs->open[i];
				if (!o) {
					free_i = i;
					break;
				}
				if (o->refs == 0 && (lru_i < 0 || o->used < bs->open[lru_i]->used))
					lru_i = i;
			}
			if (free_i < 0 && lru_i >= 0) {
				table_remove_locked(bs, bs->open[lru_i]);
				free_i = lru_i;
			}
			if (free_i >= 0) {
				bs->open[free_i] = b;
				b->in_table = true;
			}
			/* else every slot is busy: b lives until released. */
		}
		b->refs++;
		b->used = ++bs->clock;
		if (create_slot && b->slot != create_slot) {
			/* Stored with another block size: the old blocks are of
			 * no use to this caller. */
			drop_blob_locked(bs, id);
			pthread_mutex_unlock(&bs->lock);
			blob_release(bs, b);
			continue;
		}
		pthread_mutex_unlock(&bs->lock);
		/* Removed by another process since we opened it: reopen. */
		if (fstat(b->rec_fd, &st) == 0 && st.st_nlink == 0) {
			pthread_mutex_lock(&bs->lock);
			if (b->in_table)
				table_remove_locked(bs, b);
			pthread_mutex_unlock(&bs->lock);
			blob_release(bs, b);
			continue;
		}
		*out = b;
		return 0;
	}
	return -EAGAIN;
}

/* --------------------------------------------------------------- open/close */

static int mkdir_p(const char *path)
{
	char *tmp = strdup(path);
	int rc = 0;

	if (!tmp)
		return -ENOMEM;
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;
			*p = '\0';
			/* 0700: the cache may hold gated or private models. */
			if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
				rc = -errno;
				break;
			}
			*p = save;
			if (!save)
				break;
		}
	}
	free(tmp);
	return rc;
}

int mfs_bs_open(const char *root, struct mfs_bs **out)
{
	struct mfs_bs *bs = NULL;
	char *blobs = NULL;
	int rc;

	*out = NULL;
	if (!root || !*root)
		return -EINVAL;
	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	bs->blobs_fd = -1;
	pthread_mutex_init(&bs->lock, NULL);
	pthread_mutex_init(&bs->pool_lock, NULL);
	bs->root = strdup(root);
	if (!bs->root || asprintf(&blobs, "%s/blobs", root) < 0) {
		blobs = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = mkdir_p(blobs)) < 0)
		goto out;
	bs->blobs_fd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bs->blobs_fd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = mfs_bs_migrate_v1(bs, root)) < 0)
		goto out;
	*out = bs;
	bs = NULL;
	rc = 0;
out:
	free(blobs);
	if (bs)
		mfs_bs_close(bs);
	return rc;
}

void mfs_bs_close(struct mfs_bs *bs)
{
	if (!bs)
		return;
	for (int i = 0; i < BS_OPEN_MAX; i++)
		if (bs->open[i])
			blob_free(bs->open[i]);
	while (bs->pool) {
		struct bs_ctx *c = bs->pool;
		bs->pool = c->next;
		ctx_free(c);
	}
	if (bs->blobs_fd >= 0)
		close(bs->blobs_fd);
	pthread_mutex_destroy(&bs->lock);
	pthread_mutex_destroy(&bs->pool_lock);
	free(bs->root);
	free(bs);
}

/* ---------------------------------------------------------------------- put */

/* Chooses the codec: compresses a sample first so incompressible data
 * (quantized weights) costs one 64 KiB compression, not a whole block.
 * On return *payload and *plen point at what to store (data or c->scratch). */
static int choose_payload(struct bs_ctx *c, const void *data, size_t len, int level,
			  const void **payload, size_t *plen, int *codec)
{
	size_t sample = len < BS_SAMPLE_LEN ? len : BS_SAMPLE_LEN;
	size_t csize;
	int rc;

	*payload = data;
	*plen = len;
	*codec = BS_CODEC_RAW;
	if (len < 64)
		return 0; /* not worth a frame header */
	if (!c->cctx && !(c->cctx = ZSTD_createCCtx()))
		return -ENOMEM;
	if ((rc = ctx_scratch(c, ZSTD_compressBound(len))) < 0)
		return rc;
	csize = ZSTD_compressCCtx(c->cctx, c->scratch, c->scratch_cap, data, sample, level);
	if (ZSTD_isError(csize) || csize * 10 > sample * 9)
		return 0;
	if (sample < len) {
		csize = ZSTD_compressCCtx(c->cctx, c->scratch, c->scratch_cap, data, len, level);
		if (ZSTD_isError(csize) || csize * 10 > len * 9)
			return 0;
	}
	*payload = c->scratch;
	*plen = csize;
	*codec = BS_CODEC_ZSTD;
	return 0;
}

/* The payload into its slot: shared with the source's extents when asked
 * (src_fd >= 0) and the file systems can (FICLONERANGE), written otherwise. */
static int write_payload(struct bs_blob *b, const void *payload, size_t plen, uint64_t off,
			 int src_fd, uint64_t src_off, bool *cloned)
{
	if (src_fd >= 0) {
		struct file_clone_range r = { .src_fd = src_fd, .src_offset = src_off,
					      .src_length = plen, .dest_offset = off };
		if (ioctl(b->data_fd, FICLONERANGE, &r) == 0) {
			*cloned = true;
			return 0;
		}
	}
	return bs_pwrite_full(b->data_fd, payload, plen, (off_t)off);
}

static int put_block(struct mfs_bs *bs, const char *id, uint32_t idx, uint32_t block_size,
		     const void *data, size_t len, int level, int src_fd, uint64_t src_off,
		     struct mfs_bs_stats *st)
{
	char nid[65];
	uint8_t r[BS_REC_LEN];
	struct bs_ctx *c = NULL;
	struct bs_blob *b = NULL;
	struct bs_rec old, v;
	const void *payload;
	size_t plen;
	uint64_t off;
	int codec, had, rc;
	bool cloned = false;

	if (!bs || (!data && len) || !block_size || len > block_size)
		return -EINVAL;
	if ((rc = bs_norm_id(id, nid)) < 0)
		return rc;
	c = ctx_get(bs);
	if (!c)
		return -ENOMEM;
	/* a clone shares the raw bytes: it is never compressed */
	if (src_fd >= 0) {
		payload = data;
		plen = len;
		codec = BS_CODEC_RAW;
	} else if ((rc = choose_payload(c, data, len, level, &payload, &plen, &codec)) < 0) {
		goto out;
	}
	v.codec = codec;
	v.raw_len = (uint32_t)len;
	v.stored = (uint32_t)plen;
	v.xxh = mfs_xxh64(data, len, 0);
	off = (uint64_t)idx * block_size;

	if ((rc = blob_get(bs, nid, block_size, &b)) < 0)
		goto out;
	pthread_rwlock_wrlock(&b->stripe[idx % BS_STRIPES]);
	if ((rc = rec_read(b, idx, r)) < 0)
		goto unlock;
	had = bs_rec_decode(r, idx, b->slot, &old);
	if (had != 0) {
		/* (1) Forget the old block before its bytes change. */
		memset(r, 0, sizeof(r));
		if ((rc = bs_pwrite_full(b->rec_fd, r, BS_REC_LEN, bs_rec_off(idx))) < 0)
			goto unlock;
	}
	/* (2) The payload, (3) the record that makes it visible. */
	if ((rc = write_payload(b, payload, plen, off, src_fd, src_off, &cloned)) < 0)
		goto unlock;
	if (had == 1 && old.stored > plen)
		bs_punch(b->data_fd, off + plen, old.stored - plen);
	bs_rec_encode(r, idx, &v);
	rc = bs_pwrite_full(b->rec_fd, r, BS_REC_LEN, bs_rec_off(idx));
unlock:
	pthread_rwlock_unlock(&b->stripe[idx % BS_STRIPES]);
out:
	if (rc == 0 && st) {
		st->raw_bytes = len;
		st->stored_bytes = BS_REC_LEN + plen;
		st->codec = codec;
		st->cloned = cloned;
	}
	blob_release(bs, b);
	ctx_put(bs, c);
	return rc;
}

int mfs_bs_put(struct mfs_bs *bs, const char *id, uint32_t idx, uint32_t block_size,
	       const void *data, size_t len, int level, struct mfs_bs_stats *st)
{
	return put_block(bs, id, idx, block_size, data, len, level, -1, 0, st);
}

int mfs_bs_put_clone(struct mfs_bs *bs, const char *id, uint32_t idx, uint32_t block_size,
		     const void *data, size_t len, int src_fd, uint64_t src_off,
		     struct mfs_bs_stats *st)
{
	if (src_fd < 0)
		return -EINVAL;
	return put_block(bs, id, idx, block_size, data, len, 0, src_fd, src_off, st);
}

/* ---------------------------------------------------------------------- get */

/* Forgets block idx if its record still is `seen` (a concurrent put may
 * have replaced it with a good one meanwhile). Caller holds no stripe. */
static void drop_corrupt(struct bs_blob *b, uint32_t idx, const uint8_t seen[BS_REC_LEN])
{
	uint8_t r[BS_REC_LEN];
	static const uint8_t zero[BS_REC_LEN];

	pthread_rwlock_wrlock(&b->stripe[idx % BS_STRIPES]);
	if (rec_read(b, idx, r) == 0 && memcmp(r, seen, BS_REC_LEN) == 0 &&
	    bs_pwrite_full(b->rec_fd, zero, BS_REC_LEN, bs_rec_off(idx)) == 0)
		bs_punch(b->data_fd, (uint64_t)idx * b->slot, b->slot);
	pthread_rwlock_unlock(&b->stripe[idx % BS_STRIPES]);
}

/* One attempt: 0, -ENOENT, -ENOBUFS, -EBADMSG (seen holds the record that
 * did not verify), or another error. Caller holds the stripe shared. */
static int get_once(struct mfs_bs *bs, struct bs_blob *b, uint32_t idx, void *buf,
		    size_t cap, size_t *len, uint8_t seen[BS_REC_LEN])
{
	struct bs_ctx *c = NULL;
	struct bs_rec v;
	off_t off = (off_t)((uint64_t)idx * b->slot);
	ssize_t n;
	int rc;

	if ((rc = rec_read(b, idx, seen)) < 0)
		return rc;
	if ((rc = bs_rec_decode(seen, idx, b->slot, &v)) <= 0)
		return rc == 0 ? -ENOENT : rc;
	if (v.raw_len > cap)
		return -ENOBUFS;
	if (v.codec == BS_CODEC_RAW) {
		/* The one copy: page cache straight into the caller's buffer. */
		n = bs_pread_most(b->data_fd, buf, v.raw_len, off);
		if (n < 0)
			return (int)n;
		if ((size_t)n != v.raw_len)
			return -EBADMSG;
	} else {
		size_t got;
		c = ctx_get(bs);
		if (!c || (!c->dctx && !(c->dctx = ZSTD_createDCtx()))) {
			ctx_put(bs, c);
			return -ENOMEM;
		}
		if ((rc = ctx_scratch(c, v.stored)) < 0)
			goto out;
		n = bs_pread_most(b->data_fd, c->scratch, v.stored, off);
		if (n < 0 || (size_t)n != v.stored) {
			rc = n < 0 ? (int)n : -EBADMSG;
			goto out;
		}
		got = ZSTD_decompressDCtx(c->dctx, buf, v.raw_len, c->scratch, v.stored);
		if (ZSTD_isError(got) || got != v.raw_len) {
			rc = -EBADMSG;
			goto out;
		}
	}
	rc = mfs_xxh64(buf, v.raw_len, 0) == v.xxh ? 0 : -EBADMSG;
	if (rc == 0 && len)
		*len = v.raw_len;
out:
	ctx_put(bs, c);
	return rc;
}

int mfs_bs_get(struct mfs_bs *bs, const char *id, uint32_t idx,
	       void *buf, size_t cap, size_t *len)
{
	char nid[65];
	uint8_t seen[BS_REC_LEN], again[BS_REC_LEN];
	struct bs_blob *b = NULL;
	int rc;

	if (!bs || (!buf && cap))
		return -EINVAL;
	if ((rc = bs_norm_id(id, nid)) < 0)
		return rc;
	if ((rc = blob_get(bs, nid, 0, &b)) < 0) {
		if (rc == -EBADMSG) {
			/* A torn header: the whole blob is unusable. */
			pthread_mutex_lock(&bs->lock);
			drop_blob_locked(bs, nid);
			pthread_mutex_unlock(&bs->lock);
		}
		return rc;
	}
	for (int tries = 0; tries < BS_GET_TRIES; tries++) {
		pthread_rwlock_rdlock(&b->stripe[idx % BS_STRIPES]);
		rc = get_once(bs, b, idx, buf, cap, len, seen);
		pthread_rwlock_unlock(&b->stripe[idx % BS_STRIPES]);
		if (rc != -EBADMSG)
			break;
		/* Another process may have rewritten the block while we read
		 * it: its put cleared the record first, so a record that
		 * changed means "read again", an unchanged one means corrupt. */
		if (rec_read(b, idx, again) == 0 && memcmp(seen, again, BS_REC_LEN) != 0)
			continue;
		drop_corrupt(b, idx, seen);
		break;
	}
	blob_release(bs, b);
	return rc;
}

bool mfs_bs_has(struct mfs_bs *bs, const char *id, uint32_t idx)
{
	char nid[65];
	uint8_t r[BS_REC_LEN];
	struct bs_blob *b = NULL;
	struct bs_rec v;
	bool has;

	if (!bs || bs_norm_id(id, nid) < 0 || blob_get(bs, nid, 0, &b) < 0)
		return false;
	has = rec_read(b, idx, r) == 0 && bs_rec_decode(r, idx, b->slot, &v) == 1;
	blob_release(bs, b);
	return has;
}

/* ------------------------------------------------------------- drop / scan */

int mfs_bs_drop(struct mfs_bs *bs, const char *id, uint32_t idx)
{
	char nid[65];
	uint8_t r[BS_REC_LEN];
	struct bs_blob *b = NULL;
	int rc;

	if (!bs)
		return -EINVAL;
	if ((rc = bs_norm_id(id, nid)) < 0)
		return rc;
	if ((rc = blob_get(bs, nid, 0, &b)) < 0)
		return rc == -ENOENT || rc == -EBADMSG ? 0 : rc;
	pthread_rwlock_wrlock(&b->stripe[idx % BS_STRIPES]);
	if ((rc = rec_read(b, idx, r)) == 0) {
		static const uint8_t zero[BS_REC_LEN];
		if (memcmp(r, zero, BS_REC_LEN) != 0)
			rc = bs_pwrite_full(b->rec_fd, zero, BS_REC_LEN, bs_rec_off(idx));
		if (rc == 0)
			bs_punch(b->data_fd, (uint64_t)idx * b->slot, b->slot);
	}
	pthread_rwlock_unlock(&b->stripe[idx % BS_STRIPES]);
	blob_release(bs, b);
	return rc;
}

int mfs_bs_drop_blob(struct mfs_bs *bs, const char *id)
{
	char nid[65];
	int rc;

	if (!bs)
		return -EINVAL;
	if ((rc = bs_norm_id(id, nid)) < 0)
		return rc;
	pthread_mutex_lock(&bs->lock);
	drop_blob_locked(bs, nid);
	pthread_mutex_unlock(&bs->lock);
	return 0;
}

/* Reports every valid record of one blob (normalized id). Sparse record
 * files are read by their data extents only, so a blob holding only a
 * block at a huge index costs two seeks, not gigabytes of zeros. */
static int scan_one(struct mfs_bs *bs, const char *id, mfs_bs_scan_fn cb, void *ctx)
{
	uint8_t buf[BS_REC_LEN * 512];
	struct bs_blob *b = NULL;
	struct bs_rec v;
	off_t pos = BS_HDR_LEN;
	int rc;

	if ((rc = blob_get(bs, id, 0, &b)) < 0)
		return rc == -ENOENT || rc == -EBADMSG ? 0 : rc;
	for (;;) {
		off_t data = lseek(b->rec_fd, pos, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no more data */
		/* Back to a record boundary. */
		data -= (data - BS_HDR_LEN) % BS_REC_LEN;
		if (data < pos)
			data = pos;
		ssize_t n = bs_pread_most(b->rec_fd, buf, sizeof(buf), data);
		if (n < BS_REC_LEN)
			break;
		for (ssize_t k = 0; k + BS_REC_LEN <= n; k += BS_REC_LEN) {
			uint64_t idx = (uint64_t)(data + k - BS_HDR_LEN) / BS_REC_LEN;
			if (idx > UINT32_MAX)
				goto done;
			if (bs_rec_decode(buf + k, (uint32_t)idx, b->slot, &v) == 1 &&
			    (rc = cb(ctx, id, (uint32_t)idx, BS_REC_LEN + (uint64_t)v.stored)) != 0)
				goto done;
		}
		pos = data + (n / BS_REC_LEN) * BS_REC_LEN;
	}
done:
	blob_release(bs, b);
	return rc;
}

int mfs_bs_scan_blob(struct mfs_bs *bs, const char *id, mfs_bs_scan_fn cb, void *ctx)
{
	char nid[65];
	int rc;

	if (!bs || !cb)
		return -EINVAL;
	if ((rc = bs_norm_id(id, nid)) < 0)
		return rc;
	return scan_one(bs, nid, cb, ctx);
}

/* Removes a data file without a record file (left by a drop interrupted
 * between its two unlinks) once it is old enough not to be a blob another
 * process is creating right now. */
static void maybe_orphan(int dfd, const char *name, time_t now)
{
	char rec[BS_REL_MAX];
	struct stat st;

	snprintf(rec, sizeof(rec), "%s.rec", name);
	if (fstatat(dfd, rec, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    now - st.st_mtime > BS_STALE_SECS)
		(void)unlinkat(dfd, name, 0);
}

int mfs_bs_scan(struct mfs_bs *bs, mfs_bs_scan_fn cb, void *ctx)
{
	DIR *d1 = NULL, *d2;
	struct dirent *e1, *e2;
	time_t now = time(NULL);
	int rc = 0, fd;

	if (!bs || !cb)
		return -EINVAL;
	/* dup: closedir closes the descriptor it was given. */
	fd = dup(bs->blobs_fd);
	if (fd < 0)
		return -errno;
	d1 = fdopendir(fd);
	if (!d1) {
		close(fd);
		return -errno;
	}
	rewinddir(d1);
	while (rc == 0 && (e1 = readdir(d1))) {
		if (strlen(e1->d_name) != 2 || !bs_is_hex_name(e1->d_name, 2))
			continue;
		fd = openat(dirfd(d1), e1->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || !(d2 = fdopendir(fd))) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while (rc == 0 && (e2 = readdir(d2))) {
			size_t n = strlen(e2->d_name);
			/* Only names this module creates, in the right fan-out. */
			if (memcmp(e2->d_name, e1->d_name, 2) != 0)
				continue;
			if ((n == 40 || n == 64) && bs_is_hex_name(e2->d_name, n)) {
				maybe_orphan(dirfd(d2), e2->d_name, now);
			} else if ((n == 44 || n == 68) && bs_is_hex_name(e2->d_name, n - 4) &&
				   strcmp(e2->d_name + n - 4, ".rec") == 0) {
				char id[65];
				memcpy(id, e2->d_name, n - 4);
				id[n - 4] = '\0';
				rc = scan_one(bs, id, cb, ctx);
			}
		}
		closedir(d2);
	}
	closedir(d1);
	return rc;
}
