/*
 * test_blockstore.c - the on-disk block store: round trips and codec
 * choice (random bytes stay raw, bf16-like weights and text compress), the
 * file format decoded independently, corruption of every kind detected and
 * the file removed, id validation (no path escapes), -ENOBUFS/-ENOENT,
 * concurrent put/get of one block, scan/drop/drop_blob, temp files never
 * visible as blocks, and a throughput report for mfs_bs_get.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/blockstore.h"
#include "util/hash.h"

#define MiB (1024u * 1024u)

static const char *ID1 = "9be78edb0123456789abcdef0123456789abcdef0123456789abcdef01235436";
static const char *ID2 = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
static const char *ID3 = "e6aaaaaabbbbbbbbccccccccddddddddeeeeeeee";

static char root[64];
static struct mfs_bs *bs;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

static void setup(void)
{
	snprintf(root, sizeof(root), "/tmp/mfs-bs-test-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	/* A nested root that does not exist yet: open must create it. */
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/cache/x", root);
	cr_assert_eq(mfs_bs_open(sub, &bs), 0);
}

static void teardown(void)
{
	mfs_bs_close(bs);
	bs = NULL;
	nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void block_file(const char *id, uint32_t idx, char *out, size_t n)
{
	snprintf(out, n, "%s/cache/x/blocks/%.2s/%.2s/%s/%u", root, id, id + 2, id, idx);
}

static uint64_t rng_state = 1;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd();
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

/* Weights like a bf16 checkpoint: N(0, 0.02) floats rounded to bf16. */
static void fill_bf16(uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		double u1 = ((double)(rnd() >> 11) + 1.0) / 9007199254740993.0;
		double u2 = (double)(rnd() >> 11) / 9007199254740992.0;
		float f = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
		uint32_t bits;
		memcpy(&bits, &f, 4);
		bits += 0x7fff + ((bits >> 16) & 1); /* round to nearest even */
		uint16_t h = (uint16_t)(bits >> 16);
		memcpy(p + i, &h, 2);
	}
}

static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)sz + 1);
	cr_assert_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	*n = (size_t)sz;
	return b;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, n, f), n);
	fclose(f);
}

static void roundtrip(const uint8_t *data, size_t len, int want_codec)
{
	struct mfs_bs_stats st = { 0, 0, -1 };
	cr_assert_eq(mfs_bs_put(bs, ID1, 3, data, len, 1, &st), 0);
	cr_assert_eq(st.codec, want_codec, "codec %d for len %zu", st.codec, len);
	cr_assert_eq(st.raw_bytes, len);
	char path[256];
	block_file(ID1, 3, path, sizeof(path));
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq((uint64_t)sb.st_size, st.stored_bytes);
	if (want_codec == 0)
		cr_assert_eq(st.stored_bytes, len + 32);
	else
		cr_assert_leq((st.stored_bytes - 32) * 10, len * 9, "kept only if >= 10%% smaller");
	cr_assert(mfs_bs_has(bs, ID1, 3));
	uint8_t *out = malloc(len + 1);
	size_t got = 0;
	cr_assert_eq(mfs_bs_get(bs, ID1, 3, out, len + 1, &got), 0);
	cr_assert_eq(got, len);
	cr_assert(memcmp(out, data, len) == 0);
	free(out);
}

TestSuite(bs, .init = setup, .fini = teardown);

Test(bs, random_bytes_stored_raw)
{
	size_t len = 4 * MiB;
	uint8_t *d = malloc(len);
	fill_random(d, len);
	roundtrip(d, len, 0);
	free(d);
}

Test(bs, bf16_weights_compressed)
{
	size_t len = 4 * MiB;
	uint8_t *d = malloc(len);
	fill_bf16(d, len);
	roundtrip(d, len, 1);
	free(d);
}

Test(bs, text_and_small_and_empty)
{
	char text[20000];
	size_t n = 0;
	for (int i = 0; n + 64 < sizeof(text); i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"token\":\"t%d\",\"id\":%d},", i, i);
	roundtrip((const uint8_t *)text, n, 1);
	roundtrip((const uint8_t *)"hello", 5, 0);
	/* An empty block is legal (a zero-length tail). */
	struct mfs_bs_stats st;
	uint8_t buf[1];
	size_t got = 99;
	cr_assert_eq(mfs_bs_put(bs, ID2, 0, "", 0, 1, &st), 0);
	cr_assert_eq(st.stored_bytes, 32);
	cr_assert_eq(mfs_bs_get(bs, ID2, 0, buf, 0, &got), 0);
	cr_assert_eq(got, 0);
}

Test(bs, sampling_decides)
{
	size_t len = 2 * MiB;
	uint8_t *d = malloc(len);
	struct mfs_bs_stats st;
	/* Incompressible sample, compressible rest: the sample rules, raw. */
	fill_random(d, 64 * 1024);
	memset(d + 64 * 1024, 0, len - 64 * 1024);
	cr_assert_eq(mfs_bs_put(bs, ID1, 0, d, len, 1, &st), 0);
	cr_assert_eq(st.codec, 0);
	/* Compressible sample, incompressible rest: whole block checked, raw. */
	memset(d, 0, 64 * 1024);
	fill_random(d + 64 * 1024, len - 64 * 1024);
	cr_assert_eq(mfs_bs_put(bs, ID1, 1, d, len, 1, &st), 0);
	cr_assert_eq(st.codec, 0);
	size_t got;
	uint8_t *out = malloc(len);
	cr_assert_eq(mfs_bs_get(bs, ID1, 1, out, len, &got), 0);
	cr_assert(memcmp(out, d, len) == 0);
	free(out);
	free(d);
}

/* Decodes the header with the layout written in blockstore.c's doc block,
 * independently of the implementation. */
Test(bs, file_format)
{
	size_t len = 100000;
	uint8_t *d = malloc(len);
	fill_bf16(d, len);
	struct mfs_bs_stats st;
	cr_assert_eq(mfs_bs_put(bs, ID1, 7, d, len, 3, &st), 0);
	char path[256];
	block_file(ID1, 7, path, sizeof(path));
	size_t n;
	uint8_t *f = read_file(path, &n);
	cr_assert_not_null(f);
	cr_assert(memcmp(f, "MFSB", 4) == 0);
	cr_assert_eq(f[4], 1);
	cr_assert_eq(f[5], 1);
	cr_assert_eq(f[6] | f[7], 0);
	uint32_t raw = (uint32_t)f[8] | (uint32_t)f[9] << 8 | (uint32_t)f[10] << 16 | (uint32_t)f[11] << 24;
	uint32_t stored = (uint32_t)f[12] | (uint32_t)f[13] << 8 | (uint32_t)f[14] << 16 | (uint32_t)f[15] << 24;
	uint64_t h = 0;
	for (int i = 7; i >= 0; i--)
		h = h << 8 | f[16 + i];
	cr_assert_eq(raw, len);
	cr_assert_eq(stored, n - 32);
	cr_assert_eq(h, mfs_xxh64(d, len, 0));
	for (int i = 24; i < 32; i++)
		cr_assert_eq(f[i], 0);
	/* Payload is a standard zstd frame (magic 28 B5 2F FD). */
	cr_assert(memcmp(f + 32, "\x28\xb5\x2f\xfd", 4) == 0);
	/* Block files are private: the cache may hold gated models. */
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 077, 0);
	free(f);
	free(d);
}

static void expect_corrupt_dropped(const char *id, uint32_t idx, size_t cap)
{
	char path[256];
	uint8_t *out = malloc(cap);
	size_t got;
	block_file(id, idx, path, sizeof(path));
	cr_assert_eq(mfs_bs_get(bs, id, idx, out, cap, &got), -EBADMSG);
	cr_assert_neq(access(path, F_OK), 0, "corrupt block must be unlinked");
	cr_assert(!mfs_bs_has(bs, id, idx));
	cr_assert_eq(mfs_bs_get(bs, id, idx, out, cap, &got), -ENOENT);
	free(out);
}

/* Applies `mutate` to the stored file of a fresh block, then expects
 * -EBADMSG and the file gone. */
static void corrupt_case(bool compressible, void (*mutate)(uint8_t *f, size_t *n))
{
	size_t len = 300000, n;
	uint8_t *d = malloc(len);
	struct mfs_bs_stats st;
	char path[256];
	if (compressible)
		fill_bf16(d, len);
	else
		fill_random(d, len);
	cr_assert_eq(mfs_bs_put(bs, ID2, 5, d, len, 1, &st), 0);
	cr_assert_eq(st.codec, compressible ? 1 : 0);
	block_file(ID2, 5, path, sizeof(path));
	uint8_t *f = read_file(path, &n);
	mutate(f, &n);
	write_file(path, f, n);
	free(f);
	expect_corrupt_dropped(ID2, 5, len);
	free(d);
}

static void flip_payload(uint8_t *f, size_t *n) { f[32 + (*n - 32) / 2] ^= 0x10; }
static void flip_last(uint8_t *f, size_t *n) { f[*n - 1] ^= 0x01; }
static void truncate_half(uint8_t *f, size_t *n) { (void)f; *n = 32 + (*n - 32) / 2; }
static void truncate_header(uint8_t *f, size_t *n) { (void)f; *n = 20; }
static void bad_magic(uint8_t *f, size_t *n) { (void)n; f[0] = 'X'; }
static void bad_version(uint8_t *f, size_t *n) { (void)n; f[4] = 2; }
static void bad_codec(uint8_t *f, size_t *n) { (void)n; f[5] = 7; }
static void bad_checksum(uint8_t *f, size_t *n) { (void)n; f[20] ^= 0xff; }
static void raw_len_lies(uint8_t *f, size_t *n) { (void)n; f[8]--; }
static void extra_byte(uint8_t *f, size_t *n) { f[*n] = 0; (*n)++; }

Test(bs, corrupt_payload_raw) { corrupt_case(false, flip_payload); }
Test(bs, corrupt_payload_zstd) { corrupt_case(true, flip_payload); }
Test(bs, corrupt_last_byte_zstd) { corrupt_case(true, flip_last); }
Test(bs, truncated_raw) { corrupt_case(false, truncate_half); }
Test(bs, truncated_zstd) { corrupt_case(true, truncate_half); }
Test(bs, truncated_header) { corrupt_case(false, truncate_header); }
Test(bs, bad_magic) { corrupt_case(false, bad_magic); }
Test(bs, bad_version) { corrupt_case(true, bad_version); }
Test(bs, bad_codec) { corrupt_case(false, bad_codec); }
Test(bs, bad_checksum_raw) { corrupt_case(false, bad_checksum); }
Test(bs, bad_checksum_zstd) { corrupt_case(true, bad_checksum); }
Test(bs, raw_len_lies_raw) { corrupt_case(false, raw_len_lies); }
Test(bs, raw_len_lies_zstd) { corrupt_case(true, raw_len_lies); }
Test(bs, trailing_byte) { corrupt_case(false, extra_byte); }

Test(bs, invalid_ids)
{
	const char *bad[] = {
		"../etc", "", "e69de29bb2d1d6434b8b29ae775ad8c2e48c539",   /* 39 */
		"e69de29bb2d1d6434b8b29ae775ad8c2e48c53910",                 /* 41 */
		"9be78edb0123456789abcdef0123456789abcdef0123456789abcdef012354360", /* 65 */
		"g69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
		"../../../../../../../../../../../../../../etc/passwd0000000",
		"e69de29bb2d1d6434b8b29ae775ad8c2e48c539/",
		"e69de29bb2d1d6434b8b29ae775ad8c2e48c539 ",
	};
	uint8_t buf[16];
	size_t got;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(mfs_bs_put(bs, bad[i], 0, "x", 1, 1, NULL), -EINVAL, "%s", bad[i]);
		cr_assert_eq(mfs_bs_get(bs, bad[i], 0, buf, sizeof(buf), &got), -EINVAL);
		cr_assert_eq(mfs_bs_drop(bs, bad[i], 0), -EINVAL);
		cr_assert_eq(mfs_bs_drop_blob(bs, bad[i]), -EINVAL);
		cr_assert(!mfs_bs_has(bs, bad[i], 0));
	}
	cr_assert_eq(mfs_bs_put(bs, NULL, 0, "x", 1, 1, NULL), -EINVAL);
	/* Upper case names the same blob as lower case. */
	cr_assert_eq(mfs_bs_put(bs, "E69DE29BB2D1D6434B8B29AE775AD8C2E48C5391", 0, "abc", 3, 1, NULL), 0);
	cr_assert_eq(mfs_bs_get(bs, ID2, 0, buf, sizeof(buf), &got), 0);
	cr_assert_eq(got, 3);
}

Test(bs, enobufs_and_enoent)
{
	uint8_t d[1000], out[1000];
	size_t got;
	fill_random(d, sizeof(d));
	cr_assert_eq(mfs_bs_get(bs, ID1, 0, out, sizeof(out), &got), -ENOENT);
	cr_assert_eq(mfs_bs_put(bs, ID1, 0, d, sizeof(d), 1, NULL), 0);
	cr_assert_eq(mfs_bs_get(bs, ID1, 1, out, sizeof(out), &got), -ENOENT);
	cr_assert_eq(mfs_bs_get(bs, ID1, 0, out, sizeof(d) - 1, &got), -ENOBUFS);
	cr_assert(mfs_bs_has(bs, ID1, 0), "too small a buffer is not corruption");
	cr_assert_eq(mfs_bs_get(bs, ID1, 0, out, sizeof(out), &got), 0);
	cr_assert(memcmp(out, d, sizeof(d)) == 0);
}

Test(bs, replace_existing)
{
	uint8_t a[5000], b[3000], out[5000];
	size_t got;
	fill_random(a, sizeof(a));
	memset(b, 'b', sizeof(b));
	cr_assert_eq(mfs_bs_put(bs, ID1, 2, a, sizeof(a), 1, NULL), 0);
	cr_assert_eq(mfs_bs_put(bs, ID1, 2, b, sizeof(b), 1, NULL), 0);
	cr_assert_eq(mfs_bs_get(bs, ID1, 2, out, sizeof(out), &got), 0);
	cr_assert_eq(got, sizeof(b));
	cr_assert(memcmp(out, b, sizeof(b)) == 0);
}

struct conc {
	const uint8_t *a, *b;
	size_t alen, blen;
	int failures;
	int gets_ok;
};

static void *conc_worker(void *arg)
{
	struct conc *c = arg;
	uint8_t *out = malloc(c->alen > c->blen ? c->alen : c->blen);
	for (int i = 0; i < 60; i++) {
		bool use_a = (rnd() & 1) != 0;
		if (mfs_bs_put(bs, ID1, 9, use_a ? c->a : c->b, use_a ? c->alen : c->blen, 1, NULL) != 0)
			__atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
		size_t got = 0;
		int rc = mfs_bs_get(bs, ID1, 9, out, c->alen > c->blen ? c->alen : c->blen, &got);
		if (rc != 0) {
			__atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
			continue;
		}
		bool is_a = got == c->alen && memcmp(out, c->a, got) == 0;
		bool is_b = got == c->blen && memcmp(out, c->b, got) == 0;
		if (!is_a && !is_b)
			__atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
		else
			__atomic_add_fetch(&c->gets_ok, 1, __ATOMIC_RELAXED);
	}
	free(out);
	return NULL;
}

Test(bs, concurrent_put_get_same_block)
{
	struct conc c = { 0 };
	c.alen = 1 * MiB;
	c.blen = 1 * MiB - 4096;
	uint8_t *a = malloc(c.alen), *b = malloc(c.blen);
	fill_random(a, c.alen);   /* stored raw */
	fill_bf16(b, c.blen);     /* stored zstd */
	c.a = a;
	c.b = b;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, conc_worker, &c);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(c.failures, 0);
	cr_assert_eq(c.gets_ok, 240);
	/* No temp file is left behind. */
	char dir[256];
	snprintf(dir, sizeof(dir), "%s/cache/x/blocks/%.2s/%.2s/%s", root, ID1, ID1 + 2, ID1);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "ls -A %s", dir);
	FILE *p = popen(cmd, "r");
	char line[256];
	int n = 0;
	while (fgets(line, sizeof(line), p)) {
		cr_assert_str_eq(line, "9\n");
		n++;
	}
	pclose(p);
	cr_assert_eq(n, 1);
	free(a);
	free(b);
}

struct race {
	const uint8_t *d;
	size_t len;
	int stop;
	int bad;
	int puts;
};

static void *race_putter(void *arg)
{
	struct race *r = arg;
	uint8_t *out = malloc(r->len);
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < 4; i++) {
			if (mfs_bs_put(bs, ID3, i, r->d, r->len, 1, NULL) != 0)
				__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
			size_t got;
			int rc = mfs_bs_get(bs, ID3, i, out, r->len, &got);
			/* Dropped in between is fine; wrong bytes or errors are not. */
			if (rc == -ENOENT)
				continue;
			if (rc != 0 || got != r->len || memcmp(out, r->d, got) != 0)
				__atomic_add_fetch(&r->bad, 1, __ATOMIC_RELAXED);
		}
		__atomic_add_fetch(&r->puts, 4, __ATOMIC_RELAXED);
	}
	free(out);
	return NULL;
}

Test(bs, put_races_drop_blob)
{
	struct race r = { 0 };
	uint8_t *d = malloc(65536);
	fill_bf16(d, 65536);
	r.d = d;
	r.len = 65536;
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, race_putter, &r);
	for (int i = 0; i < 300; i++)
		cr_assert_eq(mfs_bs_drop_blob(bs, ID3), 0);
	/* The putters may not have been scheduled yet on a loaded machine:
	 * keep dropping until they have done some work (bounded). */
	for (int i = 0; i < 10000 && __atomic_load_n(&r.puts, __ATOMIC_ACQUIRE) == 0; i++) {
		cr_assert_eq(mfs_bs_drop_blob(bs, ID3), 0);
		usleep(1000);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(r.bad, 0);
	cr_assert_gt(r.puts, 0);
	free(d);
}

struct seen {
	char id[32][65];
	uint32_t idx[32];
	uint64_t bytes[32];
	int n;
	int stop_after;
};

static int collect(void *ctx, const char *id, uint32_t idx, uint64_t stored)
{
	struct seen *s = ctx;
	cr_assert_lt(s->n, 32);
	snprintf(s->id[s->n], 65, "%s", id);
	s->idx[s->n] = idx;
	s->bytes[s->n] = stored;
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 42 : 0;
}

static bool seen_has(const struct seen *s, const char *id, uint32_t idx, uint64_t bytes)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->id[i], id) == 0 && s->idx[i] == idx && s->bytes[i] == bytes)
			return true;
	return false;
}

Test(bs, scan_lists_exactly_what_was_put)
{
	const char *ids[] = { ID1, ID2, ID3 };
	uint32_t idxs[] = { 0, 1, 10, 4294967295u };
	uint64_t sizes[3][4];
	uint8_t d[4096];
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++) {
			struct mfs_bs_stats st;
			fill_random(d, sizeof(d));
			size_t len = 100 + (size_t)(i * 4 + j) * 50;
			if (j == 1)
				memset(d, 'z', len); /* a compressed one too */
			cr_assert_eq(mfs_bs_put(bs, ids[i], idxs[j], d, len, 1, &st), 0);
			sizes[i][j] = st.stored_bytes;
		}
	/* Noise the scan must ignore: temp files (fresh and stale), a foreign
	 * file, a non-canonical index name, a misplaced blob directory. */
	char path[512];
	snprintf(path, sizeof(path), "%s/cache/x/blocks/%.2s/%.2s/%s/.tmp.3.1.2.3", root, ID1, ID1 + 2, ID1);
	write_file(path, (const uint8_t *)"junk", 4);
	char stale[512];
	snprintf(stale, sizeof(stale), "%s/cache/x/blocks/%.2s/%.2s/%s/.tmp.4.1.2.3", root, ID1, ID1 + 2, ID1);
	write_file(stale, (const uint8_t *)"junk", 4);
	struct timespec old[2] = { { time(NULL) - 7200, 0 }, { time(NULL) - 7200, 0 } };
	cr_assert_eq(utimensat(AT_FDCWD, stale, old, 0), 0);
	snprintf(path, sizeof(path), "%s/cache/x/blocks/%.2s/%.2s/%s/README", root, ID2, ID2 + 2, ID2);
	write_file(path, (const uint8_t *)"x", 1);
	snprintf(path, sizeof(path), "%s/cache/x/blocks/%.2s/%.2s/%s/007", root, ID2, ID2 + 2, ID2);
	write_file(path, (const uint8_t *)"x", 1);
	snprintf(path, sizeof(path), "%s/cache/x/blocks/00/00/%s", root, ID3);
	cr_assert_eq(system(NULL) != 0, 1);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && echo x > %s/0", path, path);
	cr_assert_eq(system(cmd), 0);

	/* A temp file is never visible as a block. */
	cr_assert(!mfs_bs_has(bs, ID1, 3));

	struct seen s = { 0 };
	cr_assert_eq(mfs_bs_scan(bs, collect, &s), 0);
	cr_assert_eq(s.n, 12);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 4; j++)
			cr_assert(seen_has(&s, ids[i], idxs[j], sizes[i][j]), "%s/%u", ids[i], idxs[j]);
	cr_assert_neq(access(stale, F_OK), 0, "stale temp file removed by scan");
	snprintf(path, sizeof(path), "%s/cache/x/blocks/%.2s/%.2s/%s/.tmp.3.1.2.3", root, ID1, ID1 + 2, ID1);
	cr_assert_eq(access(path, F_OK), 0, "fresh temp file (a write in flight) kept");

	struct seen one = { 0 };
	cr_assert_eq(mfs_bs_scan_blob(bs, ID2, collect, &one), 0);
	cr_assert_eq(one.n, 4);
	for (int j = 0; j < 4; j++)
		cr_assert(seen_has(&one, ID2, idxs[j], sizes[1][j]));

	struct seen early = { .stop_after = 5 };
	cr_assert_eq(mfs_bs_scan(bs, collect, &early), 42);
	cr_assert_eq(early.n, 5);

	struct seen none = { 0 };
	cr_assert_eq(mfs_bs_scan_blob(bs, "0000000000000000000000000000000000000000", collect, &none), 0);
	cr_assert_eq(none.n, 0);
}

Test(bs, drop_and_drop_blob)
{
	uint8_t d[2000], out[2000];
	size_t got;
	fill_random(d, sizeof(d));
	for (uint32_t i = 0; i < 5; i++) {
		cr_assert_eq(mfs_bs_put(bs, ID1, i, d, sizeof(d), 1, NULL), 0);
		cr_assert_eq(mfs_bs_put(bs, ID3, i, d, sizeof(d), 1, NULL), 0);
	}
	cr_assert_eq(mfs_bs_drop(bs, ID1, 2), 0);
	cr_assert(!mfs_bs_has(bs, ID1, 2));
	cr_assert_eq(mfs_bs_get(bs, ID1, 2, out, sizeof(out), &got), -ENOENT);
	cr_assert_eq(mfs_bs_drop(bs, ID1, 2), 0, "absent is not an error");
	cr_assert(mfs_bs_has(bs, ID1, 3));

	/* A file the store did not create survives drop_blob. */
	char foreign[512];
	snprintf(foreign, sizeof(foreign), "%s/cache/x/blocks/%.2s/%.2s/%s/notes.txt", root, ID3, ID3 + 2, ID3);
	write_file(foreign, (const uint8_t *)"keep", 4);

	cr_assert_eq(mfs_bs_drop_blob(bs, ID1), 0);
	cr_assert_eq(mfs_bs_drop_blob(bs, ID3), 0);
	for (uint32_t i = 0; i < 5; i++) {
		cr_assert(!mfs_bs_has(bs, ID1, i));
		cr_assert(!mfs_bs_has(bs, ID3, i));
	}
	cr_assert_eq(access(foreign, F_OK), 0);
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/cache/x/blocks/%.2s/%.2s/%s", root, ID1, ID1 + 2, ID1);
	cr_assert_neq(access(dir, F_OK), 0, "blob directory removed");
	cr_assert_eq(mfs_bs_drop_blob(bs, ID1), 0, "absent blob is not an error");
	struct seen s = { 0 };
	cr_assert_eq(mfs_bs_scan(bs, collect, &s), 0);
	cr_assert_eq(s.n, 0);
	/* The blob can be stored again afterwards. */
	cr_assert_eq(mfs_bs_put(bs, ID1, 0, d, sizeof(d), 1, NULL), 0);
	cr_assert_eq(mfs_bs_get(bs, ID1, 0, out, sizeof(out), &got), 0);
}

Test(bs, reopen_sees_blocks)
{
	uint8_t d[777], out[777];
	size_t got;
	fill_random(d, sizeof(d));
	cr_assert_eq(mfs_bs_put(bs, ID2, 1, d, sizeof(d), 1, NULL), 0);
	mfs_bs_close(bs);
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/cache/x", root);
	cr_assert_eq(mfs_bs_open(sub, &bs), 0);
	cr_assert_eq(mfs_bs_get(bs, ID2, 1, out, sizeof(out), &got), 0);
	cr_assert(memcmp(out, d, sizeof(d)) == 0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double get_mbps(uint32_t idx, uint8_t *out, size_t len)
{
	size_t got;
	int iters = 0;
	cr_assert_eq(mfs_bs_get(bs, ID1, idx, out, len, &got), 0); /* warm */
	double t0 = now_s(), t1;
	do {
		cr_assert_eq(mfs_bs_get(bs, ID1, idx, out, len, &got), 0);
		iters++;
		t1 = now_s();
	} while (t1 - t0 < 0.5);
	return (double)len * iters / 1e6 / (t1 - t0);
}

Test(bs, get_throughput_report)
{
	size_t len = 4 * MiB;
	uint8_t *d = malloc(len), *out = malloc(len);
	struct mfs_bs_stats st;
	fill_random(d, len);
	cr_assert_eq(mfs_bs_put(bs, ID1, 0, d, len, 1, &st), 0);
	cr_assert_eq(st.codec, 0);
	fill_bf16(d, len);
	double t0 = now_s();
	cr_assert_eq(mfs_bs_put(bs, ID1, 1, d, len, 1, &st), 0);
	double put_s = now_s() - t0;
	cr_assert_eq(st.codec, 1);
	double raw = get_mbps(0, out, len), z = get_mbps(1, out, len);
	t0 = now_s();
	for (int i = 0; i < 20; i++)
		memcpy(d, out, len);
	double memcpy_mbps = 20.0 * (double)len / 1e6 / (now_s() - t0);
	fprintf(stderr, "mfs_bs_get 4 MiB: raw %.0f MB/s, bf16 zstd %.0f MB/s (ratio %.2f, put %.0f MB/s); memcpy %.0f MB/s\n",
		raw, z, (double)st.stored_bytes / (double)len, (double)len / 1e6 / put_s, memcpy_mbps);
	cr_assert_gt(raw, 100.0);
	free(d);
	free(out);
}
