/*
 * bs_migrate.h - moves a block cache of the first on-disk layout (one file
 * per block under <root>/blocks/) into the current one (see blockstore.h).
 * Internal to cache/.
 */
#ifndef MFS_CACHE_BS_MIGRATE_H
#define MFS_CACHE_BS_MIGRATE_H

struct mfs_bs;

/* Moves every old block that verifies into bs and removes the old tree
 * (blocks that do not verify are just removed). Nothing to do: 0. Errors
 * other than an unreadable tree are not fatal: what could not be moved is
 * refetched later. */
int mfs_bs_migrate_v1(struct mfs_bs *bs, const char *root);

#endif
