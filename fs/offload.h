/*
 * offload.h - FUSE requests whose work may wait on the network (a
 * catalog, tree or revision fetch from the hub) run on threads of their
 * own, never on a FUSE worker, and answer FUSE_INTERRUPT at once.
 *
 * Why threads: a worker blocked in a fetch for up to --fetch-timeout is
 * also a worker that cannot read the FUSE_INTERRUPT meant for it, and
 * libfuse has a bounded number of them. Handing the work off keeps every
 * worker free to read interrupts, and the request's fs/once.h guard lets
 * the interrupt answer EINTR while the work goes on: a fetch other
 * callers share (the catalog serialises listings) is never cancelled and
 * fills the catalog for the next caller; its own answer is dropped.
 *
 * A thread is made per request (they are few: names of orgs and repos,
 * not the files inside a commit, nor reads or cached opens) up to a
 * bound; past it the work runs on the calling thread, still answering
 * the interrupt through the guard (but holding that FUSE worker).
 *
 * It does not decide which requests may wait (fs.c does).
 */
#ifndef MFS_FS_OFFLOAD_H
#define MFS_FS_OFFLOAD_H

#include <fuse_lowlevel.h>

#include "fs/once.h"

struct mfs_offload;

/* The work of one request: answers req only when mfs_once_claim(o) says
 * so, then calls mfs_once_end(o) and frees arg. o may be NULL (once.h). */
typedef void (*mfs_offload_fn)(fuse_req_t req, struct mfs_once *o, void *arg);

/* max_threads: offloaded requests running at once before they run on the
 * caller's thread. */
int mfs_offload_new(unsigned max_threads, struct mfs_offload **out);
/* Waits for every offloaded request to finish, then frees. */
void mfs_offload_free(struct mfs_offload *ol);

/* Runs fn(req, o, arg) (o: req's guard, interrupt registered) on a thread
 * of its own; with max_threads running, on this thread with the guard;
 * out of memory, on this thread with o NULL. */
void mfs_offload(struct mfs_offload *ol, fuse_req_t req, mfs_offload_fn fn, void *arg);

#endif
