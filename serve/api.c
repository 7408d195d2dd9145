/*
 * api.c - the metadata routes of `modelfs serve`, shaped like the hub's
 * (docs/architecture.md, "The hub's HTTP API"): repo info with siblings,
 * tree listings (recursive or one level), paths-info (form or JSON body)
 * and the repos of an org.
 * Access is checked by mfs_sv_open_commit before anything is resolved.
 * It does not serve bytes (content.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/internal.h"
#include "util/json.h"

static void iso_date(int64_t secs, char out[32])
{
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

struct names {
	char **v;
	size_t n, cap;
};

static int collect(void *ctx, const char *name)
{
	struct names *nm = ctx;

	if (nm->n == nm->cap) {
		size_t cap = nm->cap ? nm->cap * 2 : 16;
		char **v = realloc(nm->v, cap * sizeof(*v));
		if (!v)
			return 1;
		nm->v = v;
		nm->cap = cap;
	}
	nm->v[nm->n] = strdup(name);
	if (nm->v[nm->n])
		nm->n++;
	return 0;
}

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
	memset(nm, 0, sizeof(*nm));
}

static void entry_json(struct mfs_strbuf *sb, const struct mfs_entry *e)
{
	if (e->kind == MFS_KIND_DIR) {
		mfs_strbuf_printf(sb, "{\"type\":\"directory\",\"oid\":\"%s\",\"size\":0,\"path\":",
				  e->oid);
		mfs_strbuf_json_str(sb, e->path, strlen(e->path));
		mfs_strbuf_puts(sb, "}");
		return;
	}
	mfs_strbuf_printf(sb, "{\"type\":\"file\",\"oid\":\"%s\",\"size\":%llu,\"path\":", e->oid,
			  (unsigned long long)e->size);
	mfs_strbuf_json_str(sb, e->path, strlen(e->path));
	if (e->sha256[0]) {
		char n[24];
		int digits = snprintf(n, sizeof(n), "%llu", (unsigned long long)e->size);
		/* "version ...v1\n" (43) + "oid sha256:<64>\n" (76) + "size N\n" */
		mfs_strbuf_printf(sb, ",\"lfs\":{\"oid\":\"%s\",\"size\":%llu,\"pointerSize\":%d}",
				  e->sha256, (unsigned long long)e->size, 43 + 76 + 6 + digits);
	}
	if (e->xet_hash[0])
		mfs_strbuf_printf(sb, ",\"xetHash\":\"%s\"", e->xet_hash);
	mfs_strbuf_puts(sb, "}");
}

/* plen is the decoded length: a JSON "a.txt\u0000x" is not "a.txt" */
static void paths_add(const struct mfs_tree *t, const char *p, size_t plen,
		      struct mfs_strbuf *sb, size_t *k)
{
	uint32_t node;

	if (!p || !mfs_path_valid(p, plen) || mfs_tree_find(t, p, &node) != 0 || node == 0)
		return;
	if ((*k)++)
		mfs_strbuf_puts(sb, ",");
	entry_json(sb, t->nodes[node].e);
}

int mfs_sv_route_info(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a)
{
	const struct mfs_repo *repo = &a->repo;
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	const struct mfs_tree *t;
	char commit[41], date[32], gated[16] = "false";
	bool priv = false, blobs = mfs_sv_qflag(rq->query, "blobs");
	int64_t ds = 0, at;
	int rc = mfs_sv_open_commit(s, rq, c, repo, a->rev, false, commit, &ds, &t);

	if (rc)
		return rc < 0 ? rc : 0;
	(void)mfs_ix_repo_get(s->ix, repo, &priv, gated, &at);
	iso_date(ds, date);
	mfs_strbuf_puts(&sb, "{\"_id\":");
	mfs_strbuf_json_str(&sb, repo->id, strlen(repo->id));
	mfs_strbuf_puts(&sb, ",\"id\":");
	mfs_strbuf_json_str(&sb, repo->id, strlen(repo->id));
	if (repo->type == MFS_REPO_MODEL) {
		mfs_strbuf_puts(&sb, ",\"modelId\":");
		mfs_strbuf_json_str(&sb, repo->id, strlen(repo->id));
	}
	mfs_strbuf_printf(&sb, ",\"author\":\"%.*s\",\"sha\":\"%s\",\"lastModified\":\"%s\","
			  "\"private\":%s,\"gated\":", (int)strcspn(repo->id, "/"), repo->id,
			  commit, date, priv ? "true" : "false");
	if (strcmp(gated, "false") == 0)
		mfs_strbuf_puts(&sb, "false");
	else
		mfs_strbuf_json_str(&sb, gated, strlen(gated));
	mfs_strbuf_puts(&sb, ",\"disabled\":false,\"siblings\":[");
	for (size_t i = 0, k = 0; i < t->n_entries; i++) {
		const struct mfs_entry *e = &t->entries[i];
		if (e->kind == MFS_KIND_DIR)
			continue;
		mfs_strbuf_puts(&sb, k++ ? ",{\"rfilename\":" : "{\"rfilename\":");
		mfs_strbuf_json_str(&sb, e->path, strlen(e->path));
		if (blobs) {
			mfs_strbuf_printf(&sb, ",\"size\":%llu,\"blobId\":\"%s\"",
					  (unsigned long long)e->size, e->oid);
			if (e->sha256[0])
				mfs_strbuf_printf(&sb, ",\"lfs\":{\"sha256\":\"%s\",\"size\":%llu}",
						  e->sha256, (unsigned long long)e->size);
		}
		mfs_strbuf_puts(&sb, "}");
	}
	mfs_strbuf_puts(&sb, "]}");
	rc = mfs_sv_json(c, rq, &sb, commit);
	mfs_strbuf_free(&sb);
	mfs_cat_tree_release(s->cat, t);
	return rc;
}

int mfs_sv_route_tree(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	const struct mfs_tree *t;
	const char *path = a->path;
	char commit[41];
	bool rec = mfs_sv_qflag(rq->query, "recursive");
	int64_t ds;
	uint32_t node = 0;
	size_t k = 0;
	int rc = mfs_sv_open_commit(s, rq, c, &a->repo, a->rev, false, commit, &ds, &t);

	if (rc)
		return rc < 0 ? rc : 0;
	if (path[0] && (mfs_tree_find(t, path, &node) != 0 || !mfs_tree_is_dir(t, node))) {
		mfs_cat_tree_release(s->cat, t);
		return mfs_sv_error(c, rq, 404, "EntryNotFound", "Entry not found", commit);
	}
	mfs_strbuf_puts(&sb, "[");
	if (rec) {
		size_t pl = strlen(path);
		for (size_t i = 0; i < t->n_entries; i++) {
			const struct mfs_entry *e = &t->entries[i];
			if (pl && (strncmp(e->path, path, pl) != 0 || e->path[pl] != '/'))
				continue;
			if (k++)
				mfs_strbuf_puts(&sb, ",");
			entry_json(&sb, e);
		}
	} else {
		const struct mfs_tree_node *n = &t->nodes[node];
		for (uint32_t i = 0; i < n->child_count; i++) {
			if (k++)
				mfs_strbuf_puts(&sb, ",");
			entry_json(&sb, t->nodes[t->children[n->child_start + i]].e);
		}
	}
	mfs_strbuf_puts(&sb, "]");
	rc = mfs_sv_json(c, rq, &sb, commit);
	mfs_strbuf_free(&sb);
	mfs_cat_tree_release(s->cat, t);
	return rc;
}

int mfs_sv_route_paths_info(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			    struct mfs_httpd_conn *c, const struct mfs_sv_args *a)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	struct mfs_json *doc = NULL;
	const struct mfs_tree *t;
	char commit[41];
	int64_t ds;
	size_t k = 0;
	int rc = mfs_sv_open_commit(s, rq, c, &a->repo, a->rev, false, commit, &ds, &t);

	if (rc)
		return rc < 0 ? rc : 0;
	mfs_strbuf_puts(&sb, "[");
	if (rq->body && rq->content_type && strstr(rq->content_type, "json")) {
		const struct mfs_json *paths;
		if (mfs_json_parse(rq->body, rq->body_len, &doc) < 0 ||
		    !(paths = mfs_json_get(doc, "paths"))) {
			rc = mfs_sv_error(c, rq, 400, NULL, "Bad paths-info body", NULL);
			goto out;
		}
		size_t plen = 0;
		if (mfs_json_type(paths) == MFS_JSON_STRING) {
			const char *p = mfs_json_str(paths, &plen);
			paths_add(t, p, plen, &sb, &k);
		} else if (mfs_json_type(paths) == MFS_JSON_ARRAY) {
			for (size_t i = 0; i < mfs_json_len(paths) && i < 2000; i++) {
				const char *p = mfs_json_str(mfs_json_at(paths, i), &plen);
				paths_add(t, p, plen, &sb, &k);
			}
		}
	} else if (rq->body) {
		size_t n = 0;
		for (const char *p = rq->body; *p && n < 2000;) {
			size_t len = strcspn(p, "&");
			if (len > 6 && strncmp(p, "paths=", 6) == 0) {
				char *v = malloc(len);
				if (v && mfs_sv_pct_decode(p + 6, len - 6, v, true))
					paths_add(t, v, strlen(v), &sb, &k);
				free(v);
				n++;
			}
			p += len;
			if (*p == '&')
				p++;
		}
	}
	mfs_strbuf_puts(&sb, "]");
	rc = mfs_sv_json(c, rq, &sb, commit);
out:
	mfs_json_free(doc);
	mfs_strbuf_free(&sb);
	mfs_cat_tree_release(s->cat, t);
	return rc;
}

int mfs_sv_route_list(struct mfs_serve *s, const struct mfs_httpd_req *rq,
		      struct mfs_httpd_conn *c, const struct mfs_sv_args *a)
{
	enum mfs_repo_type type = a->repo.type;
	bool tok = mfs_sv_token_ok(s, rq);
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	struct names repos = { 0 };
	char org[128], lim[16];
	long limit = 1000;
	size_t k = 0;
	int rc;

	if (rq->authorization && !tok)
		return mfs_sv_error(c, rq, 401, NULL, "Invalid credentials in Authorization header",
				    NULL);
	if (!mfs_sv_qparam(rq->query, "author", org, sizeof(org)) || !mfs_repo_name_valid(org))
		return mfs_sv_error(c, rq, 400, NULL, "author= required", NULL);
	if (mfs_sv_qparam(rq->query, "limit", lim, sizeof(lim)))
		limit = strtol(lim, NULL, 10);
	(void)mfs_ix_list_repos(s->ix, type, org, collect, &repos);
	mfs_strbuf_puts(&sb, "[");
	for (size_t i = 0; i < repos.n && (long)k < limit; i++) {
		struct mfs_repo repo = { .type = type };
		snprintf(repo.id, sizeof(repo.id), "%s/%s", org, repos.v[i]);
		/* like the hub: gated repos are listed (only their files need
		 * access), private ones only to holders of the token */
		if (!tok && mfs_sv_visibility(s, &repo) < 0)
			continue;
		mfs_strbuf_puts(&sb, k++ ? ",{\"id\":" : "{\"id\":");
		mfs_strbuf_json_str(&sb, repo.id, strlen(repo.id));
		mfs_strbuf_puts(&sb, "}");
	}
	mfs_strbuf_puts(&sb, "]");
	names_free(&repos);
	rc = mfs_sv_json(c, rq, &sb, NULL);
	mfs_strbuf_free(&sb);
	return rc;
}
