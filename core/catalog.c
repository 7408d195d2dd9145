/*
 * catalog.c - refs, commits and trees with index-first, hub-second lookups
 * and offline fallback (see catalog.h for the rules).
 *
 * Trees are cached in a small linked list keyed by (repo, commit): a mount
 * touches a handful of commits, and the list is only walked on lookups of
 * a commit directory, never on the read path. A tree handed out by
 * mfs_cat_tree is kept for good; one held through mfs_cat_tree_hold is
 * counted, and with max_trees the unheld ones beyond it are freed, least
 * recently used first.
 */
#include "core/catalog.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/size.h"

struct tree_slot {
	struct tree_slot *next;
	struct mfs_repo repo;
	char commit[41];
	struct mfs_tree *tree;
	/* all protected by the catalog's lock */
	unsigned holds;       /* mfs_cat_tree_hold without release yet */
	bool kept;            /* handed out by mfs_cat_tree: never freed early */
	uint64_t used;        /* use clock, for least-recently-used */
};

struct mfs_catalog {
	struct mfs_ix *ix;
	struct mfs_hub *hub;
	struct mfs_srcset *mirrors;  /* metadata failover; not owned; may be NULL */
	struct mfs_cat_config cfg;
	pthread_mutex_t lock;
	struct tree_slot *trees;   /* protected by lock */
	size_t n_trees;            /* protected by lock */
	uint64_t clock;            /* protected by lock */
	/* Serializes listing of trees so two lookups of a new commit do not
	 * list it twice; listing is rare and slow, contention is harmless. */
	pthread_mutex_t list_lock;
};

static bool is_commit_sha(const char *s)
{
	return strlen(s) == 40 && mfs_hex_valid(s, 40);
}

static bool is_transport_error(int rc)
{
	return rc == -EHOSTDOWN || rc == -ETIMEDOUT || rc == -EIO;
}

int mfs_cat_new(struct mfs_ix *ix, struct mfs_hub *hub,
		const struct mfs_cat_config *cfg, struct mfs_catalog **out)
{
	struct mfs_catalog *cat = calloc(1, sizeof(*cat));

	if (!cat)
		return -ENOMEM;
	cat->ix = ix;
	cat->hub = cfg->offline ? NULL : hub;
	cat->cfg = *cfg;
	if (cat->cfg.ref_ttl_ms < 0)
		cat->cfg.ref_ttl_ms = 60000;
	pthread_mutex_init(&cat->lock, NULL);
	pthread_mutex_init(&cat->list_lock, NULL);
	*out = cat;
	return 0;
}

void mfs_cat_free(struct mfs_catalog *cat)
{
	if (!cat)
		return;
	for (struct tree_slot *s = cat->trees, *next; s; s = next) {
		next = s->next;
		mfs_tree_free(s->tree);
		free(s);
	}
	pthread_mutex_destroy(&cat->lock);
	pthread_mutex_destroy(&cat->list_lock);
	free(cat);
}

bool mfs_cat_hub_usable(struct mfs_catalog *cat)
{
	/* the hub client's own health (fetch/health.h): down from its first
	 * transport failure until a background probe gets an answer - no
	 * fixed penalty */
	return cat->hub && mfs_hub_up(cat->hub);
}

struct mfs_hub *mfs_cat_hub(struct mfs_catalog *cat)
{
	return cat->hub;
}

int64_t mfs_cat_ref_ttl_ms(const struct mfs_catalog *cat)
{
	return cat->cfg.ref_ttl_ms;
}

void mfs_cat_note_hub(struct mfs_catalog *cat, int rc)
{
	/* The hub client feeds its health itself and logs the transitions;
	 * kept for callers that report outcomes. */
	(void)cat;
	(void)rc;
}

void mfs_cat_set_mirrors(struct mfs_catalog *cat, struct mfs_srcset *src)
{
	/* offline means no network at all, mirrors included */
	cat->mirrors = cat->cfg.offline ? NULL : src;
}

/* Someone can be asked: the hub, or a mirror when the hub cannot. */
static bool remote_usable(struct mfs_catalog *cat)
{
	return mfs_cat_hub_usable(cat) || mfs_srcset_n_mirrors(cat->mirrors) > 0;
}

static int remote_error(struct mfs_catalog *cat)
{
	return cat->hub ? -EHOSTDOWN : -ENOENT;
}

/* Repo info from the hub, else (hub down or failing) from each mirror in
 * turn (*from_hub false). A mirror's "not found" does not override the
 * hub's silence: it may just not carry that repo. */
static int remote_repo_info(struct mfs_catalog *cat, const struct mfs_repo *repo,
			    const char *rev, struct mfs_repo_info *info, bool *from_hub)
{
	int rc = -EHOSTDOWN;

	*from_hub = false;
	if (mfs_cat_hub_usable(cat)) {
		rc = mfs_hub_repo_info(cat->hub, repo, rev, info);
		mfs_cat_note_hub(cat, rc == 0 || rc == -ENOENT || rc == -EACCES ? 0 : rc);
		*from_hub = rc == 0;
		if (!is_transport_error(rc))
			return rc;
	}
	for (size_t i = 0; i < mfs_srcset_n_mirrors(cat->mirrors); i++) {
		int mrc = mfs_hub_repo_info(mfs_srcset_mirror_hub(cat->mirrors, i), repo, rev, info);
		if (mrc == 0) {
			mfs_debug("%s: repo info from mirror %zu (hub: %d)", repo->id, i, rc);
			return 0;
		}
	}
	return rc;
}

static int remote_list_tree(struct mfs_catalog *cat, const struct mfs_repo *repo,
			    const char *commit, struct mfs_entry **out, size_t *n)
{
	int rc = -EHOSTDOWN;

	if (mfs_cat_hub_usable(cat)) {
		rc = mfs_hub_list_tree(cat->hub, repo, commit, out, n);
		mfs_cat_note_hub(cat, rc == 0 || rc == -ENOENT || rc == -EACCES ? 0 : rc);
		if (!is_transport_error(rc))
			return rc;
	}
	for (size_t i = 0; i < mfs_srcset_n_mirrors(cat->mirrors); i++) {
		if (mfs_hub_list_tree(mfs_srcset_mirror_hub(cat->mirrors, i), repo, commit,
				      out, n) == 0)
			return 0;
	}
	return rc;
}

static int gated_rank(const char *g)
{
	return !strcmp(g, "false") ? 0 : !strcmp(g, "auto") ? 1 : 2;
}

/* Records a repo's visibility. Only the hub may clear private or gated:
 * a mirror (stale, or hostile) saying "public" must not make a private
 * repo's bytes servable by `modelfs serve`, so what a mirror says can
 * only tighten what is known, and a repo known only through mirrors is
 * recorded private. */
static void record_visibility(struct mfs_catalog *cat, const struct mfs_repo *repo,
			      const struct mfs_repo_info *info, bool from_hub, int64_t now)
{
	bool priv = true;
	char gated[16];
	int64_t at;

	if (from_hub) {
		(void)mfs_ix_repo_put(cat->ix, repo, info->private_, info->gated, now);
		return;
	}
	if (mfs_ix_repo_get(cat->ix, repo, &priv, gated, &at) != 0) {
		priv = true;
		snprintf(gated, sizeof(gated), "%s", info->gated);
	} else if (gated_rank(info->gated) > gated_rank(gated)) {
		snprintf(gated, sizeof(gated), "%s", info->gated);
	}
	(void)mfs_ix_repo_put(cat->ix, repo, priv || info->private_, gated, now);
}

/* Asks the hub (or a mirror) for repo info at rev and records what it
 * learns. */
static int ask_hub(struct mfs_catalog *cat, const struct mfs_repo *repo,
		   const char *rev, char commit[41], int64_t *date_s)
{
	struct mfs_repo_info info;
	int64_t now = mfs_wall_ms();
	bool from_hub;
	int rc = remote_repo_info(cat, repo, rev, &info, &from_hub);

	if (rc)
		return rc;
	memcpy(commit, info.sha, 41);
	*date_s = info.last_modified_s;
	/* Index failures are logged by the index; the answer is still good. */
	record_visibility(cat, repo, &info, from_hub, now);
	(void)mfs_ix_commit_put(cat->ix, repo, commit, info.last_modified_s);
	if (!is_commit_sha(rev))
		(void)mfs_ix_ref_put(cat->ix, repo, rev, commit, now);
	return 0;
}

int mfs_cat_resolve(struct mfs_catalog *cat, const struct mfs_repo *repo,
		    const char *rev, char commit[41], int64_t *date_s)
{
	int64_t resolved_at = 0;
	bool listed;
	int rc;

	*date_s = 0;
	if (is_commit_sha(rev)) {
		char lower[41];
		for (int i = 0; i < 41; i++)
			lower[i] = (char)(rev[i] >= 'A' && rev[i] <= 'F' ? rev[i] + 32 : rev[i]);
		if (mfs_ix_commit_get(cat->ix, repo, lower, date_s, &listed) == 0) {
			memcpy(commit, lower, 41);
			return 0;
		}
		if (!remote_usable(cat))
			return remote_error(cat);
		rc = ask_hub(cat, repo, lower, commit, date_s);
		if (rc == 0 && strcmp(commit, lower) != 0)
			rc = -ENOENT; /* a short sha or a branch named like a sha */
		return rc;
	}

	rc = mfs_ix_ref_get(cat->ix, repo, rev, commit, &resolved_at);
	bool known = rc == 0;
	if (known && (mfs_wall_ms() - resolved_at < cat->cfg.ref_ttl_ms ||
		      !mfs_cat_hub_usable(cat))) {
		(void)mfs_ix_commit_get(cat->ix, repo, commit, date_s, &listed);
		return 0;
	}
	if (!remote_usable(cat))
		return remote_error(cat);
	char fresh[41];
	rc = ask_hub(cat, repo, rev, fresh, date_s);
	if (rc == 0) {
		memcpy(commit, fresh, 41);
		return 0;
	}
	if (known && is_transport_error(rc)) {
		mfs_debug("%s@%s: hub failed (%d), using last known commit %s",
			  repo->id, rev[0] ? rev : "(default)", rc, commit);
		(void)mfs_ix_commit_get(cat->ix, repo, commit, date_s, &listed);
		return 0;
	}
	return rc;
}

/* Marks a slot used by a caller (caller holds lock). */
static void slot_use(struct mfs_catalog *cat, struct tree_slot *s, bool hold)
{
	s->used = ++cat->clock;
	if (hold)
		s->holds++;
	else
		s->kept = true;
}

/* Frees unheld, unkept trees beyond max_trees, oldest first (caller
 * holds lock). */
static void trim_trees(struct mfs_catalog *cat)
{
	while (cat->cfg.max_trees && cat->n_trees > cat->cfg.max_trees) {
		struct tree_slot **victim = NULL;
		for (struct tree_slot **pp = &cat->trees; *pp; pp = &(*pp)->next)
			if (!(*pp)->holds && !(*pp)->kept &&
			    (!victim || (*pp)->used < (*victim)->used))
				victim = pp;
		if (!victim)
			return; /* all in use: shrinks on release */
		struct tree_slot *s = *victim;
		*victim = s->next;
		cat->n_trees--;
		mfs_tree_free(s->tree);
		free(s);
	}
}

static struct mfs_tree *find_tree(struct mfs_catalog *cat, const struct mfs_repo *repo,
				  const char *commit, bool hold)
{
	struct mfs_tree *t = NULL;

	pthread_mutex_lock(&cat->lock);
	for (struct tree_slot *s = cat->trees; s; s = s->next) {
		if (s->repo.type == repo->type && strcmp(s->commit, commit) == 0 &&
		    strcmp(s->repo.id, repo->id) == 0) {
			slot_use(cat, s, hold);
			t = s->tree;
			break;
		}
	}
	pthread_mutex_unlock(&cat->lock);
	return t;
}

/* The index setting that marks a tree as maybe partial (see
 * mfs_cat_mark_partial): read it (set NULL: true when marked) or set it. */
static bool tree_partial(struct mfs_catalog *cat, const struct mfs_repo *repo,
			 const char *commit, const char *set)
{
	char key[320], v[8];

	snprintf(key, sizeof(key), "partial_tree/%d/%s/%s", (int)repo->type, repo->id, commit);
	if (set)
		return mfs_ix_setting_put(cat->ix, key, set) == 0;
	return mfs_ix_setting_get(cat->ix, key, v, sizeof(v)) == 0 && strcmp(v, "1") == 0;
}

int mfs_cat_mark_partial(struct mfs_catalog *cat, const struct mfs_repo *repo,
			 const char *commit)
{
	return tree_partial(cat, repo, commit, "1") ? 0 : -EIO;
}

static int get_tree(struct mfs_catalog *cat, const struct mfs_repo *repo,
		    const char *commit, bool hold, const struct mfs_tree **out)
{
	struct mfs_entry *entries = NULL;
	struct tree_slot *slot = NULL;
	struct mfs_tree *t;
	size_t n = 0;
	int rc;

	if ((t = find_tree(cat, repo, commit, hold))) {
		*out = t;
		return 0;
	}
	pthread_mutex_lock(&cat->list_lock);
	if ((t = find_tree(cat, repo, commit, hold))) {
		rc = 0;
		goto out;
	}
	rc = mfs_ix_tree_get(cat->ix, repo, commit, &entries, &n);
	if (rc == 0 && remote_usable(cat) && tree_partial(cat, repo, commit, NULL)) {
		/* recorded by an offline `modelfs import` from a snapshot that
		 * may hold only some files: the listing replaces it once */
		struct mfs_entry *full = NULL;
		size_t fn = 0;
		if (remote_list_tree(cat, repo, commit, &full, &fn) == 0) {
			mfs_entries_free(entries, n);
			entries = full;
			n = fn;
			if (mfs_ix_tree_put(cat->ix, repo, commit, entries, n) == 0)
				(void)tree_partial(cat, repo, commit, "0");
		}
	}
	if (rc == -ENOENT) {
		if (!remote_usable(cat)) {
			rc = remote_error(cat);
			goto out;
		}
		rc = remote_list_tree(cat, repo, commit, &entries, &n);
		if (rc)
			goto out;
		(void)mfs_ix_tree_put(cat->ix, repo, commit, entries, n);
	} else if (rc) {
		goto out;
	}
	rc = mfs_tree_build(entries, n, &t);
	if (rc)
		goto out;
	slot = calloc(1, sizeof(*slot));
	if (!slot) {
		mfs_tree_free(t);
		rc = -ENOMEM;
		goto out;
	}
	slot->repo = *repo;
	memcpy(slot->commit, commit, 41);
	slot->tree = t;
	pthread_mutex_lock(&cat->lock);
	slot_use(cat, slot, hold);
	slot->next = cat->trees;
	cat->trees = slot;
	cat->n_trees++;
	trim_trees(cat);
	pthread_mutex_unlock(&cat->lock);
out:
	pthread_mutex_unlock(&cat->list_lock);
	if (rc == 0)
		*out = t;
	return rc;
}

int mfs_cat_tree(struct mfs_catalog *cat, const struct mfs_repo *repo,
		 const char *commit, const struct mfs_tree **out)
{
	return get_tree(cat, repo, commit, false, out);
}

int mfs_cat_tree_hold(struct mfs_catalog *cat, const struct mfs_repo *repo,
		      const char *commit, const struct mfs_tree **out)
{
	return get_tree(cat, repo, commit, true, out);
}

void mfs_cat_tree_release(struct mfs_catalog *cat, const struct mfs_tree *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&cat->lock);
	for (struct tree_slot *s = cat->trees; s; s = s->next) {
		if (s->tree == t) {
			if (s->holds)
				s->holds--;
			break;
		}
	}
	trim_trees(cat);
	pthread_mutex_unlock(&cat->lock);
}

size_t mfs_cat_trees_cached(struct mfs_catalog *cat)
{
	size_t n;

	pthread_mutex_lock(&cat->lock);
	n = cat->n_trees;
	pthread_mutex_unlock(&cat->lock);
	return n;
}

struct any_ctx { bool found; };

static int any_name(void *ctx, const char *name)
{
	(void)name;
	((struct any_ctx *)ctx)->found = true;
	return 1;
}

int mfs_cat_org_exists(struct mfs_catalog *cat, enum mfs_repo_type t, const char *org)
{
	struct any_ctx any = { false };
	int rc;

	(void)mfs_ix_list_repos(cat->ix, t, org, any_name, &any);
	if (any.found)
		return 1;
	rc = -EHOSTDOWN;
	if (mfs_cat_hub_usable(cat)) {
		rc = mfs_hub_org_exists(cat->hub, t, org);
		mfs_cat_note_hub(cat, rc >= 0 || rc == -ENOENT || rc == -EACCES ? 0 : rc);
		if (!is_transport_error(rc))
			return rc == -ENOENT ? 0 : rc;
	}
	for (size_t i = 0; i < mfs_srcset_n_mirrors(cat->mirrors); i++) {
		int mrc = mfs_hub_org_exists(mfs_srcset_mirror_hub(cat->mirrors, i), t, org);
		if (mrc >= 0)
			return mrc;
	}
	if (!cat->hub)
		return 0;
	return rc == -ENOENT ? 0 : rc;
}
