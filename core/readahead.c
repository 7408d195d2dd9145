/*
 * readahead.c - the block layer's read-ahead: how far ahead of a reader
 * blocks are fetched, per open file (struct mfs_readahead).
 *
 * The model is the kernel's own readahead: a window that doubles when the
 * reader reaches the marked point of the previous window (here: its first
 * block), not per block crossed. Two limits make it follow what the reader
 * demonstrably consumes:
 *   - a stream (reads that start inside it and at most one block past its
 *     furthest byte; FUSE's parallel requests may arrive out of order)
 *     never has more fetched, from its first block on, than twice what it
 *     read plus one block: a reader that stops after N bytes cost at most
 *     2N + 1 block, while a whole-file reader still reaches readahead_max
 *     (a window as large as what it read so far). What the kernel reads
 *     ahead on its own (cfg.kernel_readahead) arrives here as reads but
 *     is not counted as read;
 *   - while the reader is inside the header of a GGUF or safetensors file
 *     (core/fmthdr.h; a stream from the first block of a file whose format
 *     is not known yet counts as inside), read-ahead stops at the header's
 *     end: parsing metadata does not pull tensor data. Reading past the
 *     header (a little overshoot of buffered readers aside) resumes the
 *     normal window.
 * The blocks are queued by blobjob.c at the back of the queue, behind
 * demand reads.
 *
 * It does not fetch or serve bytes.
 */
#include <stdlib.h>

#include "core/blobio_internal.h"

/* Most of a file's prefix parsed for its header (a GGUF header is a few
 * MiB; one that is longer is treated as no model header at all). */
#define HDR_PARSE_MAX (64u << 20)

/* ---- where the header ends ------------------------------------------------ */

static uint32_t hdr_max_blocks(const struct mfs_blob *b)
{
	uint32_t n = HDR_PARSE_MAX / b->bsize;

	return n ? n : 1;
}

bool bio_hdr_due_locked(const struct mfs_blob *b)
{
	return !b->hdr_busy && !b->hdr.done && b->hdr.fmt != MFS_FMT_OTHER &&
	       b->hdr_blocks < b->nblocks && b->hdr_blocks < hdr_max_blocks(b) &&
	       b->state[b->hdr_blocks] == BLK_PRESENT;
}

void bio_hdr_update(struct mfs_blob *b)
{
	struct mfs_blobio *bio = b->bio;
	struct mfs_fmthdr h;
	uint32_t n = 0, got = 0;
	uint8_t *buf = NULL;
	size_t len = 0;

	pthread_mutex_lock(&bio->lock);
	if (!bio_hdr_due_locked(b)) {
		pthread_mutex_unlock(&bio->lock);
		return;
	}
	b->hdr_busy = true;
	while (n < b->nblocks && n < hdr_max_blocks(b) && b->state[n] == BLK_PRESENT)
		n++;
	pthread_mutex_unlock(&bio->lock);
	/* The whole prefix again each time it grows: a header spans a few
	 * blocks, and this ends once it is parsed. */
	buf = malloc((size_t)n * b->bsize);
	for (; buf && got < n; got++) {
		struct dblock *d;
		if (bio_block_load(b, got, &d))
			break;
		memcpy(buf + len, d->data, d->len);
		len += d->len;
		bio_mem_put(bio, d);
	}
	if (buf)
		mfs_fmthdr_parse(buf, len, b->size, &h);
	free(buf);
	pthread_mutex_lock(&bio->lock);
	if (buf && got > 0) {
		b->hdr = h;
		b->hdr_blocks = got;
		if (!h.done && h.fmt != MFS_FMT_OTHER &&
		    (got >= hdr_max_blocks(b) || got >= b->nblocks))
			b->hdr.fmt = MFS_FMT_OTHER; /* no sane end in sight */
	}
	b->hdr_busy = false;
	pthread_mutex_unlock(&bio->lock);
}

/* ---- read-ahead ------------------------------------------------------------- */

/* A buffered header parser reads a little past the header (stdio buffer,
 * the kernel's 128 KiB requests): up to this much (or one block, when
 * smaller) is not touching tensor data. */
#define HDR_OVERSHOOT (256u << 10)

/* How far the kernel's own read-ahead may run ahead of the reader: its
 * next window is asked when the reader reaches the current one, so up to
 * two of read_ahead_kb. */
static uint64_t kernel_ahead(const struct mfs_blob *b)
{
	return 2 * (uint64_t)b->bio->cfg.kernel_readahead;
}

/* How far past the header a header reader may read without counting as
 * reading tensor data: a buffered parser's overshoot (HDR_OVERSHOOT, or a
 * block when smaller) plus the kernel's own read-ahead. */
static uint64_t overshoot(const struct mfs_blob *b)
{
	uint64_t o = b->bsize < HDR_OVERSHOOT ? b->bsize : HDR_OVERSHOOT;

	return o + kernel_ahead(b);
}

/* Blocks read-ahead may reach (exclusive) given the file's format. */
static uint64_t header_cap(const struct mfs_blob *b, const struct mfs_readahead *ra)
{
	const struct mfs_fmthdr *h = &b->hdr;

	switch (h->fmt) {
	case MFS_FMT_OTHER:
		return UINT64_MAX;
	case MFS_FMT_UNKNOWN:
		/* Not parsed yet (block 0 is not here): a reader starting at
		 * the top may be reading a header. */
		return ra->start < b->bsize ? 0 : UINT64_MAX;
	default:
		break;
	}
	if (h->done && ra->hi > h->data_off + overshoot(b))
		return UINT64_MAX; /* in the tensor data: the header rules are over */
	if (!h->done && ra->hi >= h->data_off)
		return 0; /* past what is parsed: wait until more of it is */
	return h->data_off == 0 ? 0 : (h->data_off - 1) / b->bsize + 1;
}

void bio_readahead_locked(struct mfs_blob *b, uint64_t off, uint64_t end,
			  struct mfs_readahead *ra)
{
	struct mfs_blobio *bio = b->bio;
	uint32_t bs = b->bsize;
	uint64_t max_w = bio->cfg.readahead_max / bs;
	uint64_t b1 = (end - 1) / bs, lim, cap, to, want, read, kra, base;

	if (!ra || max_w == 0)
		return;
	if (ra->hi != 0 && off >= ra->start && off <= ra->hi + bs) {
		if (end > ra->hi)
			ra->hi = end;
	} else {
		*ra = (struct mfs_readahead){ .start = off, .hi = end };
	}
	if (ra->issued_until < b1 + 1)
		ra->issued_until = (uint32_t)(b1 + 1);
	/* The mark: nothing new until the reader reaches the last window. */
	if (ra->window && b1 < ra->mark)
		return;
	/* Fetched from the stream's first block: at most 2 x read + 1 block,
	 * where what the kernel asked ahead on its own is not "read". Reading
	 * a model header earns no read-ahead into the tensor data: there, the
	 * stream counts from the data offset. */
	base = ra->start;
	if (b->hdr.done && b->hdr.fmt >= MFS_FMT_GGUF && base < b->hdr.data_off)
		base = b->hdr.data_off;
	read = ra->hi > base ? ra->hi - base : 0;
	kra = kernel_ahead(b);
	read = read > kra ? read - kra : 0;
	lim = ((base / bs) * bs + 2 * read) / bs + 1;
	if (lim > b1 + 1 + max_w)
		lim = b1 + 1 + max_w;
	if (lim > b->nblocks)
		lim = b->nblocks;
	cap = header_cap(b, ra);
	if (lim > cap)
		lim = cap;
	if (lim <= ra->issued_until)
		return;
	want = ra->window ? 2 * (uint64_t)ra->window : lim - ra->issued_until;
	if (want > max_w)
		want = max_w;
	to = ra->issued_until + want;
	if (to > lim)
		to = lim;
	bio_schedule_locked(b, ra->issued_until, (uint32_t)(to - 1), false);
	ra->window = (uint32_t)(to - ra->issued_until);
	ra->mark = ra->issued_until;
	ra->issued_until = (uint32_t)to;
}
