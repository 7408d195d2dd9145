/*
 * once.c - one FUSE request answered exactly once (see once.h for the
 * locking protocol).
 */
#include "fs/once.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct mfs_once {
	pthread_mutex_t mu;
	fuse_req_t req;
	atomic_bool replied;           /* written under mu; read without it by
					* mfs_once_interrupted only */
};

static void once_interrupted(fuse_req_t req, void *data)
{
	struct mfs_once *o = data;

	if (pthread_mutex_trylock(&o->mu) != 0)
		return; /* the owner is claiming: it answers */
	if (!atomic_load(&o->replied)) {
		atomic_store(&o->replied, true);
		fuse_reply_err(req, EINTR);
	}
	pthread_mutex_unlock(&o->mu);
}

struct mfs_once *mfs_once_new(fuse_req_t req)
{
	struct mfs_once *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	pthread_mutex_init(&o->mu, NULL);
	o->req = req;
	atomic_init(&o->replied, false);
	fuse_req_interrupt_func(req, once_interrupted, o);
	return o;
}

fuse_req_t mfs_once_req(const struct mfs_once *o)
{
	return o->req;
}

bool mfs_once_claim(struct mfs_once *o)
{
	if (!o)
		return true;
	pthread_mutex_lock(&o->mu);
	if (atomic_load(&o->replied))
		return false;
	atomic_store(&o->replied, true);
	fuse_req_interrupt_func(o->req, NULL, NULL);
	return true;
}

void mfs_once_end(struct mfs_once *o)
{
	if (!o)
		return;
	pthread_mutex_unlock(&o->mu);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

bool mfs_once_interrupted(struct mfs_once *o)
{
	return o && atomic_load(&o->replied);
}
