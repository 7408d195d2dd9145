/*
 * pin.c - file selection by globs, and the pinned-blob set (see pin.h).
 */
#include "core/pin.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

bool mfs_glob_valid(const char *g)
{
	if (!g || !*g)
		return false;
	for (const char *p = g; *p; p++) {
		if (*p == '\n')
			return false; /* the stored form is one glob per line */
		if (*p == '\\') {
			if (!p[1])
				return false;
			p++;
		} else if (*p == '[') {
			const char *q = p + 1;
			if (*q == '!' || *q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']')
				q++;
			if (!*q)
				return false;
			p = q;
		}
	}
	return true;
}

int mfs_globs_add(struct mfs_globs *g, const char *glob, bool exclude)
{
	char ***v = exclude ? &g->exc : &g->inc;
	size_t *n = exclude ? &g->nexc : &g->ninc;
	char **nv, *copy;

	if (!mfs_glob_valid(glob))
		return -EINVAL;
	copy = strdup(glob);
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!copy || !nv) {
		free(copy);
		if (nv)
			*v = nv;
		return -ENOMEM;
	}
	nv[(*n)++] = copy;
	*v = nv;
	return 0;
}

bool mfs_globs_match(const struct mfs_globs *g, const char *path)
{
	bool in = g->ninc == 0;

	for (size_t i = 0; i < g->ninc && !in; i++)
		in = fnmatch(g->inc[i], path, 0) == 0;
	for (size_t i = 0; i < g->nexc && in; i++)
		in = fnmatch(g->exc[i], path, 0) != 0;
	return in;
}

char *mfs_globs_encode(const struct mfs_globs *g)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < g->ninc; i++)
		len += strlen(g->inc[i]) + 2;
	for (size_t i = 0; i < g->nexc; i++)
		len += strlen(g->exc[i]) + 2;
	s = p = malloc(len);
	if (!s)
		return NULL;
	for (size_t i = 0; i < g->ninc; i++)
		p += sprintf(p, "+%s\n", g->inc[i]);
	for (size_t i = 0; i < g->nexc; i++)
		p += sprintf(p, "-%s\n", g->exc[i]);
	*p = '\0';
	return s;
}

int mfs_globs_decode(const char *s, struct mfs_globs *out)
{
	int rc = 0;

	memset(out, 0, sizeof(*out));
	while (s && *s && !rc) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		char *line = strndup(s, len);

		if (!line)
			return -ENOMEM;
		if (len >= 2 && (line[0] == '+' || line[0] == '-'))
			rc = mfs_globs_add(out, line + 1, line[0] == '-');
		else if (len)
			rc = -EINVAL;
		free(line);
		s = nl ? nl + 1 : s + len;
	}
	if (rc)
		mfs_globs_free(out);
	return rc;
}

void mfs_globs_free(struct mfs_globs *g)
{
	for (size_t i = 0; i < g->ninc; i++)
		free(g->inc[i]);
	for (size_t i = 0; i < g->nexc; i++)
		free(g->exc[i]);
	free(g->inc);
	free(g->exc);
	memset(g, 0, sizeof(*g));
}

int mfs_idset_add(struct mfs_idset *s, const char *id, uint64_t size)
{
	size_t len = strlen(id);

	if (len != 40 && len != 64)
		return -EINVAL;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct mfs_idset_e *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	for (size_t i = 0; i <= len; i++)
		s->v[s->n].id[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] + 32 : id[i]);
	s->v[s->n++].size = size;
	return 0;
}

static int cmp_e(const void *a, const void *b)
{
	return strcmp(((const struct mfs_idset_e *)a)->id, ((const struct mfs_idset_e *)b)->id);
}

uint64_t mfs_idset_finish(struct mfs_idset *s)
{
	uint64_t total = 0;
	size_t w = 0;

	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_e);
	for (size_t i = 0; i < s->n; i++) {
		if (w && strcmp(s->v[w - 1].id, s->v[i].id) == 0)
			continue;
		s->v[w++] = s->v[i];
		total += s->v[i].size;
	}
	s->n = w;
	return total;
}

void mfs_idset_free(struct mfs_idset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int collect_one(void *ctx, const struct mfs_ix_pin *p)
{
	struct mfs_ix *ix = ((void **)ctx)[0];
	struct mfs_idset *out = ((void **)ctx)[1];
	struct mfs_entry *e = NULL;
	struct mfs_globs g;
	size_t n = 0;
	int rc;

	rc = mfs_globs_decode(p->globs, &g);
	if (rc) {
		mfs_warn("pin %s@%s: unreadable globs, pinning every file", p->repo.id, p->rev);
		memset(&g, 0, sizeof(g));
	}
	rc = mfs_ix_tree_get(ix, &p->repo, p->commit, &e, &n);
	if (rc == -ENOENT) {
		mfs_warn("pin %s@%s: tree of %s not in the index; skipped", p->repo.id,
			 p->rev, p->commit);
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++)
		if (e[i].kind == MFS_KIND_FILE && mfs_globs_match(&g, e[i].path))
			rc = mfs_idset_add(out, mfs_entry_content_id(&e[i]), e[i].size);
out:
	mfs_entries_free(e, n);
	mfs_globs_free(&g);
	return rc;
}

int mfs_pins_collect(struct mfs_ix *ix, struct mfs_idset *out)
{
	void *ctx[2] = { ix, out };

	return mfs_ix_pins_list(ix, collect_one, ctx);
}

int mfs_pins_recompute(struct mfs_ix *ix, uint64_t *pinned_bytes)
{
	struct mfs_idset s = { 0 };
	const char **ids = NULL;
	uint64_t total;
	int rc;

	rc = mfs_pins_collect(ix, &s);
	if (rc)
		goto out;
	total = mfs_idset_finish(&s);
	ids = calloc(s.n ? s.n : 1, sizeof(*ids));
	if (!ids) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s.n; i++)
		ids[i] = s.v[i].id;
	rc = mfs_ix_pins_apply(ix, ids, s.n);
	if (!rc && pinned_bytes)
		*pinned_bytes = total;
out:
	free(ids);
	mfs_idset_free(&s);
	return rc;
}
