/*
 * fuzz_tree.c - libFuzzer target: the hub's tree-listing decoder
 * (fetch/tree.c): pages of untrusted JSON into validated entries. Input
 * is split into pages at 0xff bytes. Every entry handed back must have a
 * valid path the kernel accepts (<= 1024 bytes, names <= 255), paths must
 * be unique and sorted, and files must have an oid.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch/hub_internal.h"
#include "util/log.h"
#include "util/repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mfs_hub_tree *t;
	struct mfs_entry *v = NULL;
	size_t n = 0, start = 0;

	mfs_log_set_level(MFS_LOG_ERROR);
	if (mfs_hub_tree_new(&t))
		return 0;
	for (size_t i = 0; i <= size; i++) {
		if (i == size || data[i] == 0xff) {
			if (mfs_hub_tree_add_page(t, (const char *)data + start, i - start) < 0)
				break;
			start = i + 1;
		}
	}
	if (mfs_hub_tree_finish(t, &v, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			size_t pl = strlen(v[i].path), comp = 0;
			if (!mfs_path_valid(v[i].path, pl) || pl > 1024)
				abort();
			for (size_t k = 0; k <= pl; k++) {
				if (k == pl || v[i].path[k] == '/') {
					if (comp > 255)
						abort();
					comp = 0;
				} else {
					comp++;
				}
			}
			if (i && strcmp(v[i - 1].path, v[i].path) >= 0)
				abort();
			if (v[i].kind == MFS_KIND_FILE && !mfs_hex_valid(v[i].oid, 40))
				abort();
		}
		mfs_entries_free(v, n);
	}
	mfs_hub_tree_free(t);
	return 0;
}
