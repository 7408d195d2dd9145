/*
 * readreply.c - one FUSE read answered exactly once (see readreply.h):
 * the request's fs/once.h guard travels as the read's completion context.
 */
#include "fs/readreply.h"

#include <errno.h>

#include "fs/once.h"

static void read_done(void *ctx, int err, const struct iovec *iov, int iovcnt)
{
	struct mfs_once *o = ctx;

	if (mfs_once_claim(o)) {
		fuse_req_t req = mfs_once_req(o);
		if (err)
			fuse_reply_err(req, -err);
		else if (iovcnt == 0)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_iov(req, iov, iovcnt);
	}
	mfs_once_end(o);
}

void mfs_fs_read_blob(fuse_req_t req, struct mfs_blob *b, uint64_t off, size_t size,
		      struct mfs_readahead *ra)
{
	struct mfs_once *o = mfs_once_new(req);

	if (!o) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	mfs_blob_read(b, off, size, ra, read_done, o);
}
