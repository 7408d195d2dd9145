/*
 * memcache.c - the block layer's cache of decoded blocks in memory.
 *
 * A table of refcounted decoded blocks with an LRU bounded by
 * cfg.mem_cache_bytes; a reply may still use a block another thread just
 * evicted (the last reference frees it). block_load answers from here or
 * reads (and checks) the block from the block store on disk.
 *
 * It does not track block states, fetch or verify: see blobio_internal.h.
 * Unused blocks go to a small pool (mem.spare) and are handed out again,
 * so steady-state fetching does not fault in fresh pages. New blocks are
 * mapped with MAP_POPULATE (dblock_map): the cache grows to hundreds of
 * MiB, and faulting a fresh 1 MiB block in 256 page faults (inside the
 * pread or the fetch's copy) cost ~20% of the daemon's CPU on a disk-cache
 * read in a VM (perf, bench/bench_mount.py); one populating mmap does not.
 * Locking: mem.lock only, never taken before bio->lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/blobio_internal.h"

/* ---- decoded-block cache ------------------------------------------------ */

static void mem_unlink_lru(struct dblock *d)
{
	d->prev->next = d->next;
	d->next->prev = d->prev;
}

static void mem_push_front(struct mfs_blobio *bio, struct dblock *d)
{
	d->next = bio->mem.lru->next;
	d->prev = bio->mem.lru;
	d->next->prev = d;
	bio->mem.lru->next = d;
}

static void mem_remove_locked(struct mfs_blobio *bio, struct dblock *d)
{
	struct dblock **pp = &bio->mem.table[bio_id_hash(d->id, d->idx) % MEM_BUCKETS];

	while (*pp && *pp != d)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = d->hnext;
	mem_unlink_lru(d);
	bio->mem.bytes -= d->len;
	d->cached = false;
}

struct dblock *bio_mem_get(struct mfs_blobio *bio, const char *id, uint32_t idx)
{
	struct dblock *d;

	pthread_mutex_lock(&bio->mem.lock);
	for (d = bio->mem.table[bio_id_hash(id, idx) % MEM_BUCKETS]; d; d = d->hnext)
		if (d->idx == idx && strcmp(d->id, id) == 0)
			break;
	if (d) {
		d->refs++;
		mem_unlink_lru(d);
		mem_push_front(bio, d);
	}
	pthread_mutex_unlock(&bio->mem.lock);
	return d;
}

void bio_mem_put(struct mfs_blobio *bio, struct dblock *d)
{
	bool free_it;

	pthread_mutex_lock(&bio->mem.lock);
	free_it = --d->refs == 0 && !d->cached;
	pthread_mutex_unlock(&bio->mem.lock);
	if (free_it)
		bio_dblock_free(bio, d);
}

/* Inserts d (caller keeps its reference) and evicts unreferenced blocks
 * beyond the budget. An older copy of the same block is replaced. */
void bio_mem_insert(struct mfs_blobio *bio, struct dblock *d)
{
	struct dblock *victims = NULL;
	size_t b = bio_id_hash(d->id, d->idx) % MEM_BUCKETS;

	pthread_mutex_lock(&bio->mem.lock);
	for (struct dblock *o = bio->mem.table[b]; o; o = o->hnext) {
		if (o->idx == d->idx && strcmp(o->id, d->id) == 0) {
			mem_remove_locked(bio, o);
			if (o->refs == 0) {
				o->hnext = victims;
				victims = o;
			}
			break;
		}
	}
	d->hnext = bio->mem.table[b];
	bio->mem.table[b] = d;
	d->cached = true;
	mem_push_front(bio, d);
	bio->mem.bytes += d->len;
	for (struct dblock *v = bio->mem.lru->prev;
	     bio->mem.bytes > bio->cfg.mem_cache_bytes && v != bio->mem.lru;) {
		struct dblock *prev = v->prev;
		if (v->refs == 0) {
			mem_remove_locked(bio, v);
			v->hnext = victims;
			victims = v;
		}
		v = prev;
	}
	pthread_mutex_unlock(&bio->mem.lock);
	while (victims) {
		struct dblock *n = victims->hnext;
		bio_dblock_free(bio, victims);
		victims = n;
	}
}

void bio_mem_drop_blob(struct mfs_blobio *bio, const char *id)
{
	struct dblock *victims = NULL;

	pthread_mutex_lock(&bio->mem.lock);
	for (struct dblock *v = bio->mem.lru->next; v != bio->mem.lru;) {
		struct dblock *next = v->next;
		if (strcmp(v->id, id) == 0) {
			mem_remove_locked(bio, v);
			if (v->refs == 0) {
				v->hnext = victims;
				victims = v;
			}
		}
		v = next;
	}
	pthread_mutex_unlock(&bio->mem.lock);
	while (victims) {
		struct dblock *n = victims->hnext;
		bio_dblock_free(bio, victims);
		victims = n;
	}
}

static struct dblock *dblock_map(size_t cap)
{
	void *p = mmap(NULL, sizeof(struct dblock) + cap, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void bio_dblock_unmap(struct dblock *d)
{
	if (d)
		munmap(d, sizeof(*d) + d->cap);
}

/* Blocks kept in the pool: enough for the fetch threads' blocks in flight
 * and the evictions a burst of arrivals causes. */
#define DBLOCK_SPARE_MAX 32

struct dblock *bio_dblock_new(struct mfs_blobio *bio, const char *id, uint32_t idx,
			      size_t cap)
{
	struct dblock *d;

	pthread_mutex_lock(&bio->mem.lock);
	d = bio->mem.spare;
	if (d) {
		bio->mem.spare = d->hnext;
		bio->mem.nspare--;
	}
	pthread_mutex_unlock(&bio->mem.lock);
	if (d && d->cap < cap) {
		bio_dblock_unmap(d);
		d = NULL;
	}
	if (!d) {
		d = dblock_map(cap);
		if (!d)
			return NULL;
		d->cap = cap;
	}
	cap = d->cap;
	memset(d, 0, sizeof(*d));
	d->cap = cap;
	memcpy(d->id, id, strlen(id) + 1);
	d->idx = idx;
	d->refs = 1;
	return d;
}

/* A referenced decoded block from memory or disk. -ENOENT / -EBADMSG when
 * the block is not (or no longer validly) on disk. */
int bio_block_load(struct mfs_blob *b, uint32_t idx, struct dblock **out)
{
	struct mfs_blobio *bio = b->bio;
	struct dblock *d = bio_mem_get(bio, b->id, idx);
	size_t len;
	int rc;

	if (d) {
		*out = d;
		return 0;
	}
	d = bio_dblock_new(bio, b->id, idx, b->bsize);
	if (!d)
		return -ENOMEM;
	rc = mfs_bs_get(bio->bs, b->id, idx, d->data, b->bsize, &len);
	if (rc == 0 && len != bio_block_len(b, idx))
		rc = -EBADMSG;
	if (rc) {
		bio_dblock_free(bio, d);
		return rc;
	}
	d->len = len;
	bio_mem_insert(bio, d);
	*out = d;
	return 0;
}

void bio_dblock_free(struct mfs_blobio *bio, struct dblock *d)
{
	pthread_mutex_lock(&bio->mem.lock);
	if (bio->mem.nspare < DBLOCK_SPARE_MAX) {
		d->hnext = bio->mem.spare;
		bio->mem.spare = d;
		bio->mem.nspare++;
		d = NULL;
	}
	pthread_mutex_unlock(&bio->mem.lock);
	bio_dblock_unmap(d);
}

void bio_dblock_pool_free(struct mfs_blobio *bio)
{
	while (bio->mem.spare) {
		struct dblock *d = bio->mem.spare;
		bio->mem.spare = d->hnext;
		bio_dblock_unmap(d);
	}
	bio->mem.nspare = 0;
}
