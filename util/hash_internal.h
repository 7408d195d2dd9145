/*
 * hash_internal.h - block-function entry points of hash.c, exposed only so
 * the unit tests can check the portable and the SHA-NI code paths against
 * each other. Not for use by other modules (use hash.h).
 */
#ifndef MFS_UTIL_HASH_INTERNAL_H
#define MFS_UTIL_HASH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Compresses nblocks 64-byte blocks into state (FIPS 180-4 SHA-256). */
void mfs_sha256_blocks_portable(uint32_t state[8], const uint8_t *p, size_t nblocks);
/* Same with the x86 SHA extensions; only call when mfs_sha256_has_shani(). */
void mfs_sha256_blocks_shani(uint32_t state[8], const uint8_t *p, size_t nblocks);
bool mfs_sha256_has_shani(void);

#endif
