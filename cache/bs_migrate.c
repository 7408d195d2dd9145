/*
 * bs_migrate.c - one-time move of a version-1 block cache
 * (<root>/blocks/<id[0:2]>/<id[2:4]>/<id>/<idx>, one file per block: a
 * 32-byte header "MFSB", version 1, codec, raw_len, stored_len, XXH64 of
 * the raw bytes, then the payload) into the per-blob files of blockstore.c.
 *
 * Each old block is decoded and verified exactly as the old reader did and
 * stored again with mfs_bs_put (same codec decision, same stored size plus
 * a same-sized record, so the index's byte counts stay right); then its
 * file is removed. A block that does not verify is removed too: the index
 * may still list it, and the block layer refetches what get cannot return.
 * The blob's block size is not in the old files: it is the longest block
 * of the blob (every block but the last has it); a blob of which only a
 * short last block survives is stored with that size and dropped again by
 * the first put with the real one.
 *
 * Interrupted (crash, kill): the rest is moved at the next open. Two
 * processes migrating at once store identical blocks twice: harmless.
 * It does not touch the index.
 */
#include "cache/bs_migrate.h"
#include "cache/bs_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "cache/blockstore.h"
#include "util/hash.h"

#define V1_HDR 32
#define V1_MAX_BLOCK (256u << 20)

static bool parse_idx(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	size_t n = 0;

	if (!s[0] || (s[0] == '0' && s[1]))
		return false;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 10)
			return false;
		v = v * 10 + (uint64_t)(s[n] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Reads and verifies one old block file; 0 with *raw (malloc'd) and *len. */
static int v1_read(int dfd, const char *name, uint8_t **raw, size_t *len)
{
	uint8_t hdr[V1_HDR], *payload = NULL, *out = NULL;
	struct stat st;
	uint32_t raw_len, stored;
	bool zstd;
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = -EBADMSG;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < V1_HDR || pread(fd, hdr, V1_HDR, 0) != V1_HDR)
		goto out;
	raw_len = bs_get_le32(hdr + 8);
	stored = bs_get_le32(hdr + 12);
	zstd = hdr[5] == 1;
	if (memcmp(hdr, "MFSB", 4) != 0 || hdr[4] != 1 || hdr[5] > 1 ||
	    (uint64_t)st.st_size != (uint64_t)V1_HDR + stored || raw_len > V1_MAX_BLOCK ||
	    (zstd ? stored >= raw_len : stored != raw_len))
		goto out;
	payload = malloc(stored ? stored : 1);
	if (zstd)
		out = malloc(raw_len);
	if (!payload || (zstd && !out)) {
		rc = -ENOMEM;
		goto out;
	}
	if (pread(fd, payload, stored, V1_HDR) != (ssize_t)stored)
		goto out;
	if (zstd && ZSTD_decompress(out, raw_len, payload, stored) != raw_len)
		goto out;
	if (!zstd) {
		out = payload;
		payload = NULL;
	}
	if (mfs_xxh64(out, raw_len, 0) != bs_get_le64(hdr + 16))
		goto out;
	*raw = out;
	*len = raw_len;
	out = NULL;
	rc = 0;
out:
	free(out);
	free(payload);
	close(fd);
	return rc;
}

/* The longest raw length among the blob's block headers. */
static uint32_t v1_slot(DIR *d)
{
	struct dirent *de;
	uint8_t hdr[V1_HDR];
	uint32_t idx, slot = 0;

	rewinddir(d);
	while ((de = readdir(d))) {
		if (!parse_idx(de->d_name, &idx))
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (pread(fd, hdr, V1_HDR, 0) == V1_HDR && memcmp(hdr, "MFSB", 4) == 0 &&
		    bs_get_le32(hdr + 8) > slot && bs_get_le32(hdr + 8) <= V1_MAX_BLOCK)
			slot = bs_get_le32(hdr + 8);
		close(fd);
	}
	return slot;
}

static void migrate_blob(struct mfs_bs *bs, int at, const char *id)
{
	int fd = openat(at, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint32_t idx, slot;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	slot = v1_slot(d);
	rewinddir(d);
	while ((de = readdir(d))) {
		uint8_t *raw = NULL;
		size_t len = 0;
		bool ours = parse_idx(de->d_name, &idx);
		if (!ours && strncmp(de->d_name, ".tmp.", 5) != 0)
			continue;
		if (ours && slot && v1_read(dirfd(d), de->d_name, &raw, &len) == 0)
			(void)mfs_bs_put(bs, id, idx, slot, raw, len, 1, NULL);
		free(raw);
		(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	(void)unlinkat(at, id, AT_REMOVEDIR);
}

int mfs_bs_migrate_v1(struct mfs_bs *bs, const char *root)
{
	char *old = NULL;
	DIR *d1, *d2, *d3;
	struct dirent *e1, *e2, *e3;

	if (asprintf(&old, "%s/blocks", root) < 0)
		return -ENOMEM;
	d1 = opendir(old);
	if (!d1) {
		int rc = errno == ENOENT ? 0 : -errno;
		free(old);
		return rc;
	}
	while ((e1 = readdir(d1))) {
		if (strlen(e1->d_name) != 2 || e1->d_name[0] == '.')
			continue;
		int fd = openat(dirfd(d1), e1->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || !(d2 = fdopendir(fd))) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		while ((e2 = readdir(d2))) {
			if (strlen(e2->d_name) != 2 || e2->d_name[0] == '.')
				continue;
			fd = openat(dirfd(d2), e2->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0 || !(d3 = fdopendir(fd))) {
				if (fd >= 0)
					close(fd);
				continue;
			}
			while ((e3 = readdir(d3))) {
				size_t n = strlen(e3->d_name);
				char id[65];
				if ((n != 40 && n != 64) || e3->d_name[0] == '.')
					continue;
				memcpy(id, e3->d_name, n + 1);
				/* mfs_bs_put rejects anything but hex ids. */
				migrate_blob(bs, dirfd(d3), id);
			}
			closedir(d3);
			(void)unlinkat(dirfd(d2), e2->d_name, AT_REMOVEDIR);
		}
		closedir(d2);
		(void)unlinkat(dirfd(d1), e1->d_name, AT_REMOVEDIR);
	}
	closedir(d1);
	/* Fails (ENOTEMPTY) if something foreign is left: then it stays. */
	(void)rmdir(old);
	free(old);
	return 0;
}
