/*
 * test_names.c - "<name>@<rev>" parsing and printing under a mount.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "fs/names.h"

Test(names, parse)
{
	char name[97], rev[MFS_REV_MAX];

	cr_assert_eq(mfs_names_parse("tiny", name, rev), 0);
	cr_assert_str_eq(name, "tiny");
	cr_assert_str_eq(rev, "");
	cr_assert_eq(mfs_names_parse("tiny@v1.0", name, rev), 0);
	cr_assert_str_eq(rev, "v1.0");
	cr_assert_eq(mfs_names_parse("tiny@refs%2Fpr%2F1", name, rev), 0);
	cr_assert_str_eq(rev, "refs/pr/1");
	cr_assert_eq(mfs_names_parse("tiny@refs%2fconvert%2Fparquet", name, rev), 0);
	cr_assert_str_eq(rev, "refs/convert/parquet");
	cr_assert_eq(mfs_names_parse("x@100%25", name, rev), 0);
	cr_assert_str_eq(rev, "100%");
}

Test(names, reject)
{
	char name[97], rev[MFS_REV_MAX];
	const char *bad[] = { "", "@main", "tiny@", "a..b", "-x", "tiny@%2F", "tiny@a%2F",
			      "tiny@a%2F%2Fb", "tiny@%41", "tiny@%4", "tiny@..", "a--b",
			      "tiny@a\x01", NULL };
	for (int i = 0; bad[i]; i++)
		cr_assert_eq(mfs_names_parse(bad[i], name, rev), -ENOENT, "%s", bad[i]);
	char longname[200];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(mfs_names_parse(longname, name, rev), -ENOENT);
}

Test(names, format_round_trips)
{
	const char *revs[] = { "", "main", "refs/pr/12", "v1%2", "refs/convert/parquet", NULL };
	char out[300], name[97], rev[MFS_REV_MAX];

	for (int i = 0; revs[i]; i++) {
		cr_assert_eq(mfs_names_format("tiny", revs[i], out, sizeof(out)), 0);
		cr_assert_eq(mfs_names_parse(out, name, rev), 0, "%s", out);
		cr_assert_str_eq(name, "tiny");
		cr_assert_str_eq(rev, revs[i]);
	}
	cr_assert_eq(mfs_names_format("tiny", "refs/pr/1", out, 8), -ENAMETOOLONG);
	cr_assert(mfs_names_is_commit("0123456789abcdef0123456789ABCDEF01234567"));
	cr_assert(!mfs_names_is_commit("0123456789abcdef0123456789abcdef0123456"));
}
