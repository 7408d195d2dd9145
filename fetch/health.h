/*
 * health.h - one up/down state per source origin (the hub, each CDN host,
 * each mirror and peer), fed by every transfer, and the background probes
 * that bring a down origin back.
 *
 * What it does:
 *   - keeps, per origin ("scheme://host:port"), a state UP or DOWN. UP ->
 *     DOWN on the first transport-level failure on a fresh connection
 *     (refused, reset, closed without a reply, connect timeout, TLS) or on
 *     max_server_errors consecutive 5xx answers. Any other HTTP answer
 *     (2xx-4xx, 429 included: the origin is there) resets the 5xx count;
 *   - readers ask mfs_health_up() before touching the network and fail at
 *     once when the origin is down: no reader ever waits on a down origin;
 *   - only probes bring an origin back: a prober thread (started on the
 *     first DOWN) sends the configured cheap request to each down origin,
 *     first probe_min_ms after going down, then doubling up to
 *     probe_max_ms; a probe that gets an answer puts the origin UP at once
 *     (and resets the backoff). A reader's success also counts as UP;
 *   - wakes waiters (mfs_health_wait_up, mfs_health_sleep) on every
 *     transition;
 *   - snapshots for `modelfs status`: up, or down since when, last error,
 *     next probe.
 *
 * What it does not do: decide what a failure is (the callers classify:
 * fetch/hub.c, fetch/peer.c), retry anything, log secrets (origins only:
 * no path, no query, no credentials).
 *
 * Thread-safe; one mutex per set, never held across a probe.
 */
#ifndef MFS_FETCH_HEALTH_H
#define MFS_FETCH_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most origins one set tracks (sources plus the CDN hosts they redirect to). */
#define MFS_HEALTH_MAX 64

enum mfs_health_event {
	MFS_HEV_OK,          /* an HTTP answer that is not a server error */
	MFS_HEV_SERVER_ERR,  /* 500, 502, 503, 504 */
	MFS_HEV_TRANSPORT,   /* fresh connection refused, reset, closed, timed out */
};

/* The probe: 0 when the origin answered (any status below 500), -errno
 * otherwise, with what went wrong in why (may be left empty). Must bound
 * its own time (a short timeout). */
typedef int (*mfs_health_probe_fn)(void *ctx, const char *origin, char *why, size_t whycap);

struct mfs_health_config {
	int max_server_errors;       /* consecutive 5xx that take it down; default 3 */
	int64_t probe_min_ms;        /* first probe after going down; default 1000 */
	int64_t probe_max_ms;        /* cap of the doubling; default 30000 */
	mfs_health_probe_fn probe;   /* NULL: mfs_health_http_probe (HEAD origin/) */
	void *probe_ctx;
	int64_t (*now_ms)(void);     /* monotonic clock; NULL: mfs_now_ms (tests) */
	bool no_prober;              /* tests: probes only via mfs_health_probe_now */
};

struct mfs_healthset;

int mfs_healthset_new(const struct mfs_health_config *cfg, struct mfs_healthset **out);
/* Stops the prober (waits for a probe in progress, which is short). */
void mfs_healthset_free(struct mfs_healthset *hs);

/* Id of url's origin, registered on first sight: >= 0, -EINVAL (not an
 * http(s) URL), -E2BIG (table full: callers then run without health). */
int mfs_health_id(struct mfs_healthset *hs, const char *url);

bool mfs_health_up(struct mfs_healthset *hs, int id);

/* One transfer's outcome. why (may be NULL) is kept as the last error.
 * Returns true when this event took the origin down. */
bool mfs_health_note(struct mfs_healthset *hs, int id, enum mfs_health_event ev,
		     const char *why);

/* A reader wanted a down origin: bring the next probe of every down
 * origin forward to now (the one asked for, and those it may redirect
 * to), but at most one probe per origin per probe_min_ms (the reader
 * still fails at once; while readers keep asking, a returning origin is
 * noticed within about probe_min_ms instead of up to probe_max_ms). */
void mfs_health_want(struct mfs_healthset *hs, int id);

/* Classifies one HTTP exchange (fetch/http.h: its CURLcode, response and
 * whether a connection was made) and feeds it to origin id: an HTTP answer
 * is OK or a server error; a failure is TRANSPORT only when no connection
 * was made, or a fresh one failed before any body byte (a reused socket
 * may just have gone stale; a transfer broken after progress is resumed,
 * not a dead source), or when the path was found dead (resp->dead_path:
 * nothing acknowledged at the TCP level, on any connection). Our own
 * abort of an answer counts as the answer. */
struct mfs_http_resp;
void mfs_health_note_exchange(struct mfs_healthset *hs, int id, int curl_code,
			      const struct mfs_http_resp *r, bool connected);

/* Sleeps up to ms; returns false early when origin id goes down meanwhile
 * (a retry backoff that should not outlive its source). */
bool mfs_health_sleep(struct mfs_healthset *hs, int id, int64_t ms);

/* Waits up to timeout_ms for origin id to be up; true if it is. */
bool mfs_health_wait_up(struct mfs_healthset *hs, int id, int64_t timeout_ms);

/* Count of DOWN -> UP transitions of any origin so far, and a wait for
 * the next one: true when the count moved past `seen` within timeout_ms.
 * The block layer holds a repeated read of a blob that just failed on
 * this, so a loader's retry loop neither spins nor misses the return. */
uint64_t mfs_health_ups(struct mfs_healthset *hs);
bool mfs_health_wait_ups(struct mfs_healthset *hs, uint64_t seen, int64_t timeout_ms);

/* Runs the due probes now, in the caller's thread (tests, no_prober sets).
 * Returns the number of probes sent. */
int mfs_health_probe_now(struct mfs_healthset *hs);

struct mfs_health_snap {
	char origin[256];
	bool up;
	int64_t down_since_wall_ms;  /* unix ms; 0 when up */
	int64_t down_for_ms;         /* 0 when up */
	int64_t next_probe_in_ms;    /* when down; 0 = due now */
	char last_error[128];        /* "" = none yet */
	int64_t last_error_wall_ms;
	uint64_t downs;              /* UP -> DOWN transitions */
	uint64_t probes;             /* probes sent */
};
/* Fills up to cap entries; returns the number of origins. */
size_t mfs_health_snapshot(struct mfs_healthset *hs, struct mfs_health_snap *out, size_t cap);
/* One origin's entry; -ENOENT when not tracked. */
int mfs_health_get(struct mfs_healthset *hs, int id, struct mfs_health_snap *out);

/* The default probe: GET {origin}/ stopped at its first body byte, with
 * a 1 s connect and 2 s total timeout, no credentials. */
int mfs_health_http_probe(void *ctx, const char *origin, char *why, size_t whycap);

#endif
