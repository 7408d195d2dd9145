/*
 * safetensors_mmap.c - list the tensors of a .safetensors file through mmap,
 * and checksum one of them.
 *
 * Usage: safetensors_mmap FILE.safetensors [TENSOR]
 *
 * The file is mapped read-only (MAP_SHARED). Layout: an 8-byte little-endian
 * header length N, N bytes of JSON ({"name": {"dtype", "shape",
 * "data_offsets": [begin, end]}, ..., "__metadata__": {...}}), then the data
 * section. The header is read by a small purpose-built JSON scanner: every
 * step is bounds-checked against N, strings and numbers are validated,
 * nesting is limited, and each tensor's extent is checked (dtype size *
 * shape == end - begin, all tensors contiguous and covering the data
 * section, as the reference implementation requires). Hostile input ends with
 * a message on stderr and exit status 1, never a crash.
 *
 * With TENSOR it prints the FNV-1a 64 checksum of that tensor's bytes. Only
 * the header pages and that tensor's pages are touched, so on a lazy
 * filesystem (modelfs) only those blocks are fetched.
 *
 * It does not interpret tensor values, and it does not handle sub-byte
 * dtypes (F4, F6): they are rejected as unknown. Depends on libc only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (100u * 1024 * 1024)	/* same cap as the reference crate */
#define MAX_DEPTH 32
#define MAX_DIMS 8

static const struct { const char *name; uint32_t size; } st_dtypes[] = {
	{"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1},
	{"F8_E8M0", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
	{"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8},
};

#define N_DTYPES (sizeof(st_dtypes) / sizeof(st_dtypes[0]))

struct tensor {
	char *name;		/* decoded, NUL-terminated */
	int dtype;		/* index into st_dtypes */
	uint32_t ndim;
	uint64_t shape[MAX_DIMS];
	uint64_t begin, end;	/* relative to the data section */
};

struct scan {
	const char *p;
	size_t n;
	size_t pos;
	int depth;
	const char *err;	/* first error */
};

/* A string as it appears between its quotes (escapes not yet decoded). */
struct slice {
	const char *s;
	size_t len;
};

static bool fail(struct scan *s, const char *msg)
{
	if (!s->err)
		s->err = msg;
	return false;
}

static void ws(struct scan *s)
{
	while (s->pos < s->n && (s->p[s->pos] == ' ' || s->p[s->pos] == '\t' ||
				 s->p[s->pos] == '\n' || s->p[s->pos] == '\r'))
		s->pos++;
}

static bool peek(struct scan *s, char ch)
{
	ws(s);
	return s->pos < s->n && s->p[s->pos] == ch;
}

static bool expect(struct scan *s, char ch)
{
	if (!peek(s, ch))
		return fail(s, "malformed JSON header");
	s->pos++;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool hex4(const char *p, size_t avail, uint32_t *out)
{
	uint32_t v = 0;

	if (avail < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);

		if (h < 0)
			return false;
		v = v << 4 | (uint32_t)h;
	}
	*out = v;
	return true;
}

/* Scan a string, validating escapes; the raw slice is returned. */
static bool string(struct scan *s, struct slice *out)
{
	if (!expect(s, '"'))
		return false;
	out->s = s->p + s->pos;
	while (s->pos < s->n) {
		unsigned char c = (unsigned char)s->p[s->pos];
		uint32_t u;

		if (c == '"') {
			out->len = (size_t)(s->p + s->pos - out->s);
			s->pos++;
			return true;
		}
		if (c < 0x20)
			return fail(s, "control character in JSON string");
		if (c != '\\') {
			s->pos++;
			continue;
		}
		if (s->pos + 1 >= s->n)
			break;
		switch (s->p[s->pos + 1]) {
		case '"': case '\\': case '/': case 'b': case 'f':
		case 'n': case 'r': case 't':
			s->pos += 2;
			break;
		case 'u':
			if (!hex4(s->p + s->pos + 2, s->n - s->pos - 2, &u))
				return fail(s, "bad \\u escape in JSON string");
			s->pos += 6;
			break;
		default:
			return fail(s, "bad escape in JSON string");
		}
	}
	return fail(s, "unterminated JSON string");
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decode a slice already validated by string(). Decoded UTF-8 is never
 * longer than the escaped form, so len + 1 bytes suffice. A \u0000 would
 * truncate the C string: it is refused. Returns NULL on error. */
static char *decode(struct slice sl, const char **err)
{
	char *o = malloc(sl.len + 1), *w = o;
	size_t i = 0;

	if (!o) {
		*err = "out of memory";
		return NULL;
	}
	while (i < sl.len) {
		uint32_t cp, lo;

		if (sl.s[i] != '\\') {
			*w++ = sl.s[i++];
			continue;
		}
		switch (sl.s[i + 1]) {
		case 'b': *w++ = '\b'; i += 2; continue;
		case 'f': *w++ = '\f'; i += 2; continue;
		case 'n': *w++ = '\n'; i += 2; continue;
		case 'r': *w++ = '\r'; i += 2; continue;
		case 't': *w++ = '\t'; i += 2; continue;
		case 'u': break;
		default: *w++ = sl.s[i + 1]; i += 2; continue;
		}
		/* string() checked the escape already; checking again costs
		 * nothing and keeps cp defined on every path. */
		if (i + 6 > sl.len || !hex4(sl.s + i + 2, sl.len - i - 2, &cp))
			goto bad;
		i += 6;
		if (cp >= 0xD800 && cp < 0xDC00) {
			if (i + 6 > sl.len || sl.s[i] != '\\' || sl.s[i + 1] != 'u' ||
			    !hex4(sl.s + i + 2, sl.len - i - 2, &lo) ||
			    lo < 0xDC00 || lo > 0xDFFF)
				goto bad;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			i += 6;
		} else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
			goto bad;
		}
		w += put_utf8(w, cp);
	}
	*w = '\0';
	return o;
bad:
	free(o);
	*err = "bad \\u escape in tensor name";
	return NULL;
}

static bool slice_is(struct slice sl, const char *lit)
{
	return sl.len == strlen(lit) && memcmp(sl.s, lit, sl.len) == 0;
}

/* A non-negative integer without sign, fraction or exponent. */
static bool uint_val(struct scan *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t start;

	ws(s);
	start = s->pos;
	while (s->pos < s->n && s->p[s->pos] >= '0' && s->p[s->pos] <= '9') {
		unsigned d = (unsigned)(s->p[s->pos] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return fail(s, "integer too large");
		v = v * 10 + d;
		s->pos++;
	}
	if (s->pos == start)
		return fail(s, "expected a non-negative integer");
	if (s->p[start] == '0' && s->pos - start > 1)
		return fail(s, "leading zero in integer");
	if (s->pos < s->n && (s->p[s->pos] == '.' || s->p[s->pos] == 'e' ||
			      s->p[s->pos] == 'E'))
		return fail(s, "expected an integer");
	*out = v;
	return true;
}

static bool skip_value(struct scan *s);

static bool skip_container(struct scan *s, char open, char close)
{
	struct slice k;
	bool first = true;

	if (++s->depth > MAX_DEPTH)
		return fail(s, "JSON nested too deeply");
	if (!expect(s, open))
		return false;
	while (!peek(s, close)) {
		if (!first && !expect(s, ','))
			return false;
		first = false;
		if (open == '{' && (!string(s, &k) || !expect(s, ':')))
			return false;
		if (!skip_value(s))
			return false;
	}
	s->pos++;
	s->depth--;
	return true;
}

static bool skip_number(struct scan *s)
{
	size_t start;

	if (s->pos < s->n && s->p[s->pos] == '-')
		s->pos++;
	start = s->pos;
	while (s->pos < s->n && s->p[s->pos] >= '0' && s->p[s->pos] <= '9')
		s->pos++;
	if (s->pos == start)
		return fail(s, "malformed JSON number");
	if (s->pos < s->n && s->p[s->pos] == '.') {
		start = ++s->pos;
		while (s->pos < s->n && s->p[s->pos] >= '0' && s->p[s->pos] <= '9')
			s->pos++;
		if (s->pos == start)
			return fail(s, "malformed JSON number");
	}
	if (s->pos < s->n && (s->p[s->pos] == 'e' || s->p[s->pos] == 'E')) {
		s->pos++;
		if (s->pos < s->n && (s->p[s->pos] == '+' || s->p[s->pos] == '-'))
			s->pos++;
		start = s->pos;
		while (s->pos < s->n && s->p[s->pos] >= '0' && s->p[s->pos] <= '9')
			s->pos++;
		if (s->pos == start)
			return fail(s, "malformed JSON number");
	}
	return true;
}

static bool skip_value(struct scan *s)
{
	static const char *const words[] = {"true", "false", "null"};
	struct slice str;

	ws(s);
	if (s->pos >= s->n)
		return fail(s, "truncated JSON header");
	switch (s->p[s->pos]) {
	case '{':
		return skip_container(s, '{', '}');
	case '[':
		return skip_container(s, '[', ']');
	case '"':
		return string(s, &str);
	default:
		break;
	}
	for (size_t i = 0; i < 3; i++) {
		size_t l = strlen(words[i]);

		if (s->n - s->pos >= l && memcmp(s->p + s->pos, words[i], l) == 0) {
			s->pos += l;
			return true;
		}
	}
	return skip_number(s);
}

/* {"dtype": "BF16", "shape": [..], "data_offsets": [b, e]} in any order. */
static bool tensor_entry(struct scan *s, struct tensor *t)
{
	bool have_dtype = false, have_shape = false, have_offs = false, first = true;
	struct slice k, v;

	if (!expect(s, '{'))
		return false;
	while (!peek(s, '}')) {
		if (!first && !expect(s, ','))
			return false;
		first = false;
		if (!string(s, &k) || !expect(s, ':'))
			return false;
		if (slice_is(k, "dtype")) {
			if (!string(s, &v))
				return false;
			t->dtype = -1;
			for (size_t i = 0; i < N_DTYPES; i++)
				if (slice_is(v, st_dtypes[i].name))
					t->dtype = (int)i;
			if (t->dtype < 0)
				return fail(s, "unknown dtype");
			have_dtype = true;
		} else if (slice_is(k, "shape")) {
			bool f2 = true;

			if (!expect(s, '['))
				return false;
			t->ndim = 0;
			while (!peek(s, ']')) {
				if (!f2 && !expect(s, ','))
					return false;
				f2 = false;
				if (t->ndim == MAX_DIMS)
					return fail(s, "too many dimensions");
				if (!uint_val(s, &t->shape[t->ndim++]))
					return false;
			}
			s->pos++;
			have_shape = true;
		} else if (slice_is(k, "data_offsets")) {
			if (!expect(s, '[') || !uint_val(s, &t->begin) ||
			    !expect(s, ',') || !uint_val(s, &t->end) || !expect(s, ']'))
				return false;
			have_offs = true;
		} else if (!skip_value(s)) {
			return false;
		}
	}
	s->pos++;
	if (!have_dtype || !have_shape || !have_offs)
		return fail(s, "tensor entry lacks dtype, shape or data_offsets");
	return true;
}

static int cmp_begin(const void *a, const void *b)
{
	const struct tensor *x = a, *y = b;

	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Check each tensor's byte count against dtype and shape, then that the
 * tensors tile the data section exactly (sorted by begin). */
static bool check_extents(struct tensor *ts, size_t nt, uint64_t data_size,
			  const char **err)
{
	uint64_t pos = 0;

	for (size_t i = 0; i < nt; i++) {
		uint64_t nb = st_dtypes[ts[i].dtype].size;

		for (uint32_t d = 0; d < ts[i].ndim; d++) {
			if (ts[i].shape[d] && nb > UINT64_MAX / ts[i].shape[d]) {
				*err = "tensor size overflows";
				return false;
			}
			nb *= ts[i].shape[d];
		}
		if (ts[i].end < ts[i].begin || ts[i].end - ts[i].begin != nb) {
			*err = "data_offsets do not match dtype and shape";
			return false;
		}
		if (ts[i].end > data_size) {
			*err = "tensor data extends past end of file";
			return false;
		}
	}
	qsort(ts, nt, sizeof(*ts), cmp_begin);
	for (size_t i = 0; i < nt; i++) {
		if (ts[i].begin != pos) {
			*err = "tensors overlap or leave gaps";
			return false;
		}
		pos = ts[i].end;
	}
	if (pos != data_size) {
		*err = "tensors do not cover the data section";
		return false;
	}
	return true;
}

static bool parse_header(struct scan *s, struct tensor **out, size_t *nout)
{
	struct tensor *ts = NULL;
	size_t nt = 0, cap = 0;
	bool first = true, ok = false;
	struct slice k;

	if (!expect(s, '{'))
		goto out;
	while (!peek(s, '}')) {
		if (!first && !expect(s, ','))
			goto out;
		first = false;
		if (!string(s, &k) || !expect(s, ':'))
			goto out;
		if (slice_is(k, "__metadata__")) {
			if (!peek(s, '{')) {
				fail(s, "__metadata__ is not an object");
				goto out;
			}
			if (!skip_value(s))
				goto out;
			continue;
		}
		if (nt == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct tensor *nts = realloc(ts, ncap * sizeof(*ts));

			if (!nts) {
				fail(s, "out of memory");
				goto out;
			}
			ts = nts;
			cap = ncap;
		}
		memset(&ts[nt], 0, sizeof(ts[nt]));
		ts[nt].name = decode(k, &s->err);
		if (!ts[nt].name)
			goto out;
		nt++;
		if (!tensor_entry(s, &ts[nt - 1]))
			goto out;
	}
	s->pos++;
	ws(s);
	if (s->pos != s->n) {
		fail(s, "trailing bytes after JSON header");
		goto out;
	}
	ok = true;
out:
	*out = ts;
	*nout = nt;
	return ok;
}

static void print_tensor(const struct tensor *t)
{
	printf("  %s %s [", t->name, st_dtypes[t->dtype].name);
	for (uint32_t d = 0; d < t->ndim; d++)
		printf("%s%" PRIu64, d ? ", " : "", t->shape[d]);
	printf("] offsets [%" PRIu64 ", %" PRIu64 ")\n", t->begin, t->end);
}

static uint64_t fnv1a64(const uint8_t *p, uint64_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint64_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int main(int argc, char **argv)
{
	const char *path, *want;
	struct tensor *ts = NULL;
	size_t nt = 0;
	struct stat st;
	uint8_t *map = MAP_FAILED;
	uint64_t hlen, data_size;
	const char *err = NULL;
	struct scan s = {0};
	int fd = -1, rc = 1;
	long page = sysconf(_SC_PAGESIZE);

	if (argc < 2 || argc > 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: safetensors_mmap FILE.safetensors [TENSOR]\n");
		return 2;
	}
	path = argv[1];
	want = argc == 3 ? argv[2] : NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = strerror(errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 8) {
		err = "not a regular file of at least 8 bytes";
		goto out;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		err = strerror(errno);
		goto out;
	}
	/* Touch only what is asked for: no read-around beyond the faults. */
	(void)madvise(map, (size_t)st.st_size, MADV_RANDOM);
	hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | map[i];
	if (hlen > MAX_HEADER || hlen > (uint64_t)st.st_size - 8) {
		err = "header length exceeds file size or limit";
		goto out;
	}
	data_size = (uint64_t)st.st_size - 8 - hlen;
	s.p = (const char *)map + 8;
	s.n = (size_t)hlen;
	if (!parse_header(&s, &ts, &nt)) {
		err = s.err ? s.err : "malformed JSON header";
		goto out;
	}
	if (!check_extents(ts, nt, data_size, &err))
		goto out;
	printf("file: %s (%" PRIu64 " bytes), header %" PRIu64 " bytes, data %"
	       PRIu64 " bytes, %zu tensors\n", path, (uint64_t)st.st_size, hlen,
	       data_size, nt);
	for (size_t i = 0; i < nt; i++)
		print_tensor(&ts[i]);
	if (want) {
		const struct tensor *t = NULL;
		const uint8_t *data = map + 8 + hlen;

		for (size_t i = 0; i < nt && !t; i++)
			if (strcmp(ts[i].name, want) == 0)
				t = &ts[i];
		if (!t) {
			err = "no such tensor";
			goto out;
		}
		if (t->end > t->begin && page > 0) {
			/* Read exactly this tensor's pages in bulk: WILLNEED is
			 * bounded by the range, unlike SEQUENTIAL read-ahead
			 * which may run past the tensor's end. */
			uintptr_t a = (uintptr_t)(data + t->begin) & ~(uintptr_t)(page - 1);

			(void)madvise((void *)a, (size_t)((uintptr_t)(data + t->end) - a),
				      MADV_WILLNEED);
		}
		printf("checksum %s fnv1a64=%016" PRIx64 " bytes=%" PRIu64 "\n", t->name,
		       fnv1a64(data + t->begin, t->end - t->begin), t->end - t->begin);
	}
	rc = 0;
out:
	if (rc) {
		fflush(stdout);
		fprintf(stderr, "safetensors_mmap: %s: %s\n", path, err ? err : "error");
	}
	for (size_t i = 0; i < nt; i++)
		free(ts[i].name);
	free(ts);
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	return rc;
}
