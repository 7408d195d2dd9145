/*
 * chunklist.c - the wire and disk form of a Xet chunk list, as `modelfs
 * serve` answers GET /chunks/<xetHash> and as the cache keeps it:
 *
 *     "MFSXETC1"  u64 LE file size  u32 LE chunk count
 *     count x ( u32 LE chunk length, 32 raw bytes of the chunk hash )
 *
 * Offsets are implicit (chunks are contiguous from 0). Decoding checks the
 * shape only (sizes, count, lengths add up); whether the list belongs to a
 * file is mfs_xet_list_check's job (its merkle root against the xetHash).
 */
#include "xet/xet.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "MFSXETC1"
#define HDR 20u
#define ENT 36u

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int mfs_xet_list_encode(const struct mfs_xet_chunk *c, size_t n, uint64_t size,
			uint8_t **out, size_t *len)
{
	if (n > UINT32_MAX)
		return -EINVAL;
	size_t total = HDR + n * ENT;
	uint8_t *p = malloc(total);
	if (!p)
		return -ENOMEM;
	memcpy(p, MAGIC, 8);
	put32(p + 8, (uint32_t)size);
	put32(p + 12, (uint32_t)(size >> 32));
	put32(p + 16, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		put32(p + HDR + i * ENT, c[i].len);
		memcpy(p + HDR + i * ENT + 4, c[i].hash, 32);
	}
	*out = p;
	*len = total;
	return 0;
}

int mfs_xet_list_decode(const uint8_t *buf, size_t len, struct mfs_xet_chunk **out,
			size_t *n, uint64_t *size)
{
	*out = NULL;
	*n = 0;
	if (len < HDR || memcmp(buf, MAGIC, 8) != 0)
		return -EBADMSG;
	uint64_t sz = (uint64_t)get32(buf + 8) | (uint64_t)get32(buf + 12) << 32;
	uint32_t cnt = get32(buf + 16);
	if ((len - HDR) / ENT != cnt || (len - HDR) % ENT != 0)
		return -EBADMSG;
	struct mfs_xet_chunk *c = calloc(cnt ? cnt : 1, sizeof *c);
	if (!c)
		return -ENOMEM;
	uint64_t off = 0;
	for (uint32_t i = 0; i < cnt; i++) {
		c[i].offset = off;
		c[i].len = get32(buf + HDR + (size_t)i * ENT);
		memcpy(c[i].hash, buf + HDR + (size_t)i * ENT + 4, 32);
		if (c[i].len == 0 || c[i].len > MFS_XET_MAX_CHUNK) {
			free(c);
			return -EBADMSG;
		}
		off += c[i].len;
	}
	if (off != sz) {
		free(c);
		return -EBADMSG;
	}
	*out = c;
	*n = cnt;
	*size = sz;
	return 0;
}

size_t mfs_xet_chunk_at(const struct mfs_xet_chunk *c, size_t n, uint64_t off)
{
	size_t lo = 0, hi = n;
	/* first chunk whose end is beyond off */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c[mid].offset + c[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}
