/*
 * inodes.h - the inode table of a mount: nodes by inode number, their
 * numbers derived from stable keys, and their lifetime by lookup counts.
 *
 * A node's inode number is XXH64 of a key that names it for good (63 bits,
 * never below 16), or the next free number when another key has it, so a
 * file keeps its inode across lookups and mounts. Lifetime follows
 * libfuse's example/passthrough_ll.c: every entry replied to the kernel
 * adds one to the node's lookup count (mfs_itab_intern does it under the
 * table lock, before the reply can leave), FORGET subtracts what the kernel
 * forgot, and the node is freed at zero. The kernel sends no request for an
 * inode it forgot, and no FORGET covers a lookup whose reply it has not
 * seen, so a node an operation holds is never freed under it. Pinned nodes
 * (the roots) are never freed. After many frees the table shrinks and
 * malloc_trim returns the pages, so memory follows what the kernel holds.
 *
 * A node is the caller's struct with struct mfs_inode as its first member;
 * the table copies templates of node_size bytes and owns the copies. It
 * knows nothing of FUSE or of what the nodes mean.
 */
#ifndef MFS_FS_INODES_H
#define MFS_FS_INODES_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mfs_inode {
	uint64_t ino;
	char *key;                 /* owned by the table's copy */
	size_t keylen;
	uint64_t nlookup;          /* kernel references; protected by the table's lock */
	bool pinned;               /* never freed */
};

struct mfs_itab {
	pthread_mutex_t lock;
	struct mfs_inode **slots;  /* open addressing by ino; protected by lock */
	size_t mask;               /* protected by lock */
	size_t count;              /* protected by lock */
	size_t freed_since_trim;   /* protected by lock */
	size_t node_size;          /* bytes copied from a template; set once */
};

int mfs_itab_init(struct mfs_itab *t, size_t node_size);
/* Frees every node (the mount is gone). */
void mfs_itab_destroy(struct mfs_itab *t);

/* The number a key asks for (before collisions). */
uint64_t mfs_itab_key_ino(const char *key, size_t len);

/* The node with this number, or NULL. */
struct mfs_inode *mfs_itab_get(struct mfs_itab *t, uint64_t ino);
/* The node with tmpl's key, a copy of tmpl inserted if there is none; its
 * lookup count is raised by one (the caller replies it as an entry). NULL
 * when out of memory. */
struct mfs_inode *mfs_itab_intern(struct mfs_itab *t, const struct mfs_inode *tmpl);
/* Inserts a copy of tmpl at a fixed, free number (the roots). */
struct mfs_inode *mfs_itab_insert_at(struct mfs_itab *t, const struct mfs_inode *tmpl,
				     uint64_t ino);
/* One more kernel reference to a node replied without mfs_itab_intern. */
void mfs_itab_ref(struct mfs_itab *t, struct mfs_inode *n);
/* The kernel forgot n references of ino; frees the node at zero. Returns
 * true when a node was freed (then call mfs_itab_after_forgets once the
 * batch is done). */
bool mfs_itab_forget(struct mfs_itab *t, uint64_t ino, uint64_t n);
/* After frees: shrink the table, give pages back now and then. */
void mfs_itab_after_forgets(struct mfs_itab *t);
/* Nodes in the table (statfs). */
size_t mfs_itab_count(struct mfs_itab *t);
/* Numbers of the nodes match() accepts, in a malloc'd array (*out, may
 * be NULL when none); match runs under the table lock and must be short.
 * Returns how many, or 0 when out of memory. */
size_t mfs_itab_select(struct mfs_itab *t, bool (*match)(const struct mfs_inode *, void *),
		       void *arg, uint64_t **out);

#endif
