/*
 * bs_format.c - encodes and decodes the block store's records and header,
 * names its files, and wraps pread/pwrite/hole punching (see bs_format.h).
 */
#include "cache/bs_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/hash.h"

void bs_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void bs_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t bs_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

uint64_t bs_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Copies a valid id (40 or 64 hex digits, any case) as lowercase into out
 * (65 bytes); -EINVAL otherwise. This is what keeps every path under root:
 * nothing but hex ever reaches a file name. */
int bs_norm_id(const char *id, char out[65])
{
	size_t n = 0;

	if (!id)
		return -EINVAL;
	while (n < 65 && id[n]) {
		char c = id[n];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
		out[n++] = c;
	}
	if (n != 40 && n != 64)
		return -EINVAL;
	out[n] = '\0';
	return 0;
}

bool bs_is_hex_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

void bs_rel_data(const char *id, char out[BS_REL_MAX])
{
	snprintf(out, BS_REL_MAX, "%.2s/%s", id, id);
}

void bs_rel_rec(const char *id, char out[BS_REL_MAX])
{
	snprintf(out, BS_REL_MAX, "%.2s/%s.rec", id, id);
}

/* Reads up to len bytes; returns the count read (short only at EOF). */
ssize_t bs_pread_most(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, off + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

int bs_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

void bs_punch(int fd, uint64_t off, uint64_t len)
{
	/* Frees the space; a file system without hole punching keeps the
	 * stale bytes, which no record points at. */
	if (len)
		(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)off, (off_t)len);
}

off_t bs_rec_off(uint32_t idx)
{
	return (off_t)BS_HDR_LEN + (off_t)idx * BS_REC_LEN;
}

void bs_rec_encode(uint8_t r[BS_REC_LEN], uint32_t idx, const struct bs_rec *v)
{
	memset(r, 0, BS_REC_LEN);
	memcpy(r, "MFSR", 4);
	r[4] = (uint8_t)v->codec;
	bs_put_le32(r + 8, v->raw_len);
	bs_put_le32(r + 12, v->stored);
	bs_put_le64(r + 16, v->xxh);
	bs_put_le64(r + 24, mfs_xxh64(r, 24, idx));
}

/* 1 valid, 0 absent (all zero or past the end), -EBADMSG torn or bogus. */
int bs_rec_decode(const uint8_t r[BS_REC_LEN], uint32_t idx, uint32_t slot,
		  struct bs_rec *v)
{
	static const uint8_t zero[BS_REC_LEN];

	if (memcmp(r, zero, BS_REC_LEN) == 0)
		return 0;
	if (memcmp(r, "MFSR", 4) != 0 || r[5] || r[6] || r[7] ||
	    bs_get_le64(r + 24) != mfs_xxh64(r, 24, idx))
		return -EBADMSG;
	v->codec = r[4];
	v->raw_len = bs_get_le32(r + 8);
	v->stored = bs_get_le32(r + 12);
	v->xxh = bs_get_le64(r + 16);
	if (v->raw_len > slot)
		return -EBADMSG;
	if (v->codec == BS_CODEC_RAW ? v->stored != v->raw_len
	    : v->codec != BS_CODEC_ZSTD || v->stored >= v->raw_len)
		return -EBADMSG;
	return 1;
}


void bs_hdr_encode(uint8_t h[BS_HDR_LEN], uint32_t slot)
{
	memset(h, 0, BS_HDR_LEN);
	memcpy(h, "MFSX", 4);
	h[4] = BS_VERSION;
	bs_put_le32(h + 8, slot);
	bs_put_le64(h + 24, mfs_xxh64(h, 24, 0));
}

/* The slot size of a valid header; 0 if it is not one. */
uint32_t bs_hdr_slot(const uint8_t h[BS_HDR_LEN])
{
	static const uint8_t zero[16];

	if (memcmp(h, "MFSX", 4) != 0 || h[4] != BS_VERSION || h[5] || h[6] || h[7] ||
	    memcmp(h + 12, zero, 12) != 0 || bs_get_le64(h + 24) != mfs_xxh64(h, 24, 0))
		return 0;
	return bs_get_le32(h + 8);
}
