/*
 * xet.h - Xet content hashing, bit-exact with huggingface/xet-core.
 *
 * A Xet-backed file is cut into content-defined chunks (gearhash CDC,
 * 64 KiB target, 8 KiB min, 128 KiB max); each chunk is hashed with BLAKE3
 * keyed by DATA_KEY; the (hash, length) list is folded into a merkle root
 * (groups of 3..9 nodes cut where hash % 4 == 0, internal nodes are keyed
 * BLAKE3 over "hex : size\n" lines); the file hash (the hub's `xetHash`) is
 * that root hashed once more with BLAKE3 keyed by 32 zero bytes.
 *
 * Hashes are kept as their 32 raw bytes. Their string form (xetHash in tree
 * listings, X-Xet-Hash) prints each 8-byte group as a little-endian u64 in
 * 16 hex digits; mfs_xet_hex/mfs_xet_parse convert.
 *
 * What this does not do: xorb/shard formats, CAS access, compression, the
 * verification (range) hash, dedup. Callers feed bytes; no I/O here.
 */
#ifndef MFS_XET_XET_H
#define MFS_XET_XET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MFS_XET_TARGET_CHUNK (64u * 1024u)
#define MFS_XET_MIN_CHUNK    (8u * 1024u)
#define MFS_XET_MAX_CHUNK    (128u * 1024u)
#define MFS_XET_HASH_LEN     32
#define MFS_XET_HEX_LEN      64

/* One chunk of a file: [offset, offset + len) and its keyed-BLAKE3 hash. */
struct mfs_xet_chunk {
	uint64_t offset;
	uint32_t len;
	uint8_t hash[MFS_XET_HASH_LEN];
};

/* --- content-defined chunking --------------------------------------- */

/* Boundary finder state; streaming-safe (feed any split of the bytes). */
struct mfs_xet_cdc {
	uint64_t h;      /* gear hash of the current chunk's bytes */
	uint32_t size;   /* bytes of the current chunk seen so far */
};

void mfs_xet_cdc_init(struct mfs_xet_cdc *c);

/*
 * Scans data[0..len). Returns how many bytes belong to the current chunk;
 * *cut is true when the chunk ends after them (state reset for the next
 * chunk), false when all len bytes were consumed without a boundary. The
 * end of the file is always a boundary; the caller closes the last chunk.
 */
size_t mfs_xet_cdc_scan(struct mfs_xet_cdc *c, const uint8_t *data, size_t len, bool *cut);

/* --- hashes ---------------------------------------------------------- */

/* Chunk hash: BLAKE3 keyed with DATA_KEY. */
void mfs_xet_chunk_hash(const void *data, size_t len, uint8_t out[MFS_XET_HASH_LEN]);

/* Merkle root over chunks (xet-core's xorb hash); all zeros when n == 0. */
int mfs_xet_merkle_root(const struct mfs_xet_chunk *chunks, size_t n,
                        uint8_t out[MFS_XET_HASH_LEN]);

/*
 * File hash (xetHash): the merkle root rehashed with an all-zero key; all
 * zeros for an empty file (as xet-core). -ENOMEM or 0.
 */
int mfs_xet_file_hash(const struct mfs_xet_chunk *chunks, size_t n,
                      uint8_t out[MFS_XET_HASH_LEN]);

/* String form <-> raw bytes. parse: 0, or -EINVAL unless 64 hex digits. */
void mfs_xet_hex(const uint8_t h[MFS_XET_HASH_LEN], char out[MFS_XET_HEX_LEN + 1]);
int mfs_xet_parse(const char *s, uint8_t out[MFS_XET_HASH_LEN]);

/*
 * Checks a chunk list against a file: offsets contiguous from 0, lengths
 * within the chunker's bounds (the last may be short), total == size, and
 * the file hash of the list equals want. 0, -EBADMSG or -ENOMEM.
 * This proves the list is the file's; each chunk's bytes are checked
 * separately (mfs_xet_chunk_check) as they arrive.
 */
int mfs_xet_list_check(const struct mfs_xet_chunk *chunks, size_t n, uint64_t size,
                       const uint8_t want[MFS_XET_HASH_LEN]);

/* true when data (len == c->len) hashes to c->hash. */
bool mfs_xet_chunk_check(const struct mfs_xet_chunk *c, const void *data, size_t len);

/* --- chunk lists on the wire and on disk (chunklist.c) --------------- */

/*
 * "MFSXETC1", u64 LE size, u32 LE count, count x (u32 LE len, 32-byte
 * hash). encode: *out malloc'd. decode: shape checks only (-EBADMSG), the
 * merkle check is mfs_xet_list_check; *out malloc'd (offsets filled in).
 */
int mfs_xet_list_encode(const struct mfs_xet_chunk *c, size_t n, uint64_t size,
			uint8_t **out, size_t *len);
int mfs_xet_list_decode(const uint8_t *buf, size_t len, struct mfs_xet_chunk **out,
			size_t *n, uint64_t *size);
/* Index of the chunk holding byte off (n when off is past the end). */
size_t mfs_xet_chunk_at(const struct mfs_xet_chunk *c, size_t n, uint64_t off);

/* --- whole-file streaming hasher -------------------------------------- */

struct mfs_xet_hasher;

/* NULL on ENOMEM. */
struct mfs_xet_hasher *mfs_xet_hasher_new(void);
void mfs_xet_hasher_free(struct mfs_xet_hasher *x);
/* Feeds the next bytes of the file. 0 or -ENOMEM. */
int mfs_xet_hasher_update(struct mfs_xet_hasher *x, const void *data, size_t len);
/*
 * Ends the file: closes the last chunk and computes the file hash. The
 * chunk list stays readable through mfs_xet_hasher_chunks until free.
 * 0 or -ENOMEM. Call once.
 */
int mfs_xet_hasher_final(struct mfs_xet_hasher *x, uint8_t out[MFS_XET_HASH_LEN]);
const struct mfs_xet_chunk *mfs_xet_hasher_chunks(const struct mfs_xet_hasher *x, size_t *n);
uint64_t mfs_xet_hasher_size(const struct mfs_xet_hasher *x);

#endif
