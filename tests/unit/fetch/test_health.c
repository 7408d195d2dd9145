/*
 * test_health.c - the per-origin health state machine with a fake clock
 * and a fake probe: what takes an origin down, that only probes (or a
 * reader's success) bring it back, the probe backoff (1 s doubling to
 * 30 s, reset on success), waiters woken by transitions, snapshots; and
 * the real HTTP probe against ports nothing listens on.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fetch/health.h"
#include "fetch/http.h"
#include "fetch/source.h"
#include "util/size.h"

static int64_t fake_now;
static int64_t clock_fn(void)
{
	return fake_now;
}

static int probe_rc;
static int probe_calls;
static char probe_seen[256];
static int fake_probe(void *ctx, const char *origin, char *why, size_t whycap)
{
	(void)ctx;
	(void)why;
	(void)whycap;
	probe_calls++;
	snprintf(probe_seen, sizeof(probe_seen), "%s", origin);
	return probe_rc;
}

static int discard_sink(void *ctx, uint64_t off, const void *d, size_t n)
{
	(void)ctx;
	(void)off;
	(void)d;
	(void)n;
	return 0;
}

static struct mfs_healthset *new_set(void)
{
	struct mfs_health_config c = { .probe = fake_probe, .now_ms = clock_fn,
				       .no_prober = true };
	struct mfs_healthset *hs;

	fake_now = 1000000;
	probe_rc = 0;
	probe_calls = 0;
	probe_seen[0] = '\0';
	cr_assert_eq(mfs_healthset_new(&c, &hs), 0);
	return hs;
}

Test(health, origins_are_normalised_and_shared)
{
	struct mfs_healthset *hs = new_set();
	int a = mfs_health_id(hs, "http://Hub.example:80/models/x?y=1");
	int b = mfs_health_id(hs, "http://hub.example/api");
	int c = mfs_health_id(hs, "https://hub.example/");

	cr_assert_geq(a, 0);
	cr_assert_eq(a, b, "same scheme://host:port is one origin");
	cr_assert_neq(a, c, "another port is another origin");
	cr_assert_eq(mfs_health_id(hs, "ftp://x/"), -EINVAL);
	cr_assert(mfs_health_up(hs, a), "a new origin is up");
	cr_assert(mfs_health_up(hs, -1), "untracked is never held against anyone");
	mfs_healthset_free(hs);
}

Test(health, first_transport_failure_takes_it_down)
{
	struct mfs_healthset *hs = new_set();
	int a = mfs_health_id(hs, "http://h:1");
	struct mfs_health_snap s;

	cr_assert(mfs_health_note(hs, a, MFS_HEV_TRANSPORT, "connection refused"));
	cr_assert_not(mfs_health_up(hs, a));
	cr_assert_not(mfs_health_note(hs, a, MFS_HEV_TRANSPORT, "again"), "already down");
	cr_assert_eq(mfs_health_get(hs, a, &s), 0);
	cr_assert_not(s.up);
	cr_assert_str_eq(s.origin, "http://h:1");
	cr_assert_str_eq(s.last_error, "again");
	cr_assert_eq(s.downs, 1);
	cr_assert_eq(s.next_probe_in_ms, 1000, "first probe after 1 s");
	cr_assert_gt(s.down_since_wall_ms, 0);
	mfs_healthset_free(hs);
}

Test(health, n_consecutive_server_errors_take_it_down)
{
	struct mfs_healthset *hs = new_set();
	int a = mfs_health_id(hs, "http://h:1");

	cr_assert_not(mfs_health_note(hs, a, MFS_HEV_SERVER_ERR, "HTTP 503"));
	cr_assert_not(mfs_health_note(hs, a, MFS_HEV_SERVER_ERR, "HTTP 503"));
	mfs_health_note(hs, a, MFS_HEV_OK, NULL); /* an answer in between resets */
	cr_assert_not(mfs_health_note(hs, a, MFS_HEV_SERVER_ERR, "HTTP 503"));
	cr_assert_not(mfs_health_note(hs, a, MFS_HEV_SERVER_ERR, "HTTP 503"));
	cr_assert(mfs_health_up(hs, a));
	cr_assert(mfs_health_note(hs, a, MFS_HEV_SERVER_ERR, "HTTP 503"), "third in a row");
	cr_assert_not(mfs_health_up(hs, a));
	mfs_healthset_free(hs);
}

Test(health, probes_back_off_1s_doubling_to_30s_and_bring_it_back)
{
	struct mfs_healthset *hs = new_set();
	int a = mfs_health_id(hs, "http://h:1");
	int64_t want[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
	struct mfs_health_snap s;

	mfs_health_note(hs, a, MFS_HEV_TRANSPORT, "reset");
	probe_rc = -EHOSTDOWN;
	cr_assert_eq(mfs_health_probe_now(hs), 0, "nothing due before 1 s");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		mfs_health_get(hs, a, &s);
		cr_assert_eq(s.next_probe_in_ms, want[i], "step %zu: %lld", i,
			     (long long)s.next_probe_in_ms);
		fake_now += want[i] - 1;
		cr_assert_eq(mfs_health_probe_now(hs), 0);
		fake_now += 1;
		cr_assert_eq(mfs_health_probe_now(hs), 1);
		cr_assert_not(mfs_health_up(hs, a));
	}
	cr_assert_str_eq(probe_seen, "http://h:1");
	mfs_health_get(hs, a, &s);
	cr_assert(strstr(s.last_error, "probe") != NULL, "%s", s.last_error);
	/* the origin answers: the next probe puts it up at once */
	probe_rc = 0;
	fake_now += 30000;
	cr_assert_eq(mfs_health_probe_now(hs), 1);
	cr_assert(mfs_health_up(hs, a));
	/* down again: the backoff starts over at 1 s */
	mfs_health_note(hs, a, MFS_HEV_TRANSPORT, "reset");
	mfs_health_get(hs, a, &s);
	cr_assert_eq(s.next_probe_in_ms, 1000);
	cr_assert_eq(s.downs, 2);
	mfs_healthset_free(hs);
}

Test(health, a_readers_success_counts_as_up)
{
	struct mfs_healthset *hs = new_set();
	int a = mfs_health_id(hs, "http://h:1");

	mfs_health_note(hs, a, MFS_HEV_TRANSPORT, "reset");
	mfs_health_note(hs, a, MFS_HEV_OK, NULL);
	cr_assert(mfs_health_up(hs, a));
	mfs_healthset_free(hs);
}

struct downer {
	struct mfs_healthset *hs;
	int id;
};

static void *take_down_later(void *arg)
{
	struct downer *d = arg;
	struct timespec t = { 0, 100 * 1000000L };

	nanosleep(&t, NULL);
	mfs_health_note(d->hs, d->id, MFS_HEV_TRANSPORT, "closed");
	return NULL;
}

Test(health, a_backoff_sleep_ends_when_the_origin_goes_down)
{
	struct mfs_health_config c = { .probe = fake_probe, .no_prober = true };
	struct mfs_healthset *hs;
	struct downer d;
	pthread_t t;
	int64_t t0;

	cr_assert_eq(mfs_healthset_new(&c, &hs), 0);
	d.hs = hs;
	d.id = mfs_health_id(hs, "http://h:1");
	t0 = mfs_now_ms();
	cr_assert(mfs_health_sleep(hs, d.id, 50), "stays up: full sleep, true");
	cr_assert_geq(mfs_now_ms() - t0, 45);
	pthread_create(&t, NULL, take_down_later, &d);
	t0 = mfs_now_ms();
	cr_assert_not(mfs_health_sleep(hs, d.id, 10000));
	cr_assert_lt(mfs_now_ms() - t0, 5000, "woken by the transition, not the timeout");
	pthread_join(t, NULL);
	mfs_healthset_free(hs);
}

static int real_probe_calls;
static int counting_probe(void *ctx, const char *origin, char *why, size_t whycap)
{
	(void)ctx;
	(void)why;
	(void)whycap;
	(void)origin;
	__atomic_add_fetch(&real_probe_calls, 1, __ATOMIC_SEQ_CST);
	return 0;
}

Test(health, the_prober_thread_brings_it_back_and_wakes_waiters)
{
	struct mfs_health_config c = { .probe = counting_probe, .probe_min_ms = 100 };
	struct mfs_healthset *hs;
	int a;
	int64_t t0;

	cr_assert_eq(mfs_healthset_new(&c, &hs), 0);
	a = mfs_health_id(hs, "http://h:1");
	mfs_health_note(hs, a, MFS_HEV_TRANSPORT, "refused");
	t0 = mfs_now_ms();
	cr_assert(mfs_health_wait_up(hs, a, 5000));
	cr_assert_lt(mfs_now_ms() - t0, 4000);
	cr_assert_geq(__atomic_load_n(&real_probe_calls, __ATOMIC_SEQ_CST), 1);
	mfs_healthset_free(hs);
}

Test(health, http_probe_of_a_closed_port_fails_fast)
{
	struct mfs_http_pool *pool;
	int64_t t0 = mfs_now_ms();

	cr_assert_eq(mfs_http_pool_new(&pool), 0);
	/* port 9 on loopback: nothing listens, connect is refused */
	char why[100] = "";
	cr_assert_eq(mfs_health_http_probe(pool, "http://127.0.0.1:9", why, sizeof(why)),
		     -EHOSTDOWN);
	cr_assert(why[0] != '\0', "says why");
	cr_assert_lt(mfs_now_ms() - t0, 2500);
	mfs_http_pool_free(pool);
}

Test(health, a_waiting_reader_brings_the_next_probe_forward_at_most_once_a_second)
{
	struct mfs_healthset *hs = new_set();
	int a = mfs_health_id(hs, "http://h:1");
	struct mfs_health_snap s;

	mfs_health_note(hs, a, MFS_HEV_TRANSPORT, "reset");
	probe_rc = -EHOSTDOWN;
	/* long down: the backoff has grown to 16 s */
	for (int64_t w = 1000; w <= 8000; w *= 2) {
		fake_now += w;
		cr_assert_eq(mfs_health_probe_now(hs), 1);
	}
	mfs_health_get(hs, a, &s);
	cr_assert_eq(s.next_probe_in_ms, 16000);
	fake_now += 200;
	mfs_health_want(hs, a); /* 200 ms after the last probe: due 1 s after it */
	mfs_health_get(hs, a, &s);
	cr_assert_eq(s.next_probe_in_ms, 800);
	fake_now += 800;
	probe_rc = 0;
	cr_assert_eq(mfs_health_probe_now(hs), 1);
	cr_assert(mfs_health_up(hs, a));
	mfs_healthset_free(hs);
}

Test(health, a_dead_path_takes_it_down_even_on_a_reused_connection)
{
	struct mfs_healthset *hs = new_set();
	int a = mfs_health_id(hs, "http://h:1");
	struct mfs_http_resp r;

	mfs_http_resp_init(&r);
	/* a reused socket that timed out may have been a stale one: not held
	 * against the origin */
	mfs_health_note_exchange(hs, a, CURLE_OPERATION_TIMEDOUT, &r, true);
	cr_assert(mfs_health_up(hs, a));
	/* nothing acknowledged at the TCP level is an outage, reused or not */
	r.dead_path = true;
	mfs_health_note_exchange(hs, a, CURLE_OPERATION_TIMEDOUT, &r, true);
	cr_assert_not(mfs_health_up(hs, a));
	mfs_healthset_free(hs);
}

/* A server whose kernel takes the connection and acknowledges the request
 * but never answers (listening, never accepting) is slow, not a dead
 * path: the exchange runs into its own timeout without dead_path. */
Test(health, a_silent_server_that_acknowledges_is_not_a_dead_path)
{
	struct mfs_http_pool *pool;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];

	cr_assert_geq(ls, 0);
	cr_assert_eq(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(ls, 4), 0);
	cr_assert_eq(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)ntohs(sa.sin_port));
	cr_assert_eq(mfs_http_pool_new(&pool), 0);
	struct mfs_http_req req = { .url = url, .timeout_ms = 700, .connect_timeout_ms = 700,
				    .dead_ms = 100 };
	struct mfs_http_resp r;
	bool connected = false;
	int64_t t0 = mfs_now_ms();

	mfs_http_resp_init(&r);
	CURLcode cc = mfs_http_perform(pool, &req, &r, &connected);
	cr_assert_eq(cc, CURLE_OPERATION_TIMEDOUT, "%s", curl_easy_strerror(cc));
	cr_assert_not(r.dead_path, "the request was acknowledged: only slow");
	cr_assert_geq(mfs_now_ms() - t0, 650, "waited for the answer until the timeout");
	mfs_http_resp_clear(&r);
	mfs_http_pool_free(pool);
	close(ls);
}

/* A peer whose kernel takes the connection and acknowledges the request
 * but does not answer in time (a pull-through node busy fetching) is slow,
 * not down: the reader gives up, the peer stays up for the others. */
Test(health, a_peer_slow_to_answer_an_acknowledged_request_stays_up)
{
	struct mfs_healthset *hs = new_set();
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];
	struct mfs_peer *p;
	uint64_t got;

	cr_assert_geq(ls, 0);
	cr_assert_eq(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(ls, 4), 0);
	cr_assert_eq(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	cr_assert_eq(mfs_peer_new(url, NULL, NULL, 700, 1000, &p), 0);
	mfs_peer_set_health(p, hs);
	int rc = mfs_peer_read(p, "0123456789012345678901234567890123456789", NULL, 0, 100,
			       discard_sink, NULL, &got);
	cr_assert_eq(rc, -ETIMEDOUT, "rc %d", rc);
	cr_assert(mfs_health_up(hs, mfs_health_id(hs, url)),
		  "a reader's timeout took a live peer down");
	rc = mfs_peer_probe(p, "0123456789012345678901234567890123456789", NULL);
	cr_assert_eq(rc, -ETIMEDOUT, "rc %d", rc);
	cr_assert(mfs_health_up(hs, mfs_health_id(hs, url)));
	mfs_peer_free(p);
	close(ls);
	mfs_healthset_free(hs);
}
