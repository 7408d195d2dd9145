/*
 * inodes.c - the inode table (see inodes.h): open addressing by inode
 * number with linear probing and backward-shift deletion, so freeing needs
 * no tombstones and lookups stay short however many nodes came and went.
 */
#include "fs/inodes.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"

#define TABLE_MIN 1024               /* slots; the table never shrinks below */
#define TRIM_EVERY 4096              /* freed nodes between malloc_trim calls */

uint64_t mfs_itab_key_ino(const char *key, size_t len)
{
	uint64_t h = mfs_xxh64(key, len, 0x6d6f64656c6673) >> 1;
	return h < 16 ? h + 16 : h; /* 1 and 2 are the fixed roots */
}

int mfs_itab_init(struct mfs_itab *t, size_t node_size)
{
	memset(t, 0, sizeof(*t));
	t->node_size = node_size;
	t->mask = TABLE_MIN - 1;
	t->slots = calloc(TABLE_MIN, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

static void node_free(struct mfs_inode *n)
{
	free(n->key);
	free(n);
}

void mfs_itab_destroy(struct mfs_itab *t)
{
	if (!t->slots)
		return;
	for (size_t i = 0; i <= t->mask; i++)
		if (t->slots[i])
			node_free(t->slots[i]);
	free(t->slots);
	t->slots = NULL;
	pthread_mutex_destroy(&t->lock);
}

static int resize_locked(struct mfs_itab *t, size_t ncap)
{
	struct mfs_inode **ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i <= t->mask; i++) {
		struct mfs_inode *n = t->slots[i];
		if (!n)
			continue;
		size_t j = n->ino & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = n;
	}
	free(t->slots);
	t->slots = ns;
	t->mask = ncap - 1;
	return 0;
}

static size_t slot_of_locked(struct mfs_itab *t, uint64_t ino)
{
	for (size_t i = ino & t->mask; t->slots[i]; i = (i + 1) & t->mask)
		if (t->slots[i]->ino == ino)
			return i;
	return SIZE_MAX;
}

struct mfs_inode *mfs_itab_get(struct mfs_itab *t, uint64_t ino)
{
	struct mfs_inode *n;

	pthread_mutex_lock(&t->lock);
	size_t i = slot_of_locked(t, ino);
	n = i == SIZE_MAX ? NULL : t->slots[i];
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* Inserts a copy of tmpl as inode `ino` (known to be free). */
static struct mfs_inode *insert_locked(struct mfs_itab *t, const struct mfs_inode *tmpl,
				       uint64_t ino)
{
	struct mfs_inode *n;

	if ((t->count + 1) * 2 > t->mask + 1 && resize_locked(t, (t->mask + 1) * 2))
		return NULL;
	n = malloc(t->node_size);
	if (!n)
		return NULL;
	memcpy(n, tmpl, t->node_size);
	n->key = malloc(tmpl->keylen ? tmpl->keylen : 1);
	if (!n->key) {
		free(n);
		return NULL;
	}
	memcpy(n->key, tmpl->key, tmpl->keylen);
	n->ino = ino;
	n->nlookup = 0;
	size_t i = ino & t->mask;
	while (t->slots[i])
		i = (i + 1) & t->mask;
	t->slots[i] = n;
	t->count++;
	return n;
}

struct mfs_inode *mfs_itab_insert_at(struct mfs_itab *t, const struct mfs_inode *tmpl,
				     uint64_t ino)
{
	pthread_mutex_lock(&t->lock);
	struct mfs_inode *n = insert_locked(t, tmpl, ino);
	pthread_mutex_unlock(&t->lock);
	return n;
}

/* A key whose number was taken by another key may get another number after
 * both were forgotten, which the kernel cannot notice. */
struct mfs_inode *mfs_itab_intern(struct mfs_itab *t, const struct mfs_inode *tmpl)
{
	struct mfs_inode *n = NULL;
	uint64_t ino = mfs_itab_key_ino(tmpl->key, tmpl->keylen);

	pthread_mutex_lock(&t->lock);
	for (;;) {
		size_t i = slot_of_locked(t, ino);
		if (i == SIZE_MAX)
			break;
		struct mfs_inode *c = t->slots[i];
		if (c->keylen == tmpl->keylen && memcmp(c->key, tmpl->key, c->keylen) == 0) {
			n = c;
			goto out;
		}
		ino++;
	}
	n = insert_locked(t, tmpl, ino);
out:
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void mfs_itab_ref(struct mfs_itab *t, struct mfs_inode *n)
{
	pthread_mutex_lock(&t->lock);
	n->nlookup++;
	pthread_mutex_unlock(&t->lock);
}

/* Empties slot i and closes the gap: a later node moves back unless its
 * home slot lies cyclically in (i, j]. */
static void remove_locked(struct mfs_itab *t, size_t i)
{
	size_t j = i;

	t->slots[i] = NULL;
	for (;;) {
		j = (j + 1) & t->mask;
		if (!t->slots[j])
			break;
		size_t home = t->slots[j]->ino & t->mask;
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
	t->count--;
}

bool mfs_itab_forget(struct mfs_itab *t, uint64_t ino, uint64_t n)
{
	struct mfs_inode *gone = NULL;

	pthread_mutex_lock(&t->lock);
	size_t i = slot_of_locked(t, ino);
	if (i != SIZE_MAX) { /* else a number we never gave out: ignore */
		struct mfs_inode *c = t->slots[i];
		c->nlookup = n >= c->nlookup ? 0 : c->nlookup - n;
		if (!c->nlookup && !c->pinned) {
			remove_locked(t, i);
			t->freed_since_trim++;
			gone = c;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (gone)
		node_free(gone);
	return gone != NULL;
}

void mfs_itab_after_forgets(struct mfs_itab *t)
{
	bool trim = false;

	pthread_mutex_lock(&t->lock);
	size_t cap = t->mask + 1;
	if (cap > TABLE_MIN && t->count * 8 < cap)
		(void)resize_locked(t, cap / 4 > TABLE_MIN ? cap / 4 : TABLE_MIN); /* a
			failed shrink keeps the larger table: nothing is lost */
	if (t->freed_since_trim >= TRIM_EVERY) {
		t->freed_since_trim = 0;
		trim = true;
	}
	pthread_mutex_unlock(&t->lock);
	/* glibc keeps freed small chunks in its arenas; without this the RSS
	 * of a daemon that walked a million files would never come down. */
	if (trim)
		malloc_trim(0);
}

size_t mfs_itab_count(struct mfs_itab *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

size_t mfs_itab_select(struct mfs_itab *t, bool (*match)(const struct mfs_inode *, void *),
		       void *arg, uint64_t **out)
{
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i <= t->mask; i++) {
		if (!t->slots[i] || !match(t->slots[i], arg))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			uint64_t *nv = realloc(v, nc * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		v[n++] = t->slots[i]->ino;
	}
	pthread_mutex_unlock(&t->lock);
	*out = v;
	return n;
}
