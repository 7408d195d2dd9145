/*
 * orglist.c - org listings cached for the ref TTL (see orglist.h).
 *
 * One entry per (type, org) listed since the mount started, newest
 * listing only. Fetching happens outside the lock: two concurrent
 * listings of a stale org may both ask the hub, and the later answer wins,
 * which is harmless.
 */
#include "core/orglist.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "fetch/orglist.h"
#include "util/log.h"
#include "util/size.h"

struct names {
	char **v;
	size_t n, cap;
};

struct org_entry {
	struct org_entry *next;
	enum mfs_repo_type type;
	char org[97];
	struct names names;          /* sorted, unique */
	int64_t fetched_ms;          /* monotonic */
};

struct mfs_orgl {
	struct mfs_catalog *cat;
	struct mfs_ix *ix;
	pthread_mutex_t lock;
	struct org_entry *orgs;      /* protected by lock */
};

static void names_free(struct names *n)
{
	for (size_t i = 0; i < n->n; i++)
		free(n->v[i]);
	free(n->v);
	*n = (struct names){ 0 };
}

static int names_add(void *ctx, const char *name)
{
	struct names *n = ctx;

	if (n->n == n->cap) {
		size_t c = n->cap ? n->cap * 2 : 64;
		char **nv = realloc(n->v, c * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		n->v = nv;
		n->cap = c;
	}
	n->v[n->n] = strdup(name);
	return n->v[n->n++] ? 0 : -ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_sort_unique(struct names *n)
{
	size_t o = 0;

	if (n->n)
		qsort(n->v, n->n, sizeof(*n->v), cmp_str);
	for (size_t i = 0; i < n->n; i++) {
		if (o && strcmp(n->v[o - 1], n->v[i]) == 0)
			free(n->v[i]);
		else
			n->v[o++] = n->v[i];
	}
	n->n = o;
}

static int names_copy(const struct names *from, struct names *to)
{
	for (size_t i = 0; i < from->n; i++)
		if (names_add(to, from->v[i]))
			return -ENOMEM;
	return 0;
}

int mfs_orgl_new(struct mfs_catalog *cat, struct mfs_ix *ix, struct mfs_orgl **out)
{
	struct mfs_orgl *o = calloc(1, sizeof(*o));

	if (!o)
		return -ENOMEM;
	o->cat = cat;
	o->ix = ix;
	pthread_mutex_init(&o->lock, NULL);
	*out = o;
	return 0;
}

void mfs_orgl_free(struct mfs_orgl *o)
{
	if (!o)
		return;
	for (struct org_entry *e = o->orgs, *next; e; e = next) {
		next = e->next;
		names_free(&e->names);
		free(e);
	}
	pthread_mutex_destroy(&o->lock);
	free(o);
}

static struct org_entry *find_locked(struct mfs_orgl *o, enum mfs_repo_type t, const char *org)
{
	for (struct org_entry *e = o->orgs; e; e = e->next)
		if (e->type == t && strcmp(e->org, org) == 0)
			return e;
	return NULL;
}

/* Copies the cached listing into out; true if it is younger than the TTL. */
static bool cached(struct mfs_orgl *o, enum mfs_repo_type t, const char *org, struct names *out,
		   int *rc)
{
	bool fresh = false;

	pthread_mutex_lock(&o->lock);
	struct org_entry *e = find_locked(o, t, org);
	if (e) {
		fresh = mfs_now_ms() - e->fetched_ms < mfs_cat_ref_ttl_ms(o->cat);
		*rc = names_copy(&e->names, out);
	}
	pthread_mutex_unlock(&o->lock);
	return fresh;
}

/* Replaces the cached listing of org with a copy of got. */
static void remember(struct mfs_orgl *o, enum mfs_repo_type t, const char *org,
		     const struct names *got)
{
	struct names copy = { 0 };

	if (names_copy(got, &copy)) {
		names_free(&copy);
		return;
	}
	pthread_mutex_lock(&o->lock);
	struct org_entry *e = find_locked(o, t, org);
	if (!e && (e = calloc(1, sizeof(*e))) != NULL) {
		e->type = t;
		snprintf(e->org, sizeof(e->org), "%s", org);
		e->next = o->orgs;
		o->orgs = e;
	}
	if (e) {
		names_free(&e->names);
		e->names = copy;
		e->fetched_ms = mfs_now_ms();
	} else {
		names_free(&copy);
	}
	pthread_mutex_unlock(&o->lock);
}

int mfs_orgl_list(struct mfs_orgl *o, enum mfs_repo_type t, const char *org, mfs_ix_name_fn cb,
		  void *ctx)
{
	struct names all = { 0 };
	int rc = 0;

	if (strlen(org) > 96)
		return -EINVAL;
	if (!cached(o, t, org, &all, &rc) && rc == 0 && mfs_cat_hub_usable(o->cat)) {
		struct names got = { 0 };
		int hrc = mfs_hub_list_org(mfs_cat_hub(o->cat), t, org, names_add, &got);
		mfs_cat_note_hub(o->cat, hrc == 0 || hrc == -EACCES || hrc == -ENOENT ? 0 : hrc);
		if (hrc == 0) {
			names_sort_unique(&got);
			remember(o, t, org, &got);
			names_free(&all);
			all = got;
		} else {
			if (hrc != -ENOMEM)
				mfs_info("repos of %s: hub listing failed (%s); listing what the "
					 "cache knows", org, strerror(-hrc));
			names_free(&got);
		}
	}
	if (rc == 0)
		rc = mfs_ix_list_repos(o->ix, t, org, names_add, &all);
	if (rc < 0 && rc != -ENOMEM)
		rc = 0; /* the index failing only shortens the listing */
	names_sort_unique(&all);
	for (size_t i = 0; rc == 0 && i < all.n; i++)
		rc = cb(ctx, all.v[i]);
	names_free(&all);
	return rc < 0 ? rc : 0;
}
