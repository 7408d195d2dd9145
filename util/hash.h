/*
 * hash.h - the digests modelfs checks content with.
 *
 * SHA-256 (LFS files: lfs.oid), SHA-1 in git's blob form (regular files:
 * sha1("blob <size>\0" content)), and XXH64 for per-block checksums in the
 * block cache, where speed matters more than collision resistance against
 * an attacker (blocks are verified end to end by the blob digest anyway).
 */
#ifndef MFS_UTIL_HASH_H
#define MFS_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

struct mfs_sha256 { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t n; };
void mfs_sha256_init(struct mfs_sha256 *c);
void mfs_sha256_update(struct mfs_sha256 *c, const void *data, size_t len);
void mfs_sha256_final(struct mfs_sha256 *c, uint8_t out[32]);

struct mfs_sha1 { uint32_t h[5]; uint64_t len; uint8_t buf[64]; size_t n; };
void mfs_sha1_init(struct mfs_sha1 *c);
void mfs_sha1_update(struct mfs_sha1 *c, const void *data, size_t len);
void mfs_sha1_final(struct mfs_sha1 *c, uint8_t out[20]);

/* Starts a git blob hash: feeds "blob <size>\0". */
void mfs_gitsha1_init(struct mfs_sha1 *c, uint64_t size);

uint64_t mfs_xxh64(const void *data, size_t len, uint64_t seed);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void mfs_hex(const uint8_t *bytes, size_t n, char *out);

/* Value of one hex digit (either case), or -1. */
int mfs_unhex(char c);

#endif
