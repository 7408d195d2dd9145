/*
 * tree.c - turning the hub's JSON (tree pages, repo info) into modelfs types.
 *
 * What it does: validates every tree entry a server sends (types, paths via
 * mfs_path_valid, sizes, oids, lfs digests, xet hashes), drops duplicates
 * and file/directory clashes keeping the first one seen, synthesizes parent
 * directories the server left out, and sorts the result; parses repo info
 * and ISO-8601 dates. A hostile listing costs a warning line, never a crash
 * or a path outside the repo.
 * What it does not do: any I/O (hub.c fetches the pages).
 */
#include "fetch/hub_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"
#include "util/log.h"

/* ---------------- dates ---------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm): avoids timegm's dependence on the process time zone state. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int mfs_hub_parse_iso8601(const char *s, int64_t *out)
{
	static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	const char *p = s;
	bool leap;

	if (!s || !digits(p, 4, &y) || p[4] != '-' || !digits(p + 5, 2, &mo) || p[7] != '-' ||
	    !digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't' && p[10] != ' ') ||
	    !digits(p + 11, 2, &h) || p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' ||
	    !digits(p + 17, 2, &se))
		return -EINVAL;
	p += 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return -EINVAL;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 60)
		return -EINVAL;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
		return -EINVAL;
	*out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
	       sign * (oh * 3600 + om * 60);
	return 0;
}

/* ---------------- repo info ---------------- */

static void lower_copy(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
}

/* A JSON string that is exactly `n` hex digits (no embedded NUL). */
static const char *hex_member(const struct mfs_json *obj, const char *key, size_t n)
{
	const struct mfs_json *v = mfs_json_get(obj, key);
	size_t len = 0;
	const char *s = v ? mfs_json_str(v, &len) : NULL;

	if (!s || len != n || !mfs_hex_valid(s, n))
		return NULL;
	return s;
}

int mfs_hub_parse_repo_info(const char *json, size_t len, const char *fallback_id,
			    struct mfs_repo_info *out)
{
	struct mfs_json *doc = NULL;
	const struct mfs_json *v;
	const char *sha, *s;
	bool b;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (mfs_json_parse(json, len, &doc) < 0 || mfs_json_type(doc) != MFS_JSON_OBJECT) {
		rc = -EIO;
		goto out;
	}
	sha = hex_member(doc, "sha", 40);
	if (!sha) {
		rc = -EIO;
		goto out;
	}
	lower_copy(out->sha, sha, 40);

	s = mfs_json_get_str(doc, "id");
	if (s && mfs_repo_id_valid(s))
		snprintf(out->id, sizeof(out->id), "%s", s);
	else
		snprintf(out->id, sizeof(out->id), "%s", fallback_id ? fallback_id : "");

	s = mfs_json_get_str(doc, "lastModified");
	if (!s || mfs_hub_parse_iso8601(s, &out->last_modified_s) < 0)
		out->last_modified_s = 0;

	v = mfs_json_get(doc, "private");
	out->private_ = v && mfs_json_bool(v, &b) && b;

	/* gated: false | "auto" | "manual"; anything else truthy is treated as
	 * manual so a caller never assumes free access by mistake. */
	v = mfs_json_get(doc, "gated");
	s = v ? mfs_json_str(v, NULL) : NULL;
	if (s && (strcmp(s, "auto") == 0 || strcmp(s, "manual") == 0))
		snprintf(out->gated, sizeof(out->gated), "%s", s);
	else if (!v || mfs_json_type(v) == MFS_JSON_NULL || (mfs_json_bool(v, &b) && !b))
		snprintf(out->gated, sizeof(out->gated), "false");
	else
		snprintf(out->gated, sizeof(out->gated), "manual");
out:
	mfs_json_free(doc);
	return rc;
}

/* ---------------- tree builder ---------------- */

struct node_meta {
	uint32_t plen;
	bool explicit_; /* listed by the server (false: synthesized parent) */
};

struct mfs_hub_tree {
	struct mfs_entry *v;
	struct node_meta *meta;
	size_t n, cap;
	uint32_t *slots; /* open addressing: index+1 into v, 0 = empty */
	size_t nslots;
	size_t seen;     /* raw items seen over all pages */
	size_t skipped;
	size_t warned;
};

int mfs_hub_tree_new(struct mfs_hub_tree **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void mfs_hub_tree_free(struct mfs_hub_tree *t)
{
	if (!t)
		return;
	mfs_entries_free(t->v, t->n);
	free(t->meta);
	free(t->slots);
	free(t);
}

size_t mfs_hub_tree_skipped(const struct mfs_hub_tree *t)
{
	return t->skipped;
}

static uint64_t hash_path(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Index of path [p, p+n) or -1. */
static long tree_find(const struct mfs_hub_tree *t, const char *p, size_t n)
{
	if (!t->nslots)
		return -1;
	for (size_t i = hash_path(p, n) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
		uint32_t s = t->slots[i];
		if (!s)
			return -1;
		if (t->meta[s - 1].plen == n && memcmp(t->v[s - 1].path, p, n) == 0)
			return (long)(s - 1);
	}
}

static void slot_insert(uint32_t *slots, size_t nslots, uint64_t h, uint32_t val)
{
	size_t i = h & (nslots - 1);

	while (slots[i])
		i = (i + 1) & (nslots - 1);
	slots[i] = val;
}

/* Makes room for one more entry (array and hash table at <= 50% load). */
static int tree_reserve(struct mfs_hub_tree *t)
{
	if (t->n >= MFS_HUB_TREE_MAX_ENTRIES)
		return -EIO;
	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 256;
		struct mfs_entry *nv = realloc(t->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		t->v = nv;
		struct node_meta *nm = realloc(t->meta, nc * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		t->meta = nm;
		t->cap = nc;
	}
	if ((t->n + 1) * 2 > t->nslots) {
		size_t ns = t->nslots ? t->nslots * 2 : 512;
		uint32_t *sl = calloc(ns, sizeof(*sl));
		if (!sl)
			return -ENOMEM;
		for (size_t i = 0; i < t->n; i++)
			slot_insert(sl, ns, hash_path(t->v[i].path, t->meta[i].plen), (uint32_t)i + 1);
		free(t->slots);
		t->slots = sl;
		t->nslots = ns;
	}
	return 0;
}

/* Appends (caller checked absence and called tree_reserve). */
static int tree_append(struct mfs_hub_tree *t, const char *p, size_t n, const struct mfs_entry *tmpl,
		       bool explicit_)
{
	struct mfs_entry *e = &t->v[t->n];
	char *path = malloc(n + 1);

	if (!path)
		return -ENOMEM;
	memcpy(path, p, n);
	path[n] = '\0';
	if (tmpl) {
		*e = *tmpl;
	} else {
		memset(e, 0, sizeof(*e));
		e->kind = MFS_KIND_DIR;
	}
	e->path = path;
	t->meta[t->n].plen = (uint32_t)n;
	t->meta[t->n].explicit_ = explicit_;
	slot_insert(t->slots, t->nslots, hash_path(p, n), (uint32_t)t->n + 1);
	t->n++;
	return 0;
}

/* Log-safe rendering of an untrusted path: printable ASCII only, bounded. */
static void printable(const char *p, size_t n, char *buf, size_t buflen)
{
	size_t j = 0;

	for (size_t i = 0; i < n && j + 4 < buflen; i++) {
		unsigned char c = (unsigned char)p[i];
		buf[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n > 0 && j + 4 >= buflen) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = '\0';
}

static void skip_entry(struct mfs_hub_tree *t, const char *p, size_t n, const char *why)
{
	char shown[96];

	t->skipped++;
	if (t->warned >= MFS_HUB_TREE_MAX_WARNINGS)
		return;
	t->warned++;
	printable(p ? p : "", p ? n : 0, shown, sizeof(shown));
	mfs_warn("hub tree listing: skipping entry \"%s\": %s", shown, why);
}

/* The kernel refuses a lookup of a name over 255 bytes and a readdir
 * entry over 1024: listing such an entry would make `ls` of its directory
 * fail as a whole, so it is dropped here like any other bad entry. */
#define KERNEL_NAME_MAX 255
#define KERNEL_PATH_MAX 1024

static bool kernel_name_ok(const char *p, size_t n)
{
	size_t start = 0;

	if (n > KERNEL_PATH_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || p[i] == '/') {
			if (i - start > KERNEL_NAME_MAX)
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* Validates one JSON item into *e (path not set); returns the reason it
 * is unacceptable, or NULL. */
static const char *check_item(const struct mfs_json *it, struct mfs_entry *e, const char **path,
			      size_t *plen)
{
	const struct mfs_json *v, *lfs;
	const char *type, *s;
	int64_t size = 0, lsize;

	memset(e, 0, sizeof(*e));
	*path = NULL;
	*plen = 0;
	if (mfs_json_type(it) != MFS_JSON_OBJECT)
		return "not an object";
	v = mfs_json_get(it, "path");
	*path = v ? mfs_json_str(v, plen) : NULL;
	if (!*path)
		return "no path";
	if (!mfs_path_valid(*path, *plen))
		return "unsafe or invalid path";
	if (!kernel_name_ok(*path, *plen))
		return "name longer than the kernel accepts";
	type = mfs_json_get_str(it, "type");
	if (!type)
		return "no type";
	if (strcmp(type, "file") == 0)
		e->kind = MFS_KIND_FILE;
	else if (strcmp(type, "directory") == 0)
		e->kind = MFS_KIND_DIR;
	else
		return "unknown type";

	if (e->kind == MFS_KIND_DIR) {
		/* Directory oids are informational; a bad one is just dropped. */
		s = hex_member(it, "oid", 40);
		if (s)
			lower_copy(e->oid, s, 40);
		return NULL;
	}

	v = mfs_json_get(it, "size");
	if (!v || !mfs_json_int(v, &size) || size < 0 || (uint64_t)size > MFS_SIZE_MAX)
		return "bad size";
	e->size = (uint64_t)size;
	s = hex_member(it, "oid", 40);
	if (!s)
		return "bad oid";
	lower_copy(e->oid, s, 40);

	lfs = mfs_json_get(it, "lfs");
	if (lfs && mfs_json_type(lfs) != MFS_JSON_NULL) {
		if (mfs_json_type(lfs) != MFS_JSON_OBJECT)
			return "bad lfs";
		s = hex_member(lfs, "oid", 64);
		if (!s)
			return "bad lfs.oid";
		v = mfs_json_get(lfs, "size");
		if (!v || !mfs_json_int(v, &lsize) || lsize != size)
			return "lfs.size differs from size";
		lower_copy(e->sha256, s, 64);
	}
	/* A redacted ("*" x 64) or otherwise non-hex xetHash is ignored. */
	s = hex_member(it, "xetHash", 64);
	if (s)
		lower_copy(e->xet_hash, s, 64);
	return NULL;
}

static int add_item(struct mfs_hub_tree *t, const struct mfs_json *it)
{
	struct mfs_entry e;
	const char *p, *why;
	size_t n;
	long idx;
	int rc;

	why = check_item(it, &e, &p, &n);
	if (why) {
		skip_entry(t, p, n, why);
		return 0;
	}
	idx = tree_find(t, p, n);
	if (idx >= 0) {
		if (t->meta[idx].explicit_) {
			skip_entry(t, p, n, "duplicate path");
		} else if (e.kind == MFS_KIND_DIR) {
			/* the server lists a directory we had inferred from a child */
			memcpy(t->v[idx].oid, e.oid, sizeof(e.oid));
			t->meta[idx].explicit_ = true;
		} else {
			skip_entry(t, p, n, "file where a directory already is");
		}
		return 0;
	}
	/* Every ancestor must be a directory (or not yet known). */
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '/')
			continue;
		idx = tree_find(t, p, i);
		if (idx >= 0 && t->v[idx].kind == MFS_KIND_FILE) {
			skip_entry(t, p, n, "inside a path that is a file");
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '/' || tree_find(t, p, i) >= 0)
			continue;
		if ((rc = tree_reserve(t)) < 0 || (rc = tree_append(t, p, i, NULL, false)) < 0)
			return rc;
	}
	if ((rc = tree_reserve(t)) < 0 || (rc = tree_append(t, p, n, &e, true)) < 0)
		return rc;
	return 0;
}

int mfs_hub_tree_add_page(struct mfs_hub_tree *t, const char *json, size_t len)
{
	struct mfs_json *doc = NULL;
	size_t cnt;
	int rc = 0;

	if (mfs_json_parse_ex(json, len, MFS_JSON_LENIENT_UTF8, &doc) < 0 ||
	    mfs_json_type(doc) != MFS_JSON_ARRAY) {
		mfs_warn("hub tree listing: a page is not a JSON array");
		rc = -EIO;
		goto out;
	}
	cnt = mfs_json_len(doc);
	if (cnt > MFS_HUB_TREE_MAX_ENTRIES - t->seen) {
		mfs_warn("hub tree listing: more than %d entries, giving up",
			 MFS_HUB_TREE_MAX_ENTRIES);
		rc = -EIO;
		goto out;
	}
	t->seen += cnt;
	for (size_t i = 0; i < cnt; i++) {
		rc = add_item(t, mfs_json_at(doc, i));
		if (rc == -EIO)
			mfs_warn("hub tree listing: more than %d entries, giving up",
				 MFS_HUB_TREE_MAX_ENTRIES);
		if (rc < 0)
			goto out;
	}
out:
	mfs_json_free(doc);
	return rc;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct mfs_entry *)a)->path, ((const struct mfs_entry *)b)->path);
}

int mfs_hub_tree_finish(struct mfs_hub_tree *t, struct mfs_entry **out, size_t *n)
{
	if (t->skipped > t->warned)
		mfs_warn("hub tree listing: %zu more entries skipped (%zu in all)",
			 t->skipped - t->warned, t->skipped);
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_entry);
	*out = t->v;
	*n = t->n;
	if (!t->v) {
		/* an empty repo: hand back a valid (freeable) empty array */
		*out = calloc(1, sizeof(**out));
		if (!*out)
			return -ENOMEM;
	}
	t->v = NULL;
	t->n = t->cap = 0;
	free(t->meta);
	t->meta = NULL;
	free(t->slots);
	t->slots = NULL;
	t->nslots = 0;
	return 0;
}
