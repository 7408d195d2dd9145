/*
 * blockstore.h - the block cache on disk.
 *
 * A blob (one file's content, named by its content id: sha256 hex for LFS
 * files, git blob sha1 hex otherwise) is cut into fixed-size blocks. Each
 * blob is one sparse data file plus a small record file:
 *
 *     <root>/blobs/<id[0:2]>/<id>       block i's payload at i * block size
 *     <root>/blobs/<id[0:2]>/<id>.rec   one 32-byte record per block
 *
 * A record holds the codec, raw and stored lengths and the XXH64 of the
 * raw bytes (and a checksum of itself). A payload is zstd-compressed when
 * that saves at least 10 % (the rest of its slot stays a hole), raw
 * otherwise, so a fully cached incompressible blob is its content, byte for
 * byte. A put writes the payload first and the record last, so a crash
 * (kill -9 or power cut) never leaves a record describing bytes that were
 * not written completely - and every read verifies the record and the
 * checksum anyway: a bad block is forgotten (record cleared, space freed)
 * and reported as -EBADMSG, never served. No fsync (see blockstore.c).
 *
 * A cache of the previous layout (one file per block under <root>/blocks/)
 * is migrated by mfs_bs_open: every block that verifies is moved over, the
 * rest is dropped (callers refetch what the index lists but get cannot
 * return).
 *
 * It does not know where blocks come from, what the index says about them,
 * or how big the cache may grow: callers (core/) decide; this layer only
 * stores, verifies, lists and deletes. Thread-safe; several processes may
 * share one store (a put and a get of the same block race safely).
 */
#ifndef MFS_CACHE_BLOCKSTORE_H
#define MFS_CACHE_BLOCKSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mfs_bs;

struct mfs_bs_stats {
	uint64_t raw_bytes;     /* uncompressed bytes of the block */
	uint64_t stored_bytes;  /* bytes on disk including its record */
	int codec;              /* 0 = raw, 1 = zstd */
	bool cloned;            /* mfs_bs_put_clone: the payload shares the source's extents */
};

/* Opens (creating if needed) the store under root; migrates an old one. */
int mfs_bs_open(const char *root, struct mfs_bs **out);
void mfs_bs_close(struct mfs_bs *bs);

/* Stores block idx of blob id. block_size is the blob's block size (every
 * block but the last is that long; len <= block_size, else -EINVAL); a blob
 * stored with another block size before is dropped first. `level` is the
 * zstd level (1 is a good default). Compression is tried on a sample first
 * so incompressible data (quantized weights) costs almost nothing. Replaces
 * an existing block. -ENOSPC is passed through unchanged so the caller can
 * evict and retry; -EFBIG when idx * block_size is beyond what the file
 * system allows in one file. */
int mfs_bs_put(struct mfs_bs *bs, const char *id, uint32_t idx, uint32_t block_size,
	       const void *data, size_t len, int level, struct mfs_bs_stats *st);

/* The same for a block whose bytes are also at src_off in the file src_fd
 * (data holds them too, for the checksum): stored raw, sharing the
 * source's extents (FICLONERANGE) when the file systems allow it - same
 * file system, reflink support, aligned offsets - and written like a
 * raw put otherwise; st->cloned says which. */
int mfs_bs_put_clone(struct mfs_bs *bs, const char *id, uint32_t idx, uint32_t block_size,
		     const void *data, size_t len, int src_fd, uint64_t src_off,
		     struct mfs_bs_stats *st);

/* Reads block idx into buf (cap bytes). *len gets the raw length.
 * -ENOENT if absent, -EBADMSG if corrupt (the block is forgotten),
 * -ENOBUFS if cap is too small. */
int mfs_bs_get(struct mfs_bs *bs, const char *id, uint32_t idx,
	       void *buf, size_t cap, size_t *len);

/* Cheap presence test (one 32-byte read of a cached descriptor). */
bool mfs_bs_has(struct mfs_bs *bs, const char *id, uint32_t idx);

/* Removes one block / every block of a blob. Absent is not an error. */
int mfs_bs_drop(struct mfs_bs *bs, const char *id, uint32_t idx);
int mfs_bs_drop_blob(struct mfs_bs *bs, const char *id);

/* Calls cb for every stored block (for rebuilding the index, gc and
 * status); stops early and returns cb's value if it is non-zero. */
typedef int (*mfs_bs_scan_fn)(void *ctx, const char *id, uint32_t idx,
			      uint64_t stored_bytes);
int mfs_bs_scan(struct mfs_bs *bs, mfs_bs_scan_fn cb, void *ctx);

/* Same, limited to one blob. */
int mfs_bs_scan_blob(struct mfs_bs *bs, const char *id, mfs_bs_scan_fn cb, void *ctx);

#endif
