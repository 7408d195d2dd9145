/*
 * source.h - interchangeable byte sources behind one interface: peers,
 * mirrors and the hub, with failover and per-source health.
 *
 * What it does:
 *   - holds an ordered set of sources: peers (another `modelfs serve`,
 *     asked by content id: GET /blobs/<id> with Range), mirrors (any
 *     HF-compatible endpoint: the same /resolve URLs as the hub, read
 *     through a struct mfs_hub of their own) and the hub;
 *   - orders them per request: peers first, the peer asked first chosen
 *     by rendezvous hashing of the content id (so a cluster agrees on one
 *     owner per blob); then the hub and the mirrors (mirrors first with
 *     prefer_mirror); a source whose origin is down (fetch/health.h:
 *     refused, reset, no reply, N x 5xx) is not asked at all until a
 *     background probe finds it answering; one caught sending bad bytes
 *     is demoted for a grace period (tried last, or not at all);
 *   - a read that fails on one source resumes on the next from the last
 *     byte delivered; the number of sources tried per read is bounded;
 *   - keeps per-source health: requests, errors, bytes, latency and
 *     throughput, demotions (mfs_srcset_stats, for `modelfs status`).
 * Tokens: the hub token goes only to the hub's origin (and to a mirror on
 * that same origin); peers get the peer token, if any; other mirrors get
 * only a token named for them (mirror_token), never the peer token: a
 * mirror is anyone's HTTP server, often plain HTTP.
 *
 * What it does not do: verify content (core/blobio.c hashes whole blobs
 * and calls mfs_srcset_demote on a source that sent bad bytes), store
 * anything, know about FUSE or sqlite.
 *
 * Thread-safe.
 */
#ifndef MFS_FETCH_SOURCE_H
#define MFS_FETCH_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch/hub.h"

enum mfs_src_kind { MFS_SRC_PEER = 0, MFS_SRC_MIRROR = 1, MFS_SRC_HUB = 2 };

/* Most sources one set holds (hub + mirrors + peers). */
#define MFS_SRC_MAX 32

struct mfs_srcset_config {
	const char *const *mirrors;  /* HF-compatible endpoints */
	size_t n_mirrors;
	const char *const *peers;    /* base URLs of `modelfs serve` peers */
	size_t n_peers;
	const char *self_url;        /* this node's own serve URL, or NULL: peers
				      * ranked below it for a blob are not asked
				      * (no request loops in a cluster) */
	const char *hub_endpoint;    /* the hub's URL: a mirror on its origin gets
				      * the hub token */
	const char *hub_token;       /* sent to a mirror on the hub's origin only */
	const char *peer_token;      /* Bearer for peers only */
	const char *mirror_token;    /* Bearer for mirrors not on the hub's origin;
				      * NULL: none */
	bool prefer_mirror;          /* mirrors before the hub */
	const char *proxy;           /* NULL: libcurl's environment */
	long connect_timeout_ms;     /* default 3000 */
	long fetch_timeout_ms;       /* per source and read; default 60000 */
	int64_t demote_ms;           /* grace period after bad data (x4); default 30000 */
	int max_sources_per_read;    /* failover bound; default 4 */
};

struct mfs_srcset;

/* hub (may be NULL) is used, not owned, and must outlive the set. */
int mfs_srcset_new(const struct mfs_srcset_config *cfg, struct mfs_hub *hub,
		   struct mfs_srcset **out);
void mfs_srcset_free(struct mfs_srcset *s);

size_t mfs_srcset_count(const struct mfs_srcset *s);
/* Index of the hub source, or -1. */
int mfs_srcset_hub_index(const struct mfs_srcset *s);
/* A mirror's client (for metadata failover), i < number of mirrors, or NULL. */
struct mfs_hub *mfs_srcset_mirror_hub(struct mfs_srcset *s, size_t i);
size_t mfs_srcset_n_mirrors(const struct mfs_srcset *s);

/* What is being read. */
struct mfs_src_read {
	struct mfs_file_ref file;    /* for the hub and mirrors */
	const char *content_id;      /* for peers (sha256 or git sha1 hex) */
	bool skip_hub;               /* the caller knows the hub is down */
	bool skip_peers;             /* e.g. serving a peer's request */
};

/* Receives bytes in order; `src` is the index of the source they came from. */
typedef int (*mfs_src_sink_fn)(void *ctx, int src, uint64_t off, const void *data, size_t len);

/* Outcome details for the caller (may be NULL). */
struct mfs_src_outcome {
	bool hub_tried;
	int hub_rc;                  /* what the hub answered, when tried */
	int sources_tried;
};

/* Reads exactly [off, off+len) into sink in order, failing over between
 * sources. Returns 0, -ECANCELED (the sink stopped; nothing else tried),
 * or the most telling error: -EACCES/-ENOENT when a source said so and no
 * other could serve, else the last transport error (-EHOSTDOWN when no
 * source could be reached). */
int mfs_srcset_read(struct mfs_srcset *s, const struct mfs_src_read *rq, uint64_t off,
		    uint64_t len, mfs_src_sink_fn sink, void *ctx, struct mfs_src_outcome *oc);

/* 0 if some usable source would serve the file now (one quick probe per
 * source, in read order, until one answers; a 429/5xx answer from a hub or
 * mirror counts as there), -errno otherwise. oc may be NULL. */
int mfs_srcset_probe(struct mfs_srcset *s, const struct mfs_src_read *rq,
		     struct mfs_src_outcome *oc);

/* true when the source a read would ask first is up by the health state
 * (fetch/health.h: no transport failure or run of 5xx since it last
 * answered, or never asked) and not demoted; no I/O. The caller may skip
 * a probe when the read itself fails as fast as a probe would (a small
 * file: its read is one request to that source). */
bool mfs_srcset_known_up(struct mfs_srcset *s, const struct mfs_src_read *rq);

/* A source sent bytes that failed verification: demote it (longer than
 * for transport errors; the hub is never skipped for it, it is the last
 * word). */
void mfs_srcset_demote(struct mfs_srcset *s, int src, const char *why);
/* true when the source is currently demoted. */
bool mfs_srcset_demoted(struct mfs_srcset *s, int src);

/* ---- one ops table per kind of source ----------------------------------
 * The set knows a source only through its table (curl's lib/cf-*.c
 * filters are the model): peers (peer.c), mirrors and the hub
 * (src_hub.c), or a test's fake. */
struct mfs_src_ops {
	enum mfs_src_kind kind;      /* where the set ranks it; its name in stats */
	/* Delivers [off, off+len) to sink in order. 0 with fewer bytes is a
	 * short answer (the next source resumes); else -errno as for
	 * mfs_srcset_read (-EHOSTDOWN/-ETIMEDOUT/-EIO: transport). */
	int (*read)(void *conn, const struct mfs_src_read *rq, uint64_t off, uint64_t len,
		    mfs_sink_fn sink, void *ctx);
	/* 0 if it would serve rq now, else -errno (-EIO: it answered with an
	 * error status). */
	int (*probe)(void *conn, const struct mfs_src_read *rq);
	void (*destroy)(void *conn); /* NULL: the set does not own conn */
	/* A cache asked by content id (peers): ranked by rendezvous hashing and
	 * skipped with skip_peers or without a content id; its "not found"
	 * says nothing about the file, and an error status to a probe does
	 * not mean it would serve. */
	bool by_content_id;
};
extern const struct mfs_src_ops mfs_src_peer_ops;   /* conn: struct mfs_peer */
extern const struct mfs_src_ops mfs_src_mirror_ops; /* conn: struct mfs_hub, owned */
extern const struct mfs_src_ops mfs_src_hub_ops;    /* conn: struct mfs_hub, not owned */

/* Adds a source behind ops (conn is owned when ops->destroy, and freed on
 * failure too). For the set's constructor and tests; call before the first
 * read. -E2BIG (MFS_SRC_MAX), -EINVAL (url not http(s)). */
int mfs_srcset_add(struct mfs_srcset *s, const struct mfs_src_ops *ops, void *conn,
		   const char *url);

/* Per-source health, for `modelfs status`. */
struct mfs_src_stats {
	char url[256];               /* base URL (no credentials, no query) */
	enum mfs_src_kind kind;
	uint64_t requests, errors, bytes, not_found, bad_data, demotions;
	int64_t last_ok_ms, last_err_ms;   /* monotonic, 0 = never */
	int64_t demoted_for_ms;      /* remaining grace period, 0 = usable */
	double latency_ms;           /* EWMA of time to complete a request */
	double throughput_bps;       /* EWMA of bytes/s of data reads */
	bool up;                     /* fetch/health.h: its origin's state */
	int64_t down_since_wall_ms;  /* unix ms; 0 when up */
	int64_t next_probe_in_ms;    /* when down */
	char last_error[128];        /* the last failure its origin saw */
};
/* Fills up to cap entries; returns the number of sources. */
size_t mfs_srcset_stats(struct mfs_srcset *s, struct mfs_src_stats *out, size_t cap);
const char *mfs_src_kind_name(enum mfs_src_kind k);
/* The up/down states of every origin the set talks to (its sources and
 * the CDN hosts they redirect to); owned by the set or its hub. */
struct mfs_healthset *mfs_srcset_healthset(struct mfs_srcset *s);

/* Writes the state of every origin to `path` (replaced atomically), one
 * line each, tab-separated: kind (hub, mirror, peer, cdn = an origin the
 * sources redirected to), origin, up|down, down since (unix ms, 0), next
 * probe in (ms), last error time (unix ms, 0), last error. For `modelfs
 * status`. 0 or -errno. */
int mfs_srcset_health_write(struct mfs_srcset *s, const char *path);

/* A list of source URLs gathered from repeatable flags and comma-separated
 * environment variables (MODELFS_MIRRORS, MODELFS_PEERS). */
struct mfs_src_list {
	char *urls[MFS_SRC_MAX];     /* malloc'd */
	size_t n;
};
/* Adds each comma-separated http(s) URL of csv (empty items skipped).
 * -EINVAL (bad URL, named in the log), -E2BIG, -ENOMEM. */
int mfs_src_list_add(struct mfs_src_list *l, const char *csv);
void mfs_src_list_free(struct mfs_src_list *l);

/* Rendezvous score of (peer url, content id): exposed for tests. */
uint64_t mfs_src_rendezvous(const char *url, const char *content_id);

/* One request to a peer: GET {base}/blobs/{id} with Range [off, off+len).
 * Bytes go to sink in order. A peer may answer fewer bytes than asked (a
 * 206 ending early: it has only those); *got says how many arrived.
 * Returns 0 (possibly short), -ENOENT (404: none), -EACCES, -EHOSTDOWN,
 * -ETIMEDOUT, -EIO, -ECANCELED. hint_* (may be NULL) let a pull-through
 * peer find the file. Exposed for tests. */
struct mfs_peer;
int mfs_peer_new(const char *base_url, const char *token, const char *proxy,
		 long connect_timeout_ms, long fetch_timeout_ms, struct mfs_peer **out);
void mfs_peer_free(struct mfs_peer *p);
int mfs_peer_read(struct mfs_peer *p, const char *content_id, const struct mfs_file_ref *hint,
		  uint64_t off, uint64_t len, mfs_sink_fn sink, void *ctx, uint64_t *got);
/* Feed every exchange to hs (not owned; NULL: none) and fail at once
 * (-EHOSTDOWN) while the peer's origin is down there. */
struct mfs_healthset;
void mfs_peer_set_health(struct mfs_peer *p, struct mfs_healthset *hs);
/* HEAD {base}/blobs/{id}: 0 if the peer has (or would pull) it. */
int mfs_peer_probe(struct mfs_peer *p, const char *content_id, const struct mfs_file_ref *hint);
/* GET {base}{path} (path starts with '/'): the whole 200 body, at most max
 * bytes (-EFBIG beyond), *out malloc'd. -ENOENT on 404, else as read. */
int mfs_peer_get(struct mfs_peer *p, const char *path, size_t max, uint8_t **out, size_t *len);

/* Asks the peers, in read order (rendezvous on rq->content_id, demoted ones
 * skipped), for GET {peer}{path} until accept(ctx, src, body, len) returns
 * 0. A source whose answer accept refused with -EBADMSG is counted as bad
 * data in its health (not demoted: nothing it sent was served). Returns 0
 * or -ENOENT when no peer gave an acceptable answer. Used for Xet chunk
 * lists (GET /chunks/<xetHash>), which are checked, not trusted. */
typedef int (*mfs_src_doc_fn)(void *ctx, int src, const uint8_t *body, size_t len);
int mfs_srcset_peer_doc(struct mfs_srcset *s, const struct mfs_src_read *rq, const char *path,
			size_t max, mfs_src_doc_fn accept, void *ctx);
/* true when source src is the hub. */
bool mfs_srcset_is_hub(const struct mfs_srcset *s, int src);

#endif
