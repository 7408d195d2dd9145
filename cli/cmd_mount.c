/*
 * cmd_mount.c - `modelfs mount` and `modelfs umount`: argument parsing and
 * settings resolution; the mount itself is fs/daemon.c.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/config.h"
#include "fetch/source.h"
#include "cli/daemon.h"
#include "util/size.h"

static const char mount_help[] =
	"usage: modelfs mount MOUNTPOINT [OPTIONS]\n\n"
	"Mounts every Hugging Face repository under MOUNTPOINT:\n"
	"  MOUNTPOINT/<org>/<name>                 -> <name>@<commit> of the default branch\n"
	"  MOUNTPOINT/<org>/<name>@<branch|tag>    -> <name>@<commit>\n"
	"  MOUNTPOINT/<org>/<name>@<commit>/...    the files at that commit (immutable)\n"
	"  MOUNTPOINT/datasets/<org>/<name>...     the same for datasets\n"
	"A '/' in a revision is written %%2F (name@refs%%2Fpr%%2F1). Bytes are fetched\n"
	"in blocks on first read and kept in the cache. Returns once the mount is live.\n\n"
	"options:\n"
	"  -f, --foreground         stay in the foreground, log to stderr\n"
	"      --endpoint URL       hub endpoint (env HF_ENDPOINT; default %s)\n"
	"      --cache DIR          cache directory (env MODELFS_CACHE; default\n"
	"                           $XDG_CACHE_HOME/modelfs, /var/cache/modelfs for root)\n"
	"      --token-file F       read the hub token from F (default: HF_TOKEN,\n"
	"                           HF_TOKEN_PATH, $HF_HOME/token)\n"
	"      --offline            never contact the hub (env HF_HUB_OFFLINE=1)\n"
	"      --cache-size SIZE    cache quota, e.g. 20G (env MODELFS_CACHE_SIZE)\n"
	"      --block-size SIZE    block size for newly cached files (default 1M)\n"
	"      --ref-ttl SECONDS    re-resolve branches and tags after this (default 60)\n"
	"      --fetch-timeout SECONDS  bound on one fetch incl. retries (default 60)\n"
	"      --fetch-threads N    parallel range requests (default 8)\n"
	"      --allow-other        let other users see the mount (needs user_allow_other)\n"
	"      --mirror URL         an HF-compatible mirror, used when the hub fails\n"
	"                           (repeatable; env MODELFS_MIRRORS, comma-separated;\n"
	"                           a Bearer for them only from MODELFS_MIRROR_TOKEN)\n"
	"      --peer URL           a `modelfs serve` peer, asked first by content hash\n"
	"                           (repeatable; env MODELFS_PEERS; token MODELFS_PEER_TOKEN)\n"
	"      --prefer hub|mirror  which to try first for file bytes (default hub)\n"
	"      --proxy URL          HTTP proxy (default: https_proxy/no_proxy from env)\n"
	MFS_VERIFY_HELP
	"  -o OPTION[,OPTION]       extra FUSE mount options\n"
	"  -h, --help               this help\n";

static const char umount_help[] =
	"usage: modelfs umount MOUNTPOINT [-l|--lazy]\n\n"
	"Unmounts a modelfs mount and waits (up to 30 s) for its daemon to exit, so\n"
	"the cache is consistent when this returns.\n"
	"  -l, --lazy   detach now even if files are open (they keep working)\n"
	"  -h, --help   this help\n";

enum {
	OPT_ENDPOINT = 1000, OPT_CACHE, OPT_TOKEN_FILE, OPT_OFFLINE, OPT_CACHE_SIZE,
	OPT_BLOCK_SIZE, OPT_REF_TTL, OPT_FETCH_TIMEOUT, OPT_ALLOW_OTHER, OPT_THREADS,
	OPT_MIRROR, OPT_PEER, OPT_PREFER, OPT_PROXY, OPT_VERIFY,
};

int mfs_cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "endpoint", required_argument, NULL, OPT_ENDPOINT },
		{ "cache", required_argument, NULL, OPT_CACHE },
		{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
		{ "offline", no_argument, NULL, OPT_OFFLINE },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
		{ "ref-ttl", required_argument, NULL, OPT_REF_TTL },
		{ "fetch-timeout", required_argument, NULL, OPT_FETCH_TIMEOUT },
		{ "fetch-threads", required_argument, NULL, OPT_THREADS },
		{ "allow-other", no_argument, NULL, OPT_ALLOW_OTHER },
		{ "mirror", required_argument, NULL, OPT_MIRROR },
		{ "peer", required_argument, NULL, OPT_PEER },
		{ "prefer", required_argument, NULL, OPT_PREFER },
		{ "proxy", required_argument, NULL, OPT_PROXY },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mfs_mount_config cfg = {
		.block_size = 1u << 20, .ref_ttl_ms = 60000, .fetch_timeout_ms = 60000,
		.fetch_threads = 8,
	};
	const char *endpoint_flag = NULL, *cache_flag = NULL, *token_file = NULL;
	const char *fuse_opts[33] = { NULL };
	char endpoint[2048], cache[PATH_MAX];
	char *token = NULL;
	bool offline_flag = false;
	int nopts = 0, c, rc;
	uint64_t v;

	/* static: still reachable at exit on every early return (no leak noise) */
	static struct mfs_src_list mirrors, peers;
	bool mirror_flag = false, peer_flag = false;
	const char *env_list;

	if ((env_list = getenv("MODELFS_MIRRORS")) && mfs_src_list_add(&mirrors, env_list))
		return mfs_usage_error("mount", "MODELFS_MIRRORS: bad URL list '%s'", env_list);
	if ((env_list = getenv("MODELFS_PEERS")) && mfs_src_list_add(&peers, env_list))
		return mfs_usage_error("mount", "MODELFS_PEERS: bad URL list '%s'", env_list);

	const char *bad_size;
	if (mfs_cfg_cache_size(NULL, &cfg.cache_size, &bad_size))
		return mfs_usage_error("mount", "MODELFS_CACHE_SIZE: bad size '%s'", bad_size);

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "fho:", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			cfg.foreground = true;
			break;
		case 'h':
			printf(mount_help, MFS_DEFAULT_ENDPOINT);
			return 0;
		case 'o':
			if (nopts == 32)
				return mfs_usage_error("mount", "too many -o options");
			fuse_opts[nopts++] = optarg;
			break;
		case OPT_ENDPOINT:
			endpoint_flag = optarg;
			break;
		case OPT_CACHE:
			cache_flag = optarg;
			break;
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case OPT_OFFLINE:
			offline_flag = true;
			break;
		case OPT_CACHE_SIZE:
			if (mfs_parse_size(optarg, &cfg.cache_size))
				return mfs_usage_error("mount", "--cache-size: bad size '%s'", optarg);
			break;
		case OPT_BLOCK_SIZE:
			if (mfs_parse_size(optarg, &v) || v < 65536 || v > (64u << 20) ||
			    (v & (v - 1)))
				return mfs_usage_error("mount", "--block-size: '%s' must be a power "
						       "of two from 64K to 64M", optarg);
			cfg.block_size = (uint32_t)v;
			break;
		case OPT_REF_TTL:
			if (mfs_parse_seconds(optarg, &cfg.ref_ttl_ms))
				return mfs_usage_error("mount", "--ref-ttl: bad duration '%s'", optarg);
			break;
		case OPT_FETCH_TIMEOUT:
			if (mfs_parse_seconds(optarg, &cfg.fetch_timeout_ms) ||
			    cfg.fetch_timeout_ms < 100)
				return mfs_usage_error("mount", "--fetch-timeout: bad duration '%s'",
						       optarg);
			break;
		case OPT_THREADS: {
			long v;
			if (mfs_parse_int(optarg, 1, 64, &v))
				return mfs_usage_error("mount", "--fetch-threads: a number from 1 to 64, not '%s'",
						       optarg);
			cfg.fetch_threads = (int)v;
			break;
		}
		case OPT_MIRROR:
		case OPT_PEER:
			if (mfs_cfg_source_flag(c == OPT_MIRROR ? &mirrors : &peers,
						c == OPT_MIRROR ? &mirror_flag : &peer_flag, optarg))
				return mfs_usage_error("mount", "--%s: bad URL '%s'",
						       c == OPT_MIRROR ? "mirror" : "peer", optarg);
			break;
		case OPT_PREFER:
			if (strcmp(optarg, "hub") && strcmp(optarg, "mirror"))
				return mfs_usage_error("mount", "--prefer: 'hub' or 'mirror'");
			cfg.prefer_mirror = strcmp(optarg, "mirror") == 0;
			break;
		case OPT_PROXY:
			cfg.proxy = optarg;
			break;
		case OPT_VERIFY:
			if (mfs_cfg_verify_flag(optarg, &cfg.verify_strict))
				return mfs_usage_error("mount", "--verify: 'strict' or 'sources'");
			break;
		case OPT_ALLOW_OTHER:
			cfg.allow_other = true;
			break;
		default:
			return mfs_usage_error("mount", "unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return mfs_usage_error("mount", optind == argc ? "missing MOUNTPOINT" :
				       "unexpected argument '%s'", argv[argc - 1]);
	cfg.mountpoint = argv[optind];
	if (mfs_cfg_endpoint(endpoint_flag, endpoint, sizeof(endpoint)))
		return mfs_usage_error("mount", "endpoint must be an http:// or https:// URL");
	if (mfs_cfg_cache_dir(cache_flag, cache, sizeof(cache)))
		return mfs_usage_error("mount", "no cache directory: set --cache or MODELFS_CACHE");
	rc = mfs_cfg_token(token_file, &token);
	if (rc) {
		fprintf(stderr, "modelfs mount: cannot read token file %s: %s\n",
			token_file, strerror(-rc));
		return 1;
	}
	cfg.endpoint = endpoint;
	cfg.cache_dir = cache;
	cfg.token = token;
	cfg.offline = mfs_cfg_offline(offline_flag);
	cfg.fuse_opts = fuse_opts;
	cfg.mirrors = (const char *const *)mirrors.urls;
	cfg.n_mirrors = mirrors.n;
	cfg.peers = (const char *const *)peers.urls;
	cfg.n_peers = peers.n;
	cfg.peer_token = getenv("MODELFS_PEER_TOKEN");
	cfg.mirror_token = getenv("MODELFS_MIRROR_TOKEN");
	rc = mfs_mount_run(&cfg);
	mfs_src_list_free(&mirrors);
	mfs_src_list_free(&peers);
	if (token) {
		/* Do not leave the token lying in freed memory. */
		memset(token, 0, strlen(token));
		free(token);
	}
	return rc;
}

/* Alive and not a zombie (an unreaped daemon has finished its work). */
static bool process_running(int pid)
{
	char path[64], buf[256];
	FILE *f;
	bool running = false;

	if (pid <= 0 || kill(pid, 0) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f)) {
		char *rp = strrchr(buf, ')');
		running = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
	}
	fclose(f);
	return running;
}

/* Is `mp` a modelfs mount? (fstype fuse.modelfs in mountinfo) */
static bool is_modelfs_mount(const char *mp)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char path[PATH_MAX], *sep = strstr(line, " - ");
		char fstype[64];
		if (!sep || sscanf(line, "%*d %*d %*s %*s %4095s", path) != 1)
			continue;
		if (sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		if (strcmp(path, mp) == 0 && strcmp(fstype, "fuse.modelfs") == 0)
			found = true;
	}
	fclose(f);
	return found;
}

int mfs_cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lazy", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char mp[PATH_MAX], state[PATH_MAX];
	bool lazy = false;
	int c, pid = 0;
	FILE *f;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "lh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			lazy = true;
			break;
		case 'h':
			fputs(umount_help, stdout);
			return 0;
		default:
			return mfs_usage_error("umount", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return mfs_usage_error("umount", "expected exactly one MOUNTPOINT");
	if (!realpath(argv[optind], mp)) {
		/* A dead FUSE mount fails stat with ENOTCONN: still unmount it. */
		if (errno != ENOTCONN) {
			fprintf(stderr, "modelfs umount: %s: %s\n", argv[optind], strerror(errno));
			return 1;
		}
		snprintf(mp, sizeof(mp), "%s", argv[optind]);
	}
	if (!is_modelfs_mount(mp)) {
		fprintf(stderr, "modelfs umount: %s is not a modelfs mount\n", mp);
		return 1;
	}
	if (mfs_mount_state_path(mp, state, sizeof(state)) == 0 && (f = fopen(state, "r"))) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	if (getuid() == 0) {
		if (umount2(mp, lazy ? MNT_DETACH : 0)) {
			fprintf(stderr, "modelfs umount: %s: %s%s\n", mp, strerror(errno),
				errno == EBUSY ? " (files are open; close them or use --lazy)" : "");
			return 1;
		}
	} else {
		pid_t child = fork();
		if (child == 0) {
			execlp("fusermount3", "fusermount3", lazy ? "-uz" : "-u", mp, (char *)NULL);
			_exit(127);
		}
		int st;
		if (child < 0 || waitpid(child, &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			fprintf(stderr, "modelfs umount: fusermount3 -u %s failed\n", mp);
			return 1;
		}
	}
	/* Wait for the daemon so its index writes are done when we return. */
	for (int i = 0; i < 300 && process_running(pid); i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (process_running(pid)) {
		fprintf(stderr, "modelfs umount: daemon %d still running after 30 s\n", pid);
		return 1;
	}
	return 0;
}
