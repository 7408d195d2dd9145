/*
 * pin.h - which files a prefetch or a pin covers, and which blobs are
 * pinned.
 *
 * A selection is include/exclude globs over paths in a repo (fnmatch(3)
 * without FNM_PATHNAME, as huggingface_hub's allow/ignore patterns: '*'
 * also matches '/'): a file is selected when it matches some include (or
 * there are none) and no exclude. A pin stores its selection with it, so
 * the pinned set of blobs can be recomputed from the index alone: every
 * (pin, commit) row, its stored tree, its globs. blobs.pinned is then set to
 * exactly that set (mfs_ix_pins_apply), which the evictor respects.
 *
 * It does not fetch, resolve revisions (catalog.h) or talk to the user.
 */
#ifndef MFS_CORE_PIN_H
#define MFS_CORE_PIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/index.h"
#include "util/repo.h"

struct mfs_globs {
	char **inc, **exc;   /* owned */
	size_t ninc, nexc;
};

/* false for an empty glob, an unterminated '[' class or a trailing '\'. */
bool mfs_glob_valid(const char *g);
int mfs_globs_add(struct mfs_globs *g, const char *glob, bool exclude);
bool mfs_globs_match(const struct mfs_globs *g, const char *path);
/* "+GLOB\n" / "-GLOB\n" lines ("" for no globs); malloc'd. */
char *mfs_globs_encode(const struct mfs_globs *g);
int mfs_globs_decode(const char *s, struct mfs_globs *out);
void mfs_globs_free(struct mfs_globs *g);

/* A set of blobs (content id, size), deduplicated on demand. */
struct mfs_idset {
	struct mfs_idset_e { char id[65]; uint64_t size; } *v;
	size_t n, cap;
};
int mfs_idset_add(struct mfs_idset *s, const char *id, uint64_t size);
/* Sorts, removes duplicates, returns the total size. */
uint64_t mfs_idset_finish(struct mfs_idset *s);
void mfs_idset_free(struct mfs_idset *s);

/* Adds every blob covered by the stored pins (their trees must be listed
 * in the index; a pin whose tree is missing is skipped with a warning). */
int mfs_pins_collect(struct mfs_ix *ix, struct mfs_idset *out);

/* Recomputes blobs.pinned from the pins table; *pinned_bytes (may be
 * NULL) gets the size of the pinned set. */
int mfs_pins_recompute(struct mfs_ix *ix, uint64_t *pinned_bytes);

#endif
