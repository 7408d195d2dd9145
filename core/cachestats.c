/*
 * cachestats.c - counters from a process into the index (see cachestats.h).
 */
#include "core/cachestats.h"

#include <stdio.h>
#include <string.h>

void mfs_statsync_init(struct mfs_statsync *s, const char *endpoint, bool include_reads)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", endpoint ? endpoint : "");
	s->reads = include_reads;
}

int mfs_statsync_flush(struct mfs_statsync *s, struct mfs_ix *ix, struct mfs_blobio *bio,
		       struct mfs_hub *hub, struct mfs_srcset *src)
{
	struct mfs_src_stats ss[MFS_STATSYNC_SRC_MAX];
	char keys[MFS_STATSYNC_SRC_MAX * 4][300];
	size_t nsrc = 0;
	struct mfs_blobio_stats st;
	struct mfs_hub_health h = { 0 };
	char kb[1100], kr[1100];
	const char *names[12 + 4 * MFS_STATSYNC_SRC_MAX];
	int64_t d[12 + 4 * MFS_STATSYNC_SRC_MAX];
	size_t n = 0;
	int rc;

	mfs_blobio_stats(bio, &st);
	if (hub)
		mfs_hub_health(hub, &h);
#define ADD(name, field) do { names[n] = name; d[n++] = (int64_t)(st.field - s->last.field); } while (0)
	if (s->reads) {
		ADD("reads", reads);
		ADD("reads_mem", reads_mem);
		ADD("reads_disk", reads_disk);
		ADD("reads_waited", reads_waited);
	}
	ADD("blocks_fetched", blocks_fetched);
	ADD("bytes_fetched", bytes_fetched);
	ADD("fetch_errors", fetch_errors);
	ADD("verify_failures", verify_failures);
#undef ADD
	if (src) {
		nsrc = mfs_srcset_stats(src, ss, MFS_STATSYNC_SRC_MAX);
		if (nsrc > MFS_STATSYNC_SRC_MAX)
			nsrc = MFS_STATSYNC_SRC_MAX;
		for (size_t i = 0; i < nsrc; i++) {
			snprintf(keys[4 * i], sizeof(keys[0]), "source:%.255s:bytes", ss[i].url);
			snprintf(keys[4 * i + 1], sizeof(keys[0]), "source:%.255s:requests", ss[i].url);
			snprintf(keys[4 * i + 2], sizeof(keys[0]), "source:%.255s:errors", ss[i].url);
			snprintf(keys[4 * i + 3], sizeof(keys[0]), "source:%.255s:bad_data", ss[i].url);
			names[n] = keys[4 * i];
			d[n++] = (int64_t)(ss[i].bytes - s->src_bytes[i]);
			names[n] = keys[4 * i + 1];
			d[n++] = (int64_t)(ss[i].requests - s->src_reqs[i]);
			names[n] = keys[4 * i + 2];
			d[n++] = (int64_t)(ss[i].errors - s->src_errs[i]);
			names[n] = keys[4 * i + 3];
			d[n++] = (int64_t)(ss[i].bad_data - s->src_bad[i]);
		}
	} else if (hub && s->endpoint[0]) {
		snprintf(kb, sizeof(kb), "source:%.1000s:bytes", s->endpoint);
		snprintf(kr, sizeof(kr), "source:%.1000s:requests", s->endpoint);
		names[n] = kb;
		d[n++] = (int64_t)(h.body_bytes - s->hlast.body_bytes);
		names[n] = kr;
		d[n++] = (int64_t)(h.requests - s->hlast.requests);
	}
	rc = mfs_ix_counters_add(ix, names, d, n);
	if (rc == 0) {
		s->last = st;
		s->hlast = h;
		for (size_t i = 0; i < nsrc; i++) {
			s->src_bytes[i] = ss[i].bytes;
			s->src_reqs[i] = ss[i].requests;
			s->src_errs[i] = ss[i].errors;
			s->src_bad[i] = ss[i].bad_data;
		}
	}
	return rc;
}
