/*
 * test_orglist.c - the org listing page parser: names of that org only,
 * valid ones only, any case of the org, malformed pages refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fetch/orglist.h"

struct got {
	char names[8][128];
	size_t n;
};

static int collect(void *ctx, const char *name)
{
	struct got *g = ctx;

	cr_assert_lt(g->n, 8);
	snprintf(g->names[g->n++], 128, "%s", name);
	return 0;
}

Test(orglist, names_of_that_org_only)
{
	const char *page = "[{\"id\":\"TheOrg/a\"},{\"id\":\"theorg/b-1.5\"},{\"id\":\"Other/c\"},"
			   "{\"id\":\"TheOrg/bad--name\"},{\"id\":\"TheOrg/\"},{\"id\":42},{},"
			   "{\"id\":\"TheOrgX/d\"},{\"id\":\"TheOrg/e/f\"},{\"id\":\"TheOrg/g\"}]";
	struct got g = { 0 };
	size_t count = 0;

	cr_assert_eq(mfs_orglist_parse_page(page, strlen(page), "TheOrg", collect, &g, &count), 0);
	cr_assert_eq(g.n, 3);
	cr_assert_str_eq(g.names[0], "a");
	cr_assert_str_eq(g.names[1], "b-1.5");
	cr_assert_str_eq(g.names[2], "g");
	cr_assert_eq(count, 3);
}

Test(orglist, malformed_pages)
{
	const char *bad[] = { "{\"id\":\"TheOrg/a\"}", "not json", "[{\"id\":", "", NULL };
	struct got g = { 0 };
	size_t count = 0;

	for (int i = 0; bad[i]; i++)
		cr_assert_eq(mfs_orglist_parse_page(bad[i], strlen(bad[i]), "TheOrg", collect, &g,
						    &count), -EIO, "%s", bad[i]);
	cr_assert_eq(g.n, 0);
}

static int stop(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return 7;
}

Test(orglist, callback_stops)
{
	const char *page = "[{\"id\":\"o/a\"},{\"id\":\"o/b\"}]";
	size_t count = 0;

	cr_assert_eq(mfs_orglist_parse_page(page, strlen(page), "o", stop, NULL, &count), 7);
	cr_assert_eq(count, 1);
}
