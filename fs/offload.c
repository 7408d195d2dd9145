/*
 * offload.c - requests that may wait on the network, on threads of their
 * own (see offload.h for why).
 *
 * Threads are detached and counted; mfs_offload_free waits for the count
 * to reach zero, so the filesystem and catalog they use outlive them.
 */
#include "fs/offload.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/log.h"

struct mfs_offload {
	pthread_mutex_t mu;
	pthread_cond_t idle;     /* signalled when running drops to 0 */
	unsigned running;        /* protected by mu */
	unsigned max;
};

struct job {
	struct mfs_offload *ol;
	fuse_req_t req;
	struct mfs_once *once;
	mfs_offload_fn fn;
	void *arg;
};

int mfs_offload_new(unsigned max_threads, struct mfs_offload **out)
{
	struct mfs_offload *ol = calloc(1, sizeof(*ol));

	if (!ol)
		return -ENOMEM;
	pthread_mutex_init(&ol->mu, NULL);
	pthread_cond_init(&ol->idle, NULL);
	ol->max = max_threads;
	*out = ol;
	return 0;
}

void mfs_offload_free(struct mfs_offload *ol)
{
	if (!ol)
		return;
	pthread_mutex_lock(&ol->mu);
	while (ol->running)
		pthread_cond_wait(&ol->idle, &ol->mu);
	pthread_mutex_unlock(&ol->mu);
	pthread_cond_destroy(&ol->idle);
	pthread_mutex_destroy(&ol->mu);
	free(ol);
}

static void *job_main(void *vj)
{
	struct job *j = vj;
	struct mfs_offload *ol = j->ol;

	j->fn(j->req, j->once, j->arg);
	free(j);
	pthread_mutex_lock(&ol->mu);
	if (--ol->running == 0)
		pthread_cond_broadcast(&ol->idle);
	pthread_mutex_unlock(&ol->mu);
	return NULL;
}

void mfs_offload(struct mfs_offload *ol, fuse_req_t req, mfs_offload_fn fn, void *arg)
{
	struct mfs_once *o = mfs_once_new(req);
	struct job *j = o ? malloc(sizeof(*j)) : NULL;
	pthread_attr_t attr;
	pthread_t t;
	bool ok = false;

	if (!j) {
		/* the guard may exist (answering EINTR already): keep it */
		fn(req, o, arg);
		return;
	}
	*j = (struct job){ .ol = ol, .req = req, .once = o, .fn = fn, .arg = arg };
	pthread_mutex_lock(&ol->mu);
	if (ol->running < ol->max && pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		/* counted before it starts: free waits for it either way */
		ol->running++;
		ok = pthread_create(&t, &attr, job_main, j) == 0;
		if (!ok)
			ol->running--;
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_unlock(&ol->mu);
	if (!ok) {
		mfs_debug("offload: %u requests waiting on the network; this one runs on its "
			  "FUSE worker", ol->max);
		free(j);
		fn(req, o, arg);
	}
}
