/*
 * fmthdr.c - where a GGUF or safetensors header ends (see fmthdr.h).
 *
 * GGUF (v2 and v3; v1 used 32-bit counts and is treated as OTHER):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 type, value },
 *   n_tensors x { string name, u32 n_dims, n_dims x u64, u32 type, u64 off },
 *   padding to general.alignment (default 32), tensor data.
 * A string is u64 length + bytes; an array is u32 element type, u64 count,
 * elements. Everything is little-endian.
 *
 * safetensors: u64 N, N bytes of JSON starting with '{', tensor data.
 *
 * Every count and length is checked against the file size before it is
 * used, so a hostile header ends the parse (OTHER) instead of a loop.
 */
#include "core/fmthdr.h"

#include <stdbool.h>
#include <string.h>

enum { GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STRING,
       GT_ARRAY, GT_U64, GT_I64, GT_F64, GT_COUNT };

struct cur {
	const uint8_t *p;
	size_t n;        /* bytes available */
	size_t pos;
	uint64_t size;   /* file size: no length may point beyond it */
	int short_read;  /* the prefix ended: need more bytes */
	int bad;         /* not a sane header */
};

static int need(struct cur *c, uint64_t k)
{
	if (c->bad || c->short_read)
		return 0;
	if (k > c->size || c->pos + k > c->size) {
		c->bad = 1;
		return 0;
	}
	if (c->pos + k > c->n) {
		c->short_read = 1;
		return 0;
	}
	return 1;
}

static uint64_t get(struct cur *c, int bytes)
{
	uint64_t v = 0;

	if (!need(c, (uint64_t)bytes))
		return 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | c->p[c->pos + (size_t)i];
	c->pos += (size_t)bytes;
	return v;
}

static void skip(struct cur *c, uint64_t k)
{
	if (need(c, k))
		c->pos += (size_t)k;
}

static const int scalar_size[GT_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

/* Skips one value of type t; *u32 (may be NULL) gets a GT_U32 value. */
static void skip_value(struct cur *c, uint32_t t, uint32_t *u32)
{
	if (t >= GT_COUNT) {
		c->bad = 1;
		return;
	}
	if (t == GT_STRING) {
		skip(c, get(c, 8));
	} else if (t == GT_ARRAY) {
		uint32_t et = (uint32_t)get(c, 4);
		uint64_t count = get(c, 8);
		if (et >= GT_COUNT || et == GT_ARRAY) {
			c->bad = 1; /* nested arrays do not occur in model files */
		} else if (et == GT_STRING) {
			for (uint64_t i = 0; i < count && !c->bad && !c->short_read; i++)
				skip(c, get(c, 8));
		} else if (count > c->size) {
			c->bad = 1;
		} else {
			skip(c, count * (uint64_t)scalar_size[et]);
		}
	} else {
		uint64_t v = get(c, scalar_size[t]);
		if (u32 && t == GT_U32)
			*u32 = (uint32_t)v;
	}
}

static void parse_gguf(struct cur *c, struct mfs_fmthdr *out)
{
	uint32_t version, align = 32;
	uint64_t n_tensors, n_kv;

	c->pos = 4;
	version = (uint32_t)get(c, 4);
	n_tensors = get(c, 8);
	n_kv = get(c, 8);
	if (!c->short_read && (version < 2 || version > 3 || n_tensors > c->size / 8 ||
			       n_kv > c->size / 8))
		c->bad = 1;
	for (uint64_t i = 0; i < n_kv && !c->bad && !c->short_read; i++) {
		uint64_t klen = get(c, 8);
		size_t kpos = c->pos;
		skip(c, klen);
		uint32_t t = (uint32_t)get(c, 4);
		bool is_align = !c->short_read && !c->bad && klen == 17 &&
				memcmp(c->p + kpos, "general.alignment", 17) == 0;
		skip_value(c, t, is_align ? &align : NULL);
	}
	for (uint64_t i = 0; i < n_tensors && !c->bad && !c->short_read; i++) {
		skip(c, get(c, 8));                 /* name */
		uint32_t nd = (uint32_t)get(c, 4);
		if (nd > 8) {
			c->bad = 1;
			break;
		}
		skip(c, (uint64_t)nd * 8 + 4 + 8);  /* dims, type, offset */
	}
	if (c->bad || align == 0 || (align & (align - 1)) != 0) {
		out->fmt = MFS_FMT_OTHER;
		return;
	}
	out->fmt = MFS_FMT_GGUF;
	if (c->short_read) {
		out->data_off = c->pos;
		return;
	}
	out->data_off = ((uint64_t)c->pos + align - 1) / align * align;
	if (out->data_off > c->size)
		out->data_off = c->size;
	out->done = 1;
}

int mfs_fmthdr_parse(const uint8_t *p, size_t n, uint64_t file_size, struct mfs_fmthdr *out)
{
	struct cur c = { .p = p, .n = n, .size = file_size };

	memset(out, 0, sizeof(*out));
	if (n > file_size)
		c.n = n = (size_t)file_size;
	if (n >= 4 && memcmp(p, "GGUF", 4) == 0) {
		parse_gguf(&c, out);
		return 0;
	}
	if (n >= 9) {
		uint64_t hlen = get(&c, 8);
		if (p[8] == '{' && hlen >= 2 && hlen <= file_size - 8) {
			out->fmt = MFS_FMT_SAFETENSORS;
			out->data_off = 8 + hlen;
			out->done = 1;
			return 0;
		}
	}
	if (n < 9 && n < file_size) {
		/* too little to tell: ask again with more */
		out->fmt = MFS_FMT_UNKNOWN;
		return 0;
	}
	out->fmt = MFS_FMT_OTHER;
	return 0;
}
