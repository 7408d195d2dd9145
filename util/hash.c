/*
 * hash.c - SHA-256 and SHA-1 through libcrypto's EVP interface, XXH64
 * through libxxhash, and hex output.
 *
 * libcrypto picks the fastest code path for the CPU (SHA-NI, AVX2, ARMv8
 * crypto extensions) at run time, which matters because whole-blob
 * verification of multi-GB LFS files is on the prefetch path. This file
 * does not implement any digest itself; it maps EVP's return codes to
 * -errno, frees contexts on every path, and chooses the digest a blob id
 * names. No HMAC, no streaming XXH64.
 */
#include "util/hash.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <xxhash.h>

void mfs_digest_release(struct mfs_digest *d)
{
	EVP_MD_CTX_free(d->ctx);
	d->ctx = NULL;
	d->failed = false;
}

int mfs_digest_start(struct mfs_digest *d, enum mfs_digest_kind kind)
{
	const EVP_MD *md = kind == MFS_SHA256 ? EVP_sha256() : EVP_sha1();

	/* Reuse a running context: restarting is common (verification starts
	 * over after bad data) and saves an allocation. */
	if (!d->ctx)
		d->ctx = EVP_MD_CTX_new();
	d->failed = false;
	if (!d->ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(d->ctx, md, NULL) != 1) {
		mfs_digest_release(d);
		return -EIO;
	}
	return 0;
}

int mfs_digest_start_gitblob(struct mfs_digest *d, uint64_t size)
{
	char hdr[32];
	int n = snprintf(hdr, sizeof(hdr), "blob %" PRIu64, size);
	int rc = mfs_digest_start(d, MFS_SHA1);

	if (rc == 0)
		mfs_digest_update(d, hdr, (size_t)n + 1); /* with the NUL */
	return rc;
}

int mfs_digest_start_for_id(struct mfs_digest *d, const char *id, uint64_t size)
{
	if (strlen(id) == 64)
		return mfs_digest_start(d, MFS_SHA256);
	return mfs_digest_start_gitblob(d, size);
}

void mfs_digest_update(struct mfs_digest *d, const void *data, size_t len)
{
	if (!d->ctx || d->failed || len == 0)
		return;
	if (EVP_DigestUpdate(d->ctx, data, len) != 1)
		d->failed = true;
}

int mfs_digest_finish(struct mfs_digest *d, uint8_t out[32])
{
	unsigned int n = 0;
	int rc;

	if (!d->ctx || d->failed)
		rc = -EIO;
	else if (EVP_DigestFinal_ex(d->ctx, out, &n) != 1)
		rc = -EIO;
	else
		rc = (int)n;
	mfs_digest_release(d);
	return rc;
}

int mfs_digest_matches_id(struct mfs_digest *d, const char *id, char *hex_out)
{
	uint8_t dg[32];
	char hex[65];
	int n = mfs_digest_finish(d, dg);

	if (n < 0)
		return n;
	mfs_hex(dg, (size_t)n, hex);
	if (hex_out)
		memcpy(hex_out, hex, (size_t)n * 2 + 1);
	return strcasecmp(hex, id) == 0;
}

static int oneshot(const EVP_MD *md, const void *data, size_t len, uint8_t *out)
{
	return EVP_Digest(data, len, out, NULL, md, NULL) == 1 ? 0 : -EIO;
}

int mfs_sha256(const void *data, size_t len, uint8_t out[32])
{
	return oneshot(EVP_sha256(), data, len, out);
}

int mfs_sha1(const void *data, size_t len, uint8_t out[20])
{
	return oneshot(EVP_sha1(), data, len, out);
}

uint64_t mfs_xxh64(const void *data, size_t len, uint64_t seed)
{
	return (uint64_t)XXH64(data, len, (XXH64_hash_t)seed);
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
