/*
 * xethash_main.c - modelfs-xethash: prints the Xet file hash (xetHash) of
 * files, optionally with their chunk lists.
 *
 *   modelfs-xethash FILE...          "<xetHash>  <size>  <FILE>" per file
 *   modelfs-xethash --json FILE      {"size":N,"xetHash":"..","chunks":[[off,len,"hash"],..]}
 *
 * "-" reads standard input. Used by the hub simulator to publish real
 * xetHash values and by tests to compare with xet-core's own (WASM) code.
 * It does not upload, fetch or look anything up.
 */
#include "xet/xet.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hash_fd(int fd, struct mfs_xet_hasher *x, uint8_t out[32])
{
	size_t cap = 4u << 20;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, cap);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		rc = mfs_xet_hasher_update(x, buf, (size_t)n);
		if (rc)
			break;
	}
	free(buf);
	return rc ? rc : mfs_xet_hasher_final(x, out);
}

static void print_json(const struct mfs_xet_hasher *x, const uint8_t h[32])
{
	char hex[MFS_XET_HEX_LEN + 1];
	size_t n;
	const struct mfs_xet_chunk *c = mfs_xet_hasher_chunks(x, &n);
	mfs_xet_hex(h, hex);
	printf("{\"size\":%" PRIu64 ",\"xetHash\":\"%s\",\"chunks\":[", mfs_xet_hasher_size(x), hex);
	for (size_t i = 0; i < n; i++) {
		mfs_xet_hex(c[i].hash, hex);
		printf("%s[%" PRIu64 ",%" PRIu32 ",\"%s\"]", i ? "," : "", c[i].offset, c[i].len, hex);
	}
	printf("]}\n");
}

int main(int argc, char **argv)
{
	int json = 0, first = 1, status = 0;
	if (argc > 1 && strcmp(argv[1], "--json") == 0) {
		json = 1;
		first = 2;
	}
	if (first >= argc || (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
		fprintf(stderr, "usage: modelfs-xethash [--json] FILE...\n");
		return 2;
	}
	for (int i = first; i < argc; i++) {
		int fd = strcmp(argv[i], "-") == 0 ? 0 : open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "modelfs-xethash: %s: %s\n", argv[i], strerror(errno));
			status = 1;
			continue;
		}
		struct mfs_xet_hasher *x = mfs_xet_hasher_new();
		uint8_t h[32];
		int rc = x ? hash_fd(fd, x, h) : -ENOMEM;
		if (fd != 0)
			close(fd);
		if (rc) {
			fprintf(stderr, "modelfs-xethash: %s: %s\n", argv[i], strerror(-rc));
			status = 1;
		} else if (json) {
			print_json(x, h);
		} else {
			char hex[MFS_XET_HEX_LEN + 1];
			mfs_xet_hex(h, hex);
			printf("%s  %" PRIu64 "  %s\n", hex, mfs_xet_hasher_size(x), argv[i]);
		}
		mfs_xet_hasher_free(x);
	}
	return status;
}
