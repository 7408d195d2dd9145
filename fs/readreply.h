/*
 * readreply.h - answering one FUSE read of a blob exactly once: with its
 * bytes when the block layer completes it, or at once with EINTR when the
 * reader was signalled (FUSE_INTERRUPT; a SIGKILLed loader waits for that
 * answer, possibly in the kernel's page-fault retry loop).
 *
 * It does not decide what to read (fs.c) or fetch anything (core/blobio.h).
 */
#ifndef MFS_FS_READREPLY_H
#define MFS_FS_READREPLY_H

#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdint.h>

#include "core/blobio.h"

/* Starts the read of [off, off+size) of b for req; req is answered
 * exactly once, possibly before this returns. */
void mfs_fs_read_blob(fuse_req_t req, struct mfs_blob *b, uint64_t off, size_t size,
		      struct mfs_readahead *ra);

#endif
