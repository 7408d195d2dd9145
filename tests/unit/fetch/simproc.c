/*
 * simproc.c - the hub simulator as a child process of a C test.
 *
 * What it does: fork+exec of python3 hubsim.py with all ports chosen by the
 * kernel, a bounded wait for its one-line JSON "ready" message, control
 * requests with libcurl (never through a proxy, only to 127.0.0.1), and a
 * stop that always reaps the child. PR_SET_PDEATHSIG makes the simulator
 * die with the test process even if the test crashes before its fini.
 * What it does not do: retry, or talk to the simulated hub itself.
 */
#include "simproc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/size.h"
#include "util/strbuf.h"

#ifndef MFS_SOURCE_ROOT
#error "MFS_SOURCE_ROOT must be defined by the build"
#endif

#define READY_TIMEOUT_MS 20000

static int copy_url(char *dst, size_t n, const struct mfs_json *doc, const char *key)
{
	const char *s = mfs_json_get_str(doc, key);

	if (!s || strncmp(s, "http://127.0.0.1:", 17) != 0 || strlen(s) >= n)
		return -EPROTO;
	strcpy(dst, s);
	return 0;
}

int simproc_start(struct simproc *sp, const char *root)
{
	char script[PATH_MAX], line[1024];
	int pfd[2] = { -1, -1 };
	size_t len = 0;
	int64_t deadline;
	struct mfs_json *doc = NULL;
	pid_t parent = getpid();
	int rc = 0;

	memset(sp, 0, sizeof(*sp));
	sp->pid = -1;
	snprintf(script, sizeof(script), "%s/tests/hubsim/hubsim.py", MFS_SOURCE_ROOT);
	if (access(script, R_OK) != 0)
		return -ENOENT;
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -errno;
	sp->pid = fork();
	if (sp->pid < 0) {
		rc = -errno;
		goto out;
	}
	if (sp->pid == 0) {
		/* child: the simulator must not outlive the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(pfd[1], STDOUT_FILENO);
		execlp("python3", "python3", script, "--root", root, "--host", "127.0.0.1",
		       "--port", "0", "--cdn-port", "0", "--control-port", "0", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	pfd[1] = -1;
	deadline = mfs_now_ms() + READY_TIMEOUT_MS;
	while (!memchr(line, '\n', len)) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		int64_t left = deadline - mfs_now_ms();
		ssize_t r;

		if (left <= 0 || len + 1 >= sizeof(line)) {
			rc = -ETIMEDOUT;
			goto out;
		}
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = read(pfd[0], line + len, sizeof(line) - 1 - len);
		if (r <= 0) {
			rc = -EPIPE; /* the simulator died before being ready */
			goto out;
		}
		len += (size_t)r;
	}
	len = (size_t)((char *)memchr(line, '\n', len) - line);
	if (mfs_json_parse(line, len, &doc) < 0 || copy_url(sp->hub, sizeof(sp->hub), doc, "hub") ||
	    copy_url(sp->cdn, sizeof(sp->cdn), doc, "cdn") ||
	    copy_url(sp->control, sizeof(sp->control), doc, "control"))
		rc = -EPROTO;
out:
	mfs_json_free(doc);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (rc < 0)
		simproc_stop(sp);
	return rc;
}

void simproc_stop(struct simproc *sp)
{
	int64_t deadline;
	int st;

	if (sp->pid <= 0)
		return;
	kill(sp->pid, SIGTERM);
	deadline = mfs_now_ms() + 5000;
	while (waitpid(sp->pid, &st, WNOHANG) == 0) {
		if (mfs_now_ms() >= deadline) {
			kill(sp->pid, SIGKILL);
			waitpid(sp->pid, &st, 0);
			break;
		}
		usleep(20000);
	}
	sp->pid = -1;
}

static size_t collect(char *d, size_t sz, size_t n, void *ud)
{
	return mfs_strbuf_append(ud, d, sz * n) == 0 ? sz * n : 0;
}

int simproc_control(struct simproc *sp, const char *path, const char *body, char **out)
{
	struct mfs_strbuf sb = MFS_STRBUF_INIT;
	struct curl_slist *h = NULL;
	char url[512];
	long status = 0;
	CURL *c;
	int rc;

	if (out)
		*out = NULL;
	snprintf(url, sizeof(url), "%s%s", sp->control, path);
	c = curl_easy_init();
	if (!c)
		return -ENOMEM;
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sb);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) != CURLE_OK) {
		rc = -EIO;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	rc = (int)status;
	if (out) {
		if (!sb.buf)
			mfs_strbuf_append(&sb, "", 0);
		*out = mfs_strbuf_detach(&sb, NULL);
	}
out:
	mfs_strbuf_free(&sb);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

int simproc_stats(struct simproc *sp, struct mfs_json **out)
{
	char *body = NULL;
	int rc = simproc_control(sp, "/_sim/stats", NULL, &body);

	*out = NULL;
	if (rc == 200)
		rc = mfs_json_parse(body, strlen(body), out);
	else if (rc >= 0)
		rc = -EIO;
	free(body);
	return rc;
}

int64_t simproc_stat(struct simproc *sp, const char *a, const char *b)
{
	struct mfs_json *doc = NULL;
	const struct mfs_json *v;
	int64_t x = -1;

	if (simproc_stats(sp, &doc) < 0)
		return -1;
	v = mfs_json_get(doc, a);
	if (b)
		v = mfs_json_get(v, b);
	if (!v || !mfs_json_int(v, &x))
		x = -1;
	mfs_json_free(doc);
	return x;
}

static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	return 0;
}

int simproc_write_file(const char *root, const char *rel, const void *data, size_t len)
{
	char path[PATH_MAX + 256];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if ((rc = mkdirs(path)) < 0)
		return rc;
	f = fopen(path, "wb");
	if (!f)
		return -errno;
	if (len && fwrite(data, 1, len, f) != len)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -EIO;
	return rc;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

void simproc_rmtree(const char *path)
{
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}
