/*
 * hub.h - a client for the Hugging Face Hub's HTTP API, on libcurl (the
 * parts modelfs relies on: docs/architecture.md, "The hub's HTTP API").
 *
 * What it does:
 *   - repo info at a revision (resolves branch/tag -> commit sha and date);
 *   - recursive tree listing of a commit, following every Link rel="next"
 *     page, validating every entry (hostile listings: bad paths, sizes,
 *     oids, duplicates, file/dir clashes are skipped with a warning);
 *   - ranged reads of a file at a commit: small files through /resolve
 *     (307 -> /api/resolve-cache, followed by hand, auth kept on the hub
 *     host), LFS files through the 302 to the CDN, Range re-sent and the
 *     Authorization header NOT sent (the token only ever goes to the
 *     endpoint's own scheme://host:port). Signed URLs are remembered per
 *     (commit, path) until shortly before Expires and renewed on 403.
 *   - retries on 408/429/5xx and broken transfers with exponential backoff
 *     (1, 2, 4, 8 s ...) honouring Retry-After and RateLimit "r=0;t=N", a
 *     transfer cut short resumes from the last byte delivered; everything
 *     is bounded by fetch_timeout_ms for one call.
 *   - checks what servers claim: Content-Range must match what was asked,
 *     200-instead-of-206 is sliced, more/fewer bytes than asked is an error
 *     (and never delivered to the sink as good data).
 * What it does not do: cache anything on disk, know about FUSE or sqlite.
 *
 * Thread-safe: each call takes a curl easy handle from an internal pool
 * (connection reuse) and returns it.
 *
 * Errors (negative errno):
 *   -ENOENT     repo, revision or file does not exist (RepoNotFound with a
 *               token, RevisionNotFound, EntryNotFound, 404)
 *   -EACCES     private/gated without a valid token, invalid token (401/403)
 *   -EHOSTDOWN  the source could not be reached (refused, DNS, offline)
 *   -ETIMEDOUT  fetch_timeout_ms elapsed
 *   -EIO        anything else after retries (5xx, lying server, bad JSON)
 *   -ECANCELED  the sink asked to stop
 */
#ifndef MFS_FETCH_HUB_H
#define MFS_FETCH_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/repo.h"

struct mfs_hub_config {
	const char *endpoint;        /* "https://huggingface.co"; trailing '/' ignored */
	const char *token;           /* NULL or "" = anonymous; copied; never logged */
	long connect_timeout_ms;     /* default 5000 */
	long fetch_timeout_ms;       /* bound for one call incl. retries; default 60000 */
	int max_retries;             /* default 5 */
	long max_backoff_ms;         /* cap on one wait; default 8000 */
	const char *proxy;           /* NULL = libcurl's env (https_proxy...) */
	/* Up/down state of every origin this client talks to (its endpoint and
	 * the CDN hosts it is redirected to), shared with other clients and
	 * peers of one source set; NULL: the client makes its own. Not owned. */
	struct mfs_healthset *health;
};

struct mfs_hub;

int mfs_hub_new(const struct mfs_hub_config *cfg, struct mfs_hub **out);
void mfs_hub_free(struct mfs_hub *hub);

struct mfs_repo_info {
	char id[MFS_REPO_ID_MAX];  /* canonical id (after renames) */
	char sha[41];              /* commit the revision resolved to */
	int64_t last_modified_s;   /* commit date, unix seconds (0 if unknown) */
	bool private_;
	char gated[16];            /* "false", "auto", "manual" */
};

/* GET /api/{type}s/{id}/revision/{rev} (rev percent-encoded; NULL or "" =
 * default branch: GET /api/{type}s/{id}). */
int mfs_hub_repo_info(struct mfs_hub *hub, const struct mfs_repo *repo,
		      const char *rev, struct mfs_repo_info *out);

/* Recursive listing of a commit, all pages. Directories included (implicit
 * parents are added if the server omitted them). Caller frees with
 * mfs_entries_free. */
int mfs_hub_list_tree(struct mfs_hub *hub, const struct mfs_repo *repo,
		      const char *commit, struct mfs_entry **out, size_t *n);

/* 1 if the org/user has at least one repo of that type visible to us
 * (GET /api/{type}s?author=ORG&limit=1), 0 if none, -errno on failure. */
int mfs_hub_org_exists(struct mfs_hub *hub, enum mfs_repo_type t, const char *org);

/* Where a file's bytes are. */
struct mfs_file_ref {
	const struct mfs_repo *repo;
	const char *commit;      /* 40 hex */
	const char *path;        /* path in repo */
	uint64_t size;           /* expected size from the listing */
	bool lfs;                /* true: expect a 302 to the CDN */
};

/* Receives bytes in order, starting at the requested offset. Returns 0 to
 * continue, negative to abort the read (the call then returns -ECANCELED). */
typedef int (*mfs_sink_fn)(void *ctx, uint64_t off, const void *data, size_t len);

/* Reads exactly [off, off+len) of the file into sink, in order, never the
 * same byte twice (resumes after a break from the last delivered byte).
 * len == 0 or off+len > size is -EINVAL. */
int mfs_hub_read(struct mfs_hub *hub, const struct mfs_file_ref *f,
		 uint64_t off, uint64_t len, mfs_sink_fn sink, void *ctx);

/* Would the hub serve the file now? /resolve and every redirect (the CDN
 * for LFS files), all within MFS_HUB_PROBE_MS: on the hub's origin a GET
 * of the first byte (a reset after the headers fails it), elsewhere a
 * HEAD (no content transfer from the CDN): 0 yes;
 * -EHOSTDOWN an origin on the way is down (known, or found so now: a
 * 5xx is asked again up to the health threshold); -EAGAIN a 429 whose
 * Retry-After outlasts the fetch timeout; -EIO another error answer
 * (retries may cure it); -ETIMEDOUT no answer in time; -ENOENT/-EACCES. */
#define MFS_HUB_PROBE_MS 800
int mfs_hub_probe(struct mfs_hub *hub, const struct mfs_file_ref *f);

/* The health set this client feeds, and whether its endpoint is up now
 * (no I/O). A down endpoint fails every request at once until a
 * background probe finds it answering again. */
struct mfs_healthset *mfs_hub_healthset(struct mfs_hub *hub);
bool mfs_hub_up(struct mfs_hub *hub);
/* The endpoint's id in mfs_hub_healthset(). */
int mfs_hub_health_id(struct mfs_hub *hub);

/* Health: when the last request succeeded / failed at the transport level
 * (monotonic ms, 0 = never), and byte counters. */
struct mfs_hub_health {
	int64_t last_ok_ms;
	int64_t last_down_ms;     /* last -EHOSTDOWN or timeout */
	uint64_t requests;
	uint64_t body_bytes;
	uint64_t retries;
};
void mfs_hub_health(struct mfs_hub *hub, struct mfs_hub_health *h);

/* Percent-encoding as huggingface_hub does it (exposed for tests):
 * rev: no safe characters; path: '/' kept. Returns malloc'd string. */
char *mfs_hub_encode_rev(const char *rev);
char *mfs_hub_encode_path(const char *path);

#endif
