/*
 * test_blobio.c - criterion tests of the block layer (core/blobio.h)
 * against a fake source set: one in-memory source behind its own ops table
 * (fetch/source.h mfs_srcset_add), a real block store and index in a temp
 * directory.
 *
 * The fake records every range it is asked for, can hold requests at a
 * gate (so readers pile up on one in-flight block), fail them, or flip a
 * byte. Checked here: concurrent readers of one block share one fetch; a
 * failed fetch errors its readers and returns the blocks to ABSENT (the
 * next read fetches again instead of hanging); a verification mismatch
 * drops the blob's blocks; read-ahead fetches ahead of a sequential reader
 * but not of one re-reading a header or jumping around.
 *
 * Does not test HTTP, FUSE or the kernel's read sizes (tests/integration).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/blockstore.h"
#include "core/blobio.h"
#include "tests/unit/core/ggufgen.h"
#include "fetch/source.h"
#include "index/index.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/repo.h"

#define BSZ 4096u

/* ---- the fake source ------------------------------------------------------ */

struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const uint8_t *data;           /* the blob being served */
	uint64_t size;
	int reads;                     /* calls to read */
	int waiting;                   /* reads held at the gate now */
	bool gate_closed;
	int fail_rc;                   /* != 0: reads fail with it */
	int64_t corrupt_at;            /* >= 0: that byte is flipped */
	int64_t hold_at;               /* >= 0: delivery stops before that byte
					* until it is set to -1 again */
	int held;                      /* deliveries stopped there so far */
	uint64_t bytes;                /* bytes delivered */
	uint64_t log_off[512], log_len[512];
	int nlog;
};

static int fake_read(void *conn, const struct mfs_src_read *rq, uint64_t off, uint64_t len,
		     mfs_sink_fn sink, void *ctx)
{
	struct fake *f = conn;
	uint8_t piece[1024];
	int rc;

	(void)rq;
	pthread_mutex_lock(&f->mu);
	f->reads++;
	if (f->nlog < 512) {
		f->log_off[f->nlog] = off;
		f->log_len[f->nlog] = len;
		f->nlog++;
	}
	f->waiting++;
	pthread_cond_broadcast(&f->cv);
	while (f->gate_closed)
		pthread_cond_wait(&f->cv, &f->mu);
	f->waiting--;
	rc = f->fail_rc;
	pthread_mutex_unlock(&f->mu);
	if (rc)
		return rc;
	for (uint64_t p = off; p < off + len;) {
		size_t n = off + len - p < sizeof(piece) ? (size_t)(off + len - p) : sizeof(piece);
		pthread_mutex_lock(&f->mu);
		if (f->hold_at >= 0 && p >= (uint64_t)f->hold_at) {
			f->held++;
			pthread_cond_broadcast(&f->cv);
			while (f->hold_at >= 0)
				pthread_cond_wait(&f->cv, &f->mu);
		}
		pthread_mutex_unlock(&f->mu);
		memcpy(piece, f->data + p, n);
		if (f->corrupt_at >= 0 && (uint64_t)f->corrupt_at >= p &&
		    (uint64_t)f->corrupt_at < p + n)
			piece[f->corrupt_at - (int64_t)p] ^= 0x5a;
		if (sink(ctx, p, piece, n))
			return -ECANCELED; /* as the hub client does */
		pthread_mutex_lock(&f->mu);
		f->bytes += n;
		pthread_mutex_unlock(&f->mu);
		p += n;
	}
	return 0;
}

static int fake_probe(void *conn, const struct mfs_src_read *rq)
{
	(void)conn;
	(void)rq;
	return 0;
}

/* The hub's kind: these tests are about fetching, and the hub's bytes are
 * served as they arrive; a mirror's would be held until the blob verifies
 * (the trust model, core/blobtrust.c; tests/integration/test_trust.py). */
static const struct mfs_src_ops fake_ops = {
	.kind = MFS_SRC_HUB,
	.read = fake_read,
	.probe = fake_probe,
};
static const struct mfs_src_ops fake_mirror_ops = {
	.kind = MFS_SRC_MIRROR,
	.read = fake_read,
	.probe = fake_probe,
};
/* What start() builds: the hub-kind fake unless a test says otherwise. */
static const struct mfs_src_ops *use_ops = &fake_ops;
static int64_t use_demote_ms = 1;

/* ---- fixture ---------------------------------------------------------------- */

static char dir[64];
static struct mfs_ix *ix;
static struct mfs_bs *bs;
static struct mfs_srcset *set;
static struct mfs_blobio *bio;
static struct fake fk;
static uint8_t *content;
static char content_id[65];
static struct mfs_repo repo;
static int invalid_calls;

static void on_invalid(void *ctx, const char *id)
{
	(void)ctx;
	(void)id;
	__atomic_add_fetch(&invalid_calls, 1, __ATOMIC_SEQ_CST);
}

/* A header to put at the start of the content (NULL: random bytes). */
static const uint8_t *content_head;
static size_t content_head_len;

static void make_content(uint64_t size, unsigned seed)
{
	uint8_t d[32];

	content = malloc(size ? size : 1);
	cr_assert_not_null(content);
	srand(seed);
	for (uint64_t i = 0; i < size; i++)
		content[i] = (uint8_t)(rand() >> 7);
	if (content_head) {
		cr_assert_leq(content_head_len, size);
		memcpy(content, content_head, content_head_len);
	}
	cr_assert_eq(mfs_sha256(content, size, d), 0);
	mfs_hex(d, 32, content_id);
	fk.data = content;
	fk.size = size;
}

static void start(uint64_t size, uint64_t readahead_max)
{
	char p[128];
	struct mfs_srcset_config sc = { .demote_ms = use_demote_ms };
	struct mfs_blobio_config bc = {
		.block_size = BSZ, .fetch_threads = 4, .readahead_max = readahead_max,
		.coalesce_max = 4 * BSZ, .on_invalid = on_invalid,
		.kernel_readahead = -1, /* no kernel here */
	};

	mfs_log_set_level(MFS_LOG_ERROR);
	strcpy(dir, "/tmp/mfs-blobio-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/index.db", dir);
	cr_assert_eq(mfs_ix_open(p, &ix), 0);
	cr_assert_eq(mfs_bs_open(dir, &bs), 0);
	pthread_mutex_init(&fk.mu, NULL);
	pthread_cond_init(&fk.cv, NULL);
	fk.corrupt_at = -1;
	fk.hold_at = -1;
	make_content(size, 42);
	cr_assert_eq(mfs_srcset_new(&sc, NULL, &set), 0);
	cr_assert_eq(mfs_srcset_add(set, use_ops, &fk, "http://fake.invalid"), 0);
	bc.sources = set;
	cr_assert_eq(mfs_blobio_new(&bc, bs, ix, NULL, NULL, &bio), 0);
	repo.type = MFS_REPO_MODEL;
	snprintf(repo.id, sizeof(repo.id), "org/model");
}

/* Stops the fetch threads (queued read-ahead runs first), so the fake's
 * counters are final. */
static void stop_bio(void)
{
	mfs_blobio_free(bio);
	bio = NULL;
}

static void teardown(void)
{
	char cmd[128];

	mfs_blobio_free(bio);
	bio = NULL;
	mfs_srcset_free(set);
	mfs_bs_close(bs);
	mfs_ix_close(ix);
	free(content);
	pthread_mutex_destroy(&fk.mu);
	pthread_cond_destroy(&fk.cv);
	memset(&fk, 0, sizeof(fk));
	invalid_calls = 0;
	use_ops = &fake_ops;
	use_demote_ms = 1;
	content_head = NULL;
	content_head_len = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static struct mfs_blob *open_blob(void)
{
	struct mfs_blob_desc d = {
		.repo = &repo, .commit = "0123456789abcdef0123456789abcdef01234567",
		.path = "model.bin", .content_id = content_id, .size = fk.size, .lfs = true,
	};
	struct mfs_blob *b;

	cr_assert_eq(mfs_blob_open(bio, &d, &b), 0);
	return b;
}

/* ---- reads ------------------------------------------------------------------ */

struct rd {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int err;
	uint8_t buf[16 * BSZ];
	size_t got;
};

static void rd_cb(void *ctx, int err, const struct iovec *iov, int n)
{
	struct rd *r = ctx;

	pthread_mutex_lock(&r->mu);
	r->err = err;
	for (int i = 0; i < n && !err; i++) {
		memcpy(r->buf + r->got, iov[i].iov_base, iov[i].iov_len);
		r->got += iov[i].iov_len;
	}
	r->done = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void rd_init(struct rd *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

/* Waits for the callback; 20 s means "hung". */
static int rd_wait(struct rd *r)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&r->mu);
	while (!r->done && rc == 0)
		rc = pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	pthread_mutex_unlock(&r->mu);
	cr_assert(r->done, "the read hung");
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	return r->err;
}

/* A whole read: returns its error; checks the bytes on success. */
static int read_check(struct mfs_blob *b, uint64_t off, size_t len, struct mfs_readahead *ra)
{
	struct rd *r = malloc(sizeof(*r));
	int err;

	cr_assert_not_null(r);
	rd_init(r);
	mfs_blob_read(b, off, len, ra, rd_cb, r);
	err = rd_wait(r);
	if (err == 0) {
		size_t want = off + len > fk.size ? (size_t)(fk.size - off) : len;
		cr_assert_eq(r->got, want);
		cr_assert(memcmp(r->buf, content + off, want) == 0, "wrong bytes at %llu",
			  (unsigned long long)off);
	}
	free(r);
	return err;
}

static void wait_for(int *field, int want)
{
	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(&fk.mu);
		int v = *field;
		pthread_mutex_unlock(&fk.mu);
		if (v >= want)
			return;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("waited 20 s for the fake source");
}

static void open_gate(void)
{
	pthread_mutex_lock(&fk.mu);
	fk.gate_closed = false;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
}

/* Blocks [first, last] each fetched exactly once, nothing else fetched. */
static void assert_fetched_once(uint32_t first, uint32_t last)
{
	uint32_t n = last + 1;
	int *times = calloc(n + 64, sizeof(int));

	for (int i = 0; i < fk.nlog; i++)
		for (uint64_t o = fk.log_off[i]; o < fk.log_off[i] + fk.log_len[i]; o += BSZ) {
			uint32_t blk = (uint32_t)(o / BSZ);
			cr_assert(blk >= first && blk <= last, "block %u fetched, outside %u-%u",
				  blk, first, last);
			times[blk]++;
		}
	for (uint32_t i = first; i <= last; i++)
		cr_assert_eq(times[i], 1, "block %u fetched %d times", i, times[i]);
	free(times);
}

/* ---- tests ------------------------------------------------------------------ */

struct reader_arg {
	struct mfs_blob *b;
	uint64_t off;
	int err;
};

static void *reader(void *v)
{
	struct reader_arg *a = v;

	a->err = read_check(a->b, a->off, 100, NULL);
	return NULL;
}

Test(blobio, concurrent_readers_of_one_block_share_one_fetch, .fini = teardown)
{
	pthread_t t[8];
	struct reader_arg a[8];
	struct mfs_blobio_stats st;

	start(8 * BSZ, 0);
	struct mfs_blob *b = open_blob();
	fk.gate_closed = true;
	for (int i = 0; i < 8; i++) {
		a[i] = (struct reader_arg){ b, 2 * BSZ + (uint64_t)i * 300, -1 };
		cr_assert_eq(pthread_create(&t[i], NULL, reader, &a[i]), 0);
	}
	/* every reader is waiting on the block and its one fetch is held */
	for (int i = 0; i < 20000; i++) {
		mfs_blobio_stats(bio, &st);
		if (st.reads_waited == 8)
			break;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	cr_assert_eq(st.reads_waited, 8);
	wait_for(&fk.waiting, 1);
	open_gate();
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].err, 0);
	}
	mfs_blob_close(b);
	stop_bio();
	cr_assert_eq(fk.reads, 1, "%d fetches for one block", fk.reads);
	assert_fetched_once(2, 2);
}

Test(blobio, failed_fetch_errors_readers_and_returns_blocks_to_absent, .fini = teardown)
{
	struct rd *r[4];
	struct mfs_blobio_stats st;

	start(8 * BSZ, 0);
	struct mfs_blob *b = open_blob();
	fk.gate_closed = true;
	fk.fail_rc = -ETIMEDOUT;
	for (int i = 0; i < 4; i++) {
		r[i] = malloc(sizeof(*r[i]));
		rd_init(r[i]);
		/* blocks 1-2, shared by all four */
		mfs_blob_read(b, BSZ + 100 + (uint64_t)i * 10, BSZ, NULL, rd_cb, r[i]);
	}
	wait_for(&fk.waiting, 1);
	open_gate();
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(rd_wait(r[i]), -EIO);
		cr_assert_eq(r[i]->got, 0);
		free(r[i]);
	}
	cr_assert_eq(fk.reads, 1, "%d", fk.reads);
	cr_assert_eq(mfs_blob_cached_bytes(b), 0);
	mfs_blobio_stats(bio, &st);
	cr_assert_geq(st.fetch_errors, 1);
	/* A fast failure's first two repeats ask again (the kernel retries a
	 * failed read once by itself)... */
	cr_assert_eq(read_check(b, BSZ + 100, BSZ, NULL), -EIO);
	cr_assert_eq(read_check(b, BSZ + 100, BSZ, NULL), -EIO);
	cr_assert_eq(fk.reads, 3);
	/* ...then, within a second of the last failure, a repeat is held (no
	 * source came back: no DOWN -> UP transition) and fails without
	 * asking anyone - a loader's kernel retry loop must not spin on it... */
	fk.fail_rc = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(read_check(b, BSZ + 100, BSZ, NULL), -EIO);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(fk.reads, 3);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 3, "held about a second, not hung");
	/* ...and after it the blocks are back to ABSENT: a new read fetches
	 * again (INFLIGHT would hang it) */
	struct timespec pause = { 1, 100 * 1000000L };
	nanosleep(&pause, NULL);
	cr_assert_eq(read_check(b, BSZ + 100, BSZ, NULL), 0);
	cr_assert_eq(fk.reads, 4);
	cr_assert_eq(mfs_blob_cached_bytes(b), 2 * BSZ);
	mfs_blob_close(b);
}

Test(blobio, verification_mismatch_drops_the_blocks, .fini = teardown)
{
	start(8 * BSZ, 0);
	struct mfs_blob *b = open_blob();
	fk.corrupt_at = 5 * BSZ + 17;
	/* One read of the whole blob: it is answered when the last block
	 * arrives, before the hasher runs, so nothing refetches meanwhile. */
	struct rd *r = malloc(sizeof(*r));
	rd_init(r);
	mfs_blob_read(b, 0, 8 * BSZ, NULL, rd_cb, r);
	cr_assert_eq(rd_wait(r), 0);
	free(r);
	cr_assert_eq(mfs_blob_verify_wait(b), -EBADMSG);
	cr_assert_eq(mfs_blob_cached_bytes(b), 0);
	cr_assert_eq(mfs_blob_complete(b), false);
	/* on_invalid runs just after the verdict is published */
	wait_for(&invalid_calls, 1);
	/* Exactly one on a quiet machine; a slow (sanitized, loaded) run can
	 * see the liar's 1 ms demotion end and a second corrupt pass fail too
	 * before the fake turns honest below. Either way every pass failed. */
	cr_assert_geq(invalid_calls, 1, "%d", invalid_calls);
	/* A block stored just after the reply (blobfetch.c stores after
	 * answering) is taken back out by its fetch thread: wait for it. */
	for (int t = 0; t < 2000; t++) {
		bool any = false;
		for (uint32_t i = 0; i < 8; i++)
			any |= mfs_bs_has(bs, content_id, i);
		if (!any)
			break;
		struct timespec ts10 = { 0, 10000000 };
		nanosleep(&ts10, NULL);
	}
	for (uint32_t i = 0; i < 8; i++)
		cr_assert(!mfs_bs_has(bs, content_id, i), "block %u still on disk", i);
	struct mfs_blobio_stats st;
	mfs_blobio_stats(bio, &st);
	cr_assert_geq(st.verify_failures, 1);
	/* good bytes again (the fake's demotion lasts 1 ms): fetched anew, verified */
	fk.corrupt_at = -1;
	struct timespec ts = { 0, 20000000 };
	nanosleep(&ts, NULL);
	cr_assert_eq(read_check(b, 0, 8 * BSZ, NULL), 0);
	cr_assert_eq(mfs_blob_verify_wait(b), 1);
	mfs_blob_close(b);
}

Test(blobio, one_block_blob_with_bad_bytes_is_not_served, .fini = teardown)
{
	start(3000, 0);
	struct mfs_blob *b = open_blob();
	fk.corrupt_at = 100;
	cr_assert_neq(read_check(b, 0, 3000, NULL), 0);
	cr_assert_geq(fk.reads, 1);
	cr_assert_eq(mfs_blob_cached_bytes(b), 0);
	cr_assert(!mfs_bs_has(bs, content_id, 0));
	mfs_blob_close(b);
}

Test(blobio, header_rereads_do_not_read_ahead, .fini = teardown)
{
	struct mfs_readahead ra = { 0 };

	start(64 * BSZ, 16 * BSZ);
	struct mfs_blob *b = open_blob();
	/* a parser going back and forth over the first bytes */
	for (int i = 0; i < 8; i++)
		cr_assert_eq(read_check(b, (uint64_t)i * 128, 512, &ra), 0);
	cr_assert_eq(read_check(b, 0, 64, &ra), 0);
	mfs_blob_close(b);
	stop_bio();
	assert_fetched_once(0, 0);
}

Test(blobio, sequential_reader_gets_read_ahead_within_the_cap, .fini = teardown)
{
	struct mfs_readahead ra = { 0 };
	uint32_t max_block = 0;

	start(256 * BSZ, 16 * BSZ);
	struct mfs_blob *b = open_blob();
	for (uint32_t i = 0; i < 32; i++)
		cr_assert_eq(read_check(b, (uint64_t)i * BSZ, BSZ, &ra), 0);
	mfs_blob_close(b);
	stop_bio();
	for (int i = 0; i < fk.nlog; i++) {
		uint32_t last = (uint32_t)((fk.log_off[i] + fk.log_len[i] - 1) / BSZ);
		if (last > max_block)
			max_block = last;
	}
	/* ahead of the reader (it read blocks 0-31), never beyond the cap */
	cr_assert_gt(max_block, 31);
	cr_assert_leq(max_block, 31 + 16);
	assert_fetched_once(0, max_block);
	/* read-ahead came in runs, not one request per block */
	cr_assert_lt(fk.reads, 32);
}

Test(blobio, random_reads_do_not_read_ahead, .fini = teardown)
{
	struct mfs_readahead ra = { 0 };
	static const uint32_t blocks[] = { 40, 3, 77, 12, 100, 60 };

	start(128 * BSZ, 16 * BSZ);
	struct mfs_blob *b = open_blob();
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
		cr_assert_eq(read_check(b, (uint64_t)blocks[i] * BSZ + 100, 1000, &ra), 0);
	mfs_blob_close(b);
	stop_bio();
	cr_assert_eq(fk.bytes, 6 * BSZ);
	cr_assert_eq(fk.reads, 6);
}

/* The trust model (core/blobtrust.c): a mirror's bytes reach no reader
 * before the whole blob verified. */
Test(blobio, mirror_bytes_are_held_until_the_blob_verifies, .fini = teardown)
{
	use_ops = &fake_mirror_ops;
	start(8 * BSZ, 0);
	struct mfs_blob *b = open_blob();
	struct rd *r = malloc(sizeof(*r));
	rd_init(r);
	mfs_blob_read(b, 100, 200, NULL, rd_cb, r);
	cr_assert_eq(rd_wait(r), 0);
	/* answered only after every block came and the blob verified */
	cr_assert_eq(mfs_blob_cached_bytes(b), 8 * BSZ);
	cr_assert_eq(mfs_blob_verify_wait(b), 1);
	cr_assert_eq(r->got, 200);
	cr_assert_eq(memcmp(r->buf, content + 100, 200), 0);
	free(r);
	mfs_blob_close(b);
}

/* A mirror that corrupts block 5 of an 8-block blob and stays demoted
 * (no source left): bytes 0..300 are read; block 0 is honest, but it is
 * not served, because the blob failed whole. Returns the blob, still open. */
static struct mfs_blob *read_head_from_lying_mirror(const struct mfs_blobio_hooks *h)
{
	use_ops = &fake_mirror_ops;
	use_demote_ms = 60000;
	start(8 * BSZ, 0);
	if (h)
		mfs_blobio_set_hooks(bio, h);
	struct mfs_blob *b = open_blob();
	fk.corrupt_at = 5 * BSZ + 17;
	struct rd *r = malloc(sizeof(*r));
	rd_init(r);
	mfs_blob_read(b, 0, 300, NULL, rd_cb, r);
	int rc = rd_wait(r);
	cr_assert_eq(rc, -EIO, "the read ended with %d (%s)", rc, strerror(-rc));
	cr_assert_eq(r->got, 0);
	free(r);
	return b;
}

Test(blobio, a_lying_mirror_never_gets_a_byte_served, .fini = teardown)
{
	struct mfs_blob *b = read_head_from_lying_mirror(NULL);
	cr_assert_eq(mfs_blob_cached_bytes(b), 0);
	mfs_blob_close(b);
	stop_bio(); /* the fake's counters are final */
	cr_assert_geq(fk.bytes, 8 * BSZ, "the corrupt block was fetched");
}

/* The store of a block comes after its readers were answered; a failed
 * hash can drop the blob in between. */
static int stale_stores;

static uint64_t verify_failures_now(void)
{
	struct mfs_blobio_stats st;

	mfs_blobio_stats(bio, &st);
	return st.verify_failures;
}

static void delay_store_of_block0(void *ctx, const char *id, uint32_t idx)
{
	static int once;

	(void)ctx;
	(void)id;
	if (idx != 0 || __atomic_exchange_n(&once, 1, __ATOMIC_SEQ_CST))
		return;
	/* until the other blocks came, the blob failed its hash and was dropped */
	for (int t = 0; t < 1000 && verify_failures_now() == 0; t++) {
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
}

static void note_stale_store(void *ctx, uint64_t stored)
{
	(void)ctx;
	(void)stored;
	/* a block on disk after its blob was rejected: the next fetch takes it */
	if (verify_failures_now() > 0 && mfs_bs_has(bs, content_id, 0))
		__atomic_add_fetch(&stale_stores, 1, __ATOMIC_SEQ_CST);
}

Test(blobio, a_block_stored_after_its_blob_was_rejected_never_reaches_the_disk,
     .fini = teardown)
{
	struct mfs_blobio_hooks h = { .before_store = delay_store_of_block0,
				      .on_stored = note_stale_store };
	stale_stores = 0;
	struct mfs_blob *b = read_head_from_lying_mirror(&h);
	mfs_blob_close(b);
	stop_bio(); /* the delayed store is over */
	cr_assert_eq(stale_stores, 0, "a block of the rejected blob was stored");
	cr_assert(!mfs_bs_has(bs, content_id, 0));
}

/* Highest block the fake was asked for (+1), once the fetch threads stopped. */
static uint32_t fetched_end(void)
{
	uint32_t end = 0;

	for (int i = 0; i < fk.nlog; i++) {
		uint32_t e = (uint32_t)((fk.log_off[i] + fk.log_len[i] + BSZ - 1) / BSZ);
		if (e > end)
			end = e;
	}
	return end;
}

Test(blobio, bounded_sequential_read_fetches_at_most_twice_plus_one_block, .fini = teardown)
{
	struct mfs_readahead ra = { 0 };

	start(256 * BSZ, 64 * BSZ);
	struct mfs_blob *b = open_blob();
	/* 8 blocks in 1 KiB reads, like a bounded `dd` split by the kernel */
	for (uint32_t i = 0; i < 8 * BSZ / 1024; i++)
		cr_assert_eq(read_check(b, (uint64_t)i * 1024, 1024, &ra), 0);
	mfs_blob_close(b);
	stop_bio();
	cr_assert_leq(fk.bytes, 2 * 8 * BSZ + BSZ, "fetched %llu bytes for %u read",
		      (unsigned long long)fk.bytes, 8 * BSZ);
	cr_assert_gt(fetched_end(), 8, "no read-ahead at all");
	assert_fetched_once(0, fetched_end() - 1);
}

/* safetensors: 8-byte length, JSON, data at 8 + length. */
static uint8_t st_head[3 * BSZ + 100];

Test(blobio, safetensors_header_reader_does_not_read_ahead_into_data, .fini = teardown)
{
	struct mfs_readahead ra = { 0 };
	uint64_t hlen = sizeof(st_head) - 8, data = sizeof(st_head);

	memset(st_head, ' ', sizeof(st_head));
	for (int i = 0; i < 8; i++)
		st_head[i] = (uint8_t)(hlen >> (8 * i));
	st_head[8] = '{';
	st_head[sizeof(st_head) - 1] = '}';
	content_head = st_head;
	content_head_len = sizeof(st_head);
	start(256 * BSZ, 64 * BSZ);
	struct mfs_blob *b = open_blob();
	/* the header, 1 KiB at a time: nothing past its last block */
	for (uint64_t o = 0; o < data; o += 1024)
		cr_assert_eq(read_check(b, o, o + 1024 > data ? data - o : 1024, &ra), 0);
	struct mfs_blob *keep = b;
	mfs_blob_close(keep);
	stop_bio();
	cr_assert_eq(fetched_end(), (uint32_t)((data - 1) / BSZ + 1),
		     "header reads fetched up to block %u", fetched_end());
}

Test(blobio, reading_tensor_data_resumes_read_ahead, .fini = teardown)
{
	struct mfs_readahead ra = { 0 };
	uint64_t hlen = sizeof(st_head) - 8, data = sizeof(st_head);

	memset(st_head, ' ', sizeof(st_head));
	for (int i = 0; i < 8; i++)
		st_head[i] = (uint8_t)(hlen >> (8 * i));
	st_head[8] = '{';
	content_head = st_head;
	content_head_len = sizeof(st_head);
	start(256 * BSZ, 64 * BSZ);
	struct mfs_blob *b = open_blob();
	for (uint64_t o = 0; o < data + 16 * BSZ; o += 1024)
		cr_assert_eq(read_check(b, o, 1024, &ra), 0);
	mfs_blob_close(b);
	stop_bio();
	uint32_t read_end = (uint32_t)((data + 16 * BSZ - 1) / BSZ + 1);
	cr_assert_gt(fetched_end(), read_end, "no read-ahead in the tensor data");
}

static uint8_t gg_head[4 * BSZ];

Test(blobio, gguf_header_reader_does_not_read_ahead_into_data, .fini = teardown)
{
	struct mfs_readahead ra = { 0 };
	size_t hl = gguf_head(gg_head, sizeof(gg_head), 400); /* ~10 KiB */
	uint64_t data = (hl + 63) / 64 * 64;

	content_head = gg_head;
	content_head_len = hl;
	start(256 * BSZ, 64 * BSZ);
	struct mfs_blob *b = open_blob();
	for (uint64_t o = 0; o < data; o += 1024)
		cr_assert_eq(read_check(b, o, o + 1024 > data ? data - o : 1024, &ra), 0);
	mfs_blob_close(b);
	stop_bio();
	cr_assert_eq(fetched_end(), (uint32_t)((data - 1) / BSZ + 1),
		     "GGUF header reads (data at %llu) fetched up to block %u",
		     (unsigned long long)data, fetched_end());
}

/* A read inside a block is answered as soon as its own bytes arrived, not
 * when the whole block did (a 4 KiB read on a capped link). */
Test(blobio, read_answered_from_the_part_of_a_block_that_arrived, .fini = teardown)
{
	struct mfs_blobio_stats st;
	struct rd *r = malloc(sizeof(*r));
	bool done = false;

	start(8 * BSZ, 0);
	struct mfs_blob *b = open_blob();
	fk.hold_at = 2 * BSZ + 2048; /* the fetch of block 2 stops half way */
	rd_init(r);
	mfs_blob_read(b, 2 * BSZ + 100, 1000, NULL, rd_cb, r);
	wait_for(&fk.held, 1);
	for (int i = 0; i < 5000 && !done; i++) {
		pthread_mutex_lock(&r->mu);
		done = r->done;
		pthread_mutex_unlock(&r->mu);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&fk.mu);
	fk.hold_at = -1;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
	cr_assert(done, "the read waited for the rest of its block");
	cr_assert_eq(rd_wait(r), 0);
	cr_assert_eq(r->got, 1000);
	cr_assert(memcmp(r->buf, content + 2 * BSZ + 100, 1000) == 0);
	free(r);
	mfs_blobio_stats(bio, &st);
	cr_assert_eq(st.reads_partial, 1);
	/* the block completes as usual and is served whole afterwards */
	cr_assert_eq(read_check(b, 2 * BSZ, BSZ, NULL), 0);
	mfs_blob_close(b);
}
