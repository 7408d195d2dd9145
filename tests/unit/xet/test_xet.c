/*
 * test_xet.c - xet/: merkle and file-hash vectors from xet-core's own tests
 * (merklehash/src/aggregated_hashes.rs), the hash string form, streaming
 * chunking, and chunk-list checks. Bit-exactness against xet-core's chunker
 * on real data is tests/xetref/test_xetref.py (it runs the WASM build).
 */
#include "xet/xet.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct leaf { const char *hash; uint32_t len; };

static size_t mk(const struct leaf *l, size_t n, struct mfs_xet_chunk *out)
{
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(mfs_xet_parse(l[i].hash, out[i].hash), 0);
		out[i].len = l[i].len;
		out[i].offset = off;
		off += l[i].len;
	}
	return n;
}

static void expect_hashes(const struct leaf *l, size_t n, const char *xorb, const char *file)
{
	struct mfs_xet_chunk c[16];
	uint8_t h[32];
	char hex[65];
	mk(l, n, c);
	cr_assert_eq(mfs_xet_merkle_root(c, n, h), 0);
	mfs_xet_hex(h, hex);
	cr_expect_str_eq(hex, xorb, "merkle root of %zu leaves", n);
	cr_assert_eq(mfs_xet_file_hash(c, n, h), 0);
	mfs_xet_hex(h, hex);
	cr_expect_str_eq(hex, file, "file hash of %zu leaves", n);
}

#define H0 "0000000000000000000000000000000000000000000000000000000000000000"
#define HA "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6"
#define HB "c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72"
#define HC "0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37"
#define HD "adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784"

Test(xet, reference_vectors)
{
	expect_hashes(NULL, 0, H0, H0);
	expect_hashes((struct leaf[]){{H0, 0}}, 1, H0,
	              "638a6bc391964a85939d48f008e8bdbae6a7975e7ca2d87a3ce2492f4e4d8a4c");
	/* One leaf: the root is the leaf itself. */
	expect_hashes((struct leaf[]){{HA, 100}}, 1, HA,
	              "8e16257caa3fe079d484d872a8975264b2ff683b0d6db9028cc7c0f968a45661");
	expect_hashes((struct leaf[]){{HA, 100}, {HB, 200}, {HC, 300}}, 3,
	              "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc",
	              "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715");
	expect_hashes((struct leaf[]){{HA, 100}, {HA, 100}, {HA, 100}, {HA, 100}}, 4,
	              "89f2ada89ff8c96763c6b25010e6dd76a4c05b1466207633ea559acf2093211b",
	              "2cdba690d0e09563596e0cda626d43eb4c96ef1e994fe72d9b2f5a83cfcd36dd");
	/* Six leaves: more than one group on the first level. */
	expect_hashes((struct leaf[]){{HA, 100}, {HB, 200}, {HA, 100}, {HB, 200}, {HC, 300}, {HD, 400}}, 6,
	              "52c826f99507aa05d0b45e9837fa1709e0485425cfbcb1e80db3905cf98b3ee9",
	              "91d21684db364c8883ab8209fa5eb2e781cf07f37e1fa43e731c30839afe422f");
}

Test(xet, string_form)
{
	uint8_t b[32], back[32];
	char hex[65];
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	mfs_xet_hex(b, hex);
	/* Each 8-byte group printed as a little-endian u64 (docs/architecture.md, "The hub's HTTP API"). */
	cr_expect_str_eq(hex, "0706050403020100" "0f0e0d0c0b0a0908" "1716151413121110" "1f1e1d1c1b1a1918");
	cr_assert_eq(mfs_xet_parse(hex, back), 0);
	cr_expect_eq(memcmp(b, back, 32), 0);
	cr_expect_eq(mfs_xet_parse("0706050403020100", back), -EINVAL);
	cr_expect_eq(mfs_xet_parse(HA "0", back), -EINVAL);
	char bad[65];
	memcpy(bad, HA, 65);
	bad[10] = 'g';
	cr_expect_eq(mfs_xet_parse(bad, back), -EINVAL);
	cr_expect_eq(mfs_xet_parse(NULL, back), -EINVAL);
}

/* Deterministic bytes (xorshift), so failures reproduce. */
static uint8_t *pseudo(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13; s ^= s >> 7; s ^= s << 17;
		p[i] = (uint8_t)(s >> 24);
	}
	return p;
}

static struct mfs_xet_hasher *hash_pieces(const uint8_t *p, size_t n, size_t piece, uint8_t out[32])
{
	struct mfs_xet_hasher *x = mfs_xet_hasher_new();
	cr_assert(x);
	for (size_t o = 0; o < n; o += piece)
		cr_assert_eq(mfs_xet_hasher_update(x, p + o, n - o < piece ? n - o : piece), 0);
	cr_assert_eq(mfs_xet_hasher_final(x, out), 0);
	return x;
}

Test(xet, streaming_split_invariant)
{
	size_t n = (3u << 20) + 12345;
	uint8_t *p = pseudo(n, 7);
	uint8_t whole[32], h[32];
	struct mfs_xet_hasher *a = hash_pieces(p, n, n, whole);
	size_t na, nb;
	const struct mfs_xet_chunk *ca = mfs_xet_hasher_chunks(a, &na);
	cr_assert_gt(na, 20, "3 MiB of noise is ~48 chunks, got %zu", na);
	uint64_t off = 0;
	for (size_t i = 0; i < na; i++) {
		cr_expect_eq(ca[i].offset, off);
		cr_expect_leq(ca[i].len, MFS_XET_MAX_CHUNK);
		if (i + 1 < na)
			cr_expect_geq(ca[i].len, MFS_XET_MIN_CHUNK);
		off += ca[i].len;
		cr_expect(mfs_xet_chunk_check(&ca[i], p + ca[i].offset, ca[i].len));
	}
	cr_expect_eq(off, n);
	cr_expect_eq(mfs_xet_list_check(ca, na, n, whole), 0);
	size_t pieces[] = {1, 63, 64, 65, 4096, 8191, 8192, 65537, 131072};
	for (size_t k = 0; k < sizeof pieces / sizeof *pieces; k++) {
		size_t piece = pieces[k];
		if (piece == 1)
			n = 600000; /* byte-at-a-time is slow under ASan: a prefix is enough */
		struct mfs_xet_hasher *b = hash_pieces(p, n, piece, h);
		const struct mfs_xet_chunk *cb = mfs_xet_hasher_chunks(b, &nb);
		if (n == (3u << 20) + 12345) {
			cr_expect_eq(nb, na, "piece %zu", piece);
			cr_expect_eq(memcmp(h, whole, 32), 0, "piece %zu", piece);
			cr_expect_eq(memcmp(ca, cb, na * sizeof *ca), 0, "piece %zu", piece);
		} else {
			/* The prefix's chunks are the whole file's, except the last. */
			for (size_t i = 0; i + 1 < nb; i++)
				cr_expect_eq(memcmp(&ca[i], &cb[i], sizeof *ca), 0, "chunk %zu", i);
			n = (3u << 20) + 12345;
		}
		mfs_xet_hasher_free(b);
	}
	mfs_xet_hasher_free(a);
	free(p);
}

Test(xet, constant_bytes_cut_at_max)
{
	/* A run of one byte value never matches the mask: forced MAX cuts. */
	size_t n = 1u << 20;
	uint8_t *z = calloc(1, n);
	uint8_t h[32];
	struct mfs_xet_hasher *x = hash_pieces(z, n, 1000, h);
	size_t nc;
	const struct mfs_xet_chunk *c = mfs_xet_hasher_chunks(x, &nc);
	cr_expect_eq(nc, 8);
	for (size_t i = 0; i < nc; i++)
		cr_expect_eq(c[i].len, MFS_XET_MAX_CHUNK);
	mfs_xet_hasher_free(x);
	free(z);
}

Test(xet, edge_sizes)
{
	size_t sizes[] = {0, 1, 8191, 8192, 8193};
	uint8_t *p = pseudo(8193, 3);
	for (size_t k = 0; k < 5; k++) {
		uint8_t h[32], want[32];
		struct mfs_xet_hasher *x = hash_pieces(p, sizes[k], 100, h);
		size_t nc;
		const struct mfs_xet_chunk *c = mfs_xet_hasher_chunks(x, &nc);
		/* Below MIN + 1 byte the whole file is one chunk (none when empty). */
		cr_expect_eq(nc, sizes[k] ? 1u : 0u, "size %zu", sizes[k]);
		if (nc) {
			mfs_xet_chunk_hash(p, sizes[k], want);
			cr_expect_eq(memcmp(c[0].hash, want, 32), 0);
		}
		cr_expect_eq(mfs_xet_hasher_size(x), sizes[k]);
		mfs_xet_hasher_free(x);
	}
	free(p);
}

Test(xet, list_check_rejects_lies)
{
	size_t n = 2u << 20;
	uint8_t *p = pseudo(n, 11), *q = pseudo(n, 12);
	uint8_t hp[32], hq[32];
	struct mfs_xet_hasher *a = hash_pieces(p, n, n, hp);
	struct mfs_xet_hasher *b = hash_pieces(q, n, n, hq);
	size_t na, nb;
	const struct mfs_xet_chunk *ca = mfs_xet_hasher_chunks(a, &na);
	const struct mfs_xet_chunk *cb = mfs_xet_hasher_chunks(b, &nb);
	struct mfs_xet_chunk *m = malloc(na * sizeof *m);

	cr_expect_eq(mfs_xet_list_check(ca, na, n, hp), 0);
	/* Another file's list. */
	cr_expect_eq(mfs_xet_list_check(cb, nb, n, hp), -EBADMSG);
	/* Truncated list (also the wrong total size). */
	cr_expect_eq(mfs_xet_list_check(ca, na - 1, n, hp), -EBADMSG);
	cr_expect_eq(mfs_xet_list_check(ca, na - 1, n - ca[na - 1].len, hp), -EBADMSG);
	/* One flipped bit in one chunk hash. */
	memcpy(m, ca, na * sizeof *m);
	m[na / 2].hash[5] ^= 0x10;
	cr_expect_eq(mfs_xet_list_check(m, na, n, hp), -EBADMSG);
	/* A shifted boundary. */
	memcpy(m, ca, na * sizeof *m);
	m[1].len += 1;
	m[2].offset += 1;
	m[2].len -= 1;
	cr_expect_eq(mfs_xet_list_check(m, na, n, hp), -EBADMSG);
	/* A flipped data byte fails its chunk. */
	cr_expect(mfs_xet_chunk_check(&ca[3], p + ca[3].offset, ca[3].len));
	p[ca[3].offset + 17] ^= 1;
	cr_expect(!mfs_xet_chunk_check(&ca[3], p + ca[3].offset, ca[3].len));
	cr_expect(!mfs_xet_chunk_check(&ca[3], p + ca[3].offset, ca[3].len - 1));
	free(m);
	free(p);
	free(q);
	mfs_xet_hasher_free(a);
	mfs_xet_hasher_free(b);
}
