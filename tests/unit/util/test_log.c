/*
 * test_log.c - log line format, level filtering, MODELFS_LOG, and whole
 * lines under concurrent writers.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static char *slurp(FILE *f)
{
	fflush(f);
	long n = ftell(f);
	char *s = calloc(1, (size_t)n + 1);
	rewind(f);
	cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	return s;
}

Test(log, format_and_levels)
{
	FILE *f = tmpfile();
	mfs_log_set_file(f);
	mfs_log_set_level(MFS_LOG_INFO);
	mfs_info("hello %d", 42);
	mfs_debug("hidden %d", 1);
	mfs_warn("careful\n");
	mfs_error("bad");
	mfs_log_set_file(NULL);
	char *s = slurp(f);
	fclose(f);

	char pat[256];
	snprintf(pat, sizeof(pat),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z modelfs\\[%ld\\] "
		 "(INFO|WARN|ERROR) [a-z 0-9]+$", (long)getpid());
	regex_t re;
	cr_assert_eq(regcomp(&re, pat, REG_EXTENDED | REG_NOSUB), 0);
	int lines = 0;
	for (char *save = NULL, *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cr_assert_eq(regexec(&re, l, 0, NULL, 0), 0, "bad line <%s>", l);
		lines++;
	}
	regfree(&re);
	cr_assert_eq(lines, 3, "debug filtered, trailing newline not doubled");
	free(s);
}

Test(log, env_levels)
{
	setenv("MODELFS_LOG", "debug", 1);
	mfs_log_init_from_env();
	cr_assert_eq(mfs_log_level(), MFS_LOG_DEBUG);
	setenv("MODELFS_LOG", "ERROR", 1);
	mfs_log_init_from_env();
	cr_assert_eq(mfs_log_level(), MFS_LOG_ERROR);
	setenv("MODELFS_LOG", "warn", 1);
	mfs_log_init_from_env();
	cr_assert_eq(mfs_log_level(), MFS_LOG_WARN);
	setenv("MODELFS_LOG", "bogus", 1);
	mfs_log_init_from_env();
	cr_assert_eq(mfs_log_level(), MFS_LOG_WARN, "unknown value keeps the level");

	FILE *f = tmpfile();
	mfs_log_set_file(f);
	mfs_info("not shown");
	mfs_warn("shown");
	mfs_log_set_file(NULL);
	char *s = slurp(f);
	fclose(f);
	cr_assert_null(strstr(s, "not shown"));
	cr_assert_not_null(strstr(s, " WARN shown\n"));
	free(s);
}

static void *writer(void *arg)
{
	long id = (long)arg;
	for (int i = 0; i < 300; i++)
		mfs_info("thread %ld line %d %s", id, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	return NULL;
}

Test(log, concurrent_lines_whole)
{
	FILE *f = tmpfile();
	mfs_log_set_file(f);
	mfs_log_set_level(MFS_LOG_INFO);
	pthread_t t[6];
	for (long i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, writer, (void *)i);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	mfs_log_set_file(NULL);
	char *s = slurp(f);
	fclose(f);
	int lines = 0;
	for (char *save = NULL, *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		long tid;
		int n;
		const char *m = strstr(l, " INFO thread ");
		cr_assert_not_null(m, "<%s>", l);
		cr_assert_eq(sscanf(m, " INFO thread %ld line %d", &tid, &n), 2);
		cr_assert_not_null(strstr(l, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
		cr_assert_null(strstr(m + 1, "modelfs["), "two lines merged: <%s>", l);
		lines++;
	}
	cr_assert_eq(lines, 1800);
	free(s);
}
