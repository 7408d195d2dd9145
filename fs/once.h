/*
 * once.h - one FUSE request answered exactly once: by the code doing its
 * work, or at once with EINTR when its caller was signalled.
 *
 * The kernel sends FUSE_INTERRUPT when a process waiting on a request gets
 * a signal; a SIGKILLed process is not reaped until its request is
 * answered. libfuse calls the interrupt function registered here (from
 * another FUSE worker), which answers EINTR on the spot; the work goes on
 * (a fetch other callers share is not cancelled) and its answer is dropped.
 *
 * Protocol: libfuse calls the interrupt function with the request's own
 * lock held; mfs_once_claim takes `mu`, then unregisters the function
 * (which takes the request's lock), and the interrupt function only
 * try-locks `mu`, so neither waits on the other. After the claim no
 * interrupt call can still be running, so mfs_once_end may free.
 *
 * It does not do the work or pick threads (fs/offload.h does).
 */
#ifndef MFS_FS_ONCE_H
#define MFS_FS_ONCE_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

struct mfs_once;

/* Takes charge of answering req and registers its interrupt function (if
 * the caller was signalled already, req is answered EINTR before this
 * returns). NULL when out of memory: nothing registered, the caller
 * answers req itself. */
struct mfs_once *mfs_once_new(fuse_req_t req);

fuse_req_t mfs_once_req(const struct mfs_once *o);

/* true: req is still owed its answer, and only the caller may give it now
 * (between this and mfs_once_end); false: req was answered with EINTR and
 * must not be touched. Call once, then mfs_once_end. These three accept
 * o NULL (a request without a guard): claim is then true, end a no-op. */
bool mfs_once_claim(struct mfs_once *o);

/* Ends the claim and frees o. */
void mfs_once_end(struct mfs_once *o);

/* true when req was answered with EINTR already: work nobody waits for
 * may be skipped (a hint; mfs_once_claim decides). */
bool mfs_once_interrupted(struct mfs_once *o);

#endif
