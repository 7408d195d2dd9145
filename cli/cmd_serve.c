/*
 * cmd_serve.c - `modelfs serve`: argument parsing, signals, and the
 * "listening on" line; the server itself is serve/.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/config.h"
#include "fetch/source.h"
#include "serve/serve.h"
#include "util/size.h"

static const char serve_help[] =
	"usage: modelfs serve [OPTIONS]\n\n"
	"Serves this machine's cache over HTTP: as an HF-compatible endpoint\n"
	"(HF_ENDPOINT or another modelfs's --mirror) and to peers by content hash\n"
	"(GET /blobs/<sha256|git-sha1>; another modelfs's --peer), and the chunk\n"
	"lists of verified Xet files (GET /chunks/<xetHash>).\n\n"
	"options:\n"
	"      --listen HOST:PORT   address to bind (default 127.0.0.1:8990; port 0 = any)\n"
	"      --cache DIR          cache directory (as for mount)\n"
	"      --peer-token-file F  clients presenting the token in F (Bearer) may read\n"
	"                           private and gated repos (env MODELFS_PEER_TOKEN);\n"
	"                           without it, such content is never served\n"
	"      --peer-token TOKEN   the same, but visible to local users in ps/proc\n"
	"      --pull-through       fetch what is not cached from this node's sources,\n"
	"                           cache it and serve it\n"
	"      --endpoint URL       hub for --pull-through (env HF_ENDPOINT)\n"
	"      --token-file F       hub token for --pull-through (default: HF_TOKEN...)\n"
	"      --mirror URL         mirror for --pull-through (repeatable; MODELFS_MIRRORS)\n"
	"      --mirror-token-file F  Bearer sent to mirrors (env MODELFS_MIRROR_TOKEN);\n"
	"                           by default mirrors get no credential\n"
	"      --peer URL           peer for --pull-through (repeatable; MODELFS_PEERS)\n"
	"      --proxy URL          HTTP proxy for outgoing requests\n"
	"      --cache-size SIZE    quota of the cache (\"64M\", \"20G\"; env\n"
	"                           MODELFS_CACHE_SIZE), remembered as mount does;\n"
	"                           pulled-through blobs beyond it evict the LRU\n"
	"      --workers N          request threads (default 8)\n"
	"      --max-conns N        open connections kept (default 512)\n"
	"      --idle-timeout SECS  close idle keep-alive connections after (default 30)\n"
	MFS_VERIFY_HELP
	"  -h, --help               this help\n"
	"Prints 'listening on http://HOST:PORT' once ready; SIGTERM/SIGINT stop it.\n";

static int stop_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	(void)sig;
	if (write(stop_pipe[1], "x", 1) < 0) {
		/* nothing to do in a signal handler */
	}
}

enum {
	OPT_LISTEN = 1000, OPT_CACHE, OPT_PEER_TOKEN, OPT_PULL, OPT_ENDPOINT, OPT_TOKEN_FILE,
	OPT_MIRROR, OPT_PEER, OPT_PROXY, OPT_WORKERS, OPT_MAXCONNS, OPT_IDLE,
	OPT_PEER_TOKEN_FILE, OPT_MIRROR_TOKEN_FILE, OPT_VERIFY, OPT_CACHE_SIZE,
};

/* Reads a token file named by a flag into *out (replacing it). */
static int token_flag(const char *flag, const char *path, char **out)
{
	char *t = NULL;
	int rc = mfs_cfg_token(path, &t);

	if (rc || !t) {
		fprintf(stderr, "modelfs serve: %s %s: %s\n", flag, path,
			rc ? strerror(-rc) : "empty file");
		free(t);
		return -1;
	}
	if (*out) {
		explicit_bzero(*out, strlen(*out));
		free(*out);
	}
	*out = t;
	return 0;
}

static void token_free(char *t)
{
	if (t) {
		explicit_bzero(t, strlen(t));
		free(t);
	}
}

int mfs_cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "cache", required_argument, NULL, OPT_CACHE },
		{ "peer-token", required_argument, NULL, OPT_PEER_TOKEN },
		{ "peer-token-file", required_argument, NULL, OPT_PEER_TOKEN_FILE },
		{ "mirror-token-file", required_argument, NULL, OPT_MIRROR_TOKEN_FILE },
		{ "pull-through", no_argument, NULL, OPT_PULL },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
		{ "mirror", required_argument, NULL, OPT_MIRROR },
		{ "peer", required_argument, NULL, OPT_PEER },
		{ "proxy", required_argument, NULL, OPT_PROXY },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "max-conns", required_argument, NULL, OPT_MAXCONNS },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* static: still reachable at exit on every early return */
	static struct mfs_src_list mirrors, peers;
	static char host[64];
	static char *peer_token, *mirror_token; /* from --*-token-file */
	struct mfs_serve_config cfg = { .port = 8990, .fetch_timeout_ms = 60000 };
	const char *endpoint_flag = NULL, *cache_flag = NULL, *token_file = NULL, *env;
	const char *size_flag = NULL, *bad_size;
	char endpoint[2048], cache[PATH_MAX];
	char *token = NULL;
	bool mirror_flag = false, peer_flag = false;
	struct mfs_serve *srv = NULL;
	int64_t ms;
	int c, rc;

	snprintf(host, sizeof(host), "127.0.0.1");
	cfg.host = host;
	cfg.peer_token = getenv("MODELFS_PEER_TOKEN");
	cfg.mirror_token = getenv("MODELFS_MIRROR_TOKEN");
	if ((env = getenv("MODELFS_MIRRORS")) && mfs_src_list_add(&mirrors, env))
		return mfs_usage_error("serve", "MODELFS_MIRRORS: bad URL list");
	if ((env = getenv("MODELFS_PEERS")) && mfs_src_list_add(&peers, env))
		return mfs_usage_error("serve", "MODELFS_PEERS: bad URL list");
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(serve_help, stdout);
			return 0;
		case OPT_LISTEN: {
			const char *colon = strrchr(optarg, ':');
			long port;
			if (!colon || (size_t)(colon - optarg) >= sizeof(host) || colon == optarg)
				return mfs_usage_error("serve", "--listen: expected HOST:PORT");
			if (mfs_parse_int(colon + 1, 0, 65535, &port))
				return mfs_usage_error("serve", "--listen: bad port '%s'", colon + 1);
			memcpy(host, optarg, (size_t)(colon - optarg));
			host[colon - optarg] = '\0';
			cfg.port = (int)port;
			break;
		}
		case OPT_CACHE:
			cache_flag = optarg;
			break;
		case OPT_PEER_TOKEN:
			cfg.peer_token = optarg;
			break;
		case OPT_PEER_TOKEN_FILE:
		case OPT_MIRROR_TOKEN_FILE: {
			bool peer = c == OPT_PEER_TOKEN_FILE;
			char **t = peer ? &peer_token : &mirror_token;
			if (token_flag(peer ? "--peer-token-file" : "--mirror-token-file", optarg, t)) {
				rc = 2;
				goto out;
			}
			if (peer)
				cfg.peer_token = *t;
			else
				cfg.mirror_token = *t;
			break;
		}
		case OPT_PULL:
			cfg.pull_through = true;
			break;
		case OPT_ENDPOINT:
			endpoint_flag = optarg;
			break;
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case OPT_MIRROR:
		case OPT_PEER:
			if (mfs_cfg_source_flag(c == OPT_MIRROR ? &mirrors : &peers,
						c == OPT_MIRROR ? &mirror_flag : &peer_flag, optarg))
				return mfs_usage_error("serve", "bad URL '%s'", optarg);
			break;
		case OPT_VERIFY:
			if (mfs_cfg_verify_flag(optarg, &cfg.verify_strict))
				return mfs_usage_error("serve", "--verify: 'strict' or 'sources'");
			break;
		case OPT_PROXY:
			cfg.proxy = optarg;
			break;
		case OPT_CACHE_SIZE:
			size_flag = optarg;
			break;
		case OPT_WORKERS: {
			long v;
			if (mfs_parse_int(optarg, 1, 256, &v))
				return mfs_usage_error("serve", "--workers: a number from 1 to 256, not '%s'",
						       optarg);
			cfg.workers = (int)v;
			break;
		}
		case OPT_MAXCONNS: {
			long v;
			if (mfs_parse_int(optarg, 4, 100000, &v))
				return mfs_usage_error("serve",
						       "--max-conns: a number from 4 to 100000, not '%s'",
						       optarg);
			cfg.max_conns = (int)v;
			break;
		}
		case OPT_IDLE:
			if (mfs_parse_seconds(optarg, &ms) || ms < 100 || ms > 86400000)
				return mfs_usage_error("serve", "--idle-timeout: bad duration");
			cfg.idle_ms = (int)ms;
			break;
		default:
			return mfs_usage_error("serve", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind != argc)
		return mfs_usage_error("serve", "unexpected argument '%s'", argv[optind]);
	if (mfs_cfg_endpoint(endpoint_flag, endpoint, sizeof(endpoint)))
		return mfs_usage_error("serve", "endpoint must be an http:// or https:// URL");
	if (mfs_cfg_cache_dir(cache_flag, cache, sizeof(cache)))
		return mfs_usage_error("serve", "no cache directory: set --cache or MODELFS_CACHE");
	if (mfs_cfg_cache_size(size_flag, &cfg.cache_size, &bad_size))
		return mfs_usage_error("serve", "%s: bad size '%s'",
				       size_flag ? "--cache-size" : "MODELFS_CACHE_SIZE", bad_size);
	rc = mfs_cfg_token(token_file, &token);
	if (rc) {
		fprintf(stderr, "modelfs serve: cannot read token file: %s\n", strerror(-rc));
		return 1;
	}
	cfg.cache_dir = cache;
	cfg.endpoint = endpoint;
	cfg.token = token;
	cfg.mirrors = (const char *const *)mirrors.urls;
	cfg.n_mirrors = mirrors.n;
	cfg.peers = (const char *const *)peers.urls;
	cfg.n_peers = peers.n;
	if (mfs_cfg_offline(false) && cfg.pull_through) {
		fprintf(stderr, "modelfs serve: offline (HF_HUB_OFFLINE): --pull-through ignored\n");
		cfg.pull_through = false;
	}
	if (mkdir(cache, 0755) && errno != EEXIST) {
		fprintf(stderr, "modelfs serve: cannot create %s: %s\n", cache, strerror(errno));
		rc = 1;
		goto out;
	}
	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK)) {
		perror("modelfs serve: pipe");
		rc = 1;
		goto out;
	}
	rc = mfs_serve_new(&cfg, &srv);
	if (rc) {
		fprintf(stderr, "modelfs serve: cannot start: %s\n", strerror(-rc));
		rc = 1;
		goto out;
	}
	{
		struct sigaction sa = { .sa_handler = on_signal };
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	printf("listening on http://%s:%d\n", host, mfs_serve_port(srv));
	fflush(stdout);
	rc = mfs_serve_run(srv, stop_pipe[0]) ? 1 : 0;
out:
	mfs_serve_free(srv);
	if (stop_pipe[0] >= 0) {
		close(stop_pipe[0]);
		close(stop_pipe[1]);
	}
	token_free(token);
	token_free(peer_token);
	token_free(mirror_token);
	mfs_src_list_free(&mirrors);
	mfs_src_list_free(&peers);
	return rc;
}
