/*
 * chunks.h - Xet chunk lists for GET /chunks/<xetHash> (serve/chunks.c).
 */
#ifndef MFS_SERVE_CHUNKS_H
#define MFS_SERVE_CHUNKS_H

#include <stddef.h>
#include <stdint.h>

#include "cache/blockstore.h"
#include "index/index.h"

/* The encoded list (xet/chunklist.c) of content cid (size bytes) whose
 * listing says xetHash xet: from <trust_dir>/chunks/ or computed from the
 * stored blocks of a complete, verified blob (then kept there). *out
 * malloc'd. -ENOENT when this cache cannot vouch for one, -EINVAL, -ENOMEM. */
int mfs_serve_chunk_list(const char *trust_dir, struct mfs_ix *ix, struct mfs_bs *bs,
			 const char *xet, const char *cid, uint64_t size, uint8_t **out,
			 size_t *len);

struct mfs_serve;
struct mfs_httpd_req;
struct mfs_httpd_conn;
struct mfs_sv_args;
/* GET /chunks/{xetHash}: the list, with the access rule of /blobs. */
int mfs_sv_route_chunks(struct mfs_serve *s, const struct mfs_httpd_req *rq,
			struct mfs_httpd_conn *c, const struct mfs_sv_args *a);

#endif
