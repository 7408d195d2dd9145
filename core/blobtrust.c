/*
 * blobtrust.c - the block layer's trust model: only the hub's hashes are
 * trusted, never the bytes of a peer, mirror or proxy.
 *
 *  - Xet files (a listing xetHash) with a chunk list: the list comes from
 *    any peer (GET /chunks/<xetHash>, or the cache's own copy) and is
 *    accepted only if its merkle root gives the xetHash; then every fetch
 *    is widened to chunk boundaries and each chunk's keyed BLAKE3 is
 *    checked before its bytes reach the block sink (bio_chunk_read). A bad
 *    chunk stops the transfer: the fetch layer demotes the sender and asks
 *    the next source. Nothing unverified is ever stored or served.
 *  - Otherwise bytes that did not come from the hub (or any bytes, with
 *    --verify strict) make the blob "held": readers wait until the whole
 *    blob verified (sha256 / git sha1 against the listing), and a waiting
 *    reader has the whole blob fetched at full parallel speed. A mark file
 *    (<trust_dir>/held/<id>) keeps the hold across restarts and between
 *    processes sharing the cache, so stored unverified blocks are never
 *    served later as if they were checked.
 *
 * The hub's bytes (over TLS from the endpoint the user chose) are served as
 * they arrive and checked at completion, as before, unless strict.
 * It does not fetch whole blobs itself (blobfetch.c) nor hash them
 * (blobverify.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/blobio_internal.h"
#include "util/log.h"

/* Chunk lists are ~36 bytes per 64 KiB: 1 MiB covers a 1.8 TiB file. */
#define LIST_MAX (1u << 20)

bool bio_hold_locked(const struct mfs_blob *b)
{
	return b->held && b->verdict != 1;
}

static void trust_path(const struct mfs_blob *b, const char *kind, const char *name,
		       char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s/%s", b->bio->cfg.trust_dir, kind, name);
}

static void mark_held(struct mfs_blob *b, bool on)
{
	char p[4096];

	if (!b->bio->cfg.trust_dir)
		return;
	trust_path(b, "held", b->id, p, sizeof p);
	if (!on) {
		(void)unlink(p);
		return;
	}
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/held", b->bio->cfg.trust_dir);
	(void)mkdir(b->bio->cfg.trust_dir, 0755);
	(void)mkdir(dir, 0755);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		mfs_warn("%s: cannot record that it holds unverified bytes (%s): %s",
			 b->id, p, strerror(errno));
	else
		close(fd);
}

static bool held_on_disk(const struct mfs_blob *b)
{
	char p[4096];

	if (!b->bio->cfg.trust_dir)
		return false;
	trust_path(b, "held", b->id, p, sizeof p);
	return access(p, F_OK) == 0;
}

/* Takes a decoded list if it is the file's; frees it otherwise. */
static int adopt_list(struct mfs_blob *b, const uint8_t *buf, size_t len)
{
	struct mfs_xet_chunk *c;
	size_t n;
	uint64_t size;
	uint8_t want[MFS_XET_HASH_LEN];
	int rc = mfs_xet_list_decode(buf, len, &c, &n, &size);

	if (rc)
		return rc;
	if (mfs_xet_parse(b->xet, want) || size != b->size ||
	    mfs_xet_list_check(c, n, b->size, want) != 0) {
		free(c);
		return -EBADMSG;
	}
	pthread_mutex_lock(&b->bio->lock);
	if (b->chunks_state != 1) {
		b->chunks = c;
		b->nchunks = n;
		b->chunks_state = 1;
		c = NULL;
	}
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&b->bio->lock);
	free(c);
	return 0;
}

static int load_list_file(struct mfs_blob *b)
{
	char p[4096];
	uint8_t *buf;
	struct stat st;
	int fd, rc;

	if (!b->bio->cfg.trust_dir)
		return -ENOENT;
	trust_path(b, "chunks", b->xet, p, sizeof p);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) || st.st_size <= 0 || st.st_size > LIST_MAX ||
	    !(buf = malloc((size_t)st.st_size))) {
		close(fd);
		return -EBADMSG;
	}
	rc = read(fd, buf, (size_t)st.st_size) == st.st_size ? adopt_list(b, buf, (size_t)st.st_size)
							      : -EIO;
	free(buf);
	close(fd);
	if (rc)
		(void)unlink(p); /* damaged or not this file's: fetch a good one */
	return rc;
}

/* Writes a checked list where the next open (and `serve`) finds it. */
static void save_list(struct mfs_blob *b, const uint8_t *buf, size_t len)
{
	char dir[4096], p[4096], tmp[4200];

	if (!b->bio->cfg.trust_dir)
		return;
	snprintf(dir, sizeof dir, "%s/chunks", b->bio->cfg.trust_dir);
	(void)mkdir(b->bio->cfg.trust_dir, 0755);
	(void)mkdir(dir, 0755);
	trust_path(b, "chunks", b->xet, p, sizeof p);
	snprintf(tmp, sizeof tmp, "%s.tmp%ld", p, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	bool ok = write(fd, buf, len) == (ssize_t)len;
	close(fd);
	if (!ok || rename(tmp, p))
		(void)unlink(tmp);
}

void bio_trust_open(struct mfs_blob *b)
{
	if (b->verdict != 1 && held_on_disk(b))
		b->held = true;
	if (b->xet[0] && load_list_file(b) == 0)
		mfs_debug("%s: chunk list from the cache", b->id);
}

void bio_trust_disk_block(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;

	pthread_mutex_lock(&bio->lock);
	bool check = !b->held && b->verdict != 1 && b->nblocks > 1;
	pthread_mutex_unlock(&bio->lock);
	/* Another process (prefetch, a second mount) may have stored it from
	 * a source it does not trust yet: its mark says so. */
	if (!check || !held_on_disk(b))
		return;
	pthread_mutex_lock(&bio->lock);
	if (!b->held && b->verdict != 1) {
		b->held = true;
		if (b->pending && !bio->cancelled)
			bio_schedule_locked(b, 0, b->nblocks - 1, true);
	}
	pthread_mutex_unlock(&bio->lock);
}

void bio_trust_free(struct mfs_blob *b)
{
	free(b->chunks);
	b->chunks = NULL;
}

bool bio_sources_trusted(const struct mfs_blobio *bio, uint32_t src_mask)
{
#ifdef MFS_NO_TRUST_CHECKS
	/* -Dtrust_checks=false: the unverified baseline of bench_trust.py. */
	(void)bio;
	(void)src_mask;
	return true;
#endif
	if (bio->cfg.verify_strict)
		return false;
	for (int i = 0; i < 32; i++)
		if ((src_mask & (1u << i)) && !mfs_srcset_is_hub(bio->src, i))
			return false;
	return true;
}

bool bio_trust_stale_locked(struct mfs_blob *b)
{
	/* One-block blobs are verified before they are served anyway. */
	if (b->verdict == 1 || b->held || b->nblocks <= 1)
		return false;
	b->held = true;
	/* Readers already waiting now wait for the whole blob. */
	if (b->pending && !b->bio->cancelled)
		bio_schedule_locked(b, 0, b->nblocks - 1, true);
	return true;
}

void bio_trust_mark_held(struct mfs_blob *b)
{
	mark_held(b, true);
}

void bio_untrusted_arrived(struct mfs_blob *b, uint32_t src_mask)
{
	struct mfs_blobio *bio = b->bio;
	bool first = false;

	if (bio_sources_trusted(bio, src_mask))
		return;
	pthread_mutex_lock(&bio->lock);
	first = bio_trust_stale_locked(b);
	pthread_mutex_unlock(&bio->lock);
	if (first) {
		mark_held(b, true);
		mfs_info("%s/%s: %s: held until the whole file verifies", b->repo.id, b->path,
			 bio->cfg.verify_strict ? "--verify strict"
						: "bytes from a source that is not the hub and no chunk list");
	}
}

/* A verdict, or the blocks were dropped: readers waiting on the hold are
 * answered (ok) or their blocks fetched again (the liar is demoted). After
 * HELD_RETRIES failed verdicts in a row they get EIO instead: a source that
 * always lies (the only one left, or the hub itself under --verify strict)
 * would otherwise have the whole blob refetched forever while the reader
 * (or `prefetch`) waits. A later read tries again. */
#define HELD_RETRIES 3

void bio_trust_verdict(struct mfs_blob *b, bool ok)
{
	struct mfs_blobio *bio = b->bio;
	struct pending_read *ready = NULL, *failed = NULL, **pp;
	bool was, give_up = false;

	pthread_mutex_lock(&bio->lock);
	was = b->held;
	b->held = false;
	if (ok) {
		b->held_failures = 0;
	} else if (was && b->pending && ++b->held_failures >= HELD_RETRIES) {
		b->held_failures = 0;
		give_up = true;
	}
	for (pp = &b->pending; *pp;) {
		struct pending_read *p = *pp;
		if (bio_range_present_locked(b, p->b0, p->b1)) {
			*pp = p->next;
			p->next = ready;
			ready = p;
		} else if (give_up) {
			*pp = p->next;
			p->next = failed;
			failed = p;
		} else {
			if (!ok && !bio->cancelled)
				bio_schedule_locked(b, p->b0, p->b1, true);
			pp = &p->next;
		}
	}
	pthread_mutex_unlock(&bio->lock);
	if (was)
		mark_held(b, false);
	if (give_up)
		mfs_error("%s/%s: failed verification %d times in a row; its readers get an "
			  "I/O error", b->repo.id, b->path, HELD_RETRIES);
	bio_complete_list(b, ready, 0);
	bio_complete_list(b, failed, bio_errno_for_reader(-EBADMSG));
}

/* Cancelled (prefetch's Ctrl-C, unmount): queued fetches are gone, so a
 * held blob's waiting readers, who wait for every block, would wait for
 * good. They get an error; the blocks already stored stay held. */
void bio_trust_cancel(struct mfs_blobio *bio)
{
	struct mfs_blob *victims[64];
	struct pending_read *lists[64];
	size_t n;

	do { /* 64 at a time: a pass takes their readers off, the next finds more */
		n = 0;
		pthread_mutex_lock(&bio->lock);
		for (int i = 0; i < BLOB_BUCKETS && n < 64; i++) {
			for (struct mfs_blob *o = bio->blobs[i]; o && n < 64; o = o->hnext) {
				if (!o->pending || !bio_hold_locked(o))
					continue;
				o->refs++;
				victims[n] = o;
				lists[n++] = o->pending;
				o->pending = NULL;
			}
		}
		pthread_mutex_unlock(&bio->lock);
		for (size_t i = 0; i < n; i++) {
			bio_complete_list(victims[i], lists[i], bio_errno_for_reader(-ECANCELED));
			bio_blob_unref(victims[i]);
		}
	} while (n == 64);
}

static int accept_list(void *ctx, int src, const uint8_t *body, size_t len)
{
	struct mfs_blob *b = ctx;
	int rc = adopt_list(b, body, len);

	(void)src;
	if (rc == 0)
		save_list(b, body, len);
	return rc == -ENOMEM ? -ENOMEM : rc ? -EBADMSG : 0;
}

/* true when the blob has a verified chunk list (asked of the peers once). */
bool bio_trust_chunks(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	char path[80];

#ifdef MFS_NO_TRUST_CHECKS
	return false;
#endif
	if (!b->xet[0] || !bio->src)
		return false;
	pthread_mutex_lock(&bio->lock);
	while (b->chunks_state == 2)
		pthread_cond_wait(&b->changed, &bio->lock);
	if (b->chunks_state != 0) {
		bool have = b->chunks_state == 1;
		pthread_mutex_unlock(&bio->lock);
		return have;
	}
	b->chunks_state = 2;
	pthread_mutex_unlock(&bio->lock);

	struct mfs_src_read rq = { .content_id = b->id };
	snprintf(path, sizeof path, "/chunks/%s", b->xet);
	int rc = mfs_srcset_peer_doc(bio->src, &rq, path, LIST_MAX, accept_list, b);
	pthread_mutex_lock(&bio->lock);
	if (b->chunks_state == 2)
		b->chunks_state = rc == 0 ? 1 : -1;
	bool have = b->chunks_state == 1;
	pthread_cond_broadcast(&b->changed);
	pthread_mutex_unlock(&bio->lock);
	if (!have)
		mfs_debug("%s/%s: no peer has a chunk list for xetHash %s", b->repo.id, b->path,
			  b->xet);
	return have;
}

/* ---- chunk-verified reads ---------------------------------------------------- */

struct cv {
	struct mfs_blob *b;
	const struct mfs_xet_chunk *c;
	size_t ci, nc;            /* chunk being filled, chunk count */
	uint8_t *buf;             /* its bytes so far */
	uint32_t have;
	uint32_t mask;            /* sources that sent them */
	uint64_t from, stop;      /* what the caller wants of it */
	mfs_src_sink_fn sink;
	void *sctx;
	uint32_t *bad;
};

static int cv_sink(void *vctx, int src, uint64_t off, const void *data, size_t len)
{
	struct cv *x = vctx;
	const uint8_t *p = data;

	(void)off;
	if (src >= 0 && src < 32)
		x->mask |= 1u << src;
	while (len) {
		const struct mfs_xet_chunk *c = &x->c[x->ci];
		size_t n = c->len - x->have < len ? c->len - x->have : len;
		memcpy(x->buf + x->have, p, n);
		x->have += (uint32_t)n;
		p += n;
		len -= n;
		if (x->have < c->len)
			break;
		if (!mfs_xet_chunk_check(c, x->buf, c->len)) {
			*x->bad = x->mask;
			mfs_warn("%s/%s: chunk %zu (bytes %llu-%llu) does not match the hub's "
				 "xetHash chunk list; dropped", x->b->repo.id, x->b->path, x->ci,
				 (unsigned long long)c->offset,
				 (unsigned long long)(c->offset + c->len - 1));
			return -EBADMSG;
		}
		/* Verified: hand over the part the caller asked for. */
		uint64_t s = c->offset > x->from ? c->offset : x->from;
		uint64_t e = c->offset + c->len < x->stop ? c->offset + c->len : x->stop;
		if (e > s) {
			int rc = x->sink(x->sctx, src, s, x->buf + (s - c->offset), (size_t)(e - s));
			if (rc)
				return rc;
		}
		x->ci++;
		x->have = 0;
		x->mask = src >= 0 && src < 32 ? 1u << src : 0;
	}
	return 0;
}

int bio_chunk_read(struct mfs_blob *b, struct mfs_src_read *rq, uint64_t from,
		   uint64_t stop, mfs_src_sink_fn sink, void *sctx, uint32_t *bad_mask,
		   struct mfs_src_outcome *oc)
{
	struct cv x = { .b = b, .from = from, .stop = stop, .sink = sink, .sctx = sctx,
			.bad = bad_mask };
	int rc;

	/* The list is immutable once chunks_state == 1. */
	x.c = b->chunks;
	x.nc = b->nchunks;
	x.ci = mfs_xet_chunk_at(x.c, x.nc, from);
	size_t last = mfs_xet_chunk_at(x.c, x.nc, stop - 1);
	if (x.ci >= x.nc || last >= x.nc)
		return -EINVAL;
	x.buf = malloc(MFS_XET_MAX_CHUNK);
	if (!x.buf)
		return -ENOMEM;
	uint64_t cs = x.c[x.ci].offset, ce = x.c[last].offset + x.c[last].len;
	rc = mfs_srcset_read(b->bio->src, rq, cs, ce - cs, cv_sink, &x, oc);
	free(x.buf);
	return rc;
}
