/*
 * hash.h - the digests modelfs checks content with.
 *
 * SHA-256 (LFS files: lfs.oid), SHA-1 in git's blob form (regular files:
 * sha1("blob <size>\0" content)), and XXH64 for per-block checksums in the
 * block cache, where speed matters more than collision resistance against
 * an attacker (blocks are verified end to end by the blob digest anyway).
 * The digests come from libcrypto (EVP) and libxxhash; this header only
 * gives them modelfs' shape: a blob id picks its digest, errors are -errno.
 */
#ifndef MFS_UTIL_HASH_H
#define MFS_UTIL_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mfs_digest_kind { MFS_SHA256, MFS_SHA1 };

/*
 * A running SHA-256 or SHA-1. Zero-initialise it (MFS_DIGEST_IDLE) before
 * the first start; start on a running digest restarts it; finish and
 * release make it idle again, so a digest embedded in a longer-lived
 * struct costs one release when that struct is freed.
 */
struct mfs_digest {
	void *ctx;      /* EVP_MD_CTX, NULL when idle or after a failure */
	bool failed;    /* an EVP call failed since start: finish reports it */
};
#define MFS_DIGEST_IDLE { NULL, false }

/* 0, or -ENOMEM / -EIO from libcrypto. */
int mfs_digest_start(struct mfs_digest *d, enum mfs_digest_kind kind);
/* Starts a git blob hash: SHA-1 fed "blob <size>\0". */
int mfs_digest_start_gitblob(struct mfs_digest *d, uint64_t size);
/* The digest a blob id names: 64 hex digits = SHA-256 of the bytes (LFS),
 * otherwise the git blob SHA-1 of `size` bytes. */
int mfs_digest_start_for_id(struct mfs_digest *d, const char *id, uint64_t size);
void mfs_digest_update(struct mfs_digest *d, const void *data, size_t len);
/* Writes the digest (32 or 20 bytes) and returns its length, or -EIO if any
 * step failed. The digest is idle afterwards. */
int mfs_digest_finish(struct mfs_digest *d, uint8_t out[32]);
/* Finishes and compares with a hex id (case-insensitive): 1 equal, 0 not,
 * -errno if the digest could not be computed. `hex_out` (65 bytes, may be
 * NULL) receives the lowercase hex of what was computed. */
int mfs_digest_matches_id(struct mfs_digest *d, const char *id, char *hex_out);
/* Frees a running digest without finishing it; no-op when idle. */
void mfs_digest_release(struct mfs_digest *d);

/* One-shot digests of a buffer; 0 or -errno. */
int mfs_sha256(const void *data, size_t len, uint8_t out[32]);
int mfs_sha1(const void *data, size_t len, uint8_t out[20]);

/* XXH64 (libxxhash): block checksums and inode numbers depend on it staying
 * exactly the reference algorithm. */
uint64_t mfs_xxh64(const void *data, size_t len, uint64_t seed);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void mfs_hex(const uint8_t *bytes, size_t n, char *out);

/* Value of one hex digit (either case), or -1. */
int mfs_unhex(char c);

#endif
