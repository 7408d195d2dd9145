/*
 * test_hfcache.c - huggingface_hub cache names: repo folders, link targets,
 * node kinds (no catalog needed for these).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/hfcache.h"

Test(hfcache, repo_dir_round_trip)
{
	struct mfs_repo r = { .type = MFS_REPO_MODEL };
	char buf[300];

	snprintf(r.id, sizeof(r.id), "TheOrg/tiny-1.5B");
	cr_assert_eq(mfs_hfc_repo_dir(&r, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "models--TheOrg--tiny-1.5B");
	struct mfs_repo back;
	cr_assert_eq(mfs_hfc_parse_repo_dir(buf, &back), 0);
	cr_assert_eq(back.type, MFS_REPO_MODEL);
	cr_assert_str_eq(back.id, "TheOrg/tiny-1.5B");
	cr_assert_eq(mfs_hfc_parse_repo_dir("datasets--o--d", &back), 0);
	cr_assert_eq(back.type, MFS_REPO_DATASET);
	cr_assert_str_eq(back.id, "o/d");
	cr_assert_eq(mfs_hfc_repo_dir(&r, buf, 10), -ENAMETOOLONG);
}

Test(hfcache, repo_dir_rejects)
{
	const char *bad[] = { "models--", "models--org", "models----x", "models--org--",
			      "models--a--b--c", "spaces--a--b", "models--.a--b", "model--a--b",
			      "models--a--b/c", "TheOrg", "datasets", NULL };
	struct mfs_repo r;

	for (int i = 0; bad[i]; i++) {
		cr_assert_eq(mfs_hfc_parse_repo_dir(bad[i], &r), -ENOENT, "%s", bad[i]);
		cr_assert(!mfs_hfc_is_root_entry(bad[i]), "%s", bad[i]);
	}
}

/* A LINK node over a two-file tree: the target climbs one level per
 * directory, LFS files link to their sha256, others to their git sha1. */
Test(hfcache, link_targets)
{
	struct mfs_entry *e = calloc(4, sizeof(*e));
	struct mfs_tree *t;

	e[0] = (struct mfs_entry){ .path = strdup("a"), .kind = MFS_KIND_DIR };
	e[1] = (struct mfs_entry){ .path = strdup("a/b"), .kind = MFS_KIND_DIR };
	e[2] = (struct mfs_entry){ .path = strdup("a/b/w.safetensors"), .kind = MFS_KIND_FILE,
				   .size = 5 };
	e[3] = (struct mfs_entry){ .path = strdup("c.json"), .kind = MFS_KIND_FILE, .size = 2 };
	memset(e[2].oid, '1', 40);
	memset(e[2].sha256, 'f', 64);
	memset(e[3].oid, '2', 40);
	cr_assert_eq(mfs_tree_build(e, 4, &t), 0);

	struct mfs_hfc_node n = { .kind = MFS_HFC_LINK, .tree = t };
	char out[512], want[512];
	struct stat st;
	cr_assert_eq(mfs_tree_find(t, "a/b/w.safetensors", &n.tnode), 0);
	cr_assert_eq(mfs_hfc_readlink(&n, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "../../../../blobs/%064d", 0);
	memset(want + strlen("../../../../blobs/"), 'f', 64);
	cr_assert_str_eq(out, want);
	memset(&st, 0, sizeof(st));
	mfs_hfc_stat(&n, &st);
	cr_assert(S_ISLNK(st.st_mode));
	cr_assert_eq((size_t)st.st_size, strlen(want));
	cr_assert_eq(mfs_hfc_readlink(&n, out, 20), -ENAMETOOLONG);

	cr_assert_eq(mfs_tree_find(t, "c.json", &n.tnode), 0);
	cr_assert_eq(mfs_hfc_readlink(&n, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "../../blobs/2222222222222222222222222222222222222222");
	cr_assert(!mfs_hfc_is_dir(&n));
	cr_assert_null(mfs_hfc_file_entry(&n));

	n.kind = MFS_HFC_BLOB;
	cr_assert_eq(mfs_hfc_file_entry(&n), &t->entries[3]);
	mfs_hfc_stat(&n, &st);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_size, 2);
	cr_assert_eq(mfs_hfc_ttl(&n, 60, 1e9), 1e9);
	n.kind = MFS_HFC_REF;
	cr_assert_eq(mfs_hfc_ttl(&n, 60, 1e9), 60);
	cr_assert_eq(mfs_hfc_readlink(&n, out, sizeof(out)), -EINVAL);
	mfs_tree_free(t);
}
