/*
 * test_hash.c - SHA-256, SHA-1, git blob sha1 and XXH64 against published
 * vectors (FIPS 180-4 examples, the LFS pointer form, the xxHash reference
 * values and values the earlier hand-written XXH64 produced, which block
 * headers and inode numbers on disk depend on), against coreutils/git on
 * random data, incremental feeding against one-shot hashing, restart and
 * release of a running digest, and blob-id dispatch. Also prints SHA-256
 * throughput (a report, not a pass/fail bound).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/hash.h"

static void sha256_hex(const void *d, size_t n, char out[65])
{
	struct mfs_digest c = MFS_DIGEST_IDLE;
	uint8_t dg[32];

	cr_assert_eq(mfs_digest_start(&c, MFS_SHA256), 0);
	mfs_digest_update(&c, d, n);
	cr_assert_eq(mfs_digest_finish(&c, dg), 32);
	mfs_hex(dg, 32, out);
}

static void sha1_hex(const void *d, size_t n, char out[41])
{
	struct mfs_digest c = MFS_DIGEST_IDLE;
	uint8_t dg[32];

	cr_assert_eq(mfs_digest_start(&c, MFS_SHA1), 0);
	mfs_digest_update(&c, d, n);
	cr_assert_eq(mfs_digest_finish(&c, dg), 20);
	mfs_hex(dg, 20, out);
}

static void gitsha1_hex(const void *d, size_t n, char out[41])
{
	struct mfs_digest c = MFS_DIGEST_IDLE;
	uint8_t dg[32];

	cr_assert_eq(mfs_digest_start_gitblob(&c, n), 0);
	mfs_digest_update(&c, d, n);
	cr_assert_eq(mfs_digest_finish(&c, dg), 20);
	mfs_hex(dg, 20, out);
}

/* Deterministic pseudo-random bytes (splitmix64). */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed += 0x9E3779B97F4A7C15ULL;
		uint64_t z = seed;
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		p[i] = (uint8_t)(z ^ (z >> 31));
	}
}

/* Runs `cmd` with the data in a temp file; returns the first word of its
 * output (the digest) in out. */
static void external_digest(const char *tool, const void *d, size_t n, char *out, size_t outlen)
{
	char path[] = "/tmp/mfs-hash-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, d, n), (ssize_t)n);
	close(fd);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "%s %s", tool, path);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	char line[256] = "";
	cr_assert(fgets(line, sizeof(line), p));
	pclose(p);
	unlink(path);
	line[strcspn(line, " \n")] = '\0';
	snprintf(out, outlen, "%s", line);
}

Test(hash, sha256_fips_vectors)
{
	char h[65];

	sha256_hex("abc", 3, h);
	cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("", 0, h);
	cr_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha256_hex(m448, strlen(m448), h);
	cr_assert_str_eq(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	struct mfs_digest c = MFS_DIGEST_IDLE;
	uint8_t dg[32], a[1000];
	memset(a, 'a', sizeof(a));
	cr_assert_eq(mfs_digest_start(&c, MFS_SHA256), 0);
	for (int i = 0; i < 1000; i++)
		mfs_digest_update(&c, a, sizeof(a));
	cr_assert_eq(mfs_digest_finish(&c, dg), 32);
	mfs_hex(dg, 32, h);
	cr_assert_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

Test(hash, sha1_fips_vectors)
{
	char h[41];

	sha1_hex("abc", 3, h);
	cr_assert_str_eq(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
	sha1_hex("", 0, h);
	cr_assert_str_eq(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha1_hex(m448, strlen(m448), h);
	cr_assert_str_eq(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");

	struct mfs_digest c = MFS_DIGEST_IDLE;
	uint8_t dg[32], a[1000];
	memset(a, 'a', sizeof(a));
	cr_assert_eq(mfs_digest_start(&c, MFS_SHA1), 0);
	for (int i = 0; i < 1000; i++)
		mfs_digest_update(&c, a, sizeof(a));
	cr_assert_eq(mfs_digest_finish(&c, dg), 20);
	mfs_hex(dg, 20, h);
	cr_assert_str_eq(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

Test(hash, git_blob_vectors)
{
	char h[41];

	gitsha1_hex("", 0, h);
	cr_assert_str_eq(h, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	gitsha1_hex("Hello, World!", 13, h);
	cr_assert_str_eq(h, "b45ef6fec89518d314f546fd6c3025367b721684");
	gitsha1_hex("content", 7, h);
	cr_assert_str_eq(h, "6b584e8ece562ebffc15d38808cd6b98fc3d97ea");
}

/* An LFS entry's oid is the git sha1 of its pointer file,
 * whose length is pointerSize (134 bytes for a 9-digit size). */
Test(hash, lfs_pointer_sha1)
{
	char sha[65], ptr[256], h[41], ext[64];

	sha256_hex("some weights", 12, sha);
	int n = snprintf(ptr, sizeof(ptr),
			 "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %" PRIu64 "\n",
			 sha, (uint64_t)548123560);
	cr_assert_eq(n, 134);
	gitsha1_hex(ptr, (size_t)n, h);
	external_digest("git hash-object --no-filters", ptr, (size_t)n, ext, sizeof(ext));
	cr_assert_str_eq(h, ext);
}

Test(hash, xxh64_reference)
{
	cr_assert_eq(mfs_xxh64("", 0, 0), 0xEF46DB3751D8E999ULL);
	cr_assert_eq(mfs_xxh64("a", 1, 0), 0xD24EC4F1A98C6E5BULL);
	cr_assert_eq(mfs_xxh64("abc", 3, 0), 0x44BC2CF5AD770999ULL);
	/* Different seeds and lengths across the 32-byte stripe boundary must
	 * give different values (catches a seed or tail that is ignored). */
	uint8_t buf[100];
	fill_random(buf, sizeof(buf), 7);
	cr_assert_neq(mfs_xxh64(buf, 40, 0), mfs_xxh64(buf, 40, 1));
	cr_assert_neq(mfs_xxh64(buf, 40, 0), mfs_xxh64(buf, 39, 0));
	buf[37] ^= 1;
	uint64_t a = mfs_xxh64(buf, 40, 0);
	buf[37] ^= 1;
	cr_assert_neq(a, mfs_xxh64(buf, 40, 0));
}

/* Cross-check against python's hashlib-independent reference: xxhash is not
 * in the stdlib, so check against a small independent Python port here. */
Test(hash, xxh64_against_python_port)
{
	static const char *py =
		"import sys\n"
		"M=(1<<64)-1\n"
		"P1,P2,P3,P4,P5=0x9E3779B185EBCA87,0xC2B2AE3D27D4EB4F,0x165667B19E3779F9,0x85EBCA77C2B2AE63,0x27D4EB2F165667C5\n"
		"rl=lambda x,r:((x<<r)|(x>>(64-r)))&M\n"
		"def rnd(a,i): return (rl((a+i*P2)&M,31)*P1)&M\n"
		"def mrg(a,v): return (((a^rnd(0,v))*P1)+P4)&M\n"
		"def xxh(b,s):\n"
		" n=len(b);p=0\n"
		" if n>=32:\n"
		"  v=[(s+P1+P2)&M,(s+P2)&M,s,(s-P1)&M]\n"
		"  while p+32<=n:\n"
		"   for k in range(4): v[k]=rnd(v[k],int.from_bytes(b[p+8*k:p+8*k+8],'little'))\n"
		"   p+=32\n"
		"  h=(rl(v[0],1)+rl(v[1],7)+rl(v[2],12)+rl(v[3],18))&M\n"
		"  for k in range(4): h=mrg(h,v[k])\n"
		" else: h=(s+P5)&M\n"
		" h=(h+n)&M\n"
		" while p+8<=n:\n"
		"  h^=rnd(0,int.from_bytes(b[p:p+8],'little'));h=(rl(h,27)*P1+P4)&M;p+=8\n"
		" if p+4<=n:\n"
		"  h^=(int.from_bytes(b[p:p+4],'little')*P1)&M;h=(rl(h,23)*P2+P3)&M;p+=4\n"
		" while p<n:\n"
		"  h^=(b[p]*P5)&M;h=(rl(h,11)*P1)&M;p+=1\n"
		" h^=h>>33;h=(h*P2)&M;h^=h>>29;h=(h*P3)&M;h^=h>>32\n"
		" return h\n"
		"d=open(sys.argv[1],'rb').read()\n"
		"assert xxh(b'',0)==0xEF46DB3751D8E999\n"
		"print('%016x'%xxh(d,12345))\n";
	char script[] = "/tmp/mfs-xxh-XXXXXX";
	int fd = mkstemp(script);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, py, strlen(py)), (ssize_t)strlen(py));
	close(fd);
	uint8_t buf[1037];
	fill_random(buf, sizeof(buf), 99);
	char cmd[128], ext[64], mine[32];
	snprintf(cmd, sizeof(cmd), "python3 %s", script);
	external_digest(cmd, buf, sizeof(buf), ext, sizeof(ext));
	unlink(script);
	snprintf(mine, sizeof(mine), "%016" PRIx64, mfs_xxh64(buf, sizeof(buf), 12345));
	cr_assert_str_eq(mine, ext);
}

Test(hash, random_data_matches_coreutils_and_git)
{
	size_t sizes[] = { 1, 55, 56, 63, 64, 65, 119, 120, 1000, 65536 + 17, 1 << 20 };
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		uint8_t *d = malloc(n);
		char mine[65], ext[128];
		fill_random(d, n, n);
		sha256_hex(d, n, mine);
		external_digest("sha256sum", d, n, ext, sizeof(ext));
		cr_assert_str_eq(mine, ext, "sha256 size %zu", n);
		sha1_hex(d, n, mine);
		external_digest("sha1sum", d, n, ext, sizeof(ext));
		cr_assert_str_eq(mine, ext, "sha1 size %zu", n);
		gitsha1_hex(d, n, mine);
		external_digest("git hash-object --no-filters", d, n, ext, sizeof(ext));
		cr_assert_str_eq(mine, ext, "git sha1 size %zu", n);
		free(d);
	}
}

Test(hash, incremental_equals_oneshot)
{
	size_t n = 300000;
	uint8_t *d = malloc(n);
	uint8_t one256[32], one1[32], inc256[32], inc1[32];
	struct mfs_digest c = MFS_DIGEST_IDLE, c1 = MFS_DIGEST_IDLE;

	fill_random(d, n, 1);
	cr_assert_eq(mfs_sha256(d, n, one256), 0);
	cr_assert_eq(mfs_sha1(d, n, one1), 0);

	srand(42);
	for (int trial = 0; trial < 50; trial++) {
		/* Half the trials restart a digest that is still running, as
		 * verification does after bad data: nothing of the abandoned
		 * run may leak into the result. */
		if (trial % 2) {
			cr_assert_eq(mfs_digest_start(&c, MFS_SHA256), 0);
			mfs_digest_update(&c, "junk", 4);
			cr_assert_eq(mfs_digest_start(&c1, MFS_SHA1), 0);
			mfs_digest_update(&c1, "junk", 4);
		}
		cr_assert_eq(mfs_digest_start(&c, MFS_SHA256), 0);
		cr_assert_eq(mfs_digest_start(&c1, MFS_SHA1), 0);
		size_t off = 0;
		while (off < n) {
			size_t step = (size_t)rand() % (trial < 25 ? 130 : 70000);
			if (step > n - off)
				step = n - off;
			mfs_digest_update(&c, d + off, step);
			mfs_digest_update(&c1, d + off, step);
			off += step;
		}
		cr_assert_eq(mfs_digest_finish(&c, inc256), 32);
		cr_assert_eq(mfs_digest_finish(&c1, inc1), 20);
		cr_assert_null(c.ctx);
		cr_assert(memcmp(one256, inc256, 32) == 0, "trial %d", trial);
		cr_assert(memcmp(one1, inc1, 20) == 0, "trial %d", trial);
	}
	/* A released running digest is idle; releasing twice is harmless
	 * (the sanitizer build checks nothing leaks). */
	cr_assert_eq(mfs_digest_start(&c, MFS_SHA256), 0);
	mfs_digest_release(&c);
	mfs_digest_release(&c);
	cr_assert_null(c.ctx);
	/* Finishing an idle digest is an error, not a crash. */
	cr_assert_eq(mfs_digest_finish(&c, inc256), -EIO);
	free(d);
}

/* A blob id picks its digest: 64 hex digits are SHA-256 of the content,
 * 40 are git's blob SHA-1; comparison ignores hex case. */
Test(hash, digest_for_blob_id)
{
	static const char lfs[] = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
	static const char git[] = "b45ef6fec89518d314f546fd6c3025367b721684";
	struct mfs_digest d = MFS_DIGEST_IDLE;
	char hex[65];

	cr_assert_eq(mfs_digest_start_for_id(&d, lfs, 3), 0);
	mfs_digest_update(&d, "abc", 3);
	cr_assert_eq(mfs_digest_matches_id(&d, lfs, hex), 1);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	cr_assert_eq(mfs_digest_start_for_id(&d, git, 13), 0);
	mfs_digest_update(&d, "Hello, World!", 13);
	cr_assert_eq(mfs_digest_matches_id(&d, git, NULL), 1);

	cr_assert_eq(mfs_digest_start_for_id(&d, git, 13), 0);
	mfs_digest_update(&d, "Hello, World?", 13);
	cr_assert_eq(mfs_digest_matches_id(&d, git, hex), 0);
	cr_assert_str_neq(hex, git);
	cr_assert_null(d.ctx);
}

/* Values the hand-written XXH64 modelfs shipped before libxxhash produced.
 * Block headers on disk carry XXH64 checksums and inode numbers are XXH64
 * of names, so these must never change. */
Test(hash, xxh64_matches_earlier_releases)
{
	static uint8_t buf[300];
	static const uint64_t seeds[3] = { 0, 0x6d6673ull, 0x6d6f64656c6673ull };
	uint64_t fold = 0;

	for (int i = 0; i < 300; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	/* every length across the 4/8/32-byte stripe tails, every seed in use */
	for (int s = 0; s < 3; s++)
		for (size_t n = 0; n <= 300; n++)
			fold = fold * 0x100000001B3ull ^ mfs_xxh64(buf, n, seeds[s]);
	cr_assert_eq(fold, 0xa2815edbb4626ce7ull);
	cr_assert_eq(mfs_xxh64(buf, 100, 0), 0xa61f8d4c170fe531ull);
	cr_assert_eq(mfs_xxh64(buf, 37, 0), 0xe32ef63802f5a3fdull);
	cr_assert_eq(mfs_xxh64("config.json", 11, 0x6d6f64656c6673ull), 0x1c1c2863ef64c2a7ull);
	cr_assert_eq(mfs_xxh64("models/org/name", 15, 0x6d6673ull), 0xbf3ad5b94075e4b2ull);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A report, not a bound: throughput depends on the machine and its load. */
Test(hash, throughput_report)
{
	size_t n = 64u << 20;
	uint8_t *d = malloc(n), dg[32];
	fill_random(d, 4096, 3);
	for (size_t i = 4096; i < n; i += 4096)
		memcpy(d + i, d, 4096);
	double t0 = now_s();
	cr_assert_eq(mfs_sha256(d, n, dg), 0);
	double t1 = now_s();
	volatile uint64_t x = mfs_xxh64(d, n, 0);
	double t2 = now_s();
	(void)x;
	fprintf(stderr, "sha256 %.0f MB/s, xxh64 %.0f MB/s\n",
		n / 1e6 / (t1 - t0), n / 1e6 / (t2 - t1));
	free(d);
}
