/*
 * config.c - settings resolution (see config.h). No state; pure lookups of
 * flags, environment and files.
 */
#include "cli/config.h"
#include "fetch/source.h"
#include "util/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

bool mfs_cfg_truthy(const char *v)
{
	return v && (!strcasecmp(v, "1") || !strcasecmp(v, "on") ||
		     !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

static int put(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s%s", a, b ? b : "");
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int mfs_cfg_endpoint(const char *flag, char *out, size_t cap)
{
	const char *v = flag && *flag ? flag : getenv("HF_ENDPOINT");
	int rc = put(out, cap, v && *v ? v : MFS_DEFAULT_ENDPOINT, NULL);
	size_t n = strlen(out);

	while (rc == 0 && n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
	if (rc == 0 && strncmp(out, "http://", 7) && strncmp(out, "https://", 8))
		return -EINVAL;
	return rc;
}

int mfs_cfg_cache_size(const char *flag, uint64_t *out, const char **bad)
{
	const char *v = flag && *flag ? flag : getenv("MODELFS_CACHE_SIZE");

	*out = 0;
	if (!v || !*v)
		return 0;
	if (mfs_parse_size(v, out)) {
		*out = 0;
		*bad = v;
		return -EINVAL;
	}
	return 0;
}

int mfs_cfg_cache_dir(const char *flag, char *out, size_t cap)
{
	const char *v;

	if (flag && *flag)
		return put(out, cap, flag, NULL);
	if ((v = getenv("MODELFS_CACHE")) && *v)
		return put(out, cap, v, NULL);
	if (getuid() == 0)
		return put(out, cap, "/var/cache/modelfs", NULL);
	if ((v = getenv("XDG_CACHE_HOME")) && *v)
		return put(out, cap, v, "/modelfs");
	if ((v = getenv("HOME")) && *v)
		return put(out, cap, v, "/.cache/modelfs");
	return -ENOENT;
}

/* Whole file, CR/LF removed, surrounding blanks trimmed; NULL if empty. */
static int read_token_file(const char *path, char **out)
{
	char buf[4096];
	size_t n, s = 0;
	FILE *f = fopen(path, "r");

	*out = NULL;
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] != '\r' && buf[i] != '\n')
			buf[s++] = buf[i];
	buf[s] = '\0';
	char *start = buf;
	while (isspace((unsigned char)*start))
		start++;
	char *end = start + strlen(start);
	while (end > start && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (*start && !(*out = strdup(start)))
		return -ENOMEM;
	return 0;
}

int mfs_cfg_token(const char *token_file_flag, char **out)
{
	char path[4096];
	const char *v;

	*out = NULL;
	if (token_file_flag)
		return read_token_file(token_file_flag, out);
	if (mfs_cfg_truthy(getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")))
		return 0;
	if (((v = getenv("HF_TOKEN")) && *v) || ((v = getenv("HUGGING_FACE_HUB_TOKEN")) && *v))
		return (*out = strdup(v)) ? 0 : -ENOMEM;
	if ((v = getenv("HF_TOKEN_PATH")) && *v)
		snprintf(path, sizeof(path), "%s", v);
	else if ((v = getenv("HF_HOME")) && *v)
		snprintf(path, sizeof(path), "%s/token", v);
	else if ((v = getenv("HOME")) && *v)
		snprintf(path, sizeof(path), "%s/.cache/huggingface/token", v);
	else
		return 0;
	int rc = read_token_file(path, out);
	return rc == -ENOENT ? 0 : rc;
}

bool mfs_cfg_offline(bool flag)
{
	return flag || mfs_cfg_truthy(getenv("HF_HUB_OFFLINE"));
}

int mfs_cfg_source_flag(struct mfs_src_list *list, bool *flag_seen, const char *url)
{
	if (!*flag_seen)
		mfs_src_list_free(list);
	*flag_seen = true;
	return mfs_src_list_add(list, url);
}

int mfs_cfg_verify_flag(const char *arg, bool *strict)
{
	if (strcmp(arg, "strict") == 0)
		*strict = true;
	else if (strcmp(arg, "sources") == 0)
		*strict = false;
	else
		return -EINVAL;
	return 0;
}
