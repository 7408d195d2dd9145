/*
 * xethash.c - Xet chunk hashes, merkle root, file hash (xetHash), the
 * string form, chunk-list checks and a streaming whole-file hasher.
 *
 * BLAKE3 is the official C implementation (xet/blake3/, vendored unchanged,
 * with its own SIMD dispatch). The merkle fold follows xet-core's
 * aggregated_hashes.rs: each level is cut into groups that end after the
 * first node (from the third on) whose hash % 4 == 0, at most 9 nodes, or
 * the whole rest when 2 or fewer remain; a group's node is keyed BLAKE3
 * (INTERNAL_NODE_KEY) over "<hex> : <size>\n" per member, its size the sum.
 * It does not chunk (cdc.c) nor do any I/O.
 */
#include "xet/xet.h"

#include "util/hash.h"
#include "xet/blake3/blake3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys from xet-core merklehash/src/data_hash.rs (spec/hashing.md). */
static const uint8_t DATA_KEY[32] = {
	102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28,
	157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41,
};
static const uint8_t INTERNAL_NODE_KEY[32] = {
	1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230,
	93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63,
};
static const uint8_t ZERO_KEY[32];

/* Mean branching factor of the merkle fold; groups hold at most 2*4+1. */
#define MERKLE_BRANCH 4u
#define MERKLE_MAX_GROUP (2u * MERKLE_BRANCH + 1u)

static void keyed(const uint8_t key[32], const void *data, size_t len, uint8_t out[32])
{
	blake3_hasher b;
	blake3_hasher_init_keyed(&b, key);
	blake3_hasher_update(&b, data, len);
	blake3_hasher_finalize(&b, out, 32);
}

void mfs_xet_chunk_hash(const void *data, size_t len, uint8_t out[MFS_XET_HASH_LEN])
{
	keyed(DATA_KEY, data, len, out);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void mfs_xet_hex(const uint8_t h[MFS_XET_HASH_LEN], char out[MFS_XET_HEX_LEN + 1])
{
	for (int g = 0; g < 4; g++)
		snprintf(out + 16 * g, 17, "%016" PRIx64, le64(h + 8 * g));
}

int mfs_xet_parse(const char *s, uint8_t out[MFS_XET_HASH_LEN])
{
	if (!s || strnlen(s, MFS_XET_HEX_LEN + 1) != MFS_XET_HEX_LEN)
		return -EINVAL;
	for (int g = 0; g < 4; g++) {
		uint64_t v = 0;
		for (int k = 0; k < 16; k++) {
			int d = mfs_unhex(s[16 * g + k]);
			if (d < 0)
				return -EINVAL;
			v = (v << 4) | (uint64_t)d;
		}
		for (int k = 0; k < 8; k++)
			out[8 * g + k] = (uint8_t)(v >> (8 * k));
	}
	return 0;
}

/* One node of a merkle level. */
struct node {
	uint8_t hash[32];
	uint64_t size;
};

/* Group length starting at v[0] of n remaining nodes (next_cut in xet-core). */
static size_t next_cut(const struct node *v, size_t n)
{
	if (n <= 2)
		return n;
	size_t end = n < MERKLE_MAX_GROUP ? n : MERKLE_MAX_GROUP;
	for (size_t i = 2; i < end; i++)
		if (le64(v[i].hash + 24) % MERKLE_BRANCH == 0)
			return i + 1;
	return end;
}

static void group_hash(const struct node *v, size_t n, struct node *out)
{
	/* 9 lines of at most 64 + 3 + 20 + 1 bytes. */
	char buf[MERKLE_MAX_GROUP * 88 + 1];
	size_t off = 0;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		char hex[MFS_XET_HEX_LEN + 1];
		mfs_xet_hex(v[i].hash, hex);
		off += (size_t)snprintf(buf + off, sizeof buf - off, "%s : %" PRIu64 "\n", hex, v[i].size);
		total += v[i].size;
	}
	keyed(INTERNAL_NODE_KEY, buf, off, out->hash);
	out->size = total;
}

int mfs_xet_merkle_root(const struct mfs_xet_chunk *chunks, size_t n,
                        uint8_t out[MFS_XET_HASH_LEN])
{
	if (n == 0) {
		memset(out, 0, MFS_XET_HASH_LEN);
		return 0;
	}
	struct node *v = malloc(n * sizeof *v);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		memcpy(v[i].hash, chunks[i].hash, 32);
		v[i].size = chunks[i].len;
	}
	/* Each level is written in place over the one below (w <= r always). */
	while (n > 1) {
		size_t w = 0;
		for (size_t r = 0; r < n;) {
			size_t k = next_cut(v + r, n - r);
			struct node g;
			group_hash(v + r, k, &g);
			v[w++] = g;
			r += k;
		}
		n = w;
	}
	memcpy(out, v[0].hash, MFS_XET_HASH_LEN);
	free(v);
	return 0;
}

int mfs_xet_file_hash(const struct mfs_xet_chunk *chunks, size_t n,
                      uint8_t out[MFS_XET_HASH_LEN])
{
	uint8_t root[32];
	if (n == 0) {
		memset(out, 0, MFS_XET_HASH_LEN);
		return 0;
	}
	int rc = mfs_xet_merkle_root(chunks, n, root);
	if (rc)
		return rc;
	keyed(ZERO_KEY, root, sizeof root, out);
	return 0;
}

bool mfs_xet_chunk_check(const struct mfs_xet_chunk *c, const void *data, size_t len)
{
	uint8_t h[32];
	if (len != c->len)
		return false;
	mfs_xet_chunk_hash(data, len, h);
	return memcmp(h, c->hash, 32) == 0;
}

int mfs_xet_list_check(const struct mfs_xet_chunk *chunks, size_t n, uint64_t size,
                       const uint8_t want[MFS_XET_HASH_LEN])
{
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		if (chunks[i].offset != off || chunks[i].len == 0 || chunks[i].len > MFS_XET_MAX_CHUNK)
			return -EBADMSG;
		/* Only the last chunk may be shorter than MIN. */
		if (i + 1 < n && chunks[i].len < MFS_XET_MIN_CHUNK)
			return -EBADMSG;
		off += chunks[i].len;
	}
	if (off != size)
		return -EBADMSG;
	uint8_t got[32];
	int rc = mfs_xet_file_hash(chunks, n, got);
	if (rc)
		return rc;
	return memcmp(got, want, 32) == 0 ? 0 : -EBADMSG;
}

/* --- streaming hasher ----------------------------------------------- */

struct mfs_xet_hasher {
	struct mfs_xet_cdc cdc;
	blake3_hasher cur;           /* keyed hash of the open chunk */
	uint64_t off;                /* bytes fed so far */
	uint64_t start;              /* offset of the open chunk */
	struct mfs_xet_chunk *chunks;
	size_t n, cap;
};

struct mfs_xet_hasher *mfs_xet_hasher_new(void)
{
	struct mfs_xet_hasher *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	mfs_xet_cdc_init(&x->cdc);
	blake3_hasher_init_keyed(&x->cur, DATA_KEY);
	return x;
}

void mfs_xet_hasher_free(struct mfs_xet_hasher *x)
{
	if (!x)
		return;
	free(x->chunks);
	free(x);
}

static int close_chunk(struct mfs_xet_hasher *x)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 256;
		struct mfs_xet_chunk *c = realloc(x->chunks, cap * sizeof *c);
		if (!c)
			return -ENOMEM;
		x->chunks = c;
		x->cap = cap;
	}
	struct mfs_xet_chunk *c = &x->chunks[x->n++];
	c->offset = x->start;
	c->len = (uint32_t)(x->off - x->start);
	blake3_hasher_finalize(&x->cur, c->hash, 32);
	blake3_hasher_init_keyed(&x->cur, DATA_KEY);
	x->start = x->off;
	return 0;
}

int mfs_xet_hasher_update(struct mfs_xet_hasher *x, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		bool cut;
		size_t k = mfs_xet_cdc_scan(&x->cdc, p, len, &cut);
		blake3_hasher_update(&x->cur, p, k);
		x->off += k;
		p += k;
		len -= k;
		if (cut) {
			int rc = close_chunk(x);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int mfs_xet_hasher_final(struct mfs_xet_hasher *x, uint8_t out[MFS_XET_HASH_LEN])
{
	if (x->off > x->start) {
		int rc = close_chunk(x);
		if (rc)
			return rc;
	}
	return mfs_xet_file_hash(x->chunks, x->n, out);
}

const struct mfs_xet_chunk *mfs_xet_hasher_chunks(const struct mfs_xet_hasher *x, size_t *n)
{
	*n = x->n;
	return x->chunks;
}

uint64_t mfs_xet_hasher_size(const struct mfs_xet_hasher *x)
{
	return x->off;
}
