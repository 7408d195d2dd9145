/*
 * json.c - strict recursive-descent JSON parser (RFC 8259) into an
 * immutable tree.
 *
 * All nodes, keys and decoded strings live in one arena owned by the
 * document, so a 100k-entry tree listing costs a handful of mallocs and
 * mfs_json_free is O(chunks). Children of an array/object are stored as one
 * contiguous array (built in a per-depth scratch vector, then copied once
 * when the container closes), which makes mfs_json_at O(1).
 * Numbers are checked against the RFC grammar, then converted with strtod
 * (assumes the C locale's '.' decimal point, as modelfs never calls
 * setlocale) plus an exact int64 path for integers.
 * It does not write JSON, keep source positions, or accept extensions
 * (comments, trailing commas, NaN, single quotes, a BOM).
 */
#include "util/json.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct mfs_json {
	unsigned char type;      /* enum mfs_json_type */
	bool boolean;
	bool is_int;             /* number with no fraction/exponent fitting int64 */
	size_t len;              /* string bytes / child count */
	const char *key;         /* member key when this node is an object value */
	size_t keylen;
	union {
		const char *str;         /* NUL-terminated decoded string */
		struct mfs_json *items;  /* len children */
		struct {
			double d;
			int64_t i;
		} num;
	} u;
};

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

/* The root node comes first so a struct mfs_json * of the root is also a
 * pointer to the whole document. */
struct json_doc {
	struct mfs_json root;
	struct arena_chunk *chunks;
};

struct scratch {
	struct mfs_json *v;
	size_t n, cap;
};

struct parser {
	bool lenient_utf8;  /* bad Unicode in a string becomes a NUL byte */
	const unsigned char *p, *end;
	struct json_doc *doc;
	struct scratch stack[MFS_JSON_MAX_DEPTH + 1]; /* one vector per depth */
	char *sbuf;        /* reusable decode buffer for strings */
	size_t sbuf_cap;
};

#define ARENA_MIN_CHUNK (64 * 1024)

static void *arena_alloc(struct json_doc *doc, size_t size)
{
	struct arena_chunk *c = doc->chunks;
	size_t align = sizeof(max_align_t);

	size = (size + align - 1) & ~(align - 1);
	if (!c || c->cap - c->used < size) {
		size_t cap = size > ARENA_MIN_CHUNK ? size : ARENA_MIN_CHUNK;
		/* Grow chunk sizes with the document so big listings need few chunks. */
		if (c && c->cap * 2 > cap && c->cap < 16 * 1024 * 1024)
			cap = c->cap * 2 > size ? c->cap * 2 : size;
		struct arena_chunk *n = malloc(sizeof(*n) + cap);
		if (!n)
			return NULL;
		n->cap = cap;
		n->used = 0;
		n->next = c;
		doc->chunks = n;
		c = n;
	}
	void *r = (char *)c->data + c->used;
	c->used += size;
	return r;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int sbuf_reserve(struct parser *ps, size_t need)
{
	if (need <= ps->sbuf_cap)
		return 0;
	size_t cap = ps->sbuf_cap ? ps->sbuf_cap : 256;
	while (cap < need)
		cap *= 2;
	char *nb = realloc(ps->sbuf, cap);
	if (!nb)
		return -ENOMEM;
	ps->sbuf = nb;
	ps->sbuf_cap = cap;
	return 0;
}

static int hex4(const unsigned char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -EINVAL;
		v = v * 16 + d;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of a valid shortest-form UTF-8 sequence at p, 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
	unsigned c = p[0];

	if (c >= 0xc2 && c <= 0xdf)
		return (avail >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

/* Parses a string starting at the opening quote; the decoded copy goes to
 * the arena. */
static int parse_string(struct parser *ps, const char **out, size_t *out_len)
{
	const unsigned char *p = ps->p + 1, *end = ps->end;
	size_t n = 0;
	int rc;

	for (;;) {
		/* Decoded output never exceeds the input span, so reserving per
		 * plain run plus 4 bytes per escape is enough. */
		const unsigned char *run = p;
		while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80)
			p++;
		if (p > run) {
			if ((rc = sbuf_reserve(ps, n + (size_t)(p - run) + 5)) < 0)
				return rc;
			memcpy(ps->sbuf + n, run, (size_t)(p - run));
			n += (size_t)(p - run);
		}
		if (p >= end)
			return -EINVAL; /* unterminated */
		if (*p == '"') {
			p++;
			break;
		}
		if ((rc = sbuf_reserve(ps, n + 8)) < 0)
			return rc;
		if (*p < 0x20)
			return -EINVAL; /* raw control character */
		if (*p >= 0x80) {
			size_t l = utf8_len(p, (size_t)(end - p));
			if (!l && ps->lenient_utf8) {
				ps->sbuf[n++] = '\0';
				p++;
				continue;
			}
			if (!l)
				return -EILSEQ;
			memcpy(ps->sbuf + n, p, l);
			n += l;
			p += l;
			continue;
		}
		/* backslash escape */
		if (end - p < 2)
			return -EINVAL;
		switch (p[1]) {
		case '"': ps->sbuf[n++] = '"'; p += 2; continue;
		case '\\': ps->sbuf[n++] = '\\'; p += 2; continue;
		case '/': ps->sbuf[n++] = '/'; p += 2; continue;
		case 'b': ps->sbuf[n++] = '\b'; p += 2; continue;
		case 'f': ps->sbuf[n++] = '\f'; p += 2; continue;
		case 'n': ps->sbuf[n++] = '\n'; p += 2; continue;
		case 'r': ps->sbuf[n++] = '\r'; p += 2; continue;
		case 't': ps->sbuf[n++] = '\t'; p += 2; continue;
		case 'u': break;
		default: return -EINVAL;
		}
		unsigned cp, lo;
		if (end - p < 6 || hex4(p + 2, &cp) < 0)
			return -EINVAL;
		p += 6;
		if (cp >= 0xdc00 && cp <= 0xdfff) {
			if (ps->lenient_utf8) {
				ps->sbuf[n++] = '\0';
				continue;
			}
			return -EILSEQ; /* lone low surrogate */
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			/* A cut-off escape is malformed input; a complete string
			 * with an unpaired high surrogate is bad Unicode. */
			if (p < end && p[0] == '\\' && (end - p < 2 || (p[1] == 'u' && end - p < 6)))
				return -EINVAL;
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u') {
				if (!ps->lenient_utf8)
					return -EILSEQ;
				ps->sbuf[n++] = '\0';
				continue;
			}
			if (hex4(p + 2, &lo) < 0)
				return -EINVAL;
			if (lo < 0xdc00 || lo > 0xdfff) {
				if (!ps->lenient_utf8)
					return -EILSEQ;
				ps->sbuf[n++] = '\0';
				continue;
			}
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			p += 6;
		}
		n += put_utf8(ps->sbuf + n, cp);
	}
	char *s = arena_alloc(ps->doc, n + 1);
	if (!s)
		return -ENOMEM;
	if (n)
		memcpy(s, ps->sbuf, n);
	s[n] = '\0';
	*out = s;
	*out_len = n;
	ps->p = p;
	return 0;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int parse_number(struct parser *ps, struct mfs_json *v)
{
	const unsigned char *start = ps->p, *p = ps->p, *end = ps->end;
	bool integral = true;
	char small[64], *buf = small;
	int rc = 0;

	if (p < end && *p == '-')
		p++;
	if (p >= end || !is_digit(*p))
		return -EINVAL;
	if (*p == '0') {
		p++;
	} else {
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && *p == '.') {
		integral = false;
		p++;
		if (p >= end || !is_digit(*p))
			return -EINVAL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		integral = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !is_digit(*p))
			return -EINVAL;
		while (p < end && is_digit(*p))
			p++;
	}

	size_t n = (size_t)(p - start);
	if (n >= sizeof(small)) {
		buf = malloc(n + 1);
		if (!buf)
			return -ENOMEM;
	}
	memcpy(buf, start, n);
	buf[n] = '\0';

	v->type = MFS_JSON_NUMBER;
	v->u.num.d = strtod(buf, NULL); /* ±HUGE_VAL on overflow: still a number */
	v->is_int = false;
	if (integral) {
		errno = 0;
		long long ll = strtoll(buf, NULL, 10);
		if (errno == 0) {
			v->is_int = true;
			v->u.num.i = (int64_t)ll;
		}
	}
	ps->p = p;
	if (buf != small)
		free(buf);
	return rc;
}

static int scratch_push(struct scratch *s, const struct mfs_json *v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct mfs_json *nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = *v;
	return 0;
}

/* Moves the children collected at `depth` into one arena array. */
static int close_container(struct parser *ps, int depth, struct mfs_json *v)
{
	struct scratch *s = &ps->stack[depth];

	v->len = s->n;
	v->u.items = NULL;
	if (s->n) {
		v->u.items = arena_alloc(ps->doc, s->n * sizeof(struct mfs_json));
		if (!v->u.items)
			return -ENOMEM;
		memcpy(v->u.items, s->v, s->n * sizeof(struct mfs_json));
	}
	s->n = 0;
	return 0;
}

static int parse_value(struct parser *ps, int depth, struct mfs_json *v);

static int parse_array(struct parser *ps, int depth, struct mfs_json *v)
{
	struct mfs_json child;
	int rc;

	if (depth >= MFS_JSON_MAX_DEPTH)
		return -EINVAL;
	ps->p++; /* '[' */
	v->type = MFS_JSON_ARRAY;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return close_container(ps, depth + 1, v);
	}
	for (;;) {
		memset(&child, 0, sizeof(child));
		skip_ws(ps);
		if ((rc = parse_value(ps, depth + 1, &child)) < 0)
			return rc;
		if ((rc = scratch_push(&ps->stack[depth + 1], &child)) < 0)
			return rc;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return -EINVAL;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == ']') {
			ps->p++;
			return close_container(ps, depth + 1, v);
		}
		return -EINVAL;
	}
}

static int parse_object(struct parser *ps, int depth, struct mfs_json *v)
{
	struct mfs_json child;
	const char *key;
	size_t keylen;
	int rc;

	if (depth >= MFS_JSON_MAX_DEPTH)
		return -EINVAL;
	ps->p++; /* '{' */
	v->type = MFS_JSON_OBJECT;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return close_container(ps, depth + 1, v);
	}
	for (;;) {
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"')
			return -EINVAL;
		if ((rc = parse_string(ps, &key, &keylen)) < 0)
			return rc;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			return -EINVAL;
		ps->p++;
		skip_ws(ps);
		memset(&child, 0, sizeof(child));
		if ((rc = parse_value(ps, depth + 1, &child)) < 0)
			return rc;
		child.key = key;
		child.keylen = keylen;
		if ((rc = scratch_push(&ps->stack[depth + 1], &child)) < 0)
			return rc;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return -EINVAL;
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p == '}') {
			ps->p++;
			return close_container(ps, depth + 1, v);
		}
		return -EINVAL;
	}
}

static int match_lit(struct parser *ps, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0)
		return -EINVAL;
	ps->p += n;
	return 0;
}

/* `depth` is the number of containers enclosing v. */
static int parse_value(struct parser *ps, int depth, struct mfs_json *v)
{
	if (ps->p >= ps->end)
		return -EINVAL;
	switch (*ps->p) {
	case '{':
		return parse_object(ps, depth, v);
	case '[':
		return parse_array(ps, depth, v);
	case '"':
		v->type = MFS_JSON_STRING;
		return parse_string(ps, &v->u.str, &v->len);
	case 't':
		v->type = MFS_JSON_BOOL;
		v->boolean = true;
		return match_lit(ps, "true");
	case 'f':
		v->type = MFS_JSON_BOOL;
		v->boolean = false;
		return match_lit(ps, "false");
	case 'n':
		v->type = MFS_JSON_NULL;
		return match_lit(ps, "null");
	default:
		return parse_number(ps, v);
	}
}

void mfs_json_free(struct mfs_json *v)
{
	struct json_doc *doc = (struct json_doc *)v;

	if (!doc)
		return;
	struct arena_chunk *c = doc->chunks;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(doc);
}

int mfs_json_parse(const char *text, size_t len, struct mfs_json **out)
{
	return mfs_json_parse_ex(text, len, 0, out);
}

int mfs_json_parse_ex(const char *text, size_t len, unsigned flags, struct mfs_json **out)
{
	struct parser ps;
	int rc;

	*out = NULL;
	memset(&ps, 0, sizeof(ps));
	ps.lenient_utf8 = flags & MFS_JSON_LENIENT_UTF8;
	if (!text && len)
		return -EINVAL;
	ps.p = (const unsigned char *)text;
	ps.end = ps.p + len;
	ps.doc = calloc(1, sizeof(*ps.doc));
	if (!ps.doc)
		return -ENOMEM;

	skip_ws(&ps);
	rc = parse_value(&ps, 0, &ps.doc->root);
	if (rc < 0)
		goto out;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		rc = -EINVAL; /* trailing garbage */
		goto out;
	}
	*out = &ps.doc->root;
	ps.doc = NULL;
out:
	for (int i = 0; i <= MFS_JSON_MAX_DEPTH; i++)
		free(ps.stack[i].v);
	free(ps.sbuf);
	if (ps.doc)
		mfs_json_free(&ps.doc->root);
	return rc;
}

enum mfs_json_type mfs_json_type(const struct mfs_json *v)
{
	return v ? (enum mfs_json_type)v->type : MFS_JSON_NULL;
}

const struct mfs_json *mfs_json_get(const struct mfs_json *v, const char *key)
{
	size_t kl;

	if (!v || v->type != MFS_JSON_OBJECT || !key)
		return NULL;
	kl = strlen(key);
	for (size_t i = 0; i < v->len; i++) {
		const struct mfs_json *c = &v->u.items[i];
		if (c->keylen == kl && memcmp(c->key, key, kl) == 0)
			return c;
	}
	return NULL;
}

size_t mfs_json_len(const struct mfs_json *v)
{
	if (!v || (v->type != MFS_JSON_ARRAY && v->type != MFS_JSON_OBJECT))
		return 0;
	return v->len;
}

const struct mfs_json *mfs_json_at(const struct mfs_json *v, size_t i)
{
	if (!v || (v->type != MFS_JSON_ARRAY && v->type != MFS_JSON_OBJECT) || i >= v->len)
		return NULL;
	return &v->u.items[i];
}

const char *mfs_json_key_at(const struct mfs_json *v, size_t i)
{
	if (!v || v->type != MFS_JSON_OBJECT || i >= v->len)
		return NULL;
	return v->u.items[i].key;
}

const char *mfs_json_str(const struct mfs_json *v, size_t *len)
{
	if (!v || v->type != MFS_JSON_STRING)
		return NULL;
	if (len)
		*len = v->len;
	return v->u.str;
}

bool mfs_json_int(const struct mfs_json *v, int64_t *out)
{
	if (!v || v->type != MFS_JSON_NUMBER || !v->is_int)
		return false;
	*out = v->u.num.i;
	return true;
}

bool mfs_json_double(const struct mfs_json *v, double *out)
{
	if (!v || v->type != MFS_JSON_NUMBER)
		return false;
	*out = v->u.num.d;
	return true;
}

bool mfs_json_bool(const struct mfs_json *v, bool *out)
{
	if (!v || v->type != MFS_JSON_BOOL)
		return false;
	*out = v->boolean;
	return true;
}

const char *mfs_json_get_str(const struct mfs_json *obj, const char *key)
{
	return mfs_json_str(mfs_json_get(obj, key), NULL);
}
