/*
 * hash.c - SHA-256, SHA-1 (plain and git-blob form), XXH64 and hex output.
 *
 * SHA-256 uses the x86 SHA extensions when the CPU has them (checked once
 * with cpuid) because whole-blob verification of multi-GB LFS files is on
 * the prefetch path; otherwise a portable FIPS 180-4 implementation.
 * SHA-1 is portable only: it hashes small git blobs. XXH64 follows the
 * reference algorithm with memcpy little-endian loads (no unaligned UB).
 * It does not do HMAC, streaming XXH64, or any other digest.
 */
#include "util/hash.h"
#include "util/hash_internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define MFS_HAVE_X86 1
#else
#define MFS_HAVE_X86 0
#endif

static inline uint32_t rol32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
static inline uint32_t ror32(uint32_t x, int r) { return (x >> r) | (x << (32 - r)); }
static inline uint64_t rol64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint32_t load_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static inline void store_be64(uint8_t *p, uint64_t v)
{
	store_be32(p, (uint32_t)(v >> 32));
	store_be32(p + 4, (uint32_t)v);
}

static inline uint64_t load_le64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint32_t load_le32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

/* ------------------------------------------------------------------ SHA-256 */

static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Rounds fully unrolled with the eight working variables renamed instead
 * of shifted, and the message schedule kept in a 16-word ring: about twice
 * as fast as the textbook loop at -O2. */
#define S256_CH(e, f, g) ((g) ^ ((e) & ((f) ^ (g))))
#define S256_MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))
#define S256_SIG0(x) (ror32(x, 2) ^ ror32(x, 13) ^ ror32(x, 22))
#define S256_SIG1(x) (ror32(x, 6) ^ ror32(x, 11) ^ ror32(x, 25))
#define S256_sig0(x) (ror32(x, 7) ^ ror32(x, 18) ^ ((x) >> 3))
#define S256_sig1(x) (ror32(x, 17) ^ ror32(x, 19) ^ ((x) >> 10))
#define S256_W(i) (w[(i) & 15] += S256_sig1(w[((i) - 2) & 15]) + w[((i) - 7) & 15] + \
				    S256_sig0(w[((i) - 15) & 15]))
#define S256_R(a, b, c, d, e, f, g, h, i, wi)                                    \
	do {                                                                     \
		uint32_t t1_ = h + S256_SIG1(e) + S256_CH(e, f, g) + K256[i] + (wi); \
		d += t1_;                                                        \
		h = t1_ + S256_SIG0(a) + S256_MAJ(a, b, c);                      \
	} while (0)
#define S256_R8(i, W)                                     \
	S256_R(a, b, c, d, e, f, g, h, (i) + 0, W((i) + 0)); \
	S256_R(h, a, b, c, d, e, f, g, (i) + 1, W((i) + 1)); \
	S256_R(g, h, a, b, c, d, e, f, (i) + 2, W((i) + 2)); \
	S256_R(f, g, h, a, b, c, d, e, (i) + 3, W((i) + 3)); \
	S256_R(e, f, g, h, a, b, c, d, (i) + 4, W((i) + 4)); \
	S256_R(d, e, f, g, h, a, b, c, (i) + 5, W((i) + 5)); \
	S256_R(c, d, e, f, g, h, a, b, (i) + 6, W((i) + 6)); \
	S256_R(b, c, d, e, f, g, h, a, (i) + 7, W((i) + 7))
#define S256_W0(i) (w[i])

void mfs_sha256_blocks_portable(uint32_t state[8], const uint8_t *p, size_t nblocks)
{
	while (nblocks--) {
		uint32_t w[16];
		uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
		uint32_t e = state[4], f = state[5], g = state[6], h = state[7];

		for (int i = 0; i < 16; i++)
			w[i] = load_be32(p + 4 * i);
		S256_R8(0, S256_W0);
		S256_R8(8, S256_W0);
		S256_R8(16, S256_W);
		S256_R8(24, S256_W);
		S256_R8(32, S256_W);
		S256_R8(40, S256_W);
		S256_R8(48, S256_W);
		S256_R8(56, S256_W);
		state[0] += a; state[1] += b; state[2] += c; state[3] += d;
		state[4] += e; state[5] += f; state[6] += g; state[7] += h;
		p += 64;
	}
}

#if MFS_HAVE_X86
/* The usual SHA-NI schedule (Intel's white paper): two rounds per
 * sha256rnds2, message expansion with sha256msg1/msg2 four words at a time. */
#define SHANI_TARGET __attribute__((target("sha,sse4.1,ssse3")))

#define SHANI_ROUNDS(g, M0, M1, M2, M3)                                           \
	do {                                                                      \
		msg = _mm_add_epi32(M0, _mm_loadu_si128((const __m128i *)&K256[4 * (g)])); \
		st1 = _mm_sha256rnds2_epu32(st1, st0, msg);                       \
		if ((g) >= 3 && (g) <= 14) {                                      \
			tmp = _mm_alignr_epi8(M0, M3, 4);                         \
			M1 = _mm_add_epi32(M1, tmp);                              \
			M1 = _mm_sha256msg2_epu32(M1, M0);                        \
		}                                                                 \
		msg = _mm_shuffle_epi32(msg, 0x0E);                               \
		st0 = _mm_sha256rnds2_epu32(st0, st1, msg);                       \
		if ((g) >= 1 && (g) <= 12)                                        \
			M3 = _mm_sha256msg1_epu32(M3, M0);                        \
	} while (0)

SHANI_TARGET
void mfs_sha256_blocks_shani(uint32_t state[8], const uint8_t *p, size_t nblocks)
{
	const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i st0, st1, msg, tmp, m0, m1, m2, m3, abef, cdgh;

	tmp = _mm_loadu_si128((const __m128i *)&state[0]);
	st1 = _mm_loadu_si128((const __m128i *)&state[4]);
	tmp = _mm_shuffle_epi32(tmp, 0xB1);          /* CDAB */
	st1 = _mm_shuffle_epi32(st1, 0x1B);          /* EFGH */
	st0 = _mm_alignr_epi8(tmp, st1, 8);          /* ABEF */
	st1 = _mm_blend_epi16(st1, tmp, 0xF0);       /* CDGH */

	while (nblocks--) {
		abef = st0;
		cdgh = st1;
		m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), mask);
		m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), mask);
		m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), mask);
		m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), mask);
		/* Argument order rotates: (current, next, next+1, previous). */
		SHANI_ROUNDS(0, m0, m1, m2, m3);
		SHANI_ROUNDS(1, m1, m2, m3, m0);
		SHANI_ROUNDS(2, m2, m3, m0, m1);
		SHANI_ROUNDS(3, m3, m0, m1, m2);
		SHANI_ROUNDS(4, m0, m1, m2, m3);
		SHANI_ROUNDS(5, m1, m2, m3, m0);
		SHANI_ROUNDS(6, m2, m3, m0, m1);
		SHANI_ROUNDS(7, m3, m0, m1, m2);
		SHANI_ROUNDS(8, m0, m1, m2, m3);
		SHANI_ROUNDS(9, m1, m2, m3, m0);
		SHANI_ROUNDS(10, m2, m3, m0, m1);
		SHANI_ROUNDS(11, m3, m0, m1, m2);
		SHANI_ROUNDS(12, m0, m1, m2, m3);
		SHANI_ROUNDS(13, m1, m2, m3, m0);
		SHANI_ROUNDS(14, m2, m3, m0, m1);
		SHANI_ROUNDS(15, m3, m0, m1, m2);
		st0 = _mm_add_epi32(st0, abef);
		st1 = _mm_add_epi32(st1, cdgh);
		p += 64;
	}

	tmp = _mm_shuffle_epi32(st0, 0x1B);          /* FEBA */
	st1 = _mm_shuffle_epi32(st1, 0xB1);          /* DCHG */
	st0 = _mm_blend_epi16(tmp, st1, 0xF0);       /* DCBA */
	st1 = _mm_alignr_epi8(st1, tmp, 8);          /* HGFE */
	_mm_storeu_si128((__m128i *)&state[0], st0);
	_mm_storeu_si128((__m128i *)&state[4], st1);
}

/* Written once by pthread_once, read-only afterwards: a CPU property,
 * not mutable state. */
static pthread_once_t shani_once = PTHREAD_ONCE_INIT;
static bool shani_ok;

static void shani_detect(void)
{
	unsigned a, b, c, d;
	bool sse41 = false, ssse3 = false, sha = false;

	if (__get_cpuid(1, &a, &b, &c, &d)) {
		sse41 = (c >> 19) & 1;
		ssse3 = (c >> 9) & 1;
	}
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d))
		sha = (b >> 29) & 1;
	shani_ok = sse41 && ssse3 && sha;
}

bool mfs_sha256_has_shani(void)
{
	pthread_once(&shani_once, shani_detect);
	return shani_ok;
}
#else
void mfs_sha256_blocks_shani(uint32_t state[8], const uint8_t *p, size_t nblocks)
{
	mfs_sha256_blocks_portable(state, p, nblocks);
}

bool mfs_sha256_has_shani(void)
{
	return false;
}
#endif

static void sha256_blocks(uint32_t state[8], const uint8_t *p, size_t nblocks)
{
	if (mfs_sha256_has_shani())
		mfs_sha256_blocks_shani(state, p, nblocks);
	else
		mfs_sha256_blocks_portable(state, p, nblocks);
}

void mfs_sha256_init(struct mfs_sha256 *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
	c->n = 0;
}

void mfs_sha256_update(struct mfs_sha256 *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	c->len += len;
	if (c->n) {
		size_t take = 64 - c->n < len ? 64 - c->n : len;
		memcpy(c->buf + c->n, p, take);
		c->n += take;
		p += take;
		len -= take;
		if (c->n < 64)
			return;
		sha256_blocks(c->h, c->buf, 1);
		c->n = 0;
	}
	if (len >= 64) {
		sha256_blocks(c->h, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	if (len) {
		memcpy(c->buf, p, len);
		c->n = len;
	}
}

void mfs_sha256_final(struct mfs_sha256 *c, uint8_t out[32])
{
	uint64_t bits = c->len * 8;

	c->buf[c->n++] = 0x80;
	if (c->n > 56) {
		memset(c->buf + c->n, 0, 64 - c->n);
		sha256_blocks(c->h, c->buf, 1);
		c->n = 0;
	}
	memset(c->buf + c->n, 0, 56 - c->n);
	store_be64(c->buf + 56, bits);
	sha256_blocks(c->h, c->buf, 1);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, c->h[i]);
}

/* -------------------------------------------------------------------- SHA-1 */

static void sha1_blocks(uint32_t h[5], const uint8_t *p, size_t nblocks)
{
	while (nblocks--) {
		uint32_t w[80];
		uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

		for (int i = 0; i < 16; i++)
			w[i] = load_be32(p + 4 * i);
		for (int i = 16; i < 80; i++)
			w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		for (int i = 0; i < 80; i++) {
			uint32_t f, k;
			if (i < 20) {
				f = (b & c) | (~b & d);
				k = 0x5a827999;
			} else if (i < 40) {
				f = b ^ c ^ d;
				k = 0x6ed9eba1;
			} else if (i < 60) {
				f = (b & c) | (b & d) | (c & d);
				k = 0x8f1bbcdc;
			} else {
				f = b ^ c ^ d;
				k = 0xca62c1d6;
			}
			uint32_t t = rol32(a, 5) + f + e + k + w[i];
			e = d; d = c; c = rol32(b, 30); b = a; a = t;
		}
		h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
		p += 64;
	}
}

void mfs_sha1_init(struct mfs_sha1 *c)
{
	c->h[0] = 0x67452301;
	c->h[1] = 0xefcdab89;
	c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476;
	c->h[4] = 0xc3d2e1f0;
	c->len = 0;
	c->n = 0;
}

void mfs_sha1_update(struct mfs_sha1 *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	c->len += len;
	if (c->n) {
		size_t take = 64 - c->n < len ? 64 - c->n : len;
		memcpy(c->buf + c->n, p, take);
		c->n += take;
		p += take;
		len -= take;
		if (c->n < 64)
			return;
		sha1_blocks(c->h, c->buf, 1);
		c->n = 0;
	}
	if (len >= 64) {
		sha1_blocks(c->h, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	if (len) {
		memcpy(c->buf, p, len);
		c->n = len;
	}
}

void mfs_sha1_final(struct mfs_sha1 *c, uint8_t out[20])
{
	uint64_t bits = c->len * 8;

	c->buf[c->n++] = 0x80;
	if (c->n > 56) {
		memset(c->buf + c->n, 0, 64 - c->n);
		sha1_blocks(c->h, c->buf, 1);
		c->n = 0;
	}
	memset(c->buf + c->n, 0, 56 - c->n);
	store_be64(c->buf + 56, bits);
	sha1_blocks(c->h, c->buf, 1);
	for (int i = 0; i < 5; i++)
		store_be32(out + 4 * i, c->h[i]);
}

void mfs_gitsha1_init(struct mfs_sha1 *c, uint64_t size)
{
	char hdr[32];
	int n = snprintf(hdr, sizeof(hdr), "blob %" PRIu64, size);

	mfs_sha1_init(c);
	/* The header includes its terminating NUL: git hashes "blob N\0". */
	mfs_sha1_update(c, hdr, (size_t)n + 1);
}

/* -------------------------------------------------------------------- XXH64 */

#define XXP1 UINT64_C(0x9E3779B185EBCA87)
#define XXP2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define XXP3 UINT64_C(0x165667B19E3779F9)
#define XXP4 UINT64_C(0x85EBCA77C2B2AE63)
#define XXP5 UINT64_C(0x27D4EB2F165667C5)

static inline uint64_t xxh64_round(uint64_t acc, uint64_t input)
{
	acc += input * XXP2;
	acc = rol64(acc, 31);
	return acc * XXP1;
}

static inline uint64_t xxh64_merge(uint64_t acc, uint64_t val)
{
	acc ^= xxh64_round(0, val);
	return acc * XXP1 + XXP4;
}

uint64_t mfs_xxh64(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	const uint8_t *end = p + len;
	uint64_t h;

	if (len >= 32) {
		const uint8_t *limit = end - 32;
		uint64_t v1 = seed + XXP1 + XXP2;
		uint64_t v2 = seed + XXP2;
		uint64_t v3 = seed;
		uint64_t v4 = seed - XXP1;

		do {
			v1 = xxh64_round(v1, load_le64(p));
			v2 = xxh64_round(v2, load_le64(p + 8));
			v3 = xxh64_round(v3, load_le64(p + 16));
			v4 = xxh64_round(v4, load_le64(p + 24));
			p += 32;
		} while (p <= limit);
		h = rol64(v1, 1) + rol64(v2, 7) + rol64(v3, 12) + rol64(v4, 18);
		h = xxh64_merge(h, v1);
		h = xxh64_merge(h, v2);
		h = xxh64_merge(h, v3);
		h = xxh64_merge(h, v4);
	} else {
		h = seed + XXP5;
	}
	h += (uint64_t)len;

	while (end - p >= 8) {
		h ^= xxh64_round(0, load_le64(p));
		h = rol64(h, 27) * XXP1 + XXP4;
		p += 8;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)load_le32(p) * XXP1;
		h = rol64(h, 23) * XXP2 + XXP3;
		p += 4;
	}
	while (p < end) {
		h ^= (uint64_t)(*p) * XXP5;
		h = rol64(h, 11) * XXP1;
		p++;
	}
	h ^= h >> 33;
	h *= XXP2;
	h ^= h >> 29;
	h *= XXP3;
	h ^= h >> 32;
	return h;
}

int mfs_unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void mfs_hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}
