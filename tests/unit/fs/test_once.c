/*
 * test_once.c - fs/once.h (a FUSE request answered exactly once, by its
 * owner or by FUSE_INTERRUPT) and fs/offload.h (requests on threads of
 * their own), against a stand-in for the two libfuse calls they make that
 * follows libfuse's locking: the interrupt function is called with the
 * request's lock held, and registering takes that lock.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "fs/offload.h"
#include "fs/once.h"

/* fuse_req_t is opaque to the code under test: this is the stand-in. */
struct fuse_req {
	pthread_mutex_t lock;
	fuse_interrupt_func_t func;
	void *data;
	bool interrupted;
	atomic_int replies;        /* every answer, EINTR or the owner's */
	atomic_int eintr;
};

void fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void *data)
{
	pthread_mutex_lock(&req->lock);
	req->func = func;
	req->data = data;
	if (req->interrupted && func)
		func(req, data);
	pthread_mutex_unlock(&req->lock);
}

int fuse_reply_err(fuse_req_t req, int err)
{
	atomic_fetch_add(&req->replies, 1);
	if (err == EINTR)
		atomic_fetch_add(&req->eintr, 1);
	return 0;
}

/* What libfuse does on FUSE_INTERRUPT for this request. */
static void interrupt(fuse_req_t req)
{
	pthread_mutex_lock(&req->lock);
	req->interrupted = true;
	if (req->func)
		req->func(req, req->data);
	pthread_mutex_unlock(&req->lock);
}

static void req_init(struct fuse_req *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
}

/* The owner's answer (a stand-in for fuse_reply_entry and the like). */
static void owner_reply(fuse_req_t req)
{
	atomic_fetch_add(&req->replies, 1);
}

Test(once, the_owner_answers_and_a_later_interrupt_does_nothing)
{
	struct fuse_req r;
	req_init(&r);
	struct mfs_once *o = mfs_once_new(&r);

	cr_assert_not_null(o);
	cr_assert_not_null(r.func, "the interrupt function is registered");
	cr_assert_not(mfs_once_interrupted(o));
	cr_assert(mfs_once_claim(o));
	cr_assert_null(r.func, "the claim unregisters it");
	owner_reply(&r);
	mfs_once_end(o);
	interrupt(&r);
	cr_assert_eq(r.replies, 1);
	cr_assert_eq(r.eintr, 0);
}

Test(once, an_interrupt_answers_eintr_at_once_and_the_owner_does_not)
{
	struct fuse_req r;
	req_init(&r);
	struct mfs_once *o = mfs_once_new(&r);

	interrupt(&r);
	cr_assert_eq(r.eintr, 1);
	cr_assert(mfs_once_interrupted(o));
	interrupt(&r); /* a second one finds it answered */
	cr_assert_not(mfs_once_claim(o));
	mfs_once_end(o);
	cr_assert_eq(r.replies, 1);
}

Test(once, a_caller_signalled_before_registration_is_answered_by_new)
{
	struct fuse_req r;
	req_init(&r);
	r.interrupted = true; /* libfuse saw the FUSE_INTERRUPT first */
	struct mfs_once *o = mfs_once_new(&r);

	cr_assert_eq(r.eintr, 1);
	cr_assert_not(mfs_once_claim(o));
	mfs_once_end(o);
	cr_assert_eq(r.replies, 1);
}

Test(once, no_guard_means_the_caller_answers)
{
	cr_assert(mfs_once_claim(NULL));
	mfs_once_end(NULL);
	cr_assert_not(mfs_once_interrupted(NULL));
}

struct race {
	struct fuse_req r;
	struct mfs_once *o;
	pthread_barrier_t go;
};

static void *race_owner(void *arg)
{
	struct race *x = arg;

	pthread_barrier_wait(&x->go);
	if (mfs_once_claim(x->o))
		owner_reply(&x->r);
	mfs_once_end(x->o);
	return NULL;
}

Test(once, owner_and_interrupt_racing_answer_exactly_once)
{
	int eintr = 0;

	for (int i = 0; i < 20000; i++) {
		struct race x;
		pthread_t t;
		req_init(&x.r);
		pthread_barrier_init(&x.go, NULL, 2);
		x.o = mfs_once_new(&x.r);
		pthread_create(&t, NULL, race_owner, &x);
		pthread_barrier_wait(&x.go);
		interrupt(&x.r);
		pthread_join(t, NULL);
		cr_assert_eq(x.r.replies, 1, "iteration %d: %d answers", i, (int)x.r.replies);
		eintr += x.r.eintr;
		pthread_barrier_destroy(&x.go);
		pthread_mutex_destroy(&x.r.lock);
	}
	cr_log_info("interrupt won %d of 20000 races", eintr);
}

/* ---- offload ---------------------------------------------------------------- */

struct job {
	pthread_t caller;
	bool ran_elsewhere;
	atomic_bool *release;      /* the work waits for this */
	atomic_int *done;
};

static void work(fuse_req_t req, struct mfs_once *o, void *arg)
{
	struct job *j = arg;

	j->ran_elsewhere = !pthread_equal(pthread_self(), j->caller);
	while (j->release && !atomic_load(j->release))
		usleep(1000);
	if (mfs_once_claim(o))
		owner_reply(req);
	mfs_once_end(o);
	atomic_fetch_add(j->done, 1);
}

Test(offload, work_runs_off_the_caller_and_an_interrupt_answers_meanwhile)
{
	struct mfs_offload *ol;
	struct fuse_req r;
	atomic_bool release = false;
	atomic_int done = 0;
	struct job j = { .caller = pthread_self(), .release = &release, .done = &done };

	cr_assert_eq(mfs_offload_new(4, &ol), 0);
	req_init(&r);
	mfs_offload(ol, &r, work, &j); /* returns while the work waits */
	interrupt(&r);
	cr_assert_eq(r.eintr, 1, "answered while the work still runs");
	atomic_store(&release, true);
	mfs_offload_free(ol); /* waits for it */
	cr_assert_eq(done, 1);
	cr_assert(j.ran_elsewhere);
	cr_assert_eq(r.replies, 1, "the work's own answer was dropped");
}

Test(offload, past_the_bound_the_caller_runs_it_still_guarded)
{
	struct mfs_offload *ol;
	struct fuse_req r1, r2;
	atomic_bool release = false;
	atomic_int done = 0;
	struct job held = { .caller = pthread_self(), .release = &release, .done = &done };
	struct job inl = { .caller = pthread_self(), .done = &done };

	cr_assert_eq(mfs_offload_new(1, &ol), 0);
	req_init(&r1);
	req_init(&r2);
	mfs_offload(ol, &r1, work, &held);
	mfs_offload(ol, &r2, work, &inl);
	cr_assert_not(inl.ran_elsewhere);
	cr_assert_eq(r2.replies, 1);
	cr_assert_null(r2.func, "its guard was claimed");
	atomic_store(&release, true);
	mfs_offload_free(ol);
	cr_assert_eq(done, 2);
	cr_assert_eq(r1.replies, 1);
}
