/*
 * blockstore.h - the block cache on disk.
 *
 * A blob (one file's content, named by its content id: sha256 hex for LFS
 * files, git blob sha1 hex otherwise) is cut into fixed-size blocks; each
 * block is one file:
 *
 *     <root>/blocks/<id[0:2]>/<id[2:4]>/<id>/<block index, decimal>
 *
 * A block file is a 32-byte header (magic "MFSB", version, codec, raw
 * length, stored length, XXH64 of the raw bytes) followed by the payload,
 * zstd-compressed when that saves at least 10 %, raw otherwise. Writes go to
 * a temp name in the same directory and are renamed into place, so a crash
 * never leaves a half block visible. Every read verifies the header and the
 * checksum; a bad block is unlinked and reported as -EBADMSG, never served.
 *
 * It does not know where blocks come from, what the index says about them,
 * or how big the cache may grow: callers (core/) decide; this layer only
 * stores, verifies, lists and deletes. Thread-safe: no shared mutable state
 * beyond the file system itself.
 */
#ifndef MFS_CACHE_BLOCKSTORE_H
#define MFS_CACHE_BLOCKSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mfs_bs;

struct mfs_bs_stats {
	uint64_t raw_bytes;     /* uncompressed bytes of the block */
	uint64_t stored_bytes;  /* bytes on disk including header */
	int codec;              /* 0 = raw, 1 = zstd */
};

/* Opens (creating if needed) the store under root. */
int mfs_bs_open(const char *root, struct mfs_bs **out);
void mfs_bs_close(struct mfs_bs *bs);

/* Stores block idx of blob id. `level` is the zstd level (1 is a good
 * default). Compression is tried on a sample first so incompressible data
 * (quantized weights) costs almost nothing. Replaces an existing block.
 * -ENOSPC is passed through unchanged so the caller can evict and retry. */
int mfs_bs_put(struct mfs_bs *bs, const char *id, uint32_t idx,
	       const void *data, size_t len, int level, struct mfs_bs_stats *st);

/* Reads block idx into buf (cap bytes). *len gets the raw length.
 * -ENOENT if absent, -EBADMSG if corrupt (the file is removed), -ENOBUFS if
 * cap is too small. */
int mfs_bs_get(struct mfs_bs *bs, const char *id, uint32_t idx,
	       void *buf, size_t cap, size_t *len);

/* Cheap presence test (one stat). */
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
