/*
 * bs_format.h - the block store's on-disk record format and the small I/O
 * helpers blockstore.c builds on (see blockstore.c for how puts and gets
 * use them, and why that is crash safe).
 *
 * Per blob, under <root>/blobs/<id[0:2]>/: <id> holds the payloads (block i
 * at i * slot, sparse), <id>.rec the records.
 *
 * Record file (all integers little-endian, written byte by byte so the
 * format does not depend on the host):
 *
 *   header, offset 0:
 *     0   4  magic "MFSX"
 *     4   1  version (2)
 *     5   3  reserved, 0
 *     8   4  slot = the blob's block size (block i's payload is at i * slot
 *            in the data file)
 *    12  12  reserved, 0
 *    24   8  XXH64(bytes 0..23, seed 0)
 *   record of block i, offset 32 * (i + 1); all zero = absent:
 *     0   4  magic "MFSR"
 *     4   1  codec (0 raw, 1 zstd)
 *     5   3  reserved, 0
 *     8   4  raw_len (<= slot)
 *    12   4  stored payload length (= raw_len when raw, < raw_len when zstd)
 *    16   8  XXH64(raw bytes, seed 0)
 *    24   8  XXH64(record bytes 0..23, seed i): a torn record, or one
 *            written at the wrong index, never looks valid
 *
 * It does no locking and keeps no state: every function works on the bytes
 * or the descriptor it is given.
 */
#ifndef MFS_CACHE_BS_FORMAT_H
#define MFS_CACHE_BS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BS_HDR_LEN 32
#define BS_REC_LEN 32
#define BS_VERSION 2
#define BS_CODEC_RAW 0
#define BS_CODEC_ZSTD 1
/* "aa/<64 hex>.rec" plus NUL. */
#define BS_REL_MAX 80

/* One block's record, decoded. */
struct bs_rec {
	int codec;
	uint32_t raw_len, stored;
	uint64_t xxh;
};

void bs_put_le32(uint8_t *p, uint32_t v);
void bs_put_le64(uint8_t *p, uint64_t v);
uint32_t bs_get_le32(const uint8_t *p);
uint64_t bs_get_le64(const uint8_t *p);
int bs_norm_id(const char *id, char out[65]);
bool bs_is_hex_name(const char *s, size_t n);
void bs_rel_data(const char *id, char out[BS_REL_MAX]);
void bs_rel_rec(const char *id, char out[BS_REL_MAX]);
ssize_t bs_pread_most(int fd, void *buf, size_t len, off_t off);
int bs_pwrite_full(int fd, const void *buf, size_t len, off_t off);
void bs_punch(int fd, uint64_t off, uint64_t len);
off_t bs_rec_off(uint32_t idx);
void bs_rec_encode(uint8_t r[BS_REC_LEN], uint32_t idx, const struct bs_rec *v);
/* 1 valid, 0 absent (all zero or past the end), -EBADMSG torn or bogus. */
int bs_rec_decode(const uint8_t r[BS_REC_LEN], uint32_t idx, uint32_t slot,
		  struct bs_rec *v);
void bs_hdr_encode(uint8_t h[BS_HDR_LEN], uint32_t slot);
uint32_t bs_hdr_slot(const uint8_t h[BS_HDR_LEN]);

#endif
