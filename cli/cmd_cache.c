/*
 * cmd_cache.c - `modelfs ls` and `modelfs status`: what the cache holds and
 * how it is doing, read from the index (and the mount pid files). Read-only:
 * never contacts the hub, never changes the cache.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cache_open.h"
#include "cli/commands.h"
#include "core/evict.h"
#include "cli/daemon.h"
#include "util/size.h"
#include "util/strbuf.h"

static const char ls_help[] =
	"usage: modelfs ls [REPO] [--json] [OPTIONS]\n\n"
	"Lists the repository revisions the cache knows: commit, refs pointing at it,\n"
	"size, bytes cached, % complete, pinned, last used. REPO (org/name or\n"
	"datasets/org/name) limits the list to one repository.\n\n"
	"options:\n"
	"      --json               machine-readable output\n"
	"      --cache DIR          cache directory (env MODELFS_CACHE)\n"
	"  -h, --help               this help\n";

static const char status_help[] =
	"usage: modelfs status [--json] [OPTIONS]\n\n"
	"Shows the cache directory, bytes used and quota, blobs, blocks, the read hit\n"
	"ratio and bytes fetched per source (as recorded by mounts and prefetches),\n"
	"and the running mounts.\n\n"
	"options:\n"
	"      --json               machine-readable output\n"
	"      --cache DIR          cache directory (env MODELFS_CACHE)\n"
	"  -h, --help               this help\n";

enum { OPT_JSON = 1000 };

/* Parses [--json] [--cache DIR] [ARG]; returns -1 to go on, else an exit
 * status. */
static int parse(const char *cmd, const char *help, int argc, char **argv, bool allow_arg,
		 struct mfs_cli_opts *o, bool *json, const char **arg)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		MFS_CACHE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (mfs_cli_common_opt(c, optarg, o))
			continue;
		if (c == 'h') {
			fputs(help, stdout);
			return 0;
		}
		if (c == OPT_JSON) {
			*json = true;
			continue;
		}
		return mfs_usage_error(cmd, "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (argc - optind > (allow_arg ? 1 : 0))
		return mfs_usage_error(cmd, "unexpected argument '%s'", argv[argc - 1]);
	*arg = optind < argc ? argv[optind] : NULL;
	return -1;
}

static void when(int64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0) {
		snprintf(buf, cap, "never");
		return;
	}
	localtime_r(&t, &tm);
	strftime(buf, cap, "%Y-%m-%d %H:%M", &tm);
}

int mfs_cmd_ls(int argc, char **argv)
{
	struct mfs_cli_opts o = { 0 };
	struct mfs_ix_commit_stat *v = NULL;
	struct mfs_repo repo;
	struct mfs_ctx *c = NULL;
	const char *arg = NULL;
	char rev[256];
	size_t n = 0;
	bool json = false;
	int status, rc;

	status = parse("ls", ls_help, argc, argv, true, &o, &json, &arg);
	if (status >= 0)
		return status;
	if (arg && (mfs_parse_repo_rev(arg, &repo, rev, sizeof(rev)) || rev[0]))
		return mfs_usage_error("ls", "'%s' is not a REPO (org/name or datasets/org/name)",
				       arg);
	status = mfs_cache_open("ls", &o, 0, &c);
	if (status)
		return status;
	rc = mfs_ix_commit_stats(c->ix, arg ? &repo : NULL, &v, &n);
	if (rc) {
		fprintf(stderr, "modelfs ls: reading the index failed: %s\n", strerror(-rc));
		mfs_ctx_close(c);
		return 1;
	}
	if (json) {
		struct mfs_strbuf sb = MFS_STRBUF_INIT;
		mfs_strbuf_puts(&sb, "[");
		for (size_t i = 0; i < n; i++) {
			double pct = v[i].size ? 100.0 * (double)v[i].cached_bytes / (double)v[i].size
					       : 100.0;
			mfs_strbuf_printf(&sb, "%s\n {\"repo\": ", i ? "," : "");
			mfs_strbuf_json_str(&sb, v[i].repo.id, strlen(v[i].repo.id));
			mfs_strbuf_printf(&sb, ", \"type\": \"%s\", \"commit\": \"%s\", \"refs\": [",
					  v[i].repo.type == MFS_REPO_DATASET ? "dataset" : "model",
					  v[i].commit);
			const char *r = v[i].refs;
			for (bool first = true; *r;) {
				size_t len = strcspn(r, ",");
				if (!first)
					mfs_strbuf_puts(&sb, ", ");
				mfs_strbuf_json_str(&sb, r, len);
				first = false;
				r += len + (r[len] == ',');
			}
			mfs_strbuf_printf(&sb, "], \"files\": %" PRIu64 ", \"size\": %" PRIu64
					  ", \"cached_bytes\": %" PRIu64 ", \"complete_pct\": %.1f"
					  ", \"pinned\": %s, \"last_used_ms\": %" PRId64 "}",
					  v[i].files, v[i].size, v[i].cached_bytes, pct,
					  v[i].pinned ? "true" : "false", v[i].last_access_ms);
		}
		mfs_strbuf_puts(&sb, n ? "\n]\n" : "]\n");
		if (sb.err) {
			status = 1;
		} else {
			fputs(sb.buf, stdout);
		}
		mfs_strbuf_free(&sb);
	} else if (n == 0) {
		printf("the cache %s holds no repository%s\n", c->dir, arg ? " like that" : "");
	} else {
		printf("%-40s %-12s %-16s %10s %10s %6s %-6s %s\n", "REPO", "COMMIT", "REFS",
		       "SIZE", "CACHED", "%", "PINNED", "LAST USED");
		for (size_t i = 0; i < n; i++) {
			char s[32], cb[32], w[32], name[MFS_REPO_ID_MAX + 16];
			double pct = v[i].size ? 100.0 * (double)v[i].cached_bytes / (double)v[i].size
					       : 100.0;
			snprintf(name, sizeof(name), "%s%s",
				 v[i].repo.type == MFS_REPO_DATASET ? "datasets/" : "", v[i].repo.id);
			when(v[i].last_access_ms, w, sizeof(w));
			printf("%-40s %-12.12s %-16s %10s %10s %5.1f%% %-6s %s\n", name, v[i].commit,
			       v[i].refs[0] ? v[i].refs : "-",
			       mfs_format_size(v[i].size, s, sizeof(s)),
			       mfs_format_size(v[i].cached_bytes, cb, sizeof(cb)), pct,
			       v[i].pinned ? "yes" : "no", w);
		}
	}
	free(v);
	mfs_ctx_close(c);
	return status;
}

#define STATUS_SRC_MAX 32

struct counters {
	int64_t reads, reads_mem, reads_disk, reads_waited, bytes_fetched;
	struct {
		char url[300];
		int64_t bytes, requests, errors, bad_data;
	} src[STATUS_SRC_MAX];
	int nsrc;
};

/* The per-source record for "source:<url>:<what>", created on first use. */
static int64_t *source_counter(struct counters *k, const char *name)
{
	const char *end = strrchr(name, ':');
	size_t len = end ? (size_t)(end - (name + 7)) : 0;
	int i;

	if (!end || len == 0 || len >= sizeof(k->src[0].url))
		return NULL;
	for (i = 0; i < k->nsrc; i++)
		if (strlen(k->src[i].url) == len && !strncmp(k->src[i].url, name + 7, len))
			break;
	if (i == k->nsrc) {
		if (k->nsrc == STATUS_SRC_MAX)
			return NULL;
		memcpy(k->src[i].url, name + 7, len);
		k->src[i].url[len] = '\0';
		k->nsrc++;
	}
	if (!strcmp(end, ":bytes"))
		return &k->src[i].bytes;
	if (!strcmp(end, ":requests"))
		return &k->src[i].requests;
	if (!strcmp(end, ":errors"))
		return &k->src[i].errors;
	if (!strcmp(end, ":bad_data"))
		return &k->src[i].bad_data;
	return NULL;
}

/* "sources": {url: bytes} (kept for scripts) and "source_health":
 * {url: {bytes, requests, errors, bad_data}}; and the text lines. */
static void format_sources(const struct counters *k, struct mfs_strbuf *json,
			   struct mfs_strbuf *health, struct mfs_strbuf *text)
{
	char sz[32];

	for (int i = 0; i < k->nsrc; i++) {
		const char *sep = i ? ", " : "";
		size_t len = strlen(k->src[i].url);
		mfs_strbuf_puts(json, sep);
		mfs_strbuf_json_str(json, k->src[i].url, len);
		mfs_strbuf_printf(json, ": %" PRId64, k->src[i].bytes);
		mfs_strbuf_puts(health, sep);
		mfs_strbuf_json_str(health, k->src[i].url, len);
		mfs_strbuf_printf(health, ": {\"bytes\": %" PRId64 ", \"requests\": %" PRId64
				  ", \"errors\": %" PRId64 ", \"bad_data\": %" PRId64 "}",
				  k->src[i].bytes, k->src[i].requests, k->src[i].errors,
				  k->src[i].bad_data);
		mfs_strbuf_printf(text, "    %-40s %10s  %" PRId64 " requests, %" PRId64
				  " errors, %" PRId64 " bad data\n", k->src[i].url,
				  mfs_format_size((uint64_t)k->src[i].bytes, sz, sizeof(sz)),
				  k->src[i].requests, k->src[i].errors, k->src[i].bad_data);
	}
}

static int on_counter(void *ctx, const char *name, int64_t value)
{
	struct counters *k = ctx;

	if (!strcmp(name, "reads"))
		k->reads = value;
	else if (!strcmp(name, "reads_mem"))
		k->reads_mem = value;
	else if (!strcmp(name, "reads_disk"))
		k->reads_disk = value;
	else if (!strcmp(name, "reads_waited"))
		k->reads_waited = value;
	else if (!strcmp(name, "bytes_fetched"))
		k->bytes_fetched = value;
	else if (!strncmp(name, "source:", 7)) {
		int64_t *slot = source_counter(k, name);
		if (slot)
			*slot = value;
	}
	return 0;
}

static void fmt_utc(int64_t ms, char *out, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, cap, "%lld", (long long)ms);
}

/* The sources of one mount from the daemon's health file (written every
 * tick next to its pid file; fetch/source.h mfs_srcset_health_write):
 * JSON ", \"sources\": [...]" and indented text lines. */
static void append_health(const char *pidpath, struct mfs_strbuf *json, struct mfs_strbuf *text)
{
	char path[PATH_MAX + 300], line[1024];
	size_t n = strlen(pidpath), ns = 0;
	int64_t now = mfs_wall_ms();
	FILE *f;

	if (n < 4 || n + 4 >= sizeof(path))
		return;
	snprintf(path, sizeof(path), "%.*s.health", (int)(n - 4), pidpath);
	f = fopen(path, "r");
	if (!f)
		return;
	mfs_strbuf_puts(json, ", \"sources\": [");
	while (fgets(line, sizeof(line), f)) {
		char *fld[7], *save = NULL, *p = line;
		int k = 0;
		line[strcspn(line, "\n")] = '\0';
		for (; k < 7; k++) {
			fld[k] = k < 6 ? strtok_r(p, "\t", &save) : strtok_r(p, "", &save);
			p = NULL;
			if (!fld[k])
				break;
		}
		if (k < 6)
			continue;
		if (k == 6)
			fld[6] = "";
		bool up = strcmp(fld[2], "up") == 0;
		long long since = atoll(fld[3]), next = atoll(fld[4]), errt = atoll(fld[5]);
		char when[64];
		mfs_strbuf_printf(json, "%s{\"kind\": ", ns ? ", " : "");
		mfs_strbuf_json_str(json, fld[0], strlen(fld[0]));
		mfs_strbuf_puts(json, ", \"origin\": ");
		mfs_strbuf_json_str(json, fld[1], strlen(fld[1]));
		mfs_strbuf_printf(json, ", \"state\": \"%s\"", up ? "up" : "down");
		if (up)
			mfs_strbuf_puts(json, ", \"down_since_ms\": null, \"next_probe_in_s\": null");
		else
			mfs_strbuf_printf(json, ", \"down_since_ms\": %lld, \"down_for_s\": %.1f"
					  ", \"next_probe_in_s\": %.1f", since,
					  (double)(now - since) / 1000.0, (double)next / 1000.0);
		mfs_strbuf_puts(json, ", \"last_error\": ");
		if (fld[6][0])
			mfs_strbuf_json_str(json, fld[6], strlen(fld[6]));
		else
			mfs_strbuf_puts(json, "null");
		mfs_strbuf_printf(json, ", \"last_error_ms\": %lld}", errt);
		if (up) {
			mfs_strbuf_printf(text, "      %-6s %s  up\n", fld[0], fld[1]);
		} else {
			fmt_utc(since, when, sizeof(when));
			mfs_strbuf_printf(text, "      %-6s %s  DOWN since %s (%lld s): %s; "
					  "next probe in %.1f s\n", fld[0], fld[1], when,
					  (long long)((now - since) / 1000), fld[6][0] ? fld[6] : "?",
					  (double)next / 1000.0);
		}
		ns++;
	}
	fclose(f);
	mfs_strbuf_puts(json, "]");
}

/* Live mounts of this cache from the daemon pid files
 * ("PID\nMOUNTPOINT\nCACHE DIR\n"; older files without the cache line are
 * listed too). */
static void list_mounts(const char *cache_dir, struct mfs_strbuf *json, struct mfs_strbuf *text)
{
	char cache_real[PATH_MAX];
	if (!realpath(cache_dir, cache_real))
		snprintf(cache_real, sizeof(cache_real), "%s", cache_dir);
	char any[PATH_MAX], dir[PATH_MAX];
	int nm = 0;
	DIR *d;
	struct dirent *de;

	if (mfs_mount_state_path("/", any, sizeof(any)))
		return;
	snprintf(dir, sizeof(dir), "%s", any);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return;
	*slash = '\0';
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char p[PATH_MAX + 300], mp[PATH_MAX] = "", cd[PATH_MAX] = "";
		int pid = 0;
		FILE *f;
		if (strncmp(de->d_name, "mount-", 6) || !strstr(de->d_name, ".pid"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (fscanf(f, "%d\n", &pid) != 1 || !fgets(mp, sizeof(mp), f))
			pid = 0;
		if (pid > 0 && !fgets(cd, sizeof(cd), f))
			cd[0] = '\0';
		fclose(f);
		mp[strcspn(mp, "\n")] = '\0';
		cd[strcspn(cd, "\n")] = '\0';
		if (pid <= 0 || (kill(pid, 0) && errno == ESRCH))
			continue;
		if (cd[0] && strcmp(cd, cache_real) != 0)
			continue; /* another cache's mount */
		mfs_strbuf_printf(json, "%s{\"pid\": %d, \"mountpoint\": ", nm ? ", " : "", pid);
		mfs_strbuf_json_str(json, mp, strlen(mp));
		mfs_strbuf_printf(text, "    %s (pid %d)\n", mp, pid);
		append_health(p, json, text);
		mfs_strbuf_puts(json, "}");
		nm++;
	}
	closedir(d);
}

int mfs_cmd_status(int argc, char **argv)
{
	struct mfs_cli_opts o = { 0 };
	struct mfs_ctx *c = NULL;
	struct mfs_ix_totals t;
	struct counters k = { .nsrc = 0 };
	struct mfs_strbuf mj = MFS_STRBUF_INIT, mt = MFS_STRBUF_INIT;
	struct mfs_strbuf sj = MFS_STRBUF_INIT, sh = MFS_STRBUF_INIT, st = MFS_STRBUF_INIT;
	const char *arg;
	bool json = false;
	int status, rc;

	status = parse("status", status_help, argc, argv, false, &o, &json, &arg);
	if (status >= 0)
		return status;
	status = mfs_cache_open("status", &o, 0, &c);
	if (status)
		return status;
	rc = mfs_ix_totals(c->ix, &t);
	if (!rc)
		rc = mfs_ix_counters_list(c->ix, on_counter, &k);
	if (rc) {
		fprintf(stderr, "modelfs status: reading the index failed: %s\n", strerror(-rc));
		status = 1;
		goto out;
	}
	list_mounts(c->dir, &mj, &mt);
	format_sources(&k, &sj, &sh, &st);
	int64_t hits = k.reads - k.reads_waited;
	double ratio = k.reads ? (double)hits / (double)k.reads : 0;
	if (json) {
		printf("{\"cache_dir\": ");
		struct mfs_strbuf d = MFS_STRBUF_INIT;
		mfs_strbuf_json_str(&d, c->dir, strlen(c->dir));
		fputs(d.buf ? d.buf : "\"\"", stdout);
		mfs_strbuf_free(&d);
		printf(", \"used_bytes\": %" PRIu64 ", \"quota_bytes\": %" PRIu64
		       ", \"high_watermark_bytes\": %" PRIu64 ", \"low_watermark_bytes\": %" PRIu64
		       ", \"pinned_bytes\": %" PRIu64 ", \"blobs\": %" PRIu64 ", \"blocks\": %" PRIu64
		       ", \"repos\": %" PRIu64 ", \"commits\": %" PRIu64
		       ", \"reads\": %" PRId64 ", \"hits\": %" PRId64 ", \"hit_ratio\": ",
		       t.stored_bytes, c->quota, mfs_evict_high(c->quota, 95),
		       mfs_evict_low(c->quota, 85), t.pinned_bytes, t.blobs, t.blocks, t.repos,
		       t.commits, k.reads, hits);
		if (k.reads)
			printf("%.4f", ratio);
		else
			printf("null");
		printf(", \"bytes_fetched\": %" PRId64 ", \"sources\": {%s}, \"source_health\": {%s}"
		       ", \"mounts\": [%s]}\n", k.bytes_fetched, sj.buf ? sj.buf : "",
		       sh.buf ? sh.buf : "", mj.buf ? mj.buf : "");
	} else {
		char u[32], q[32], p[32], f[32];
		printf("cache:        %s\n", c->dir);
		printf("used:         %s of %s\n", mfs_format_size(t.stored_bytes, u, sizeof(u)),
		       c->quota ? mfs_format_size(c->quota, q, sizeof(q)) : "no quota");
		printf("pinned:       %s\n", mfs_format_size(t.pinned_bytes, p, sizeof(p)));
		printf("blobs:        %" PRIu64 " (%" PRIu64 " blocks), %" PRIu64 " repos, %"
		       PRIu64 " commits\n", t.blobs, t.blocks, t.repos, t.commits);
		if (k.reads)
			printf("hit ratio:    %.1f%% of %" PRId64 " reads served from the cache\n",
			       100.0 * ratio, k.reads);
		else
			printf("hit ratio:    - (no reads through a mount recorded yet)\n");
		printf("fetched:      %s\n", mfs_format_size((uint64_t)k.bytes_fetched, f, sizeof(f)));
		if (k.nsrc)
			printf("  per source:\n%s", st.buf ? st.buf : "");
		printf("mounts:       %s\n%s", mt.buf ? "" : "none", mt.buf ? mt.buf : "");
	}
out:
	mfs_strbuf_free(&sj);
	mfs_strbuf_free(&sh);
	mfs_strbuf_free(&st);
	mfs_strbuf_free(&mj);
	mfs_strbuf_free(&mt);
	mfs_ctx_close(c);
	return status;
}
