/*
 * blockstore.c - the block cache on disk: one file per (blob id, block
 * index) under <root>/blocks/<id[0:2]>/<id[2:4]>/<id>/<idx>.
 *
 * Block file format (all integers little-endian, written byte by byte so
 * the format does not depend on the host):
 *
 *   off len  field
 *     0   4  magic "MFSB"
 *     4   1  version (1)
 *     5   1  codec (0 raw, 1 zstd)
 *     6   2  reserved, 0
 *     8   4  raw_len
 *    12   4  stored payload length (= file size - 32)
 *    16   8  XXH64(raw bytes, seed 0)
 *    24   8  reserved, 0
 *    32   -  payload
 *
 * Crash safety comes from writing a temp file in the block's directory and
 * renaming it into place, plus full verification on every read: a torn or
 * bit-rotted block is unlinked and reported as -EBADMSG so the caller
 * refetches it. No fsync: losing a block in a power cut costs one refetch,
 * while fsync per 4 MiB block would halve cold-read throughput.
 *
 * zstd contexts and the scratch buffer for compressed payloads come from a
 * small mutex-protected pool inside struct mfs_bs (one entry per thread
 * that is concurrently inside put/get), so no call allocates a context.
 *
 * It does not decide what to evict, keep an index, or fetch anything.
 */
#include "cache/blockstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "util/hash.h"

#define BS_HDR_LEN 32
#define BS_VERSION 1
#define BS_CODEC_RAW 0
#define BS_CODEC_ZSTD 1
#define BS_SAMPLE_LEN (64 * 1024)
#define BS_TMP_PREFIX ".tmp."
#define BS_TMP_STALE_SECS 3600
/* "aa/bb/<64 hex>/<10 digits>" plus NUL, and room for a temp name. */
#define BS_REL_MAX 160
#define BS_PUT_RETRIES 64

struct bs_ctx {
	struct bs_ctx *next;     /* protected by mfs_bs.pool_lock while pooled */
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	void *scratch;           /* compressed payload buffer */
	size_t scratch_cap;
};

struct mfs_bs {
	char *root;
	int blocks_fd;               /* <root>/blocks, O_DIRECTORY */
	pthread_mutex_t pool_lock;
	struct bs_ctx *pool;         /* protected by pool_lock */
	atomic_uint_fast64_t tmp_seq; /* makes temp names unique within a process */
};

/* ------------------------------------------------------------ small helpers */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Copies a valid id (40 or 64 hex digits, any case) as lowercase into out
 * (65 bytes); -EINVAL otherwise. This is what keeps every path under root:
 * nothing but hex ever reaches a file name. */
static int norm_id(const char *id, char out[65])
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

static void blob_dir(const char *id, char *out, size_t outlen)
{
	snprintf(out, outlen, "%.2s/%.2s/%s", id, id + 2, id);
}

static void block_path(const char *id, uint32_t idx, char *out, size_t outlen)
{
	snprintf(out, outlen, "%.2s/%.2s/%s/%u", id, id + 2, id, idx);
}

/* Parses a canonical decimal block index ("0", "17"; no leading zeros, no
 * sign) so that scan reports exactly the names put creates. */
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

static bool is_hex_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EBADMSG; /* shorter than the header claims */
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int writev_full(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(fd, iov, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* ------------------------------------------------------------- context pool */

static struct bs_ctx *ctx_get(struct mfs_bs *bs)
{
	struct bs_ctx *c;

	pthread_mutex_lock(&bs->pool_lock);
	c = bs->pool;
	if (c)
		bs->pool = c->next;
	pthread_mutex_unlock(&bs->pool_lock);
	if (!c)
		c = calloc(1, sizeof(*c));
	return c;
}

static void ctx_put(struct mfs_bs *bs, struct bs_ctx *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&bs->pool_lock);
	c->next = bs->pool;
	bs->pool = c;
	pthread_mutex_unlock(&bs->pool_lock);
}

static void ctx_free(struct bs_ctx *c)
{
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c->scratch);
	free(c);
}

static int ctx_scratch(struct bs_ctx *c, size_t need)
{
	if (need <= c->scratch_cap)
		return 0;
	void *p = malloc(need);
	if (!p)
		return -ENOMEM;
	free(c->scratch);
	c->scratch = p;
	c->scratch_cap = need;
	return 0;
}

/* --------------------------------------------------------------- open/close */

static int mkdir_p(const char *path)
{
	char *tmp = strdup(path);
	int rc = 0;

	if (!tmp)
		return -ENOMEM;
	for (char *p = tmp + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;
			*p = '\0';
			/* 0700: the cache may hold gated or private models. */
			if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
				rc = -errno;
				break;
			}
			*p = save;
			if (!save)
				break;
		}
	}
	free(tmp);
	return rc;
}

int mfs_bs_open(const char *root, struct mfs_bs **out)
{
	struct mfs_bs *bs = NULL;
	char *blocks = NULL;
	int rc;

	*out = NULL;
	if (!root || !*root)
		return -EINVAL;
	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	bs->blocks_fd = -1;
	pthread_mutex_init(&bs->pool_lock, NULL);
	bs->root = strdup(root);
	if (!bs->root || asprintf(&blocks, "%s/blocks", root) < 0) {
		blocks = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = mkdir_p(blocks)) < 0)
		goto out;
	bs->blocks_fd = open(blocks, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bs->blocks_fd < 0) {
		rc = -errno;
		goto out;
	}
	*out = bs;
	bs = NULL;
	rc = 0;
out:
	free(blocks);
	if (bs)
		mfs_bs_close(bs);
	return rc;
}

void mfs_bs_close(struct mfs_bs *bs)
{
	if (!bs)
		return;
	while (bs->pool) {
		struct bs_ctx *c = bs->pool;
		bs->pool = c->next;
		ctx_free(c);
	}
	if (bs->blocks_fd >= 0)
		close(bs->blocks_fd);
	pthread_mutex_destroy(&bs->pool_lock);
	free(bs->root);
	free(bs);
}

/* ---------------------------------------------------------------------- put */

/* Chooses the codec: compresses a sample first so incompressible data
 * (quantized weights) costs one 64 KiB compression, not a whole block.
 * On return *payload and *plen point at what to store (data or c->scratch). */
static int choose_payload(struct bs_ctx *c, const void *data, size_t len, int level,
			  const void **payload, size_t *plen, int *codec)
{
	size_t sample = len < BS_SAMPLE_LEN ? len : BS_SAMPLE_LEN;
	size_t csize;
	int rc;

	*payload = data;
	*plen = len;
	*codec = BS_CODEC_RAW;
	if (len < 64)
		return 0; /* headers of tiny blocks dominate; not worth it */
	if (!c->cctx && !(c->cctx = ZSTD_createCCtx()))
		return -ENOMEM;
	if ((rc = ctx_scratch(c, ZSTD_compressBound(len))) < 0)
		return rc;
	csize = ZSTD_compressCCtx(c->cctx, c->scratch, c->scratch_cap, data, sample, level);
	if (ZSTD_isError(csize) || csize * 10 > sample * 9)
		return 0;
	if (sample < len) {
		csize = ZSTD_compressCCtx(c->cctx, c->scratch, c->scratch_cap, data, len, level);
		if (ZSTD_isError(csize) || csize * 10 > len * 9)
			return 0;
	}
	*payload = c->scratch;
	*plen = csize;
	*codec = BS_CODEC_ZSTD;
	return 0;
}

static int mkdirs_for(struct mfs_bs *bs, const char *id)
{
	char rel[BS_REL_MAX];

	snprintf(rel, sizeof(rel), "%.2s", id);
	if (mkdirat(bs->blocks_fd, rel, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(rel, sizeof(rel), "%.2s/%.2s", id, id + 2);
	if (mkdirat(bs->blocks_fd, rel, 0700) < 0 && errno != EEXIST)
		return -errno;
	blob_dir(id, rel, sizeof(rel));
	if (mkdirat(bs->blocks_fd, rel, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int mfs_bs_put(struct mfs_bs *bs, const char *id, uint32_t idx,
	       const void *data, size_t len, int level, struct mfs_bs_stats *st)
{
	char nid[65], dir[BS_REL_MAX], tmp[BS_REL_MAX + 96], dst[BS_REL_MAX];
	uint8_t hdr[BS_HDR_LEN];
	struct bs_ctx *c = NULL;
	const void *payload;
	size_t plen;
	int codec, fd = -1, rc;

	if (!bs || (!data && len))
		return -EINVAL;
	if ((rc = norm_id(id, nid)) < 0)
		return rc;
	if (len > UINT32_MAX)
		return -EFBIG;
	c = ctx_get(bs);
	if (!c)
		return -ENOMEM;
	if ((rc = choose_payload(c, data, len, level, &payload, &plen, &codec)) < 0)
		goto out;

	memcpy(hdr, "MFSB", 4);
	hdr[4] = BS_VERSION;
	hdr[5] = (uint8_t)codec;
	hdr[6] = hdr[7] = 0;
	put_le32(hdr + 8, (uint32_t)len);
	put_le32(hdr + 12, (uint32_t)plen);
	put_le64(hdr + 16, mfs_xxh64(data, len, 0));
	put_le64(hdr + 24, 0);

	blob_dir(nid, dir, sizeof(dir));
	block_path(nid, idx, dst, sizeof(dst));
	/* Retry when a concurrent drop_blob removes the directory between our
	 * mkdir and open/rename. */
	for (int attempt = 0; attempt < BS_PUT_RETRIES; attempt++) {
		struct iovec iov[2] = {
			{ hdr, BS_HDR_LEN },
			{ (void *)payload, plen },
		};
		snprintf(tmp, sizeof(tmp), "%s/" BS_TMP_PREFIX "%u.%ld.%ld.%llu", dir, idx,
			 (long)getpid(), (long)syscall(SYS_gettid),
			 (unsigned long long)atomic_fetch_add(&bs->tmp_seq, 1));
		fd = openat(bs->blocks_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 && errno == ENOENT) {
			/* -ENOENT here means a concurrent drop_blob pruned a
			 * parent again: just retry. */
			if ((rc = mkdirs_for(bs, nid)) < 0 && rc != -ENOENT)
				goto out;
			continue;
		}
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		rc = writev_full(fd, iov, plen ? 2 : 1);
		if (close(fd) < 0 && rc == 0)
			rc = -errno;
		fd = -1;
		if (rc < 0) {
			unlinkat(bs->blocks_fd, tmp, 0);
			goto out;
		}
		if (renameat(bs->blocks_fd, tmp, bs->blocks_fd, dst) == 0) {
			rc = 0;
			goto out;
		}
		rc = -errno;
		unlinkat(bs->blocks_fd, tmp, 0);
		if (rc != -ENOENT)
			goto out;
	}
	rc = rc < 0 ? rc : -EAGAIN;
out:
	if (rc == 0 && st) {
		st->raw_bytes = len;
		st->stored_bytes = BS_HDR_LEN + plen;
		st->codec = codec;
	}
	ctx_put(bs, c);
	return rc;
}

/* ---------------------------------------------------------------------- get */

/* Removes a corrupt block, but only if the path still names the file we
 * read: a concurrent put may already have replaced it with a good one. */
static void drop_corrupt(struct mfs_bs *bs, const char *rel, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) == 0 && fstatat(bs->blocks_fd, rel, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		unlinkat(bs->blocks_fd, rel, 0);
}

int mfs_bs_get(struct mfs_bs *bs, const char *id, uint32_t idx,
	       void *buf, size_t cap, size_t *len)
{
	char nid[65], rel[BS_REL_MAX];
	uint8_t hdr[BS_HDR_LEN];
	struct bs_ctx *c = NULL;
	struct stat st;
	uint32_t raw_len, stored;
	int fd = -1, rc;

	if (!bs || (!buf && cap))
		return -EINVAL;
	if ((rc = norm_id(id, nid)) < 0)
		return rc;
	block_path(nid, idx, rel, sizeof(rel));
	fd = openat(bs->blocks_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	rc = -EBADMSG;
	if (st.st_size < BS_HDR_LEN)
		goto corrupt;
	if ((rc = pread_full(fd, hdr, BS_HDR_LEN, 0)) < 0)
		goto corrupt_if_badmsg;
	rc = -EBADMSG;
	raw_len = get_le32(hdr + 8);
	stored = get_le32(hdr + 12);
	if (memcmp(hdr, "MFSB", 4) != 0 || hdr[4] != BS_VERSION ||
	    (hdr[5] != BS_CODEC_RAW && hdr[5] != BS_CODEC_ZSTD) ||
	    hdr[6] || hdr[7] || get_le64(hdr + 24) != 0)
		goto corrupt;
	if ((uint64_t)st.st_size != (uint64_t)BS_HDR_LEN + stored)
		goto corrupt;
	if (hdr[5] == BS_CODEC_RAW ? stored != raw_len : stored >= raw_len)
		goto corrupt;
	if (raw_len > cap) {
		rc = -ENOBUFS;
		goto out;
	}

	if (hdr[5] == BS_CODEC_RAW) {
		/* The one copy: page cache straight into the caller's buffer. */
		if ((rc = pread_full(fd, buf, raw_len, BS_HDR_LEN)) < 0)
			goto corrupt_if_badmsg;
	} else {
		size_t got;
		c = ctx_get(bs);
		if (!c || (!c->dctx && !(c->dctx = ZSTD_createDCtx()))) {
			rc = -ENOMEM;
			goto out;
		}
		if ((rc = ctx_scratch(c, stored)) < 0)
			goto out;
		if ((rc = pread_full(fd, c->scratch, stored, BS_HDR_LEN)) < 0)
			goto corrupt_if_badmsg;
		got = ZSTD_decompressDCtx(c->dctx, buf, raw_len, c->scratch, stored);
		if (ZSTD_isError(got) || got != raw_len) {
			rc = -EBADMSG;
			goto corrupt;
		}
	}
	if (mfs_xxh64(buf, raw_len, 0) != get_le64(hdr + 16)) {
		rc = -EBADMSG;
		goto corrupt;
	}
	if (len)
		*len = raw_len;
	rc = 0;
	goto out;

corrupt_if_badmsg:
	if (rc != -EBADMSG)
		goto out;
corrupt:
	drop_corrupt(bs, rel, fd);
out:
	if (fd >= 0)
		close(fd);
	ctx_put(bs, c);
	return rc;
}

bool mfs_bs_has(struct mfs_bs *bs, const char *id, uint32_t idx)
{
	char nid[65], rel[BS_REL_MAX];
	struct stat st;

	if (!bs || norm_id(id, nid) < 0)
		return false;
	block_path(nid, idx, rel, sizeof(rel));
	return fstatat(bs->blocks_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* ------------------------------------------------------------- drop / scan */

int mfs_bs_drop(struct mfs_bs *bs, const char *id, uint32_t idx)
{
	char nid[65], rel[BS_REL_MAX];
	int rc;

	if (!bs)
		return -EINVAL;
	if ((rc = norm_id(id, nid)) < 0)
		return rc;
	block_path(nid, idx, rel, sizeof(rel));
	if (unlinkat(bs->blocks_fd, rel, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static bool is_tmp_name(const char *name)
{
	return strncmp(name, BS_TMP_PREFIX, strlen(BS_TMP_PREFIX)) == 0;
}

int mfs_bs_drop_blob(struct mfs_bs *bs, const char *id)
{
	char nid[65], rel[BS_REL_MAX];
	struct dirent *de;
	DIR *d = NULL;
	uint32_t idx;
	int dfd, rc = 0;

	if (!bs)
		return -EINVAL;
	if ((rc = norm_id(id, nid)) < 0)
		return rc;
	blob_dir(nid, rel, sizeof(rel));
	dfd = openat(bs->blocks_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	d = fdopendir(dfd);
	if (!d) {
		rc = -errno;
		close(dfd);
		goto out;
	}
	while ((de = readdir(d))) {
		/* Only names this module creates: block indexes and temp files. */
		if (!parse_idx(de->d_name, &idx) && !is_tmp_name(de->d_name))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && rc == 0)
			rc = -errno;
	}
	closedir(d);
	d = NULL;
	if (unlinkat(bs->blocks_fd, rel, AT_REMOVEDIR) < 0 && errno != ENOENT &&
	    errno != ENOTEMPTY && rc == 0)
		rc = -errno;
	/* Empty fan-out directories are pruned so scans stay cheap; failure
	 * (not empty, or a concurrent put) is expected and harmless. */
	snprintf(rel, sizeof(rel), "%.2s/%.2s", nid, nid + 2);
	unlinkat(bs->blocks_fd, rel, AT_REMOVEDIR);
	snprintf(rel, sizeof(rel), "%.2s", nid);
	unlinkat(bs->blocks_fd, rel, AT_REMOVEDIR);
out:
	return rc;
}

/* Opens dir `name` under dirfd `at` as a DIR stream; NULL with errno set. */
static DIR *opendir_at(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

/* Reports every block of one blob directory (already validated id);
 * removes temp files left by a crashed writer more than an hour ago. */
static int scan_blob_dir(DIR *d, const char *id, mfs_bs_scan_fn cb, void *ctx, time_t now)
{
	struct dirent *de;
	struct stat st;
	uint32_t idx;
	int rc;

	while ((de = readdir(d))) {
		if (is_tmp_name(de->d_name)) {
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    now - st.st_mtime > BS_TMP_STALE_SECS)
				unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!parse_idx(de->d_name, &idx))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue; /* vanished (concurrent drop) or not ours */
		if ((rc = cb(ctx, id, idx, (uint64_t)st.st_size)) != 0)
			return rc;
	}
	return 0;
}

int mfs_bs_scan_blob(struct mfs_bs *bs, const char *id, mfs_bs_scan_fn cb, void *ctx)
{
	char nid[65], rel[BS_REL_MAX];
	DIR *d;
	int rc;

	if (!bs || !cb)
		return -EINVAL;
	if ((rc = norm_id(id, nid)) < 0)
		return rc;
	blob_dir(nid, rel, sizeof(rel));
	d = opendir_at(bs->blocks_fd, rel);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	rc = scan_blob_dir(d, nid, cb, ctx, time(NULL));
	closedir(d);
	return rc;
}

int mfs_bs_scan(struct mfs_bs *bs, mfs_bs_scan_fn cb, void *ctx)
{
	DIR *d1 = NULL, *d2 = NULL, *d3 = NULL;
	struct dirent *e1, *e2, *e3;
	time_t now = time(NULL);
	int rc = 0, fd;

	if (!bs || !cb)
		return -EINVAL;
	/* dup: closedir closes the descriptor it was given. */
	fd = dup(bs->blocks_fd);
	if (fd < 0)
		return -errno;
	d1 = fdopendir(fd);
	if (!d1) {
		rc = -errno;
		close(fd);
		goto out;
	}
	rewinddir(d1);
	while (rc == 0 && (e1 = readdir(d1))) {
		if (strlen(e1->d_name) != 2 || !is_hex_name(e1->d_name, 2))
			continue;
		if (!(d2 = opendir_at(dirfd(d1), e1->d_name)))
			continue;
		while (rc == 0 && (e2 = readdir(d2))) {
			if (strlen(e2->d_name) != 2 || !is_hex_name(e2->d_name, 2))
				continue;
			if (!(d3 = opendir_at(dirfd(d2), e2->d_name)))
				continue;
			while (rc == 0 && (e3 = readdir(d3))) {
				size_t n = strlen(e3->d_name);
				DIR *d4;
				if ((n != 40 && n != 64) || !is_hex_name(e3->d_name, n) ||
				    memcmp(e3->d_name, e1->d_name, 2) != 0 ||
				    memcmp(e3->d_name + 2, e2->d_name, 2) != 0)
					continue;
				if (!(d4 = opendir_at(dirfd(d3), e3->d_name)))
					continue;
				rc = scan_blob_dir(d4, e3->d_name, cb, ctx, now);
				closedir(d4);
			}
			closedir(d3);
			d3 = NULL;
		}
		closedir(d2);
		d2 = NULL;
	}
out:
	if (d1)
		closedir(d1);
	return rc;
}
