/*
 * readreply.c - one FUSE read answered exactly once (see readreply.h).
 */
#include "fs/readreply.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* One read in flight, answered exactly once: by its completion or, when
 * the reader was signalled (FUSE_INTERRUPT; a SIGKILLed loader waits for
 * it), at once with EINTR. libfuse calls the interrupt function with the
 * request's own lock held; the completion clears that function (which
 * takes the same lock) while holding `mu`, and the interrupt function only
 * try-locks `mu`, so neither waits on the other. The completion frees it:
 * after the clear no interrupt call can still be running. */
struct fs_read {
	pthread_mutex_t mu;
	fuse_req_t req;
	bool replied;                  /* protected by mu */
};

static void read_interrupted(fuse_req_t req, void *data)
{
	struct fs_read *r = data;

	if (pthread_mutex_trylock(&r->mu) != 0)
		return; /* the completion is answering right now */
	if (!r->replied) {
		r->replied = true;
		fuse_reply_err(req, EINTR);
	}
	pthread_mutex_unlock(&r->mu);
}

static void read_done(void *ctx, int err, const struct iovec *iov, int iovcnt)
{
	struct fs_read *r = ctx;

	pthread_mutex_lock(&r->mu);
	if (!r->replied) {
		r->replied = true;
		fuse_req_interrupt_func(r->req, NULL, NULL);
		if (err)
			fuse_reply_err(r->req, -err);
		else if (iovcnt == 0)
			fuse_reply_buf(r->req, NULL, 0);
		else
			fuse_reply_iov(r->req, iov, iovcnt);
	}
	pthread_mutex_unlock(&r->mu);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

void mfs_fs_read_blob(fuse_req_t req, struct mfs_blob *b, uint64_t off, size_t size,
		      struct mfs_readahead *ra)
{
	struct fs_read *r = calloc(1, sizeof(*r));

	if (!r) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&r->mu, NULL);
	r->req = req;
	fuse_req_interrupt_func(req, read_interrupted, r);
	mfs_blob_read(b, off, size, ra, read_done, r);
}
