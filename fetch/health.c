/*
 * health.c - per-origin up/down state and the prober thread (see health.h).
 *
 * State of one origin, all protected by mfs_healthset.mu:
 *   UP   : n_5xx counts consecutive server errors;
 *   DOWN : since down_since; next_probe is when the prober asks next,
 *          probe_wait the current backoff (probe_min_ms doubling to
 *          probe_max_ms); probing is set while a probe is in flight so
 *          one origin is never probed twice at once.
 * The prober thread is started on the first DOWN (a set that never sees a
 * failure costs no thread) and sleeps on `changed` until the next probe is
 * due, a new origin goes down, or the set is freed. Each due probe runs in
 * a short-lived thread of its own, so a black-holed origin (its probe
 * waits out its connect timeout) does not delay the others' probes.
 */
#include "fetch/health.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fetch/http.h"
#include "util/log.h"
#include "util/size.h"

struct origin {
	char url[256];                 /* scheme://host:port */
	bool down;
	int n_5xx;
	int64_t down_since, down_since_wall;
	int64_t next_probe, probe_wait;
	int64_t last_probe;            /* when the last probe started */
	bool probing;
	char last_error[128];
	int64_t last_error_wall;
	uint64_t downs, probes;
};

struct mfs_healthset {
	struct mfs_health_config cfg;
	struct mfs_http_pool *pool;    /* default probe only; immutable */
	pthread_mutex_t mu;
	pthread_cond_t changed;        /* CLOCK_MONOTONIC; any transition */
	struct origin o[MFS_HEALTH_MAX]; /* protected by mu */
	size_t n;                      /* protected by mu */
	uint64_t ups;                  /* DOWN -> UP transitions; protected by mu */
	int probes_running;            /* probe threads alive; protected by mu */
	bool prober_started;           /* protected by mu */
	bool stopping;                 /* protected by mu */
	pthread_t prober;
};

static int64_t now_of(struct mfs_healthset *hs)
{
	return hs->cfg.now_ms ? hs->cfg.now_ms() : mfs_now_ms();
}

static void abstime_in(int64_t ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int mfs_healthset_new(const struct mfs_health_config *cfg, struct mfs_healthset **out)
{
	struct mfs_healthset *hs = calloc(1, sizeof(*hs));
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!hs)
		return -ENOMEM;
	if (cfg)
		hs->cfg = *cfg;
	if (hs->cfg.max_server_errors <= 0)
		hs->cfg.max_server_errors = 3;
	if (hs->cfg.probe_min_ms <= 0)
		hs->cfg.probe_min_ms = 1000;
	if (hs->cfg.probe_max_ms < hs->cfg.probe_min_ms)
		hs->cfg.probe_max_ms = hs->cfg.probe_min_ms > 30000 ? hs->cfg.probe_min_ms : 30000;
	if (!hs->cfg.probe) {
		rc = mfs_http_pool_new(&hs->pool);
		if (rc < 0) {
			free(hs);
			return rc;
		}
		hs->cfg.probe = mfs_health_http_probe;
		hs->cfg.probe_ctx = hs->pool;
	}
	pthread_mutex_init(&hs->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hs->changed, &ca);
	pthread_condattr_destroy(&ca);
	*out = hs;
	return 0;
}

void mfs_healthset_free(struct mfs_healthset *hs)
{
	bool join;

	if (!hs)
		return;
	pthread_mutex_lock(&hs->mu);
	hs->stopping = true;
	join = hs->prober_started;
	pthread_cond_broadcast(&hs->changed);
	pthread_mutex_unlock(&hs->mu);
	if (join)
		pthread_join(hs->prober, NULL);
	/* probes in flight end within their own timeout */
	pthread_mutex_lock(&hs->mu);
	while (hs->probes_running > 0)
		pthread_cond_wait(&hs->changed, &hs->mu);
	pthread_mutex_unlock(&hs->mu);
	mfs_http_pool_free(hs->pool);
	pthread_cond_destroy(&hs->changed);
	pthread_mutex_destroy(&hs->mu);
	free(hs);
}

int mfs_health_id(struct mfs_healthset *hs, const char *url)
{
	char o[256];
	int id = -E2BIG;

	if (!hs || !url || mfs_http_url_origin(url, o, sizeof(o)) < 0)
		return -EINVAL;
	pthread_mutex_lock(&hs->mu);
	for (size_t i = 0; i < hs->n; i++)
		if (strcmp(hs->o[i].url, o) == 0) {
			id = (int)i;
			break;
		}
	if (id < 0 && hs->n < MFS_HEALTH_MAX) {
		struct origin *x = &hs->o[hs->n];
		memset(x, 0, sizeof(*x));
		memcpy(x->url, o, sizeof(x->url));
		id = (int)hs->n++;
	}
	pthread_mutex_unlock(&hs->mu);
	return id;
}

static bool valid(struct mfs_healthset *hs, int id)
{
	/* n only grows: an id once handed out stays valid */
	return hs && id >= 0 && id < MFS_HEALTH_MAX && (size_t)id < hs->n;
}

bool mfs_health_up(struct mfs_healthset *hs, int id)
{
	bool up;

	if (!hs || id < 0)
		return true; /* untracked: nothing known against it */
	pthread_mutex_lock(&hs->mu);
	up = (size_t)id >= hs->n || !hs->o[id].down;
	pthread_mutex_unlock(&hs->mu);
	return up;
}

static void *prober_main(void *arg);

/* Takes x down (under mu). */
static void go_down_locked(struct mfs_healthset *hs, struct origin *x, int64_t now)
{
	x->down = true;
	x->n_5xx = 0;
	x->down_since = now;
	x->down_since_wall = mfs_wall_ms();
	x->probe_wait = hs->cfg.probe_min_ms;
	x->next_probe = now + x->probe_wait;
	x->downs++;
	if (!hs->prober_started && !hs->cfg.no_prober && !hs->stopping &&
	    pthread_create(&hs->prober, NULL, prober_main, hs) == 0)
		hs->prober_started = true;
	pthread_cond_broadcast(&hs->changed);
}

static void go_up_locked(struct mfs_healthset *hs, struct origin *x)
{
	x->down = false;
	x->n_5xx = 0;
	x->down_since = x->down_since_wall = 0;
	x->probe_wait = 0;
	hs->ups++;
	pthread_cond_broadcast(&hs->changed);
}

bool mfs_health_note(struct mfs_healthset *hs, int id, enum mfs_health_event ev,
		     const char *why)
{
	struct origin *x;
	bool went_down = false, came_up = false;
	char url[256], err[128] = "";
	int64_t now;

	if (!valid(hs, id))
		return false;
	now = now_of(hs);
	pthread_mutex_lock(&hs->mu);
	x = &hs->o[id];
	if (ev != MFS_HEV_OK && why) {
		snprintf(x->last_error, sizeof(x->last_error), "%s", why);
		x->last_error_wall = mfs_wall_ms();
	}
	if (ev == MFS_HEV_OK) {
		x->n_5xx = 0;
		if (x->down) {
			go_up_locked(hs, x);
			came_up = true;
		}
	} else if (!x->down) {
		if (ev == MFS_HEV_TRANSPORT || ++x->n_5xx >= hs->cfg.max_server_errors) {
			go_down_locked(hs, x, now);
			went_down = true;
		}
	}
	memcpy(url, x->url, sizeof(url));
	memcpy(err, x->last_error, sizeof(err));
	pthread_mutex_unlock(&hs->mu);
	if (went_down)
		mfs_warn("source %s is down (%s); readers fail at once, probing it in the background",
			 url, err[0] ? err : "failed");
	if (came_up)
		mfs_info("source %s is up again", url);
	return went_down;
}

void mfs_health_want(struct mfs_healthset *hs, int id)
{
	int64_t now;

	if (!valid(hs, id))
		return;
	now = now_of(hs);
	pthread_mutex_lock(&hs->mu);
	/* Every down origin, not only id: a reader waiting on the hub needs
	 * the CDN it redirects to next, and should not find it still waiting
	 * out a long backoff once the hub is back. */
	for (size_t i = 0; i < hs->n; i++) {
		struct origin *x = &hs->o[i];
		if (!x->down || x->probing || x->next_probe <= now)
			continue;
		int64_t earliest = (x->last_probe ? x->last_probe : x->down_since) +
				   hs->cfg.probe_min_ms;
		int64_t at = earliest > now ? earliest : now;
		if (at < x->next_probe) {
			x->next_probe = at;
			pthread_cond_broadcast(&hs->changed);
		}
	}
	pthread_mutex_unlock(&hs->mu);
}

bool mfs_health_sleep(struct mfs_healthset *hs, int id, int64_t ms)
{
	struct timespec ts;
	bool up = true;

	if (ms <= 0)
		return mfs_health_up(hs, id);
	if (!valid(hs, id)) {
		struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
		while (nanosleep(&t, &t) != 0 && errno == EINTR)
			;
		return true;
	}
	abstime_in(ms, &ts);
	pthread_mutex_lock(&hs->mu);
	while (!hs->o[id].down && !hs->stopping) {
		if (pthread_cond_timedwait(&hs->changed, &hs->mu, &ts) == ETIMEDOUT)
			break;
	}
	up = !hs->o[id].down;
	pthread_mutex_unlock(&hs->mu);
	return up;
}

bool mfs_health_wait_up(struct mfs_healthset *hs, int id, int64_t timeout_ms)
{
	struct timespec ts;
	bool up;

	if (!valid(hs, id))
		return true;
	abstime_in(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&hs->mu);
	while (hs->o[id].down && !hs->stopping && timeout_ms > 0) {
		if (pthread_cond_timedwait(&hs->changed, &hs->mu, &ts) == ETIMEDOUT)
			break;
	}
	up = !hs->o[id].down;
	pthread_mutex_unlock(&hs->mu);
	return up;
}

uint64_t mfs_health_ups(struct mfs_healthset *hs)
{
	uint64_t n;

	if (!hs)
		return 0;
	pthread_mutex_lock(&hs->mu);
	n = hs->ups;
	pthread_mutex_unlock(&hs->mu);
	return n;
}

bool mfs_health_wait_ups(struct mfs_healthset *hs, uint64_t seen, int64_t timeout_ms)
{
	struct timespec ts;
	bool moved;

	if (!hs)
		return false;
	abstime_in(timeout_ms > 0 ? timeout_ms : 0, &ts);
	pthread_mutex_lock(&hs->mu);
	while (hs->ups == seen && !hs->stopping && timeout_ms > 0) {
		if (pthread_cond_timedwait(&hs->changed, &hs->mu, &ts) == ETIMEDOUT)
			break;
	}
	moved = hs->ups != seen;
	pthread_mutex_unlock(&hs->mu);
	return moved;
}

/* Claims the next due probe (under mu): its id, or -1 and *wait_ms until
 * the earliest one is due (-1: none pending). */
static int claim_due_locked(struct mfs_healthset *hs, int64_t now, int64_t *wait_ms)
{
	*wait_ms = -1;
	for (size_t i = 0; i < hs->n; i++) {
		struct origin *x = &hs->o[i];
		if (!x->down || x->probing)
			continue;
		if (x->next_probe <= now) {
			x->probing = true;
			x->last_probe = now;
			x->probes++;
			return (int)i;
		}
		if (*wait_ms < 0 || x->next_probe - now < *wait_ms)
			*wait_ms = x->next_probe - now;
	}
	return -1;
}

static void probe_one(struct mfs_healthset *hs, int id)
{
	char url[256], why[128], got[100] = "";
	int rc;
	bool came_up = false;

	pthread_mutex_lock(&hs->mu);
	memcpy(url, hs->o[id].url, sizeof(url));
	pthread_mutex_unlock(&hs->mu);
	rc = hs->cfg.probe(hs->cfg.probe_ctx, url, got, sizeof(got));
	pthread_mutex_lock(&hs->mu);
	struct origin *x = &hs->o[id];
	x->probing = false;
	if (rc == 0) {
		if (x->down) {
			go_up_locked(hs, x);
			came_up = true;
		}
	} else if (x->down) {
		snprintf(why, sizeof(why), "probe: %s", got[0] ? got : strerror(-rc));
		memcpy(x->last_error, why, sizeof(why));
		x->last_error_wall = mfs_wall_ms();
		x->probe_wait = x->probe_wait * 2 > hs->cfg.probe_max_ms ? hs->cfg.probe_max_ms
									 : x->probe_wait * 2;
		x->next_probe = now_of(hs) + x->probe_wait;
	}
	pthread_mutex_unlock(&hs->mu);
	if (came_up)
		mfs_info("source %s answers a probe: up again", url);
}

int mfs_health_probe_now(struct mfs_healthset *hs)
{
	int n = 0, id;
	int64_t wait;

	for (;;) {
		pthread_mutex_lock(&hs->mu);
		id = claim_due_locked(hs, now_of(hs), &wait);
		pthread_mutex_unlock(&hs->mu);
		if (id < 0)
			return n;
		probe_one(hs, id);
		n++;
	}
}

struct probe_job {
	struct mfs_healthset *hs;
	int id;
};

static void *probe_thread(void *arg)
{
	struct probe_job *j = arg;
	struct mfs_healthset *hs = j->hs;

	probe_one(hs, j->id);
	free(j);
	pthread_mutex_lock(&hs->mu);
	hs->probes_running--;
	pthread_cond_broadcast(&hs->changed);
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

/* Runs the probe of id in a detached thread (called under mu; inline,
 * dropping mu, when no thread can be made). */
static void start_probe_locked(struct mfs_healthset *hs, int id)
{
	struct probe_job *j = malloc(sizeof(*j));
	pthread_attr_t a;
	pthread_t t;
	bool ok = false;

	if (j) {
		j->hs = hs;
		j->id = id;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		hs->probes_running++;
		ok = pthread_create(&t, &a, probe_thread, j) == 0;
		pthread_attr_destroy(&a);
		if (!ok) {
			hs->probes_running--;
			free(j);
		}
	}
	if (!ok) {
		pthread_mutex_unlock(&hs->mu);
		probe_one(hs, id);
		pthread_mutex_lock(&hs->mu);
	}
}

static void *prober_main(void *arg)
{
	struct mfs_healthset *hs = arg;

	pthread_mutex_lock(&hs->mu);
	while (!hs->stopping) {
		int64_t wait;
		int id = claim_due_locked(hs, now_of(hs), &wait);
		if (id >= 0) {
			start_probe_locked(hs, id);
			continue;
		}
		if (wait < 0) {
			pthread_cond_wait(&hs->changed, &hs->mu);
		} else {
			struct timespec ts;
			abstime_in(wait, &ts);
			pthread_cond_timedwait(&hs->changed, &hs->mu, &ts);
		}
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

static void snap_locked(struct mfs_healthset *hs, const struct origin *x, int64_t now,
			struct mfs_health_snap *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->origin, x->url, sizeof(s->origin));
	s->up = !x->down;
	if (x->down) {
		s->down_since_wall_ms = x->down_since_wall;
		s->down_for_ms = now - x->down_since;
		s->next_probe_in_ms = x->probing || x->next_probe <= now ? 0 : x->next_probe - now;
	}
	memcpy(s->last_error, x->last_error, sizeof(s->last_error));
	s->last_error_wall_ms = x->last_error_wall;
	s->downs = x->downs;
	s->probes = x->probes;
	(void)hs;
}

size_t mfs_health_snapshot(struct mfs_healthset *hs, struct mfs_health_snap *out, size_t cap)
{
	size_t n;
	int64_t now;

	if (!hs)
		return 0;
	now = now_of(hs);
	pthread_mutex_lock(&hs->mu);
	n = hs->n;
	for (size_t i = 0; i < n && i < cap; i++)
		snap_locked(hs, &hs->o[i], now, &out[i]);
	pthread_mutex_unlock(&hs->mu);
	return n;
}

int mfs_health_get(struct mfs_healthset *hs, int id, struct mfs_health_snap *out)
{
	int64_t now;

	if (!valid(hs, id))
		return -ENOENT;
	now = now_of(hs);
	pthread_mutex_lock(&hs->mu);
	snap_locked(hs, &hs->o[id], now, out);
	pthread_mutex_unlock(&hs->mu);
	return 0;
}

void mfs_health_note_exchange(struct mfs_healthset *hs, int id, int curl_code,
			      const struct mfs_http_resp *r, bool connected)
{
	CURLcode cc = (CURLcode)curl_code;
	char why[128];

	if (!valid(hs, id))
		return;
	if (r->status != 0 && (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)) {
		if (r->status == 500 || r->status == 502 || r->status == 503 || r->status == 504) {
			snprintf(why, sizeof(why), "HTTP %ld", r->status);
			mfs_health_note(hs, id, MFS_HEV_SERVER_ERR, why);
		} else {
			mfs_health_note(hs, id, MFS_HEV_OK, NULL);
		}
		return;
	}
	if (cc == CURLE_OK || cc == CURLE_WRITE_ERROR || cc == CURLE_OUT_OF_MEMORY ||
	    cc == CURLE_URL_MALFORMAT)
		return;
	if (r->dead_path) {
		/* nothing acknowledged at the TCP level: reused connection or
		 * not, that is no stale socket but an outage */
		snprintf(why, sizeof(why), "no answer: nothing acknowledged in %d ms",
			 MFS_HTTP_DEAD_MS);
		mfs_health_note(hs, id, MFS_HEV_TRANSPORT, why);
		return;
	}
	if (!connected || (r->new_conn && r->body_bytes == 0)) {
		snprintf(why, sizeof(why), "%s%s", curl_easy_strerror(cc),
			 r->status ? " after the headers" : "");
		mfs_health_note(hs, id, MFS_HEV_TRANSPORT, why);
	}
}

int mfs_health_http_probe(void *ctx, const char *origin, char *why, size_t whycap)
{
	struct mfs_http_pool *pool = ctx;
	struct mfs_http_resp resp;
	char url[300];
	bool connected = false;
	CURLcode cc;
	int rc;

	snprintf(url, sizeof(url), "%s/", origin);
	mfs_http_resp_init(&resp);
	{
		struct mfs_http_req req = { .url = url, .timeout_ms = 2000,
					    .connect_timeout_ms = 1000, .dead_ms = MFS_HTTP_DEAD_MS,
					    .body = mfs_http_body_stop };
		cc = mfs_http_perform(pool, &req, &resp, &connected);
	}
	if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && resp.status != 0)) {
		rc = resp.status >= 500 ? -EIO : 0;
		snprintf(why, whycap, "HTTP %ld", resp.status);
	} else {
		rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : !connected ? -EHOSTDOWN
									  : -ECONNRESET;
		snprintf(why, whycap, "%s", curl_easy_strerror(cc));
	}
	mfs_http_resp_clear(&resp);
	return rc;
}
