/*
 * src_hub.c - the hub and mirror kinds of source (source.h): both speak the
 * hub's /resolve protocol through a struct mfs_hub (hub.h); a mirror's
 * client belongs to the source set, the hub's to whoever passed it in.
 *
 * It does not order, fail over or keep health: that is source.c.
 */
#include "fetch/source.h"

static int src_hub_read(void *conn, const struct mfs_src_read *rq, uint64_t off, uint64_t len,
			mfs_sink_fn sink, void *ctx)
{
	return mfs_hub_read(conn, &rq->file, off, len, sink, ctx);
}

static int src_hub_probe(void *conn, const struct mfs_src_read *rq)
{
	return mfs_hub_probe(conn, &rq->file);
}

static void src_mirror_destroy(void *conn)
{
	mfs_hub_free(conn);
}

const struct mfs_src_ops mfs_src_hub_ops = {
	.kind = MFS_SRC_HUB,
	.read = src_hub_read,
	.probe = src_hub_probe,
};

const struct mfs_src_ops mfs_src_mirror_ops = {
	.kind = MFS_SRC_MIRROR,
	.read = src_hub_read,
	.probe = src_hub_probe,
	.destroy = src_mirror_destroy,
};
