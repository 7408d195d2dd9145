/*
 * main.c - `modelfs`: finds the subcommand and hands it the arguments.
 * All behaviour lives in the subcommands and the libraries they call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "util/log.h"

struct command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "mount", "mount Hugging Face repositories lazily at a directory", mfs_cmd_mount },
	{ "umount", "unmount a modelfs mount and wait for its daemon to finish", mfs_cmd_umount },
	{ "prefetch", "download repository files into the cache, verified", mfs_cmd_prefetch },
	{ "pin", "prefetch and keep files in the cache (never evicted)", mfs_cmd_pin },
	{ "unpin", "remove pins; the files become evictable", mfs_cmd_unpin },
	{ "ls", "list cached repository revisions", mfs_cmd_ls },
	{ "status", "cache use, quota, hit ratio, sources, running mounts", mfs_cmd_status },
	{ "gc", "evict least recently used unpinned blocks now", mfs_cmd_gc },
	{ "verify", "rehash cached files and drop bad ones", mfs_cmd_verify },
	{ "serve", "serve the cache over HTTP to peers and HF clients", mfs_cmd_serve },
	{ "import", "adopt a huggingface_hub cache (or --local-dir folder), verified", mfs_cmd_import },
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: modelfs COMMAND [OPTIONS]\n\n"
		"Mounts Hugging Face Hub repositories as a read-only filesystem; file\n"
		"bytes are fetched in blocks on first read and cached on disk.\n\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n'modelfs COMMAND --help' describes a command's options.\n"
		"  --version  print the version\n");
}

int mfs_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "modelfs %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'modelfs %s --help'.\n", cmd);
	return 2;
}

int main(int argc, char **argv)
{
	mfs_log_init_from_env();
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("modelfs %s\n", MODELFS_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "modelfs: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
