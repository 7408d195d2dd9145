/*
 * repo.c - validation of repo ids, names, in-repo paths and hex digests,
 * and freeing of entry arrays.
 *
 * Everything a remote server sends (tree listings, repo ids in URLs the
 * user typed) passes through these checks before it becomes a path in the
 * mount or a file name in the cache, so they are deliberately strict.
 * It does not talk to the hub or decide what a repo contains.
 */
#include "util/repo.h"

#include <stdlib.h>
#include <string.h>

const char *mfs_repo_type_api(enum mfs_repo_type t)
{
	return t == MFS_REPO_DATASET ? "datasets" : "models";
}

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* One org or repo name of exactly n bytes. */
static bool name_valid_n(const char *s, size_t n)
{
	if (n < 1 || n > 96)
		return false;
	if (s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!name_char_ok(s[i]))
			return false;
		/* "--" is reserved by the hub's cache naming (models--org--name)
		 * and ".." would be a path component trick. */
		if (i > 0 && ((s[i] == '-' && s[i - 1] == '-') ||
			      (s[i] == '.' && s[i - 1] == '.')))
			return false;
	}
	return true;
}

bool mfs_repo_name_valid(const char *name)
{
	return name && name_valid_n(name, strlen(name));
}

bool mfs_repo_id_valid(const char *id)
{
	const char *slash;
	size_t n;

	if (!id)
		return false;
	n = strlen(id);
	if (n == 0 || n >= MFS_REPO_ID_MAX)
		return false;
	slash = memchr(id, '/', n);
	if (!slash)
		return false;
	return name_valid_n(id, (size_t)(slash - id)) &&
	       name_valid_n(slash + 1, n - (size_t)(slash - id) - 1);
}

/* Length of the UTF-8 sequence at p (at most `avail` bytes) or 0 if it is
 * not a valid, shortest-form encoding of a scalar value. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (avail >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)
			return 0; /* overlong */
		if (c == 0xed && p[1] >= 0xa0)
			return 0; /* UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && p[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xf4 && p[1] >= 0x90)
			return 0; /* > U+10FFFF */
		return 4;
	}
	return 0; /* continuation byte, 0xc0/0xc1, 0xf5.. */
}

bool mfs_path_valid(const char *path, size_t len)
{
	const unsigned char *p = (const unsigned char *)path;
	size_t comp_start = 0, depth = 0, i = 0;

	if (!path || len == 0 || len > MFS_PATH_MAX || p[0] == '/')
		return false;
	while (i <= len) {
		if (i == len || p[i] == '/') {
			size_t clen = i - comp_start;
			if (clen == 0)
				return false; /* "a//b" or trailing '/' */
			if (clen == 1 && p[comp_start] == '.')
				return false;
			if (clen == 2 && p[comp_start] == '.' && p[comp_start + 1] == '.')
				return false;
			if (++depth > MFS_DEPTH_MAX)
				return false;
			comp_start = i + 1;
			i++;
			continue;
		}
		if (p[i] < 0x20 || p[i] == 0x7f)
			return false;
		size_t n = utf8_seq_len(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

bool mfs_hex_valid(const char *s, size_t want_len)
{
	if (!s || (want_len != 40 && want_len != 64))
		return false;
	for (size_t i = 0; i < want_len; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return false;
	}
	return s[want_len] == '\0';
}

void mfs_entries_free(struct mfs_entry *entries, size_t n)
{
	if (!entries)
		return;
	for (size_t i = 0; i < n; i++)
		free(entries[i].path);
	free(entries);
}
