/*
 * names.c - parsing "<name>@<rev>" entries (see names.h).
 */
#include "fs/names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/hash.h"
#include "util/repo.h"

bool mfs_names_is_commit(const char *rev)
{
	return strlen(rev) == 40 && mfs_hex_valid(rev, 40);
}

int mfs_names_parse(const char *entry, char name[97], char rev[MFS_REV_MAX])
{
	const char *at = strchr(entry, '@');
	size_t nlen = at ? (size_t)(at - entry) : strlen(entry);
	size_t o = 0;

	if (nlen == 0 || nlen > 96)
		return -ENOENT;
	memcpy(name, entry, nlen);
	name[nlen] = '\0';
	if (!mfs_repo_name_valid(name))
		return -ENOENT;
	rev[0] = '\0';
	if (!at)
		return 0;
	for (const char *p = at + 1; *p; p++) {
		char c = *p;
		if (c == '%') {
			int hi = mfs_unhex(p[1]), lo = hi < 0 ? -1 : mfs_unhex(p[2]);
			if (lo < 0)
				return -ENOENT;
			c = (char)(hi * 16 + lo);
			if (c != '/' && c != '%')
				return -ENOENT;
			p += 2;
		} else if ((unsigned char)c < 0x20 || c == 0x7f) {
			return -ENOENT;
		}
		if (o + 1 >= MFS_REV_MAX)
			return -ENOENT;
		rev[o++] = c;
	}
	rev[o] = '\0';
	/* An empty rev ("name@"), or one with empty path segments, is no
	 * revision the hub could have. */
	if (o == 0 || rev[0] == '/' || rev[o - 1] == '/' || strstr(rev, "//") ||
	    strstr(rev, ".."))
		return -ENOENT;
	return 0;
}

int mfs_names_format(const char *name, const char *rev, char *out, size_t cap)
{
	size_t o;
	int n = snprintf(out, cap, "%s", name);

	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	o = (size_t)n;
	if (!rev || !rev[0])
		return 0;
	if (o + 1 >= cap)
		return -ENAMETOOLONG;
	out[o++] = '@';
	for (const char *p = rev; *p; p++) {
		const char *esc = *p == '/' ? "%2F" : *p == '%' ? "%25" : NULL;
		size_t need = esc ? 3 : 1;
		if (o + need >= cap)
			return -ENAMETOOLONG;
		if (esc) {
			memcpy(out + o, esc, 3);
		} else {
			out[o] = *p;
		}
		o += need;
	}
	out[o] = '\0';
	return 0;
}

size_t mfs_names_key(char *buf, size_t cap, char kind, enum mfs_repo_type t, const char *a,
		     const char *b, const char *c)
{
	const char *parts[3] = { a, b, c };
	size_t o = 0;

	if (cap < 3)
		return 0;
	buf[o++] = kind;
	buf[o++] = '\0';
	buf[o++] = (char)('0' + t);
	for (int i = 0; i < 3 && parts[i]; i++) {
		size_t l = strlen(parts[i]);
		if (o + 1 + l >= cap)
			return 0;
		buf[o++] = '\0';
		memcpy(buf + o, parts[i], l);
		o += l;
	}
	return o;
}
